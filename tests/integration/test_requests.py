"""Request budgets of the read path, counted at a real S3 endpoint (moto's server), and the
dependent rounds a read waits on, counted at a proxy adding latency in front of it.

A cold point read opens the catalog's and the observation family's icechunk repositories at
once, the family at its branch tip beside the catalog read that gives its pin; then snapshots,
manifests, the pin beside the coordinates and shard indexes, then one range per variable: 6
rounds. A warm one is one round of concurrent ranges (docs/performance.md).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import xarray as xr

import lcarchive
from lcarchive.store import clear_caches

from conftest import DATA, REPO

sys.path.insert(0, str(REPO))
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import CountingMotoServer

CORE = ["time", "flux", "flux_err", "quality"]
FILES = sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits"))


@pytest.fixture(scope="module")
def counting_s3():
    server = CountingMotoServer(keep_log=True)
    server.start()
    saved = {k: os.environ.get(k) for k in server.environ()}
    os.environ.update(server.environ())
    try:
        server.create_bucket("budget")
        lcarchive.Archive("s3://budget/archive").ingest([str(p) for p in FILES])
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_point_read_request_budget(counting_s3):
    server = counting_s3
    clear_caches()  # the ingest opened the repositories in this process
    archive = lcarchive.open_archive("s3://budget/archive")
    server.reset_counts()
    lc = archive.light_curve(261136679, observation="tess-spoc-2min-s0001", variables=CORE, quality_bitmask="none")
    cold = server.counts()
    keys = [path for method, path, *_ in server.log()]
    # repositories (2 x 5), the pin (manifest + bucket), 6 manifests (target, cadenceno and the 4
    # variables), a coordinate chunk, 4 shard indexes, 4 chunks; the damage checks of the snapshots
    # (the family's bytes, fetched while icechunk opens it; the catalog's bytes and digest record,
    # fetched together: docs/format.md#digests): 3; no HEAD, no listing
    assert set(cold) == {"GET"} and cold["GET"] <= 31, cold
    assert sum("/lcarchive-digests/" in k for k in keys) == 1, keys
    family_manifests = [k for k in keys if "/observations/tess-spoc-2min-s0001/manifests/" in k]
    assert len(family_manifests) == 6, keys
    assert sum("/observations/tess-spoc-2min-s0001/chunks/" in k for k in keys) == 9, keys
    assert lc.sizes["cadence"] == 20076
    server.reset_counts()
    archive.light_curve(358108509, observation="tess-spoc-2min-s0001", variables=CORE, quality_bitmask="none")
    assert server.counts() == {"GET": 4}  # warm: one byte range per variable, sent together


def test_cross_observation_read_opens_only_groups_holding_the_target(counting_s3):
    server = counting_s3
    lcarchive.Archive("s3://budget/archive").ingest([str(DATA / "spoc-2min" / "target_s0002.fits")])
    clear_caches()
    archive = lcarchive.open_archive("s3://budget/archive")
    server.reset_counts()
    lc = archive.light_curve(261136679, variables=CORE, quality_bitmask="none")
    counts = server.counts()
    keys = [path for method, path, *_ in server.log()]
    # one bucket of the target index, then only sector 1's family: its pin and group (and the 3
    # GETs of the snapshots' damage checks)
    assert set(counts) == {"GET"} and counts["GET"] <= 33, counts
    assert not any("/observations/tess-spoc-2min-s0002/" in k for k in keys), keys
    server.reset_counts()
    archive.light_curve(358108509, variables=CORE, quality_bitmask="none")
    # warm: the target's index bucket (and the manifest of its 64 buckets, when another part of
    # the index was read so far), then one range per variable
    assert server.counts() == {"GET": 6}
    assert set(lc["cadence_observation"].values) == {"tess-spoc-2min-s0001"}


# -- dependent rounds, counted at a proxy adding latency (tools/bench/latency_proxy.py) ----------------

URL = "s3://budget/archive"
OBS = "tess-spoc-2min-s0001"
LATENCY = 0.2
"""Long enough that requests sent together (within a few ms, or tens on a loaded machine) are
never taken for two rounds, nor one answer's follow-up for the same round."""


@pytest.fixture(scope="module")
def slow(counting_s3):
    with LatencyProxy(counting_s3.endpoint, latency=LATENCY) as proxy:
        yield proxy


def counted(proxy: LatencyProxy, read):
    proxy.reset()
    result = read()
    return result, proxy.rounds()


def test_cold_point_read_waits_on_six_rounds_warm_on_one(slow):
    options = {"endpoint_url": slow.url}
    clear_caches()
    archive = lcarchive.open_archive(URL, options)
    lc, rounds = counted(slow, lambda: archive.light_curve(261136679, observation=OBS, variables=CORE, quality_bitmask="none"))
    # both repositories opened together; their info again and snapshots; manifests (and the
    # catalog's); the pin beside the coordinates and every shard index; the four chunks
    assert len(rounds) <= 6 and sum(map(len, rounds)) <= 30, rounds
    assert rounds[-1] and all("/observations/tess-spoc-2min-s0001/chunks/" in r for r in rounds[-1]), rounds
    assert lc.sizes["cadence"] == 20076
    _, warm = counted(slow, lambda: archive.light_curve(425933644, observation=OBS, variables=CORE, quality_bitmask="none"))
    assert [len(r) for r in warm] == [4], warm  # one range per variable, together
    # a second handle of the archive in this process: the branches, the pin, the chunks
    _, again = counted(
        slow,
        lambda: lcarchive.open_archive(URL, options).light_curve(
            358108509, observation=OBS, variables=CORE, quality_bitmask="none"
        ),
    )
    assert len(again) <= 3, again


def test_cold_xarray_point_read_loads_the_core_variables_together(slow):
    options = {"endpoint_url": slow.url}
    clear_caches()

    def read():
        with xr.open_dataset(URL, engine="lcarchive", group=OBS, storage_options=options) as ds:
            return ds.sel(target=261136679)[CORE].load()

    ds, rounds = counted(slow, read)
    assert len(rounds) <= 6, rounds  # not one round (or two) per variable, as xarray loads them in turn
    # the same dataset as xarray's zarr backend reads, attributes and encodings included
    with lcarchive.open_archive(URL).open_observation(OBS, chunks=None) as plain:
        xr.testing.assert_identical(ds, plain.sel(target=261136679)[CORE].load())
        for name in CORE:
            assert ds[name].encoding.get("_FillValue") is plain[name].encoding.get("_FillValue") or np.isnan(
                ds[name].encoding["_FillValue"]
            ), name
    lc = lcarchive.open_archive(URL).light_curve(261136679, observation=OBS, variables=CORE, quality_bitmask="none")
    has = np.isin(ds["cadenceno"].values, lc["cadenceno"].values)
    for name in CORE:
        np.testing.assert_array_equal(ds[name].values[has], lc[name].values)


def test_tagged_and_dated_versions_are_read_in_as_few_rounds(slow):
    options = {"endpoint_url": slow.url}
    before = lcarchive.open_archive(URL).history()[0]
    lcarchive.Archive(URL).tag("budget-dr1")
    for version, as_of in (("budget-dr1", None), (None, before["time"])):
        clear_caches()
        archive = lcarchive.open_archive(URL, options, version=version, as_of=as_of)
        _lc, rounds = counted(
            slow, lambda a=archive: a.light_curve(261136679, observation=OBS, variables=CORE, quality_bitmask="none")
        )
        assert len(rounds) <= 6, (version, as_of, rounds)
        assert archive.read_version() == before["snapshot"]
