"""Attributes that netCDF, Zarr and CF readers understand, on the datasets lcarchive returns.

The stored groups keep the catalog's entries as structured Zarr attributes (JSON objects and
lists: ``lcarchive_observation``, ``lcarchive_datasets``, ``instruments``). netCDF attributes
hold only text, numbers and arrays of numbers, so ``Dataset.to_netcdf`` refused the datasets
lcarchive returned; here such values become JSON text (``json.loads`` gives them back).

CF conventions (https://cfconventions.org, section 3) name a variable for people with
``long_name`` (the stored ``description``, from the FITS column's TTYPE comment) and describe a
bit field with ``flag_masks`` and ``flag_meanings`` (section 3.5): the quality flags of the
product's flag table (``catalog/quality/``; lightkurve's ``TessQualityFlags`` and
``KeplerQualityFlags`` for the missions' own products).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from lcarchive.quality import flag_table

__all__ = ["described", "plain_attrs"]


def plain_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes as netCDF and Zarr writers take them: text, numbers and arrays of numbers
    kept; dicts, lists and tuples of anything else as JSON text; booleans as 0/1; None dropped."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif isinstance(value, dict) or (isinstance(value, list | tuple) and not _numbers(value)):
            out[key] = json.dumps(value, default=str)
        else:
            out[key] = value
    return out


def _numbers(values: list | tuple) -> bool:
    return bool(values) and all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values)


def described(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` (changed in place, and returned) with netCDF-ready attributes, a ``long_name``
    for every variable with a description, and ``flag_masks``/``flag_meanings`` on ``quality``
    when its flag table is known (one table for all the observations of a light curve).

    Parameters
    ----------
    ds : xarray.Dataset
        An observation group (``quality_flags`` attribute) or a light curve (``quality_flags``
        coordinate on ``observation``).

    Returns
    -------
    xarray.Dataset
    """
    ds.attrs = plain_attrs(ds.attrs)
    for variable in ds.variables.values():
        variable.attrs = plain_attrs(variable.attrs)
        if "long_name" not in variable.attrs and variable.attrs.get("description"):
            variable.attrs["long_name"] = str(variable.attrs["description"])
    tables = {str(t) for t in np.atleast_1d(ds["quality_flags"].values)} if "quality_flags" in ds.coords else \
        {str(ds.attrs.get("quality_flags", ""))}
    if "quality" in ds and len(tables) == 1 and (name := tables.pop()):
        meanings: dict[int, list[str]] = {}
        for flag in flag_table(name).flags:  # a bit whose meaning changed between segments: both names
            meanings.setdefault(flag.value, []).append(flag.name.replace(" ", "_"))
        values = sorted(meanings)
        ds["quality"].attrs["flag_masks"] = np.array(values, dtype=np.int64).astype(ds["quality"].dtype)
        ds["quality"].attrs["flag_meanings"] = " ".join("_or_".join(dict.fromkeys(meanings[v])) for v in values)
    return ds
