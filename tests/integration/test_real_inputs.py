"""Every real light curve a user holds goes in, or is refused for a true reason; nothing of a batch is lost.

One batch of every kind in ../shared plus the kinds made at test time from them (``makers``:
lightkurve's own outputs, PyKE kepcotrend/kepflatten outputs, a K2SFF engineering-test file, a
.fits.gz), ingested once with no options: nothing skipped; every input stored, listed, catalogued
and indexed; every file's data read back with plain xarray equal to lightkurve's reading (astropy's
where lightkurve cannot read the file), bit for bit on the file's cadences; the batch ingested again
changes no object.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from lcarchive.catalog.content import static_catalog

import makers
from conftest import DATA, REPO, lcarchive_command
from reference import QUALITY_FILL, assert_bit_equal

KINDS = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name != "bad")
SHARED = sorted(p for k in KINDS for p in (DATA / k).rglob("*") if p.suffix in (".fits", ".h5"))


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, list[Path]]:
    dest = tmp_path_factory.mktemp("made")
    return {
        "lightkurve": list(makers.lightkurve_files(dest).values()),
        "kepcotrend": makers.kepcotrend_files(dest),
        "kepflatten": [makers.kepflatten_file(dest)],
        "engineering": [makers.k2sff_engineering_file(dest)],
        "gzip": [makers.gzip_copy(DATA / "k2" / "ktwo211495446-c05_llc.fits", dest)],
    }


@pytest.fixture(scope="module")
def batch(made) -> list[Path]:
    return [*SHARED, *(p for paths in made.values() for p in paths)]


@pytest.fixture(scope="module")
def ingested(batch, tmp_path_factory):
    root = tmp_path_factory.mktemp("every-kind") / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in batch])
    return root, report


@pytest.fixture(scope="module")
def stored(ingested) -> dict[str, tuple[str, int]]:
    """SHA-256 of every stored input -> (group, row)."""
    archive = lcarchive.open_archive(str(ingested[0]))
    where = {}
    for obs in archive.observations:
        with archive.open_observation(obs.id) as ds:
            for row, shas in enumerate(ds["source_sha256"].values):
                for digest in str(shas).split("\n"):
                    where[digest] = (obs.id, row)
    return where


def inner_sha(path: Path) -> str:
    """The SHA-256 an input is stored by: a .gz file's is that of the file it holds."""
    import gzip

    data = Path(path).read_bytes()
    return hashlib.sha256(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).hexdigest()


def test_batch_of_every_kind_is_ingested_with_nothing_skipped(ingested, batch):
    _, report = ingested
    assert report.skipped == [], report.skipped
    assert len(report.added) + len(report.superseded) + len(report.unchanged) == len(batch)


def test_every_input_is_stored_listed_catalogued_and_indexed(ingested, batch, stored):
    root, _ = ingested
    archive = lcarchive.open_archive(str(root))
    index = archive.target_index()
    provenance = archive.inputs()
    catalogued = set(zip(provenance["sha256"], provenance["observation"], strict=True))
    listed = {o.id for o in archive.observations}
    missing = [p.name for p in batch if inner_sha(p) not in stored]
    assert missing == [], missing
    for path in batch:
        group, row = stored[inner_sha(path)]
        assert group in listed, group
        assert (inner_sha(path), group) in catalogued, path.name
        line = index[(index["observation"] == group) & (index["row"] == row)]
        assert len(line) == 1, (path.name, group)


def _reference(path: Path, ds: xr.Dataset) -> tuple[str, dict[str, np.ndarray], np.ndarray | None]:
    """lightkurve's reading of a file (quality_bitmask none), else astropy's columns named by the stored
    variables' source_column/source_hdu; with its cadence numbers when lightkurve gives real ones."""
    import lightkurve as lk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            lc = lk.read(str(path), quality_bitmask="none")
        except Exception:  # lightkurve reads no K2SC, K2SFF (2.5), HDF5, astropy-written or PyKE-extracted file
            lc = None
    if lc is not None:
        values = {
            "time": np.asarray(lc.time.value, dtype="f8"),
            "flux": np.asarray(lc.flux.value),
            "flux_err": np.asarray(lc.flux_err.value),
        }
        if "quality" in lc.colnames:  # lightkurve's K2SFF reading has none (lcarchive's is 0 there)
            values["quality"] = np.asarray(lc["quality"])
        cadences = np.asarray(lc["cadenceno"]).astype(np.int64) if "cadenceno" in lc.colnames else None
        return "lightkurve", values, cadences
    values = {}
    if path.suffix == ".h5":
        import h5py

        with h5py.File(path) as h5:
            for var in ("flux", "flux_err", "quality"):
                name = str(ds[var].attrs.get("source_column", "")) or str(ds.get(f"{var}_source", xr.DataArray("")).values)
                if name and name in h5:
                    values[var] = np.asarray(h5[name][()])
        return "h5py", values, None
    with fits.open(path) as hdul:
        for var in ("time", "flux", "flux_err", "quality"):
            column, hdu = str(ds[var].attrs.get("source_column", "")), str(ds[var].attrs.get("source_hdu", ""))
            if not column:
                continue
            table = hdul[int(hdu)] if hdu.isdigit() else hdul[hdu]
            data = np.asarray(table.data[column])
            if data.ndim == 1:
                values[var] = data.astype(data.dtype.newbyteorder("="))
    return "astropy", values, None


def test_read_back_equals_lightkurve_or_astropy(ingested, batch, stored):
    """Each file's time, flux, flux_err and quality in its group, read with plain xarray, equal the
    reference reading bit for bit on the file's cadences (lightkurve drops rows without a time stamp:
    matched by cadence number; otherwise row for row in cadence order)."""
    root, _ = ingested
    checked = {"lightkurve": 0, "astropy": 0, "h5py": 0}
    for path in batch:
        group, row = stored[inner_sha(path)]
        with xr.open_dataset(root, engine="lcarchive", group=group) as ds:
            one = ds.isel(target=row).load()
        present = one["quality"].values != QUALITY_FILL
        who, ref, cadences = _reference(path, one)
        derived = "cadenceno" in str(one["ingest_notes"].values) if "ingest_notes" in one else False
        if cadences is not None and not derived:
            idx = np.searchsorted(one["cadenceno"].values, cadences)
            assert np.array_equal(one["cadenceno"].values[idx], cadences), path.name
            assert present[idx].all(), path.name
        else:
            idx = np.flatnonzero(present)
            order = np.argsort(ref["time"], kind="stable") if "time" in ref and who != "lightkurve" else None
            if order is not None and np.all(np.isfinite(ref["time"])):
                ref = {k: v[order] for k, v in ref.items()}
        for var, expected in ref.items():
            got = one[var].values[idx]
            expected = np.asarray(expected)
            assert got.size == expected.size, (path.name, var, got.size, expected.size)
            if var == "quality":
                assert np.array_equal(got.astype(np.int64) & 0xFFFFFFFF, expected.astype(np.int64) & 0xFFFFFFFF), (path.name, var)
            else:
                assert_bit_equal(got, expected.astype(got.dtype), f"{path.name} {var} ({who})")
        checked[who] += 1
    assert checked["lightkurve"] >= 40 and checked["astropy"] >= 2 and checked["h5py"] >= 12, checked


def test_ingesting_the_batch_again_changes_nothing(ingested, batch, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(ingested[0], root)
    before = snapshot(root)
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in batch])
    assert report.added == [] and report.superseded == [] and report.skipped == []
    assert len(report.unchanged) == len(batch)
    assert snapshot(root) == before  # every object, release groups included


@pytest.mark.parametrize("order", ["full first", "snippet first"])
def test_tied_releases_the_complete_file_is_current_in_any_order(order, tmp_path):
    """A cut-down copy of one release ranks below the complete file (more cadences); both are kept."""
    full = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
    snippet = DATA / "snippets" / "test-lc-tess-pimen-100-cadences.fits"
    files = [full, snippet] if order == "full first" else [snippet, full]
    root = tmp_path / "a"
    for path in files:  # two ingests: the second meets the stored one
        lcarchive.Archive(str(root)).ingest([str(path)])
    archive = lcarchive.open_archive(str(root))
    current = archive.open_observation("tess-spoc-2min-s0001")
    other = archive.open_observation("tess-spoc-2min-s0001.alt2")
    assert str(current["source_file"].values[0]) == full.name and int(current["n_rows"].values[0]) == 20076
    assert str(other["source_file"].values[0]) == snippet.name and int(other["n_rows"].values[0]) == 100
    assert other["coverage"].values[0] == pytest.approx(0.005, abs=0.001)
    assert current["coverage"].values[0] > 0.99
    assert archive.catalog.observation("tess-spoc-2min-s0001.alt2").current == "tess-spoc-2min-s0001"


def test_first_stored_stays_current_on_a_full_tie(tmp_path):
    """Two files of one target, release and length but other content: the one stored first stays current,
    the other is kept in a release group; ingesting them again changes nothing."""
    src = DATA / "kepler" / "kplr011442793-2009350155506_llc.fits"
    paths = []
    for k in (1, 2):
        with fits.open(src) as hdul:
            hdul[1].data["SAP_BKG"] = hdul[1].data["SAP_BKG"] * (1 + k * 1e-3)
            path = tmp_path / f"copy{k}.fits"
            hdul.writeto(path)
        paths.append(path)
    root = tmp_path / "a"
    lcarchive.Archive(str(root)).ingest([str(paths[0])])
    lcarchive.Archive(str(root)).ingest([str(paths[1])])
    archive = lcarchive.open_archive(str(root))
    assert str(archive.open_observation("kepler-lc-q03")["source_file"].values[0]) == "copy1.fits"
    assert str(archive.open_observation("kepler-lc-q03.alt2")["source_file"].values[0]) == "copy2.fits"
    before = snapshot(root)
    assert len(lcarchive.Archive(str(root)).ingest([str(p) for p in reversed(paths)]).unchanged) == 2
    assert snapshot(root) == before


def test_several_outputs_of_one_source_stay_distinguishable(made, tmp_path):
    """Four kepcotrend outputs of one Kepler file (same target, quarter and release): all four stored in the
    derived observation kepler-lc-kepcotrend-q03 and its release groups, listed, catalogued with lineage."""
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in made["kepcotrend"]])
    assert report.ok and len(report.added) + len(report.superseded) == 4
    archive = lcarchive.open_archive(str(root))
    family = [o for o in archive.observations if o.id.startswith("kepler-lc-kepcotrend-q03")]
    assert len(family) == 4
    names = set()
    for o in family:
        assert o.derived_from == "kepler-lc-q03" and o.processing == ["kepcotrend"]
        (dataset,) = [d for d in archive.catalog.datasets if d.observation == o.id and d.variable == "cbvsap_flux"]
        assert dataset.processing_method == "kepcotrend" and dataset.derived_from == [f"{o.id}/sap_flux"]
        assert dataset.source_column == "CBVSAP_FLUX"
        names.update(archive.inputs(o.id)["name"])
    assert names == {p.name for p in made["kepcotrend"]}
    listed = json.loads(
        subprocess.run([lcarchive_command(), "ls", str(root), "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert {o["id"] for o in listed} == {o.id for o in family}
    assert all(o["derived_from"] == "kepler-lc-q03" for o in listed)
    with fits.open(made["kepcotrend"][0]) as hdul:  # the added columns, bit for bit
        ds = archive.open_observation("kepler-lc-kepcotrend-q03").isel(target=0)
        assert_bit_equal(ds["cbvsap_flux"].values, np.asarray(hdul[1].data["CBVSAP_FLUX"]).astype("f8"), "CBVSAP_FLUX")


def test_kepflatten_lineage_follows_its_history(made, tmp_path):
    root = tmp_path / "a"
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in made["kepflatten"]]).ok
    archive = lcarchive.open_archive(str(root))
    (obs,) = archive.observations
    assert obs.id == "kepler-lc-kepflatten-q03" and obs.processing == ["kepflatten"]
    (dataset,) = [d for d in archive.catalog.datasets if d.variable == "detsap_flux"]
    assert dataset.processing_method == "kepflatten"
    assert dataset.derived_from == [f"{obs.id}/flux"]  # datacol=PDCSAP_FLUX in its HISTORY call: the flux variable
    notes = json.loads(str(archive.open_observation(obs.id)["ingest_notes"].values[0]))
    assert json.loads(notes["derived"])["parameters"]["kepflatten"] == {"datacol": "PDCSAP_FLUX"}


def test_k2_engineering_test_targets_are_ingested(made, tmp_path):
    """EPIC 60,0xx,xxx, no CAMPAIGN: the engineering test, told by its time stamps (campaign 'et')."""
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in made["engineering"]])
    assert report.ok and [t for _, _, t in report.added] == [makers.ENGINEERING_EPIC]
    archive = lcarchive.open_archive(str(root))
    (obs,) = archive.observations
    assert obs.id == "k2-k2sff-cet" and obs.segment == 1002 and obs.time_min >= 1862


def test_id_ranges_are_the_missions_own(tmp_path):
    catalogs = {c.name: c for c in static_catalog().mission_catalogs}
    assert catalogs["TIC"].valid(10005000540) and not catalogs["TIC"].valid(10005000541)
    assert catalogs["KIC"].valid(13161029) and catalogs["KIC"].valid(100001645) and not catalogs["KIC"].valid(50000000)
    assert catalogs["EPIC"].valid(60021426) and catalogs["EPIC"].valid(251813738) and not catalogs["EPIC"].valid(150000000)
    src = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits"
    paths = []
    for tic in (10005000540, 10005000541):
        with fits.open(src) as hdul:
            hdul[0].header["TICID"] = tic
            paths.append(tmp_path / f"tic{tic}.fits")
            hdul.writeto(paths[-1])
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(p) for p in paths])
    assert [t for _, _, t in report.added] == [10005000540]
    assert [s for s, _ in report.skipped] == [str(paths[1])] and "not a TIC ID" in report.skipped[0][1]


def test_ls_target_takes_catalog_prefixes_and_shows_coverage(tmp_path):
    root = tmp_path / "a"
    lcarchive.Archive(str(root)).ingest([str(DATA / "snippets"), str(DATA / "kepler" / "kplr011442793-2009350155506_llc.fits")])
    cli = lcarchive_command()
    shown = subprocess.run([cli, "ls", str(root), "--target", "TIC 261136679"], capture_output=True, text=True, check=True).stdout
    assert "tess-spoc-2min-s0001" in shown and "100" in shown and "0.5%" in shown
    rows = json.loads(
        subprocess.run(
            [cli, "ls", str(root), "--target", "TIC261136679", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [(r["id"], r["target_n_cadences"]) for r in rows] == [("tess-spoc-2min-s0001", 100)]
    assert rows[0]["target_coverage"] == pytest.approx(0.005, abs=0.001)
    assert (
        json.loads(
            subprocess.run(
                [cli, "ls", str(root), "-t", "KIC 11442793", "--json"], capture_output=True, text=True, check=True
            ).stdout
        )[0]["id"]
        == "kepler-lc-q03"
    )
    wrong = subprocess.run([cli, "ls", str(root), "--target", "KIC 261136679"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "no observation" in wrong.stderr
    bad = subprocess.run([cli, "ls", str(root), "--target", "XYZ 5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_download_selects_targets_with_prefixes(tmp_path):
    root = tmp_path / "a"
    lcarchive.Archive(str(root)).ingest([str(DATA / "kepler"), str(DATA / "k2" / "ktwo211436265-c05_llc.fits")])
    report = lcarchive.download(
        str(root), tmp_path / "d", lcarchive.Selection(targets=["KIC 11442793", "EPIC211436265"]), format="parquet"
    )
    assert report.ok and report.n_targets == 4  # three Kepler quarters and one K2 campaign
    report = lcarchive.download(str(root), tmp_path / "e", lcarchive.Selection(targets=["TIC 11442793"]), format="parquet")
    assert report.missing_targets == [11442793]


def test_empty_folder_is_reported_not_a_silent_success(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [lcarchive_command(), "ingest", str(tmp_path / "a"), str(tmp_path / "empty")], capture_output=True, text=True
    )
    assert result.returncode == 1 and "no light-curve files in this folder" in result.stderr


def test_a_layout_its_product_does_not_foresee_is_read_generically(tmp_path):
    """A file its product's rules recognise but without a column the definition names (a version of the
    product lcarchive has no definition of) is kept, read generically, with a note saying why."""
    src = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits"
    with fits.open(src) as hdul:
        columns = [c for c in hdul[1].columns if c.name != "PDCSAP_FLUX"]
        new = fits.HDUList([hdul[0].copy(), fits.BinTableHDU.from_columns(columns, header=hdul[1].header), hdul[2].copy()])
        path = tmp_path / "no-pdcsap.fits"
        new.writeto(path)
        sap = np.asarray(hdul[1].data["SAP_FLUX"])
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)])
    assert report.ok and [o for _, o, _ in report.added] == ["tess-generic-s0001"]
    ds = lcarchive.open_archive(str(tmp_path / "a")).open_observation("tess-generic-s0001").isel(target=0)
    assert ds["flux"].attrs["source_column"] == "SAP_FLUX"
    assert_bit_equal(ds["flux"].values, sap.astype("f4"), "flux")
    notes = json.loads(str(ds["ingest_notes"].values))
    assert notes["generic"].startswith("recognised as spoc-2min, but spoc-2min table lacks column(s) PDCSAP_FLUX")


def test_a_campaign_keyword_of_no_campaign_is_told_by_time(made, tmp_path):
    """An engineering-test file whose CAMPAIGN holds no campaign (e.g. 'E') gets the one its time stamps fall in."""
    with fits.open(made["engineering"][0]) as hdul:
        hdul[0].header["CAMPAIGN"] = "E"
        path = tmp_path / "cet-with-campaign.fits"
        hdul.writeto(path)
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)])
    assert report.ok and [o for _, o, _ in report.added] == ["k2-k2sff-cet"]
    ds = lcarchive.open_archive(str(tmp_path / "a")).open_observation("k2-k2sff-cet")
    assert "CAMPAIGN = 'E' is not a K2 campaign" in str(ds["ingest_notes"].values[0])


def test_target_pixel_files_in_a_folder_are_ignored_named_ones_refused(tmp_path):
    """A folder of MAST products holds target pixel files beside the light curves: left out by their
    names (not read), counted; named explicitly, a file is read and refused for its true reason."""
    folder = tmp_path / "sector"
    folder.mkdir()
    lc = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
    (folder / lc.name).write_bytes(lc.read_bytes())
    with fits.open(lc) as hdul:  # a pixel file: a PIXELS table whose FLUX holds an image per cadence
        n = 10
        images = np.zeros((n, 3, 3), dtype="f4")
        pixels = fits.BinTableHDU.from_columns(
            [fits.Column("TIME", "D", array=hdul[1].data["TIME"][:n]), fits.Column("FLUX", "9E", dim="(3,3)", array=images)],
            name="PIXELS",
        )
        tpf = fits.HDUList([hdul[0].copy(), pixels])
    tp = folder / lc.name.replace("_lc.fits", "_tp.fits")
    tpf.writeto(tp)
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(folder)])
    assert report.ok and len(report.added) == 1
    assert [(p, w) for p, w in report.ignored] == [
        (str(tp), "TESS target pixel file (SPOC 2-min and 20-s: *-s_tp.fits, *-a_fast-tp.fits)")
    ]
    named = lcarchive.Archive(str(tmp_path / "a")).ingest([str(tp)])
    assert [s for s, _ in named.skipped] == [str(tp)]
    assert "a pixel file (target pixel file), not a light curve" in named.skipped[0][1]


def test_integrity_of_real_files_has_no_false_alarms(made, tmp_path):
    """The DATASUM/CHECKSUM cards checked on the raw bytes: every real mission product and HLSP of ../shared
    that carries them is sound (astropy's checksum=True reports failures on most of them), the others carry
    none; files rewritten by tools that kept the old cards are stale-cards, never damaged; a .fits.gz is the
    file it holds; files made by tools/synth.py carry correct cards."""
    import sys
    import time

    from lcarchive.formats import read_lightcurves
    from lcarchive.formats.checksums import ones_complement_sum

    sys.path.insert(0, str(REPO / "tools"))
    import synth

    expected = {
        "lightkurve": {"sound", "stale-cards"},
        "kepcotrend": {"stale-cards"},
        "kepflatten": {"stale-cards"},
        "engineering": {"no-checksums"},
        "gzip": {"sound"},
    }
    synthetic = synth.make_observation(DATA / "spoc-2min" / "target_s0001.fits", tmp_path / "synth", 2)
    files = [(p, {"sound", "no-checksums"}) for p in SHARED]
    files += [(p, states) for kind, states in expected.items() for p in made[kind]]
    files += [(p, {"sound"}) for p in synthetic]
    for path, states in files:
        for lc in read_lightcurves(str(path)):
            assert lc.integrity.state in states, (path.name, lc.integrity.state, lc.integrity.reason)
            carded = any(h.checksum != "absent" or h.datasum != "absent" for h in lc.integrity.hdus)
            assert (lc.integrity.state == "no-checksums") == (not carded), path.name
    assert {lc.integrity.state for p in made["kepcotrend"] for lc in read_lightcurves(str(p))} == {"stale-cards"}
    data = (DATA / "k2sff" / "hlsp_k2sff_k2_lightcurve_201367065-c01_kepler_v1_llc.fits").read_bytes()  # 3.4 MB
    started = time.perf_counter()
    ones_complement_sum(data)
    assert time.perf_counter() - started < 0.1  # numpy on the raw bytes: a few ms per file
