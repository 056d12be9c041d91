"""Scale-out on Dask: an ingest parsed on a LocalCluster of 2 workers writes the archive a serial
ingest writes (every variable, attribute, catalog entry and index line)."""

from __future__ import annotations

import subprocess

import pytest

import lcarchive
from conftest import DATA, lcarchive_command

distributed = pytest.importorskip("dask.distributed")

FILES = [str(p) for d in ("spoc-2min", "spoc-2min-release0", "kepler", "qlp", "k2", "tess-spoc") for p in sorted((DATA / d).glob("*.fits"))[:3]]


def _same_archives(a: lcarchive.Archive, b: lcarchive.Archive) -> None:
    assert a.group_ids() == b.group_ids()
    assert [o.model_dump() for o in a.catalog.observations] == [o.model_dump() for o in b.catalog.observations]
    assert [d.model_dump() for d in a.catalog.datasets] == [d.model_dump() for d in b.catalog.datasets]
    assert a.target_index().equals(b.target_index())
    for obs in a.group_ids():
        with a.open_observation(obs) as x, b.open_observation(obs) as y:
            assert x.identical(y), obs


def test_a_dask_ingest_equals_the_serial_ingest(tmp_path):
    serial = lcarchive.Archive(str(tmp_path / "serial"))
    assert serial.ingest(FILES, jobs=1).ok
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        parallel = lcarchive.Archive(str(tmp_path / "dask"))
        report = parallel.ingest(FILES, client=client)
        assert report.ok and len(report.added) + len(report.superseded) > 0
        assert sum(client.run(lambda: 1).values()) == 2  # both workers were there
    _same_archives(lcarchive.open_archive(serial.url), lcarchive.open_archive(parallel.url))


def test_the_ingest_command_on_a_local_cluster(tmp_path):
    root = tmp_path / "cli"
    result = subprocess.run([lcarchive_command(), "ingest", str(root), *FILES[:8], "--workers", "2"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "files/s" in result.stdout
    serial = tmp_path / "serial"
    assert lcarchive.Archive(str(serial)).ingest(FILES[:8], jobs=1).ok
    _same_archives(lcarchive.open_archive(str(serial)), lcarchive.open_archive(str(root)))
