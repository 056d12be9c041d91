"""``download --format csv``: ``<observation>/<observation>-<shard>.csv``, one tidy table per shard
of the source group's targets, floats as their shortest round-trip text; analysis tables in CSV
(no metadata: the manifest names the analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lcarchive.downloads.context import GroupPlan
from lcarchive.downloads.formats.tables import TableFormat

__all__ = ["CsvFormat"]


class CsvFormat(TableFormat):
    """Tidy CSV tables."""

    name = "csv"
    suffix = "csv"
    analysis_suffix = "csv"

    def prepare(self, table: Any, plan: GroupPlan, metadata: Any) -> Any:
        """Floats as their shortest round-trip text (Arrow's CSV writer would print 16 digits,
        losing the last bit of some float64 time stamps)."""
        import pyarrow as pa

        columns = [c.cast(pa.string()) if pa.types.is_floating(c.type) else c for c in table.columns]
        return pa.Table.from_arrays(columns, names=table.column_names)

    def open_writer(self, path: Any, schema: Any) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(quoting_style="none"))

    def write_analysis(self, table: Any, entry: dict, path: Path) -> None:
        table.to_csv(path, index=False)
