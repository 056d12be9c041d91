"""Cadence numbers: read from a file's cadence column, or made from its time stamps."""

from __future__ import annotations

import numpy as np

from lcarchive.errors import CorruptFileError, UnrecognizedProductError
from lcarchive.formats.record import CORE_VARIABLES, Column

__all__ = ["cadence_numbers", "derive_cadences"]


def cadence_numbers(columns: dict[str, Column], source: str = "", damaged: bool = False) -> tuple[np.ndarray, str | None]:
    """The cadence numbers of the rows, and how they were derived when not read from a column.

    A cadence column that is missing, or not strictly increasing in time order (TGLC v2 files
    hold 0 on every row), is replaced by numbers made from the time stamps
    (:func:`derive_cadences`: the first row round(TIME / step), each next one
    plus its time step in steps); the column stays a variable.

    With ``damaged`` (the file's checksum cards fail), a column increasing row by row is kept
    even where the time stamps do not increase with it: a damaged time stamp must not cost the
    light curve its cadence axis (the file is stored, flagged, not refused). A damaged cadence
    number (the column no longer increasing) is replaced as above.
    """
    column = columns.get("cadenceno")
    if column is not None:
        values = column.data.astype(np.int64)
        time = columns["time"].data
        order = np.argsort(values, kind="stable")
        finite = np.isfinite(time[order])
        unique = np.unique(values).size == values.size
        if unique and np.all(np.diff(time[order][finite]) > 0):
            return values, None
        if damaged and values.size > 1 and bool(np.all(np.diff(values) > 0)):  # increasing row by row: the time is wrong
            wrong = int(np.count_nonzero(np.diff(time[order][finite]) <= 0))
            return values, (
                f"read from {column.source}, kept although TIME does not increase with it at {wrong} "
                "row(s): the file's checksum cards fail (damaged time stamps)"
            )
        name = column.source.lower() if column.source.lower() not in CORE_VARIABLES else f"{column.source.lower()}_column"
        columns[name] = Column(
            name, column.source, column.data, column.units, column.fits_unit, column.description, column.hdu, column.fits_format
        )
        del columns["cadenceno"]
    derived, how = derive_cadences(columns["time"].data, source)
    return derived, how


def derive_cadences(time: np.ndarray, source: str) -> tuple[np.ndarray, str]:
    """Number the rows' cadences from their time stamps.

    The timed rows, in time order, are numbered from round(t / step) of the first one (step: the
    median time step), each next one the previous number plus round(its time step / step), at
    least 1. When the rows are in time order, rows without a time stamp (NaN) take the numbers
    that follow the timed row before them, and a gap between timed rows is numbered at least as
    wide as the rows it holds. Unlike round(t / step) for every row, the numbers never collide
    when the time stamps drift from a whole number of steps (the barycentric correction does:
    a SPOC 2-min sector drifts by a third of a cadence).

    Parameters
    ----------
    time : numpy.ndarray, shape (n_rows,)
        Time stamps, days, NaN where missing.
    source : str
        Input named in errors.

    Returns
    -------
    (numpy.ndarray, str)
        Cadence numbers, shape (n_rows,), int64, unique; and how they were derived.

    Raises
    ------
    CorruptFileError
        No finite time stamp, or two rows with the same time stamp.
    UnrecognizedProductError
        Rows without a time stamp in a table whose rows are not in time order (nothing places them).
    """
    n = time.size
    finite = np.isfinite(time)
    timed = np.flatnonzero(finite)
    if timed.size == 0:
        raise CorruptFileError(source, "no finite time stamp in the table")
    t = time[timed].astype(np.float64)
    order = np.argsort(t, kind="stable")
    steps = np.diff(t[order])
    repeated = int(np.count_nonzero(steps == 0))
    if repeated:
        raise CorruptFileError(source, f"{repeated} row(s) repeat the time stamp of another row of the same light curve")
    in_order = bool(np.all(np.diff(t) > 0))
    if not in_order and timed.size < n:
        raise UnrecognizedProductError(
            source,
            f"{n - timed.size} row(s) have no time stamp and the rows are not in time order: "
            "nothing places them on the cadence axis",
        )
    step = float(np.median(steps)) if steps.size else 0.0
    seconds = round(step * 86400.0)  # TESS FFIs: 1800, 600, 200 s; time stamps drift by ppm from exact steps
    if seconds and abs(step * 86400.0 - seconds) < 0.01 * seconds:
        step = seconds / 86400.0  # the same step, so the same first number, for every target of a sector
    cadenceno = np.empty(n, dtype=np.int64)
    if step <= 0:  # one timed row
        cadenceno[timed] = 0
        how = "one timed row: cadence 0"
    else:
        gaps = np.maximum(np.rint(steps / step).astype(np.int64), 1)
        if in_order:
            gaps = np.maximum(gaps, np.diff(timed))
        cadenceno[timed[order]] = int(np.rint(t[order][0] / step)) + np.concatenate([[0], np.cumsum(gaps)])
        how = (
            f"derived from the time stamps (no cadence numbers in the input): round(first time / {step * 86400.0:.6g} s, "
            "the median step), then each next row + round(its time step / median step), at least 1"
        )
    if timed.size < n:
        rows = np.arange(n)
        previous = np.maximum.accumulate(np.where(finite, rows, -1))
        missing = ~finite
        after = missing & (previous >= 0)
        cadenceno[after] = cadenceno[previous[after]] + (rows[after] - previous[after])
        before = missing & (previous < 0)
        cadenceno[before] = cadenceno[timed[0]] - (timed[0] - rows[before])
        how += f"; {n - timed.size} row(s) without a time stamp numbered by their place between timed rows"
    return cadenceno, how
