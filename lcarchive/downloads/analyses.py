"""Results of archive-wide analyses (``lcarchive compute``) in a download.

An analysis's results are requested as columns, by the names a search filters on
(:func:`lcarchive.search.with_analyses`): ``bls_period``, ``bls_snr``, ``lombscargle_power``..., or
the method alone (``bls``) for all of its results; ``--columns all`` takes every analysis. They are
written as one table per analysis, ``analyses/<method>.<ext>``, one row per selected light curve
the analysis covered: ``target``, ``observation`` and the requested results, the analysis's
catalog entry (its lineage) in the table's metadata (Parquet, HDF5; its ID and archive version in
a FITS header; CSV has none: the manifest names the analysis). The table is in the download's format (a
FITS binary table, Parquet, CSV, HDF5), Parquet for ``zarr`` downloads; it is written under a
temporary name and recorded in the manifest like every output, so a second run skips it and
``download --verify`` checks it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lcarchive.downloads.context import DownloadContext, RunRecord
from lcarchive.downloads.manifest import sha256_file, unit_key
from lcarchive.search import GroupSelection

if TYPE_CHECKING:
    from astropy.table import Table

    from lcarchive.downloads.context import OutputFormat
    from lcarchive.handle import ArchiveReads

__all__ = ["ANALYSES_DIR", "RESULT_UNITS", "analysis_outputs", "astropy_table", "split_columns", "write_analyses"]

ANALYSES_DIR = "analyses"

RESULT_UNITS = {"period": "d", "duration": "d", "t0": "d"}
"""Units of the results (``t0`` in the observation's mission time, BTJD or BKJD)."""


def split_columns(archive: ArchiveReads, columns: Sequence[str] | None) -> tuple[list[str] | None, dict[str, list[str]]]:
    """Split requested columns into light-curve variables and analysis results.

    Returns
    -------
    (list of str or None, dict of str to list of str)
        The light-curve columns (None when only analysis results were asked for: the default
        columns), and per analysis method the result variables to write.
    """
    if not columns:
        return (None if columns is None else []), {}
    newest = {a.method: a for a in archive.analyses()}
    if not newest:
        return list(columns), {}
    picked: dict[str, list[str]] = defaultdict(list)
    rest = []
    for column in columns:
        method, _, variable = column.partition("_")
        if column == "all":
            rest.append(column)
            for name, entry in newest.items():
                picked[name] = list(entry.variables)
        elif column in newest:
            picked[column] = list(newest[column].variables)
        elif method in newest and variable in newest[method].variables:
            if variable not in picked[method]:
                picked[method].append(variable)
        else:
            rest.append(column)
    return (rest or None), dict(picked)


def analysis_outputs(fmt: OutputFormat, picked: dict[str, list[str]]) -> list[str]:
    """The paths (relative to the download folder) of the analysis tables a download writes."""
    return [f"{ANALYSES_DIR}/{method}.{fmt.analysis_suffix}" for method in sorted(picked)]


def write_analyses(ctx: DownloadContext, record: RunRecord, groups: list[GroupSelection], picked: dict[str, list[str]]) -> None:
    """Write the table of each picked analysis for the selected light curves (see the module)."""
    if not picked:
        return
    selected = pd.DataFrame(
        {
            "target": np.concatenate([g.targets for g in groups]) if groups else np.empty(0, np.int64),
            "observation": [g.observation for g in groups for _ in range(g.targets.size)],
        }
    )
    for method, variables in sorted(picked.items()):
        results = ctx.archive.analysis(method)
        entry = results.attrs["analysis"]
        table = selected.merge(results[["target", "observation", *variables]], on=["target", "observation"], how="inner")
        name = f"{ANALYSES_DIR}/{method}.{ctx.format.analysis_suffix}"
        key = unit_key("analysis", entry.id, variables, table[["target", "observation"]].values.tolist())
        if record.manifest.done(name, key):
            record.report.skipped.append(name)
            continue
        path = ctx.dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial{path.suffix}")
        ctx.format.write_analysis(table, entry.model_dump(mode="json"), partial)
        os.replace(partial, path)
        size = path.stat().st_size
        record.manifest.record(name, key, [(name, size, sha256_file(path))], analysis=entry.id, rows=len(table))
        record.wrote(name, size)


def astropy_table(table: pd.DataFrame) -> Table:
    """An analysis table as an astropy table with the results' units (for FITS and HDF5)."""
    from astropy.table import Table

    out = Table.from_pandas(table)
    for column in out.colnames:
        if column in RESULT_UNITS:
            out[column].unit = RESULT_UNITS[column]
    return out
