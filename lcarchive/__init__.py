"""lcarchive: a Zarr-backed cloud object-store archive of astronomical light curves.

Each observation (mission x product x sector/quarter/campaign) is one Zarr v3 group
of ``time``, ``flux``, ``flux_err``, ``quality`` and the other columns of the source
products, indexed by target (TIC/KIC/EPIC ID), in icechunk repositories (transactional,
versioned); a pydantic catalog describes missions, instruments, products, observations,
datasets and their lineage.
"""

from lcarchive.accessor import from_lightkurve  # registers ds.lc on xarray datasets
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
