"""Searching an archive: a :class:`Selection` (targets, observations, sky positions, catalog filters),
its lines of the target index (:func:`matching_lines`), the search table a user reads
(:func:`search`) and the groups and rows a download reads (:func:`select`), and targets files
(:func:`read_targets_file`).

Searches by position read only the HEALPix pixels of the sky index their cones or box touch
(:mod:`lcarchive.layout.sky`) and then cut exactly on the targets' RA_OBJ/DEC_OBJ with astropy
(``SkyCoord.separation``; ``search_around_sky`` for many positions at once).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lcarchive.config import WithSettings, settings
from lcarchive.errors import (
    BadInputError,
    DamagedArchiveError,
    InvalidIdentifierError,
    LcarchiveError,
)
from lcarchive.identifiers import check_observation_id

if TYPE_CHECKING:
    from lcarchive.handle import ArchiveReads, HasHandle

__all__ = [
    "SEARCH_COLUMNS",
    "GroupSelection",
    "Selection",
    "SelectionError",
    "matching_lines",
    "read_positions_file",
    "read_targets_file",
    "search",
    "select",
    "with_analyses",
]


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
    cone : (float, float, float) or (array, array, float or array) or table, optional
        RA, Dec and radius, deg (ICRS, against the targets' RA_OBJ/DEC_OBJ). Arrays of RA and
        Dec (and of radii) search many positions at once; so does a table (pandas DataFrame,
        astropy Table, dict) with columns ``ra``, ``dec`` and ``radius``.
    box : (float, float, float, float), optional
        ``(ra_min, ra_max, dec_min, dec_max)``, deg; the RA range wraps through 0 when
        ``ra_min > ra_max``.
    cameras, ccds : sequence of int, optional
        TESS cameras (1-4) and CCDs (1-4), from each target's CAMERA and CCD header keywords.
    magnitude : (float, float), optional
        Lowest and highest TESSMAG (TESS) or KEPMAG (Kepler, K2), mag, inclusive.
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
    integrity : sequence of str, optional
        Light curves whose input file has one of these integrity states (``sound``,
        ``no-checksums``, ``stale-cards``, ``damaged``: its DATASUM/CHECKSUM cards checked on its
        raw bytes; ``""`` for files stored before it was recorded); a light curve of several
        files is taken when one of them has.
    """

    targets: Sequence[int | str] | None = None
    observations: Sequence[str] | None = None
    missions: Sequence[str] | None = None
    products: Sequence[str] | None = None
    segments: Sequence[int] | None = None
    cone: Any = None
    box: tuple[float, float, float, float] | None = None
    cameras: Sequence[int] | None = None
    ccds: Sequence[int] | None = None
    magnitude: tuple[float, float] | None = None
    time: tuple[Any, Any] | None = None
    columns: Sequence[str] | None = None
    include_superseded: bool = False
    integrity: Sequence[str] | None = None

    def describe(self) -> dict[str, Any]:
        """The selection as JSON-able values (recorded in the manifest)."""
        out: dict[str, Any] = {}
        for name in (
            "observations",
            "missions",
            "products",
            "segments",
            "box",
            "cameras",
            "ccds",
            "magnitude",
            "time",
            "columns",
            "integrity",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.cone is not None:
            ra, dec, radius = cones(self.cone)
            out["cone"] = [float(ra[0]), float(dec[0]), float(radius[0])] if ra.size == 1 else {"n_positions": int(ra.size)}
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


def read_positions_file(path: str | os.PathLike, radius: float | None = None) -> pd.DataFrame:
    """Read sky positions for a cone search around each.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` or ``.parquet`` table with columns ``ra`` and ``dec`` (deg, ICRS; any case)
        and ``radius`` (deg), unless ``radius`` is given.
    radius : float, optional
        Radius of every cone, deg (replaces the table's column).

    Returns
    -------
    pandas.DataFrame
        Columns ``ra``, ``dec``, ``radius`` (float64), one line per position, in file order.

    Raises
    ------
    BadInputError
        If the file is missing or unreadable, lacks a column, or holds a value that is no number.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise BadInputError(name, "no such file")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas' and pyarrow's parse errors are of many kinds
        raise BadInputError(name, f"unreadable table ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    needed = ["ra", "dec"] + ([] if radius is not None else ["radius"])
    missing = [n for n in needed if n not in lowered]
    if missing:
        raise BadInputError(
            name,
            f"no column {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))})"
            + ("; or give a radius (--radius)" if missing == ["radius"] else ""),
        )
    out = {}
    for column in needed:
        values = pd.to_numeric(frame[lowered[column]], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            raise BadInputError(name, f"row {bad[0] + 1}: {column} {frame[lowered[column]].iloc[bad[0]]!r} is no number")
        out[column] = values.to_numpy(np.float64)
    if radius is not None:
        out["radius"] = np.full(len(frame), float(radius))
    return pd.DataFrame(out)


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
    """Targets of a selection as (catalog name or None, key in the index): 261136679, 'TIC 261136679',
    'EPIC211436265', 'Gaia DR3 5707485527450614656', '3I/ATLAS' (:func:`lcarchive.identifiers.parse_any_target`).

    Raises
    ------
    SelectionError
        A value that is no target ID.
    """
    from lcarchive.identifiers import parse_any_target

    out: list[tuple[str | None, int]] = []
    for value in values:
        try:
            named = parse_any_target(value)
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
        out.append((None, named) if isinstance(named, int) else (named.catalog, named.key))
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


SEARCH_COLUMNS = [
    "target",
    "observation",
    "ra",
    "dec",
    "magnitude",
    "n_cadences",
    "coverage",
    "url",
    "mission",
    "product",
    "segment",
    "camera",
    "ccd",
    "current",
    "row",
    "integrity",
]
"""Columns of :func:`search`'s table, in order (``position`` and ``separation`` follow for a cone)."""


def cones(cone: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cones of a selection as three arrays of one length: RA, Dec, radius (deg).

    Raises
    ------
    SelectionError
        For a table without ``ra``/``dec``/``radius``, arrays of different lengths, a Dec outside
        [-90, 90], a negative or non-finite radius.
    """
    if isinstance(cone, dict) or hasattr(cone, "columns") or hasattr(cone, "colnames"):
        names = list(cone.keys() if isinstance(cone, dict) else getattr(cone, "colnames", None) or cone.columns)
        lowered = {str(n).lower(): n for n in names}
        missing = [n for n in ("ra", "dec", "radius") if n not in lowered]
        if missing:
            raise SelectionError(f"positions table: no column {', '.join(missing)} (it needs ra, dec and radius, deg)")
        values = [np.asarray(cone[lowered[n]], dtype=np.float64) for n in ("ra", "dec", "radius")]
    else:
        try:
            ra, dec, radius = cone
        except (TypeError, ValueError):
            raise SelectionError(f"cone {cone!r}: give (ra, dec, radius) in degrees") from None
        try:
            values = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (ra, dec, radius)]
        except (TypeError, ValueError):
            raise SelectionError(f"cone {cone!r}: ra, dec and radius must be numbers (degrees)") from None
    try:
        ra, dec, radius = (np.ravel(v) for v in np.broadcast_arrays(*values))
    except ValueError:
        raise SelectionError(f"cone: {values[0].size} RA, {values[1].size} Dec and {values[2].size} radii") from None
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90) & np.isfinite(radius) & (radius >= 0))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        where = "cone" if ra.size == 1 else f"position {k}"
        raise SelectionError(
            f"{where} {ra[k]} {dec[k]} {radius[k]}: Dec must be within [-90, 90] and the radius a number not below 0 (degrees)"
        )
    return ra, dec, radius


def _box(box: Any) -> tuple[float, float, float, float]:
    try:
        ra_min, ra_max, dec_min, dec_max = (float(v) for v in box)
    except (TypeError, ValueError):
        raise SelectionError(f"box {box!r}: give (ra_min, ra_max, dec_min, dec_max) in degrees") from None
    if not (-90 <= dec_min <= dec_max <= 90) or not all(np.isfinite([ra_min, ra_max])):
        raise SelectionError(f"box {box!r}: Dec must be within [-90, 90], dec_min <= dec_max (degrees)")
    ra_max = 360.0 if ra_max % 360 == 0 and ra_max != 0 else ra_max % 360  # RA_MAX 360 stays the whole circle
    return ra_min % 360, ra_max, dec_min, dec_max


def _observations(archive: ArchiveReads, selection: Selection) -> tuple[list, list[str], dict[str, tuple[float, float]]]:
    """The catalog's observations a selection keeps, the observation IDs it names that the archive
    lacks, and each kept observation's time cut in its own time format."""
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
            if o.time_min is not None and o.time_max is not None and (o.time_max < start or o.time_min > stop):
                continue
            ranges[o.id] = (start, stop)
            kept.append(o)
        observations = kept
    return observations, missing_obs, ranges


def matching_lines(
    archive: ArchiveReads | HasHandle, selection: Selection
) -> tuple[pd.DataFrame, list, list[int], list[str], dict[str, tuple[float, float]]]:
    """The target-index lines a selection keeps.

    Only the index buckets the selection needs are read: the targets' buckets when targets are
    named, the sky pixels a cone or box touches, else the selected groups' own small arrays.

    Parameters
    ----------
    archive : lcarchive.Archive or lcarchive.handle.ReadHandle
    selection : Selection

    Returns
    -------
    (pandas.DataFrame, list of Observation or None, list of int, list of str, dict)
        The lines (columns of :meth:`lcarchive.Archive.target_index`, and ``position`` and
        ``separation`` (deg) when a cone is given: one line per position and match); the
        observations kept (None when the selection was resolved on the index lines alone,
        without reading the catalog: targets or positions with no time cut nor observation
        named); the targets asked for that none of them holds; the observation IDs asked for
        that the archive lacks; each observation's time cut.

    Raises
    ------
    SelectionError
        For a cone, box or time range that cannot be read.
    """
    from lcarchive.handle import reads  # here: the handle brings the store, which a Selection needs not

    archive = reads(archive)
    from lcarchive.layout.sky import pixels_in_box, pixels_in_cones

    cone = cones(selection.cone) if selection.cone is not None else None
    box = _box(selection.box) if selection.box is not None else None
    by_lines = (
        selection.time is None
        and not selection.observations
        and (selection.targets is not None or cone is not None or box is not None)
    )
    missing_obs: list[str]
    ranges: dict[str, tuple[float, float]]
    if by_lines:  # the index lines carry mission, product, segment and release: the catalog is not read
        observations, missing_obs, ranges = None, [], {}
    else:
        observations, missing_obs, ranges = _observations(archive, selection)
    wanted: list[tuple[str | None, int]] = []
    if selection.targets is not None:  # the index partitions of the targets only
        wanted = _wanted_targets(selection.targets)
        wanted_targets = pd.unique(np.asarray([t for _, t in wanted], dtype=np.int64))
        lines = archive.target_index(wanted_targets.tolist())
        lines = lines[lines["target"].isin(wanted_targets)]
    elif cone is not None or box is not None:  # the sky pixels the cones or the box touch
        pixels = pixels_in_cones(*cone) if cone is not None else pixels_in_box(*box)  # type: ignore[misc]  # box, when no cone
        if cone is not None and box is not None:
            pixels = np.intersect1d(pixels, pixels_in_box(*box))
        lines = archive.index_pixels(pixels)
        if lines is None:  # no sky index: the whole target index
            lines = archive.target_index()
    else:  # whole observations: their groups' own small arrays say which targets they hold
        frames = [archive.group_index(o.id) for o in observations]  # type: ignore[union-attr]  # read when not by_lines
        lines = pd.concat(frames, ignore_index=True) if frames else archive.target_index([])
    if observations is not None:
        lines = lines[lines["observation"].isin([o.id for o in observations])]
    else:
        keep = np.ones(len(lines), dtype=bool) if selection.include_superseded else lines["current"].to_numpy(bool, copy=True)
        for column, values in (
            ("mission", selection.missions),
            ("product", selection.products),
            ("segment", [int(v) for v in selection.segments or []] or None),
        ):
            if values:
                keep &= lines[column].isin(list(values)).to_numpy()
        lines = lines[keep]
    prefixed = {t: c for c, t in wanted if c is not None}
    if prefixed:  # 'KIC 123' keeps the lines of targets of that catalog only (a line's, else its mission's)
        catalogs = {m.name: m.target_catalog for m in archive.catalog.missions}
        named = lines["target_catalog"] if "target_catalog" in lines else [""] * len(lines)
        keep = [
            prefixed.get(int(t)) in (None, c or catalogs.get(str(m)))
            for t, m, c in zip(lines["target"], lines["mission"], named, strict=True)
        ]
        lines = lines[np.asarray(keep, dtype=bool)]
    if selection.cameras:
        lines = lines[lines["camera"].isin([int(c) for c in selection.cameras])]
    if selection.ccds:
        lines = lines[lines["ccd"].isin([int(c) for c in selection.ccds])]
    if selection.integrity is not None:
        wanted_states = {str(v) for v in selection.integrity}
        keep = [bool(wanted_states & set(str(v).split("\n"))) for v in lines["integrity"]]
        lines = lines[np.asarray(keep, dtype=bool)]
    if selection.magnitude is not None:
        low, high = (float(v) for v in selection.magnitude)
        lines = lines[(lines["magnitude"] >= low) & (lines["magnitude"] <= high)]
    if box is not None:
        lines = lines[_in_box(lines, box)]
    if cone is not None:
        lines = _in_cones(lines, *cone)
    lines = lines.reset_index(drop=True)
    missing_targets: list[int] = []
    if selection.targets is not None:
        found = set(lines["target"].tolist())
        missing_targets = [int(t) for t in wanted_targets if int(t) not in found]
    return lines, observations, missing_targets, missing_obs, ranges  # type: ignore[return-value]  # None when by_lines


def with_analyses(archive: ArchiveReads, lines: pd.DataFrame) -> pd.DataFrame:
    """Index lines with the results of the newest analysis of each method joined on (target,
    observation): columns ``bls_period``, ``bls_power``, ``bls_depth``, ``bls_duration``, ``bls_t0``,
    ``bls_snr``, ``lombscargle_period``, ``lombscargle_power`` (NaN where a light curve was not
    analysed)."""
    newest = {a.method: a for a in archive.analyses()}
    for method, entry in sorted(newest.items()):
        results = archive.analysis(entry.id)
        values = [c for c in results.columns if c not in ("target", "observation", "n_cadences", "n_observations")]
        results = results[["target", "observation", *values]].rename(columns={c: f"{method}_{c}" for c in values})
        lines = lines.merge(results, on=["target", "observation"], how="left")
    return lines


def _where(lines: pd.DataFrame, where: str) -> pd.DataFrame:
    """Lines passing a filter expression: pandas ``DataFrame.query`` syntax, plus ``X between A and B``."""
    import re

    expression = re.sub(r"\b(\w+)\s+between\s+(\S+)\s+and\s+(\S+)", r"(\1 >= \2 and \1 <= \3)", where, flags=re.I)
    try:
        return lines.query(expression, engine="python")
    except Exception as exc:  # pandas raises many kinds for a bad expression
        name = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SelectionError(f"where {where!r}: {name} (columns: {', '.join(map(str, lines.columns))})") from None


def _lines_on_cluster(
    archive: ArchiveReads, selection: Selection, cone: tuple[np.ndarray, np.ndarray, np.ndarray], client: Any
) -> tuple[pd.DataFrame, list[int], list[str]]:
    """:func:`matching_lines` of a many-position cone (the selection's, as :func:`cones` reads
    it), ``Settings.search_part`` positions per task on ``client``'s workers, each reading the archive at
    this handle's version."""
    ra, dec, radius = cone
    handle = archive.resolved()  # every task reads this version
    part = settings().search_part
    futures = [
        client.submit(
            WithSettings(_part_lines),
            handle,
            replace(selection, cone=(ra[a : a + part], dec[a : a + part], radius[a : a + part])),
            a,
            pure=False,
        )
        for a in range(0, ra.size, part)
    ]
    parts = client.gather(futures)
    lines = pd.concat([p[0] for p in parts], ignore_index=True)
    missing = set.intersection(*(set(p[1]) for p in parts))  # found by no part
    return lines, [t for t in parts[0][1] if t in missing], parts[0][2]


def _part_lines(handle: ArchiveReads, selection: Selection, first: int) -> tuple[pd.DataFrame, list[int], list[str]]:
    """One task of :func:`_lines_on_cluster`: the lines of some positions, numbered from ``first``."""
    lines, _, missing_targets, missing_obs, _ = matching_lines(handle, selection)
    lines = lines.copy()
    lines["position"] += first
    return lines, missing_targets, missing_obs


def search(
    archive: ArchiveReads | HasHandle,
    selection: Selection,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    where: str | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """The light curves a selection finds: one line per (target, observation); see
    :meth:`lcarchive.Archive.search`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SEARCH_COLUMNS`; ``attrs["missing_targets"]`` lists the targets asked for
        that no selected observation holds, ``attrs["missing_observations"]`` the observation IDs
        asked for that the archive lacks.

    Raises
    ------
    SelectionError
        For a cone, box or time range that cannot be read, an unknown ``order_by`` column, a
        negative ``limit``/``offset``, or a ``where`` expression that does not evaluate.
    """
    from lcarchive.handle import reads  # here: the handle brings the store, which a Selection needs not

    archive = reads(archive)
    cone = cones(selection.cone) if client is not None and selection.cone is not None else None
    if cone is not None and cone[0].size > 1:
        lines, missing_targets, missing_obs = _lines_on_cluster(archive, selection, cone, client)
    else:
        lines, _, missing_targets, missing_obs, _ = matching_lines(archive, selection)
    lines = lines.copy()
    lines["url"] = [f"{archive.url}/{archive.group_path(o)}" for o in lines["observation"].tolist()]
    columns = SEARCH_COLUMNS + [c for c in ("position", "separation") if c in lines]
    lines = lines[columns]
    if where is not None:  # filters on the stored analyses' results (lcarchive compute)
        lines = _where(with_analyses(archive, lines), where)
    default = ["position", "separation", "target", "observation"] if "position" in lines else ["target", "observation"]
    keys = [order_by] if isinstance(order_by, str) else list(order_by or default)
    descending = [k.startswith("-") for k in keys]
    keys = [k.lstrip("-") for k in keys]
    unknown = [k for k in keys if k not in lines.columns]
    if unknown:
        raise SelectionError(f"order_by {', '.join(unknown)}: no such column (columns: {', '.join(lines.columns)})")
    if (limit is not None and limit < 0) or offset < 0:
        raise SelectionError(f"limit {limit} and offset {offset} must not be negative")
    lines = lines.sort_values(keys, ascending=[not d for d in descending], kind="stable", na_position="last")
    stop = None if limit is None else offset + limit
    found = lines.iloc[offset:stop].reset_index(drop=True)
    found.attrs.update({"missing_targets": missing_targets, "missing_observations": missing_obs})
    return found


def select(archive: ArchiveReads | HasHandle, selection: Selection) -> tuple[list[GroupSelection], list[int], list[str]]:
    """Resolve a selection against an archive's catalog and target index.

    Parameters
    ----------
    archive : lcarchive.Archive or lcarchive.handle.ReadHandle
    selection : Selection

    Returns
    -------
    (list of GroupSelection, list of int, list of str)
        The groups and rows to read; the requested targets found nowhere in the selected
        observations; the requested observation IDs the archive lacks.

    Raises
    ------
    SelectionError
        For a cone, box or time range that cannot be read.
    """
    from lcarchive.handle import reads  # here: the handle brings the store, which a Selection needs not

    archive = reads(archive)
    lines, observations, missing_targets, missing_obs, ranges = matching_lines(archive, selection)
    if observations is None:
        observations, _, _ = _observations(archive, selection)
    if "position" in lines:  # a target near several positions is read once
        lines = lines.drop_duplicates(["target", "observation"])
    narrowed = (
        any(v is not None for v in (selection.targets, selection.cone, selection.box, selection.magnitude, selection.integrity))
        or bool(selection.cameras)
        or bool(selection.ccds)
    )
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


def _in_box(lines: pd.DataFrame, box: tuple[float, float, float, float]) -> np.ndarray:
    ra_min, ra_max, dec_min, dec_max = box
    ra = lines["ra"].to_numpy() % 360
    dec = lines["dec"].to_numpy()
    in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max else (ra >= ra_min) | (ra <= ra_max)
    return np.asarray(in_ra & (dec >= dec_min) & (dec <= dec_max))


def _in_cones(lines: pd.DataFrame, ra: np.ndarray, dec: np.ndarray, radius: np.ndarray) -> pd.DataFrame:
    """The lines within each cone, with ``position`` (the cone's index) and ``separation`` (deg)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    lines = lines[np.isfinite(lines["ra"].to_numpy()) & np.isfinite(lines["dec"].to_numpy())]
    if lines.empty:
        return lines.assign(position=pd.Series(dtype="int64"), separation=pd.Series(dtype="float64"))
    where = SkyCoord(lines["ra"].to_numpy() * u.deg, lines["dec"].to_numpy() * u.deg)
    if ra.size == 1:
        separation = SkyCoord(ra * u.deg, dec * u.deg)[0].separation(where).deg
        hit = np.flatnonzero(separation <= radius[0])
        position, separation = np.zeros(hit.size, dtype=np.int64), separation[hit]
    else:
        centres = SkyCoord(ra * u.deg, dec * u.deg)
        position, hit, sep, _ = search_around_sky(centres, where, float(radius.max()) * u.deg)
        keep = sep.deg <= radius[position]
        position, hit, separation = position[keep].astype(np.int64), hit[keep], sep.deg[keep]
    return lines.iloc[hit].assign(position=position, separation=separation)
