"""Every array read back with plain xarray equals the source file bit for bit.

References are independent of lcarchive: astropy reads the FITS tables, lightkurve reads the
light curves as astronomers do, and rows are aligned on cadence numbers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from conftest import in_scope_files
from reference import QUALITY_FILL, assert_bit_equal, source_table

# Default flux, its error and the quality column per product folder (lightkurve's choices).
DEFAULTS = {
    "qlp": ("SAP_FLUX", "KSPSAP_FLUX_ERR", "QUALITY"),
    "kepler": ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "SAP_QUALITY"),
    "k2": ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "SAP_QUALITY"),
}
SPOC_DEFAULT = ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "QUALITY")
FILES = in_scope_files()


@pytest.fixture(scope="module")
def rows_by_sha(full_archive):
    """Map each stored file's SHA-256 to (group URL, row), reading groups with plain xarray."""
    found = {}
    for obs in full_archive.observations:
        url = (full_archive.url, obs.id)
        with full_archive.open_observation(obs.id) as ds:
            for row, sha in enumerate(ds["source_sha256"].values):
                found[str(sha)] = (url, row)
    return found


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_columns_bit_exact_with_astropy(path, rows_by_sha):
    cols, head0, _ = source_table(path)
    url, row = rows_by_sha[_sha(path)]
    flux_col, err_col, quality_col = DEFAULTS.get(path.parent.name, SPOC_DEFAULT)
    with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds:
        one = ds.isel(target=row).load()
        target_id = int(ds["target"].values[row])
    key = "TICID" if "TICID" in head0 else "KEPLERID"
    assert target_id == int(head0[key])
    cadenceno = one["cadenceno"].values
    idx = np.searchsorted(cadenceno, cols["CADENCENO"])
    assert np.array_equal(cadenceno[idx], cols["CADENCENO"]), "cadence numbers misaligned"
    expected_vars = {"TIME": "time", flux_col: "flux", err_col: "flux_err", quality_col: "quality"}
    for column, values in cols.items():
        if column == "CADENCENO":
            continue
        var = expected_vars.get(column, column.lower())
        assert var in one, f"{column} not stored (as {var})"
        got = one[var].values[idx]
        assert_bit_equal(got, values, f"{path.name}:{column}")
        assert one[var].attrs["source_column"] == column
    # padding: cadences this target lacks are marked in quality and NaN in the floats
    pad = np.setdiff1d(np.arange(cadenceno.size), idx)
    assert np.all(one["quality"].values[pad] == QUALITY_FILL)
    assert np.all(np.isnan(one["flux"].values[pad]))
    assert not np.any(one["quality"].values[idx] == QUALITY_FILL)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_variables_equal_lightkurve(path, rows_by_sha):
    lk = pytest.importorskip("lightkurve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = lk.read(str(path), quality_bitmask="none")
    url, row = rows_by_sha[_sha(path)]
    with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds:
        one = ds.isel(target=row).load()
    idx = np.searchsorted(one["cadenceno"].values, np.asarray(lc["cadenceno"]))
    assert np.array_equal(one["cadenceno"].values[idx], np.asarray(lc["cadenceno"]))
    for ours, theirs in (
        ("time", lc.time.value),
        ("flux", lc.flux.value),
        ("flux_err", lc.flux_err.value),
        ("quality", np.asarray(lc.quality)),
    ):
        got = one[ours].values[idx]
        want = np.asarray(theirs)
        assert np.array_equal(got.astype(want.dtype), want, equal_nan=True), f"{ours} differs from lightkurve"


def test_time_system_attributes(full_archive):
    for obs in full_archive.observations:
        with full_archive.open_observation(obs.id) as ds:
            time = ds["time"]
            assert time.dtype == np.float64  # not decoded to datetime64 by xarray
            expected = {"tess": ("BTJD", 2457000.0), "kepler": ("BKJD", 2454833.0), "k2": ("BKJD", 2454833.0)}[obs.mission]
            assert (time.attrs["time_format"], time.attrs["reference_epoch_jd"]) == expected
            assert time.attrs["time_scale"] == "tdb"
            _, _, head1 = source_table_for(ds)
            assert head1["BJDREFI"] + head1.get("BJDREFF", 0.0) == expected[1]
            assert ds["quality"].dtype == np.int32


def source_table_for(ds):
    from astropy.io import fits

    header = fits.Header.fromstring(str(ds["header_lightcurve"].values[0]))
    return None, None, header


@pytest.mark.parametrize("opener", ["open_dataset", "open_zarr"])
def test_plain_xarray_and_icechunk_without_lcarchive(full_archive, opener):
    """The three lines of docs/format.md open every group with icechunk and xarray alone."""
    groups = {o.id: f"{full_archive.url}/observations/{o.id.split('.')[0]}" for o in full_archive.observations}
    code = f"""
import json, sys, icechunk, xarray as xr
out = {{}}
for group, path in {groups!r}.items():
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    store = repo.readonly_session(branch="main").store
    ds = (xr.open_dataset(store, group=group, engine="zarr", consolidated=False) if {opener!r} == "open_dataset"
          else xr.open_zarr(store, group=group, consolidated=False))
    ds.load()
    out[group] = [ds.sizes["target"], ds.sizes["cadence"], str(ds["time"].dtype), str(ds["quality"].dtype)]
assert "lcarchive" not in sys.modules
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sizes = json.loads(result.stdout)
    for obs in full_archive.observations:
        n_t, n_c, tdtype, qdtype = sizes[obs.id]
        assert (n_t, n_c) == (obs.n_targets, obs.n_cadences)
        assert (tdtype, qdtype) == ("float64", "int32")


def test_headers_kept_complete(full_archive, rows_by_sha):
    from astropy.io import fits

    for path in FILES:
        url, row = rows_by_sha[_sha(path)]
        with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds, fits.open(path) as hdul:
            for hdu in hdul:
                name = f"header_{hdu.name.lower()}"
                assert str(ds[name].values[row]) == hdu.header.tostring(), f"{path.name} {name}"


def test_aperture_images_kept(rows_by_sha):
    from astropy.io import fits

    checked = 0
    for path in FILES:
        url, row = rows_by_sha[_sha(path)]
        with fits.open(path) as hdul, xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds:
            images = [h for h in hdul[1:] if isinstance(h, fits.ImageHDU)]
            for hdu in images:
                stored = ds[hdu.name.lower()].values[row]
                ny, nx = hdu.data.shape
                assert_bit_equal(stored[:ny, :nx], hdu.data.astype(hdu.data.dtype.newbyteorder("=")), f"{path.name} {hdu.name}")
                assert np.all(stored[ny:, :] == QUALITY_FILL) and np.all(stored[:, nx:] == QUALITY_FILL)
                checked += 1
    assert checked >= 20


def test_fast_point_read_equals_plain_xarray(full_archive):
    """Archive.light_curve (own shard-index reader) returns what plain xarray reads, for every row."""
    index = full_archive.target_index()
    assert len(index) == sum(o.n_targets for o in full_archive.observations)
    for line in index.itertuples():
        lc = full_archive.light_curve(line.target, observation=line.observation, quality_bitmask="none")
        with full_archive.open_observation(line.observation) as ds:
            row = ds.isel(target=line.row).load()
        assert int(row["target"]) == line.target
        present = row["quality"].values != QUALITY_FILL
        assert np.array_equal(lc["cadenceno"].values, row["cadenceno"].values[present])
        for name, var in row.data_vars.items():
            if var.dims == ("cadence",):
                assert_bit_equal(lc[name].values, var.values[present], f"{line.observation} {name}")
            elif var.dims == ():
                got = lc[name].values[0]
                assert got == var.values.item() or (got != got and var.values != var.values), name
            else:
                assert_bit_equal(lc[name].values[0], var.values, f"{line.observation} {name}")
        assert lc.attrs["target"] == line.target
