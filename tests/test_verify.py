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
from conftest import DATA, lcarchive_command
from lcarchive.integrity import verify_archive

FILES = [*sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits")), *sorted((DATA / "kepler").glob("*.fits"))[:2],
         *sorted((DATA / "qlp").glob("*.fits"))[:1]]


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
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
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
