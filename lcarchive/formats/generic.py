"""Light-curve FITS files of no known product, read generically.

A file that no product definition recognises is still a light curve when it holds a binary
table with a time column and a flux column, and names its target: lightkurve's
``LightCurve.to_fits`` and ``LightCurve.write`` outputs, astropy tables, light curves of
pipelines lcarchive has no definition of. It is read as its mission's generic product
(``catalog/products/<mission>-generic.json``): every column and keyword kept, the time stamps
converted to the mission's time system with astropy from the file's own time keywords
(``TIMESYS``, ``TIMEREF``/``TREFPOS``, ``BJDREFI``/``BJDREFF``, ``MJDREF``, ``JDREF``) or from
an astropy ``Time`` column (two doubles jd1, jd2 per row, ``TCTYPn`` its scale), and a note
saying how it was read.

Which mission a file belongs to is told by ``TELESCOP``/``MISSION``, the mission's ID keyword
(``TICID``, ``KEPLERID``), a sector/quarter/campaign keyword, a catalog prefix in
``OBJECT``/``LABEL`` (``TIC 261136679``, ``KIC 10748390``, ``EPIC 211436265``) or the unit of
the time column (``btjd``, ``bkjd``); keywords are looked up in the primary header and in the
table's (astropy's Table writer puts them all in the table's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from astropy.io import fits

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import ColumnMap, Mission, MissionCatalog, Product
from lcarchive.errors import InvalidTargetError, UnrecognizedProductError
from lcarchive.formats.pixels import refuse_pixel_file
from lcarchive.identifiers import Target, catalog_named, check_target_id, parse_any_target, parse_target, parse_target_text

__all__ = ["GenericLayout", "generic_layout", "mission_time_of"]

_TIME_UNITS = {"btjd": ("tess", 2457000.0), "bkjd": ("kepler", 2454833.0)}
"""Time units naming a mission's time (lightkurve writes its Time format as TUNIT)."""


@dataclass
class GenericLayout:
    """How a file of no known product is read.

    Attributes
    ----------
    product : Product
        The mission's generic product, its column map set to this file's columns.
    mission : Mission
    target_catalog : MissionCatalog
        The catalog of its target: the mission's, or another where the file names its target there only.
    lc_hdu : int
        Index of the light-curve table.
    target : Target
        The target (catalog, ID).
    segment : int or None
        Sector/quarter/campaign keyword, if the file has one.
    notes : dict of str to str
        How the file was read (``generic``), for the light curve's ``ingest_notes``.
    """

    product: Product
    mission: Mission
    target_catalog: MissionCatalog
    lc_hdu: int
    target: Target
    segment: Any
    segment_keyword: str
    notes: dict[str, str] = field(default_factory=dict)


def _value(header: fits.Header, key: str) -> Any:
    value = header.get(key)
    return None if isinstance(value, fits.card.Undefined) else value


class _Keywords:
    """Keywords of the primary header, then of the light-curve table's header."""

    def __init__(self, hdul: fits.HDUList, lc_hdu: int) -> None:
        self.headers = [hdul[0].header] + ([hdul[lc_hdu].header] if lc_hdu else [])

    def get(self, key: str) -> Any:
        for header in self.headers:
            value = _value(header, key)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                return value
        return None


def _first(names: dict[str, str], candidates: list[str], flux: str = "") -> str | None:
    for candidate in candidates:
        name = names.get(candidate.replace("{flux}", flux).upper())
        if name is not None:
            return name
    return None


def _numeric(table: fits.FITS_rec, name: str) -> bool:
    values = np.asarray(table.field(name))
    return values.dtype.kind in "iuf" and values.ndim in (1, 2)


def _light_curve_table(hdul: fits.HDUList, candidates: Any) -> tuple[int, str, str] | None:
    """The first binary table with a numeric time and flux column: (HDU index, time, flux); the
    table named LIGHTCURVE first."""
    order = sorted(range(len(hdul)), key=lambda i: (hdul[i].name.upper() != "LIGHTCURVE", i))
    for i in order:
        hdu = hdul[i]
        if not isinstance(hdu, fits.BinTableHDU) or hdu.data is None:
            continue
        names = {n.upper(): n for n in hdu.columns.names}
        time, flux = _first(names, candidates.time), _first(names, candidates.flux)
        if time is not None and flux is not None:
            return i, time, flux
    return None


def _refuse(hdul: fits.HDUList, source: str, candidates: Any) -> NoReturn:
    """Raise the true reason why a file of no known product is no light curve."""
    refuse_pixel_file(hdul, source)
    tables = [(i, h) for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)]
    head = hdul[0].header
    shown = ", ".join(f"{k}={head[k]!r}" for k in ("TELESCOP", "ORIGIN", "OBJECT", "CREATOR") if _value(head, k))
    if not tables:
        announced = _value(head, "NEXTEND")
        if isinstance(announced, int) and announced > len(hdul) - 1 and head.get("NAXIS", 0) == 0:
            raise UnrecognizedProductError(
                source,
                f"truncated or no light curve: the file ends after {len(hdul)} HDU(s) and holds no table, "
                f"though its primary header announces {announced} extension(s) (NEXTEND)",
            )
        raise UnrecognizedProductError(
            source, f"no light curve: the file holds no binary table ({shown or 'no identifying keywords'})"
        )
    listed = "; ".join(f"HDU {i} ({h.name or 'unnamed'}): {', '.join(h.columns.names[:12])}" for i, h in tables[:3])
    raise UnrecognizedProductError(
        source,
        f"no light curve lcarchive can read: no table has both a time column ({', '.join(candidates.time[:4])}...) "
        f"and a flux column ({', '.join(candidates.flux[:4])}...) [{listed}]; {shown or 'no identifying keywords'}",
    )


def _missions_told(keywords: _Keywords, time_unit: str) -> dict[str, str]:
    """Mission name -> the evidence for it."""
    told: dict[str, str] = {}
    telescope = str(keywords.get("TELESCOP") or "").strip().lower()
    mission_kw = str(keywords.get("MISSION") or "").strip().lower()
    if telescope == "tess" or mission_kw == "tess":
        told["tess"] = f"TELESCOP/MISSION {telescope or mission_kw!r}"
    if mission_kw == "k2":
        told["k2"] = "MISSION 'K2'"
    elif mission_kw == "kepler":
        told["kepler"] = "MISSION 'Kepler'"
    for mission in static_catalog().missions:
        value = keywords.get(mission.segment_keyword)
        if isinstance(value, int) and not isinstance(value, bool):
            told.setdefault(mission.name, f"{mission.segment_keyword} = {value}")
    if keywords.get("TICID") is not None:
        told.setdefault("tess", "TICID")
    for text in (keywords.get("OBJECT"), keywords.get("LABEL")):
        try:
            prefix, _ = parse_target_text(text) if text is not None else (None, 0)
        except ValueError:
            continue
        if prefix is not None:
            for catalog in static_catalog().mission_catalogs:
                if catalog.name == prefix:
                    for mission in static_catalog().missions:
                        if mission.target_catalog == catalog.name:
                            told.setdefault(mission.name, f"OBJECT/LABEL {text!r}")
    if time_unit in _TIME_UNITS and not told:
        told[_TIME_UNITS[time_unit][0]] = f"time unit {time_unit!r}"
    if telescope == "kepler" and not ({"kepler", "k2"} & set(told)):
        kepler_id = keywords.get("KEPLERID")
        epic = next(c for c in static_catalog().mission_catalogs if c.name == static_catalog().mission("k2").target_catalog)
        k2 = isinstance(kepler_id, int) and epic.valid(kepler_id)
        told["k2" if k2 else "kepler"] = f"TELESCOP 'Kepler' and KEPLERID {kepler_id}"
    return told


def _mission(keywords: _Keywords, time_unit: str, source: str) -> Mission:
    told = _missions_told(keywords, time_unit)
    if "kepler" in told and "k2" in told:  # a K2 file says QUARTER= (empty) too: the campaign decides
        told.pop("kepler" if isinstance(keywords.get("CAMPAIGN"), int) else "k2")
    if len(told) == 1:
        return static_catalog().mission(next(iter(told)))
    if not told:
        raise UnrecognizedProductError(
            source,
            "a light curve of no mission lcarchive holds: nothing tells TESS, Kepler or K2 "
            "(no TELESCOP/MISSION, TICID/KEPLERID, SECTOR/QUARTER/CAMPAIGN or TIC/KIC/EPIC name in OBJECT)",
        )
    raise UnrecognizedProductError(
        source, "contradicting missions: " + "; ".join(f"{m} ({why})" for m, why in sorted(told.items()))
    )


def _target(keywords: _Keywords, catalog: MissionCatalog, source: str) -> tuple[MissionCatalog, Target, str]:
    """The target of a generic file: an ID of its mission's catalog (its keyword, TARGETID, OBJECT or
    LABEL), else an OBJECT/LABEL naming a target of a catalog no mission names its targets by (a comet's
    designation, 'MPC 3I/ATLAS' or '3I/ATLAS'; 'Gaia DR3 5707485527450614656')."""
    raw = keywords.get(catalog.id_keyword)
    if raw is not None:
        return catalog, Target(catalog.name, check_target_id(raw, catalog, source, catalog.id_keyword)), catalog.id_keyword
    for key in ("TARGETID", "OBJECT", "LABEL"):
        raw = keywords.get(key)
        if raw is None:
            continue
        try:
            return catalog, Target(catalog.name, parse_target(raw, catalog, source, key)), key
        except InvalidTargetError:
            if key == "TARGETID":
                raise
    missions_catalogs = {m.target_catalog for m in static_catalog().missions}
    for key in ("OBJECT", "LABEL"):
        raw = keywords.get(key)
        if not isinstance(raw, str):
            continue
        try:
            named = parse_any_target(raw)
        except ValueError:
            continue
        if isinstance(named, Target) and named.catalog not in missions_catalogs:
            return catalog_named(named.catalog), named, key
    raise InvalidTargetError(
        source,
        f"names no {catalog.name} target: no {catalog.id_keyword} or TARGETID keyword, and OBJECT/LABEL "
        f"is not a {catalog.name} ID (e.g. '{catalog.name} 123456789') nor a designation or Gaia ID",
    )


def generic_layout(hdul: fits.HDUList, source: str) -> GenericLayout:
    """How to read a FITS file of no known product as a light curve of its mission.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
    source : str
        Input named in errors.

    Returns
    -------
    GenericLayout

    Raises
    ------
    UnrecognizedProductError
        No table with a time and a flux column (no light curve; a target pixel file), a
        truncated file holding only its primary header, or no mission (or contradicting ones).
    InvalidTargetError
        No target ID, or one outside the mission's catalog.
    """
    catalog = static_catalog()
    candidates = next(p.generic_columns for p in catalog.products if p.generic_columns is not None)
    found = _light_curve_table(hdul, candidates)
    if found is None:
        _refuse(hdul, source, candidates)
    lc_hdu, time_column, flux_column = found
    table = hdul[lc_hdu]
    time_unit = str(_value(table.header, f"TUNIT{table.columns.names.index(time_column) + 1}") or "").strip().lower()
    keywords = _Keywords(hdul, lc_hdu)
    mission = _mission(keywords, time_unit, source)
    product = next(p for p in catalog.products if p.mission == mission.name and p.generic_columns is not None)
    target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
    target_catalog, target, target_keyword = _target(keywords, target_catalog, source)
    own = product.generic_columns
    names = {n.upper(): n for n in table.columns.names}
    numeric = {k: v for k, v in names.items() if _numeric(table.data, v)}
    if np.asarray(table.data.field(flux_column)).ndim > 2:
        _refuse(hdul, source, candidates)
    if time_column.upper() not in numeric or flux_column.upper() not in numeric:
        bad = time_column if time_column.upper() not in numeric else flux_column
        values = np.asarray(table.data.field(bad))
        what = "text" if values.dtype.kind in "SU" else f"{values.dtype} of shape {values.shape[1:]}"
        raise UnrecognizedProductError(source, f"column {bad} holds {what}, not numbers: no light curve lcarchive can read")
    flux_err = _first(numeric, own.flux_err, flux_column)  # type: ignore[union-attr]  # the product found has generic_columns
    quality = _first(numeric, own.quality)  # type: ignore[union-attr]  # as above
    cadenceno = _first(numeric, own.cadenceno)  # type: ignore[union-attr]  # as above
    columns = ColumnMap(
        time=time_column, flux=flux_column, flux_err=[flux_err] if flux_err else [], quality=quality, cadenceno=cadenceno
    )
    datasets = [d.model_copy(update={"column": flux_column}) for d in product.datasets]
    read_as = product.model_copy(
        update={"columns": columns, "lightcurve_hdu": lc_hdu, "datasets": datasets, "target_keyword": target_keyword}
    )
    notes = {
        "generic": (
            f"no product definition matched: read generically as {product.name} from HDU {lc_hdu} "
            f"({table.name or 'unnamed'}): time {time_column}, flux {flux_column}"
            + (f", flux_err {flux_err}" if flux_err else ", no flux error")
            + (f", quality {quality}" if quality else ", no quality column")
            + f"; target from {target_keyword}"
        )
    }
    segment = keywords.get(mission.segment_keyword)
    return GenericLayout(read_as, mission, target_catalog, lc_hdu, target, segment, mission.segment_keyword, notes)


def mission_time_of(hdul: fits.HDUList, lc_hdu: int, column: str, mission: Mission, source: str) -> tuple[np.ndarray, str | None]:
    """A generic file's time column in the mission's time system (BTJD, BKJD: TDB, days).

    The column is read as the file says: an astropy ``Time`` column (``TCTYPn`` scale, two
    doubles jd1 + jd2 per row, ``JDREF``/``MJDREF``) gives jd1 + jd2 in its scale; a plain column
    is ``reference + value`` with the reference from ``BJDREFI`` + ``BJDREFF`` (or QLP's
    ``BJDREFR``), ``MJDREFI`` + ``MJDREFF``/``MJDREF`` (+ 2400000.5) or ``JDREF``, in the scale of
    ``TIMESYS`` (TDB if absent), or the mission's reference when the unit is ``btjd``/``bkjd`` or
    the file gives none. astropy converts other scales to TDB; the mission time is then
    (jd1 - epoch) + jd2, which keeps every bit of a value already in the mission's system.

    Returns
    -------
    (numpy.ndarray, str or None)
        Time stamps, shape (n_rows,), float64, NaN where the file has none; and how they were
        converted (None when the column already is the mission's time).
    """
    from astropy.time import Time

    table = hdul[lc_hdu]
    k = table.columns.names.index(column) + 1
    head = table.header
    keywords = _Keywords(hdul, lc_hdu)
    values = np.asarray(table.data.field(column), dtype=np.float64)
    system = mission.time_system
    epoch = system.reference_epoch
    unit = str(_value(head, f"TUNIT{k}") or "").strip().lower()
    scale = str(_value(head, f"TCTYP{k}") or keywords.get("TIMESYS") or "TDB").strip().lower()
    position = str(keywords.get("TIMEREF") or _value(head, f"TRPOS{k}") or keywords.get("TREFPOS") or "").strip().upper()
    if values.ndim == 2:  # an astropy Time column: jd1, jd2
        reference = float(keywords.get("JDREF") or 0.0) + (
            float(keywords.get("MJDREF") or 0.0) + 2400000.5 if keywords.get("MJDREF") else 0.0
        )
        jd1, jd2 = values[:, 0] + reference, values[:, 1]
        how = f"astropy Time column {column} (jd1 + jd2, scale {scale.upper()})"
    else:
        if unit in _TIME_UNITS:
            reference, how = _TIME_UNITS[unit][1], f"unit {unit!r}"
        elif keywords.get("BJDREFI") is not None or keywords.get("BJDREFF") is not None:
            reference = float(keywords.get("BJDREFI") or 0) + float(keywords.get("BJDREFF") or keywords.get("BJDREFR") or 0)
            how = "BJDREFI + BJDREFF"
        elif keywords.get("MJDREFI") is not None or keywords.get("MJDREF") is not None:
            mjd = (
                float(keywords.get("MJDREFI") or 0) + float(keywords.get("MJDREFF") or 0)
                if keywords.get("MJDREFI") is not None
                else float(keywords.get("MJDREF"))
            )
            reference, how = mjd + 2400000.5, "MJDREF + 2400000.5"
        elif keywords.get("JDREF") is not None:
            reference, how = float(keywords.get("JDREF")), "JDREF"
        elif unit == "jd" or np.nanmin(values, initial=np.inf) > 2.0e6:
            reference, how = 0.0, "full Julian dates (no reference keyword)"
        elif unit == "mjd":
            reference, how = 2400000.5, "MJD (unit 'mjd')"
        else:
            reference, how = epoch, f"no time reference keyword: taken as {system.format_name}"
        jd1, jd2 = np.full_like(values, reference), values
        how = f"{column} + {reference!r} ({how}), scale {scale.upper()}"
    if position and position not in ("SOLARSYSTEM", "BARYCENTER", "BARYCENTRIC"):
        how += f"; reference position {position}: not barycentric, kept as given (no barycentric correction applied)"
    if scale == system.scale and np.all(jd1[np.isfinite(jd1)] == epoch):
        return jd2.copy(), None
    finite = np.isfinite(jd1) & np.isfinite(jd2)
    out = np.full(values.shape[0], np.nan)
    if finite.any():
        try:
            t = Time(jd1[finite], jd2[finite], format="jd", scale=scale)
            converted = getattr(t, system.scale)
        except ValueError as exc:
            raise UnrecognizedProductError(source, f"time scale {scale!r} unknown to astropy ({exc})") from None
        out[finite] = (converted.jd1 - epoch) + converted.jd2
    return out, f"{how} -> {system.format_name} = JD_{system.scale.upper()} - {epoch!r} (astropy)"
