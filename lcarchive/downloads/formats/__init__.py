"""The output formats of downloads, behind a registry (as the input formats are, :mod:`lcarchive.formats`).

Each format is an :class:`OutputFormat` (defined in :mod:`lcarchive.downloads.context`, beside
the context it is given, so that no format module imports this package) in a module of its own (:mod:`.zarr`, :mod:`.fits`,
:mod:`.parquet`, :mod:`.csv`, :mod:`.hdf5`), registered under its name by
:func:`register_output_format`. A download looks its format up once (:func:`output_format`) and
asks it everything that depends on the format: what one output unit holds (a target's file, a
shard's table, a group), the names of its files, the variables it reads, how it writes them and
its analysis tables. What several formats share sits in :mod:`.per_target` (one file per target:
FITS, HDF5) and :mod:`.tables` (one table per shard: Parquet, CSV).
"""

from __future__ import annotations

from lcarchive.downloads.context import OutputFormat
from lcarchive.downloads.formats.csv import CsvFormat
from lcarchive.downloads.formats.fits import FitsFormat
from lcarchive.downloads.formats.hdf5 import Hdf5Format
from lcarchive.downloads.formats.parquet import ParquetFormat
from lcarchive.downloads.formats.zarr import ZarrFormat
from lcarchive.search import SelectionError

__all__ = ["FORMATS", "OutputFormat", "format_choices", "output_format", "register_output_format"]


FORMATS: dict[str, OutputFormat] = {}
"""The registered output formats by name, in the order they were registered."""


def register_output_format(fmt: OutputFormat) -> OutputFormat:
    """Add an output format to the registry (replacing one of the same name)."""
    FORMATS[fmt.name] = fmt
    return fmt


def output_format(name: str) -> OutputFormat:
    """The registered output format of this name.

    Raises
    ------
    SelectionError
        For a name no format is registered under, listing those that are.
    """
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise SelectionError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def format_choices() -> str:
    """The registered formats' names in words, each with its summary, as ``--format``'s help
    lists them: ``zarr, fits, parquet, csv or hdf5 (SkyPortal photometric series)``."""
    named = [f"{name} ({fmt.summary})" if fmt.summary else name for name, fmt in FORMATS.items()]
    return " or ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else "".join(named)


# the formats of lcarchive, in the order ``--format`` lists them (each module defines one)
for _format in (ZarrFormat(), FitsFormat(), ParquetFormat(), CsvFormat(), Hdf5Format()):
    register_output_format(_format)
