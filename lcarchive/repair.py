"""Rolling a damaged repository back to its newest undamaged version (``lcarchive rollback``).

A family's repository is rolled back by finding, newest first along its branch ``main``, the
first snapshot whose objects are all sound (the snapshot and its manifests against their digest
records, or decoded where there is none; every stored chunk of its groups read and decoded),
resetting ``main`` to it and pinning it in one catalog commit (its groups re-indexed from it).
The catalog repository is rolled back by resetting its ``main`` to its newest sound version.
What the rollback loses is said: the commits above the version kept, and for a family the light
curves (target, observation group) the archive's version showed that the kept snapshot lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zarr

from lcarchive.errors import LcarchiveError
from lcarchive.integrity import Damage, check_group, interrupted, kind_of_key
from lcarchive.store.digests import all_records, inspect, read_record, record_repo_info, sha256
from lcarchive.zarr_internals import sync

if TYPE_CHECKING:
    from lcarchive.archive import Archive

__all__ = ["RollbackReport", "rollback_catalog", "rollback_family", "snapshot_damage"]


@dataclass
class RollbackReport:
    """What a rollback did (or, with ``dry_run``, would do).

    Attributes
    ----------
    repository : str
        The repository's URL.
    head : str
        The snapshot ``main`` pointed at before.
    kept : str or None
        The newest undamaged snapshot, which ``main`` now points at (None: none was found).
    damage : list of Damage
        Why each newer snapshot was passed over.
    lost_commits : list of dict
        The commits above ``kept`` (``snapshot``, ``time``, ``message``), newest first.
    lost_light_curves : list of (int, str)
        (target, observation group) the archive's version showed that ``kept`` does not hold
        (a family's rollback only).
    version : str or None
        The new archive version (a family's rollback: its catalog commit).
    quarantined : list of str
        The damaged objects moved aside to ``lcarchive-damaged/<key>`` of the repository (no
        version kept reaches them; kept for inspection, never walked by verify).
    """

    repository: str
    head: str
    kept: str | None = None
    damage: list[Damage] = field(default_factory=list)
    lost_commits: list[dict] = field(default_factory=list)
    lost_light_curves: list[tuple[int, str]] = field(default_factory=list)
    version: str | None = None
    quarantined: list[str] = field(default_factory=list)


QUARANTINE = "lcarchive-damaged"
"""Folder of a repository where a rollback moves the damaged objects it passed over."""


def _quarantine(store: Any, relative: str, report: RollbackReport) -> None:
    objects = store.objects(relative)
    for damage in report.damage:
        if damage.kind not in ("snapshot", "manifest", "chunk", "transaction log") or "/c/" in damage.key:
            continue  # a chunk is named by its array's key: its object stays (no version kept reaches it)
        try:
            data = objects.get(damage.key)
        except FileNotFoundError:
            continue
        objects.put(f"{QUARANTINE}/{damage.key}", data)
        objects.fs.rm_file(f"{objects.path}/{damage.key}")
        report.quarantined.append(damage.key)


def snapshot_damage(store: Any, relative: str, repo: Any, snapshot: str, records: dict[str, dict] | None = None) -> list[Damage]:
    """The damaged objects of one snapshot of a repository: the snapshot, its manifests and its
    groups' stored chunks (empty when it is sound).

    Parameters
    ----------
    store : lcarchive.store.ArchiveStore
    relative : str
        The repository under the archive's root.
    repo : icechunk.Repository
    snapshot : str
    records : dict, optional
        The repository's digest records by snapshot (:func:`lcarchive.store.digests.all_records`);
        read when not given.
    """
    where = f"{store.url}/{relative}"
    objects = store.objects(relative)
    try:
        record = read_record(objects, snapshot)
    except ValueError as exc:
        return [Damage(where, f"lcarchive-digests/{snapshot}", str(exc), "digest record")]
    if records is None:
        records = all_records(objects)
    manifest_digests = {m: d for r in records.values() for m, d in r.get("manifests", {}).items()}
    key = f"snapshots/{snapshot}"
    try:
        data = objects.get(key)
    except FileNotFoundError:
        return [Damage(where, key, "missing", "snapshot")]
    if record is not None and sha256(data) != record["sha256"]:
        return [Damage(where, key, "does not match the SHA-256 recorded when it was written", "snapshot")]
    try:
        manifests = [m.id for m in sync(repo.list_manifest_files_async(snapshot))]
    except BaseException as exc:
        interrupted(exc)
        return [Damage(where, key, f"does not decode ({str(exc).splitlines()[0][:120]})", "snapshot")]
    damage = []
    for manifest in manifests:
        mkey = f"manifests/{manifest}"
        expected = manifest_digests.get(manifest)
        try:
            if expected is not None:
                if sha256(objects.get(mkey)) != expected:
                    damage.append(Damage(where, mkey, "does not match the SHA-256 recorded when it was written", "manifest"))
            else:
                inspect(repo, "manifest", manifest)
        except BaseException as exc:
            interrupted(exc)
            damage.append(Damage(where, mkey, f"does not decode ({str(exc).splitlines()[0][:120]})", kind_of_key(mkey)))
    if damage:
        return damage
    session = repo.readonly_session(snapshot_id=snapshot)
    try:
        root = zarr.open_group(session.store, mode="r")
        groups = sorted(name for name, _ in root.groups())
        found, _, _ = check_group(session.store, "", where) if relative == "catalog" else ([], 0, 0)
    except BaseException as exc:
        interrupted(exc)
        return [Damage(where, key, f"does not decode ({str(exc).splitlines()[0][:120]})", "snapshot")]
    damage.extend(found)
    if relative != "catalog":
        for group in groups:
            found, _, _ = check_group(session.store, group, where)
            damage.extend(found)
    return damage


def _walk_back(store: Any, relative: str, repo: Any, report: RollbackReport) -> list[Any]:
    """Find the newest sound snapshot along ``main``; fill ``kept``, ``damage`` and
    ``lost_commits``; return the ancestry (newest first)."""

    async def ancestry() -> list[Any]:
        return [info async for info in repo.async_ancestry(branch="main")]

    history = sync(ancestry())
    records = all_records(store.objects(relative))
    for info in history:
        found = snapshot_damage(store, relative, repo, info.id, records)
        if not found:
            report.kept = info.id
            break
        report.damage.extend(found)
        report.lost_commits.append({"snapshot": info.id, "time": info.written_at, "message": info.message})
    return history


def _repository(open_: Any, url: str) -> Any:
    try:
        return open_()
    except BaseException as exc:
        interrupted(exc)
        raise LcarchiveError(
            f"{url}: its repository info cannot be read ({str(exc).splitlines()[0][:160]}): "
            "rollback needs it (lcarchive verify names the damage)"
        ) from exc


def rollback_family(archive: Archive, family: str, dry_run: bool = False) -> RollbackReport:
    """Roll a family's repository back to its newest undamaged snapshot and pin it.

    Parameters
    ----------
    archive : lcarchive.Archive
        At its latest version.
    family : str
        The family (``tess-spoc-2min-s0001``).
    dry_run : bool
        Only say what would be lost.

    Returns
    -------
    RollbackReport

    Raises
    ------
    LcarchiveError
        If the family has no repository, its repository info is damaged, or no snapshot of it
        is sound.
    """
    from lcarchive.identifiers import check_observation_id
    from lcarchive.ingest import family_pin, reindex_families

    store = archive.handle.repositories
    family = check_observation_id(family)
    if family not in store.families_in_store():
        raise LcarchiveError(f"{store.url}: no family {family!r} (no repository observations/{family})")
    relative = f"observations/{family}"
    url = f"{store.url}/{relative}"
    repo = _repository(lambda: store.family_repository(family), url)
    head = repo.lookup_branch("main")
    report = RollbackReport(url, head)
    _walk_back(store, relative, repo, report)
    if report.kept is None:
        raise LcarchiveError(
            f"{url}: no snapshot of it is undamaged ({len(report.damage)} damaged object(s)); re-ingest its files"
        )
    pin = store.pins().get(family)
    if pin is not None:
        old = store.index(None)  # every bucket: a rollback is rare, and its report must be whole
        old = old[old["observation"].isin(list(pin.observations))]
        _, new = family_pin(store, family, report.kept)
        kept = set(zip(new["target"].tolist(), new["observation"].tolist(), strict=True))
        report.lost_light_curves = sorted(
            {(int(t), str(o)) for t, o in zip(old["target"], old["observation"], strict=True) if (t, o) not in kept}
        )
    if dry_run or report.kept == head:
        return report
    with store.writing("rollback"):  # a writer like any other: gc does not run beside it
        sync(repo.reset_branch_async("main", report.kept, from_snapshot_id=head))
        record_repo_info(store.objects(relative), repo)
        _quarantine(store, relative, report)
        lost = f"; lost {len(report.lost_commits)} commit(s)" if report.lost_commits else ""
        report.version = reindex_families(store, [family], f"rollback {relative} to {report.kept}{lost}")
    archive.refresh()
    return report


def rollback_catalog(archive: Archive, dry_run: bool = False) -> RollbackReport:
    """Roll the catalog repository back to its newest undamaged version (reset ``main``).

    The families keep their snapshots: those committed after the kept version are pinned again
    by ``lcarchive catalog build``.

    Returns
    -------
    RollbackReport

    Raises
    ------
    LcarchiveError
        If the catalog's repository info is damaged, or no version is sound.
    """
    store = archive.handle.repositories
    url = f"{store.url}/catalog"
    repo = _repository(store.catalog_repository, url)
    head = repo.lookup_branch("main")
    report = RollbackReport(url, head)
    _walk_back(store, "catalog", repo, report)
    if report.kept is None:
        raise LcarchiveError(f"{url}: no version of it is undamaged; rebuild it with lcarchive catalog build")
    if not dry_run and report.kept != head:
        with store.writing("rollback"):
            sync(repo.reset_branch_async("main", report.kept, from_snapshot_id=head))
            record_repo_info(store.objects("catalog"), repo)
            _quarantine(store, "catalog", report)
        store.refresh()
        archive.refresh()
    report.version = report.kept
    return report
