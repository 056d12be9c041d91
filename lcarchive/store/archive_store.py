"""The one store of an archive (format v2): its icechunk repositories, their sessions and versions.

Layout (``docs/format.md``)::

    <root>/catalog/                      icechunk repository: the archive's catalog and history
        zarr.json (group attributes: lcarchive_format_version "2", bucket counts)
        families   string array (family_buckets,), one chunk each: JSON {family: pin}
        targets    string array (target_buckets,), one chunk each: JSON columns of the target index
        sky        string array (SKY_PIXELS,), one chunk each: the same lines, by HEALPix pixel of
                   the target's position (order SKY_ORDER, nested): what a cone search reads
    <root>/observations/<family>/        one icechunk repository per observation family:
        <observation id>/                the observation's Zarr group (the current light curves)
        <observation id>.<label>/        its release groups

A *family* is an observation and its release groups (``tess-spoc-2min-s0001`` and
``tess-spoc-2min-s0001.dr0``): moving a light curve between them is one atomic commit. A *pin*
records, for a family, the snapshot of its repository the archive's version shows and the
catalog entries of its groups. Every ingest batch commits its families, then one catalog
commit that pins them and updates the target index: that commit is the archive's new version,
its message names the inputs. A reader opens the catalog at a version (the latest, a tag, a
snapshot, a date) and every family at its pin, so it never sees half a batch; a batch killed
before its catalog commit is invisible, and re-running it completes it.

The store is split by job; :class:`ArchiveStore` composes them, each a layer over the one
before, and keeps the names it always had:

- :mod:`lcarchive.store.repositories`: the repositories, their digests, the process-wide caches;
- :mod:`lcarchive.store.sessions`: the catalog's session at a version, families' at their pins, commits;
- :mod:`lcarchive.store.catalog_reads`: pins, index lines, the catalog and analyses at a version;
- :mod:`lcarchive.store.versions`: history, tags, garbage collection;
- :mod:`lcarchive.store.buckets`: the catalog's JSON buckets (where a pin or an index line goes,
  and its text), and :mod:`lcarchive.store.models`: the pin and the index line.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping

import icechunk as ic
import pandas as pd

from lcarchive.store import buckets as _buckets
from lcarchive.store.buckets import FAMILY_BUCKETS, INDEX_COLUMNS, TARGET_BUCKETS, family_bucket, target_bucket
from lcarchive.store.models import FamilyPin, IndexLine
from lcarchive.store.repositories import CATALOG_REPO, FAMILIES_DIR, FORMAT_VERSION, clear_caches, family_of
from lcarchive.store.versions import Versions

__all__ = [
    "CATALOG_REPO",
    "FAMILIES_DIR",
    "FAMILY_BUCKETS",
    "FORMAT_VERSION",
    "INDEX_COLUMNS",
    "TARGET_BUCKETS",
    "ArchiveStore",
    "FamilyPin",
    "IndexLine",
    "clear_caches",
    "family_bucket",
    "family_of",
    "target_bucket",
]


class ArchiveStore(Versions):
    """The repositories of the archive at ``url``, read at one version.

    Parameters
    ----------
    url : str
        Archive root (local path, ``s3://bucket/prefix``...).
    storage_options : dict, optional
        fsspec-style options (credentials, ``anon``, ``endpoint_url``).
    version : str, optional
        Read the archive at this version: a tag, a branch or a snapshot ID of its catalog
        repository. Default: the latest.
    as_of : datetime.datetime, optional
        Read the archive as it was at this time (UTC if naive).
    """

    def __init__(
        self, url: str, storage_options: dict | None = None, version: str | None = None, as_of: _dt.datetime | None = None
    ) -> None:
        super().__init__(url, storage_options, version, as_of)  # here too for the documentation, which reads the signature

    # -- pins and index, written in a catalog session (lcarchive.store.buckets) ------------------
    @staticmethod
    def read_buckets(session: ic.Session, name: str, buckets: Iterable[int]) -> dict[int, str]:
        """The texts of some buckets of the catalog array ``name`` (:func:`lcarchive.store.buckets.read_buckets`)."""
        return _buckets.read_buckets(session, name, buckets)

    @staticmethod
    def write_buckets(session: ic.Session, name: str, texts: dict[int, str]) -> None:
        """Write some buckets of the catalog array ``name`` (:func:`lcarchive.store.buckets.write_buckets`)."""
        _buckets.write_buckets(session, name, texts)

    @staticmethod
    def update_pins(session: ic.Session, pins: Mapping[str, FamilyPin | None]) -> None:
        """Set (or, for None, remove) the pins of some families in a writable catalog session
        (:func:`lcarchive.store.buckets.update_pins`)."""
        _buckets.update_pins(session, pins)

    @staticmethod
    def update_index(
        session: ic.Session, lines: pd.DataFrame, drop_observations: Iterable[str] = (), drop_buckets: Iterable[int] = ()
    ) -> list[int]:
        """Upsert index lines in a writable catalog session; return the target buckets written
        (:func:`lcarchive.store.buckets.update_index`)."""
        return _buckets.update_index(session, lines, drop_observations, drop_buckets)

    @staticmethod
    def replace_catalog(session: ic.Session, pins: Mapping[str, FamilyPin], lines: pd.DataFrame | None) -> None:
        """Write every bucket of the pins and of the target index anew, in a writable catalog
        session (:func:`lcarchive.store.buckets.replace_catalog`)."""
        _buckets.replace_catalog(session, pins, lines)
