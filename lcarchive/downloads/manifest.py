"""The record of a download (``_lcarchive_manifest.jsonl``) that makes it resumable and verifiable:
one JSON line per output unit, files written atomically, their SHA-256 (CRC32C for Zarr objects);
:func:`verify` re-hashes them."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcarchive.errors import BadInputError

__all__ = [
    "MANIFEST_NAME",
    "PARTIAL_DIR",
    "Manifest",
    "VerifyReport",
    "crc32c",
    "file_digest",
    "sha256_file",
    "unit_key",
    "verify",
    "write_atomic",
]


MANIFEST_NAME = "_lcarchive_manifest.jsonl"


PARTIAL_DIR = ".lcarchive-partial"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, hex, read 4 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """The record of a download folder: ``_lcarchive_manifest.jsonl``, one JSON object a line.

    A ``{"run": ...}`` line opens each run (source, format, selection, time, its ``id`` and what
    it promises: ``planned``, the light curves of each selected observation and the outputs
    written at the end); a ``{"plan": <run id>, ...}`` line names the output units (and their
    files) of one observation before any of them is written; a ``{"unit": ...}`` line records
    one finished output unit: its ``key`` (a digest of what it was made from), ``files`` (path
    relative to the folder, size, sha256) and details; a ``{"nothing": ...}`` line a planned
    unit that has nothing to write (no cadence in the time range, a format that cannot hold
    it). The last line of a unit is the one that counts. A line cut short by an interruption
    is ignored. :func:`verify` checks every promise, so a run that died is told from a
    finished one.

    Parameters
    ----------
    dest : pathlib.Path
        The download folder.
    collect : bool
        Keep new entries in ``collected`` instead of appending them (see :meth:`add`).
    """

    def __init__(self, dest: Path, collect: bool = False) -> None:
        self.dest = dest
        self.path = dest / MANIFEST_NAME
        self.collect = collect
        self.collected: list[dict] = []
        self.units: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.plans: dict[str, dict[str, dict[str, list[str]]]] = {}  # run id -> observation -> unit -> paths
        self.nothing: set[str] = set()
        self.run_id: str | None = None
        self._lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and "run" in entry:
                    self.runs.append(entry)
                elif isinstance(entry, dict):
                    self._note(entry)

    def _note(self, entry: dict) -> None:
        if "unit" in entry:
            self.units[entry["unit"]] = entry
        elif "plan" in entry:
            self.plans.setdefault(str(entry["plan"]), {}).setdefault(str(entry.get("observation", "")), {}).update(
                entry.get("units") or {}
            )
        elif "nothing" in entry:
            self.nothing.add(str(entry["nothing"]))

    def _append(self, entry: dict) -> None:
        with self._lock, open(self.path, "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()  # a killed run's lines are the kernel's already

    def start(self, planned: dict | None = None, **info: Any) -> str:
        """Open a run: append its ``{"run": ...}`` line, with what it promises.

        Parameters
        ----------
        planned : dict, optional
            ``{"observations": {id: light curves}, "units": [outputs written at the end]}``.
        **info
            Source, format, selection, time.

        Returns
        -------
        str
            The run's ID, which its plan lines name.
        """
        import uuid

        self.run_id = uuid.uuid4().hex[:16]
        entry = {"run": {**info, "id": self.run_id, "planned": planned or {}}}
        self._append(entry)
        self.runs.append(entry)
        return self.run_id

    def plan(self, observation: str, units: dict[str, list[str]]) -> None:
        """Promise the output units (name: file paths) of one observation, before any is written."""
        self.add([{"plan": self.run_id, "observation": observation, "units": units}])

    def nothing_to_write(self, unit: str, reason: str) -> None:
        """Record that a planned unit has nothing to write (no cadence in the time range...)."""
        self.add([{"nothing": unit, "reason": reason}])

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
        self.add([entry])

    def add(self, entries: list[dict]) -> None:
        """Record finished units' entries: appended to the file, or, for a manifest made with
        ``collect`` (a part of a download run on a Dask worker), kept in ``collected`` for the
        coordinating process to add (one writer of the file)."""
        for entry in entries:
            if self.collect:
                self.collected.append(entry)
            else:
                self._append(entry)
            with self._lock:
                self._note(entry)


def _file_entry(path: str, size: int, digest: str) -> dict[str, Any]:
    algorithm, _, value = digest.rpartition(":")
    return {"path": path, "size": size, (algorithm or "sha256"): value}


def crc32c(data: Any) -> str:
    """``crc32c:<hex>`` of bytes or any buffer (obstore's Bytes)."""
    import google_crc32c

    return f"crc32c:{google_crc32c.value(data if isinstance(data, bytes) else bytes(data)):08x}"


def file_digest(path: Path, algorithm: str) -> str:
    """The digest of a file's content, as recorded in the manifest's ``algorithm`` field."""
    if algorithm == "crc32c":
        return crc32c(path.read_bytes()).partition(":")[2]
    return sha256_file(path)


def unit_key(*parts: Any) -> str:
    """The key of an output unit: SHA-256 of its defining parts (selection, source checksums) as JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> tuple[int, str]:
    """Write ``data`` to ``path`` through a temporary name; return (size, sha256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)
    return len(data), hashlib.sha256(data).hexdigest()


@dataclass
class VerifyReport:
    """Result of :func:`verify`.

    Attributes
    ----------
    dest : str
    checked : int
        Files re-hashed.
    promised : int
        Outputs the manifest's runs promised (files of planned units, and observations whose
        units were never planned because the run died first).
    problems : list of (str, str)
        (path, what is wrong): missing, size or SHA-256 differs, or never written.
    missing : list of str
        Promised outputs never written (a run that was killed, or ended by an error): paths of
        files, or ``<observation>/`` for an observation none of whose outputs was started.
        Running the same download again completes them.
    unrecorded : list of str
        Files in ``dest`` that no manifest line records (not an error: e.g. the user's own).
    """

    dest: str
    checked: int = 0
    promised: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _latest_runs(manifest: Manifest) -> list[dict]:
    """The runs whose promises count: for each (source, format, selection), its last run (a run
    of the same download again takes over the promises of an earlier one that died)."""
    latest: dict[str, dict] = {}
    for entry in manifest.runs:
        run = entry["run"]
        key = json.dumps([run.get("source"), run.get("format"), run.get("selection")], sort_keys=True, default=str)
        latest[key] = run
    return list(latest.values())


def _never_written(manifest: Manifest) -> list[tuple[str, str]]:
    """(path, problem) of every output a run promised that no unit line records."""
    out: dict[str, str] = {}
    for run in _latest_runs(manifest):
        run_id = run.get("id")
        if run_id is None:  # a manifest of an older lcarchive: promises not recorded
            continue
        started = run.get("started", "?")
        planned = run.get("planned") or {}
        plans = manifest.plans.get(str(run_id), {})
        for obs, count in sorted((planned.get("observations") or {}).items()):
            if obs not in plans:
                out.setdefault(
                    f"{obs}/",
                    f"never written: none of the {count} light curve(s) of {obs} the download of "
                    f"{started} selected was downloaded (run the same download again)",
                )
        for _obs, units in sorted(plans.items()):
            for unit, paths in sorted(units.items()):
                if unit not in manifest.units and unit not in manifest.nothing:
                    for path in paths or [unit]:
                        out.setdefault(
                            path,
                            f"never written: the download of {started} planned it and did not "
                            "finish (run the same download again)",
                        )
        for unit in planned.get("units") or []:
            if unit not in manifest.units and unit not in manifest.nothing:
                out.setdefault(
                    unit, f"never written: the download of {started} planned it and did not finish (run the same download again)"
                )
    return sorted(out.items())


def verify(dest: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-check a download against its manifest: every file it promised exists and matches.

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
        are problems; so is every output a run promised (its selection's planned units, recorded
        when it started) and never wrote, as after a download that was killed or ended by an
        error (``missing``). Files no manifest line records are listed apart.

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
    never = _never_written(manifest)
    report.promised = len(recorded) + len(never)
    for i, f in enumerate(recorded):
        path = dest / f["path"]
        if not path.is_file():
            report.problems.append((f["path"], "missing"))
            report.missing.append(f["path"])
        elif path.stat().st_size != f["size"]:
            report.problems.append((f["path"], f"size {path.stat().st_size}, recorded {f['size']}"))
        else:
            algorithm = "crc32c" if "crc32c" in f else "sha256"
            if file_digest(path, algorithm) != f[algorithm]:
                report.problems.append(
                    (f["path"], f"{'CRC32C' if algorithm == 'crc32c' else 'SHA-256'} differs from the recorded one")
                )
        report.checked += 1
        if progress is not None:
            progress(i + 1, len(recorded))
    for path, problem in never:
        report.problems.append((path, problem))
        report.missing.append(path)
    known = {f["path"] for f in recorded}
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        relative = str(path.relative_to(dest))
        if relative != MANIFEST_NAME and relative not in known and not relative.startswith(PARTIAL_DIR):
            report.unrecorded.append(relative)
    return report
