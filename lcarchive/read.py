"""The point-read path: one target's row of an observation group in as few round trips as the layout allows.

A :class:`GroupReader` opens a group once (consolidated metadata: one request), keeps the
``cadenceno`` coordinate, and reads a target's row of every requested variable concurrently
on zarr's event loop. For the sharded (target, cadence) arrays it reads the shard index once
and caches it, then fetches the target's chunk with one byte-range request: a warm read of
``time``, ``flux``, ``flux_err`` and ``quality`` is one round of four concurrent requests, a
read with cold shard indexes two.

The cache assumes the group is not rewritten while the reader lives; an
:class:`lcarchive.Archive` drops its readers when it ingests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import zarr.api.asynchronous as zasync
from numcodecs import blosc
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.codecs import BloscCodec, BytesCodec, ShardingCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from lcarchive.stores import read_store

__all__ = ["GroupReader", "run"]

_EMPTY = np.uint64(2**64 - 1)


def run(coro: Any) -> Any:
    """Run a coroutine on zarr's event loop (where the store's async clients live)."""
    return sync(coro)


class GroupReader:
    """Read target rows of one observation group.

    Use ``await GroupReader.open(url, storage_options)``.

    Attributes
    ----------
    attrs : dict
        The group's attributes.
    arrays : dict of str to zarr.AsyncArray
    cadenceno : numpy.ndarray, shape (n_cadences,), int64
    target : numpy.ndarray, shape (n_targets,), int64
    """

    def __init__(self, group: zasync.AsyncGroup, arrays: dict[str, Any], cadenceno: np.ndarray, target: np.ndarray) -> None:
        self.group = group
        self.attrs = dict(group.attrs)
        self.arrays = arrays
        self.cadenceno = cadenceno
        self.target = target
        self._indexes: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    async def open(cls, url: str, storage_options: dict | None = None) -> GroupReader:
        """Open a group: one read of its consolidated metadata, then its coordinates concurrently."""
        store = read_store(url, storage_options)
        kwargs = {"storage_options": storage_options} if storage_options and isinstance(store, str) and "://" in url else {}
        group = await zasync.open_group(store, mode="r", zarr_format=3, use_consolidated=True, **kwargs)
        arrays = {name: array async for name, array in group.arrays()}
        cadenceno, target = await asyncio.gather(arrays["cadenceno"].getitem(...), arrays["target"].getitem(...))
        return cls(group, arrays, np.asarray(cadenceno), np.asarray(target))

    def row_of(self, target: int) -> int | None:
        """Row of a target in this group, or None."""
        where = np.flatnonzero(self.target == target)
        return int(where[0]) if where.size else None

    async def read_row(self, row: int, names: list[str]) -> dict[str, np.ndarray]:
        """Read one target's values of the given variables concurrently.

        Returns
        -------
        dict of str to numpy.ndarray
            Shape (n_cadences,) for light-curve variables, () for per-target values,
            (rows, columns) for images.
        """
        values = await asyncio.gather(*(self._read(self.arrays[n], row) for n in names))
        return dict(zip(names, values, strict=True))

    async def _read(self, array: Any, row: int) -> np.ndarray:
        codecs = array.metadata.codecs
        sharding = codecs[0] if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec) else None
        if sharding is None or not _simple_inner(sharding):
            return np.asarray(await array.getitem((row, *(slice(None),) * (array.ndim - 1))))
        shard_shape = array.shards
        chunk_shape = sharding.chunk_shape
        if any(c != s for c, s in zip(chunk_shape[1:], shard_shape[1:], strict=True)) or chunk_shape[0] != 1:
            return np.asarray(await array.getitem((row, *(slice(None),) * (array.ndim - 1))))
        shard_rows = shard_shape[0]
        key = f"{array.store_path.path}/{array.metadata.encode_chunk_key((row // shard_rows, *(0,) * (array.ndim - 1)))}"
        store = array.store_path.store
        index = self._indexes.get((array.path, key))
        if index is None:
            n_chunks = shard_rows
            size = n_chunks * 16 + 4
            at_start = _text(sharding.index_location) == "start"
            where = RangeByteRequest(0, size) if at_start else SuffixByteRequest(size)
            raw = await store.get(key, prototype=default_buffer_prototype(), byte_range=where)
            if raw is None:  # shard never written: all fill
                return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
            index = np.frombuffer(raw.to_bytes()[:-4], dtype="<u8").reshape(n_chunks, 2)
            self._indexes[(array.path, key)] = index
        offset, nbytes = index[row % shard_rows]
        if offset == _EMPTY:
            return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
        buf = await store.get(
            key, prototype=default_buffer_prototype(), byte_range=RangeByteRequest(int(offset), int(offset + nbytes))
        )
        data = buf.to_bytes()
        inner = sharding.codecs
        if len(inner) == 2:
            data = blosc.decompress(data)
        endian = _text(inner[0].endian) if inner[0].endian is not None else "little"
        dtype = np.dtype(array.dtype).newbyteorder("<" if endian == "little" else ">")
        return np.frombuffer(data, dtype=dtype).astype(array.dtype).reshape(array.shape[1:])


def _text(value: Any) -> str:
    """An enum's value or a string as is (zarr versions differ)."""
    return str(getattr(value, "value", value))


def _simple_inner(sharding: ShardingCodec) -> bool:
    """True for inner codecs this reader decodes itself: bytes, optionally followed by blosc."""
    inner = sharding.codecs
    return (
        isinstance(inner[0], BytesCodec)
        and (len(inner) == 1 or (len(inner) == 2 and isinstance(inner[1], BloscCodec)))
    )

