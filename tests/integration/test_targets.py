"""Targets in any catalog, end to end: light curves named by a Gaia source ID or a solar-system
designation go in with no options, are read back by that name, export byte for byte and ingest
again unchanged; an archive of TIC/KIC/EPIC targets only is stored as before other catalogs.

Real files: the K2 Moving Bodies light curve of asteroid (11251) in campaign 6
(tests/data/public/k2movingbodies, from christinahedges/asteriks), whose last 127 rows hold
TIME = 0; a TGLC file of a Gaia star with no TIC match is made from the real sector-7 TGLC file
(``makers.tglc_without_tic``: its TICID blanked, as TGLC writes such stars). The TESS comet products
of 3I/ATLAS (``hlsp_tess-3i_..._lc.fits``) are in no stored repository: a generic file named
'3I/ATLAS' is made from a real star's lightkurve output (``makers.designated_generic_file``) to test
how a file of no known product named by a designation is read; it is no comet's data.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from lcarchive.identifiers import designation_key

import makers
from conftest import DATA, PUBLIC, lcarchive_command

ASTEROID = PUBLIC / "k2movingbodies" / "hlsp_k2movingbodies_k2_lightcurve_11251_c06_v1.fits"
TGLC = makers.TGLC
GAIA = 5707485527450614656
TIC = 218795833


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def objects(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return makers.tglc_without_tic(tmp_path_factory.mktemp("made"))


@pytest.fixture(scope="module")
def designated(tmp_path_factory) -> Path:
    return makers.designated_generic_file(tmp_path_factory.mktemp("designated"))


@pytest.fixture(scope="module")
def batch(made, designated) -> list[Path]:
    return [ASTEROID, TGLC, made, designated]


@pytest.fixture(scope="module")
def archive(batch, tmp_path_factory) -> tuple[Path, lcarchive.IngestReport]:
    root = tmp_path_factory.mktemp("targets") / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in batch])
    return root, report


def test_every_file_goes_in_with_no_options(archive, batch):
    _, report = archive
    assert not report.skipped, report.skipped
    added = {Path(source).name if "no-tic" not in source else "no-tic": (obs, key) for source, obs, key in report.added}
    assert added[ASTEROID.name] == ("k2-k2movingbodies-c06", designation_key("MPC", "(11251)"))
    assert added[TGLC.name] == ("tess-tglc-s0007", TIC)
    assert added["no-tic"] == ("tess-tglc-s0007", GAIA)  # one observation holding a TIC and a Gaia DR3 target
    assert added["lk-to_fits-tess-slice-designated.fits"] == ("tess-generic-s0001", designation_key("MPC", "3I"))


@pytest.mark.parametrize("name", ["3I/ATLAS", "MPC 3I", "3I"])
def test_a_generic_file_named_by_a_designation_is_read_back_by_it(archive, designated, name):
    lc = lcarchive.open_archive(str(archive[0])).light_curve(name, quality_bitmask="none")
    assert str(lc["target_designation"].values[0]) == "3I" and lc.sizes["cadence"] == 200
    with fits.open(designated) as hdul:
        np.testing.assert_array_equal(lc["flux"].values, np.asarray(hdul[1].data["FLUX"]))


@pytest.mark.parametrize("name", ["(11251)", "MPC 11251", "(11251) Icarion", "mpc (11251)"])
def test_the_asteroid_is_read_back_by_its_designation(archive, name):
    lc = lcarchive.open_archive(str(archive[0])).light_curve(name, quality_bitmask="none")
    assert lc.sizes["cadence"] == 699  # every row of the file, the 127 untimed ones too
    assert str(lc["target_catalog"].values[0]) == "MPC" and str(lc["target_designation"].values[0]) == "(11251)"
    with fits.open(ASTEROID) as hdul:
        table = hdul["BESTAPER"].data
        source_time, flux = np.asarray(table["TIME"]), np.asarray(table["FLUX"])
    untimed = source_time == 0
    assert int(untimed.sum()) == 127
    np.testing.assert_array_equal(lc["time_column"].values, source_time)  # the column as the file gives it
    np.testing.assert_array_equal(lc["flux"].values, flux)
    np.testing.assert_array_equal(np.isnan(lc["time"].values), untimed)  # no time stamp on those rows
    np.testing.assert_array_equal(lc["time"].values[~untimed], source_time[~untimed] - 2454833.0)
    assert np.all(np.diff(lc["cadenceno"].values) > 0)  # one cadence per row, in the file's order


def test_the_untimed_rows_are_flagged_in_the_notes(archive):
    with xr.open_dataset(str(archive[0]), group="k2-k2movingbodies-c06", engine="lcarchive") as ds:
        notes = json.loads(str(ds["ingest_notes"].values[0]))
    assert notes["time_fill"].startswith("127 row(s) hold TIME = 0.0")
    assert "campaign 6 from the file name" in notes["segment"]


def test_the_gaia_star_is_read_back_by_its_gaia_id_and_the_tic_star_by_its_tic_id(archive):
    store = lcarchive.open_archive(str(archive[0]))
    gaia = store.light_curve(f"Gaia DR3 {GAIA}", quality_bitmask="none")
    tic = store.light_curve(f"TIC {TIC}", quality_bitmask="none")
    assert str(gaia["target_catalog"].values[0]) == "Gaia DR3" and int(gaia.attrs["target"]) == GAIA
    assert int(tic.attrs["target"]) == TIC
    with fits.open(TGLC) as hdul:
        flux = np.asarray(hdul[1].data["cal_psf_flux"])
    np.testing.assert_array_equal(gaia["flux"].values, flux)
    with pytest.raises(lcarchive.TargetNotFoundError):
        store.light_curve(f"Gaia DR2 {GAIA}")  # the same number in another catalog is no target here
    with pytest.raises(lcarchive.TargetNotFoundError):
        store.light_curve(f"TIC {GAIA % 10**10}")
    lines = store.target_index([GAIA, TIC])
    assert sorted(zip(lines["target"], lines["target_catalog"], strict=True)) == [(TIC, ""), (GAIA, "Gaia DR3")]


def test_a_cdips_star_with_no_tic_goes_in_under_its_gaia_dr2_id(tmp_path):
    """CDIPS writes TICID = 'nan' for a Gaia DR2 star with no TIC match; its Gaia-ID card names it
    (a real CDIPS file with its TICID so set: ``makers.cdips_without_tic``)."""
    path = makers.cdips_without_tic(tmp_path)
    root = tmp_path / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(path)])
    assert len(report.added) == 1 and not report.skipped, report
    store = lcarchive.open_archive(str(root))
    lc = store.light_curve("Gaia DR2 3007171311355035136", quality_bitmask="none")
    assert str(lc["target_catalog"].values[0]) == "Gaia DR2" and int(lc.attrs["target"]) == 3007171311355035136
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(lc["time"].values, np.asarray(hdul[1].data["TMID_BJD"]) - 2457000.0)
        assert [t.rstrip() for t in hdul[1].data["RSTFC"]] == [str(t) for t in lc["rstfc"].values]
    out = tmp_path / "out"
    assert lcarchive.download(store, out, lcarchive.Selection(), format="fits").ok
    assert [sha(p) for p in out.rglob("*.fits")] == [sha(path)]


def test_every_file_exports_byte_for_byte(archive, batch, tmp_path):
    store = lcarchive.open_archive(str(archive[0]))
    report = lcarchive.download(store, tmp_path, lcarchive.Selection(), format="fits")
    assert report.ok, report
    exported = {sha(p) for p in tmp_path.rglob("*.fits")}
    assert {sha(p) for p in batch} <= exported


@pytest.mark.parametrize(("name", "path"), [("(11251)", ASTEROID), (f"Gaia DR3 {GAIA}", None)])
def test_a_selection_by_designation_or_gaia_id_exports_that_file(archive, made, tmp_path, name, path):
    store = lcarchive.open_archive(str(archive[0]))
    report = lcarchive.download(store, tmp_path, lcarchive.Selection(targets=[name]), format="fits")
    assert report.ok, report
    assert [sha(p) for p in tmp_path.rglob("*.fits")] == [sha(path or made)]


def test_ingesting_again_changes_nothing(archive, batch):
    root, _ = archive
    before = objects(root)
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in batch])
    assert not report.added and not report.skipped and len(report.unchanged) == len(batch)
    assert objects(root) == before


def test_an_archive_of_mission_catalog_targets_stores_nothing_of_other_catalogs(tmp_path):
    """Groups of TIC/KIC/EPIC targets only hold no target_catalog/target_designation variable and the
    index texts no such column: such an archive is stored as before other catalogs existed."""
    root = tmp_path / "archive"
    files = [TGLC, DATA / "k2" / "ktwo211436265-c05_llc.fits"]
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in files])
    assert not report.skipped
    store = lcarchive.open_archive(str(root))
    for obs in store.observations:
        with store.open_observation(obs.id) as ds:
            assert "target_catalog" not in ds and "target_designation" not in ds
            assert ds.attrs["target_catalog"] in ("TIC", "EPIC")
    texts = [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    assert not any(b'"target_catalog"' in t or b'"designation"' in t for t in texts)
    assert store.light_curve("TIC 218795833").attrs["target"] == TIC
    assert store.light_curve("EPIC 211436265").attrs["target"] == 211436265
    with pytest.raises(lcarchive.TargetNotFoundError):
        store.light_curve("KIC 211436")  # a KIC number: no line of a mission named by KIC IDs


@pytest.mark.parametrize("name", ["Gaia DR3 0", "Gaia DR3 6917529027641081856", "3I/../../etc", "MPC (0)"])
def test_a_target_of_no_catalog_is_refused_in_one_line(archive, name):
    with pytest.raises(ValueError, match="not a") as refused:
        lcarchive.open_archive(str(archive[0])).light_curve(name)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("name", "path"), [("(11251)", ASTEROID), ("Gaia DR3 5707485527450614656", None)])
def test_lcarchive_export_of_a_designation_or_gaia_id_writes_the_file_byte_for_byte(archive, made, tmp_path, name, path):
    result = subprocess.run(
        [lcarchive_command(), "export", str(archive[0]), str(tmp_path / "out"), "-t", name], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert [sha(p) for p in (tmp_path / "out").rglob("*.fits")] == [sha(path or made)]


def test_lcarchive_ls_of_a_designation_lists_its_observation(archive):
    result = subprocess.run([lcarchive_command(), "ls", str(archive[0]), "-t", "1P/Halley"], capture_output=True, text=True)
    assert result.returncode != 0 and "in no observation" in result.stderr  # a designation of no target here
    result = subprocess.run([lcarchive_command(), "ls", str(archive[0]), "-t", "(11251)"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "k2-k2movingbodies-c06" in result.stdout


def test_a_skyportal_series_names_the_target_in_its_own_catalog(archive, tmp_path):
    pd = pytest.importorskip("pandas")
    store = lcarchive.open_archive(str(archive[0]))
    wanted = lcarchive.Selection(targets=["(11251)", f"Gaia DR3 {GAIA}", f"TIC {TIC}"])
    report = lcarchive.download(store, tmp_path, wanted, format="hdf5")
    assert report.ok, report
    found = set()
    for path in tmp_path.rglob("*.h5"):
        with pd.HDFStore(path, mode="r") as series:  # SkyPortal's reading: one table, metadata on its storer
            metadata = series.get_storer(series.keys()[0]).attrs.metadata
        found.add((metadata["obj_id"], metadata["series_obj_id"]))
    assert found == {("MPC11251", "(11251)"), (f"GaiaDR3{GAIA}", str(GAIA)), (f"TIC{TIC}", str(TIC))}


def test_a_repeated_real_time_stamp_is_still_refused(tmp_path):
    """Only the product's value for "no time stamp" (TIME = 0) is let through: a K2 Moving Bodies file
    whose row repeats another row's real time stamp is damaged, and refused in one line."""
    damaged = tmp_path / ASTEROID.name
    with fits.open(ASTEROID) as hdul:
        copy = fits.HDUList([h.copy() for h in hdul])
    copy["BESTAPER"].data["TIME"][5] = copy["BESTAPER"].data["TIME"][4]
    copy.writeto(damaged)
    report = lcarchive.Archive(str(tmp_path / "archive")).ingest([str(damaged)])
    assert not report.added
    [(source, reason)] = report.skipped
    assert source == str(damaged) and reason == "1 row(s) repeat the time stamp of another row of the same light curve"
