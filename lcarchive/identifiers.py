"""Identifiers: target IDs, sectors/quarters/campaigns, observation IDs, and names made safe.

Every identifier that comes from an input file or an archive's catalog passes through here
before it names a group, a key or a file: target IDs are checked against the ranges each
mission issued and segments against the mission's real ones (both data in
``catalog/missions.json``), observation IDs against one strict pattern, and file names have
their control characters escaped.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from lcarchive.catalog.models import Mission, MissionCatalog, Product
from lcarchive.errors import InvalidIdentifierError, InvalidTargetError, UnrecognizedProductError

__all__ = [
    "DESIGNATION_KEYS",
    "OBSERVATION_ID",
    "Target",
    "catalog_named",
    "check_designation",
    "check_observation_id",
    "check_segment",
    "check_target_id",
    "designation_key",
    "observation_id",
    "parse_any_target",
    "parse_target",
    "parse_target_text",
    "read_file_target",
    "read_target",
    "safe_name",
    "segment_from_time",
    "target_catalogs",
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


DESIGNATION_KEYS = (12 * 4**12 * 2**35, 2**63 - 1)
"""The int64 keys of targets named by designation (``MPC``): above every Gaia source_id (the largest
is 12 * 4**12 * 2**35 - 1) and every TIC, KIC or EPIC ID, so a key names one target in a group
whatever the catalogs of its targets (:func:`designation_key`)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A target: a catalog and an ID in it.

    Attributes
    ----------
    catalog : str
        Name of its catalog (``catalog/missions.json``, ``mission_catalogs``): ``TIC``, ``KIC``,
        ``EPIC``, ``Gaia DR2``, ``Gaia DR3``, ``MPC``.
    id : int or str
        The ID: an integer, or for a designation catalog its canonical text (``(11251)``, ``3I``,
        ``C/2019 Y4``, ``1981 EK47``).
    """

    catalog: str
    id: int | str

    @property
    def key(self) -> int:
        """The int64 the target is stored under (the ``target`` coordinate of an observation group and
        of the target index): the ID itself, or for a designation :func:`designation_key`."""
        return self.id if isinstance(self.id, int) else designation_key(self.catalog, self.id)

    def __str__(self) -> str:
        return f"{self.catalog} {self.id}"


def target_catalogs() -> list[MissionCatalog]:
    """Every catalog whose IDs name targets (``mission_catalogs`` of ``catalog/missions.json``)."""
    from lcarchive.catalog.content import static_catalog

    return list(static_catalog().mission_catalogs)


def _squeeze(text: str) -> str:
    return re.sub(r"[\s_]+", "", text).upper()


def catalog_named(name: str) -> MissionCatalog:
    """The catalog of a name or one of its prefixes (case and spaces ignored: ``gaia dr3``, ``GaiaDR3``).

    Raises
    ------
    KeyError
        No catalog of that name.
    """
    wanted = _squeeze(name)
    for catalog in target_catalogs():
        if wanted in {_squeeze(n) for n in (catalog.name, *catalog.prefixes)}:
            return catalog
    raise KeyError(name)


def designation_key(catalog: str, designation: str) -> int:
    """The int64 key of a designation (canonical text): 8 bytes of SHA-256 of ``"<catalog> <designation>"``
    folded into :data:`DESIGNATION_KEYS`. Stable across versions and machines; the designation itself is
    stored beside it (``target_designation``)."""
    low, high = DESIGNATION_KEYS
    digest = int.from_bytes(hashlib.sha256(f"{catalog} {designation}".encode()).digest()[:8], "big")
    return low + digest % (high - low + 1)


def _designation(text: str, catalog: MissionCatalog, bare_numbers: bool) -> str | None:
    """The canonical form of ``text`` if it is one of the catalog's designation forms, else None."""
    for form in catalog.designation_forms:
        if not bare_numbers and form.pattern.startswith("(?P<number>") and form.canonical == "({number})":
            continue  # a bare number is a designation only where the catalog is told
        match = re.fullmatch(form.pattern, text)
        if match is not None:
            parts = {k: v or "" for k, v in match.groupdict().items()}
            canonical = form.canonical.format(**parts)
            number = parts.get("number")
            if number and "(" in form.canonical and not catalog.min_id <= int(number) <= catalog.max_id:
                return None
            return canonical
    return None


_DESIGNATION_TEXT = re.compile(r"[A-Za-z0-9 ()/'.-]{1,64}")


def check_designation(raw: Any, catalog: MissionCatalog, source: str, what: str) -> str:
    """Return the canonical designation of ``raw`` in a designation catalog (``MPC``): ``(11251)`` for
    ``"11251"`` or ``"(11251) Icarion"``, ``3I`` for ``"3I/ATLAS"``, ``1981 EK47`` for ``"1981EK47"``.

    Only the forms of the catalog's ``designation_forms`` are taken, of at most 64 characters of
    letters, digits, spaces and ``()/'.-``: no control character, no path.

    Raises
    ------
    InvalidTargetError
        Missing, or no designation of the catalog.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidTargetError(source, f"no {what} value: the file names no {catalog.name} target")
    if isinstance(raw, bool | np.bool_ | float | np.floating):
        raise InvalidTargetError(source, f"{what} = {raw!r} is not a {catalog.name} designation")
    text = str(raw).strip()
    found = _designation(text, catalog, bare_numbers=True) if _DESIGNATION_TEXT.fullmatch(text) else None
    if found is None:
        raise InvalidTargetError(
            source,
            f"{what} = {text[:80]!r} is not a {catalog.name} designation (e.g. '(11251)', '3I/ATLAS', 'C/2019 Y4', '1981 EK47')",
        )
    return found


def read_target(raw: Any, catalog: MissionCatalog, source: str, what: str) -> Target:
    """A target read from a file as an ID of ``catalog``: an integer in its ranges, or a designation.

    Raises
    ------
    InvalidTargetError
        Missing, or no ID of the catalog.
    """
    if catalog.id_kind == "designation":
        return Target(catalog.name, check_designation(raw, catalog, source, what))
    if isinstance(raw, str) and _ID_TEXT.fullmatch(raw) and not raw.strip().isdigit():  # 'TIC 261136679'
        return Target(catalog.name, parse_target(raw, catalog, source, what))
    return Target(catalog.name, check_target_id(raw, catalog, source, what))


def _absent(raw: Any) -> bool:
    """True for a keyword that names no ID: missing, blank, or NaN (CDIPS writes TICID = 'nan')."""
    if raw is None:
        return True
    if isinstance(raw, float | np.floating):
        return not math.isfinite(raw)
    return isinstance(raw, str) and raw.strip().lower() in ("", "nan", "none", "null")


def read_file_target(
    value: Any,
    catalog: MissionCatalog,
    source: str,
    keyword: str,
    others: dict[str, str] | None = None,
    lookup: Any = None,
) -> tuple[MissionCatalog, Target]:
    """The target of a file: its ID in its mission's catalog, or, when the file gives none there
    (the keyword missing, blank or NaN), its ID in the first of ``others`` it gives.

    Parameters
    ----------
    value : Any
        The value of ``keyword`` in the file (None when absent).
    catalog : MissionCatalog
        The mission's catalog.
    source, keyword : str
        Named in errors.
    others : dict of str to str
        Catalog name -> keyword, in order (``Product.other_targets``: TGLC ``{"Gaia DR3": "GAIADR3"}``).
    lookup : callable
        ``lookup(keyword)`` gives the value of another keyword of the file (None when absent).

    Raises
    ------
    InvalidTargetError
        An ID outside its catalog, or no ID in any of the catalogs (one line, naming them).
    """
    if not others or not _absent(value):
        return catalog, read_target(value, catalog, source, keyword)
    tried = [f"{keyword} = {value!r}"]
    for name, other_keyword in others.items():
        raw = lookup(other_keyword) if lookup is not None else None
        if _absent(raw):
            tried.append(f"no {other_keyword}")
            continue
        other = catalog_named(name)
        return other, read_target(raw, other, source, other_keyword)
    raise InvalidTargetError(
        source, f"names no target: {', '.join(tried)} (no {catalog.name} ID, nor one of {', '.join(others)})"
    )


def parse_any_target(text: Any) -> Target | int:
    """A target given by a user, in any catalog: ``"TIC 261136679"``, ``"Gaia DR3 5707485527450614656"``,
    ``"MPC 3I/ATLAS"``, ``"3I/ATLAS"``, ``"(11251)"``; a bare number (``261136679``, ``"261136679"``)
    names no catalog and is returned as an int.

    An ID of a catalog other than the missions' (Gaia DR2/DR3, MPC) must lie in its ranges; a TIC,
    KIC or EPIC number outside its catalog's ranges is taken as given and finds no target, as
    :func:`parse_target_text` has always taken it.

    Raises
    ------
    ValueError
        Not an ID of a catalog lcarchive knows, or a Gaia ID outside the source IDs' range (one line).
    """
    if isinstance(text, int | np.integer) and not isinstance(text, bool | np.bool_):
        return int(text)
    raw = str(text).strip()
    if re.fullmatch(r"\d+", raw):
        return int(raw)
    from lcarchive.catalog.content import static_catalog

    catalogs = target_catalogs()
    missions = {m.target_catalog for m in static_catalog().missions}
    prefixed = sorted(((p, c) for c in catalogs for p in (c.name, *c.prefixes)), key=lambda pc: -len(pc[0]))
    for prefix, catalog in prefixed:
        pattern = r"\s*".join(re.escape(part) for part in prefix.split()) + r"[\s_:-]*(?P<rest>\S.*)"
        match = re.fullmatch(pattern, raw, flags=re.IGNORECASE)
        if match is None:
            continue
        rest = match["rest"].strip()
        if catalog.id_kind == "designation":
            found = _designation(rest, catalog, bare_numbers=True) if _DESIGNATION_TEXT.fullmatch(rest) else None
            if found is None:
                continue
            return Target(catalog.name, found)
        if not re.fullmatch(r"\d+", rest):
            continue
        number = int(rest)
        if not catalog.valid(number) and catalog.name not in missions:  # 'KIC 261136679': a lookup that finds nothing, as ever
            raise ValueError(f"{raw!r}: {number} is not a {catalog.name} ID (the IDs issued: {catalog.describe_ranges()})")
        return Target(catalog.name, number)
    for catalog in catalogs:
        if catalog.id_kind == "designation" and _DESIGNATION_TEXT.fullmatch(raw):
            found = _designation(raw, catalog, bare_numbers=False)
            if found is not None:
                return Target(catalog.name, found)
    names = ", ".join(c.name for c in catalogs)
    raise ValueError(
        f"{raw[:80]!r} is not a target ID of a catalog lcarchive knows ({names}), "
        "e.g. 'TIC 261136679', 'Gaia DR3 5707485527450614656', '3I/ATLAS'"
    )


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
