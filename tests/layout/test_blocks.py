"""lcarchive.layout.blocks, ranks and encoding: blocks merged on the union of their cadences, the
documented fill values, release ranks, and every dtype the layout writes round-tripped through
zarr with the layout's own chunks, shards and codecs, for any number of targets and shard size."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import lcarchive.config
from lcarchive.layout import INT_FILL, Block, block_from_dataset, encoding, fill_value, merge_blocks, open_group, to_dataset
from lcarchive.layout.ranks import SEPARATOR, damaged, n_rows, rank, release_key, version
from lcarchive.layout.shards import spec_of

SERIES = {"time": "float64", "flux": "float32", "quality": "int32", "pixels": "int16", "flags": "uint8"}


def _block(target: int, cadences: np.ndarray, seed: int) -> Block:
    rng = np.random.default_rng(seed)
    n = cadences.size
    series = {}
    for name, dtype in SERIES.items():
        kind = np.dtype(dtype).kind
        if kind == "f":
            values = rng.normal(size=n).astype(dtype)
            values[rng.random(n) < 0.3] = np.nan
        else:
            info = np.iinfo(dtype)
            values = rng.integers(0 if kind == "u" else info.min + 1, info.max, size=n, dtype=dtype)
        series[name] = values[np.newaxis]
    # a text column kept as its bytes (CDIPS's RSTFC): every byte value, trailing blanks and NULs
    frames = np.empty(n, dtype=object)
    frames[:] = [bytes(rng.integers(0, 256, size=6, dtype=np.uint8)).decode("latin-1") + " \0" for _ in range(n)]
    series["frames"] = frames[np.newaxis]
    per_target = {
        "tessmag": np.array([rng.normal()], dtype=np.float64),
        "data_release": np.array([int(rng.integers(-1, 40))], dtype=np.int64),
        "source_file": np.array([f"f{seed}\u00e9\U0001f320.fits" if seed % 2 else ""], dtype=object),
        "aperture": rng.integers(0, 255, size=(1, 1 + seed % 3, 2 + seed % 4)).astype(np.int32),
    }
    return Block(np.array([target], dtype=np.int64), cadences.astype(np.int64), series, per_target, {"flux": {"units": "e-/s"}})


CADENCES = st.sets(st.integers(0, 60), min_size=1, max_size=25).map(lambda s: np.array(sorted(s), dtype=np.int64))


@given(parts=st.lists(st.tuples(CADENCES, st.integers(0, 2**16)), min_size=1, max_size=6))
def test_merged_blocks_keep_every_value_on_the_union_of_cadences_and_fill_the_rest(parts):
    blocks = [_block(1000 + i, c, seed) for i, (c, seed) in enumerate(parts)]
    merged = merge_blocks(blocks)
    union = np.unique(np.concatenate([c for c, _ in parts]))
    np.testing.assert_array_equal(merged.cadenceno, union)
    np.testing.assert_array_equal(merged.target, [b.target[0] for b in blocks])
    for row, block in enumerate(blocks):
        at = np.searchsorted(union, block.cadenceno)
        missing = np.setdiff1d(np.arange(union.size), at)
        for name, dtype in SERIES.items():
            got = merged.series[name][row]
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got[at], block.series[name][0])
            fill = fill_value(np.dtype(dtype))
            if np.dtype(dtype).kind == "f":
                assert np.isnan(got[missing]).all()
            else:
                assert (got[missing] == fill).all()
        frames = merged.series["frames"][row]
        assert frames.dtype == object and frames[at].tolist() == block.series["frames"][0].tolist()
        assert all(v == "" for v in frames[missing])
        aperture = merged.per_target["aperture"][row]
        rows, cols = block.per_target["aperture"].shape[1:]
        np.testing.assert_array_equal(aperture[:rows, :cols], block.per_target["aperture"][0])
        assert (aperture[rows:] == INT_FILL[np.dtype("int32")]).all() and (
            aperture[:, cols:] == INT_FILL[np.dtype("int32")]
        ).all()
        assert merged.per_target["source_file"][row] == block.per_target["source_file"][0]


@given(n=st.integers(1, 12), data=st.data())
def test_select_is_the_rows_asked_for_contiguous_or_not(n, data):
    blocks = [_block(10 + i, np.arange(5), i) for i in range(n)]
    merged = merge_blocks(blocks)
    rows = data.draw(st.lists(st.integers(0, n - 1), max_size=n))
    chosen = merged.select(rows)
    np.testing.assert_array_equal(chosen.target, merged.target[rows])
    for name in SERIES:
        np.testing.assert_array_equal(chosen.series[name], merged.series[name][rows])
    np.testing.assert_array_equal(chosen.per_target["aperture"], merged.per_target["aperture"][rows])


def test_fill_values_are_the_documented_ones():
    assert np.isnan(fill_value(np.dtype("float32"))) and np.isnan(fill_value(np.dtype("float64")))
    assert fill_value(np.dtype("int32")) == -2147483648 and fill_value(np.dtype("int8")) == -128
    assert fill_value(np.dtype("int64")) == np.iinfo(np.int64).min
    assert fill_value(np.dtype("uint8")) == 255 and fill_value(np.dtype("uint32")) == 2**32 - 1
    assert fill_value(np.dtype(object)) == "" and fill_value(np.dtype("U3")) == ""


@settings(max_examples=10)  # each example writes a group with zarr
@given(parts=st.lists(st.tuples(CADENCES, st.integers(0, 2**16)), min_size=1, max_size=7), per_shard=st.integers(1, 4))
def test_every_dtype_round_trips_through_zarr_with_the_layouts_encoding(parts, per_shard):
    """NaN payloads, integer fills, unsigned maxima, empty and non-ASCII strings and padded images come
    back bit for bit from zarr with the layout's chunks, shards and codecs, whatever the shard size."""
    merged = merge_blocks([_block(2000 + i, c, seed) for i, (c, seed) in enumerate(parts)])
    ds = to_dataset(merged, {"observation": "x"})
    store = zarr.storage.MemoryStore()
    with lcarchive.config.override(targets_per_shard=per_shard):
        enc = encoding(ds)
    assert enc["flux"]["shards"]["shape"][0] == per_shard and enc["flux"]["chunks"][0] == 1
    assert enc["tessmag"]["chunks"] == (8 * per_shard,)
    ds.to_zarr(store, group="g", mode="w", encoding=enc, consolidated=False, zarr_format=3)
    group = zarr.open_group(store, path="g", mode="r")
    for name in ("time", "flux", "quality", "pixels", "flags", "aperture", "frames"):
        spec = spec_of(group[name])
        assert spec is not None and spec.shard_rows == per_shard and spec.crc, name
    assert spec_of(group["frames"]).kind == "vlen-zstd"
    with open_group(store, "g") as back:
        block = block_from_dataset(back.load())
    np.testing.assert_array_equal(block.target, merged.target)
    np.testing.assert_array_equal(block.cadenceno, merged.cadenceno)
    for name, values in merged.series.items():
        got = block.series[name]
        assert got.dtype == values.dtype, name
        if values.dtype == object:  # text: every string back as it was, "" where a target has no row
            assert got.tolist() == values.tolist(), name
            continue
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), values.view(f"u{got.itemsize}"), err_msg=name)
    for name, values in merged.per_target.items():
        got = block.per_target[name]
        if values.dtype == object:
            assert list(got) == list(values), name
        else:
            np.testing.assert_array_equal(got, values, err_msg=name)
    assert back["flux"].attrs["units"] == "e-/s"


def test_versions_compare_as_numbers():
    assert version("v01") == (1,) and version("v1.0") == (1, 0) and version("") == ()
    assert version("v10") > version("v9") > version("v1.2") > version("v1")


@given(
    sound=st.tuples(
        st.lists(st.integers(0, 20), max_size=3).map(tuple), st.integers(-1, 99), st.text(max_size=4), st.text(max_size=4)
    ),
    other=st.tuples(
        st.lists(st.integers(0, 20), max_size=3).map(tuple), st.integers(-1, 99), st.text(max_size=4), st.text(max_size=4)
    ),
    rows=st.integers(0, 10**5),
    other_rows=st.one_of(st.none(), st.integers(0, 10**5)),
)
def test_a_damaged_file_ranks_below_every_sound_one_and_releases_order_before_length(sound, other, rows, other_rows):
    assert rank(sound, rows) > rank(other, other_rows, is_damaged=True)
    if sound != other:
        assert (rank(sound, rows) > rank(other, other_rows)) == (sound > other)
    else:
        assert (rank(sound, rows) > rank(other, other_rows)) == (rows > (-1 if other_rows is None else other_rows))


def test_damaged_reads_each_file_of_a_joined_light_curve():
    assert damaged("damaged") and damaged(SEPARATOR.join(["sound", "damaged"]))
    assert not damaged("") and not damaged("sound") and not damaged("stale-cards" + SEPARATOR + "no-checksums")
    assert not damaged("undamaged")


def test_release_key_and_rows_of_a_block():
    block = _block(5, np.arange(8), 3)
    block.per_target.update(
        product_version=np.array(["v02"], dtype=object),
        file_date=np.array(["2020-01-01"], dtype=object),
        pipeline_version=np.array(["spoc-4.0"], dtype=object),
    )
    block.series["quality"][0, [1, 4]] = INT_FILL[np.dtype("int32")]
    assert release_key(block) == ((2,), int(block.per_target["data_release"][0]), "2020-01-01", "spoc-4.0")
    assert n_rows(block) == 6
    del block.per_target["product_version"]
    assert release_key(block)[0] == ()


@pytest.mark.parametrize("dtype", ["float32", "int32", "uint8"])
def test_a_variable_a_block_lacks_is_all_fill(dtype):
    a, b = _block(1, np.arange(4), 1), _block(2, np.arange(2, 6), 2)
    a.series["extra"] = np.ones((1, 4), dtype=dtype)
    merged = merge_blocks([a, b])
    extra = merged.series["extra"]
    assert extra.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(extra[0, :4], 1)
    tail = extra[1]
    assert (np.isnan(tail) if dtype == "float32" else tail == fill_value(np.dtype(dtype))).all()
