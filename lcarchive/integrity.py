"""Checking a whole archive (``lcarchive verify``): every object of every repository, and every
stored chunk of the chosen observation groups read and decoded, on this machine's threads or on a
Dask cluster.

Every object of each icechunk repository (the catalog's and each family's, whatever the pins say)
is listed and checked by its kind (:data:`lcarchive.store.digests.OBJECT_KINDS`): snapshots,
manifests and transaction logs against the SHA-256 of their digest record (or, without one,
decoded by icechunk), the pinned snapshots against their pins, the repository info decoded and
its branches, tags and snapshot list compared with the snapshots they name, the digest records
against their own SHA-256. One damaged object is reported and the walk goes on.

Each stored chunk (a shard, or an unsharded chunk; icechunk's manifest lists which exist) is read
through zarr's own codec pipeline, so every inner chunk's CRC32C is checked and every codec
decodes. A damaged object is reported by name: the repository and the chunk's key, with the
reason (a checksum that does not match, a chunk that does not decode, a chunk the manifest names
that the store lacks). The catalog repository's buckets (pins, target index, sky index) are read
the same way (``catalog/<array>/c/<bucket>``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from lcarchive.clients import first_line
from lcarchive.config import WithSettings, carry
from lcarchive.store.models import FamilyPin
from lcarchive.store.repos import network_trouble, storage_for
from lcarchive.zarr_internals import sync

if TYPE_CHECKING:
    from lcarchive.archive import Archive
    from lcarchive.handle import ArchiveReads

__all__ = ["Damage", "IntegrityReport", "check_group", "check_repository", "interrupted", "kind_of_key", "verify_archive"]


@dataclass(frozen=True)
class Damage:
    """One damaged object.

    Attributes
    ----------
    where : str
        The repository (``<root>/observations/<family>``, ``<root>/catalog``) or folder.
    key : str
        The chunk's key in it (``<observation>/<variable>/c/<i>/<j>``).
    reason : str
    kind : str
        What the object is: ``chunk``, ``snapshot``, ``manifest``, ``transaction log``,
        ``repository info``, ``ref``, ``digest record``, ``group``.
    network : bool
        True when the object could not be read (the store did not answer, cut responses off,
        refused access) rather than found damaged: not damage; run verify again.
    """

    where: str
    key: str
    reason: str
    kind: str = "chunk"
    network: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.key} ({self.kind}): {self.reason}"


@dataclass
class IntegrityReport:
    """What :func:`verify_archive` found.

    Attributes
    ----------
    damaged : list of Damage
    chunks : int
        Stored chunks read (shards count once).
    objects : int
        Metadata objects checked (snapshots, manifests, transaction logs, repository info, refs,
        digest records).
    repositories : int
        Repositories walked.
    bytes : int
        Decoded bytes checked.
    observations : list of str
        Groups checked.
    seconds : float
    """

    damaged: list[Damage] = field(default_factory=list)
    chunks: int = 0
    bytes: int = 0
    observations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    objects: int = 0
    repositories: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is damaged."""
        return not self.damaged


def interrupted(exc: BaseException) -> None:
    """Re-raise ``exc`` if it interrupts the process (Ctrl-C, exit); any other failure, icechunk's
    panics on damaged bytes included (``pyo3_runtime.PanicException`` derives from
    ``BaseException``), is the damage of the object being checked."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


def _manifest_reason(exc: BaseException) -> str:
    import re

    text = first_line(str(exc), 160)
    named = re.search(r"manifest_id=([0-9A-Z]{20})", str(exc))
    return (
        f"{'could not be read: network trouble, not damage' if network_trouble(exc) else 'does not decode'}"
        f"{f' (manifests/{named.group(1)})' if named else ''}: {text}"
    )


def _reason(exc: BaseException) -> str:
    text = first_line(str(exc), 160)
    lowered = text.lower()
    if network_trouble(exc):
        return f"could not be read: network trouble, not damage ({text})"
    if "checksum" in lowered or "crc" in lowered:
        return f"does not match its CRC32C ({text})"
    if "not found" in lowered or "nosuchkey" in lowered or "no such file" in lowered or isinstance(exc, FileNotFoundError):
        return f"missing: the manifest names a chunk the store does not have ({text})"
    return f"does not decode ({type(exc).__name__}: {text})"


async def _stored_chunks(session: Any, path: str) -> list[tuple[int, ...]]:
    return [tuple(c) async for c in session.chunk_coordinates(f"/{path}")]


def check_group(store: Any, path: str, where: str) -> tuple[list[Damage], int, int]:
    """Read every stored chunk of every array of one group (a zarr store and path).

    Returns
    -------
    (list of Damage, int, int)
        The damaged chunks, the chunks read, the bytes decoded.
    """
    damaged: list[Damage] = []
    chunks = nbytes = 0
    try:
        group = zarr.open_group(store, path=path or None, mode="r")
        arrays = sorted(group.arrays(), key=lambda item: item[0])
    except BaseException as exc:  # the group's metadata itself (zarr.json) is damaged or gone
        interrupted(exc)
        return [Damage(where, f"{path}/zarr.json", _reason(exc))], 0, 0
    session = getattr(store, "session", None)
    subgroups = sorted(group.groups(), key=lambda item: item[0])
    for name, array in arrays:
        grid = tuple(array.shards or array.chunks)
        key_path = f"{path}/{name}" if path else name
        if session is not None:
            try:
                coords = sync(_stored_chunks(session, key_path))
            except BaseException as exc:  # the array's manifest: named by the repository walk too
                interrupted(exc)
                damaged.append(Damage(where, f"{key_path} (its manifest)", _manifest_reason(exc), "manifest"))
                continue
        else:  # a plain Zarr folder: every chunk of the grid (a missing one reads as the fill value)
            coords = list(np.ndindex(*(max(1, -(-s // g)) for s, g in zip(array.shape, grid, strict=True))))
        for coord in coords:
            region = tuple(slice(c * g, min((c + 1) * g, s)) for c, g, s in zip(coord, grid, array.shape, strict=True))
            try:
                values = array[region]
            except BaseException as exc:  # zarr and icechunk raise many kinds: each is this chunk's damage
                interrupted(exc)
                damaged.append(Damage(where, f"{key_path}/c/{'/'.join(map(str, coord))}", _reason(exc)))
                continue
            chunks += 1
            nbytes += int(getattr(values, "nbytes", 0))
    for name, _ in subgroups:  # the catalog's analyses/<id>
        more, n, b = check_group(store, f"{path}/{name}" if path else name, where)
        damaged.extend(more)
        chunks, nbytes = chunks + n, nbytes + b
    return damaged, chunks, nbytes


def _check_observation(archive: ArchiveReads, observation: str) -> tuple[list[Damage], int, int]:
    """Every stored chunk of one observation group (here, or on a Dask worker given a handle)."""
    folder = archive.group_path(observation).rpartition("/")[0]  # the family's repository (v2), or the root
    where = f"{archive.url}/{folder}" if folder else archive.url
    try:
        store, path = archive.group_store(observation)
    except BaseException as exc:  # its snapshot or the group's metadata: named, and the other groups go on
        interrupted(exc)
        from lcarchive.errors import DamagedObjectError
        from lcarchive.store.repos import network_trouble

        if isinstance(exc, DamagedObjectError) and exc.key.startswith(where):
            key = exc.key[len(where) + 1 :]
            return [Damage(where, key, exc.reason.split(": ", 1)[-1], kind_of_key(key))], 0, 0
        text = first_line(str(exc), 200)
        return (
            [
                Damage(
                    where,
                    observation,
                    f"{'could not be read: network trouble, not damage' if network_trouble(exc) else 'cannot be opened'} "
                    f"({text})",
                    "group",
                    network_trouble(exc),
                )
            ],
            0,
            0,
        )
    return check_group(store, path, where)


def _check_catalog(archive: ArchiveReads) -> tuple[list[Damage], int, int]:
    """Every stored chunk of the catalog repository (pins, target index, sky index, analyses)."""
    try:
        store = archive.catalog_store()
    except BaseException as exc:  # its snapshot, repository info... (each is named by the repository walk)
        interrupted(exc)
        from lcarchive.errors import ArchiveNotFoundError

        if isinstance(exc, ArchiveNotFoundError):
            return [], 0, 0
        damage = _object_damage(f"{archive.url}/catalog", "(the catalog at this version)", exc)
        return [Damage(damage.where, damage.key, damage.reason, "group", damage.network)], 0, 0
    if store is None:  # a folder of plain Zarr groups: its catalog.json and index, read whole
        try:
            archive.catalog, archive.target_index()
        except BaseException as exc:  # DamagedArchiveError names the file
            interrupted(exc)
            return [Damage(archive.url, "catalog.json, index/targets.parquet", _reason(exc))], 0, 0
        return [], 0, 0
    return check_group(store, "", f"{archive.url}/catalog")


def _plain(archive: ArchiveReads) -> bool:
    try:
        return bool(archive.read_only)
    except BaseException as exc:  # no catalog repository: still a v2 archive to walk
        interrupted(exc)
        return False


def verify_archive(
    archive: Archive,
    observations: Iterable[str] | None = None,
    client: Any = None,
    jobs: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> IntegrityReport:
    """Check every object of an archive's repositories, and read and decode every stored chunk
    of some observation groups and of the catalog.

    Parameters
    ----------
    archive : lcarchive.Archive
    observations : iterable of str, optional
        Observation group IDs (release groups included); default every group of the version.
        Given, only their families' repositories (and the catalog's) are walked.
    client : dask.distributed.Client, optional
        Check the groups on this cluster's workers (each opens the archive at the same version);
        default: ``jobs`` threads here.
    jobs : int
        Groups checked at once without a cluster.
    progress : callable, optional
        Called as ``progress(done, total)`` in groups.

    Returns
    -------
    IntegrityReport
        Every damaged object, by repository, key and kind; the walk goes on past each. Damaged
        pins (``families`` buckets) leave the groups unlocated, but every repository under
        ``observations/`` is still walked.

    Raises
    ------
    ObservationNotFoundError
        If an observation asked for is not in this version.
    """
    from concurrent.futures import ThreadPoolExecutor

    from lcarchive.errors import ObservationNotFoundError
    from lcarchive.store.archive_store import family_of

    started = time.perf_counter()
    plain = _plain(archive.handle)
    catalog_damage, catalog_chunks, catalog_bytes = _check_catalog(archive.handle)
    report = IntegrityReport(chunks=catalog_chunks, bytes=catalog_bytes)
    report.damaged.extend(catalog_damage)
    pins_lost = any(d.key.startswith("families/") or d.kind == "group" for d in catalog_damage)
    known: list[str] = []
    pins: dict[str, FamilyPin] = {}
    if not pins_lost:
        try:
            known = archive.group_ids()
            pins = {} if plain else archive.handle.repositories.pins()
        except BaseException as exc:
            interrupted(exc)
            from lcarchive.errors import ArchiveNotFoundError

            if not isinstance(exc, ArchiveNotFoundError):
                report.damaged.append(_object_damage(f"{archive.url}/catalog", "families", exc))
            pins_lost = True
    ids = list(dict.fromkeys(observations)) if observations is not None else list(known)
    if not pins_lost:
        for obs in ids:
            if obs not in known:
                raise ObservationNotFoundError(obs)
    elif observations is None:
        ids = []
    report.observations = ids
    if not plain:  # every object of every repository, whatever the pins say
        store = archive.handle.repositories
        if observations is not None:
            families = sorted({family_of(o) for o in ids})
        else:
            try:
                families = sorted(set(store.families_in_store()) | set(pins))
            except BaseException as exc:
                interrupted(exc)
                report.damaged.append(_object_damage(f"{archive.url}/observations", "(listing)", exc))
                families = sorted(pins)
        places = [("catalog", None), *((f"observations/{f}", pins.get(f)) for f in families)]

        def walk(place: tuple[str, FamilyPin | None]) -> tuple[list[Damage], int]:
            relative, pin = place
            pinned = {pin.snapshot: pin.snapshot_sha256} if pin is not None else {}
            return check_repository(store, relative, pinned)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for damaged, checked in pool.map(carry(walk), places):
                report.damaged.extend(damaged)
                report.objects += checked
        report.repositories = len(places)
    version = archive.version
    if version is None and not plain and not pins_lost:
        try:
            history = archive.history(limit=1)
            version = history[0]["snapshot"] if history else None
        except BaseException as exc:  # the catalog's repository info: named by the walk
            interrupted(exc)
            version = None
    from lcarchive.handle import ReadHandle

    handle = ReadHandle(archive.url, archive.storage_options, version)  # what each group's check reads
    done = 0
    if client is not None and ids:
        futures = [client.submit(WithSettings(_check_observation), handle, obs, pure=False) for obs in ids]
        from dask.distributed import as_completed

        results = []
        for future in as_completed(futures):
            results.append(future.result())
            done += 1
            if progress:
                progress(done, len(ids))
    else:

        def one(obs: str) -> tuple[list[Damage], int, int]:  # a handle of its own per group, as on a cluster
            return _check_observation(dataclasses.replace(handle), obs)

        results = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for result in pool.map(carry(one), ids):
                results.append(result)
                done += 1
                if progress:
                    progress(done, len(ids))
    seen = {(d.where, d.key) for d in report.damaged}
    for damaged, chunks, nbytes in results:
        report.damaged.extend(d for d in damaged if (d.where, d.key) not in seen)  # a snapshot found twice is said once
        seen.update((d.where, d.key) for d in damaged)
        report.chunks += chunks
        report.bytes += nbytes
    report.damaged.sort(key=lambda d: (d.where, d.key))
    report.seconds = time.perf_counter() - started
    return report


# -- every object of a repository -------------------------------------------------------------


def _object_damage(where: str, key: str, exc: BaseException) -> Damage:
    from lcarchive.store.digests import kind_of
    from lcarchive.store.repos import network_trouble

    text = first_line(str(exc), 160)
    if network_trouble(exc):
        return Damage(where, key, f"could not be read: network trouble, not damage ({text})", kind_of(key), True)
    if isinstance(exc, FileNotFoundError):
        return Damage(where, key, f"missing ({text})", kind_of(key))
    return Damage(where, key, f"does not decode ({type(exc).__name__}: {text})", kind_of(key))


def check_repository(store: Any, relative: str, pinned: dict[str, str | None] | None = None) -> tuple[list[Damage], int]:
    """Check every metadata object of one repository of the archive, by its kind.

    Parameters
    ----------
    store : lcarchive.store.ArchiveStore
    relative : str
        The repository under the root (``catalog``, ``observations/<family>``).
    pinned : dict, optional
        Snapshots the archive's version pins, with the SHA-256 their pins record (or None).

    Returns
    -------
    (list of Damage, int)
        The damaged objects and the objects checked. Chunks are checked by :func:`check_group`.
    """
    import icechunk as ic

    from lcarchive.store.digests import DIGESTS_DIR, inspect, latest_update, sha256, unseal

    where = f"{store.url}/{relative}"
    damaged: list[Damage] = []
    pinned = dict(pinned or {})
    objects = store.objects(relative)
    try:
        keys = objects.keys()
    except BaseException as exc:
        interrupted(exc)
        return [_object_damage(where, "(listing)", exc)], 0
    stored = set(keys)
    checked = 0

    def get(key: str) -> bytes | None:
        try:
            return objects.get(key)
        except BaseException as exc:
            interrupted(exc)
            damaged.append(_object_damage(where, key, exc))
            return None

    records: dict[str, dict] = {}
    for key in (k for k in keys if k.startswith(f"{DIGESTS_DIR}/") and not k.rsplit("/", 1)[-1].startswith(".tmp-")):
        data = get(key)
        checked += 1
        if data is None:
            continue
        try:
            record = unseal(data)
        except (ValueError, KeyError, TypeError) as exc:
            damaged.append(
                Damage(
                    where, key, f"does not match its own SHA-256 or does not decode ({first_line(str(exc), 80)})", "digest record"
                )
            )
            continue
        records[key.split("/", 1)[1]] = record
    manifest_digests = {m: d for r in records.values() for m, d in r.get("manifests", {}).items()}
    if "repo" not in stored and not any(k.startswith("refs/") for k in keys):
        damaged.append(
            Damage(
                where,
                "repo",
                "missing: the repository's info object (its branches, tags and snapshot list) is gone",
                "repository info",
            )
        )
    try:
        repo = ic.Repository.open(storage_for(store.url, relative, store.storage_options))
    except BaseException as exc:
        interrupted(exc)
        repo = None
        if "repo" in stored:
            damaged.append(_object_damage(where, "repo", exc))
    good_snapshots: set[str] = set()
    for key in keys:
        kind, _, name = key.partition("/")
        if kind == "snapshots":
            checked += 1
            data = get(key)
            if data is None:
                continue
            expected = pinned.get(name) or records.get(name, {}).get("sha256")
            if expected is not None:
                if sha256(data) != expected:
                    damaged.append(Damage(where, key, "does not match the SHA-256 recorded when it was written", "snapshot"))
                else:
                    good_snapshots.add(name)
                continue
            if repo is not None:
                try:
                    inspect(repo, "snapshot", name)
                    good_snapshots.add(name)
                except BaseException as exc:
                    interrupted(exc)
                    damaged.append(_object_damage(where, key, exc))
        elif kind == "manifests" or kind == "transactions":
            checked += 1
            data = get(key)
            if data is None:
                continue
            expected = manifest_digests.get(name) if kind == "manifests" else records.get(name, {}).get("transaction_sha256")
            if expected is not None:
                if sha256(data) != expected:
                    damaged.append(
                        Damage(where, key, "does not match the SHA-256 recorded when it was written", kind_of_key(key))
                    )
                continue
            if repo is not None:
                try:
                    inspect(repo, "manifest" if kind == "manifests" else "transaction_log", name)
                except BaseException as exc:
                    interrupted(exc)
                    damaged.append(_object_damage(where, key, exc))
        elif kind == "refs":  # store spec v1: one JSON object per branch or tag
            checked += 1
            data = get(key)
            if data is None:
                continue
            try:
                import json

                target = json.loads(data)["snapshot"]
                if f"snapshots/{target}" not in stored:
                    raise ValueError(f"names snapshot {target}, which is not stored")
            except BaseException as exc:
                interrupted(exc)
                damaged.append(
                    Damage(where, key, f"does not decode or names no stored snapshot ({first_line(str(exc), 80)})", "ref")
                )
    if repo is not None and "repo" in stored:  # the repository info: its refs and snapshot list against the snapshots
        checked += 1
        try:
            info = inspect(repo, "repo_info")
        except BaseException as exc:
            interrupted(exc)
            damaged.append(_object_damage(where, "repo", exc))
            info = None
        recorded = records.get("repo")
        if info is not None and recorded is not None and recorded.get("latest_update") == latest_update(info):
            data = get("repo")  # unchanged since lcarchive recorded it: its bytes must match
            if data is not None and sha256(data) != recorded.get("sha256"):
                damaged.append(
                    Damage(where, "repo", "does not match the SHA-256 recorded after its last update", "repository info")
                )
        if info is not None:
            listed = {e.get("id") for e in info.get("snapshots") or []}
            for entry in info.get("snapshots") or []:  # each snapshot's parent as its digest record has it
                sid = entry.get("id")
                parent = records.get(sid, {}).get("parent", entry.get("parent_id"))
                # (an expired parent, gone from the list, is replaced by the repository's first snapshot)
                if sid in records and parent != entry.get("parent_id") and parent in listed:
                    damaged.append(
                        Damage(
                            where,
                            "repo",
                            f"its entry of snapshot {sid} names another parent than the snapshot was committed on",
                            "repository info",
                        )
                    )
            for what in ("branches", "tags"):
                for name, target in sorted((info.get(what) or {}).items()):
                    if f"snapshots/{target}" not in stored:
                        damaged.append(
                            Damage(
                                where,
                                "repo",
                                f"{what[:-2] if what == 'branches' else 'tag'} {name!r} "
                                f"names snapshot {target}, which is not stored",
                                "ref",
                            )
                        )
            for entry in info.get("snapshots") or []:
                sid = entry.get("id")
                if sid not in good_snapshots:
                    if f"snapshots/{sid}" not in stored and sid not in (info.get("branches") or {}).values():
                        continue  # expired by gc: its entry may stay
                    continue
                try:
                    snap = inspect(repo, "snapshot", sid)
                except BaseException as exc:
                    interrupted(exc)
                    continue
                if (
                    snap.get("commit_message") != entry.get("message")
                    or snap.get("metadata") != entry.get("metadata")
                    or str(snap.get("flushed_at")) != str(entry.get("flushed_at"))
                ):
                    damaged.append(
                        Damage(
                            where,
                            "repo",
                            f"its entry of snapshot {sid} differs from the snapshot (message, time or metadata changed)",
                            "repository info",
                        )
                    )
    return damaged, checked


def kind_of_key(key: str) -> str:
    """What the object at ``key`` of a repository is (``snapshot``, ``manifest``...)."""
    from lcarchive.store.digests import kind_of

    return kind_of(key)
