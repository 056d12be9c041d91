"""The read path: target rows of an observation group in as few round trips as the layout allows.

A :class:`GroupReader` opens a group once on a zarr store (an icechunk session's store at one
snapshot, or a plain Zarr folder: a download), keeps the ``cadenceno`` and ``target``
coordinates, and reads a target's row of every requested variable concurrently on zarr's event
loop. For the sharded (target, cadence) arrays it reads the shard index once and caches it,
then fetches the target's chunk with one byte-range request: a warm read of ``time``, ``flux``,
``flux_err`` and ``quality`` is one round of four concurrent requests, a read with cold shard
indexes two. Every chunk's and index's CRC32C is checked (:mod:`lcarchive.layout.shards`).

This point reader and the raw chunk copy of :class:`BulkReader` are kept beside zarr's own
reads because they measured clearly faster (docs/performance.md: a warm point read 0.48-0.50x
the time of zarr's fused pipeline on S3, the raw row copy of a download 0.25-0.58x); other
arrays are read by zarr itself. A snapshot never changes, so the cached indexes never go stale.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import zarr
import zarr.api.asynchronous as zasync
from xarray.backends import BackendArray

from lcarchive.clients import first_line, get_retrying
from lcarchive.config import settings
from lcarchive.errors import DamagedObjectError
from lcarchive.layout.frametable import FRAMES_GROUP
from lcarchive.layout.shards import decode_chunk, decode_index, spec_of
from lcarchive.zarr_internals import byte_range, last_bytes, path_of, shard_key, store_of, sync

__all__ = [
    "BulkReader",
    "GroupReader",
    "RowArray",
    "RowBatch",
    "coalesce",
    "fetch_index",
    "forget_readers",
    "gather",
    "open_reader",
    "rows_lazily",
    "run",
    "zarr_read",
]

_EMPTY = np.uint64(2**64 - 1)


async def zarr_read(array: Any, selection: Any, label: str = "", orthogonal: bool = False) -> np.ndarray:
    """``array[selection]`` read by zarr (``array.oindex[selection]`` when ``orthogonal``: a
    tuple of integers, slices and integer arrays, one per dimension), a checksum or decoding
    failure raised as :class:`~lcarchive.errors.DamagedObjectError` naming the array.

    Raises
    ------
    DamagedObjectError
        If a chunk does not match its CRC32C or does not decode.
    """
    try:
        if orthogonal:
            return np.asarray(await array.get_orthogonal_selection(selection))
        return np.asarray(await array.getitem(selection))
    except (ValueError, RuntimeError) as exc:
        text = str(exc)
        if "checksum" not in text.lower() and "decompress" not in text.lower():
            raise
        where = f"{label}: {array.path}" if label else array.path
        raise DamagedObjectError(where, f"a chunk does not match its CRC32C or does not decode ({first_line(text, 80)})") from exc


async def gather(*coros: Any) -> list[Any]:
    """``asyncio.gather`` that, when one awaitable fails, cancels the others and waits for them.

    Without it a failed read (a damaged chunk) leaves its sibling requests pending on zarr's
    event loop, and the interpreter prints their warnings at exit after the one-line error.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def run(coro: Any) -> Any:
    """Run a coroutine on zarr's event loop (where the store's async clients live)."""
    return sync(coro)


READ_TOGETHER = ("time", "flux", "flux_err", "quality")
"""Variables a point read through xarray loads in one round when any of them is loaded: what
``ds.sel(target=t)[["time", "flux", "flux_err", "quality"]].load()`` asks for, one variable
after another (xarray's ``load`` is sequential; ``load_async`` is not)."""


async def _open_arrays(group: Any, names: list[str]) -> dict[str, Any]:
    """The arrays of a group by name, opened concurrently (a child that is a group is left out)."""
    nodes = await gather(*(group.getitem(n) for n in names))
    return {n: node for n, node in zip(names, nodes, strict=True) if isinstance(node, zasync.AsyncArray)}


async def fetch_index(array: Any, spec: Any, key: str, where: str) -> np.ndarray | None:
    """A shard's index, its CRC32C checked; None if the shard was never written (all fill).

    Raises
    ------
    DamagedObjectError
        If the index does not match its CRC32C (naming ``where``).
    """
    size = spec.index_size
    raw = await get_retrying(store_of(array), key, byte_range(0, size) if spec.index_at_start else last_bytes(size))
    return None if raw is None else decode_index(spec, raw.to_bytes(), where)


_OPENED: dict[tuple, GroupReader] = {}


def forget_readers() -> None:
    """Forget the readers :func:`open_reader` kept (the next read of a group is cold)."""
    _OPENED.clear()


async def open_reader(store: Any, path: str, label: str, key: tuple | None = None) -> GroupReader:
    """:meth:`GroupReader.open`, or the reader opened before in this process under ``key``.

    ``key`` must name what the store shows exactly and for ever (the archive, the family's
    snapshot and the group): a snapshot never changes, so neither do the coordinates and shard
    indexes the reader keeps, and a second handle of the archive reads a group opened before
    without opening it again.
    """
    if key is not None and key in _OPENED:
        return _OPENED[key]
    reader = await GroupReader.open(store, path, label)
    if key is not None:
        if len(_OPENED) >= settings().readers_kept:
            _OPENED.pop(next(iter(_OPENED)))
        _OPENED[key] = reader
    return reader


class GroupReader:
    """Read target rows of one observation group.

    Use ``await GroupReader.open(store, path, label)``. A group of an icechunk session opens
    only its coordinates and the ``READ_TOGETHER`` variables (a SPOC group has some 56 arrays,
    whose metadata took 66-200 ms of CPU to open, against 6-8 ms for six); the others open when
    first read (:meth:`ensure`).

    Attributes
    ----------
    attrs : dict
        The group's attributes.
    names : list of str
        Every array of the group.
    arrays : dict of str to zarr.AsyncArray
        The arrays opened so far (all of ``names`` after ``await ensure()``).
    shard_indexes : dict of (str, str) to numpy.ndarray
        The shard indexes read so far, by (array path, shard key): (offset, nbytes) per row,
        shared with the :class:`BulkReader` reading this group.
    cadenceno : numpy.ndarray, shape (n_cadences,), int64
    target : numpy.ndarray, shape (n_targets,), int64
    """

    def __init__(
        self,
        group: zasync.AsyncGroup,
        arrays: dict[str, Any],
        cadenceno: np.ndarray,
        target: np.ndarray,
        label: str = "",
        names: list[str] | None = None,
    ) -> None:
        self.group = group
        self.label = label
        self.attrs = dict(group.attrs)
        self.arrays = arrays
        self.names = sorted(arrays) if names is None else names
        self.cadenceno = cadenceno
        self.target = target
        self.shard_indexes: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    async def open(cls, store: Any, path: str = "", label: str = "") -> GroupReader:
        """Open the group at ``path`` of a zarr store, then read its coordinates concurrently
        (and the shard indexes of a small group's ``READ_TOGETHER`` variables).

        ``label`` (the repository's URL) prefixes object keys in errors.

        Raises
        ------
        FileNotFoundError
            If there is no group there.
        """
        try:
            group = await zasync.open_group(store, path=path or None, mode="r", zarr_format=3)
        except zarr.errors.GroupNotFoundError as exc:
            raise FileNotFoundError(path) from exc
        if group.metadata.consolidated_metadata is not None:  # a download's group: every array's metadata at hand
            arrays = {name: array async for name, array in group.arrays()}
            names = sorted(arrays)
        else:
            # the group's arrays: its listing without its metadata and its frame table (a child group)
            names = sorted([n async for n in store_of(group).list_dir(path_of(group)) if n not in ("zarr.json", FRAMES_GROUP)])
            arrays = await _open_arrays(group, [n for n in ("cadenceno", "target", *READ_TOGETHER) if n in names])
            names = [n for n in names if n in arrays or n not in ("cadenceno", "target", *READ_TOGETHER)]
        ahead = [
            (array, spec, shard_key(array, shard))
            for name in READ_TOGETHER
            if (array := arrays.get(name)) is not None and (spec := spec_of(array)) is not None
            for shard in range(-(-array.shape[0] // spec.shard_rows))
        ]
        if len(ahead) > settings().indexes_ahead:
            ahead = []
        cadenceno, target, *indexes = await gather(
            zarr_read(arrays["cadenceno"], ..., label),
            zarr_read(arrays["target"], ..., label),
            *(fetch_index(array, spec, key, f"{label}: {key}" if label else key) for array, spec, key in ahead),
        )
        reader = cls(group, arrays, np.asarray(cadenceno), np.asarray(target), label, names)
        for (array, _, key), index in zip(ahead, indexes, strict=True):
            if index is not None:
                reader.shard_indexes[(array.path, key)] = index
        return reader

    async def ensure(self, names: list[str] | tuple[str, ...] | None = None) -> None:
        """Open these arrays of the group (every one for None), if not open yet."""
        missing = [n for n in (self.names if names is None else names) if n not in self.arrays and n in self.names]
        if missing:
            opened = await _open_arrays(self.group, missing)
            self.arrays.update(opened)
            self.names = [n for n in self.names if n in self.arrays or n not in missing]  # subgroups are no arrays

    def where(self, key: str) -> str:
        """An object's key as errors name it: the repository's URL and the key."""
        return f"{self.label}: {key}" if self.label else key

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
        await self.ensure(names)
        values = await gather(*(self._read(self.arrays[n], row) for n in names))
        return dict(zip(names, values, strict=True))

    async def _read(self, array: Any, row: int) -> np.ndarray:
        spec = spec_of(array)
        if spec is None:  # not a layout this reader decodes itself: let zarr read it
            return await zarr_read(array, (row, *(slice(None),) * (array.ndim - 1)), self.label)
        key = shard_key(array, row // spec.shard_rows)
        store = store_of(array)
        index = self.shard_indexes.get((array.path, key))
        if index is None:
            index = await fetch_index(array, spec, key, self.where(key))
            if index is None:  # shard never written: all fill
                return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
            self.shard_indexes[(array.path, key)] = index
        offset, nbytes = index[row % spec.shard_rows]
        if offset == _EMPTY:
            return np.full(array.shape[1:], array.metadata.fill_value, dtype=array.dtype)
        buf = await get_retrying(store, key, byte_range(int(offset), int(offset + nbytes)))
        values = decode_chunk(spec, buf.to_bytes(), array.shape[1:], self.where(key))
        return values if values.dtype == object else values.astype(array.dtype, copy=False)


# -- bulk reads ------------------------------------------------------------------------------


def coalesce(
    spans: list[tuple[int, int]], gap: int | None = None, largest: int | None = None
) -> list[tuple[int, int, list[int]]]:
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

    async def get(self, store: Any, key: str, byte_range: Any = None) -> bytes | None:
        """One object (or a byte range of it) of ``store``, retried when cut off, counted in
        ``requests`` and ``bytes``, within the reader's limit of requests in flight; None if
        the object does not exist."""
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
        await self.reader.ensure(names)
        values = await gather(*(self._read(self.reader.arrays[n], n, rows) for n in names))
        return dict(zip(names, values, strict=True))

    async def _read(self, array: Any, name: str, rows: list[int]) -> np.ndarray:
        spec = spec_of(array)
        if spec is None:  # small per-target arrays (one chunk of thousands of targets): read whole once
            whole = self._whole.get(name)
            if whole is None:
                async with self.limit:
                    whole = await zarr_read(array, ..., self.reader.label)
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
        filled = await gather(
            *(self._read_shard(array, spec, shard, positions, rows, out) for shard, positions in by_shard.items())
        )
        missing = [
            p
            for shard_filled, (_, positions) in zip(filled, by_shard.items(), strict=True)
            for p in positions
            if p not in shard_filled
        ]
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
        await self.reader.ensure([name])
        array = self.reader.arrays[name]
        spec = spec_of(array)
        if spec is None:
            raise ValueError(f"{name} is not a sharded array of one-target chunks")
        out: list[bytes | None] = [None] * len(rows)
        by_shard: dict[int, list[int]] = {}
        for position, row in enumerate(rows):
            by_shard.setdefault(row // spec.shard_rows, []).append(position)

        async def shard_chunks(shard: int, positions: list[int]) -> None:
            key = shard_key(array, shard)
            index = await self._index(array, spec, key)
            if index is None:
                return
            wanted = [(p, index[rows[p] % spec.shard_rows]) for p in positions]
            wanted = [(p, (int(o), int(n))) for p, (o, n) in wanted if o != _EMPTY]

            async def fetch(start: int, stop: int, members: list[int]) -> None:
                data = await self.get(store_of(array), key, byte_range(start, stop))
                for m in members:
                    position, (offset, nbytes) = wanted[m]
                    out[position] = data[offset - start : offset - start + nbytes]  # type: ignore[index]  # a range the object holds: bytes

            await gather(*(fetch(*r) for r in coalesce([span for _, span in wanted])))

        await gather(*(shard_chunks(shard, positions) for shard, positions in by_shard.items()))
        return out

    async def _index(self, array: Any, spec: Any, key: str) -> np.ndarray | None:
        store = store_of(array)
        cache = self.reader.shard_indexes
        lock = self._index_locks.setdefault(key, asyncio.Lock())
        async with lock:  # one request per shard index, however many batches want it
            index = cache.get((array.path, key))
            if index is None:
                size = spec.index_size
                where = byte_range(0, size) if spec.index_at_start else last_bytes(size)
                raw = await self.get(store, key, where)
                if raw is None:
                    return None
                index = cache[(array.path, key)] = decode_index(spec, raw, self.reader.where(key))
        return index

    async def _read_shard(
        self, array: Any, spec: Any, shard: int, positions: list[int], rows: list[int], out: np.ndarray
    ) -> set[int]:
        """Fill ``out`` at ``positions`` from one shard; return the positions it filled."""
        key = shard_key(array, shard)
        index = await self._index(array, spec, key)
        if index is None:  # shard never written: all fill
            return set()
        wanted = [(p, index[rows[p] % spec.shard_rows]) for p in positions]
        wanted = [(p, (int(o), int(n))) for p, (o, n) in wanted if o != _EMPTY]
        spans = [span for _, span in wanted]
        store = store_of(array)

        async def fetch(start: int, stop: int, members: list[int]) -> None:
            data = await self.get(store, key, byte_range(start, stop))
            for m in members:
                position, (offset, nbytes) = wanted[m]
                piece = data[offset - start : offset - start + nbytes]  # type: ignore[index]  # as above
                out[position] = decode_chunk(spec, piece, out.shape[1:], self.reader.where(key))

        await gather(*(fetch(*request) for request in coalesce(spans)))
        return {p for p, _ in wanted}


# -- xarray: rows of several variables loaded together -------------------------------------------


class RowBatch:
    """The pending row reads of one group's lazy variables: a read of rows of one variable of
    ``together`` reads the same rows of the others concurrently, and keeps them for their own
    load, which then makes no request.

    Parameters
    ----------
    reader : GroupReader
    together : sequence of str
        Names of the variables read together (those of the group's).
    """

    def __init__(self, reader: GroupReader, together: tuple[str, ...] | list[str]) -> None:
        self.reader = reader
        self.together = [n for n in together if n in reader.names]
        self._ready: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    async def rows(self, name: str, rows: tuple[int, ...]) -> np.ndarray:
        """Rows of one variable, shape (len(rows), ...)."""
        ready = self._ready.pop((name, rows), None)
        if ready is not None:
            return ready
        names = [name, *(n for n in self.together if n != name and (n, rows) not in self._ready)]
        per_row = await gather(*(self.reader.read_row(row, names) for row in rows))
        if len(self._ready) > 4 * len(self.together):  # rows read ahead and never loaded
            self._ready.clear()
        for n in names[1:]:
            self._ready[(n, rows)] = np.stack([values[n] for values in per_row])
        return np.stack([values[name] for values in per_row])


class RowArray(BackendArray):
    """A variable of a group with ``target`` as first dimension, for xarray: row selections of a few targets go through :class:`RowBatch`, the rest
    through zarr. Values are the stored ones (used only where xarray's decoding changes
    nothing: no scale, a NaN or no fill value)."""

    def __init__(self, batch: RowBatch, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.batch = batch
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, lambda k: run(self._get(k)))

    async def async_getitem(self, key: Any) -> np.ndarray:
        from xarray.core import indexing

        return await indexing.async_explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._get)

    async def _get(self, key: tuple) -> np.ndarray:
        first, rest = key[0], tuple(key[1:])
        rows = np.arange(self.shape[0])[first]
        if np.ndim(rows) == 0 or (rows.size <= settings().lazy_rows_at_once and rows.size):
            values = await self.batch.rows(self.name, tuple(int(r) for r in np.atleast_1d(rows)))
            values = values[(slice(None), *rest)] if rest else values
            return values[0] if np.ndim(rows) == 0 else values
        await self.batch.reader.ensure([self.name])
        return await zarr_read(self.batch.reader.arrays[self.name], key, self.batch.reader.label, orthogonal=True)


def rows_lazily(ds: Any, reader: GroupReader, together: tuple[str, ...] | list[str] = READ_TOGETHER) -> Any:
    """``ds`` (an observation group opened lazily by xarray on ``reader``'s store) with its
    (target, ...) variables that :class:`GroupReader` decodes read through :class:`RowArray`:
    loading a few targets of the ``together`` variables is one round of requests, as
    :meth:`GroupReader.read_row` is, however xarray loads them.

    Returns
    -------
    xarray.Dataset
        The same variables, attributes and encodings.
    """
    import xarray as xr
    from xarray.core import indexing

    batch = RowBatch(reader, together)
    replaced = {}
    for name, variable in ds.data_vars.items():
        # (target, ...) arrays stored in shards of one-target chunks (what GroupReader decodes; a
        # layout it does not is read by zarr all the same), opened or not yet
        encoding = variable.encoding
        one_row = (encoding.get("chunks") or (None,))[0] == 1 and encoding.get("shards") is not None
        if name not in reader.names or not variable.dims or variable.dims[0] != "target" or not one_row:
            continue
        fill = encoding.get("_FillValue")
        plain = fill is None or (isinstance(fill, float) and np.isnan(fill))
        stored = np.dtype(encoding.get("dtype", variable.dtype))
        if (
            not plain
            or "scale_factor" in encoding
            or "add_offset" in encoding
            or variable.dtype != stored
            or variable.dtype.kind not in "biuf"
        ):
            continue
        data = indexing.LazilyIndexedArray(RowArray(batch, name, variable.shape, variable.dtype))
        replaced[name] = xr.Variable(variable.dims, data, attrs=variable.attrs, encoding=variable.encoding)
    return ds.assign(replaced) if replaced else ds
