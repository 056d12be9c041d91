"""Input formats: every kind of light-curve file lcarchive reads, behind one registry.

A :class:`Format` says how to tell a file of its kind (``identify``: a cheap look at the first
bytes) and how to read it (``parse``: the file's bytes to its light curves). The formats known
are FITS (every product of ``catalog/products``, light curves derived from them, and light
curves of no known product read generically), gzip-compressed files of any of them, HDF5 (QLP's
internal files and SkyPortal photometric series written by pandas) and SkyPortal series in JSON.
CSV and Parquet tables need a column mapping and are read by :func:`read_lightcurves` with
``table_map`` (:mod:`lcarchive.formats.tables`).

When several formats identify a file, the highest ``priority`` reads it; a tie is an error.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from lcarchive.config import settings
from lcarchive.errors import (
    BadInputError,
    CorruptFileError,
    InputTooLargeError,
    InvalidIdentifierError,
    UnrecognizedProductError,
)
from lcarchive.formats.record import CORE_VARIABLES, Column, LightCurveFile
from lcarchive.formats.source import read_source

__all__ = [
    "CORE_VARIABLES",
    "Column",
    "Format",
    "LightCurveFile",
    "formats",
    "identify",
    "parse_lightcurve",
    "parse_lightcurves",
    "read_lightcurve",
    "read_lightcurves",
    "read_source",
    "register_format",
]


@dataclass(frozen=True)
class Format:
    """One kind of input file.

    Attributes
    ----------
    name : str
        ``fits``, ``gzip``, ``hdf5``, ``skyportal-json``...
    identify : callable
        ``identify(data: bytes) -> bool``: whether the bytes are of this kind (the first bytes).
    parse : callable
        ``parse(data: bytes, source: str) -> list[LightCurveFile]``; raises the errors of
        :class:`~lcarchive.errors.BadInputError` for a file that is no light curve or damaged.
    priority : int
        Which format reads a file several identify (the highest).
    """

    name: str
    identify: Callable[[bytes], bool]
    parse: Callable[[bytes, str], list[LightCurveFile]]
    priority: int = 0


_FORMATS: list[Format] = []


def register_format(fmt: Format) -> None:
    """Add a format to the registry (a later one of the same name replaces it)."""
    _FORMATS[:] = [f for f in _FORMATS if f.name != fmt.name] + [fmt]


def formats() -> list[Format]:
    """The registered formats."""
    return list(_FORMATS)


def identify(data: bytes, source: str) -> Format:
    """The format that reads ``data``.

    Raises
    ------
    CorruptFileError
        An empty file.
    UnrecognizedProductError
        No format identifies it, or two of the highest priority do.
    """
    if len(data) == 0:
        raise CorruptFileError(source, "empty file (0 bytes)")
    matches = [f for f in _FORMATS if f.identify(data)]
    if not matches:
        if data.startswith(b"PAR1"):
            raise UnrecognizedProductError(source, "a Parquet table: ingest it with a column mapping (--table-map)")
        raise UnrecognizedProductError(source, "not a FITS file (no SIMPLE card at the start)")
    best = max(f.priority for f in matches)
    top = [f for f in matches if f.priority == best]
    if len(top) > 1:
        raise UnrecognizedProductError(source, f"ambiguous: identified as {' and '.join(f.name for f in top)}")
    return top[0]


def parse_lightcurves(data: bytes, source: str) -> list[LightCurveFile]:
    """Parse the bytes of a light-curve file into its light curves (one for every format but tables).

    Raises
    ------
    CorruptFileError, UnrecognizedProductError, InvalidTargetError
        Damaged bytes, no light curve lcarchive can read, no valid target.
    """
    return identify(data, source).parse(data, source)


def parse_lightcurve(data: bytes, source: str) -> LightCurveFile:
    """Parse the bytes of a file holding one light curve (see :func:`parse_lightcurves`)."""
    found = parse_lightcurves(data, source)
    if len(found) != 1:
        raise UnrecognizedProductError(source, f"holds {len(found)} light curves: use parse_lightcurves")
    return found[0]


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
        Readable, but no light curve lcarchive can read.
    InvalidTargetError
        Missing or invalid TIC/KIC/EPIC ID.
    """
    return parse_lightcurve(read_source(source, storage_options), source)


def read_lightcurves(source: str, storage_options: dict | None = None, table_map: object | None = None) -> list[LightCurveFile]:
    """Read the light curves of one input: a file of any registered format, or a CSV/Parquet table
    (by its name) read with ``table_map`` (:class:`lcarchive.formats.tables.TableMap`).

    Raises
    ------
    BadInputError
        As for :func:`read_lightcurve`; a table without a table map.
    """
    from lcarchive.formats.tables import is_table, read_table

    if is_table(source):
        if table_map is None:
            raise UnrecognizedProductError(
                source, "a CSV/Parquet table needs a column mapping: give --table-map (Archive.ingest(table_map=...))"
            )
        return read_table(source, table_map, storage_options)  # type: ignore[arg-type]  # a TableMap, typed object to keep formats.tables lazy
    return parse_lightcurves(read_source(source, storage_options), source)


# -- the formats -------------------------------------------------------------------------------


def _parse_fits(data: bytes, source: str) -> list[LightCurveFile]:
    from astropy.io import fits

    from lcarchive.formats.fits import open_fits, parse_fits

    hdul = open_fits(data, source)
    with hdul:
        try:
            return [parse_fits(hdul, data, source)]
        except (BadInputError, InvalidIdentifierError):
            raise
        except (fits.VerifyError, KeyError, AttributeError, ValueError, TypeError, IndexError) as exc:
            # astropy meets a header it cannot use (an unparsable card, a bad TFORMn, a missing TFIELDS)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CorruptFileError(
                source, f"damaged FITS header or table: {type(exc).__name__}{': ' + text if text else ''}"
            ) from exc


def _parse_gzip(data: bytes, source: str) -> list[LightCurveFile]:
    """A gzip-compressed light-curve file (``.fits.gz``): parsed as the file it holds.

    The light curves' ``sha256`` and ``size`` are those of the decompressed file, so a
    ``.fits.gz`` and the ``.fits`` it holds are the same input and an export rebuilds the FITS
    file byte for byte; the compressed file's own checksum and size are kept in the notes. It is
    inflated in steps and refused (:class:`~lcarchive.errors.InputTooLargeError`) as soon as it
    passes ``Settings.max_decompressed_bytes``: a gzip bomb costs at most that much memory.
    """
    limit = settings().max_decompressed_bytes
    step = settings().inflate_step_bytes
    inflater = zlib.decompressobj(wbits=31)
    parts: list[bytes] = []
    total, pending = 0, data
    try:  # inflated in steps of at most Settings.inflate_step_bytes, given up as soon as the limit is passed
        while not inflater.eof:
            part = inflater.decompress(pending, min(step, limit + 1 - total))
            pending = inflater.unconsumed_tail
            parts.append(part)
            total += len(part)
            if total > limit:
                raise InputTooLargeError(
                    source,
                    f"gzip stream inflates beyond {limit} bytes (Settings.max_decompressed_bytes, "
                    f"LCARCHIVE_MAX_DECOMPRESSED_BYTES) from {len(data)}: a gzip bomb or no "
                    "light-curve file; refused",
                )
            if not part and not pending:
                break
    except zlib.error as exc:
        raise CorruptFileError(source, f"damaged gzip stream: {exc}") from exc
    inner = b"".join(parts)
    del parts
    if not inflater.eof:
        raise CorruptFileError(source, "truncated gzip stream (the compressed file ends early)")
    if inner.startswith(b"\x1f\x8b"):
        raise UnrecognizedProductError(source, "gzip inside gzip: decompress it first")
    found = parse_lightcurves(inner, source)
    for lc in found:
        lc.notes["compression"] = (
            f"gzip: read decompressed; the compressed file is {len(data)} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}"
        )
    return found


def _parse_hdf5(data: bytes, source: str) -> list[LightCurveFile]:
    from lcarchive.formats.hdf5 import parse_hdf5

    return [parse_hdf5(data, source)]


def _parse_json(data: bytes, source: str) -> list[LightCurveFile]:
    from lcarchive.formats.skyportal import parse_skyportal_json

    return [parse_skyportal_json(data, source)]


register_format(Format("fits", lambda data: data.startswith(b"SIMPLE  ="), _parse_fits))
register_format(Format("gzip", lambda data: data.startswith(b"\x1f\x8b"), _parse_gzip))
register_format(Format("hdf5", lambda data: data.startswith(b"\x89HDF"), _parse_hdf5))
register_format(
    Format("skyportal-json", lambda data: data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{", _parse_json)
)
