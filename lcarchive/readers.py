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
import math
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
from astropy import units as u
from astropy.io import fits

from lcarchive.definitions import static_catalog, unit_aliases
from lcarchive.errors import CorruptFileError, InvalidTargetError, UnrecognizedProductError
from lcarchive.models import DetectionRule, Mission, MissionCatalog, Product

__all__ = ["Column", "LightCurveFile", "detect_product", "parse_lightcurve", "read_lightcurve"]

MIN_SPAN_FRACTION = 0.5
"""A table whose finite time stamps span less than this fraction of the header's
TSTART..TSTOP is refused as truncated."""


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
    """

    name: str
    source: str
    data: np.ndarray
    units: str | None
    fits_unit: str | None
    description: str


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

    @property
    def name(self) -> str:
        """Base name of the source path or URL."""
        return PurePosixPath(self.source.rstrip("/")).name

    @property
    def observation_id(self) -> str:
        """``<mission>-<product>-<s|q|c><segment>``, e.g. ``tess-spoc-2min-s0001``."""
        return observation_id(self.mission, self.product, self.segment)

    @property
    def release_key(self) -> tuple:
        """Sort key of the release: (DATA_REL, file DATE, PROCVER); larger is newer."""
        return (
            -1 if self.data_release is None else self.data_release,
            self.file_date or "",
            self.pipeline_version or "",
        )


def observation_id(mission: Mission, product: Product, segment: int) -> str:
    """Return the ID of an observation.

    The product name is prefixed by the mission name unless it already starts
    with it: ``tess-spoc-2min-s0001``, ``tess-qlp-s0024``, ``kepler-lc-q02``,
    ``k2-lc-c05``.
    """
    letter = {"sector": "s", "quarter": "q", "campaign": "c"}[mission.segment_kind]
    width = 4 if mission.segment_kind == "sector" else 2
    prod = product.name if product.name.startswith(mission.name + "-") else f"{mission.name}-{product.name}"
    return f"{prod}-{letter}{segment:0{width}d}"


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
    try:
        with fsspec.open(source, "rb", **(storage_options or {})) as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise CorruptFileError(source, "no such file") from exc
    except IsADirectoryError as exc:
        raise CorruptFileError(source, "is a directory") from exc
    except OSError as exc:
        raise CorruptFileError(source, f"cannot be read: {exc}") from exc
    return parse_lightcurve(data, source)


def _header_value(value: Any) -> Any:
    """Map astropy's Undefined (an empty keyword value) to None."""
    return None if isinstance(value, fits.card.Undefined) else value


def _rule_holds(rule: DetectionRule, hdul: fits.HDUList) -> bool:
    if rule.hdu >= len(hdul):
        return False
    header = hdul[rule.hdu].header
    present = rule.keyword in header and _header_value(header[rule.keyword]) is not None
    if rule.present is not None and present != rule.present:
        return False
    if not present:
        return rule.present is False
    value = header[rule.keyword]
    text = str(value).strip().lower()
    if rule.equals is not None and text != rule.equals.strip().lower():
        return False
    if rule.contains is not None and rule.contains.strip().lower() not in text:
        return False
    if rule.min is not None or rule.max is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if rule.min is not None and value < rule.min:
            return False
        if rule.max is not None and value > rule.max:
            return False
    return True


def detect_product(hdul: fits.HDUList) -> Product | None:
    """Return the product whose detection rules all hold for this file, or None."""
    for product in static_catalog().products:
        if all(_rule_holds(rule, hdul) for rule in product.detect):
            return product
    return None


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


def _target_id(hdul: fits.HDUList, catalog: MissionCatalog, source: str) -> int:
    raw = _header_value(hdul[0].header.get(catalog.id_keyword))
    if raw is None:
        raise InvalidTargetError(source, f"no {catalog.id_keyword} keyword: the file names no {catalog.name} target")
    try:
        if isinstance(raw, bool):
            raise ValueError
        target = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise InvalidTargetError(source, f"{catalog.id_keyword} = {raw!r} is not an integer {catalog.name} ID") from None
    if not catalog.min_id <= target <= catalog.max_id:
        raise InvalidTargetError(
            source, f"{catalog.id_keyword} = {target} is outside the {catalog.name} range {catalog.min_id}..{catalog.max_id}"
        )
    return target


def _segment(hdul: fits.HDUList, mission: Mission, source: str) -> int:
    raw = _header_value(hdul[0].header.get(mission.segment_keyword))
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        raise UnrecognizedProductError(source, f"{mission.segment_keyword} = {raw!r} is not a valid {mission.segment_kind}")
    return raw


def _keyword(hdul: fits.HDUList, keyword: str, hdus: tuple[int, ...]) -> tuple[Any, str] | None:
    for i in hdus:
        if keyword in hdul[i].header:
            value = _header_value(hdul[i].header[keyword])
            return value, hdul[i].header.comments[keyword]
    return None


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
    """
    if len(data) == 0:
        raise CorruptFileError(source, "empty file (0 bytes)")
    if not data.startswith(b"SIMPLE  ="):
        if data.startswith(b"\x89HDF"):
            raise UnrecognizedProductError(source, "HDF5 light curves are not supported yet (only FITS products)")
        raise UnrecognizedProductError(source, "not a FITS file (no SIMPLE card at the start)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False)
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError, IndexError...
            raise CorruptFileError(source, f"unreadable FITS: {exc}") from exc
        truncated = [str(w.message) for w in caught if "truncated" in str(w.message).lower()]
        if truncated:
            raise CorruptFileError(source, truncated[0])
        announced = _header_value(hdul[0].header.get("NEXTEND"))
        if isinstance(announced, int) and len(hdul) - 1 < announced:
            raise CorruptFileError(
                source, f"truncated: the primary header announces {announced} extension(s) (NEXTEND), the file holds {len(hdul) - 1}"
            )
    with hdul:
        product = detect_product(hdul)
        if product is None:
            head = hdul[0].header
            what = ", ".join(
                f"{k}={head[k]!r}" for k in ("TELESCOP", "ORIGIN", "OBJECT") if k in head and head[k] != ""
            )
            names = ", ".join(p.name for p in static_catalog().products)
            raise UnrecognizedProductError(
                source, f"not a light-curve product lcarchive knows ({what or 'no identifying keywords'}); known: {names}"
            )
        catalog = static_catalog()
        mission = catalog.mission(product.mission)
        target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
        target = _target_id(hdul, target_catalog, source)
        segment = _segment(hdul, mission, source)
        lc_hdu = product.lightcurve_hdu
        try:
            table = hdul[lc_hdu].data
            if table is None or len(table) == 0:
                raise CorruptFileError(source, f"HDU {lc_hdu} ({hdul[lc_hdu].name}) holds no rows")
            columns = _columns(hdul[lc_hdu], table, product, segment, source)
        except CorruptFileError:
            raise
        except Exception as exc:
            raise CorruptFileError(source, f"table in HDU {lc_hdu} unreadable: {exc}") from exc
        cadenceno = columns.pop("cadenceno").data.astype(np.int64)
        _check_rows(hdul, columns["time"].data, cadenceno, source)
        target_values = {}
        for var, keyword in product.target_keywords.items():
            found = _keyword(hdul, keyword, (0, lc_hdu))
            value, comment = found if found is not None else (None, "")
            target_values[var] = (value, {"source_keyword": keyword, "description": comment})
        headers = {f"header_{h.name.lower() or f'hdu{i}'}": _header_text(h, data) for i, h in enumerate(hdul)}
        images = {}
        for i, h in enumerate(hdul):
            if i == 0 or not isinstance(h, fits.ImageHDU) or h.data is None or h.data.ndim != 2:
                continue
            if h.data.dtype.kind not in "iuf":
                continue
            pixels = h.data.astype(h.data.dtype.newbyteorder("="), copy=True)
            images[h.name.lower() or f"image{i}"] = (
                pixels,
                {"description": f"pixels of the {h.name or f'HDU {i}'} image extension, shape (NAXIS2, NAXIS1) "
                 "of its header; padded to the largest image of the group", "source_hdu": h.name or str(i)},
            )
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
            data_release=int(data_rel) if isinstance(data_rel, int) else None,
            pipeline_version=str(procver).strip() if procver is not None else None,
            file_date=str(date).strip() if date is not None else None,
            instruments=_instruments(hdul, mission),
        )


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


def _columns(
    hdu: fits.BinTableHDU, table: fits.FITS_rec, product: Product, segment: int, source: str
) -> dict[str, Column]:
    cmap = product.columns
    names = {n.upper(): n for n in table.names}
    flux_err = next((c for c in cmap.flux_err_columns(segment) if c.upper() in names), None)
    core = {"time": cmap.time, "cadenceno": cmap.cadenceno, "flux": cmap.flux, "quality": cmap.quality}
    if flux_err is not None:
        core["flux_err"] = flux_err
    missing = [c for c in core.values() if c.upper() not in names]
    if missing:
        raise UnrecognizedProductError(source, f"{product.name} table lacks column(s) {', '.join(missing)}")
    by_source = {col.upper(): var for var, col in core.items()}
    out: dict[str, Column] = {}
    header = hdu.header
    for i, col in enumerate(table.columns, start=1):  # the FITS_rec's ColDefs: built once
        values = np.asarray(table.field(col.name))
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            continue  # non-numeric or vector columns: none in the products in scope
        var = by_source.get(col.name.upper(), col.name.lower())
        comment = header.comments[f"TTYPE{i}"] if f"TTYPE{i}" in header else ""
        if comment.lower().startswith("column title:"):
            comment = comment.split(":", 1)[1].strip()
        values = values.astype(values.dtype.newbyteorder("="), copy=True)
        if var == "quality":
            values = values.astype(np.int32)
        out[var] = Column(var, col.name, values, _astropy_unit(col.unit), col.unit or None, comment)
    if "flux_err" not in out:
        out["flux_err"] = Column(
            "flux_err", "", np.full(len(table), np.nan, dtype=out["flux"].data.dtype), out["flux"].units, None,
            "no error column in this product",
        )
    return out


def _check_rows(hdul: fits.HDUList, time: np.ndarray, cadenceno: np.ndarray, source: str) -> None:
    steps = np.diff(cadenceno)
    if not np.all(steps > 0) and np.unique(cadenceno).size != cadenceno.size:
        raise CorruptFileError(source, "repeated cadence numbers in the table")
    finite = time[np.isfinite(time)]
    if finite.size == 0:
        raise CorruptFileError(source, "no finite time stamp in the table")
    found = _keyword(hdul, "TSTART", (1, 0)), _keyword(hdul, "TSTOP", (1, 0))
    if found[0] is None or found[1] is None:
        return
    tstart, tstop = found[0][0], found[1][0]
    if not isinstance(tstart, float | int) or not isinstance(tstop, float | int) or tstop <= tstart:
        return
    fraction = (finite.max() - finite.min()) / (tstop - tstart)
    if math.isfinite(fraction) and fraction < MIN_SPAN_FRACTION:
        raise CorruptFileError(
            source,
            f"truncated: its {time.size} rows span {fraction:.1%} of TSTART..TSTOP "
            f"({tstart:.4f}..{tstop:.4f}) given in its header",
        )
