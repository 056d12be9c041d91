"""One download run: what every writer is given (:class:`DownloadContext`, frozen; :class:`GroupPlan`, a
group's reads), what the run has done so far (:class:`RunRecord`: its report, manifest and
progress), its output units (:class:`Unit`) and what it reports (:class:`DownloadReport`)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from lcarchive.config import carry
from lcarchive.downloads.manifest import Manifest
from lcarchive.errors import ExportError
from lcarchive.search import GroupSelection, Selection
from lcarchive.store import BulkReader

if TYPE_CHECKING:
    import pandas as pd

    from lcarchive.handle import ArchiveReads

__all__ = [
    "DownloadContext",
    "DownloadReport",
    "GroupPlan",
    "OutputFormat",
    "RunRecord",
    "Unit",
    "off_loop",
    "per_target_names",
    "series_names",
    "shard_rows",
    "with_aliases",
]

_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lcarchive-download")
"""The download's own threads for blocking work (see :func:`off_loop`)."""


async def off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the download's own threads, off the event loop.

    Not ``asyncio.to_thread``: a download runs on zarr's event loop, whose default executor
    zarr's ``LocalStore`` also uses for its file I/O. A writer in that executor that calls zarr's
    synchronous API waits on I/O that needs a thread of the same executor; with as many such
    writers as threads (6 on 2 CPUs: a ``--format zarr`` download of a few columns from 9 groups
    or more) nothing moved and the download hung. ``fn`` runs with the caller's settings
    (:func:`lcarchive.config.carry`: ``run_in_executor`` does not copy the context).
    """
    return await asyncio.get_running_loop().run_in_executor(_WRITERS, carry(functools.partial(fn, *args, **kwargs)))


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


@dataclass(frozen=True)
class DownloadContext:
    """What every writer of one download is given: where from, where to, in which format, what.

    Attributes
    ----------
    archive : lcarchive.handle.ArchiveReads
    dest : pathlib.Path
        The local download folder.
    format : OutputFormat
        The registered output format (:func:`lcarchive.downloads.formats.output_format`).
    selection : Selection
        What to download (its ``columns`` the light-curve variables asked for, analyses apart).
    jobs : int
        Requests in flight at once.
    """

    archive: ArchiveReads
    dest: Path
    format: OutputFormat
    selection: Selection
    jobs: int

    @property
    def columns(self) -> list[str] | None:
        """The columns asked for (``["all"]`` for every variable), None for the format's default."""
        return None if self.selection.columns is None else list(self.selection.columns)


class RunRecord:
    """What one download (or one cluster task of it) has done so far: its report, its manifest,
    its progress and the readers whose requests it counts. Writers add to it; nothing else changes.
    """

    def __init__(
        self, report: DownloadReport, manifest: Manifest, progress: Callable[[int, int], None] | None = None, total: int = 0
    ) -> None:
        self.report = report
        self.manifest = manifest
        self.progress = progress
        self.total = total
        self.done = 0
        self.readers: list[BulkReader] = []
        self._lock = threading.Lock()

    def advance(self, n: int) -> None:
        """``n`` more light curves are done (written, skipped or found empty)."""
        with self._lock:
            self.done += n
            if self.progress is not None:
                self.progress(self.done, self.total)

    def wrote(self, unit: str, nbytes: int) -> None:
        with self._lock:
            self.report.written.append(unit)
            self.report.bytes_written += nbytes


@dataclass(frozen=True)
class GroupPlan:
    """What is read of one selected group, for its writers.

    Attributes
    ----------
    group : GroupSelection
    reader : GroupReader
        The group's reader (its arrays, attributes, cadence numbers).
    bulk : BulkReader
        Reads its selected rows, counting requests.
    names : list of str
        Variables to read.
    extra : list of str
        Columns of tidy outputs besides the core ones.
    aliases : dict of str to str
        {asked-for column: variable} where they differ (``pdcsap_flux``: ``flux``).
    attrs : dict of str to dict
        Every variable's attributes.
    """

    group: GroupSelection
    reader: Any
    bulk: BulkReader
    names: list[str]
    extra: list[str]
    aliases: dict[str, str]
    attrs: dict[str, dict]


def series_names(reader: Any) -> list[str]:
    """Names of a group's variables on (target, cadence)."""
    return [n for n, a in reader.arrays.items() if tuple(a.metadata.dimension_names or ())[:2] == ("target", "cadence")]


def with_aliases(values: dict[str, np.ndarray], aliases: dict[str, str]) -> dict[str, np.ndarray]:
    """``values`` plus the asked-for names (``pdcsap_flux``) of variables stored under others (``flux``)."""
    return {**values, **{name: values[variable] for name, variable in aliases.items()}} if aliases else values


def per_target_names(reader: Any) -> list[str]:
    """Names of a group's variables with one value (or image) per target, ``target`` aside."""
    return [
        n
        for n, a in reader.arrays.items()
        if n != "target"
        and tuple(a.metadata.dimension_names or ())[:1] == ("target",)
        and "cadence" not in (a.metadata.dimension_names or ())
    ]


def shard_rows(reader: Any) -> int:
    """Targets per stored shard of a group (512 if no sharded series says)."""
    from lcarchive.layout.shards import spec_of

    for name in ("flux", "time", "quality"):
        if name in reader.arrays:
            spec = spec_of(reader.arrays[name])
            if spec is not None:
                return spec.shard_rows
    return 512


class OutputFormat:
    """One output format of downloads: what it declares, and how it writes a group's units.

    Attributes
    ----------
    name : str
        As ``download(format=...)`` and ``--format`` take it.
    suffix : str
        Of its files (``fits``, ``parquet``, ``csv``, ``h5``; ``zarr`` for its groups).
    analysis_suffix : str
        Of its analysis tables (``analyses/<method>.<suffix>``).
    per : {"target", "shard", "group"}
        What one output unit holds: one target's file, the selected targets of one stored
        shard (one table), or a whole group. A cluster download runs one task per group for
        ``group``, else one per shard.
    every_variable : bool
        Whether it writes every variable by default (no ``columns`` asked for), or the core ones.
    summary : str
        A few words beside its name in ``--format``'s help, where the name does not say it all
        (empty: nothing added).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    suffix: ClassVar[str]
    analysis_suffix: ClassVar[str]
    per: ClassVar[Literal["target", "shard", "group"]]
    every_variable: ClassVar[bool] = False

    def more_variables(self, reader: Any, series: list[str], read: list[str]) -> list[str]:
        """Variables to read besides the selected columns ``read`` (per-target values, mostly)."""
        return []

    def units(self, plan_spec: list, group: GroupSelection, ident: dict, shas: list[str], reader: Any) -> list[Unit]:
        """The output units of a group's selected rows (``plan_spec`` goes into their keys)."""
        raise NotImplementedError

    async def write(
        self, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, todo: list[Unit], units_in_flight: asyncio.Semaphore
    ) -> None:
        """Write the units ``todo`` of a group (the others are complete from an earlier run)."""
        raise NotImplementedError

    def write_analysis(self, table: pd.DataFrame, entry: dict, path: Path) -> None:
        """One analysis table (:mod:`lcarchive.downloads.analyses`) with its catalog entry."""
        raise NotImplementedError

    # only ``zarr`` has these: whole groups copied object by object, then a catalog of the folder
    mirrors_whole_groups: ClassVar[bool] = False

    async def mirror(
        self, ctx: DownloadContext, record: RunRecord, group: GroupSelection, reader: Any, bulk: Any, shas: list[str]
    ) -> None:
        raise NotImplementedError

    def planned_outputs(self) -> list[str]:
        """Outputs written once a download's light curves are (paths relative to the folder)."""
        return []

    def finish(self, ctx: DownloadContext, record: RunRecord) -> None:
        """Write those outputs."""

    def __repr__(self) -> str:
        return f"<output format {self.name}>"
