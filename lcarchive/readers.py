"""Read light-curve files into ``LightCurveFile`` records.

The reader is generic: which product a file is, which columns give ``time``,
``flux``, ``flux_err`` and ``quality``, and which header keywords become
per-target values are read from the product definitions in ``catalog/products``.
FITS parsing is astropy's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from lcarchive.definitions import static_catalog, unit_aliases
from lcarchive.errors import BadInputError, CorruptFileError, InvalidIdentifierError, UnrecognizedProductError
from lcarchive.identifiers import check_segment, check_target_id, observation_id, safe_name, segment_from_time
from lcarchive.models import DetectionRule, Mission, MissionCatalog, Product

__all__ = ["Column", "LightCurveFile", "check_rows", "detect_product", "parse_lightcurve", "read_lightcurve"]

MAX_HDUS = 1000
"""A FITS file of more HDUs than this is refused (read in bounded time): light-curve products
hold 2 to 25 (K2SFF: a table per aperture); a file of thousands is no light curve."""

MAX_DECOMPRESSED_BYTES = 4 * 1024**3
"""A gzip-compressed input (``.fits.gz``) that inflates beyond this is refused."""

UNKNOWN_SEGMENT = 9999
"""The segment of a light curve that gives no sector/quarter/campaign and whose time stamps
fall in no known one (a generic file written without its SECTOR): kept, not refused."""

MAX_VECTOR_ELEMENTS = 16
"""Vector columns of a light-curve table with at most this many elements per row (astropy's
Time columns: jd1, jd2) are kept as one variable per element; longer ones (pixel stamps) are
named in the notes as not kept."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a light-curve table, as it will be stored.

    Attributes
    ----------
    name : str
        Variable name in the observation group (``time``, ``flux``, ``sap_flux``...).
    source : str
        Source column name (FITS ``TTYPEn``).
    data : numpy.ndarray, shape (n_rows,)
        Values in the file's row order, native byte order, source dtype.
    units : str or None
        astropy unit string of the FITS ``TUNITn`` (``"electron / s"``), None if absent.
    fits_unit : str or None
        The ``TUNITn`` value as written in the file.
    description : str
        The comment of ``TTYPEn`` (the product's column description).
    hdu : str
        Name (EXTNAME, else index) of the table HDU it comes from; "" for derived values.
    fits_format : str or None
        The FITS ``TFORMn`` of a column stored in another dtype (``L`` logicals as int8,
        ``1A`` characters as uint8); None when the dtype is the file's.
    vector_index : int or None
        For one element of a vector column (``TFORM 2D``: astropy's jd1, jd2 Time columns),
        its index; None for a scalar column.
    """

    name: str
    source: str
    data: np.ndarray
    units: str | None
    fits_unit: str | None
    description: str
    hdu: str = ""
    fits_format: str | None = None
    vector_index: int | None = None


@dataclass(slots=True)
class LightCurveFile:
    """A parsed light-curve file: one target in one observation.

    Attributes
    ----------
    source : str
        Path or URL the file was read from.
    sha256 : str
        SHA-256 of the file's bytes.
    size : int
        File size, bytes.
    product, mission, target_catalog
        Definitions the file was recognised as.
    target : int
        TIC, KIC or EPIC ID.
    segment : int
        Sector, quarter or campaign.
    cadenceno : numpy.ndarray, shape (n_rows,), int64
        Cadence numbers (``CADENCENO``).
    columns : dict of str to Column
        ``time``, ``flux``, ``flux_err``, ``quality`` and every other numeric column.
    target_values : dict of str to (value, attrs)
        Per-target header values (ra, dec, magnitude, camera/CCD...).
    headers : dict of str to str
        Full FITS headers, one 80-character-card string per HDU, keyed by variable name.
    images : dict of str to (numpy.ndarray, attrs)
        2-D image extensions (the APERTURE mask of SPOC and Kepler products), shape
        (NAXIS2, NAXIS1), keyed by the lower-case extension name.
    data_release : int or None
        ``DATA_REL`` keyword.
    pipeline_version : str or None
        ``PROCVER`` keyword.
    file_date : str or None
        ``DATE`` keyword (file creation date).
    instruments : list of str
        Instrument names (``tess/camera4/ccd2``...).
    notes : dict of str to str
        How the file departs from the usual: ``cadenceno`` (how cadence numbers were made when
        the file has none), ``dropped_columns`` (columns that could not be kept, e.g. strings).
    label : str
        Infix of the observation ID after the product (a table's ``label``: ``tess-table-<label>-s0014``);
        "" for none.
    span : (float, float) or None
        ``TSTART``, ``TSTOP`` of the file's header (mission time, d): the segment the file was cut
        from; None when the file gives none.
    processing : list of str
        Processing tools that derived the file from its product (``catalog/tools.json``).
    product_version : str
        Version of the product (an HLSP's release: ``v01``, ``v2``), from the product's
        ``version_rules``; "" when it has none.
    derived_from : str or None
        For a light curve derived from a mission product by a processing tool: the observation
        of that product (``kepler-lc-q03`` for ``kepler-lc-kepcotrend-q03``).
    """

    source: str
    sha256: str
    size: int
    product: Product
    mission: Mission
    target_catalog: MissionCatalog
    target: int
    segment: int
    cadenceno: np.ndarray
    columns: dict[str, Column]
    target_values: dict[str, tuple[Any, dict[str, Any]]]
    headers: dict[str, str]
    images: dict[str, tuple[np.ndarray, dict[str, Any]]]
    data_release: int | None
    pipeline_version: str | None
    file_date: str | None
    instruments: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    label: str = ""
    span: tuple[float, float] | None = None
    processing: list[str] = field(default_factory=list)
    product_version: str = ""
    derived_from: str | None = None

    @property
    def n_rows(self) -> int:
        """Rows of the light-curve table: the cadences the file has."""
        return int(self.cadenceno.size)

    @property
    def coverage(self) -> float:
        """Fraction of the segment (``span``) covered by the file's finite time stamps, 0..1.

        A full SPOC 2-min file covers 0.99 or more, a 100-cadence cut-down file 0.005; NaN when
        the file gives no segment (``span`` None).
        """
        if self.span is None:
            return math.nan
        time = self.columns["time"].data
        finite = time[np.isfinite(time)]
        start, stop = self.span
        if finite.size == 0 or not stop > start:
            return math.nan
        return float(min(1.0, max(0.0, (float(finite.max()) - float(finite.min())) / (stop - start))))

    @property
    def name(self) -> str:
        """Base name of the source path or URL, control characters percent-encoded
        (:func:`lcarchive.identifiers.safe_name`)."""
        return safe_name(PurePosixPath(self.source.rstrip("/")).name)

    @property
    def observation_id(self) -> str:
        """``<mission>-<product>[-<label>]-<s|q|c><segment>``, e.g. ``tess-spoc-2min-s0001``."""
        return observation_id(self.mission, self.product, self.segment, self.label)



def read_lightcurve(source: str, storage_options: dict | None = None) -> LightCurveFile:
    """Read one light-curve file from a local path or any fsspec URL.

    Parameters
    ----------
    source : str
        Path or URL (``https://``, ``s3://``...).
    storage_options : dict, optional
        Passed to fsspec for URLs.

    Returns
    -------
    LightCurveFile

    Raises
    ------
    CorruptFileError
        Empty, truncated or unreadable file.
    UnrecognizedProductError
        Readable, but not a light-curve product lcarchive knows.
    InvalidTargetError
        Missing or invalid TIC/KIC/EPIC ID.
    """
    return parse_lightcurve(read_source(source, storage_options), source)


def read_source(source: str, storage_options: dict | None = None) -> bytes:
    """The bytes of an input file (local path or fsspec URL).

    Raises
    ------
    CorruptFileError
        No such file, a directory, or unreadable.
    """
    from lcarchive.stores import classify, first_line, read_object

    try:
        if "://" not in source or source.startswith("file://"):
            with open(source.removeprefix("file://"), "rb") as f:
                return f.read()
        return read_object(source, storage_options)
    except FileNotFoundError as exc:
        raise CorruptFileError(source, "no such file" if classify(exc) != "no such bucket" else "no such bucket") from exc
    except IsADirectoryError as exc:
        raise CorruptFileError(source, "is a directory") from exc
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        raise CorruptFileError(source, f"cannot be read: {kind} ({first_line(str(exc) or type(exc).__name__)})") from exc


def _header_value(value: Any) -> Any:
    """Map astropy's Undefined (an empty keyword value) to None."""
    return None if isinstance(value, fits.card.Undefined) else value


def value_rule_holds(rule: DetectionRule, values: Any) -> bool:
    """A keyword rule tested on ``values``, a mapping of keyword to value (None: absent).

    Used on FITS headers, HDF5 root attributes and SkyPortal series metadata alike.
    """
    value = values.get(rule.keyword) if rule.keyword is not None else None
    present = value is not None
    if rule.present is not None and present != rule.present:
        return False
    if not present:
        return rule.present is False
    text = str(value).strip().lower()
    if rule.equals is not None and text != rule.equals.strip().lower():
        return False
    if rule.contains is not None and rule.contains.strip().lower() not in text:
        return False
    if rule.min is not None or rule.max is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
    return True


class _HeaderValues:
    """A FITS header as a mapping of keyword to value, astropy's Undefined as None."""

    def __init__(self, header: fits.Header) -> None:
        self.header = header

    def get(self, keyword: str) -> Any:
        return _header_value(self.header[keyword]) if keyword in self.header else None


def _rule_holds(rule: DetectionRule, hdul: fits.HDUList) -> bool:
    if rule.hdu >= len(hdul):
        return False
    if rule.column is not None:
        hdu = hdul[rule.hdu]
        names = {n.upper() for n in hdu.columns.names} if isinstance(hdu, fits.BinTableHDU) else set()
        return rule.column.upper() in names
    return value_rule_holds(rule, _HeaderValues(hdul[rule.hdu].header))


def detect_product(hdul: fits.HDUList) -> Product | None:
    """Return the product whose detection rules all hold for this file, or None."""
    for product in static_catalog().products:
        if product.format == "fits" and product.detect and all(_rule_holds(rule, hdul) for rule in product.detect):
            return product
    return None


def product_version(product: Product, hdul: fits.HDUList | None, source: str) -> str:
    """The version of a product a file is, by the product's ``version_rules`` (first that holds).

    A rule reads a keyword (``VERSION``), matches the file name (``_v(?P<version>[0-9.]+)_``: MAST's
    HLSP names carry the HLSP's version) or tests a column (K2SC v2's ``trtime``, v1's ``trend_t``).
    """
    name = PurePosixPath(source.rstrip("/")).name
    for rule in product.version_rules:
        if rule.file_name is not None:
            match = re.search(rule.file_name, name)
            if match:
                return rule.version or f"v{match.group('version')}"
        elif hdul is not None and rule.keyword is not None:
            found = _keyword(hdul, rule.keyword, tuple(range(min(len(hdul), 2))))
            if found is not None and found[0] is not None and str(found[0]).strip():
                return rule.version or f"v{str(found[0]).strip().lstrip('vV')}"
        elif hdul is not None and rule.column is not None:
            if any(rule.column.upper() in {n.upper() for n in h.columns.names} for h in hdul if isinstance(h, fits.BinTableHDU)):
                return rule.version or ""
    return ""


@functools.lru_cache(maxsize=1024)
def _astropy_unit(fits_unit: str | None) -> str | None:
    """astropy unit string of a FITS TUNITn value (None if astropy cannot read it); cached."""
    if not fits_unit:
        return None
    fits_unit = unit_aliases().get(fits_unit.strip(), fits_unit)
    try:
        return u.Unit(fits_unit, format="fits", parse_strict="raise").to_string()
    except ValueError:
        pass
    try:
        return u.Unit(fits_unit, parse_strict="raise").to_string()
    except ValueError:
        return None


def _target_id(hdul: fits.HDUList, catalog: MissionCatalog, source: str, keyword: str | None = None) -> int:
    keyword = keyword or catalog.id_keyword
    found = _keyword(hdul, keyword, tuple(range(min(len(hdul), 2))))
    raw = None if found is None else found[0]
    return check_target_id(raw, catalog, source, keyword)


def _segment(hdul: fits.HDUList, mission: Mission, source: str, lc_hdu: int = 1) -> int | None:
    """The file's sector/quarter/campaign keyword (primary header, else the light-curve table's);
    None when neither has it."""
    found = _keyword(hdul, mission.segment_keyword, tuple(dict.fromkeys(i for i in (0, lc_hdu) if i < len(hdul))))
    if found is None or found[0] is None:
        return None
    return check_segment(found[0], mission, source, mission.segment_keyword)


def _keyword(hdul: fits.HDUList, keyword: str, hdus: tuple[int, ...]) -> tuple[Any, str] | None:
    for i in hdus:
        if keyword in hdul[i].header:
            value = _header_value(hdul[i].header[keyword])
            return value, hdul[i].header.comments[keyword]
    return None


def hdu_labels(hdul: fits.HDUList) -> list[str]:
    """What each HDU's variables record as ``source_hdu``: its EXTNAME (astropy's upper-case
    ``name``; PRIMARY for the primary), or its index when it has none or shares it with another
    HDU of the file (astropy's Table writer names its table PRIMARY too)."""
    names = [h.name or "" for h in hdul]
    return [n if n and names.count(n) == 1 else str(i) for i, n in enumerate(names)]


def _hdu_index(hdul: fits.HDUList, hdu: int | str) -> int | None:
    if isinstance(hdu, int):
        return hdu if hdu < len(hdul) else None
    return next((i for i, h in enumerate(hdul) if h.name.upper() == hdu.upper()), None)


def _instruments(hdul: fits.HDUList, mission: Mission) -> list[str]:
    head = hdul[0].header
    if mission.instrument == "tess" and "CAMERA" in head and "CCD" in head:
        return [f"tess/camera{head['CAMERA']}/ccd{head['CCD']}"]
    if mission.instrument == "kepler" and "MODULE" in head and "OUTPUT" in head:
        return [f"kepler/module{head['MODULE']}/output{head['OUTPUT']}"]
    return []


def parse_lightcurve(data: bytes, source: str) -> LightCurveFile:
    """Parse the bytes of a light-curve file.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        Its path or URL, used in messages and provenance.

    Returns
    -------
    LightCurveFile

    Raises
    ------
    CorruptFileError, UnrecognizedProductError, InvalidTargetError
        As for ``read_lightcurve``.

    Notes
    -----
    The format is told by the first bytes: FITS (``SIMPLE  =``); HDF5 (QLP's files, or a
    SkyPortal photometric series written with pandas, see :mod:`lcarchive.skyportal`); JSON
    (``{``: a SkyPortal photometric series). CSV and Parquet tables need a column mapping
    (:mod:`lcarchive.tables`) and are refused here.
    """
    if len(data) == 0:
        raise CorruptFileError(source, "empty file (0 bytes)")
    if data.startswith(b"\x1f\x8b"):
        return _parse_gzip(data, source)
    if not data.startswith(b"SIMPLE  ="):
        if data.startswith(b"\x89HDF"):
            return _parse_hdf5(data, source)
        if data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
            from lcarchive.skyportal import parse_skyportal_json

            return parse_skyportal_json(data, source)
        if data.startswith(b"PAR1"):
            raise UnrecognizedProductError(source, "a Parquet table: ingest it with a column mapping (--table-map)")
        raise UnrecognizedProductError(source, "not a FITS file (no SIMPLE card at the start)")
    hdul = _open_fits(data, source)
    with hdul:
        try:
            return _parse_fits(hdul, data, source)
        except (BadInputError, InvalidIdentifierError):
            raise
        except (fits.VerifyError, KeyError, AttributeError, ValueError, TypeError, IndexError) as exc:
            # astropy meets a header it cannot use (an unparsable card, a bad TFORMn, a missing TFIELDS)
            raise CorruptFileError(source, f"damaged FITS header or table: {_first_line(exc)}") from exc


def _parse_fits(hdul: fits.HDUList, data: bytes, source: str) -> LightCurveFile:
    """Parse an open FITS file: a known product, a light curve derived from one by a processing
    tool (:mod:`lcarchive.derived`), or a light curve of no known product (:mod:`lcarchive.generic`).

    A file its product's rules recognise but whose layout the definition does not foresee (a
    missing column: a version of the product lcarchive has no definition of) is read generically
    instead of refused, with a note; if that fails too, the product's reason is raised.
    """
    from lcarchive.generic import generic_layout

    product = detect_product(hdul)
    if product is None:
        return _parse_fits_as(hdul, data, source, None)
    try:
        return _parse_fits_as(hdul, data, source, product)
    except UnrecognizedProductError as exc:
        try:
            generic_layout(hdul, source)
            lc = _parse_fits_as(hdul, data, source, None)
        except BadInputError:
            raise exc from None
        lc.notes["generic"] = f"recognised as {product.name}, but {exc.reason}: {lc.notes['generic']}"
        return lc


def _parse_fits_as(hdul: fits.HDUList, data: bytes, source: str, product: Product | None) -> LightCurveFile:
    """Parse an open FITS file as ``product``, or generically (``product`` None)."""
    from lcarchive.derived import derivation
    from lcarchive.generic import generic_layout, mission_time_of

    catalog = static_catalog()
    notes: dict[str, str] = {}
    bad_segment: UnrecognizedProductError | None = None
    if product is None:
        layout = generic_layout(hdul, source)
        product, mission, target_catalog, lc_hdu = layout.product, layout.mission, layout.target_catalog, layout.lc_hdu
        target = layout.target
        try:
            segment = None if layout.segment is None else check_segment(layout.segment, mission, source, layout.segment_keyword)
        except UnrecognizedProductError as exc:
            segment, bad_segment = None, exc
        notes.update(layout.notes)
    else:
        mission = catalog.mission(product.mission)
        target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
        lc_hdu = _hdu_index(hdul, product.lightcurve_hdu)
        if lc_hdu is None or not isinstance(hdul[lc_hdu], fits.BinTableHDU):
            raise UnrecognizedProductError(source, f"{product.name}: no light-curve table HDU {product.lightcurve_hdu!r}")
        target = _target_id(hdul, target_catalog, source, product.target_keyword)
        try:
            segment = _segment(hdul, mission, source, lc_hdu)
        except UnrecognizedProductError as exc:  # told by the time stamps below, if they fall in a known segment
            segment, bad_segment = None, exc
    try:
        table = hdul[lc_hdu].data
        if table is None or len(table) == 0:
            raise CorruptFileError(source, f"HDU {lc_hdu} ({hdul[lc_hdu].name}) holds no rows: no light curve")
        labels = hdu_labels(hdul)
        vectors: dict[str, tuple[np.ndarray, dict]] = {}
        columns, dropped = _columns(hdul[lc_hdu], table, product, -1 if segment is None else segment, source,
                                    labels[lc_hdu], vectors)
        extra_series, table_arrays, dropped_elsewhere = _other_tables(hdul, lc_hdu, table, product.columns.cadenceno, labels)
        table_arrays.update(vectors)
    except (CorruptFileError, UnrecognizedProductError):
        raise
    except Exception as exc:
        raise CorruptFileError(source, f"table in HDU {lc_hdu} unreadable: {exc}") from exc
    offset = product.columns.time_offset
    converted, how = (mission_time_of(hdul, lc_hdu, product.columns.time, mission, source) if product.generic_columns
                      else (columns["time"].data - offset, f"{columns['time'].source} - {offset}") if offset else (None, None))
    if how is not None:  # the mission time made from the column, which is kept as it is
        kept = columns["time"]
        if kept.vector_index is None:
            name = kept.source.lower() if kept.source.lower() not in CORE_VARIABLES else f"{kept.source.lower()}_column"
            columns[name] = kept
        columns["time"] = Column("time", "", converted, "d", None, f"{kept.source or 'time'}: {how}", kept.hdu)
        if product.generic_columns:
            notes["time"] = how
    cadenceno, derived = _cadence_numbers(columns, hdul, lc_hdu, product, source)
    columns.pop("cadenceno", None)
    columns.update(extra_series)
    check_rows(columns["time"].data, cadenceno, source)
    if segment is None:
        segment = segment_from_time(columns["time"].data, mission)
        if segment is None and bad_segment is not None:
            raise bad_segment
        if segment is None:
            segment = UNKNOWN_SEGMENT
            notes["segment"] = (f"no {mission.segment_keyword} keyword and its time stamps fall in no known "
                                f"{mission.segment_kind}: stored as {mission.segment_kind} {UNKNOWN_SEGMENT} (unknown)")
        else:
            why = bad_segment.reason if bad_segment is not None else f"no {mission.segment_keyword} keyword"
            notes["segment"] = f"{why}: {mission.segment_kind} {segment} told by its time stamps"
    label, processing, derived_from = "", [], None
    if (how_derived := derivation(hdul, lc_hdu, product)) is not None:
        label, processing = how_derived.label, how_derived.tools
        derived_from = observation_id(mission, product, segment)
        notes["derived"] = json.dumps({"tools": how_derived.tools, "added_columns": how_derived.added_columns,
                                       "history": how_derived.calls, "parameters": how_derived.parameters}, sort_keys=True)
    target_values = {}
    for var, keyword in product.target_keywords.items():
        found = _keyword(hdul, keyword, tuple(dict.fromkeys((0, lc_hdu))))
        value, comment = found if found is not None else (None, "")
        target_values[var] = (value, {"source_keyword": keyword, "description": comment})
    headers = {f"header_{label.lower() if not label.isdigit() else f'hdu{label}'}": _header_text(h, data)
               for label, h in zip(labels, hdul, strict=True)}
    images = dict(table_arrays)
    for i, h in enumerate(hdul):
        if not isinstance(h, fits.ImageHDU | fits.PrimaryHDU) or h.data is None or h.data.ndim < 1:
            continue
        if h.data.dtype.kind not in "iuf":
            continue
        name = labels[i].lower() if not labels[i].isdigit() else f"hdu{i}"
        pixels = h.data.astype(h.data.dtype.newbyteorder("="), copy=True)
        images[name] = (
            pixels,
            {"description": f"data of the {h.name or f'HDU {i}'} HDU, shape (NAXISn, ..., NAXIS1) of its header; "
             "padded to the largest of the group", "source_hdu": labels[i]},
        )
    if derived:
        notes["cadenceno"] = derived
    if dropped or dropped_elsewhere:
        notes["dropped_columns"] = ", ".join([*dropped, *dropped_elsewhere])
    head = hdul[0].header
    data_rel = _header_value(head.get("DATA_REL"))
    procver = _header_value(head.get("PROCVER"))
    date = _header_value(head.get("DATE"))
    return LightCurveFile(
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        product=product,
        mission=mission,
        target_catalog=target_catalog,
        target=target,
        segment=segment,
        cadenceno=cadenceno,
        columns=columns,
        target_values=target_values,
        headers=headers,
        images=images,
        notes=notes,
        data_release=int(data_rel) if isinstance(data_rel, int) and not isinstance(data_rel, bool) else None,
        pipeline_version=str(procver).strip() if procver is not None else None,
        file_date=_file_date(date, notes),
        instruments=_instruments(hdul, mission),
        span=header_span(hdul, lc_hdu),
        label=label,
        processing=processing,
        product_version=product_version(product, hdul, source),
        derived_from=derived_from,
    )


def _file_date(value: Any, notes: dict[str, str]) -> str | None:
    """The ``DATE`` keyword if it is an ISO date (``2018-10-05`` or ``2018-10-05T06:11:08``), which
    ranks releases as text; anything else is noted and not used."""
    if value is None:
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[0-9:.]*)?", text):
        return text
    notes["file_date"] = f"DATE = {value!r} is no ISO date: not used to rank releases"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open_fits(data: bytes, source: str) -> fits.HDUList:
    """Open FITS bytes with every HDU read, refusing files whose bytes are missing or damaged.

    A file is truncated only against its own headers: astropy finds an HDU's data shorter than
    its header says (NAXISn, PCOUNT), or a header cut short. ``NEXTEND`` is advisory (lightkurve's
    ``to_fits`` copies NEXTEND = 2 into files of one extension) and is not checked. At most
    ``MAX_HDUS`` HDUs are read.

    Raises
    ------
    CorruptFileError
        Unreadable, truncated, or more than ``MAX_HDUS`` HDUs.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True)
            count = 0
            for _ in hdul:  # reads the headers one by one; stops past the limit
                count += 1
                if count > MAX_HDUS:
                    hdul.close()
                    raise CorruptFileError(source, f"more than {MAX_HDUS} HDUs: no light-curve product has so many "
                                           f"(lcarchive reads at most {MAX_HDUS})")
            hdul.readall()
        except CorruptFileError:
            raise
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError, IndexError...
            raise CorruptFileError(source, f"unreadable FITS: {exc}") from exc
    messages = [str(w.message) for w in caught]
    truncated = [m for m in messages if "truncated" in m.lower()]
    if truncated:
        raise CorruptFileError(source, truncated[0])
    cut = [m for m in messages if "Header size is not multiple of 2880" in m and "HDU #0" not in m]
    if cut:
        raise CorruptFileError(source, f"truncated: the file ends inside the header of an extension "
                               f"({cut[0].splitlines()[0].strip()})")
    return hdul


def _parse_gzip(data: bytes, source: str) -> LightCurveFile:
    """A gzip-compressed light curve (``.fits.gz``): parsed as the file it holds.

    The light curve's ``sha256`` and ``size`` are those of the decompressed file, so a
    ``.fits.gz`` and the ``.fits`` it holds are the same input and an export rebuilds the FITS
    file byte for byte; the compressed file's own checksum and size are kept in the notes.
    """
    import zlib

    inflater = zlib.decompressobj(wbits=31)
    try:
        inner = inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise CorruptFileError(source, f"damaged gzip stream: {exc}") from exc
    if len(inner) > MAX_DECOMPRESSED_BYTES:
        raise CorruptFileError(source, f"inflates beyond {MAX_DECOMPRESSED_BYTES} bytes: refused")
    if not inflater.eof:
        raise CorruptFileError(source, "truncated gzip stream (the compressed file ends early)")
    if inner.startswith(b"\x1f\x8b"):
        raise UnrecognizedProductError(source, "gzip inside gzip: decompress it first")
    lc = parse_lightcurve(inner, source)
    lc.notes["compression"] = (f"gzip: read decompressed; the compressed file is {len(data)} bytes, SHA-256 "
                               f"{hashlib.sha256(data).hexdigest()}")
    return lc


def _header_text(hdu: Any, data: bytes) -> str:
    """The HDU's header exactly as its cards stand in the file (80-character cards, END, padding).

    Taken from the file's bytes where astropy records the header's place (cheaper than
    re-formatting every card), else formatted by astropy.
    """
    start, end = getattr(hdu, "_header_offset", None), getattr(hdu, "_data_offset", None)
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data):
        text = data[start:end].decode("ascii", errors="replace")
        if text.startswith(("SIMPLE  =", "XTENSION=")):
            return text
    return hdu.header.tostring()


CORE_VARIABLES = ("time", "cadenceno", "flux", "flux_err", "quality")


def _column_values(table: fits.FITS_rec, name: str) -> tuple[np.ndarray | None, str | None]:
    """A column as lcarchive stores it, and the FITS format it came from when it was converted.

    Numbers keep their dtype (native byte order); logicals (``L``) become int8 and one-character
    strings (``1A``, CDIPS's quality letters) their ASCII codes (uint8): the FITS format is kept
    so that an export writes them back as they were. Returns (None, None) for what cannot be
    kept on the cadence axis (vector columns, longer strings).
    """
    values = np.asarray(table.field(name))
    if values.ndim != 1:
        return None, None
    if values.dtype.kind in "iuf":
        return values.astype(values.dtype.newbyteorder("="), copy=True), None
    if values.dtype.kind == "b":
        return values.astype(np.int8), "L"
    if values.dtype.kind == "S" and values.dtype.itemsize == 1:
        return values.view(np.uint8).copy(), "1A"
    if values.dtype.kind == "U" and all(len(v) <= 1 for v in values):
        return np.array([ord(v) if v else 0 for v in values], dtype=np.uint8), "1A"
    return None, None


def _is_vector(values: np.ndarray) -> bool:
    """A numeric column of a few values per row, kept one variable per element."""
    return values.dtype.kind in "iuf" and values.ndim == 2 and 1 <= values.shape[1] <= MAX_VECTOR_ELEMENTS


def _description(header: fits.Header, i: int) -> str:
    comment = header.comments[f"TTYPE{i}"] if f"TTYPE{i}" in header else ""
    if comment.lower().startswith("column title:"):
        comment = comment.split(":", 1)[1].strip()
    return comment


def _columns(
    hdu: fits.BinTableHDU, table: fits.FITS_rec, product: Product, segment: int, source: str, hdu_name: str,
    arrays: dict[str, tuple[np.ndarray, dict]] | None = None,
) -> tuple[dict[str, Column], list[str]]:
    """The light-curve table's columns by variable name, and the names of columns not kept.

    Vector columns of a few elements (astropy's jd1, jd2 Time columns) become one variable per
    element; larger numeric ones (eleanor's pixel stamps TPF, TPF_ERR) go to ``arrays``, kept per
    target in the file's row order.
    """
    cmap = product.columns
    names = {n.upper(): n for n in table.names}
    flux_err = next((c for c in cmap.flux_err_columns(segment) if c.upper() in names), None)
    core = {"time": cmap.time, "flux": cmap.flux}
    if cmap.cadenceno is not None and cmap.cadenceno.upper() in names:
        core["cadenceno"] = cmap.cadenceno
    if cmap.quality is not None:
        core["quality"] = cmap.quality
    if flux_err is not None:
        core["flux_err"] = flux_err
    missing = [c for c in core.values() if c.upper() not in names]
    if missing:
        raise UnrecognizedProductError(source, f"{product.name} table lacks column(s) {', '.join(missing)}")
    if "flux_err" in core and cmap.flux_err_scale is not None:
        del core["flux_err"]  # kept under its own name; flux_err is derived from it below
    by_source = {col.upper(): var for var, col in core.items()}
    renames = {k.upper(): v for k, v in cmap.renames.items()}

    def variable(column: str) -> str:
        var = by_source.get(column.upper()) or renames.get(column.upper()) or column.lower()
        if var in CORE_VARIABLES and column.upper() not in by_source:
            var = f"{var}_column"  # a column named like a core variable that is not the product's one
        return var

    out: dict[str, Column] = {}
    dropped: list[str] = []
    header = hdu.header
    for i, col in enumerate(table.columns, start=1):  # the FITS_rec's ColDefs: built once
        values, fits_format = _column_values(table, col.name)
        var = variable(col.name)
        if values is None:
            raw = np.asarray(table.field(col.name))
            if var in by_source.values() and not (var == "time" and product.generic_columns and _is_vector(raw)):
                what = "complex numbers" if raw.dtype.kind == "c" else "text" if raw.dtype.kind in "SU" else \
                    f"{raw.dtype} values of shape {raw.shape[1:]} per row"
                raise UnrecognizedProductError(
                    source, f"the {var} column {col.name} (TFORM {col.format}) holds {what}, not one number per cadence: "
                    "no light curve lcarchive can store")
            if _is_vector(raw):  # one variable per element (astropy's jd1, jd2 Time columns)
                base = var if var not in CORE_VARIABLES else f"{col.name.lower()}_column"
                for k in range(raw.shape[1]):
                    element = raw[:, k].astype(raw.dtype.newbyteorder("="), copy=True)
                    out[f"{base}_{k}"] = Column(f"{base}_{k}", col.name, element, _astropy_unit(col.unit), col.unit or None,
                                                _description(header, i), hdu_name, None, k)
                if var == "time":
                    out["time"] = Column("time", col.name, raw[:, 0].astype(np.float64), None, col.unit or None,
                                         _description(header, i), hdu_name, None, 0)
                continue
            if raw.dtype.kind in "iuf" and raw.ndim > 1 and arrays is not None:  # pixel stamps: kept per target
                arrays[var if var not in CORE_VARIABLES else f"{var}_column"] = (
                    raw.astype(raw.dtype.newbyteorder("="), copy=True),
                    {"description": f"vector column {col.name} of the light-curve table, one element of shape "
                     f"{raw.shape[1:]} per row of the file, in the file's row order; padded to the largest of the group",
                     "source_hdu": hdu_name, "source_column": col.name, "units": _astropy_unit(col.unit) or "",
                     "fits_unit": col.unit or "", "vector_column": 1})
                continue
            dropped.append(col.name)
            continue
        if var == "quality":  # narrower signed ints widened as bit patterns (TGLC's int16 TESS_flags)
            if values.dtype.kind == "i" and values.dtype.itemsize < 4:
                values = values.view(f"u{values.dtype.itemsize}")
            if values.dtype.kind not in "iu":
                raise UnrecognizedProductError(source, f"the quality column {col.name} holds {values.dtype} values, "
                                               "not integer bit masks")
            values = values.astype(np.int32)
        if var in ("time", "flux") and values.dtype.kind not in "f" and fits_format is not None:
            raise UnrecognizedProductError(source, f"the {var} column {col.name} (TFORM {col.format}) holds no numbers")
        out[var] = Column(var, col.name, values, _astropy_unit(col.unit), col.unit or None, _description(header, i),
                          hdu_name, fits_format)
    if flux_err is not None and cmap.flux_err_scale is not None:
        numerator, denominator = (out[variable(c)].data for c in cmap.flux_err_scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (out[variable(flux_err)].data * numerator / denominator).astype(out["flux"].data.dtype)
        out["flux_err"] = Column(
            "flux_err", "", scaled, out["flux"].units, None,
            f"{flux_err} x {cmap.flux_err_scale[0]} / {cmap.flux_err_scale[1]}: the error scaled to the flux, as lightkurve does",
            hdu_name,
        )
    if "flux_err" not in out:
        out["flux_err"] = Column("flux_err", "", np.full(len(table), np.nan, dtype=out["flux"].data.dtype), out["flux"].units,
                                 None, "no error column in this product", hdu_name)
    if "quality" not in out:
        out["quality"] = Column("quality", "", np.zeros(len(table), dtype=np.int32), None, None,
                                "no quality column in this product: 0 (no flag) on every cadence", hdu_name)
    return out, dropped


def _cadence_numbers(
    columns: dict[str, Column], hdul: fits.HDUList | None, lc_hdu: int, product: Product, source: str = ""
) -> tuple[np.ndarray, str | None]:
    """The cadence numbers of the rows, and how they were derived when not read from a column.

    A cadence column that is missing, or not strictly increasing in time order (TGLC v2 files
    hold 0 on every row), is replaced by numbers made from the time stamps
    (:func:`lcarchive.frames.derive_cadences`: the first row round(TIME / step), each next one
    plus its time step in steps); the column stays a variable.
    """
    column = columns.get("cadenceno")
    if column is not None:
        values = column.data.astype(np.int64)
        time = columns["time"].data
        order = np.argsort(values, kind="stable")
        finite = np.isfinite(time[order])
        if np.unique(values).size == values.size and np.all(np.diff(time[order][finite]) > 0):
            return values, None
        name = column.source.lower() if column.source.lower() not in CORE_VARIABLES else f"{column.source.lower()}_column"
        columns[name] = Column(name, column.source, column.data, column.units, column.fits_unit, column.description,
                               column.hdu, column.fits_format)
        del columns["cadenceno"]
    from lcarchive.frames import derive_cadences

    derived, how = derive_cadences(columns["time"].data, source)
    return derived, how


def _other_tables(
    hdul: fits.HDUList, lc_hdu: int, main: fits.FITS_rec, cadence_column: str | None, labels: list[str]
) -> tuple[dict[str, Column], dict[str, tuple[np.ndarray, dict]], list[str]]:
    """Columns of the file's other binary tables.

    A table with the light-curve table's rows (same row count, and the same cadence column if it
    has one: K2SFF's apertures, K2SC's SAP table) gives variables ``<table>_<column>`` on the
    cadence axis; any other table gives per-target arrays ``<table>_<column>`` of its own shape
    (eleanor's aperture table).
    """
    series: dict[str, Column] = {}
    arrays: dict[str, tuple[np.ndarray, dict]] = {}
    dropped: list[str] = []
    main_cadence = None
    if cadence_column is not None and cadence_column.upper() in {n.upper() for n in main.names}:
        main_cadence = np.asarray(main.field(cadence_column))
    for i, h in enumerate(hdul):
        if i == lc_hdu or not isinstance(h, fits.BinTableHDU) or h.data is None:
            continue
        prefix = labels[i].lower() if not labels[i].isdigit() else f"hdu{i}"
        table = h.data
        names = {n.upper(): n for n in table.names}
        aligned = len(table) == len(main)
        if aligned and main_cadence is not None and cadence_column.upper() in names:
            aligned = np.array_equal(np.asarray(table.field(names[cadence_column.upper()])), main_cadence)
        for k, col in enumerate(table.columns, start=1):
            name = f"{prefix}_{col.name.lower()}"
            values, fits_format = _column_values(table, col.name) if aligned else (None, None)
            if values is not None:
                series[name] = Column(name, col.name, values, _astropy_unit(col.unit), col.unit or None,
                                      _description(h.header, k), labels[i], fits_format)
                continue
            raw = np.asarray(table.field(col.name))
            if raw.dtype.kind == "b":
                raw, fits_format = raw.astype(np.int8), "L"
            elif raw.dtype.kind not in "iuf":
                dropped.append(f"{h.name or i}.{col.name}")
                continue
            arrays[name] = (
                raw.astype(raw.dtype.newbyteorder("="), copy=True),
                {"description": f"column {col.name} of table {h.name or f'HDU {i}'} ({len(table)} rows), "
                 "shape (rows, ...) of the table; padded to the largest of the group",
                 "source_hdu": labels[i], "source_column": col.name, "units": _astropy_unit(col.unit) or "",
                 "fits_unit": col.unit or "", **({"fits_format": fits_format} if fits_format else {})},
            )
    return series, arrays, dropped


def check_rows(time: np.ndarray, cadenceno: np.ndarray, source: str) -> None:
    """Refuse a light curve whose rows cannot be placed on a cadence axis.

    One rule for every reader (FITS, HDF5, SkyPortal series, tables): a light curve needs at least
    one row with a finite time stamp, and no two rows of one cadence number. How much of its
    segment the rows cover is no reason to refuse it (a cut-down file is a light curve); that is
    recorded instead (:attr:`LightCurveFile.coverage`).

    Raises
    ------
    CorruptFileError
        Repeated cadence numbers, or no finite time stamp.
    """
    if np.unique(cadenceno).size != cadenceno.size:
        raise CorruptFileError(source, "repeated cadence numbers in the table")
    if not np.isfinite(time).any():
        raise CorruptFileError(source, "no finite time stamp in the table")


def header_span(hdul: fits.HDUList, lc_hdu: int) -> tuple[float, float] | None:
    """``TSTART``, ``TSTOP`` of the light-curve HDU's header (else the primary's); None if absent or not a span."""
    found = _keyword(hdul, "TSTART", (lc_hdu, 0)), _keyword(hdul, "TSTOP", (lc_hdu, 0))
    if found[0] is None or found[1] is None:
        return None
    tstart, tstop = found[0][0], found[1][0]
    if isinstance(tstart, bool) or isinstance(tstop, bool) or not isinstance(tstart, float | int) or not isinstance(tstop, float | int):
        return None
    if not (math.isfinite(tstart) and math.isfinite(tstop) and tstop > tstart):
        return None
    return float(tstart), float(tstop)


# -- HDF5 products (QLP's internal files) ------------------------------------------------------


def _h5_variable(path: str) -> str:
    """Variable name of an HDF5 dataset: its path, lower case, without the LightCurve/AperturePhotometry levels."""
    name = path.lower().removeprefix("lightcurve/").replace("aperturephotometry/", "")
    return name.replace("/", "_").replace(" ", "_")


def _h5_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _is_pandas_store(h5: Any) -> bool:
    """True for an HDF5 file written by pandas (HDFStore: a top-level group with ``pandas_type``)."""
    try:
        return any("pandas_type" in obj.attrs for obj in h5.values())
    except Exception:  # dangling links, unreadable objects: not a store pandas could read either
        return False


def _parse_hdf5(data: bytes, source: str) -> LightCurveFile:
    """Parse an HDF5 light-curve file of a product whose format is 'hdf5' (see Product.format)."""
    import json

    import h5py

    try:
        h5 = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:
        raise CorruptFileError(source, f"unreadable HDF5: {exc}") from exc
    with h5:
        root = {k: _h5_scalar(v) for k, v in h5.attrs.items()}

        def holds(rule: DetectionRule) -> bool:
            return rule.column in h5 if rule.column is not None else value_rule_holds(rule, root)

        product = next((p for p in static_catalog().products if p.format == "hdf5" and all(holds(r) for r in p.detect)), None)
        if product is None:
            if _is_pandas_store(h5):  # a SkyPortal photometric series?
                from lcarchive.skyportal import parse_skyportal_hdf5

                return parse_skyportal_hdf5(data, source)
            raise UnrecognizedProductError(source, f"an HDF5 file of no light-curve product lcarchive knows (root attributes: {', '.join(root) or 'none'})")
        catalog = static_catalog()
        mission = catalog.mission(product.mission)
        target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
        keyword = product.target_keyword or target_catalog.id_keyword
        target = check_target_id(root.get(keyword), target_catalog, source, keyword)
        segment_keyword = product.segment_keyword or mission.segment_keyword
        segment = check_segment(root.get(segment_keyword), mission, source, segment_keyword)
        attributes: dict[str, dict[str, Any]] = {"/": root}
        datasets: dict[str, Any] = {}

        def visit(name: str, obj: Any) -> None:
            if obj.attrs:
                attributes[name] = {k: _h5_scalar(v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                datasets[name] = obj

        h5.visititems(visit)
        placeholders: dict[str, Any] = dict(product.attribute_defaults)
        for group_attrs in attributes.values():
            placeholders.update(group_attrs)
        cmap = product.columns

        def path(template: str | None) -> str | None:
            if template is None:
                return None
            try:
                return template.format(**placeholders)
            except (KeyError, ValueError, IndexError):
                return None

        time_path, flux_path = path(cmap.time), path(cmap.flux)
        missing = [p for p in (time_path, flux_path) if p is None or p not in datasets]
        if missing:
            raise UnrecognizedProductError(source, f"{product.name}: no dataset {missing[0] or cmap.flux}")
        n = datasets[time_path].shape[0]
        core = {"time": time_path, "flux": flux_path}
        for candidate in cmap.flux_err:
            if path(candidate) in datasets:
                core["flux_err"] = path(candidate)
                break
        for var, template in (("cadenceno", cmap.cadenceno), ("quality", cmap.quality)):
            if path(template) in datasets:
                core[var] = path(template)
        by_path = {p: v for v, p in core.items()}
        columns: dict[str, Column] = {}
        images: dict[str, tuple[np.ndarray, dict]] = {}
        dropped = []
        for name, dset in datasets.items():
            values = np.asarray(dset[()])
            if values.dtype.kind not in "iuf":
                dropped.append(name)
                continue
            values = values.astype(values.dtype.newbyteorder("="), copy=False)
            var = _h5_variable(name)
            if values.ndim == 1 and values.shape[0] == n:
                units = "mag" if "magnitude" in name.lower() and "error" not in name.lower() else None
                core_var = by_path.get(name)
                if core_var in ("time", "cadenceno"):
                    columns[core_var] = Column(core_var, name, values, "d" if core_var == "time" else None, None,
                                               f"HDF5 dataset {name}", "")
                    continue
                columns[var] = Column(var, name, values, units, None, f"HDF5 dataset {name}", "")
                if core_var is not None:  # flux, flux_err, quality: a copy, since the dataset differs per target
                    copy = values.astype(np.int32) if core_var == "quality" else values
                    columns[core_var] = Column(core_var, "", copy, units, None,
                                               f"the target's {core_var} dataset (named by the per-target {core_var}_source)", "")
            else:
                images[_h5_variable(name)] = (values, {"description": f"HDF5 dataset {name}", "source_column": name})
        if "flux_err" not in columns:
            columns["flux_err"] = Column("flux_err", "", np.full(n, np.nan, dtype=columns["flux"].data.dtype),
                                         columns["flux"].units, None, "no error dataset for the default flux", "")
        if "quality" not in columns:
            columns["quality"] = Column("quality", "", np.zeros(n, dtype=np.int32), None, None,
                                        "no quality flags in this file: 0 (no flag) on every cadence", "")
        cadenceno, derived = _cadence_numbers(columns, None, 0, product, source)
        columns.pop("cadenceno", None)
        check_rows(columns["time"].data, cadenceno, source)
        target_values = {}
        for var, keyword in product.target_keywords.items():
            target_values[var] = (root.get(keyword), {"source_keyword": keyword, "description": f"root attribute {keyword!r}"})
        for var in ("flux", "flux_err", "quality"):
            if core.get(var):
                target_values[f"{var}_source"] = (core[var], {"description": f"HDF5 dataset copied to {var} for this target"})
        headers = {"hdf5_attributes": json.dumps(attributes, sort_keys=True, default=str)}
        notes = {"cadenceno": derived} if derived else {}
        if dropped:
            notes["dropped_columns"] = ", ".join(dropped)
        instruments = []
        if "camera" in target_values and "ccd" in target_values and None not in (target_values["camera"][0], target_values["ccd"][0]):
            instruments = [f"tess/camera{target_values['camera'][0]}/ccd{target_values['ccd'][0]}"]
        return LightCurveFile(
            source=source,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            product=product,
            mission=mission,
            target_catalog=target_catalog,
            target=target,
            segment=segment,
            cadenceno=cadenceno,
            columns=columns,
            target_values=target_values,
            headers=headers,
            images=images,
            notes=notes,
            data_release=None,
            pipeline_version=None,
            file_date=None,
            instruments=instruments,
        )
