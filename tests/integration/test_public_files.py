"""Real files of kinds ../shared does not hold (tests/data/public, INVENTORY.md): every column kept,
pixel files refused by that name.

- CDIPS (two real v01 light curves of sector 6): the 48-character per-cadence text column ``RSTFC``
  (the frame each cadence came from) is stored, read back as astropy reads it, and the files are
  exported byte for byte;
- pixel files (a TESScut cutout, a Kepler and a TESS SPOC target pixel file): refused as pixel
  files, one line naming the file, in the same batch as the light curves, which go in;
- a real light curve given columns of every other non-numeric kind a FITS table holds (logicals
  with nulls, bits, complex numbers, arrays of strings, text with blanks and nulls) exports byte
  for byte.
"""

from __future__ import annotations

import hashlib
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import lcarchive
from lcarchive.errors import PixelFileError
from lcarchive.formats import read_lightcurve

from conftest import DATA, PUBLIC, lcarchive_command

CDIPS = sorted((PUBLIC / "cdips").glob("*.fits"))
K2VARCAT = sorted((PUBLIC / "k2varcat").glob("*.fits"))
KEPSEISMIC = sorted((PUBLIC / "kepseismic").glob("*.fits"))
LIGHT_CURVES = [*CDIPS, *K2VARCAT, *KEPSEISMIC]
PIXEL = sorted((PUBLIC / "pixel").glob("*.fits*"))
KINDS = {
    "test-tpf-tesscut_1x1.fits": "TESScut cutout",
    "test-tpf-kplr-tabby-100-cadences.fits": "target pixel file",
    "tess25155310-s01-first-cadences.fits.gz": "target pixel file",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _astropy_text(path: Path, column: str) -> list[str]:
    with fits.open(path, memmap=False) as hdul:
        return [str(v) for v in hdul[1].data[column]]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Every public CDIPS, K2VARCAT, KEPSEISMIC and pixel file in ONE ingest, no options; (archive, report)."""
    root = tmp_path_factory.mktemp("public") / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in [*LIGHT_CURVES, *PIXEL]])
    return lcarchive.open_archive(str(root)), report


def test_the_public_files_are_here():
    assert len(CDIPS) == 2 and len(K2VARCAT) == 1 and len(KEPSEISMIC) == 1 and {p.name for p in PIXEL} == set(KINDS)


def test_one_batch_stores_the_light_curves_and_refuses_each_pixel_file_as_one(ingested):
    archive, report = ingested
    assert sorted(s for s, _, _ in report.added) == sorted(str(p) for p in LIGHT_CURVES)
    assert {o.id for o in archive.observations} == {"tess-cdips-s0006", "k2-k2varcat-c04", "kepler-kepseismic-20d-q17"}
    reasons = dict(report.skipped)
    assert set(reasons) == {str(p) for p in PIXEL}
    for path in PIXEL:
        reason = reasons[str(path)]
        assert f"a pixel file ({KINDS[path.name]}), not a light curve" in reason, reason
        assert "\n" not in reason


@pytest.mark.parametrize("path", PIXEL, ids=lambda p: p.name)
def test_a_pixel_file_is_refused_as_one_by_the_reader(path):
    with pytest.raises(PixelFileError, match=rf"^{path}: a pixel file \({KINDS[path.name]}\), not a light curve \(HDU 1"):
        read_lightcurve(str(path))


def test_the_text_column_is_read_back_as_astropy_reads_it(ingested):
    archive, _ = ingested
    for path in CDIPS:
        want = _astropy_text(path, "RSTFC")
        assert len(want) == 985 and all(len(v) == 48 for v in want)
        lc = read_lightcurve(str(path))
        assert lc.columns["rstfc"].fits_format == "48A" and lc.text("rstfc").tolist() == want
        target = lc.target
        got = archive.light_curve(target, quality_bitmask="none")
        assert got["rstfc"].dtype.kind == "U" and got["rstfc"].values.tolist() == want
        assert got["rstfc"].attrs["source_column"] == "RSTFC" and got["rstfc"].attrs["fits_format"] == "48A"
        for k in (1, 2, 3):  # the one-character quality letters beside it
            assert got[f"irq{k}"].attrs["fits_format"] == "1A"


def test_to_lightkurve_carries_the_text_column_as_lightkurve_reads_it(ingested):
    lk = pytest.importorskip("lightkurve")
    archive, _ = ingested
    for path in CDIPS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = lk.read(str(path), quality_bitmask="none")
        ours = archive.light_curve(read_lightcurve(str(path)).target, quality_bitmask="none").lc.to_lightkurve()
        assert [str(v) for v in ours["rstfc"]] == [str(v) for v in theirs["rstfc"]] == _astropy_text(path, "RSTFC")


def test_the_text_column_is_a_string_variable_of_the_group(ingested):
    """The group as xarray reads it: the field's bytes as text, one string a cadence, "" where a target has no row."""
    archive, _ = ingested
    with archive.open_observation("tess-cdips-s0006") as ds:
        assert ds["rstfc"].dims == ("target", "cadence") and ds["rstfc"].dtype.kind in "OT"
        rows = {int(t): i for i, t in enumerate(ds["target"].values)}
        for path in CDIPS:
            one = ds.isel(target=rows[read_lightcurve(str(path)).target]).load()
            present = one["quality"].values != np.iinfo(np.int32).min
            assert [str(v) for v in one["rstfc"].values[present]] == _astropy_text(path, "RSTFC")
            assert all(str(v) == "" for v in one["rstfc"].values[~present])


def test_exported_fits_is_each_light_curve_byte_for_byte(ingested, tmp_path):
    archive, _ = ingested
    report = lcarchive.download(archive, tmp_path, lcarchive.Selection(), format="fits")
    assert report.ok and report.written, report
    exported = {_sha(p) for p in tmp_path.rglob("*.fits")}
    for path in LIGHT_CURVES:
        assert _sha(path) in exported, f"no exported file has the bytes of {path.name}"


def test_tidy_tables_hold_the_text_column_as_text(ingested, tmp_path):
    import pyarrow.parquet as pq

    archive, _ = ingested
    report = lcarchive.download(
        archive, tmp_path, lcarchive.Selection(observations=["tess-cdips-s0006"], columns=["rstfc"]), format="parquet"
    )
    assert report.ok
    [path] = list(tmp_path.rglob("*.parquet"))
    table = pq.read_table(path).to_pandas()
    for source in CDIPS:
        rows = table[table["target"] == read_lightcurve(str(source)).target]
        assert rows["rstfc"].tolist() == _astropy_text(source, "RSTFC")


def test_export_command_exits_0_with_the_text_column(ingested, tmp_path):
    """Issue 22: ``lcarchive export`` exited 1, "column RSTFC of table 1 is not stored"."""
    archive, _ = ingested
    out = subprocess.run(
        [lcarchive_command(), "export", archive.url, str(tmp_path), "--observation", "tess-cdips-s0006"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(_sha(p) for p in tmp_path.rglob("*.fits")) == sorted(_sha(p) for p in CDIPS)


def test_re_ingest_changes_nothing(ingested):
    archive, _ = ingested
    before = [v["snapshot"] for v in lcarchive.Archive(archive.url).history()]
    again = lcarchive.Archive(archive.url).ingest([str(p) for p in [*LIGHT_CURVES, *PIXEL]])
    assert again.added == [] and again.superseded == [] and again.versions == []
    assert sorted(s for s, _, _ in again.unchanged) == sorted(str(p) for p in LIGHT_CURVES)
    assert {s for s, _ in again.skipped} == {str(p) for p in PIXEL}
    assert [v["snapshot"] for v in lcarchive.Archive(archive.url).history()] == before


# -- K2VARCAT: its own column names, read by its product definition ----------------------------------------


def test_k2varcat_is_read_with_its_product_definition(ingested):
    """The detrended DETFLUX is the flux, DETFLUX_ERR its error, APTFLUX (extracted) and the centroids
    kept; TIME is BKJD as the file gives it; no quality column: 0; cadences numbered from the time."""
    archive, _ = ingested
    [path] = K2VARCAT
    lc = read_lightcurve(str(path))
    assert (lc.product.name, lc.target, lc.segment, lc.product_version) == ("k2varcat", 211121743, 4, "v2")
    assert "generic" not in lc.notes
    got = archive.light_curve("EPIC 211121743", quality_bitmask="none")
    with fits.open(path, memmap=False) as hdul:
        table = hdul[1].data
        for ours, theirs in (
            ("time", "TIME"),
            ("flux", "DETFLUX"),
            ("flux_err", "DETFLUX_ERR"),
            ("aptflux", "APTFLUX"),
            ("aptflux_err", "APTFLUX_ERR"),
            ("cent_row", "CENT_ROW"),
            ("cent_col", "CENT_COL"),
        ):
            want = np.asarray(table[theirs]).astype(table[theirs].dtype.newbyteorder("="))
            assert got[ours].dtype == want.dtype and np.array_equal(got[ours].values, want), ours
            assert got[ours].attrs["source_column"] == theirs
    assert (got["quality"].values == 0).all() and got["cadenceno"].size == 2660
    assert got["time"].attrs["time_format"] == "BKJD"
    datasets = {d.variable: d for d in archive.catalog.datasets if d.observation == "k2-k2varcat-c04"}
    assert datasets["flux"].processing_method == "K2VARCAT" and datasets["aptflux"].processing_method == "RAW"


def test_kepseismic_time_is_bkjd_from_the_files_own_reference(ingested):
    """KEPSEISMIC's TIME is BJD - 2400000 (MAST's TUNIT1 comment): read generically it was taken for
    BKJD, 54833 days late. Its product definition makes BKJD (astropy's arithmetic on the full BJD
    agrees), keeps TIME as it is, and tells the 20-day filter's product by TSFILTER."""
    from astropy.time import Time

    archive, _ = ingested
    [path] = KEPSEISMIC
    lc = read_lightcurve(str(path))
    assert lc.product.name == "kepseismic-20d" and lc.observation_id == "kepler-kepseismic-20d-q17"
    got = archive.light_curve("KIC 8006161", quality_bitmask="none")
    with fits.open(path, memmap=False) as hdul:
        raw = np.asarray(hdul[1].data["TIME"]).astype("f8")
        flux = np.asarray(hdul[1].data["FLUX"]).astype("f8")
    bjd = Time(raw + 2400000.0, format="jd", scale="tdb")
    bkjd = (bjd - Time(2454833.0, format="jd", scale="tdb")).jd
    assert np.allclose(got["time"].values, bkjd, rtol=0, atol=1e-9)
    assert np.array_equal(got["time_column"].values, raw) and np.array_equal(got["flux"].values, flux)
    assert 120 < got["time"].values[0] < 121  # Kepler's first quarter (Q0) began at BKJD 120.5
    assert got["flux"].attrs["fits_unit"] == "ppm"


# -- every other non-numeric kind of a FITS table -----------------------------------------------------


def _with_other_kinds(dest: Path) -> Path:
    """A real SPOC light curve with columns of every fixed-width non-numeric kind appended to its table."""
    src = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
    with fits.open(src) as hdul:
        n = len(hdul[1].data)
        rng = np.random.default_rng(22)
        text = np.array([f"ffi-{i:05d}".encode() + (b" " if i % 3 else b"\0") for i in range(n)], dtype="S11")
        bits = rng.integers(0, 2, size=(n, 12)).astype(bool)
        logic = rng.integers(0, 2, size=n).astype(bool)
        complex_ = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype("c8")
        names = np.array([[b"ab", b"c"], [b"", b"xyz"]] * (n // 2) + [[b"q", b"r"]] * (n % 2), dtype="S3")
        extra = fits.ColDefs(
            [
                fits.Column("FRAME", "11A", array=text),
                fits.Column("FLAGBITS", "12X", array=bits),
                fits.Column("GOODFLAG", "L", array=logic),
                fits.Column("OKFLAG", "L", array=~logic),
                fits.Column("PHASOR", "C", array=complex_),
                fits.Column("LABELS", "6A", dim="(3,2)", array=names),
            ]
        )
        table = fits.BinTableHDU.from_columns(hdul[1].columns + extra, header=hdul[1].header)
        out = fits.HDUList([hdul[0].copy(), table, *[h.copy() for h in hdul[2:]]])
        path = dest / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
        out.writeto(path)
    raw = bytearray(path.read_bytes())
    # a null logical (neither T nor F) in the first row, as FITS allows: astropy reads it as False
    with fits.open(path) as hdul:
        start = hdul.fileinfo(1)["datLoc"]
        field = hdul[1].data.dtype.fields["GOODFLAG"][1]
    raw[start + field] = 0
    path.write_bytes(bytes(raw))
    return path


def test_every_non_numeric_kind_exports_byte_for_byte(tmp_path):
    path = _with_other_kinds(tmp_path)
    lc = read_lightcurve(str(path))
    assert "dropped_columns" not in lc.notes
    formats = {n: lc.columns[n].fits_format for n in ("frame", "flagbits", "goodflag", "phasor", "labels")}
    assert formats == {"frame": "11A", "flagbits": "12X", "goodflag": "L", "phasor": "C", "labels": "6A"}
    assert lc.text("frame").tolist() == _astropy_text(path, "FRAME")
    with fits.open(path) as hdul:  # logicals with no null: int8 0/1, written back as T and F
        assert lc.columns["okflag"].fits_format == "L"
        assert np.array_equal(lc.columns["okflag"].data, hdul[1].data["OKFLAG"].astype(np.int8))
    root = tmp_path / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(path)])
    assert report.ok and len(report.added) == 1
    out = tmp_path / "out"
    done = lcarchive.download(lcarchive.open_archive(str(root)), out, lcarchive.Selection(), format="fits")
    assert done.ok
    [written] = list(out.rglob("*.fits"))
    assert written.read_bytes() == path.read_bytes()


def test_every_non_numeric_kind_survives_a_time_cut_export(tmp_path):
    """A time range is written through astropy: each kind comes back as astropy reads the source's rows
    (a null logical as F, since astropy writes no nulls)."""
    path = _with_other_kinds(tmp_path)
    root = tmp_path / "archive"
    assert lcarchive.Archive(str(root)).ingest([str(path)]).ok
    out = tmp_path / "out"
    done = lcarchive.download(lcarchive.open_archive(str(root)), out, lcarchive.Selection(time=(1330.0, 1335.0)), format="fits")
    assert done.ok
    [written] = list(out.rglob("*.fits"))
    with fits.open(written) as got, fits.open(path) as src, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Column 'GOODFLAG' contains NULL")  # astropy reads the null as False
        rows = (src[1].data["TIME"] >= 1330.0) & (src[1].data["TIME"] <= 1335.0)
        assert 0 < rows.sum() < len(rows)
        for name in ("FRAME", "FLAGBITS", "GOODFLAG", "OKFLAG", "PHASOR", "LABELS"):
            assert got[1].columns[name].format == src[1].columns[name].format, name
            assert np.array_equal(np.asarray(got[1].data[name]), np.asarray(src[1].data[name])[rows]), name
