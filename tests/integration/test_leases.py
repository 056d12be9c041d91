"""gc beside writers (lcarchive/store/leases.py and ``ArchiveStore.collect_garbage``): the writers'
lease, the age bound, symlinks leading out of a local archive.

Writers are real ``lcarchive ingest`` processes; the archives are on local disk and on a moto S3
server; the light curves are the real K2 campaign 5 files of ../shared (nine targets).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import lcarchive
from lcarchive.config import override
from lcarchive.store.archive_store import ArchiveStore

from conftest import DATA, lcarchive_command
from reference import assert_bit_equal

K2 = sorted((DATA / "k2").glob("ktwo*-c05_llc.fits"))
OBS = "k2-lc-c05"


def _where(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if kind == "s3":
        return f"{request.getfixturevalue('s3')}/{name}"
    return str(tmp_path / name)


def _epic(path: Path) -> int:
    return int(fits.getheader(path)["KEPLERID"])


def _flux(archive: lcarchive.Archive, target: int) -> np.ndarray:
    return archive.light_curve(target, observation=OBS, variables=["flux"], quality_bitmask="none")["flux"].values


def _source_flux(path: Path) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.asarray(hdul[1].data["PDCSAP_FLUX"])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_gc_in_a_loop_beside_concurrent_ingests_loses_nothing(kind, tmp_path, request):
    """Two writers append to one observation (rewriting its shard) while gc runs in a loop: by the
    age bound alone (the lease skipped), then by the lease alone (no bound), in turn."""
    url = _where(kind, tmp_path, request, "gc-beside-writers")
    assert lcarchive.Archive(url).ingest([str(p) for p in K2[:3]]).ok
    before = {_epic(p): _flux(lcarchive.open_archive(url), _epic(p)) for p in K2[:3]}
    cli = lcarchive_command()
    writers = [
        subprocess.Popen(
            ["bash", "-c", " && ".join(f"{cli} ingest {url} {p}" for p in files)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for files in (K2[3:5], K2[5:7])
    ]
    by_bound = by_lease = refused = 0
    while any(w.poll() is None for w in writers):
        if by_bound <= by_lease + refused:
            with override(gc_safety_seconds=120):  # every writer's objects are younger than this
                ArchiveStore(url).collect_garbage(_now(), check_writers=False)
            by_bound += 1
        else:
            try:
                with override(gc_safety_seconds=0):
                    lcarchive.Archive(url).collect_garbage(dt.timedelta(0), wait=0.5)
                by_lease += 1
            except lcarchive.ArchiveBusyError as exc:
                assert "hold the archive" in str(exc) and "\n" not in str(exc)
                refused += 1
        time.sleep(0.5)  # room for the writers between two collections
    print(f"gc runs beside the writers: {by_bound} by the bound, {by_lease} by the lease, {refused} refused")
    errors = [w.communicate()[1] for w in writers]  # waits, reads and closes their pipes
    assert [w.returncode for w in writers] == [0, 0], errors
    assert by_bound >= 2 and by_lease + refused >= 1
    with override(gc_safety_seconds=0):  # and once more, everything past: nothing a version needs goes
        lcarchive.Archive(url).collect_garbage(dt.timedelta(0))
    archive = lcarchive.open_archive(url)
    assert sorted(archive.targets(OBS).tolist()) == sorted(_epic(p) for p in K2[:7])
    for target, flux in before.items():
        assert_bit_equal(_flux(archive, target), flux, f"EPIC {target}, stored before the writers and gc ran")
    for path in K2[3:7]:
        expected = _source_flux(path)
        assert_bit_equal(_flux(archive, _epic(path)), expected.astype(expected.dtype.newbyteorder("=")), path.name)
    verified = subprocess.run([cli, "verify", url], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_gc_refuses_while_a_writer_holds_the_archive_and_writers_wait_for_gc(kind, tmp_path, request):
    url = _where(kind, tmp_path, request, "busy")
    assert lcarchive.Archive(url).ingest([str(K2[0])]).ok
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with ArchiveStore(url).writing("ingest"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    assert held.wait(30)
    with pytest.raises(lcarchive.ArchiveBusyError, match=r"hold the archive.*--wait"):
        ArchiveStore(url).collect_garbage(_now())
    cli = subprocess.run([lcarchive_command(), "gc", url, "--older-than", "0"], capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and "hold the archive" in cli.stderr, cli.stderr
    if kind == "s3":
        assert "ingest on" in cli.stderr  # the lease names its holder
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    stats = ArchiveStore(url).collect_garbage(_now(), wait=30)  # waits for the writer, then runs
    assert time.monotonic() - started >= 0.9 and stats["kept_after"] <= _now()
    thread.join()

    # a writer that starts while gc runs waits until gc is done
    in_gc, gc_done, wrote = threading.Event(), threading.Event(), threading.Event()

    def gc() -> None:
        from lcarchive.store.leases import collecting

        store = ArchiveStore(url)
        with collecting(store.url, store.storage_options, store.local):
            in_gc.set()
            time.sleep(2.0)
            gc_done.set()  # still inside: a writer let in before gc ends would find it unset

    def late_writer() -> None:
        with ArchiveStore(url).writing("ingest"):
            assert gc_done.is_set()
            wrote.set()

    collector = threading.Thread(target=gc)
    collector.start()
    assert in_gc.wait(30)
    late = threading.Thread(target=late_writer)
    late.start()
    late.join(60)
    collector.join()
    assert wrote.is_set()


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_gc_runs_exclude_each_other(kind, tmp_path, request):
    from lcarchive.store.leases import collecting

    url = _where(kind, tmp_path, request, "two-gc")
    assert lcarchive.Archive(url).ingest([str(K2[0])]).ok
    store = ArchiveStore(url)
    with collecting(store.url, store.storage_options, store.local):
        with pytest.raises(lcarchive.ArchiveBusyError, match="another gc runs"):
            lcarchive.Archive(url).collect_garbage(dt.timedelta(0))
    assert lcarchive.Archive(url).collect_garbage(dt.timedelta(0))["objects_deleted"] == 0  # (all younger than a day)


def test_a_lapsed_lease_of_a_killed_writer_does_not_block_gc(s3, moto_server):
    """A writer killed with SIGKILL leaves its lease object; once it has expired gc runs and removes it."""
    import s3fs

    url = f"{s3}/lapsed"
    assert lcarchive.Archive(url).ingest([str(K2[0])]).ok
    fs = s3fs.S3FileSystem(endpoint_url=moto_server)
    lapsed = f"{url.removeprefix('s3://')}/leases/writer-dead.json"
    fs.pipe_file(lapsed, json.dumps({"kind": "ingest", "host": "h", "pid": 1, "expires": time.time() - 1}).encode())
    live = f"{url.removeprefix('s3://')}/leases/writer-alive.json"
    fs.pipe_file(live, json.dumps({"kind": "ingest", "host": "h", "pid": 2, "expires": time.time() + 60}).encode())
    with pytest.raises(lcarchive.ArchiveBusyError, match="ingest on h pid 2"):
        lcarchive.Archive(url).collect_garbage(dt.timedelta(0))
    fs.rm_file(live)
    lcarchive.Archive(url).collect_garbage(dt.timedelta(0))
    fs.invalidate_cache()
    assert not fs.exists(lapsed)
    assert fs.find(f"{url.removeprefix('s3://')}/leases") == []  # the lapsed lease and gc's own are gone


def test_gc_keeps_what_is_younger_than_the_safety_bound(tmp_path):
    root = tmp_path / "young"
    archive = lcarchive.Archive(str(root))
    for path in K2[:3]:  # appends rewrite the shard: superseded objects pile up
        archive.ingest([str(path)])
    files = {p for p in root.rglob("*") if p.is_file()}
    stats = archive.collect_garbage(dt.timedelta(0))  # --older-than 0, within the default bound of a day
    assert stats["objects_deleted"] == 0 and stats["versions_expired"] == 0
    assert files <= {p for p in root.rglob("*") if p.is_file()}  # (pin tags were added)
    gc = subprocess.run(
        [lcarchive_command(), "gc", str(root), "--older-than", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "LCARCHIVE_GC_SAFETY_SECONDS": "0"},
    )
    assert gc.returncode == 0, gc.stderr
    assert len({p for p in root.rglob("*") if p.is_file()}) < len(files)
    after = lcarchive.open_archive(str(root))
    for path in K2[:3]:
        assert after.light_curve(_epic(path), observation=OBS, quality_bitmask="none")["flux"].size > 0


def test_gc_never_follows_a_symlink_out_of_the_archive(tmp_path):
    root = tmp_path / "linked"
    archive = lcarchive.Archive(str(root))
    for path in K2[:2]:
        archive.ingest([str(path)])
    family = root / "observations" / OBS
    outside = tmp_path / "elsewhere"
    shutil.move(family / "chunks", outside)
    (family / "chunks").symlink_to(outside, target_is_directory=True)
    (outside / "not-the-archives.txt").write_text("someone else's file")
    kept = sorted(p.name for p in outside.iterdir())
    gc = subprocess.run(
        [lcarchive_command(), "gc", str(root), "--older-than", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "LCARCHIVE_GC_SAFETY_SECONDS": "0"},
    )
    assert gc.returncode == 2 and gc.stderr.count("\n") == 1, gc.stderr
    assert "symbolic link" in gc.stderr and f"observations/{OBS}/chunks" in gc.stderr
    assert sorted(p.name for p in outside.iterdir()) == kept
