"""Independent reference readings of source files (astropy, lightkurve), aligned on cadence numbers."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

QUALITY_FILL = np.iinfo(np.int32).min


def source_table(path) -> tuple[dict[str, np.ndarray], fits.Header, fits.Header]:
    """Return the numeric columns of HDU 1 (upper-case names), the primary and table headers."""
    with fits.open(path, memmap=False) as hdul:
        table = hdul[1].data
        cols = {
            name.upper(): np.asarray(table[name]).astype(table[name].dtype.newbyteorder("="))
            for name in table.names
            if np.asarray(table[name]).ndim == 1 and np.asarray(table[name]).dtype.kind in "iuf"
        }
        return cols, hdul[0].header.copy(), hdul[1].header.copy()


def bits(a: np.ndarray) -> np.ndarray:
    """View an array as unsigned integers of the same width, so NaN payloads compare too."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    mismatch = np.flatnonzero(bits(actual) != bits(expected))
    assert mismatch.size == 0, f"{what}: {mismatch.size} values differ, first at {mismatch[:5]}"
