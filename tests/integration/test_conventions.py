"""Datasets lcarchive returns are written by netCDF and Zarr writers and read back identical,
with CF's descriptive attributes (lcarchive/conventions.py)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from lcarchive.quality import flag_table


def test_an_observation_round_trips_through_netcdf_and_zarr(full_archive, tmp_path):
    ds = full_archive.open_observation("tess-spoc-2min-s0001")
    ds.to_netcdf(tmp_path / "obs.nc")
    ds.to_zarr(tmp_path / "obs.zarr")
    with xr.open_dataset(tmp_path / "obs.nc") as back:
        xr.testing.assert_identical(back.load(), ds.load())
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "obs.zarr").load(), ds.load())
    entry = json.loads(ds.attrs["lcarchive_observation"])  # the group's catalog entry, as JSON text
    catalog = full_archive.catalog.observation("tess-spoc-2min-s0001").model_dump(mode="json")
    assert {k: entry[k] for k in ("id", "product", "segment", "n_targets", "time_min", "instruments")} == {
        k: catalog[k] for k in ("id", "product", "segment", "n_targets", "time_min", "instruments")
    }
    assert ds["flux"].attrs["long_name"] == ds["flux"].attrs["description"]


def test_a_star_across_sectors_round_trips_through_netcdf(full_archive, tmp_path):
    lc = full_archive.light_curve(39903405, product="spoc-2min", quality_bitmask="none")
    assert lc.sizes["observation"] == 2
    lc.to_netcdf(tmp_path / "star.nc")
    with xr.open_dataset(tmp_path / "star.nc") as back:
        xr.testing.assert_identical(back.load(), lc)
    normalized = full_archive.light_curve(39903405, product="spoc-2min", normalize=True)
    assert normalized["flux"].attrs["units"] == "" and not {"fits_unit", "astropy_unit"} & set(normalized["flux"].attrs)
    normalized.to_netcdf(tmp_path / "normalized.nc")
    with xr.open_dataset(tmp_path / "normalized.nc") as back:
        xr.testing.assert_identical(back.load(), normalized)


def test_quality_carries_its_flag_table_as_cf_flags(full_archive):
    ds = full_archive.open_observation("tess-spoc-2min-s0001")
    masks, meanings = ds["quality"].attrs["flag_masks"], ds["quality"].attrs["flag_meanings"].split()
    table = {f.value: f.name for f in flag_table("spoc").flags}
    assert masks.dtype == ds["quality"].dtype and list(masks) == sorted(table)
    assert meanings == [table[v] for v in sorted(table)]
    assert dict(zip(masks.tolist(), meanings, strict=True))[32] == "Desat"  # lightkurve's TessQualityFlags.Desat
    lc = full_archive.light_curve(39903405, product="qlp", quality_bitmask="none")
    qlp = lc["quality"].attrs["flag_meanings"].split()
    assert len(qlp) == len(lc["quality"].attrs["flag_masks"]) and np.all(np.diff(lc["quality"].attrs["flag_masks"]) > 0)


def test_every_unit_is_udunits_and_astropy_spelling_is_kept(full_archive):
    import cf_units
    from astropy import units as u

    from lcarchive.conventions import astropy_unit

    seen = {}
    for observation in full_archive.catalog.observations:
        with full_archive.open_observation(observation.id) as ds:
            assert ds.attrs["Conventions"] == "CF-1.11"
            for name, variable in ds.variables.items():
                unit = variable.attrs.get("units")
                if not unit:
                    continue
                assert cf_units.Unit(unit).is_udunits(), f"{observation.id}/{name}: units {unit!r} is not UDUNITS"
                seen[unit] = astropy_unit(variable.attrs)
                u.Unit(astropy_unit(variable.attrs))  # astropy's spelling parses too
    # the light curves' electrons per second, pixel positions, days and magnitudes, each spelled both ways
    assert seen["count s-1"] == "electron / s" and seen["d"] == "d" and seen["1"] in ("pix", "mag")
    lc = full_archive.light_curve(261136679, product="spoc-2min")
    assert lc.lc.to_lightkurve().flux.unit == u.electron / u.s  # astropy and lightkurve read astropy's spelling
