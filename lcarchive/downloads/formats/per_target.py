"""What the formats of one file per target (FITS, HDF5) share: a unit per target, batches of
neighbouring targets read at once, each target's file written under a temporary name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lcarchive import export
from lcarchive.downloads.context import DownloadContext, GroupPlan, OutputFormat, RunRecord, Unit, off_loop, with_aliases
from lcarchive.downloads.manifest import unit_key, write_atomic
from lcarchive.search import GroupSelection
from lcarchive.store import gather

__all__ = ["PerTargetFormat", "Unwritable", "write_target_files"]


class Unwritable(Exception):
    """A light curve the format cannot hold (recorded as such; nothing written for it)."""


class PerTargetFormat(OutputFormat):
    """A format of one file (or a few: FITS segments) per target and observation.

    Attributes
    ----------
    batch : int
        Targets read at once (neighbouring targets share shards).
    """

    per = "target"
    batch: ClassVar[int] = 64

    def paths(self, observation: str, target: int, source_file: str) -> list[str]:
        """The files of a target's unit, relative to the download folder."""
        raise NotImplementedError

    def blobs(self, ctx: DownloadContext, plan: GroupPlan, unit: Unit, row: dict[str, Any], target: int) -> list[bytes]:
        """The bytes of a target's files, one per path of ``unit`` (whose paths it may change).

        Raises
        ------
        Unwritable
            If the format cannot hold this light curve.
        """
        raise NotImplementedError

    def record_info(self, row: dict[str, Any], files: list[tuple[str, int, str]]) -> dict[str, Any]:
        """What the manifest notes of a written unit besides its observation and target."""
        return {}

    def units(self, plan_spec: list, group: GroupSelection, ident: dict, shas: list[str], reader: Any) -> list[Unit]:
        units = []
        for i, (target, sha) in enumerate(zip(group.targets.tolist(), shas, strict=True)):
            paths = self.paths(group.observation, target, ident["source_file"][i])
            units.append(Unit(paths[0], unit_key(plan_spec, target, sha), [i], paths))
        return units

    async def write(
        self, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, todo: list[Unit], units_in_flight: asyncio.Semaphore
    ) -> None:
        """Read batches of neighbouring targets, write each target's file."""
        batches = [todo[i : i + self.batch] for i in range(0, len(todo), self.batch)]

        async def per_batch(units_batch: list[Unit]) -> None:
            async with units_in_flight:
                positions = [u.positions[0] for u in units_batch]
                rows = [int(plan.group.rows[p]) for p in positions]
                values = with_aliases(await plan.bulk.read_rows(rows, plan.names), plan.aliases)
                await off_loop(write_target_files, self, ctx, record, plan, units_batch, positions, values)

        await gather(*(per_batch(b) for b in batches))


def _row_values(values: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, array in values.items():
        value = array[k]
        out[name] = str(value) if array.dtype == object and array.ndim == 1 else value  # a text column stays an array
    return out


def write_target_files(
    fmt: PerTargetFormat,
    ctx: DownloadContext,
    record: RunRecord,
    plan: GroupPlan,
    units: list[Unit],
    positions: list[int],
    values: dict[str, np.ndarray],
) -> None:
    """Write one file per target in the format ``fmt`` (the download's, ``ctx.format``) for the
    given units of a group, from values already read.

    ``values`` maps variable names to arrays of shape (len(positions), ...), one row per unit.

    Raises
    ------
    lcarchive.ExportError
        If a light curve cannot be written in the format (a unit's own error, recorded).
    """
    group = plan.group
    obs = group.observation
    for k, (unit, position) in enumerate(zip(units, positions, strict=True)):
        row = _row_values(values, k)
        target = int(group.targets[position])
        if not export.cadence_mask(row, group.time_range).any():
            record.report.empty.append((obs, target))
            record.manifest.nothing_to_write(unit.name, "no cadence in the time range")
            record.advance(1)
            continue
        try:
            blobs = fmt.blobs(ctx, plan, unit, row, target)
        except Unwritable as exc:
            record.report.unwritable.append((obs, target, str(exc)))
            record.manifest.nothing_to_write(unit.name, str(exc))
            record.advance(1)
            continue
        files = []
        for path, blob in zip(unit.paths, blobs, strict=True):
            size, sha = write_atomic(Path(ctx.dest) / path, blob)
            files.append((path, size, sha))
        record.manifest.record(unit.name, unit.key, files, observation=obs, targets=[target], **fmt.record_info(row, files))
        record.wrote(unit.name, sum(f[1] for f in files))
        record.advance(1)
