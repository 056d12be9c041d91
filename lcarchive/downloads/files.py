"""Outputs of one file per target (FITS rebuilt by :mod:`lcarchive.export`, SkyPortal HDF5) and of
one table per shard (Parquet, CSV)."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import numpy as np

from lcarchive import export
from lcarchive.errors import ExportError, LcarchiveError
from lcarchive.downloads.job import Job, Unit, with_aliases
from lcarchive.downloads.manifest import sha256_file, write_atomic
from lcarchive.search import GroupSelection
from lcarchive.store import BulkReader

__all__ = ["write_table_unit", "write_target_files"]


def _row_values(values: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, array in values.items():
        value = array[k]
        out[name] = str(value) if array.dtype == object else value
    return out


def write_target_files(job: Job, group: GroupSelection, reader: Any, attrs: dict, extra: list[str],
                        units: list[Unit], positions: list[int], values: dict[str, np.ndarray]) -> None:
    """Write one file per target (FITS rebuilt from the stored headers and columns, or a
    SkyPortal HDF5 series) for the given units of a group, from values already read.

    ``values`` maps variable names to arrays of shape (len(positions), ...), one row per unit.

    Raises
    ------
    lcarchive.ExportError
        If a light curve cannot be written in the format (a unit's own error, recorded).
    """
    obs = group.observation
    exp_time = _exp_time(job, reader)
    for k, (unit, position) in enumerate(zip(units, positions, strict=True)):
        row = _row_values(values, k)
        target = int(group.targets[position])
        if not export.cadence_mask(row, group.time_range).any():
            job.report.empty.append((obs, target))
            job.manifest.nothing_to_write(unit.name, "no cadence in the time range")
            job.advance(1)
            continue
        if job.format == "fits":
            columns = None if job.columns is None or job.columns == ["all"] else list(job.columns)
            try:
                blobs = export.source_file_bytes(row, reader.cadenceno, attrs, columns, group.time_range)
            except ExportError as exc:  # e.g. a SkyPortal series or a table: no source file to rebuild
                job.report.unwritable.append((obs, target, str(exc)))
                job.manifest.nothing_to_write(unit.name, str(exc))
                job.advance(1)
                continue
            if len(blobs) != len(unit.paths):  # segments whose file names were not kept apart
                unit.paths = [f"{obs}/{obs}-{target}-{i}.fits" for i in range(len(blobs))] if len(blobs) > 1 else unit.paths[:1]
        else:
            frame, metadata = export.skyportal_series(obs, target, row, reader.attrs, extra, group.time_range, exp_time)
            blobs = [export.skyportal_hdf5_bytes(frame, metadata)]
        files = []
        for path, blob in zip(unit.paths, blobs, strict=True):
            size, sha = write_atomic(job.dest / path, blob)
            files.append((path, size, sha))
        info: dict[str, Any] = {"observation": obs, "targets": [target]}
        if job.format == "fits":
            source = str(row.get("source_sha256", "")).split("\n")
            info["identical_to_source"] = [sha == s for (_, _, sha), s in zip(files, source, strict=False)]
        job.manifest.record(unit.name, unit.key, files, **info)
        job.wrote(unit.name, sum(f[1] for f in files))
        job.advance(1)


def _exp_time(job: Job, reader: Any) -> float | None:
    try:
        return job.archive.catalog.product(reader.attrs["product"]).cadence_seconds
    except (KeyError, LcarchiveError):
        return None


async def write_table_unit(job: Job, group: GroupSelection, reader: Any, bulk: BulkReader, names: list[str],
                            extra: list[str], aliases: dict[str, str], attrs: dict, unit: Unit, batch: int) -> None:
    """Write one tidy table (Parquet or CSV) of a unit's targets: one row per (target, cadence),
    read ``batch`` targets at a time so memory stays bounded."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = job.dest / unit.paths[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    metadata = _table_metadata(job, group.observation, reader)
    attrs = {**attrs, **{name: attrs.get(variable, {}) for name, variable in aliases.items()}}
    writer = None
    batches = [unit.positions[start : start + batch] for start in range(0, len(unit.positions), batch)]

    def read(positions: list[int]) -> asyncio.Future:
        return asyncio.ensure_future(bulk.read_rows([int(group.rows[p]) for p in positions], names))

    pending = read(batches[0])
    try:
        for k, positions in enumerate(batches):
            values = with_aliases(await pending, aliases)
            if k + 1 < len(batches):  # the next batch's chunks arrive while this one is written
                pending = read(batches[k + 1])
            table = await asyncio.to_thread(  # off the event loop, which goes on fetching
                export.tidy_table, group.observation, group.targets[positions], values, reader.cadenceno, attrs, extra, group.time_range
            )
            if job.format == "parquet":
                described = export.parquet_schema_metadata(table.schema, {"observation": len(group.observation)})
                table = table.replace_schema_metadata({**metadata, **described})
                if writer is None:
                    # dictionary encoding only where it pays (the repeated IDs): trying it on the
                    # float columns costs more than it ever saves
                    writer = pq.ParquetWriter(partial, table.schema, compression="zstd", compression_level=1,
                                              use_dictionary=["target", "observation"])
                await asyncio.to_thread(writer.write_table, table)
            else:
                table = _csv_ready(table)
                if writer is None:
                    writer = pacsv.CSVWriter(partial, table.schema, write_options=pacsv.WriteOptions(quoting_style="none"))
                await asyncio.to_thread(writer.write_table, table)
    except BaseException:
        if not pending.done():
            pending.cancel()
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    os.replace(partial, path)
    sha = await asyncio.to_thread(sha256_file, path)
    size = path.stat().st_size
    job.manifest.record(unit.name, unit.key, [(unit.paths[0], size, sha)], observation=group.observation,
                        targets=[int(group.targets[p]) for p in unit.positions],
                        units={n: str(attrs.get(n, {}).get("units", "")) for n in [*export.CORE_COLUMNS, *extra]})
    job.wrote(unit.name, size)
    job.advance(len(unit.positions))


def _csv_ready(table: Any) -> Any:
    """Floats as their shortest round-trip text (Arrow's CSV writer would print 16 digits,
    losing the last bit of some float64 time stamps)."""
    import pyarrow as pa

    columns = [c.cast(pa.string()) if pa.types.is_floating(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _table_metadata(job: Job, obs_id: str, reader: Any) -> dict[bytes, bytes]:
    catalog = job.archive.catalog
    entry = catalog.observation(obs_id).model_dump(mode="json")
    datasets = [d.model_dump(mode="json", exclude={"inputs"}) for d in catalog.datasets if d.observation == obs_id]
    info = {
        "source": job.archive.url,
        "observation": entry,
        "datasets": datasets,
        "group_attrs": {k: v for k, v in reader.attrs.items()},
    }
    return {b"lcarchive": json.dumps(info, default=str).encode()}
