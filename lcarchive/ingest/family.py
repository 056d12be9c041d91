"""What ingest writes into the groups of an observation family: a group's attributes made from a
light curve, and the target-index lines of groups written. The groups are read and written through
:class:`lcarchive.store.family.FamilyView` (downloads write their subsets of targets with it too).
"""

from __future__ import annotations

import json

import pandas as pd
import xarray as xr

from lcarchive.catalog.index import group_rows
from lcarchive.formats import LightCurveFile
from lcarchive.layout import FORMAT_VERSION

__all__ = ["group_attrs", "index_lines"]


def group_attrs(lc: LightCurveFile, obs_id: str, **extra: object) -> dict:
    """The attributes of an observation group made for a light curve of it (``docs/format.md``)."""
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
        "target_catalog": lc.mission.target_catalog,
        **({"label": lc.label} if lc.label else {}),
        **derived,
        **extra,
    }


def index_lines(ds: xr.Dataset, group_id: str, rows: list[int] | None = None) -> pd.DataFrame:
    """Target-index lines of a group (all rows, or the given ones): columns of
    :data:`lcarchive.catalog.index.COLUMNS`."""
    frame = group_rows(ds, group_id)
    return frame if rows is None else frame.iloc[sorted(rows)].reset_index(drop=True)
