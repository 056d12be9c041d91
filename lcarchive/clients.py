"""Object-store clients for lcarchive's own read path.

Groups written by lcarchive are read by anyone through zarr's default fsspec store. For its
own point reads lcarchive uses obstore (a Rust client) on ``s3://`` URLs when it is installed:
each request costs a fraction of the CPU of an s3fs request, and nearby byte ranges of one
object are coalesced. Endpoint and credentials come from the standard AWS variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` via
the environment, ...) and from fsspec-style ``storage_options`` (``key``, ``secret``,
``token``, ``anon``, ``endpoint_url`` or ``client_kwargs={"endpoint_url": ...}``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from zarr.storage import WrapperStore

from lcarchive.config import settings
from lcarchive.errors import LcarchiveError, StoreAccessError, StoreError
from lcarchive.zarr_internals import get_bytes

__all__ = [
    "S3_DEFAULTS",
    "RetryingStore",
    "bucket_exists",
    "call_retried",
    "classify",
    "first_line",
    "forget_clients",
    "get_retrying",
    "missing_reason",
    "obstore_retry_config",
    "read_object",
    "read_store",
    "retried",
    "store_error",
    "store_errors",
    "with_defaults",
]


_OBSTORES: dict[str, Any] = {}
"""obstore clients of whole-object GETs by bucket, options and the environment's AWS settings:
making one costs ~9 ms of CPU (a cold read of ten sectors made twelve), and one serves any
number of threads."""


def _shared_obstore_s3(url: str, storage_options: dict) -> Any | None:
    key = json.dumps(
        [url, storage_options, {k: v for k, v in os.environ.items() if k.startswith("AWS_")}], sort_keys=True, default=str
    )
    if key not in _OBSTORES:
        if len(_OBSTORES) >= settings().store_clients_kept:
            _OBSTORES.clear()
        _OBSTORES[key] = _obstore_s3(url, storage_options)
    return _OBSTORES[key]


def forget_clients() -> None:
    """Forget the object-store clients this process keeps (for benchmarks of cold reads)."""
    _OBSTORES.clear()


def _obstore_s3(url: str, storage_options: dict) -> Any | None:
    try:
        from obstore.store import S3Store
        from zarr.storage import ObjectStore
    except ImportError:
        return None
    known = {"key", "secret", "token", "anon", "endpoint_url", "client_kwargs", "config_kwargs"}
    if set(storage_options) - known:
        return None  # options only s3fs understands: let zarr use it
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client_kwargs = storage_options.get("client_kwargs") or {}
    endpoint = storage_options.get("endpoint_url") or client_kwargs.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
    config: dict[str, Any] = {}
    if endpoint:
        config["endpoint"] = endpoint
    if client_kwargs.get("region_name"):
        config["region"] = client_kwargs["region_name"]
    if storage_options.get("key"):
        config["access_key_id"] = storage_options["key"]
        config["secret_access_key"] = storage_options.get("secret", "")
    if storage_options.get("token"):
        config["token"] = storage_options["token"]
    if storage_options.get("anon"):
        config["skip_signature"] = True
    client_options = {"allow_http": True} if endpoint and endpoint.startswith("http://") else None
    # plain dicts with the keys of obstore's TypedDicts (S3Config, ClientConfig, RetryConfig)
    store = S3Store(
        bucket,
        prefix=prefix or None,
        config=config or None,  # type: ignore[arg-type]  # plain dicts of obstore's TypedDicts' keys
        client_options=client_options,  # type: ignore[arg-type]  # as above
        retry_config=obstore_retry_config(),  # type: ignore[arg-type]  # as above
    )
    return ObjectStore(store, read_only=True)


def obstore_retry_config() -> dict[str, Any]:
    """obstore's ``RetryConfig`` for lcarchive's reads: ``Settings.store_attempts`` attempts of a
    request that fails (5xx, a reset or dropped connection, a body cut off, a read timeout),
    exponential back-off with jitter from 0.1 s up to ``Settings.store_backoff_max_ms``, as
    icechunk's (:func:`lcarchive.store.repos.repository_config`)."""
    import datetime as dt

    return {
        "max_retries": max(0, settings().store_attempts - 1),
        "backoff": {
            "init_backoff": dt.timedelta(milliseconds=100),
            "max_backoff": dt.timedelta(milliseconds=settings().store_backoff_max_ms),
            "base": 2,
        },
        "retry_timeout": dt.timedelta(seconds=settings().store_retry_timeout_seconds),
    }


def read_store(url: str, storage_options: dict | None = None) -> Any:
    """Return what zarr should open ``url`` with, for reading.

    Parameters
    ----------
    url : str
        URL of a Zarr group (``s3://bucket/prefix/observations/<id>.zarr``, a local path...).
    storage_options : dict, optional
        fsspec-style options.

    Returns
    -------
    zarr.storage.ObjectStore or str
        An obstore-backed store for ``s3://`` URLs when obstore is installed, else the URL
        itself (zarr then uses fsspec).
    """
    if url.startswith("s3://"):
        store = _obstore_s3(url, dict(storage_options or {}))
        if store is not None:
            return store
    return url


S3_DEFAULTS = {"config_kwargs": {"retries": {"max_attempts": 10, "mode": "adaptive"}, "max_pool_connections": 64}}
"""s3fs options lcarchive adds unless given: botocore's adaptive retry mode (exponential
back-off with jitter, client-side rate limiting on throttling), 10 attempts, and a connection
pool of 64 (botocore's default, 10, would cap the concurrent range requests of a scan or of a
shard write). s3fs retries its own transient errors (timeouts, reset connections) with back-off
as well."""


def with_defaults(url: str, storage_options: dict | None) -> dict:
    """Storage options for ``url`` with lcarchive's retry defaults for S3 added."""
    options = dict(storage_options or {})
    if url.startswith("s3://") and "config_kwargs" not in options:
        options.update(S3_DEFAULTS)
    return options


_CLIENT_MODULES = frozenset({"botocore", "aiobotocore", "aiohttp", "obstore", "s3fs", "fsspec", "urllib3", "gcsfs", "adlfs"})
_THROTTLING = frozenset(
    {
        "slowdown",
        "throttling",
        "throttlingexception",
        "requestlimitexceeded",
        "toomanyrequests",
        "serviceunavailable",
        "requesttimetooskewed",
    }
)
_DENIED = frozenset(
    {
        "accessdenied",
        "forbidden",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "allaccessdisabled",
        "accountproblem",
        "invalidtoken",
        "expiredtoken",
    }
)


def first_line(text: str, limit: int = 240) -> str:
    """The first line of a client's message, without the debug dump some clients append."""
    text = text.split("\n\nDebug source:", 1)[0].strip()
    line = text.splitlines()[0].strip() if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError (``NoSuchBucket``, ``SlowDown``...), lower case; "" if none."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")).lower()
    return ""


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out and len(out) < 8:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


_RESET_TEXT = (
    "connection reset",
    "connection closed before message completed",
    "incompletemessage",
    "connection was closed before we received",
    "server disconnected",
    "broken pipe",
    "connection aborted",
)
"""What the Rust clients (icechunk's AWS SDK, obstore's reqwest/hyper) and aiohttp say of a connection the
peer reset or dropped before answering."""

_CUT_TEXT = (
    "end of file before message length reached",
    "error reading a body",
    "body error",
    "streaming error",
    "incomplete",
    "payload",
    "content-length",
    "contentlength",
)
"""... and of an answer whose body ended before its announced length."""


def classify(exc: BaseException) -> str | None:
    """What a store client's exception means, or None if it is no failure of the store.

    Returns one of ``"no such bucket"``, ``"access denied"``, ``"unreachable"`` (no connection
    could be made), ``"reset"`` (the connection was reset or dropped before an answer),
    ``"throttled"`` (503 SlowDown), ``"cut off"`` (a response body that ended early),
    ``"not found"`` (an object or prefix), ``"failed"`` (any other error of a store client).
    Told by exception types and S3 error codes; by the message only where a client gives
    nothing else (s3fs's missing bucket; icechunk's and obstore's errors, which carry the
    cause in their text).
    """
    chain = _chain(exc)
    modules = {type(e).__module__.split(".")[0] for e in chain}
    codes = {_error_code(e) for e in chain} - {""}
    text = " ".join(str(e) for e in chain).lower()
    names = {type(e).__name__ for e in chain}
    rust = bool(modules & {"obstore", "icechunk"})
    if codes & {"nosuchbucket"} or "specified bucket does not exist" in text or "nosuchbucket" in text:
        return "no such bucket"
    if (
        codes & _DENIED
        or names & {"PermissionDeniedError", "UnauthenticatedError"}
        or any(isinstance(e, PermissionError) for e in chain)
    ):
        return "access denied"
    if codes & _THROTTLING or "slowdown" in text or "throttl" in text or "503 service unavailable" in text:
        return "throttled"
    if (
        names & {"EndpointConnectionError", "ClientConnectorError", "ConnectTimeoutError"}
        or any(isinstance(e, ConnectionRefusedError) for e in chain)
        or "connection refused" in text
        or "dns error" in text
        or "failed to lookup address" in text
    ):
        return "unreachable"
    if (
        names & {"ClientPayloadError", "IncompleteRead", "ContentLengthError", "ResponseStreamingError"}
        or (rust and any(t in text for t in _CUT_TEXT) and "incompletemessage" not in text)
        or (not rust and ("body error" in text or "incomplete" in text or "payload" in text))
    ):
        return "cut off"
    if (
        names & {"ConnectionClosedError", "ServerDisconnectedError"}
        or any(isinstance(e, ConnectionResetError | ConnectionAbortedError | BrokenPipeError) for e in chain)
        or any(t in text for t in _RESET_TEXT)
    ):
        return "reset"
    if (
        names & {"ReadTimeoutError"}
        or any(isinstance(e, ConnectionError | TimeoutError) for e in chain)
        or (rust and ("connect" in text or "timed out" in text or "dispatch failure" in text))
    ):
        return "unreachable"
    if any(isinstance(e, FileNotFoundError) for e in chain) or names & {"NotFoundError"} or codes & {"nosuchkey", "404"}:
        return "not found"
    if modules & _CLIENT_MODULES or any(isinstance(e, OSError) for e in chain):
        return "failed"
    return None


_HINTS = {
    "no such bucket": "no such bucket: create it first (lcarchive never creates buckets)",
    "access denied": "access denied: check the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE) or the bucket policy",
    "unreachable": "unreachable: no answer from the endpoint (check AWS_ENDPOINT_URL / -o endpoint_url and the network)",
    "reset": "connection reset: the store kept dropping connections before answering, after the retries with back-off",
    "throttled": "throttled: the store kept refusing requests (503 SlowDown) after the retries with back-off",
    "cut off": "responses cut off: the store's answers kept ending before their announced length, after the retries",
}


_RETRIED = ("cut off", "reset")
"""Failures a read is tried again for, where the client did not retry them itself: icechunk's
client does not retry a body cut off while it streams (its ``io`` errors)."""


def _retry_again(exc: BaseException) -> bool:
    """True if a failed read is worth another attempt here: cut off or reset, and not already
    retried with back-off by its client. Measured against a proxy cutting bodies: icechunk 2.3
    retries a chunk's fetch (``fetch_chunk`` in its error's context) ``store_attempts`` times and
    its ``object-store`` errors come after its ``StorageRetriesSettings``, but a manifest's
    fetch cut off is reported at once; obstore says "after N retries"."""
    if classify(exc) not in _RETRIED:
        return False
    kind = getattr(exc, "kind", None)
    text = str(exc)
    if str(getattr(kind, "value", kind) or "") == "object-store" or "asset_manager::fetch_chunk" in text:
        return False
    return "retries, max_retries" not in text


async def retried(call: Any) -> Any:
    """Await ``call()`` (a read), again with back-off (0.1, 0.2, 0.4 s...) while it fails because
    the response was cut off or the connection was reset and the client did not retry it
    itself, up to ``Settings.read_attempts`` attempts; other errors propagate at once.

    The store clients retry throttling (503), resets and timeouts themselves, with back-off
    (icechunk's ``StorageRetriesSettings``, obstore's ``RetryConfig``, botocore's retries), but
    icechunk's does not retry a body that ended early: this layer does, for every read.
    """
    import asyncio

    attempts = max(1, settings().read_attempts)
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts - 1 or not _retry_again(exc):
                raise
            await asyncio.sleep(settings().read_backoff_seconds * 2**attempt)
    return None


def call_retried(call: Any) -> Any:
    """``call()`` (a blocking read: opening an icechunk repository or session), again with
    back-off while it fails because a response was cut off or the connection was reset, as
    :func:`retried`."""
    import time

    attempts = max(1, settings().read_attempts)
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not _retry_again(exc):
                raise
            time.sleep(settings().read_backoff_seconds * 2**attempt)
    return None


async def get_retrying(store: Any, key: str, byte_range: Any = None) -> Any:
    """``store.get`` of a zarr store, retried with back-off when the response is cut off or the
    connection drops (:func:`retried`; a :class:`RetryingStore` retries its reads itself).

    Returns
    -------
    zarr.core.buffer.Buffer or None
        None if the object does not exist.
    """
    if isinstance(store, RetryingStore):
        return await get_bytes(store, key, byte_range)
    return await retried(lambda: get_bytes(store, key, byte_range))


class RetryingStore(WrapperStore):
    """A zarr store whose reads are tried again when cut off or reset (:func:`retried`).

    lcarchive reads icechunk sessions' stores through it: every zarr read of a group, an
    array or the catalog rides out what icechunk's client does not retry itself.

    A read that still fails after the retries raises lcarchive's one-line
    :class:`~lcarchive.errors.StoreError` naming ``url`` and the cause (reset, cut off,
    throttled...), also where no lcarchive call is on the stack (a lazy xarray dataset loaded
    later).

    Parameters
    ----------
    store : zarr.abc.store.Store
        The store read (an icechunk session's store).
    url : str, optional
        What errors name (the archive's URL).
    """

    def __init__(self, store: Any, url: str = "") -> None:
        super().__init__(store)
        self.url = url

    def _with_store(self, store: Any) -> RetryingStore:
        return type(self)(store, self.url)

    async def _read(self, call: Any) -> Any:
        try:
            return await retried(call)
        except Exception as exc:
            if classify(exc) in ("reset", "cut off", "throttled", "unreachable", "access denied"):
                error = store_error(self.url or str(self._store), exc)
                if error is not None:
                    raise error from exc
            raise

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        return await self._read(lambda: self._store.get(key, prototype, byte_range))

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
        key_ranges = list(key_ranges)
        return await self._read(lambda: self._store.get_partial_values(prototype, key_ranges))

    async def exists(self, key: str) -> bool:
        return await self._read(lambda: self._store.exists(key))

    def __getattr__(self, name: str) -> Any:  # the wrapped store's own API (an icechunk store's session...)
        if name == "_store":
            raise AttributeError(name)
        return getattr(self._store, name)


def store_error(url: str, exc: BaseException, anon: bool = False) -> StoreError | None:
    """The one-line :class:`~lcarchive.errors.StoreError` for a store client's exception at ``url``.

    Returns None when ``exc`` is no store failure (a bug, or lcarchive's own error). The
    original stays the ``__cause__`` of the error raised from it.
    """
    if isinstance(exc, LcarchiveError):
        return None
    kind = classify(exc)
    if kind is None:
        return None
    detail = first_line(str(exc) or type(exc).__name__)
    if kind == "no such bucket" and url.startswith("s3://"):
        return StoreError(
            url,
            f"no such bucket {url.removeprefix('s3://').split('/', 1)[0]!r}: create it first (lcarchive never creates buckets)",
        )
    if kind == "access denied":
        hint = _HINTS[kind] + ("; --anon sends unsigned requests, which only public buckets answer" if anon else "")
        return StoreAccessError(url, f"{hint} ({detail})")
    if kind in _HINTS:
        return StoreError(url, f"{_HINTS[kind]} ({detail})")
    return StoreError(url, f"{kind}: {detail}")


@contextlib.contextmanager
def store_errors(url: str, anon: bool = False) -> Iterator[None]:
    """Turn errors of the store at ``url`` into one-line store errors (:class:`~lcarchive.errors.StoreError`).

    A missing object (``FileNotFoundError``) passes through, for callers that know what was
    missing; a missing bucket does not. lcarchive's own errors pass through; access denied
    becomes :class:`~lcarchive.errors.StoreAccessError`; any other failure of a store client
    (botocore, aiohttp, obstore, OS errors) a ``StoreError`` naming the URL and the reason
    (:func:`classify`), with the original as ``__cause__``.
    """
    local_root = url.removeprefix("file://") if "://" not in url or url.startswith("file://") else None
    try:
        yield
    except FileNotFoundError as exc:
        error = store_error(url, exc, anon) if classify(exc) == "no such bucket" else None
        if error is not None:  # an error for a missing bucket
            raise error from exc
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename and not (local_root and str(exc.filename).startswith(local_root)):
            raise  # a local file that is not the store's (a download's destination): its own message
        error = store_error(url, exc, anon)
        if error is None:
            raise
        raise error from exc


def bucket_exists(fs: Any, bucket: str) -> bool:
    """True if the bucket exists. One HEAD request on S3; errors other than "not found" propagate
    (s3fs's ``exists`` answers False for an unreachable endpoint too)."""
    call = getattr(fs, "call_s3", None)
    if call is None:
        return bool(fs.exists(bucket))
    try:
        call("head_bucket", Bucket=bucket)
    except FileNotFoundError:
        return False
    return True


def missing_reason(fs: Any, url: str, root: str) -> str:
    """Why nothing is found at an archive root: no such bucket, no such prefix, or no catalog.

    One listing request on an object store (``root`` is the fsspec path ``bucket/prefix``).
    """
    if "://" not in url or url.startswith("file://"):
        if not os.path.isdir(root):
            return "no such folder"
        return "no lcarchive archive in this folder (no catalog repository; ingest files into it first)"
    bucket, _, prefix = root.partition("/")
    try:
        if not bucket_exists(fs, bucket):
            return f"no such bucket {bucket!r}"
        if prefix and not fs.exists(root):
            return f"no such prefix: nothing is stored under {prefix!r} in bucket {bucket!r}"
    except Exception as exc:  # the probe itself failed: say why
        error = store_error(url, exc)
        if error is None:
            raise
        raise error from exc
    return "no lcarchive archive under this prefix (no catalog repository; ingest files into it first)"


def _obstore_get(url: str, storage_options: dict | None, limit: int | None = None) -> bytes | None:
    """One GET of a whole ``s3://`` object with obstore; None when obstore cannot take the options.
    With ``limit``, an object larger than that gives its first ``limit + 1`` bytes only (its size
    is in the response's head: the body is not read).

    Raises
    ------
    FileNotFoundError
        No such object (or bucket).
    """
    bucket, _, key = url.removeprefix("s3://").partition("/")
    store = _shared_obstore_s3(f"s3://{bucket}", dict(storage_options or {}))
    if store is None:
        return None
    import obstore
    from obstore.exceptions import NotFoundError

    try:
        result = obstore.get(store.store, key)
        if limit is not None and int(result.meta["size"]) > limit:
            return bytes(obstore.get_range(store.store, key, start=0, length=limit + 1))
        return bytes(result.bytes())
    except NotFoundError as exc:
        raise FileNotFoundError(str(exc)) from exc
    except Exception as exc:
        if "bucket" in str(exc).lower() and "not" in str(exc).lower():
            raise FileNotFoundError(f"NoSuchBucket: {exc}") from exc
        raise


def read_object(url: str, storage_options: dict | None = None, limit: int | None = None) -> bytes:
    """The whole object (an input file) at an fsspec URL, in one request where the client allows.

    s3fs asks for an object's size (HEAD) before reading it; obstore reads it with one GET, which is
    also all an anonymous reader of a public bucket may be allowed. With ``limit``, at most
    ``limit + 1`` bytes are read: a longer result means the object is larger than ``limit``.

    Raises
    ------
    FileNotFoundError
        No such object.
    """
    import fsspec

    if url.startswith("s3://"):
        data = _obstore_get(url, storage_options, limit)
        if data is not None:
            return data
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if limit is None:
        return fs.cat_file(path)
    return fs.cat_file(path, start=0, end=limit + 1)


def read_bytes(fs: Any, root_url: str, path: str, storage_options: dict | None = None) -> bytes:
    """Read a whole small object (the catalog, the target index) in one request.

    s3fs asks for an object's size before reading it whole (two requests); obstore reads it
    with one GET. Falls back to ``fs.cat_file``.

    Raises
    ------
    FileNotFoundError
        If the object (or its bucket) does not exist.
    """
    if root_url.startswith("s3://"):
        relative = path[len(root_url.removeprefix("s3://").rstrip("/")) :].lstrip("/")
        data = _obstore_get(f"{root_url.rstrip('/')}/{relative}", storage_options)
        if data is not None:
            return data
    return fs.cat_file(path)
