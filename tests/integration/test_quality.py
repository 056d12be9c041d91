"""Quality-flag tables and lcarchive.quality, checked against lightkurve on the real light curves."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy.io import fits

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import QualityFlagTable
from lcarchive.errors import LcarchiveError
from lcarchive.quality import PADDING, bitmask, decode, flag_table, good_cadences

from conftest import DATA, REPO

lk_utils = pytest.importorskip("lightkurve.utils")
Tess, Kepler = lk_utils.TessQualityFlags, lk_utils.KeplerQualityFlags

MASKS = ("default", "hard", "hardest")
NEW_TABLES = {"tglc", "tglc-flags", "eleanor", "tasoc", "tasoc-pixel", "everest", "k2sc"}

# (folder, quality column, table, lightkurve flag class) for every real file with a bitmask column.
SOURCES = [
    ("spoc-2min", "QUALITY", "spoc", Tess),
    ("spoc-2min-release0", "QUALITY", "spoc", Tess),
    ("tess-spoc", "QUALITY", "spoc", Tess),
    ("qlp", "QUALITY", "qlp", Tess),
    ("tglc", "TESS_flags", "tglc", Tess),
    ("eleanor-lite", "QUALITY", "eleanor", Tess),
    ("kepler", "SAP_QUALITY", "kepler", Kepler),
    ("k2", "SAP_QUALITY", "kepler", Kepler),
    ("kepler", "SAP_QUALITY", "everest", Kepler),  # EVEREST QUALITY = Kepler bits + EVEREST bits
]
CASES = [(path, col, table, cls) for folder, col, table, cls in SOURCES for path in sorted((DATA / folder).glob("*.fits"))]


def _ids(case) -> str:
    path, _, table, _ = case
    return f"{table}:{path.parent.name}/{path.name[-30:]}"


def read_column(path, column) -> tuple[np.ndarray, np.ndarray, int | None]:
    """The raw quality column (file dtype, big-endian), the time column and the sector (None for Kepler/K2)."""
    with fits.open(path, memmap=False) as hdul:
        data = hdul[1].data
        return np.array(data[column]), np.array(data["TIME"], dtype=float), hdul[0].header.get("SECTOR")


def lightkurve_bitmask(table: str, which: str, sector: int | None) -> list[int]:
    """The bitmask(s) lightkurve 2.6.0's reader for this table ANDs together (io/qlp.py, io/eleanor.py)."""
    cls = Kepler if table in ("kepler", "everest") else Tess
    masks = [cls.OPTIONS[which]]
    if table == "eleanor" and which == "hardest":
        masks = [Tess.HARDEST_BITMASK | 2**17 | 2**18]
    if table == "qlp" and which in ("hard", "hardest"):
        masks.append(2**30 if (sector or 0) >= 56 else 2**12)
    return masks


def lightkurve_names(cls) -> dict[str, int]:
    """lightkurve's decode strings -> flag values (its STRINGS inverted)."""
    return {text: value for value, text in cls.STRINGS.items()}


# ---- the tables ---------------------------------------------------------------------------------


def test_every_table_validates_and_is_loaded():
    paths = sorted((REPO / "catalog" / "quality").glob("*.json"))
    names = set()
    for path in paths:
        table = QualityFlagTable.model_validate(json.loads(path.read_text()))
        assert table.name == path.stem and table.references and table.description
        names.add(table.name)
        for f in table.flags:
            assert f.value == 2**f.bit, (table.name, f.name)
            assert not (f.default and not f.hard) and not (f.hard and not f.hardest), (table.name, f.name)
        # two flags on one bit must not share a segment, or decode(segment=...) would be ambiguous
        for a in table.flags:
            for b in table.flags:
                if a is not b and a.bit == b.bit:
                    sa, sb = a.segments, b.segments
                    assert sa is not None and sb is not None, (table.name, a.bit)
                    assert (sa.max is not None and sb.min is not None and sa.max < sb.min) or (
                        sb.max is not None and sa.min is not None and sb.max < sa.min
                    ), (table.name, a.bit)
    assert names >= NEW_TABLES
    assert {t.name for t in static_catalog().quality_flags} == names


@pytest.mark.parametrize(
    ("table", "cls"), [("spoc", Tess), ("tglc", Tess), ("eleanor", Tess), ("kepler", Kepler), ("everest", Kepler)]
)
def test_tables_name_bits_as_lightkurve(table, cls):
    ours = {f.value: f.name for f in flag_table(table).flags}
    theirs = {v: n for n, v in vars(cls).items() if isinstance(v, int) and v in cls.STRINGS}
    assert {v: ours[v] for v in theirs} == theirs


# ---- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["spoc", "tglc", "eleanor", "kepler", "everest"])
@pytest.mark.parametrize("which", MASKS)
def test_masks_equal_lightkurve(table, which):
    (expected,) = lightkurve_bitmask(table, which, None)
    assert bitmask(table, which) == expected
    assert bitmask(table, "none") == 0


def test_eleanor_hardest_adds_its_bits_17_and_18():
    assert bitmask("eleanor", "hardest") == Tess.HARDEST_BITMASK | 2**17 | 2**18
    assert bitmask("eleanor", "hard") == Tess.HARD_BITMASK


@pytest.mark.parametrize("which", MASKS)
@pytest.mark.parametrize("sector", [1, 24, 55, 56, 70])
def test_qlp_masks_follow_the_sector(which, sector):
    expected = 0
    for m in lightkurve_bitmask("qlp", which, sector):
        expected |= m
    assert bitmask("qlp", which, segment=sector) == expected
    assert (bitmask("qlp", which, segment=sector) & 2**30 != 0) == (sector >= 56 and which != "default")


def test_segment_none_is_the_union_over_segments():
    assert bitmask("qlp", "hard") == bitmask("qlp", "hard", 55) | bitmask("qlp", "hard", 56)
    assert bitmask("qlp", "hard") == Tess.HARD_BITMASK | 2**30


def test_masks_of_pipelines_lightkurve_does_not_mask():
    assert bitmask("tasoc", "default") == bitmask("tasoc", "hard") == 1 | 2  # FlaggedBadData | ManualExclude
    assert bitmask("tasoc", "hardest") == 2**9 - 1
    assert bitmask("tasoc-pixel", "default") == 1 | 2 | 4 | 8 | 32 | 64 | 128 | 4096
    assert bitmask("tasoc-pixel", "hard") == bitmask("tasoc-pixel", "default") | 256 | 1024
    assert bitmask("k2sc", "default") == 32 and bitmask("k2sc", "hard") == 8 | 16 | 32
    assert bitmask("k2sc", "hardest") == 2**7 - 1
    assert bitmask("tglc-flags", "default") == bitmask("tglc-flags", "hard") == 0
    assert bitmask("tglc-flags", "hardest") == 3
    everest_bits = sum(2**b for b in range(22, 27))
    assert all(bitmask("everest", w) & everest_bits == 0 for w in MASKS)


def test_a_table_object_works_like_its_name():
    table = flag_table("qlp")
    assert bitmask(table, "hard", 60) == bitmask("qlp", "hard", 60)
    assert decode([4096], table, 24) == decode([4096], "qlp", 24)


def test_unknown_names_are_clear_errors():
    with pytest.raises(LcarchiveError, match=r"no quality-flag table 'spoc2'.*known: eleanor, everest") as err:
        flag_table("spoc2")
    assert isinstance(err.value, KeyError)
    with pytest.raises(ValueError, match="none, default, hard, hardest"):
        bitmask("spoc", "strict")
    with pytest.raises(TypeError, match="integers"):
        good_cadences(np.array([0.0, 1.0]), "spoc")


# ---- decode -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_decode_real_values_as_lightkurve(case):
    path, column, table, cls = case
    quality, _, sector = read_column(path, column)
    names = decode(quality, table, segment=sector)
    assert sorted(names) == np.unique(quality).tolist()
    by_text = lightkurve_names(cls)
    attr = {f.value: f.name for f in flag_table(table).flags if f.segments is None}
    known = sum(cls.STRINGS)  # the bits lightkurve names
    checked = 0
    for value, ours in names.items():
        # every set bit has exactly one name, from the table (no "bit<N>" placeholder)
        assert len(ours) == bin(value).count("1") and not any(n.startswith("bit") for n in ours), (value, ours)
        ours_known = decode(value & known, table, segment=sector)[value & known]
        theirs = [attr.get(by_text[text], text) for text in cls.decode(value)]
        if table == "qlp" and sector <= 55 and value & 4096:
            # QLP's own meaning of bit 12 before sector 56, where lightkurve's TessQualityFlags says Straylight2
            assert "LowPrecision" in ours_known and "Straylight2" in theirs
            theirs = ["LowPrecision" if n == "Straylight2" else n for n in theirs]
        assert ours_known == theirs, (value, ours_known, theirs)
        checked += bool(value)
    assert checked  # every file has flagged cadences


def test_decode_names_eleanor_bit_17_and_unknown_bits():
    quality, _, _ = read_column(next((DATA / "eleanor-lite").glob("*.fits")), "QUALITY")
    names = decode(quality, "eleanor")
    assert names[131072] == ["PointingModelOutlier"] and names[131200] == ["ManualExclude", "PointingModelOutlier"]
    assert decode(131072, "spoc") == {131072: ["bit17"]}


def test_decode_follows_the_qlp_sector():
    assert decode([4096, 2**30], "qlp", segment=24) == {4096: ["LowPrecision"], 2**30: ["bit30"]}
    assert decode([4096, 2**30], "qlp", segment=56) == {4096: ["Straylight2"], 2**30: ["LowPrecision"]}
    assert decode([4096], "qlp") == {4096: ["LowPrecision", "Straylight2"]}


def test_decode_reads_int16_as_16_bits():
    # TGLC stores its flags as int16: -32768 there is bit 15 alone
    assert decode(np.array([-32768, 18560], dtype=">i2"), "tglc") == {
        -32768: ["InsufficientTargets"],
        18560: ["ManualExclude", "Straylight", "BadCalibrationExclude"],
    }


# ---- good cadences ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", MASKS)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_good_cadences_equal_lightkurve_masks(case, which):
    path, column, table, cls = case
    quality, _, sector = read_column(path, column)
    # lightkurve overflows int16 with the 65535 'hardest' mask under numpy 2 (issue #1564): widen for it only
    theirs = np.ones(len(quality), dtype=bool)
    for mask in lightkurve_bitmask(table, which, sector):
        theirs &= cls.create_quality_mask(quality.astype(np.int64), bitmask=mask)
    ours = good_cadences(quality, table, which, segment=sector)
    assert ours.dtype == bool and ours.shape == quality.shape
    np.testing.assert_array_equal(ours, theirs)
    if which == "hardest":
        assert not ours.all()


READS = [
    ("spoc-2min", "tess2020106103520-s0024-0000000039903405-0180-s_lc.fits", "QUALITY", "spoc", MASKS),
    ("kepler", "kplr010002792-2010174085026_llc.fits", "SAP_QUALITY", "kepler", MASKS),
    ("k2", "ktwo211874609-c05_llc.fits", "SAP_QUALITY", "kepler", MASKS),
    ("qlp", "hlsp_qlp_tess_ffi_s0024-0000000039903405_tess_v01_llc.fits", "QUALITY", "qlp", MASKS),
    ("qlp", "hlsp_qlp_tess_ffi_s0025-0000000039903405_tess_v01_llc.fits", "QUALITY", "qlp", MASKS),
    ("tglc", "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0008-cam2-ccd4_tess_v2_llc.fits", "TESS_flags", "tglc", MASKS[:2]),
    ("eleanor-lite", "hlsp_gsfc-eleanor-lite_tess_ffi_s0001-0000000261136679_tess_v1.0_lc.fits", "QUALITY", "eleanor", MASKS),
]


@pytest.mark.parametrize(("folder", "name", "column", "table", "masks"), READS, ids=[r[3] + ":" + r[0] for r in READS])
def test_good_cadences_keep_what_lightkurve_read_keeps(folder, name, column, table, masks):
    """End to end: lightkurve's own reader (column choice, QLP sector logic, eleanor bits) keeps the same cadences."""
    import lightkurve as lk

    path = DATA / folder / name
    quality, time, sector = read_column(path, column)
    for which in masks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lc = lk.read(str(path), quality_bitmask=which)
        keep = good_cadences(quality, table, which, segment=sector) & np.isfinite(time)
        np.testing.assert_allclose(lc.time.value, time[keep], rtol=0, atol=1e-6, err_msg=which)


def test_tglc_flags_hardest_keeps_only_unflagged_cadences():
    for path in sorted((DATA / "tglc").glob("*.fits")):
        flags, _, _ = read_column(path, "TGLC_flags")
        assert good_cadences(flags, "tglc-flags", "default").all()
        np.testing.assert_array_equal(good_cadences(flags, "tglc-flags", "hardest"), flags == 0)


# ---- lcarchive's padding ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["none", *MASKS])
def test_padding_is_never_good(which):
    quality, _, sector = read_column(DATA / "qlp" / "hlsp_qlp_tess_ffi_s0024-0000000039903405_tess_v01_llc.fits", "QUALITY")
    # an archive-like (target, cadence) int32 block: one real target, one target padded where it has no rows
    block = np.stack([quality.astype(np.int32), np.where(np.arange(quality.size) % 3 == 0, PADDING, quality)])
    good = good_cadences(block, "qlp", which, segment=sector)
    assert good.shape == block.shape
    np.testing.assert_array_equal(good[1][block[1] == PADDING], False)
    np.testing.assert_array_equal(good[0], good_cadences(quality, "qlp", which, segment=sector))
    assert good[0].any()
    assert not good_cadences([PADDING], "spoc", which).any()  # as a Python int (int64) too
    assert decode(block, "qlp", sector)[PADDING] == ["padding"]


def test_int16_minimum_is_a_flag_not_padding():
    # -32768 in TGLC's int16 column is bit 15 (InsufficientTargets): outside 'default', inside 'hardest'
    flags = np.array([-32768], dtype=np.int16)
    assert good_cadences(flags, "tglc", "default").all()
    assert not good_cadences(flags, "tglc", "hardest").any()
