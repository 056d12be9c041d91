"""The per-cadence frame table of real observations, checked against their files read by astropy."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from lcarchive.catalog.content import static_catalog
from lcarchive.formats import parse_lightcurve
from lcarchive.layout import block_from_file
from lcarchive.layout.frametable import frame_table, merge_frames

from conftest import DATA, PUBLIC

SPOC_S1 = [
    *sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*")),
    DATA / "spoc-2min" / "target_s0001.fits",
    DATA / "spoc-2min" / "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits",
]
KINDS = {
    "tess-spoc-2min-s0001": SPOC_S1,
    "kepler-lc-q05": sorted((DATA / "kepler").glob("*2010174085026_llc.fits")),
    "k2-lc-c05": sorted((DATA / "k2").glob("*c05_llc.fits")),
    "tess-qlp-s0024": sorted((DATA / "qlp").glob("*s0024*.fits")),
}


def _cards(header: fits.Header) -> dict:
    """Keyword -> value (None for an undefined value), COMMENT and HISTORY left out."""
    return {
        c.keyword: None if isinstance(c.value, fits.card.Undefined) else c.value
        for c in header.cards
        if c.keyword not in ("", "COMMENT", "HISTORY")
    }


def _fits_facts(path: Path) -> dict:
    """What the frame table must agree with, read by astropy alone."""
    with fits.open(path) as hdul:
        table, head, primary = hdul[1].data, hdul[1].header, hdul[0].header
        quality = table["QUALITY"] if "QUALITY" in table.names else table["SAP_QUALITY"]
        if "CAMERA" in primary:
            instrument = f"tess/camera{primary['CAMERA']}/ccd{primary['CCD']}"
        else:
            instrument = f"kepler/module{primary['MODULE']}/output{primary['OUTPUT']}"
        time = np.asarray(table["TIME"], np.float64)
        corr = np.asarray(table["TIMECORR"], np.float64) if "TIMECORR" in table.names else None
        return {
            "cadenceno": np.asarray(table["CADENCENO"], np.int64),
            "spacecraft": None if corr is None else time - corr,
            "quality": np.asarray(quality, np.int64) & 0xFFFFFFFF,
            "instrument": instrument,
            "timedel": head.get("TIMEDEL"),
            "timepixr": head.get("TIMEPIXR", 0.5),
            "primary": _cards(primary),
            "lightcurve": _cards(head),
        }


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "archive"
    files = [str(p) for paths in KINDS.values() for p in paths]
    report = lcarchive.Archive(str(root)).ingest(files)
    assert report.skipped == []
    return lcarchive.open_archive(str(root))


def _current_files(archive, observation: str) -> list[Path]:
    """The files whose light curves the group holds (older releases go to release groups)."""
    with archive.open_observation(observation) as ds:
        shas = {str(s) for s in ds["source_sha256"].values}
    import hashlib

    return [p for p in KINDS[observation] if hashlib.sha256(p.read_bytes()).hexdigest() in shas]


@pytest.mark.parametrize("observation", sorted(KINDS))
def test_frame_table_against_the_files(archive, observation):
    frames = archive.frames(observation)
    files = _current_files(archive, observation)
    assert files
    facts = [_fits_facts(p) for p in files]
    assert list(frames.indexes["cadenceno"]) == sorted(set(np.concatenate([f["cadenceno"] for f in facts]).tolist()))
    assert sorted(frames["instrument"].values.tolist()) == sorted({f["instrument"] for f in facts})
    counts: dict[tuple[int, str], int] = {}
    for f in facts:
        for c in f["cadenceno"]:
            counts[(int(c), f["instrument"])] = counts.get((int(c), f["instrument"]), 0) + 1
    for f in facts:
        one = frames.sel(instrument=f["instrument"], cadenceno=f["cadenceno"])
        alone = all(g is f or g["instrument"] != f["instrument"] for g in facts)
        n = np.array([counts[(int(c), f["instrument"])] for c in f["cadenceno"]])
        assert np.array_equal(one["n_files"].values, n)
        quality = f["quality"]
        every = one["quality_all"].values.astype(np.int64) & 0xFFFFFFFF
        anyone = one["quality_any"].values.astype(np.int64) & 0xFFFFFFFF
        assert np.all(every & ~quality == 0) and np.all(quality & ~anyone == 0)
        mask = frames.attrs["spacecraft_mask"]
        assert np.array_equal(one["spacecraft_quality"].values.astype(np.int64) & 0xFFFFFFFF, anyone & mask)
        if alone:
            assert np.array_equal(every, quality) and np.array_equal(anyone, quality)
        if f["spacecraft"] is None:  # QLP gives no TIMECORR: no time before barycentric correction
            assert np.isnan(one["frame_time"].values).all()
            continue
        finite = np.isfinite(f["spacecraft"])
        got, spread = one["frame_time"].values, one["frame_time_spread"].values
        assert np.all(got[finite] <= f["spacecraft"][finite]) and np.all(f["spacecraft"][finite] <= (got + spread)[finite])
        if alone:
            assert np.array_equal(got[finite], f["spacecraft"][finite]) and np.all(spread[finite] == 0)
        start = got - f["timepixr"] * f["timedel"]
        assert np.allclose(one["frame_start"].values[finite], start[finite], rtol=0, atol=1e-9)
        assert np.allclose(one["frame_end"].values[finite], (start + f["timedel"])[finite], rtol=0, atol=1e-9)
    shared = json.loads(frames.attrs["shared_headers"])
    for hdu, key in (("header_primary", "primary"), ("header_lightcurve", "lightcurve")):
        for keyword, value in shared[hdu].items():
            assert all(f[key].get(keyword) == value for f in facts), (hdu, keyword)
        for keyword in facts[0][key]:
            if all(keyword in f[key] and f[key][keyword] == facts[0][key][keyword] for f in facts):
                assert keyword in shared[hdu] or keyword in ("CHECKSUM", "DATASUM"), (hdu, keyword)
    assert shared["header_primary"]["TELESCOP"] == facts[0]["primary"]["TELESCOP"]
    if len(facts) > 1:
        assert "OBJECT" not in shared["header_primary"]  # one per target


def test_spoc_sector1_times_per_ccd(archive):
    """TESS reads its CCDs out staggered: TIME - TIMECORR of one cadence differs between CCDs
    (0.02 s between camera 3's CCDs in these files), so the table keeps one row per CCD."""
    frames = archive.frames("tess-spoc-2min-s0001")
    assert len(frames["instrument"]) >= 3
    ccd = frames.sel(instrument=["tess/camera3/ccd3", "tess/camera3/ccd4"])["frame_time"].values
    both = np.isfinite(ccd).all(axis=1)
    assert both.any()
    assert not np.array_equal(ccd[both, 0], ccd[both, 1])


def test_engine_opens_the_frame_table(archive):
    with xr.open_dataset(archive.url, engine="lcarchive", group="k2-lc-c05/frames") as ds:
        assert ds.sizes["cadenceno"] == archive.frames("k2-lc-c05").sizes["cadenceno"]
        assert "frame_time" in ds


def test_appends_in_any_order_give_the_same_table(tmp_path):
    """Files ingested one by one (appends and rewrites of the group) give the table of one batch."""
    files = KINDS["k2-lc-c05"]
    one_batch = lcarchive.Archive(str(tmp_path / "a"))
    one_batch.ingest([str(p) for p in files])
    appended = lcarchive.Archive(str(tmp_path / "b"))
    for p in reversed(files):
        appended.ingest([str(p)])
    a = lcarchive.open_archive(str(tmp_path / "a")).frames("k2-lc-c05")
    b = lcarchive.open_archive(str(tmp_path / "b")).frames("k2-lc-c05")
    a.attrs.pop("observation"), b.attrs.pop("observation")
    xr.testing.assert_identical(a, b)
    before = lcarchive.open_archive(str(tmp_path / "b")).frames("k2-lc-c05")
    report = appended.ingest([str(p) for p in files])
    assert report.added == [] and report.versions == []
    xr.testing.assert_identical(lcarchive.open_archive(str(tmp_path / "b")).frames("k2-lc-c05"), before)


def _block(path: Path, instrument: tuple[int, int] | None = None):
    lc = parse_lightcurve(path.read_bytes(), str(path))
    block = block_from_file(lc)
    if instrument is not None:  # the rule under test: two files on one instrument axis
        block.per_target["camera"] = np.array([instrument[0]], np.int64)
        block.per_target["ccd"] = np.array([instrument[1]], np.int64)
    return block


def test_disagreeing_files_lose_nothing():
    """Two real files of one cadence whose times differ (two CCDs, put on one instrument axis):
    the smaller time is kept with the spread to the larger, the quality bits of both as AND and
    OR, and the merge does not depend on order."""
    from lcarchive.layout import merge_blocks

    quality = next(t for t in static_catalog().quality_flags if t.name == "spoc")
    paths = [p for p in SPOC_S1 if "0000000261136679" in p.name or "0000000425933644" in p.name]
    blocks = [_block(p, (3, 1)) for p in paths]
    one, two = (frame_table(b, quality) for b in blocks)
    merged = merge_frames([one, two], quality)
    xr.testing.assert_identical(merged, merge_frames([two, one], quality))
    whole = frame_table(merge_blocks(blocks), quality)
    xr.testing.assert_identical(merged, whole)
    times = [_fits_facts(p)["spacecraft"] for p in paths]
    low, high = np.fmin(*times), np.fmax(*times)
    got = merged["frame_time"].values[:, 0]
    finite = np.isfinite(low) & np.isfinite(high)
    assert np.array_equal(got[finite], low[finite])
    assert np.allclose(merged["frame_time_spread"].values[finite, 0], (high - low)[finite], rtol=0, atol=1e-12)
    assert (merged["frame_time_spread"].values[finite, 0] > 1e-8).any()  # they disagree: by 0.5 s and more
    assert int(merged["n_files"].max()) == 2


RSTFC_FILES = sorted(PUBLIC.rglob("hlsp_cdips_*llc.fits"))


@pytest.mark.skipif(not RSTFC_FILES, reason="no CDIPS file in tests/data/public (the textcols branch brings one)")
@pytest.mark.parametrize("path", RSTFC_FILES, ids=lambda p: p.name)
def test_frame_names_from_rstfc(path):
    lc = parse_lightcurve(path.read_bytes(), str(path))
    if not any(c.source.upper() == "RSTFC" for c in lc.columns.values()):
        pytest.fail(f"{path.name}: RSTFC is not kept by the parse (the textcols change)")
    table = frame_table(block_from_file(lc))
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = hdul[1].data
        order = np.argsort(np.asarray(lc.cadenceno), kind="stable")
        names = np.asarray([str(n).strip() for n in data["RSTFC"]])[order]
    assert table["frame_name"].values[:, 0].tolist() == names.tolist()


def test_a_replaced_row_leaves_the_table(tmp_path):
    """A newer release replacing a target's row (DATA_REL 0 then 1 of one target and sector): the
    current group's table is the newer file's, the release group's the older's."""
    older = DATA / "spoc-2min-release0" / "hlsp_tess-data-alerts_tess_phot_00025155310-s01_tess_v1_lc.fits"
    newer = DATA / "spoc-2min" / older.name
    archive = lcarchive.Archive(str(tmp_path / "a"))
    archive.ingest([str(older), *(str(p) for p in SPOC_S1[:1])])
    archive.ingest([str(newer)])
    opened = lcarchive.open_archive(str(tmp_path / "a"))
    groups = {o.id for o in opened.observations}
    assert groups == {"tess-spoc-2min-s0001", "tess-spoc-2min-s0001.dr0"}
    quality = next(t for t in static_catalog().quality_flags if t.name == "spoc")
    for group, paths in (("tess-spoc-2min-s0001", [newer, SPOC_S1[0]]), ("tess-spoc-2min-s0001.dr0", [older])):
        from lcarchive.layout import merge_blocks

        expected = frame_table(merge_blocks([_block(p) for p in paths]), quality)
        got = opened.frames(group)
        got.attrs.pop("observation")
        xr.testing.assert_equal(got, expected.set_coords("cadenceno").swap_dims({"cadence": "cadenceno"}))
        assert got.attrs["shared_headers"] == expected.attrs["shared_headers"]
