"""The output formats of downloads, behind a registry (as the input formats are, :mod:`lcarchive.formats`).

Each format is an :class:`OutputFormat` in a module of its own (:mod:`.zarr`, :mod:`.fits`,
:mod:`.parquet`, :mod:`.csv`, :mod:`.hdf5`), registered under its name by
:func:`register_output_format`. A download looks its format up once (:func:`output_format`) and
asks it everything that depends on the format: what one output unit holds (a target's file, a
shard's table, a group), the names of its files, the variables it reads, how it writes them and
its analysis tables. What several formats share sits in :mod:`.per_target` (one file per target:
FITS, HDF5) and :mod:`.tables` (one table per shard: Parquet, CSV).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pandas as pd

from lcarchive.search import GroupSelection, SelectionError

if TYPE_CHECKING:
    from lcarchive.downloads.context import DownloadContext, GroupPlan, RunRecord, Unit

__all__ = ["FORMATS", "OutputFormat", "output_format", "register_output_format"]


class OutputFormat:
    """One output format of downloads: what it declares, and how it writes a group's units.

    Attributes
    ----------
    name : str
        As ``download(format=...)`` and ``--format`` take it.
    suffix : str
        Of its files (``fits``, ``parquet``, ``csv``, ``h5``; ``zarr`` for its groups).
    analysis_suffix : str
        Of its analysis tables (``analyses/<method>.<suffix>``).
    per : {"target", "shard", "group"}
        What one output unit holds: one target's file, the selected targets of one stored
        shard (one table), or a whole group. A cluster download runs one task per group for
        ``group``, else one per shard.
    every_variable : bool
        Whether it writes every variable by default (no ``columns`` asked for), or the core ones.
    """

    name: ClassVar[str]
    suffix: ClassVar[str]
    analysis_suffix: ClassVar[str]
    per: ClassVar[Literal["target", "shard", "group"]]
    every_variable: ClassVar[bool] = False

    def more_variables(self, reader: Any, series: list[str], read: list[str]) -> list[str]:
        """Variables to read besides the selected columns ``read`` (per-target values, mostly)."""
        return []

    def units(self, plan_spec: list, group: GroupSelection, ident: dict, shas: list[str], reader: Any) -> list[Unit]:
        """The output units of a group's selected rows (``plan_spec`` goes into their keys)."""
        raise NotImplementedError

    async def write(self, ctx: DownloadContext, record: RunRecord, plan: GroupPlan, todo: list[Unit],
                    units_in_flight: asyncio.Semaphore) -> None:
        """Write the units ``todo`` of a group (the others are complete from an earlier run)."""
        raise NotImplementedError

    def write_analysis(self, table: pd.DataFrame, entry: dict, path: Path) -> None:
        """One analysis table (:mod:`lcarchive.downloads.analyses`) with its catalog entry."""
        raise NotImplementedError

    # only ``zarr`` has these: whole groups copied object by object, then a catalog of the folder
    mirrors_whole_groups: ClassVar[bool] = False

    async def mirror(self, ctx: DownloadContext, record: RunRecord, group: GroupSelection, reader: Any, bulk: Any,
                     shas: list[str]) -> None:
        raise NotImplementedError

    def planned_outputs(self) -> list[str]:
        """Outputs written once a download's light curves are (paths relative to the folder)."""
        return []

    def finish(self, ctx: DownloadContext, record: RunRecord) -> None:
        """Write those outputs."""

    def __repr__(self) -> str:
        return f"<output format {self.name}>"


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


# the formats of lcarchive, in the order ``--format`` lists them (each module defines one); imported
# last: each module subclasses OutputFormat above (E402 on purpose)
from lcarchive.downloads.formats.zarr import ZarrFormat  # noqa: E402
from lcarchive.downloads.formats.fits import FitsFormat  # noqa: E402
from lcarchive.downloads.formats.parquet import ParquetFormat  # noqa: E402
from lcarchive.downloads.formats.csv import CsvFormat  # noqa: E402
from lcarchive.downloads.formats.hdf5 import Hdf5Format  # noqa: E402

for _format in (ZarrFormat(), FitsFormat(), ParquetFormat(), CsvFormat(), Hdf5Format()):
    register_output_format(_format)
