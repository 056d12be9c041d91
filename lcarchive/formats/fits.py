"""FITS light curves: a known product (its definition in ``catalog/products``), a light curve
derived from one by a processing tool (:mod:`lcarchive.formats.derived`), or one of no known
product read generically (:mod:`lcarchive.formats.generic`). FITS parsing is astropy's."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import warnings
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from astropy.io import fits

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import Mission, MissionCatalog, Product
from lcarchive.config import settings
from lcarchive.errors import BadInputError, CorruptFileError, UnrecognizedProductError
from lcarchive.formats.cadences import cadence_numbers
from lcarchive.formats.checksums import hdu_checks, integrity
from lcarchive.formats.pixels import refuse_pixel_file
from lcarchive.formats.products import astropy_unit, detect_product, header_keyword, header_value, product_version
from lcarchive.formats.record import CORE_VARIABLES, UNKNOWN_SEGMENT, Column, LightCurveFile, check_rows
from lcarchive.identifiers import Target, check_segment, observation_id, read_file_target, segment_from_time

__all__ = ["hdu_labels", "header_span", "open_fits", "parse_fits", "raw_text"]


def _target_id(
    hdul: fits.HDUList, catalog: MissionCatalog, source: str, keyword: str | None = None, others: dict[str, str] | None = None
) -> tuple[MissionCatalog, Target]:
    """The file's target: its mission catalog's ID (``keyword``), or the first of ``others`` (catalog ->
    keyword) the file gives when it gives none (``Product.other_targets``)."""
    keyword = keyword or catalog.id_keyword
    hdus = tuple(range(min(len(hdul), 2)))

    def lookup(name: str) -> Any:
        found = header_keyword(hdul, name, hdus)
        return None if found is None else found[0]

    return read_file_target(lookup(keyword), catalog, source, keyword, others, lookup)


def _segment(hdul: fits.HDUList, mission: Mission, source: str, lc_hdu: int = 1) -> int | None:
    """The file's sector/quarter/campaign keyword (primary header, else the light-curve table's);
    None when neither has it."""
    found = header_keyword(hdul, mission.segment_keyword, tuple(dict.fromkeys(i for i in (0, lc_hdu) if i < len(hdul))))
    if found is None or found[0] is None:
        return None
    return check_segment(found[0], mission, source, mission.segment_keyword)


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


def parse_fits(hdul: fits.HDUList, data: bytes, source: str) -> LightCurveFile:
    """Parse an open FITS file: a known product, a light curve derived from one by a processing
    tool (:mod:`lcarchive.formats.derived`), or a light curve of no known product (:mod:`lcarchive.formats.generic`).

    A pixel file (target pixel file, TESScut cutout, full-frame image) is refused first, by that
    name (:mod:`lcarchive.formats.pixels`). A file its product's rules recognise but whose layout the definition does not foresee (a
    missing column: a version of the product lcarchive has no definition of) is read generically
    instead of refused, with a note; if that fails too, the product's reason is raised.
    """
    from lcarchive.formats.generic import generic_layout

    refuse_pixel_file(hdul, source)
    product = detect_product(hdul, source)
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
    from lcarchive.formats.derived import derivation
    from lcarchive.formats.generic import generic_layout, mission_time_of

    catalog = static_catalog()
    notes: dict[str, str] = {}
    bad_segment: UnrecognizedProductError | None = None
    if product is None:
        layout = generic_layout(hdul, source)
        product, mission, target_catalog, lc_hdu = layout.product, layout.mission, layout.target_catalog, layout.lc_hdu
        target, designation = layout.target.key, layout.target.id if isinstance(layout.target.id, str) else ""
        try:
            segment = None if layout.segment is None else check_segment(layout.segment, mission, source, layout.segment_keyword)
        except UnrecognizedProductError as exc:
            segment, bad_segment = None, exc
        notes.update(layout.notes)
    else:
        mission = catalog.mission(product.mission)
        target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
        lc_hdu = _hdu_index(hdul, product.lightcurve_hdu)  # type: ignore[assignment]  # None is tested on the next line
        if lc_hdu is None or not isinstance(hdul[lc_hdu], fits.BinTableHDU):
            raise UnrecognizedProductError(source, f"{product.name}: no light-curve table HDU {product.lightcurve_hdu!r}")
        target_catalog, named = _target_id(hdul, target_catalog, source, product.target_keyword, product.other_targets)
        target, designation = named.key, named.id if isinstance(named.id, str) else ""
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
        columns, dropped = _columns(
            hdul[lc_hdu], table, product, -1 if segment is None else segment, source, labels[lc_hdu], vectors
        )
        extra_series, table_arrays, dropped_elsewhere = _other_tables(hdul, lc_hdu, table, product.columns.cadenceno, labels)
        table_arrays.update(vectors)
    except (CorruptFileError, UnrecognizedProductError):
        raise
    except Exception as exc:
        raise CorruptFileError(source, f"table in HDU {lc_hdu} unreadable: {exc}") from exc
    offset = product.columns.time_offset
    converted, how = (
        mission_time_of(hdul, lc_hdu, product.columns.time, mission, source)
        if product.generic_columns
        else (columns["time"].data - offset, f"{columns['time'].source} - {offset}")
        if offset
        else (None, None)
    )
    raw_time = columns["time"].data
    if how is not None:  # the mission time made from the column, which is kept as it is
        kept = columns["time"]
        if kept.vector_index is None:
            name = kept.source.lower() if kept.source.lower() not in CORE_VARIABLES else f"{kept.source.lower()}_column"
            columns[name] = kept
        columns["time"] = Column("time", "", converted, "d", None, f"{kept.source or 'time'}: {how}", kept.hdu)  # type: ignore[arg-type]  # not None when how is not None
        if product.generic_columns:
            notes["time"] = how
    fill = product.columns.time_fill
    if fill is not None and how is not None:  # rows the product marks as having no time stamp: kept, untimed
        untimed = raw_time == fill
        if untimed.any():
            time = columns["time"]
            columns["time"] = Column(
                time.name,
                time.source,
                np.where(untimed, np.nan, time.data),
                time.units,
                time.fits_unit,
                time.description,
                time.hdu,
            )
            notes["time_fill"] = (
                f"{int(untimed.sum())} row(s) hold {product.columns.time} = {fill!r}, the product's value for no time "
                f"stamp: kept as given in {product.columns.time}; time is NaN on them and their cadence numbers "
                "follow the row before"
            )
    checks = hdu_checks(hdul, data)
    cadenceno, derived = cadence_numbers(columns, source, damaged=any(c.failed for c in checks))
    columns.pop("cadenceno", None)
    columns.update(extra_series)
    check_rows(columns["time"].data, cadenceno, source)
    if segment is None and product.segment_file_name and bad_segment is None:
        in_name = re.search(product.segment_file_name, PurePosixPath(source.rstrip("/")).name)
        if in_name is not None:
            segment = check_segment(in_name["segment"], mission, source, "file name")
            notes["segment"] = f"no {mission.segment_keyword} keyword: {mission.segment_kind} {segment} from the file name"
    if segment is None:
        segment = segment_from_time(columns["time"].data, mission)
        if segment is None and bad_segment is not None:
            raise bad_segment
        if segment is None:
            segment = UNKNOWN_SEGMENT
            notes["segment"] = (
                f"no {mission.segment_keyword} keyword and its time stamps fall in no known "
                f"{mission.segment_kind}: stored as {mission.segment_kind} {UNKNOWN_SEGMENT} (unknown)"
            )
        else:
            why = bad_segment.reason if bad_segment is not None else f"no {mission.segment_keyword} keyword"
            notes["segment"] = f"{why}: {mission.segment_kind} {segment} told by its time stamps"
    label, processing, derived_from = "", [], None
    if (how_derived := derivation(hdul, lc_hdu, product)) is not None:
        label, processing = how_derived.label, how_derived.tools
        derived_from = observation_id(mission, product, segment)
        notes["derived"] = json.dumps(
            {
                "tools": how_derived.tools,
                "added_columns": how_derived.added_columns,
                "history": how_derived.calls,
                "parameters": how_derived.parameters,
            },
            sort_keys=True,
        )
    target_values = {}
    for var, keyword in product.target_keywords.items():
        found = header_keyword(hdul, keyword, tuple(dict.fromkeys((0, lc_hdu))))
        value, comment = found if found is not None else (None, "")
        target_values[var] = (value, {"source_keyword": keyword, "description": comment})
    headers = {
        f"header_{label.lower() if not label.isdigit() else f'hdu{label}'}": _header_text(h, data)
        for label, h in zip(labels, hdul, strict=True)
    }
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
            {
                "description": f"data of the {h.name or f'HDU {i}'} HDU, shape (NAXISn, ..., NAXIS1) of its header; "
                "padded to the largest of the group",
                "source_hdu": labels[i],
            },
        )
    if derived:
        notes["cadenceno"] = derived
    if dropped or dropped_elsewhere:
        notes["dropped_columns"] = ", ".join([*dropped, *dropped_elsewhere])
    head = hdul[0].header
    data_rel = header_value(head.get("DATA_REL"))
    procver = header_value(head.get("PROCVER"))
    date = header_value(head.get("DATE"))
    lc = LightCurveFile(
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        product=product,
        mission=mission,
        target_catalog=target_catalog,
        target=target,
        designation=designation,
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
    if not product.generic_columns and not product.columns.time_offset:
        # a generic file's time is converted by its own keywords (mission_time_of); a product whose time
        # column is full BJD (CDIPS's TMID_BJD) does not use BJDREFI for it
        lc.warnings.extend(_time_system_warnings(hdul, lc_hdu, mission))
    lc.integrity = integrity(checks, bool(product.standard_columns), _rewritten(hdul, lc_hdu, lc, how_derived, product))
    if lc.integrity.reason:
        notes["integrity"] = f"{lc.integrity.state}: {lc.integrity.reason}"
    return lc


_TOOL_MARKS = ("lightkurve", "pyke", "astropy.timeseries")
"""Words of ``CREATOR``, ``ORIGIN``, ``PROCVER`` or HISTORY that name a tool which rewrites light-curve files."""


def _rewritten(hdul: fits.HDUList, lc_hdu: int, lc: LightCurveFile, how_derived: Any, product: Product) -> str | None:
    """Why a file is known to have been rewritten after its pipeline wrote it (its checksum cards
    may then be stale), or None.

    Told by a processing tool's columns or HISTORY (:mod:`lcarchive.formats.derived`); by a
    tool named in ``CREATOR``, ``ORIGIN``, ``PROCVER`` or HISTORY (lightkurve's ``to_fits``
    writes ``CREATOR = 'lightkurve.LightCurve.to_fits()'``, ``ORIGIN = 'Unofficial data
    product'``); or by rows spanning less than half of the file's own ``TSTART``..``TSTOP`` (a
    cut-down copy: ``lc[a:b].to_fits()``, test files); or by a layout of no known product (read
    generically: astropy's ``Table.write``, lightkurve's ``write``, keep the source file's cards
    in the table's metadata and write them unchanged).
    """
    if product.generic_columns:
        return "a layout of no known product (read generically): a tool wrote it, keeping the cards of the file it was made from"
    if how_derived is not None:
        return f"rewritten by {', '.join(how_derived.tools) or 'a processing tool'} (a derived light curve)"
    for index in dict.fromkeys((0, lc_hdu)):
        header = hdul[index].header
        for keyword in ("CREATOR", "ORIGIN", "PROCVER"):
            text = str(header_value(header.get(keyword)) or "")
            if any(mark in text.lower() for mark in _TOOL_MARKS) or text.strip().lower() == "unofficial data product":
                return f"rewritten by a tool ({keyword} = {text.strip()!r})"
        history = " ".join(str(c) for c in header.get("HISTORY", []))
        mark = next((m for m in _TOOL_MARKS if m in history.lower()), None)
        if mark is not None:
            return f"rewritten by a tool (HISTORY names {mark})"
    coverage = lc.coverage
    if coverage == coverage and coverage < 0.5:
        return f"a cut-down copy ({lc.n_rows} rows spanning {coverage:.1%} of its TSTART..TSTOP)"
    return None


def _time_system_warnings(hdul: fits.HDUList, lc_hdu: int, mission: Mission) -> list[str]:
    """Time-system keywords of a product file that contradict its mission's time system.

    The light-curve table's keywords (else the primary's) ``BJDREFI`` + ``BJDREFF`` must be the
    mission's reference (TESS 2457000, Kepler/K2 2454833),
    ``TIMESYS`` its scale (TDB) and ``TIMEREF`` its position (SOLARSYSTEM: barycentric), where
    the file gives them (TESS SDPDD; Kepler Archive Manual 2.3.2). The time stamps are then
    stored as the file gives them, never relabelled, and each contradiction is one warning.
    """
    system = mission.time_system
    hdus = tuple(dict.fromkeys(i for i in (lc_hdu, 0) if i < len(hdul)))
    found = {k: header_keyword(hdul, k, hdus) for k in ("BJDREFI", "BJDREFF", "TIMESYS", "TIMEREF")}
    value = {k: None if v is None else v[0] for k, v in found.items()}
    out = []
    keep = (
        "TIME stored as the file gives it (not relabelled); the group's "
        f"{system.format_name} reference does not apply to this light curve"
    )
    integer, fraction = value["BJDREFI"], value["BJDREFF"]
    if integer is not None or fraction is not None:
        numbers = [v for v in (integer, fraction) if v is not None]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            reference = float(integer or 0) + float(fraction or 0)
            expected = system.reference_epoch
            if not math.isclose(reference, expected, rel_tol=0, abs_tol=1e-9):
                out.append(
                    f"BJDREFI = {integer!r}, BJDREFF = {fraction!r} (reference BJD {reference!r}) contradict "
                    f"{mission.name.upper()}'s {system.format_name} reference BJD {expected!r}: {keep}"
                )
        else:
            out.append(f"BJDREFI = {integer!r}, BJDREFF = {fraction!r} are no numbers: {keep}")
    if value["TIMESYS"] is not None and str(value["TIMESYS"]).strip().lower() != system.scale.lower():
        out.append(
            f"TIMESYS = {value['TIMESYS']!r} contradicts {mission.name.upper()}'s time scale {system.scale.upper()}: {keep}"
        )
    expected_ref = {"barycenter": "SOLARSYSTEM"}.get(system.reference_position, system.reference_position).upper()
    if value["TIMEREF"] is not None and str(value["TIMEREF"]).strip().upper() != expected_ref:
        out.append(
            f"TIMEREF = {value['TIMEREF']!r} contradicts {mission.name.upper()}'s {expected_ref} (barycentric) "
            f"time stamps: {keep}"
        )
    return out


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


def open_fits(data: bytes, source: str) -> fits.HDUList:
    """Open FITS bytes with every HDU read, refusing files whose bytes are missing or damaged.

    A file is truncated only against its own headers: astropy finds an HDU's data shorter than
    its header says (NAXISn, PCOUNT), or a header cut short. ``NEXTEND`` is advisory (lightkurve's
    ``to_fits`` copies NEXTEND = 2 into files of one extension) and is not checked. At most
    ``Settings.max_hdus`` HDUs are read.

    Raises
    ------
    CorruptFileError
        Unreadable, truncated, or more than ``Settings.max_hdus`` HDUs.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True)
            for count, _ in enumerate(hdul, start=1):  # reads the headers one by one; stops past the limit
                if count > settings().max_hdus:
                    hdul.close()
                    raise CorruptFileError(
                        source,
                        f"more than {settings().max_hdus} HDUs: no light-curve product has so many "
                        f"(lcarchive reads at most {settings().max_hdus})",
                    )
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
        raise CorruptFileError(
            source, f"truncated: the file ends inside the header of an extension ({cut[0].splitlines()[0].strip()})"
        )
    return hdul


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


def _column_values(table: fits.FITS_rec, name: str, tform: str = "") -> tuple[np.ndarray | None, str | None]:
    """A column as lcarchive stores it, and the FITS format it came from when it was converted.

    Numbers keep their dtype (native byte order); logicals (``L``) become int8 and one-character
    strings (``1A``, CDIPS's quality letters) their ASCII codes (uint8). Text (``nA``: CDIPS's
    ``RSTFC`` frame names, TESScut's ``FFI_FILE``) and the other kinds numpy holds no plain
    number for (bits ``X``, logicals with nulls or several a row, complex ``C``/``M``, arrays of
    strings) are kept as the field's bytes in the file, one string a row (:func:`raw_text`). The
    FITS format is kept so that an export writes them back as they were. Returns (None, None)
    for numeric vector columns (kept by the caller) and what has no fixed width (``P``/``Q``
    variable-length arrays).
    """
    letter = tform.strip().upper().lstrip("0123456789")[:1]
    if letter in ("P", "Q"):
        return None, None
    raw = np.asarray(table.view(np.ndarray)[name])  # the field as the file holds it (astropy's raw view)
    if letter == "L":  # the bytes T, F or 0 (null); astropy reads a null as False (and warns)
        if raw.ndim == 1 and np.isin(raw, (ord("T"), ord("F"))).all():
            return (raw == ord("T")).astype(np.int8), "L"
        return raw_text(raw), tform
    values = np.asarray(table.field(name))
    if values.dtype.kind == "O":
        return None, None
    if values.ndim == 1 and values.dtype.kind in "iuf":
        return values.astype(values.dtype.newbyteorder("="), copy=True), None
    if values.ndim == 1 and values.dtype.kind in "SU" and raw.dtype.itemsize == 1:
        return raw.view(np.uint8).copy(), "1A"
    if values.dtype.kind in "SUbc" or (values.ndim == 1 and values.dtype.kind == "b"):
        return raw_text(raw), tform or None
    return None, None


def raw_text(raw: np.ndarray) -> np.ndarray:
    """A table field's bytes, one string a row: each byte the character of that code (latin-1),
    so the row's bytes come back with ``str.encode("latin-1")``, padding and nulls included.

    Parameters
    ----------
    raw : numpy.ndarray, shape (n_rows, ...)
        The field as the file holds it (astropy's raw view of a ``FITS_rec``).

    Returns
    -------
    numpy.ndarray of object (str), shape (n_rows,)
    """
    flat = np.ascontiguousarray(raw).view(np.uint8).reshape(raw.shape[0], -1)
    width = flat.shape[1]
    text = flat.tobytes().decode("latin-1")
    out = np.empty(raw.shape[0], dtype=object)
    out[:] = [text[i : i + width] for i in range(0, len(text), width)] if width else [""] * raw.shape[0]
    return out


def _is_vector(values: np.ndarray) -> bool:
    """A numeric column of a few values per row, kept one variable per element."""
    return values.dtype.kind in "iuf" and values.ndim == 2 and 1 <= values.shape[1] <= settings().max_vector_elements


def _description(header: fits.Header, i: int) -> str:
    comment = header.comments[f"TTYPE{i}"] if f"TTYPE{i}" in header else ""
    if comment.lower().startswith("column title:"):
        comment = comment.split(":", 1)[1].strip()
    return comment


def _columns(
    hdu: fits.BinTableHDU,
    table: fits.FITS_rec,
    product: Product,
    segment: int,
    source: str,
    hdu_name: str,
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
        values, fits_format = _column_values(table, col.name, col.format)
        var = variable(col.name)
        if values is None:
            raw = np.asarray(table.field(col.name))
            if var in by_source.values() and not (var == "time" and product.generic_columns and _is_vector(raw)):
                what = (
                    "complex numbers"
                    if raw.dtype.kind == "c"
                    else "text"
                    if raw.dtype.kind in "SU"
                    else f"{raw.dtype} values of shape {raw.shape[1:]} per row"
                )
                raise UnrecognizedProductError(
                    source,
                    f"the {var} column {col.name} (TFORM {col.format}) holds {what}, not one number per cadence: "
                    "no light curve lcarchive can store",
                )
            if _is_vector(raw):  # one variable per element (astropy's jd1, jd2 Time columns)
                base = var if var not in CORE_VARIABLES else f"{col.name.lower()}_column"
                for k in range(raw.shape[1]):
                    element = raw[:, k].astype(raw.dtype.newbyteorder("="), copy=True)
                    out[f"{base}_{k}"] = Column(
                        f"{base}_{k}",
                        col.name,
                        element,
                        astropy_unit(col.unit),
                        col.unit or None,
                        _description(header, i),
                        hdu_name,
                        None,
                        k,
                    )
                if var == "time":
                    out["time"] = Column(
                        "time",
                        col.name,
                        raw[:, 0].astype(np.float64),
                        None,
                        col.unit or None,
                        _description(header, i),
                        hdu_name,
                        None,
                        0,
                    )
                continue
            if raw.dtype.kind in "iuf" and raw.ndim > 1 and arrays is not None:  # pixel stamps: kept per target
                arrays[var if var not in CORE_VARIABLES else f"{var}_column"] = (
                    raw.astype(raw.dtype.newbyteorder("="), copy=True),
                    {
                        "description": f"vector column {col.name} of the light-curve table, one element of shape "
                        f"{raw.shape[1:]} per row of the file, in the file's row order; padded to the largest of the group",
                        "source_hdu": hdu_name,
                        "source_column": col.name,
                        "units": astropy_unit(col.unit) or "",
                        "fits_unit": col.unit or "",
                        "vector_column": 1,
                    },
                )
                continue
            dropped.append(col.name)
            continue
        if var == "quality":  # narrower signed ints widened as bit patterns (TGLC's int16 TESS_flags)
            if values.dtype.kind == "i" and values.dtype.itemsize < 4:
                values = values.view(f"u{values.dtype.itemsize}")
            if values.dtype.kind not in "iu":
                raise UnrecognizedProductError(
                    source, f"the quality column {col.name} holds {values.dtype} values, not integer bit masks"
                )
            values = values.astype(np.int32)
        if var in by_source.values() and values.dtype.kind == "O":
            kinds = {"C": "complex numbers", "M": "complex numbers", "A": "text", "X": "bits", "L": "logicals"}
            what = kinds.get(str(col.format).lstrip("0123456789")[:1], "text or other non-numbers")
            raise UnrecognizedProductError(
                source,
                f"the {var} column {col.name} (TFORM {col.format}) holds {what}, not one number "
                "per cadence: no light curve lcarchive can store",
            )
        if var in ("time", "flux") and values.dtype.kind not in "f" and fits_format is not None:
            raise UnrecognizedProductError(source, f"the {var} column {col.name} (TFORM {col.format}) holds no numbers")
        out[var] = Column(
            var, col.name, values, astropy_unit(col.unit), col.unit or None, _description(header, i), hdu_name, fits_format
        )
    if flux_err is not None and cmap.flux_err_scale is not None:
        numerator, denominator = (out[variable(c)].data for c in cmap.flux_err_scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (out[variable(flux_err)].data * numerator / denominator).astype(out["flux"].data.dtype)
        out["flux_err"] = Column(
            "flux_err",
            "",
            scaled,
            out["flux"].units,
            None,
            f"{flux_err} x {cmap.flux_err_scale[0]} / {cmap.flux_err_scale[1]}: the error scaled to the flux, as lightkurve does",
            hdu_name,
        )
    if "flux_err" not in out:
        out["flux_err"] = Column(
            "flux_err",
            "",
            np.full(len(table), np.nan, dtype=out["flux"].data.dtype),
            out["flux"].units,
            None,
            "no error column in this product",
            hdu_name,
        )
    if "quality" not in out:
        out["quality"] = Column(
            "quality",
            "",
            np.zeros(len(table), dtype=np.int32),
            None,
            None,
            "no quality column in this product: 0 (no flag) on every cadence",
            hdu_name,
        )
    return out, dropped


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
        if aligned and main_cadence is not None and cadence_column.upper() in names:  # type: ignore[union-attr]  # not None when main_cadence is not None
            aligned = np.array_equal(np.asarray(table.field(names[cadence_column.upper()])), main_cadence)  # type: ignore[union-attr]  # as above
        for k, col in enumerate(table.columns, start=1):
            name = f"{prefix}_{col.name.lower()}"
            values, fits_format = _column_values(table, col.name, col.format) if aligned else (None, None)
            if values is not None:
                series[name] = Column(
                    name,
                    col.name,
                    values,
                    astropy_unit(col.unit),
                    col.unit or None,
                    _description(h.header, k),
                    labels[i],
                    fits_format,
                )
                continue
            raw = np.asarray(table.field(col.name))
            if raw.dtype.kind == "b":
                raw, fits_format = raw.astype(np.int8), "L"
            elif raw.dtype.kind not in "iuf":
                dropped.append(f"{h.name or i}.{col.name}")
                continue
            arrays[name] = (
                raw.astype(raw.dtype.newbyteorder("="), copy=True),
                {
                    "description": f"column {col.name} of table {h.name or f'HDU {i}'} ({len(table)} rows), "
                    "shape (rows, ...) of the table; padded to the largest of the group",
                    "source_hdu": labels[i],
                    "source_column": col.name,
                    "units": astropy_unit(col.unit) or "",
                    "fits_unit": col.unit or "",
                    **({"fits_format": fits_format} if fits_format else {}),
                },
            )
    return series, arrays, dropped


def header_span(hdul: fits.HDUList, lc_hdu: int) -> tuple[float, float] | None:
    """``TSTART``, ``TSTOP`` of the light-curve HDU's header (else the primary's); None if absent or not a span."""
    found = header_keyword(hdul, "TSTART", (lc_hdu, 0)), header_keyword(hdul, "TSTOP", (lc_hdu, 0))
    if found[0] is None or found[1] is None:
        return None
    tstart, tstop = found[0][0], found[1][0]
    if (
        isinstance(tstart, bool)
        or isinstance(tstop, bool)
        or not isinstance(tstart, float | int)
        or not isinstance(tstop, float | int)
    ):
        return None
    if not (math.isfinite(tstart) and math.isfinite(tstop) and tstop > tstart):
        return None
    return float(tstart), float(tstop)
