"""lcarchive: a Zarr-backed cloud object-store archive of astronomical light curves.

Each observation (mission x product x sector/quarter/campaign) is one Zarr v3 group
of ``time``, ``flux``, ``flux_err``, ``quality`` and the other columns of the source
products, indexed by target (TIC/KIC/EPIC ID), in icechunk repositories (transactional,
versioned); a pydantic catalog describes missions, instruments, products, observations,
datasets and their lineage.

Its public names are imported when first used (``lcarchive.Archive`` imports the archive and
what it needs; ``import lcarchive`` alone imports none of them), so that the ``lcarchive``
command starts fast. The ``ds.lc`` accessor is registered with xarray when the archive module is
imported, which any :class:`Archive`, :func:`open_archive` or ``engine="lcarchive"`` dataset
does first, or by ``import lcarchive.accessor``.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names the module attributes below import on first use
    from typing import Any

    from lcarchive.accessor import from_lightkurve
    from lcarchive.archive import Archive, open_archive
    from lcarchive.catalog.models import Catalog
    from lcarchive.downloads import DownloadReport, Selection, SelectionError, VerifyReport, download, verify
    from lcarchive.errors import (
        ArchiveBusyError,
        ArchiveNotFoundError,
        BadInputError,
        CorruptFileError,
        DamagedArchiveError,
        DamagedObjectError,
        DestinationError,
        ExportError,
        InvalidIdentifierError,
        InvalidTargetError,
        LcarchiveError,
        MixedProductsError,
        ObservationNotFoundError,
        StoreAccessError,
        StoreError,
        TargetNotFoundError,
        UnknownProductError,
        UnknownVariableError,
        UnrecognizedProductError,
    )
    from lcarchive.ingest import IngestReport

__version__ = "0.1.0"

_ERRORS = (
    "ArchiveBusyError",
    "ArchiveNotFoundError",
    "BadInputError",
    "CorruptFileError",
    "DamagedArchiveError",
    "DamagedObjectError",
    "DestinationError",
    "ExportError",
    "InvalidIdentifierError",
    "InvalidTargetError",
    "LcarchiveError",
    "MixedProductsError",
    "ObservationNotFoundError",
    "StoreAccessError",
    "StoreError",
    "TargetNotFoundError",
    "UnknownProductError",
    "UnknownVariableError",
    "UnrecognizedProductError",
)

_WHERE = {
    "Archive": "lcarchive.archive",
    "open_archive": "lcarchive.archive",
    "Catalog": "lcarchive.catalog.models",
    "DownloadReport": "lcarchive.downloads",
    "Selection": "lcarchive.downloads",
    "SelectionError": "lcarchive.downloads",
    "VerifyReport": "lcarchive.downloads",
    "download": "lcarchive.downloads",
    "verify": "lcarchive.downloads",
    "IngestReport": "lcarchive.ingest",
    "from_lightkurve": "lcarchive.accessor",
    **dict.fromkeys(_ERRORS, "lcarchive.errors"),
}
"""The module each public name is imported from, on first use."""

__all__ = [
    "Archive",
    "ArchiveBusyError",
    "ArchiveNotFoundError",
    "BadInputError",
    "Catalog",
    "CorruptFileError",
    "DamagedArchiveError",
    "DamagedObjectError",
    "DestinationError",
    "DownloadReport",
    "ExportError",
    "IngestReport",
    "InvalidIdentifierError",
    "InvalidTargetError",
    "LcarchiveError",
    "MixedProductsError",
    "ObservationNotFoundError",
    "Selection",
    "SelectionError",
    "StoreAccessError",
    "StoreError",
    "TargetNotFoundError",
    "UnknownProductError",
    "UnknownVariableError",
    "UnrecognizedProductError",
    "VerifyReport",
    "__version__",
    "download",
    "from_lightkurve",
    "open_archive",
    "verify",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (and kept: the next use is a plain
    attribute); a submodule (``lcarchive.config``) is imported too."""
    where = _WHERE.get(name)
    if where is not None:
        value = getattr(importlib.import_module(where), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, and the submodules imported so far."""
    return sorted(set(__all__) | {n for n in globals() if f"{__name__}.{n}" in sys.modules})
