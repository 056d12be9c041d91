"""Request budgets of the read path, counted at a real S3 endpoint (moto's server).

Numbers of requests, not times: reading one target from an open archive costs one round of
concurrent requests once the shard indexes are cached. A cold read opens two icechunk
repositories (the catalog's and the observation family's: config, repository info, branch,
snapshot), reads the family's pin (one catalog bucket), one manifest per array read (icechunk
keeps one per array), the coordinates, then the shard indexes and chunks (docs/performance.md).
"""

from __future__ import annotations

import os
import sys

import pytest

import lcarchive
from conftest import DATA, REPO

sys.path.insert(0, str(REPO))
from tools.bench.moto_counter import CountingMotoServer  # noqa: E402

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
