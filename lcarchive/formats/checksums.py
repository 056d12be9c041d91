"""Integrity evidence of a FITS input: its ``DATASUM`` and ``CHECKSUM`` cards checked on its raw bytes.

The FITS standard (4.0, section 4.4.2.7 and Appendix J) defines both as 32-bit ones'-complement
sums of an HDU's 2880-byte blocks read as big-endian unsigned integers: ``DATASUM`` (unsigned
decimal, as a string) is the sum of the data blocks, and ``CHECKSUM`` is an ASCII encoding chosen
so that the sum of the header and data blocks, the card itself included, is -0 (all bits set).

lcarchive computes them here, on the bytes exactly as they are in the file, rather than with
astropy's ``fits.open(..., checksum=True)``: that recomputes the sums on astropy's own
serialisation of the HDU and reports failures on pristine SPOC and Kepler products (74 of the 86
files carrying the cards in the fault campaign of issue 18), where the raw sums pass on every one.

A file's cards may fail for three reasons: its bytes were damaged after the cards were written;
a tool rewrote it and left the old cards (PyKE, lightkurve, cut-down test files); or its writer's
``DATASUM`` was wrong from the start (a K2SFF HLSP as published). :func:`integrity` tells them apart
as far as the file allows (:data:`STATES`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

__all__ = ["STATES", "HduCheck", "Integrity", "hdu_checks", "integrity", "ones_complement_sum"]

BLOCK = 2880

STATES = {
    "sound": "every DATASUM and CHECKSUM card of the file matches its bytes",
    "no-checksums": "the file carries no DATASUM or CHECKSUM card (or is no FITS file): nothing to check",
    "stale-cards": "some cards do not match, but the file was rewritten by a tool that kept the old cards, "
    "or only its writer's DATASUM is wrong while CHECKSUM vouches for the bytes: recorded, not refused",
    "damaged": "some cards do not match and nothing explains it: the bytes changed after they were written "
    "(possibly damaged); stored flagged, never ranked at or above a sound copy",
}
"""The integrity states of an input, and what each means."""


def ones_complement_sum(data: bytes | memoryview, start: int = 0, stop: int | None = None) -> int:
    """The 32-bit ones'-complement sum of ``data[start:stop]`` read as big-endian unsigned integers.

    This is the sum of FITS standard 4.0 Appendix J (end-around carry): numpy adds the words in
    64 bits and the carries are folded back in. A length not a multiple of 4 is padded with zeros
    (a truncated file; FITS HDUs are whole 2880-byte blocks).

    Parameters
    ----------
    data : bytes or memoryview
        The file's raw bytes.
    start, stop : int
        Byte range summed.

    Returns
    -------
    int
        The sum, 0 .. 2**32 - 1.
    """
    view = memoryview(data)[start:stop]
    whole = len(view) // 4 * 4
    words = np.frombuffer(view[:whole], dtype=">u4")
    total = 0
    step = 1 << 30  # at most 2**30 words per uint64 sum: it cannot overflow
    for k in range(0, words.size, step):
        total += int(words[k : k + step].sum(dtype=np.uint64))
    if whole < len(view):
        total += int.from_bytes(bytes(view[whole:]).ljust(4, b"\0"), "big")
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


@dataclass(frozen=True)
class HduCheck:
    """The checksum cards of one HDU checked against its raw bytes.

    Attributes
    ----------
    index : int
        HDU index (0: primary).
    name : str
        EXTNAME (PRIMARY for the primary), "" if none.
    datasum : str
        ``ok``, ``fail`` or ``absent`` (no DATASUM card, or one that is no unsigned integer: ``fail``).
    checksum : str
        ``ok``, ``fail`` or ``absent``.
    """

    index: int
    name: str
    datasum: str
    checksum: str

    @property
    def failed(self) -> bool:
        """A card of the HDU does not match its bytes."""
        return "fail" in (self.datasum, self.checksum)

    def as_dict(self) -> dict:
        """``{"hdu", "name", "DATASUM", "CHECKSUM"}``: what the archive stores per HDU."""
        return {"hdu": self.index, "name": self.name, "DATASUM": self.datasum, "CHECKSUM": self.checksum}


@dataclass(frozen=True)
class Integrity:
    """An input's integrity evidence.

    Attributes
    ----------
    state : str
        One of :data:`STATES`.
    reason : str
        One line saying why (which HDUs fail, what recognised the file as rewritten); "" for
        ``sound`` and ``no-checksums``.
    hdus : list of HduCheck
        Per HDU, in file order; empty for inputs that are no FITS files.
    """

    state: str = "no-checksums"
    reason: str = ""
    hdus: list[HduCheck] = field(default_factory=list)

    @property
    def detail(self) -> str:
        """The per-HDU evidence as JSON (what the archive stores), ``[]`` when none."""
        return json.dumps([h.as_dict() for h in self.hdus], separators=(",", ":"))


def hdu_checks(hdul: fits.HDUList, data: bytes) -> list[HduCheck]:
    """Check each HDU's ``DATASUM`` and ``CHECKSUM`` cards on the raw bytes of the file.

    The HDUs' places in the file are astropy's (``_header_offset``, ``_data_offset`` and
    ``_data_size`` of an HDUList opened from ``data``); an HDU's data is its blocks, padding
    included, as the standard sums whole 2880-byte blocks (bytes after the last HDU are no part
    of it).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The file, opened from ``data`` with every HDU read.
    data : bytes
        The file's bytes.

    Returns
    -------
    list of HduCheck
        One per HDU; an HDU whose place astropy does not record is left out.
    """
    starts = [(getattr(h, "_header_offset", None), getattr(h, "_data_offset", None)) for h in hdul]
    out = []
    for i, hdu in enumerate(hdul):
        head, body = starts[i]
        if not isinstance(head, int) or not isinstance(body, int):
            continue
        end = next((s[0] for s in starts[i + 1 :] if isinstance(s[0], int)), len(data))
        size = getattr(hdu, "_data_size", None)
        if isinstance(size, int) and size >= 0:
            end = min(end, body + -(-size // BLOCK) * BLOCK)
        header = hdu.header
        datasum = checksum = "absent"
        if "DATASUM" in header:
            text = str(header["DATASUM"]).strip()
            datasum = "ok" if text.isdigit() and int(text) == ones_complement_sum(data, body, end) else "fail"
        if "CHECKSUM" in header:
            checksum = "ok" if ones_complement_sum(data, head, end) in (0xFFFFFFFF, 0) else "fail"
        out.append(HduCheck(i, hdu.name or "", datasum, checksum))
    return out


def integrity(checks: list[HduCheck], mission_product: bool, rewritten: str | None) -> Integrity:
    """An input's integrity state from its HDUs' checks.

    Parameters
    ----------
    checks : list of HduCheck
        :func:`hdu_checks` of the file.
    mission_product : bool
        The file was recognised as a mission product (a product with ``standard_columns``:
        SPOC, TESS-SPOC, Kepler, K2), whose pipeline writes correct cards.
    rewritten : str or None
        Why the file is known to have been rewritten by a tool after its cards were written
        (a PyKE tool's HISTORY, lightkurve's CREATOR, a cut-down copy), None if it is not.

    Returns
    -------
    Integrity
        ``sound`` when every card passes; ``no-checksums`` when there is none; ``stale-cards``
        when cards fail on a file ``rewritten``, or where only DATASUM fails and CHECKSUM passes
        (the bytes are those the writer summed), or, for a file of no mission product, only
        DATASUM cards fail and no CHECKSUM says otherwise (a HLSP as published, K2SFF's); else
        ``damaged``.
    """
    carded = [c for c in checks if (c.datasum, c.checksum) != ("absent", "absent")]
    failed = [c for c in checks if c.failed]
    if not carded:
        return Integrity("no-checksums", "", checks)
    if not failed:
        return Integrity("sound", "", checks)
    where = ", ".join(
        f"HDU {c.index}{f' ({c.name})' if c.name else ''}: "
        + " and ".join(k for k, v in (("DATASUM", c.datasum), ("CHECKSUM", c.checksum)) if v == "fail")
        for c in failed
    )
    if rewritten is not None:
        return Integrity("stale-cards", f"cards fail on the raw bytes ({where}); {rewritten}", checks)
    if all(c.checksum == "ok" for c in failed):
        return Integrity(
            "stale-cards",
            f"DATASUM fails but CHECKSUM holds ({where}): the writer's DATASUM card is wrong, the bytes are as written",
            checks,
        )
    if not mission_product and all(c.checksum == "absent" for c in failed):
        return Integrity(
            "stale-cards",
            f"DATASUM fails and no CHECKSUM ({where}) on a file of no mission product: recorded as its publisher wrote it",
            checks,
        )
    return Integrity("damaged", f"cards fail on the raw bytes ({where}): possibly damaged", checks)
