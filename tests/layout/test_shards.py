"""lcarchive.layout.shards against zarr's own sharding codec: shards lcarchive assembles read back
with zarr, shards zarr writes decode with lcarchive's index and chunk decoders, for any shard size,
number of targets, dtype and index location."""

from __future__ import annotations

import struct

import google_crc32c
import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec, VLenUTF8Codec, ZstdCodec
from zarr.core.sync import sync

from lcarchive.errors import DamagedObjectError
from lcarchive.layout.shards import ShardSpec, decode_chunk, decode_index, encode_shard, spec_of

EMPTY = 2**64 - 1
DTYPES = ["float32", "float64", "int16", "int32", "int64", "uint8", "uint16"]


def _values(dtype: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype_ = np.dtype(dtype)
    if dtype_.kind == "f":
        values = rng.normal(size=n).astype(dtype_)
        values[rng.random(n) < 0.2] = np.nan
        return values
    info = np.iinfo(dtype_)
    return rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dtype_)


def _array(store, shape: tuple[int, int], shard_rows: int, dtype: str, at_start: bool, crc: bool, name: str = "a"):
    compressors = [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=np.dtype(dtype).itemsize)]
    if crc:
        compressors.append(Crc32cCodec())
    return zarr.create_array(
        store,
        name=name,
        shape=shape,
        dtype=dtype,
        fill_value=0,
        zarr_format=3,
        chunks=(shard_rows, shape[1]),
        compressors=None,
        serializer=ShardingCodec(
            chunk_shape=(1, shape[1]), codecs=[BytesCodec(), *compressors], index_location="start" if at_start else "end"
        ),
    )


def _object(store, key: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype

    buf = sync(store.get(key, default_buffer_prototype()))
    return None if buf is None else buf.to_bytes()


@given(
    n_targets=st.integers(1, 40),
    shard_rows=st.integers(1, 9),
    n_cad=st.integers(1, 30),
    dtype=st.sampled_from(DTYPES),
    at_start=st.booleans(),
    crc=st.booleans(),
    seed=st.integers(0, 2**16),
    written=st.data(),
)
def test_shards_zarr_writes_decode_row_by_row(n_targets, shard_rows, n_cad, dtype, at_start, crc, seed, written):
    store = zarr.storage.MemoryStore()
    array = _array(store, (n_targets, n_cad), shard_rows, dtype, at_start, crc)
    rows = sorted(written.draw(st.sets(st.integers(0, n_targets - 1))))
    values = _values(dtype, n_targets * n_cad, seed).reshape(n_targets, n_cad)
    for r in rows:
        array[r] = values[r]
    spec = spec_of(array)
    assert spec is not None and spec.shard_rows == shard_rows and spec.index_at_start == at_start and spec.crc == crc
    expected = array[:]
    for shard in range(-(-n_targets // shard_rows)):
        raw = _object(store, f"a/c/{shard}/0")
        in_shard = [r for r in rows if r // shard_rows == shard]
        if raw is None:  # zarr writes no shard whose rows are all unwritten
            assert not in_shard
            continue
        index = decode_index(spec, raw, "key")
        assert index.shape == (shard_rows, 2)
        for position in range(shard_rows):
            row = shard * shard_rows + position
            offset, nbytes = (int(v) for v in index[position])
            if offset == EMPTY:
                assert row not in rows or np.all(values[row] == 0)  # zarr leaves out a chunk of only the fill
                continue
            decoded = decode_chunk(spec, raw[offset : offset + nbytes], (n_cad,), "key")
            np.testing.assert_array_equal(decoded.view(f"u{decoded.itemsize}"), expected[row].view(f"u{decoded.itemsize}"))


@given(
    shard_rows=st.integers(1, 9),
    n_cad=st.integers(1, 20),
    dtype=st.sampled_from(DTYPES),
    at_start=st.booleans(),
    crc=st.booleans(),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_shards_lcarchive_assembles_read_back_with_zarr(shard_rows, n_cad, dtype, at_start, crc, seed, data):
    n_targets = data.draw(st.integers(1, 3 * shard_rows))
    store = zarr.storage.MemoryStore()
    array = _array(store, (n_targets, n_cad), shard_rows, dtype, at_start, crc)
    spec = spec_of(array)
    assert spec is not None
    values = _values(dtype, n_targets * n_cad, seed).reshape(n_targets, n_cad)
    first = data.draw(st.sets(st.integers(0, n_targets - 1)))
    second = data.draw(st.sets(st.integers(0, n_targets - 1)))
    later = _values(dtype, n_targets * n_cad, seed + 1).reshape(n_targets, n_cad)
    expected = np.zeros((n_targets, n_cad), dtype=dtype)
    for shard in range(-(-n_targets // shard_rows)):
        base = shard * shard_rows
        mine = {r - base: values[r] for r in first if r // shard_rows == shard}
        again = {r - base: later[r] for r in second if r // shard_rows == shard}
        if not mine and not again:
            continue
        raw = encode_shard(spec, mine)
        raw = encode_shard(spec, again, existing=raw)  # a second write keeps the other rows byte for byte
        sync(store.set(f"a/c/{shard}/0", zarr.core.buffer.cpu.Buffer.from_bytes(raw)))
        for position, row in mine.items():
            expected[base + position] = row
        for position, row in again.items():
            expected[base + position] = row
    got = zarr.open_array(store, path="a")[:]
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))


def test_copied_chunks_are_kept_undecoded():
    spec = ShardSpec(4, "zstd", 3, 1, True, np.dtype("float32"), crc=True)
    one = encode_shard(spec, {0: np.arange(5, dtype="f4"), 2: np.full(5, np.nan, dtype="f4")})
    index = decode_index(spec, one)
    offset, nbytes = (int(v) for v in index[2])
    copied = one[offset : offset + nbytes]
    two = encode_shard(spec, {3: copied})
    o, n = (int(v) for v in decode_index(spec, two)[3])
    assert two[o : o + n] == copied
    assert np.isnan(decode_chunk(spec, two[o : o + n], (5,))).all()
    assert [int(v) for v in decode_index(spec, two)[0]] == [EMPTY, EMPTY]


@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=6), at_start=st.booleans(), crc=st.booleans())
def test_string_shards_round_trip_through_zarr(texts, at_start, crc):
    """Per-target strings (FITS headers: vlen-utf8 + zstd) of any text, NUL and astral characters too."""
    store = zarr.storage.MemoryStore()
    codecs = [VLenUTF8Codec(), ZstdCodec(level=3), *([Crc32cCodec()] if crc else [])]
    array = zarr.create_array(
        store,
        name="h",
        shape=(len(texts),),
        chunks=(3,),
        dtype=str,
        zarr_format=3,
        serializer=ShardingCodec(chunk_shape=(1,), codecs=codecs, index_location="start" if at_start else "end"),
        compressors=None,
    )
    spec = spec_of(array)
    assert spec is not None and spec.kind == "vlen-zstd"
    for shard in range(-(-len(texts) // 3)):
        part = {i - 3 * shard: np.array(t, dtype=object) for i, t in enumerate(texts) if i // 3 == shard}
        raw = encode_shard(spec, part)
        sync(store.set(f"h/c/{shard}", zarr.core.buffer.cpu.Buffer.from_bytes(raw)))
        index = decode_index(spec, raw)
        for position, value in part.items():
            offset, nbytes = (int(v) for v in index[position])
            assert decode_chunk(spec, raw[offset : offset + nbytes], ()).item() == value.item()
    assert list(zarr.open_array(store, path="h")[:]) == texts


@given(
    rows=st.lists(st.lists(st.text(max_size=12), min_size=3, max_size=3), min_size=1, max_size=7),
    at_start=st.booleans(),
    crc=st.booleans(),
)
def test_text_rows_round_trip_through_zarr(rows, at_start, crc):
    """Text columns on (target, cadence) (CDIPS's RSTFC kept as its bytes): one target's strings a chunk,
    assembled by lcarchive and read by zarr, and written by zarr and decoded by lcarchive."""
    store = zarr.storage.MemoryStore()
    codecs = [VLenUTF8Codec(), ZstdCodec(level=3), *([Crc32cCodec()] if crc else [])]
    array = zarr.create_array(
        store,
        name="t",
        shape=(len(rows), 3),
        chunks=(3, 3),
        dtype=str,
        zarr_format=3,
        serializer=ShardingCodec(chunk_shape=(1, 3), codecs=codecs, index_location="start" if at_start else "end"),
        compressors=None,
    )
    spec = spec_of(array)
    assert spec is not None and spec.kind == "vlen-zstd"
    for shard in range(-(-len(rows) // 3)):
        part = {i - 3 * shard: np.array(r, dtype=object) for i, r in enumerate(rows) if i // 3 == shard}
        sync(store.set(f"t/c/{shard}/0", zarr.core.buffer.cpu.Buffer.from_bytes(encode_shard(spec, part))))
    assert zarr.open_array(store, path="t")[:].tolist() == rows
    zarr.open_array(store, path="t", mode="r+")[:] = np.array(rows[::-1], dtype=object)  # zarr writes, lcarchive decodes
    for shard in range(-(-len(rows) // 3)):
        raw = _object(store, f"t/c/{shard}/0")
        index = decode_index(spec, raw) if raw is not None else np.full((3, 2), EMPTY, dtype="u8")
        for position in range(min(3, len(rows) - 3 * shard)):
            offset, nbytes = (int(v) for v in index[position])
            if offset == EMPTY:  # all fill (""): zarr writes no chunk
                assert rows[::-1][3 * shard + position] == ["", "", ""]
                continue
            got = decode_chunk(spec, raw[offset : offset + nbytes], (3,))
            assert got.dtype == object and got.tolist() == rows[::-1][3 * shard + position]


def test_a_flipped_byte_is_a_damaged_object_never_a_wrong_value():
    spec = ShardSpec(3, "zstd", 3, 1, True, np.dtype("int32"), crc=True)
    raw = bytearray(encode_shard(spec, {1: np.arange(7, dtype="i4")}))
    with pytest.raises(DamagedObjectError, match="shard index"):
        decode_index(spec, bytes(raw[:1] + bytes([raw[1] ^ 1]) + raw[2:]), "obs/flux/c/0/0")
    offset, nbytes = (int(v) for v in decode_index(spec, bytes(raw))[1])
    chunk = bytearray(raw[offset : offset + nbytes])
    chunk[len(chunk) // 2] ^= 0x10
    with pytest.raises(DamagedObjectError, match="CRC32C"):
        decode_chunk(spec, bytes(chunk), (7,), "obs/flux/c/0/0")
    with pytest.raises(DamagedObjectError, match="too short"):
        decode_index(spec, bytes(raw[:10]), "obs/flux/c/0/0")
    # without the crc32c codec a damaged chunk still fails to decode rather than giving numbers
    plain = ShardSpec(3, "zstd", 3, 1, True, np.dtype("int32"))
    body = encode_shard(plain, {0: np.arange(7, dtype="i4")})
    o, n = (int(v) for v in decode_index(plain, body)[0])
    for cut in (3, 24):  # numcodecs' blosc reads past the end of a cut chunk: its header says its length
        with pytest.raises(DamagedObjectError, match="does not decode"):
            decode_chunk(plain, body[o : o + n - cut], (7,), "k")


def test_index_size_is_sixteen_bytes_a_row_and_its_crc():
    for rows in (1, 2, 512):
        spec = ShardSpec(rows, "zstd", 3, 1, False, np.dtype("f8"))
        raw = encode_shard(spec, {})
        assert len(raw) == spec.index_size == 16 * rows + 4
        assert struct.unpack("<I", raw[-4:])[0] == google_crc32c.value(raw[:-4])
        assert (decode_index(spec, raw) == EMPTY).all()


def test_spec_of_refuses_layouts_it_does_not_decode():
    store = zarr.storage.MemoryStore()
    unsharded = zarr.create_array(store, name="u", shape=(4, 3), chunks=(2, 3), dtype="f4", zarr_format=3)
    assert spec_of(unsharded) is None
    two_rows = zarr.create_array(store, name="t", shape=(4, 3), chunks=(2, 3), shards=(4, 3), dtype="f4", zarr_format=3)
    assert spec_of(two_rows) is None  # inner chunks of two targets: not one target's chunk
