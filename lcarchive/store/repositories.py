"""Repositories of an archive (format v2): where they are, opening and creating them, their digests.

This module owns the archive's icechunk repositories as objects in a store: :class:`Repositories`
opens the catalog repository and the families' repositories (each once per process, kept in
:data:`REPOS`), creates the catalog with its root group and bucket arrays, lists the families
stored, holds the archive as a writer (:mod:`lcarchive.store.leases`), and writes and checks
the digest record of each snapshot (:mod:`lcarchive.store.digests`). Sessions on these
repositories are :mod:`lcarchive.store.sessions`'s; the process-wide caches (:data:`REPOS`,
:data:`SESSIONS`, :data:`CHECKED_SNAPSHOTS`) are here, so that :func:`clear_caches` forgets them all.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import icechunk as ic
import zarr

from lcarchive.config import carry, settings
from lcarchive.errors import ArchiveNotFoundError, DamagedObjectError, StoreError
from lcarchive.identifiers import check_observation_id
from lcarchive.store.buckets import FAMILY_BUCKETS, TARGET_BUCKETS, BucketCounts, create_catalog_arrays
from lcarchive.store.digests import DIGESTS_DIR, Objects, read_record, record_digests, record_repo_info, sha256
from lcarchive.store.leases import writing
from lcarchive.store.repos import RepositoryMissing, open_repository, storage_for, store_failure, transaction

__all__ = [
    "CATALOG_REPO",
    "CHECKED_SNAPSHOTS",
    "CHECKS",
    "DAMAGED_SNAPSHOT",
    "FAMILIES_DIR",
    "FORMAT_VERSION",
    "REPOS",
    "SESSIONS",
    "Repositories",
    "clear_caches",
    "family_of",
    "remember",
]

FORMAT_VERSION = "2"
CATALOG_REPO = "catalog"
FAMILIES_DIR = "observations"

DAMAGED_SNAPSHOT = (
    "snapshot: does not match the SHA-256 recorded when it was written (damaged in the store, not "
    "a network failure); lcarchive verify lists every damaged object, lcarchive rollback returns to "
    "the newest undamaged version"
)
CHECKED_SNAPSHOTS: set[tuple[str, str, str]] = set()
"""Snapshots whose bytes matched their digest in this process (checked once each)."""


SESSIONS: dict[tuple[str, str, str, str], ic.Session] = {}
"""Read-only sessions at a snapshot, by (archive URL, storage options, repository, snapshot),
shared by every handle of this process: a snapshot never changes, so a second
``open_archive`` of the same URL reads a family it has read before without opening it again
(icechunk keeps the snapshot and manifests it fetched with the session)."""
REPOS: dict[tuple[str, str, str], ic.Repository] = {}
"""Opened repositories, by (archive URL, storage options, repository), shared by every handle
of this process: opening one is a round trip (its config, branch and info objects); what
changes (branches, tags) is read again by every session, commit and lookup all the same, and
icechunk keeps the snapshots and manifests it fetched for the next session at the same one."""
CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lcarchive-check")
"""Threads of the damage checks of snapshots, run beside the reads that need their results."""


def remember(cache: dict, key: tuple, value: Any) -> None:
    """Keep ``value`` in a process-wide cache of at most ``Settings.sessions_kept`` entries (the
    oldest goes first)."""
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
    CHECKED_SNAPSHOTS.clear()
    SESSIONS.clear()
    REPOS.clear()
    forget_readers()


def family_of(observation: str) -> str:
    """The family of an observation ID: itself without its release label."""
    return check_observation_id(observation).split(".", 1)[0]


class Repositories:
    """The icechunk repositories of the archive at ``url``.

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

    def __init__(
        self, url: str, storage_options: dict | None = None, version: str | None = None, as_of: _dt.datetime | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.local = "://" not in url or url.startswith("file://")
        self.version = version
        self.as_of = as_of if as_of is None or as_of.tzinfo else as_of.replace(tzinfo=_dt.UTC)
        self._repos: dict[str, ic.Repository] = {}
        self._digests: dict[tuple[str, str], str | None] = {}
        self._from_cache: set[str] = set()
        self._place: str | None = None

    def refresh(self) -> None:
        """Forget what was read: the next read sees the latest version (of a store at the latest)."""

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
        (``REPOS``), or opened now; ``create`` and ``fresh`` open it now unless this handle
        did (a writer that may create it, or must know that it exists: another handle's may
        be of an archive deleted since)."""
        if (create or fresh) and relative in self._from_cache:
            self._repos.pop(relative, None)
            self._from_cache.discard(relative)
        repo = self._repos.get(relative)
        if repo is not None:
            return repo
        shared = (self.url, self.place(), relative)
        if not (create or fresh) and (repo := REPOS.get(shared)) is not None:
            self._from_cache.add(relative)
            self._repos[relative] = repo
            return repo
        REPOS.pop(shared, None)
        try:
            repo = open_repository(
                storage_for(self.url, relative, self.storage_options), create=create, inline=relative != CATALOG_REPO
            )
        except RepositoryMissing:
            raise
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        remember(REPOS, shared, repo)
        self._repos[relative] = repo
        return repo

    def _stale(self, relative: str, exc: BaseException) -> bool:
        """True (and the repository forgotten) when a repository this process opened before
        was not found now: the archive was deleted (and perhaps made anew) since. The caller
        then opens it afresh, once, and says what is there now."""
        if relative not in self._from_cache or not isinstance(exc, ic.IcechunkError):
            return False
        kind = getattr(exc, "kind", None)
        if (
            kind
            not in (
                ic.ErrorKind.OBJECT_NOT_FOUND,
                ic.ErrorKind.REPOSITORY_NOT_FOUND,
                ic.ErrorKind.REF_NOT_FOUND,
                ic.ErrorKind.BRANCH_NOT_FOUND,
                ic.ErrorKind.SNAPSHOT_NOT_FOUND,
            )
            and "not found" not in str(exc).lower()
        ):
            return False
        self._from_cache.discard(relative)
        self._repos.pop(relative, None)
        REPOS.pop((self.url, self.place(), relative), None)
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
        if expected is None or (self.url, relative, snapshot) in CHECKED_SNAPSHOTS:
            return
        self._compare(relative, snapshot, expected, self._snapshot_bytes(relative, snapshot))

    def _snapshot_bytes(self, relative: str, snapshot: str) -> bytes:
        from lcarchive.clients import store_errors

        try:
            with store_errors(self.url, bool(self.storage_options.get("anon"))):
                return self.objects(relative).get(f"snapshots/{snapshot}")
        except FileNotFoundError:
            raise DamagedObjectError(
                f"{self.url}/{relative}/snapshots/{snapshot}", "snapshot: missing (the archive's version names it)"
            ) from None

    def _compare(self, relative: str, snapshot: str, expected: str | None, data: bytes) -> None:
        if expected is not None and sha256(data) != expected:
            raise DamagedObjectError(f"{self.url}/{relative}/snapshots/{snapshot}", DAMAGED_SNAPSHOT)
        CHECKED_SNAPSHOTS.add((self.url, relative, snapshot))

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
                raise ArchiveNotFoundError(
                    self.url, f"an archive of store format v1: convert it with lcarchive migrate {self.url} NEW"
                ) from None
            import fsspec

            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
            reason = missing_reason(fs, self.url, root)
            families = self.families_in_store() if reason.startswith("no lcarchive archive") else []
            if families:
                reason = (
                    f"the catalog repository's info object ({CATALOG_REPO}/repo) is missing though {len(families)} "
                    f"observation families are stored: the archive is damaged (lcarchive verify names what is "
                    "damaged)"
                )
            raise ArchiveNotFoundError(self.url, reason) from None

    def create(self) -> None:
        """Make the catalog repository with its root group and arrays, if it does not exist (safe when
        several writers race to create it)."""
        repo = self._repo(CATALOG_REPO, create=True)

        def setup(session: ic.Session) -> bool | None:
            root = zarr.open_group(session.store, mode="a", zarr_format=3)
            if "lcarchive_format_version" in root.attrs:
                return None
            root.attrs["lcarchive_format_version"] = FORMAT_VERSION
            create_catalog_arrays(root, BucketCounts(FAMILY_BUCKETS, TARGET_BUCKETS))
            return True

        try:
            snapshot, _ = transaction(repo, setup, "archive created", lock_path=self._lock(CATALOG_REPO))
            self.record_digests(CATALOG_REPO, snapshot)
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        self.refresh()

    def family_repository(self, family: str, create: bool = False) -> ic.Repository:
        """The repository of an observation family.

        Raises
        ------
        RepositoryMissing
            If it does not exist (and ``create`` is False).
        """
        return self._repo(f"{FAMILIES_DIR}/{check_observation_id(family)}", create=create)

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

    def writing(self, kind: str = "writer") -> contextlib.AbstractContextManager[None]:
        """Hold the archive as a writer (``kind``: ``ingest``, ``compute``...) for a block, so that
        ``lcarchive gc`` does not run beside it (:mod:`lcarchive.store.leases`); waits while gc
        runs. Every commit holds it; an ingest holds it from its first write to its last commit."""
        return writing(self.url, self.storage_options, self.local, kind)
