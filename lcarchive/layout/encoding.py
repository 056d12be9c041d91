"""How an observation group is stored (format v2): chunks, shards and codecs of every variable.

| variables | chunk grid | inner chunk | codecs |
|---|---|---|---|
| (target, cadence), images | shards of ``targets_per_shard`` targets | one target | bytes, blosc (zstd 3, byte shuffle), crc32c |
| text columns on (target, cadence) (CDIPS ``rstfc``) | shards of ``targets_per_shard`` targets | one target | vlen-utf8, zstd, crc32c |
| per-target headers (``header_*``, ``hdf5_attributes``) | shards of ``targets_per_shard`` | one target | vlen-utf8, zstd, crc32c |
| other per-target strings | ``targets_per_shard`` targets, not sharded | | vlen-utf8, zstd, crc32c |
| per-target numbers, ``target`` | ``8 x targets_per_shard`` targets | | bytes, blosc, crc32c |
| ``cadenceno`` | one chunk | | bytes, blosc, crc32c |

Every chunk ends in a CRC32C that zarr checks on read, so a flipped byte is an error naming the
object, never a wrong number; the shard index has its own (zarr's default index codecs). Blosc
zstd level 3 with byte shuffle was chosen by measurement on the real files (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from lcarchive.config import settings
from lcarchive.layout.blocks import fill_value
from lcarchive.zarr_internals import FUSED_CODEC_PIPELINE

__all__ = ["FORMAT_VERSION", "encoding", "fused", "is_header", "open_group"]

FORMAT_VERSION = "2"
"""Version of the store layout (``docs/format.md``)."""


@contextlib.contextmanager
def fused() -> Iterator[None]:
    """Open zarr arrays inside this block with zarr's fused codec pipeline.

    Measured against the default (batched) pipeline on lcarchive's shards (docs/performance.md):
    writes and multi-target reads 1.2-2x faster; the pipeline is fixed when an array is opened,
    so lcarchive opens its arrays inside this block and leaves zarr's global setting alone.
    """
    with zarr.config.set({"codec_pipeline.path": FUSED_CODEC_PIPELINE}):
        yield


def _blosc(dtype: np.dtype) -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=np.dtype(dtype).itemsize)


def is_header(name: str) -> bool:
    """Per-target strings large enough to be sharded one target per chunk (the FITS headers)."""
    return name.startswith("header_") or name == "hdf5_attributes"


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Chunk, shard and codec choices of an observation group, for ``xarray.Dataset.to_zarr``."""
    per_shard = settings().targets_per_shard
    n_cad = max(int(ds.sizes.get("cadence", 1)), 1)
    shards = {"index_location": "start"}  # the index reads with a plain byte-range request
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        dtype = var.dtype
        text = dtype.kind in "OTU"
        if var.dims[:1] == ("target",) and len(var.dims) >= 2:
            inner = (1, *var.shape[1:]) if var.dims[1] != "cadence" else (1, n_cad)
            if text:  # a text column of the light-curve table: its strings, as the headers
                enc[name] = {  # type: ignore[index]  # as below
                    "chunks": inner,
                    "shards": {"shape": (per_shard, *inner[1:]), **shards},
                    "compressors": [ZstdCodec(level=3), Crc32cCodec()],
                }
                continue
            enc[name] = {  # type: ignore[index]  # xarray's names are Hashable; ours are str
                "chunks": inner,
                "shards": {"shape": (per_shard, *inner[1:]), **shards},
                "compressors": [_blosc(dtype), Crc32cCodec()],
                "fill_value": fill_value(dtype),
            }
        elif var.dims == ("target",) and text:
            if is_header(str(name)):
                enc[name] = {  # type: ignore[index]  # as above
                    "chunks": (1,),
                    "shards": {"shape": (per_shard,), **shards},
                    "compressors": [ZstdCodec(level=3), Crc32cCodec()],
                }
            else:
                enc[name] = {"chunks": (per_shard,), "compressors": [ZstdCodec(level=3), Crc32cCodec()]}  # type: ignore[index]  # as above
        elif var.dims == ("target",):
            enc[name] = {"chunks": (per_shard * 8,), "compressors": [_blosc(dtype), Crc32cCodec()]}  # type: ignore[index]  # as above
        elif var.dims == ("cadence",) and not text:
            enc[name] = {"chunks": (n_cad,), "compressors": [_blosc(dtype), Crc32cCodec()]}  # type: ignore[index]  # as above
        elif var.dims and "target" not in var.dims:  # the frame table's (cadence, instrument) arrays: one chunk each
            codec = ZstdCodec(level=3) if text else _blosc(dtype)
            enc[name] = {"chunks": tuple(max(1, n) for n in var.shape), "compressors": [codec, Crc32cCodec()]}  # type: ignore[index]  # as above
    return enc


def open_group(store: Any, path: str = "", coordinates: dict[str, Any] | None = None) -> xr.Dataset:
    """An observation group as a lazy ``xarray.Dataset`` (plain xarray on a zarr store: an
    icechunk session's, or a plain Zarr folder's).

    ``coordinates`` gives the values of coordinates already read (``target``, ``cadenceno``:
    numpy arrays): xarray then does not read them again.

    Raises
    ------
    FileNotFoundError
        If there is no group at ``path``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # zarr's notes on string dtypes, consolidated metadata
        ds = xr.open_dataset(
            store,
            group=path or None,
            engine="zarr",
            chunks=None,
            consolidated=None if isinstance(store, zarr.storage.LocalStore | zarr.storage.FsspecStore) else False,
            create_default_indexes=not coordinates,
        )
    for name, values in (coordinates or {}).items():
        known = ds[name].variable
        ds = ds.assign_coords({name: xr.Variable(known.dims, values, known.attrs, known.encoding)})
    return ds
