"""Write one target's light curve of one observation in the formats people use.

The values come from an observation group (a row of every variable, see ``docs/format.md``);
each function here turns one such row into one output:

- :func:`fits_bytes`: the source product file, rebuilt from the stored FITS headers (kept card
  for card at ingest) and columns. When the whole table is written, the headers are the stored
  bytes and the data are the stored values in the column formats of the header, so the file is
  the ingested file byte for byte and its SHA-256 equals ``source_sha256``; a column subset or
  a time range is written through astropy, with the table keywords adjusted.
- :func:`tidy_table`: rows of (target, observation, cadenceno, time, flux, flux_err, quality,
  extra columns) as a pyarrow table, for Parquet and CSV.
- :func:`skyportal_series`: a SkyPortal photometric series (pandas HDFStore table with ``mjd``
  (UTC, as observed), ``bmjd_tdb`` (barycentric), ``flux``, ``fluxerr`` and the series metadata
  in the storer attributes).
"""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
import warnings
from typing import Any

import numpy as np

from lcarchive.errors import ExportError
from lcarchive.formats.record import fits_text, is_text_format
from lcarchive.identifiers import safe_name
from lcarchive.layout import fill_value
from lcarchive.timescales import GEOCENTRIC_ERROR, observed_mjd

__all__ = ["CORE_COLUMNS", "cadence_mask", "fits_bytes", "fits_name", "skyportal_series", "tidy_table"]

CORE_COLUMNS = ("time", "flux", "flux_err", "quality")
"""Variables every tidy output has, after ``target``, ``observation`` and ``cadenceno``."""

_BLOCK = 2880
_BITPIX = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def cadence_mask(values: dict[str, np.ndarray], time_range: tuple[float, float] | None = None) -> np.ndarray:
    """Cadences that the targets' source files have (quality is not the fill).

    Parameters
    ----------
    values : dict of str to numpy.ndarray
        ``quality`` (and ``time``) of one target, shape (n_cadences,), or of several,
        shape (n_targets, n_cadences): the mask is elementwise.
    time_range : (float, float), optional
        Keep only cadences whose ``time`` is within [start, stop] (the observation's time
        format, e.g. BTJD); cadences with no time stamp are then dropped.

    Returns
    -------
    numpy.ndarray of bool, the shape of ``quality``
    """
    quality = values["quality"]
    mask = quality != fill_value(quality.dtype)
    if time_range is not None:
        time = values["time"]
        with np.errstate(invalid="ignore"):
            mask &= (time >= time_range[0]) & (time <= time_range[1])
    return mask


# -- FITS -------------------------------------------------------------------------------------


def _headers(values: dict[str, Any], attrs: dict[str, dict]) -> list[tuple[str, str]]:
    """(variable, header text) of each stored HDU header, in the file's HDU order."""
    found = [(n, str(v)) for n, v in values.items() if n.startswith("header_") and str(v)]

    def order(item: tuple[str, str]) -> tuple[int, int]:
        name, text = item
        index = attrs.get(name, {}).get("hdu_index")
        if index is not None:
            return (int(index), 0)
        # groups written before the HDU order was recorded: primary, tables, images
        return (0 if text.startswith("SIMPLE") else 1 if "BINTABLE" in text[:30] else 2, 0)

    return sorted(found, key=order)


_STRUCTURE = (
    "SIMPLE",
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "EXTNAME",
    "TFIELDS",
    "BZERO",
    "BSCALE",
    "TTYPE",
    "TFORM",
    "TDIM",
    "TUNIT",
    "TDISP",
    "TNULL",
    "PCOUNT",
    "GCOUNT",
)


def _cards(text: str, whole: bool = False) -> Any:
    """The header's cards that describe its data (or every card with ``whole``), parsed by astropy.

    Rebuilding a file needs only the structural keywords; parsing the others (a few hundred
    cards a file) would cost most of an export's time.
    """
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if whole:
            return fits.Header.fromstring(text)
        cards = [text[i : i + 80] for i in range(0, len(text), 80)]
        wanted = [c for c in cards if c[:8].rstrip().startswith(_STRUCTURE) or c[:5] == "NAXIS"]
        return fits.Header([fits.Card.fromstring(c) for c in wanted])


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _BLOCK)


def split_segments(text: str) -> list[str]:
    """Split a stored header string holding several files' headers (segments) into headers."""
    starts = [i for i in range(0, len(text), _BLOCK) if text.startswith(("SIMPLE  =", "XTENSION="), i)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)] or [text]


def fits_name(values: dict[str, Any], observation: str, target: int) -> list[str]:
    """File names of a target's FITS output: its source file name(s), else ``<observation>-<target>.fits``."""
    names = [n for n in str(values.get("source_file", "")).split("\n") if n]
    names = [safe_name(n.replace("\\", "/").rsplit("/", 1)[-1]) for n in names]  # a base name, whatever was stored
    if not names or len(set(names)) != len(names) or any(n in (".", "..") or n.startswith(".") for n in names):
        return [f"{observation}-{target}.fits"]
    names = [n[: -len(".gz")] if n.lower().endswith(".gz") else n for n in names]  # written uncompressed
    return [n if n.lower().endswith((".fits", ".fit", ".fts", ".h5", ".hdf5")) else f"{n}.fits" for n in names]


def source_file_bytes(
    values: dict[str, Any],
    cadenceno: np.ndarray,
    attrs: dict[str, dict],
    columns: list[str] | None = None,
    time_range: tuple[float, float] | None = None,
) -> list[bytes]:
    """Rebuild a target's source file(s) in the format they came in: FITS (:func:`fits_bytes`)
    or HDF5 (:func:`hdf5_bytes`, for QLP's internal files).

    Raises
    ------
    ExportError
        If the group keeps neither FITS headers nor HDF5 attributes for the target.
    """
    if str(values.get("hdf5_attributes", "")):
        return [hdf5_bytes(values, cadenceno, attrs, columns, time_range)]
    return fits_bytes(values, cadenceno, attrs, columns, time_range)


def hdf5_bytes(
    values: dict[str, Any],
    cadenceno: np.ndarray,
    attrs: dict[str, dict],
    columns: list[str] | None = None,
    time_range: tuple[float, float] | None = None,
) -> bytes:
    """Rebuild an HDF5 light-curve file (QLP's internal layout) from a group row.

    Every dataset is written at its path with its stored dtype, on the target's cadences, and
    every attribute of the root, groups and datasets is set again from ``hdf5_attributes``.
    HDF5's byte layout is the library's, so the file's bytes differ from the source's; its
    datasets and attributes are equal.

    Parameters
    ----------
    values, cadenceno, attrs, columns, time_range
        As for :func:`fits_bytes`.

    Returns
    -------
    bytes
    """
    import h5py

    mask = cadence_mask(values, time_range)
    keep = None if columns is None else {c.lower() for c in columns}
    datasets: dict[str, np.ndarray] = {}
    cadence_path = str(attrs.get("cadenceno", {}).get("source_column") or "")
    if cadence_path:
        datasets[cadence_path] = cadenceno[mask]
    for name, value in values.items():
        path = str(attrs.get(name, {}).get("source_column", ""))
        if "/" not in path or not isinstance(value, np.ndarray):
            continue
        if value.ndim == 1 and value.shape == cadenceno.shape:
            if keep is not None and name not in CORE_COLUMNS and name not in keep:
                continue
            datasets[path] = value[mask]
        else:
            datasets[path] = value
    attributes = json.loads(str(values["hdf5_attributes"]))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for path in sorted(datasets):
            f.create_dataset(path, data=datasets[path])
        for path, items in attributes.items():
            node = f if path == "/" else f.require_group(path) if path not in f else f[path]
            for key, value in items.items():
                node.attrs[key] = value
    return buf.getvalue()


def fits_bytes(
    values: dict[str, Any],
    cadenceno: np.ndarray,
    attrs: dict[str, dict],
    columns: list[str] | None = None,
    time_range: tuple[float, float] | None = None,
) -> list[bytes]:
    """Rebuild a target's source FITS file(s) from its row of an observation group.

    Parameters
    ----------
    values : dict of str to numpy.ndarray
        The target's values of every variable of the group: light-curve variables shape
        (n_cadences,), images (rows, columns), per-target values and the stored headers
        (``header_<hdu>``) as 0-d arrays or scalars.
    cadenceno : numpy.ndarray, shape (n_cadences,), int64
        The group's cadence numbers.
    attrs : dict of str to dict
        Attributes of each variable (``source_column``, ``source_hdu``, ``hdu_index``).
    columns : list of str, optional
        Variables to keep in the light-curve table (TIME, CADENCENO and QUALITY are always
        kept); default: every column of the source table.
    time_range : (float, float), optional
        Keep only rows with ``time`` in this range (the observation's time format).

    Returns
    -------
    list of bytes
        One FITS file per source file (several when the row joins segments, e.g. Kepler
        short-cadence months).

    Raises
    ------
    ExportError
        If the group holds no stored headers (nothing to rebuild the file from) or a column
        of the source table is not stored.
    """
    headers = _headers(values, attrs)
    if not headers:
        raise ExportError("the group stores no FITS headers for this target: nothing to rebuild a FITS file from")
    mask = cadence_mask(values, time_range)
    source = _Sources(values, attrs, cadenceno)
    keep = None if columns is None else {c.upper() for c in columns}
    # segments: each stored header holds one header per source file, in cadence order
    pieces = [(name, split_segments(text)) for name, text in headers]
    n_files = max(len(p) for _, p in pieces)
    raw = [_hdu_name(name, _cards(texts[0]), attrs) for name, texts in pieces]
    labels = [
        r if raw.count(r) == 1 else str(attrs.get(name, {}).get("hdu_index", r)) for r, (name, _) in zip(raw, pieces, strict=True)
    ]
    rows = np.flatnonzero(mask)
    files = []
    start = 0
    for f in range(n_files):
        out = []
        exact = keep is None and time_range is None
        main_rows = rows if n_files == 1 else None
        for (_name, texts), hdu in zip(pieces, labels, strict=True):
            text = texts[f] if f < len(texts) else texts[-1]
            header = _cards(text)
            data: np.ndarray | bytes | None
            if header.get("XTENSION", "").strip() == "BINTABLE":
                n_rows = int(header["NAXIS2"])
                aligned = source.aligned(hdu)
                if aligned:
                    if main_rows is None:  # one segment's rows
                        main_rows = rows[start : start + n_rows]
                        start += n_rows
                    if n_rows != main_rows.size:
                        exact = False
                data = _table(header, hdu, main_rows if aligned else None, source, keep)
            else:
                data = _image(header, source.array(hdu))
                if int(header.get("NAXIS", 0)) and data is None:
                    raise ExportError(f"the data of HDU {hdu} are not stored")
            out.append((text, header, data))
        if not exact:  # astropy writes the file: it needs every card
            out = [(text, _cards(text, whole=True), data) for text, _, data in out]
        files.append(_write_exact(out) if exact else _write_astropy(out))
    return files


def _hdu_name(variable: str, header: Any, attrs: dict[str, dict]) -> str:
    """The name an HDU's variables record in ``source_hdu``: EXTNAME (PRIMARY), else its index."""
    if "SIMPLE" in header and "XTENSION" not in header:
        return str(header.get("EXTNAME", "PRIMARY")).strip().upper() or "PRIMARY"
    extname = str(header.get("EXTNAME", "")).strip()
    if extname:
        return extname.upper()
    index = attrs.get(variable, {}).get("hdu_index")
    return str(index) if index is not None else variable.removeprefix("header_hdu")


class _Sources:
    """Where each (HDU, column) of a source file is stored in a group row."""

    def __init__(self, values: dict[str, Any], attrs: dict[str, dict], cadenceno: np.ndarray) -> None:
        self.values = values
        self.attrs = attrs
        self.cadenceno = cadenceno
        self.series: dict[tuple[str, str], str] = {}
        self.vectors: dict[tuple[str, str], dict[int, str]] = {}
        self.arrays: dict[tuple[str, str], str] = {}
        self.images: dict[str, str] = {}
        self.main = ""
        self.cadence_column = str(attrs.get("cadenceno", {}).get("source_column") or "CADENCENO").upper()
        for name, value in values.items():
            a = attrs.get(name, {})
            hdu = str(a.get("source_hdu", "")).upper()
            column = str(a.get("source_column", "")).upper()
            is_series = isinstance(value, np.ndarray) and value.ndim == 1 and value.shape == cadenceno.shape
            if name == "time":
                self.main = hdu
            if is_series and column and "vector_index" in a:  # one element of a vector column
                if name != "time":
                    self.vectors.setdefault((hdu, column), {})[int(a["vector_index"])] = name
                continue
            if is_series and column:
                self.series[(hdu, column)] = name
                self.series.setdefault(("", column), name)  # groups written before source_hdu was recorded
            elif column:
                self.arrays[(hdu, column)] = name
            elif hdu:
                self.images[hdu] = name

    def aligned(self, hdu: str) -> bool:
        """True for tables stored on the cadence axis (the light-curve table and those with its rows)."""
        return hdu == self.main or any(h == hdu for h, _ in self.series) or not any(h == hdu for h, _ in self.arrays)

    def column(self, hdu: str, ttype: str, rows: np.ndarray | None, whole: bool = True) -> np.ndarray | None:
        """A column's values on ``rows`` (a table on the cadence axis) or whole (rows None);
        ``whole`` says that ``rows`` are every row of the source table (no time cut)."""
        key = ttype.upper()
        if rows is None:
            name = self.arrays.get((hdu, key))
            return None if name is None else self._restore(name, np.asarray(self.values[name]))
        name = self.series.get((hdu, key))
        if name is None and (hdu, key) in self.arrays:  # a vector column kept per target, in the file's row order
            if not whole:
                raise ExportError(
                    f"vector column {ttype} of table {hdu} is kept in the file's row order: it cannot be cut by time"
                )
            return np.asarray(self.values[self.arrays[(hdu, key)]])[: rows.size]
        if name is None and (hdu, key) in self.vectors:
            elements = self.vectors[(hdu, key)]
            return np.stack([np.asarray(self.values[elements[k]])[rows] for k in sorted(elements)], axis=1)
        if name is None and self.main in (hdu, ""):  # the light-curve table
            if key == self.cadence_column:
                return self.cadenceno[rows]
            name = self.series.get(("", key))
        return None if name is None else self._restore(name, np.asarray(self.values[name])[rows])

    def variable(self, hdu: str, ttype: str) -> str | None:
        key = ttype.upper()
        vector = self.vectors.get((hdu, key))
        found = self.series.get((hdu, key)) or self.arrays.get((hdu, key)) or (vector[min(vector)] if vector else None)
        if found is None and self.main in (hdu, ""):
            found = self.series.get(("", key))
        return found

    def array(self, hdu: str) -> np.ndarray | None:
        name = self.images.get(hdu.upper())
        return None if name is None else np.asarray(self.values[name])

    def _restore(self, name: str, data: np.ndarray) -> np.ndarray:
        fmt = self.attrs.get(name, {}).get("fits_format")
        if data.dtype.kind in "OTU":  # a field kept as its bytes (text, bits, logicals with nulls): _table writes them
            return data
        if fmt == "L":
            return data.astype(bool)
        if fmt == "1A":
            return data.astype(np.uint8).view("S1")
        return data


def _table(header: Any, hdu: str, rows: np.ndarray | None, source: _Sources, keep: set | None) -> np.ndarray:
    """A binary table's rows, in the dtypes its TFORMn give (big-endian, as FITS stores them)."""
    from astropy.io.fits.column import _ColumnFormat

    n_rows = int(header["NAXIS2"]) if rows is None else rows.size
    arrays, names = [], []
    for n in range(1, int(header["TFIELDS"]) + 1):
        ttype = str(header[f"TTYPE{n}"])
        variable = source.variable(hdu, ttype)
        if (
            keep is not None
            and variable not in CORE_COLUMNS
            and ttype.upper() != "CADENCENO"
            and ttype.upper() not in keep
            and (variable or "").upper() not in keep
        ):
            continue
        data = source.column(hdu, ttype, rows, rows is None or rows.size == int(header["NAXIS2"]))
        if data is None:
            raise ExportError(f"column {ttype} of table {hdu} is not stored")
        fmt = _ColumnFormat(str(header[f"TFORM{n}"]))
        dtype = np.dtype(fmt.recformat)
        if np.asarray(data).dtype.kind in "OTU":  # the field's bytes, kept as one string a row (text, bits...)
            field = _raw_field(np.asarray(data, dtype=object)[:n_rows], dtype, f"column {ttype} of table {hdu}")
            arrays.append(field)
            names.append((ttype, field.shape[1:]))
            continue
        element = dtype.shape
        if f"TDIM{n}" in header:
            element = tuple(int(x) for x in str(header[f"TDIM{n}"]).strip("() ").split(","))[::-1]
        base = dtype.base
        data = np.asarray(data)[:n_rows]
        if element:
            data = data[(slice(None), *(slice(0, k) for k in element))]
        if data.dtype.kind == "b":  # logicals: written back as FITS's T and F by _write_exact (astropy does it itself)
            arrays.append(data)
            names.append((ttype, element))
            continue
        arrays.append(data.astype(base.newbyteorder(">") if base.kind not in "Sb" else base))
        names.append((ttype, element))
    table = np.empty(n_rows, dtype=[(t, a.dtype, e) for (t, e), a in zip(names, arrays, strict=True)])
    for (t, _), a in zip(names, arrays, strict=True):
        table[t] = a
    return table


def _raw_field(rows: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """A field kept as its bytes (one latin-1 string a row, :func:`lcarchive.formats.fits.raw_text`)
    in the big-endian dtype of its TFORM (``astropy``'s record format: ``S48``, ``(2,)u1``...).

    Raises
    ------
    ExportError
        If a row's bytes are not the width of the TFORM.
    """
    width = dtype.itemsize
    if any(len(str(v)) != width for v in rows):
        raise ExportError(f"{what}: the stored bytes of a row are not the {width} bytes of its TFORM")
    base = dtype.base if dtype.base.kind in "SV" else dtype.base.newbyteorder(">")
    raw = "".join(str(v) for v in rows).encode("latin-1")
    return np.frombuffer(raw, dtype=np.dtype((base, dtype.shape)) if dtype.shape else base)


def _image(header: Any, pixels: np.ndarray | None) -> np.ndarray | bytes | None:
    """An image HDU's data as stored in the file (BITPIX type; BZERO/BSCALE undone)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return b""
    if pixels is None:
        return None
    shape = tuple(int(header[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
    data = np.asarray(pixels)[tuple(slice(0, n) for n in shape)]
    bzero, bscale = header.get("BZERO", 0), header.get("BSCALE", 1)
    if bzero or bscale != 1:
        data = np.round((data - bzero) / bscale) if _BITPIX[int(header["BITPIX"])][1] == "i" else (data - bzero) / bscale
    return data.astype(_BITPIX[int(header["BITPIX"])])


def _write_exact(hdus: list[tuple[str, Any, Any]]) -> bytes:
    """Stored header bytes, then each HDU's data in big-endian FITS order, padded to 2880 bytes."""
    parts = []
    for text, _, data in hdus:
        parts.append(text.encode("ascii"))
        if data is None:
            continue
        if isinstance(data, np.ndarray) and data.dtype.names and any(data.dtype[n].base.kind == "b" for n in data.dtype.names):
            data = _fits_logicals(data)
        raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
        parts.append(_padded(raw))
    return b"".join(parts)


def _fits_logicals(table: np.ndarray) -> np.ndarray:
    """A table whose bool fields are FITS logicals: the bytes ``T`` and ``F`` (FITS standard 7.3.3)."""
    names = table.dtype.names or ()
    dtype = np.dtype([(n, "i1" if table.dtype[n].base.kind == "b" else table.dtype[n].base, table.dtype[n].shape) for n in names])
    out = np.empty(table.shape, dtype=dtype)
    for name in names:
        values = table[name]
        out[name] = np.where(values, ord("T"), ord("F")) if values.dtype.kind == "b" else values
    return out


def _astropy_field(array: np.ndarray, tform: str, tdim: Any) -> tuple[np.ndarray, str | None]:
    """A field kept as its bytes, as astropy's column writer takes it: logicals as bools (a null
    is written as F: astropy writes no nulls), an array of strings (``TDIM``) shaped by its TDIM;
    other fields as they are. Returns the array and the TDIM to give the column (None: none)."""
    letter = tform.strip().upper().lstrip("0123456789")[:1]
    if letter == "L" and array.dtype.kind in "iu":
        return array == ord("T"), None
    if letter == "A" and tdim is not None and array.dtype.kind == "S" and array.ndim == 1:
        sizes = [int(x) for x in str(tdim).strip("() ").split(",")]
        return np.ascontiguousarray(array).view(f"S{sizes[0]}").reshape(array.shape[0], *sizes[:0:-1]), str(tdim)
    return array, None


def _write_astropy(hdus: list[tuple[str, Any, Any]]) -> bytes:
    """Through astropy, which adjusts the table keywords (NAXIS2, TFIELDS, TTYPEn...) to the data."""
    from astropy.io import fits

    out = []
    for _, header, data in hdus:
        pixels = None if isinstance(data, bytes) else data
        if "SIMPLE" in header and "XTENSION" not in header:
            out.append(fits.PrimaryHDU(data=pixels, header=header))
        elif header.get("XTENSION", "").strip() == "BINTABLE":
            columns = []
            for name in data.dtype.names:
                n = next(i for i in range(1, int(header["TFIELDS"]) + 1) if header[f"TTYPE{i}"] == name)
                keywords = {
                    k: header.get(f"{key}{n}")
                    for k, key in (("format", "TFORM"), ("unit", "TUNIT"), ("disp", "TDISP"), ("null", "TNULL"))
                }
                array, dim = _astropy_field(data[name], str(keywords["format"]), header.get(f"TDIM{n}"))
                if dim is not None:
                    keywords["dim"] = dim
                columns.append(fits.Column(name=name, array=array, **{k: v for k, v in keywords.items() if v is not None}))
            for key in list(header):
                if key[:5] in ("TTYPE", "TFORM", "TUNIT", "TDISP", "TNULL") or key[:4] == "TDIM":
                    del header[key]
            out.append(fits.BinTableHDU.from_columns(columns, header=header))
        else:
            out.append(fits.ImageHDU(data=pixels, header=header))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(out).writeto(buf, output_verify="silentfix")
    return buf.getvalue()


# -- tidy tables ------------------------------------------------------------------------------


def tidy_table(
    observation: str,
    targets: np.ndarray,
    values: dict[str, np.ndarray],
    cadenceno: np.ndarray,
    attrs: dict[str, dict],
    extra: list[str],
    time_range: tuple[float, float] | None = None,
) -> Any:
    """Rows of several targets of one observation as one long table.

    Parameters
    ----------
    observation : str
    targets : numpy.ndarray, shape (n_targets,), int64
    values : dict of str to numpy.ndarray
        Each (n_targets, n_cadences): ``time``, ``flux``, ``flux_err``, ``quality`` and ``extra``.
    cadenceno : numpy.ndarray, shape (n_cadences,)
    attrs : dict of str to dict
        Variable attributes; ``units`` and ``description`` go to the field metadata.
    extra : list of str
        Further light-curve variables to include, after the core columns.
    time_range : (float, float), optional
        Keep only rows with ``time`` in this range.

    Returns
    -------
    pyarrow.Table
        Columns ``target`` (int64), ``observation`` (string), ``cadenceno`` (int64), ``time``,
        ``flux``, ``flux_err``, ``quality``, then ``extra``; only the cadences each target's
        source file has, in cadence order. A variable the observation lacks is null.
    """
    import pyarrow as pa

    mask = cadence_mask(values, time_range)  # elementwise: (n_targets, n_cadences) here
    counts = mask.sum(axis=1)
    n = int(counts.sum())
    fields, arrays = [], []

    def add(name: str, array: Any, meta: dict | None = None) -> None:
        meta = {
            k: str(v)
            for k, v in (meta or {}).items()
            if k in ("units", "description", "source_column", "time_format", "time_scale") and v != ""
        }
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=meta or None))

    add("target", pa.array(np.repeat(targets.astype(np.int64), counts)), {"description": "TIC, KIC or EPIC ID"})
    # plain strings (the Parquet writer dictionary-encodes them on disk): astropy reads no Arrow dictionary type
    add(
        "observation",
        pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([observation])).cast(pa.string()),
        {"description": "observation ID"},
    )
    add(
        "cadenceno",
        pa.array(np.broadcast_to(cadenceno, mask.shape)[mask].astype(np.int64)),
        {"description": "cadence number (CADENCENO)"},
    )
    for name in [*CORE_COLUMNS, *extra]:
        if name in values:
            column = values[name][mask]
            if column.dtype.kind in "OTU" and is_text_format(attrs.get(name, {}).get("fits_format")):
                column = fits_text(column)  # a text column as astropy reads it (blanks and nulls that pad it cut)
            add(name, pa.array(column), attrs.get(name))
        else:
            add(name, pa.nulls(n, pa.float64()), {"description": f"{name}: not in this observation"})
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def parquet_schema_metadata(schema: Any, string_lengths: dict[str, int] | None = None) -> dict[bytes, bytes]:
    """Schema metadata that tells astropy and pandas each column's unit and description.

    astropy's Parquet reader (``Table.read(path)``) takes them from the ``table_meta_yaml`` key
    its writer stores (the ECSV header of the table, ``astropy.table.meta``); pandas'
    ``read_parquet`` restores ``DataFrame.attrs`` from the ``PANDAS_ATTRS`` key its writer
    stores (here ``{"units": {column: unit}, "descriptions": {column: text}}``). Units are
    astropy's spelling of the stored ``units`` (FITS' ``e-/s`` is ``electron / s``).

    Parameters
    ----------
    schema : pyarrow.Schema
        Of a table of :func:`tidy_table` (its fields' ``units`` and ``description`` metadata).
    string_lengths : dict of str to int, optional
        The longest value of string columns (astropy's ``table::len::<name>`` key: without it
        astropy reads the whole column to find it, and warns).

    Returns
    -------
    dict of bytes to bytes
    """
    import astropy.units as u
    import pyarrow as pa
    from astropy.table import Column, Table
    from astropy.table.meta import get_yaml_from_table

    units, descriptions, columns = {}, {}, []
    for field in schema:
        meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        unit = u.Unit(meta["units"], parse_strict="silent") if meta.get("units") else None
        if unit is not None:
            units[field.name] = unit.to_string()
        if meta.get("description"):
            descriptions[field.name] = meta["description"]
        text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        dtype = np.dtype(str) if text else field.type.to_pandas_dtype()
        columns.append(Column(np.empty(0, dtype=dtype), name=field.name, unit=unit, description=meta.get("description")))
    yaml = "\n".join(get_yaml_from_table(Table(columns)))
    return {
        b"table_meta_yaml": yaml.encode(),
        b"PANDAS_ATTRS": json.dumps({"units": units, "descriptions": descriptions}).encode(),
        **{f"table::len::{name}".encode(): str(n).encode() for name, n in (string_lengths or {}).items()},
    }


# -- SkyPortal photometric series ---------------------------------------------------------------

_HDF5_LOCK = threading.Lock()
_MJD_ZERO_JD = 2400000.5
_FILTERS = {"tess": "tess", "kepler": "kepler", "k2": "kepler"}
"""SkyPortal filter names (sncosmo bandpasses) of the missions' passbands."""
_ORIGINS = {"spoc-2min": "SPOC", "spoc-20s": "SPOC", "tess-spoc": "TESS-SPOC", "qlp": "QLP"}


def skyportal_series(
    observation: str,
    target: int,
    values: dict[str, Any],
    group_attrs: dict[str, Any],
    extra: list[str],
    time_range: tuple[float, float] | None = None,
    exp_time: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One target's light curve as a SkyPortal photometric series.

    SkyPortal (``skyportal/models/photometric_series.py``) stores a series as an HDF5 file
    written with ``pandas.HDFStore``: one table with ``mjd``, ``flux`` and ``fluxerr`` (plus any
    other columns) and the series metadata as the ``metadata`` attribute of its storer.

    Parameters
    ----------
    observation : str
    target : int
    values : dict
        The target's values (light-curve variables shape (n_cadences,), per-target values).
    group_attrs : dict
        The group's attributes (mission, product, time format and reference epoch).
    extra : list of str
        Further light-curve variables to add as columns.
    time_range : (float, float), optional
    exp_time : float, optional
        Exposure time of a cadence, s (the product's cadence).

    Returns
    -------
    (pandas.DataFrame, dict)
        Columns ``mjd``, ``bmjd_tdb``, ``flux``, ``fluxerr``, ``quality`` and ``extra``; and the
        metadata: ``series_name`` (the observation), ``series_obj_id`` (the target ID as text),
        ``obj_id``, ``filter``, ``exp_time`` (s), ``ra``, ``dec`` (deg), ``channel``
        (camera_ccd or module_output), ``origin`` (the pipeline), ``time_stamp_alignment``
        ("middle"), and ``altdata`` with the time system, how ``mjd`` was corrected and the
        source file.

    Notes
    -----
    ``mjd`` is what SkyPortal means by it, the MJD of mid-exposure in UTC as observed (at the
    spacecraft): the mission time plus its reference epoch minus the barycentric correction,
    converted from TDB to UTC by ``astropy.time`` (:func:`lcarchive.timescales.observed_mjd`).
    The correction is the light curve's ``timecorr`` (SPOC's and Kepler SOC's TIMECORR) where
    it has one; else it is computed for the Earth's centre from ``ra``/``dec``, off by the
    spacecraft's distance from the Earth (``altdata.mjd_correction`` says which, and the error);
    without RA/Dec either, ``mjd`` is the barycentric time in UTC (said there too).
    ``bmjd_tdb`` is the barycentric time, BJD_TDB - 2400000.5 (the mission time plus its
    reference epoch minus 2400000.5): lcarchive reads it back as the mission time.
    """
    import pandas as pd

    mask = cadence_mask(values, time_range)
    offset = float(group_attrs.get("time_reference_epoch_jd", 0.0)) - _MJD_ZERO_JD
    bmjd = values["time"][mask].astype(np.float64) + offset
    timecorr = values["timecorr"][mask] if "timecorr" in values else None
    ra, dec = values.get("ra"), values.get("dec")
    ra, dec = (None if v is None else float(np.asarray(v).item()) for v in (ra, dec))
    mjd, how = observed_mjd(bmjd, timecorr, ra, dec)
    frame = pd.DataFrame(
        {
            "mjd": mjd,
            "bmjd_tdb": bmjd,
            "flux": values["flux"][mask],
            "fluxerr": values["flux_err"][mask] if "flux_err" in values else np.full(int(mask.sum()), np.nan),
            "quality": values["quality"][mask],
            **{name: values[name][mask] for name in extra if name in values and name not in CORE_COLUMNS},
        }
    )

    def scalar(name: str) -> Any:
        value = values.get(name)
        return None if value is None else np.asarray(value).item()

    mission = str(group_attrs.get("mission", ""))
    camera, ccd = scalar("camera"), scalar("ccd")
    module, output = scalar("module"), scalar("output")
    if camera is not None and ccd is not None:
        channel = f"{int(camera)}_{int(ccd)}"
    elif module is not None and output is not None and np.isfinite(module) and np.isfinite(output):
        channel = f"{int(module)}_{int(output)}"
    else:
        channel = ""
    catalog = str(values.get("target_catalog", "") or "") or str(group_attrs.get("target_catalog", ""))
    named = str(values.get("target_designation", "") or "") or str(int(target))  # a designation, else the ID
    product = str(group_attrs.get("product", ""))
    time_format = group_attrs.get("time_format", "time")
    epoch = group_attrs.get("time_reference_epoch_jd")
    metadata = {
        "series_name": observation,
        "series_obj_id": named,
        "obj_id": re.sub(r"[^A-Za-z0-9]+", "", catalog) + re.sub(r"[^A-Za-z0-9]+", "_", named).strip("_"),
        "filter": _FILTERS.get(mission, mission),
        "exp_time": float(exp_time) if exp_time else float("nan"),
        "ra": float(scalar("ra")) if scalar("ra") is not None else float("nan"),
        "dec": float(scalar("dec")) if scalar("dec") is not None else float("nan"),
        "channel": channel,
        "origin": _ORIGINS.get(product, str(group_attrs.get("pipeline", product))),
        "time_stamp_alignment": "middle",
        "altdata": {
            "time_system": f"mjd: MJD (UTC) at the spacecraft = {time_format} - barycentric correction + "
            f"{epoch} - 2400000.5, converted from TDB to UTC (astropy.time); "
            f"bmjd_tdb: BJD_TDB - 2400000.5 = {time_format} + {epoch} - 2400000.5 (barycentric, TDB)",
            "mjd_correction": _correction_note(how, mission),
            "source_file": str(values.get("source_file", "")),
            "source_sha256": str(values.get("source_sha256", "")),
            "product": product,
        },
    }
    return frame, metadata


def _correction_note(how: np.ndarray, mission: str) -> str:
    """How ``mjd`` lost its barycentric correction, in words (see :func:`lcarchive.timescales.observed_mjd`)."""
    counts = np.bincount(how.astype(np.intp), minlength=4)
    n = int(how.size - counts[3])
    parts = []
    if counts[0]:
        parts.append(f"{counts[0]} of {n} time stamps: TIMECORR of the light curve")
    if counts[1]:
        parts.append(
            f"{counts[1]} of {n}: no TIMECORR, computed for the Earth's centre from ra/dec (astropy), "
            f"error {GEOCENTRIC_ERROR.get(mission, 'the spacecraft-Earth light time')}"
        )
    if counts[2]:
        parts.append(
            f"{counts[2]} of {n}: no TIMECORR and no ra/dec, none: mjd is the barycentric time in UTC, off by up to 8.3 min"
        )
    return "; ".join(parts) or "no time stamps"


def skyportal_hdf5_bytes(frame: Any, metadata: dict[str, Any], key: str = "phot_series") -> bytes:
    """The HDF5 file image of a series, as SkyPortal's ``PhotometricSeries`` writes it (in memory)."""
    import pandas as pd

    # HDF5 is not thread-safe, and PyTables refuses a second open file of the same name
    with (
        _HDF5_LOCK,
        pd.HDFStore(f"series-{uuid.uuid4().hex}.h5", mode="w", driver="H5FD_CORE", driver_core_backing_store=0) as store,
    ):
        store.put(key, frame, format="table", index=None, track_times=False)
        store.get_storer(key).attrs.metadata = metadata
        # the in-memory file's image, asked of its PyTables File: HDFStore.root is pandas' public root node,
        # and _v_file is PyTables' documented Node attribute for the File holding the node (its public
        # names start with _v_ so they cannot clash with the names of children)
        return store.root._v_file.get_file_image()
