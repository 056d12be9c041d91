"""``lcarchive compute``: BLS and Lomb-Scargle periodograms of every selected light curve, stored
with lineage, searchable, re-runs that write nothing, the same results on a Dask LocalCluster.

Known planets in the real light curves of ../shared: pi Men c (TIC 261136679, P = 6.2679 d,
Huang et al. 2018), WASP-126 b (TIC 25155310, P = 3.2888 d, Maxted et al. 2016), HAT-P-2 b
(TIC 39903405, P = 5.63341 d, Bakos et al. 2007; TESS sectors 24 and 25) and K2-3 b
(EPIC 201367065, P = 10.0545 d, Crossfield et al. 2015; K2SFF campaign 1)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import lcarchive
from lcarchive.compute import Parameters, compute

from conftest import DATA, lcarchive_command

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
        assert set(record) == {"target", "observations", "period", "power", "depth", "duration", "t0", "snr", "n_cadences"}
        assert record["observations"] == ["tess-spoc-2min-s0001"] and record["n_cadences"] > 10000
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
    assert entry.input_snapshots["tess-spoc-2min-s0001"] == archive.handle.snapshot_of("tess-spoc-2min-s0001")
    assert entry.archive_version in {h["snapshot"] for h in archive.history()}
    assert entry.software["astropy"] and entry.parameters["period_min"] == 0.5
    assert entry in archive.catalog.analyses
    # the same again: nothing written
    again = _compute(root, "--method", "bls", *targets, "--json")
    assert again.returncode == 0 and "nothing written" in again.stderr, again.stderr
    assert json.loads(again.stdout) == records
    assert len(lcarchive.open_archive(str(root)).history()) == before + 1


def test_results_are_searchable_and_lombscargle_runs(root):
    archive = lcarchive.Archive(str(root))
    report = compute(
        archive,
        lcarchive.Selection(observations=["tess-spoc-2min-s0001"]),
        Parameters("lombscargle", period_min=0.2, period_max=10),
    )
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
    result = subprocess.run(
        [lcarchive_command(), "search", str(root), "--where", "bls_period between 3 and 3.5", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and {r["target"] for r in json.loads(result.stdout)} == {25155310}
    with pytest.raises(lcarchive.SelectionError, match="blsperiod"):
        archive.search(where="blsperiod > 1")


HAT_P_2 = sorted((DATA / "spoc-2min").glob("tess2020*-s002[45]-0000000039903405-*.fits"))
K2_3 = DATA / "k2sff" / "hlsp_k2sff_k2_lightcurve_201367065-c01_kepler_v1_llc.fits"


@pytest.fixture(scope="module")
def stars(tmp_path_factory):
    root = tmp_path_factory.mktemp("stars") / "archive"
    assert len(HAT_P_2) == 2 and lcarchive.Archive(str(root)).ingest([str(p) for p in [*HAT_P_2, K2_3]]).ok
    return root


def test_a_star_across_sectors_is_one_stitched_periodogram_finding_its_planet(stars):
    result = _compute(stars, "--method", "bls", "--target", "TIC 39903405", "--period-min", "2", "--period-max", "8", "--json")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["observations"] == ["tess-spoc-2min-s0024", "tess-spoc-2min-s0025"]
    assert abs(record["period"] - 5.63341) < 0.002 and record["snr"] > 50 and 0.003 < record["depth"] < 0.007
    archive = lcarchive.open_archive(str(stars))
    sizes = [archive.catalog.observation(o).n_cadences for o in record["observations"]]
    assert sum(sizes) * 0.8 < record["n_cadences"] <= sum(sizes)  # both sectors' good cadences, together
    # the grid: printed before the run, stored with the results, the step set for the two sectors' baseline
    stored = archive.analysis("bls")
    entry, grid = stored.attrs["analysis"], stored.attrs["period_grid"]
    assert (
        f"period grid: {grid.size:,} periods from 2 to 8 d" in result.stderr and "flattened with a 0.72 d window" in result.stderr
    )
    assert "1 periodogram(s) of 2 light curve(s)" in result.stderr
    assert entry.parameters["n_periods"] == grid.size and entry.parameters["per"] == "target"
    assert grid[0] == pytest.approx(2) and grid[-1] == pytest.approx(8) and np.all(np.diff(grid) > 0)
    baseline = max(archive.catalog.observation(o).time_max for o in record["observations"]) - min(
        archive.catalog.observation(o).time_min for o in record["observations"]
    )
    assert np.diff(1 / grid[::-1]).mean() == pytest.approx(min(Parameters.durations) / baseline**2, rel=0.01)
    # stored per light curve: the star's result on each of its two, which a search finds by it
    assert list(stored["observation"]) == record["observations"] and list(stored["n_observations"]) == [2, 2]
    assert set(stored["period"]) == {record["period"]}
    assert set(archive.search(where="bls_period between 5.6 and 5.7")["observation"]) == set(record["observations"])
    # per observation: one periodogram per sector
    progress = []
    report = compute(
        lcarchive.Archive(str(stars)),
        lcarchive.Selection(targets=[39903405]),
        Parameters("bls", period_min=2, period_max=8, per="observation"),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert list(report.results["observations"]) == [["tess-spoc-2min-s0024"], ["tess-spoc-2min-s0025"]]
    assert np.all(np.abs(report.results["period"] - 5.63341) < 0.01)
    assert progress[0] == (0, 2) and progress[-1] == (2, 2)  # the true total from the start


def test_flattening_lifts_a_k2_planet_above_the_roll_systematics(stars):
    args = ("--method", "bls", "--target", "EPIC 201367065", "--period-min", "2", "--period-max", "12", "--json")
    flat = _compute(stars, *args)
    raw = _compute(stars, *args, "--no-flatten")
    assert flat.returncode == 0 and raw.returncode == 0, flat.stderr + raw.stderr
    [flat], [raw] = json.loads(flat.stdout), json.loads(raw.stdout)
    assert abs(flat["period"] - 10.0545) < 0.02 and flat["snr"] > 30
    assert raw["snr"] < flat["snr"] / 3  # the unflattened light curve's slow trends swamp the transit's depth error
    entries = {a.parameters["flatten_window"] for a in lcarchive.open_archive(str(stars)).analyses()}
    assert {0.72, "none"} <= entries


def test_a_dask_local_cluster_gives_the_serial_results(root, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    selection = lcarchive.Selection(observations=["tess-spoc-2min-s0001"])
    params = Parameters("lombscargle", period_min=0.3, period_max=12, samples_per_peak=5, keep_periodogram=True)
    serial = compute(lcarchive.Archive(str(root)), selection, params)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        parallel = compute(lcarchive.Archive(str(copy)), selection, params, client=client)
    assert parallel.analysis.id == serial.analysis.id and not parallel.unchanged
    # the same light curves and peaks; powers to 1e-10 (a worker's BLAS runs on one thread: sums in another order;
    # 4e-12 apart seen when the suite ran on two pytest workers)
    pd.testing.assert_frame_equal(parallel.results, serial.results, check_exact=False, rtol=1e-10, atol=0)
    assert parallel.results["period"].equals(serial.results["period"])
    stored = lcarchive.open_archive(str(copy)).analysis(parallel.analysis.id)
    assert stored.attrs["periodogram"].shape[0] == len(serial.results) == len(SECTOR1) + 1


def test_bad_parameters_are_one_line(root):
    for args, reason in [
        (["--method", "fourier"], "one of bls, lombscargle"),
        (["--method", "bls", "--period-min", "0.1"], "shorter than the shortest period"),
        (["--method", "bls", "--period-min", "5", "--period-max", "2"], "need 0 < min < max"),
        (["--method", "bls", "--target", "1"], "no light curve"),
        (["--method", "bls", "--per", "sector"], "one of target, observation"),
        (["--method", "bls", "--flatten-window", "0"], "must be positive"),
    ]:
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
    args = [
        lcarchive_command(),
        "download",
        str(root),
        str(dest),
        "--target",
        "261136679",
        "--target",
        "25155310",
        "--target",
        "358108509",
        "--columns",
        "bls_period,bls_snr,sap_flux",
        "--format",
        fmt,
    ]
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
    assert (
        any(p.suffix in (".parquet", ".fits", ".h5", ".csv", ".zarr") for p in (dest / "tess-spoc-2min-s0001").glob("*"))
        or (dest / "observations").exists()
    )
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
