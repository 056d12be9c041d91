"""Which of several light curves of one target and observation is current: release keys and ranks."""

from __future__ import annotations

import re

import numpy as np

from lcarchive.layout import Block, fill_value

__all__ = ["SEPARATOR", "n_rows", "rank", "release_key", "version"]


def version(text: str) -> tuple[int, ...]:
    """A product version as numbers: ``v01`` -> (1,), ``v1.0`` -> (1, 0), "" -> ()."""
    return tuple(int(n) for n in re.findall(r"\d+", text))


def release_key(block: Block, row: int = 0) -> tuple:
    """(product version, DATA_REL, DATE, PROCVER) of a block's row; (), -1 and "" where the file gives none."""
    p = block.per_target
    text = str(p["product_version"][row]) if "product_version" in p else ""
    return (version(text), int(p["data_release"][row]), str(p["file_date"][row]), str(p["pipeline_version"][row]))


def rank(key: tuple, rows: int | None) -> tuple:
    """Which of two light curves of one target and observation is current: the larger rank.

    The product's version (an HLSP's v02 over its v01), then DATA_REL, DATE and PROCVER, then the
    number of cadences the file has (a complete file before a cut-down copy of the same release);
    on a tie the one stored first stays current (docs/format.md, ingest rules).
    """
    return (*key, -1 if rows is None else rows)


def n_rows(block: Block, row: int = 0) -> int:
    """Cadences a row of a block has (its quality is not the padding fill)."""
    quality = block.series["quality"][row]
    return int(np.count_nonzero(quality != fill_value(quality.dtype)))


SEPARATOR = "\n"
"""Joins the names and checksums of the files of a light curve delivered in several segments."""
