"""``lcarchive compute``: BLS and Lomb-Scargle periodograms of every selected light curve, stored
with lineage, searchable, re-runs that write nothing, the same results on a Dask LocalCluster.

Known planets in the real light curves of ../shared: pi Men c (TIC 261136679, P = 6.2679 d,
Huang et al. 2018) and WASP-126 b (TIC 25155310, P = 3.2888 d, Maxted et al. 2016)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import lcarchive
from conftest import DATA, lcarchive_command
from lcarchive.compute import Parameters, compute

PLANETS = {261136679: 6.2679, 25155310: 3.2888}
SECTOR1 = sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits"))
WASP126 = DATA / "spoc-2min" / "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("compute") / "archive"
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in [*SECTOR1, WASP126]]).ok
    return root


def _compute(root, *args):
    return subprocess.run([lcarchive_command(), "compute", str(root), *args], capture_output=True, text=True, timeout=600)


def test_bls_finds_known_planets_and_stores_them_with_lineage(root):
    targets = [a for t in PLANETS for a in ("--target", str(t))]
    before = len(lcarchive.open_archive(str(root)).history())
    result = _compute(root, "--method", "bls", *targets, "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert {r["target"] for r in records} == set(PLANETS)
    for record in records:
        assert set(record) == {"target", "observation", "period", "power", "depth", "duration", "t0", "snr"}
        assert abs(record["period"] - PLANETS[record["target"]]) / PLANETS[record["target"]] < 0.005
        assert 0 < record["depth"] < 0.02 and 0 < record["duration"] < 0.3 and record["snr"] > 10
        assert 1325 < record["t0"] < 1354  # BTJD, in sector 1
    archive = lcarchive.open_archive(str(root))
    assert len(archive.history()) == before + 1
    stored = archive.analysis("bls")
    assert sorted(stored["target"]) == sorted(PLANETS)
    entry = stored.attrs["analysis"]
    assert entry.method == "bls" and entry.quality_bitmask == "default" and entry.normalized
    assert entry.inputs == ["tess-spoc-2min-s0001/flux"]
    assert entry.input_snapshots["tess-spoc-2min-s0001"] == archive.snapshot_of("tess-spoc-2min-s0001")
    assert entry.archive_version in {h["snapshot"] for h in archive.history()}
    assert entry.software["astropy"] and entry.parameters["period_min"] == 0.5
    assert entry in archive.catalog.analyses
    # the same again: nothing written
    again = _compute(root, "--method", "bls", *targets, "--json")
    assert again.returncode == 0 and "nothing written" in again.stderr
    assert json.loads(again.stdout) == records
    assert len(lcarchive.open_archive(str(root)).history()) == before + 1


def test_results_are_searchable_and_lombscargle_runs(root):
    archive = lcarchive.Archive(str(root))
    report = compute(archive, lcarchive.Selection(observations=["tess-spoc-2min-s0001"]),
                     Parameters("lombscargle", period_min=0.2, period_max=10))
    n_targets = archive.catalog.observation("tess-spoc-2min-s0001").n_targets
    assert not report.unchanged and len(report.results) == n_targets == len(SECTOR1) + 1
    assert np.all((report.results["period"] >= 0.2) & (report.results["period"] <= 10))
    assert np.all((report.results["power"] > 0) & (report.results["power"] <= 1))
    archive = lcarchive.open_archive(str(root))
    if not any(a.method == "bls" for a in archive.analyses()):
        compute(lcarchive.Archive(str(root)), lcarchive.Selection(targets=list(PLANETS)), Parameters("bls"))
        archive = lcarchive.open_archive(str(root))
    found = archive.search(mission="tess", where="bls_period between 6 and 7")
    assert set(found["target"]) == {261136679} and "bls_snr" in found and "lombscargle_period" in found
    everything = archive.search(mission="tess", where="lombscargle_power > 0")
    assert len(everything) == n_targets
    result = subprocess.run([lcarchive_command(), "search", str(root), "--where", "bls_period between 3 and 3.5", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and {r["target"] for r in json.loads(result.stdout)} == {25155310}
    with pytest.raises(lcarchive.SelectionError, match="blsperiod"):
        archive.search(where="blsperiod > 1")


def test_a_dask_local_cluster_gives_the_serial_results(root, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    selection = lcarchive.Selection(observations=["tess-spoc-2min-s0001"])
    params = Parameters("lombscargle", period_min=0.3, period_max=12, samples_per_peak=5, keep_periodogram=True)
    serial = compute(lcarchive.Archive(str(root)), selection, params)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        parallel = compute(lcarchive.Archive(str(copy)), selection, params, client=client)
    assert parallel.analysis.id == serial.analysis.id and not parallel.unchanged
    # the same light curves and peaks; powers to 1e-10 (a worker's BLAS runs on one thread: sums in another order;
    # 4e-12 apart seen when the suite ran on two pytest workers)
    pd.testing.assert_frame_equal(parallel.results, serial.results, check_exact=False, rtol=1e-10, atol=0)
    assert parallel.results["period"].equals(serial.results["period"])
    stored = lcarchive.open_archive(str(copy)).analysis(parallel.analysis.id)
    assert stored.attrs["periodogram"].shape[0] == len(serial.results) == len(SECTOR1) + 1


def test_bad_parameters_are_one_line(root):
    for args, reason in [(["--method", "fourier"], "one of bls, lombscargle"),
                         (["--method", "bls", "--period-min", "0.1"], "shorter than the shortest period"),
                         (["--method", "bls", "--period-min", "5", "--period-max", "2"], "need 0 < min < max"),
                         (["--method", "bls", "--target", "1"], "no light curve")]:
        result = _compute(root, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("fmt", ["parquet", "fits", "hdf5", "csv", "zarr"])
def test_results_download_like_other_columns(root, tmp_path, fmt):
    from astropy.table import Table

    archive = lcarchive.open_archive(str(root))
    if not any(a.method == "bls" for a in archive.analyses()):
        compute(lcarchive.Archive(str(root)), lcarchive.Selection(targets=list(PLANETS)), Parameters("bls"))
        archive = lcarchive.open_archive(str(root))
    stored = archive.analysis("bls").set_index("target")
    dest = tmp_path / fmt
    args = [lcarchive_command(), "download", str(root), str(dest), "--target", "261136679", "--target", "25155310",
            "--target", "358108509", "--columns", "bls_period,bls_snr,sap_flux", "--format", fmt]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ext = {"hdf5": "h5", "zarr": "parquet"}.get(fmt, fmt)
    path = dest / "analyses" / f"bls.{ext}"
    if fmt in ("parquet", "zarr"):
        table = pd.read_parquet(path)
        import pyarrow.parquet as pq
        lineage = json.loads(pq.read_schema(path).metadata[b"lcarchive_analysis"])
        assert lineage["id"] == stored.attrs["analysis"].id and lineage["inputs"] == ["tess-spoc-2min-s0001/flux"]
    elif fmt == "csv":
        table = pd.read_csv(path)
    else:
        read = Table.read(path, **({"path": "bls"} if fmt == "hdf5" else {}))
        assert str(read["period"].unit) == "d"
        if fmt == "hdf5":
            assert json.loads(read.meta["lcarchive_analysis"])["method"] == "bls"
        table = read.to_pandas()
    # the analysed light curves of the selection (the third target was not analysed), the columns asked for
    assert sorted(table["target"]) == sorted(PLANETS) and list(table.columns) == ["target", "observation", "period", "snr"]
    for _, line in table.iterrows():
        assert line["period"] == stored.loc[line["target"], "period"] and line["snr"] == stored.loc[line["target"], "snr"]
    # the light curves themselves came too, and a second run skips everything
    assert any(p.suffix in (".parquet", ".fits", ".h5", ".csv", ".zarr") for p in (dest / "tess-spoc-2min-s0001").glob("*")) \
        or (dest / "observations").exists()
    if fmt != "parquet":  # resuming and verifying do not depend on the format: checked once
        return
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 output(s) written" in again.stdout, again.stdout
    check = subprocess.run([lcarchive_command(), "download", "--verify", str(dest)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte
    path.write_bytes(bytes(data))
    check = subprocess.run([lcarchive_command(), "download", "--verify", str(dest)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and f"bls.{ext}" in check.stdout + check.stderr
