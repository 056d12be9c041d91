"""lcarchive's settings: one frozen object instead of module constants.

Every tunable number lives in :class:`Settings`; code reads :func:`settings` when it needs one,
and tests (or a user) change them for a block with :func:`override`::

    with lcarchive.config.override(targets_per_shard=2):
        archive.ingest(files)

Environment variables ``LCARCHIVE_<NAME>`` (``LCARCHIVE_BATCH_FILES=64``) set a setting for a
whole process, e.g. a ``lcarchive ingest`` run. An override holds in the thread or task that made
it (a :class:`contextvars.ContextVar`, no global), and lcarchive carries it to the work it hands
out: threads (:func:`carry`), coroutines on zarr's event loop (their context is the caller's), and
worker processes and Dask tasks, which are given the :class:`Settings` object itself (:func:`use`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator

__all__ = ["Settings", "WithSettings", "carry", "override", "settings", "use"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """lcarchive's settings.

    Attributes
    ----------
    targets_per_shard : int
        Targets per shard of the (target, cadence) arrays; one target is one inner chunk.
    batch_files : int
        Files parsed and written per step of an ingest, bounding its memory.
    parallel_min_files : int
        Below this many files an ingest parses in its own process (starting workers costs more).
    max_hdus : int
        A FITS file of more HDUs is refused after reading this many headers: light-curve
        products hold 2 to 25 (K2SFF: a table per aperture).
    max_input_bytes : int
        An input file larger than this is refused by its size (the file system's, or the object
        store's), before it is read: light-curve files are a few MB (a TESS 20-s light curve about
        30 MB), and a sparse or runaway file of GBs must not be read into memory.
    max_table_bytes : int
        The same for a CSV/Parquet table of many light curves (``--table-map``), read whole into
        memory by pandas/pyarrow.
    max_decompressed_bytes : int
        A gzip-compressed input (``.fits.gz``) that inflates beyond this is refused: it is inflated
        in steps and given up as soon as it passes the limit, so a gzip bomb costs at most this
        much memory and the time to inflate it.
    max_vector_elements : int
        Vector columns of a light-curve table with at most this many elements per row (astropy's
        Time columns: jd1, jd2) are kept as one variable per element; longer ones (pixel stamps)
        per target.
    read_attempts : int
        Attempts of one read (an object, a range of it, opening a repository or a session) whose
        response is cut off or whose connection is reset, with back-off 0.1, 0.2, 0.4 s...: on
        top of the store client's own retries (``store_attempts``), which do not cover a body
        that ended early.
    store_attempts : int
        Attempts icechunk (and obstore, on lcarchive's reads of plain Zarr groups) makes of one
        request that fails (unreachable, reset, throttled, 5xx), with
        exponential back-off from 0.1 s up to ``store_backoff_max_ms``: 7 attempts wait about
        6 s in all before the error is reported (icechunk's own default, 10 up to 3 minutes,
        waits about a minute).
    store_backoff_max_ms : int
        Longest wait between two attempts, milliseconds.
    coalesce_gap_bytes : int
        Byte gap up to which the chunks of nearby selected targets are fetched with one range
        request (measured against moto: docs/performance.md).
    coalesce_max_bytes : int
        Largest coalesced range request, bytes.
    read_jobs : int
        Target rows ``Archive.light_curves`` reads at once (each a few range requests).
    gc_safety_seconds : int
        ``lcarchive gc`` never expires a version nor deletes an object younger than this,
        whatever ``--older-than`` says (``--older-than 0`` included): longer than any ingest
        batch runs between its first chunk written and its catalog commit, so that a writer the
        writers' lease missed loses nothing (:mod:`lcarchive.store.leases`). Default one day.
    lease_seconds : int
        Life of a writer's (or gc's) lease object on an object store; the holder renews it every
        third of that. A holder killed without releasing it blocks gc this long at most.
    read_backoff_seconds : float
        First wait before another attempt of a cut-off read (``read_attempts``), seconds; doubled
        at each attempt (0.1, 0.2, 0.4 s: 0.7 s in all for 4 attempts, short beside the store
        client's own back-off).
    store_retry_timeout_seconds : float
        obstore (lcarchive's reads of plain Zarr groups) gives up retrying one request after
        this long, seconds: longer than ``store_attempts`` attempts wait in all.
    store_clients_kept : int
        obstore clients kept per process (one per bucket, options and AWS environment): making one
        costs ~9 ms of CPU; past this many the cache is emptied (a process that reads many
        buckets does not grow without bound).
    commit_attempts : int
        Times a change is redone on a fresh session when other writers keep committing first
        (a conflict, or a rebase that failed), before the change fails with a StoreError.
    commit_backoff_seconds : float
        Wait before a change is redone after a conflict, seconds, times the attempt number
        (0.05, 0.1, 0.15 s ..., at most 1 s): spreads concurrent writers' retries apart.
    catalog_reads : int
        Catalog buckets read at once (zarr's ``async.concurrency``, 10 by default): a cone of
        12 deg reads some 640 sky pixels (measured: tools/bench/search.py).
    sessions_kept : int
        Read-only sessions at a snapshot (and opened repositories) kept per process, shared by
        every handle of the archive: a second ``open_archive`` of the same URL reads a family
        without opening it again. Past this many the oldest is dropped.
    open_jobs : int
        Repositories (the catalog's, the families') opened at once when a read needs several:
        opened together they cost the round trips of one.
    readers_kept : int
        Group readers (opened arrays, their coordinates and shard indexes) kept per process, for
        repeated reads of the same groups; past this many the oldest is dropped.
    indexes_ahead : int
        A group whose ``time``, ``flux``, ``flux_err`` and ``quality`` have at most this many
        shards in all (up to 2,048 targets in shards of 512) has every shard index fetched with
        its coordinates, in the same round: a cold point read then waits on no index after the
        coordinates. Larger groups fetch a shard's index on its first read (one round more).
    lazy_rows_at_once : int
        A lazy xarray variable's row selection of up to this many rows is read one range per row
        and variable (lcarchive's reader); larger ones by zarr (whole shards, coalesced).
    search_part : int
        Positions per task when a search of many positions runs on a Dask cluster: each task
        opens the archive at the handle's version, so a task holds many positions.
    compute_block : int
        Periodograms per unit of work of ``lcarchive compute`` (one task on a Dask cluster): the
        targets of one shard of ``targets_per_shard`` (512).
    download_units_min : int
        Outputs (files, or groups of a ``--format zarr`` download) a download writes at once, at
        least: ``--jobs`` // 2 bounded by this and ``download_units_max``, so that reads for the
        next outputs overlap the writing of the current ones.
    download_units_max : int
        Outputs a download writes at once, at most: each holds its rows in memory.
    download_arrays_at_once : int
        Arrays of one group a ``--format zarr`` download copies at once: bounds memory (one
        array's chunks of every selected row each).
    inflate_step_bytes : int
        Bytes a gzip-compressed input is inflated by at a time (``max_decompressed_bytes`` is
        checked after each step): small beside that limit, large enough that the steps cost
        nothing.
    digest_jobs : int
        Objects (snapshot, transaction log, manifests) read at once to record their SHA-256
        after a commit: concurrent GETs, not CPU.
    """

    targets_per_shard: int = 512
    batch_files: int = 256
    parallel_min_files: int = 64
    max_hdus: int = 1000
    max_input_bytes: int = 256 * 1024**2
    max_table_bytes: int = 4 * 1024**3
    max_decompressed_bytes: int = 256 * 1024**2
    max_vector_elements: int = 16
    read_attempts: int = 4
    store_attempts: int = 7
    store_backoff_max_ms: int = 5000
    coalesce_gap_bytes: int = 1024 * 1024
    coalesce_max_bytes: int = 16 * 1024 * 1024
    read_jobs: int = 32
    gc_safety_seconds: int = 24 * 3600
    lease_seconds: int = 120
    read_backoff_seconds: float = 0.1
    store_retry_timeout_seconds: float = 120.0
    store_clients_kept: int = 64
    commit_attempts: int = 50
    commit_backoff_seconds: float = 0.05
    catalog_reads: int = 64
    sessions_kept: int = 256
    open_jobs: int = 8
    readers_kept: int = 256
    indexes_ahead: int = 16
    lazy_rows_at_once: int = 64
    search_part: int = 2000
    compute_block: int = 512
    download_units_min: int = 2
    download_units_max: int = 8
    download_arrays_at_once: int = 4
    inflate_step_bytes: int = 16 * 1024**2
    digest_jobs: int = 16


def _parse(name: str, kind: object, text: str) -> object:
    """The value of variable ``name`` for a setting of type ``kind`` (int, float or bool)."""
    if kind in (bool, "bool"):
        word = text.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}={text!r} is no boolean (1/0, true/false, yes/no, on/off)")
    if kind in (float, "float"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name}={text!r} is no number") from None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is no integer") from None


def _from_environment() -> Settings:
    """The defaults, changed by the ``LCARCHIVE_<NAME>`` variables that are set.

    Each variable is read by its setting's type (int, float or bool).

    Raises
    ------
    ValueError
        For a variable whose value is not of its setting's type (the message names it).
    """
    changes = {}
    for f in dataclasses.fields(Settings):
        name = f"LCARCHIVE_{f.name.upper()}"
        text = os.environ.get(name)
        if text is not None:
            changes[f.name] = _parse(name, f.type, text)
    return Settings(**changes)  # type: ignore[arg-type]  # values of several types, each parsed by its field's


_CURRENT: contextvars.ContextVar[Settings] = contextvars.ContextVar("lcarchive_settings", default=_from_environment())  # noqa: B039  # Settings is frozen
"""The settings in force in this context (thread, task); the environment's unless overridden."""


def settings() -> Settings:
    """The settings in force (in this thread or task: see :func:`override`)."""
    return _CURRENT.get()


@contextlib.contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """Change some settings for the duration of a ``with`` block, in this thread or task only.

    The change is held in a :class:`contextvars.ContextVar`: other threads keep theirs, and
    lcarchive carries it to the work it hands to threads (:func:`carry`), to zarr's event loop
    and, as an explicit :class:`Settings`, to worker processes and Dask tasks (:func:`use`).

    Raises
    ------
    TypeError
        For a name that is no setting.
    """
    changed = dataclasses.replace(_CURRENT.get(), **changes)  # type: ignore[arg-type]  # values of several types; replace() checks names
    token = _CURRENT.set(changed)
    try:
        yield changed
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def use(given: Settings | None) -> Iterator[Settings]:
    """Put ``given`` settings in force for a ``with`` block (``None``: leave them as they are).

    For work run in another process (a worker of an ingest, a Dask task): it is given the
    submitter's :func:`settings` as an argument (a frozen dataclass, picklable) and runs in
    ``with use(given):``.
    """
    if given is None:
        yield _CURRENT.get()
        return
    token = _CURRENT.set(given)
    try:
        yield given
    finally:
        _CURRENT.reset(token)


def carry[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, to be run in another thread with the caller's settings (its whole context).

    Threads of a pool (``ThreadPoolExecutor``, ``loop.run_in_executor``, ``threading.Thread``)
    start from an empty context and would see the environment's settings, not an
    :func:`override`. The context is copied when ``carry`` is called and copied again for each
    call, so the returned function may run in several threads at once (``pool.map``).
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run


class WithSettings[**P, R]:
    """``fn`` with settings that go with it, to run in a worker process or a Dask task.

    A process does not share the submitter's context: ``pool.submit(WithSettings(fn), ...)``
    pickles ``fn`` (a module-level function) with the submitter's :func:`settings` (a frozen
    dataclass, an override included), and the call runs ``fn`` with them in force
    (:func:`use`). Its ``__name__`` is ``fn``'s, which names Dask's tasks.

    Parameters
    ----------
    fn : callable
    given : Settings, optional
        The settings; by default those in force where the object is made.
    """

    def __init__(self, fn: Callable[P, R], given: Settings | None = None) -> None:
        self.fn = fn
        self.given = settings() if given is None else given
        self.__name__ = getattr(fn, "__name__", type(self).__name__)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        with use(self.given):
            return self.fn(*args, **kwargs)
