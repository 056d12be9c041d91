"""``lcarchive rollback``: a damaged family or catalog back to its newest undamaged version, what is
lost said; an undamaged one left as it is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import icechunk
import pytest

import lcarchive
from lcarchive.integrity import verify_archive

from conftest import DATA, lcarchive_command

FIRST = [*sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits")), *sorted((DATA / "kepler").glob("*.fits"))[:1]]
SECOND = DATA / "spoc-2min" / "target_s0001.fits"  # TIC 279741379, S1: a second commit of tess-spoc-2min-s0001
FAMILY = "tess-spoc-2min-s0001"


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repair") / "archive"
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in FIRST]).ok
    assert lcarchive.Archive(str(root)).ingest([str(SECOND)]).ok
    return root


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest)
    return dest


def _repo(path: Path) -> icechunk.Repository:
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x08
    path.write_bytes(bytes(data))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([lcarchive_command(), "rollback", *args], capture_output=True, text=True, timeout=300)


def test_a_damaged_family_is_rolled_back_and_what_is_lost_said(two_versions, tmp_path):
    root = _copy(two_versions, tmp_path / "family")
    family = root / "observations" / FAMILY
    head = _repo(family).lookup_branch("main")
    parent = _repo(family).lookup_snapshot(head).parent_id
    _flip(family / "snapshots" / head)
    assert not verify_archive(lcarchive.open_archive(str(root))).ok

    dry = _run(str(root), FAMILY, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would roll back {family} from {head} to {parent}" in dry.stdout
    assert _repo(family).lookup_branch("main") == head  # nothing changed

    result = _run(str(root), FAMILY)
    assert result.returncode == 0, result.stderr
    assert f"damaged: {family}: snapshots/{head} (snapshot)" in result.stdout
    assert f"rolled back {family} from {head} to {parent}" in result.stdout
    assert f"lost commit {head}" in result.stdout and "target_s0001.fits" in result.stdout
    assert f"lost light curve: target 279741379 of {FAMILY}" in result.stdout
    assert _repo(family).lookup_branch("main") == parent
    assert (family / "lcarchive-damaged" / "snapshots" / head).exists()  # moved aside, not deleted

    archive = lcarchive.open_archive(str(root))
    assert verify_archive(archive).ok
    assert 279741379 not in archive.open_observation(FAMILY)["target"].values
    assert archive.open_observation(FAMILY).sizes["target"] == len(FIRST) - 1
    assert archive.history(limit=1)[0]["message"].startswith(f"rollback observations/{FAMILY} to {parent}")
    assert archive.handle.repositories.pin(FAMILY).snapshot == parent
    # and the lost light curve comes back with its file
    assert lcarchive.Archive(str(root)).ingest([str(SECOND)]).ok
    assert 279741379 in lcarchive.open_archive(str(root)).open_observation(FAMILY)["target"].values


def test_a_damaged_manifest_rolls_the_family_back(two_versions, tmp_path):
    root = _copy(two_versions, tmp_path / "manifest")
    family = root / "observations" / FAMILY
    repo = _repo(family)
    head = repo.lookup_branch("main")
    parent = repo.lookup_snapshot(head).parent_id
    only_head = sorted({m.id for m in repo.list_manifest_files(head)} - {m.id for m in repo.list_manifest_files(parent)})
    assert only_head
    _flip(family / "manifests" / only_head[0])
    result = _run(str(root), FAMILY)
    assert result.returncode == 0, result.stderr
    assert f"manifests/{only_head[0]} (manifest)" in result.stdout and f"to {parent}" in result.stdout
    assert verify_archive(lcarchive.open_archive(str(root))).ok


def test_a_damaged_catalog_is_rolled_back_to_its_previous_version(two_versions, tmp_path):
    from lcarchive.errors import DamagedObjectError

    root = _copy(two_versions, tmp_path / "catalog")
    catalog = root / "catalog"
    versions = lcarchive.open_archive(str(root)).history()
    head = versions[0]["snapshot"]
    _flip(catalog / "snapshots" / head)
    with pytest.raises(DamagedObjectError, match=f"catalog/snapshots/{head}"):
        lcarchive.open_archive(str(root)).group_ids()
    result = _run(str(root), "--catalog")
    assert result.returncode == 0, result.stderr
    assert f"rolled back {catalog} from {head} to {versions[1]['snapshot']}" in result.stdout
    assert f"lost commit {head}" in result.stdout and "catalog build" in result.stdout
    archive = lcarchive.open_archive(str(root))
    assert archive.history(limit=1)[0]["snapshot"] == versions[1]["snapshot"]
    assert 279741379 not in set(archive.target_index()["target"])
    assert verify_archive(archive).ok
    archive.build_catalog()  # the family's newer snapshot is sound: pinned again
    assert 279741379 in set(lcarchive.open_archive(str(root)).target_index()["target"])


def test_an_undamaged_family_is_left_as_it_is_and_bad_requests_are_one_line(two_versions, tmp_path):
    root = _copy(two_versions, tmp_path / "clean")
    head = _repo(root / "observations" / FAMILY).lookup_branch("main")
    result = _run(str(root), FAMILY)
    assert result.returncode == 0 and "nothing to roll back" in result.stdout
    assert _repo(root / "observations" / FAMILY).lookup_branch("main") == head
    for args in ([str(root), FAMILY, "--catalog"], [str(root), "tess-spoc-2min-s0099"]):
        bad = _run(*args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "no family 'tess-spoc-2min-s0099'" in bad.stderr


def test_verify_and_rollback_on_s3(s3):
    """On moto S3: a flipped bit in a family's newest snapshot is found by a read and by verify, and
    the family is rolled back to its parent."""
    import boto3

    from lcarchive.errors import DamagedObjectError
    from lcarchive.repair import rollback_family

    url = f"{s3}/damaged"
    assert lcarchive.Archive(url).ingest([str(p) for p in FIRST]).ok
    assert lcarchive.Archive(url).ingest([str(SECOND)]).ok
    store = lcarchive.open_archive(url).handle.repositories
    head = store.family_head(FAMILY)
    client = boto3.client("s3")
    key = f"damaged/observations/{FAMILY}/snapshots/{head}"
    data = bytearray(client.get_object(Bucket="lcarchive-test", Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x04
    client.put_object(Bucket="lcarchive-test", Key=key, Body=bytes(data))
    with pytest.raises(DamagedObjectError, match=f"snapshots/{head}"):
        lcarchive.open_archive(url).open_observation(FAMILY)
    report = verify_archive(lcarchive.open_archive(url))
    assert [(d.key, d.kind, d.network) for d in report.damaged] == [(f"snapshots/{head}", "snapshot", False)]
    rolled = rollback_family(lcarchive.Archive(url), FAMILY)
    assert rolled.lost_light_curves == [(279741379, FAMILY)] and rolled.kept != head
    archive = lcarchive.open_archive(url)
    assert verify_archive(archive).ok
    assert 279741379 not in archive.open_observation(FAMILY)["target"].values
