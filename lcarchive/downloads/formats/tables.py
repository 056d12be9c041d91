"""What the tidy-table formats (Parquet, CSV) share: one table per stored shard of a group's
selected targets, one row per (target, cadence), written batch by batch under a temporary name."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from lcarchive import export
from lcarchive.downloads.context import (
    DownloadContext,
    GroupPlan,
    OutputFormat,
    RunRecord,
    Unit,
    off_loop,
    shard_rows,
    with_aliases,
)
from lcarchive.downloads.manifest import sha256_file, unit_key
from lcarchive.search import GroupSelection
from lcarchive.store import gather

__all__ = ["TableFormat", "write_table_unit"]


class TableFormat(OutputFormat):
    """A tidy table per shard: ``<observation>/<observation>-<shard>.<suffix>``."""

    per = "shard"

    def schema_metadata(self, ctx: DownloadContext, plan: GroupPlan) -> Any:
        """What the format keeps of the archive in each table (None: nothing)."""
        return None

    def prepare(self, table: Any, plan: GroupPlan, metadata: Any) -> Any:
        """A batch's Arrow table as the format writes it."""
        return table

    def open_writer(self, path: Any, schema: Any) -> Any:
        """A writer of tables of this schema to ``path`` (``write_table``, ``close``)."""
        raise NotImplementedError

    def units(self, plan_spec: list, group: GroupSelection, ident: dict, shas: list[str], reader: Any) -> list[Unit]:
        obs = group.observation
        rows_per_shard = shard_rows(reader)
        by_shard: dict[int, list[int]] = {}
        for i, row in enumerate(group.rows.tolist()):
            by_shard.setdefault(row // rows_per_shard, []).append(i)
        units = []
        for shard, positions in by_shard.items():
            path = f"{obs}/{obs}-{shard:05d}.{self.suffix}"
            key = unit_key(plan_spec, [(int(group.targets[i]), shas[i]) for i in positions])
            units.append(Unit(path, key, positions, [path]))
        return units

    async def write(
        self, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, todo: list[Unit], units_in_flight: asyncio.Semaphore
    ) -> None:
        async def table(unit: Unit) -> None:
            async with units_in_flight:
                await write_table_unit(self, ctx, record, plan, unit, batch=64)

        await gather(*(table(u) for u in todo))


async def write_table_unit(
    fmt: TableFormat, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, unit: Unit, batch: int
) -> None:
    """Write one tidy table in the format ``fmt`` (the download's, ``ctx.format``) of a unit's
    targets: one row per (target, cadence), read ``batch`` targets at a time so memory stays bounded."""
    group, reader, bulk, names, extra, aliases = plan.group, plan.reader, plan.bulk, plan.names, plan.extra, plan.aliases
    path = ctx.dest / unit.paths[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    metadata = fmt.schema_metadata(ctx, plan)
    attrs = {**plan.attrs, **{name: plan.attrs.get(variable, {}) for name, variable in aliases.items()}}
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
            table = await off_loop(  # off the event loop, which goes on fetching
                export.tidy_table,
                group.observation,
                group.targets[positions],
                values,
                reader.cadenceno,
                attrs,
                extra,
                group.time_range,
            )
            table = fmt.prepare(table, plan, metadata)
            if writer is None:
                writer = fmt.open_writer(partial, table.schema)
            await off_loop(writer.write_table, table)
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
    sha = await off_loop(sha256_file, path)
    size = path.stat().st_size
    record.manifest.record(
        unit.name,
        unit.key,
        [(unit.paths[0], size, sha)],
        observation=group.observation,
        targets=[int(group.targets[p]) for p in unit.positions],
        units={n: str(attrs.get(n, {}).get("units", "")) for n in [*export.CORE_COLUMNS, *extra]},
    )
    record.wrote(unit.name, size)
    record.advance(len(unit.positions))
