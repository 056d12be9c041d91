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
import warnings
from typing import Any

import numpy as np
import zarr.api.asynchronous as zasync
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.core.sync import sync

from lcarchive.config import settings
from lcarchive.shards import decode_chunk, decode_index, spec_of
from lcarchive.stores import get_retrying, read_store

__all__ = ["BulkReader", "GroupReader", "coalesce", "run"]

# lcarchive writes and reads Zarr v3 consolidated metadata on purpose (one request opens a group);
# zarr's notice that it is not yet part of the v3 specification is noise to our users.
warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)

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
        spec = spec_of(array)
        if spec is None:  # not a layout this reader decodes itself: let zarr read it
            return np.asarray(await array.getitem((row, *(slice(None),) * (array.ndim - 1))))
        chunk = (row // spec.shard_rows, *(0,) * (array.ndim - 1))
        key = f"{array.store_path.path}/{array.metadata.encode_chunk_key(chunk)}"
        store = array.store_path.store
        index = self._indexes.get((array.path, key))
        if index is None:
            size = spec.index_size
            where = RangeByteRequest(0, size) if spec.index_at_start else SuffixByteRequest(size)
            raw = await get_retrying(store, key, where)
            if raw is None:  # shard never written: all fill
                return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
            index = decode_index(spec, raw.to_bytes())
            self._indexes[(array.path, key)] = index
        offset, nbytes = index[row % spec.shard_rows]
        if offset == _EMPTY:
            return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
        buf = await get_retrying(store, key, RangeByteRequest(int(offset), int(offset + nbytes)))
        values = decode_chunk(spec, buf.to_bytes(), array.shape[1:])
        return values if values.dtype == object else values.astype(array.dtype, copy=False)


# -- bulk reads ------------------------------------------------------------------------------

def coalesce(spans: list[tuple[int, int]], gap: int | None = None, largest: int | None = None) -> list[tuple[int, int, list[int]]]:
    """Group byte spans into range requests.

    Parameters
    ----------
    spans : list of (offset, nbytes)
    gap, largest : int, optional
        Spans closer than ``gap`` bytes are read together, up to ``largest`` bytes a request
        (default ``Settings.coalesce_gap_bytes``, ``Settings.coalesce_max_bytes``: a gap of 1 MiB measured best against moto, docs/performance.md).

    Returns
    -------
    list of (start, stop, positions)
        One entry per request: its byte range and the positions in ``spans`` it covers.
    """
    gap = settings().coalesce_gap_bytes if gap is None else gap
    largest = settings().coalesce_max_bytes if largest is None else largest
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    requests: list[tuple[int, int, list[int]]] = []
    for i in order:
        offset, nbytes = spans[i]
        if requests:
            start, stop, members = requests[-1]
            if offset - stop <= gap and offset + nbytes - start <= largest:
                requests[-1] = (start, max(stop, offset + nbytes), [*members, i])
                continue
        requests.append((offset, offset + nbytes, [i]))
    return requests


class BulkReader:
    """Read many targets' rows of one group: shard indexes once, nearby chunks coalesced.

    Parameters
    ----------
    reader : GroupReader
    limit : asyncio.Semaphore
        Bounds the requests in flight (shared by every reader of a download).
    """

    def __init__(self, reader: GroupReader, limit: asyncio.Semaphore) -> None:
        self.reader = reader
        self.limit = limit
        self._whole: dict[str, np.ndarray] = {}
        self._index_locks: dict[str, asyncio.Lock] = {}
        self.requests = 0
        self.bytes = 0

    async def _get(self, store: Any, key: str, byte_range: Any = None) -> bytes | None:
        async with self.limit:
            buf = await get_retrying(store, key, byte_range)
        self.requests += 1
        if buf is None:
            return None
        data = buf.to_bytes()
        self.bytes += len(data)
        return data

    async def read_rows(self, rows: list[int], names: list[str]) -> dict[str, np.ndarray]:
        """Values of ``names`` for the given rows.

        Parameters
        ----------
        rows : list of int
            Rows of the group (any order; the output follows it).
        names : list of str
            Variables with ``target`` as first dimension.

        Returns
        -------
        dict of str to numpy.ndarray
            Shape (len(rows), ...) each; strings as object arrays.
        """
        values = await asyncio.gather(*(self._read(self.reader.arrays[n], n, rows) for n in names))
        return dict(zip(names, values, strict=True))

    async def _read(self, array: Any, name: str, rows: list[int]) -> np.ndarray:
        spec = spec_of(array)
        if spec is None:  # small per-target arrays (one chunk of thousands of targets): read whole once
            whole = self._whole.get(name)
            if whole is None:
                async with self.limit:
                    whole = np.asarray(await array.getitem(...))
                self._whole[name] = whole
            out = whole[np.asarray(rows, dtype=np.int64)]
            return out.astype(object) if out.dtype.kind == "T" else out
        shape = tuple(array.shape[1:])
        dtype = np.dtype(object) if spec.kind == "vlen-zstd" else array.dtype
        fill = "" if dtype == object else array.metadata.fill_value
        out = np.empty((len(rows), *shape), dtype=dtype)
        by_shard: dict[int, list[int]] = {}
        for position, row in enumerate(rows):
            by_shard.setdefault(row // spec.shard_rows, []).append(position)
        filled = await asyncio.gather(
            *(self._read_shard(array, spec, shard, positions, rows, out) for shard, positions in by_shard.items())
        )
        missing = [p for shard_filled, (_, positions) in zip(filled, by_shard.items(), strict=True) for p in positions if p not in shard_filled]
        if missing:  # rows never written (all fill)
            out[missing] = fill
        return out

    async def read_raw(self, rows: list[int], name: str) -> list[bytes | None]:
        """The stored (encoded) chunks of a sharded variable for the given rows, undecoded.

        Returns
        -------
        list of bytes or None
            One per row, in the order of ``rows``; None where the row was never written.
        """
        array = self.reader.arrays[name]
        spec = spec_of(array)
        if spec is None:
            raise ValueError(f"{name} is not a sharded array of one-target chunks")
        out: list[bytes | None] = [None] * len(rows)
        by_shard: dict[int, list[int]] = {}
        for position, row in enumerate(rows):
            by_shard.setdefault(row // spec.shard_rows, []).append(position)

        async def shard_chunks(shard: int, positions: list[int]) -> None:
            key = f"{array.store_path.path}/{array.metadata.encode_chunk_key((shard, *(0,) * (array.ndim - 1)))}"
            index = await self._index(array, spec, key)
            if index is None:
                return
            wanted = [(p, index[rows[p] % spec.shard_rows]) for p in positions]
            wanted = [(p, (int(o), int(n))) for p, (o, n) in wanted if o != _EMPTY]

            async def fetch(start: int, stop: int, members: list[int]) -> None:
                data = await self._get(array.store_path.store, key, RangeByteRequest(start, stop))
                for m in members:
                    position, (offset, nbytes) = wanted[m]
                    out[position] = data[offset - start : offset - start + nbytes]

            await asyncio.gather(*(fetch(*r) for r in coalesce([span for _, span in wanted])))

        await asyncio.gather(*(shard_chunks(shard, positions) for shard, positions in by_shard.items()))
        return out

    async def _index(self, array: Any, spec: Any, key: str) -> np.ndarray | None:
        store = array.store_path.store
        cache = self.reader._indexes
        lock = self._index_locks.setdefault(key, asyncio.Lock())
        async with lock:  # one request per shard index, however many batches want it
            index = cache.get((array.path, key))
            if index is None:
                size = spec.index_size
                where = RangeByteRequest(0, size) if spec.index_at_start else SuffixByteRequest(size)
                raw = await self._get(store, key, where)
                if raw is None:
                    return None
                index = cache[(array.path, key)] = decode_index(spec, raw)
        return index

    async def _read_shard(self, array: Any, spec: Any, shard: int, positions: list[int], rows: list[int], out: np.ndarray) -> set[int]:
        """Fill ``out`` at ``positions`` from one shard; return the positions it filled."""
        key = f"{array.store_path.path}/{array.metadata.encode_chunk_key((shard, *(0,) * (array.ndim - 1)))}"
        index = await self._index(array, spec, key)
        if index is None:  # shard never written: all fill
            return set()
        wanted = [(p, index[rows[p] % spec.shard_rows]) for p in positions]
        wanted = [(p, (int(o), int(n))) for p, (o, n) in wanted if o != _EMPTY]
        spans = [span for _, span in wanted]
        store = array.store_path.store

        async def fetch(start: int, stop: int, members: list[int]) -> None:
            data = await self._get(store, key, RangeByteRequest(start, stop))
            for m in members:
                position, (offset, nbytes) = wanted[m]
                piece = data[offset - start : offset - start + nbytes]
                out[position] = decode_chunk(spec, piece, out.shape[1:])

        await asyncio.gather(*(fetch(*request) for request in coalesce(spans)))
        return {p for p, _ in wanted}
