"""``download --format parquet``: ``<observation>/<observation>-<shard>.parquet``, one tidy table
per shard of the source group's targets (``pandas.read_parquet(DEST)`` reads them all as one
table), the archive's catalog entries in each file's metadata; analysis tables in Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lcarchive import export
from lcarchive.downloads.analyses import RESULT_UNITS
from lcarchive.downloads.context import DownloadContext, GroupPlan
from lcarchive.downloads.formats.tables import TableFormat

__all__ = ["ParquetFormat", "write_parquet_analysis"]


class ParquetFormat(TableFormat):
    """Tidy Parquet tables, zstd-compressed."""

    name = "parquet"
    suffix = "parquet"
    analysis_suffix = "parquet"

    def schema_metadata(self, ctx: DownloadContext, plan: GroupPlan) -> dict[bytes, bytes]:
        catalog = ctx.archive.catalog
        obs_id = plan.group.observation
        entry = catalog.observation(obs_id).model_dump(mode="json")
        datasets = [d.model_dump(mode="json", exclude={"inputs"}) for d in catalog.datasets if d.observation == obs_id]
        info = {
            "source": ctx.archive.url,
            "observation": entry,
            "datasets": datasets,
            "group_attrs": dict(plan.reader.attrs),
        }
        return {b"lcarchive": json.dumps(info, default=str).encode()}

    def prepare(self, table: Any, plan: GroupPlan, metadata: Any) -> Any:
        described = export.parquet_schema_metadata(table.schema, {"observation": len(plan.group.observation)})
        return table.replace_schema_metadata({**metadata, **described})

    def open_writer(self, path: Any, schema: Any) -> Any:
        import pyarrow.parquet as pq

        # dictionary encoding only where it pays (the repeated IDs): trying it on the float
        # columns costs more than it ever saves
        return pq.ParquetWriter(path, schema, compression="zstd", compression_level=1, use_dictionary=["target", "observation"])

    def write_analysis(self, table: Any, entry: dict, path: Path) -> None:
        write_parquet_analysis(table, entry, path)


def write_parquet_analysis(table: Any, entry: dict, path: Path) -> None:
    """An analysis table in Parquet, its catalog entry and the results' units in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = {b"lcarchive_analysis": json.dumps(entry).encode(), b"units": json.dumps(RESULT_UNITS).encode()}
    pq.write_table(arrow.replace_schema_metadata(meta), path, compression="zstd")
