"""A read handle: one archive at one version, and what reading it needs.

:class:`ReadHandle` owns the lookups (the store behind the URL, the catalog, the target index,
each family's pin) and the readers of the observation groups. It is frozen and picklable: what
it is, is its URL, storage options and version, and what it pickles is only those (its caches
are made again where it is unpickled). :meth:`ReadHandle.resolved` names the version it reads
by its snapshot ID, so that every task of a Dask cluster given it reads that one version,
whatever is committed meanwhile.

:class:`lcarchive.Archive`, the user's facade, reads through one; the modules above the
archive (search, downloads, compute, verify) are given one (typed as :class:`ArchiveReads`).

Failures of the store (unreachable, access denied, throttled...) surface from every public
method as one-line :class:`lcarchive.StoreError`: each is wrapped by :func:`store_errors`
explicitly, and zarr's reads of the groups through :class:`lcarchive.clients.RetryingStore`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import functools
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive.aliases import AliasTable
from lcarchive.catalog.index import group_rows
from lcarchive.catalog.models import Analysis, Catalog, Observation
from lcarchive.clients import RetryingStore, first_line, with_defaults
from lcarchive.config import carry
from lcarchive.conventions import described
from lcarchive.errors import (
    ArchiveNotFoundError,
    DamagedObjectError,
    LcarchiveError,
    ObservationNotFoundError,
    UnknownVariableError,
)
from lcarchive.identifiers import check_observation_id
from lcarchive.layout import open_group
from lcarchive.store import (
    ArchiveStore,
    FamilyPin,
    GroupReader,
    PlainStore,
    failures,
    family_of,
    gather,
    open_reader,
    rows_lazily,
    run,
)

__all__ = ["ArchiveReads", "HasHandle", "ReadHandle", "reads", "store_errors"]


def store_errors[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """Report the store's failures in a handle's method as one-line :class:`lcarchive.StoreError`
    naming the archive (:func:`lcarchive.store.failures`)."""

    @functools.wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        handle = args[0]
        with failures(handle.url, handle.storage_options):  # type: ignore[attr-defined]  # the first argument is a handle
            return method(*args, **kwargs)

    return translated


class ArchiveReads(Protocol):
    """What the modules above the archive (search, downloads, compute, verify) read an archive
    through: the part of :class:`ReadHandle` they use."""

    @property
    def url(self) -> str: ...

    @property
    def storage_options(self) -> dict: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def observations(self) -> list[Observation]: ...

    @property
    def read_only(self) -> bool: ...

    def resolved(self) -> ReadHandle: ...

    def read_version(self) -> str | None: ...

    def target_index(self, targets: Iterable[int] | None = None) -> pd.DataFrame: ...

    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None: ...

    def alias_table(self) -> AliasTable: ...

    def group_path(self, observation: str) -> str: ...

    def group_ids(self) -> list[str]: ...

    def frames(self, observation: str) -> xr.Dataset: ...

    def group_index(self, observation: str) -> pd.DataFrame: ...

    def group_store(self, observation: str) -> tuple[Any, str]: ...

    def open_observation(self, observation: str, **kwargs: Any) -> xr.Dataset: ...

    def analyses(self) -> list[Analysis]: ...

    def analysis(self, name: str) -> pd.DataFrame: ...

    def snapshot_of(self, observation: str) -> str | None: ...

    def catalog_store(self) -> Any: ...

    def prepare(self, observations: Iterable[str]) -> None: ...

    async def reader(self, observation: str) -> GroupReader: ...


class HasHandle(Protocol):
    """What has a read handle: :class:`lcarchive.Archive`."""

    @property
    def handle(self) -> ReadHandle: ...


def reads(archive: ArchiveReads | HasHandle) -> ArchiveReads:
    """What to read an archive through: an :class:`lcarchive.Archive`'s read handle, or the
    handle given (the functions of :mod:`lcarchive.search` take either)."""
    handle = getattr(archive, "handle", None)
    return handle if isinstance(handle, ReadHandle) else archive  # type: ignore[return-value]  # not a HasHandle: an ArchiveReads


class _Lookups:
    """What a handle has read so far (not pickled; :meth:`ReadHandle.refresh` forgets it)."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store
        self.plain: PlainStore | None = None
        self.kind: str | None = None  # "v2" (icechunk repositories) or "plain" (Zarr groups), once known
        self.catalog: Catalog | None = None
        self.readers: dict[str, GroupReader] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class ReadHandle:
    """An archive at one version, read: see the module's docstring.

    Parameters
    ----------
    url : str
        Root of the archive (a local directory, ``s3://bucket/prefix``, ``gs://``, ``az://``).
    storage_options : dict, optional
        Credentials and endpoint (fsspec-style); lcarchive's retry defaults for S3 are added.
    version : str, optional
        A tag, branch or snapshot ID; default the latest.
    as_of : datetime.datetime, optional
        The version of this time (UTC if naive).
    """

    url: str
    storage_options: dict = dataclasses.field(default_factory=dict)
    version: str | None = None
    as_of: _dt.datetime | None = None
    _lookups: _Lookups = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        url = self.url.rstrip("/") if "://" in self.url else str(self.url).rstrip("/") or "/"
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "storage_options", with_defaults(url, self.storage_options))
        object.__setattr__(self, "_lookups", _Lookups(ArchiveStore(url, self.storage_options, self.version, self.as_of)))

    def __reduce__(self) -> tuple[Any, tuple]:
        return type(self), (self.url, self.storage_options, self.version, self.as_of)

    def resolved(self) -> ReadHandle:
        """This handle with its version named by snapshot ID (:meth:`read_version`): what a Dask
        task is given, so that every task reads this version (a plain Zarr folder has none)."""
        return ReadHandle(self.url, self.storage_options, self.read_version())

    # -- which kind of archive -------------------------------------------------------------------
    @store_errors
    def backend(self) -> ArchiveStore | PlainStore:
        """The store of this archive: its repositories (v2), or a folder of plain Zarr groups.

        Raises
        ------
        ArchiveNotFoundError
            If there is neither at the URL.
        LcarchiveError
            For a version asked of a plain Zarr folder.
        """
        lookups = self._lookups
        if lookups.kind is None:
            if lookups.store.exists():
                lookups.kind = "v2"
            else:
                plain = PlainStore(self.url, self.storage_options)
                if plain.exists():
                    if self.version is not None or self.as_of is not None:
                        raise LcarchiveError(
                            f"{self.url}: a folder of plain Zarr groups (store format v1 or a download) has no versions"
                        )
                    lookups.plain, lookups.kind = plain, "plain"
                else:
                    lookups.store.catalog_repository()  # raises ArchiveNotFoundError, saying why,
                    lookups.kind = "v2"  # unless another writer created the archive meanwhile
        return lookups.store if lookups.kind == "v2" else lookups.plain  # type: ignore[return-value]  # set with the kind

    @property
    def repositories(self) -> ArchiveStore:
        """The archive's icechunk repositories (store format v2), whether or not its catalog
        repository can be opened: what writes, ``lcarchive verify`` and ``rollback`` use."""
        return self._lookups.store

    @property
    def exists(self) -> bool:
        """True if there is an archive at the URL (:meth:`lcarchive.Archive.exists`)."""
        try:
            self.backend()
        except ArchiveNotFoundError:
            return False
        return True

    @property
    def read_only(self) -> bool:
        """True for a folder of plain Zarr groups (store format v1, or a download)."""
        return self.backend().read_only

    def forget_kind(self) -> None:
        """Look at what the URL holds again on the next read (after an ingest created an archive)."""
        self._lookups.kind = None

    def refresh(self) -> None:
        """Forget what was read: the next read sees the latest version (of a handle at the latest)."""
        self._lookups.store.refresh()
        self._lookups.catalog = None
        self._lookups.readers.clear()

    # -- catalog and index -------------------------------------------------------------------------
    @property
    @store_errors
    def catalog(self) -> Catalog:
        """The archive's catalog (:attr:`lcarchive.Archive.catalog`)."""
        if self._lookups.catalog is None:
            self._lookups.catalog = self.backend().catalog()
        return self._lookups.catalog

    @property
    def observations(self) -> list[Observation]:
        """Observations in the catalog, sorted by ID."""
        return sorted(self.catalog.observations, key=lambda o: o.id)

    def group_path(self, observation: str) -> str:
        """Where an observation's group is, relative to the root (:meth:`lcarchive.Archive.group_path`)."""
        check_observation_id(observation)
        if self._lookups.kind == "plain":
            return self._lookups.plain.group_path(observation)  # type: ignore[union-attr]  # set with the kind
        return f"observations/{family_of(observation)}/{observation}"

    @store_errors
    def group_ids(self) -> list[str]:
        """IDs of the observation groups of this version."""
        return self.backend().group_ids()

    @store_errors
    def target_index(self, targets: Iterable[int] | None = None) -> pd.DataFrame:
        """The target index, or the lines of some targets (:meth:`lcarchive.Archive.target_index`)."""
        return self.backend().index(None if targets is None else [int(t) for t in targets])

    @store_errors
    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None:
        """The index lines of the targets in some HEALPix pixels of the sky index; None without
        one (:meth:`lcarchive.Archive.index_pixels`)."""
        return self.backend().index_pixels(pixels)

    @store_errors
    def alias_table(self) -> AliasTable:
        """The alias table of this version (:meth:`lcarchive.Archive.aliases`); empty for a plain
        Zarr folder or an archive written before there was one."""
        reader = getattr(self.backend(), "alias_table", None)
        return reader() if reader is not None else AliasTable()

    @store_errors
    def analyses(self) -> list[Analysis]:
        """The catalog entries of the archive-wide analyses of this version, oldest first."""
        return self.backend().analyses()

    @store_errors
    def analysis(self, name: str) -> pd.DataFrame:
        """One analysis's results, by ID or method (:meth:`lcarchive.Archive.analysis`).

        Raises
        ------
        KeyError
            If there is no such analysis.
        """
        entries = [a for a in self.analyses() if name in (a.id, a.method)]
        if not entries:
            raise KeyError(f"no analysis {name!r} in {self.url} (lcarchive compute makes them)")
        entry = entries[-1]
        columns = self.backend().read_analysis(entry.id)
        order = ["target", "observation", *entry.variables]
        frame = pd.DataFrame({k: columns[k] for k in order if k in columns})
        frame.attrs["analysis"] = entry
        if "periodogram" in columns:
            frame.attrs["periodogram"] = columns["periodogram"]
        for key in ("period_grid", "periodogram_period"):  # the name before the grid was always stored
            if key in columns:
                frame.attrs["period_grid"] = columns[key]
        return frame

    @store_errors
    def catalog_store(self) -> Any:
        """The zarr store of the catalog repository at this version (read-only), or None for a
        folder of plain Zarr groups (whose catalog is ``catalog.json``)."""
        backend = self.backend()
        return RetryingStore(backend.catalog_session().store, self.url) if isinstance(backend, ArchiveStore) else None

    @store_errors
    def snapshot_of(self, observation: str) -> str | None:
        """The snapshot of an observation family's repository this version pins (None in a folder
        of plain Zarr groups)."""
        backend = self.backend()
        if not isinstance(backend, ArchiveStore):
            return None
        pin = backend.pin(family_of(observation))
        return None if pin is None else pin.snapshot

    @store_errors
    def read_version(self) -> str | None:
        """The version read: the catalog's snapshot ID; None for a plain Zarr folder."""
        if self.read_only:
            return None
        return self._lookups.store.catalog_session().snapshot_id

    # -- groups ------------------------------------------------------------------------------------
    @store_errors
    def group_store(self, observation: str) -> tuple[Any, str]:
        """The zarr store and path of an observation group at this version.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        try:
            return self.backend().group_store(check_observation_id(observation))
        except KeyError:
            raise ObservationNotFoundError(observation) from None

    @store_errors
    def open_observation(self, observation: str, **kwargs: Any) -> xr.Dataset:
        """One observation group as a lazy ``xarray.Dataset`` (:meth:`lcarchive.Archive.open_observation`)."""
        self.prepare([check_observation_id(observation)])
        store, path = self.group_store(observation)
        if not kwargs:  # the coordinates as read already; a few targets' core variables loaded together
            reader = run(self._reader(observation))
            return described(
                rows_lazily(open_group(store, path, {"target": reader.target, "cadenceno": reader.cadenceno}), reader)
            )
        return described(xr.open_dataset(store, group=path or None, engine="zarr", consolidated=False, **kwargs))

    @store_errors
    def frames(self, observation: str) -> xr.Dataset:
        """An observation's frame table (:meth:`lcarchive.Archive.frames`)."""
        from lcarchive.catalog.content import static_catalog
        from lcarchive.layout.frametable import FRAMES_GROUP, frame_inputs, frame_table

        self.prepare([check_observation_id(observation)])
        store, path = self.group_store(observation)
        try:
            table = open_group(store, f"{path}/{FRAMES_GROUP}").load()
        except ValueError as exc:  # zarr's CRC32C codec: a damaged object of the table
            if "checksum" not in str(exc).lower():
                raise
            raise DamagedObjectError(
                f"{self.url} {observation}/{FRAMES_GROUP}", f"CRC32C checksum does not match: {first_line(str(exc))}"
            ) from None
        except FileNotFoundError:  # a group written before frame tables: made from its rows
            group = open_group(store, path)
            name = group.attrs.get("quality_flags") or ""
            quality = next((t for t in static_catalog().quality_flags if t.name == name), None)
            table = frame_table(frame_inputs(group), quality)
            table.attrs["made_at_read"] = "the group was written before frame tables: made from its stored rows"
        table.attrs["observation"] = observation
        return table.set_coords("cadenceno").swap_dims({"cadence": "cadenceno"})

    def group_index(self, observation: str) -> pd.DataFrame:
        """The target-index lines of one group, read from the group itself (its per-target arrays).

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        with self.open_observation(observation) as ds:
            return group_rows(ds, observation)

    @store_errors
    def targets(self, observation: str) -> np.ndarray:
        """The target IDs of an observation, shape (n_targets,), int64."""
        with self.open_observation(observation) as ds:
            return ds["target"].values.astype(np.int64)

    @store_errors
    def inputs(self, observation: str | None = None, integrity: str | None = None) -> pd.DataFrame:
        """The provenance of every stored light curve (:meth:`lcarchive.Archive.inputs`)."""
        rows = []
        for obs_id in [observation] if observation is not None else self.group_ids():
            with self.open_observation(obs_id) as ds:
                values = {
                    n: ds[n].values
                    for n in ("target", "source_file", "source_sha256", "source_size", "data_release", "pipeline_version")
                }
                count = values["target"].size
                for name in ("integrity", "integrity_hdus", "input_warnings"):
                    values[name] = ds[name].values if name in ds else np.full(count, "", dtype=object)
            for i in range(count):
                names, digests = str(values["source_file"][i]).split("\n"), str(values["source_sha256"][i]).split("\n")
                per_file = {n: str(values[n][i]).split("\n") for n in ("integrity", "integrity_hdus", "input_warnings")}
                for k, (name, digest) in enumerate(zip(names, digests, strict=True)):
                    state, hdus, warned = (
                        per_file[n][k] if k < len(per_file[n]) else "" for n in ("integrity", "integrity_hdus", "input_warnings")
                    )
                    rows.append(
                        (
                            obs_id,
                            int(values["target"][i]),
                            name,
                            digest,
                            int(values["source_size"][i]) if len(names) == 1 else -1,
                            int(values["data_release"][i]),
                            str(values["pipeline_version"][i]),
                            state,
                            hdus or "[]",
                            json.loads(warned) if warned else [],
                        )
                    )
        frame = pd.DataFrame(
            rows,
            columns=[
                "observation",
                "target",
                "name",
                "sha256",
                "size",
                "data_release",
                "pipeline_version",
                "integrity",
                "integrity_hdus",
                "warnings",
            ],
        )
        if integrity is not None:
            frame = frame[frame["integrity"] == integrity].reset_index(drop=True)
        return frame

    # -- readers -----------------------------------------------------------------------------------
    @store_errors
    def prepare(self, observations: Iterable[str]) -> None:
        """Read what locating these groups needs (their families' pins, one catalog bucket each)
        before reads on zarr's event loop: :meth:`reader` then makes no blocking zarr call there.
        The catalog and family repositories are opened together first.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation (naming the closest IDs).
        """
        observations = sorted(set(observations))
        families = sorted({family_of(o) for o in observations})
        lookups = self._lookups
        if lookups.kind is None:  # the catalog is opened beside the families (once it is open, the
            lookups.store.open_ahead(families)  # families are opened in the threads below, beside the pins)
        backend = self.backend()
        if not isinstance(backend, ArchiveStore):
            return
        ahead = [o for o in observations if o not in lookups.readers]
        if not ahead:
            backend.pins_of(families)
            return
        # each group is opened where its family's pin most likely is (the branch tip, for the
        # latest version: ArchiveStore.tip_session) beside the catalog read that gives the pins,
        # and kept if it is the pin: the two chains of round trips overlap instead of following
        with ThreadPoolExecutor(max_workers=min(16, len(ahead)), thread_name_prefix="lcarchive-ahead") as pool:
            opened = {o: pool.submit(carry(self._open_at_tip), backend, o) for o in ahead}
            self._check_observations(backend.pins_of(families), ahead)  # their buckets at once
            for observation, future in opened.items():
                session, reader = future.result()
                pin = backend.pin(family_of(observation))
                if (
                    reader is not None
                    and pin is not None
                    and pin.holds(observation)
                    and backend.adopt_session(family_of(observation), session)
                ):
                    lookups.readers.setdefault(observation, reader)

    def _check_observations(self, pins: dict[str, FamilyPin | None], observations: list[str]) -> None:
        """Raise ObservationNotFoundError, with the closest IDs, for an observation its family's
        pin (of ``pins``, by family) does not hold."""
        missing = [o for o in observations if not ((pin := pins[family_of(o)]) is not None and pin.holds(o))]
        if missing:  # the whole catalog, on this failure only: for "did you mean"
            raise ObservationNotFoundError(missing[0], [o.id for o in self.observations])

    def _open_at_tip(self, backend: ArchiveStore, observation: str) -> tuple[Any, GroupReader | None]:
        """A group's reader at its family's branch tip (coordinates read), or (None, None) when
        the tip has no such group or cannot be opened: then the pin's snapshot is opened as usual."""
        session = backend.tip_session(family_of(observation))
        if session is None:
            return None, None
        try:
            reader = run(
                open_reader(
                    RetryingStore(session.store, self.url),
                    observation,
                    self._label(observation),
                    self._reader_key(observation, session.snapshot_id),
                )
            )
        except Exception:  # noqa: BLE001 - a guess that failed: the read at the pin says what is wrong
            return None, None
        return session, reader

    def _reader_key(self, observation: str, snapshot: str) -> tuple:
        return (self.url, self._lookups.store.place(), observation, snapshot)

    def _label(self, observation: str) -> str:
        """What errors name a group's objects by: its repository's URL (v2) or folder."""
        where = self.group_path(observation)
        return f"{self.url}/{where.rsplit('/', 1)[0] if self._lookups.kind == 'v2' else where}"

    async def _reader(self, observation: str) -> GroupReader:
        readers = self._lookups.readers
        reader = readers.get(observation)
        if reader is None:
            store, path = self.group_store(observation)
            key = None
            if isinstance(self.backend(), ArchiveStore):  # a snapshot never changes: its reader is kept
                pin = self._lookups.store.pin(family_of(observation))
                key = self._reader_key(observation, pin.snapshot)  # type: ignore[union-attr]  # an ArchiveStore has a pin for every family it lists
            reader = readers[observation] = await open_reader(store, path, self._label(observation), key)
        return reader

    def opened_reader(self, observation: str) -> GroupReader:
        """The reader of a group read before (by :meth:`reader` or :meth:`read_rows`)."""
        return self._lookups.readers[observation]

    async def reader(self, observation: str) -> GroupReader:
        """A reader of an observation group's target rows (for bulk reads: download, export);
        call :meth:`prepare` first, outside the event loop.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        reader = await self._reader(observation)
        await reader.ensure()  # bulk readers look at every array's metadata
        return reader

    async def read_rows(
        self, pairs: list[tuple[str, int]], wanted: list[str] | None, limit: int | None = None
    ) -> list[dict[str, np.ndarray]]:
        """The values of some (observation, row) pairs: of the ``wanted`` variables (default every
        one), up to ``limit`` rows read at once; call :meth:`prepare` first.

        Raises
        ------
        UnknownVariableError
            If a name of ``wanted`` is in none of the groups read.
        """
        await gather(*(self._reader(obs_id) for obs_id in dict.fromkeys(o for o, _ in pairs)))
        readers = [self._lookups.readers[obs_id] for obs_id, _ in pairs]
        if wanted is not None:
            known = {n for r in readers for n in r.names if n not in ("target", "cadenceno")}
            unknown = [n for n in wanted if n not in known and n not in ("target", "cadenceno")]
            if unknown:
                raise UnknownVariableError(unknown, sorted(known))

        def names(reader: GroupReader) -> list[str]:
            available = [n for n in reader.names if n not in ("target", "cadenceno")]
            return available if wanted is None else [n for n in wanted if n in reader.names]

        if limit is None:
            return await gather(*(r.read_row(row, names(r)) for r, (_, row) in zip(readers, pairs, strict=True)))
        in_flight = asyncio.Semaphore(limit)

        async def one(reader: GroupReader, row: int) -> dict[str, np.ndarray]:
            async with in_flight:
                return await reader.read_row(row, names(reader))

        return await gather(*(one(r, row) for r, (_, row) in zip(readers, pairs, strict=True)))

    def row_of(self, observation: str, target: int) -> int | None:
        """A target's row in an observation group, or None if the group does not hold it."""
        self.prepare([observation])
        return run(self._reader(observation)).row_of(target)
