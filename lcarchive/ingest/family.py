"""What ingest writes into the groups of an observation family: a group's attributes made from a
light curve, and the target-index lines of groups written. The groups are read and written through
:class:`lcarchive.store.family.FamilyView` (downloads write their subsets of targets with it too).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive.catalog.index import group_rows
from lcarchive.formats import LightCurveFile
from lcarchive.layout import FORMAT_VERSION

__all__ = ["alias_facts", "group_attrs", "index_lines"]


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


def alias_facts(ds: xr.Dataset, group_id: str, rows: list[int] | None = None) -> pd.DataFrame:
    """What the alias table needs of a group's targets (all rows, or the given ones): their names
    (``"<catalog> <ID>"``, the catalog the group's ``target_catalog``), positions (deg), proper
    motions (mas/yr, from the stored PMRA/PMDEC in their own units: Kepler's and K2's arcsec/yr,
    TESS's mas/yr; NaN where none) and the second catalogs' IDs the headers give
    (``header_identifiers`` of ``catalog/aliases.json``): :func:`lcarchive.store.aliases.update_aliases`."""
    from astropy import units as u

    from lcarchive.aliases import alias_settings
    from lcarchive.catalog.content import static_catalog

    n = ds.sizes["target"]
    catalog = str(ds.attrs.get("target_catalog", "")) or static_catalog().mission(str(ds.attrs.get("mission"))).target_catalog
    nan = np.full(n, np.nan)

    def values(name: str) -> np.ndarray:
        if name not in ds or ds[name].dims != ("target",):
            return nan
        data = pd.to_numeric(pd.Series(np.asarray(ds[name].values).ravel()), errors="coerce").to_numpy(np.float64)
        return np.where(np.isfinite(data) & (np.abs(data) < 1e30), data, np.nan)

    def motion(name: str) -> np.ndarray:
        data = values(name)
        attrs = ds[name].attrs if name in ds else {}
        unit = str(attrs.get("units", ""))
        if not unit:  # the header card's comment: "[arcsec/yr] RA proper motion" (Kepler, K2), "[mas/yr] ..." (TESS)
            found = re.match(r"\s*\[([^\]]+)\]", str(attrs.get("description", "")))
            unit = found[1] if found else ""
        try:
            return (data * u.Unit(unit)).to_value(u.mas / u.yr) if unit else nan
        except (ValueError, u.UnitConversionError):
            return nan

    def text(name: str) -> list[str]:  # a per-target text variable ("" where it names nothing), as str
        if name not in ds.variables or ds[name].dims != ("target",):
            return [""] * n
        return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(ds[name].values).ravel()]

    # a target of another catalog than the mission's (a TGLC star with only a Gaia DR3 ID, an
    # asteroid) has its own catalog and designation beside its key (docs/format.md, targets)
    catalogs = [c or catalog for c in text("target_catalog")]
    idents = [d or str(int(t)) for d, t in zip(text("target_designation"), ds["target"].values, strict=True)]
    frame = pd.DataFrame(
        {
            "name": [f"{c} {i}" for c, i in zip(catalogs, idents, strict=True)],
            "catalog": catalogs,
            "observation": group_id,
            "ra": values("ra"),
            "dec": values("dec"),
            "pmra": motion("pmra"),
            "pmdec": motion("pmdec"),
        }
    )
    for rule in alias_settings()["header_identifiers"]:
        name = rule["variable"]
        if name in ds and ds[name].dims == ("target",):
            frame[name] = [str(v) for v in np.asarray(ds[name].values)]
    return frame if rows is None else frame.iloc[sorted(rows)].reset_index(drop=True)
