"""Read CSV and Parquet tables of light curves, with a column mapping (a table map).

A plain table says nothing of its mission, targets or time system, so it is read with a
*table map* given at ingest (``lcarchive ingest ARCHIVE t.csv --table-map map.json`` or
``Archive.ingest(..., table_map={...})``)::

    {
      "mission": "tess",                       required: tess, kepler or k2
      "label": "mypipe",                       optional: observation tess-table-mypipe-s0014
      "target": "tic_id",                      the column of TIC/KIC/EPIC IDs ...
      "target_id": 261136679,                  ... or one ID for the whole file
      "segment": 14,                           one sector/quarter/campaign for the file ...
      "segment_column": "sector",              ... or the column giving it per row
      "time": "btjd",                          required: the time column
      "time_format": "btjd",                   btjd (TESS) / bkjd (Kepler, K2), bjd or mjd
      "cadenceno": "cadence",                  optional: cadence numbers (else derived)
      "flux": "pdcsap_flux",                   required
      "flux_err": "pdcsap_flux_err",           optional (else NaN)
      "quality": "quality",                    optional (else 0)
      "units": {"pdcsap_flux": "electron / s"} optional: column -> astropy unit
    }

A table may hold many targets and segments: one light curve per (target, segment), each
from its rows in the file's order. Time stamps are read as barycentric TDB; ``bjd`` and
``mjd`` are converted to the mission's time (BTJD = BJD - 2457000, BKJD = BJD - 2454833),
the column itself kept. Every other numeric column is kept as a variable. The product is the
mission's ``table`` product (``catalog/products/*-table.json``).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lcarchive.catalog.content import static_catalog
from lcarchive.errors import BadInputError, CorruptFileError, InvalidTargetError, UnrecognizedProductError
from lcarchive.formats.frames import FrameLightCurve, build_light_curve, mission_time, target_id
from lcarchive.formats.record import LightCurveFile
from lcarchive.formats.source import read_source
from lcarchive.identifiers import check_segment

__all__ = ["TABLE_SUFFIXES", "TableMap", "is_table", "load_table_map", "parse_table", "read_csv_exact", "read_table"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
"""Names of the inputs read as tables (given explicitly: a directory's tables are not searched)."""


class TableMap(BaseModel):
    """How a CSV/Parquet table gives light curves: which columns are what, and its mission.

    Column names are matched exactly, else case-insensitively.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mission: str = Field(description="Mission of the light curves: 'tess', 'kepler' or 'k2'.")
    label: str = Field(
        default="",
        description="Short name of the table's pipeline, in the observation ID: '<mission>-table-<label>-s0014' "
        "('' or 'table': '<mission>-table-s0014'). Lower-case letters, digits, '_' and '-'.",
    )
    target: str | None = Field(default=None, description="Column of TIC/KIC/EPIC IDs (numbers, or text like 'TIC 123').")
    target_id: int | str | None = Field(default=None, description="One TIC/KIC/EPIC ID for the whole file.")
    segment: int | None = Field(default=None, ge=0, description="One sector/quarter/campaign for the whole file.")
    segment_column: str | None = Field(default=None, description="Column of sectors/quarters/campaigns.")
    time: str = Field(description="Column of time stamps, days.")
    time_format: str | None = Field(
        default=None,
        description="'btjd' (TESS) or 'bkjd' (Kepler, K2): the mission's time; 'bjd': BJD_TDB; 'mjd': BJD_TDB - "
        "2400000.5. Default: the mission's time.",
    )
    cadenceno: str | None = Field(default=None, description="Column of cadence numbers; none: derived from the time stamps.")
    flux: str = Field(description="Column of the flux (or magnitude).")
    flux_err: str | None = Field(default=None, description="Column of the flux error; none: NaN.")
    quality: str | None = Field(default=None, description="Column of quality flags (integers); none: 0.")
    units: dict[str, str] = Field(default_factory=dict, description="Column -> astropy unit string.")

    @model_validator(mode="after")
    def _consistent(self) -> TableMap:
        catalog = static_catalog()
        missions = [m.name for m in catalog.missions]
        if self.mission not in missions:
            raise ValueError(f"mission {self.mission!r} is not one of {', '.join(missions)}")
        mission = catalog.mission(self.mission)
        if self.label and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", self.label):
            raise ValueError(
                f"label {self.label!r}: up to 40 lower-case letters, digits, '_' and '-', starting with a letter or digit"
            )
        if (self.target is None) == (self.target_id is None):
            raise ValueError("give either target (a column of IDs) or target_id (one ID for the file)")
        if (self.segment is None) == (self.segment_column is None):
            raise ValueError(f"give either segment (one {mission.segment_kind} for the file) or segment_column")
        if self.target_id is not None:
            target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
            try:
                target_id(self.target_id, target_catalog, "table map", "target_id")
            except BadInputError as exc:
                raise ValueError(exc.reason) from None
        try:
            mission_time(np.zeros(0), self.time_format_name, mission)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        from astropy import units as u

        for column, unit in self.units.items():
            try:
                u.Unit(unit, parse_strict="raise")
            except (ValueError, TypeError):
                raise ValueError(f"units[{column!r}] = {unit!r} is not an astropy unit") from None
        return self

    @property
    def time_format_name(self) -> str:
        """The time format, the mission's own when not given (``btjd``, ``bkjd``)."""
        if self.time_format:
            return self.time_format.lower()
        return static_catalog().mission(self.mission).time_system.format_name.lower()

    @property
    def observation_label(self) -> str:
        """The observation ID infix ('' for the default label 'table')."""
        return "" if self.label in ("", "table") else self.label


def load_table_map(value: Any, source: str = "table map") -> TableMap:
    """Return a table map from a dict, a JSON text, or the path of a JSON file.

    Parameters
    ----------
    value : TableMap, dict, str or os.PathLike
        The map; a string starting with ``{`` is JSON, any other string a file path.
    source : str
        How the map was given, named in errors (``--table-map map.json``).

    Raises
    ------
    BadInputError
        Unreadable file, invalid JSON, unknown keys, missing or contradictory keys, an unknown
        mission, time format or unit.
    """
    if isinstance(value, TableMap):
        return value
    if isinstance(value, str | Path) and not str(value).lstrip().startswith("{"):
        path = Path(value)
        source = f"{source} {path}" if str(path) not in source else source
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(source, f"cannot be read: {exc.strerror or exc}") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise BadInputError(source, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadInputError(source, "a table map is a JSON object (mission, target or target_id, time, flux...)")
    try:
        return TableMap.model_validate(value)
    except ValidationError as exc:
        raise BadInputError(source, _reasons(exc)) from None


def _reasons(exc: ValidationError) -> str:
    keys = ", ".join(TableMap.model_fields)
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            out.append(f"unknown key {where!r} (keys: {keys})")
        elif error["type"] == "missing":
            out.append(f"{where} is required")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            out.append(f"{where}: {message}" if where else message)
    return "; ".join(out)


def is_table(source: str) -> bool:
    """True if the input's name says it is a CSV or Parquet table."""
    return source.lower().rstrip("/").endswith(TABLE_SUFFIXES)


def read_table(source: str, table_map: TableMap, storage_options: dict | None = None) -> list[LightCurveFile]:
    """Read the light curves of a CSV/Parquet table from a local path or any fsspec URL.

    Parameters
    ----------
    source : str
        Path or URL of a ``.csv`` (``.csv.gz``) or ``.parquet`` file.
    table_map : TableMap
    storage_options : dict, optional
        Passed to fsspec for URLs.

    Returns
    -------
    list of LightCurveFile
        One per (target, segment), in order of first appearance.

    Raises
    ------
    CorruptFileError
        Missing, empty or unreadable file.
    UnrecognizedProductError
        Columns of the map missing from the table, or of unusable values.
    InvalidTargetError
        IDs that are not of the mission's catalog.
    """
    return parse_table(read_source(source, storage_options, table=True), source, table_map)


def _frame(data: bytes, source: str) -> Any:
    import pandas as pd

    if not data:
        raise CorruptFileError(source, "empty file (0 bytes)")
    try:
        if data.startswith(b"PAR1"):
            return pd.read_parquet(io.BytesIO(data))
        if source.lower().endswith((".parquet", ".pq")):
            raise CorruptFileError(source, "not a Parquet file (no PAR1 magic)")
        return read_csv_exact(io.BytesIO(data), compression="gzip" if data[:2] == b"\x1f\x8b" else None)
    except CorruptFileError:
        raise
    except Exception as exc:  # pandas/pyarrow parser errors of many kinds
        raise CorruptFileError(source, f"unreadable table: {exc}") from exc


def read_csv_exact(source: Any, **kwargs: Any) -> Any:
    """``pandas.read_csv``, each number parsed as Python's ``float()`` parses it (correctly
    rounded: the shortest round-trip text lcarchive writes gives every bit back).

    pandas 3.1 parses every float so (its one converter, fast_float) and deprecates
    ``float_precision``; before it, the default converter could be one ulp off, and
    ``float_precision="round_trip"`` is asked for.

    Parameters
    ----------
    source : str, path or file-like
        As ``pandas.read_csv`` takes it.
    **kwargs
        Passed on to ``pandas.read_csv``.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    if _major_minor(pd.__version__) < (3, 1):
        kwargs.setdefault("float_precision", "round_trip")
    return pd.read_csv(source, **kwargs)


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return major, minor


def _column(names: list[str], wanted: str, role: str, source: str) -> str:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(names[:40]) + (f" and {len(names) - 40} more" if len(names) > 40 else "")
    raise UnrecognizedProductError(source, f"the table map's {role} column {wanted!r} is not in the table (columns: {shown})")


def parse_table(data: bytes, source: str, table_map: TableMap) -> list[LightCurveFile]:
    """Parse the bytes of a CSV/Parquet table into light curves, as ``table_map`` says.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        Its path or URL, used in messages and provenance.
    table_map : TableMap

    Returns
    -------
    list of LightCurveFile
        One per (target, segment) of the table.

    Raises
    ------
    CorruptFileError, UnrecognizedProductError, InvalidTargetError
        As for :func:`read_table`.
    """
    import pandas as pd

    frame = _frame(data, source)
    if len(frame) == 0:
        raise CorruptFileError(source, "the table has no rows")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    names = list(frame.columns)
    catalog = static_catalog()
    mission = catalog.mission(table_map.mission)
    target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
    product = next(p for p in catalog.products if p.format == "table" and p.mission == mission.name)
    core = {"time": _column(names, table_map.time, "time", source), "flux": _column(names, table_map.flux, "flux", source)}
    for var in ("flux_err", "quality", "cadenceno"):
        wanted = getattr(table_map, var)
        if wanted is not None:
            core[var] = _column(names, wanted, var, source)
    skip = []
    if table_map.target is not None:
        column = _column(names, table_map.target, "target", source)
        skip.append(column)
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        if np.any(codes < 0):
            raise InvalidTargetError(
                source,
                f"target column {column!r} is empty on {int(np.sum(codes < 0))} row(s) "
                f"(row {int(np.flatnonzero(codes < 0)[0]) + 1} first)",
            )
        ids = np.array([target_id(v, target_catalog, source, f"target column {column!r}") for v in uniques], dtype=np.int64)
        targets = ids[codes]
    else:
        targets = np.full(len(frame), target_id(table_map.target_id, target_catalog, source, "target_id"), np.int64)
    if table_map.segment_column is not None:
        column = _column(names, table_map.segment_column, "segment", source)
        skip.append(column)
        values = frame[column].to_numpy()
        try:
            segments = values.astype(np.float64)
        except (TypeError, ValueError):
            raise UnrecognizedProductError(source, f"segment column {column!r} holds values that are not numbers") from None
        bad = ~np.isfinite(segments) | (segments != np.round(segments)) | (segments < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UnrecognizedProductError(
                source,
                f"segment column {column!r}: {int(bad.sum())} value(s) are not a {mission.segment_kind} "
                f"(row {row + 1}: {values[row]!r})",
            )
        for value in np.unique(segments):  # before the cast: 1e19 would wrap in int64
            check_segment(float(value), mission, source, f"segment column {column!r}")
        segments = segments.astype(np.int64)
    else:
        check_segment(table_map.segment, mission, source, "the table map's segment")
        segments = np.full(len(frame), table_map.segment, dtype=np.int64)
    repeated = sorted({c for c in core.values() if list(core.values()).count(c) > 1})
    if repeated:
        raise UnrecognizedProductError(source, f"the table map gives column(s) {', '.join(repeated)} more than one role")
    if set(skip) & set(core.values()):
        clash = sorted(set(skip) & set(core.values()))
        raise UnrecognizedProductError(
            source, f"column(s) {', '.join(clash)} cannot be both the target/segment and a light-curve column"
        )
    from astropy import units as u

    units = {_column(names, c, f"units[{c!r}]", source): u.Unit(unit).to_string() for c, unit in table_map.units.items()}
    mapping = json.dumps(table_map.model_dump(exclude_defaults=True), sort_keys=True)
    descriptions = {column: f"column {column!r} of the table ({var} in its table map)" for var, column in core.items()}
    descriptions[core["time"]] += f", {table_map.time_format_name.upper()}, taken as barycentric TDB"
    _, first, inverse = np.unique(np.stack([targets, segments], axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")  # rows of each light curve, in the file's order
    by_group = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    out = []
    for group in np.argsort(first, kind="stable"):  # light curves in order of first appearance
        rows = by_group[group]
        target, segment = int(targets[rows[0]]), int(segments[rows[0]])
        parts = FrameLightCurve(
            source=source,
            data=data,
            product=product,
            mission=mission,
            target_catalog=target_catalog,
            target=target,
            segment=segment,
            frame=frame.iloc[rows].reset_index(drop=True),
            core=core,
            time_format=table_map.time_format_name,
            units=units,
            descriptions=descriptions,
            skip=skip,
            target_values={"table_map": (mapping, {"description": "the table map the light curve was read with (JSON)"})},
            label=table_map.observation_label,
        )
        try:
            out.append(build_light_curve(parts))
        except BadInputError as exc:  # name the light curve of the table that failed
            raise type(exc)(source, f"{target_catalog.name} {target}, {mission.segment_kind} {segment}: {exc.reason}") from None
    return out
