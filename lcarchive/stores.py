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

import os
from typing import Any

__all__ = ["read_store"]


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
