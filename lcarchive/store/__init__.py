"""The store: where an archive's bytes live and how they are read and written.

:class:`ArchiveStore` owns an archive's icechunk repositories and their sessions (store format
v2, ``docs/format.md``; split by job into :mod:`~lcarchive.store.repositories`,
:mod:`~lcarchive.store.sessions`, :mod:`~lcarchive.store.catalog_reads`,
:mod:`~lcarchive.store.versions` and :mod:`~lcarchive.store.buckets`, the pin and the index line
being :class:`FamilyPin` and :class:`IndexLine`); :class:`PlainStore` reads archives of plain Zarr groups (format v1, and
the copies ``download --format zarr`` writes); :mod:`lcarchive.store.reader` reads target rows
of a group on either. Every read and write goes through zarr on these stores.
"""

from lcarchive.store.archive_store import FORMAT_VERSION, INDEX_COLUMNS, ArchiveStore, clear_caches, family_of
from lcarchive.store.models import FamilyPin, IndexLine
from lcarchive.store.plain import PlainStore
from lcarchive.store.reader import BulkReader, GroupReader, gather, open_reader, rows_lazily, run
from lcarchive.store.repos import failures

__all__ = [
    "FORMAT_VERSION",
    "INDEX_COLUMNS",
    "ArchiveStore",
    "BulkReader",
    "FamilyPin",
    "GroupReader",
    "IndexLine",
    "PlainStore",
    "clear_caches",
    "failures",
    "family_of",
    "gather",
    "open_reader",
    "rows_lazily",
    "run",
]
