"""Writes of one icechunk session done on a Dask cluster's workers.

icechunk's distributed writes (https://icechunk.io/en/latest/parallel/): the coordinating process
writes the metadata (new arrays, resizes, attributes) in its writable session, forks it, and each
worker task writes chunks into its copy of the fork; the forks come back and are merged into the
session, which the coordinator commits once (:func:`lcarchive.store.repos.transaction`). Nothing
is visible before that commit, so a failed worker leaves the archive as it was.

Each task writes whole shards (or the only partial one at the end of what the session held), so
no two tasks touch one stored object and the merged session holds the bytes a single process
writing the same values would have written.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import dask
import numpy as np
import xarray as xr
import zarr

from lcarchive.config import WithSettings
from lcarchive.layout import fused

__all__ = ["shard_extent", "write_dataset", "write_regions"]


def shard_extent(array: zarr.Array) -> int:
    """Targets per stored object of an array along its first (target) axis: its shard's extent,
    or its chunk's when it is not sharded."""
    return int((array.shards or array.chunks)[0])


def write_dataset(session: Any, client: Any, ds: xr.Dataset, group: str, encoding: dict[str, dict]) -> None:
    """Write an observation group whole, its sharded variables encoded and written on ``client``'s workers.

    The group's metadata and its small variables are written here; every variable of ``encoding``
    with shards is split into one Dask chunk per shard along ``target`` and written by
    :func:`icechunk.xarray.to_icechunk` through forks of ``session`` merged back into it.

    Parameters
    ----------
    session : icechunk.Session
        A writable session (not committed here).
    client : dask.distributed.Client
    ds : xarray.Dataset
        The group's variables, in memory.
    group : str
        The group's path in the repository.
    encoding : dict
        Chunks, shards and codecs per variable (:func:`lcarchive.layout.encoding`).
    """
    from icechunk.xarray import to_icechunk

    sharded = {name: int(enc["shards"]["shape"][0]) for name, enc in encoding.items() if "shards" in enc and name in ds.data_vars}
    lazy = ds.assign({name: ds[name].chunk({"target": extent}) for name, extent in sharded.items()})
    with dask.config.set(scheduler=client), fused(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        to_icechunk(lazy, session, group=group, mode="w", encoding=encoding)


def write_regions(session: Any, client: Any, writes: list[tuple[str, int, np.ndarray]]) -> None:
    """Write rows of existing arrays on ``client``'s workers, one task per (array, stored object).

    Parameters
    ----------
    session : icechunk.Session
        A writable session holding the arrays, already resized to their final shapes.
    client : dask.distributed.Client
    writes : list of (path, start, values)
        ``values`` (shape (n_rows, ...)) go to rows ``start:start + n_rows`` of the array at
        ``path``. They are cut at the array's shard boundaries, so that each task writes its own
        stored objects.
    """
    if not writes:
        return
    tasks: list[tuple[str, int, Any]] = []
    for path, start, values in writes:
        extent = shard_extent(zarr.open_array(session.store, path=path, mode="r"))
        stop = start + len(values)
        edges = [start, *range((start // extent + 1) * extent, stop, extent), stop]
        tasks.extend((path, a, values[a - start : b - start]) for a, b in itertools.pairwise(edges) if b > a)
    fork = session.fork()
    futures = [client.submit(WithSettings(_write_rows), fork, path, a, part, pure=False) for path, a, part in tasks]
    session.merge(*client.gather(futures))


def _write_rows(fork: Any, path: str, start: int, values: np.ndarray) -> Any:
    """A worker's task: rows ``start:start + len(values)`` of one array into its fork."""
    with fused(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.open_array(fork.store, path=path, mode="r+")[start : start + len(values)] = values
    return fork
