"""Sessions of an archive's repositories: the catalog at a version, families at their pins, commits.

This module owns the sessions: :class:`Sessions` opens the catalog repository's read-only session
at the store's version (the latest, a tag, a branch, a snapshot ID, a date), its snapshot checked
against its digest record beside the first read; opens a family's read-only session at its pin
(kept per process in :data:`~lcarchive.store.repositories.SESSIONS`), or ahead of the pin at the
family's branch tip (:meth:`Sessions.tip_session`, :meth:`Sessions.adopt_session`); and commits a
change to a family or to the catalog in a transaction (redone on conflict,
:func:`lcarchive.store.repos.transaction`) while holding the archive as a writer. What a pin
says is :mod:`lcarchive.store.catalog_reads`'s (:meth:`Sessions.pin` is its hook).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import icechunk as ic

from lcarchive.clients import call_retried
from lcarchive.config import carry
from lcarchive.errors import LcarchiveError, StoreError
from lcarchive.identifiers import check_observation_id
from lcarchive.store.models import FamilyPin
from lcarchive.store.repos import RepositoryMissing, transaction
from lcarchive.store.repositories import (
    CATALOG_REPO,
    CHECKED_SNAPSHOTS,
    CHECKS,
    FAMILIES_DIR,
    SESSIONS,
    Repositories,
    remember,
)

__all__ = ["Sessions"]

_SNAPSHOT_ID = re.compile(r"[0-9A-Z]{20}")
"""What an icechunk snapshot ID looks like (20 characters of Crockford's base 32)."""


_NO_SUCH_VERSION = {
    getattr(ic.ErrorKind, k)
    for k in (
        "REF_NOT_FOUND",
        "TAG_NOT_FOUND",
        "BRANCH_NOT_FOUND",
        "SNAPSHOT_NOT_FOUND",
        "INVALID_SNAPSHOT_ID",
        "INVALID_REF_NAME",
        "OBJECT_NOT_FOUND",
    )
}
"""icechunk's error kinds of a version name that is not of the kind tried."""


class Sessions(Repositories):
    """The sessions of the repositories of the archive at ``url``, read at one version (the
    parameters of :class:`~lcarchive.store.repositories.Repositories`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._catalog_session: ic.Session | None = None
        self._catalog_check: tuple[str, Future, Future] | None = None
        self._sessions: dict[tuple[str, str], ic.Session] = {}
        self._snapshot_bytes_ahead: dict[tuple[str, str], Future] = {}

    def pin(self, family: str) -> FamilyPin | None:
        """One family's pin at this version, or None (:class:`~lcarchive.store.catalog_reads.CatalogReads` reads it)."""
        raise NotImplementedError

    def _start_catalog_check(self, snapshot: str) -> tuple | None:
        """Start the damage check of the catalog's snapshot against its digest record, once per
        process: the record and the snapshot's bytes fetched at once, beside the first catalog
        read (:meth:`_catalog_checked` compares them)."""
        if (self.url, CATALOG_REPO, snapshot) in CHECKED_SNAPSHOTS:
            return None
        return (
            snapshot,
            CHECKS.submit(carry(self.snapshot_digest), CATALOG_REPO, snapshot),
            CHECKS.submit(carry(self._snapshot_bytes), CATALOG_REPO, snapshot),
        )

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
                    raise LcarchiveError(
                        f"{self.url}: no version {self.version or self.as_of} (lcarchive history lists the versions)"
                    ) from None
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
        super().refresh()
        self._catalog_session = None
        self._catalog_check = None

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
            snapshot = pin.snapshot
            expected = pin.snapshot_sha256  # pins written before digests have none
        relative = f"{FAMILIES_DIR}/{check_observation_id(family)}"
        session = self._sessions.get((family, snapshot)) or SESSIONS.get(self._shared_key(relative, snapshot))
        if session is None:
            # the snapshot's bytes fetched while icechunk opens it: no extra round trip
            checked = CHECKS.submit(carry(self.check_snapshot), relative, snapshot, expected)
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
        remember(SESSIONS, self._shared_key(relative, snapshot), session)

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
        if (self.url, relative, snapshot) not in CHECKED_SNAPSHOTS:
            self._snapshot_bytes_ahead[(relative, snapshot)] = CHECKS.submit(carry(self._snapshot_bytes), relative, snapshot)
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
        if pin is None or pin.snapshot != snapshot:
            return False
        relative = f"{FAMILIES_DIR}/{check_observation_id(family)}"
        ahead = self._snapshot_bytes_ahead.pop((relative, snapshot), None)
        expected = pin.snapshot_sha256
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

    def change_family(
        self, family: str, change: Callable[[ic.Session], Any], message: str | Callable[[Any], str], metadata: dict | None = None
    ) -> tuple[str | None, Any]:
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

    def change_catalog(
        self, change: Callable[[ic.Session], Any], message: str | Callable[[Any], str], metadata: dict | None = None
    ) -> tuple[str | None, Any]:
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
