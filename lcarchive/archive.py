"""The archive: a root URL holding an archive's icechunk repositories (store format v2), or a
read-only folder of plain Zarr groups (format v1, and downloads)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive.accessor import LightCurveAccessor
from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.index import group_rows
from lcarchive.catalog.models import Catalog, Observation
from lcarchive.clients import RetryingStore, with_defaults
from lcarchive.config import settings
from lcarchive.conventions import described
from lcarchive.errors import (
    ArchiveNotFoundError,
    LcarchiveError,
    MixedProductsError,
    ObservationNotFoundError,
    TargetNotFoundError,
    UnknownProductError,
    UnknownVariableError,
)
from lcarchive.identifiers import check_observation_id, parse_target_text
from lcarchive.ingest import IngestReport, ingest_files, reindex_families
from lcarchive.layout import fill_value, open_group
from lcarchive.store import ArchiveStore, GroupReader, PlainStore, failures, family_of, gather, open_reader, rows_lazily, run

if TYPE_CHECKING:
    from lcarchive.formats.tables import TableMap
    from lcarchive.store.models import FamilyPin

__all__ = ["Archive", "open_archive"]

_GUARDED = frozenset({
    "build_catalog", "target_index", "open_observation", "light_curve", "ingest", "targets", "group_ids", "history",
    "tag", "collect_garbage", "inputs", "check_root", "group_index", "group_store", "index_pixels", "search",
    "light_curves", "analyses", "analysis", "write_analysis", "read_version", "snapshot_of", "prepare", "group_path",
    "catalog_store",
})


class Archive:
    """A light-curve archive at a root URL (a local directory, ``s3://bucket/prefix``, ``gs://``, ``az://``).

    Use :func:`open_archive` to make one.

    Parameters
    ----------
    url : str
        Root of the archive.
    storage_options : dict, optional
        Credentials and endpoint (fsspec-style: ``key``, ``secret``, ``anon``, ``endpoint_url``);
        the standard AWS variables otherwise.
    version : str, optional
        Read the archive at this version: a tag (``dr1``), a branch or a snapshot ID from
        ``history()``. Default: the latest.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).
    """

    def __init__(self, url: str, storage_options: dict | None = None, version: str | None = None,
                 as_of: _dt.datetime | None = None) -> None:
        self.storage_options = with_defaults(url, storage_options)
        self.url = url.rstrip("/") if "://" in url else str(url).rstrip("/") or "/"
        self.version = version
        self.as_of = as_of
        self._store = ArchiveStore(self.url, storage_options, version, as_of)
        self._plain: PlainStore | None = None
        self._kind: str | None = None
        self._catalog: Catalog | None = None
        self._readers: dict[str, GroupReader] = {}

    def __getattribute__(self, name: str) -> Any:
        # public entry points report store failures as lcarchive.StoreError
        attr = object.__getattribute__(self, name)
        if name in _GUARDED and callable(attr):
            url = object.__getattribute__(self, "url")
            options = object.__getattribute__(self, "storage_options")

            @functools.wraps(attr)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                with failures(url, options):
                    return attr(*args, **kwargs)

            return guarded
        return attr

    def __repr__(self) -> str:
        return f"<lcarchive.Archive {self.url!r}{f' at {self.version}' if self.version else ''}>"

    # -- which kind of archive -------------------------------------------------------------------
    def _backend(self) -> ArchiveStore | PlainStore:
        """The store of this archive: its repositories (v2), or a folder of plain Zarr groups.

        Raises
        ------
        ArchiveNotFoundError
            If there is neither at the URL.
        """
        if self._kind is None:
            with failures(self.url, self.storage_options):
                if self._store.exists():
                    self._kind = "v2"
                else:
                    plain = PlainStore(self.url, self.storage_options)
                    if plain.exists():
                        if self.version is not None or self.as_of is not None:
                            raise LcarchiveError(f"{self.url}: a folder of plain Zarr groups (store format v1 or a "
                                                 "download) has no versions")
                        self._plain, self._kind = plain, "plain"
                    else:
                        self._store.catalog_repository()  # raises ArchiveNotFoundError, saying why,
                        self._kind = "v2"  # unless another writer created the archive meanwhile
        return self._store if self._kind == "v2" else self._plain  # type: ignore[return-value]

    @property
    def exists(self) -> bool:
        """True if there is an archive at the URL.

        Raises
        ------
        lcarchive.StoreError
            If the store cannot be asked (unreachable, access denied).
        """
        try:
            self._backend()
        except ArchiveNotFoundError:
            return False
        return True

    @property
    def read_only(self) -> bool:
        """True for a folder of plain Zarr groups (store format v1, or a download): readable, not
        writable (``lcarchive migrate`` converts a v1 archive)."""
        return self._backend().read_only

    def check_root(self) -> None:
        """Make sure the archive's root can take writes: a local folder is made; an object
        store's bucket must exist (lcarchive never creates buckets).

        Raises
        ------
        lcarchive.StoreError
            No such bucket, access denied, unreachable store.
        """
        self._store.check_root()

    def refresh(self) -> None:
        """Forget what was read: the next read sees the archive's latest version (of an archive
        opened at the latest)."""
        self._store.refresh()
        self._catalog = None
        self._readers.clear()

    # -- catalog ---------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        """The archive's catalog: missions, instruments, products, and the entries of its
        observations and datasets (assembled from one read of the catalog repository).

        Raises
        ------
        ArchiveNotFoundError
            If there is no archive at the URL.
        """
        if self._catalog is None:
            with failures(self.url, self.storage_options):
                self._catalog = self._backend().catalog()
        return self._catalog

    @property
    def observations(self) -> list[Observation]:
        """Observations in the catalog, sorted by ID."""
        return sorted(self.catalog.observations, key=lambda o: o.id)

    def group_path(self, observation: str) -> str:
        """Where an observation's group is, relative to the root: ``observations/<family>/<id>``
        (the group ``<id>`` of the family's icechunk repository; ``observations/<id>.zarr`` in a
        folder of plain Zarr groups).

        Raises
        ------
        lcarchive.identifiers.InvalidIdentifierError
            If ``observation`` is not a valid observation ID (``../evil``, ``/tmp/x``...).
        """
        check_observation_id(observation)
        if self._kind == "plain":
            return self._plain.group_path(observation)  # type: ignore[union-attr]
        return f"observations/{family_of(observation)}/{observation}"

    def group_ids(self) -> list[str]:
        """IDs of the observation groups of this version."""
        return self._backend().group_ids()

    def build_catalog(self) -> Catalog:
        """Rebuild the catalog entries and the target index from the groups in the store: every
        family repository under ``observations/`` is pinned at its latest snapshot and re-indexed
        (a repair, one commit: e.g. after a crash between a family's commit and the catalog's, a
        damaged catalog bucket, or a catalog repository lost whole: it is made again).

        Returns
        -------
        Catalog

        Raises
        ------
        LcarchiveError
            For a read-only archive.
        """
        try:
            self._writable()
        except ArchiveNotFoundError:
            if not self._store.families_in_store():
                raise
            self._store.create()  # the catalog repository is gone, the families are not
        families = self._store.families_in_store()  # every bucket is written anew: nothing of the old catalog is read
        reindex_families(self._store, families, "catalog build: every family re-indexed", force=True)
        self.refresh()
        return self.catalog

    def target_index(self, targets: Iterable[int] | None = None) -> pd.DataFrame:
        """The target index: one line per (target, observation group).

        Parameters
        ----------
        targets : iterable of int, optional
            Only these targets' lines (reading only the index partitions that hold them).

        Returns
        -------
        pandas.DataFrame
            Columns ``target`` (int64 TIC/KIC/EPIC ID), ``observation``, ``row`` (the target's
            row in the group), ``ra``, ``dec`` (deg, from RA_OBJ/DEC_OBJ), ``mission``,
            ``product``, ``segment``, ``current`` (False for groups of older releases),
            ``n_cadences`` (rows of the source file), ``coverage``.
        """
        return self._backend().index(None if targets is None else [int(t) for t in targets])

    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None:
        """The target-index lines of the targets in some HEALPix pixels of the sky index
        (:mod:`lcarchive.layout.sky`), reading only those; None if this archive has no sky index
        (a plain Zarr folder, or an archive written before it existed: ``lcarchive catalog build``
        adds it). The columns of :meth:`target_index`."""
        return self._backend().index_pixels(pixels)

    def analyses(self) -> list:
        """The archive-wide analyses of this version (``lcarchive compute``), oldest first: their
        catalog entries (:class:`lcarchive.catalog.models.Analysis`, with lineage)."""
        return self._backend().analyses()

    def analysis(self, name: str) -> pd.DataFrame:
        """The results of one analysis: by its ID, or the newest of a method (``"bls"``).

        Returns
        -------
        pandas.DataFrame
            One line per light curve: ``target``, ``observation``, ``period`` (d), ``power``, and
            for BLS ``depth`` (relative flux), ``duration`` (d), ``t0`` (mission time, BTJD/BKJD),
            ``snr``; ``n_cadences`` used and ``n_observations``, the light curves stitched into
            its periodogram (a star's result is on each of its light curves). ``attrs["analysis"]``
            is the catalog entry, ``attrs["period_grid"]`` the periods searched (d),
            ``attrs["periodogram"]`` the power on them (n_light_curves, n_periods) when kept.

        Raises
        ------
        KeyError
            If there is no such analysis.
        """
        entries = [a for a in self.analyses() if name in (a.id, a.method)]
        if not entries:
            raise KeyError(f"no analysis {name!r} in {self.url} (lcarchive compute makes them)")
        entry = entries[-1]
        columns = self._backend().read_analysis(entry.id)
        order = ["target", "observation", *entry.variables]
        frame = pd.DataFrame({k: columns[k] for k in order if k in columns})
        frame.attrs["analysis"] = entry
        if "periodogram" in columns:
            frame.attrs["periodogram"] = columns["periodogram"]
        for name in ("period_grid", "periodogram_period"):  # the name before the grid was always stored
            if name in columns:
                frame.attrs["period_grid"] = columns[name]
        return frame

    def write_analysis(self, entry: Any, columns: dict[str, np.ndarray]) -> str | None:
        """Store an analysis's results in one catalog commit (a new archive version); nothing is
        written if one of the same ID (same inputs and parameters) is stored. Return the version,
        or None."""
        self._writable()
        snapshot = self._store.write_analysis(entry, columns, f"analysis {entry.id}: {entry.method} over "
                                                              f"{entry.n_light_curves} light curve(s)")
        self.refresh()
        return snapshot

    @property
    def repositories(self) -> ArchiveStore:
        """The archive's icechunk repositories (store format v2), whether or not its catalog
        repository can be opened: what ``lcarchive verify`` and ``lcarchive rollback`` walk."""
        return self._store

    def catalog_store(self) -> Any:
        """The zarr store of the catalog repository at this version (a read-only icechunk
        session's), or None for a folder of plain Zarr groups (whose catalog is ``catalog.json``)."""
        backend = self._backend()
        return RetryingStore(backend.catalog_session().store, self.url) if isinstance(backend, ArchiveStore) else None

    def snapshot_of(self, observation: str) -> str | None:
        """The snapshot of an observation family's repository this version pins (None in a folder of
        plain Zarr groups)."""
        backend = self._backend()
        if not isinstance(backend, ArchiveStore):
            return None
        pin = backend.pin(family_of(observation))
        return None if pin is None else pin.snapshot

    def group_index(self, observation: str) -> pd.DataFrame:
        """The target-index lines of one observation group, read from the group itself (its
        small per-target arrays): the columns of :meth:`target_index`.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        with self.open_observation(observation) as ds:
            return group_rows(ds, observation)

    # -- reading ---------------------------------------------------------------------------
    def group_store(self, observation: str) -> tuple[Any, str]:
        """The zarr store and path of an observation group at this version (a read-only icechunk
        session's store, or a plain Zarr folder's): ``zarr.open_group(store, path=path)``.

        Raises
        ------
        ObservationNotFoundError
            If this version has no such observation.
        """
        backend = self._backend()
        try:
            return backend.group_store(check_observation_id(observation))
        except KeyError:
            raise ObservationNotFoundError(observation) from None

    def open_observation(self, observation: str, **kwargs: Any) -> xr.Dataset:
        """Open one observation group as a lazy ``xarray.Dataset``.

        Parameters
        ----------
        observation : str
            Observation ID, e.g. ``"tess-spoc-2min-s0001"``.
        **kwargs
            Passed to ``xarray.open_dataset`` (``chunks={}`` for dask arrays...).

        Returns
        -------
        xarray.Dataset
            Dimensions (target, cadence); see ``docs/format.md``.

        Raises
        ------
        ObservationNotFoundError
            If this version of the archive has no such observation.
        """
        self.prepare([check_observation_id(observation)])
        store, path = self.group_store(observation)
        if not kwargs:  # the coordinates as read already; a few targets' core variables loaded together
            reader = run(self._reader(observation))
            return described(rows_lazily(open_group(store, path, {"target": reader.target, "cadenceno": reader.cadenceno}), reader))
        return described(xr.open_dataset(store, group=path or None, engine="zarr", consolidated=False, **kwargs))

    def targets(self, observation: str) -> np.ndarray:
        """Return the target IDs of an observation, shape (n_targets,), int64."""
        with self.open_observation(observation) as ds:
            return ds["target"].values.astype(np.int64)

    def inputs(self, observation: str | None = None, integrity: str | None = None) -> pd.DataFrame:
        """The provenance of every stored light curve: its input file, SHA-256, data release,
        pipeline version and integrity evidence, read from the groups' per-target arrays.

        Parameters
        ----------
        observation : str, optional
            Only this group's; default every group's.
        integrity : str, optional
            Only the files of this integrity state (``sound``, ``no-checksums``, ``stale-cards``,
            ``damaged``; ``""`` for files stored before it was recorded).

        Returns
        -------
        pandas.DataFrame
            Columns ``observation``, ``target``, ``name`` (the input's file name; a light curve
            joined from several segments' files has one line per file), ``sha256``, ``size``
            (bytes; -1 for one of several files), ``data_release`` (DATA_REL, -1 if none),
            ``pipeline_version`` (PROCVER), ``integrity`` (the file's DATASUM/CHECKSUM cards
            checked on its raw bytes: :data:`lcarchive.formats.checksums.STATES`; "" for a file
            stored before lcarchive recorded it), ``integrity_hdus`` (per HDU: JSON list of
            ``{hdu, name, DATASUM, CHECKSUM}``, each ``ok``, ``fail`` or ``absent``) and
            ``warnings`` (values kept as the file gives them although they contradict its
            mission or are out of range: a list of one-line texts).
        """
        ids = [observation] if observation is not None else self.group_ids()
        rows = []
        for obs_id in ids:
            with self.open_observation(obs_id) as ds:
                values = {n: ds[n].values for n in ("target", "source_file", "source_sha256", "source_size",
                                                     "data_release", "pipeline_version")}
                count = values["target"].size
                for name in ("integrity", "integrity_hdus", "input_warnings"):
                    values[name] = ds[name].values if name in ds else np.full(count, "", dtype=object)
            for i in range(count):
                names, digests = str(values["source_file"][i]).split("\n"), str(values["source_sha256"][i]).split("\n")
                per_file = {n: str(values[n][i]).split("\n") for n in ("integrity", "integrity_hdus", "input_warnings")}
                for k, (name, digest) in enumerate(zip(names, digests, strict=True)):
                    state, hdus, warned = (per_file[n][k] if k < len(per_file[n]) else ""
                                           for n in ("integrity", "integrity_hdus", "input_warnings"))
                    rows.append((obs_id, int(values["target"][i]), name, digest,
                                 int(values["source_size"][i]) if len(names) == 1 else -1,
                                 int(values["data_release"][i]), str(values["pipeline_version"][i]), state,
                                 hdus or "[]", json.loads(warned) if warned else []))
        frame = pd.DataFrame(rows, columns=["observation", "target", "name", "sha256", "size", "data_release",
                                            "pipeline_version", "integrity", "integrity_hdus", "warnings"])
        if integrity is not None:
            frame = frame[frame["integrity"] == integrity].reset_index(drop=True)
        return frame

    def light_curve(
        self,
        target: int | str,
        observation: str | None = None,
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
        product: str | None = None,
        quality_bitmask: str | int | None = "default",
        normalize: bool = False,
        observations: Iterable[str] | None = None,
        products: str | None = None,
    ) -> Any:
        """Return the light curve of one target: one product's, stitched over its observations.

        The target index (one partition of it) says which groups hold the target and at which
        row; only those groups are read, concurrently, and in each only the target's chunks
        (see :mod:`lcarchive.store.reader`).

        A star with light curves of several products (SPOC 2-min and QLP, say) is read from its
        mission's default product, the lowest ``default_rank`` of ``catalog/products`` (the
        mission's own pipeline first, as lightkurve's searches default to the Kepler, K2 and
        SPOC products); ``attrs["other_products"]`` and ``attrs["note"]`` name the others.

        Parameters
        ----------
        target : int or str
            TIC, KIC or EPIC ID: ``261136679``, ``"TIC 261136679"``, ``"KIC 11442793"``,
            ``"EPIC 211436265"`` (a prefix keeps that catalog's missions only).
        observation : str, optional
            Observation ID. If None, every current observation holding the target is read
            and the light curves are joined along ``cadence`` in observation order.
        variables : iterable of str, optional
            Variables to read, e.g. ``["time", "flux", "flux_err", "quality"]``; default all.
            ``quality`` is always read (it marks the cadences the target has).
        include_superseded : bool
            Also read groups holding older releases (only when ``observation`` is None).
        product : str, optional
            Only this product's observations (``spoc-2min``, ``qlp``...); default the mission's
            default product among the target's. Products are never joined.
        quality_bitmask : {"default", "hard", "hardest", "none"} or int or None
            Keep only the cadences passing this quality mask of each observation's flag table
            (``ds.lc.good``; lightkurve's ``quality_bitmask``, whose default it shares: the
            flags lightkurve's ``DEFAULT_BITMASK`` names for TESS, Kepler and K2). ``"none"`` or
            None: every cadence of the source files, as stored.
        normalize : bool
            Divide ``flux`` and ``flux_err`` by each observation's median flux
            (``ds.lc.normalize``), so that stitched sectors share one level.
        observations : iterable of str, optional
            Only these observations (e.g. two sectors of the target's), stitched in observation
            order; ``observation`` reads a single one.
        products : {"all"}, optional
            ``"all"``: every product's light curve of the target, as a dict by product name.

        Returns
        -------
        xarray.Dataset (dict of str to xarray.Dataset with ``products="all"``)
            Variables on ``cadence`` (time in BTJD/BKJD, d; flux and flux_err in the
            product's units; quality bits...), only the cadences the target's source file
            has, sorted by cadence number within each observation; coordinates ``cadenceno``
            and ``cadence_observation`` on ``cadence``; per-target values (ra, dec, headers,
            aperture...) on an ``observation`` dimension, with coordinates ``product``,
            ``segment`` and ``quality_flags`` (each observation's flag table) that ``ds.lc``
            (:class:`lcarchive.accessor.LightCurveAccessor`) masks and normalises by.

        Raises
        ------
        TargetNotFoundError
            If the target is in none of the observations asked for.
        ObservationNotFoundError
            If this version has no such observation.
        DamagedObjectError
            If a stored chunk does not match its checksum (naming the object).
        UnknownVariableError
            If a name of ``variables`` is in none of the groups read.
        MixedProductsError
            If a bare number names stars of several missions' catalogs (KIC 123 and TIC 123):
            give the catalog prefix or ``product``.
        UnknownProductError
            If ``product`` is no product's name.
        ValueError
            If ``target`` is no target ID, or ``products`` is not ``"all"``.
        """
        number, missions = _target_of(target)
        self._check_product(product)
        if products is not None and products != "all":
            raise ValueError(f"products={products!r}: 'all' (every product's light curve) or None")
        wanted = None if variables is None else list(dict.fromkeys(["quality", *variables]))
        if observation is not None and products is None:
            self.prepare([observation])
            row = run(self._reader(observation)).row_of(number)
            pairs = [] if row is None else [(observation, row)]
            return self._read_star(number, pairs, {}, wanted, quality_bitmask, normalize, self._where(observation, product))
        lines = self._lines_of(number, missions, observation, observations, include_superseded)
        if products is None:
            pairs, others = self._plan(number, lines, product)
            return self._read_star(number, pairs, others, wanted, quality_bitmask, normalize, self._where(None, product))
        if lines.empty:
            raise TargetNotFoundError(number, self._where(observation, product))
        return {str(p): self._read_star(number, self._plan(number, lines, str(p))[0], {}, wanted, quality_bitmask, normalize,
                                        self._where(observation, str(p)))
                for p in sorted(set(lines["product"])) if product is None or p == product}

    def _read_star(self, target: int, pairs: list[tuple[str, int]], others: dict[str, list[str]], wanted: list[str] | None,
                   quality_bitmask: str | int | None, normalize: bool, where: str) -> xr.Dataset:
        """A target's light curve from its (observation, row) pairs, naming the other products."""
        if not pairs:
            raise TargetNotFoundError(target, where)
        self.prepare([o for o, _ in pairs])
        results = run(self._read_rows(pairs, wanted))
        return _note_others(self._finish(target, pairs, results, quality_bitmask, normalize), others)

    def _lines_of(self, target: int, missions: set[str] | None, observation: str | None,
                  observations: Iterable[str] | None, include_superseded: bool) -> pd.DataFrame:
        """A target's index lines: of its catalog's missions, of the observations asked for
        (every release of those), else of the current releases unless ``include_superseded``."""
        lines = self.target_index([target])
        if missions is not None:
            lines = lines[lines["mission"].isin(missions)]
        if observation is not None:
            lines = lines[lines["observation"] == observation]
        elif observations is not None:  # only these (release groups among them are read as asked)
            chosen = [observations] if isinstance(observations, str) else list(observations)
            lines = lines[lines["observation"].isin(chosen)]
        elif not include_superseded:
            lines = lines[lines["current"]]
        return lines

    def _check_product(self, product: str | None) -> None:
        """Raise UnknownProductError for a product name no product definition has."""
        if product is None:
            return
        known = {p.name for p in static_catalog().products}
        if product not in known:
            raise UnknownProductError(product, sorted(known))

    def light_curves(
        self,
        targets: Iterable[int],
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
        product: str | None = None,
        quality_bitmask: str | int | None = "default",
        normalize: bool = False,
        missing: str = "raise",
    ) -> dict[int, xr.Dataset]:
        """Return the light curves of many targets, read concurrently: what :meth:`light_curve`
        returns for each, in one pass.

        The index partitions of all the targets are read at once, then every (target,
        observation) row at once, up to ``read_jobs`` rows in flight (:mod:`lcarchive.config`).

        Parameters
        ----------
        targets : iterable of int or str
            TIC, KIC or EPIC IDs, as for :meth:`light_curve` (repeats are read once).
        variables, include_superseded, product, quality_bitmask, normalize
            As for :meth:`light_curve`.
        missing : {"raise", "skip"}
            A target in no observation asked for: raise (naming every such target), or leave it
            out of the result.

        Returns
        -------
        dict of int to xarray.Dataset
            Each target's light curve, in the order of ``targets``.

        Raises
        ------
        TargetNotFoundError
            With ``missing="raise"``, for the targets found nowhere.
        MixedProductsError, UnknownProductError, UnknownVariableError, DamagedObjectError
            As for :meth:`light_curve`.
        """
        if missing not in ("raise", "skip"):
            raise ValueError(f"missing={missing!r}: 'raise' or 'skip'")
        self._check_product(product)
        named = dict(_target_of(t) for t in targets)  # the last prefix given for a number wins
        ids = list(named)
        wanted = None if variables is None else list(dict.fromkeys(["quality", *variables]))
        index = self.target_index(ids)
        if not include_superseded:
            index = index[index["current"]]
        by_target = {t: lines if named[t] is None else lines[lines["mission"].isin(named[t])]
                     for t, lines in index.groupby("target")}
        planned = {t: self._plan(t, by_target[t], product) if t in by_target else ([], {}) for t in ids}
        plans = {t: pairs for t, (pairs, _) in planned.items()}
        absent = [t for t, pairs in plans.items() if not pairs]
        if absent and missing == "raise":
            shown = ", ".join(map(str, absent[:10])) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
            raise TargetNotFoundError(shown, self._where(None, product))
        pairs = [(t, p) for t, ps in plans.items() for p in ps]
        self.prepare(sorted({o for _, (o, _) in pairs}))
        results = run(self._read_rows([p for _, p in pairs], wanted, limit=settings().read_jobs))
        by_target: dict[int, list] = {}  # type: ignore[no-redef]  # a new dict under the name: the index lines are done with
        for (t, pair), values in zip(pairs, results, strict=True):  # one pass, not one per target
            by_target.setdefault(t, []).append((pair, values))
        return {t: _note_others(self._finish(t, [p for p, _ in by_target[t]], [v for _, v in by_target[t]], quality_bitmask,
                                             normalize), planned[t][1])
                for t in ids if t in by_target}

    def search(
        self,
        selection: Any = None,
        *,
        cone: Any = None,
        box: tuple[float, float, float, float] | None = None,
        targets: Iterable[int | str] | None = None,
        observation: str | Iterable[str] | None = None,
        mission: str | Iterable[str] | None = None,
        product: str | Iterable[str] | None = None,
        segment: int | Iterable[int] | None = None,
        camera: int | Iterable[int] | None = None,
        ccd: int | Iterable[int] | None = None,
        magnitude: tuple[float, float] | None = None,
        time: tuple[Any, Any] | None = None,
        include_superseded: bool = False,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        where: str | None = None,
        client: Any = None,
    ) -> pd.DataFrame:
        """Find light curves: by position, by target, by catalog values; one line per (target,
        observation).

        A cone or a box reads only the HEALPix pixels of the sky index it touches
        (:mod:`lcarchive.layout.sky`), then cuts exactly on RA_OBJ/DEC_OBJ with astropy; named
        targets read only their index partitions. Filters combine with AND; a filter given a
        sequence keeps any of its values.

        Parameters
        ----------
        selection : lcarchive.Selection, optional
            A selection (the one :func:`lcarchive.download` takes); the keywords below are then
            not given.
        cone : (float, float, float) or (array, array, float or array) or table, optional
            RA, Dec, radius (deg, ICRS). Arrays, or a table with ``ra``, ``dec``, ``radius``
            columns (pandas, astropy Table), search many positions in one call.
        box : (float, float, float, float), optional
            ``(ra_min, ra_max, dec_min, dec_max)``, deg; RA wraps through 0 when
            ``ra_min > ra_max``.
        targets : iterable of int or str, optional
            TIC/KIC/EPIC IDs (``"KIC 11442793"`` keeps that catalog's missions).
        observation, mission, product : str or iterable of str, optional
            e.g. ``"tess-spoc-2min-s0001"``, ``"tess"``, ``"spoc-2min"``.
        segment : int or iterable of int, optional
            Sector (TESS), quarter (Kepler), campaign (K2).
        camera, ccd : int or iterable of int, optional
            TESS camera and CCD (CAMERA, CCD keywords).
        magnitude : (float, float), optional
            TESSMAG or KEPMAG range, mag, inclusive.
        time : (float or str, float or str), optional
            Observations overlapping this range (BTJD/BKJD numbers, or ISO 8601 UTC).
        include_superseded : bool
            Also find the light curves of older data releases.
        order_by : str or list of str, optional
            Columns to sort by (a leading ``-`` sorts descending). Default ``target``,
            ``observation`` (for a cone: ``position``, ``separation`` first).
        limit, offset : int, optional
            Return ``limit`` lines from line ``offset`` of the sorted result.
        where : str, optional
            A filter on the columns, the stored analyses' results included (``bls_period``,
            ``bls_snr``, ``lombscargle_period``...: :meth:`analysis`): pandas ``query`` syntax
            and ``X between A and B``, e.g. ``"bls_period between 6 and 7 and bls_snr > 10"``.
        client : dask.distributed.Client, optional
            Search many positions on this cluster's workers, 2,000 positions a task, each at this
            handle's version (:meth:`read_version`); the same lines as without it.

        Returns
        -------
        pandas.DataFrame
            Columns ``target``, ``observation``, ``ra``, ``dec`` (deg), ``magnitude`` (mag),
            ``n_cadences``, ``coverage``, ``url`` (the group's location), ``mission``,
            ``product``, ``segment``, ``camera``, ``ccd``, ``current``, ``row``, ``integrity``
            (the input file's state: ``sound``, ``no-checksums``, ``stale-cards``, ``damaged``;
            ``where="integrity == 'damaged'"`` finds the possibly damaged ones); with a cone also
            ``position`` (index of the position in the cone's arrays or table) and
            ``separation`` (deg).

        Raises
        ------
        SelectionError
            For a cone, box or time range that cannot be read, or an unknown ``order_by``.
        """
        from lcarchive.search import Selection, search

        def many(value: Any) -> list | None:
            if value is None:
                return None
            return [value] if isinstance(value, str | int | np.integer) else list(value)

        filters = {"cone": cone, "box": box, "targets": many(targets), "observations": many(observation),
                   "missions": many(mission), "products": many(product), "segments": many(segment),
                   "cameras": many(camera), "ccds": many(ccd), "magnitude": magnitude, "time": time}
        if selection is not None:
            if any(v is not None for v in filters.values()) or include_superseded:
                raise TypeError("search: give a selection or filters, not both")
        else:
            selection = Selection(**filters, include_superseded=include_superseded)
        return search(self, selection, order_by=order_by, limit=limit, offset=offset, where=where, client=client)

    def _plan(self, target: int, lines: pd.DataFrame, product: str | None) -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
        """The (observation, row) pairs of a target's light curve from its index lines: of
        ``product``, or of its mission's default product (``Product.default_rank``); and the
        other products' observations, by product.

        Raises
        ------
        MixedProductsError
            If the lines are of several missions (a bare number naming stars of several catalogs).
        """
        if product is not None:
            lines = lines[lines["product"] == product]
        products = {str(p): sorted(str(o) for o in group["observation"]) for p, group in lines.groupby("product")}
        others: dict[str, list[str]] = {}
        if len(products) > 1:
            missions = sorted({str(m) for m in lines["mission"]})
            if len(missions) > 1:
                catalogs = sorted({static_catalog().mission(m).target_catalog for m in missions})
                raise MixedProductsError(target, products, catalogs)
            chosen = min(products, key=lambda p: (_default_rank(p), p))
            others = {p: obs for p, obs in products.items() if p != chosen}
            lines = lines[lines["product"] == chosen]
        return [(str(o), int(r)) for o, r in zip(lines["observation"], lines["row"], strict=True)], others

    def _where(self, observation: str | None, product: str | None) -> str:
        if observation:
            return f"observation {observation}"
        return f"product {product} of archive {self.url}" if product else f"archive {self.url}"

    def _finish(self, target: int, pairs: list[tuple[str, int]], results: list[dict[str, np.ndarray]],
                quality_bitmask: str | int | None, normalize: bool) -> xr.Dataset:
        parts = [(obs_id, self._readers[obs_id], values) for (obs_id, _), values in zip(pairs, results, strict=True)]
        lc = described(_assemble(target, parts))
        if quality_bitmask is not None and quality_bitmask != "none":  # "none": every stored cadence, as stored
            lc = LightCurveAccessor(lc).good(quality_bitmask)
        return LightCurveAccessor(lc).normalize() if normalize else lc

    def prepare(self, observations: Iterable[str]) -> None:
        """Read what locating these groups needs (their families' pins, one catalog bucket each)
        before reads on zarr's event loop: :meth:`reader` then makes no blocking zarr call there.
        The catalog and family repositories are opened together first."""
        observations = sorted(set(observations))
        families = sorted({family_of(o) for o in observations})
        if self._kind is None:  # the catalog is opened beside the families (once it is open, the
            self._store.open_ahead(families)  # families are opened in the threads below, beside the pins)
        backend = self._backend()
        if not isinstance(backend, ArchiveStore):
            return
        ahead = [o for o in observations if o not in self._readers]
        if not ahead:
            backend.pins_of(families)
            return
        # each group is opened where its family's pin most likely is (the branch tip, for the
        # latest version: ArchiveStore.tip_session) beside the catalog read that gives the pins,
        # and kept if it is the pin: the two chains of round trips overlap instead of following
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(ahead)), thread_name_prefix="lcarchive-ahead") as pool:
            opened = {o: pool.submit(self._open_at_tip, backend, o) for o in ahead}
            self._check_observations(backend.pins_of(families), ahead)  # their buckets at once
            for observation, future in opened.items():
                session, reader = future.result()
                pin = backend.pin(family_of(observation))
                if reader is not None and pin is not None and pin.holds(observation) \
                        and backend.adopt_session(family_of(observation), session):
                    self._readers.setdefault(observation, reader)

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
            reader = run(open_reader(RetryingStore(session.store, self.url), observation, self._label(observation),
                                     self._reader_key(observation, session.snapshot_id)))
        except Exception:  # noqa: BLE001 - a guess that failed: the read at the pin says what is wrong
            return None, None
        return session, reader

    def _reader_key(self, observation: str, snapshot: str) -> tuple:
        return (self.url, self._store.place(), observation, snapshot)

    def _label(self, observation: str) -> str:
        """What errors name a group's objects by: its repository's URL (v2) or folder."""
        where = self.group_path(observation)
        return f"{self.url}/{where.rsplit('/', 1)[0] if self._kind == 'v2' else where}"

    async def _reader(self, obs_id: str) -> GroupReader:
        reader = self._readers.get(obs_id)
        if reader is None:
            store, path = self.group_store(obs_id)
            key = None
            if isinstance(self._backend(), ArchiveStore):  # a snapshot never changes: its reader is kept
                key = self._reader_key(obs_id, self._store.pin(family_of(obs_id)).snapshot)  # type: ignore[union-attr]  # an ArchiveStore has a pin for every family it lists
            reader = self._readers[obs_id] = await open_reader(store, path, self._label(obs_id), key)
        return reader

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

    async def _read_rows(self, pairs: list[tuple[str, int]], wanted: list[str] | None,
                         limit: int | None = None) -> list[dict[str, np.ndarray]]:
        readers = await gather(*(self._reader(obs_id) for obs_id in dict.fromkeys(o for o, _ in pairs)))
        readers = [self._readers[obs_id] for obs_id, _ in pairs]
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

    # -- versions --------------------------------------------------------------------------
    def read_version(self) -> str | None:
        """The version this handle reads: its catalog snapshot ID (the one ``version`` or ``as_of``
        named, else the newest when it was first read); None for a folder of plain Zarr groups,
        which has no versions. ``open_archive(url, version=...)`` reads the same version
        elsewhere, as the tasks of a Dask cluster do."""
        if self.read_only:
            return None
        return self._store.catalog_session().snapshot_id

    def history(self, limit: int | None = None) -> list[dict]:
        """The archive's versions, newest first.

        Returns
        -------
        list of dict
            ``snapshot`` (the version's ID), ``time`` (UTC), ``message`` (what the commit did,
            naming its inputs), ``metadata`` (the inputs' names and SHA-256), ``tags``.
        """
        self._writable()
        return self._store.history(limit)

    def tag(self, name: str, version: str | None = None) -> str:
        """Name a version of the archive (default the latest), e.g. a data release: ``open_archive(url,
        version=name)`` reads it as it is now, whatever is ingested later; ``gc`` keeps it.

        Returns
        -------
        str
            The tagged version's snapshot ID.

        Raises
        ------
        LcarchiveError
            If the tag exists already, or the archive is read-only.
        """
        self._writable()
        return self._store.tag(name, version)

    def collect_garbage(self, older_than: _dt.datetime | _dt.timedelta, wait: float = 0.0) -> dict[str, Any]:
        """Expire versions older than a bound (tags and the latest version kept) and delete the
        objects nothing kept reaches any more (replaced chunks, rewritten shards).

        Safe beside writers: it refuses to run while an ingest, compute, tag or catalog build
        holds the archive (or waits ``wait`` seconds for them), writers wait while it runs, and
        it never expires a version nor deletes an object younger than
        ``lcarchive.config.settings().gc_safety_seconds`` (one day), whatever ``older_than``
        says. On local disk it refuses to run when a folder of the archive is a symbolic link
        that leads out of it.

        Parameters
        ----------
        older_than : datetime.datetime or datetime.timedelta
            The bound, or its age (``timedelta(days=30)``; ``timedelta(0)``: everything past the
            safety bound).
        wait : float
            Seconds to wait for the writers holding the archive before giving up.

        Returns
        -------
        dict
            ``versions_expired``, ``snapshots_expired``, ``bytes_deleted``, ``objects_deleted``,
            ``kept_after`` (the bound applied: UTC datetime).

        Raises
        ------
        ArchiveBusyError
            Writers still held the archive after ``wait`` seconds.
        StoreError
            A folder leads out of a local archive, or the store failed.
        """
        self._writable()
        if isinstance(older_than, _dt.timedelta):
            older_than = _dt.datetime.now(_dt.UTC) - older_than
        out = self._store.collect_garbage(older_than, wait=wait)
        self.refresh()
        return out

    def expiring_versions(self, older_than: _dt.datetime | _dt.timedelta) -> tuple[_dt.datetime, list[dict]]:
        """What :meth:`collect_garbage` with this bound would expire, deleting nothing.

        Returns
        -------
        (datetime.datetime, list of dict)
            The bound it would apply (UTC), and the versions of :meth:`history` older than it
            that it would expire: never the latest, a tagged one, nor the repository's first.
        """
        if isinstance(older_than, _dt.timedelta):
            older_than = _dt.datetime.now(_dt.UTC) - older_than
        cutoff = ArchiveStore.gc_cutoff(older_than)
        versions = self.history()
        return cutoff, [v for v in versions[1:-1] if not v["tags"] and v["time"] < cutoff]

    # -- writing ---------------------------------------------------------------------------
    def _writable(self) -> None:
        if self._backend().read_only:
            raise LcarchiveError(f"{self.url}: a read-only folder of plain Zarr groups (store format v1 or a "
                                 f"download); convert a v1 archive with: lcarchive migrate {self.url} NEW")
        if self.version is not None or self.as_of is not None:
            return

    def ingest(
        self,
        inputs: Iterable[str],
        input_storage_options: dict | None = None,
        progress: Callable[[str], None] | None = None,
        jobs: int | None = None,
        table_map: dict | str | TableMap | None = None,
        client: Any = None,
        committed: Callable[[str, int], None] | None = None,
    ) -> IngestReport:
        """Ingest light-curve files into the archive.

        Each batch of inputs is one version of the archive (one commit, its message naming the
        inputs): a process killed at any moment leaves the archive at its previous version, and
        running the same ingest again completes it. Several processes may ingest into one
        archive at once, into the same observation or others: a commit that meets another's is
        redone on the newer version, so no light curve is ever lost.

        Parameters
        ----------
        inputs : iterable of str
            Files, directories (searched recursively for FITS ``*.fits``/``*.fits.gz``, HDF5
            ``*.h5``/``*.hdf5`` and SkyPortal JSON ``*.json``), globs or URLs. CSV/Parquet
            tables (``*.csv``, ``*.csv.gz``, ``*.parquet``) are read when named, with ``table_map``.
        input_storage_options : dict, optional
            fsspec options for reading remote inputs.
        progress : callable, optional
            Called with each input's name as it is read.
        jobs : int, optional
            Processes parsing files ahead of the writer (default: the number of CPUs; 1: parse
            in this process). Used for batches of 64 files or more.
        table_map : dict, str or lcarchive.formats.tables.TableMap, optional
            How the CSV/Parquet inputs give light curves (``lcarchive.formats.tables.TableMap``): a dict,
            a JSON text, the path of a JSON file, or a TableMap, e.g. ``{"mission": "tess", "target":
            "tic", "segment": 14, "time": "btjd", "flux": "flux"}``. Without it, tables are
            skipped with that reason.
        client : dask.distributed.Client, optional
            Parse the files, and encode and write their chunks, on this Dask cluster's workers
            (``jobs`` is then unused; :mod:`lcarchive.store.cluster`); this process plans each
            batch and makes its commits. The archive written is the one a serial ingest writes,
            stored object for stored object.
        committed : callable, optional
            Called after each batch's commit as ``committed(version, n_stored)``: the archive
            version it made and the light curves it stored (added or kept as another version).
            What a caller interrupted (Ctrl-C) can say was committed.

        Returns
        -------
        IngestReport
            What was added, left unchanged, superseded, and skipped (with reasons); the
            versions made; every file's integrity state (``integrity``: its DATASUM/CHECKSUM
            cards checked on its raw bytes; a ``damaged`` file is stored but never ranked at or
            above a sound copy) and the values kept although they contradict the mission
            (``warnings``). Inputs larger than ``Settings.max_input_bytes``, or gzip streams
            inflating beyond ``Settings.max_decompressed_bytes``, are skipped by name.

        Raises
        ------
        lcarchive.errors.BadInputError
            If ``table_map`` is invalid (unknown keys, missing or contradictory ones, an unknown
            mission, time format or unit), before anything is read.
        LcarchiveError
            If the archive is read-only (plain Zarr groups) or opened at a version.

        Notes
        -----
        SkyPortal photometric series (pandas HDF5 or JSON, ``lcarchive.formats.skyportal``) become the
        observations ``<mission>-skyportal-<segment>`` (``tess-skyportal-s0001``); tables
        ``<mission>-table[-<label>]-<segment>`` (``tess-table-mypipe-s0014``).
        """
        from lcarchive.formats.tables import load_table_map

        if self.version is not None or self.as_of is not None:
            raise LcarchiveError(f"{self.url}: opened at version {self.version or self.as_of}; open the latest to ingest")
        mapping = None if table_map is None else load_table_map(table_map)
        try:
            if self._backend().read_only:
                self._writable()
        except ArchiveNotFoundError:
            pass  # a new archive
        self.refresh()
        try:
            return ingest_files(self._store, inputs, input_storage_options, progress, jobs, mapping, client, committed)
        finally:
            self._kind = None
            self.refresh()


_OBSERVATION_COORDS = (
    ("product", "product", "", str, "product of each observation (catalog name)"),
    ("segment", "segment", -1, np.int64, "sector, quarter or campaign of each observation"),
    ("quality_flags", "quality_flags", "", str, "quality-flag table of each observation (catalog name)"),
)
"""Coordinates on ``observation`` of a target's light curve, from each group's attributes: what
``ds.lc`` needs to mask, normalise and convert each observation's cadences."""


def _target_of(target: Any) -> tuple[int, set[str] | None]:
    """A target given by a user (``261136679``, ``"TIC 261136679"``, ``"KIC 11442793"``) as its
    number and the missions of its catalog (None for a bare number: every mission).

    Raises
    ------
    ValueError
        If it is no target ID.
    """
    prefix, number = parse_target_text(target)
    if prefix is None:
        return number, None
    return number, {m.name for m in static_catalog().missions if m.target_catalog == prefix}


def _default_rank(product: str) -> int:
    try:
        return static_catalog().product(product).default_rank
    except KeyError:  # a product this version of lcarchive does not define: after every known one
        return 1_000


def _note_others(lc: xr.Dataset, others: dict[str, list[str]]) -> xr.Dataset:
    """Say on a light curve which other products the archive has of its target."""
    if others:
        product = str(lc["product"].values[0])
        listed = ", ".join(f"{p} ({len(obs)} observation{'s' if len(obs) > 1 else ''})" for p, obs in sorted(others.items()))
        lc.attrs["other_products"] = ", ".join(sorted(others))
        lc.attrs["note"] = (f"{product}, the mission's default product, is read; this archive also has {listed}: "
                            f"product=... reads one, products='all' every one")
    return lc


def _assemble(target: int, parts: list[tuple[str, GroupReader, dict[str, np.ndarray]]]) -> xr.Dataset:
    """Build one target's light curve from the rows read in each observation group.

    Light-curve variables keep only the cadences the target has (quality is not the fill) and
    are joined along ``cadence``; a variable missing from an observation is filled (NaN, the
    integer fill, ""). Per-target values go on an ``observation`` dimension; images are padded
    to the largest.
    """
    masks = [values["quality"] != fill_value(values["quality"].dtype) for _, _, values in parts]
    meta: dict[str, tuple[tuple[str, ...], dict, np.dtype]] = {}
    for _, reader, values in parts:
        for name, value in values.items():
            if name not in meta:
                array = reader.arrays[name]
                dims = tuple(array.metadata.dimension_names or ())[1:]
                attrs = {k: v for k, v in array.attrs.items() if k not in ("coordinates", "_FillValue")}
                dtype = np.dtype(object) if value.dtype.kind in "TUO" else value.dtype
                meta[name] = (dims, attrs, dtype)
    data_vars = {}
    for name, (dims, attrs, dtype) in meta.items():
        if dims == ("cadence",):
            pieces = []
            for (_, _, values), mask in zip(parts, masks, strict=True):
                pieces.append(values[name][mask] if name in values else np.full(int(mask.sum()), fill_value(dtype), dtype))
            data_vars[name] = xr.Variable(dims, np.concatenate(pieces) if len(pieces) > 1 else pieces[0], attrs=attrs)
        else:
            shape = tuple(max(v[name].shape[d] for _, _, v in parts if name in v) for d in range(len(dims)))
            stack = np.full((len(parts), *shape), fill_value(dtype), dtype=dtype)
            for i, (_, _, values) in enumerate(parts):
                if name in values:
                    value = values[name]
                    stack[(i, *(slice(0, n) for n in value.shape))] = value.astype(dtype) if dtype == object else value  # type: ignore[index]  # a tuple of an int and slices
            if dtype == object:  # fixed-width text: netCDF writes it, dask chunks it
                stack = stack.astype(str)
            data_vars[name] = xr.Variable(("observation", *dims), stack, attrs=attrs)
    cadenceno = np.concatenate([reader.cadenceno[mask] for (_, reader, _), mask in zip(parts, masks, strict=True)])
    # fixed-width text, not objects: xarray scans an object coordinate of every cadence (~150 ms for 10 sectors)
    observation = np.repeat(np.array([obs_id for obs_id, _, _ in parts], dtype=str), [int(m.sum()) for m in masks])
    first = parts[0][1].attrs
    return xr.Dataset(
        data_vars,
        coords={
            "cadenceno": ("cadence", cadenceno, {"description": "cadence number (CADENCENO)"}),
            "cadence_observation": ("cadence", observation, {"description": "observation of each cadence"}),
            "observation": ("observation", np.array([o for o, _, _ in parts], dtype=str)),
            **{name: ("observation", np.array([reader.attrs.get(key, default) for _, reader, _ in parts], dtype=dtype),
                      {"description": text})
               for name, key, default, dtype, text in _OBSERVATION_COORDS},
            "target": target,
        },
        attrs={"target": target, **{k: first[k] for k in ("mission", "time_format", "time_reference_epoch_jd", "time_scale")
                                    if k in first}},
    )



def open_archive(url: str, storage_options: dict | None = None, version: str | None = None,
                 as_of: _dt.datetime | None = None) -> Archive:
    """Open the archive at ``url``.

    Nothing is read from the store yet: the catalog, the target index and each group are read
    when first needed, so that a point read right after opening costs only its own requests.

    Parameters
    ----------
    url : str
        Local directory, ``s3://bucket/prefix``, ``gs://``, ``az://``.
    storage_options : dict, optional
        Credentials and endpoint (e.g. ``{"anon": True}`` or ``{"endpoint_url": ...}``);
        endpoint and credentials otherwise come from the standard AWS variables.
    version : str, optional
        A tag, branch or snapshot ID (``Archive.history()``): read the archive as it was then.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).

    Returns
    -------
    Archive
        Its ``catalog``, ``observations`` and ``target_index()`` raise
        ``ArchiveNotFoundError`` if there is no archive at ``url``.
    """
    return Archive(url, storage_options, version, as_of)
