"""Parsing an ingest's inputs, in batches, ahead of the writer (in worker processes when worth it)."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from lcarchive.config import WithSettings, settings
from lcarchive.errors import BadInputError, InvalidIdentifierError, InvalidTargetError
from lcarchive.formats import LightCurveFile, read_lightcurves
from lcarchive.formats.record import coordinate_warnings
from lcarchive.formats.tables import TableMap
from lcarchive.identifiers import Target, check_designation, check_observation_id, check_segment, check_target_id

__all__ = ["parsed_batches"]


def _checked(lc: LightCurveFile) -> LightCurveFile:
    """The last check of every light curve a reader made, whatever its format: a target ID of the
    mission's ranges, a real segment and a valid observation ID (these become group names and
    keys). Coordinates out of range are kept, with a warning (:func:`coordinate_warnings`).
    Raises the readers' errors (BadInputError, InvalidIdentifierError)."""
    if lc.target_catalog.id_kind == "designation":
        named = Target(lc.target_catalog.name, check_designation(lc.designation, lc.target_catalog, lc.source, "designation"))
        if named.key != lc.target:
            raise InvalidTargetError(lc.source, f"target key {lc.target} is not the key of {named}")
    else:
        check_target_id(lc.target, lc.target_catalog, lc.source, lc.target_catalog.id_keyword)
    check_segment(lc.segment, lc.mission, lc.source, lc.mission.segment_keyword)
    check_observation_id(lc.observation_id)
    lc.warnings.extend(w for w in coordinate_warnings(lc) if w not in lc.warnings)
    return lc


def _parse_one(
    source: str, storage_options: dict | None, table_map: TableMap | None = None
) -> list[LightCurveFile] | tuple[str, str]:
    """Parse one file into its light curves (one, or a table's many); a bad file gives (source, reason) instead of raising."""
    try:
        return [_checked(lc) for lc in read_lightcurves(source, storage_options, table_map)]
    except BadInputError as exc:
        return (exc.source, exc.reason)
    except InvalidIdentifierError as exc:
        return (source, str(exc))
    except Exception as exc:  # anything unforeseen in a file is that file's fault
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (source, f"unreadable: {type(exc).__name__}{': ' + text if text else ''}")


def parsed_batches(
    sources: list[str],
    storage_options: dict | None,
    progress: Callable[[str], None] | None,
    jobs: int | None,
    table_map: TableMap | None = None,
    client: Any = None,
) -> Iterator[list[LightCurveFile | tuple[str, str]]]:
    """Yield parsed files in batches of ``Settings.batch_files``, parsing ahead in worker processes when worth it.

    The main process compresses and writes one batch while the workers parse the next ones; at
    most two batches are parsed ahead, which bounds memory. A batch lists the light curves of its
    files (a table gives several) and the (source, reason) of the bad ones. With a Dask ``client``
    the files are parsed on its workers instead (its executor in place of the process pool).
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    size = settings().batch_files
    batches = [sources[i : i + size] for i in range(0, len(sources), size)]
    if client is not None:
        yield from _ahead(client.get_executor(pure=False), batches, storage_options, progress, table_map)
        return
    if jobs <= 1 or len(sources) < settings().parallel_min_files:
        for batch in batches:
            out: list[LightCurveFile | tuple[str, str]] = []
            for source in batch:
                if progress is not None:
                    progress(source)
                _collect(out, _parse_one(source, storage_options, table_map))
            yield out
        return
    context = multiprocessing.get_context("spawn")  # zarr's I/O thread makes fork unsafe
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        yield from _ahead(pool, batches, storage_options, progress, table_map)


def _ahead(
    pool: Any,
    batches: list[list[str]],
    storage_options: dict | None,
    progress: Callable[[str], None] | None,
    table_map: TableMap | None,
) -> Iterator[list[LightCurveFile | tuple[str, str]]]:
    """Batches parsed by an executor (processes, or a Dask cluster's), at most three batches ahead.

    Each file is parsed with this process's settings (an override included), passed to the worker.
    """
    parse = WithSettings(_parse_one)
    pending = deque([(s, pool.submit(parse, s, storage_options, table_map)) for s in batch] for batch in batches[:3])
    next_batch = 3
    while pending:
        futures = pending.popleft()
        out: list[LightCurveFile | tuple[str, str]] = []
        for source, future in futures:
            if progress is not None:
                progress(source)
            _collect(out, future.result())
        if next_batch < len(batches):
            pending.append([(s, pool.submit(parse, s, storage_options, table_map)) for s in batches[next_batch]])
            next_batch += 1
        yield out


def _collect(out: list, result: list[LightCurveFile] | tuple[str, str]) -> None:
    """Add a file's light curves (or its (source, reason)) to a batch."""
    if isinstance(result, tuple):
        out.append(result)
    else:
        out.extend(result)
