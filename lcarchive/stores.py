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
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["S3_DEFAULTS", "read_store", "store_errors", "with_defaults"]


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
    store = S3Store(bucket, prefix=prefix or None, config=config or None, client_options=client_options)
    return ObjectStore(store, read_only=True)


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


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered or "specified bucket does not exist" in lowered:
        return "no such bucket"
    if "could not connect" in lowered or "connection refused" in lowered or "cannot connect" in lowered:
        return f"cannot reach the store ({text})"
    if "slowdown" in lowered or "throttl" in lowered or "503" in lowered:
        return f"the store kept throttling requests after retries ({text})"
    return text


@contextlib.contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Turn errors of the store at ``url`` into :class:`~lcarchive.errors.StoreError` messages.

    ``FileNotFoundError`` passes through (callers know what was missing), lcarchive's own errors
    too; access denied becomes :class:`~lcarchive.errors.StoreAccessError`; any other error of
    the store's client (botocore, aiohttp, obstore, OS errors) becomes a ``StoreError`` naming
    the URL and the reason, with the original as ``__cause__``.
    """
    from lcarchive.errors import LcarchiveError, StoreAccessError, StoreError

    try:
        yield
    except (LcarchiveError, FileNotFoundError):
        raise
    except PermissionError as exc:
        raise StoreAccessError(url, f"access denied ({exc})") from exc
    except Exception as exc:
        module = type(exc).__module__.split(".")[0]
        if isinstance(exc, OSError) or module in {"botocore", "aiobotocore", "aiohttp", "obstore", "s3fs", "fsspec", "urllib3"}:
            if "accessdenied" in str(exc).lower().replace(" ", "") or "forbidden" in str(exc).lower():
                raise StoreAccessError(url, f"access denied ({exc})") from exc
            raise StoreError(url, _reason(exc)) from exc
        raise


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
        store = _obstore_s3(root_url, dict(storage_options or {}))
        if store is not None:
            import obstore
            from obstore.exceptions import NotFoundError

            relative = path[len(root_url.removeprefix("s3://").rstrip("/")) :].lstrip("/")
            try:
                return bytes(obstore.get(store.store, relative).bytes())
            except NotFoundError as exc:
                raise FileNotFoundError(str(exc)) from exc
            except Exception as exc:
                if "bucket" in str(exc).lower() and "not" in str(exc).lower():
                    raise FileNotFoundError(f"NoSuchBucket: {exc}") from exc
                raise
    return fs.cat_file(path)
