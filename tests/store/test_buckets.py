"""The catalog's JSON buckets (lcarchive.store.buckets) and the index line (lcarchive.store.models.IndexLine).

Unit and property tests of where a pin or an index line goes, of the bucket texts (encoded and
decoded, upserted), and of the bucket counts read from the catalog root, on real zarr groups and
real icechunk repositories; and an archive of other bucket counts than a new archive's, ingested
and read end to end.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import icechunk as ic
import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import lcarchive
from lcarchive.catalog.index import COLUMNS, DEFAULTS, OMITTED_WHEN_DEFAULT
from lcarchive.layout.sky import pixels_of
from lcarchive.store import ArchiveStore, FamilyPin, IndexLine
from lcarchive.store.buckets import (
    BucketCounts,
    bucket_counts,
    create_catalog_arrays,
    decode_index,
    encode_index,
    family_bucket,
    index_columns,
    read_buckets,
    read_pins,
    target_bucket,
    update_index,
    update_pins,
    upsert,
)
from lcarchive.store.models import frame_of_lines, lines_of_frame

from conftest import DATA

CAPTURED = json.loads((Path(__file__).parent / "data" / "buckets_7b3233e.json").read_text())


# -- where a pin or a line goes -----------------------------------------------------------------
def test_buckets_are_the_ones_archives_already_hold():
    """Stable across versions: the captured archive holds these families and targets in these buckets."""
    assert family_bucket("kepler-lc-q02", 256) == 123 and family_bucket("kepler-lc-q05", 256) == 216
    assert target_bucket(10002792, 1024) == 360
    assert sorted(int(b) for b in CAPTURED["two_batches"]["families"]) == sorted(
        family_bucket(f, 256) for text in CAPTURED["two_batches"]["families"].values() for f in json.loads(text)
    )


@settings(deadline=None, max_examples=50)
@given(st.text(min_size=1), st.integers(1, 100_000))
def test_a_family_bucket_is_in_range_and_stable(family, n):
    bucket = family_bucket(family, n)
    assert 0 <= bucket < n
    assert bucket == family_bucket(family, n) == zlib.crc32(family.encode()) % n
    assert BucketCounts(n, 1).family(family) == bucket


@settings(deadline=None, max_examples=50)
@given(st.integers(0, 2**62), st.integers(1, 100_000))
def test_a_target_bucket_is_in_range_and_stable(target, n):
    bucket = target_bucket(target, n)
    assert 0 <= bucket < n and bucket == target % n
    assert BucketCounts(1, n).target(target) == bucket


@settings(deadline=None, max_examples=50)
@given(st.lists(st.integers(0, 2**40)), st.integers(1, 5000))
def test_the_buckets_of_some_targets_are_sorted_and_each_once(targets, n):
    counts = BucketCounts(1, n)
    assert counts.targets_of(targets) == sorted({t % n for t in targets})


# -- the index line -------------------------------------------------------------------------------
def test_the_index_line_is_the_index_columns():
    assert list(IndexLine.model_fields) == list(COLUMNS)
    defaults = {name: field.default for name, field in IndexLine.model_fields.items() if not field.is_required()}
    assert defaults.keys() == DEFAULTS.keys()
    for name, value in DEFAULTS.items():
        assert defaults[name] == value or (math.isnan(defaults[name]) and math.isnan(value)), name
    kinds = {int: "int64", str: "string", float: "float64", bool: "bool"}
    assert {name: kinds[field.annotation] for name, field in IndexLine.model_fields.items()} == COLUMNS


_finite = st.floats(-1e6, 1e6, allow_nan=False)
_position = st.one_of(st.just(math.nan), st.floats(0, 359.999)), st.one_of(st.just(math.nan), st.floats(-90, 90))
_line = st.builds(
    IndexLine,
    target=st.integers(0, 2**40),
    observation=st.sampled_from(["tess-spoc-2min-s0001", "tess-spoc-2min-s0001.dr0", "kepler-lc-q02", "k2-lc-c05"]),
    row=st.integers(0, 10_000),
    ra=_position[0],
    dec=_position[1],
    mission=st.sampled_from(["tess", "kepler", "k2"]),
    product=st.text(max_size=12),
    segment=st.integers(-1, 100),
    current=st.booleans(),
    n_cadences=st.integers(-1, 100_000),
    coverage=st.one_of(st.just(math.nan), st.floats(0, 1)),
    magnitude=st.one_of(st.just(math.nan), st.floats(-30, 50)),
    camera=st.integers(-1, 4),
    ccd=st.integers(-1, 4),
    integrity=st.sampled_from(["", "sound", "no-checksums", "stale-cards", "damaged", "sound\nsound"]),
    target_catalog=st.sampled_from(["", "", "Gaia DR3", "MPC"]),
    designation=st.sampled_from(["", "", "3I", "(11251)"]),
)


def _unique(lines: list[IndexLine]) -> list[IndexLine]:
    """One line per (target, observation), as in an index."""
    return list({(x.target, x.observation): x for x in lines}.values())


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["target", "observation"], kind="stable").reset_index(drop=True)


@settings(deadline=None, max_examples=50)
@given(st.lists(_line, max_size=30).map(_unique))
def test_index_lines_round_trip_through_a_bucket_text(lines):
    frame = frame_of_lines(lines)
    text = encode_index(frame)
    if not lines:
        assert text == "" and decode_index([text]).empty
        return
    decoded = decode_index([text])
    pd.testing.assert_frame_equal(decoded, _sorted(frame))
    assert encode_index(decoded) == text  # decoding and encoding again: the same bytes

    def no_constant(name: str) -> None:
        raise AssertionError(f"{name} in a bucket's text: no valid JSON")

    json.loads(text, parse_constant=no_constant)  # valid JSON: NaN written as null
    stored = [c for c in COLUMNS if c not in OMITTED_WHEN_DEFAULT or any(getattr(x, c) != DEFAULTS[c] for x in lines)]
    assert list(json.loads(text)) == stored  # the other catalogs' columns only where a line has one
    pd.testing.assert_frame_equal(frame_of_lines(lines_of_frame(decoded)), decoded)  # lines to a frame and back


@settings(deadline=None, max_examples=50)
@given(st.lists(st.lists(_line, max_size=8).map(_unique), max_size=4))
def test_several_texts_decode_as_one_frame(parts):
    texts = [encode_index(frame_of_lines(p)) for p in parts]
    expected = pd.concat([_sorted(frame_of_lines(p)) for p in parts if p], ignore_index=True) if any(parts) else None
    decoded = decode_index(texts)
    if expected is None:
        assert decoded.empty and list(decoded.columns) == list(COLUMNS)
    else:
        pd.testing.assert_frame_equal(decoded, expected.astype(COLUMNS))


@pytest.mark.parametrize("scenario", ["one_batch", "two_batches"])
def test_captured_index_texts_decode_and_encode_byte_for_byte(scenario):
    for name in ("targets", "sky"):
        for text in CAPTURED[scenario][name].values():
            assert encode_index(decode_index([text])) == text


def test_a_text_written_before_the_newer_columns_reads_with_their_defaults():
    text = CAPTURED["one_batch"]["targets"]["360"]
    old = {k: v for k, v in json.loads(text).items() if k not in DEFAULTS}
    frame = decode_index([json.dumps(old)])
    assert frame["n_cadences"].tolist() == [-1, -1] and frame["camera"].tolist() == [-1, -1]
    assert frame["coverage"].isna().all() and frame["magnitude"].isna().all() and frame["integrity"].tolist() == ["", ""]
    columns = index_columns(json.dumps(old))
    assert columns["coverage"] == [None, None] and columns["ccd"] == [-1, -1]
    assert index_columns("") == {k: [] for k in COLUMNS}


def test_magnitude_sentinels_read_as_nan():
    line = IndexLine(
        target=1,
        observation="kepler-lc-q02",
        row=0,
        ra=1.0,
        dec=2.0,
        mission="kepler",
        product="kepler-lc",
        segment=2,
        current=True,
        magnitude=99.0,
    )
    assert math.isnan(decode_index([encode_index(frame_of_lines([line]))])["magnitude"][0])


def test_null_reads_as_nan_in_a_line():
    line = IndexLine.model_validate(
        {
            "target": 1,
            "observation": "a",
            "row": 0,
            "ra": None,
            "dec": None,
            "mission": "",
            "product": "",
            "segment": -1,
            "current": True,
            "coverage": None,
        }
    )
    assert math.isnan(line.ra) and math.isnan(line.dec) and math.isnan(line.coverage)


# -- upsert ------------------------------------------------------------------------------------------
def _columns(lines: list[IndexLine]) -> dict[str, list] | None:
    return index_columns(encode_index(frame_of_lines(lines))) if lines else None


@settings(deadline=None, max_examples=50)
@given(st.lists(_line, max_size=12).map(_unique), st.lists(_line, max_size=6).map(_unique), st.data())
def test_upsert_replaces_drops_and_keeps_the_rest(old, new, data):
    text = encode_index(frame_of_lines(old)) if old else ""
    observations = sorted({x.observation for x in old})
    dropped = set(data.draw(st.lists(st.sampled_from(observations), unique=True))) if observations else set()
    replaced = {(x.target, x.observation) for x in new}
    out, removed = upsert(text, _columns(new), replaced, dropped)
    kept = [x for x in old if (x.target, x.observation) not in replaced and x.observation not in dropped]
    expected = kept + new
    assert out == (encode_index(frame_of_lines(expected)) if expected else "")
    gone = sorted(
        (x for x in old if (x.target, x.observation) in replaced or x.observation in dropped),
        key=lambda x: (x.target, x.observation),
    )  # in the bucket's order
    assert removed == {k: [v for x in gone for v in _columns([x])[k]] for k in COLUMNS}


def test_upsert_of_nothing_into_nothing_is_empty():
    assert upsert("", None, set(), set()) == ("", {k: [] for k in COLUMNS})


# -- bucket counts from the catalog root, and the buckets in a catalog session ----------------------
def test_bucket_counts_are_the_roots_attributes_or_the_arrays_shapes():
    store = zarr.storage.MemoryStore()
    root = zarr.open_group(store, mode="w", zarr_format=3)
    create_catalog_arrays(root, BucketCounts(8, 16))
    assert dict(root.attrs) == {"family_buckets": 8, "target_buckets": 16}
    assert bucket_counts(store) == BucketCounts(8, 16)
    root.attrs.update({"family_buckets": 5, "target_buckets": 7})  # the attributes win over the shapes
    assert bucket_counts(store) == BucketCounts(5, 7)
    for key in ("family_buckets", "target_buckets"):
        del root.attrs[key]
    assert bucket_counts(store) == BucketCounts(8, 16)  # an archive written without them


def _catalog(path: Path, counts: BucketCounts) -> ic.Repository:
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    create_catalog_arrays(zarr.open_group(session.store, mode="w", zarr_format=3), counts)
    session.commit("catalog")
    return repo


def _pin(snapshot: str, **more: object) -> FamilyPin:
    return FamilyPin.model_validate({"snapshot": snapshot, "observations": {}, "datasets": {}, "buckets": [], **more})


def test_pins_go_to_the_catalogs_own_buckets(tmp_path):
    repo = _catalog(tmp_path / "catalog", BucketCounts(8, 16))
    families = [f"tess-spoc-2min-s{s:04d}" for s in range(1, 30)]
    session = repo.writable_session("main")
    update_pins(session, {f: _pin(f"S{i:019d}") for i, f in enumerate(families)})
    session.commit("pins")
    session = repo.readonly_session(branch="main")
    texts = read_buckets(session, "families", range(8))
    assert sorted(texts) == list(range(8))
    for bucket, text in texts.items():
        assert all(family_bucket(f, 8) == bucket for f in json.loads(text or "{}"))
    pins = read_pins(session, [*families, "kepler-lc-q02"])
    assert pins["kepler-lc-q02"] is None
    assert [p.snapshot for f, p in pins.items() if p is not None] == [f"S{i:019d}" for i in range(len(families))]
    session = repo.writable_session("main")  # removing some pins keeps the others of their buckets as they were
    before = read_buckets(session, "families", range(8))
    update_pins(session, dict.fromkeys(families[:10]))
    after = read_buckets(session, "families", range(8))
    left = read_pins(session, families)
    assert [f for f, p in left.items() if p is not None] == families[10:]
    for bucket in range(8):
        kept = {f: v for f, v in json.loads(before[bucket] or "{}").items() if f not in families[:10]}
        assert after[bucket] == (json.dumps(kept, sort_keys=True, separators=(",", ":")) if kept else "")


def test_index_lines_go_to_the_catalogs_own_buckets_and_the_sky(tmp_path):
    repo = _catalog(tmp_path / "catalog", BucketCounts(4, 16))
    line = {
        "observation": "tess-spoc-2min-s0001",
        "row": 0,
        "mission": "tess",
        "product": "tess-spoc-2min",
        "segment": 1,
        "current": True,
    }
    lines = [
        IndexLine.model_validate({**line, "target": t, "row": i, "ra": 10.0 * i, "dec": 5.0 - i})
        for i, t in enumerate([3, 19, 35, 4, 100])
    ]
    session = repo.writable_session("main")
    assert update_index(session, frame_of_lines(lines)) == [3, 4]  # 3, 19, 35 in bucket 3 of 16; 4 and 100 in 4
    assert decode_index(read_buckets(session, "targets", [3]).values())["target"].tolist() == [3, 19, 35]
    pixels = pixels_of(np.array([x.ra for x in lines]), np.array([x.dec for x in lines])).tolist()
    sky = decode_index(read_buckets(session, "sky", pixels).values())
    assert sorted(sky["target"].tolist()) == [3, 4, 19, 35, 100]
    moved = [lines[0].model_copy(update={"ra": 200.0, "dec": -40.0})]  # a line moves to its new position's pixel
    assert update_index(session, frame_of_lines(moved), ["tess-spoc-2min-s0001"], [4]) == [3, 4]
    assert decode_index(read_buckets(session, "targets", range(16)).values())["target"].tolist() == [3]
    assert decode_index(read_buckets(session, "sky", pixels).values()).empty  # gone from their old pixels
    sky = decode_index(read_buckets(session, "sky", pixels_of(np.array([200.0]), np.array([-40.0])).tolist()).values())
    assert sky["target"].tolist() == [3] and sky["ra"].tolist() == [200.0]


def test_an_archive_of_other_bucket_counts_ingests_and_reads(tmp_path):
    """Ingest and reads take the counts from the catalog root, not from the counts a new archive gets."""
    root = tmp_path / "archive"
    store = ArchiveStore(str(root))
    store.create()

    def recount(session: ic.Session) -> bool:
        group = zarr.open_group(session.store, mode="r+")
        for name in ("families", "targets", "sky"):
            del group[name]
        create_catalog_arrays(group, BucketCounts(3, 5))
        return True

    store.change_catalog(recount, "other bucket counts")
    files = sorted((DATA / "kepler").glob("*.fits"))
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in files[:2]]).ok
    assert lcarchive.Archive(str(root)).ingest([str(p) for p in files[2:4]]).ok
    archive = lcarchive.open_archive(str(root))
    reads = archive.handle.repositories
    assert reads.bucket_counts() == BucketCounts(3, 5)
    families = reads.pins()
    assert sorted(families) == ["kepler-lc-q02", "kepler-lc-q03", "kepler-lc-q04", "kepler-lc-q05"]
    assert all(
        p.buckets == sorted({t % 5 for t in reads.index()[lambda f, fam=f: f["observation"] == fam]["target"]})
        for f, p in families.items()
    )
    session = reads.catalog_session()
    assert zarr.open_array(session.store, path="families").shape == (3,)
    texts = read_buckets(session, "targets", range(5))
    index = decode_index(texts.values())
    assert sorted(set(index["target"].tolist())) == [10002792, 11442793]
    for bucket, text in texts.items():
        assert all(t % 5 == bucket for t in json.loads(text or '{"target": []}')["target"])
    assert archive.open_observation("kepler-lc-q03").sizes["target"] == 1
    assert sorted(archive.target_index(targets=[10002792])["observation"]) == ["kepler-lc-q02", "kepler-lc-q05"]
    assert np.all(reads.index([11442793])["target"] == 11442793)
