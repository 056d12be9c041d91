"""Ingest behaviour: grouping, later batches, idempotency, releases, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive

from conftest import DATA
from reference import QUALITY_FILL, assert_bit_equal

SPOC = DATA / "spoc-2min"
S1 = sorted(SPOC.glob("tess2018206045859-s0001-*.fits"))
RELEASE1 = SPOC / "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits"
RELEASE0 = DATA / "spoc-2min-release0" / RELEASE1.name
BAD = sorted((DATA / "bad").glob("*.fits"))


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under an archive root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_files_of_one_sector_share_a_group(tmp_path):
    archive = lcarchive.Archive(str(tmp_path / "a"))
    report = archive.ingest([str(p) for p in S1])
    assert report.ok and len(report.added) == 3
    assert [o.id for o in lcarchive.open_archive(str(tmp_path / "a")).observations] == ["tess-spoc-2min-s0001"]
    ds = archive.open_observation("tess-spoc-2min-s0001")
    assert sorted(ds["target"].values.tolist()) == [261136679, 358108509, 425933644]
    assert ds.sizes["cadence"] == 20076


def test_later_batch_adds_targets_and_keeps_earlier_ones(tmp_path):
    root = tmp_path / "a"
    archive = lcarchive.Archive(str(root))
    archive.ingest([str(S1[0])])
    before = archive.open_observation("tess-spoc-2min-s0001").isel(target=0).load()
    archive.ingest([str(p) for p in S1[1:]] + [str(SPOC / "target_s0001.fits")])
    ds = lcarchive.open_archive(str(root)).open_observation("tess-spoc-2min-s0001")
    assert ds.sizes["target"] == 4
    after = ds.sel(target=int(before["target"])).load()
    for name in ("time", "flux", "flux_err", "quality", "sap_flux"):
        assert_bit_equal(after[name].values, before[name].values, name)
    assert lcarchive.open_archive(str(root)).catalog.observation("tess-spoc-2min-s0001").n_targets == 4


def test_ingesting_the_same_files_again_changes_nothing(full_archive, copy_of):
    root = Path(copy_of(full_archive))
    before = snapshot(root)
    report = lcarchive.Archive(str(root)).ingest([str(DATA / "spoc-2min"), str(DATA / "kepler"), str(DATA / "qlp")])
    assert report.added == [] and report.superseded == [] and report.ok
    assert len(report.unchanged) == 17
    assert snapshot(root) == before


def test_two_releases_are_both_kept_newest_current(tmp_path):
    for order in ([RELEASE1, RELEASE0], [RELEASE0, RELEASE1]):
        root = tmp_path / f"a{order[0].parent.name}"
        archive = lcarchive.Archive(str(root))
        for path in order:  # one at a time: a later batch meets a stored release
            archive.ingest([str(path)])
        archive = lcarchive.open_archive(str(root))
        ids = [o.id for o in archive.observations]
        assert ids == ["tess-spoc-2min-s0001", "tess-spoc-2min-s0001.dr0"]
        current = archive.open_observation("tess-spoc-2min-s0001")
        older = archive.open_observation("tess-spoc-2min-s0001.dr0")
        assert current["data_release"].values.tolist() == [1]
        assert older["data_release"].values.tolist() == [0]
        for ds, path in ((current, RELEASE1), (older, RELEASE0)):
            with fits.open(path) as hdul:
                assert_bit_equal(ds["flux"].values[0], hdul[1].data["PDCSAP_FLUX"].astype("f4"), path.name)
        obs = archive.catalog.observation("tess-spoc-2min-s0001.dr0")
        assert obs.superseded_release and obs.current == "tess-spoc-2min-s0001"
        assert archive.catalog.observation("tess-spoc-2min-s0001").superseded_by_release == ["tess-spoc-2min-s0001.dr0"]
        # the default cross-observation read gives the current release only
        lc = archive.light_curve(25155310, quality_bitmask="none")
        assert lc["data_release"].values.tolist() == [1]


@pytest.mark.parametrize("bad", BAD, ids=lambda p: p.name)
def test_bad_file_is_refused_by_name_and_archive_unchanged(bad, full_archive, copy_of):
    root = Path(copy_of(full_archive))
    before = snapshot(root)
    report = lcarchive.Archive(str(root)).ingest([str(bad)])
    assert [s for s, _ in report.skipped] == [str(bad)]
    reason = report.skipped[0][1]
    assert any(w in reason for w in ("truncated", "unreadable", "corrupt")), reason
    assert snapshot(root) == before


def test_batch_with_bad_files_ingests_the_good_ones(tmp_path):
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(DATA / "bad"), str(S1[0])])
    assert len(report.skipped) == len(BAD)
    assert [t for _, _, t in report.added] == [261136679]
    assert lcarchive.open_archive(str(root)).observations[0].n_targets == 1


def test_empty_unrecognised_and_missing_files(tmp_path):
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    text = tmp_path / "notes.fits"
    text.write_text("not a light curve\n")
    other = tmp_path / "image.fits"  # a FITS file, but an image, not a light curve of any product
    fits.PrimaryHDU(data=np.zeros((4, 4), dtype="f4"), header=fits.Header([("TELESCOP", "JWST"), ("OBJECT", "M31")])).writeto(
        other
    )
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(empty), str(text), str(other), str(tmp_path / "nope.fits")])
    reasons = dict(report.skipped)
    assert "empty" in reasons[str(empty)]
    assert "not a FITS file" in reasons[str(text)]
    assert "no light curve" in reasons[str(other)]
    assert "no such file" in reasons[str(tmp_path / "nope.fits")]
    assert report.added == []


def _rewrite(src: Path, dest: Path, *, keep=None, header=None) -> Path:
    """Write a copy of a real file with some rows kept or primary keywords changed."""
    with fits.open(src) as hdul:
        if keep is not None:
            hdul[1].data = hdul[1].data[keep]
        for key, value in (header or {}).items():
            hdul[0].header[key] = value
        hdul.writeto(dest)
    return dest


def test_invalid_target_ids_are_refused(tmp_path):
    src = S1[0]
    bad_ids = {"zero": 0, "string": "TIC-abc", "negative": -5}
    files = [_rewrite(src, tmp_path / f"{k}.fits", header={"TICID": v}) for k, v in bad_ids.items()]
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(f) for f in files])
    assert len(report.skipped) == 3 and report.added == []
    for _, reason in report.skipped:
        assert "TICID" in reason


def test_cadence_axis_is_the_union_and_padding_is_marked(tmp_path):
    # two targets of sector 1 with different cadence coverage (rows removed from a real file)
    part = _rewrite(S1[1], tmp_path / "part.fits", keep=slice(3000, 17000))
    archive = lcarchive.Archive(str(tmp_path / "a"))
    archive.ingest([str(part)])
    assert archive.open_observation("tess-spoc-2min-s0001").sizes["cadence"] == 14000
    archive.ingest([str(S1[0])])  # wider: the group is rewritten on the union
    ds = lcarchive.open_archive(str(tmp_path / "a")).open_observation("tess-spoc-2min-s0001").load()
    assert ds.sizes["cadence"] == 20076
    with fits.open(S1[1]) as hdul:
        kept = hdul[1].data[3000:17000]
        row = ds.sel(target=int(hdul[0].header["TICID"]))
        present = row["quality"].values != QUALITY_FILL
        assert present.sum() == 14000
        assert np.array_equal(row["cadenceno"].values[present], kept["CADENCENO"])
        assert_bit_equal(row["time"].values[present], kept["TIME"].astype("f8"), "time")
        assert np.all(np.isnan(row["time"].values[~present]))


def test_light_curve_across_observations(full_archive):
    # three products of one star: the mission's default (SPOC 2-min) is read, never a join,
    # and the others are named
    default = full_archive.light_curve(39903405, quality_bitmask="none")
    assert default["observation"].values.tolist() == ["tess-spoc-2min-s0024", "tess-spoc-2min-s0025"]
    assert set(default["product"].values.tolist()) == {"spoc-2min"}
    assert default.attrs["other_products"] == "qlp, tess-spoc"
    assert "qlp (2 observations)" in default.attrs["note"] and "products='all'" in default.attrs["note"]
    lc = full_archive.light_curve(39903405, product="spoc-2min", quality_bitmask="none")
    assert lc["observation"].values.tolist() == ["tess-spoc-2min-s0024", "tess-spoc-2min-s0025"]
    assert set(lc["product"].values.tolist()) == {"spoc-2min"} and "other_products" not in lc.attrs
    xr.testing.assert_identical(lc, default.drop_attrs(deep=False).assign_attrs(lc.attrs))
    every = full_archive.light_curve(39903405, products="all", quality_bitmask="none")
    assert sorted(every) == ["qlp", "spoc-2min", "tess-spoc"]
    assert every["qlp"]["observation"].values.tolist() == ["tess-qlp-s0024", "tess-qlp-s0025"]
    xr.testing.assert_identical(every["spoc-2min"], lc)
    # the forms the CLI accepts; a prefix keeps that catalog's missions
    xr.testing.assert_identical(full_archive.light_curve("TIC 39903405", quality_bitmask="none"), default)
    with pytest.raises(lcarchive.TargetNotFoundError, match="39903405"):
        full_archive.light_curve("KIC 39903405", quality_bitmask="none")
    with pytest.raises(ValueError, match="is not a target ID"):
        full_archive.light_curve("TIC-x", quality_bitmask="none")
    with pytest.raises(lcarchive.UnknownProductError, match="did you mean 'spoc-2min'"):
        full_archive.light_curve(39903405, product="spoc2min")
    many = full_archive.light_curves(["TIC 39903405", 39903405], quality_bitmask="none")
    assert list(many) == [39903405]
    xr.testing.assert_identical(many[39903405], default)
    one = full_archive.light_curve(39903405, observation="tess-spoc-2min-s0024", quality_bitmask="none")
    with fits.open(DATA / "spoc-2min" / "tess2020106103520-s0024-0000000039903405-0180-s_lc.fits") as hdul:
        assert_bit_equal(one["time"].values, hdul[1].data["TIME"].astype("f8"), "time")
        assert_bit_equal(one["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), "flux")
    with pytest.raises(lcarchive.TargetNotFoundError, match="123"):
        full_archive.light_curve(123, quality_bitmask="none")
    with pytest.raises(lcarchive.ObservationNotFoundError, match="no-such"):
        full_archive.open_observation("no-such")


def test_catalog_rebuilt_from_store_equals_incremental(full_archive, copy_of):
    root = copy_of(full_archive)
    rebuilt = lcarchive.Archive(root).build_catalog()
    assert rebuilt.model_dump() == full_archive.catalog.model_dump()


def test_qlp_error_column_follows_sector_like_lightkurve(tmp_path):
    """From sector 56 on QLP's flux error is DET_FLUX_ERR (lightkurve's choice too)."""
    lk = pytest.importorskip("lightkurve")
    src = DATA / "qlp" / "hlsp_qlp_tess_ffi_s0024-0000000039903405_tess_v01_llc.fits"
    dest = tmp_path / "qlp-s60.fits"
    with fits.open(src) as hdul:
        table = hdul[1]
        det = fits.Column(name="DET_FLUX_ERR", format="E", array=table.data["KSPSAP_FLUX_ERR"] * 2)
        new = fits.BinTableHDU.from_columns(table.columns + fits.ColDefs([det]), header=table.header)
        hdul[0].header["SECTOR"] = 60
        fits.HDUList([hdul[0], new]).writeto(dest)
    archive = lcarchive.Archive(str(tmp_path / "a"))
    assert archive.ingest([str(dest)]).ok
    ds = archive.open_observation("tess-qlp-s0060").isel(target=0).load()
    assert ds["flux_err"].attrs["source_column"] == "DET_FLUX_ERR"
    assert "kspsap_flux_err" in ds
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = lk.read(str(dest), quality_bitmask="none")
    idx = np.searchsorted(ds["cadenceno"].values, np.asarray(lc["cadenceno"]))
    assert np.array_equal(ds["flux_err"].values[idx], np.asarray(lc.flux_err.value, dtype="f4"), equal_nan=True)


def test_small_shards_append_and_replace_in_place(tmp_path):
    """Several shards per group: appends fill and add shards, a newer release replaces one row."""
    import lcarchive.config

    with lcarchive.config.override(targets_per_shard=2):
        _small_shards(tmp_path)


def _small_shards(tmp_path):
    root = tmp_path / "a"
    archive = lcarchive.Archive(str(root))
    archive.ingest([str(p) for p in S1] + [str(RELEASE0)])  # 4 targets: shards of 2
    before = archive.open_observation("tess-spoc-2min-s0001").load()
    archive.ingest([str(SPOC / "target_s0001.fits"), str(RELEASE1)])  # one new target, one newer release
    archive = lcarchive.open_archive(str(root))
    after = archive.open_observation("tess-spoc-2min-s0001").load()
    assert after.sizes["target"] == 5
    assert after["target"].values[:4].tolist() == before["target"].values.tolist()  # rows keep their place
    for t in before["target"].values:
        if t == 25155310:
            continue
        for name in ("time", "flux", "quality", "aperture"):
            assert_bit_equal(after[name].sel(target=t).values, before[name].sel(target=t).values, f"{t} {name}")
    with fits.open(RELEASE1) as hdul:
        assert_bit_equal(after["flux"].sel(target=25155310).values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), "release 1")
    older = archive.open_observation("tess-spoc-2min-s0001.dr0")
    with fits.open(RELEASE0) as hdul:
        assert_bit_equal(older["flux"].values[0], hdul[1].data["PDCSAP_FLUX"].astype("f4"), "release 0")
    import zarr

    store, path = archive.group_store("tess-spoc-2min-s0001")
    group = zarr.open_group(store, path=path, mode="r")
    assert group["flux"].shards == (2, 20076)
    keys = zarr.core.sync.sync(_keys(store, f"{path}/flux"))
    assert sorted(k for k in keys if "/c/" in k) == [f"{path}/flux/c/{i}/0" for i in range(3)]
    assert archive.catalog.observation("tess-spoc-2min-s0001").n_targets == 5


async def _keys(store, prefix: str) -> list[str]:
    return [k async for k in store.list_prefix(prefix)]


def _segment(src: Path, dest: Path, rows: slice) -> Path:
    """A real file cut to some of its rows, with TSTART/TSTOP of those rows: one 'month'."""
    with fits.open(src) as hdul:
        hdul[1].data = hdul[1].data[rows]
        time = hdul[1].data["TIME"]
        for hdu in (hdul[0], hdul[1]):
            if "TSTART" in hdu.header:
                hdu.header["TSTART"] = float(np.nanmin(time))
                hdu.header["TSTOP"] = float(np.nanmax(time))
        hdul.writeto(dest)
    return dest


@pytest.mark.parametrize("together", [True, False], ids=["one batch", "two batches"])
def test_segments_of_one_light_curve_become_one_row(tmp_path, together):
    """Kepler short cadence comes as one file per month: same target, quarter and release,
    different cadences. They make one row, not two releases."""
    src = DATA / "kepler" / "kplr011442793-2009350155506_llc.fits"
    one = _segment(src, tmp_path / "m1.fits", slice(0, 2000))
    two = _segment(src, tmp_path / "m2.fits", slice(2000, None))
    archive = lcarchive.Archive(str(tmp_path / "a"))
    if together:
        report = archive.ingest([str(two), str(one)])
        assert not report.superseded and len(report.added) == 2
    else:
        archive.ingest([str(one)])
        report = archive.ingest([str(two)])
        assert not report.superseded and len(report.added) == 1
    archive = lcarchive.open_archive(str(tmp_path / "a"))
    assert [o.id for o in archive.observations] == ["kepler-lc-q03"]
    ds = archive.open_observation("kepler-lc-q03").load()
    assert ds.sizes["target"] == 1
    with fits.open(src) as hdul:
        table = hdul[1].data
        assert np.array_equal(ds["cadenceno"].values, table["CADENCENO"])
        assert_bit_equal(ds["time"].values[0], table["TIME"].astype("f8"), "time")
        assert_bit_equal(ds["flux"].values[0], table["PDCSAP_FLUX"].astype("f4"), "flux")
        assert_bit_equal(ds["quality"].values[0], table["SAP_QUALITY"].astype("i4"), "quality")
    assert str(ds["source_file"].values[0]).split("\n") == ["m1.fits", "m2.fits"]
    headers = str(ds["header_primary"].values[0])
    assert headers.count("SIMPLE  =") == 2 and len(headers) % 2880 == 0
    inputs = set(archive.inputs("kepler-lc-q03")["name"])
    assert inputs == {"m1.fits", "m2.fits"}
    again = lcarchive.Archive(str(tmp_path / "a")).ingest([str(one), str(two)])
    assert len(again.unchanged) == 2 and not again.added
