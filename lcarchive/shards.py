"""Write the shards of (target, ...) arrays directly, in the Zarr v3 ``sharding_indexed`` format.

zarr-python encodes a shard one inner chunk at a time through its asynchronous codec pipeline;
for lcarchive's shards (hundreds of one-target chunks) that bookkeeping cost more than the
compression itself. This module encodes the rows of a shard with Blosc on a thread pool and
assembles the shard object itself: the index at the start (``index_location: "start"``) as
``(offset, nbytes)`` little-endian uint64 pairs plus a CRC32C of the index, then the compressed
chunks. Appending rows to a partly filled shard, or replacing a row, reuses the stored chunks'
bytes as they are: nothing is decoded and re-encoded.

The format is the Zarr v3 sharding codec's
(https://zarr-specs.readthedocs.io/en/latest/v3/codecs/sharding-indexed/index.html); the
array metadata is written by zarr itself, and the test suite reads every shard back with plain
xarray/zarr.
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import google_crc32c
import numpy as np
from numcodecs import blosc, zstd

__all__ = ["ShardSpec", "decode_chunk", "decode_index", "encode_shard", "spec_of"]

_EMPTY = 2**64 - 1
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lcarchive-blosc")


class ShardSpec:
    """What is needed to write one sharded array's shards.

    Parameters
    ----------
    shard_rows : int
        Targets per shard (inner chunks are one target each).
    cname, clevel, shuffle : str, int, int
        Blosc settings of the inner chunks.
    index_at_start : bool
        Where the shard index is.
    dtype : numpy.dtype
        Array dtype (little-endian on disk).
    """

    def __init__(
        self, shard_rows: int, cname: str, clevel: int, shuffle: int, index_at_start: bool, dtype: np.dtype, kind: str = "blosc"
    ) -> None:
        self.kind = kind  # "blosc" (bytes + blosc) or "vlen-zstd" (vlen-utf8 + zstd, strings)
        self.shard_rows = shard_rows
        self.cname = cname.encode()
        self.clevel = clevel
        self.shuffle = shuffle
        self.index_at_start = index_at_start
        self.dtype = np.dtype(dtype).newbyteorder("<") if kind == "blosc" else np.dtype(object)

    @property
    def index_size(self) -> int:
        return self.shard_rows * 16 + 4


def spec_of(array: Any) -> ShardSpec | None:
    """The ShardSpec of a zarr array written by lcarchive, or None if its codecs are others."""
    from zarr.codecs import BloscCodec, BytesCodec, ShardingCodec, VLenUTF8Codec, ZstdCodec

    codecs = array.metadata.codecs
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    inner = sharding.codecs
    if sharding.chunk_shape[0] != 1 or tuple(sharding.chunk_shape[1:]) != tuple(array.shards[1:]):
        return None
    location = str(getattr(sharding.index_location, "value", sharding.index_location))
    if array.ndim == 1 and len(inner) == 2 and isinstance(inner[0], VLenUTF8Codec) and isinstance(inner[1], ZstdCodec):
        if inner[1].checksum:
            return None
        return ShardSpec(array.shards[0], "zstd", inner[1].level, 0, location == "start", np.dtype(object), kind="vlen-zstd")
    if len(inner) != 2 or not isinstance(inner[0], BytesCodec) or not isinstance(inner[1], BloscCodec):
        return None
    if str(getattr(inner[0].endian, "value", inner[0].endian)) not in ("little", "None"):
        return None
    blosc_codec = inner[1]
    shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[str(getattr(blosc_codec.shuffle, "value", blosc_codec.shuffle))]
    return ShardSpec(
        array.shards[0], str(getattr(blosc_codec.cname, "value", blosc_codec.cname)), blosc_codec.clevel, shuffle,
        location == "start", array.dtype,
    )


def decode_index(spec: ShardSpec, shard: bytes) -> np.ndarray:
    """The (offset, nbytes) pairs of a stored shard, shape (shard_rows, 2), uint64."""
    raw = shard[: spec.index_size] if spec.index_at_start else shard[-spec.index_size :]
    return np.frombuffer(raw[:-4], dtype="<u8").reshape(spec.shard_rows, 2)


def _compress(spec: ShardSpec, row: np.ndarray) -> bytes:
    if spec.kind == "vlen-zstd":  # one string: uint32 count, uint32 length, UTF-8 bytes; then zstd
        text = str(row.item() if isinstance(row, np.ndarray) else row).encode("utf-8")
        return zstd.compress(struct.pack("<II", 1, len(text)) + text, spec.clevel)
    data = np.ascontiguousarray(row, dtype=spec.dtype)
    return blosc.compress(data, spec.cname, spec.clevel, spec.shuffle, 0, data.dtype.itemsize)


def decode_chunk(spec: ShardSpec, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Decode one inner chunk (one target's values) written by :func:`encode_shard` or by zarr.

    Returns
    -------
    numpy.ndarray
        Shape ``shape`` (the array's shape without its first axis), or a 0-d object array
        holding the string for a string array.
    """
    if spec.kind == "vlen-zstd":
        raw = zstd.decompress(data)
        (length,) = struct.unpack_from("<I", raw, 4)
        return np.array(raw[8 : 8 + length].decode("utf-8"), dtype=object)
    return np.frombuffer(blosc.decompress(data), dtype=spec.dtype).reshape(shape)


def encode_shard(spec: ShardSpec, rows: dict[int, np.ndarray], existing: bytes | None = None) -> bytes:
    """Assemble a shard object.

    Parameters
    ----------
    spec : ShardSpec
    rows : dict of int to numpy.ndarray or bytes
        New contents of rows of this shard, by position in the shard (0 .. shard_rows - 1);
        each is one target's values, shape = the array's shape without its first axis, or
        the bytes of a chunk already encoded with the same codecs (copied as they are).
    existing : bytes, optional
        The stored shard, whose other rows are kept byte for byte.

    Returns
    -------
    bytes
    """
    chunks: list[bytes | None] = [None] * spec.shard_rows
    if existing is not None:
        index = decode_index(spec, existing)
        for i, (offset, nbytes) in enumerate(index):
            if offset != _EMPTY:
                chunks[i] = existing[int(offset) : int(offset + nbytes)]
    positions = sorted(rows)
    encoded = [p for p in positions if not isinstance(rows[p], bytes)]
    for i, data in zip(encoded, _POOL.map(lambda p: _compress(spec, rows[p]), encoded), strict=True):
        chunks[i] = data
    for p in positions:
        if isinstance(rows[p], bytes):  # a chunk already encoded (copied from another shard)
            chunks[p] = rows[p]
    index = np.full((spec.shard_rows, 2), _EMPTY, dtype="<u8")
    offset = spec.index_size if spec.index_at_start else 0
    body = []
    for i, chunk in enumerate(chunks):
        if chunk is None:
            continue
        index[i] = (offset, len(chunk))
        offset += len(chunk)
        body.append(chunk)
    index_bytes = index.tobytes()
    index_bytes += struct.pack("<I", google_crc32c.value(index_bytes))
    return b"".join([index_bytes, *body] if spec.index_at_start else [*body, index_bytes])
