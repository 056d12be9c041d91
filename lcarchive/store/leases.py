"""Who is writing: the writers' leases that keep ``lcarchive gc`` from running beside them.

Garbage collection deletes the objects no kept version reaches. A writer's chunks and manifests
are reached by nothing until its commits land, so gc must not run while a writer is between its
first write and its last commit. Two guards, each enough on its own:

* **A lease** (this module). Every writer (an ingest call, a compute, a tag, a catalog build)
  holds the archive *shared* for its whole run; gc holds it *exclusively*, so it refuses (or
  waits) while writers hold it, and writers wait while gc runs. On local disk the lease is an
  ``flock`` of ``<root>/.lcarchive-writers.lock``, which the kernel drops when a process dies.
  On an object store it is one small object per holder under ``<root>/leases/``, holding its
  expiry time and renewed by a thread while the holder runs (a holder killed with ``kill -9``
  stops renewing and its lease lapses after ``settings().lease_seconds``). A writer first
  writes its lease and then looks for gc's; gc writes its own and then looks for writers', so
  with the store's read-after-write consistency (S3's since 2020) at least one of two that
  start together sees the other and steps back. Two gc runs exclude each other the same way
  (on local disk by the gate).
* **An age bound** (:meth:`lcarchive.store.archive_store.ArchiveStore.collect_garbage`): no
  version and no object younger than ``settings().gc_safety_seconds`` is ever expired or
  deleted, whatever ``--older-than`` says, so a writer the lease missed (a lapsed lease, a
  writer of an older lcarchive) loses nothing either.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from lcarchive.config import carry, settings
from lcarchive.errors import ArchiveBusyError, StoreError

__all__ = ["GATE_FILE", "LEASES_DIR", "LOCK_FILE", "collecting", "writing"]

LOCK_FILE = ".lcarchive-writers.lock"
"""The lock file of a local archive, in its root: writers hold it shared, gc exclusively."""

GATE_FILE = ".lcarchive-gc.lock"
"""The gate of a local archive, in its root: gc holds it while it waits and runs, so no new
writer starts meanwhile."""

LEASES_DIR = "leases"
"""Folder of the lease objects of an archive on an object store, under its root."""


_LATER = ": gc waits for them with --wait SECONDS, or run it later"


def _holder(kind: str) -> dict[str, Any]:
    now = _dt.datetime.now(_dt.UTC)
    return {"kind": kind, "host": socket.gethostname(), "pid": os.getpid(), "since": now.isoformat(timespec="seconds")}


def _describe(holders: list[dict]) -> str:
    parts = [
        f"{h.get('kind', 'writer')} on {h.get('host', '?')} pid {h.get('pid', '?')} since {h.get('since', '?')}"
        for h in holders[:3]
    ]
    more = f" and {len(holders) - 3} more" if len(holders) > 3 else ""
    return "; ".join(parts) + more


# -- local disk: flock ----------------------------------------------------------------------------


def _open_lock(url: str, name: str) -> Any:
    root = url.removeprefix("file://")
    path = os.path.join(root, name)
    try:
        os.makedirs(root, exist_ok=True)
        return open(path, "a+b")  # closed by the caller, after the lock is released
    except OSError as exc:
        raise StoreError(url, f"cannot open the lock file {path}: {exc.strerror or exc}") from exc


def _try_flock(handle: Any, mode: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


@contextlib.contextmanager
def _flock(url: str, exclusive: bool, wait: float | None) -> Iterator[None]:
    """Hold a local archive as a writer (shared) or for gc (exclusive).

    Two lock files: a writer passes the gate (``.lcarchive-gc.lock``, shared, at once released)
    and holds ``.lcarchive-writers.lock`` shared; gc holds the gate exclusively, so that no new
    writer starts while it waits, then waits up to ``wait`` seconds for the writers' lock.
    """
    with _open_lock(url, GATE_FILE) as gate, _open_lock(url, LOCK_FILE) as lock:
        if not exclusive:
            fcntl.flock(gate.fileno(), fcntl.LOCK_SH)  # waits while gc waits or runs
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_SH)
            finally:
                fcntl.flock(gate.fileno(), fcntl.LOCK_UN)
        else:
            deadline = time.monotonic() + (wait or 0.0)
            if not _try_flock(gate, fcntl.LOCK_EX, deadline):
                raise ArchiveBusyError(url, f"another gc runs{_LATER}")
            if not _try_flock(lock, fcntl.LOCK_EX, deadline):
                fcntl.flock(gate.fileno(), fcntl.LOCK_UN)
                raise ArchiveBusyError(url, f"writers (ingest, compute, tag, catalog build) hold the archive{_LATER}")
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(gate.fileno(), fcntl.LOCK_UN)


# -- object stores: lease objects -----------------------------------------------------------------


class _Leases:
    """The lease objects under ``<root>/leases/`` of an archive on an object store."""

    def __init__(self, url: str, storage_options: dict | None) -> None:
        import fsspec

        from lcarchive.clients import with_defaults

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **with_defaults(url, dict(storage_options or {})))
        self.folder = f"{root.rstrip('/')}/{LEASES_DIR}"

    def put(self, name: str, holder: dict) -> None:
        body = dict(holder, expires=time.time() + settings().lease_seconds)
        self.fs.pipe_file(f"{self.folder}/{name}", json.dumps(body).encode())

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{self.folder}/{name}")

    def live(self, prefix: str, but: str = "") -> list[dict]:
        """The unexpired leases whose names start with ``prefix``, other than ``but`` (expired
        ones are removed)."""
        self.fs.invalidate_cache(self.folder)
        try:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(self.folder, detail=False)]
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if not name.startswith(prefix) or name == but:
                continue
            try:
                body = json.loads(self.fs.cat_file(f"{self.folder}/{name}"))
            except (FileNotFoundError, ValueError):
                continue  # released meanwhile, or half written: its holder rewrites it
            if float(body.get("expires", 0)) > time.time():
                out.append(body)
            else:
                self.remove(name)  # its holder died: the lease lapsed
        return out

    @contextlib.contextmanager
    def held(self, name: str, holder: dict) -> Iterator[None]:
        """Keep the lease ``name`` renewed (every third of its life) until the block ends."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(settings().lease_seconds / 3):
                with contextlib.suppress(Exception):  # a missed renewal: the next one, or the age bound
                    self.put(name, holder)

        thread = threading.Thread(target=carry(renew), name=f"lcarchive-lease-{name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with contextlib.suppress(Exception):  # not removed: it lapses after lease_seconds
                self.remove(name)


@contextlib.contextmanager
def _lease(url: str, storage_options: dict | None, exclusive: bool, wait: float | None, kind: str) -> Iterator[None]:
    with _store_errors(url, storage_options):
        leases = _Leases(url, storage_options)
    mine, theirs = ("gc-", "writer-") if exclusive else ("writer-", "gc-")
    name = f"{mine}{uuid.uuid4().hex}.json"
    holder = _holder(kind)
    deadline = None if wait is None else time.monotonic() + wait
    try:
        with _store_errors(url, storage_options):
            _acquire(leases, name, holder, theirs, exclusive, deadline, url)
    except BaseException:
        with contextlib.suppress(Exception):
            leases.remove(name)
        raise
    with leases.held(name, holder):
        yield


def _acquire(leases: _Leases, name: str, holder: dict, theirs: str, exclusive: bool, deadline: float | None, url: str) -> None:
    """Write lease ``name`` and wait until no lease of the other side (``theirs``) is live; gc
    also waits for another gc (both step back, then try again after a random pause)."""
    import random

    while True:
        leases.put(name, holder)  # (re)written each round: a waiting gc's lease stays alive
        if exclusive and leases.live("gc-", but=name):
            leases.remove(name)
            if deadline is not None and time.monotonic() >= deadline:
                raise ArchiveBusyError(url, f"another gc runs{_LATER}")
            time.sleep(random.uniform(0.2, 1.0))
            continue
        others = leases.live(theirs)
        if not others:
            return
        # a writer steps back at once and tries again, so that a waiting gc gets its turn;
        # gc keeps its lease while it waits, so that no new writer starts meanwhile
        if exclusive and deadline is not None and time.monotonic() >= deadline:
            raise ArchiveBusyError(url, f"writers hold the archive ({_describe(others)}){_LATER}")
        if not exclusive:
            leases.remove(name)
        time.sleep(0.5)


def _store_errors(url: str, storage_options: dict | None) -> contextlib.AbstractContextManager[None]:
    from lcarchive.clients import store_errors

    return store_errors(url, bool((storage_options or {}).get("anon")))


# -- the two sides --------------------------------------------------------------------------------

_held = threading.local()


@contextlib.contextmanager
def writing(url: str, storage_options: dict | None, local: bool, kind: str = "writer") -> Iterator[None]:
    """Hold the archive as a writer for the block; waits while gc runs. Re-entrant in a thread.

    Parameters
    ----------
    url : str
        The archive's root.
    storage_options : dict or None
        fsspec options of an object store.
    local : bool
        The root is a local folder (an ``flock``) rather than an object store (a lease object).
    kind : str
        What the holder does, shown by a gc that finds it (``ingest``, ``compute``...).
    """
    depth: dict[str, int] = getattr(_held, "depth", None) or {}
    _held.depth = depth
    if depth.get(url):
        depth[url] += 1
        try:
            yield
        finally:
            depth[url] -= 1
        return
    guard = _flock(url, False, None) if local else _lease(url, storage_options, False, None, kind)
    with guard:
        depth[url] = 1
        try:
            yield
        finally:
            depth[url] = 0


@contextlib.contextmanager
def collecting(url: str, storage_options: dict | None, local: bool, wait: float = 0.0) -> Iterator[None]:
    """Hold the archive exclusively for gc: no writer runs in the block.

    Parameters
    ----------
    url, storage_options, local
        As for :func:`writing`.
    wait : float
        Seconds to wait for the writers to finish before giving up.

    Raises
    ------
    lcarchive.errors.ArchiveBusyError
        Writers still held the archive after ``wait`` seconds.
    """
    guard = _flock(url, True, wait) if local else _lease(url, storage_options, True, wait, "gc")
    with guard:
        yield
