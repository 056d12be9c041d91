"""The archive's versions: its history, tags, and the clean-up of what no kept version reaches.

This module owns the versions of an archive (the catalog repository's snapshots on ``main``):
:class:`Versions` lists them (:meth:`Versions.history`), tags one together with the families'
snapshots it pins (:meth:`Versions.tag`), and expires old versions and deletes what nothing
kept reaches (:meth:`Versions.collect_garbage`), guarded against writers by a lease and an age
bound (:mod:`lcarchive.store.leases`). The digest records of snapshots are written and checked
by :mod:`lcarchive.store.repositories`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from typing import Any

import icechunk as ic

from lcarchive.config import settings
from lcarchive.errors import LcarchiveError, StoreError
from lcarchive.store.catalog_reads import CatalogReads
from lcarchive.store.digests import record_repo_info
from lcarchive.store.leases import collecting
from lcarchive.store.repositories import CATALOG_REPO, FAMILIES_DIR

__all__ = ["Versions"]


class Versions(CatalogReads):
    """The versions of the archive at ``url`` (the parameters of
    :class:`~lcarchive.store.repositories.Repositories`)."""

    def at_version(self, snapshot: str) -> CatalogReads:
        """A handle of the same archive at another version (a snapshot of the catalog repository)."""
        return type(self)(self.url, self.storage_options, version=snapshot)

    def history(self, limit: int | None = None) -> list[dict]:
        """The archive's versions, newest first: ``{"snapshot", "time", "message", "metadata", "tags"}``."""
        repo = self.catalog_repository()
        tags: dict[str, list[str]] = {}
        for name in repo.list_tags():
            tags.setdefault(repo.lookup_tag(name), []).append(name)
        out = []
        for info in repo.ancestry(branch="main"):
            out.append(
                {
                    "snapshot": info.id,
                    "time": info.written_at,
                    "message": info.message,
                    "metadata": dict(info.metadata or {}),
                    "tags": sorted(tags.get(info.id, [])),
                }
            )
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
            at = self.at_version(snapshot)
            try:
                for family, pin in at.pins().items():
                    family_repo = self.family_repository(family)
                    if name not in family_repo.list_tags():
                        family_repo.create_tag(name, snapshot_id=pin.snapshot)
                        record_repo_info(self.objects(f"{FAMILIES_DIR}/{family}"), family_repo)
                repo.create_tag(name, snapshot_id=snapshot)
                record_repo_info(self.objects(CATALOG_REPO), repo)
            except ic.AlreadyExistsError:
                raise LcarchiveError(f"{self.url}: tag {name!r} exists already") from None
            except ic.IcechunkError as exc:
                raise self._failure(exc) from exc
        return snapshot

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
                        raise StoreError(
                            self.url,
                            f"gc refused: {os.path.relpath(path, root)} is a symbolic link to "
                            f"{target}, outside the archive (gc never deletes outside its root)",
                        )

    @staticmethod
    def gc_cutoff(older_than: _dt.datetime) -> _dt.datetime:
        """The bound gc applies for ``older_than`` (UTC if naive): never later than now minus
        ``settings().gc_safety_seconds``."""
        bound = _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=settings().gc_safety_seconds)
        return min(older_than if older_than.tzinfo else older_than.replace(tzinfo=_dt.UTC), bound)

    def _collect(self, older_than: _dt.datetime) -> dict[str, Any]:
        cutoff = self.gc_cutoff(older_than)
        catalog = self.catalog_repository()
        stats: dict[str, Any] = {
            "versions_expired": 0,
            "snapshots_expired": 0,
            "bytes_deleted": 0,
            "objects_deleted": 0,
            "kept_after": cutoff,
        }
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
                for family, pin in self.at_version(snapshot).pins().items():
                    kept.setdefault(family, set()).add(pin.snapshot)
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
