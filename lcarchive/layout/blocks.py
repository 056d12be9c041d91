"""Observation groups as xarray datasets, in memory (see ``docs/format.md``).

An observation group has dimensions ``target`` and ``cadence``; coordinates
``target`` (int64 TIC/KIC/EPIC ID) and ``cadenceno`` (int64, along ``cadence``,
the sorted union of the targets' cadence numbers); variables on
(``target``, ``cadence``) for every numeric column; per-target variables on
``target``.

This module turns parsed files into in-memory ``Block`` objects, merges
blocks on the union of their cadence numbers, and converts them to and from
``xarray.Dataset``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from lcarchive.formats.record import LightCurveFile

__all__ = [
    "INT_FILL",
    "Block",
    "block_from_dataset",
    "block_from_file",
    "fill_value",
    "merge_blocks",
]

INT_FILL = {np.dtype(t): np.iinfo(t).min for t in ("int8", "int16", "int32", "int64")}
"""Fill of integer variables where a target has no row for a cadence: the dtype's
minimum (-2147483648 for int32 ``quality``), never a real quality bitmask."""


def fill_value(dtype: np.dtype) -> Any:
    """Return the documented fill of a dtype: NaN for floats, the minimum for signed and the maximum for unsigned ints, "" for strings."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "i":
        return INT_FILL.get(dtype, np.iinfo(dtype).min)
    if dtype.kind == "u":
        return np.iinfo(dtype).max
    return ""


@dataclass
class Block:
    """Rows of an observation held in memory.

    Attributes
    ----------
    target : numpy.ndarray, shape (n_targets,), int64
    cadenceno : numpy.ndarray, shape (n_cadences,), int64, sorted
    series : dict of str to numpy.ndarray, shape (n_targets, n_cadences)
    per_target : dict of str to numpy.ndarray, shape (n_targets,) or (n_targets, n_rows, n_columns)
        Per-target values; 3-D for images (the APERTURE mask), padded with the fill.
    attrs : dict of str to dict
        Attributes of each variable (units, source column, description).
    """

    target: np.ndarray
    cadenceno: np.ndarray
    series: dict[str, np.ndarray]
    per_target: dict[str, np.ndarray]
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def select(self, rows: list[int]) -> Block:
        """Return the block of the given row positions (views when they are a contiguous run)."""
        idx: Any = np.asarray(rows, dtype=np.int64)
        if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
            idx = slice(int(idx[0]), int(idx[0]) + idx.size)
        return Block(
            self.target[idx],
            self.cadenceno,
            {k: v[idx] for k, v in self.series.items()},
            {k: v[idx] for k, v in self.per_target.items()},
            self.attrs,
        )


def _per_target_array(value: Any) -> np.ndarray:
    if value is None:
        return np.array([np.nan])
    if isinstance(value, bool):
        return np.array([int(value)], dtype=np.int8)
    if isinstance(value, int):
        return np.array([value], dtype=np.int64)
    if isinstance(value, float):
        return np.array([value], dtype=np.float64)
    return np.array([str(value)], dtype=object)


def block_from_file(lc: LightCurveFile) -> Block:
    """Return a one-target block of a parsed file, rows sorted by cadence number."""
    ordered = bool(np.all(np.diff(lc.cadenceno) > 0))
    order = slice(None) if ordered else np.argsort(lc.cadenceno, kind="stable")
    series: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for name, col in lc.columns.items():
        series[name] = col.data[order][np.newaxis, :]  # a view when already in cadence order
        attrs[name] = {
            "units": col.units or "",
            "fits_unit": col.fits_unit or "",
            "source_column": col.source,
            "source_hdu": col.hdu,
            "description": col.description,
        }
        if col.fits_format:
            attrs[name]["fits_format"] = col.fits_format
        if col.vector_index is not None:
            attrs[name]["vector_index"] = col.vector_index
        if np.dtype(col.data.dtype).kind in "iu":
            attrs[name]["fill_value_meaning"] = (
                f"{fill_value(col.data.dtype)} marks a cadence for which the target has no row in its source file"
            )
        elif col.data.dtype == object:  # a column kept as its bytes, one string a row
            attrs[name]["fill_value_meaning"] = (
                '"" marks a cadence for which the target has no row in its source file; each string is the '
                "field's bytes in the file (latin-1), padding included"
            )
    attrs["cadenceno"] = {
        "description": "cadence number (CADENCENO), union over targets",
        "source_column": lc.product.columns.cadenceno or "",
    }
    time_system = lc.mission.time_system
    attrs["time"].update(
        {
            "units": time_system.unit,
            "time_format": time_system.format_name,
            "time_scale": time_system.scale,
            "reference_epoch_jd": time_system.reference_epoch,
            "description": f"{attrs['time']['description'] or 'time stamp'}; "
            f"{time_system.format_name} = BJD_{time_system.scale.upper()} - {time_system.reference_epoch:.1f}",
        }
    )
    per_target: dict[str, np.ndarray] = {}
    for name, (value, a) in lc.target_values.items():
        per_target[name] = _per_target_array(value)
        attrs[name] = dict(a)
    for name, (image, a) in lc.images.items():
        per_target[name] = image[np.newaxis]
        attrs[name] = dict(a)
    for index, (name, text) in enumerate(lc.headers.items()):
        per_target[name] = np.array([text], dtype=object)
        if name.startswith("header_"):
            attrs[name] = {
                "description": f"complete FITS header of HDU {name.removeprefix('header_').upper()}, 80-character cards",
                "hdu_index": index,
            }
        else:  # hdf5_attributes
            attrs[name] = {
                "description": "every attribute of the HDF5 file's root, groups and datasets: JSON {path: {name: value}}"
            }
    provenance = {
        "source_file": (lc.name, "name of the ingested file"),
        "source_sha256": (lc.sha256, "SHA-256 of the ingested file"),
        "source_size": (lc.size, "size of the ingested file, bytes"),
        "data_release": (-1 if lc.data_release is None else lc.data_release, "DATA_REL keyword; -1: none"),
        "pipeline_version": (lc.pipeline_version or "", "PROCVER keyword"),
        "file_date": (lc.file_date or "", "DATE keyword: file creation date"),
        "product_version": (
            lc.product_version,
            "version of the product (an HLSP's release, e.g. v01) told by the product's version_rules; \"\" when none",
        ),
        "n_rows": (lc.n_rows, "rows of the file's light-curve table: the cadences it has"),
        "tstart": (
            math.nan if lc.span is None else lc.span[0],
            "TSTART of the file's header (mission time, d): start of the segment it was cut from; NaN: none",
        ),
        "tstop": (
            math.nan if lc.span is None else lc.span[1],
            "TSTOP of the file's header (mission time, d): end of the segment it was cut from; NaN: none",
        ),
        "coverage": (
            lc.coverage,
            "fraction of TSTART..TSTOP spanned by the file's finite time stamps (0..1; NaN: the file gives no TSTART/TSTOP)",
        ),
    }
    provenance["integrity"] = (
        lc.integrity.state,
        "integrity of the ingested file: sound, no-checksums, stale-cards or "
        "damaged (its DATASUM/CHECKSUM cards checked on its raw bytes; lcarchive.formats.checksums)",
    )
    provenance["integrity_hdus"] = (
        lc.integrity.detail,
        "per HDU, its DATASUM and CHECKSUM cards against its raw bytes: "
        "JSON [{hdu, name, DATASUM, CHECKSUM}], each ok, fail or absent",
    )
    provenance["input_warnings"] = (
        json.dumps(lc.warnings),
        "values kept as the file gives them although they contradict "
        "its mission or are out of range (time-system keywords, coordinates): JSON list",
    )
    if lc.target_catalog.name != lc.mission.target_catalog:  # absent from groups of the mission's catalog only
        provenance["target_catalog"] = (
            lc.target_catalog.name,
            "catalog of the target's ID where it is not the group's target_catalog attribute (the mission's): "
            "'Gaia DR2', 'Gaia DR3', 'MPC'; \"\": the group's",
        )
    if lc.designation:
        provenance["target_designation"] = (
            lc.designation,
            "the target's designation (MPC: '3I', '(11251)'), whose key (lcarchive.identifiers.designation_key) "
            'is the target coordinate; "": an integer ID, the target coordinate itself',
        )
    if lc.notes:
        provenance["ingest_notes"] = (
            json.dumps(lc.notes, sort_keys=True),
            "how the file departs from its product's usual form (JSON)",
        )
    for name, (value, desc) in provenance.items():
        per_target[name] = _per_target_array(value)
        attrs[name] = {"description": desc}
    return Block(np.array([lc.target], dtype=np.int64), lc.cadenceno[order].astype(np.int64), series, per_target, attrs)


def block_from_dataset(ds: xr.Dataset) -> Block:
    """Return the block of an observation dataset (loaded into memory)."""
    series, per_target, attrs = {}, {}, {}
    for name, var in ds.data_vars.items():
        attrs[name] = dict(var.attrs)
        values = var.values
        if values.dtype.kind == "T":  # numpy StringDType from zarr's variable-length strings
            values = values.astype(object)
        if var.dims == ("target", "cadence"):
            series[name] = values
        elif var.dims[:1] == ("target",) and "cadence" not in var.dims:
            per_target[name] = values
    attrs["cadenceno"] = dict(ds["cadenceno"].attrs)
    return Block(
        ds["target"].values.astype(np.int64),
        ds["cadenceno"].values.astype(np.int64),
        series,  # type: ignore[arg-type]  # xarray's names are Hashable; ours are str
        per_target,  # type: ignore[arg-type]  # as above
        attrs,  # type: ignore[arg-type]  # as above
    )


def _common_dtype(arrays: list[np.ndarray]) -> np.dtype:
    kinds = {a.dtype.kind for a in arrays}
    if "O" in kinds or "U" in kinds or "T" in kinds:
        return np.dtype(object)
    dtype = np.result_type(*arrays)
    return dtype


def merge_blocks(blocks: list[Block]) -> Block:
    """Stack blocks along ``target`` on the sorted union of their cadence numbers.

    Cadences a target lacks are filled with ``fill_value``; variables a block
    lacks are filled likewise. Target order is the order of the blocks.
    """
    if len(blocks) == 1:
        return blocks[0]
    first = blocks[0].cadenceno
    if all(np.array_equal(b.cadenceno, first) for b in blocks[1:]):
        cadenceno = first
    else:
        cadenceno = np.unique(np.concatenate([b.cadenceno for b in blocks]))
    n_t = sum(b.target.size for b in blocks)
    target = np.concatenate([b.target for b in blocks])
    attrs: dict[str, dict] = {}
    for b in blocks:
        for k, v in b.attrs.items():
            attrs.setdefault(k, v)
    # where each block's cadences go on the union axis; None when a block has the whole axis
    columns = [None if np.array_equal(b.cadenceno, cadenceno) else np.searchsorted(cadenceno, b.cadenceno) for b in blocks]
    series: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(k for b in blocks for k in b.series):
        dtype = _common_dtype([b.series[name] for b in blocks if name in b.series])
        if all(c is None and name in b.series for c, b in zip(columns, blocks, strict=True)):
            series[name] = np.concatenate([b.series[name] for b in blocks]).astype(dtype, copy=False)
            continue
        out = np.full((n_t, cadenceno.size), fill_value(dtype), dtype=dtype)
        row = 0
        for b, cols in zip(blocks, columns, strict=True):
            if name in b.series:
                out[row : row + b.target.size, slice(None) if cols is None else cols] = b.series[name]
            row += b.target.size
        series[name] = out
    per_target: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(k for b in blocks for k in b.per_target):
        present = [b.per_target[name] for b in blocks if name in b.per_target]
        dtype = _common_dtype(present)
        extra = tuple(max(a.shape[d] for a in present) for d in range(1, present[0].ndim))
        parts = []
        for b in blocks:
            part = np.full((b.target.size, *extra), fill_value(dtype), dtype)
            if name in b.per_target:
                values = b.per_target[name]
                part[(slice(None), *(slice(0, n) for n in values.shape[1:]))] = values
            parts.append(part)
        merged = np.concatenate(parts)
        if dtype == object:
            merged = np.array([v if isinstance(v, str) else "" for v in merged], dtype=object)
        per_target[name] = merged
    return Block(target, cadenceno, series, per_target, attrs)


def to_dataset(block: Block, attrs: dict[str, Any]) -> xr.Dataset:
    """Return the xarray form of a block, with group attributes ``attrs``."""
    data_vars = {}
    for name, values in block.series.items():
        if values.dtype.kind in "OU":  # text columns: strings, stored as zarr's variable-length UTF-8
            values = values.astype(np.dtypes.StringDType())
        data_vars[name] = xr.Variable(("target", "cadence"), values, attrs=block.attrs.get(name, {}))
    for name, values in block.per_target.items():
        if values.ndim == 1:
            dims: tuple[str, ...] = ("target",)
        elif values.ndim == 3:  # images: (rows, columns)
            dims = ("target", f"{name}_row", f"{name}_column")
        else:  # cubes, table columns of their own length
            dims = ("target", *(f"{name}_dim{k}" for k in range(values.ndim - 1)))
        if values.dtype == object:  # strings: keep them strings even with no rows
            values = np.array([str(v) for v in values], dtype=np.dtypes.StringDType())
        data_vars[name] = xr.Variable(dims, values, attrs=block.attrs.get(name, {}))
    coords = {
        "target": xr.Variable(("target",), block.target, attrs={"description": "TIC, KIC or EPIC ID"}),
        "cadenceno": xr.Variable(
            ("cadence",),
            block.cadenceno,
            attrs=block.attrs.get("cadenceno", {"description": "cadence number (CADENCENO), union over targets"}),
        ),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
