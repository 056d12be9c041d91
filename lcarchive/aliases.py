"""Cross-identification: names of one star in several catalogs, and how pairs of them are found.

An alias is a pair of names, each ``"<catalog> <ID>"`` (``"KIC 8462852"``, ``"TIC 185336364"``,
``"Gaia DR3 2081900940499099136"``), the catalog as ``catalog/missions.json`` (TIC, KIC, EPIC) or
``catalog/aliases.json`` (Gaia DR2, Gaia DR3, and any catalog added there) spell it. Pairs come
from three places (:class:`lcarchive.catalog.models.Alias`):

- ``header``: a light curve's header names its star in a second catalog (TGLC's GAIADR3,
  eleanor's GAIA_ID: ``header_identifiers`` in ``catalog/aliases.json``);
- ``crossmatch``: the archive's own targets of different catalogs at one position
  (:func:`cross_match`: coordinates brought to one epoch with the headers' proper motions, the
  radius and its reason in ``catalog/aliases.json``);
- ``operator``: ``lcarchive alias``; an operator's removal is kept, so the cross-match does not
  add the pair again.

This module is pure (no store): :mod:`lcarchive.store.aliases` keeps the table in the catalog
repository; :func:`names_of` gives every name linked to one.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from lcarchive.catalog.content import catalog_data_dir, static_catalog
from lcarchive.catalog.models import Alias

__all__ = [
    "AliasTable",
    "alias_settings",
    "catalog_names",
    "cross_match",
    "header_pairs",
    "name_of",
    "names_of",
    "normal_name",
    "split_name",
]


@functools.cache
def alias_settings() -> dict[str, Any]:
    """``catalog/aliases.json``: catalogs and their coordinate epochs, header identifiers, match radius."""
    with (catalog_data_dir() / "aliases.json").open(encoding="utf-8") as f:
        return json.load(f)


def catalog_names() -> list[str]:
    """The catalogs a name may be in: the mission catalogs, then those of ``catalog/aliases.json``."""
    names = [c.name for c in static_catalog().mission_catalogs]
    return list(dict.fromkeys([*names, *(c["name"] for c in alias_settings()["catalogs"])]))


def split_name(text: str) -> tuple[str, str]:
    """(catalog, ID) of a name given as ``"KIC 8462852"``, ``"kic8462852"``, ``"Gaia DR3 123"``.

    The catalog is matched case-insensitively (longest name first), spaces between it and the
    ID optional; a mission catalog's ID is checked against its ID ranges and written without
    leading zeros.

    Raises
    ------
    ValueError
        If the text names no catalog lcarchive knows, or an ID out of its catalog's range.
    """
    from lcarchive.identifiers import parse_any_target

    raw = str(text).strip()
    try:  # a target of any catalog the missions' data know: TIC, KIC, EPIC, Gaia DR2/DR3, MPC designations
        named = parse_any_target(raw)
    except ValueError:
        named = None
    if named is not None and not isinstance(named, int):
        return split_name_of(named.catalog, named.id, text)
    for catalog in sorted(catalog_names(), key=len, reverse=True):
        pattern = re.escape(catalog).replace(r"\ ", r"\s*")
        match = re.fullmatch(rf"({pattern})[\s:_-]*(\S.*)", raw, flags=re.IGNORECASE)
        if match is None:
            continue
        return split_name_of(catalog, match[2].strip(), text)
    raise ValueError(
        f"{text!r} names no star of a catalog lcarchive knows (e.g. 'KIC 8462852'; catalogs: {', '.join(catalog_names())})"
    )


def split_name_of(catalog: str, ident: Any, text: str) -> tuple[str, str]:
    """(catalog, ID as the alias table writes it) of an ID of ``catalog`` read from ``text``: an
    integer catalog's ID checked against its ranges and written without leading zeros, a
    designation as it is.

    Raises
    ------
    ValueError
        An integer catalog's ID that is no number or lies outside the catalog's ranges.
    """
    mission_catalog = next((c for c in static_catalog().mission_catalogs if c.name == catalog), None)
    is_designation = mission_catalog is not None and getattr(mission_catalog, "id_kind", "integer") == "designation"
    if is_designation:
        return catalog, str(ident).strip()
    if mission_catalog is not None or catalog.startswith("Gaia"):
        if not str(ident).strip().isdigit():
            raise ValueError(f"{text!r}: {catalog} IDs are numbers")
        number = int(str(ident).strip())
        if mission_catalog is not None and not any(r.min <= number <= r.max for r in mission_catalog.id_ranges):
            raise ValueError(f"{text!r}: {number} is outside the {catalog} ID ranges (catalog/missions.json)")
        return catalog, str(number)
    return catalog, str(ident).strip()


def normal_name(text: str) -> str:
    """A name as the alias table writes it: ``"<catalog> <ID>"`` (see :func:`split_name`)."""
    catalog, ident = split_name(text)
    return f"{catalog} {ident}"


def name_of(catalog: str, ident: Any) -> str:
    """The name of ID ``ident`` in ``catalog``."""
    return f"{catalog} {int(ident) if isinstance(ident, int | np.integer) else str(ident).strip()}"


class AliasTable:
    """The alias table of an archive version: pairs, and the pairs operators removed.

    Parameters
    ----------
    aliases : iterable of Alias
        The pairs (each once, ``a`` < ``b``).
    removed : iterable of (str, str)
        Pairs an operator removed: never added again by the header or cross-match rules.
    """

    def __init__(self, aliases: Iterable[Alias] = (), removed: Iterable[tuple[str, str]] = ()) -> None:
        self.pairs: dict[tuple[str, str], Alias] = {}
        self.removed: set[tuple[str, str]] = {_key(a, b) for a, b in removed}
        for alias in aliases:
            self.pairs[_key(alias.a, alias.b)] = alias

    @classmethod
    def from_text(cls, text: str) -> AliasTable:
        """The table of its stored JSON text (``""``: empty).

        Raises
        ------
        ValueError
            If the text is no alias table.
        """
        if not text:
            return cls()
        data = json.loads(text)
        return cls((Alias.model_validate(a) for a in data.get("aliases", [])), (tuple(p) for p in data.get("removed", [])))

    def to_text(self) -> str:
        """The stored JSON text: pairs sorted, each pair's names sorted."""
        return json.dumps(
            {
                "aliases": [self.pairs[k].model_dump(mode="json", exclude_none=True) for k in sorted(self.pairs)],
                "removed": [list(k) for k in sorted(self.removed)],
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def add(self, alias: Alias) -> bool:
        """Add a pair (an operator's also undoes its removal); False if it was there or was removed
        by an operator (header and cross-match pairs only). An operator's pair replaces a derived one."""
        key = _key(alias.a, alias.b)
        if key[0] == key[1]:
            raise ValueError(f"{alias.a!r} is the same name twice")
        if alias.source == "operator":
            self.removed.discard(key)
        elif key in self.removed:
            return False
        old = self.pairs.get(key)
        if old is not None and (old.source == "operator" or alias.source != "operator"):
            return False
        self.pairs[key] = alias.model_copy(update={"a": key[0], "b": key[1]})
        return True

    def remove(self, a: str, b: str) -> bool:
        """Remove a pair and remember the removal; False if there was no such pair."""
        key = _key(a, b)
        self.removed.add(key)
        return self.pairs.pop(key, None) is not None

    def aliases(self) -> list[Alias]:
        """Every pair, sorted."""
        return [self.pairs[k] for k in sorted(self.pairs)]

    def frame(self) -> pd.DataFrame:
        """The pairs as a table: columns a, b, source, evidence, separation_arcsec."""
        rows = [a.model_dump() for a in self.aliases()]
        return pd.DataFrame(rows, columns=["a", "b", "source", "evidence", "separation_arcsec"])


def _key(a: str, b: str) -> tuple[str, str]:
    a, b = normal_name(a), normal_name(b)
    return (a, b) if a <= b else (b, a)


def names_of(table: AliasTable, name: str) -> list[str]:
    """Every name linked to ``name`` by the table's pairs, directly or through others (``name``
    first, then sorted): the star's names in every catalog."""
    start = normal_name(name)
    links: dict[str, set[str]] = {}
    for a, b in table.pairs:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    seen, todo = {start}, [start]
    while todo:
        for other in links.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return [start, *sorted(seen - {start})]


def header_pairs(facts: pd.DataFrame) -> list[Alias]:
    """The pairs the headers give: for each target (``name``) a second catalog's ID in one of the
    ``header_identifiers`` variables of ``catalog/aliases.json`` (a fact column of that name)."""
    out = []
    for rule in alias_settings()["header_identifiers"]:
        column = rule["variable"]
        if column not in facts:
            continue
        for name, value, obs in zip(facts["name"], facts[column], facts["observation"], strict=True):
            ident = _identifier(value)
            if ident is None:
                continue
            other = f"{rule['catalog']} {ident}"
            if other != name:
                out.append(Alias(a=name, b=other, source="header", evidence=f"{column} of {obs}"))
    return out


def _identifier(value: Any) -> str | None:
    """A catalog ID read from a header variable, or None (empty, NaN, 0, the integer fill, text of no digits)."""
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit() or int(text) <= 0 or int(text) in (2**31 - 1, 2**63 - 1, 999999999):
        return None
    return str(int(text))


def epoch_of(catalog: str) -> float:
    """The epoch (Julian year) of a catalog's coordinates (``catalog/aliases.json``); the common
    epoch for a catalog not listed."""
    settings = alias_settings()
    for c in settings["catalogs"]:
        if c["name"] == catalog:
            return float(c["coordinate_epoch"])
    return float(settings["common_epoch"])


def at_common_epoch(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in deg of the rows of ``frame`` (columns catalog, ra, dec and, where known,
    pmra, pmdec in mas/yr, pmra being mu_alpha* = mu_alpha cos dec) moved to the common epoch of
    ``catalog/aliases.json`` with astropy's ``SkyCoord.apply_space_motion``; a row without a
    finite proper motion, or whose catalog is at the common epoch, stays where it is."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from erfa import ErfaWarning  # type: ignore[import-untyped]  # pyerfa ships no type information

    ra = frame["ra"].to_numpy(np.float64).copy()
    dec = frame["dec"].to_numpy(np.float64).copy()
    common = float(alias_settings()["common_epoch"])
    pmra = frame["pmra"].to_numpy(np.float64) if "pmra" in frame else np.full(len(frame), np.nan)
    pmdec = frame["pmdec"].to_numpy(np.float64) if "pmdec" in frame else np.full(len(frame), np.nan)
    epochs = np.array([epoch_of(c) for c in frame["catalog"]], dtype=np.float64)
    move = np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(ra) & np.isfinite(dec) & (epochs != common)
    for epoch in np.unique(epochs[move]):
        rows = np.flatnonzero(move & (epochs == epoch))
        c = SkyCoord(
            ra=ra[rows] * u.deg,
            dec=dec[rows] * u.deg,
            pm_ra_cosdec=pmra[rows] * u.mas / u.yr,
            pm_dec=pmdec[rows] * u.mas / u.yr,
            obstime=Time(epoch, format="jyear"),
            frame="icrs",
        )
        with warnings.catch_warnings():  # no parallax in the headers: ERFA takes a far distance, as it says
            warnings.filterwarnings("ignore", message=".*distance overridden", category=ErfaWarning)
            moved = c.apply_space_motion(new_obstime=Time(common, format="jyear"))
        ra[rows] = moved.ra.deg
        dec[rows] = moved.dec.deg
    return ra, dec


def cross_match(new: pd.DataFrame, known: pd.DataFrame, radius_arcsec: float | None = None) -> list[Alias]:
    """Pairs of targets of different catalogs at one position.

    Parameters
    ----------
    new : pandas.DataFrame
        Targets just stored: columns name, catalog, ra, dec (deg, at their catalog's epoch),
        and optionally pmra, pmdec (mas/yr).
    known : pandas.DataFrame
        Targets they may be (the archive's, near them; ``new`` may be among them): same columns.
    radius_arcsec : float, optional
        The match radius; ``match_radius_arcsec`` of ``catalog/aliases.json`` by default.

    Returns
    -------
    list of Alias
        For each new target and each other catalog, its nearest target of that catalog within the
        radius, if that target's nearest of the new target's catalog is the new target too
        (mutual nearest: one star in each catalog). Positions compared at the common epoch.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    radius = float(alias_settings()["match_radius_arcsec"] if radius_arcsec is None else radius_arcsec)
    every = pd.concat([new, known], ignore_index=True).drop_duplicates("name")
    ra_all, dec_all = every["ra"].to_numpy(np.float64), every["dec"].to_numpy(np.float64)
    # a header's position that is no position (NaN, |DEC| > 90 deg in a damaged or fuzzed header) matches nothing
    every = every[np.isfinite(ra_all) & np.isfinite(dec_all) & (np.abs(dec_all) <= 90.0)]
    every = every.reset_index(drop=True)
    if every.empty:
        return []
    ra, dec = at_common_epoch(every)
    coords = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")
    i, j, sep, _ = coords.search_around_sky(coords, radius * u.arcsec)
    catalogs = every["catalog"].to_numpy(str)
    names = every["name"].to_numpy(str)
    keep = catalogs[i] != catalogs[j]
    i, j, sep = i[keep], j[keep], sep.arcsec[keep]
    nearest: dict[tuple[int, str], tuple[float, int]] = {}  # (row, other catalog) -> (separation, row)
    for a, b, s in zip(i.tolist(), j.tolist(), sep.tolist(), strict=True):
        key = (a, str(catalogs[b]))
        if key not in nearest or s < nearest[key][0]:
            nearest[key] = (s, b)
    wanted = set(new["name"])
    out = []
    for (a, _other), (s, b) in sorted(nearest.items()):
        if names[a] not in wanted or nearest.get((b, str(catalogs[a])), (0.0, -1))[1] != a:
            continue
        out.append(
            Alias(
                a=str(names[a]),
                b=str(names[b]),
                source="crossmatch",
                evidence=f"mutual nearest within {radius:g} arcsec at epoch {float(alias_settings()['common_epoch']):g}",
                separation_arcsec=round(float(s), 4),
            )
        )
    return out
