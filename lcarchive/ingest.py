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
from their bytes (``lcarchive.readers.parse_lightcurve``); CSV/Parquet tables are read with a
table map (``lcarchive.tables``) and may give many light curves each. Directories are searched
for ``LIGHTCURVE_SUFFIXES``; tables are only read when named.
"""

from __future__ import annotations

import glob as _glob
import multiprocessing
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lcarchive.errors import BadInputError
from lcarchive.layout import FORMAT_VERSION, Block, fill_value, block_from_dataset, block_from_file, merge_blocks, to_dataset
from lcarchive.readers import LightCurveFile, read_lightcurve
from lcarchive.tables import TableMap, is_table, read_table

if TYPE_CHECKING:
    from lcarchive.archive import Archive

__all__ = ["IngestReport", "expand_inputs", "ingest_files"]

LIGHTCURVE_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".h5", ".hdf5", ".json")
"""Files a directory is searched for (``.json``: SkyPortal photometric series). CSV/Parquet
tables need a table map and are read only when named."""


@dataclass
class IngestReport:
    """What an ingest did.

    Attributes
    ----------
    added : list of (source, observation, target)
    unchanged : list of (source, observation, target)
        Files already stored byte for byte.
    superseded : list of (source, observation, target, release group)
        A release moved to (or stored in) a release group because another one is current.
    skipped : list of (source, reason)
        Bad inputs, with the reason; nothing of them was stored.
    observations : list of str
        Observation groups written.
    """

    added: list[tuple[str, str, int]] = field(default_factory=list)
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: list[tuple[str, str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no input was skipped."""
        return not self.skipped


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Expand directories (recursively) and globs into files; keep URLs as given.

    A directory gives its files named with ``LIGHTCURVE_SUFFIXES``, leaving out Zarr stores
    (folders holding a ``zarr.json``, whose metadata files are no SkyPortal series).
    Raises nothing: a path that matches nothing is returned as is, so that reading
    it reports "no such file" against its name.
    """
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            out.append(item)
            continue
        path = item.removeprefix("file://")
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                if "zarr.json" in files:
                    dirs.clear()
                    continue
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(LIGHTCURVE_SUFFIXES))
        elif any(ch in path for ch in "*?["):
            matches = sorted(_glob.glob(path, recursive=True))
            out.extend(m for m in matches if os.path.isfile(m)) if matches else out.append(path)
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def _release_key(block: Block, row: int = 0) -> tuple:
    p = block.per_target
    return (int(p["data_release"][row]), str(p["file_date"][row]), str(p["pipeline_version"][row]))


def _release_label(block: Block, row: int = 0) -> str:
    data_rel = int(block.per_target["data_release"][row])
    if data_rel >= 0:
        return f"dr{data_rel}"
    return f"sha{str(block.per_target['source_sha256'][row])[:10]}"


def _parse_one(
    source: str, storage_options: dict | None, table_map: TableMap | None = None
) -> list[LightCurveFile] | tuple[str, str]:
    """Parse one file into its light curves (one, or a table's many); a bad file gives (source, reason) instead of raising."""
    try:
        if is_table(source):
            if table_map is None:
                return (source, "a CSV/Parquet table needs a column mapping: give --table-map (Archive.ingest(table_map=...))")
            return read_table(source, table_map, storage_options)
        return [read_lightcurve(source, storage_options)]
    except BadInputError as exc:
        return (exc.source, exc.reason)
    except Exception as exc:  # anything unforeseen in a file is that file's fault
        return (source, f"unreadable: {type(exc).__name__}: {exc}")


PARALLEL_MIN_FILES = 64
"""Below this many files an ingest parses in its own process (starting workers costs more)."""


def _parsed_batches(
    sources: list[str],
    storage_options: dict | None,
    progress: Callable[[str], None] | None,
    jobs: int | None,
    table_map: TableMap | None = None,
) -> Iterator[list[LightCurveFile | tuple[str, str]]]:
    """Yield parsed files in batches of BATCH_FILES, parsing ahead in worker processes when worth it.

    The main process compresses and writes one batch while the workers parse the next ones; at
    most two batches are parsed ahead, which bounds memory. A batch lists the light curves of its
    files (a table gives several) and the (source, reason) of the bad ones.
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    batches = [sources[i : i + BATCH_FILES] for i in range(0, len(sources), BATCH_FILES)]
    if jobs <= 1 or len(sources) < PARALLEL_MIN_FILES:
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
    sources = expand_inputs(inputs)
    touched: list[str] = []
    archive._ingest_states = {}
    for batch in _parsed_batches(sources, storage_options, progress, jobs, table_map):
        by_obs: dict[str, list[LightCurveFile]] = defaultdict(list)
        for outcome in batch:
            if isinstance(outcome, LightCurveFile):
                by_obs[outcome.observation_id].append(outcome)
            else:
                report.skipped.append(outcome)
        for obs_id, files in sorted(by_obs.items()):
            touched.extend(_ingest_observation(archive, obs_id, files, report))
    archive._ingest_states = {}
    if touched or not archive.exists:
        archive._update_catalog(touched)
    report.observations = sorted(set(touched))
    return report


def _group_attrs(lc: LightCurveFile, obs_id: str, **extra: object) -> dict:
    return {
        "lcarchive_format_version": FORMAT_VERSION,
        "observation": obs_id,
        "title": f"{lc.product.title}{f' ({lc.label})' if lc.label else ''}, {lc.mission.segment_kind} {lc.segment}",
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
        **extra,
    }


BATCH_FILES = 256
"""Files parsed and written per step of an ingest, bounding its memory."""


@dataclass
class _GroupState:
    """What a group holds, read without its light curves."""

    target: np.ndarray
    cadenceno: np.ndarray
    sha256: list[str]
    source_file: list[str]
    release_keys: list[tuple]
    template: Block
    attrs: dict

    def row(self, target: int) -> int | None:
        where = np.flatnonzero(self.target == target)
        return int(where[0]) if where.size else None


def _group_state(archive: Archive, group_id: str) -> _GroupState | None:
    """What a group holds; remembered for the rest of an ingest (see ``_remember``)."""
    cached = archive._ingest_states.get(group_id)
    if cached is not None:
        return cached
    if not archive._group_exists(group_id):
        return None
    with archive._open_group(group_id) as ds:
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
        return _GroupState(
            target=values("target").astype(np.int64),
            cadenceno=cadenceno,
            sha256=[str(x) for x in values("source_sha256")],
            source_file=[str(x) for x in values("source_file")],
            release_keys=[(int(r), d, v) for r, d, v in zip(data_rel, dates, versions, strict=True)],
            template=Block(np.empty(0, np.int64), cadenceno, series, per_target, attrs),
            attrs=dict(ds.attrs),
        )


def _remember(archive: Archive, group_id: str, state: _GroupState | None, added: list[Block], replaced: dict[int, Block]) -> None:
    """Update the remembered state of a group after rows were appended or replaced in place."""
    if state is None:
        archive._ingest_states.pop(group_id, None)  # a new or rewritten group: read it again if needed
        return
    for row, block in replaced.items():
        state.sha256[row] = str(block.per_target["source_sha256"][0])
        state.source_file[row] = str(block.per_target["source_file"][0])
        state.release_keys[row] = _release_key(block)
    for block in added:
        for i in range(block.target.size):
            state.sha256.append(str(block.per_target["source_sha256"][i]))
            state.source_file.append(str(block.per_target["source_file"][i]))
            state.release_keys.append(_release_key(block, i))
    if added:
        state.target = np.concatenate([state.target, *(b.target for b in added)])
    archive._ingest_states[group_id] = state


def _read_rows(archive: Archive, group_id: str, rows: list[int]) -> Block:
    with archive._open_group(group_id) as ds:
        return block_from_dataset(ds.isel(target=rows).load())


def _read_all(archive: Archive, group_id: str) -> Block:
    with archive._open_group(group_id) as ds:
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


def _write_new(archive: Archive, group_id: str, block: Block, attrs: dict) -> None:
    """Write a whole group: built in memory (metadata through xarray, then the rows' shards),
    then put in the store in one concurrent batch of objects."""
    import zarr
    from zarr.storage import MemoryStore

    memory = archive._group_in_memory(to_dataset(block.select([]), attrs))
    group = zarr.open_group(MemoryStore(memory), mode="r+", zarr_format=3, use_consolidated=False)
    _write_group_rows(group, block, start=0, replace={}, attrs=attrs)
    archive._put_group(group_id, memory)


def _apply(
    archive: Archive,
    group_id: str,
    state: _GroupState | None,
    added: list[Block],
    replaced: dict[int, Block],
    attrs: dict,
) -> None:
    """Add rows to a group and replace some of its rows, rewriting it only when its layout must change."""
    if state is None:
        merged = merge_blocks(added)
        _write_new(archive, group_id, merged, _summary(attrs, [merged]))
        _remember(archive, group_id, None, [], {})
        return
    aligned = _fits_layout(state, [*replaced.values(), *added])
    if aligned is None:  # new cadences, variables or image sizes: rewrite on the union
        _remember(archive, group_id, None, [], {})
        whole = _read_all(archive, group_id)
        rows = [whole.select([i]) for i in range(whole.target.size)]
        for row, block in replaced.items():
            rows[row] = block
        merged = merge_blocks([*rows, *added])
        _write_new(archive, group_id, merged, _summary(attrs, [merged]))
        return
    n_replaced = len(replaced)
    replace = {row: aligned.select([i]) for i, row in enumerate(replaced)}
    new_rows = aligned.select(list(range(n_replaced, aligned.target.size)))
    summary = _summary({**state.attrs, **attrs}, [aligned], state.attrs)
    _write_rows(archive, group_id, new_rows, start=state.target.size, replace=replace, attrs=summary)
    state.attrs = summary
    _remember(archive, group_id, state, [new_rows], replace)


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


def _ingest_observation(archive: Archive, obs_id: str, files: list[LightCurveFile], report: IngestReport) -> list[str]:
    """Merge one observation's files into its group(s); return the groups written."""
    state = _group_state(archive, obs_id)
    # target -> (block or None if the stored row, release key, sha256, source name)
    current: dict[int, tuple[Block | None, tuple, str, str]] = {}
    if state is not None:
        for i, t in enumerate(state.target):
            current[int(t)] = (None, state.release_keys[i], state.sha256[i], state.source_file[i])
    released: dict[str, list[tuple[Block | int, str]]] = defaultdict(list)
    for lc in sorted(files, key=lambda f: f.release_key):
        block = block_from_file(lc)
        entry = current.get(lc.target)
        if entry is None:
            current[lc.target] = (block, _release_key(block), lc.sha256, lc.source)
            report.added.append((lc.source, obs_id, lc.target))
            continue
        cur_block, cur_key, cur_sha, cur_source = entry
        if lc.sha256 in cur_sha.split(SEPARATOR):
            report.unchanged.append((lc.source, obs_id, lc.target))
            continue
        if _same_release(cur_key, _release_key(block)):
            stored = cur_block if cur_block is not None else _read_rows(archive, obs_id, [state.row(lc.target)])
            if _disjoint(stored, block):  # another segment of the same light curve (Kepler SC months)
                combined = _combine_segments(stored, block)
                sha = str(combined.per_target["source_sha256"][0])
                current[lc.target] = (combined, _release_key(combined), sha, str(combined.per_target["source_file"][0]))
                report.added.append((lc.source, obs_id, lc.target))
                continue
        if _release_key(block) >= cur_key:
            older = cur_block if cur_block is not None else state.row(lc.target)
            released[_label(cur_key, cur_sha)].append((older, cur_source))
            current[lc.target] = (block, _release_key(block), lc.sha256, lc.source)
            report.added.append((lc.source, obs_id, lc.target))
        else:
            released[_label(_release_key(block), lc.sha256)].append((block, lc.source))
    written: list[str] = []
    first = files[0]
    for label, entries in sorted(released.items()):
        blocks = [e if isinstance(e, Block) else _read_rows(archive, obs_id, [e]) for e, _ in entries]
        rel_id = f"{obs_id}.{label}"
        rel_attrs = _group_attrs(first, rel_id, superseded_release=label, current_observation=obs_id)
        if _store_release(archive, rel_id, list(zip(blocks, [s for _, s in entries], strict=True)), report, obs_id, rel_attrs):
            written.append(rel_id)
    stored = set() if state is None else {int(t) for t in state.target}
    added = [b for t, (b, *_) in current.items() if t not in stored and b is not None]
    replaced = {state.row(t): b for t, (b, *_) in current.items() if t in stored and b is not None} if state else {}
    if added or replaced:
        _apply(archive, obs_id, state, added, replaced, _group_attrs(first, obs_id))
        written.append(obs_id)
    return written


SEPARATOR = "\n"
"""Joins the names and checksums of the files of a light curve delivered in several segments."""


def _same_release(a: tuple, b: tuple) -> bool:
    """Same DATA_REL and PROCVER (the file dates may differ)."""
    return a[0] == b[0] and a[2] == b[2]


def _present(block: Block) -> np.ndarray:
    quality = block.series["quality"][0]
    return block.cadenceno[quality != fill_value(quality.dtype)]


def _disjoint(stored: Block, new: Block) -> bool:
    """True if the new file's cadences are all cadences the stored row does not have."""
    return np.intersect1d(_present(stored), new.cadenceno).size == 0


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
    return Block(both.target[:1], both.cadenceno, series, per_target, both.attrs)


def _label(key: tuple, sha: str) -> str:
    return f"dr{key[0]}" if key[0] >= 0 else f"sha{sha[:10]}"


def _store_release(
    archive: Archive, rel_id: str, blocks: list[tuple[Block, str]], report: IngestReport, obs_id: str, attrs: dict
) -> bool:
    state = _group_state(archive, rel_id)
    stored = {} if state is None else {int(t): state.sha256[i] for i, t in enumerate(state.target)}
    added: list[Block] = []
    for block, source in blocks:
        t = int(block.target[0])
        sha = str(block.per_target["source_sha256"][0])
        if stored.get(t) == sha or any(int(b.target[0]) == t for b in added):
            continue
        if t in stored:  # same label, other content: keep both by naming this one after its checksum
            alt = f"{obs_id}.sha{sha[:10]}"
            _store_release(archive, alt, [(block, source)], report, obs_id, {**attrs, "observation": alt, "superseded_release": f"sha{sha[:10]}"})
            continue
        added.append(block)
        report.superseded.append((source, obs_id, t, rel_id))
    if not added:
        return False
    _apply(archive, rel_id, state, added, {}, attrs)
    return True


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
