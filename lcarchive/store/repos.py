"""icechunk repositories of an archive: where they live, how they are opened, and commits that
never lose an update.

An archive at a root URL is made of icechunk repositories (format v2, ``docs/format.md``):
``catalog/`` (the archive's catalog and history) and ``observations/<family>/`` (one per
observation family: an observation and its release groups). :func:`storage_for` makes the
icechunk ``Storage`` of a repository under the root (a local folder; ``s3://bucket/prefix`` with
the endpoint and credentials of the standard AWS variables or fsspec-style options; ``gs://``,
``az://``), :func:`transaction` runs a change and commits it, redoing it on a fresh session when
another writer committed first (never resolving a chunk conflict by keeping one side), and
:func:`store_failure` turns icechunk's errors into lcarchive's one-line store errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import icechunk as ic

from lcarchive.config import settings
from lcarchive.errors import StoreAccessError, StoreError

__all__ = [
    "RepositoryMissing",
    "damage_in",
    "failures",
    "network_trouble",
    "open_repository",
    "quiet_logs",
    "repository_config",
    "storage_for",
    "store_failure",
    "transaction",
]


def quiet_logs() -> None:
    """Keep icechunk's log lines (Rust tracing, to stderr, in terminal colours) off the user's
    terminal: lcarchive reports a failure in its own one line. ``ICECHUNK_LOG`` (icechunk's
    filter directives, e.g. ``icechunk=debug``) is honoured when set; else ``LCARCHIVE_DEBUG``
    lets icechunk's warnings and errors through; else nothing is logged."""
    if os.environ.get("ICECHUNK_LOG"):
        ic.set_logs_filter(None)  # the user's directives
    elif os.environ.get("LCARCHIVE_DEBUG"):
        ic.set_logs_filter("warn")
    else:
        ic.set_logs_filter("off")


quiet_logs()


class RepositoryMissing(LookupError):
    """No icechunk repository at a place of the archive (its bucket exists)."""


def _s3_options(url: str, storage_options: dict) -> dict[str, Any]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client_kwargs = storage_options.get("client_kwargs") or {}
    endpoint = storage_options.get("endpoint_url") or client_kwargs.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {"bucket": bucket, "prefix": prefix.strip("/") or None}
    if endpoint:
        options.update(endpoint_url=endpoint, allow_http=endpoint.startswith("http://"), force_path_style=True)
    region = client_kwargs.get("region_name") or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    options["region"] = region or "us-east-1"
    if storage_options.get("anon"):
        options["anonymous"] = True
    elif storage_options.get("key"):
        options.update(
            access_key_id=storage_options["key"],
            secret_access_key=storage_options.get("secret", ""),
            session_token=storage_options.get("token"),
        )
    else:
        options["from_env"] = True
    return options


def storage_for(root: str, relative: str, storage_options: dict | None = None) -> ic.Storage:
    """The icechunk storage of the repository at ``relative`` under the archive root ``root``.

    Parameters
    ----------
    root : str
        Archive root: a local path (or ``file://``), ``s3://bucket/prefix``, ``gs://``, ``az://``.
    relative : str
        The repository's path under the root (``catalog``, ``observations/tess-spoc-2min-s0001``).
    storage_options : dict, optional
        fsspec-style options (``key``, ``secret``, ``token``, ``anon``, ``endpoint_url`` or
        ``client_kwargs={"endpoint_url": ...}``); the standard AWS variables otherwise.

    Raises
    ------
    StoreError
        For a URL scheme icechunk has no storage for.
    """
    options = dict(storage_options or {})
    if "://" not in root or root.startswith("file://"):
        return ic.local_filesystem_storage(os.path.join(root.removeprefix("file://"), relative))
    scheme = root.split("://", 1)[0]
    url = f"{root.rstrip('/')}/{relative}"
    if scheme == "s3":
        return ic.s3_storage(**_s3_options(url, options))
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if scheme in ("gs", "gcs"):
        return ic.gcs_storage(bucket=bucket, prefix=prefix, from_env=True, anonymous=bool(options.get("anon")) or None)
    if scheme in ("az", "abfs"):
        return ic.azure_storage(account=options.get("account_name", ""), container=bucket, prefix=prefix, from_env=True)
    raise StoreError(root, f"no icechunk storage for {scheme}:// URLs (use a local folder, s3://, gs:// or az://)")


PRELOADED = r"^(time|flux|flux_err|quality|target|cadenceno)$"
"""Arrays of an observation group whose manifests a session fetches when it opens, all at once:
the coordinates and the core variables every point read asks for (one round trip instead of one
per variable, in turn, when xarray loads them)."""

GROUP_ARRAY = r"^/[^/]+/[^/]+$"
"""Paths of an observation group's own arrays (``/<group>/<name>``): the arrays of its frame table
(``/<group>/frames/cadenceno``...) are a level below, and their manifests are not fetched ahead."""


def repository_config(inline: bool = True) -> ic.RepositoryConfig:
    """The configuration lcarchive opens its repositories with.

    No manifest is fetched ahead of need (one request less per cold read); a manifest is split
    every 64 chunks along the first dimension, so that a read of one chunk of a catalog array of
    a thousand chunks fetches a few hundred bytes of manifest. ``inline=False`` (the catalog
    repository) stores even the smallest chunk as its own object, so that every bucket carries
    its CRC32C (icechunk keeps chunks under 512 bytes inside the manifest otherwise). Failed
    requests are retried ``settings().store_attempts`` times (:mod:`lcarchive.config`).
    """
    retries = ic.StorageRetriesSettings(
        max_tries=settings().store_attempts, initial_backoff_ms=100, max_backoff_ms=settings().store_backoff_max_ms
    )
    return ic.RepositoryConfig(
        storage=ic.StorageSettings(retries=retries),
        inline_chunk_threshold_bytes=None if inline else 0,
        manifest=ic.ManifestConfig(
            # every array of a snapshot is scanned for the names (icechunk scans 50 by default, and
            # a SPOC group has more: a core variable's manifest was then fetched on first read)
            preload=ic.ManifestPreloadConfig(
                preload_if=ic.ManifestPreloadCondition.false()
                if not inline
                else ic.ManifestPreloadCondition.and_conditions(
                    [
                        ic.ManifestPreloadCondition.name_matches(PRELOADED),
                        ic.ManifestPreloadCondition.path_matches(GROUP_ARRAY),
                    ]
                ),
                max_arrays_to_scan=1_000_000,
            ),
            splitting=ic.ManifestSplittingConfig.from_dict(
                {ic.ManifestSplitCondition.AnyArray(): {ic.ManifestSplitDimCondition.Any(): 64}}
            ),
        ),
    )


def open_repository(storage: ic.Storage, create: bool = False, inline: bool = True) -> ic.Repository:
    """Open a repository, or create it when ``create`` and it does not exist yet.

    Two writers creating one repository at once: the one that loses the race opens the other's.

    Raises
    ------
    RepositoryMissing
        No repository there (and ``create`` is False).
    icechunk.IcechunkError
        The store failed (see :func:`store_failure`).
    """
    from lcarchive.clients import call_retried

    try:
        return call_retried(lambda: ic.Repository.open(storage, config=repository_config(inline)))
    except ic.RepositoryNotFoundError:
        if not create:
            raise RepositoryMissing(str(storage)) from None
    try:
        return ic.Repository.create(storage, config=repository_config(inline))
    except ic.IcechunkError as exc:
        # another writer created it at the same moment: icechunk says InvalidInputError
        # (prefix not clean) or ConflictError (REPO_INFO_UPDATED); open theirs once it is whole
        for attempt in range(20):
            try:
                return ic.Repository.open(storage, config=repository_config(inline))
            except ic.RepositoryNotFoundError:
                time.sleep(0.05 * (attempt + 1))
            except ic.IcechunkError:
                break
        raise exc from None


@contextlib.contextmanager
def _commit_lock(lock_path: str | None) -> Iterator[None]:
    """An exclusive lock around a commit to a repository on local disk.

    icechunk updates a branch on local storage without the conditional write object stores
    provide, so two local commits at once could both succeed and one be lost; under this lock
    the second sees the first's snapshot and raises the conflict the retry handles.
    """
    if lock_path is None:
        yield
        return
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_RACES = {
    ic.ErrorKind.REPO_INFO_UPDATED,
    ic.ErrorKind.UPDATE_ATTEMPTS_EXHAUSTED,
    ic.ErrorKind.BRANCH_UPDATE_CONFLICT,
    ic.ErrorKind.CONFIG_UPDATED,
}
"""icechunk's error kinds of a commit that lost a race with another writer's commit (not a conflict
of their changes): the session is redone."""


def transaction[T](
    repo: ic.Repository,
    change: Callable[[ic.Session], T | None],
    message: str | Callable[[T], str],
    metadata: dict | None = None,
    lock_path: str | None = None,
) -> tuple[str | None, T | None]:
    """Apply ``change`` to a writable session of ``main`` and commit it; redo it on conflict.

    A commit that finds the branch moved is rebased with icechunk's ``ConflictDetector``, which
    succeeds when the other writers touched other chunks and nodes; when they touched the same
    (two writers of one shard), the change is redone from a fresh session that sees theirs. No
    chunk conflict is ever resolved by keeping one side.

    Parameters
    ----------
    repo : icechunk.Repository
    change : callable
        ``change(session) -> result``: reads and writes through ``session.store``; must be safe to
        run again (it is, when it reads the state it changes from the session). A result of None
        means "nothing to change": no commit.
    message : str or callable
        The commit message, or a function of the result giving it.
    metadata : dict, optional
        Commit metadata (JSON values).
    lock_path : str, optional
        Lock file serialising commits of a repository on local disk.

    Returns
    -------
    (str or None, result)
        The new snapshot ID (None when nothing was committed) and ``change``'s result.

    Raises
    ------
    StoreError
        If the change could not be committed in ``Settings.commit_attempts`` attempts.
    """
    attempts = settings().commit_attempts
    for attempt in range(attempts):
        session = repo.writable_session("main")
        result = change(session)
        if result is None or not session.has_uncommitted_changes:
            return None, result
        text = message(result) if callable(message) else message
        try:
            with _commit_lock(lock_path):
                snapshot = session.commit(text, metadata=metadata, rebase_with=ic.ConflictDetector(), rebase_tries=5)
            return snapshot, result
        except ic.IcechunkError as exc:
            # a conflict (RebaseFailedError: the same chunk; or rebase tries exhausted), or another
            # writer's commit updated the repository's info object or branch first: nothing of
            # this session was committed; redo it from a fresh one
            if not isinstance(exc, ic.ConflictError) and exc.kind not in _RACES:
                raise
            time.sleep(min(settings().commit_backoff_seconds * (attempt + 1), 1.0))
    raise StoreError(str(repo.storage), f"other writers kept committing first: gave up after {attempts} attempts")


_DAMAGE = (
    "data corruption",
    "unknown frame descriptor",
    "invalid magic",
    "invalid icechunk metadata",
    "checksum",
    "destination buffer is too small",
    "out of bounds",
    "unaligned",
    "deserializ",
    "invalid file format",
    "invalid-file-format",
    "invalid object size",
    "src size is incorrect",
    "corrupt",
    "does not decode",
    "unexpected end of",
    "not of icechunk's format",
    "restored data",
)
_NETWORK = (
    "dispatch failure",
    "error sending request",
    "connection",
    "timed out",
    "timeout",
    "throttl",
    "slowdown",
    "service unavailable",
    "dns error",
    "broken pipe",
    "reset by peer",
    "body error",
    "incomplete",
)


def damage_in(text: str) -> bool:
    """True when an error's message says that stored bytes are damaged (they do not decode, a
    checksum differs), as opposed to a store that failed to answer."""
    lowered = text.lower()
    return any(marker in lowered for marker in _DAMAGE)


def network_trouble(exc: BaseException) -> bool:
    """True when ``exc`` is the store (or the network to it) failing to answer (unreachable,
    throttled, responses cut off, access refused), False when it is damage of what is stored,
    or anything else."""
    from lcarchive.clients import classify
    from lcarchive.errors import DamagedObjectError

    if isinstance(exc, DamagedObjectError) or damage_in(str(exc)):
        return False
    if isinstance(exc, StoreError):
        return not damage_in(exc.reason)
    if classify(exc) in ("unreachable", "throttled", "cut off", "access denied", "no such bucket"):
        return True
    if isinstance(exc, ic.IcechunkError):
        lowered = str(exc).lower()
        return any(marker in lowered for marker in _NETWORK)
    return False


def store_failure(url: str, exc: BaseException, storage_options: dict | None = None) -> StoreError:
    """The one-line store error for an icechunk failure at the archive ``url``.

    icechunk reports a missing bucket, access denied and an unreachable endpoint alike
    (``StorageError``, kind ``object-store``); which one it was is asked of the store itself
    (a HEAD of the bucket, a one-byte read of the catalog repository's first object), and told
    by that answer's exception type. A reset connection, a body cut off and throttling that
    outlasted the retries are told by icechunk's own message, without a probe.
    """
    from lcarchive.clients import classify, first_line, store_error

    kind = getattr(getattr(exc, "kind", None), "value", None) or str(getattr(exc, "kind", ""))
    if classify(exc) in ("reset", "cut off", "throttled"):  # the error says it: no probe (which could meet another fault)
        error = store_error(url, exc, bool((storage_options or {}).get("anon")))
        if error is not None:
            return error
    if url.startswith("s3://"):
        import fsspec

        from lcarchive.clients import bucket_exists

        bucket = url.removeprefix("s3://").split("/", 1)[0]
        options = {
            **(storage_options or {}),
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 5},
            "skip_instance_cache": True,
        }
        try:
            fs = fsspec.filesystem("s3", **options)
            if not bucket_exists(fs, bucket):
                return StoreError(url, f"no such bucket {bucket!r}: create it first (lcarchive never creates buckets)")
            fs.cat_file(f"{url.removeprefix('s3://').rstrip('/')}/catalog/repo", start=0, end=1)
        except FileNotFoundError:
            pass
        except Exception as probe:  # the probe's own failure says what is wrong, by its type
            error = store_error(url, probe, bool((storage_options or {}).get("anon")))
            if error is not None:
                return error
    text = first_line(getattr(exc, "message", None) or str(exc))
    if damage_in(str(exc)) or ("://" not in url and kind == "io"):  # on local disk nothing is cut off in transit
        import re

        named = re.search(r"(manifest|snapshot)_id=([0-9A-Z]{20})", str(exc))
        what = f"{named.group(1)} {named.group(2)}" if named else "a metadata object"
        return StoreError(
            url,
            f"{what} of the archive is damaged in the store, not a network failure ({text}); "
            "lcarchive verify names every damaged object, lcarchive rollback returns to the newest "
            "undamaged version",
        )
    hint = _KINDS.get(kind)
    if hint is not None:
        return StoreError(url, f"{hint} ({text})")
    if classify(exc) == "access denied":
        return StoreAccessError(url, f"access denied ({text})")
    return StoreError(url, f"the store failed: {text}")


_KINDS = {
    "object-not-found": "an object of the archive is missing",
    "io": "responses cut off: the store's answers kept ending before their announced length, or the connection "
    "dropped, after the retries",
    "throttled": "throttled: the store kept refusing requests (503 SlowDown) after the retries with back-off",
    "deserialization": "a metadata object of the archive is damaged (it does not decode)",
    "invalid-file-format": "a metadata object of the archive is damaged (not of icechunk's format)",
    "invalid-object-size": "an object of the archive is shorter or longer than its metadata says",
}
"""icechunk's error kinds (``IcechunkError.kind``) and what lcarchive says of them."""


@contextlib.contextmanager
def failures(url: str, storage_options: dict | None = None) -> Iterator[None]:
    """Turn the failures of the archive's store at ``url`` into one-line store errors: icechunk's
    (:func:`store_failure`) and the clients' (:func:`lcarchive.clients.store_errors`)."""
    from lcarchive.clients import store_errors

    with store_errors(url, bool((storage_options or {}).get("anon"))):
        try:
            yield
        except ic.IcechunkError as exc:  # before the clients' rules: icechunk's errors need the probe
            raise store_failure(url, exc, storage_options) from exc
