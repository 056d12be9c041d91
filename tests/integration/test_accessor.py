"""``ds.lc``: quality masks, time, lightkurve and astropy interop, normalise/stitch/fold, plot,
checked against lightkurve on the real light curves of ../shared."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from astropy.io import fits

import lcarchive

from conftest import DATA

matplotlib.use("Agg")
lk = pytest.importorskip("lightkurve")

SPOC = DATA / "spoc-2min"
SECTORS = [SPOC / f"target_s000{s}.fits" for s in (1, 2, 3, 4)]  # TIC 279741379, sectors 1-4
PI_MEN = SPOC / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
KEPLER = sorted((DATA / "kepler").glob("*.fits"))[0]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("accessor") / "archive")
    assert lcarchive.Archive(root).ingest([str(p) for p in [*SECTORS, PI_MEN, KEPLER]]).ok
    return root


def _read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lk.read(str(path), **kwargs)


def _values(column):
    return np.asarray(getattr(column, "value", column))


def test_the_lightkurve_workflow_in_six_lines_gives_lightkurves_arrays(root):
    # read a star's sectors, default quality mask, remove NaNs, normalise per sector, stitch, fold, plot
    archive = lcarchive.open_archive(root)
    lc = archive.light_curve(279741379, normalize=True).lc.remove_nans()  # default quality mask, as lightkurve's read
    stitched = lc.lc.to_lightkurve().stitch(lambda x: x)
    folded = stitched.fold(period=3.1, epoch_time=1326.0)
    ax = lc.lc.plot()
    # the same steps one by one, from every stored cadence
    by_steps = archive.light_curve(279741379, quality_bitmask="none").lc.good().lc.remove_nans().lc.normalize()
    assert by_steps.drop_attrs().identical(lc.drop_attrs())

    reference = lk.LightCurveCollection([_read(p).remove_nans() for p in SECTORS]).stitch()
    assert len(stitched) == len(reference) and len(stitched) < sum(len(_read(p, quality_bitmask="none")) for p in SECTORS)
    for name in ("flux", "flux_err", "quality"):
        np.testing.assert_array_equal(_values(stitched[name]), _values(reference[name]), err_msg=name)
    np.testing.assert_array_equal(stitched.time.value, reference.time.value)
    lk_folded = reference.fold(period=3.1, epoch_time=1326.0)
    np.testing.assert_array_equal(folded.time.value, lk_folded.time.value)
    np.testing.assert_array_equal(_values(folded.flux), _values(lk_folded.flux))
    assert len(ax.get_lines()) == 4 and "BTJD" in ax.get_xlabel() and len(ax.get_legend().get_texts()) == 4


def test_to_lightkurve_equals_lightkurve_read_of_the_source(root):
    archived = lcarchive.open_archive(root).light_curve(261136679, quality_bitmask="none").lc.good().lc.to_lightkurve()
    source = _read(PI_MEN)
    assert isinstance(archived, lk.TessLightCurve)
    for name in ("flux", "flux_err", "quality", "cadenceno", "sap_flux", "mom_centr1"):
        np.testing.assert_array_equal(_values(archived[name]), _values(source[name]), err_msg=name)
    assert archived.flux.unit == source.flux.unit and archived.time.format == "btjd" and archived.time.scale == "tdb"
    np.testing.assert_array_equal(archived.time.value, source.time.value)
    assert archived.meta["TICID"] == 261136679 and archived.meta["SECTOR"] == 1
    assert archived.meta["FLUX_ORIGIN"] == "pdcsap_flux" and archived.meta["QUALITY_BITMASK"] == "default"


def test_a_kepler_light_curve_converts_with_keplers_flags_and_bkjd(root):
    archive = lcarchive.open_archive(root)
    kepid = int(_read(KEPLER).meta["KEPLERID"])
    archived = archive.light_curve(kepid, quality_bitmask="none").lc.good("hard").lc.to_lightkurve()
    source = _read(KEPLER, quality_bitmask="hard")
    assert isinstance(archived, lk.KeplerLightCurve) and archived.time.format == "bkjd"
    np.testing.assert_array_equal(_values(archived.flux), _values(source.flux))
    np.testing.assert_array_equal(archived.time.value, source.time.value)


@pytest.mark.parametrize("bitmask", ["none", "default", "hard", "hardest", 175])
def test_quality_masks_are_lightkurves(root, bitmask):
    lc = lcarchive.open_archive(root).light_curve(279741379, quality_bitmask="none")
    ours = lc.lc.quality_mask(bitmask).values
    expected = np.concatenate(
        [  # on every row of the files (lightkurve's read drops rows without a time)
            lk.utils.TessQualityFlags.create_quality_mask(fits.getdata(p, 1)["QUALITY"], bitmask) for p in SECTORS
        ]
    )
    np.testing.assert_array_equal(ours, expected)


def test_flag_counts_say_what_the_mask_removes(root):
    lc = lcarchive.open_archive(root).light_curve(261136679, quality_bitmask="none")
    counts = lc.lc.flag_counts("default")
    quality = fits.getdata(PI_MEN, 1)["QUALITY"]
    removed = int((~lk.utils.TessQualityFlags.create_quality_mask(quality, "default")).sum())
    assert counts["removed by default"] == removed > 0
    desat = lk.utils.TessQualityFlags.Desat  # "Desat" in the catalog's SPOC table (bit 6, value 32)
    assert counts["Desat"] == int((quality & desat != 0).sum()) > 0
    assert len(lc.lc.good()["time"]) == len(quality) - removed


def test_time_is_astropy_time_in_tdb_with_nan_stamps_masked(root):
    lc = lcarchive.open_archive(root).light_curve(261136679, quality_bitmask="none")
    time = lc.lc.time
    assert time.format == "btjd" and time.scale == "tdb" and len(time) == lc.sizes["cadence"]
    nan = np.isnan(lc["time"].values)
    assert nan.any()  # SPOC files have cadences without a time stamp
    assert time.mask is not None and np.array_equal(np.asarray(time.mask), nan)
    np.testing.assert_array_equal(time.value[~nan], lc["time"].values[~nan])


def test_to_timeseries_keeps_units(root):
    ts = lcarchive.open_archive(root).light_curve(261136679, quality_bitmask="none").lc.good().lc.to_timeseries()
    assert str(ts["flux"].unit) == "electron / s" and ts.time.scale == "tdb"
    np.testing.assert_array_equal(ts["flux"].value, _values(_read(PI_MEN).flux))


def test_from_lightkurve_comes_back_as_itself(root):
    source = _read(PI_MEN)
    ds = lcarchive.from_lightkurve(source)
    back = ds.lc.to_lightkurve()
    np.testing.assert_array_equal(back.time.value, source.time.value)
    for name in ("flux", "flux_err", "quality"):
        np.testing.assert_array_equal(_values(back[name]), _values(source[name]), err_msg=name)
    assert ds.lc.quality_mask().values.all()  # lightkurve's read already removed the default-masked cadences


def test_an_observation_group_masks_per_target(root):
    ds = lcarchive.open_archive(root).open_observation("tess-spoc-2min-s0001")
    mask = ds.lc.quality_mask()
    assert mask.dims == ("target", "cadence")
    row = int(np.flatnonzero(ds["target"].values == 261136679)[0])
    expected = lk.utils.TessQualityFlags.create_quality_mask(fits.getdata(PI_MEN, 1)["QUALITY"], "default")
    assert mask.values[row][ds["quality"].values[row] != lcarchive.quality.PADDING].tolist() == expected.tolist()
    good = ds.lc.good()
    assert np.isnan(good["flux"].values[row][~mask.values[row]]).all()


def test_normalize_refuses_a_flux_of_no_positive_level(root):
    lc = lcarchive.open_archive(root).light_curve(261136679, quality_bitmask="none")
    lc["flux"] = lc["flux"] * 0
    with pytest.raises(lcarchive.LcarchiveError, match="cannot normalise"):
        lc.lc.normalize()


def test_unknown_variable_names_are_refused_by_name(root):
    archive = lcarchive.open_archive(root)
    with pytest.raises(lcarchive.UnknownVariableError, match="'pdcsap_flx'") as info:
        archive.light_curve(279741379, variables=["flux", "pdcsap_flx"], quality_bitmask="none")
    assert "sap_flux" in str(info.value)  # what the groups do have
    with pytest.raises(KeyError):  # also a KeyError, as a missing key of a dataset is
        archive.light_curve(279741379, observation="tess-spoc-2min-s0002", variables=["nope"], quality_bitmask="none")
    assert set(archive.light_curve(279741379, variables=["flux"], quality_bitmask="none").data_vars) == {"flux", "quality"}


def test_light_curve_masks_and_normalises_when_asked(root):
    archive = lcarchive.open_archive(root)
    asked = archive.light_curve(279741379, quality_bitmask="default", normalize=True)
    by_hand = archive.light_curve(279741379, quality_bitmask="none").lc.good().lc.normalize()
    for name in ("time", "flux", "flux_err", "quality"):
        np.testing.assert_array_equal(asked[name].values, by_hand[name].values, err_msg=name)
    assert asked["flux"].attrs["units"] == "" and np.nanmedian(asked["flux"].values) == pytest.approx(1, abs=1e-3)
    with pytest.raises(lcarchive.TargetNotFoundError, match="product qlp"):
        archive.light_curve(279741379, product="qlp", quality_bitmask="none")


def test_light_curve_of_some_observations_only(root):
    archive = lcarchive.open_archive(root)
    two = archive.light_curve(279741379, observations=["tess-spoc-2min-s0002", "tess-spoc-2min-s0004"])
    assert two["observation"].values.tolist() == ["tess-spoc-2min-s0002", "tess-spoc-2min-s0004"]
    whole = archive.light_curve(279741379)
    keep = np.isin(whole["cadence_observation"].values, ["tess-spoc-2min-s0002", "tess-spoc-2min-s0004"])
    np.testing.assert_array_equal(two["flux"].values, whole["flux"].values[keep])
