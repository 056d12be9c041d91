"""``download --format hdf5``: ``<observation>/<target>.h5``, one SkyPortal photometric series per
target and observation (:func:`lcarchive.export.skyportal_series`); analysis tables in HDF5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lcarchive import export
from lcarchive.downloads.analyses import astropy_table
from lcarchive.downloads.context import DownloadContext, GroupPlan, Unit
from lcarchive.downloads.formats.per_target import PerTargetFormat
from lcarchive.errors import LcarchiveError

__all__ = ["Hdf5Format"]

_METADATA = (
    "ra",
    "dec",
    "camera",
    "ccd",
    "module",
    "output",
    "source_file",
    "source_sha256",
    "target_catalog",
    "target_designation",
)
"""Per-target variables a series' metadata takes."""


class Hdf5Format(PerTargetFormat):
    """SkyPortal photometric series in HDF5, one unit (file) per target."""

    name = "hdf5"
    summary = "SkyPortal photometric series"
    suffix = "h5"
    analysis_suffix = "h5"
    batch = 64

    def more_variables(self, reader: Any, series: list[str], read: list[str]) -> list[str]:
        meta = [n for n in _METADATA if n in reader.arrays]
        timecorr = ["timecorr"] if "timecorr" in series and "timecorr" not in read else []  # for mjd (UTC, as observed)
        return [*timecorr, *meta]

    def paths(self, observation: str, target: int, source_file: str) -> list[str]:
        return [f"{observation}/{target}.h5"]

    def blobs(self, ctx: DownloadContext, plan: GroupPlan, unit: Unit, row: dict[str, Any], target: int) -> list[bytes]:
        frame, metadata = export.skyportal_series(
            plan.group.observation, target, row, plan.reader.attrs, plan.extra, plan.group.time_range, _exp_time(ctx, plan.reader)
        )
        return [export.skyportal_hdf5_bytes(frame, metadata)]

    def write_analysis(self, table: Any, entry: dict, path: Path) -> None:
        out = astropy_table(table)
        out.meta["lcarchive_analysis"] = json.dumps(entry)
        out.write(path, format="hdf5", path=entry["method"], serialize_meta=True, overwrite=True)


def _exp_time(ctx: DownloadContext, reader: Any) -> float | None:
    try:
        return ctx.archive.catalog.product(reader.attrs["product"]).cadence_seconds
    except (KeyError, LcarchiveError):
        return None
