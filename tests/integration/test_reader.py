"""The read path (lcarchive/store/reader.py and the archive's point reads): what a reader sees
while writers commit, and how it opens a group ahead of its pin."""

from __future__ import annotations

import sys
import threading

import numpy as np
import zarr

import lcarchive
from lcarchive.store import clear_caches

from conftest import DATA, REPO

sys.path.insert(0, str(REPO / "tools"))
import synth

OBS = "tess-spoc-2min-s0001"
CORE = ["time", "flux", "flux_err", "quality"]
TEMPLATE = DATA / "spoc-2min" / "target_s0001.fits"


def test_a_family_committed_ahead_of_its_pin_is_not_read(s3, tmp_path):
    """A group opened at its family's branch tip (beside the catalog read) is kept only if the
    tip is the pin: a family commit the catalog has not pinned yet (a writer between its two
    commits, or killed there) is never read."""
    url = f"{s3}/ahead"
    files = synth.make_observation(TEMPLATE, tmp_path / "synth", 2)
    assert lcarchive.Archive(url).ingest([str(f) for f in files]).ok
    target = int(lcarchive.open_archive(url).targets(OBS)[0])
    stored = lcarchive.open_archive(url).light_curve(target, observation=OBS, variables=CORE, quality_bitmask="none")

    def zero_flux(session):
        array = zarr.open_array(session.store, path=f"{OBS}/flux", mode="r+")
        array[0, :] = 0.0
        return True

    store = lcarchive.open_archive(url).handle.repositories
    store.change_family(OBS, zero_flux, "a commit no catalog version pins")
    assert store.family_head(OBS) != store.pin(OBS).snapshot
    for cold in (True, False):
        if cold:
            clear_caches()
        archive = lcarchive.open_archive(url)
        lc = archive.light_curve(target, observation=OBS, variables=CORE, quality_bitmask="none")
        np.testing.assert_array_equal(lc["flux"].values, stored["flux"].values)
        with archive.open_observation(OBS) as ds:
            np.testing.assert_array_equal(
                ds["flux"].sel(target=target).values[np.isin(ds["cadenceno"].values, lc["cadenceno"].values)],
                stored["flux"].values,
            )


def test_readers_of_the_latest_version_see_one_version_while_a_writer_commits(s3, tmp_path):
    """Readers resolving the latest version while ingests commit in a loop: every read is of
    one version, the one the reader reports (the same targets and values read again at it)."""
    url = f"{s3}/loop"
    files = synth.make_observation(TEMPLATE, tmp_path / "synth", 5)
    assert lcarchive.Archive(url).ingest([str(files[0])]).ok
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for f in files[1:]:
                assert lcarchive.Archive(url).ingest([str(f)]).ok
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    reads, versions = 0, set()
    while writer.is_alive() or reads < 2:
        archive = lcarchive.open_archive(url)
        targets = [int(t) for t in archive.targets(OBS)]
        newest = targets[-1]
        lc = archive.light_curve(newest, observation=OBS, variables=CORE, quality_bitmask="none")
        version = archive.read_version()
        assert np.isfinite(lc["flux"].values).any(), (version, newest)
        again = lcarchive.open_archive(url, version=version)
        assert [int(t) for t in again.targets(OBS)] == targets, version
        same = again.light_curve(newest, observation=OBS, variables=CORE, quality_bitmask="none")
        for name in CORE:
            np.testing.assert_array_equal(lc[name].values, same[name].values)
        reads += 1
        versions.add(version)
    writer.join()
    assert not failures, failures
    assert len(versions) >= 2, versions  # the reads did overlap the commits
    assert len(lcarchive.open_archive(url).targets(OBS)) == 5


def test_xarray_groups_read_through_the_point_reader_equal_zarrs_own(tmp_path):
    """A group opened by engine="lcarchive" reads a few targets' light-curve variables through
    the point reader (the core ones together): the same values, attributes and encodings as
    xarray's zarr backend reads, for every kind of selection, loaded at once or asynchronously."""
    import asyncio

    import xarray as xr

    files = sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits"))
    assert lcarchive.Archive(str(tmp_path / "a")).ingest([str(f) for f in files]).ok
    archive = lcarchive.open_archive(str(tmp_path / "a"))
    fast = archive.open_observation(OBS)
    plain = archive.open_observation(OBS, chunks=None)  # xarray's zarr backend, as before
    assert type(fast["flux"].variable._data) is not type(plain["flux"].variable._data)  # read another way
    for selection in ({"target": 358108509}, {"target": [261136679, 425933644]}, {"target": slice(None)}):
        for name in ("flux", "flux_err", "quality", "time", "sap_flux", "aperture", "tessmag"):
            xr.testing.assert_identical(fast[name].sel(selection).load(), plain[name].sel(selection).load())
    xr.testing.assert_identical(
        fast.isel(target=[0, 2], cadence=[5, 7, 100]).load(), plain.isel(target=[0, 2], cadence=[5, 7, 100]).load()
    )
    xr.testing.assert_identical(fast.isel(cadence=slice(10, 20)).load(), plain.isel(cadence=slice(10, 20)).load())

    async def load() -> xr.Dataset:
        return await fast.sel(target=261136679)[CORE].load_async()

    xr.testing.assert_identical(asyncio.run(load()), plain.sel(target=261136679)[CORE].load())
