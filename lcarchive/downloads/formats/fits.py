"""``download --format fits``: ``<observation>/<source file name>``, each light curve's source
product file rebuilt from the stored headers and columns (byte for byte when whole:
:func:`lcarchive.export.source_file_bytes`); analysis tables as FITS binary tables."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from lcarchive import export
from lcarchive.downloads.analyses import astropy_table
from lcarchive.downloads.context import DownloadContext, GroupPlan, Unit, per_target_names
from lcarchive.downloads.formats.per_target import PerTargetFormat, Unwritable
from lcarchive.errors import ExportError

__all__ = ["FitsFormat"]


class FitsFormat(PerTargetFormat):
    """Source product files, one unit per target (its files: several for a light curve delivered
    in segments)."""

    name = "fits"
    suffix = "fits"
    analysis_suffix = "fits"
    every_variable = True
    batch = 32

    def more_variables(self, reader: Any, series: list[str], read: list[str]) -> list[str]:
        return per_target_names(reader)

    def paths(self, observation: str, target: int, source_file: str) -> list[str]:
        return [f"{observation}/{n}" for n in export.fits_name({"source_file": source_file}, observation, target)]

    def blobs(self, ctx: DownloadContext, plan: GroupPlan, unit: Unit, row: dict[str, Any], target: int) -> list[bytes]:
        columns = None if ctx.columns is None or ctx.columns == ["all"] else list(ctx.columns)
        obs = plan.group.observation
        try:
            blobs = export.source_file_bytes(row, plan.reader.cadenceno, plan.attrs, columns, plan.group.time_range)
        except ExportError as exc:  # e.g. a SkyPortal series or a table: no source file to rebuild
            raise Unwritable(str(exc)) from exc
        if len(blobs) != len(unit.paths):  # segments whose file names were not kept apart
            unit.paths = [f"{obs}/{obs}-{target}-{i}.fits" for i in range(len(blobs))] if len(blobs) > 1 else unit.paths[:1]
        return blobs

    def record_info(self, row: dict[str, Any], files: list[tuple[str, int, str]]) -> dict[str, Any]:
        source = str(row.get("source_sha256", "")).split("\n")
        return {"identical_to_source": [sha == s for (_, _, sha), s in zip(files, source, strict=False)]}

    def write_analysis(self, table: Any, entry: dict, path: Path) -> None:
        out = astropy_table(table)
        out.meta["EXTNAME"] = entry["method"].upper()
        out.meta["ANALYSIS"] = entry["id"]  # its lineage: the archive's catalog entry of this ID
        out.meta["ARCHVER"] = entry.get("archive_version") or ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's notes on long keywords
            out.write(path, format="fits", overwrite=True)
