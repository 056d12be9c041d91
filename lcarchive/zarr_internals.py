"""The parts of zarr-python lcarchive uses that are not its documented public API, in one place.

Written against zarr-python 3.x as of 3.4 (checked with 3.4.2): ``zarr.core`` is zarr's
implementation package (no stability promise), ``zarr.abc.store`` is public for store authors but
not for readers, and ``store_path`` and ``metadata.encode_chunk_key`` are attributes of arrays and
groups that zarr's documentation does not describe. lcarchive needs each for a reason its public
API does not serve; when zarr changes one, this module is the only one to change.

- :func:`sync` (``zarr.core.sync.sync``): run a coroutine on zarr's own event loop, in its own
  thread. The stores' async clients (obstore, icechunk's) live on that loop; lcarchive's
  concurrent reads and icechunk's ``*_async`` calls must run there, not on a loop of their own.
  The coroutine runs in a copy of the caller's context (``asyncio.run_coroutine_threadsafe``
  copies it), so :func:`lcarchive.config.override` reaches it.
- :func:`store_of`, :func:`path_of` (``node.store_path``): the store and key prefix of an opened
  array or group, for lcarchive's own range reads of shards and its undecoded copies of groups.
- :func:`shard_key` (``array.metadata.encode_chunk_key``): the store key of a shard, whatever the
  array's chunk key encoding (``c/0/0`` or ``0.0``).
- :func:`byte_range`, :func:`last_bytes`, :func:`get_bytes` (``zarr.abc.store`` byte requests and
  ``zarr.core.buffer.default_buffer_prototype``): a ranged ``Store.get``, to read one chunk of a
  shard, or its index, without reading the shard.
- :data:`FUSED_CODEC_PIPELINE`: the dotted name of zarr's fused codec pipeline, the one
  ``zarr.config`` key ``codec_pipeline.path`` selects (:func:`lcarchive.layout.fused`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from zarr.abc.store import ByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.sync import sync as _zarr_sync

__all__ = [
    "FUSED_CODEC_PIPELINE",
    "Buffer",
    "ByteRequest",
    "Store",
    "byte_range",
    "get_bytes",
    "last_bytes",
    "path_of",
    "shard_key",
    "store_of",
    "sync",
]

FUSED_CODEC_PIPELINE = "zarr.core.codec_pipeline.FusedCodecPipeline"
"""zarr's codec pipeline that decodes a chunk in one step (fewer copies than the batched one)."""


def sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on zarr's event loop (its I/O thread) and return its result.

    The coroutine sees the caller's context variables, lcarchive's settings among them.
    """
    return _zarr_sync(coro)


def store_of(node: Any) -> Store:
    """The zarr store an opened array or group (sync or async) reads from."""
    return node.store_path.store


def path_of(node: Any) -> str:
    """The key prefix of an opened array or group in its store ('' at the root)."""
    return node.store_path.path


def shard_key(array: Any, shard: int, *, relative: bool = False) -> str:
    """The store key of shard ``shard`` along the first axis of ``array`` (the others at 0).

    Parameters
    ----------
    array : zarr.Array or zarr.AsyncArray
    shard : int
        The shard's (or unsharded chunk's) position along the first axis.
    relative : bool
        The key below the array's own prefix (``c/3/0``) instead of the store key.
    """
    key = array.metadata.encode_chunk_key((shard, *(0,) * (array.ndim - 1)))
    return key if relative else f"{path_of(array)}/{key}"


def byte_range(start: int, stop: int) -> ByteRequest:
    """A request for bytes ``start:stop`` of an object."""
    return RangeByteRequest(start, stop)


def last_bytes(n: int) -> ByteRequest:
    """A request for the last ``n`` bytes of an object."""
    return SuffixByteRequest(n)


async def get_bytes(store: Store, key: str, request: ByteRequest | None = None) -> Buffer | None:
    """``store.get`` of an object (or of the bytes ``request`` names) in zarr's default buffer;
    None if there is no such object."""
    return await store.get(key, prototype=default_buffer_prototype(), byte_range=request)
