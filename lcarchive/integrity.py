"""Checking a whole archive: every stored chunk of the chosen observation groups read and decoded
(``lcarchive verify``), on this machine's threads or on a Dask cluster.

Each stored chunk (a shard, or an unsharded chunk; icechunk's manifest lists which exist) is read
through zarr's own codec pipeline, so every inner chunk's CRC32C is checked and every codec
decodes. A damaged object is reported by name: the repository and the chunk's key, with the
reason (a checksum that does not match, a chunk that does not decode, a chunk the manifest names
that the store lacks). The catalog repository's buckets (pins, target index, sky index) are read
the same way (``catalog/<array>/c/<bucket>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from lcarchive.clients import first_line

__all__ = ["Damage", "IntegrityReport", "verify_archive"]


@dataclass(frozen=True)
class Damage:
    """One damaged object.

    Attributes
    ----------
    where : str
        The repository (``<root>/observations/<family>``, ``<root>/catalog``) or folder.
    key : str
        The chunk's key in it (``<observation>/<variable>/c/<i>/<j>``).
    reason : str
    """

    where: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.reason}"


@dataclass
class IntegrityReport:
    """What :func:`verify_archive` found.

    Attributes
    ----------
    damaged : list of Damage
    chunks : int
        Stored chunks read (shards count once).
    bytes : int
        Decoded bytes checked.
    observations : list of str
        Groups checked.
    seconds : float
    """

    damaged: list[Damage] = field(default_factory=list)
    chunks: int = 0
    bytes: int = 0
    observations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing is damaged."""
        return not self.damaged


def _reason(exc: BaseException) -> str:
    text = first_line(str(exc), 160)
    lowered = text.lower()
    if "checksum" in lowered or "crc" in lowered:
        return f"does not match its CRC32C ({text})"
    if "not found" in lowered or "nosuchkey" in lowered or "no such file" in lowered or isinstance(exc, FileNotFoundError):
        return f"missing: the manifest names a chunk the store does not have ({text})"
    return f"does not decode ({type(exc).__name__}: {text})"


async def _stored_chunks(session: Any, path: str) -> list[tuple[int, ...]]:
    return [tuple(c) async for c in session.chunk_coordinates(f"/{path}")]


def check_group(store: Any, path: str, where: str) -> tuple[list[Damage], int, int]:
    """Read every stored chunk of every array of one group (a zarr store and path).

    Returns
    -------
    (list of Damage, int, int)
        The damaged chunks, the chunks read, the bytes decoded.
    """
    damaged: list[Damage] = []
    chunks = nbytes = 0
    try:
        group = zarr.open_group(store, path=path or None, mode="r")
        arrays = sorted(group.arrays(), key=lambda item: item[0])
    except Exception as exc:  # the group's metadata itself (zarr.json) is damaged or gone
        return [Damage(where, f"{path}/zarr.json", _reason(exc))], 0, 0
    session = getattr(store, "session", None)
    subgroups = sorted(group.groups(), key=lambda item: item[0])
    for name, array in arrays:
        grid = tuple(array.shards or array.chunks)
        key_path = f"{path}/{name}" if path else name
        if session is not None:
            coords = zarr.core.sync.sync(_stored_chunks(session, key_path))
        else:  # a plain Zarr folder: every chunk of the grid (a missing one reads as the fill value)
            coords = list(np.ndindex(*(max(1, -(-s // g)) for s, g in zip(array.shape, grid, strict=True))))
        for coord in coords:
            region = tuple(slice(c * g, min((c + 1) * g, s)) for c, g, s in zip(coord, grid, array.shape, strict=True))
            try:
                values = array[region]
            except Exception as exc:  # zarr and icechunk raise many kinds: each is this chunk's damage
                damaged.append(Damage(where, f"{key_path}/c/{'/'.join(map(str, coord))}", _reason(exc)))
                continue
            chunks += 1
            nbytes += int(getattr(values, "nbytes", 0))
    for name, _ in subgroups:  # the catalog's analyses/<id>
        more, n, b = check_group(store, f"{path}/{name}" if path else name, where)
        damaged.extend(more)
        chunks, nbytes = chunks + n, nbytes + b
    return damaged, chunks, nbytes


def _check_observation(url: str, storage_options: dict | None, version: str | None, observation: str) -> tuple[list[Damage], int, int]:
    from lcarchive.archive import open_archive

    archive = open_archive(url, storage_options, version=version)
    store, path = archive.group_store(observation)
    folder = archive.group_path(observation).rpartition("/")[0]  # the family's repository (v2), or the root
    return check_group(store, path, f"{archive.url}/{folder}" if folder else archive.url)


def _check_catalog(archive: Any) -> tuple[list[Damage], int, int]:
    """Every stored chunk of the catalog repository (pins, target index, sky index, analyses)."""
    store = archive.catalog_store()
    if store is None:  # a folder of plain Zarr groups: its catalog.json and index, read whole
        try:
            archive.catalog, archive.target_index()
        except Exception as exc:  # DamagedArchiveError names the file
            return [Damage(archive.url, "catalog.json, index/targets.parquet", _reason(exc))], 0, 0
        return [], 0, 0
    return check_group(store, "", f"{archive.url}/catalog")


def verify_archive(archive: Any, observations: Iterable[str] | None = None, client: Any = None,
                   jobs: int = 4, progress: Callable[[int, int], None] | None = None) -> IntegrityReport:
    """Read and decode every stored chunk of some observation groups, and the catalog.

    Parameters
    ----------
    archive : lcarchive.Archive
    observations : iterable of str, optional
        Observation group IDs (release groups included); default every group of the version.
    client : dask.distributed.Client, optional
        Check the groups on this cluster's workers (each opens the archive at the same version);
        default: ``jobs`` threads here.
    jobs : int
        Groups checked at once without a cluster.
    progress : callable, optional
        Called as ``progress(done, total)`` in groups.

    Returns
    -------
    IntegrityReport
        A damaged bucket of the pins (``families``) ends the check there: without them no group
        can be located (``lcarchive catalog build`` rebuilds them from the repositories).

    Raises
    ------
    ObservationNotFoundError
        If an observation asked for is not in this version.
    """
    from lcarchive.errors import ObservationNotFoundError

    started = time.perf_counter()
    catalog_damage, catalog_chunks, catalog_bytes = _check_catalog(archive)
    if any(d.key.startswith("families/") for d in catalog_damage):  # no pins: no group can be located
        return IntegrityReport(damaged=catalog_damage, chunks=catalog_chunks, seconds=time.perf_counter() - started)
    known = archive.group_ids()
    ids = list(dict.fromkeys(observations)) if observations is not None else list(known)
    for obs in ids:
        if obs not in known:
            raise ObservationNotFoundError(obs)
    version = archive.version
    if version is None and not archive.read_only:
        history = archive.history(limit=1)
        version = history[0]["snapshot"] if history else None
    report = IntegrityReport(observations=ids, chunks=catalog_chunks, bytes=catalog_bytes)
    report.damaged.extend(catalog_damage)
    done = 0
    if client is not None:
        futures = [client.submit(_check_observation, archive.url, archive.storage_options, version, obs, pure=False)
                   for obs in ids]
        from dask.distributed import as_completed

        results = []
        for future in as_completed(futures):
            results.append(future.result())
            done += 1
            if progress:
                progress(done, len(ids))
    else:
        from concurrent.futures import ThreadPoolExecutor

        def one(obs: str) -> tuple[list[Damage], int, int]:
            return _check_observation(archive.url, archive.storage_options, version, obs)

        results = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for result in pool.map(one, ids):
                results.append(result)
                done += 1
                if progress:
                    progress(done, len(ids))
    for damaged, chunks, nbytes in results:
        report.damaged.extend(damaged)
        report.chunks += chunks
        report.bytes += nbytes
    report.damaged.sort(key=lambda d: (d.where, d.key))
    report.seconds = time.perf_counter() - started
    return report
