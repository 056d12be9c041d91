"""lcarchive's settings: one frozen object instead of module constants.

Every tunable number lives in :class:`Settings`; code reads :func:`settings` when it needs one,
and tests (or a user) change them for a block with :func:`override`::

    with lcarchive.config.override(targets_per_shard=2):
        archive.ingest(files)

Worker processes (``Archive.ingest(jobs=...)``) start with the defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

__all__ = ["Settings", "override", "settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """lcarchive's settings.

    Attributes
    ----------
    targets_per_shard : int
        Targets per shard of the (target, cadence) arrays; one target is one inner chunk.
    batch_files : int
        Files parsed and written per step of an ingest, bounding its memory.
    parallel_min_files : int
        Below this many files an ingest parses in its own process (starting workers costs more).
    max_hdus : int
        A FITS file of more HDUs is refused after reading this many headers: light-curve
        products hold 2 to 25 (K2SFF: a table per aperture).
    max_decompressed_bytes : int
        A gzip-compressed input (``.fits.gz``) that inflates beyond this is refused.
    max_vector_elements : int
        Vector columns of a light-curve table with at most this many elements per row (astropy's
        Time columns: jd1, jd2) are kept as one variable per element; longer ones (pixel stamps)
        per target.
    read_attempts : int
        Attempts of one object read whose response is cut off or whose connection drops.
    coalesce_gap_bytes : int
        Byte gap up to which the chunks of nearby selected targets are fetched with one range
        request (measured against moto: docs/performance.md).
    coalesce_max_bytes : int
        Largest coalesced range request, bytes.
    """

    targets_per_shard: int = 512
    batch_files: int = 256
    parallel_min_files: int = 64
    max_hdus: int = 1000
    max_decompressed_bytes: int = 4 * 1024**3
    max_vector_elements: int = 16
    read_attempts: int = 4
    coalesce_gap_bytes: int = 1024 * 1024
    coalesce_max_bytes: int = 16 * 1024 * 1024


_current = Settings()


def settings() -> Settings:
    """The settings in force."""
    return _current


@contextlib.contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """Change some settings for the duration of a ``with`` block.

    Raises
    ------
    TypeError
        For a name that is no setting.
    """
    global _current
    previous = _current
    _current = dataclasses.replace(previous, **changes)
    try:
        yield _current
    finally:
        _current = previous
