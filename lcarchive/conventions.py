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

CF units (section 3.1) are strings the UDUNITS-2 library parses. Astronomy's units mostly are
(``d``, ``s``, ``degree``, ``ppm``), but UDUNITS knows no electron, pixel or magnitude: a
variable's ``units`` is spelled for UDUNITS (``e-/s`` becomes ``count s-1``, a pixel position
and a magnitude ``1``) and astropy's spelling, the one astropy and lightkurve read, is kept as
``astropy_unit`` (:func:`astropy_unit` gives it back). ``Conventions`` names the CF version.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from lcarchive.quality import flag_table

__all__ = ["CONVENTIONS", "astropy_unit", "described", "plain_attrs", "udunits"]

CONVENTIONS = "CF-1.11"

_UDUNITS = {
    "electron": "count",
    "ct": "count",
    "adu": "count",
    "pix": "1",
    "mag": "1",
    "deg": "degree",
    "arcsec": "arcsecond",
    "arcmin": "arcminute",
    "d": "d",
    "h": "h",
    "min": "min",
    "s": "s",
    "ppm": "ppm",
    "percent": "percent",
    "K": "K",
    "m": "m",
    "Jy": "Jy",
    "W": "W",
    "rad": "rad",
}
"""UDUNITS-2 names of astropy's base units (``udunits2-common.xml``, ``udunits2-accepted.xml``):
counted things (electrons, ADU) are ``count``; a pixel position and a magnitude have no
UDUNITS unit and are ``1``."""


def udunits(unit: str) -> str | None:
    """A unit in UDUNITS-2 spelling (CF section 3.1), or None when it has none here.

    Parameters
    ----------
    unit : str
        An astropy unit string (``"electron / s"``, ``"pix"``, ``"d"``), as the stored groups
        hold the FITS ``TUNITn`` (``e-/s``, ``pixel``...).

    Returns
    -------
    str or None
        ``"count s-1"``, ``"1"``, ``"d"``...; ``""`` for no unit.
    """
    if not unit:
        return ""
    from astropy import units as u

    try:
        parsed = u.Unit(unit)
    except ValueError:
        return None
    if parsed.scale != 1 or (not parsed.bases and parsed != u.dimensionless_unscaled):
        return None
    terms = []
    for base, power in zip(parsed.bases, parsed.powers, strict=True):
        name = _UDUNITS.get(base.to_string())
        if name is None:
            return None
        if name != "1":
            terms.append(name if power == 1 else f"{name}{int(power) if float(power).is_integer() else power}")
    return " ".join(terms) or "1"


def astropy_unit(attrs: dict[str, Any]) -> str:
    """A variable's unit as astropy spells it: ``astropy_unit`` where :func:`described` respelled
    ``units`` for UDUNITS, else ``units`` ("" when it has none)."""
    return str(attrs.get("astropy_unit", attrs.get("units", "")) or "")


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
    """``ds`` (changed in place, and returned) with netCDF-ready attributes, ``Conventions``, a
    ``long_name`` for every variable with a description, units in UDUNITS spelling (astropy's in
    ``astropy_unit``), and ``flag_masks``/``flag_meanings`` on ``quality`` when its flag table is
    known (one table for all the observations of a light curve).

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
    ds.attrs.setdefault("Conventions", CONVENTIONS)
    for variable in ds.variables.values():
        variable.attrs = plain_attrs(variable.attrs)
        if "long_name" not in variable.attrs and variable.attrs.get("description"):
            variable.attrs["long_name"] = str(variable.attrs["description"])
        unit = variable.attrs.get("units")
        if isinstance(unit, str) and unit and "astropy_unit" not in variable.attrs:
            spelled = udunits(unit)
            if spelled is not None and spelled != unit:
                variable.attrs["astropy_unit"] = unit
                variable.attrs["units"] = spelled
    tables = (
        {str(t) for t in np.atleast_1d(ds["quality_flags"].values)}
        if "quality_flags" in ds.coords
        else {str(ds.attrs.get("quality_flags", ""))}
    )
    if "quality" in ds and len(tables) == 1 and (name := tables.pop()):
        meanings: dict[int, list[str]] = {}
        for flag in flag_table(name).flags:  # a bit whose meaning changed between segments: both names
            meanings.setdefault(flag.value, []).append(flag.name.replace(" ", "_"))
        values = sorted(meanings)
        ds["quality"].attrs["flag_masks"] = np.array(values, dtype=np.int64).astype(ds["quality"].dtype)
        ds["quality"].attrs["flag_meanings"] = " ".join("_or_".join(dict.fromkeys(meanings[v])) for v in values)
    return ds
