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

Each output is written under a temporary name (``.<name>.partial``) and renamed when
complete, then recorded in ``_lcarchive_manifest.jsonl`` (one JSON line per output unit: its
files with sizes and SHA-256 (CRC32C for the objects of zarr groups), the targets and the source
checksums it was made from). Running
the same download again skips every unit whose record matches (same selection, same source
files, files present with the recorded sizes); :func:`verify` re-hashes every recorded file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcarchive import export
from lcarchive.errors import (
    BadInputError,
    DamagedArchiveError,
    DestinationError,
    ExportError,
    InvalidIdentifierError,
    LcarchiveError,
)
from lcarchive.identifiers import check_observation_id
from lcarchive.store import BulkReader, failures, gather, run

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

FORMATS = ("zarr", "fits", "parquet", "csv", "hdf5")
MANIFEST_NAME = "_lcarchive_manifest.jsonl"
_PARTIAL_DIR = ".lcarchive-partial"
_TARGET_COLUMNS = ("target", "tic", "tic_id", "ticid", "kic", "kic_id", "kepid", "keplerid", "epic", "epic_id", "epicid", "id")
"""Column names taken as the target ID in a targets file (case-insensitive), in this order."""


class SelectionError(LcarchiveError, ValueError):
    """A selection that cannot be satisfied as asked (unknown column, bad time, bad cone)."""


@dataclass
class Selection:
    """What to download. Every filter given must hold (they combine with AND).

    Attributes
    ----------
    targets : sequence of int or str, optional
        TIC/KIC/EPIC IDs: numbers, or text with a catalog prefix (``"TIC 261136679"``,
        ``"KIC 11442793"``, ``"EPIC 211436265"``), which keeps that catalog's missions only.
    observations : sequence of str, optional
        Observation IDs (e.g. ``tess-spoc-2min-s0001``); may name a superseded release's group.
    missions, products : sequence of str, optional
        e.g. ``["tess"]``, ``["spoc-2min", "qlp"]``.
    segments : sequence of int, optional
        Sectors (TESS), quarters (Kepler) or campaigns (K2).
    cone : (float, float, float), optional
        RA, Dec and radius, degrees (ICRS, against the targets' RA_OBJ/DEC_OBJ).
    time : (float or str, float or str), optional
        Start and stop. A number is in each observation's own time format (BTJD for TESS,
        BKJD for Kepler and K2); a string that is not a number is an ISO 8601 UTC date/time,
        converted to TDB with astropy (the barycentric correction, up to about 8 min, is not
        applied, so cut a little wider).
    columns : sequence of str, optional
        Light-curve variables to take besides ``time``, ``flux``, ``flux_err`` and
        ``quality`` (always taken). Default: every variable for ``zarr`` and ``fits``, none
        for the tidy formats; ``["all"]`` takes every one.
    include_superseded : bool
        Also take groups of older releases (when no observation is named).
    """

    targets: Sequence[int | str] | None = None
    observations: Sequence[str] | None = None
    missions: Sequence[str] | None = None
    products: Sequence[str] | None = None
    segments: Sequence[int] | None = None
    cone: tuple[float, float, float] | None = None
    time: tuple[Any, Any] | None = None
    columns: Sequence[str] | None = None
    include_superseded: bool = False

    def describe(self) -> dict[str, Any]:
        """The selection as JSON-able values (recorded in the manifest)."""
        out: dict[str, Any] = {}
        for name in ("observations", "missions", "products", "segments", "cone", "time", "columns"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.targets is not None:
            out["n_targets"] = len(self.targets)
        if self.include_superseded:
            out["include_superseded"] = True
        return out


@dataclass
class GroupSelection:
    """The selected rows of one observation group.

    Attributes
    ----------
    observation : str
    rows : numpy.ndarray, shape (n,), int64
        Rows of the group, ascending.
    targets : numpy.ndarray, shape (n,), int64
    whole : bool
        Every row of the group is selected (and no column or time cut applies).
    time_range : (float, float) or None
        The time cut in the observation's own time format.
    """

    observation: str
    rows: np.ndarray
    targets: np.ndarray
    whole: bool
    time_range: tuple[float, float] | None = None


@dataclass
class DownloadReport:
    """What a download did.

    Attributes
    ----------
    dest : str
    format : str
    written : list of str
        Outputs written by this run (paths relative to ``dest``).
    skipped : list of str
        Outputs already complete from an earlier run, left as they were.
    missing_targets : list of int
        Requested targets found in none of the selected observations.
    missing_observations : list of str
        Requested observation IDs the archive does not have.
    empty : list of (str, int)
        (observation, target) with no cadence in the time range; nothing written.
    unwritable : list of (str, int, str)
        (observation, target, reason) of light curves the format cannot hold (``fits`` for a
        light curve that came as a SkyPortal series or a table: there is no source file to
        rebuild); nothing written for them.
    n_targets : int
        Light curves (target x observation) in the selection.
    bytes_written, requests, bytes_read : int
    seconds : float
    """

    dest: str
    format: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_targets: list[int] = field(default_factory=list)
    missing_observations: list[str] = field(default_factory=list)
    empty: list[tuple[str, int]] = field(default_factory=list)
    unwritable: list[tuple[str, int, str]] = field(default_factory=list)
    n_targets: int = 0
    bytes_written: int = 0
    requests: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when everything asked for was found and written."""
        return not self.missing_targets and not self.missing_observations and not self.unwritable


@dataclass
class VerifyReport:
    """Result of :func:`verify`.

    Attributes
    ----------
    dest : str
    checked : int
        Files re-hashed.
    problems : list of (str, str)
        (path, what is wrong): missing, size or SHA-256 differs.
    unrecorded : list of str
        Files in ``dest`` that no manifest line records (not an error: e.g. the user's own).
    """

    dest: str
    checked: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- selection ---------------------------------------------------------------------------------


def read_targets_file(path: str | os.PathLike, column: str | None = None) -> list[int]:
    """Read target IDs from a file.

    Parameters
    ----------
    path : str or path-like
        A text file with one ID per line (blank lines and ``#`` comments ignored; a ``TIC``,
        ``KIC`` or ``EPIC`` prefix is allowed), or a ``.csv`` / ``.parquet`` table.
    column : str, optional
        Column of a table holding the IDs; default the first of ``target``, ``tic``,
        ``tic_id``, ``ticid``, ``kic``, ``kepid``, ``epic``, ``id`` (any case), or the only
        column.

    Returns
    -------
    list of int

    Raises
    ------
    BadInputError
        If the file is missing or unreadable, has no such column, or holds a value that is
        not a positive integer ID (the message names the line or row).
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise BadInputError(name, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path) if suffix != ".csv" else pd.read_csv(path, dtype=str)
        except Exception as exc:
            raise BadInputError(name, f"unreadable table ({exc})") from None
        chosen = _target_column(frame, column, name)
        values = [(f"row {i + 1}", v) for i, v in enumerate(frame[chosen].tolist())]
    else:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(name, f"unreadable ({exc})") from None
        values = []
        for i, line in enumerate(lines):
            text = line.split("#", 1)[0].strip()
            if text:
                values.append((f"line {i + 1}", text))
    ids = []
    for where, value in values:
        ids.append(_target_id(value, name, where))
    return ids


def _target_column(frame: pd.DataFrame, column: str | None, name: str) -> str:
    lowered = {str(c).lower(): c for c in frame.columns}
    if column is not None:
        if column.lower() not in lowered:
            raise BadInputError(name, f"no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
        return lowered[column.lower()]
    for candidate in _TARGET_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    if len(frame.columns) == 1:
        return frame.columns[0]
    raise BadInputError(name, f"no target column (looked for {', '.join(_TARGET_COLUMNS)}); name one with --targets-column")


def _target_id(value: Any, name: str, where: str) -> int:
    text = str(value).strip().upper()
    for prefix in ("TIC", "KIC", "EPIC"):
        text = text.removeprefix(prefix).strip()
    try:
        number = float(text)
        if not number.is_integer() or number <= 0:
            raise ValueError
        return int(number)
    except (ValueError, OverflowError):
        raise BadInputError(name, f"{where}: {value!r} is not a TIC/KIC/EPIC ID") from None


def _wanted_targets(values: Sequence[int | str]) -> list[tuple[str | None, int]]:
    """Targets of a selection as (catalog prefix or None, ID): 261136679, 'TIC 261136679', 'EPIC211436265'.

    Raises
    ------
    SelectionError
        A value that is no target ID.
    """
    from lcarchive.identifiers import parse_target_text

    out = []
    for value in values:
        try:
            out.append(parse_target_text(value))
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
    return out


def _time_value(value: Any, epoch_jd: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(text, scale="utc").tdb.jd - epoch_jd)
    except ValueError as exc:
        raise SelectionError(f"time {text!r}: neither a number nor an ISO 8601 date ({exc})") from None


def select(archive: Any, selection: Selection) -> tuple[list[GroupSelection], list[int], list[str]]:
    """Resolve a selection against an archive's catalog and target index.

    Parameters
    ----------
    archive : lcarchive.Archive
    selection : Selection

    Returns
    -------
    (list of GroupSelection, list of int, list of str)
        The groups and rows to read; the requested targets found nowhere in the selected
        observations; the requested observation IDs the archive lacks.

    Raises
    ------
    SelectionError
        For a cone or time range that cannot be read.
    """
    catalog = archive.catalog
    for o in catalog.observations:  # IDs become folder names: a hostile catalog's '../evil' is refused
        try:
            check_observation_id(o.id)
        except InvalidIdentifierError as exc:
            raise DamagedArchiveError(archive.url, "the catalog", str(exc)) from None
    by_id = {o.id: o for o in catalog.observations}
    missing_obs: list[str] = []
    if selection.observations:
        wanted = list(dict.fromkeys(selection.observations))
        missing_obs = [o for o in wanted if o not in by_id]
        observations = [by_id[o] for o in wanted if o in by_id]
    else:
        observations = [o for o in catalog.observations if selection.include_superseded or not o.superseded_release]
    if selection.missions:
        observations = [o for o in observations if o.mission in set(selection.missions)]
    if selection.products:
        observations = [o for o in observations if o.product in set(selection.products)]
    if selection.segments:
        observations = [o for o in observations if o.segment in {int(s) for s in selection.segments}]
    ranges: dict[str, tuple[float, float]] = {}
    if selection.time is not None:
        kept = []
        for o in observations:
            epoch = catalog.mission(o.mission).time_system.reference_epoch
            start, stop = (_time_value(v, epoch) for v in selection.time)
            if start > stop:
                raise SelectionError(f"time range {selection.time[0]} .. {selection.time[1]}: start is after stop")
            if o.time_min is not None and (o.time_max < start or o.time_min > stop):
                continue
            ranges[o.id] = (start, stop)
            kept.append(o)
        observations = kept
    missing_targets: list[int] = []
    if selection.targets is not None:  # the index partitions of the targets only
        wanted = _wanted_targets(selection.targets)
        wanted_targets = pd.unique(np.asarray([t for _, t in wanted], dtype=np.int64))
        index = archive.target_index(wanted_targets.tolist())
        lines = index[index["observation"].isin([o.id for o in observations])]
        lines = lines[lines["target"].isin(wanted_targets)]
    else:  # whole observations: their groups' own small arrays say which targets they hold
        frames = [archive.group_index(o.id) for o in observations]
        lines = pd.concat(frames, ignore_index=True) if frames else archive.target_index([])
    if selection.targets is not None:
        prefixed = {t: c for c, t in wanted if c is not None}
        if prefixed:  # 'KIC 123' keeps the lines of the missions named by KIC IDs only
            catalogs = {m.name: m.target_catalog for m in catalog.missions}
            keep = [prefixed.get(int(t)) in (None, catalogs.get(str(m))) for t, m in zip(lines["target"], lines["mission"], strict=True)]
            lines = lines[np.asarray(keep, dtype=bool)]
    if selection.cone is not None:
        lines = lines[_in_cone(lines, selection.cone)]
    if selection.targets is not None:
        found = set(lines["target"].tolist())
        missing_targets = [int(t) for t in wanted_targets if int(t) not in found]
    narrowed = selection.targets is not None or selection.cone is not None
    cut = selection.time is not None or selection.columns is not None
    groups = []
    for o in observations:
        part = lines[lines["observation"] == o.id].sort_values("row")
        if part.empty:
            continue
        rows = part["row"].to_numpy(np.int64)
        whole = not cut and (not narrowed or rows.size == o.n_targets)
        groups.append(GroupSelection(o.id, rows, part["target"].to_numpy(np.int64), whole, ranges.get(o.id)))
    return groups, missing_targets, missing_obs


def _in_cone(lines: pd.DataFrame, cone: tuple[float, float, float]) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec, radius = (float(v) for v in cone)
    if not (-90 <= dec <= 90) or radius < 0:
        raise SelectionError(f"cone {ra} {dec} {radius}: Dec must be within [-90, 90] and the radius not negative (degrees)")
    if lines.empty:
        return np.zeros(0, dtype=bool)
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    where = SkyCoord(lines["ra"].to_numpy() * u.deg, lines["dec"].to_numpy() * u.deg)
    return np.asarray(centre.separation(where).deg <= radius)


# -- manifest ----------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """The record of a download folder: ``_lcarchive_manifest.jsonl``, one JSON object a line.

    A ``{"run": ...}`` line opens each run (source, format, selection, time); a
    ``{"unit": ...}`` line records one finished output unit: its ``key`` (a digest of what it
    was made from), ``files`` (path relative to the folder, size, sha256) and details. The last
    line of a unit is the one that counts. A line cut short by an interruption is ignored.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = dest / MANIFEST_NAME
        self.units: dict[str, dict] = {}
        self.runs: list[dict] = []
        self._lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "unit" in entry:
                    self.units[entry["unit"]] = entry
                elif "run" in entry:
                    self.runs.append(entry)

    def _append(self, entry: dict) -> None:
        with self._lock, open(self.path, "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()

    def start(self, **info: Any) -> None:
        self._append({"run": info})

    def done(self, unit: str, key: str) -> bool:
        """True if ``unit`` was recorded with ``key`` and its files are there with their sizes."""
        entry = self.units.get(unit)
        if entry is None or entry.get("key") != key:
            return False
        for f in entry["files"]:
            path = self.dest / f["path"]
            try:
                if path.stat().st_size != f["size"]:
                    return False
            except OSError:
                return False
        return True

    def record(self, unit: str, key: str, files: list[tuple[str, int, str]], **info: Any) -> None:
        """Record a finished unit; ``files`` are (relative path, size, digest): a SHA-256 in hex, or
        ``crc32c:<hex>`` for the objects of a zarr group (many and large: CRC32C costs a small
        fraction of SHA-256's CPU)."""
        entry = {"unit": unit, "key": key, "files": [_file_entry(p, n, h) for p, n, h in files], **info}
        self._append(entry)
        with self._lock:
            self.units[unit] = entry


def _file_entry(path: str, size: int, digest: str) -> dict[str, Any]:
    algorithm, _, value = digest.rpartition(":")
    return {"path": path, "size": size, (algorithm or "sha256"): value}


def _crc32c(data: Any) -> str:
    """``crc32c:<hex>`` of bytes or any buffer (obstore's Bytes)."""
    import google_crc32c

    return f"crc32c:{google_crc32c.value(data if isinstance(data, bytes) else bytes(data)):08x}"


def _file_digest(path: Path, algorithm: str) -> str:
    """The digest of a file's content, as recorded in the manifest's ``algorithm`` field."""
    if algorithm == "crc32c":
        return _crc32c(path.read_bytes()).partition(":")[2]
    return _sha256_file(path)


def _unit_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> tuple[int, str]:
    """Write ``data`` to ``path`` through a temporary name; return (size, sha256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)
    return len(data), hashlib.sha256(data).hexdigest()


# -- the download ------------------------------------------------------------------------------


@dataclass
class _Unit:
    """One output unit: a file (fits, hdf5), a shard's table (parquet, csv) or a group (zarr)."""

    name: str
    key: str
    positions: list[int]  # positions in the GroupSelection's rows
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path in (self.name, *self.paths):
            _relative(path)


def _relative(path: str) -> str:
    """``path`` if it stays inside the download folder: relative, no ``..``, no empty or hidden part.

    Raises
    ------
    ExportError
        A path that would leave the folder (IDs or file names of a hostile archive).
    """
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ExportError(f"refused to write {path!r}: it would leave the download folder")
    return path


class _Job:
    """State shared by the tasks of one download."""

    def __init__(self, archive: Any, dest: Path, fmt: str, selection: Selection, jobs: int, report: DownloadReport,
                 progress: Callable[[int, int], None] | None) -> None:
        self.archive = archive
        self.dest = dest
        self.format = fmt
        self.selection = selection
        self.jobs = jobs
        self.report = report
        self.manifest = Manifest(dest)
        self.progress = progress
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()
        self.columns = None if selection.columns is None else list(selection.columns)
        self.readers: list[BulkReader] = []

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self.progress is not None:
                self.progress(self.done, self.total)

    def wrote(self, unit: str, nbytes: int) -> None:
        with self._lock:
            self.report.written.append(unit)
            self.report.bytes_written += nbytes


def download(
    archive: Any,
    dest: str | os.PathLike,
    selection: Selection | None = None,
    format: str = "zarr",
    jobs: int = 16,
    progress: Callable[[int, int], None] | None = None,
    storage_options: dict | None = None,
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
    """
    from lcarchive.archive import Archive

    if format not in FORMATS:
        raise SelectionError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if "://" in str(dest) and not str(dest).startswith("file://"):
        raise SelectionError(f"destination {dest}: downloads are written to a local folder")
    if isinstance(archive, str):
        archive = Archive(archive, storage_options)
    selection = selection or Selection()
    started = time.perf_counter()
    dest = _writable(Path(str(dest).removeprefix("file://")))
    with failures(archive.url, archive.storage_options):
        return _run_download(archive, dest, selection, format, jobs, progress, started)


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


def _run_download(archive: Any, dest: Path, selection: Selection, format: str, jobs: int,
                  progress: Callable[[int, int], None] | None, started: float) -> DownloadReport:
    groups, missing_targets, missing_obs = select(archive, selection)
    report = DownloadReport(str(dest), format, missing_targets=missing_targets, missing_observations=missing_obs)
    job = _Job(archive, dest, format, selection, max(1, int(jobs)), report, progress)
    job.total = report.n_targets = int(sum(g.rows.size for g in groups))
    job.manifest.start(
        source=archive.url, format=format, selection=selection.describe(), started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    archive.prepare([g.observation for g in groups])
    run(_download(job, groups))
    if format == "zarr":
        _write_zarr_catalog(job)
    shutil.rmtree(dest / _PARTIAL_DIR, ignore_errors=True)
    report.requests = sum(r.requests for r in job.readers)
    report.bytes_read = sum(r.bytes for r in job.readers)
    report.seconds = time.perf_counter() - started
    return report


async def _download(job: _Job, groups: list[GroupSelection]) -> None:
    limit = asyncio.Semaphore(job.jobs)
    units_in_flight = asyncio.Semaphore(max(2, min(8, job.jobs // 2)))
    columns = job.columns
    if columns is not None and columns != ["all"] and groups:
        readers = await gather(*(job.archive.reader(g.observation) for g in groups))
        known = {n for r in readers for n in _series_names(r)}
        unknown = [c for c in columns if c not in known and not any(_resolve(r, c) for r in readers)]
        if unknown:
            raise SelectionError(
                f"unknown column(s) {', '.join(unknown)}; the selected observations have {', '.join(sorted(known))}"
            )
    await gather(*(_download_group(job, g, limit, units_in_flight) for g in groups))


def _series_names(reader: Any) -> list[str]:
    return [n for n, a in reader.arrays.items() if tuple(a.metadata.dimension_names or ())[:2] == ("target", "cadence")]


def _per_target_names(reader: Any) -> list[str]:
    return [
        n for n, a in reader.arrays.items()
        if n != "target" and tuple(a.metadata.dimension_names or ())[:1] == ("target",) and "cadence" not in (a.metadata.dimension_names or ())
    ]


def _resolve(reader: Any, name: str) -> str | None:
    """The group's variable for a requested column: by its name, else by its source column
    (``sap_flux`` is QLP's ``flux``, whose source column is SAP_FLUX)."""
    series = _series_names(reader)
    if name in series:
        return name
    return next((n for n in series if str(reader.arrays[n].attrs.get("source_column", "")).lower() == name.lower()), None)


def _variables(job: _Job, reader: Any) -> tuple[list[str], list[str], dict[str, str]]:
    """(variables to read, extra columns of tidy outputs, {extra column: variable} where they differ)."""
    series = _series_names(reader)
    columns = job.columns
    if columns == ["all"] or (columns is None and job.format in ("zarr", "fits")):
        extra = [n for n in series if n not in export.CORE_COLUMNS]
    else:
        extra = [n for n in (columns or []) if n not in export.CORE_COLUMNS]
    resolved = {n: _resolve(reader, n) for n in extra}
    aliases = {n: v for n, v in resolved.items() if v is not None and v != n}
    core = [n for n in export.CORE_COLUMNS if n in series]
    read = list(dict.fromkeys([*core, *(v for v in resolved.values() if v is not None)]))
    if job.format in ("zarr", "fits"):
        return [*read, *_per_target_names(reader)], extra, aliases
    if job.format == "hdf5":
        meta = [n for n in ("ra", "dec", "camera", "ccd", "module", "output", "source_file", "source_sha256") if n in reader.arrays]
        return [*read, *meta], extra, aliases
    return read, extra, aliases


def _with_aliases(values: dict[str, np.ndarray], aliases: dict[str, str]) -> dict[str, np.ndarray]:
    return {**values, **{name: values[variable] for name, variable in aliases.items()}} if aliases else values


def _attrs(reader: Any) -> dict[str, dict]:
    return {
        name: {k: v for k, v in array.attrs.items() if k not in ("coordinates", "_FillValue")}
        for name, array in reader.arrays.items()
    }


async def _download_group(job: _Job, group: GroupSelection, limit: asyncio.Semaphore, units_in_flight: asyncio.Semaphore) -> None:
    reader = await job.archive.reader(group.observation)
    bulk = BulkReader(reader, limit)
    job.readers.append(bulk)
    ident = await bulk.read_rows(group.rows.tolist(), ["source_sha256", "source_file"])
    shas = [str(s) for s in ident["source_sha256"]]
    if job.format == "zarr" and group.whole:
        await _mirror(job, group, reader, bulk, shas)
        return
    names, extra, aliases = _variables(job, reader)
    spec = [job.format, sorted(names), group.time_range]
    units: list[_Unit] = []
    obs = group.observation
    if job.format in ("fits", "hdf5"):
        for i, (target, sha) in enumerate(zip(group.targets.tolist(), shas, strict=True)):
            if job.format == "fits":
                files = export.fits_name({"source_file": ident["source_file"][i]}, obs, target)
                paths = [f"{obs}/{n}" for n in files]
            else:
                paths = [f"{obs}/{target}.h5"]
            units.append(_Unit(paths[0], _unit_key(spec, target, sha), [i], paths))
    elif job.format in ("parquet", "csv"):
        shard_rows = _shard_rows(reader)
        by_shard: dict[int, list[int]] = {}
        for i, row in enumerate(group.rows.tolist()):
            by_shard.setdefault(row // shard_rows, []).append(i)
        for shard, positions in by_shard.items():
            path = f"{obs}/{obs}-{shard:05d}.{job.format}"
            key = _unit_key(spec, [(int(group.targets[i]), shas[i]) for i in positions])
            units.append(_Unit(path, key, positions, [path]))
    else:  # zarr subset: one unit, the group
        path = f"observations/{obs}.zarr"
        units.append(_Unit(path, _unit_key(spec, list(zip(group.targets.tolist(), shas, strict=True))), list(range(group.rows.size)), [path]))
    todo = []
    for unit in units:
        if job.manifest.done(unit.name, unit.key):
            job.report.skipped.append(unit.name)
            job.advance(len(unit.positions))
        else:
            todo.append(unit)
    if not todo:
        return
    attrs = _attrs(reader)
    if job.format == "zarr":
        if group.time_range is None:
            await _copy_zarr_rows(job, group, reader, bulk, names, todo[0])
        else:
            await _write_zarr_subset(job, group, reader, bulk, names, attrs, todo[0])
        return
    if job.format in ("parquet", "csv"):

        async def table(unit: _Unit) -> None:
            async with units_in_flight:
                await _write_table_unit(job, group, reader, bulk, names, extra, aliases, attrs, unit, batch=64)

        await gather(*(table(u) for u in todo))
        return
    # per-target files: read batches of neighbouring targets, write each target's file
    batch = 32 if job.format == "fits" else 64
    batches = [todo[i : i + batch] for i in range(0, len(todo), batch)]

    async def per_batch(units_batch: list[_Unit]) -> None:
        async with units_in_flight:
            positions = [u.positions[0] for u in units_batch]
            values = _with_aliases(await bulk.read_rows([int(group.rows[p]) for p in positions], names), aliases)
            await asyncio.to_thread(_write_target_files, job, group, reader, attrs, extra, units_batch, positions, values)

    await gather(*(per_batch(b) for b in batches))


def _shard_rows(reader: Any) -> int:
    from lcarchive.layout.shards import spec_of

    for name in ("flux", "time", "quality"):
        if name in reader.arrays:
            spec = spec_of(reader.arrays[name])
            if spec is not None:
                return spec.shard_rows
    return 512


def _row_values(values: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, array in values.items():
        value = array[k]
        out[name] = str(value) if array.dtype == object else value
    return out


def _write_target_files(job: _Job, group: GroupSelection, reader: Any, attrs: dict, extra: list[str],
                        units: list[_Unit], positions: list[int], values: dict[str, np.ndarray]) -> None:
    obs = group.observation
    exp_time = _exp_time(job, reader)
    for k, (unit, position) in enumerate(zip(units, positions, strict=True)):
        row = _row_values(values, k)
        target = int(group.targets[position])
        if not export.cadence_mask(row, group.time_range).any():
            job.report.empty.append((obs, target))
            job.advance(1)
            continue
        if job.format == "fits":
            columns = None if job.columns is None or job.columns == ["all"] else list(job.columns)
            try:
                blobs = export.source_file_bytes(row, reader.cadenceno, attrs, columns, group.time_range)
            except ExportError as exc:  # e.g. a SkyPortal series or a table: no source file to rebuild
                job.report.unwritable.append((obs, target, str(exc)))
                job.advance(1)
                continue
            if len(blobs) != len(unit.paths):  # segments whose file names were not kept apart
                unit.paths = [f"{obs}/{obs}-{target}-{i}.fits" for i in range(len(blobs))] if len(blobs) > 1 else unit.paths[:1]
        else:
            frame, metadata = export.skyportal_series(obs, target, row, reader.attrs, extra, group.time_range, exp_time)
            blobs = [export.skyportal_hdf5_bytes(frame, metadata)]
        files = []
        for path, blob in zip(unit.paths, blobs, strict=True):
            size, sha = _write_atomic(job.dest / path, blob)
            files.append((path, size, sha))
        info: dict[str, Any] = {"observation": obs, "targets": [target]}
        if job.format == "fits":
            source = str(row.get("source_sha256", "")).split("\n")
            info["identical_to_source"] = [sha == s for (_, _, sha), s in zip(files, source, strict=False)]
        job.manifest.record(unit.name, unit.key, files, **info)
        job.wrote(unit.name, sum(f[1] for f in files))
        job.advance(1)


def _exp_time(job: _Job, reader: Any) -> float | None:
    try:
        return job.archive.catalog.product(reader.attrs["product"]).cadence_seconds
    except (KeyError, LcarchiveError):
        return None


async def _write_table_unit(job: _Job, group: GroupSelection, reader: Any, bulk: BulkReader, names: list[str],
                            extra: list[str], aliases: dict[str, str], attrs: dict, unit: _Unit, batch: int) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = job.dest / unit.paths[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    metadata = _table_metadata(job, group.observation, reader)
    attrs = {**attrs, **{name: attrs.get(variable, {}) for name, variable in aliases.items()}}
    writer = None
    batches = [unit.positions[start : start + batch] for start in range(0, len(unit.positions), batch)]

    def read(positions: list[int]) -> asyncio.Future:
        return asyncio.ensure_future(bulk.read_rows([int(group.rows[p]) for p in positions], names))

    pending = read(batches[0])
    try:
        for k, positions in enumerate(batches):
            values = _with_aliases(await pending, aliases)
            if k + 1 < len(batches):  # the next batch's chunks arrive while this one is written
                pending = read(batches[k + 1])
            table = await asyncio.to_thread(  # off the event loop, which goes on fetching
                export.tidy_table, group.observation, group.targets[positions], values, reader.cadenceno, attrs, extra, group.time_range
            )
            if job.format == "parquet":
                table = table.replace_schema_metadata(metadata)
                if writer is None:
                    # dictionary encoding only where it pays (the repeated IDs): trying it on the
                    # float columns costs more than it ever saves
                    writer = pq.ParquetWriter(partial, table.schema, compression="zstd", compression_level=1,
                                              use_dictionary=["target", "observation"])
                await asyncio.to_thread(writer.write_table, table)
            else:
                table = _csv_ready(table)
                if writer is None:
                    writer = pacsv.CSVWriter(partial, table.schema, write_options=pacsv.WriteOptions(quoting_style="none"))
                await asyncio.to_thread(writer.write_table, table)
    except BaseException:
        if not pending.done():
            pending.cancel()
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    os.replace(partial, path)
    sha = await asyncio.to_thread(_sha256_file, path)
    size = path.stat().st_size
    job.manifest.record(unit.name, unit.key, [(unit.paths[0], size, sha)], observation=group.observation,
                        targets=[int(group.targets[p]) for p in unit.positions],
                        units={n: str(attrs.get(n, {}).get("units", "")) for n in [*export.CORE_COLUMNS, *extra]})
    job.wrote(unit.name, size)
    job.advance(len(unit.positions))


def _csv_ready(table: Any) -> Any:
    """Floats as their shortest round-trip text (Arrow's CSV writer would print 16 digits,
    losing the last bit of some float64 time stamps)."""
    import pyarrow as pa

    columns = [c.cast(pa.string()) if pa.types.is_floating(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _table_metadata(job: _Job, obs_id: str, reader: Any) -> dict[bytes, bytes]:
    catalog = job.archive.catalog
    entry = catalog.observation(obs_id).model_dump(mode="json")
    datasets = [d.model_dump(mode="json", exclude={"inputs"}) for d in catalog.datasets if d.observation == obs_id]
    info = {
        "source": job.archive.url,
        "observation": entry,
        "datasets": datasets,
        "group_attrs": {k: v for k, v in reader.attrs.items()},
    }
    return {b"lcarchive": json.dumps(info, default=str).encode()}


# -- zarr outputs ------------------------------------------------------------------------------


def _group_files(root: Path) -> list[tuple[Path, int]]:
    return [(path, path.stat().st_size) for path in sorted(p for p in root.rglob("*") if p.is_file())]


async def _mirror(job: _Job, group: GroupSelection, reader: Any, bulk: BulkReader, shas: list[str]) -> None:
    """Copy a whole group object by object, undecoded."""
    store = reader.group.store_path.store
    prefix = reader.group.store_path.path
    keys = sorted([k async for k in store.list_prefix(prefix)])
    meta = await bulk._get(store, f"{prefix}/zarr.json" if prefix else "zarr.json")
    unit = f"observations/{group.observation}.zarr"
    key = _unit_key("mirror", keys, hashlib.sha256(meta or b"").hexdigest(), shas)
    if job.manifest.done(unit, key):
        job.report.skipped.append(unit)
        job.advance(group.rows.size)
        return
    partial = job.dest / _PARTIAL_DIR / f"{group.observation}.zarr"
    shutil.rmtree(partial, ignore_errors=True)
    files: list[tuple[str, int, str]] = []

    direct = _object_store(store)

    async def copy(key: str) -> None:
        if direct is not None:  # obstore's buffer as it came off the wire: no copies on the way
            import obstore

            async with bulk.limit:
                data = await (await obstore.get_async(direct, key)).bytes_async()
            bulk.requests += 1
            bulk.bytes += len(data)
        else:
            data = await bulk._get(store, key)
            if data is None:
                return
        relative = key[len(prefix):].lstrip("/") if prefix else key
        digest = await asyncio.to_thread(_write_plain, partial / relative, data)  # hashed off the event loop
        files.append((f"{unit}/{relative}", len(data), digest))

    await gather(*(copy(k) for k in keys))
    final = job.dest / unit
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    files.sort()
    job.manifest.record(unit, key, files, observation=group.observation, targets=group.targets.tolist(), mirrored=True)
    job.wrote(unit, sum(f[1] for f in files))
    job.advance(group.rows.size)


def _object_store(store: Any) -> Any | None:
    """The obstore store behind zarr's ``ObjectStore`` (lcarchive's S3 reads), else None."""
    inner = getattr(store, "store", None)
    return inner if type(store).__name__ == "ObjectStore" and type(inner).__module__.startswith("obstore") else None


def _write_plain(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` (making its folder); return its ``crc32c:`` digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return _crc32c(data)


async def _metadata(bulk: BulkReader, reader: Any) -> dict:
    """A group's ``zarr.json`` with every array's metadata consolidated in it (Zarr v3
    consolidated metadata: one request opens the downloaded group), catalog attributes dropped."""
    store, prefix = reader.group.store_path.store, reader.group.store_path.path

    async def load(key: str) -> dict:
        return json.loads(await bulk._get(store, f"{prefix}/{key}" if prefix else key))

    meta = await load("zarr.json")
    names = sorted(reader.arrays)
    arrays = await gather(*(load(f"{name}/zarr.json") for name in names))
    meta["attributes"] = {k: v for k, v in meta.get("attributes", {}).items() if k not in _CATALOG_ATTRS}
    meta["consolidated_metadata"] = {"kind": "inline", "must_understand": False, "metadata": dict(zip(names, arrays, strict=True))}
    return meta


_CATALOG_ATTRS = ("lcarchive_observation", "lcarchive_datasets")
"""Group attributes holding the group's catalog entries in the archive (not true of a subset)."""


async def _copy_zarr_rows(job: _Job, group: GroupSelection, reader: Any, bulk: BulkReader, names: list[str], unit: _Unit) -> None:
    """Write the selected rows as a new group whose shards are assembled from the source's
    stored chunks, undecoded; metadata is the source group's with the target count changed."""
    import zarr
    from zarr.storage import LocalStore

    from lcarchive.ingest.family import instruments_of
    from lcarchive.layout.shards import decode_chunk, encode_shard, spec_of

    obs = group.observation
    meta = await _metadata(bulk, reader)
    consolidated = meta["consolidated_metadata"]["metadata"]
    rows = group.rows.tolist()
    n = len(rows)
    wanted = {*names, "target", "cadenceno"}

    def dims(name: str) -> tuple[str, ...]:
        return tuple(consolidated[name].get("dimension_names") or ())

    keep = {name: md for name, md in consolidated.items() if name in wanted or dims(name)[:1] != ("target",)}
    for name, md in keep.items():
        if dims(name)[:1] == ("target",):
            md["shape"] = [n, *md["shape"][1:]]
    meta["consolidated_metadata"]["metadata"] = keep
    staging = job.dest / _PARTIAL_DIR / f"{obs}.zarr"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: list[tuple[str, int, str]] = []
    final_rel = unit.paths[0]

    def put(relative: str, data: bytes) -> None:
        _write_plain(staging / relative, data)
        files.append((f"{final_rel}/{relative}", len(data), _crc32c(data)))

    sharded = [name for name in keep if dims(name)[:1] == ("target",) and spec_of(reader.arrays[name]) is not None]
    plain = [name for name in keep if name not in sharded]
    time_range: list[float] = []
    arrays_at_once = asyncio.Semaphore(4)  # bounds memory: one array's chunks of every selected row

    async def copy_sharded(name: str) -> None:
        async with arrays_at_once:
            array = reader.arrays[name]
            spec = spec_of(array)
            raw = await bulk.read_raw(rows, name)

            def write() -> None:
                for shard in range(-(-n // spec.shard_rows)):
                    first = shard * spec.shard_rows
                    chunks = {i - first: raw[i] for i in range(first, min(n, first + spec.shard_rows)) if raw[i] is not None}
                    if chunks:
                        key = array.metadata.encode_chunk_key((shard, *(0,) * (array.ndim - 1)))
                        put(f"{name}/{key}", encode_shard(spec, chunks))
                if name == "time":
                    values = [decode_chunk(spec, c, tuple(array.shape[1:])) for c in raw if c is not None]
                    finite = [v[np.isfinite(v)] for v in values]
                    finite = [v for v in finite if v.size]
                    if finite:
                        time_range.extend([float(min(v.min() for v in finite)), float(max(v.max() for v in finite))])

            await asyncio.to_thread(write)

    plain_values: dict[str, np.ndarray] = {}

    async def read_plain(name: str) -> None:
        if dims(name)[:1] == ("target",):
            plain_values[name] = (await bulk.read_rows(rows, [name]))[name]
        else:
            async with bulk.limit:
                plain_values[name] = np.asarray(await reader.arrays[name].getitem(...))

    await gather(*(copy_sharded(name) for name in sharded), *(read_plain(name) for name in plain))
    attrs = meta["attributes"]
    attrs["time_min"], attrs["time_max"] = (time_range[0], time_range[1]) if time_range else (None, None)
    attrs["instruments"] = sorted(instruments_of(plain_values))
    meta["consolidated_metadata"]["metadata"] = {k: keep[k] for k in sorted(keep)}

    def write_metadata_and_plain() -> None:
        for name, md in keep.items():
            put(f"{name}/zarr.json", json.dumps(md, indent=2).encode())
        put("zarr.json", json.dumps(meta, indent=2).encode())
        local = zarr.open_group(LocalStore(staging), mode="r+", zarr_format=3, use_consolidated=False)
        for name in plain:
            values = plain_values[name]
            local[name][...] = values.astype(object) if values.dtype.kind in "OTU" else values
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):  # chunks zarr wrote
            relative = f"{final_rel}/{path.relative_to(staging)}"
            if not any(f[0] == relative for f in files):
                data = path.read_bytes()
                files.append((relative, len(data), _crc32c(data)))

    await asyncio.to_thread(write_metadata_and_plain)
    final = job.dest / final_rel
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    files = sorted({f[0]: f for f in files}.values())
    job.manifest.record(unit.name, unit.key, files, observation=obs, targets=group.targets.tolist(), mirrored=False)
    job.wrote(unit.name, sum(f[1] for f in files))
    job.advance(n)


async def _write_zarr_subset(job: _Job, group: GroupSelection, reader: Any, bulk: BulkReader, names: list[str],
                             attrs: dict, unit: _Unit) -> None:
    """Write the selected rows, cut to a time range, as a new group with the source group's
    layout and codecs (decoded and encoded again: the cadence axis changes)."""
    import zarr
    from zarr.storage import LocalStore

    from lcarchive.ingest.family import FamilyView
    from lcarchive.layout import Block

    obs = group.observation
    cadence = slice(None)
    if group.time_range is not None:  # keep the cadences any selected target has in the range
        keep = np.zeros(reader.cadenceno.size, dtype=bool)
        for start in range(0, group.rows.size, 256):
            part = await bulk.read_rows(group.rows[start : start + 256].tolist(), ["time", "quality"])
            for k in range(part["time"].shape[0]):
                keep |= export.cadence_mask({"time": part["time"][k], "quality": part["quality"][k]}, group.time_range)
        cadence = np.flatnonzero(keep)
    cadenceno = reader.cadenceno[cadence]
    series = set(_series_names(reader))
    root = job.dest / _PARTIAL_DIR / obs
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    view = FamilyView(LocalStore(root))
    group_attrs = {k: v for k, v in reader.attrs.items() if k not in ("time_min", "time_max", "instruments", *_CATALOG_ATTRS)}
    batch = 32
    for start in range(0, group.rows.size, batch):
        positions = list(range(start, min(start + batch, group.rows.size)))
        values = await bulk.read_rows([int(group.rows[p]) for p in positions], names)
        block = Block(
            group.targets[positions].astype(np.int64),
            cadenceno,
            {n: v[:, cadence] for n, v in values.items() if n in series},
            {n: v for n, v in values.items() if n not in series},
            {n: attrs.get(n, {}) for n in values},
        )
        await asyncio.to_thread(view.apply, "data", [block], {}, group_attrs)
    await asyncio.to_thread(zarr.consolidate_metadata, LocalStore(root / "data"), zarr_format=3)
    final = job.dest / unit.paths[0]
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(root / "data", final)
    shutil.rmtree(root, ignore_errors=True)
    files = [(str(p.relative_to(job.dest)), size, _crc32c(await asyncio.to_thread(p.read_bytes))) for p, size in _group_files(final)]
    job.manifest.record(unit.name, unit.key, files, observation=obs, targets=group.targets.tolist(), mirrored=False)
    job.wrote(unit.name, sum(f[1] for f in files))
    job.advance(group.rows.size)


def _write_zarr_catalog(job: _Job) -> None:
    """Catalog and target index of the downloaded folder, written only if they changed."""
    from lcarchive.catalog import index as target_index
    from lcarchive.catalog.build import finish_catalog, observation_entry
    from lcarchive.catalog.content import static_catalog
    from lcarchive.layout import open_group
    from lcarchive.store.plain import CATALOG_NAME, PlainStore

    local = PlainStore(str(job.dest))
    # mirrored groups are the source's, object for object: their entries and index lines are the
    # source's too, with no need to open them again
    mirrored = {e["observation"] for e in job.manifest.units.values() if e.get("mirrored") and "observation" in e}
    source = job.archive.catalog
    source_ids = {o.id for o in source.observations}
    catalog = static_catalog().model_copy(deep=True)
    frames = []
    for obs_id in local.group_ids():
        path = local.group_path(obs_id)
        if obs_id in mirrored and obs_id in source_ids:
            catalog.observations.append(source.observation(obs_id).model_copy(update={"group": path}, deep=True))
            catalog.datasets.extend(d.model_copy(deep=True) for d in source.datasets if d.observation == obs_id)
            frames.append(job.archive.group_index(obs_id))
            continue
        with open_group(*local.group_store(obs_id)) as ds:
            observation, datasets = observation_entry(ds, obs_id, path, catalog)
            frames.append(target_index.group_rows(ds, obs_id))
        catalog.observations.append(observation)
        catalog.datasets.extend(datasets)
    frame = target_index.merge_rows(None, frames, set())
    outputs = {CATALOG_NAME: finish_catalog(catalog).model_dump_json(indent=1).encode(),
               target_index.INDEX_PATH: target_index.to_bytes(frame)}
    for path, data in outputs.items():
        key = _unit_key(hashlib.sha256(data).hexdigest())
        if job.manifest.done(path, key):
            continue
        size, sha = _write_atomic(job.dest / path, data)
        job.manifest.record(path, key, [(path, size, sha)])
        job.wrote(path, size)


# -- verification ------------------------------------------------------------------------------


def verify(dest: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-check a finished download against its manifest.

    Parameters
    ----------
    dest : str or path-like
        The download folder.
    progress : callable, optional
        Called as ``progress(done, total)`` in files.

    Returns
    -------
    VerifyReport
        Every recorded file re-hashed: missing files, other sizes and other SHA-256 digests
        are problems; files no manifest line records are listed apart.

    Raises
    ------
    BadInputError
        If ``dest`` holds no manifest.
    """
    dest = Path(dest)
    manifest = Manifest(dest)
    if not manifest.path.exists():
        raise BadInputError(str(dest), f"no download manifest ({MANIFEST_NAME}) here")
    report = VerifyReport(str(dest))
    recorded = [f for entry in manifest.units.values() for f in entry["files"]]
    for i, f in enumerate(recorded):
        path = dest / f["path"]
        if not path.is_file():
            report.problems.append((f["path"], "missing"))
        elif path.stat().st_size != f["size"]:
            report.problems.append((f["path"], f"size {path.stat().st_size}, recorded {f['size']}"))
        else:
            algorithm = "crc32c" if "crc32c" in f else "sha256"
            if _file_digest(path, algorithm) != f[algorithm]:
                report.problems.append((f["path"], f"{'CRC32C' if algorithm == 'crc32c' else 'SHA-256'} differs from the recorded one"))
        report.checked += 1
        if progress is not None:
            progress(i + 1, len(recorded))
    known = {f["path"] for f in recorded}
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        relative = str(path.relative_to(dest))
        if relative != MANIFEST_NAME and relative not in known and not relative.startswith(_PARTIAL_DIR):
            report.unrecorded.append(relative)
    return report
