"""Every product kind in ../shared, ingested in one batch with no options, read back with plain
xarray against lightkurve, and exported back to files equal to the sources."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive

from conftest import DATA, lcarchive_command
from reference import assert_bit_equal

KINDS = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name != "bad")
FITS_FILES = sorted(p for k in KINDS for p in (DATA / k).rglob("*.fits"))
H5_FILES = sorted(p for k in KINDS for p in (DATA / k).rglob("*.h5"))
NEW_FITS = [p for p in FITS_FILES if p.parent.name in ("tglc", "eleanor-lite", "k2sff")]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Every file of every kind in ../shared (but the bad ones) in one ingest, no options."""
    root = tmp_path_factory.mktemp("products") / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(DATA / k) for k in KINDS])
    assert report.skipped == [], report.skipped
    return lcarchive.open_archive(str(root))


@pytest.fixture(scope="module")
def rows(archive):
    """SHA-256 of each stored file -> (group URL, row)."""
    found = {}
    for obs in archive.observations:
        url = (archive.url, obs.id)
        with archive.open_observation(obs.id) as ds:
            for row, shas in enumerate(ds["source_sha256"].values):
                for sha in str(shas).split("\n"):
                    found[sha] = (url, row)
    return found


@pytest.fixture(scope="module")
def exported(archive, tmp_path_factory):
    """Everything in the archive, older releases included, downloaded in the source formats."""
    dest = tmp_path_factory.mktemp("exported")
    report = lcarchive.download(archive, dest, lcarchive.Selection(include_superseded=True), format="fits")
    assert report.ok and report.written
    return dest


def test_every_kind_is_recognised(archive):
    products = {o.product for o in archive.observations}
    assert products >= {"spoc-2min", "tess-spoc", "qlp", "qlp-hdf5", "tglc", "gsfc-eleanor-lite", "k2sff", "kepler-lc", "k2-lc"}
    ids = {o.id for o in archive.observations}
    assert {"tess-tglc-s0001", "tess-tglc-s0034", "tess-gsfc-eleanor-lite-s0001", "k2-k2sff-c91", "tess-qlp-hdf5-s0070"} <= ids


def _lightkurve(path: Path):
    lk = pytest.importorskip("lightkurve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lk.read(str(path), quality_bitmask="none")


@pytest.mark.parametrize("path", NEW_FITS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_variables_equal_lightkurve(path, rows):
    """time, flux, flux_err, quality read with plain xarray equal lightkurve's default reading."""
    lc = _lightkurve(path)
    url, row = rows[_sha(path)]
    with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds:
        one = ds.isel(target=row).load()
    present = one["quality"].values != np.iinfo(np.int32).min
    theirs_cad = np.asarray(lc["cadenceno"]) if "cadenceno" in lc.colnames else None
    if theirs_cad is not None and np.all(np.diff(theirs_cad) > 0):  # align on cadence numbers
        idx = np.searchsorted(one["cadenceno"].values, theirs_cad)
        assert np.array_equal(one["cadenceno"].values[idx], theirs_cad)
    else:  # TGLC v2: lightkurve's cadence numbers are the file's zeros; align on the time stamps
        ours_time = one["time"].values
        idx = np.array([np.flatnonzero(present & (ours_time == t))[0] for t in lc.time.value])
    assert present.sum() == len(lc) or path.parent.name == "eleanor-lite"  # lightkurve drops NaN times only
    for ours, theirs in (
        ("time", lc.time.value),
        ("flux", lc.flux.value),
        ("flux_err", lc.flux_err.value),
        ("quality", np.asarray(lc.quality) if "quality" in lc.colnames else np.zeros(len(lc), dtype=np.int32)),
    ):
        got = one[ours].values[idx]
        want = np.asarray(theirs)
        if ours == "quality" and want.dtype.itemsize < 4:  # TGLC int16 flags, widened as bit patterns
            want = want.astype(want.dtype.newbyteorder("=")).view(f"u{want.dtype.itemsize}")
        assert np.array_equal(got.astype(want.dtype), want, equal_nan=True), f"{ours} differs from lightkurve"
    scale = {"tglc": "tdb", "eleanor-lite": "tdb", "k2sff": "tdb"}[path.parent.name]
    assert lc.time.scale == scale == one["time"].attrs["time_scale"]
    assert one["time"].attrs["time_format"] == lc.time.format.upper()


@pytest.mark.parametrize("path", FITS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_exported_fits_equals_source(path, exported):
    """Exported file: the source's bytes; and, as a reader sees it, every column of every table
    and every keyword of every header."""
    same_name = list(exported.rglob(path.name))  # two releases of one file share its name, in two groups' folders
    matching = [p for p in same_name if _sha(p) == _sha(path)]
    assert matching, f"no exported file equals {path.name} ({len(same_name)} of that name)"
    out = matching[0]
    with fits.open(path) as src, fits.open(out) as got:
        assert [h.name for h in got] == [h.name for h in src]
        for a, b in zip(got, src, strict=True):
            assert list(a.header.items()) == list(b.header.items()), f"{path.name} {b.name} header"
            if isinstance(b, fits.BinTableHDU):
                assert a.columns.names == b.columns.names
                for name in b.columns.names:
                    x, y = np.asarray(a.data[name]), np.asarray(b.data[name])
                    if y.dtype.kind in "fiu":
                        assert_bit_equal(
                            x.astype(y.dtype.newbyteorder("=")),
                            y.astype(y.dtype.newbyteorder("=")),
                            f"{path.name} {b.name}.{name}",
                        )
                    else:
                        assert np.array_equal(x, y), f"{path.name} {b.name}.{name}"
            elif b.data is not None:
                assert np.array_equal(a.data, b.data, equal_nan=True), f"{path.name} {b.name} data"


def _h5_content(source) -> tuple[dict, dict]:
    with h5py.File(source, "r") as f:
        data, attrs = {}, {"/": {k: np.asarray(v).tolist() for k, v in f.attrs.items()}}

        def visit(name, obj):
            if obj.attrs:
                attrs[name] = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                data[name] = obj[()]

        f.visititems(visit)
    return data, attrs


def test_exported_qlp_hdf5_equals_source(exported):
    """QLP's internal HDF5 files come back with every dataset (values and dtypes) and every attribute."""
    outputs = {_sha_of_content(p): p for p in exported.rglob("*.h5")}
    assert len(outputs) == len(H5_FILES)
    for path in H5_FILES:
        data, attrs = _h5_content(path)
        out = outputs[_sha_of_content(path)]
        got_data, got_attrs = _h5_content(out)
        assert got_attrs == attrs
        assert sorted(got_data) == sorted(data)
        for name, values in data.items():
            assert got_data[name].dtype == values.dtype, name
            assert_bit_equal(got_data[name], values, f"{path} {name}")


def _sha_of_content(path: Path) -> str:
    data, attrs = _h5_content(path)
    digest = hashlib.sha256(json.dumps(attrs, sort_keys=True, default=str).encode())
    for name in sorted(data):
        digest.update(name.encode() + np.ascontiguousarray(data[name]).tobytes())
    return digest.hexdigest()


def test_qlp_hdf5_reading(archive, rows):
    """Default flux: the best aperture's raw magnitude; its error; cadences, BTJD and every aperture kept."""
    for path in H5_FILES:
        url, row = rows[_sha(path)]
        with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds, h5py.File(path, "r") as f:
            one = ds.isel(target=row).load()
            present = one["quality"].values != np.iinfo(np.int32).min
            photometry = f["LightCurve/AperturePhotometry"]
            key = "RawMagnitude"  # as lightkurve reads QLP FITS SAP_FLUX (LC-qsp files name QSPMagnitude their bestdmagkey)
            best = f"LightCurve/AperturePhotometry/Aperture_{int(photometry.attrs['bestap']):03d}"
            assert_bit_equal(one["cadenceno"].values[present], f["LightCurve/Cadence"][()], "cadence")
            assert_bit_equal(one["time"].values[present], f["LightCurve/BJD"][()], "time")
            assert_bit_equal(one["flux"].values[present], f[f"{best}/{key}"][()], "flux")
            assert_bit_equal(one["flux_err"].values[present], f[f"{best}/{key}Error"][()], "flux_err")
            assert str(one["flux_source"].values) == f"{best}/{key}"
            assert np.all(one["quality"].values[present] == 0)  # these files carry no flags
            for k in range(int(photometry.attrs["naps"])):
                name = f"aperture_{k:03d}_rawmagnitude"
                assert_bit_equal(
                    one[name].values[present], f[f"LightCurve/AperturePhotometry/Aperture_{k:03d}/RawMagnitude"][()], name
                )
            assert int(one["camera"]) == f.attrs["Camera"] and float(one["ra"]) == f.attrs["RA"]
            assert ds["time"].attrs["time_format"] == "BTJD" and ds["flux"].attrs["astropy_unit"] == "mag"


def test_tglc_cadences_numbered_from_time(rows):
    """TGLC v2 files hold cadence_num = 0 everywhere: cadences are numbered from time, the column kept."""
    path = DATA / "tglc" / "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0007-cam2-ccd3_tess_v2_llc.fits"
    url, row = rows[_sha(path)]
    with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds, fits.open(path) as hdul:
        one = ds.isel(target=row).load()
        present = one["quality"].values != np.iinfo(np.int32).min
        table = hdul[1].data
        assert np.all(table["cadence_num"] == 0)
        assert_bit_equal(one["cadence_num"].values[present], np.asarray(table["cadence_num"]).astype("i4"), "cadence_num")
        expected = np.rint(np.asarray(table["time"]) / (1800 / 86400)).astype(np.int64)
        assert np.array_equal(one["cadenceno"].values[present], expected)
        assert "round(first time / 1800 s" in json.loads(str(one["ingest_notes"].values))["cadenceno"]
        assert one["primary"].values.shape[1:] == (5, 5)  # the decontaminated cut cube, per cadence
        assert_bit_equal(one["primary"].values[: len(table)], hdul[0].data.astype("f4"), "primary cube")


def test_apertures_and_methods_are_datasets_with_lineage(archive):
    cat = archive.catalog
    k2sff = [d for d in cat.datasets if d.observation == "k2-k2sff-c01"]
    assert len(k2sff) == 2 * 21  # FRAW and FCOR of BESTAPER, CIRC_APER0-9, PRF_APER0-9
    by_id = {d.id: d for d in k2sff}
    fcor3 = by_id["k2-k2sff-c01/circ_aper3_fcor"]
    assert (fcor3.photometric_source, fcor3.processing_method) == ("k2sff-circ_aper3", "SFF")
    assert fcor3.derived_from == ["k2-k2sff-c01/circ_aper3_fraw"]
    assert by_id["k2-k2sff-c01/flux"].derived_from == ["k2-k2sff-c01/fraw"]
    tglc = {d.variable: d for d in cat.datasets if d.observation == "tess-tglc-s0007"}
    assert tglc["flux"].source_column == "cal_psf_flux" and tglc["flux"].derived_from == ["tess-tglc-s0007/psf_flux"]
    assert (tglc["aperture_flux"].photometric_source, tglc["aperture_flux"].processing_method) == ("tglc-aperture", "SAP")
    eleanor = {d.variable: d for d in cat.datasets if d.observation == "tess-gsfc-eleanor-lite-s0001"}
    assert eleanor["flux"].derived_from == ["tess-gsfc-eleanor-lite-s0001/raw_flux"]
    assert eleanor["flux"].error_variable == "flux_err"
    qlp_h5 = {d.variable for d in cat.datasets if d.observation.startswith("tess-qlp-hdf5-s0070")}
    assert {f"aperture_00{k}_rawmagnitude" for k in range(5)} <= qlp_h5


def test_quality_flags_decode_per_pipeline(archive):
    from lcarchive.quality import decode, good_cadences

    with archive.open_observation("tess-tglc-s0008") as ds:
        quality = ds["quality"].values[0]
        table = ds.attrs["quality_flags"]
    assert table == "tglc"
    names = decode(quality[quality != np.iinfo(np.int32).min], table)
    assert names[2048] == ["Straylight"] and names[0] == []
    good = good_cadences(quality, table, "hard")
    assert not good[quality == 2048].any() and good[quality == 0].all()


def test_export_command_writes_source_files(archive, tmp_path):
    import subprocess

    out = subprocess.run(
        [lcarchive_command(), "export", archive.url, str(tmp_path), "--observation", "k2-k2sff-c92"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    [written] = list(tmp_path.rglob("*.fits"))
    assert _sha(written) == _sha(DATA / "k2sff" / "hlsp_k2sff_k2_lightcurve_221312395-c92_kepler_v1_llc.fits")
    with fits.open(io.BytesIO(written.read_bytes())) as hdul:
        assert len(hdul) == 25
