"""The record every input format gives: a ``LightCurveFile``, one target in one observation.

Readers of every format (FITS, HDF5, SkyPortal series, tables) build these; the store layout
(:mod:`lcarchive.layout`) turns them into rows of observation groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from lcarchive.catalog.models import Mission, MissionCatalog, Product
from lcarchive.errors import CorruptFileError
from lcarchive.formats.checksums import Integrity
from lcarchive.identifiers import Target, observation_id, safe_name

__all__ = [
    "CORE_VARIABLES",
    "UNKNOWN_SEGMENT",
    "Column",
    "LightCurveFile",
    "check_rows",
    "coordinate_warnings",
    "fits_text",
    "is_text_format",
]


CORE_VARIABLES = ("time", "cadenceno", "flux", "flux_err", "quality")


UNKNOWN_SEGMENT = 9999
"""The segment of a light curve that gives no sector/quarter/campaign and whose time stamps
fall in no known one (a generic file written without its SECTOR): kept, not refused."""


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
        ``1A`` characters as uint8), or of a column kept as its bytes in the file, one string a
        row (``data`` of object dtype: text ``nA`` such as CDIPS's ``48A`` ``RSTFC``, bits ``X``,
        logicals with nulls, complex numbers; :func:`fits_text` gives the text of an ``nA``
        column); None when the dtype is the file's.
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
        Definitions the file was recognised as. ``target_catalog`` is the catalog of the file's
        target: its mission's (TIC, KIC, EPIC), or another where the file names its target only
        there (a TGLC Gaia star with no TIC match: Gaia DR3; a comet: MPC).
    target : int
        The target's int64 key: its TIC, KIC, EPIC or Gaia source ID, or for a designation the
        key of :func:`lcarchive.identifiers.designation_key`.
    segment : int
        Sector, quarter or campaign.
    cadenceno : numpy.ndarray, shape (n_rows,), int64
        Cadence numbers (``CADENCENO``).
    columns : dict of str to Column
        ``time``, ``flux``, ``flux_err``, ``quality`` and every other column of fixed width:
        numbers, and the others as their bytes (text such as CDIPS's frame names ``rstfc``:
        :meth:`text`).
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
    integrity : Integrity
        The file's integrity evidence: its ``DATASUM``/``CHECKSUM`` cards checked on its raw
        bytes, per HDU, and the state they give (:mod:`lcarchive.formats.checksums`);
        ``no-checksums`` for inputs that carry none (HDF5, JSON, tables).
    warnings : list of str
        Values kept as the file gives them although they contradict its mission or are out of
        range (time-system keywords, coordinates): one line each, stored with the light curve.
    designation : str
        For a target of a designation catalog (MPC), its canonical designation (``3I``,
        ``(11251)``); "" otherwise.
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
    integrity: Integrity = field(default_factory=Integrity)
    warnings: list[str] = field(default_factory=list)
    designation: str = ""

    @property
    def target_id(self) -> Target:
        """The target as (catalog, ID): ``Target('TIC', 261136679)``, ``Target('MPC', '3I')``."""
        return Target(self.target_catalog.name, self.designation or self.target)

    def text(self, name: str) -> np.ndarray:
        """A text column (FITS ``nA``: CDIPS's frame names ``rstfc``) as astropy reads it: one
        string a row, trailing blanks and nulls cut.

        Raises
        ------
        KeyError
            If the file has no such column, or it is no text column.
        """
        column = self.columns[name]
        if not is_text_format(column.fits_format) or column.data.dtype != object:
            raise KeyError(f"{name} is no text column of {self.name} (TFORM {column.fits_format or 'numeric'})")
        return fits_text(column.data)

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


def coordinate_warnings(lc: LightCurveFile) -> list[str]:
    """Warnings for a light curve's coordinates out of range: ``ra`` outside 0..360 deg, ``dec``
    outside -90..90 deg (non-finite values are "none", not out of range).

    The values are stored as the file gives them (never clipped or wrapped); the warning says so.

    Returns
    -------
    list of str
        One line per coordinate out of range, naming its keyword and value.
    """
    out = []
    for var, low, high in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
        value, attrs = lc.target_values.get(var, (None, {}))
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if not low <= value <= high:
            keyword = attrs.get("source_keyword", var) if isinstance(attrs, dict) else var
            out.append(f"{keyword} = {value!r} is outside {low:g}..{high:g} deg: stored as the file gives it")
    return out


def is_text_format(fits_format: str | None) -> bool:
    """Whether a FITS ``TFORMn`` is a character field of more than one character (``48A``):
    kept as its bytes, read as text."""
    if not fits_format:
        return False
    repeat = fits_format.strip().upper().removesuffix("A")
    return fits_format.strip().upper().endswith("A") and (repeat.isdigit() and int(repeat) > 1)


_BLANKS = "\0 \t\n\r\x0b\x0c"


def fits_text(values: np.ndarray) -> np.ndarray:
    """Character fields kept as their bytes (one string a row, padding included) as text, as
    astropy reads them: trailing nulls and blanks cut (FITS standard 7.3.3.1: a null ends the
    string; astropy's ``chararray`` strips trailing whitespace).

    Parameters
    ----------
    values : numpy.ndarray of str
        Any shape.

    Returns
    -------
    numpy.ndarray of str (numpy fixed-width unicode), the shape of ``values``
    """
    flat = [str(v).rstrip(_BLANKS) for v in np.asarray(values, dtype=object).ravel()]
    return np.array(flat, dtype=str).reshape(np.shape(values)) if flat else np.zeros(np.shape(values), dtype=str)
