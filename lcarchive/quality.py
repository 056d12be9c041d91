"""Quality flags: bitmasks, flag names and good cadences from the catalog's flag tables.

The meaning of each pipeline's quality bits is data (``catalog/quality/*.json``, one
:class:`~lcarchive.catalog.models.QualityFlagTable` per column); this module only reads it.
The ``default``/``hard``/``hardest`` masks are lightkurve's conventions
(``lightkurve.utils.QualityFlags``): a cadence is good where ``quality & mask == 0``.
Bits are 0-based (value ``2**bit``). Every function takes a table name (``"spoc"``,
``"qlp"``, ...) or a :class:`~lcarchive.catalog.models.QualityFlagTable`.

Examples
--------
>>> from lcarchive.quality import bitmask, decode, good_cadences
>>> bitmask("spoc", "default")
17087
>>> decode([0, 160], "spoc")
{0: [], 160: ['Desat', 'ManualExclude']}
>>> good_cadences([0, 160, 4096], "qlp", "hard", segment=24).tolist()
[True, False, False]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import QualityFlag, QualityFlagTable
from lcarchive.errors import LcarchiveError
from lcarchive.layout import fill_value

__all__ = [
    "MASKS",
    "PADDING",
    "PADDING_NAME",
    "UnknownQualityTableError",
    "bitmask",
    "decode",
    "flag_table",
    "good_cadences",
]

Mask = Literal["none", "default", "hard", "hardest"]
MASKS: tuple[Mask, ...] = ("none", "default", "hard", "hardest")
"""Names of the masks, from none to the strictest (lightkurve's ``quality_bitmask`` strings)."""

PADDING: int = int(fill_value(np.dtype(np.int32)))
"""lcarchive's fill of ``quality`` (-2147483648) where a target has no row for a cadence."""

PADDING_NAME = "padding"
"""The name :func:`decode` gives to :data:`PADDING`."""


class UnknownQualityTableError(LcarchiveError, KeyError):
    """No quality-flag table of this name in the catalog."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"no quality-flag table {name!r}; known: {', '.join(sorted(known))}")

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])


def flag_table(table: str | QualityFlagTable) -> QualityFlagTable:
    """Return a quality-flag table of the shipped catalog.

    Parameters
    ----------
    table : str or QualityFlagTable
        Table name (the ``name`` of a ``catalog/quality/*.json`` file, e.g. ``"spoc"``);
        a table is returned unchanged.

    Returns
    -------
    QualityFlagTable

    Raises
    ------
    UnknownQualityTableError
        No table has this name (also a ``KeyError``); the message lists the known names.
    """
    if isinstance(table, QualityFlagTable):
        return table
    tables = {t.name: t for t in static_catalog().quality_flags}
    try:
        return tables[table]
    except KeyError:
        raise UnknownQualityTableError(table, list(tables)) from None


def _flags(table: QualityFlagTable, segment: int | None) -> list[QualityFlag]:
    """Flags of a table that apply in a segment; all of them for ``segment=None``."""

    def applies(f: QualityFlag) -> bool:
        s = f.segments
        return segment is None or s is None or ((s.min is None or segment >= s.min) and (s.max is None or segment <= s.max))

    return [f for f in table.flags if applies(f)]


def bitmask(table: str | QualityFlagTable, which: Mask = "default", segment: int | None = None) -> int:
    """Return the integer bitmask of a named mask.

    Parameters
    ----------
    table : str or QualityFlagTable
        The quality-flag table (name or table).
    which : {"none", "default", "hard", "hardest"}
        Which mask: the flags whose ``default``/``hard``/``hardest`` field is true;
        ``"none"`` is 0. These follow lightkurve's ``quality_bitmask`` options.
    segment : int, optional
        Sector, quarter or campaign. Flags whose ``segments`` range excludes it are
        left out (QLP's low-precision flag is bit 12 in sectors 1-55 and bit 30 from
        sector 56). None: flags of every segment, i.e. the union over segments, which
        is at least as strict as the mask of any one segment.

    Returns
    -------
    int
        The bitmask, >= 0 (bit ``b`` contributes ``2**b``).

    Raises
    ------
    ValueError
        ``which`` is not one of :data:`MASKS`.
    UnknownQualityTableError
        Unknown table name.
    """
    if which not in MASKS:
        raise ValueError(f"unknown quality mask {which!r}; expected one of {', '.join(MASKS)}")
    if which == "none":
        return 0
    mask = 0
    for f in _flags(flag_table(table), segment):
        if getattr(f, which):
            mask |= 1 << f.bit
    return mask


def _as_bits(quality: np.ndarray) -> np.ndarray:
    """The quality values as uint64 bit patterns of their own width (an int16 -32768 is bit 15)."""
    if quality.dtype.kind == "i":
        native = quality.astype(quality.dtype.newbyteorder("="), copy=False)
        return native.view(f"u{quality.dtype.itemsize}").astype(np.uint64)
    if quality.dtype.kind == "u":
        return quality.astype(np.uint64)
    if quality.size == 0:
        return quality.astype(np.uint64)
    raise TypeError(f"quality values must be integers, not {quality.dtype}")


def _is_padding(quality: np.ndarray) -> np.ndarray:
    """True where a signed integer of 32 bits or more holds :data:`PADDING`."""
    if quality.dtype.kind == "i" and quality.dtype.itemsize >= 4:
        return quality == PADDING
    return np.zeros(quality.shape, dtype=bool)


def decode(values: npt.ArrayLike, table: str | QualityFlagTable, segment: int | None = None) -> dict[int, list[str]]:
    """Name the flags set in quality values.

    Quality columns hold few distinct values, so the result is keyed by value; the
    names of each cadence are ``names[q]`` for ``q`` in the column.

    Parameters
    ----------
    values : int or array_like of int, any shape
        Quality values (a scalar, a column, a (target, cadence) array). Signed values
        are read as the bit pattern of their width, e.g. an int16 -32768 is bit 15.
    table : str or QualityFlagTable
        The quality-flag table (name or table).
    segment : int, optional
        Sector, quarter or campaign, for flags whose meaning depends on it (see
        :func:`bitmask`). None: every meaning of a bit is listed.

    Returns
    -------
    dict of int to list of str
        For each distinct value, ascending: the names of its set bits in ascending
        bit order (as ``lightkurve.utils.QualityFlags.decode``, but the flag names of
        the table, e.g. ``"Desat"``); ``"bit<N>"`` for a set bit the table does not
        define; ``[]`` for 0; ``["padding"]`` (:data:`PADDING_NAME`) for lcarchive's
        fill :data:`PADDING`.

    Raises
    ------
    TypeError
        The values are not integers.
    UnknownQualityTableError
        Unknown table name.
    """
    q = np.unique(np.asarray(values))
    names_of_bit: dict[int, list[str]] = {}
    for f in _flags(flag_table(table), segment):
        names_of_bit.setdefault(f.bit, []).append(f.name)
    out: dict[int, list[str]] = {}
    for value, bits, pad in zip(q.tolist(), _as_bits(q).tolist(), _is_padding(q).tolist(), strict=True):
        if pad:
            out[int(value)] = [PADDING_NAME]
            continue
        set_bits = (b for b in range(int(bits).bit_length()) if bits >> b & 1)
        out[int(value)] = [name for b in set_bits for name in names_of_bit.get(b, [f"bit{b}"])]
    return out


def good_cadences(
    quality: npt.ArrayLike,
    table: str | QualityFlagTable,
    which: Mask = "default",
    segment: int | None = None,
) -> np.ndarray:
    """Return which cadences pass a quality mask.

    Parameters
    ----------
    quality : array_like of int, shape (...)
        Quality values, e.g. a source column or the archive's (target, cadence)
        ``quality`` variable; any integer dtype and byte order (int16 TGLC flags
        included).
    table : str or QualityFlagTable
        The quality-flag table (name or table).
    which : {"none", "default", "hard", "hardest"}
        The mask (see :func:`bitmask`).
    segment : int, optional
        Sector, quarter or campaign (see :func:`bitmask`).

    Returns
    -------
    numpy.ndarray of bool, shape (...)
        True where ``quality & bitmask(table, which, segment) == 0`` (lightkurve's
        ``create_quality_mask``) and ``quality`` is not lcarchive's fill
        :data:`PADDING` (no row: never good, even for ``which="none"``).

    Raises
    ------
    TypeError
        The values are not integers.
    ValueError
        Unknown ``which``.
    UnknownQualityTableError
        Unknown table name.
    """
    mask = np.uint64(bitmask(table, which, segment))
    q = np.asarray(quality)
    return ((_as_bits(q) & mask) == 0) & ~_is_padding(q)
