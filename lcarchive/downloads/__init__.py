"""Bulk downloads of chosen light curves: ``lcarchive download`` and :func:`download`.

A download selects lines of the target index (by target, observation, mission, product,
sector/quarter/campaign, cone, time range), reads only the selected targets' chunks of the
selected variables (shard indexes once per shard, nearby chunks in one range request, many
requests in flight), and writes them to a local folder in one of these formats:

``zarr``
    A folder of plain Zarr v3 groups holding just the selection (``observations/<id>.zarr``,
    with ``catalog.json`` and ``index/targets.parquet``), which any Zarr client reads and
    ``lcarchive.open_archive`` opens read-only. A whole observation is copied object by
    object, undecoded; a subset of its targets from their stored chunks, undecoded.
``fits``
    ``<observation>/<source file name>``: the source product file, rebuilt from the stored
    headers and columns (byte for byte when whole; see :mod:`lcarchive.export`).
``parquet``, ``csv``
    ``<observation>/<observation>-<shard>.parquet`` (or ``.csv``): one tidy table per shard of
    the source group's targets; ``pandas.read_parquet(DEST)`` reads them all as one table.
``hdf5``
    ``<observation>/<target>.h5``: one SkyPortal photometric series per target and observation.

The results of archive-wide analyses (``lcarchive compute``) are columns too: ``bls_period``,
``bls`` (all its results)... add ``analyses/<method>.<ext>``, one row per selected light curve
(:mod:`~lcarchive.downloads.analyses`).

Each output is written under a temporary name (``.<name>.partial``) and renamed when
complete, then recorded in ``_lcarchive_manifest.jsonl`` (one JSON line per output unit: its
files with sizes and SHA-256 (CRC32C for the objects of zarr groups), the targets and the source
checksums it was made from). Running
the same download again skips every unit whose record matches (same selection, same source
files, files present with the recorded sizes); :func:`verify` re-hashes every recorded file.

What to download is a :class:`lcarchive.search.Selection`, resolved against the target index
as a search is (:func:`lcarchive.search.select`). The package: :mod:`~lcarchive.downloads.context` (what
every writer is given, frozen, and what a run has done: report, manifest, progress),
:mod:`~lcarchive.downloads.formats` (the output formats, a registry with a module per format),
:mod:`~lcarchive.downloads.analyses` (analysis tables), :mod:`~lcarchive.downloads.manifest`
(the resumable record and :func:`verify`); this module runs a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lcarchive import export
from lcarchive.config import WithSettings, settings
from lcarchive.downloads.analyses import analysis_outputs, split_columns, write_analyses
from lcarchive.downloads.context import DownloadContext, DownloadReport, GroupPlan, RunRecord, Unit, series_names, shard_rows
from lcarchive.downloads.formats import FORMATS, OutputFormat, output_format
from lcarchive.downloads.manifest import MANIFEST_NAME, PARTIAL_DIR, Manifest, VerifyReport, verify
from lcarchive.errors import DestinationError, LcarchiveError
from lcarchive.search import GroupSelection, Selection, SelectionError, read_targets_file, select
from lcarchive.store import BulkReader, failures, gather, run

if TYPE_CHECKING:
    from lcarchive.handle import ArchiveReads

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "DownloadReport",
    "Selection",
    "SelectionError",
    "VerifyReport",
    "download",
    "read_targets_file",
    "select",
    "verify",
]


def download(
    archive: Any,
    dest: str | os.PathLike,
    selection: Selection | None = None,
    format: str = "zarr",
    jobs: int = 16,
    progress: Callable[[int, int], None] | None = None,
    storage_options: dict | None = None,
    client: Any = None,
) -> DownloadReport:
    """Download the selected light curves from an archive into a local folder.

    Parameters
    ----------
    archive : lcarchive.Archive or str
        The archive, or its URL (``s3://bucket/prefix`` or a local path).
    dest : str or path-like
        Local folder (created if absent). Running the same download into it again skips
        what is already complete.
    selection : Selection, optional
        What to download; default everything current.
    format : {"zarr", "fits", "parquet", "csv", "hdf5"}
        See the module documentation.
    jobs : int
        Requests in flight at once.
    progress : callable, optional
        Called as ``progress(done, total)`` in light curves as outputs complete.
    storage_options : dict, optional
        fsspec options when ``archive`` is a URL.
    client : dask.distributed.Client, optional
        Run the download on this cluster's workers: each task reads and writes some shards'
        light curves (a whole group for ``zarr``) with ``jobs`` requests in flight, all at the
        archive version this process opened; ``dest`` must be a folder every worker sees
        (one machine, or a shared file system). The manifest is written here alone.

    Returns
    -------
    DownloadReport
        What was written and skipped, requested targets and observations not found, and the
        figures of the run. Found light curves are downloaded even when some are missing.

    Raises
    ------
    SelectionError
        For an unknown format or column, or a bad cone or time range.
    lcarchive.StoreError
        If the archive's store fails (after the store client's retries with back-off).
    lcarchive.DestinationError
        If ``dest`` cannot be written (read-only, full): what was complete is kept, and
        running the same download again (once there is room) completes it.
    """
    from lcarchive.handle import ReadHandle

    fmt = output_format(format)
    if "://" in str(dest) and not str(dest).startswith("file://"):
        raise SelectionError(f"destination {dest}: downloads are written to a local folder")
    handle = ReadHandle(archive, storage_options or {}) if isinstance(archive, str) else archive.handle
    selection = selection or Selection()
    started = time.perf_counter()
    dest = _writable(Path(str(dest).removeprefix("file://")))
    with failures(handle.url, handle.storage_options), _destination_errors(dest):
        return _run_download(handle, dest, selection, fmt, jobs, progress, started, client)


_DESTINATION_ERRNOS = {
    errno.ENOSPC: "no room left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for the destination",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
"""Errors of a local write that are the destination's problem, and how they are named."""


@contextlib.contextmanager
def _destination_errors(dest: Path) -> Iterator[None]:
    """Turn a failed write into :class:`~lcarchive.errors.DestinationError` naming ``dest``: a
    full disk, a quota, a read-only folder. Errors of the archive's store pass through."""
    try:
        yield
    except OSError as exc:
        _raise_if_destination(dest, exc)
        raise


def _raise_if_destination(dest: Path, exc: OSError) -> None:
    """Raise the :class:`~lcarchive.errors.DestinationError` of a failed local write, if it is one."""
    if isinstance(exc, LcarchiveError):
        return
    code = exc.errno
    if code is None:  # pyarrow's writers say it in words only
        text = str(exc).lower()
        code = errno.ENOSPC if "no space left" in text else errno.EDQUOT if "quota" in text else None
    if code not in _DESTINATION_ERRNOS:
        return
    filename = os.path.abspath(str(exc.filename)) if exc.filename else ""
    root = os.path.abspath(dest)
    if filename and filename != root and not filename.startswith(root + os.sep):
        return  # another file's (a local archive's): its own message
    where = f" (writing {os.path.relpath(filename, root)})" if filename and filename != root else ""
    advice = (
        "free some room, then run the same download again: what is complete is kept and skipped"
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        else "make it writable, then run the same download again: what is complete is kept and skipped"
    )
    raise DestinationError(str(dest), f"cannot write the download here: {_DESTINATION_ERRNOS[code]}{where}; {advice}") from exc


def _writable(dest: Path) -> Path:
    """The download folder, made if absent, after a probe write.

    Raises
    ------
    DestinationError
        If it cannot be made or written (read-only, not a folder, no room).
    """
    probe = dest / f".lcarchive-write-probe-{os.getpid()}"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DestinationError(str(dest), f"cannot write here ({exc.strerror or exc})") from exc
    return dest


def _run_download(
    archive: ArchiveReads,
    dest: Path,
    selection: Selection,
    fmt: OutputFormat,
    jobs: int,
    progress: Callable[[int, int], None] | None,
    started: float,
    client: Any = None,
) -> DownloadReport:
    columns, analyses = split_columns(archive, selection.columns)
    selection = dataclasses.replace(selection, columns=columns)
    groups, missing_targets, missing_obs = select(archive, selection)
    report = DownloadReport(str(dest), fmt.name, missing_targets=missing_targets, missing_observations=missing_obs)
    ctx = DownloadContext(archive, dest, fmt, selection, max(1, int(jobs)))
    report.n_targets = int(sum(g.rows.size for g in groups))
    record = RunRecord(report, Manifest(dest), progress, total=report.n_targets)
    planned = {  # what this run promises, before anything is written: verify names what a killed run left out
        "observations": {g.observation: int(g.rows.size) for g in groups},
        "units": [*analysis_outputs(fmt, analyses), *fmt.planned_outputs()],
    }
    record.manifest.start(
        planned,
        source=archive.url,
        format=fmt.name,
        selection=selection.describe(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    if client is not None:
        _download_on_cluster(client, ctx, record, groups)
    else:
        _download_here(ctx, record, groups)
    write_analyses(ctx, record, groups, analyses)
    fmt.finish(ctx, record)
    shutil.rmtree(dest / PARTIAL_DIR, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _download_here(ctx: DownloadContext, record: RunRecord, groups: list[GroupSelection]) -> None:
    """Download some groups in this process, adding the requests and bytes read to the report."""
    _ = ctx.archive.catalog  # read before the event loop runs (its reads are synchronous)
    ctx.archive.prepare([g.observation for g in groups])
    run(_download(ctx, record, groups))
    record.report.requests += sum(r.requests for r in record.readers)
    record.report.bytes_read += sum(r.bytes for r in record.readers)


def _parts(ctx: DownloadContext, groups: list[GroupSelection]) -> list[GroupSelection]:
    """A download cut into tasks for a cluster: one per group for a format that writes a unit per
    group (``zarr``), else one per stored shard of a group's selected rows (the units of Parquet and CSV)."""
    parts: list[GroupSelection] = []
    for group in groups:
        if ctx.format.per == "group":
            parts.append(group)
            continue
        shards = group.rows // shard_rows(run(ctx.archive.reader(group.observation)))
        for shard in np.unique(shards):
            take = shards == shard
            parts.append(dataclasses.replace(group, rows=group.rows[take], targets=group.targets[take], whole=False))
    return parts


def _download_on_cluster(client: Any, ctx: DownloadContext, record: RunRecord, groups: list[GroupSelection]) -> None:
    """Run a download's parts on Dask workers (:func:`_parts`), adding their manifest entries and
    figures here as each part finishes."""
    from dask.distributed import as_completed

    args = (ctx.archive.resolved(), str(ctx.dest), ctx.format.name, ctx.selection, ctx.jobs, record.manifest.run_id)
    task = WithSettings(_download_part)  # this process's settings go with each part
    futures = [client.submit(task, *args, [part], pure=False) for part in _parts(ctx, groups)]
    for future in as_completed(futures):
        done, entries = future.result()
        record.manifest.add(entries)
        for name in ("written", "skipped", "empty", "unwritable"):
            getattr(record.report, name).extend(getattr(done, name))
        for name in ("bytes_written", "requests", "bytes_read"):
            setattr(record.report, name, getattr(record.report, name) + getattr(done, name))
        record.advance(done.n_targets)


def _download_part(
    archive: ArchiveReads, dest: str, fmt: str, selection: Selection, jobs: int, run_id: str | None, groups: list[GroupSelection]
) -> tuple[DownloadReport, list[dict]]:
    """One part of a download, on a worker (``archive`` a resolved handle, read at the download's
    version): its report and the manifest entries of its outputs."""
    report = DownloadReport(dest, fmt, n_targets=int(sum(g.rows.size for g in groups)))
    ctx = DownloadContext(archive, Path(dest), output_format(fmt), selection, jobs)
    record = RunRecord(report, Manifest(Path(dest), collect=True))
    record.manifest.run_id = run_id
    with failures(archive.url, archive.storage_options), _destination_errors(Path(dest)):
        _download_here(ctx, record, groups)
    return report, record.manifest.collected


async def _download(ctx: DownloadContext, record: RunRecord, groups: list[GroupSelection]) -> None:
    limit = asyncio.Semaphore(ctx.jobs)
    units_in_flight = asyncio.Semaphore(max(settings().download_units_min, min(settings().download_units_max, ctx.jobs // 2)))
    columns = ctx.columns
    if columns is not None and columns != ["all"] and groups:
        readers = await gather(*(ctx.archive.reader(g.observation) for g in groups))
        known = {n for r in readers for n in series_names(r)}
        unknown = [c for c in columns if c not in known and not any(_resolve(r, c) for r in readers)]
        if unknown:
            raise SelectionError(
                f"unknown column(s) {', '.join(unknown)}; the selected observations have {', '.join(sorted(known))}"
            )
    await gather(*(_download_group(ctx, record, g, limit, units_in_flight) for g in groups))


def _resolve(reader: Any, name: str) -> str | None:
    """The group's variable for a requested column: by its name, else by its source column
    (``sap_flux`` is QLP's ``flux``, whose source column is SAP_FLUX)."""
    series = series_names(reader)
    if name in series:
        return name
    return next((n for n in series if str(reader.arrays[n].attrs.get("source_column", "")).lower() == name.lower()), None)


def _variables(ctx: DownloadContext, reader: Any) -> tuple[list[str], list[str], dict[str, str]]:
    """(variables to read, extra columns of tidy outputs, {extra column: variable} where they differ)."""
    series = series_names(reader)
    columns = ctx.columns
    if columns == ["all"] or (columns is None and ctx.format.every_variable):
        extra = [n for n in series if n not in export.CORE_COLUMNS]
    else:
        extra = [n for n in (columns or []) if n not in export.CORE_COLUMNS]
    resolved = {n: _resolve(reader, n) for n in extra}
    aliases = {n: v for n, v in resolved.items() if v is not None and v != n}
    core = [n for n in export.CORE_COLUMNS if n in series]
    read = list(dict.fromkeys([*core, *(v for v in resolved.values() if v is not None)]))
    return [*read, *ctx.format.more_variables(reader, series, read)], extra, aliases


def _attrs(reader: Any) -> dict[str, dict]:
    return {
        name: {k: v for k, v in array.attrs.items() if k not in ("coordinates", "_FillValue")}
        for name, array in reader.arrays.items()
    }


async def _download_group(
    ctx: DownloadContext, record: RunRecord, group: GroupSelection, limit: asyncio.Semaphore, units_in_flight: asyncio.Semaphore
) -> None:
    fmt = ctx.format
    reader = await ctx.archive.reader(group.observation)
    bulk = BulkReader(reader, limit)
    record.readers.append(bulk)
    ident = await bulk.read_rows(group.rows.tolist(), ["source_sha256", "source_file"])
    shas = [str(s) for s in ident["source_sha256"]]
    if fmt.mirrors_whole_groups and group.whole:
        await fmt.mirror(ctx, record, group, reader, bulk, shas)
        return
    names, extra, aliases = _variables(ctx, reader)
    units: list[Unit] = fmt.units([fmt.name, sorted(names), group.time_range], group, ident, shas, reader)
    record.manifest.plan(group.observation, {unit.name: list(unit.paths) for unit in units})
    todo = []
    for unit in units:
        if record.manifest.done(unit.name, unit.key):
            record.report.skipped.append(unit.name)
            record.advance(len(unit.positions))
        else:
            todo.append(unit)
    if not todo:
        return
    plan = GroupPlan(group, reader, bulk, names, extra, aliases, _attrs(reader))
    await fmt.write(ctx, record, plan, todo, units_in_flight)
