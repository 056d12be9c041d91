"""Ingest light-curve files into observation groups.

Rules (``docs/format.md``):

* files of the same observation (mission x product x sector/quarter/campaign) go into
  one group; a later batch adds targets to it;
* a file whose bytes (SHA-256) are already stored for its target changes nothing;
* a different release of a light curve already stored (another DATA_REL, PROCVER,
  DATE or content) never overwrites it silently: the newest release, by
  (DATA_REL, DATE, PROCVER), is kept in the observation group and the other one in
  a release group ``<observation>.<label>`` (label ``dr<DATA_REL>``), both in the
  catalog;
* bad files are reported with their name and the reason and change nothing.

Inputs: FITS and HDF5 products and SkyPortal photometric series (HDF5, JSON) are recognised
from their bytes (``lcarchive.formats.parse_lightcurve``); CSV/Parquet tables are read with a
table map (``lcarchive.formats.tables``) and may give many light curves each. Directories are searched
for ``LIGHTCURVE_SUFFIXES``; tables are only read when named.
"""

from __future__ import annotations

import glob as _glob
import json
import math
import re
import multiprocessing
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lcarchive.catalog.content import ignored_suffixes
from lcarchive.config import settings
from lcarchive.errors import BadInputError, InvalidIdentifierError, StoreError
from lcarchive.identifiers import check_observation_id, check_segment, check_target_id
from lcarchive.layout import FORMAT_VERSION, Block, fill_value, block_from_dataset, block_from_file, merge_blocks, to_dataset
from lcarchive.formats import LightCurveFile, read_lightcurves
from lcarchive.formats.tables import TABLE_SUFFIXES, TableMap

if TYPE_CHECKING:
    from lcarchive.archive import Archive

__all__ = ["IngestReport", "expand_inputs", "ingest_files"]

LIGHTCURVE_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".h5", ".hdf5", ".json")
"""Files a directory is searched for (``.json``: SkyPortal photometric series). CSV/Parquet
tables need a table map and are read only when named."""


@dataclass
class IngestReport:
    """What an ingest did. Every input is in exactly one of ``added``, ``unchanged``,
    ``superseded`` and ``skipped``.

    Attributes
    ----------
    added : list of (source, observation, target)
        Stored as the target's current light curve of the observation.
    unchanged : list of (source, observation, target)
        Already stored byte for byte (in the group or one of its release groups), or a second
        copy within the batch: nothing written.
    superseded : list of (source, observation, target, release group)
        Stored in a release group, because another light curve of the target ranks higher (or
        was stored first); also a current light curve moved there by a higher-ranked one.
    skipped : list of (source, reason)
        Inputs refused, with the reason (damaged bytes, no light curve, no valid target or
        segment), and folders, prefixes or globs that gave no file; nothing of them was stored.
    observations : list of str
        Observation groups written.
    ignored : list of (source, what)
        Files found in folders, prefixes or globs that are no light curves by MAST's file names
        (target pixel files, DV time series, FFIs: ``catalog/inputs.json``); not read.
    """

    added: list[tuple[str, str, int]] = field(default_factory=list)
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: list[tuple[str, str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no input was skipped."""
        return not self.skipped


def expand_inputs(
    inputs: Iterable[str], storage_options: dict | None = None, empty: list[tuple[str, str]] | None = None,
    ignored: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Expand folders (recursively), object-store prefixes and globs into files.

    A local folder or an object-store prefix (``s3://stpubdata/tess/public/tid/s0001/``, any
    fsspec URL that can be listed) gives its files named with ``LIGHTCURVE_SUFFIXES``, leaving
    out Zarr stores (folders holding a ``zarr.json``); a glob (``*``, ``?``, ``[``) gives the
    files it matches, locally or in a bucket. A URL naming a light-curve file, and ``http(s)://``
    URLs, are kept as given.

    Parameters
    ----------
    inputs : iterable of str
        Paths, folders, globs or URLs.
    storage_options : dict, optional
        fsspec options for listing URLs (``{"anon": True}`` for a public bucket).
    empty : list, optional
        Receives ``(input, reason)`` for each folder, prefix or glob that gives no file, and for
        each URL that cannot be listed (no such bucket, access denied...), which is then skipped.
    ignored : list, optional
        Receives ``(file, what)`` for each file a folder, prefix or glob gives that is no light
        curve by its name (``catalog/inputs.json``: ``*_tp.fits`` target pixel files...); such files
        are left out. Files named explicitly are always kept.

    Returns
    -------
    list of str
        Files in the order given, each folder's sorted; duplicates dropped. A path that matches
        nothing is returned as is, so that reading it reports "no such file" against its name.

    Raises
    ------
    lcarchive.errors.StoreError
        An object-store URL that cannot be listed (no such bucket, access denied, unreachable),
        when ``empty`` is not given.
    """
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            try:
                found = _expand_url(item, storage_options)
            except StoreError as exc:  # an input that cannot be listed: that input's reason, the others go on
                if empty is None:
                    raise
                empty.append((item, exc.reason))
                continue
        else:
            found = _expand_local(item.removeprefix("file://"))
        if found:
            suffixes = ignored_suffixes()
            kept = []
            for path in found:
                what = next((w for suffix, w in suffixes.items() if path.lower().endswith(suffix)), None)
                if what is None:
                    kept.append(path)
                elif ignored is not None:
                    ignored.append((path, what))
            found = kept
        if found is None:
            out.append(item)
        elif found:
            out.extend(found)
        elif empty is not None:
            kind = "glob" if any(ch in item for ch in "*?[") else "folder"
            empty.append((item, f"no light-curve files in this {kind} (looked for {', '.join(LIGHTCURVE_SUFFIXES)})"))
    return list(dict.fromkeys(out))


def _expand_local(path: str) -> list[str] | None:
    """Files of a local folder or glob; None for a path that is neither (kept as given)."""
    if os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            if "zarr.json" in names:
                dirs.clear()
                continue
            dirs.sort()
            files.extend(os.path.join(root, f) for f in sorted(names) if f.lower().endswith(LIGHTCURVE_SUFFIXES))
        return files
    if any(ch in path for ch in "*?["):
        return [m for m in sorted(_glob.glob(path, recursive=True)) if os.path.isfile(m)]
    return None


def _expand_url(url: str, storage_options: dict | None) -> list[str] | None:
    """Objects under an object-store prefix or matching a glob; None for a URL naming one file."""
    scheme = url.split("://", 1)[0].lower()
    globbed = any(ch in url.split("://", 1)[1] for ch in "*?[")
    if scheme in ("http", "https") or (not globbed and url.lower().endswith(LIGHTCURVE_SUFFIXES + TABLE_SUFFIXES)):
        return None
    import fsspec

    from lcarchive.stores import bucket_exists, store_errors

    with store_errors(url):
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        if scheme == "s3" and not bucket_exists(fs, path.split("/", 1)[0]):
            raise FileNotFoundError(f"NoSuchBucket: {path.split('/', 1)[0]}")
        if globbed:
            paths = [p for p, info in sorted(fs.glob(path, detail=True).items()) if info.get("type") != "directory"]
        else:
            if not fs.isdir(path):
                return [] if url.endswith("/") else None  # a prefix named as such, holding nothing
            paths = sorted(fs.find(path))
            stores = {p.rsplit("/", 1)[0] for p in paths if p.endswith("/zarr.json")}
            paths = [p for p in paths if not any(p.startswith(f"{z}/") for z in stores)]
    return [fs.unstrip_protocol(p) for p in paths if p.lower().endswith(LIGHTCURVE_SUFFIXES)]


def _checked(lc: LightCurveFile) -> LightCurveFile:
    """The last check of every light curve a reader made, whatever its format: a target ID of the
    mission's ranges, a real segment and a valid observation ID (these become group names and
    keys). Raises the readers' errors (BadInputError, InvalidIdentifierError)."""
    check_target_id(lc.target, lc.target_catalog, lc.source, lc.target_catalog.id_keyword)
    check_segment(lc.segment, lc.mission, lc.source, lc.mission.segment_keyword)
    check_observation_id(lc.observation_id)
    return lc


def _parse_one(
    source: str, storage_options: dict | None, table_map: TableMap | None = None
) -> list[LightCurveFile] | tuple[str, str]:
    """Parse one file into its light curves (one, or a table's many); a bad file gives (source, reason) instead of raising."""
    try:
        return [_checked(lc) for lc in read_lightcurves(source, storage_options, table_map)]
    except BadInputError as exc:
        return (exc.source, exc.reason)
    except InvalidIdentifierError as exc:
        return (source, str(exc))
    except Exception as exc:  # anything unforeseen in a file is that file's fault
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (source, f"unreadable: {type(exc).__name__}{': ' + text if text else ''}")




def _parsed_batches(
    sources: list[str],
    storage_options: dict | None,
    progress: Callable[[str], None] | None,
    jobs: int | None,
    table_map: TableMap | None = None,
) -> Iterator[list[LightCurveFile | tuple[str, str]]]:
    """Yield parsed files in batches of ``Settings.batch_files``, parsing ahead in worker processes when worth it.

    The main process compresses and writes one batch while the workers parse the next ones; at
    most two batches are parsed ahead, which bounds memory. A batch lists the light curves of its
    files (a table gives several) and the (source, reason) of the bad ones.
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    size = settings().batch_files
    batches = [sources[i : i + size] for i in range(0, len(sources), size)]
    if jobs <= 1 or len(sources) < settings().parallel_min_files:
        for batch in batches:
            out: list[LightCurveFile | tuple[str, str]] = []
            for source in batch:
                if progress is not None:
                    progress(source)
                _collect(out, _parse_one(source, storage_options, table_map))
            yield out
        return
    context = multiprocessing.get_context("spawn")  # zarr's I/O thread makes fork unsafe
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        pending = deque(
            [(s, pool.submit(_parse_one, s, storage_options, table_map)) for s in batch] for batch in batches[:3]
        )
        next_batch = 3
        while pending:
            futures = pending.popleft()
            out: list[LightCurveFile | tuple[str, str]] = []
            for source, future in futures:
                if progress is not None:
                    progress(source)
                _collect(out, future.result())
            if next_batch < len(batches):
                pending.append([(s, pool.submit(_parse_one, s, storage_options, table_map)) for s in batches[next_batch]])
                next_batch += 1
            yield out


def _collect(out: list, result: list[LightCurveFile] | tuple[str, str]) -> None:
    """Add a file's light curves (or its (source, reason)) to a batch."""
    if isinstance(result, tuple):
        out.append(result)
    else:
        out.extend(result)


def ingest_files(
    archive: Archive,
    inputs: Iterable[str],
    storage_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
    jobs: int | None = None,
    table_map: TableMap | None = None,
) -> IngestReport:
    """Ingest files into ``archive``; see ``lcarchive.Archive.ingest``."""
    report = IngestReport()
    archive.check_root()
    sources = expand_inputs(inputs, storage_options, empty=report.skipped, ignored=report.ignored)
    ctx = _Context(archive, report)
    touched: list[str] = []
    for batch in _parsed_batches(sources, storage_options, progress, jobs, table_map):
        by_obs: dict[str, list[LightCurveFile]] = defaultdict(list)
        for outcome in batch:
            if isinstance(outcome, LightCurveFile):
                by_obs[outcome.observation_id].append(outcome)
            else:
                report.skipped.append(outcome)
        for obs_id, files in sorted(by_obs.items()):
            touched.extend(_ingest_observation(ctx, obs_id, files))
    if touched or not archive.exists:
        archive._update_catalog(touched)
    report.observations = sorted(set(touched))
    return report


def _group_attrs(lc: LightCurveFile, obs_id: str, **extra: object) -> dict:
    derived = {}
    if lc.derived_from is not None:
        how = json.loads(lc.notes.get("derived", "{}"))
        derived = {
            "derived_from_observation": lc.derived_from,
            "processing_tools": list(lc.processing),
            "processing_parameters": how.get("parameters", {}),
            "added_columns": how.get("added_columns", []),
        }
    return {
        "lcarchive_format_version": FORMAT_VERSION,
        "observation": obs_id,
        "title": f"{lc.product.title}{f' ({lc.label})' if lc.label else ''}, {lc.mission.segment_kind} "
                 f"{lc.mission.segment_name(lc.segment) or lc.segment}",
        "mission": lc.mission.name,
        "product": lc.product.name,
        "pipeline": lc.product.pipeline,
        "segment_kind": lc.mission.segment_kind,
        "segment": lc.segment,
        "time_format": lc.mission.time_system.format_name,
        "time_reference_epoch_jd": lc.mission.time_system.reference_epoch,
        "time_scale": lc.mission.time_system.scale,
        "quality_flags": lc.product.quality_flags or "",
        "target_catalog": lc.target_catalog.name,
        **({"label": lc.label} if lc.label else {}),
        **derived,
        **extra,
    }




@dataclass
class _GroupState:
    """What a group holds, read without its light curves."""

    target: np.ndarray
    cadenceno: np.ndarray
    sha256: list[str]
    source_file: list[str]
    release_keys: list[tuple]
    n_rows: list[int | None]
    template: Block
    attrs: dict

    def row(self, target: int) -> int | None:
        where = np.flatnonzero(self.target == target)
        return int(where[0]) if where.size else None


@dataclass
class _Context:
    """What one ingest call knows of the store: the groups in it and the states read so far."""

    archive: Archive
    report: IngestReport
    states: dict[str, _GroupState] = field(default_factory=dict)
    groups: set[str] | None = None

    def group_ids(self) -> set[str]:
        """IDs of the groups in the store (listed once per ingest, then kept up to date)."""
        if self.groups is None:  # one listing; a group is opened only once its zarr.json is seen
            self.groups = set(self.archive.group_ids(check=False))
        return self.groups


def _group_state(ctx: _Context, group_id: str) -> _GroupState | None:
    """What a group holds; remembered for the rest of an ingest (see ``_remember``)."""
    cached = ctx.states.get(group_id)
    if cached is not None:
        return cached
    if group_id not in ctx.group_ids() or not ctx.archive._group_exists(group_id):
        return None
    with ctx.archive._open_group(group_id) as ds:
        def values(name: str) -> np.ndarray:
            return ds[name].values

        series = {n: np.empty((0, ds.sizes["cadence"]), v.dtype) for n, v in ds.data_vars.items() if "cadence" in v.dims}
        per_target = {
            n: np.empty((0, *v.shape[1:]), object if v.dtype.kind == "T" else v.dtype)
            for n, v in ds.data_vars.items()
            if "cadence" not in v.dims
        }
        attrs = {n: dict(v.attrs) for n, v in ds.data_vars.items()}
        cadenceno = values("cadenceno").astype(np.int64)
        data_rel = values("data_release")
        dates = [str(x) for x in values("file_date")]
        versions = [str(x) for x in values("pipeline_version")]
        products = [str(x) for x in values("product_version")] if "product_version" in ds else [""] * ds.sizes["target"]
        n_rows: list[int | None] = [int(x) for x in values("n_rows")] if "n_rows" in ds else [None] * ds.sizes["target"]
        state = _GroupState(
            target=values("target").astype(np.int64),
            cadenceno=cadenceno,
            sha256=[str(x) for x in values("source_sha256")],
            source_file=[str(x) for x in values("source_file")],
            release_keys=[(_version(p), int(r), d, v) for p, r, d, v in zip(products, data_rel, dates, versions, strict=True)],
            n_rows=n_rows,
            template=Block(np.empty(0, np.int64), cadenceno, series, per_target, attrs),
            attrs=dict(ds.attrs),
        )
    ctx.states[group_id] = state
    return state


def _remember(ctx: _Context, group_id: str, state: _GroupState | None, added: list[Block], replaced: dict[int, Block]) -> None:
    """Update the remembered state of a group after rows were appended or replaced in place."""
    ctx.group_ids().add(group_id)
    if state is None:
        ctx.states.pop(group_id, None)  # a new or rewritten group: read it again if needed
        return
    for row, block in replaced.items():
        state.sha256[row] = str(block.per_target["source_sha256"][0])
        state.source_file[row] = str(block.per_target["source_file"][0])
        state.release_keys[row] = _release_key(block)
        state.n_rows[row] = _n_rows(block)
    for block in added:
        for i in range(block.target.size):
            state.sha256.append(str(block.per_target["source_sha256"][i]))
            state.source_file.append(str(block.per_target["source_file"][i]))
            state.release_keys.append(_release_key(block, i))
            state.n_rows.append(_n_rows(block, i))
    if added:
        state.target = np.concatenate([state.target, *(b.target for b in added)])
    ctx.states[group_id] = state


def _n_rows(block: Block, row: int = 0) -> int:
    """Cadences a row of a block has (its quality is not the padding fill)."""
    quality = block.series["quality"][row]
    return int(np.count_nonzero(quality != fill_value(quality.dtype)))


def _read_rows(ctx: _Context, group_id: str, rows: list[int]) -> Block:
    with ctx.archive._open_group(group_id) as ds:
        return block_from_dataset(ds.isel(target=rows).load())


def _read_all(ctx: _Context, group_id: str) -> Block:
    with ctx.archive._open_group(group_id) as ds:
        return block_from_dataset(ds.load())


def _fits_layout(state: _GroupState, blocks: list[Block]) -> Block | None:
    """Align blocks on the group's cadence axis; None if they need a rewrite (new cadences or variables)."""
    aligned = merge_blocks([state.template, *blocks])
    if not np.array_equal(aligned.cadenceno, state.cadenceno):
        return None
    for part, old in ((aligned.series, state.template.series), (aligned.per_target, state.template.per_target)):
        if set(part) != set(old) or any(
            part[k].dtype != old[k].dtype or part[k].shape[1:] != old[k].shape[1:] for k in part
        ):
            return None
    return aligned


def _write_new(ctx: _Context, group_id: str, block: Block, attrs: dict) -> None:
    """Write a whole group: built in memory (metadata through xarray, then the rows' shards),
    then put in the store in one concurrent batch of objects."""
    import zarr
    from zarr.storage import MemoryStore

    memory = ctx.archive._group_in_memory(to_dataset(block.select([]), attrs))
    group = zarr.open_group(MemoryStore(memory), mode="r+", zarr_format=3, use_consolidated=False)
    _write_group_rows(group, block, start=0, replace={}, attrs=attrs)
    ctx.archive._put_group(group_id, memory)


def _apply(
    ctx: _Context,
    group_id: str,
    state: _GroupState | None,
    added: list[Block],
    replaced: dict[int, Block],
    attrs: dict,
) -> None:
    """Add rows to a group and replace some of its rows, rewriting it only when its layout must change."""
    if state is None:
        merged = merge_blocks(added)
        _write_new(ctx, group_id, merged, _summary(attrs, [merged]))
        _remember(ctx, group_id, None, [], {})
        return
    aligned = _fits_layout(state, [*replaced.values(), *added])
    if aligned is None:  # new cadences, variables or image sizes: rewrite on the union
        _remember(ctx, group_id, None, [], {})
        whole = _read_all(ctx, group_id)
        rows = [whole.select([i]) for i in range(whole.target.size)]
        for row, block in replaced.items():
            rows[row] = block
        merged = merge_blocks([*rows, *added])
        _write_new(ctx, group_id, merged, _summary(attrs, [merged]))
        return
    n_replaced = len(replaced)
    replace = {row: aligned.select([i]) for i, row in enumerate(replaced)}
    new_rows = aligned.select(list(range(n_replaced, aligned.target.size)))
    summary = _summary({**state.attrs, **attrs}, [aligned], state.attrs)
    _write_rows(ctx.archive, group_id, new_rows, start=state.target.size, replace=replace, attrs=summary)
    state.attrs = summary
    _remember(ctx, group_id, state, [new_rows], replace)


def _write_rows(archive: Archive, group_id: str, block: Block, start: int, replace: dict[int, Block], attrs: dict) -> None:
    """Append ``block``'s rows at row ``start`` and overwrite the rows in ``replace``, in place.

    Sharded numeric arrays get their shards assembled by ``lcarchive.shards`` (stored chunks are
    reused byte for byte); the small per-target arrays are written through zarr. The group's
    attributes and consolidated metadata are updated last.
    """
    import zarr

    url = archive.observation_url(group_id)
    opts = {"storage_options": archive.storage_options} if "://" in archive.url else {}
    group = zarr.open_group(url, mode="r+", zarr_format=3, use_consolidated=False, **opts)
    _write_group_rows(group, block, start, replace, attrs)


def _write_group_rows(group: Any, block: Block, start: int, replace: dict[int, Block], attrs: dict) -> None:
    """Append and replace rows of an open zarr group (see :func:`_write_rows`)."""
    import warnings

    import zarr

    from lcarchive.shards import encode_shard, spec_of

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        n_new = block.target.size
        total = start + n_new
        values_of = {**block.series, **block.per_target, "target": block.target}
        for name, array in group.arrays():
            dims = tuple(array.metadata.dimension_names or ())
            if not dims or dims[0] != "target":
                continue
            if n_new and array.shape[0] < total:
                array.resize((total, *array.shape[1:]))
            spec = spec_of(array)
            updates: dict[int, np.ndarray] = {}
            for row, one in replace.items():
                updates[row] = ({**one.series, **one.per_target, "target": one.target})[name][0]
            new_values = values_of[name]
            if spec is None:
                if n_new:
                    array[start:total] = _zarr_values(new_values)
                for row, value in updates.items():
                    array[row] = _zarr_values(np.asarray(value)[np.newaxis])[0]
                continue
            for i in range(n_new):
                updates[start + i] = new_values[i]
            by_shard: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
            for row, value in updates.items():
                by_shard[row // spec.shard_rows][row % spec.shard_rows] = value
            key_prefix = array.store_path.path
            store = array.store_path.store
            for shard, rows in by_shard.items():
                key = f"{key_prefix}/{array.metadata.encode_chunk_key((shard, *(0,) * (array.ndim - 1)))}"
                existing = None
                if len(rows) < spec.shard_rows:
                    existing = zarr.core.sync.sync(_get(store, key))
                zarr.core.sync.sync(_set(store, key, encode_shard(spec, rows, existing)))
        group.attrs.update(attrs)
        zarr.consolidate_metadata(group.store, path=group.path or None, zarr_format=3)


def _zarr_values(values: np.ndarray) -> np.ndarray:
    """Values as zarr takes them (Python strings for variable-length string arrays)."""
    if values.dtype.kind in "OTU":
        return np.array([str(v) for v in values], dtype=object)
    return values


async def _get(store: object, key: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype

    buf = await store.get(key, prototype=default_buffer_prototype())
    return None if buf is None else buf.to_bytes()


async def _set(store: object, key: str, data: bytes) -> None:
    from zarr.core.buffer import default_buffer_prototype

    await store.set(key, default_buffer_prototype().buffer.from_bytes(data))


@dataclass
class _Entry:
    """The light curve of a target that is (or will be) current in its observation group.

    ``block`` is None while it is the stored row, untouched; ``rank`` orders it against others
    (see :func:`_rank`); ``new`` lists the inputs of this ingest it holds.
    """

    block: Block | None
    rank: tuple
    sha: str
    source: str
    new: list[str] = field(default_factory=list)


def _version(text: str) -> tuple[int, ...]:
    """A product version as numbers: ``v01`` -> (1,), ``v1.0`` -> (1, 0), "" -> ()."""
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _release_key(block: Block, row: int = 0) -> tuple:
    """(product version, DATA_REL, DATE, PROCVER) of a block's row; (), -1 and "" where the file gives none."""
    p = block.per_target
    version = str(p["product_version"][row]) if "product_version" in p else ""
    return (_version(version), int(p["data_release"][row]), str(p["file_date"][row]), str(p["pipeline_version"][row]))


def _rank(release_key: tuple, n_rows: int | None) -> tuple:
    """Which of two light curves of one target and observation is current: the larger rank.

    The product's version (an HLSP's v02 over its v01), then DATA_REL, DATE and PROCVER, then the
    number of cadences the file has (a complete file before a cut-down copy of the same release);
    on a tie the one stored first stays current (docs/format.md, ingest rules).
    """
    return (*release_key, -1 if n_rows is None else n_rows)


def _family(ctx: _Context, obs_id: str) -> list[str]:
    """The observation group and its release groups (``<obs_id>.<label>``) in the store."""
    prefix = f"{obs_id}."
    return [obs_id, *sorted(g for g in ctx.group_ids() if g.startswith(prefix))]


def _ingest_observation(ctx: _Context, obs_id: str, files: list[LightCurveFile]) -> list[str]:
    """Merge one observation's files into its group(s); return the groups written.

    Every input whose (target, SHA-256) is not yet stored in the observation's group or any of
    its release groups is stored in this call: as the target's current row, or in a release
    group when another light curve of the target ranks higher (:func:`_rank`).
    """
    report = ctx.report
    state = _group_state(ctx, obs_id)
    stored: set[tuple[int, str]] = set()
    for group_id in _family(ctx, obs_id):
        held = state if group_id == obs_id else _group_state(ctx, group_id)
        if held is not None:
            for t, shas in zip(held.target, held.sha256, strict=True):
                stored.update((int(t), sha) for sha in shas.split(SEPARATOR))
    current: dict[int, _Entry] = {}
    if state is not None:
        for i, t in enumerate(state.target):
            current[int(t)] = _Entry(None, _rank(state.release_keys[i], state.n_rows[i]), state.sha256[i], state.source_file[i])
    others: dict[str, list[tuple[Block | int, str]]] = defaultdict(list)  # label -> (block or stored row, source)
    for lc in files:
        if (lc.target, lc.sha256) in stored:
            report.unchanged.append((lc.source, obs_id, lc.target))
            continue
        stored.add((lc.target, lc.sha256))
        block = block_from_file(lc)
        rank = _rank(_release_key(block), lc.n_rows)
        entry = current.get(lc.target)
        if entry is None:
            current[lc.target] = _Entry(block, rank, lc.sha256, lc.source, [lc.source])
            continue
        if _same_release(entry.rank, rank):
            held = entry.block if entry.block is not None else _read_rows(ctx, obs_id, [state.row(lc.target)])
            if _disjoint(held, block):  # another segment of the same light curve (Kepler SC months)
                combined = _combine_segments(held, block)
                current[lc.target] = _Entry(combined, _rank(_release_key(combined), _n_rows(combined)),
                                            str(combined.per_target["source_sha256"][0]),
                                            str(combined.per_target["source_file"][0]), [*entry.new, lc.source])
                continue
        if entry.rank[-1] < 0:  # a stored row of a group written before n_rows was recorded
            entry.rank = (*entry.rank[:-1], _n_rows(_read_rows(ctx, obs_id, [state.row(lc.target)])))
        if rank > entry.rank:
            older: Block | int = entry.block if entry.block is not None else state.row(lc.target)
            others[_label(entry.rank, rank)].append((older, entry.source))
            current[lc.target] = _Entry(block, rank, lc.sha256, lc.source, [lc.source])
        else:
            others[_label(rank, entry.rank)].append((block, lc.source))
    written: list[str] = []
    first = files[0]
    for label, entries in sorted(others.items()):
        blocks = [e if isinstance(e, Block) else _read_rows(ctx, obs_id, [e]) for e, _ in entries]
        rel_id = f"{obs_id}.{label}"
        rel_attrs = _group_attrs(first, rel_id, superseded_release=label, current_observation=obs_id)
        written.extend(_store_release(ctx, rel_id, list(zip(blocks, [s for _, s in entries], strict=True)), obs_id, rel_attrs))
    held_targets = set() if state is None else {int(t) for t in state.target}
    added = [e.block for t, e in current.items() if t not in held_targets and e.block is not None]
    replaced = {state.row(t): e.block for t, e in current.items() if t in held_targets and e.block is not None} if state else {}
    for t, e in current.items():
        report.added.extend((source, obs_id, t) for source in e.new)
    if added or replaced:
        _apply(ctx, obs_id, state, added, replaced, _group_attrs(first, obs_id))
        written.append(obs_id)
    return written


SEPARATOR = "\n"
"""Joins the names and checksums of the files of a light curve delivered in several segments."""


def _same_release(a: tuple, b: tuple) -> bool:
    """Same product version, DATA_REL and PROCVER (the file dates may differ)."""
    return a[0] == b[0] and a[1] == b[1] and a[3] == b[3]


def _present(block: Block) -> np.ndarray:
    quality = block.series["quality"][0]
    return block.cadenceno[quality != fill_value(quality.dtype)]


def _disjoint(stored: Block, new: Block) -> bool:
    """True if the new file's cadences are all cadences the stored row does not have, and its time
    stamps lie wholly before or after the stored row's (Kepler short-cadence months do; a copy whose
    cadence numbers were made from time does not)."""
    if np.intersect1d(_present(stored), new.cadenceno).size:
        return False
    spans = []
    for block in (stored, new):
        quality, time = block.series["quality"][0], block.series["time"][0]
        finite = time[(quality != fill_value(quality.dtype)) & np.isfinite(time)]
        if finite.size == 0:
            return False
        spans.append((float(finite.min()), float(finite.max())))
    (a0, a1), (b0, b1) = spans
    return a1 < b0 or b1 < a0


def _combine_segments(a: Block, b: Block) -> Block:
    """One row from two files holding different cadences of one light curve (Kepler short
    cadence comes as one file per month). Per-target values are the earlier segment's; the
    headers are kept one after the other, file names and checksums joined with a newline,
    sizes added, the file date the latest."""
    first, second = sorted((a, b), key=lambda blk: int(_present(blk).min()))
    both = merge_blocks([first, second])
    series = {}
    for name, values in both.series.items():
        row = values[0].copy()
        take = both.series["quality"][1] != fill_value(both.series["quality"].dtype)
        row[take] = values[1][take]
        series[name] = row[np.newaxis]
    per_target = {name: values[:1].copy() for name, values in both.per_target.items()}
    for name in ("source_file", "source_sha256"):
        per_target[name] = np.array([SEPARATOR.join(str(v) for v in both.per_target[name])], dtype=object)
    for name in both.per_target:
        if name.startswith("header_"):
            per_target[name] = np.array(["".join(str(v) for v in both.per_target[name])], dtype=object)
    per_target["source_size"] = np.array([int(np.sum(both.per_target["source_size"]))], dtype=np.int64)
    per_target["file_date"] = np.array([max(str(v) for v in both.per_target["file_date"])], dtype=object)
    if "n_rows" in both.per_target:  # coverage of the union: the segments' covered spans over their joint span
        per_target["n_rows"] = np.array([int(np.sum(both.per_target["n_rows"]))], dtype=np.int64)
        start, stop = both.per_target["tstart"].astype(np.float64), both.per_target["tstop"].astype(np.float64)
        covered = np.nansum(both.per_target["coverage"].astype(np.float64) * (stop - start))
        joint = float(np.nanmax(stop) - np.nanmin(start)) if np.isfinite(start).any() else math.nan
        per_target["tstart"] = np.array([np.nanmin(start) if np.isfinite(start).any() else math.nan])
        per_target["tstop"] = np.array([np.nanmax(stop) if np.isfinite(stop).any() else math.nan])
        per_target["coverage"] = np.array([min(1.0, covered / joint) if joint > 0 else math.nan])
    return Block(both.target[:1], both.cadenceno, series, per_target, both.attrs)


def _label(other: tuple, current: tuple) -> str:
    """The release group's label for a light curve that is not current (ranks ``other`` against the
    current one's ``current``): ``v<version>`` for another product version (``v1`` for v01), ``dr<N>``
    for another DATA_REL, else ``alt2`` (another file of the same release: a cut-down copy, a
    re-delivery)."""
    if other[0] != current[0] and other[0]:
        return "v" + "-".join(str(n) for n in other[0])
    if other[1] != current[1] and other[1] >= 0:
        return f"dr{other[1]}"
    return "alt2"


def _next_label(label: str) -> str:
    """The label after ``label`` for a target its group already holds: alt2 -> alt3, dr0 -> dr0-alt2."""
    match = re.fullmatch(r"(?:(.+)-)?alt(\d+)", label)
    if match is None:
        return f"{label}-alt2"
    head, k = match.group(1), int(match.group(2)) + 1
    return f"{head}-alt{k}" if head else f"alt{k}"


def _store_release(ctx: _Context, rel_id: str, blocks: list[tuple[Block, str]], obs_id: str, attrs: dict) -> list[str]:
    """Store light curves that are not current in the release group ``rel_id``; return the groups written.

    A target the group already holds (another file of the same release label) goes to the next
    group (:func:`_next_label`: ``alt2`` -> ``alt3``), so that every input is kept.
    """
    state = _group_state(ctx, rel_id)
    held = set() if state is None else {int(t) for t in state.target}
    added: list[Block] = []
    elsewhere: list[tuple[Block, str]] = []
    for block, source in blocks:
        t = int(block.target[0])
        if t in held or any(int(b.target[0]) == t for b in added):
            elsewhere.append((block, source))
            continue
        added.append(block)
        ctx.report.superseded.append((source, obs_id, t, rel_id))
    written: list[str] = []
    if added:
        _apply(ctx, rel_id, state, added, {}, attrs)
        written.append(rel_id)
    if elsewhere:
        label = _next_label(rel_id.split(".", 1)[1])
        alt = f"{obs_id}.{label}"
        written.extend(_store_release(ctx, alt, elsewhere, obs_id, {**attrs, "observation": alt, "superseded_release": label}))
    return written


def instruments_of(per_target: dict[str, np.ndarray]) -> set[str]:
    """Instrument names (``tess/camera4/ccd2``, ``kepler/module18/output3``) of targets'
    camera/CCD or module/output values, shape (n_targets,) each."""
    found = set()
    for cam_key, ccd_key, fmt in (("camera", "ccd", "tess/camera{}/ccd{}"), ("module", "output", "kepler/module{}/output{}")):
        if cam_key in per_target and ccd_key in per_target:
            for a, b in zip(per_target[cam_key], per_target[ccd_key], strict=True):
                if np.isfinite(a) and np.isfinite(b):
                    found.add(fmt.format(int(a), int(b)))
    return found


def _summary(attrs: dict, blocks: list[Block], previous: dict | None = None) -> dict:
    """Group attributes with the time range and instruments of the rows written (and of ``previous``)."""
    lows, highs, instruments = [], [], set(previous.get("instruments", [])) if previous else set()
    if previous and previous.get("time_min") is not None:
        lows.append(previous["time_min"])
        highs.append(previous["time_max"])
    for block in blocks:
        time = block.series["time"]
        finite = time[np.isfinite(time)]
        if finite.size:
            lows.append(float(finite.min()))
            highs.append(float(finite.max()))
        instruments |= instruments_of(block.per_target)
    return {
        **attrs,
        "time_min": min(lows) if lows else None,
        "time_max": max(highs) if highs else None,
        "instruments": sorted(instruments),
    }
