"""SHA-256 digests of the metadata objects icechunk writes, so that their damage is found.

icechunk (2.3) writes its snapshots, manifests and transaction logs as zstd frames without a
content checksum: a flipped bit either fails to decode or, in about one case in six (measured:
8 of 50 flips in a snapshot, 3 of 40 in manifests), decodes to other values, attributes or chunk
references without any error. Chunks carry their own CRC32C (the ``crc32c`` codec); these
objects do not.

After each commit lcarchive reads back the new snapshot's objects once and writes a **digest
record** beside the repository's own objects, ``<repository>/lcarchive-digests/<snapshot id>``:

.. code-block:: json

    {"record": {"snapshot": "<id>", "parent": "<its parent's id>", "sha256": "<of the snapshot object's bytes>",
                "transaction_sha256": "<of its transaction log>",
                "manifests": {"<manifest id>": "<sha256>"}},
     "sha256": "<of the canonical JSON of record>"}

``manifests`` lists the manifests this snapshot wrote (not those its parent has: they are in an
older record), so a record's size is that of its commit, not of the repository.

The outer SHA-256 tells a damaged record from a damaged object. The repository info object
(``repo``: branches, tags, the snapshot list, icechunk's log of updates), which every commit
rewrites, gets ``lcarchive-digests/repo``: its SHA-256 with the newest entry of its update log
when lcarchive last changed it; its bytes must match while that entry is still the newest (an
update by another tool, or ``lcarchive gc``, leaves the semantic checks of ``verify``). A family's
pin also carries its snapshot's SHA-256
(``snapshot_sha256``, in a CRC32C-checked catalog bucket), which a reader checks when it opens the
family at the pin (:mod:`lcarchive.store.archive_store`).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lcarchive.config import carry, settings
from lcarchive.zarr_internals import sync

__all__ = [
    "DIGESTS_DIR",
    "OBJECT_KINDS",
    "REPO_RECORD",
    "Objects",
    "all_records",
    "inspect",
    "kind_of",
    "latest_update",
    "read_record",
    "record_digests",
    "record_repo_info",
    "sha256",
    "unseal",
]

DIGESTS_DIR = "lcarchive-digests"
"""Folder of the digest records in each repository."""

REPO_RECORD = f"{DIGESTS_DIR}/repo"
"""The digest record of the repository info object as lcarchive last changed it."""

OBJECT_KINDS = {
    "snapshots": "snapshot",
    "manifests": "manifest",
    "chunks": "chunk",
    "transactions": "transaction log",
    "refs": "ref",
    "repo": "repository info",
    "config.yaml": "repository config",
    "overwritten": "repository info backup",
    DIGESTS_DIR: "digest record",
}
"""The objects of an icechunk repository by the first part of their key, and what they are."""


def inspect(repo: Any, what: str, *args: str) -> dict:
    """icechunk's ``Repository.inspect_<what>`` (``snapshot``, ``manifest``, ``transaction_log``,
    ``repo_info``): the object decoded, as a dict.

    Run as its ``_async`` form on zarr's event loop: the blocking form holds the GIL while it
    waits for the store, which starves a store served from the same process (moto in tests).
    """

    return sync(getattr(repo, f"inspect_{what}_async")(*args))


def sha256(data: bytes) -> str:
    """The SHA-256 of some bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def kind_of(key: str) -> str:
    """What the object at ``key`` (relative to its repository) is, e.g. ``"snapshot"``."""
    return OBJECT_KINDS.get(key.split("/", 1)[0], "unknown object")


class Objects:
    """The stored objects of one repository, read and written as bytes (never decoded).

    Parameters
    ----------
    url : str
        The repository's URL (``<root>/observations/<family>``, ``<root>/catalog``).
    storage_options : dict, optional
        fsspec-style options.
    """

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        import fsspec

        from lcarchive.clients import with_defaults

        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.path = fsspec.core.url_to_fs(self.url, **with_defaults(self.url, self.storage_options))
        self.path = self.path.rstrip("/")

    def get(self, key: str) -> bytes:
        """One object's bytes (one GET on an object store).

        Raises
        ------
        FileNotFoundError
            No such object.
        """
        from lcarchive.clients import read_bytes

        return read_bytes(self.fs, self.url, f"{self.path}/{key}", self.storage_options)

    def put(self, key: str, data: bytes) -> None:
        """Write one object, whole or not at all (on local disk: a temporary file renamed, so that
        a writer killed mid-way leaves no cut-off record; an object store's PUT is atomic)."""
        if "://" not in self.url or self.url.startswith("file://"):
            import os
            import tempfile

            folder = os.path.join(self.path, key.rpartition("/")[0])
            os.makedirs(folder, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, os.path.join(self.path, key))
            except BaseException:
                if os.path.exists(temporary):
                    os.unlink(temporary)
                raise
            return
        self.fs.pipe_file(f"{self.path}/{key}", data)

    def keys(self) -> list[str]:
        """Every object's key, relative to the repository, sorted."""
        found = self.fs.find(self.path)
        return sorted(p[len(self.path) + 1 :] for p in found if p.startswith(self.path + "/"))


def _seal(record: dict) -> bytes:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return json.dumps({"record": record, "sha256": sha256(body.encode())}, sort_keys=True, separators=(",", ":")).encode()


def unseal(data: bytes) -> dict:
    """The record of a digest record object's bytes.

    Raises
    ------
    ValueError
        If the record is damaged (no JSON, or its own SHA-256 does not match).
    """
    outer = json.loads(data)
    record = outer["record"]
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if sha256(body.encode()) != outer["sha256"]:
        raise ValueError("the digest record does not match its own SHA-256")
    return record


def read_record(objects: Objects, snapshot: str) -> dict | None:
    """The digest record of a snapshot, or None if none was written (a repository written before
    digests existed, or a writer killed between its commit and the record).

    Raises
    ------
    ValueError
        If the record is damaged.
    """
    try:
        data = objects.get(f"{DIGESTS_DIR}/{snapshot}")
    except FileNotFoundError:
        return None
    return unseal(data)


def record_digests(objects: Objects, repo: Any, snapshot: str) -> dict:
    """Read back a snapshot just committed and write its digest record; return the record.

    Parameters
    ----------
    objects : Objects
        The repository's objects.
    repo : icechunk.Repository
        The same repository, opened.
    snapshot : str
        The snapshot ID.
    """

    info = sync(repo.lookup_snapshot_async(snapshot))  # the async forms: see inspect()
    inherited: set[str] = set()  # manifests the parent's snapshot has: recorded with it or before it
    if info.parent_id is not None:
        inherited = {m.id for m in sync(repo.list_manifest_files_async(info.parent_id))}
    fresh = [m.id for m in sync(repo.list_manifest_files_async(snapshot)) if m.id not in inherited]

    def digest(key: str) -> str | None:
        try:
            return sha256(objects.get(key))
        except FileNotFoundError:
            return None

    keys = [f"snapshots/{snapshot}", f"transactions/{snapshot}", *(f"manifests/{m}" for m in fresh)]
    with ThreadPoolExecutor(max_workers=settings().digest_jobs, thread_name_prefix="lcarchive-digest") as pool:
        digests = dict(zip(keys, pool.map(carry(digest), keys), strict=True))
    if info.parent_id is not None and not inherited:  # the repository's first snapshot (Repository.create's)
        try:
            if (
                read_record(objects, info.parent_id) is None
                and sync(repo.lookup_snapshot_async(info.parent_id)).parent_id is None
            ):
                record_digests(objects, repo, info.parent_id)
        except ValueError:
            pass
    record = {
        "snapshot": snapshot,
        "parent": info.parent_id,
        "sha256": digests[f"snapshots/{snapshot}"],
        "transaction_sha256": digests[f"transactions/{snapshot}"],
        "manifests": {m: digests[f"manifests/{m}"] for m in fresh if digests[f"manifests/{m}"] is not None},
    }
    objects.put(f"{DIGESTS_DIR}/{snapshot}", _seal(record))
    return record


def latest_update(info: dict) -> str:
    """The newest entry of a repository info's update log (``inspect_repo_info()``), as text."""
    updates = info.get("latest_updates") or [None]
    return json.dumps(updates[0], sort_keys=True, default=str)


def record_repo_info(objects: Objects, repo: Any) -> None:
    """Record the SHA-256 of the repository info object as it is now (after a commit, a tag, a
    reset), with the newest entry of its update log; nothing when another writer changed it
    while it was read."""
    before = latest_update(inspect(repo, "repo_info"))
    try:
        data = objects.get("repo")
    except FileNotFoundError:  # a repository of store spec v1 (refs/): nothing to record
        return
    if latest_update(inspect(repo, "repo_info")) == before:
        objects.put(REPO_RECORD, _seal({"sha256": sha256(data), "latest_update": before}))


def all_records(objects: Objects) -> dict[str, dict]:
    """Every sound digest record of a repository, by snapshot ID (damaged ones left out:
    ``verify`` names them)."""
    out = {}
    for key in objects.keys():  # noqa: SIM118 - Objects is not a mapping: it has keys(), no __iter__
        if key.startswith(f"{DIGESTS_DIR}/") and key != REPO_RECORD:
            try:
                out[key.split("/", 1)[1]] = unseal(objects.get(key))
            except (ValueError, KeyError, TypeError, FileNotFoundError):
                continue
    return out
