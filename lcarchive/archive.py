"""The archive: a root URL holding ``catalog.json`` and one Zarr v3 group per observation."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import asyncio
import functools

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
from zarr.codecs import BloscCodec

from lcarchive.catalog import index as target_index
from lcarchive.catalog.build import observation_entry
from lcarchive.catalog.content import static_catalog
from lcarchive.config import settings
from lcarchive.errors import ArchiveNotFoundError, DamagedArchiveError, ObservationNotFoundError, TargetNotFoundError
from lcarchive.identifiers import OBSERVATION_ID, check_observation_id
from lcarchive.ingest import IngestReport, ingest_files
from lcarchive.layout import fill_value
from lcarchive.catalog.models import Catalog, Observation
from lcarchive.read import GroupReader, run
from lcarchive.stores import bucket_exists, missing_reason, read_bytes, store_errors, with_defaults

if TYPE_CHECKING:
    from lcarchive.formats.tables import TableMap

__all__ = ["Archive", "open_archive"]

CATALOG_NAME = "catalog.json"
OBSERVATIONS_DIR = "observations"
_GUARDED = frozenset(
    {"build_catalog", "target_index", "open_observation", "light_curve", "ingest", "targets", "group_ids"}
)
"""Targets per shard of the (target, cadence) arrays; one target is one inner chunk."""


def _compressor(dtype: np.dtype) -> BloscCodec:
    """Blosc zstd level 3 with byte shuffle: chosen by measurement on the real SPOC and Kepler
    files (docs/performance.md): within 1% of level 5's ratio at 1.7x its speed; byte shuffle
    beat bit shuffle on every column, integers included."""
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=np.dtype(dtype).itemsize)


def _shards(shape: tuple[int, ...]) -> dict[str, Any]:
    """Shard shape with the shard index at the start of the object, so it reads with a plain
    byte-range request (an index at the end needs the object's size first on many clients)."""
    return {"shape": shape, "index_location": "start"}


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Chunk, shard and codec choices of an observation group (docs/format.md)."""
    n_cad = max(int(ds.sizes["cadence"]), 1)
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        dtype = var.dtype
        if var.dims == ("target", "cadence"):
            enc[name] = {
                "chunks": (1, n_cad),
                "shards": _shards((settings().targets_per_shard, n_cad)),
                "compressors": [_compressor(dtype)],
                "fill_value": fill_value(dtype),
            }
        elif len(var.dims) >= 2 and var.dims[0] == "target" and "cadence" not in var.dims:
            enc[name] = {
                "chunks": (1, *var.shape[1:]),
                "shards": _shards((settings().targets_per_shard, *var.shape[1:])),
                "compressors": [_compressor(dtype)],
                "fill_value": fill_value(dtype),
            }
        elif var.dims == ("target",) and dtype.kind in "OTU":
            enc[name] = {"chunks": (1,), "shards": _shards((settings().targets_per_shard,))}
        elif var.dims == ("target",):
            enc[name] = {"chunks": (settings().targets_per_shard * 8,), "compressors": [_compressor(dtype)]}
        elif var.dims == ("cadence",):
            enc[name] = {"chunks": (n_cad,), "compressors": [_compressor(dtype)]}
    return enc


class Archive:
    """A light-curve archive at a root URL (a local directory or any fsspec URL).

    Use ``open_archive`` to make one.

    Parameters
    ----------
    url : str
        Root of the archive: a local path, ``file://``, ``s3://bucket/prefix``...
    storage_options : dict, optional
        fsspec options for the store (credentials, endpoint...).
    """

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.storage_options = with_defaults(url, storage_options)
        self.fs, root = fsspec.core.url_to_fs(url, **self.storage_options)
        self.url = self.fs.unstrip_protocol(root).rstrip("/") if "://" in url else root.rstrip("/")
        self._root = root.rstrip("/")
        self._catalog: Catalog | None = None
        self._index: pd.DataFrame | None = None
        self._readers: dict[str, GroupReader] = {}
        self._anon = bool(self.storage_options.get("anon"))
        self._local = "://" not in url or url.startswith("file://")

    def __getattribute__(self, name: str) -> Any:
        # public entry points report store failures as lcarchive.StoreError (see stores.store_errors)
        attr = object.__getattribute__(self, name)
        if name in _GUARDED and callable(attr):
            url = object.__getattribute__(self, "url")

            @functools.wraps(attr)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                with store_errors(url):
                    return attr(*args, **kwargs)

            return guarded
        return attr

    def __repr__(self) -> str:
        return f"<lcarchive.Archive {self.url!r}>"

    # -- catalog ---------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        """True if the archive has a catalog.

        Raises
        ------
        lcarchive.StoreError
            If the store cannot be asked (unreachable, access denied).
        """
        with store_errors(self.url, self._anon):
            return self.fs.exists(f"{self._root}/{CATALOG_NAME}")

    def check_root(self) -> None:
        """Make sure the archive's root can take writes: a local folder is made; an object
        store's bucket must exist (lcarchive never creates buckets).

        Raises
        ------
        lcarchive.StoreError
            No such bucket, access denied, unreachable store.
        """
        with store_errors(self.url, self._anon):
            if self._local:
                self.fs.makedirs(self._root, exist_ok=True)
                return
            bucket = self._root.split("/", 1)[0]
            if not bucket_exists(self.fs, bucket):
                from lcarchive.errors import StoreError

                raise StoreError(self.url, f"no such bucket {bucket!r}: create it first (lcarchive never creates buckets)")

    @property
    def catalog(self) -> Catalog:
        """The archive's catalog (read from ``catalog.json``).

        Raises
        ------
        ArchiveNotFoundError
            If there is no ``catalog.json`` at the root.
        """
        if self._catalog is None:
            path = f"{self._root}/{CATALOG_NAME}"
            try:
                with store_errors(self.url, self._anon):
                    text = read_bytes(self.fs, self.url, path, self.storage_options)
            except FileNotFoundError:
                raise ArchiveNotFoundError(self.url, missing_reason(self.fs, self.url, self._root)) from None
            try:
                self._catalog = Catalog.model_validate_json(text)
            except ValueError as exc:  # pydantic's ValidationError (bad JSON included) is a ValueError
                raise DamagedArchiveError(self.url, CATALOG_NAME, _first_problem(exc)) from exc
        return self._catalog

    def _write_catalog(self, catalog: Catalog) -> None:
        if self._local:  # object stores have no folders; s3fs's makedirs would create a bucket
            self.fs.makedirs(self._root, exist_ok=True)
        text = catalog.model_dump_json(indent=1)
        self.fs.pipe_file(f"{self._root}/{CATALOG_NAME}", text.encode())
        self._catalog = catalog

    @property
    def observations(self) -> list[Observation]:
        """Observations in the catalog, sorted by ID."""
        return sorted(self.catalog.observations, key=lambda o: o.id)

    def group_path(self, observation: str) -> str:
        """Path of an observation's group relative to the root: ``observations/<id>.zarr``.

        Raises
        ------
        lcarchive.identifiers.InvalidIdentifierError
            If ``observation`` is not a valid observation ID (``../evil``, ``/tmp/x``...): an ID
            always names one folder under ``observations/``.
        """
        return f"{OBSERVATIONS_DIR}/{check_observation_id(observation)}.zarr"

    def observation_url(self, observation: str) -> str:
        """URL of an observation group, openable with ``xarray.open_dataset(url, engine="zarr")``."""
        return f"{self.url}/{self.group_path(observation)}"

    def _group_exists(self, observation: str) -> bool:
        return self.fs.exists(f"{self._root}/{self.group_path(observation)}/zarr.json")

    def group_ids(self, check: bool = True) -> list[str]:
        """IDs of the observation groups present in the store (whatever the catalog says).

        Parameters
        ----------
        check : bool
            Keep only groups whose ``zarr.json`` exists (one more request per group on an object
            store). False: the names one listing of ``observations/`` gives.
        """
        base = f"{self._root}/{OBSERVATIONS_DIR}"
        try:
            listing = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        ids = []
        for path in listing:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            obs_id = name.removesuffix(".zarr")
            if name.endswith(".zarr") and OBSERVATION_ID.fullmatch(obs_id) and (
                    not check or self.fs.exists(f"{path.rstrip('/')}/zarr.json")):
                ids.append(obs_id)
        return sorted(ids)

    def build_catalog(self) -> Catalog:
        """Rebuild the catalog and the target index from the groups in the store, and write them.

        Returns
        -------
        Catalog
        """
        self.check_root()
        catalog, index = self._collect_catalog()
        self._write_index(index)
        self._write_catalog(catalog)
        return catalog

    def _collect_catalog(self, reuse: tuple[Catalog, pd.DataFrame, set[str]] | None = None) -> tuple[Catalog, pd.DataFrame]:
        """The catalog and target index of the groups in the store (nothing written).

        ``reuse`` = (catalog, target index, group IDs): take those groups' entries and index
        lines from another archive's catalog instead of opening them (groups copied from it
        object for object).
        """
        catalog = static_catalog().model_copy(deep=True)
        rows = []
        for obs_id in self.group_ids():
            if reuse is not None and obs_id in reuse[2]:
                catalog.observations.append(reuse[0].observation(obs_id).model_copy(deep=True))
                catalog.datasets.extend(d.model_copy(deep=True) for d in reuse[0].datasets if d.observation == obs_id)
                rows.append(reuse[1][reuse[1]["observation"] == obs_id])
                continue
            with self._open_group(obs_id) as ds:
                observation, datasets = observation_entry(ds, obs_id, self.group_path(obs_id), catalog)
                rows.append(target_index.group_rows(ds, obs_id))
            catalog.observations.append(observation)
            catalog.datasets.extend(datasets)
        return _finish(catalog), target_index.merge_rows(None, rows, set())

    def _update_catalog(self, obs_ids: Iterable[str]) -> None:
        touched = set(obs_ids)
        base = self.catalog if self.exists else static_catalog()
        catalog = static_catalog().model_copy(deep=True)
        catalog.observations = [o for o in base.observations if o.id not in touched]
        catalog.datasets = [d for d in base.datasets if d.observation not in touched]
        rows = []
        for obs_id in sorted(touched):
            with self._open_group(obs_id) as ds:
                observation, datasets = observation_entry(ds, obs_id, self.group_path(obs_id), catalog)
                rows.append(target_index.group_rows(ds, obs_id))
            catalog.observations.append(observation)
            catalog.datasets.extend(datasets)
        old = self.target_index() if self.exists else None
        self._write_index(target_index.merge_rows(old, rows, touched))
        self._write_catalog(_finish(catalog))
        self._readers.clear()

    def target_index(self) -> pd.DataFrame:
        """The target index: one line per (target, observation group).

        Returns
        -------
        pandas.DataFrame
            Columns ``target`` (int64 TIC/KIC/EPIC ID), ``observation``, ``row`` (the target's
            row in the group), ``ra``, ``dec`` (deg, from RA_OBJ/DEC_OBJ), ``mission``,
            ``product``, ``segment``, ``current`` (False for groups of older releases).
        """
        if self._index is None:
            try:
                data = read_bytes(self.fs, self.url, f"{self._root}/{target_index.INDEX_PATH}", self.storage_options)
            except FileNotFoundError:  # an archive written before the index existed
                rows = []
                for obs_id in self.group_ids():
                    with self._open_group(obs_id) as ds:
                        rows.append(target_index.group_rows(ds, obs_id))
                self._index = target_index.merge_rows(None, rows, set())
            else:
                try:
                    self._index = target_index.from_bytes(data)
                except Exception as exc:  # pyarrow's errors for a damaged Parquet file are of many kinds
                    raise DamagedArchiveError(self.url, target_index.INDEX_PATH, _first_problem(exc)) from exc
        return self._index

    def _write_index(self, frame: pd.DataFrame) -> None:
        path = f"{self._root}/{target_index.INDEX_PATH}"
        if self._local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, target_index.to_bytes(frame))
        self._index = frame

    # -- reading ---------------------------------------------------------------------------
    def _open_group(self, obs_id: str, **kwargs: Any) -> xr.Dataset:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            return xr.open_dataset(
                self.observation_url(obs_id),
                engine="zarr",
                backend_kwargs={"storage_options": self.storage_options} if "://" in self.url else None,
                **kwargs,
            )

    def open_observation(self, observation: str, **kwargs: Any) -> xr.Dataset:
        """Open one observation group as a lazy ``xarray.Dataset``.

        Parameters
        ----------
        observation : str
            Observation ID, e.g. ``"tess-spoc-2min-s0001"``.
        **kwargs
            Passed to ``xarray.open_dataset``.

        Returns
        -------
        xarray.Dataset
            Dimensions (target, cadence); see ``docs/format.md``.

        Raises
        ------
        ObservationNotFoundError
            If the catalog has no such observation.
        """
        self.catalog.observation(observation)
        return self._open_group(observation, **kwargs)

    def targets(self, observation: str) -> np.ndarray:
        """Return the target IDs of an observation, shape (n_targets,), int64."""
        return self.open_observation(observation)["target"].values

    def light_curve(
        self,
        target: int,
        observation: str | None = None,
        variables: Iterable[str] | None = None,
        include_superseded: bool = False,
    ) -> xr.Dataset:
        """Return the light curve of one target.

        The target index says which groups hold the target and at which row; only those
        groups are read, concurrently, and in each only the target's chunks (see
        ``lcarchive.read``).

        Parameters
        ----------
        target : int
            TIC, KIC or EPIC ID.
        observation : str, optional
            Observation ID. If None, every current observation holding the target is read
            and the light curves are joined along ``cadence`` in observation order.
        variables : iterable of str, optional
            Variables to read, e.g. ``["time", "flux", "flux_err", "quality"]``; default all.
            ``quality`` is always read (it marks the cadences the target has).
        include_superseded : bool
            Also read groups holding older releases (only when ``observation`` is None).

        Returns
        -------
        xarray.Dataset
            Variables on ``cadence`` (time in BTJD/BKJD, d; flux and flux_err in the
            product's units; quality bits...), only the cadences the target's source file
            has, sorted by cadence number within each observation; coordinates ``cadenceno``
            and ``cadence_observation`` on ``cadence``; per-target values (ra, dec, headers,
            aperture...) on an ``observation`` dimension.

        Raises
        ------
        TargetNotFoundError
            If the target is in none of the observations asked for.
        ObservationNotFoundError
            If ``observation`` is not in the catalog.
        """
        target = int(target)
        wanted = None if variables is None else list(dict.fromkeys(["quality", *variables]))
        if observation is not None:
            pairs = run(self._row_in(observation, target))
        else:
            index = self.target_index()
            lines = index[index["target"] == target]
            if not include_superseded:
                lines = lines[lines["current"]]
            pairs = [(str(o), int(r)) for o, r in zip(lines["observation"], lines["row"], strict=True)]
        if not pairs:
            raise TargetNotFoundError(target, f"observation {observation}" if observation else f"archive {self.url}")
        results = run(self._read_rows(pairs, wanted))
        parts = [(obs_id, self._readers[obs_id], values) for (obs_id, _), values in zip(pairs, results, strict=True)]
        return _assemble(target, parts)

    async def _row_in(self, observation: str, target: int) -> list[tuple[str, int]]:
        """The target's row in one group, read from the group itself (its ``target`` coordinate)."""
        try:
            reader = await self._reader(observation)
        except FileNotFoundError:
            raise ObservationNotFoundError(observation) from None
        row = reader.row_of(target)
        return [] if row is None else [(observation, row)]

    async def _reader(self, obs_id: str) -> GroupReader:
        reader = self._readers.get(obs_id)
        if reader is None:
            opts = self.storage_options if "://" in self.url else None
            reader = self._readers[obs_id] = await GroupReader.open(self.observation_url(obs_id), opts)
        return reader

    async def _read_rows(self, pairs: list[tuple[str, int]], wanted: list[str] | None) -> list[dict[str, np.ndarray]]:
        readers = await asyncio.gather(*(self._reader(obs_id) for obs_id, _ in pairs))

        def names(reader: GroupReader) -> list[str]:
            available = [n for n in reader.arrays if n not in ("target", "cadenceno")]
            return available if wanted is None else [n for n in wanted if n in reader.arrays]

        return await asyncio.gather(*(r.read_row(row, names(r)) for r, (_, row) in zip(readers, pairs, strict=True)))

    # -- writing ---------------------------------------------------------------------------
    def ingest(
        self,
        inputs: Iterable[str],
        input_storage_options: dict | None = None,
        progress: Callable[[str], None] | None = None,
        jobs: int | None = None,
        table_map: dict | str | TableMap | None = None,
    ) -> IngestReport:
        """Ingest light-curve files into the archive.

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

        Returns
        -------
        IngestReport
            What was added, left unchanged, superseded, and skipped (with reasons).

        Raises
        ------
        lcarchive.errors.BadInputError
            If ``table_map`` is invalid (unknown keys, missing or contradictory ones, an unknown
            mission, time format or unit), before anything is read.

        Notes
        -----
        SkyPortal photometric series (pandas HDF5 or JSON, ``lcarchive.formats.skyportal``) become the
        observations ``<mission>-skyportal-<segment>`` (``tess-skyportal-s0001``); tables
        ``<mission>-table[-<label>]-<segment>`` (``tess-table-mypipe-s0014``).
        """
        from lcarchive.formats.tables import load_table_map

        mapping = None if table_map is None else load_table_map(table_map)
        self._readers.clear()
        return ingest_files(self, inputs, input_storage_options, progress, jobs, mapping)

    def _group_in_memory(self, ds: xr.Dataset) -> dict[str, Any]:
        """A group's objects (key to zarr buffer) made by xarray in memory: metadata and
        coordinates, with the chunk and codec choices of :func:`_encoding`."""
        from zarr.storage import MemoryStore

        memory: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            ds.to_zarr(MemoryStore(memory), mode="w", encoding=_encoding(ds), zarr_format=3, consolidated=True)
        return memory

    def _put_group(self, obs_id: str, memory: dict[str, Any]) -> None:
        """Replace a group by the objects of an in-memory group, in one concurrent batch.

        Building a group in memory and putting its objects costs one request an object;
        writing it through zarr's store costs some twenty an array on S3 (existence checks,
        listings, deletes, metadata rewrites).
        """
        base = f"{self._root}/{self.group_path(obs_id)}"
        if self.fs.exists(base):
            self.fs.rm(base, recursive=True)
        objects = {f"{base}/{key}": value.to_bytes() for key, value in memory.items()}
        if "://" not in self.url:  # object stores have no folders to make
            for parent in sorted({path.rsplit("/", 1)[0] for path in objects}):
                self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe(objects)
        self.fs.invalidate_cache(base)


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
                    stack[(i, *(slice(0, n) for n in value.shape))] = value.astype(dtype) if dtype == object else value
            data_vars[name] = xr.Variable(("observation", *dims), stack, attrs=attrs)
    cadenceno = np.concatenate([reader.cadenceno[mask] for (_, reader, _), mask in zip(parts, masks, strict=True)])
    observation = np.concatenate([np.full(int(m.sum()), obs_id, dtype=object) for (obs_id, _, _), m in zip(parts, masks, strict=True)])
    first = parts[0][1].attrs
    return xr.Dataset(
        data_vars,
        coords={
            "cadenceno": ("cadence", cadenceno, {"description": "cadence number (CADENCENO)"}),
            "cadence_observation": ("cadence", observation, {"description": "observation of each cadence"}),
            "observation": ("observation", np.array([o for o, _, _ in parts], dtype=object)),
            "target": target,
        },
        attrs={"target": target, **{k: first[k] for k in ("mission", "time_format") if k in first}},
    )


def _first_problem(exc: Exception) -> str:
    """One line of what is wrong with a damaged file (pydantic lists every field; keep the first)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "the document"
            return f"{where}: {first.get('msg', '')}"
        except Exception:
            pass
    from lcarchive.stores import first_line

    return first_line(f"{type(exc).__name__}: {exc}")


def _finish(catalog: Catalog) -> Catalog:
    """Sort entries and link observation groups to the groups of their older releases."""
    catalog.observations.sort(key=lambda o: o.id)
    catalog.datasets.sort(key=lambda d: d.id)
    by_id = {o.id: o for o in catalog.observations}
    for obs in catalog.observations:
        obs.superseded_by_release = []
    for obs in catalog.observations:
        if obs.superseded_release and obs.current in by_id:
            by_id[obs.current].superseded_by_release.append(obs.id)
    return catalog


def open_archive(url: str, storage_options: dict | None = None) -> Archive:
    """Open the archive at ``url``.

    Nothing is read from the store yet: the catalog, the target index and each group are read
    when first needed, so that a point read right after opening costs only its own requests.

    Parameters
    ----------
    url : str
        Local directory or fsspec URL (``s3://bucket/prefix``).
    storage_options : dict, optional
        fsspec options (e.g. ``{"anon": True}`` or ``{"client_kwargs": {"endpoint_url": ...}}``);
        endpoint and credentials otherwise come from the standard AWS variables.

    Returns
    -------
    Archive
        Its ``catalog``, ``observations`` and ``target_index()`` raise
        ``ArchiveNotFoundError`` if there is no archive at ``url``.
    """
    return Archive(url, storage_options)
