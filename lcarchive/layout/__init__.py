"""The store format: how light curves become observation groups (``docs/format.md``).

:mod:`lcarchive.layout.blocks` turns parsed files into in-memory rows (``Block``) on a
group's cadence axis and into ``xarray.Dataset``s; :mod:`lcarchive.layout.encoding` gives every
variable's chunks, shards and codecs; :mod:`lcarchive.layout.shards` reads single inner chunks of
a shard with a cached shard index and copies stored chunks into new shards undecoded.
"""

from lcarchive.layout.blocks import INT_FILL, Block, block_from_dataset, block_from_file, fill_value, merge_blocks, to_dataset
from lcarchive.layout.encoding import FORMAT_VERSION, encoding, fused, open_group

__all__ = [
    "FORMAT_VERSION",
    "INT_FILL",
    "Block",
    "block_from_dataset",
    "block_from_file",
    "encoding",
    "fill_value",
    "fused",
    "merge_blocks",
    "open_group",
    "to_dataset",
]
