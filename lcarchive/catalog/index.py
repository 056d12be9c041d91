"""The target index: which observations hold a target, and at which row.

One Parquet table per archive, ``index/targets.parquet``, one line per (target,
observation group) with the group's row of the target and the target's ra/dec, so
that reading a target across its observations opens only the groups it is in.
Ingest updates it for the groups it writes; ``lcarchive catalog build`` rebuilds it.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "COLUMNS",
    "DEFAULTS",
    "INDEX_PATH",
    "MAGNITUDE_RANGE",
    "OMITTED_WHEN_DEFAULT",
    "group_rows",
    "merge_rows",
    "real_magnitudes",
]

INDEX_PATH = "index/targets.parquet"
COLUMNS = {
    "target": "int64",
    "observation": "string",
    "row": "int64",
    "ra": "float64",
    "dec": "float64",
    "mission": "string",
    "product": "string",
    "segment": "int64",
    "current": "bool",
    "n_cadences": "int64",
    "coverage": "float64",
    "magnitude": "float64",
    "camera": "int64",
    "ccd": "int64",
    "integrity": "string",
    "target_catalog": "string",
    "designation": "string",
}
"""Columns of an index line. ``magnitude`` is the target's TESSMAG (TESS) or KEPMAG (Kepler, K2),
mag, NaN if the product has none; ``camera`` and ``ccd`` are TESS's CAMERA and CCD, -1 elsewhere;
``integrity`` is the state of the light curve's input file (``sound``, ``no-checksums``,
``stale-cards``, ``damaged``: :mod:`lcarchive.formats.checksums`; newline-joined for a light curve
of several files; "" where it was stored before lcarchive recorded it). ``target_catalog`` is the
catalog of the line's target where it is not its mission's (``Gaia DR2``, ``Gaia DR3``, ``MPC``), ""
for the mission's (TIC, KIC, EPIC: every line of an archive written before other catalogs);
``designation`` is the target's designation where its catalog names targets by text (MPC: ``3I``,
``(11251)``; ``target`` is then its key, :func:`lcarchive.identifiers.designation_key`), else ""."""

DEFAULTS = {
    "n_cadences": -1,
    "coverage": np.nan,
    "magnitude": np.nan,
    "camera": -1,
    "ccd": -1,
    "integrity": "",
    "target_catalog": "",
    "designation": "",
}
"""Values of the columns an index written by an earlier version lacks."""

OMITTED_WHEN_DEFAULT = ("target_catalog", "designation")
"""Columns a stored index text holds only when a line of it has a value other than its default: the
index of an archive whose targets are all of their missions' catalogs is stored as before these
columns existed, byte for byte."""


def group_rows(ds: xr.Dataset, obs_id: str) -> pd.DataFrame:
    """Index lines of one observation group (reads only its small per-target arrays)."""
    n = ds.sizes["target"]
    nan = np.full(n, np.nan)
    frame = pd.DataFrame(
        {
            "target": ds["target"].values.astype(np.int64),
            "observation": obs_id,
            "row": np.arange(n, dtype=np.int64),
            "ra": ds["ra"].values.astype(np.float64) if "ra" in ds else nan,
            "dec": ds["dec"].values.astype(np.float64) if "dec" in ds else nan,
            "mission": ds.attrs.get("mission", ""),
            "product": ds.attrs.get("product", ""),
            "segment": int(ds.attrs.get("segment", -1)),
            "current": "superseded_release" not in ds.attrs,
            "n_cadences": ds["n_rows"].values.astype(np.int64) if "n_rows" in ds else np.full(n, -1, dtype=np.int64),
            "coverage": ds["coverage"].values.astype(np.float64) if "coverage" in ds else nan,
            "magnitude": real_magnitudes(_per_target(ds, ("tessmag", "kepmag"), np.float64, np.nan)),
            "camera": _per_target(ds, ("camera",), np.int64, -1),
            "ccd": _per_target(ds, ("ccd",), np.int64, -1),
            "integrity": [str(v) for v in ds["integrity"].values] if "integrity" in ds else [""] * n,
            "target_catalog": _strings(ds, "target_catalog"),
            "designation": _strings(ds, "target_designation"),
        }
    )
    return frame.astype(COLUMNS)


def _strings(ds: xr.Dataset, name: str) -> list[str]:
    """A per-target string variable of a group as text ("" where absent: the group has none)."""
    if name not in ds or ds[name].dims != ("target",):
        return [""] * ds.sizes["target"]
    return [str(v) for v in ds[name].values]


MAGNITUDE_RANGE = (-30.0, 50.0)
"""Magnitudes outside this range are a file's sentinel for "unknown" (TESSMAG = 999.0, 99.0 or
-99.0 in some HLSP headers), not a star's brightness: they become NaN in the target index."""


def real_magnitudes(values: np.ndarray) -> np.ndarray:
    """``values`` with the sentinels outside :data:`MAGNITUDE_RANGE` as NaN (mag)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = MAGNITUDE_RANGE
    return np.where((values >= low) & (values <= high), values, np.nan)


def _per_target(ds: xr.Dataset, names: tuple[str, ...], dtype: type, missing: float) -> np.ndarray:
    """The first of some per-target variables the group has, as ``dtype`` (``missing`` where a value is
    not finite or absent)."""
    n = ds.sizes["target"]
    for name in names:
        if name in ds and ds[name].dims == ("target",):
            values = np.asarray(ds[name].values)
            if values.dtype.kind not in "iuf":
                values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
            values = values.astype(np.float64)
            if dtype is np.int64:  # integer variables store a fill value (INT_FILL) for "none"
                bad = ~np.isfinite(values) | (values < 0) | (values > 2**31)
                return np.where(bad, missing, values).astype(np.int64)
            return np.where(np.isfinite(values), values, missing)
    return np.full(n, missing, dtype=dtype)


def merge_rows(old: pd.DataFrame | None, new: list[pd.DataFrame], replaced: set[str]) -> pd.DataFrame:
    """Replace the lines of the groups in ``replaced`` by ``new``; sorted by target then observation."""
    parts = [] if old is None else [old[~old["observation"].isin(replaced)]]
    parts.extend(new)
    if not parts:
        return pd.DataFrame({k: pd.Series(dtype=v) for k, v in COLUMNS.items()})
    frame = pd.concat(parts, ignore_index=True).astype(COLUMNS)
    return frame.sort_values(["target", "observation"], kind="stable").reset_index(drop=True)


def to_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of the index (pyarrow, zstd)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, compression="zstd")
    return buf.getvalue()


def from_bytes(data: bytes) -> pd.DataFrame:
    """Read index bytes written by :func:`to_bytes` (an index written before ``n_cadences``,
    ``coverage`` or ``integrity`` existed gets :data:`DEFAULTS` there)."""
    frame = pd.read_parquet(io.BytesIO(data))
    for name, value in DEFAULTS.items():
        if name not in frame:
            frame[name] = value
    return frame.astype(COLUMNS)
