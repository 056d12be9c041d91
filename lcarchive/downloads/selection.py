"""What a download takes: a :class:`Selection` and its resolution against an archive's target index
(:func:`select`), and targets files (:func:`read_targets_file`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcarchive.errors import (
    BadInputError,
    DamagedArchiveError,
    InvalidIdentifierError,
    LcarchiveError,
)
from lcarchive.identifiers import check_observation_id

__all__ = ["GroupSelection", "Selection", "SelectionError", "read_targets_file", "select"]


_TARGET_COLUMNS = ("target", "tic", "tic_id", "ticid", "kic", "kic_id", "kepid", "keplerid", "epic", "epic_id", "epicid", "id")
"""Column names taken as the target ID in a targets file (case-insensitive), in this order."""


class SelectionError(LcarchiveError, ValueError):
    """A selection that cannot be satisfied as asked (unknown column, bad time, bad cone)."""


@dataclass
class Selection:
    """What to download. Every filter given must hold (they combine with AND).

    Attributes
    ----------
    targets : sequence of int or str, optional
        TIC/KIC/EPIC IDs: numbers, or text with a catalog prefix (``"TIC 261136679"``,
        ``"KIC 11442793"``, ``"EPIC 211436265"``), which keeps that catalog's missions only.
    observations : sequence of str, optional
        Observation IDs (e.g. ``tess-spoc-2min-s0001``); may name a superseded release's group.
    missions, products : sequence of str, optional
        e.g. ``["tess"]``, ``["spoc-2min", "qlp"]``.
    segments : sequence of int, optional
        Sectors (TESS), quarters (Kepler) or campaigns (K2).
    cone : (float, float, float), optional
        RA, Dec and radius, degrees (ICRS, against the targets' RA_OBJ/DEC_OBJ).
    time : (float or str, float or str), optional
        Start and stop. A number is in each observation's own time format (BTJD for TESS,
        BKJD for Kepler and K2); a string that is not a number is an ISO 8601 UTC date/time,
        converted to TDB with astropy (the barycentric correction, up to about 8 min, is not
        applied, so cut a little wider).
    columns : sequence of str, optional
        Light-curve variables to take besides ``time``, ``flux``, ``flux_err`` and
        ``quality`` (always taken). Default: every variable for ``zarr`` and ``fits``, none
        for the tidy formats; ``["all"]`` takes every one.
    include_superseded : bool
        Also take groups of older releases (when no observation is named).
    """

    targets: Sequence[int | str] | None = None
    observations: Sequence[str] | None = None
    missions: Sequence[str] | None = None
    products: Sequence[str] | None = None
    segments: Sequence[int] | None = None
    cone: tuple[float, float, float] | None = None
    time: tuple[Any, Any] | None = None
    columns: Sequence[str] | None = None
    include_superseded: bool = False

    def describe(self) -> dict[str, Any]:
        """The selection as JSON-able values (recorded in the manifest)."""
        out: dict[str, Any] = {}
        for name in ("observations", "missions", "products", "segments", "cone", "time", "columns"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.targets is not None:
            out["n_targets"] = len(self.targets)
        if self.include_superseded:
            out["include_superseded"] = True
        return out


@dataclass
class GroupSelection:
    """The selected rows of one observation group.

    Attributes
    ----------
    observation : str
    rows : numpy.ndarray, shape (n,), int64
        Rows of the group, ascending.
    targets : numpy.ndarray, shape (n,), int64
    whole : bool
        Every row of the group is selected (and no column or time cut applies).
    time_range : (float, float) or None
        The time cut in the observation's own time format.
    """

    observation: str
    rows: np.ndarray
    targets: np.ndarray
    whole: bool
    time_range: tuple[float, float] | None = None


def read_targets_file(path: str | os.PathLike, column: str | None = None) -> list[int]:
    """Read target IDs from a file.

    Parameters
    ----------
    path : str or path-like
        A text file with one ID per line (blank lines and ``#`` comments ignored; a ``TIC``,
        ``KIC`` or ``EPIC`` prefix is allowed), or a ``.csv`` / ``.parquet`` table.
    column : str, optional
        Column of a table holding the IDs; default the first of ``target``, ``tic``,
        ``tic_id``, ``ticid``, ``kic``, ``kepid``, ``epic``, ``id`` (any case), or the only
        column.

    Returns
    -------
    list of int

    Raises
    ------
    BadInputError
        If the file is missing or unreadable, has no such column, or holds a value that is
        not a positive integer ID (the message names the line or row).
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise BadInputError(name, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path) if suffix != ".csv" else pd.read_csv(path, dtype=str)
        except Exception as exc:
            raise BadInputError(name, f"unreadable table ({exc})") from None
        chosen = _target_column(frame, column, name)
        values = [(f"row {i + 1}", v) for i, v in enumerate(frame[chosen].tolist())]
    else:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(name, f"unreadable ({exc})") from None
        values = []
        for i, line in enumerate(lines):
            text = line.split("#", 1)[0].strip()
            if text:
                values.append((f"line {i + 1}", text))
    ids = []
    for where, value in values:
        ids.append(_target_id(value, name, where))
    return ids


def _target_column(frame: pd.DataFrame, column: str | None, name: str) -> str:
    lowered = {str(c).lower(): c for c in frame.columns}
    if column is not None:
        if column.lower() not in lowered:
            raise BadInputError(name, f"no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
        return lowered[column.lower()]
    for candidate in _TARGET_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    if len(frame.columns) == 1:
        return frame.columns[0]
    raise BadInputError(name, f"no target column (looked for {', '.join(_TARGET_COLUMNS)}); name one with --targets-column")


def _target_id(value: Any, name: str, where: str) -> int:
    text = str(value).strip().upper()
    for prefix in ("TIC", "KIC", "EPIC"):
        text = text.removeprefix(prefix).strip()
    try:
        number = float(text)
        if not number.is_integer() or number <= 0:
            raise ValueError
        return int(number)
    except (ValueError, OverflowError):
        raise BadInputError(name, f"{where}: {value!r} is not a TIC/KIC/EPIC ID") from None


def _wanted_targets(values: Sequence[int | str]) -> list[tuple[str | None, int]]:
    """Targets of a selection as (catalog prefix or None, ID): 261136679, 'TIC 261136679', 'EPIC211436265'.

    Raises
    ------
    SelectionError
        A value that is no target ID.
    """
    from lcarchive.identifiers import parse_target_text

    out = []
    for value in values:
        try:
            out.append(parse_target_text(value))
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
    return out


def _time_value(value: Any, epoch_jd: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(text, scale="utc").tdb.jd - epoch_jd)
    except ValueError as exc:
        raise SelectionError(f"time {text!r}: neither a number nor an ISO 8601 date ({exc})") from None


def select(archive: Any, selection: Selection) -> tuple[list[GroupSelection], list[int], list[str]]:
    """Resolve a selection against an archive's catalog and target index.

    Parameters
    ----------
    archive : lcarchive.Archive
    selection : Selection

    Returns
    -------
    (list of GroupSelection, list of int, list of str)
        The groups and rows to read; the requested targets found nowhere in the selected
        observations; the requested observation IDs the archive lacks.

    Raises
    ------
    SelectionError
        For a cone or time range that cannot be read.
    """
    catalog = archive.catalog
    for o in catalog.observations:  # IDs become folder names: a hostile catalog's '../evil' is refused
        try:
            check_observation_id(o.id)
        except InvalidIdentifierError as exc:
            raise DamagedArchiveError(archive.url, "the catalog", str(exc)) from None
    by_id = {o.id: o for o in catalog.observations}
    missing_obs: list[str] = []
    if selection.observations:
        wanted = list(dict.fromkeys(selection.observations))
        missing_obs = [o for o in wanted if o not in by_id]
        observations = [by_id[o] for o in wanted if o in by_id]
    else:
        observations = [o for o in catalog.observations if selection.include_superseded or not o.superseded_release]
    if selection.missions:
        observations = [o for o in observations if o.mission in set(selection.missions)]
    if selection.products:
        observations = [o for o in observations if o.product in set(selection.products)]
    if selection.segments:
        observations = [o for o in observations if o.segment in {int(s) for s in selection.segments}]
    ranges: dict[str, tuple[float, float]] = {}
    if selection.time is not None:
        kept = []
        for o in observations:
            epoch = catalog.mission(o.mission).time_system.reference_epoch
            start, stop = (_time_value(v, epoch) for v in selection.time)
            if start > stop:
                raise SelectionError(f"time range {selection.time[0]} .. {selection.time[1]}: start is after stop")
            if o.time_min is not None and (o.time_max < start or o.time_min > stop):
                continue
            ranges[o.id] = (start, stop)
            kept.append(o)
        observations = kept
    missing_targets: list[int] = []
    if selection.targets is not None:  # the index partitions of the targets only
        wanted = _wanted_targets(selection.targets)
        wanted_targets = pd.unique(np.asarray([t for _, t in wanted], dtype=np.int64))
        index = archive.target_index(wanted_targets.tolist())
        lines = index[index["observation"].isin([o.id for o in observations])]
        lines = lines[lines["target"].isin(wanted_targets)]
    else:  # whole observations: their groups' own small arrays say which targets they hold
        frames = [archive.group_index(o.id) for o in observations]
        lines = pd.concat(frames, ignore_index=True) if frames else archive.target_index([])
    if selection.targets is not None:
        prefixed = {t: c for c, t in wanted if c is not None}
        if prefixed:  # 'KIC 123' keeps the lines of the missions named by KIC IDs only
            catalogs = {m.name: m.target_catalog for m in catalog.missions}
            keep = [prefixed.get(int(t)) in (None, catalogs.get(str(m))) for t, m in zip(lines["target"], lines["mission"], strict=True)]
            lines = lines[np.asarray(keep, dtype=bool)]
    if selection.cone is not None:
        lines = lines[_in_cone(lines, selection.cone)]
    if selection.targets is not None:
        found = set(lines["target"].tolist())
        missing_targets = [int(t) for t in wanted_targets if int(t) not in found]
    narrowed = selection.targets is not None or selection.cone is not None
    cut = selection.time is not None or selection.columns is not None
    groups = []
    for o in observations:
        part = lines[lines["observation"] == o.id].sort_values("row")
        if part.empty:
            continue
        rows = part["row"].to_numpy(np.int64)
        whole = not cut and (not narrowed or rows.size == o.n_targets)
        groups.append(GroupSelection(o.id, rows, part["target"].to_numpy(np.int64), whole, ranges.get(o.id)))
    return groups, missing_targets, missing_obs


def _in_cone(lines: pd.DataFrame, cone: tuple[float, float, float]) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec, radius = (float(v) for v in cone)
    if not (-90 <= dec <= 90) or radius < 0:
        raise SelectionError(f"cone {ra} {dec} {radius}: Dec must be within [-90, 90] and the radius not negative (degrees)")
    if lines.empty:
        return np.zeros(0, dtype=bool)
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    where = SkyCoord(lines["ra"].to_numpy() * u.deg, lines["dec"].to_numpy() * u.deg)
    return np.asarray(centre.separation(where).deg <= radius)
