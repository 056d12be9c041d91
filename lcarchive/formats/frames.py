"""Light curves from tables of one row per cadence (SkyPortal photometric series, CSV/Parquet).

Shared by :mod:`lcarchive.formats.skyportal` and :mod:`lcarchive.formats.tables`: target IDs written with a
catalog prefix (``TIC 261136679``), time stamps converted to the mission's time system, cadence
numbers derived from the time stamps, and a ``LightCurveFile`` assembled from a pandas DataFrame.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lcarchive.catalog.models import Mission, MissionCatalog, Product
from lcarchive.errors import CorruptFileError, UnrecognizedProductError
from lcarchive.formats.cadences import derive_cadences
from lcarchive.formats.record import CORE_VARIABLES, Column, LightCurveFile, check_rows
from lcarchive.identifiers import parse_target

__all__ = ["MJD_ZERO_JD", "FrameLightCurve", "build_light_curve", "mission_time", "target_id"]

MJD_ZERO_JD = 2400000.5
"""Julian date of MJD 0."""

RESERVED = frozenset(
    {
        "target",
        "cadenceno",
        "source_file",
        "source_sha256",
        "source_size",
        "data_release",
        "pipeline_version",
        "file_date",
        "ingest_notes",
        "n_rows",
        "tstart",
        "tstop",
        "product_version",
        "coverage",
    }
)
"""Names a table column cannot take as a variable (coordinates and provenance of a group)."""


def target_id(raw: Any, catalog: MissionCatalog, source: str, what: str) -> int:
    """See :func:`lcarchive.identifiers.parse_target`."""
    return parse_target(raw, catalog, source, what)


def mission_time(values: np.ndarray, time_format: str, mission: Mission) -> tuple[np.ndarray, str | None]:
    """Return time stamps in the mission's time system (BTJD, BKJD) and how they were converted.

    Parameters
    ----------
    values : numpy.ndarray, shape (n_rows,)
        Time stamps, days, barycentric (TDB).
    time_format : str
        ``"bjd"`` (full BJD_TDB), ``"mjd"`` (BJD_TDB - 2400000.5) or the mission's own format
        (``"btjd"`` for TESS, ``"bkjd"`` for Kepler and K2), case-insensitive.
    mission : Mission

    Returns
    -------
    (numpy.ndarray, str or None)
        The mission time, shape (n_rows,), float64 when converted (the values themselves when
        already in the mission's format), and the conversion (None when none).

    Raises
    ------
    ValueError
        Any other format (another mission's time, ``jd``...).
    """
    system = mission.time_system
    own = system.format_name.lower()
    fmt = time_format.strip().lower()
    if fmt == own:
        return values, None
    offsets = {"bjd": system.reference_epoch, "mjd": system.reference_epoch - MJD_ZERO_JD}
    if fmt not in offsets:
        raise ValueError(
            f"time format {time_format!r} is not {mission.name}'s: give {own!r} ({system.format_name}), 'bjd' or 'mjd'"
        )
    offset = offsets[fmt]
    return values.astype(np.float64) - offset, f"{fmt.upper()} - {offset!r} d"


@dataclass
class FrameLightCurve:
    """What a table reader knows of one light curve, to be assembled by :func:`build_light_curve`.

    Attributes
    ----------
    source : str
        Path or URL of the input.
    data : bytes
        The input's bytes (for its SHA-256 and size).
    product, mission, target_catalog
        Definitions the light curve belongs to.
    target : int
        TIC/KIC/EPIC ID.
    segment : int
        Sector, quarter or campaign.
    frame : pandas.DataFrame
        The light curve's rows, one per cadence.
    core : dict of str to str
        Variable (``time``, ``flux``, ``flux_err``, ``quality``, ``cadenceno``) -> column of ``frame``;
        ``time`` and ``flux`` required.
    time_format : str
        Format of the time column (see :func:`mission_time`).
    units : dict of str to str
        Column -> astropy unit string.
    descriptions : dict of str to str
        Column -> description.
    skip : list of str
        Columns not kept (the target and segment columns of a table).
    target_values : dict of str to (value, attrs)
        Per-target values.
    notes : dict of str to str
    pipeline_version : str or None
    label : str
        Infix of the observation ID.
    instruments : list of str
    """

    source: str
    data: bytes
    product: Product
    mission: Mission
    target_catalog: MissionCatalog
    target: int
    segment: int
    frame: Any
    core: dict[str, str]
    time_format: str
    units: Mapping[str, str] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    skip: list[str] = field(default_factory=list)
    target_values: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    pipeline_version: str | None = None
    label: str = ""
    instruments: list[str] = field(default_factory=list)


def _numeric(values: Any) -> tuple[np.ndarray | None, str | None]:
    """A pandas column as a numeric numpy array (bools as int8, nullable ints with gaps as float64), or None."""
    import pandas as pd

    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if values.isna().any():
            return values.astype("float64").to_numpy(), None
        return values.to_numpy(dtype=np.int8), "L"
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
        return None, None
    if isinstance(dtype, np.dtype):
        array = values.to_numpy()
        return array.astype(array.dtype.newbyteorder("="), copy=False), None
    numpy_dtype = np.dtype(dtype.numpy_dtype)  # pandas nullable Int64/Float64
    if values.isna().any():
        return values.to_numpy(dtype=np.float64, na_value=np.nan), None
    return values.to_numpy(dtype=numpy_dtype), None


def _integers(values: np.ndarray, what: str, source: str, dtype: type = np.int64) -> np.ndarray:
    """Integer values of a column (integral floats accepted), or a clear error."""
    if values.dtype.kind in "iu":
        if dtype is np.int32 and values.dtype.kind == "i" and values.dtype.itemsize < 4:
            values = values.view(f"u{values.dtype.itemsize}")  # flags in narrow signed ints: keep the bits
        info = np.iinfo(dtype)
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise UnrecognizedProductError(source, f"{what} holds values outside {np.dtype(dtype).name}")
        return values.astype(dtype)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if np.any(bad):
        raise UnrecognizedProductError(
            source, f"{what} holds {int(np.count_nonzero(bad))} value(s) that are not integers (missing or fractional)"
        )
    return values.astype(dtype)


def build_light_curve(lc: FrameLightCurve) -> LightCurveFile:
    """Assemble a ``LightCurveFile`` from a table's rows.

    ``time`` is the time column converted to the mission's time system (the column is kept
    under its own name when converted); ``flux``, ``flux_err`` and ``quality`` are the mapped
    columns (flux_err NaN and quality 0 when not given; quality as int32); every other numeric
    column is a variable named after it in lower case (``<name>_column`` when the name is taken).
    Cadence numbers come from the cadence column when its values are unique and increase with
    time, else from :func:`derive_cadences` (the column is then kept as a variable).

    Raises
    ------
    CorruptFileError, UnrecognizedProductError
        No rows, unusable time stamps, quality or cadence values that are not integers.
    """
    frame, source = lc.frame, lc.source
    n = len(frame)
    if n == 0:
        raise CorruptFileError(source, "no rows")
    role = {column: var for var, column in lc.core.items()}
    columns: dict[str, Column] = {}
    dropped: list[str] = []
    taken = set(RESERVED) | set(lc.target_values) | set(CORE_VARIABLES)
    for name in frame.columns:
        name = str(name)
        if name in lc.skip:
            continue
        values, fits_format = _numeric(frame[name])
        if values is None or values.ndim != 1:
            if name in role:
                raise UnrecognizedProductError(source, f"column {name!r} ({role[name]}) is not numeric")
            dropped.append(name)
            continue
        var = role.get(name)
        unit = lc.units.get(name) or ("d" if var == "time" else None)
        description = lc.descriptions.get(name, f"column {name!r} of the input")
        if var == "time":
            converted, how = mission_time(values, lc.time_format, lc.mission)
            if how is None:
                columns["time"] = Column("time", name, values, "d", None, description)
                continue
            columns["time"] = Column(
                "time",
                "",
                converted,
                "d",
                None,
                f"{description}, {lc.time_format.upper()} converted to {lc.mission.time_system.format_name}: {how}",
            )
            var = None  # and the column itself below, under its own name
        elif var == "quality":
            columns["quality"] = Column(
                "quality",
                name,
                _integers(values, f"quality column {name!r}", source, np.int32),
                unit,
                None,
                description,
                "",
                fits_format,
            )
            continue
        elif var is not None:
            columns[var] = Column(var, name, values, unit, None, description, "", fits_format)
            continue
        base = re.sub(r"[^0-9a-z_]+", "_", name.strip().lower()).strip("_") or "column"
        own = base if base not in taken and base not in columns else f"{base}_column"
        k = 2
        while own in columns or own in taken:
            own, k = f"{base}_column{k}", k + 1
        columns[own] = Column(own, name, values, unit, None, description, "", fits_format)
    if "time" not in columns or "flux" not in columns:
        missing = [v for v in ("time", "flux") if v not in columns]
        raise UnrecognizedProductError(source, f"no {' and no '.join(missing)} column")
    flux = columns["flux"]
    if "flux_err" not in columns:
        columns["flux_err"] = Column(
            "flux_err",
            "",
            np.full(n, np.nan, dtype=flux.data.dtype if flux.data.dtype.kind == "f" else np.float64),
            flux.units,
            None,
            "no error column in the input: NaN",
        )
    if "quality" not in columns:
        columns["quality"] = Column(
            "quality", "", np.zeros(n, dtype=np.int32), None, None, "no quality column in the input: 0 (no flag) on every cadence"
        )
    time = columns["time"].data
    cadence = columns.pop("cadenceno", None)
    notes = dict(lc.notes)
    cadenceno = None
    if cadence is not None:
        values = _integers(cadence.data, f"cadence column {cadence.source!r}", source)
        finite = np.isfinite(time)
        order = np.argsort(values, kind="stable")
        if np.unique(values).size == values.size and np.all(np.diff(time[order][finite[order]]) > 0):
            cadenceno = values
        else:
            kept = cadence.source.lower() if cadence.source.lower() not in columns else f"{cadence.source.lower()}_column"
            columns[kept] = cadence
            notes["cadenceno_column"] = f"column {cadence.source!r} is not unique and increasing in time: kept as {kept}"
    if cadenceno is None:
        cadenceno, how = derive_cadences(time, source)
        notes["cadenceno"] = how
    check_rows(time, cadenceno, source)
    if dropped:
        notes["dropped_columns"] = ", ".join(dropped)
    return LightCurveFile(
        source=source,
        sha256=hashlib.sha256(lc.data).hexdigest(),
        size=len(lc.data),
        product=lc.product,
        mission=lc.mission,
        target_catalog=lc.target_catalog,
        target=lc.target,
        segment=lc.segment,
        cadenceno=cadenceno,
        columns=columns,
        target_values=dict(lc.target_values),
        headers={},
        images={},
        data_release=None,
        pipeline_version=lc.pipeline_version,
        file_date=None,
        instruments=list(lc.instruments),
        notes=notes,
        label=lc.label,
    )
