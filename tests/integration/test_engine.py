"""Storage engine v2: atomic and concurrent ingests, versions, checksums, cost independent of the
archive's size, the xarray backend, garbage collection and the migration from format v1.

Ingests run as real ``lcarchive ingest`` processes, killed with SIGKILL or run four at a time,
against local disk and a moto S3 server.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from lcarchive.store import clear_caches

from conftest import DATA, REPO, lcarchive_command
from reference import assert_bit_equal

SPOC = DATA / "spoc-2min"
SECTOR = {1: SPOC / "target_s0001.fits", 2: SPOC / "target_s0002.fits", 3: SPOC / "target_s0003.fits"}
SECTOR1 = sorted(SPOC.glob("*s0001*.fits"))  # the real light curves of sector 1 (four targets)


def retargeted(src: Path, dest: Path, targets: list[int]) -> list[Path]:
    """Copies of a real light curve, each under another TIC ID (TICID, OBJECT): distinct light curves."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with fits.open(src) as hdul:
        for target in targets:
            hdul[0].header["TICID"] = target
            hdul[0].header["OBJECT"] = f"TIC {target}"
            path = dest / f"tic{target}_{src.name}"
            hdul.writeto(path, output_verify="silentfix")
            out.append(path)
    return out


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "LCARCHIVE_BATCH_FILES": "4", **(extra or {})}


def _where(kind: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if kind == "s3":
        return f"{request.getfixturevalue('s3')}/{name}"
    return str(tmp_path / name)


def _flux(archive: lcarchive.Archive, target: int) -> np.ndarray:
    return archive.light_curve(target, variables=["flux"], quality_bitmask="none")["flux"].values


def _consistent(archive: lcarchive.Archive) -> set[tuple[int, str]]:
    """Check that the catalog, the index and the groups of one version agree; return the index's keys."""
    index = archive.target_index()
    keys = set(zip(index["target"].tolist(), index["observation"].tolist(), strict=True))
    assert len(keys) == len(index)
    for obs in archive.observations:
        targets = archive.targets(obs.id)
        assert obs.n_targets == targets.size
        lines = index[index["observation"] == obs.id]
        assert sorted(lines["target"].tolist()) == sorted(targets.tolist()), obs.id
        assert all(targets[r] == t for t, r in zip(lines["target"], lines["row"], strict=True))
    assert {o for _, o in keys} == {o.id for o in archive.observations}
    return keys


# -- atomic: kill -9 at random moments ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "trials"), [("local", 4), ("s3", 2)])
def test_kill_9_at_random_moments_leaves_the_previous_version_and_a_rerun_completes(kind, trials, tmp_path, request):
    url = _where(kind, tmp_path, request, "killed")
    first = lcarchive.Archive(url)
    assert first.ingest([str(p) for p in SECTOR1]).ok
    before = lcarchive.open_archive(url)
    stored = {t: _flux(before, t) for t in before.targets("tess-spoc-2min-s0001")}
    files = [str(p) for p in retargeted(SECTOR[2], tmp_path / "in", list(range(7000, 7016)))]
    files += [str(p) for p in retargeted(SECTOR[1], tmp_path / "in1", list(range(7100, 7108)))]
    clean_root = str(tmp_path / "clean")
    started = time.perf_counter()
    subprocess.run(
        [lcarchive_command(), "ingest", clean_root, *[str(p) for p in SECTOR1], *files],
        env=_env(),
        check=True,
        capture_output=True,
    )
    span = time.perf_counter() - started
    rng = random.Random(20261201)
    versions = []
    for _ in range(trials):
        proc = subprocess.Popen(
            [lcarchive_command(), "ingest", url, *files], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.2, 0.9) * span)
        proc.kill()
        proc.wait()
        archive = lcarchive.open_archive(url)
        keys = _consistent(archive)  # whatever version it is at, it is whole
        for target, flux in stored.items():  # nothing stored before is lost
            assert_bit_equal(_flux(archive, target), flux, f"{target} after kill")
        assert {(t, "tess-spoc-2min-s0001") for t in stored} <= keys
        versions.append(archive.history(limit=1)[0]["snapshot"])
    done = subprocess.run([lcarchive_command(), "ingest", url, *files], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    archive, clean = lcarchive.open_archive(url), lcarchive.open_archive(clean_root)
    assert _consistent(archive) == _consistent(clean)
    for target in (7000, 7015, 7100, 7107, *stored):
        assert_bit_equal(_flux(archive, target), _flux(clean, target), f"{target} re-run vs clean")
    for obs in clean.observations:
        assert archive.catalog.observation(obs.id).model_dump(exclude={"group"}) == obs.model_dump(exclude={"group"})


# -- concurrent writers ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_four_concurrent_ingests_two_into_one_observation_lose_nothing(kind, tmp_path, request):
    url = _where(kind, tmp_path, request, "concurrent")
    sets = {
        "a1": (retargeted(SECTOR[1], tmp_path / "a1", list(range(1000, 1010))), "tess-spoc-2min-s0001"),
        "a2": (retargeted(SECTOR[1], tmp_path / "a2", list(range(2000, 2010))), "tess-spoc-2min-s0001"),
        "b": (retargeted(SECTOR[2], tmp_path / "b", list(range(3000, 3010))), "tess-spoc-2min-s0002"),
        "c": (retargeted(SECTOR[3], tmp_path / "c", list(range(4000, 4010))), "tess-spoc-2min-s0003"),
    }
    procs = {
        k: subprocess.Popen(
            [lcarchive_command(), "ingest", url, *map(str, files)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k, (files, _) in sets.items()
    }
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, (key, stderr)
        assert "ingested 10 light curve(s)" in stdout, (key, stdout)
    archive = lcarchive.open_archive(url)
    keys = _consistent(archive)
    expected = {(int(f.name[3:7]), obs) for files, obs in sets.values() for f in files}
    assert keys == expected  # every target in the groups, the catalog and the index
    assert archive.catalog.observation("tess-spoc-2min-s0001").n_targets == 20
    assert_bit_equal(_flux(archive, 2009), _flux(archive, 1000), "the same light curve under two IDs")
    history = archive.history()
    assert sum(v["message"].startswith("ingest") for v in history) == 4 * 3  # one version per batch of 4 files


def test_writers_creating_one_repository_at_once_all_open_it(tmp_path):
    # icechunk tells the losers of a creation race "prefix not clean" or REPO_INFO_UPDATED
    code = (
        "import sys, time; from lcarchive.store.repos import open_repository, storage_for; "
        "s = storage_for(sys.argv[1], 'observations/x', {}); time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "r = open_repository(s, create=True); print(r.lookup_branch('main'))"
    )
    for trial in range(3):
        root = str(tmp_path / f"r{trial}")
        start = str(time.time() + 3)  # all four call create at the same moment, after their imports
        procs = [
            subprocess.Popen([sys.executable, "-c", code, root, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-300:] for _, err in results]
        assert len({out.strip() for out, _ in results}) == 1  # one repository, the same first snapshot


# -- cost independent of the archive's size ------------------------------------------------------


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _written(root: Path, before: dict[str, int]) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and before.get(str(p)) != p.stat().st_mtime_ns)


def test_one_small_ingest_writes_as_much_into_an_archive_of_many_observations_as_into_one(full_archive, copy_of, tmp_path):
    one = tmp_path / "one"
    assert lcarchive.Archive(str(one)).ingest([str(p) for p in SECTOR1]).ok
    many = Path(copy_of(full_archive))
    assert len(lcarchive.open_archive(str(many)).observations) >= 10
    new = retargeted(SECTOR[1], tmp_path / "new", [9000])
    costs = {}
    for name, root in (("one", one), ("many", many)):
        before = _files(root)
        report = lcarchive.Archive(str(root)).ingest([str(p) for p in new])
        assert [a[2] for a in report.added] == [9000]
        costs[name] = _written(root, before)
    assert costs["many"] <= 1.25 * costs["one"] + 4096, costs


# -- integrity -------------------------------------------------------------------------------------


def test_a_flipped_byte_in_any_stored_object_is_an_error_never_wrong_numbers(tmp_path):
    root = tmp_path / "a"
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in SECTOR1]).ok
    archive = lcarchive.open_archive(str(root))
    targets = archive.targets("tess-spoc-2min-s0001").tolist()
    truth = {t: archive.light_curve(t, quality_bitmask="none") for t in targets}  # every variable
    frames_truth = archive.frames("tess-spoc-2min-s0001")
    objects = sorted((root / "observations" / "tess-spoc-2min-s0001" / "chunks").iterdir())
    assert len(objects) >= 10
    rng = random.Random(7)
    reported = 0
    for path in rng.sample(objects, 10):
        data = bytearray(path.read_bytes())
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        original = path.read_bytes()
        path.write_bytes(bytes(data))
        try:
            clear_caches()  # a reader that has read nothing yet (this process kept the coordinates and shard indexes it read)
            fresh = lcarchive.open_archive(str(root))
            errors = 0
            for t in targets:
                try:
                    lc = fresh.light_curve(t, quality_bitmask="none")
                except lcarchive.DamagedObjectError as exc:
                    assert str(root / "observations" / "tess-spoc-2min-s0001") in str(exc) and "CRC32C" in str(exc)
                    errors += 1
                    continue
                assert set(lc.data_vars) == set(truth[t].data_vars)
                for name in lc.data_vars:  # whatever reads without an error reads right
                    np.testing.assert_array_equal(lc[name].values, truth[t][name].values)
            try:  # the observation's frame table: its own objects (docs/format.md#frame-table)
                frames = fresh.frames("tess-spoc-2min-s0001")
            except lcarchive.DamagedObjectError as exc:
                assert "CRC32C" in str(exc) and "tess-spoc-2min-s0001/frames" in str(exc), exc
                frame_error = True
            else:
                frame_error = False
                xr.testing.assert_identical(frames, frames_truth)
            reported += errors > 0 or frame_error
            result = subprocess.run(
                [lcarchive_command(), "export", str(root), str(tmp_path / f"out{at}")], capture_output=True, text=True
            )
            assert result.returncode == (2 if errors else 0), result.stderr
            if errors:
                assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        finally:
            path.write_bytes(original)
    assert reported == 10  # every damaged object was reported by a read of some target or of the frame table


# -- versions ----------------------------------------------------------------------------------------


def test_history_tags_versions_and_as_of(tmp_path):
    root = str(tmp_path / "a")
    archive = lcarchive.Archive(root)
    first = archive.ingest([str(SECTOR1[0]), str(SECTOR1[1])])
    cli = lcarchive_command()
    subprocess.run([cli, "tag", root, "dr1"], check=True, capture_output=True)
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    second = archive.ingest([str(p) for p in SECTOR1[2:]] + [str(SECTOR[2])])
    history = lcarchive.open_archive(root).history()
    assert history[0]["snapshot"] == second.versions[-1] and history[1]["snapshot"] == first.versions[-1]
    assert SECTOR[2].name in history[0]["message"] and history[1]["tags"] == ["dr1"]
    assert {i["name"] for i in history[0]["metadata"]["inputs"]} == {p.name for p in [*SECTOR1[2:], SECTOR[2]]}
    for old in (
        lcarchive.open_archive(root, version="dr1"),
        lcarchive.open_archive(root, as_of=between),
        lcarchive.open_archive(root, version=first.versions[-1]),
    ):
        assert [o.id for o in old.observations] == ["tess-spoc-2min-s0001"]
        assert len(old.targets("tess-spoc-2min-s0001")) == 2
        assert set(old.target_index()["target"]) == set(old.targets("tess-spoc-2min-s0001").tolist())
    latest = lcarchive.open_archive(root)
    assert len(latest.targets("tess-spoc-2min-s0001")) == len(SECTOR1)
    listed = subprocess.run([cli, "ls", root, "--version", "dr1", "--json"], capture_output=True, text=True, check=True)
    assert '"n_targets": 2' in listed.stdout
    shown = subprocess.run([cli, "history", root], capture_output=True, text=True, check=True).stdout
    assert "dr1" in shown and SECTOR[2].name in shown
    bad = subprocess.run([cli, "ls", root, "--version", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no version nope" in bad.stderr
    with pytest.raises(lcarchive.LcarchiveError, match="exists already"):
        latest.tag("dr1")


def test_gc_deletes_what_no_kept_version_reaches_and_keeps_tags(tmp_path):
    root = tmp_path / "a"
    archive = lcarchive.Archive(str(root))
    archive.ingest([str(SECTOR1[0])])
    archive.tag("dr1")
    tagged = _flux(lcarchive.open_archive(str(root), version="dr1"), int(fits.getheader(SECTOR1[0])["TICID"]))
    for path in SECTOR1[1:]:  # appends rewrite the partly filled shard: old objects pile up
        archive.ingest([str(path)])
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    result = subprocess.run(
        [lcarchive_command(), "gc", str(root), "--older-than", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "LCARCHIVE_GC_SAFETY_SECONDS": "0"},
    )  # (the bound: test_leases.py)
    assert result.returncode == 0, result.stderr
    after = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert after < size
    latest = lcarchive.open_archive(str(root))
    _consistent(latest)
    assert len(latest.targets("tess-spoc-2min-s0001")) == len(SECTOR1)
    kept = lcarchive.open_archive(str(root), version="dr1")
    assert_bit_equal(_flux(kept, int(fits.getheader(SECTOR1[0])["TICID"])), tagged, "the tagged version after gc")
    assert len(latest.history()) < 8


# -- readable without lcarchive's internals -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_xarray_backend_opens_a_group_and_a_target(kind, tmp_path, request):
    url = _where(kind, tmp_path, request, "backend")
    archive = lcarchive.Archive(url)
    assert archive.ingest([str(p) for p in SECTOR1] + [str(SECTOR[2])]).ok
    archive = lcarchive.open_archive(url)
    with xr.open_dataset(url, engine="lcarchive", group="tess-spoc-2min-s0001") as ds:
        assert ds.identical(archive.open_observation("tess-spoc-2min-s0001"))
        for path in SECTOR1:
            with fits.open(path) as hdul:
                row = ds.sel(target=int(hdul[0].header["TICID"]))
                assert_bit_equal(row["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), path.name)
    star = int(fits.getheader(SECTOR[2])["TICID"])
    lc = xr.open_dataset(url, engine="lcarchive", target=star)
    assert lc.identical(archive.light_curve(star, quality_bitmask="none"))
    assert sorted(set(lc["cadence_observation"].values.tolist())) == ["tess-spoc-2min-s0001", "tess-spoc-2min-s0002"]
    with pytest.raises(ValueError, match="opens a group"):
        xr.open_dataset(url, engine="lcarchive")


# -- migrate from store format v1 --------------------------------------------------------------------------

V1_COMMIT = "7fc6645"
"""The last main of store format v1 (one catalog.json, plain Zarr groups)."""


@pytest.fixture(scope="module")
def v1_archive(tmp_path_factory):
    """An archive written by lcarchive at store format v1, from that commit's own code."""
    work = tmp_path_factory.mktemp("v1")
    tree = work / "code"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", V1_COMMIT, "lcarchive", "catalog"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    root = work / "archive"
    files = [
        str(p)
        for p in [
            *SPOC.glob("*.fits"),
            *(DATA / "spoc-2min-release0").glob("*.fits"),
            *sorted((DATA / "kepler").glob("*.fits"))[:3],
            *sorted((DATA / "qlp").glob("*.fits"))[:3],
        ]
    ]
    code = f"import lcarchive, sys; r = lcarchive.Archive({str(root)!r}).ingest({files!r}, jobs=1); sys.exit(bool(r.skipped))"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(tree)}, check=True, cwd=str(tree))
    assert (root / "catalog.json").is_file()
    return root


def test_migrate_converts_a_v1_archive_bit_exact(v1_archive, tmp_path):
    old = lcarchive.open_archive(str(v1_archive))
    assert old.read_only
    with pytest.raises(lcarchive.LcarchiveError, match="lcarchive migrate"):
        old.ingest([str(SECTOR[3])])
    new = str(tmp_path / "v2")
    result = subprocess.run([lcarchive_command(), "migrate", str(v1_archive), new], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    migrated = lcarchive.open_archive(new)
    assert not migrated.read_only
    assert [o.id for o in migrated.observations] == [o.id for o in old.observations]
    for obs in old.observations:
        assert migrated.catalog.observation(obs.id).model_dump(exclude={"group"}) == obs.model_dump(exclude={"group"})
        with old.open_observation(obs.id) as a, xr.open_dataset(new, engine="lcarchive", group=obs.id) as b:
            assert set(a.variables) == set(b.variables)
            for name in a.variables:
                np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{obs.id} {name}")
                assert a[name].attrs.keys() == b[name].attrs.keys()
                for key, value in a[name].attrs.items():  # flag_masks is an array
                    np.testing.assert_array_equal(value, b[name].attrs[key], err_msg=f"{obs.id} {name} {key}")
            assert {k: v for k, v in a.attrs.items() if k != "lcarchive_format_version"} == {
                k: v for k, v in b.attrs.items() if not k.startswith("lcarchive_")
            }
    # the v1 index's columns as they were; the columns added since (magnitude, camera, ccd) come from the groups
    added = ["magnitude", "camera", "ccd"]
    assert old.target_index().drop(columns=added).equals(migrated.target_index().drop(columns=added))
    assert (old.target_index()[added[1:]] == -1).all().all() and old.target_index()["magnitude"].isna().all()
    index = migrated.target_index()
    assert index["magnitude"].notna().all() and (index[index["mission"] == "tess"]["camera"] >= 1).all()
    again = subprocess.run([lcarchive_command(), "migrate", str(v1_archive), new], capture_output=True, text=True)
    assert again.returncode == 0 and "already there" in again.stdout
    assert len(lcarchive.open_archive(new).history()) == len(migrated.history())
    # and the migrated archive takes new ingests
    assert lcarchive.Archive(new).ingest([str(SECTOR[3])]).ok


def test_a_v1_folder_without_its_target_index_has_it_rebuilt_from_the_groups(v1_archive, tmp_path):
    """Folders written before ``index/targets.parquet`` existed: the index is built from the groups
    (it raised ModuleNotFoundError: the import named a module that never existed)."""
    copy = tmp_path / "v1"
    shutil.copytree(v1_archive, copy)
    (copy / "index" / "targets.parquet").unlink()
    rebuilt = lcarchive.open_archive(str(copy)).target_index()
    stored = lcarchive.open_archive(str(v1_archive)).target_index()
    columns = ["target", "observation"]
    assert len(rebuilt) == len(stored) > 0
    assert (
        rebuilt[columns]
        .sort_values(columns)
        .reset_index(drop=True)
        .equals(stored[columns].sort_values(columns).reset_index(drop=True))
    )
    star = int(stored["target"].iloc[0])
    assert lcarchive.open_archive(str(copy)).light_curve(star, observation=stored["observation"].iloc[0])["flux"].size > 0


def test_the_environment_sets_a_setting_for_a_process(tmp_path):
    code = "import lcarchive.config as c; print(c.settings().batch_files)"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "LCARCHIVE_BATCH_FILES": "7"}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "7"
    bad = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "LCARCHIVE_BATCH_FILES": "x"}, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "LCARCHIVE_BATCH_FILES='x' is no integer" in bad.stderr
