"""``lcarchive verify``: every stored chunk read and decoded; each flipped byte of a damaged copy
found and named, nothing on a clean one; on threads and on a Dask LocalCluster of 2 workers."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

import lcarchive
from lcarchive.integrity import verify_archive

from conftest import DATA, lcarchive_command

FILES = [
    *sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits")),
    *sorted((DATA / "kepler").glob("*.fits"))[:2],
    *sorted((DATA / "qlp").glob("*.fits"))[:1],
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """An archive written in one ingest batch: every chunk object is one chunk of the current version."""
    root = tmp_path_factory.mktemp("verify") / "archive"
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in FILES]).ok
    return root


def _copy(clean: Path, dest: Path) -> Path:
    shutil.copytree(clean, dest)
    return dest


def _chunk_objects(root: Path) -> list[Path]:
    return sorted(root.glob("observations/*/chunks/*"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([lcarchive_command(), "verify", *args], capture_output=True, text=True, timeout=300)


def test_a_clean_archive_verifies(clean):
    report = verify_archive(lcarchive.open_archive(str(clean)))
    assert report.ok and report.chunks >= len(_chunk_objects(clean)) and report.bytes > 0
    assert set(report.observations) == set(lcarchive.open_archive(str(clean)).group_ids())
    result = _run(str(clean))
    assert result.returncode == 0, result.stderr
    assert "no damaged object" in result.stderr and result.stdout == ""


def test_every_flipped_byte_is_found(clean, tmp_path):
    root = _copy(clean, tmp_path / "damaged")
    objects = _chunk_objects(root)
    rng = random.Random(12)
    for path in objects:  # one byte anywhere in every chunk object (shard index, inner chunk, checksum)
        data = bytearray(path.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    report = verify_archive(lcarchive.open_archive(str(root)))
    assert len(report.damaged) == len(objects)
    assert all("CRC32C" in d.reason or "decode" in d.reason for d in report.damaged)
    families = {p.parent.parent.name for p in objects}
    assert {d.where.rsplit("/", 1)[-1] for d in report.damaged} == families
    assert all(d.key.split("/", 1)[0] in families and "/c/" in d.key for d in report.damaged)


def test_one_flipped_byte_is_named_and_a_missing_object_too(clean, tmp_path):
    root = _copy(clean, tmp_path / "one")
    objects = _chunk_objects(root)
    rng = random.Random(5)
    flipped, gone = rng.sample(objects, 2)
    data = bytearray(flipped.read_bytes())
    data[rng.randrange(len(data))] ^= 0x80
    flipped.write_bytes(bytes(data))
    gone.unlink()
    result = _run(str(root), "--json")
    assert result.returncode == 1
    damaged = json.loads(result.stdout)
    assert len(damaged) == 2, damaged
    reasons = sorted(d["reason"].split(" ")[0] for d in damaged)
    assert reasons[0] in ("does", "missing:") and any(d["reason"].startswith("missing:") for d in damaged)
    assert {d["where"].rsplit("/", 1)[-1] for d in damaged} == {flipped.parent.parent.name, gone.parent.parent.name}
    assert "2 damaged object(s)" in result.stderr
    # only the observation asked for is read
    other = sorted({p.parent.parent.name for p in objects} - {flipped.parent.parent.name, gone.parent.parent.name})[0]
    assert _run(str(root), "--observation", other).returncode == 0


def test_a_damaged_catalog_bucket_is_named(clean, tmp_path):
    root = _copy(clean, tmp_path / "catalog")
    buckets = sorted(root.glob("catalog/chunks/*"))
    assert buckets
    for path in buckets:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    report = verify_archive(lcarchive.open_archive(str(root)))
    assert report.damaged and all(d.where.endswith("/catalog") for d in report.damaged)
    assert {d.key.split("/")[0] for d in report.damaged} <= {"families", "targets", "sky"}
    assert all("/c/" in d.key for d in report.damaged)  # each bucket named
    result = _run(str(root))
    assert result.returncode == 1 and "catalog" in result.stdout and "Traceback" not in result.stderr


def test_verify_on_a_dask_local_cluster(clean, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    root = _copy(clean, tmp_path / "cluster")
    objects = _chunk_objects(root)
    for path in objects[::3]:
        data = bytearray(path.read_bytes())
        data[0] ^= 0x01
        path.write_bytes(bytes(data))
    archive = lcarchive.open_archive(str(root))
    here = verify_archive(archive)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        there = verify_archive(archive, client=client)
        assert len(client.scheduler_info()["workers"]) == 2
    assert there.damaged == here.damaged and len(here.damaged) == len(objects[::3])
    assert there.chunks == here.chunks


def test_bad_requests_are_one_line(clean):
    result = _run(str(clean), "--observation", "tess-spoc-2min-s0099")
    assert result.returncode == 2 and "tess-spoc-2min-s0099" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    result = _run(str(clean), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert result.returncode == 2 and "not both" in result.stderr


# -- every object kind: snapshots, manifests, transaction logs, repository info, digest records ------------------


def _flip(path: Path, where: float = 0.5, bit: int = 0x10) -> None:
    data = bytearray(path.read_bytes())
    data[min(len(data) - 1, max(40, int(len(data) * where)))] ^= bit  # past icechunk's 40-byte header
    path.write_bytes(bytes(data))


def _head(repository: Path) -> str:
    import icechunk

    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(repository))).lookup_branch("main")


def _manifests(repository: Path, snapshot: str) -> list[str]:
    import icechunk

    return [
        m.id for m in icechunk.Repository.open(icechunk.local_filesystem_storage(str(repository))).list_manifest_files(snapshot)
    ]


@pytest.mark.parametrize("repository", ["observations/kepler-lc-q02", "catalog"])
def test_a_flipped_bit_in_each_metadata_object_is_named_with_its_kind(clean, tmp_path, repository):
    root = _copy(clean, tmp_path / "kinds")
    repo = root / repository
    head = _head(repo)
    manifest = _manifests(repo, head)[0]
    flipped = {
        f"snapshots/{head}": "snapshot",
        f"manifests/{manifest}": "manifest",
        f"transactions/{head}": "transaction log",
        "repo": "repository info",
    }
    for key in flipped:
        _flip(repo / key)
    report = verify_archive(lcarchive.open_archive(str(root)))
    named = {(d.key, d.kind) for d in report.damaged if d.where.endswith(repository)}
    assert set(flipped.items()) <= named, report.damaged
    assert not any(d.network for d in report.damaged)
    assert report.repositories == 5  # the catalog's and the 4 families', whatever was damaged


def test_verify_goes_on_past_damaged_snapshots_and_manifests(clean, tmp_path):
    root = _copy(clean, tmp_path / "goes-on")
    spoc, kepler = root / "observations/tess-spoc-2min-s0001", root / "observations/kepler-lc-q05"
    _flip(spoc / "snapshots" / _head(spoc))
    broken = _manifests(kepler, _head(kepler))
    for manifest in broken:
        (kepler / "manifests" / manifest).write_bytes((kepler / "manifests" / manifest).read_bytes()[:60])  # truncated
    result = _run(str(root), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    damaged = json.loads(result.stdout)
    assert {(d["key"], d["kind"]) for d in damaged} >= {
        (f"snapshots/{_head(spoc)}", "snapshot"),
        *((f"manifests/{m}", "manifest") for m in broken),
    }
    assert not any(d["network"] for d in damaged)
    # the other groups were read whole
    archive = lcarchive.open_archive(str(root))
    report = verify_archive(archive, ["kepler-lc-q02", "tess-qlp-s0024"])
    assert report.ok and report.chunks > 0


def test_a_damaged_pinned_snapshot_is_an_error_on_read_never_other_values(clean, tmp_path):
    from lcarchive.errors import DamagedObjectError

    root = _copy(clean, tmp_path / "read")
    repo = root / "observations/kepler-lc-q02"
    head = _head(repo)
    _flip(repo / "snapshots" / head, 0.7, 0x01)
    archive = lcarchive.open_archive(str(root))
    with pytest.raises(DamagedObjectError, match=f"snapshots/{head}: snapshot: does not match the SHA-256") as caught:
        archive.open_observation("kepler-lc-q02")
    assert "not a network failure" in str(caught.value)
    assert archive.open_observation("kepler-lc-q05").sizes["target"] == 1  # other families read


def test_a_pin_without_a_digest_still_reads(clean, tmp_path):
    """Pins written before digests (no snapshot_sha256) read as before."""
    from lcarchive.store.archive_store import ArchiveStore, FamilyPin

    root = _copy(clean, tmp_path / "old-pin")
    store = lcarchive.open_archive(str(root)).handle.repositories
    pins = store.pins()
    assert all(p.snapshot_sha256 is not None for p in pins.values())
    old = {f: FamilyPin.from_stored({k: v for k, v in p.stored().items() if k != "snapshot_sha256"}) for f, p in pins.items()}
    store.change_catalog(lambda session: ArchiveStore.update_pins(session, old) or True, "pins of an older lcarchive")
    archive = lcarchive.open_archive(str(root))
    pin = archive.handle.repositories.pin("kepler-lc-q02")
    assert pin is not None and pin.snapshot_sha256 is None and "snapshot_sha256" not in pin.stored()
    assert archive.open_observation("kepler-lc-q02").sizes["target"] == 1


def test_a_deleted_catalog_repository_info_is_named_and_the_families_checked(clean, tmp_path):
    root = _copy(clean, tmp_path / "no-catalog")
    (root / "catalog/repo").unlink()
    result = _run(str(root), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    damaged = json.loads(result.stdout)
    assert [(d["where"].rsplit("/", 1)[-1], d["key"], d["kind"]) for d in damaged] == [("catalog", "repo", "repository info")]
    assert "5 repositories" in result.stderr
    listing = subprocess.run([lcarchive_command(), "ls", str(root)], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 2 and "catalog/repo) is missing though 4 observation families are stored" in listing.stderr


def test_local_damage_is_not_called_network_trouble(clean, tmp_path):
    from lcarchive.errors import StoreError

    root = _copy(clean, tmp_path / "truncated")
    repo = root / "observations/kepler-lc-q02"
    for manifest in _manifests(repo, _head(repo)):
        path = repo / "manifests" / manifest
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(StoreError) as caught:
        lcarchive.open_archive(str(root)).open_observation("kepler-lc-q02").load()
    assert "damaged in the store, not a network failure" in str(caught.value) and "cut off" not in str(caught.value)
    assert " manifest " in str(caught.value)


def test_no_false_damage_after_tags_appends_and_gc(clean, tmp_path):
    """gc rewrites the repository info (expired snapshots, parents re-pointed) without lcarchive's
    digest record of it: verify tells that from damage."""
    import datetime as dt

    root = _copy(clean, tmp_path / "gc")
    archive = lcarchive.Archive(str(root))
    archive.tag("dr1")
    assert archive.ingest([str(DATA / "spoc-2min" / "target_s0001.fits")]).ok
    archive.collect_garbage(dt.timedelta(0))
    report = verify_archive(lcarchive.open_archive(str(root)))
    assert report.ok, report.damaged
    assert verify_archive(lcarchive.open_archive(str(root), version="dr1")).ok
