"""Which of several light curves of one target and observation is current: release keys and ranks
(the ingest rules of ``docs/format.md``; the store layer reads the keys of stored rows with them)."""

from __future__ import annotations

import re

import numpy as np

from lcarchive.layout import Block, fill_value

__all__ = ["SEPARATOR", "damaged", "n_rows", "rank", "release_key", "version"]


def version(text: str) -> tuple[int, ...]:
    """A product version as numbers: ``v01`` -> (1,), ``v1.0`` -> (1, 0), "" -> ()."""
    return tuple(int(n) for n in re.findall(r"\d+", text))


def release_key(block: Block, row: int = 0) -> tuple:
    """(product version, DATA_REL, DATE, PROCVER) of a block's row; (), -1 and "" where the file gives none."""
    p = block.per_target
    text = str(p["product_version"][row]) if "product_version" in p else ""
    return (version(text), int(p["data_release"][row]), str(p["file_date"][row]), str(p["pipeline_version"][row]))


def rank(key: tuple, rows: int | None, is_damaged: bool = False) -> tuple:
    """Which of two light curves of one target and observation is current: the larger rank.

    First whether its file is sound: a file whose checksum cards say its bytes changed
    (integrity ``damaged``, :mod:`lcarchive.formats.checksums`) ranks below every other copy,
    whatever its release. Then the product's version (an HLSP's v02 over its v01), DATA_REL,
    DATE and PROCVER, then the number of cadences the file has (a complete file before a
    cut-down copy of the same release); on a tie the one stored first stays current
    (docs/format.md, ingest rules).

    Returns
    -------
    tuple
        ``(0 if damaged else 1, version, DATA_REL, DATE, PROCVER, rows)``.
    """
    return (0 if is_damaged else 1, *key, -1 if rows is None else rows)


def damaged(integrity: str) -> bool:
    """Whether a stored row's ``integrity`` (one state per file, newline-joined for a light curve
    of several files; "" for rows stored before it was recorded) holds a damaged file."""
    return "damaged" in str(integrity).split(SEPARATOR)


def n_rows(block: Block, row: int = 0) -> int:
    """Cadences a row of a block has (its quality is not the padding fill)."""
    quality = block.series["quality"][row]
    return int(np.count_nonzero(quality != fill_value(quality.dtype)))


SEPARATOR = "\n"
"""Joins the names and checksums of the files of a light curve delivered in several segments."""
