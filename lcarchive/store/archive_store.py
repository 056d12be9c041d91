"""The one store of an archive (format v2): its icechunk repositories, their sessions and versions.

Layout (``docs/format.md``)::

    <root>/catalog/                      icechunk repository: the archive's catalog and history
        zarr.json (group attributes: lcarchive_format_version "2", bucket counts)
        families   string array (FAMILY_BUCKETS,), one chunk each: JSON {family: pin}
        targets    string array (TARGET_BUCKETS,), one chunk each: JSON columns of the target index
        sky        string array (SKY_PIXELS,), one chunk each: the same lines, by HEALPix pixel of
                   the target's position (order SKY_ORDER, nested): what a cone search reads
    <root>/observations/<family>/        one icechunk repository per observation family:
        <observation id>/                the observation's Zarr group (the current light curves)
        <observation id>.<label>/        its release groups

A *family* is an observation and its release groups (``tess-spoc-2min-s0001`` and
``tess-spoc-2min-s0001.dr0``): moving a light curve between them is one atomic commit. A *pin*
records, for a family, the snapshot of its repository the archive's version shows and the
catalog entries of its groups. Every ingest batch commits its families, then one catalog
commit that pins them and updates the target index: that commit is the archive's new version,
its message names the inputs. A reader opens the catalog at a version (the latest, a tag, a
snapshot, a date) and every family at its pin, so it never sees half a batch; a batch killed
before its catalog commit is invisible, and re-running it completes it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import icechunk as ic
import numpy as np
import pandas as pd
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from lcarchive.catalog.build import finish_catalog
from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.index import COLUMNS, DEFAULTS, real_magnitudes
from lcarchive.catalog.models import Analysis, Catalog, DataSet, Observation
from lcarchive.clients import RetryingStore, call_retried
from lcarchive.config import carry, settings
from lcarchive.errors import ArchiveNotFoundError, DamagedObjectError, LcarchiveError, StoreError
from lcarchive.identifiers import check_observation_id
from lcarchive.layout.sky import SKY_ORDER, SKY_PIXELS, pixels_of
from lcarchive.store.digests import DIGESTS_DIR, Objects, read_record, record_digests, record_repo_info, sha256
from lcarchive.store.leases import collecting, writing
from lcarchive.store.repos import RepositoryMissing, open_repository, storage_for, store_failure, transaction

__all__ = ["FORMAT_VERSION", "INDEX_COLUMNS", "ArchiveStore", "clear_caches", "family_of"]

FORMAT_VERSION = "2"
CATALOG_REPO = "catalog"
FAMILIES_DIR = "observations"
FAMILY_BUCKETS = 256
TARGET_BUCKETS = 1024
INDEX_COLUMNS = COLUMNS
"""Columns of the target index: one line per (target, observation group)."""


DAMAGED_SNAPSHOT = ("snapshot: does not match the SHA-256 recorded when it was written (damaged in the store, not "
                    "a network failure); lcarchive verify lists every damaged object, lcarchive rollback returns to "
                    "the newest undamaged version")
_CHECKED_SNAPSHOTS: set[tuple[str, str, str]] = set()
"""Snapshots whose bytes matched their digest in this process (checked once each)."""


_SESSIONS: dict[tuple[str, str, str, str], ic.Session] = {}
"""Read-only sessions at a snapshot, by (archive URL, storage options, repository, snapshot),
shared by every handle of this process: a snapshot never changes, so a second
``open_archive`` of the same URL reads a family it has read before without opening it again
(icechunk keeps the snapshot and manifests it fetched with the session)."""
_REPOS: dict[tuple[str, str, str], ic.Repository] = {}
"""Opened repositories, by (archive URL, storage options, repository), shared by every handle
of this process: opening one is a round trip (its config, branch and info objects); what
changes (branches, tags) is read again by every session, commit and lookup all the same, and
icechunk keeps the snapshots and manifests it fetched for the next session at the same one."""
_CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lcarchive-check")
"""Threads of the damage checks of snapshots, run beside the reads that need their results."""


_SNAPSHOT_ID = re.compile(r"[0-9A-Z]{20}")
"""What an icechunk snapshot ID looks like (20 characters of Crockford's base 32)."""


_NO_SUCH_VERSION = {getattr(ic.ErrorKind, k) for k in ("REF_NOT_FOUND", "TAG_NOT_FOUND", "BRANCH_NOT_FOUND", "SNAPSHOT_NOT_FOUND",
                                                      "INVALID_SNAPSHOT_ID", "INVALID_REF_NAME", "OBJECT_NOT_FOUND")}
"""icechunk's error kinds of a version name that is not of the kind tried."""


def _remember(cache: dict, key: tuple, value: Any) -> None:
    """Keep ``value`` in a process-wide cache of at most ``Settings.sessions_kept`` entries (the oldest
    goes first)."""
    if key not in cache and len(cache) >= settings().sessions_kept:
        cache.pop(next(iter(cache)))
    cache[key] = value


def clear_caches() -> None:
    """Forget what this process has opened and checked of every archive: the next read is cold
    (for benchmarks and tests of cold reads; readers never need it, as what is cached never
    changes)."""
    from lcarchive.clients import forget_clients
    from lcarchive.store.reader import forget_readers

    forget_clients()
    _CHECKED_SNAPSHOTS.clear()
    _SESSIONS.clear()
    _REPOS.clear()
    forget_readers()


def family_of(observation: str) -> str:
    """The family of an observation ID: itself without its release label."""
    return check_observation_id(observation).split(".", 1)[0]


def family_bucket(family: str, n: int = FAMILY_BUCKETS) -> int:
    """The catalog bucket holding a family's pin (CRC-32 of its ID)."""
    return zlib.crc32(family.encode()) % n


def target_bucket(target: int, n: int = TARGET_BUCKETS) -> int:
    """The target-index bucket holding a target's lines."""
    return int(target) % n


_CHECKED = [ZstdCodec(level=3), Crc32cCodec()]
"""Codecs of the catalog arrays: a damaged bucket is an error, never a wrong pin or index line."""


def _create_sky(root: zarr.Group) -> zarr.Array:
    array = root.create_array("sky", shape=(SKY_PIXELS,), chunks=(1,), dtype=str, fill_value="", compressors=_CHECKED,
                              overwrite=True)
    array.attrs.update({"healpix_order": SKY_ORDER, "healpix_numbering": "nested", "frame": "icrs"})
    return array


def _sky_texts(lines: pd.DataFrame) -> dict[int, str]:
    """Sky buckets of some index lines (lines without a position are in none)."""
    pixels = pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy())
    return {int(p): _text(part) for p, part in lines.groupby(pixels, sort=True) if p >= 0}


def _empty_index() -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in INDEX_COLUMNS.items()})


def _frames(texts: Iterable[str]) -> pd.DataFrame:
    """The index lines of some buckets' texts, as one frame (the JSON columns joined first: one
    DataFrame for all, not one per bucket)."""
    joined: dict[str, list] = {k: [] for k in INDEX_COLUMNS}
    for text in texts:
        if not text:
            continue
        columns = json.loads(text)
        n = len(columns.get("target", []))
        for k in INDEX_COLUMNS:
            joined[k].extend(columns[k] if k in columns else [DEFAULTS[k]] * n)
    if not joined["target"]:
        return _empty_index()
    frame = pd.DataFrame(joined)
    for name, dtype in INDEX_COLUMNS.items():
        if dtype == "float64":  # null (NaN) in JSON
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    frame["magnitude"] = real_magnitudes(frame["magnitude"].to_numpy())  # indexes written before sentinels were dropped
    return frame.astype(INDEX_COLUMNS)


def _json_columns(text: str) -> dict[str, list]:
    """The columns of a bucket's text as JSON lists (columns an older text lacks filled with
    their defaults; NaN as None)."""
    columns = json.loads(text) if text else {}
    n = len(columns.get("target", []))
    out = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = columns[name] if name in columns else [DEFAULTS[name]] * n if n else []
        out[name] = [None if v is None or v != v else float(v) for v in values] if dtype == "float64" else values  # type: ignore[arg-type]  # a number (the column is float64)
    return out


def _rows_by(lines: pd.DataFrame, keys: list[int]) -> dict[int, dict[str, list]]:
    """Index lines as JSON columns (NaN as None), grouped by a key per line (a bucket or pixel)."""
    if lines.empty:
        return {}
    columns = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = lines[name].tolist()
        columns[name] = [None if v != v else float(v) for v in values] if dtype == "float64" else values
    grouped: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        grouped.setdefault(int(key), []).append(i)
    return {key: {name: [values[i] for i in rows] for name, values in columns.items()} for key, rows in grouped.items()}


def _upsert(text: str, new: dict[str, list] | None, replaced: set, dropped: set) -> tuple[str, dict[str, list]]:
    """A bucket's text with its lines of keys (target, observation) in ``replaced`` or of
    observations in ``dropped`` removed and the ``new`` lines added, sorted by (target,
    observation); and the lines removed. Plain lists, not a DataFrame per bucket: a catalog
    commit updates a few hundred buckets, and ``update_index`` of 256 lines into 20,000 took
    2.57 s that way against 0.67 s this way (docs/performance.md)."""
    columns = _json_columns(text)
    gone = [(t, o) in replaced or o in dropped for t, o in zip(columns["target"], columns["observation"], strict=True)]
    removed = {k: [x for x, g in zip(v, gone, strict=True) if g] for k, v in columns.items()}
    columns = {k: [x for x, g in zip(v, gone, strict=True) if not g] + (new[k] if new else []) for k, v in columns.items()}
    order = sorted(range(len(columns["target"])), key=lambda i: (columns["target"][i], columns["observation"][i]))
    if not order:
        return "", removed
    return json.dumps({k: [v[i] for i in order] for k, v in columns.items()}, separators=(",", ":")), removed


def _text(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    frame = frame.sort_values(["target", "observation"], kind="stable")
    out = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = frame[name].tolist()
        if dtype == "float64":
            values = [None if v != v else float(v) for v in values]  # NaN as null: valid JSON
        out[name] = values
    return json.dumps(out, separators=(",", ":"))


class ArchiveStore:
    """The repositories of the archive at ``url``, read at one version.

    Parameters
    ----------
    url : str
        Archive root (local path, ``s3://bucket/prefix``...).
    storage_options : dict, optional
        fsspec-style options (credentials, ``anon``, ``endpoint_url``).
    version : str, optional
        Read the archive at this version: a tag, a branch or a snapshot ID of its catalog
        repository. Default: the latest.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).
    """

    def __init__(self, url: str, storage_options: dict | None = None, version: str | None = None,
                 as_of: _dt.datetime | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.local = "://" not in url or url.startswith("file://")
        self.version = version
        self.as_of = as_of if as_of is None or as_of.tzinfo else as_of.replace(tzinfo=_dt.UTC)
        self._repos: dict[str, ic.Repository] = {}
        self._catalog_session: ic.Session | None = None
        self._pins: dict[str, dict] | None = None
        self._bucket_pins: dict[int, dict[str, dict]] = {}
        self._n_family_buckets: int | None = None
        self._sessions: dict[tuple[str, str], ic.Session] = {}
        self._digests: dict[tuple[str, str], str | None] = {}
        self._catalog_check: tuple[str, Future, Future] | None = None
        self._from_cache: set[str] = set()
        self._snapshot_bytes_ahead: dict[tuple[str, str], Future] = {}
        self._place: str | None = None

    # -- repositories -------------------------------------------------------------------------
    def place(self) -> str:
        """Where this handle's requests go, as a key of the process-wide caches: the options and
        the environment's AWS settings (endpoint, credentials, profile) that the store's clients
        read, so that a handle of the same URL at another endpoint never shares them."""
        if self._place is None:  # read once: scanning the environment costs ~2 ms a call
            env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
            self._place = json.dumps([self.storage_options, env], sort_keys=True, default=str)
        return self._place

    def _failure(self, exc: BaseException) -> StoreError:
        return store_failure(self.url, exc, self.storage_options)

    def _repo(self, relative: str, create: bool = False, fresh: bool = False) -> ic.Repository:
        """A repository of the archive: opened by this handle, or by another of this process
        (``_REPOS``), or opened now; ``create`` and ``fresh`` open it now unless this handle
        did (a writer that may create it, or must know that it exists: another handle's may
        be of an archive deleted since)."""
        if (create or fresh) and relative in self._from_cache:
            self._repos.pop(relative, None)
            self._from_cache.discard(relative)
        repo = self._repos.get(relative)
        if repo is not None:
            return repo
        shared = (self.url, self.place(), relative)
        if not (create or fresh) and (repo := _REPOS.get(shared)) is not None:
            self._from_cache.add(relative)
            self._repos[relative] = repo
            return repo
        _REPOS.pop(shared, None)
        try:
            repo = open_repository(storage_for(self.url, relative, self.storage_options), create=create,
                                   inline=relative != CATALOG_REPO)
        except RepositoryMissing:
            raise
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        _remember(_REPOS, shared, repo)
        self._repos[relative] = repo
        return repo

    def _stale(self, relative: str, exc: BaseException) -> bool:
        """True (and the repository forgotten) when a repository this process opened before
        was not found now: the archive was deleted (and perhaps made anew) since. The caller
        then opens it afresh, once, and says what is there now."""
        if relative not in self._from_cache or not isinstance(exc, ic.IcechunkError):
            return False
        kind = getattr(exc, "kind", None)
        if kind not in (ic.ErrorKind.OBJECT_NOT_FOUND, ic.ErrorKind.REPOSITORY_NOT_FOUND, ic.ErrorKind.REF_NOT_FOUND,
                        ic.ErrorKind.BRANCH_NOT_FOUND, ic.ErrorKind.SNAPSHOT_NOT_FOUND) and "not found" not in str(exc).lower():
            return False
        self._from_cache.discard(relative)
        self._repos.pop(relative, None)
        _REPOS.pop((self.url, self.place(), relative), None)
        return True

    def _lock(self, relative: str) -> str | None:
        if not self.local:
            return None  # object stores update branches with conditional writes
        return os.path.join(self.url.removeprefix("file://"), relative, ".lcarchive-commit.lock")

    read_only = False

    def check_root(self) -> None:
        """Make sure the root can take writes: a local folder is made; an object store's bucket
        must exist (lcarchive never creates buckets).

        Raises
        ------
        StoreError
            No such bucket, access denied, unreachable store.
        """
        if self.local:
            os.makedirs(self.url.removeprefix("file://"), exist_ok=True)
            return
        if self.url.startswith("s3://"):
            import fsspec

            from lcarchive.clients import bucket_exists, store_errors, with_defaults

            bucket = self.url.removeprefix("s3://").split("/", 1)[0]
            with store_errors(self.url, bool(self.storage_options.get("anon"))):
                fs = fsspec.filesystem("s3", **with_defaults(self.url, self.storage_options))
                if not bucket_exists(fs, bucket):
                    raise StoreError(self.url, f"no such bucket {bucket!r}: create it first (lcarchive never creates buckets)")

    def repository_url(self, family: str) -> str:
        """URL of a family's repository (what errors name)."""
        return f"{self.url}/{FAMILIES_DIR}/{family}"

    def objects(self, relative: str) -> Objects:
        """The stored objects of the repository at ``relative`` (``catalog``,
        ``observations/<family>``), as bytes."""
        return Objects(f"{self.url}/{relative}", self.storage_options)

    def record_digests(self, relative: str, snapshot: str | None) -> None:
        """Write the digest record of a snapshot just committed to the repository at ``relative``
        (:mod:`lcarchive.store.digests`); nothing for None."""
        if snapshot is None:
            return
        from lcarchive.clients import store_errors

        with store_errors(self.url, bool(self.storage_options.get("anon"))):
            record = record_digests(self.objects(relative), self._repo(relative), snapshot)
            record_repo_info(self.objects(relative), self._repo(relative))
        self._digests[(relative, snapshot)] = record["sha256"]

    def snapshot_digest(self, relative: str, snapshot: str) -> str | None:
        """The SHA-256 recorded for a snapshot of the repository at ``relative``, or None if it
        has no digest record.

        Raises
        ------
        DamagedObjectError
            If its digest record is damaged.
        """
        key = (relative, snapshot)
        if key not in self._digests:
            from lcarchive.clients import store_errors

            try:
                with store_errors(self.url, bool(self.storage_options.get("anon"))):
                    record = read_record(self.objects(relative), snapshot)
            except ValueError as exc:
                raise DamagedObjectError(f"{self.url}/{relative}/{DIGESTS_DIR}/{snapshot}", f"digest record: {exc}") from exc
            self._digests[key] = None if record is None else record["sha256"]
        return self._digests[key]

    def check_snapshot(self, relative: str, snapshot: str, expected: str | None) -> None:
        """Compare a snapshot object's bytes with the SHA-256 recorded when it was written (once
        per process and snapshot; nothing when ``expected`` is None).

        Raises
        ------
        DamagedObjectError
            If they differ: the snapshot was damaged after it was written.
        """
        if expected is None or (self.url, relative, snapshot) in _CHECKED_SNAPSHOTS:
            return
        self._compare(relative, snapshot, expected, self._snapshot_bytes(relative, snapshot))

    def _snapshot_bytes(self, relative: str, snapshot: str) -> bytes:
        from lcarchive.clients import store_errors

        try:
            with store_errors(self.url, bool(self.storage_options.get("anon"))):
                return self.objects(relative).get(f"snapshots/{snapshot}")
        except FileNotFoundError:
            raise DamagedObjectError(f"{self.url}/{relative}/snapshots/{snapshot}",
                                     "snapshot: missing (the archive's version names it)") from None

    def _compare(self, relative: str, snapshot: str, expected: str | None, data: bytes) -> None:
        if expected is not None and sha256(data) != expected:
            raise DamagedObjectError(f"{self.url}/{relative}/snapshots/{snapshot}", DAMAGED_SNAPSHOT)
        _CHECKED_SNAPSHOTS.add((self.url, relative, snapshot))

    def _start_catalog_check(self, snapshot: str) -> tuple | None:
        """Start the damage check of the catalog's snapshot against its digest record, once per
        process: the record and the snapshot's bytes fetched at once, beside the first catalog
        read (:meth:`_catalog_checked` compares them)."""
        if (self.url, CATALOG_REPO, snapshot) in _CHECKED_SNAPSHOTS:
            return None
        return (snapshot, _CHECKS.submit(carry(self.snapshot_digest), CATALOG_REPO, snapshot),
                _CHECKS.submit(carry(self._snapshot_bytes), CATALOG_REPO, snapshot))

    def _catalog_checked(self) -> None:
        """Finish the damage check of the catalog's snapshot started when its session opened.

        Raises
        ------
        DamagedObjectError
            If the snapshot's bytes differ from those recorded when it was written.
        """
        check, self._catalog_check = self._catalog_check, None
        if check is not None:
            snapshot, expected, data = check
            self._compare(CATALOG_REPO, snapshot, expected.result(), data.result())

    def exists(self, cached: bool = True) -> bool:
        """True if the archive has its catalog repository.

        ``cached=False`` asks the store even when this process opened the repository before
        (a writer deciding whether to create the archive: it may have been deleted since).
        """
        try:
            self._repo(CATALOG_REPO, fresh=not cached)
        except RepositoryMissing:
            return False
        return True

    def open_ahead(self, families: Iterable[str]) -> None:
        """Open the catalog repository and these families' repositories at once, in threads.

        Opening a repository is four requests one after the other; a cold read of one
        observation needs both repositories, whose places the observation ID gives before the
        catalog is read. Opened together they cost the round trips of one. Failures are left for
        the read that needs the repository to raise.
        """
        from concurrent.futures import ThreadPoolExecutor

        places = [CATALOG_REPO, *(f"{FAMILIES_DIR}/{check_observation_id(f)}" for f in sorted(set(families)))]
        places = [p for p in places if p not in self._repos]
        if len(places) < 2:
            return

        def open_one(relative: str) -> None:
            try:
                self._repo(relative)
            except (RepositoryMissing, StoreError):
                pass

        with ThreadPoolExecutor(max_workers=min(settings().open_jobs, len(places)), thread_name_prefix="lcarchive-open") as pool:
            list(pool.map(carry(open_one), places))

    def catalog_repository(self) -> ic.Repository:
        """The catalog repository.

        Raises
        ------
        ArchiveNotFoundError
            If there is none (no archive at the URL, or a format v1 archive).
        """
        try:
            return self._repo(CATALOG_REPO)
        except RepositoryMissing:
            from lcarchive.clients import missing_reason

            if self.local and os.path.isfile(os.path.join(self.url.removeprefix("file://"), "catalog.json")):
                raise ArchiveNotFoundError(self.url, "an archive of store format v1: convert it with "
                                           f"lcarchive migrate {self.url} NEW") from None
            import fsspec

            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
            reason = missing_reason(fs, self.url, root)
            families = self.families_in_store() if reason.startswith("no lcarchive archive") else []
            if families:
                reason = (f"the catalog repository's info object ({CATALOG_REPO}/repo) is missing though {len(families)} "
                          f"observation families are stored: the archive is damaged (lcarchive verify names what is "
                          "damaged)")
            raise ArchiveNotFoundError(self.url, reason) from None

    def create(self) -> None:
        """Make the catalog repository with its root group and arrays, if it does not exist (safe when
        several writers race to create it)."""
        repo = self._repo(CATALOG_REPO, create=True)

        def setup(session: ic.Session) -> bool | None:
            root = zarr.open_group(session.store, mode="a", zarr_format=3)
            if "lcarchive_format_version" in root.attrs:
                return None
            root.attrs.update({"lcarchive_format_version": FORMAT_VERSION, "family_buckets": FAMILY_BUCKETS,
                               "target_buckets": TARGET_BUCKETS})
            root.create_array("families", shape=(FAMILY_BUCKETS,), chunks=(1,), dtype=str, fill_value="", compressors=_CHECKED)
            root.create_array("targets", shape=(TARGET_BUCKETS,), chunks=(1,), dtype=str, fill_value="", compressors=_CHECKED)
            _create_sky(root)
            return True

        try:
            snapshot, _ = transaction(repo, setup, "archive created", lock_path=self._lock(CATALOG_REPO))
            self.record_digests(CATALOG_REPO, snapshot)
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        self._catalog_session = None

    def family_repository(self, family: str, create: bool = False) -> ic.Repository:
        """The repository of an observation family.

        Raises
        ------
        RepositoryMissing
            If it does not exist (and ``create`` is False).
        """
        return self._repo(f"{FAMILIES_DIR}/{check_observation_id(family)}", create=create)

    # -- the catalog at this store's version ----------------------------------------------------
    def catalog_session(self) -> ic.Session:
        """A read-only session of the catalog repository at this store's version, its snapshot
        checked against its digest record.

        Raises
        ------
        DamagedObjectError
            If the snapshot's bytes differ from those recorded when it was written.
        """
        session = self._open_catalog_session()
        self._catalog_checked()
        return session

    def _open_catalog_session(self) -> ic.Session:
        """The catalog's session, its damage check started (:meth:`_catalog_checked` waits for it)."""
        if self._catalog_session is None:
            repo = self.catalog_repository()
            try:
                if self.as_of is not None:
                    self._catalog_session = call_retried(lambda: repo.readonly_session(branch="main", as_of=self.as_of))
                elif self.version is None:
                    self._catalog_session = call_retried(lambda: repo.readonly_session(branch="main"))
                else:
                    self._catalog_session = call_retried(lambda: self._session_at(repo, self.version))
                self._catalog_check = self._start_catalog_check(self._catalog_session.snapshot_id)
            except ic.IcechunkError as exc:
                if self._stale(CATALOG_REPO, exc):
                    return self._open_catalog_session()
                explicit = self.version is not None and self.as_of is None
                if isinstance(exc, ic.NotFoundError) or explicit:  # no such tag, branch or snapshot ID
                    raise LcarchiveError(f"{self.url}: no version {self.version or self.as_of} "
                                         "(lcarchive history lists the versions)") from None
                raise self._failure(exc) from exc
        return self._catalog_session

    @staticmethod
    def _session_at(repo: ic.Repository, version: str) -> ic.Session:
        """A session at a tag, a branch or a snapshot ID: each tried in turn (a snapshot ID
        first when the name looks like one), without listing the tags and branches first."""
        kinds = ["tag", "branch", "snapshot_id"]
        if _SNAPSHOT_ID.fullmatch(version):
            kinds = ["snapshot_id", "tag", "branch"]
        for kind in kinds[:-1]:
            try:
                return repo.readonly_session(**{kind: version})  # type: ignore[arg-type]  # branch=, tag= or snapshot_id=
            except (ic.NotFoundError, ic.RefNotFoundError, ic.SnapshotNotFoundError, ValueError):
                continue
            except ic.IcechunkError as exc:
                if exc.kind not in _NO_SUCH_VERSION and "not found" not in str(exc).lower():
                    raise
        return repo.readonly_session(**{kinds[-1]: version})  # type: ignore[arg-type]  # as above

    def refresh(self) -> None:
        """Forget what was read: the next read sees the latest version (of a store at the latest)."""
        self._catalog_session = None
        self._catalog_check = None
        self._pins = None
        self._bucket_pins = {}

    def _catalog_array(self, session: ic.Session, name: str) -> zarr.Array:
        try:
            return zarr.open_array(RetryingStore(session.store, self.url), path=name, mode="r")
        except ic.IcechunkError:
            self._catalog_checked()  # a snapshot that fails to parse because it is damaged is said as such
            raise

    def _read_catalog(self, name: str, selection: Any = None) -> np.ndarray:
        """Buckets of the catalog array ``name`` (all, or the coordinates given).

        Raises
        ------
        DamagedArchiveError
            If a bucket does not match its CRC32C (a repair: ``lcarchive catalog build``).
        """
        array = self._catalog_array(self._open_catalog_session(), name)
        try:
            with zarr.config.set({"async.concurrency": settings().catalog_reads}):
                values = array[:] if selection is None else array.get_coordinate_selection(selection)
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        except ValueError as exc:  # zarr's crc32c codec: the stored and computed checksums differ
            from lcarchive.clients import first_line
            from lcarchive.errors import DamagedArchiveError

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/{name}", first_line(str(exc), 120)) from exc
        finally:
            self._catalog_checked()  # nothing read is used before its snapshot is checked: a damaged one is said first
        return values  # type: ignore[return-value]  # zarr's get returns an ndarray here

    def pins(self) -> dict[str, dict]:
        """Every family's pin: ``{family: {"snapshot": id, "observations": {id: entry}, "datasets":
        {id: [entries]}, "buckets": [target buckets]}}``."""
        if self._pins is None:
            values = self._read_catalog("families")
            pins: dict[str, dict] = {}
            for text in values:
                if text:
                    pins.update(json.loads(str(text)))
            self._pins = pins
        return self._pins

    def pin(self, family: str) -> dict | None:
        """One family's pin (reading only its bucket), or None if this version has no such family."""
        return self.pins_of([family])[family]

    def pins_of(self, families: Iterable[str]) -> dict[str, dict | None]:
        """Some families' pins (None for a family this version has not), their buckets read at
        once: one round for the families of a star's ten sectors, not one each."""
        families = list(families)
        if self._pins is not None:
            return {f: self._pins.get(f) for f in families}
        if self._n_family_buckets is None:
            self._n_family_buckets = self._catalog_array(self._open_catalog_session(), "families").shape[0]
        buckets = {f: family_bucket(f, self._n_family_buckets) for f in families}
        missing = sorted({b for b in buckets.values() if b not in self._bucket_pins})
        if missing:
            texts = self._read_catalog("families", np.asarray(missing, dtype=np.int64))
            for bucket, text in zip(missing, texts, strict=True):
                self._bucket_pins[bucket] = json.loads(str(text)) if str(text) else {}
        return {f: self._bucket_pins[buckets[f]].get(f) for f in families}

    def index(self, targets: Iterable[int] | None = None) -> pd.DataFrame:
        """Target-index lines: of the given targets (reading only their buckets), or all."""
        size = self._catalog_array(self._open_catalog_session(), "targets").shape[0]
        if targets is None:
            texts = [str(t) for t in self._read_catalog("targets")]
        else:
            wanted = sorted({target_bucket(t, size) for t in targets})
            texts = [str(t) for t in self._read_catalog("targets", np.asarray(wanted, dtype=np.int64))] if wanted else []
        frame = _frames(texts)
        if targets is not None:
            frame = frame[frame["target"].isin(list(targets))]
        return frame.sort_values(["target", "observation"], kind="stable").reset_index(drop=True)

    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None:
        """Target-index lines of the targets in some sky pixels (:mod:`lcarchive.layout.sky`),
        reading only those buckets; None if this version has no sky index (an archive written
        before there was one: ``lcarchive catalog build`` adds it, as does the next ingest)."""
        session = self.catalog_session()
        try:
            self._catalog_array(session, "sky")
        except (KeyError, FileNotFoundError, zarr.errors.NodeNotFoundError):
            return None
        wanted = np.unique(np.asarray(list(pixels), dtype=np.int64))
        if wanted.size > self._catalog_array(session, "targets").shape[0]:  # fewer requests: every target bucket
            lines = self.index()
            return lines[np.isin(pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy()), wanted)].reset_index(drop=True)
        texts = [str(t) for t in self._read_catalog("sky", wanted)] if wanted.size else []
        return _frames(texts).sort_values(["target", "observation"], kind="stable").reset_index(drop=True)

    def catalog(self) -> Catalog:
        """The catalog at this store's version: the shipped catalog (missions, instruments,
        products) with the pinned entries of every observation group (one read of the pins)."""
        catalog = static_catalog().model_copy(deep=True)
        try:
            for _, pin in sorted(self.pins().items()):
                for entry in pin.get("observations", {}).values():
                    catalog.observations.append(Observation.model_validate(entry))
                for sets in pin.get("datasets", {}).values():
                    catalog.datasets.extend(DataSet.model_validate(d) for d in sets)
        except ValueError as exc:  # pydantic's ValidationError: an entry that is no valid catalog entry
            from lcarchive.errors import DamagedArchiveError
            from lcarchive.store.plain import first_problem

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/families", first_problem(exc)) from exc
        catalog.analyses.extend(self.analyses())
        return finish_catalog(catalog)

    # -- analyses: results of one method over many light curves, in the catalog repository --------
    def analyses(self) -> list[Analysis]:
        """The analyses of this version (entries in the catalog root's attributes), oldest first."""
        root = zarr.open_group(RetryingStore(self.catalog_session().store, self.url), mode="r")
        entries = dict(root.attrs.get("analyses", {}))  # type: ignore[arg-type]  # the analyses attribute is a JSON object
        return sorted((Analysis.model_validate(e) for e in entries.values()), key=lambda a: (a.created, a.id))

    def read_analysis(self, analysis_id: str) -> dict[str, np.ndarray]:
        """The result arrays of one analysis (each shape (n_light_curves,) or (n_light_curves, n)).

        Raises
        ------
        KeyError
            If this version has no such analysis.
        """
        store = RetryingStore(self.catalog_session().store, self.url)
        root = zarr.open_group(store, mode="r")
        if analysis_id not in root.attrs.get("analyses", {}):  # type: ignore[operator]  # as above
            raise KeyError(analysis_id)
        group = zarr.open_group(store, path=f"analyses/{analysis_id}", mode="r")
        try:
            return {name: np.asarray(array[...]) for name, array in group.arrays()}
        except ValueError as exc:  # zarr's crc32c codec
            from lcarchive.clients import first_line
            from lcarchive.errors import DamagedArchiveError

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/analyses/{analysis_id}", first_line(str(exc), 120)) from exc

    def write_analysis(self, entry: Analysis, columns: dict[str, np.ndarray], message: str) -> str | None:
        """Store an analysis in one catalog commit (its group and its entry); nothing is written if an
        analysis of this ID is there already. Return the new version's snapshot, or None."""
        def change(session: ic.Session) -> bool | None:
            root = zarr.open_group(session.store, mode="r+")
            entries = dict(root.attrs.get("analyses", {}))  # type: ignore[arg-type]  # as above
            if entry.id in entries:
                return None
            group = root.require_group(f"analyses/{entry.id}")
            for name, values in columns.items():
                values = np.asarray(values)
                dtype = str if values.dtype.kind in "OUT" else values.dtype
                array = group.create_array(name, shape=values.shape, dtype=dtype, compressors=_CHECKED, overwrite=True,
                                           chunks=(max(1, min(values.shape[0], 65536)), *values.shape[1:]) if values.ndim else (),
                                           fill_value="" if dtype is str else None)
                array[...] = values.astype(object) if dtype is str else values
            group.attrs.update(entry.model_dump(mode="json"))
            entries[entry.id] = entry.model_dump(mode="json")
            root.attrs["analyses"] = entries
            return True

        return self.change_catalog(change, message, metadata={"analysis": entry.id})[0]

    def group_ids(self) -> list[str]:
        """The observation groups of this version."""
        return sorted(g for pin in self.pins().values() for g in pin.get("observations", {}))

    def group_store(self, observation: str) -> tuple[Any, str]:
        """(zarr store, path) of an observation group at this version: a read-only icechunk
        session's store of its family, pinned.

        Raises
        ------
        KeyError
            If this version has no such group.
        """
        family = family_of(observation)
        pin = self.pin(family)
        if pin is None or observation not in pin.get("observations", {}):
            raise KeyError(observation)
        return RetryingStore(self.family_session(family).store, self.url), observation

    # -- families ------------------------------------------------------------------------------
    def family_session(self, family: str, snapshot: str | None = None) -> ic.Session:
        """A read-only session of a family at its pin (or at ``snapshot``).

        Raises
        ------
        KeyError
            If the archive's version has no such family.
        """
        expected = None
        if snapshot is None:
            pin = self.pin(family)
            if pin is None:
                raise KeyError(family)
            snapshot = pin["snapshot"]
            expected = pin.get("snapshot_sha256")  # pins written before digests have none
        relative = f"{FAMILIES_DIR}/{check_observation_id(family)}"
        session = self._sessions.get((family, snapshot)) or _SESSIONS.get(self._shared_key(relative, snapshot))
        if session is None:
            # the snapshot's bytes fetched while icechunk opens it: no extra round trip
            checked = _CHECKS.submit(carry(self.check_snapshot), relative, snapshot, expected)
            try:
                repo = self.family_repository(family)
                session = call_retried(lambda: repo.readonly_session(snapshot_id=snapshot))
            except ic.IcechunkError as exc:
                if self._stale(relative, exc):
                    return self.family_session(family, snapshot)
                checked.result()  # a damaged snapshot is said as such, before icechunk's own error
                raise self._failure(exc) from exc
            checked.result()
            self._keep_session(relative, snapshot, session)
        else:
            self.check_snapshot(relative, snapshot, expected)  # checked once per process: nothing to fetch
        self._sessions[(family, snapshot)] = session
        return session

    def _shared_key(self, relative: str, snapshot: str) -> tuple[str, str, str, str]:
        return (self.url, self.place(), relative, snapshot)

    def _keep_session(self, relative: str, snapshot: str, session: ic.Session) -> None:
        _remember(_SESSIONS, self._shared_key(relative, snapshot), session)

    def tip_session(self, family: str) -> ic.Session | None:
        """A read-only session of a family where its pin most likely is, opened ahead of the pin:
        its branch tip (the latest version), its tag of the same name (a tagged version: ``lcarchive
        tag`` tags the families' pinned snapshots too) or its branch as of the same time
        (``as_of``). None for a catalog snapshot ID, or when it cannot be opened: whoever needs
        the family then opens it at its pin and says why that failed.

        Opened beside the catalog read that gives the pin, it costs no round trip of its own
        when the tip is the pin (no writer between the family's commit and the catalog's): then
        :meth:`adopt_session` keeps it. The snapshot's bytes are fetched beside it, for the
        damage check once the pin gives the digest.
        """
        if self.version is not None and (_SNAPSHOT_ID.fullmatch(self.version) or self.as_of is not None):
            return None  # a catalog snapshot ID says nothing of the family's
        relative = f"{FAMILIES_DIR}/{check_observation_id(family)}"
        if self.as_of is not None:  # the family as it was then: its pin, unless it committed after the catalog did
            where: dict[str, Any] = {"branch": "main", "as_of": self.as_of}
        elif self.version is not None:  # lcarchive tag tags each family's pinned snapshot with the same name
            where = {"tag": self.version}
        else:
            where = {"branch": "main"}
        try:
            repo = self.family_repository(family)
            session = repo.readonly_session(**where)
        except (RepositoryMissing, ic.IcechunkError, StoreError, ValueError):
            return None
        snapshot = session.snapshot_id
        if (self.url, relative, snapshot) not in _CHECKED_SNAPSHOTS:
            self._snapshot_bytes_ahead[(relative, snapshot)] = _CHECKS.submit(carry(self._snapshot_bytes), relative, snapshot)
        return session

    def adopt_session(self, family: str, session: ic.Session) -> bool:
        """Keep a session of :meth:`tip_session` as the family's session if it is at the family's
        pin of this version (its snapshot's bytes matching the pin's digest); False if not (a
        writer committed between: the pin's snapshot is opened as usual).

        Raises
        ------
        DamagedObjectError
            If the snapshot's bytes differ from the digest its pin records.
        """
        pin = self.pin(family)
        snapshot = session.snapshot_id
        if pin is None or pin["snapshot"] != snapshot:
            return False
        relative = f"{FAMILIES_DIR}/{check_observation_id(family)}"
        ahead = self._snapshot_bytes_ahead.pop((relative, snapshot), None)
        expected = pin.get("snapshot_sha256")
        if ahead is not None and expected is not None:
            self._compare(relative, snapshot, expected, ahead.result())
        else:
            self.check_snapshot(relative, snapshot, expected)
        self._sessions[(family, snapshot)] = session
        self._keep_session(relative, snapshot, session)
        return True

    def family_head(self, family: str) -> str | None:
        """The latest snapshot of a family's repository (committed, perhaps not pinned yet)."""
        try:
            repo = self.family_repository(family)
            return call_retried(lambda: repo.lookup_branch("main"))
        except RepositoryMissing:
            return None
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc

    def change_family(self, family: str, change: Callable[[ic.Session], Any], message: str | Callable[[Any], str],
                      metadata: dict | None = None) -> tuple[str | None, Any]:
        """Apply ``change`` to a writable session of a family and commit it (see
        :func:`lcarchive.store.repos.transaction`: redone on a fresh session on conflict)."""
        with self.writing():
            repo = self.family_repository(family, create=True)
            try:
                result = transaction(repo, change, message, metadata, lock_path=self._lock(f"{FAMILIES_DIR}/{family}"))
                self.record_digests(f"{FAMILIES_DIR}/{family}", result[0])
            except ic.IcechunkError as exc:
                raise self._failure(exc) from exc
        return result

    def change_catalog(self, change: Callable[[ic.Session], Any], message: str | Callable[[Any], str],
                       metadata: dict | None = None) -> tuple[str | None, Any]:
        """Apply ``change`` to a writable session of the catalog and commit it (redone on conflict)."""
        with self.writing():
            repo = self.catalog_repository()
            try:
                try:
                    result = transaction(repo, change, message, metadata, lock_path=self._lock(CATALOG_REPO))
                except ic.IcechunkError as exc:
                    if not self._stale(CATALOG_REPO, exc):
                        raise
                    result = transaction(self.catalog_repository(), change, message, metadata, lock_path=self._lock(CATALOG_REPO))
                self.record_digests(CATALOG_REPO, result[0])
            except ic.IcechunkError as exc:
                raise self._failure(exc) from exc
        self.refresh()
        return result

    def writing(self, kind: str = "writer") -> contextlib.AbstractContextManager[None]:
        """Hold the archive as a writer (``kind``: ``ingest``, ``compute``...) for a block, so that
        ``lcarchive gc`` does not run beside it (:mod:`lcarchive.store.leases`); waits while gc
        runs. Every commit holds it; an ingest holds it from its first write to its last commit."""
        return writing(self.url, self.storage_options, self.local, kind)

    # -- pins and index, written in a catalog session ------------------------------------------
    @staticmethod
    def read_buckets(session: ic.Session, name: str, buckets: Iterable[int]) -> dict[int, str]:
        """The texts of some buckets of the catalog array ``name`` (``families`` or ``targets``)."""
        wanted = sorted(set(buckets))
        if not wanted:
            return {}
        array = zarr.open_array(RetryingStore(session.store), path=name, mode="r")
        values = array.get_coordinate_selection(np.asarray(wanted, dtype=np.int64))
        return {b: str(v) for b, v in zip(wanted, values, strict=True)}  # type: ignore[arg-type]  # zarr's selection returns an ndarray here

    @staticmethod
    def write_buckets(session: ic.Session, name: str, texts: dict[int, str]) -> None:
        """Write some buckets of the catalog array ``name``."""
        if not texts:
            return
        array = zarr.open_array(session.store, path=name, mode="r+")
        wanted = sorted(texts)
        array.set_coordinate_selection(np.asarray(wanted, dtype=np.int64), np.array([texts[b] for b in wanted], dtype=object))

    @classmethod
    def update_pins(cls, session: ic.Session, pins: dict[str, dict | None]) -> None:
        """Set (or, for None, remove) the pins of some families in a writable catalog session."""
        size = zarr.open_array(session.store, path="families", mode="r").shape[0]
        by_bucket: dict[int, list[str]] = {}
        for family in pins:
            by_bucket.setdefault(family_bucket(family, size), []).append(family)
        texts = cls.read_buckets(session, "families", by_bucket)
        out = {}
        for bucket, families in by_bucket.items():
            current = json.loads(texts[bucket]) if texts.get(bucket) else {}
            for family in families:
                if pins[family] is None:
                    current.pop(family, None)
                else:
                    current[family] = pins[family]
            out[bucket] = json.dumps(current, sort_keys=True, separators=(",", ":")) if current else ""
        cls.write_buckets(session, "families", out)

    @classmethod
    def update_index(cls, session: ic.Session, lines: pd.DataFrame, drop_observations: Iterable[str] = (),
                     drop_buckets: Iterable[int] = ()) -> list[int]:
        """Upsert index lines (key: target, observation) in a writable catalog session, first removing
        every line of ``drop_observations`` from ``drop_buckets``; return the target buckets written.

        The sky buckets follow: a line leaves the pixel of its old position and enters the pixel
        of its new one. A catalog without a sky index (written before there was one) gets it here,
        made from every target bucket.
        """
        size = zarr.open_array(session.store, path="targets", mode="r").shape[0]
        lines = lines.astype(INDEX_COLUMNS) if not lines.empty else _empty_index()
        buckets = {target_bucket(t, size) for t in lines["target"].tolist()} | set(drop_buckets)
        root = zarr.open_group(session.store, mode="r+")
        sky_missing = "sky" not in root
        texts = cls.read_buckets(session, "targets", range(size) if sky_missing else buckets)
        dropped = set(drop_observations)
        new_keys = set(zip(lines["target"].tolist(), lines["observation"].tolist(), strict=True))
        by_bucket = _rows_by(lines, [target_bucket(t, size) for t in lines["target"].tolist()])
        out, removed = {}, []
        for bucket in sorted(buckets):
            out[bucket], gone = _upsert(texts.get(bucket, ""), by_bucket.get(bucket), new_keys, dropped)
            removed.append(gone)
        cls.write_buckets(session, "targets", out)
        if sky_missing:  # every target bucket as it is now: the sky index made whole
            _create_sky(root)
            cls.write_buckets(session, "sky", _sky_texts(_frames(out.get(b, texts.get(b, "")) for b in range(size))))
            return sorted(buckets)
        old = {k: [v for part in removed for v in part[k]] for k in INDEX_COLUMNS}
        old_ra = np.asarray([np.nan if v is None else v for v in old["ra"]], dtype=np.float64)
        old_dec = np.asarray([np.nan if v is None else v for v in old["dec"]], dtype=np.float64)
        new_pixels = pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy())
        touched = set(pixels_of(old_ra, old_dec).tolist()) | set(new_pixels.tolist())
        touched.discard(-1)
        gone_keys = set(zip(old["target"], old["observation"], strict=True)) | new_keys
        sky_now = cls.read_buckets(session, "sky", touched)
        by_pixel = _rows_by(lines, new_pixels.tolist())
        sky_out = {pixel: _upsert(sky_now.get(pixel, ""), by_pixel.get(pixel), gone_keys, set())[0] for pixel in sorted(touched)}
        cls.write_buckets(session, "sky", sky_out)
        return sorted(buckets)

    @classmethod
    def replace_catalog(cls, session: ic.Session, pins: dict[str, dict], lines: pd.DataFrame | None) -> None:
        """Write every bucket of the pins and of the target index anew (nothing read: a repair of
        damaged buckets), in a writable catalog session."""
        families = zarr.open_array(session.store, path="families", mode="r+")
        targets = zarr.open_array(session.store, path="targets", mode="r+")
        by_bucket: dict[int, dict] = {}
        for family, pin in pins.items():
            by_bucket.setdefault(family_bucket(family, families.shape[0]), {})[family] = pin
        families[:] = np.array([json.dumps(by_bucket[b], sort_keys=True, separators=(",", ":")) if b in by_bucket else ""
                                for b in range(families.shape[0])], dtype=object)
        texts = [""] * targets.shape[0]
        _create_sky(zarr.open_group(session.store, mode="r+"))  # anew: no pixel of the old index is left
        if lines is not None and not lines.empty:
            lines = lines.astype(INDEX_COLUMNS)
            for bucket, part in lines.groupby(lines["target"].to_numpy() % targets.shape[0], sort=True):
                texts[int(bucket)] = _text(part)
            cls.write_buckets(session, "sky", _sky_texts(lines))
        targets[:] = np.array(texts, dtype=object)

    # -- versions ------------------------------------------------------------------------------
    def history(self, limit: int | None = None) -> list[dict]:
        """The archive's versions, newest first: ``{"snapshot", "time", "message", "metadata", "tags"}``."""
        repo = self.catalog_repository()
        tags: dict[str, list[str]] = {}
        for name in repo.list_tags():
            tags.setdefault(repo.lookup_tag(name), []).append(name)
        out = []
        for info in repo.ancestry(branch="main"):
            out.append({"snapshot": info.id, "time": info.written_at, "message": info.message,
                        "metadata": dict(info.metadata or {}), "tags": sorted(tags.get(info.id, []))})
            if limit is not None and len(out) >= limit:
                break
        return out

    def tag(self, name: str, snapshot: str | None = None) -> str:
        """Tag a version of the archive (default the latest); the families' pinned snapshots are tagged
        with the same name, so that no clean-up ever removes what the tag shows.

        Returns
        -------
        str
            The tagged snapshot of the catalog repository.

        Raises
        ------
        LcarchiveError
            If the tag exists already.
        """
        with self.writing("tag"):
            repo = self.catalog_repository()
            snapshot = snapshot or repo.lookup_branch("main")
            at = ArchiveStore(self.url, self.storage_options, version=snapshot)
            try:
                for family, pin in at.pins().items():
                    family_repo = self.family_repository(family)
                    if name not in family_repo.list_tags():
                        family_repo.create_tag(name, snapshot_id=pin["snapshot"])
                        record_repo_info(self.objects(f"{FAMILIES_DIR}/{family}"), family_repo)
                repo.create_tag(name, snapshot_id=snapshot)
                record_repo_info(self.objects(CATALOG_REPO), repo)
            except ic.AlreadyExistsError:
                raise LcarchiveError(f"{self.url}: tag {name!r} exists already") from None
            except ic.IcechunkError as exc:
                raise self._failure(exc) from exc
        return snapshot

    def families_in_store(self) -> list[str]:
        """Families whose repositories exist under the root (whatever the catalog pins)."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        try:
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(f"{root.rstrip('/')}/{FAMILIES_DIR}", detail=False)]
        except FileNotFoundError:
            return []
        from lcarchive.identifiers import OBSERVATION_ID

        return sorted(n for n in names if OBSERVATION_ID.fullmatch(n) and "." not in n)

    def collect_garbage(self, older_than: _dt.datetime, wait: float = 0.0, check_writers: bool = True) -> dict[str, Any]:
        """Expire versions older than ``older_than`` (tags kept) and delete what nothing reaches.

        Safe beside writers, by two guards (:mod:`lcarchive.store.leases`): gc holds the archive
        exclusively, so it refuses (after ``wait`` seconds) while an ingest, compute, tag or
        catalog build runs, and writers wait for it; and nothing younger than
        ``settings().gc_safety_seconds`` (one day) is expired or deleted, whatever
        ``older_than`` says, so the chunks of a writer not yet committed always stay. Every
        family snapshot a kept version pins (the latest, the tagged ones, those newer than the
        bound) is tagged ``pin.<snapshot>`` in the family's repository, so expiring by time
        cannot take it even when the family's branch has moved on; ``pin.`` tags no kept
        version needs any more are deleted, so that what only they held can go. On local disk
        gc refuses to run when a folder of the archive is a symbolic link that leads out of it
        (icechunk would delete through it).

        Parameters
        ----------
        older_than : datetime.datetime
            Expire versions older than this (UTC if naive); capped at now minus the bound.
        wait : float
            Seconds to wait for the writers holding the archive.
        check_writers : bool
            False skips the lease (the age bound alone guards the writers): for tests of the
            bound, never for users.

        Returns
        -------
        dict
            ``versions_expired``, ``snapshots_expired``, ``bytes_deleted``, ``objects_deleted``,
            and ``kept_after`` (the bound applied, a UTC datetime).

        Raises
        ------
        ArchiveBusyError
            Writers held the archive for longer than ``wait``.
        StoreError
            A folder of a local archive leads out of it, or the store failed.
        """
        if self.local:
            self._check_no_link_out()
        guard = collecting(self.url, self.storage_options, self.local, wait) if check_writers else contextlib.nullcontext()
        with guard:
            stats = self._collect(older_than)
        self.refresh()
        return stats

    def _check_no_link_out(self) -> None:
        """Refuse gc when a folder under a local archive's root is a symlink out of the root."""
        root = os.path.realpath(self.url.removeprefix("file://"))
        for here, folders, _ in os.walk(root):
            for name in folders:
                path = os.path.join(here, name)
                if os.path.islink(path):
                    target = os.path.realpath(path)
                    if os.path.commonpath([root, target]) != root:
                        raise StoreError(self.url, f"gc refused: {os.path.relpath(path, root)} is a symbolic link to "
                                                   f"{target}, outside the archive (gc never deletes outside its root)")

    @staticmethod
    def gc_cutoff(older_than: _dt.datetime) -> _dt.datetime:
        """The bound gc applies for ``older_than`` (UTC if naive): never later than now minus
        ``settings().gc_safety_seconds``."""
        bound = _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=settings().gc_safety_seconds)
        return min(older_than if older_than.tzinfo else older_than.replace(tzinfo=_dt.UTC), bound)

    def _collect(self, older_than: _dt.datetime) -> dict[str, Any]:
        cutoff = self.gc_cutoff(older_than)
        catalog = self.catalog_repository()
        stats: dict[str, Any] = {"versions_expired": 0, "snapshots_expired": 0, "bytes_deleted": 0,
                                 "objects_deleted": 0, "kept_after": cutoff}
        try:
            stats["versions_expired"] = len(catalog.expire_snapshots(older_than=cutoff))
            summary = catalog.garbage_collect(cutoff)
            stats["bytes_deleted"] += summary.bytes_deleted
            stats["objects_deleted"] += summary.chunks_deleted + summary.manifests_deleted + summary.snapshots_deleted
            record_repo_info(self.objects(CATALOG_REPO), catalog)  # gc rewrote the repository info
            kept: dict[str, set[str]] = {}
            seen = set()
            for info in catalog.ancestry(branch="main"):
                if info.parent_id is not None:  # the repository's first snapshot holds no catalog yet
                    seen.add(info.id)
            for name in catalog.list_tags():
                seen.add(catalog.lookup_tag(name))
            for snapshot in seen:
                for family, pin in ArchiveStore(self.url, self.storage_options, version=snapshot).pins().items():
                    kept.setdefault(family, set()).add(pin["snapshot"])
            for family in self.families_in_store():
                repo = self.family_repository(family)
                # every family snapshot a kept version pins is tagged pin.<snapshot> (the branch's
                # tip too: a writer may move the branch on while gc runs); stale pin tags go
                pins = kept.get(family, set())
                tags = {t: repo.lookup_tag(t) for t in repo.list_tags()}
                for name, snapshot in tags.items():
                    if name.startswith("pin.") and snapshot not in pins:
                        repo.delete_tag(name)
                tagged = {snapshot for name, snapshot in tags.items() if not name.startswith("pin.") or snapshot in pins}
                for snapshot in pins - tagged:
                    repo.create_tag(f"pin.{snapshot}", snapshot)
                stats["snapshots_expired"] += len(repo.expire_snapshots(older_than=cutoff))
                summary = repo.garbage_collect(cutoff)
                stats["bytes_deleted"] += summary.bytes_deleted
                stats["objects_deleted"] += summary.chunks_deleted + summary.manifests_deleted + summary.snapshots_deleted
                record_repo_info(self.objects(f"{FAMILIES_DIR}/{family}"), repo)
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        return stats
