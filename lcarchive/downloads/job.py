"""One download run: its settings and counters (:class:`Job`), its output units (:class:`Unit`) and
what it reports (:class:`DownloadReport`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lcarchive.errors import ExportError
from lcarchive.downloads.manifest import Manifest
from lcarchive.search import Selection
from lcarchive.store import BulkReader

__all__ = ["DownloadReport", "FORMATS", "Job", "Unit", "series_names", "with_aliases"]


FORMATS = ("zarr", "fits", "parquet", "csv", "hdf5")


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
class Unit:
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


class Job:
    """State shared by the tasks of one download."""

    def __init__(self, archive: Any, dest: Path, fmt: str, selection: Selection, jobs: int, report: DownloadReport,
                 progress: Callable[[int, int], None] | None, manifest: Manifest | None = None) -> None:
        self.archive = archive
        self.dest = dest
        self.format = fmt
        self.selection = selection
        self.jobs = jobs
        self.report = report
        self.manifest = manifest if manifest is not None else Manifest(dest)
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


def series_names(reader: Any) -> list[str]:
    """Names of a group's variables on (target, cadence)."""
    return [n for n, a in reader.arrays.items() if tuple(a.metadata.dimension_names or ())[:2] == ("target", "cadence")]


def with_aliases(values: dict[str, np.ndarray], aliases: dict[str, str]) -> dict[str, np.ndarray]:
    """``values`` plus the asked-for names (``pdcsap_flux``) of variables stored under others (``flux``)."""
    return {**values, **{name: values[variable] for name, variable in aliases.items()}} if aliases else values
