"""lcarchive.formats.cadences and record.check_rows: cadence numbers read or derived for any rows,
with duplicates, gaps, missing time stamps and rows out of order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lcarchive.errors import CorruptFileError, UnrecognizedProductError
from lcarchive.formats.cadences import cadence_numbers, derive_cadences
from lcarchive.formats.record import Column, check_rows

STEP = 120.0 / 86400.0  # a 2-min cadence, days


def _columns(time: np.ndarray, cadenceno: np.ndarray | None) -> dict[str, Column]:
    columns = {"time": Column("time", "TIME", time, "d", "BTJD - 2457000, days", "time", "LIGHTCURVE")}
    if cadenceno is not None:
        columns["cadenceno"] = Column("cadenceno", "CADENCENO", cadenceno, None, None, "cadence number", "LIGHTCURVE")
    return columns


DISTINCT_TIMES = st.lists(st.floats(1000.0, 1030.0), min_size=1, max_size=60, unique=True).map(np.array)


@given(time=DISTINCT_TIMES, order=st.randoms())
def test_derived_numbers_are_unique_and_follow_the_time_order_for_rows_in_any_order(time, order):
    rows = list(range(time.size))
    order.shuffle(rows)
    shuffled = time[rows]
    numbers, how = derive_cadences(shuffled, "f.fits")
    assert numbers.dtype == np.int64 and np.unique(numbers).size == numbers.size
    by_time = np.argsort(shuffled)
    assert np.all(np.diff(numbers[by_time]) > 0)
    assert "derived from the time stamps" in how or time.size == 1


@given(
    first=st.integers(0, 10**6),
    gaps=st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 7, 40]), max_size=80),
    jitter=st.floats(0, 0.001),
    seed=st.integers(0, 2**16),
)
def test_a_regular_cadence_with_gaps_is_numbered_as_its_steps(first, gaps, jitter, seed):
    """Time stamps k * step, each off by up to 0.1% of a step (0.12 s: the median step then rounds
    to the 120 s it is, as the drift of real time stamps, ppm, does), get the numbers k: gaps kept."""
    assume(not gaps or np.median(gaps) == 1)
    k = first + np.concatenate([[0], np.cumsum(gaps, dtype=np.int64)])
    drift = np.random.default_rng(seed).uniform(-jitter, jitter, k.size)
    numbers, _ = derive_cadences((k + drift) * STEP, "f.fits")
    np.testing.assert_array_equal(numbers, k if k.size > 1 else [0])


@given(time=DISTINCT_TIMES.map(np.sort), data=st.data())
def test_rows_without_a_time_stamp_take_the_numbers_between_their_neighbours(time, data):
    n_missing = data.draw(st.integers(1, 5))
    at = sorted(data.draw(st.lists(st.integers(0, time.size), min_size=n_missing, max_size=n_missing)))
    with_gaps = np.insert(time, at, np.nan)
    numbers, how = derive_cadences(with_gaps, "f.fits")
    assert np.unique(numbers).size == numbers.size and np.all(np.diff(numbers) > 0)
    assert f"{n_missing} row(s) without a time stamp" in how


def test_what_cannot_be_numbered_is_refused():
    with pytest.raises(CorruptFileError, match="no finite time stamp"):
        derive_cadences(np.array([np.nan, np.nan]), "f.fits")
    with pytest.raises(CorruptFileError, match="repeat the time stamp"):
        derive_cadences(np.array([1.0, 2.0, 1.0]), "f.fits")
    with pytest.raises(UnrecognizedProductError, match="not in time order"):
        derive_cadences(np.array([2.0, np.nan, 1.0]), "f.fits")
    numbers, how = derive_cadences(np.array([np.nan, 5.0, np.nan]), "f.fits")
    np.testing.assert_array_equal(numbers, [-1, 0, 1])
    assert how.startswith("one timed row")


@given(time=DISTINCT_TIMES.map(np.sort), first=st.integers(0, 10**7), data=st.data())
def test_a_cadence_column_increasing_with_time_is_kept_in_any_row_order(time, first, data):
    cadences = first + np.arange(time.size) * data.draw(st.integers(1, 3))
    rows = data.draw(st.permutations(range(time.size)))
    columns = _columns(time[rows], cadences[rows].astype(np.int32))
    numbers, how = cadence_numbers(columns, "f.fits")
    assert how is None and numbers.dtype == np.int64
    np.testing.assert_array_equal(numbers, cadences[rows])
    assert "cadenceno" in columns


@given(time=DISTINCT_TIMES.map(np.sort), data=st.data())
def test_a_cadence_column_with_duplicates_is_replaced_and_kept_as_a_variable(time, data):
    assume(time.size > 1)
    cadences = np.arange(time.size, dtype=np.int32)
    twin = data.draw(st.integers(1, time.size - 1))
    cadences[twin] = cadences[twin - 1]  # TGLC v2 writes 0 on every row
    columns = _columns(time, cadences.copy())
    numbers, how = cadence_numbers(columns, "f.fits")
    assert how is not None and "derived" in how
    assert np.unique(numbers).size == numbers.size
    assert "cadenceno" not in columns and "cadenceno_column" in columns
    np.testing.assert_array_equal(columns["cadenceno_column"].data, cadences)
    assert columns["cadenceno_column"].source == "CADENCENO"


def test_a_damaged_file_keeps_its_increasing_cadences_under_a_wrong_time_stamp():
    time = np.array([1.0, 2.0, 1.5, 4.0])
    cadences = np.array([10, 11, 12, 13])
    kept, how = cadence_numbers(_columns(time, cadences), "f.fits", damaged=True)
    np.testing.assert_array_equal(kept, cadences)
    assert "kept although TIME does not increase with it at 1 row(s)" in how
    derived, how = cadence_numbers(_columns(time, cadences), "f.fits")
    assert "derived" in how and not np.array_equal(derived, cadences)


@given(cadences=st.lists(st.integers(-5, 5), min_size=1, max_size=12), finite=st.lists(st.booleans(), min_size=12, max_size=12))
def test_check_rows_refuses_repeated_cadences_and_rows_without_time(cadences, finite):
    time = np.where(finite[: len(cadences)], 1.0, np.nan)
    repeated = len(set(cadences)) != len(cadences)
    if repeated or not any(finite[: len(cadences)]):
        with pytest.raises(CorruptFileError, match="repeated cadence numbers" if repeated else "no finite time stamp"):
            check_rows(time, np.array(cadences), "f.fits")
    else:
        check_rows(time, np.array(cadences), "f.fits")
