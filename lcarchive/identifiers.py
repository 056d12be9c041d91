"""Identifiers: target IDs, sectors/quarters/campaigns, observation IDs, and names made safe.

Every identifier that comes from an input file or an archive's catalog passes through here
before it names a group, a key or a file: target IDs are checked against the ranges each
mission issued and segments against the mission's real ones (both data in
``catalog/missions.json``), observation IDs against one strict pattern, and file names have
their control characters escaped.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from lcarchive.catalog.models import Mission, MissionCatalog, Product
from lcarchive.errors import InvalidIdentifierError, InvalidTargetError, UnrecognizedProductError

__all__ = [
    "OBSERVATION_ID",
    "check_observation_id",
    "check_segment",
    "check_target_id",
    "observation_id",
    "parse_target",
    "parse_target_text",
    "safe_name",
    "segment_from_time",
]

OBSERVATION_ID = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*(?:\.[a-z0-9_]+(?:-[a-z0-9_]+)*)?")
"""Observation IDs: lower-case letters, digits, ``_`` and single hyphens, with at most one ``.<label>``
(a release group): ``tess-spoc-2min-s0001``, ``tess-spoc-2min-s0001.dr0``. No slash, no
``..``, no leading dot or hyphen, at most 128 characters: an ID is always one path segment."""

MAX_ID_LENGTH = 128

_ID_TEXT = re.compile(r"\s*(?:(?P<catalog>[A-Za-z]+)[\s_:-]*)?(?P<digits>\d+)\s*")


def check_observation_id(value: Any, what: str = "observation ID") -> str:
    """Return ``value`` if it is a valid observation ID (:data:`OBSERVATION_ID`).

    Used wherever an ID becomes a path or an object key, when reading and when writing: an
    archive's catalog may have been written by anyone.

    Raises
    ------
    InvalidIdentifierError
        ``../evil``, ``/tmp/x``, an empty or over-long ID, upper case, spaces...
    """
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not OBSERVATION_ID.fullmatch(value):
        raise InvalidIdentifierError(str(value), what)
    return value


def check_target_id(raw: Any, catalog: MissionCatalog, source: str, keyword: str) -> int:
    """Return a TIC/KIC/EPIC ID read as ``raw`` (an int, or digits as text, as TGLC writes TICID).

    The ID must lie in one of the ranges the mission issued (``MissionCatalog.id_ranges`` in
    ``catalog/missions.json``: KIC custom apertures above 100,000,000, K2's engineering-test
    EPIC IDs of 60,0xx,xxx...).

    Raises
    ------
    InvalidTargetError
        Missing, not an integer, or outside the catalog's ranges.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidTargetError(source, f"no {keyword} value: the file names no {catalog.name} target")
    try:
        if isinstance(raw, bool | np.bool_):
            raise ValueError
        if isinstance(raw, float | np.floating):
            if not math.isfinite(raw) or not float(raw).is_integer():
                raise ValueError
            raw = int(raw)
        target = int(str(raw).strip()) if not isinstance(raw, int | np.integer) else int(raw)
    except (ValueError, OverflowError):
        raise InvalidTargetError(source, f"{keyword} = {raw!r} is not an integer {catalog.name} ID") from None
    if not catalog.valid(target):
        raise InvalidTargetError(
            source, f"{keyword} = {target} is not a {catalog.name} ID (the IDs issued: {catalog.describe_ranges()})"
        )
    return target


def parse_target(raw: Any, catalog: MissionCatalog, source: str, what: str) -> int:
    """Return the TIC/KIC/EPIC ID given as a number, or as text with an optional catalog prefix.

    Parameters
    ----------
    raw : int, float, str
        ``261136679``, ``"261136679"``, ``"TIC 261136679"``, ``"EPIC211436265"``, ``2.0e8`` (an
        integral float, as a CSV column with gaps is read).
    catalog : MissionCatalog
        The catalog the ID must belong to.
    source : str
        Input named in errors.
    what : str
        Where the ID was read (``series_obj_id``, ``column TIC``, ``OBJECT``), named in errors.

    Raises
    ------
    InvalidTargetError
        Not an ID, another catalog's prefix, or outside the catalog's ranges.
    """
    from lcarchive.catalog.content import static_catalog

    if isinstance(raw, float | np.floating):
        if not np.isfinite(raw) or not float(raw).is_integer():
            raise InvalidTargetError(source, f"{what} = {raw!r} is not an integer {catalog.name} ID")
        raw = int(raw)
    if isinstance(raw, int | np.integer) and not isinstance(raw, bool | np.bool_):
        return check_target_id(int(raw), catalog, source, what)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidTargetError(source, f"no {what}: the input names no {catalog.name} target")
    match = _ID_TEXT.fullmatch(str(raw))
    if match is None:
        raise InvalidTargetError(source, f"{what} = {raw!r} is not a {catalog.name} ID")
    prefix = (match["catalog"] or "").upper()
    if prefix and prefix != catalog.name.upper():
        known = {c.name.upper() for c in static_catalog().mission_catalogs}
        kind = f"a {prefix} ID" if prefix in known else "no ID of a catalog lcarchive knows"
        raise InvalidTargetError(source, f"{what} = {raw!r} is {kind}; {catalog.name} IDs are expected here")
    return check_target_id(match["digits"], catalog, source, what)


def parse_target_text(text: Any) -> tuple[str | None, int]:
    """Split a target given by a user (``"TIC 261136679"``, ``"KIC 11442793"``, ``"EPIC211436265"``,
    ``"261136679"``) into (catalog name or None, ID).

    Raises
    ------
    ValueError
        Not an ID, or a prefix of no catalog lcarchive knows.
    """
    from lcarchive.catalog.content import static_catalog

    if isinstance(text, int | np.integer) and not isinstance(text, bool | np.bool_):
        return None, int(text)
    match = _ID_TEXT.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a target ID (e.g. 261136679, 'TIC 261136679', 'KIC 11442793', 'EPIC 211436265')")
    prefix = (match["catalog"] or "").upper() or None
    known = {c.name.upper() for c in static_catalog().mission_catalogs}
    if prefix is not None and prefix not in known:
        raise ValueError(f"{text!r}: {prefix} is no catalog lcarchive knows ({', '.join(sorted(known))})")
    return prefix, int(match["digits"])


def check_segment(raw: Any, mission: Mission, source: str, keyword: str) -> int:
    """Return the sector/quarter/campaign read as ``raw``, checked against the mission's real ones.

    The segments each mission has are data (``Mission.segments`` in ``catalog/missions.json``):
    TESS sectors 1..200 and 1751, Kepler quarters 0..17, K2 campaigns 0..19, 91/92, 101/102,
    111/112 and the engineering test (1002).

    Raises
    ------
    UnrecognizedProductError
        Not an integer, or not one of the mission's segments.
    """
    kind = mission.segment_kind
    if isinstance(raw, bool | np.bool_) or raw is None:
        raise UnrecognizedProductError(source, f"{keyword} = {raw!r} is not a {mission.title} {kind}")
    try:
        if isinstance(raw, float | np.floating):
            if not math.isfinite(raw) or not float(raw).is_integer():
                raise ValueError
        number = int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError, OverflowError):
        raise UnrecognizedProductError(source, f"{keyword} = {raw!r} is not a {mission.title} {kind}") from None
    if not mission.segment_valid(number):
        raise UnrecognizedProductError(
            source, f"{keyword} = {number} is not a {mission.title} {kind} (its {kind}s: {mission.describe_segments()})"
        )
    return number


def segment_from_time(time: np.ndarray, mission: Mission) -> int | None:
    """The segment whose time span (``SegmentSpan.time``) holds every finite time stamp, if one does."""
    finite = time[np.isfinite(time)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    for span in mission.segments:
        if span.time is not None and span.min == span.max and span.time[0] <= lo and hi <= span.time[1]:
            return span.min
    return None


def observation_id(mission: Mission, product: Product, segment: int, label: str = "") -> str:
    """Return the ID of an observation.

    The product name is prefixed by the mission name unless it already starts with it:
    ``tess-spoc-2min-s0001``, ``tess-qlp-s0024``, ``kepler-lc-q02``, ``k2-lc-c05``; a label
    follows the product: ``tess-table-mypipe-s0014``, ``kepler-lc-kepcotrend-q03``. A segment
    with a name is written by it: ``k2-k2sff-cet`` (K2's engineering test).

    Raises
    ------
    InvalidIdentifierError
        If the parts do not make a valid ID (a label with a slash...).
    """
    letter = {"sector": "s", "quarter": "q", "campaign": "c"}[mission.segment_kind]
    width = 4 if mission.segment_kind == "sector" else 2
    prod = product.name if product.name.startswith(mission.name + "-") else f"{mission.name}-{product.name}"
    if label:
        prod = f"{prod}-{label}"
    return check_observation_id(f"{prod}-{letter}{mission.segment_name(segment) or f'{segment:0{width}d}'}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f%]")


def safe_name(name: str) -> str:
    """A file name with its control characters (and ``%``) percent-encoded: ``a%0Ab.fits`` for a
    name holding a newline. Names are stored one per line where a light curve came in several
    files, so a stored name never holds a line break."""
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", name)
