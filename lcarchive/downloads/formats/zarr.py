"""``download --format zarr``: plain Zarr v3 groups of the selection, with consolidated metadata,
``catalog.json`` and the target index: whole groups copied chunk by chunk, subsets of targets
assembled from their stored chunks, undecoded (cut to a time range: decoded and encoded again).
One output unit per group, ``observations/<id>.zarr``; analysis tables in Parquet."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lcarchive import export
from lcarchive.config import settings
from lcarchive.downloads.context import (
    DownloadContext,
    GroupPlan,
    OutputFormat,
    RunRecord,
    Unit,
    off_loop,
    per_target_names,
    series_names,
)
from lcarchive.downloads.formats.parquet import write_parquet_analysis
from lcarchive.downloads.manifest import PARTIAL_DIR, crc32c, unit_key, write_atomic
from lcarchive.errors import DamagedObjectError
from lcarchive.search import GroupSelection
from lcarchive.store import BulkReader, gather
from lcarchive.zarr_internals import path_of, shard_key, store_of

if TYPE_CHECKING:
    from obstore import Bytes

__all__ = ["ZarrFormat", "catalog_outputs", "copy_zarr_rows", "mirror", "write_zarr_catalog", "write_zarr_subset"]


class ZarrFormat(OutputFormat):
    """Plain Zarr v3 groups, one output unit per group (see the module)."""

    name = "zarr"
    suffix = "zarr"
    analysis_suffix = "parquet"
    per = "group"
    every_variable = True
    mirrors_whole_groups = True

    def more_variables(self, reader: Any, series: list[str], read: list[str]) -> list[str]:
        return per_target_names(reader)

    def units(self, plan_spec: list, group: GroupSelection, ident: dict, shas: list[str], reader: Any) -> list[Unit]:
        path = f"observations/{group.observation}.zarr"
        return [
            Unit(
                path,
                unit_key(plan_spec, list(zip(group.targets.tolist(), shas, strict=True))),
                list(range(group.rows.size)),
                [path],
            )
        ]

    async def write(
        self, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, todo: list[Unit], units_in_flight: asyncio.Semaphore
    ) -> None:
        if plan.group.time_range is None:
            await copy_zarr_rows(ctx, record, plan, todo[0])
        else:
            await write_zarr_subset(ctx, record, plan, todo[0])

    async def mirror(
        self, ctx: DownloadContext, record: RunRecord, group: GroupSelection, reader: Any, bulk: Any, shas: list[str]
    ) -> None:
        await mirror(ctx, record, group, reader, bulk, shas)

    def write_analysis(self, table: Any, entry: dict, path: Path) -> None:
        write_parquet_analysis(table, entry, path)

    def planned_outputs(self) -> list[str]:
        return catalog_outputs()

    def finish(self, ctx: DownloadContext, record: RunRecord) -> None:
        write_zarr_catalog(ctx, record)


def _group_files(root: Path) -> list[tuple[Path, int]]:
    return [(path, path.stat().st_size) for path in sorted(p for p in root.rglob("*") if p.is_file())]


async def mirror(
    ctx: DownloadContext, record: RunRecord, group: GroupSelection, reader: Any, bulk: BulkReader, shas: list[str]
) -> None:
    """Copy a whole group object by object, undecoded."""
    store = store_of(reader.group)
    prefix = path_of(reader.group)
    keys = sorted([k async for k in store.list_prefix(prefix)])
    meta = await bulk.get(store, f"{prefix}/zarr.json" if prefix else "zarr.json")
    unit = f"observations/{group.observation}.zarr"
    key = unit_key("mirror", keys, hashlib.sha256(meta or b"").hexdigest(), shas)
    record.manifest.plan(group.observation, {unit: [unit]})
    if record.manifest.done(unit, key):
        record.report.skipped.append(unit)
        record.advance(group.rows.size)
        return
    partial = ctx.dest / PARTIAL_DIR / f"{group.observation}.zarr"
    shutil.rmtree(partial, ignore_errors=True)
    files: list[tuple[str, int, str]] = []

    direct = _object_store(store)

    async def copy(key: str) -> None:
        data: bytes | Bytes | None
        if direct is not None:  # obstore's buffer as it came off the wire: no copies on the way
            import obstore

            async with bulk.limit:
                data = await (await obstore.get_async(direct, key)).bytes_async()
            bulk.requests += 1
            bulk.bytes += len(data)
        else:
            data = await bulk.get(store, key)
            if data is None:
                return
        relative = key[len(prefix) :].lstrip("/") if prefix else key
        digest = await off_loop(_write_plain, partial / relative, data)  # hashed off the event loop
        files.append((f"{unit}/{relative}", len(data), digest))

    await gather(*(copy(k) for k in keys))
    final = ctx.dest / unit
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    files.sort()
    record.manifest.record(unit, key, files, observation=group.observation, targets=group.targets.tolist(), mirrored=True)
    record.wrote(unit, sum(f[1] for f in files))
    record.advance(group.rows.size)


def _object_store(store: Any) -> Any | None:
    """The obstore store behind zarr's ``ObjectStore`` (lcarchive's S3 reads), else None."""
    inner = getattr(store, "store", None)
    return inner if type(store).__name__ == "ObjectStore" and type(inner).__module__.startswith("obstore") else None


def _write_plain(path: Path, data: bytes | Bytes) -> str:
    """Write ``data`` to ``path`` (making its folder); return its ``crc32c:`` digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return crc32c(data)


async def _metadata(bulk: BulkReader, reader: Any) -> dict:
    """A group's ``zarr.json`` with every array's metadata consolidated in it (Zarr v3
    consolidated metadata: one request opens the downloaded group), catalog attributes dropped."""
    store, prefix = store_of(reader.group), path_of(reader.group)

    async def load(key: str) -> dict:
        path = f"{prefix}/{key}" if prefix else key
        data = await bulk.get(store, path)
        if data is None:
            raise DamagedObjectError(path, "the group's metadata object is missing")
        return json.loads(data)

    meta = await load("zarr.json")
    names = sorted(reader.arrays)
    arrays = await gather(*(load(f"{name}/zarr.json") for name in names))
    meta["attributes"] = {k: v for k, v in meta.get("attributes", {}).items() if k not in _CATALOG_ATTRS}
    meta["consolidated_metadata"] = {
        "kind": "inline",
        "must_understand": False,
        "metadata": dict(zip(names, arrays, strict=True)),
    }
    return meta


_CATALOG_ATTRS = ("lcarchive_observation", "lcarchive_datasets")
"""Group attributes holding the group's catalog entries in the archive (not true of a subset)."""


async def copy_zarr_rows(ctx: DownloadContext, record: RunRecord, plan: GroupPlan, unit: Unit) -> None:
    """Write the selected rows as a new group whose shards are assembled from the source's
    stored chunks, undecoded; metadata is the source group's with the target count changed."""
    import zarr
    from zarr.storage import LocalStore

    from lcarchive.layout.shards import decode_chunk, encode_shard, spec_of
    from lcarchive.store.family import instruments_of

    group, reader, bulk, names = plan.group, plan.reader, plan.bulk, plan.names
    obs = group.observation
    meta = await _metadata(bulk, reader)
    consolidated = meta["consolidated_metadata"]["metadata"]
    rows = group.rows.tolist()
    n = len(rows)
    wanted = {*names, "target", "cadenceno"}

    def dims(name: str) -> tuple[str, ...]:
        return tuple(consolidated[name].get("dimension_names") or ())

    keep = {name: md for name, md in consolidated.items() if name in wanted or dims(name)[:1] != ("target",)}
    for name, md in keep.items():
        if dims(name)[:1] == ("target",):
            md["shape"] = [n, *md["shape"][1:]]
    meta["consolidated_metadata"]["metadata"] = keep
    staging = ctx.dest / PARTIAL_DIR / f"{obs}.zarr"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: list[tuple[str, int, str]] = []
    final_rel = unit.paths[0]

    def put(relative: str, data: bytes) -> None:
        _write_plain(staging / relative, data)
        files.append((f"{final_rel}/{relative}", len(data), crc32c(data)))

    specs = {name: spec for name in keep if dims(name)[:1] == ("target",) and (spec := spec_of(reader.arrays[name])) is not None}
    sharded = list(specs)
    plain = [name for name in keep if name not in specs]
    time_range: list[float] = []
    arrays_at_once = asyncio.Semaphore(
        settings().download_arrays_at_once
    )  # bounds memory: one array's chunks of every selected row

    async def copy_sharded(name: str) -> None:
        async with arrays_at_once:
            array = reader.arrays[name]
            spec = specs[name]
            raw = await bulk.read_raw(rows, name)

            def write() -> None:
                for shard in range(-(-n // spec.shard_rows)):
                    first = shard * spec.shard_rows
                    chunks = {
                        i - first: chunk for i in range(first, min(n, first + spec.shard_rows)) if (chunk := raw[i]) is not None
                    }
                    if chunks:
                        key = shard_key(array, shard, relative=True)
                        put(f"{name}/{key}", encode_shard(spec, chunks))
                if name == "time":
                    values = [decode_chunk(spec, c, tuple(array.shape[1:])) for c in raw if c is not None]
                    finite = [v[np.isfinite(v)] for v in values]
                    finite = [v for v in finite if v.size]
                    if finite:
                        time_range.extend([float(min(v.min() for v in finite)), float(max(v.max() for v in finite))])

            await off_loop(write)

    plain_values: dict[str, np.ndarray] = {}

    async def read_plain(name: str) -> None:
        if dims(name)[:1] == ("target",):
            plain_values[name] = (await bulk.read_rows(rows, [name]))[name]
        else:
            async with bulk.limit:
                plain_values[name] = np.asarray(await reader.arrays[name].getitem(...))

    await gather(*(copy_sharded(name) for name in sharded), *(read_plain(name) for name in plain))
    attrs = meta["attributes"]
    attrs["time_min"], attrs["time_max"] = (time_range[0], time_range[1]) if time_range else (None, None)
    attrs["instruments"] = sorted(instruments_of(plain_values))
    meta["consolidated_metadata"]["metadata"] = {k: keep[k] for k in sorted(keep)}

    def write_metadata_and_plain() -> None:
        for name, md in keep.items():
            put(f"{name}/zarr.json", json.dumps(md, indent=2).encode())
        put("zarr.json", json.dumps(meta, indent=2).encode())
        local = zarr.open_group(LocalStore(staging), mode="r+", zarr_format=3, use_consolidated=False)
        for name in plain:
            values = plain_values[name]
            array = local[name]
            assert isinstance(array, zarr.Array), name  # the metadata written above makes it an array
            array[...] = values.astype(object) if values.dtype.kind in "OTU" else values
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):  # chunks zarr wrote
            relative = f"{final_rel}/{path.relative_to(staging)}"
            if not any(f[0] == relative for f in files):
                data = path.read_bytes()
                files.append((relative, len(data), crc32c(data)))

    await off_loop(write_metadata_and_plain)
    final = ctx.dest / final_rel
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    files = sorted({f[0]: f for f in files}.values())
    record.manifest.record(unit.name, unit.key, files, observation=obs, targets=group.targets.tolist(), mirrored=False)
    record.wrote(unit.name, sum(f[1] for f in files))
    record.advance(n)


async def write_zarr_subset(ctx: DownloadContext, record: RunRecord, plan: GroupPlan, unit: Unit) -> None:
    """Write the selected rows, cut to a time range, as a new group with the source group's
    layout and codecs (decoded and encoded again: the cadence axis changes)."""
    import zarr
    from zarr.storage import LocalStore

    from lcarchive.layout import Block
    from lcarchive.store.family import FamilyView

    group, reader, bulk, names, attrs = plan.group, plan.reader, plan.bulk, plan.names, plan.attrs
    obs = group.observation
    cadence: slice | np.ndarray = slice(None)
    if group.time_range is not None:  # keep the cadences any selected target has in the range
        keep = np.zeros(reader.cadenceno.size, dtype=bool)
        for start in range(0, group.rows.size, 256):
            part = await bulk.read_rows(group.rows[start : start + 256].tolist(), ["time", "quality"])
            for k in range(part["time"].shape[0]):
                keep |= export.cadence_mask({"time": part["time"][k], "quality": part["quality"][k]}, group.time_range)
        cadence = np.flatnonzero(keep)
    cadenceno = reader.cadenceno[cadence]
    series = set(series_names(reader))
    root = ctx.dest / PARTIAL_DIR / obs
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    view = FamilyView(LocalStore(root))
    group_attrs = {k: v for k, v in reader.attrs.items() if k not in ("time_min", "time_max", "instruments", *_CATALOG_ATTRS)}
    batch = 32
    for start in range(0, group.rows.size, batch):
        positions = list(range(start, min(start + batch, group.rows.size)))
        values = await bulk.read_rows([int(group.rows[p]) for p in positions], names)
        block = Block(
            group.targets[positions].astype(np.int64),
            cadenceno,
            {n: v[:, cadence] for n, v in values.items() if n in series},
            {n: v for n, v in values.items() if n not in series},
            {n: attrs.get(n, {}) for n in values},
        )
        await off_loop(view.apply, "data", [block], {}, group_attrs)
    await off_loop(zarr.consolidate_metadata, LocalStore(root / "data"), zarr_format=3)
    final = ctx.dest / unit.paths[0]
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(root / "data", final)
    shutil.rmtree(root, ignore_errors=True)
    files = [(str(p.relative_to(ctx.dest)), size, crc32c(await off_loop(p.read_bytes))) for p, size in _group_files(final)]
    record.manifest.record(unit.name, unit.key, files, observation=obs, targets=group.targets.tolist(), mirrored=False)
    record.wrote(unit.name, sum(f[1] for f in files))
    record.advance(group.rows.size)


def catalog_outputs() -> list[str]:
    """The paths of the catalog and target index a ``zarr`` download writes last."""
    from lcarchive.catalog.index import INDEX_PATH
    from lcarchive.store.plain import CATALOG_NAME

    return [CATALOG_NAME, INDEX_PATH]


def write_zarr_catalog(ctx: DownloadContext, record: RunRecord) -> None:
    """Catalog and target index of the downloaded folder, written only if they changed."""
    from lcarchive.catalog import index as target_index
    from lcarchive.catalog.build import finish_catalog, observation_entry
    from lcarchive.catalog.content import static_catalog
    from lcarchive.layout import open_group
    from lcarchive.store.plain import CATALOG_NAME, PlainStore

    local = PlainStore(str(ctx.dest))
    # mirrored groups are the source's, object for object: their entries and index lines are the
    # source's too, with no need to open them again
    mirrored = {e["observation"] for e in record.manifest.units.values() if e.get("mirrored") and "observation" in e}
    source = ctx.archive.catalog
    source_ids = {o.id for o in source.observations}
    catalog = static_catalog().model_copy(deep=True)
    frames = []
    for obs_id in local.group_ids():
        path = local.group_path(obs_id)
        if obs_id in mirrored and obs_id in source_ids:
            catalog.observations.append(source.observation(obs_id).model_copy(update={"group": path}, deep=True))
            catalog.datasets.extend(d.model_copy(deep=True) for d in source.datasets if d.observation == obs_id)
            frames.append(ctx.archive.group_index(obs_id))
            continue
        with open_group(*local.group_store(obs_id)) as ds:
            observation, datasets = observation_entry(ds, obs_id, path, catalog)
            frames.append(target_index.group_rows(ds, obs_id))
        catalog.observations.append(observation)
        catalog.datasets.extend(datasets)
    frame = target_index.merge_rows(None, frames, set())
    outputs = {
        CATALOG_NAME: finish_catalog(catalog).model_dump_json(indent=1).encode(),
        target_index.INDEX_PATH: target_index.to_bytes(frame),
    }
    for path, data in outputs.items():
        key = unit_key(hashlib.sha256(data).hexdigest())
        if record.manifest.done(path, key):
            continue
        size, sha = write_atomic(ctx.dest / path, data)
        record.manifest.record(path, key, [(path, size, sha)])
        record.wrote(path, size)
