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

__all__ = ["INDEX_PATH", "COLUMNS", "group_rows", "merge_rows"]

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
}


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
        }
    )
    return frame.astype(COLUMNS)


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
    """Read index bytes written by :func:`to_bytes` (an index written before ``n_cadences`` and
    ``coverage`` existed gets -1 and NaN there)."""
    frame = pd.read_parquet(io.BytesIO(data))
    if "n_cadences" not in frame:
        frame["n_cadences"] = -1
    if "coverage" not in frame:
        frame["coverage"] = np.nan
    return frame.astype(COLUMNS)
