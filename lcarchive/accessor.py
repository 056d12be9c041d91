"""``ds.lc``: light-curve operations on lcarchive's xarray datasets.

Registered on import of :mod:`lcarchive` (xarray's ``register_dataset_accessor``). It works on
one target's light curve (:meth:`lcarchive.Archive.light_curve`, ``xr.open_dataset(root,
engine="lcarchive", target=...)``: dimension ``cadence``, one ``observation`` coordinate per
observation) and on an observation group (``Archive.open_observation``: dimensions ``target``
and ``cadence``)::

    lc = archive.light_curve(261136679)
    lc.lc.good().lc.remove_nans().lc.normalize().lc.to_lightkurve().fold(period=6.268)

Quality masks come from each observation's own flag table in the catalog (``catalog/quality/``)
with lightkurve's ``default``/``hard``/``hardest`` choices (:mod:`lcarchive.quality`); times are
BTJD/BKJD in TDB (the mission's time system). Folding, binning, flattening and periodograms are
lightkurve's: convert with :meth:`LightCurveAccessor.to_lightkurve`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive import quality as _quality
from lcarchive.conventions import astropy_unit
from lcarchive.errors import LcarchiveError
from lcarchive.formats.record import is_text_format

__all__ = ["LightCurveAccessor", "from_lightkurve"]

_MISSION_META = {"tess": ("TICID", "SECTOR"), "kepler": ("KEPLERID", "QUARTER"), "k2": ("KEPLERID", "CAMPAIGN")}


def _lightkurve() -> Any:
    try:
        import lightkurve
    except ImportError:  # pragma: no cover - lightkurve is installed with lcarchive's test extras
        raise LcarchiveError("ds.lc.to_lightkurve needs lightkurve: pip install lightkurve") from None
    return lightkurve


@xr.register_dataset_accessor("lc")
class LightCurveAccessor:
    """Light-curve operations on a dataset of lcarchive (``ds.lc``)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    # -- what each cadence is ------------------------------------------------------------------
    def _observation_of_cadences(self) -> tuple[np.ndarray, dict[str, dict]]:
        """Per cadence, the index of its observation; and per observation its attributes."""
        ds = self._ds
        if "cadence_observation" in ds.coords:  # one target's light curve
            ids = [str(o) for o in ds["observation"].values]
            info = {
                obs: {
                    name: ds[name].values[i]
                    for name in ("product", "segment", "quality_flags", "observation_mission", "observation_target")
                    if name in ds.coords
                }
                for i, obs in enumerate(ids)
            }
            index = pd.Index(ids).get_indexer(ds["cadence_observation"].values.astype(str)).astype(np.int64)
            if index.size and index.min() < 0:
                raise LcarchiveError("this dataset has cadences of an observation its 'observation' coordinate lacks")
            return index, info
        obs = str(ds.attrs.get("observation", ""))
        return (
            np.zeros(ds.sizes["cadence"], dtype=np.int64),
            {obs: {k: ds.attrs.get(k) for k in ("product", "segment", "quality_flags")}},
        )

    @staticmethod
    def _segment(meta: dict) -> int | None:
        """An observation's segment for its flag table, None when unknown (stored as -1)."""
        segment = meta.get("segment")
        return None if segment is None or int(segment) < 0 else int(segment)

    def _require(self, name: str) -> xr.DataArray:
        if name not in self._ds:
            raise LcarchiveError(f"this dataset has no {name!r} variable (ds.lc needs time, flux, flux_err, quality)")
        return self._ds[name]

    # -- quality ---------------------------------------------------------------------------------
    def quality_mask(self, bitmask: str | int = "default") -> xr.DataArray:
        """Which cadences pass a quality mask, from each observation's own flag table.

        Parameters
        ----------
        bitmask : {"default", "hard", "hardest", "none"} or int
            lightkurve's ``quality_bitmask`` choices, as the catalog's flag tables mark them
            (``catalog/quality/*.json``), or an explicit integer bitmask.

        Returns
        -------
        xarray.DataArray of bool, the shape of ``quality``
            True where ``quality & bitmask == 0`` and the cadence is not padding (a cadence the
            target has no row for), as lightkurve's ``create_quality_mask``. An observation whose
            product names no flag table (a generic table, a SkyPortal series) has no flag a named
            mask could select: a named mask keeps all its cadences but padding (an integer
            bitmask cuts on its raw bits).

        Raises
        ------
        lcarchive.LcarchiveError
            No ``quality`` variable.
        """
        q = self._require("quality")
        index, info = self._observation_of_cadences()
        good = np.zeros(q.shape, dtype=bool)
        values = q.values
        for i, meta in enumerate(info.values()):
            cadences = index == i
            if isinstance(bitmask, (int, np.integer)):
                mask = np.uint64(int(bitmask))
                sub = values[..., cadences]
                ok = ((sub.astype(np.int64).astype(np.uint64) & mask) == 0) & (sub != _quality.PADDING)
            else:
                table = meta.get("quality_flags")
                if not table:  # no flags a name could select (a generic table, a SkyPortal series): padding only
                    ok = values[..., cadences] != _quality.PADDING
                else:
                    ok = _quality.good_cadences(values[..., cadences], table, bitmask, self._segment(meta))  # type: ignore[arg-type]  # a table name the catalog gives, not a Literal
            good[..., cadences] = ok
        return xr.DataArray(
            good,
            dims=q.dims,
            coords=q.coords,
            name="quality_mask",
            attrs={"description": f"cadences passing the {bitmask!r} quality mask"},
        )

    def good(self, bitmask: str | int = "default") -> xr.Dataset:
        """The cadences that pass :meth:`quality_mask` (lightkurve's ``read(quality_bitmask=...)``).

        One target's light curve keeps those cadences only; an observation group (target ×
        cadence) keeps its shape, with the failing values of its light-curve variables set to
        NaN (floats) or left as they are (integers; use :meth:`quality_mask`).
        """
        mask = self.quality_mask(bitmask)
        if mask.ndim == 1:
            out = self._ds.isel(cadence=np.flatnonzero(mask.values))
            out.attrs["quality_bitmask"] = bitmask
            return out
        out = self._ds.copy()
        for name, var in self._ds.data_vars.items():
            if var.dims[:2] == mask.dims and var.dtype.kind == "f":
                out[name] = var.where(mask)
        return out

    def flag_counts(self, bitmask: str | int = "default") -> pd.Series:
        """How many cadences (with data) each flag is set in, and how many the mask removes.

        Returns
        -------
        pandas.Series of int
            Indexed by flag name (the catalog's names, e.g. ``AttitudeTweak``); the last entry,
            ``removed by <bitmask>``, counts the cadences :meth:`good` drops (a cadence with two
            flags is counted under each flag, once in the total).
        """
        q = self._require("quality").values
        index, info = self._observation_of_cadences()
        counts: dict[str, int] = {}
        for i, meta in enumerate(info.values()):
            table = meta.get("quality_flags")
            if not table:
                continue
            sub = q[..., index == i]
            sub = sub[sub != _quality.PADDING]
            values, n = np.unique(sub, return_counts=True)
            names = _quality.decode(values, table, self._segment(meta))
            for value, count in zip(values.tolist(), n.tolist(), strict=True):
                for flag in names.get(value, []):
                    counts[flag] = counts.get(flag, 0) + count
        real = q != _quality.PADDING
        removed = int((real & ~self.quality_mask(bitmask).values).sum())
        return pd.Series({**dict(sorted(counts.items())), f"removed by {bitmask}": removed}, dtype="int64", name="cadences")

    # -- time ------------------------------------------------------------------------------------
    @property
    def time(self) -> Any:
        """The time stamps as ``astropy.time.Time`` in TDB, format ``btjd``/``bkjd`` (lightkurve's
        formats, registered when lightkurve is installed; ``jd`` otherwise).

        NaN time stamps (cadences without a time, e.g. during safe modes) are masked, not an
        error. Shape: the ``time`` variable's. Source: the mission's time system in the catalog
        (BTJD = BJD_TDB − 2457000, BKJD = BJD_TDB − 2454833).
        """
        from astropy.time import Time

        t = np.asarray(self._require("time").values, dtype=np.float64)
        attrs = {**self._ds.attrs, **self._ds["time"].attrs}
        epoch = float(attrs.get("time_reference_epoch_jd", attrs.get("reference_epoch_jd", 2457000.0)))
        scale = str(attrs.get("time_scale", "tdb"))
        bad = ~np.isfinite(t)
        out = Time(np.full(t.shape, epoch), np.where(bad, 0.0, t), format="jd", scale=scale)
        fmt = str(attrs.get("time_format", "")).lower()
        try:
            _lightkurve()
            if fmt in ("btjd", "bkjd"):
                out.format = fmt
        except LcarchiveError:  # pragma: no cover
            pass
        if bad.any():
            out[bad] = np.ma.masked
        return out

    # -- operations ------------------------------------------------------------------------------
    def _per_observation(self) -> list[np.ndarray]:
        index, info = self._observation_of_cadences()
        return [np.flatnonzero(index == i) for i in range(len(info))]

    def normalize(self) -> xr.Dataset:
        """``flux`` and ``flux_err`` divided by the median flux of each observation (lightkurve's
        ``normalize``), so that stitched sectors share one level; units become dimensionless.

        Raises
        ------
        lcarchive.LcarchiveError
            If an observation's median flux is zero, negative or NaN.
        """
        flux = np.array(self._require("flux").values)  # divided in its own precision, as lightkurve does
        err = np.array(self._ds["flux_err"].values) if "flux_err" in self._ds else None
        for cadences in self._per_observation():
            median = np.nanmedian(flux[..., cadences], axis=-1, keepdims=True)
            if not np.all(np.isfinite(median)) or np.any(median <= 0):
                raise LcarchiveError(f"cannot normalise: median flux {np.ravel(median)[:3]} (a flux of no positive level)")
            flux[..., cadences] = flux[..., cadences] / median
            if err is not None:
                err[..., cadences] = err[..., cadences] / median
        out = self._ds.copy()
        said = "divided by each observation's median flux"  # text: netCDF attributes hold no booleans
        out["flux"] = self._ds["flux"].copy(data=flux)
        out["flux"].attrs.update(units="", normalized=said)
        for name in ("fits_unit", "astropy_unit"):  # the file's unit no longer applies
            out["flux"].attrs.pop(name, None)
        if err is not None:
            out["flux_err"] = self._ds["flux_err"].copy(data=err)
            out["flux_err"].attrs.update(units="", normalized=said)
            for name in ("fits_unit", "astropy_unit"):
                out["flux_err"].attrs.pop(name, None)
        return out

    def remove_nans(self, column: str = "flux") -> xr.Dataset:
        """The cadences whose ``column`` is not NaN (lightkurve's ``remove_nans``); one target only."""
        values = self._require(column)
        if values.ndim != 1:
            raise LcarchiveError("remove_nans works on one target's light curve (select a target first)")
        return self._ds.isel(cadence=np.flatnonzero(np.isfinite(values.values)))

    # -- conversions -----------------------------------------------------------------------------
    def _table(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from astropy import units as u

        ds = self._ds
        columns: dict[str, Any] = {}
        for name in ("flux", "flux_err"):
            if name in ds:
                unit = astropy_unit(ds[name].attrs)
                try:
                    columns[name] = np.asarray(ds[name].values) * u.Unit(unit or "")
                except ValueError:
                    columns[name] = np.asarray(ds[name].values) * u.dimensionless_unscaled
        if "quality" in ds:
            columns["quality"] = np.asarray(ds["quality"].values)
        if "cadenceno" in ds.coords or "cadenceno" in ds:
            columns["cadenceno"] = np.asarray(ds["cadenceno"].values)
        for name, var in ds.data_vars.items():  # type: ignore[assignment]  # xarray's names are Hashable; ours are str
            text = var.dtype.kind == "U" and is_text_format(var.attrs.get("fits_format"))  # CDIPS's frame names
            if name not in columns and name != "time" and var.dims == ("cadence",) and (var.dtype.kind in "fiub" or text):
                unit = astropy_unit(var.attrs)
                try:
                    columns[name] = np.asarray(var.values) * u.Unit(unit) if unit else np.asarray(var.values)
                except ValueError:
                    columns[name] = np.asarray(var.values)
        return columns, dict(ds.attrs)

    def to_timeseries(self) -> Any:
        """One target's light curve as an ``astropy.timeseries.TimeSeries`` (time as in
        :attr:`time`; ``flux``, ``flux_err`` and the other cadence columns with their units)."""
        from astropy.timeseries import TimeSeries

        if self._require("time").ndim != 1:
            raise LcarchiveError("to_timeseries works on one target's light curve (select a target first)")
        columns, meta = self._table()
        return TimeSeries(time=self.time, data=columns, meta=meta)

    def to_lightkurve(self) -> Any:
        """One target's light curve as lightkurve objects.

        Returns
        -------
        lightkurve.TessLightCurve or lightkurve.KeplerLightCurve, or lightkurve.LightCurveCollection
            One light curve per observation (a collection when there are several), with
            ``meta`` TICID/KEPLERID, SECTOR/QUARTER/CAMPAIGN, MISSION, FLUX_ORIGIN (the stored
            variable's source column, e.g. ``pdcsap_flux``), QUALITY_BITMASK, OBSERVATION and
            PRODUCT.
        """
        lk = _lightkurve()
        if self._require("time").ndim != 1:
            raise LcarchiveError("to_lightkurve works on one target's light curve (select a target first)")
        ds = self._ds
        _, info = self._observation_of_cadences()
        out = []
        for cadences, (obs, meta) in zip(self._per_observation(), info.items(), strict=True):
            # a light curve of several missions (missions="all") says each observation's mission and ID
            mission = str(meta.get("observation_mission", ds.attrs.get("mission", "tess")))
            cls = lk.TessLightCurve if mission == "tess" else lk.KeplerLightCurve
            id_key, segment_key = _MISSION_META.get(mission, ("TARGETID", "SEGMENT"))
            part = ds.isel(cadence=cadences)
            columns, _ = part.lc._table()
            lc = cls(time=part.lc.time, data=columns)
            target = int(meta.get("observation_target", ds.attrs.get("target", 0)))
            lc.meta.update(
                {
                    id_key: target,
                    "TARGETID": target,
                    segment_key: self._segment(meta),
                    "MISSION": mission.upper() if mission != "k2" else "K2",
                    "FLUX_ORIGIN": str(ds["flux"].attrs.get("source_column", "flux")).lower(),
                    "QUALITY_BITMASK": ds.attrs.get("quality_bitmask", "none"),
                    "OBSERVATION": obs,
                    "PRODUCT": meta.get("product"),
                }
            )
            out.append(lc)
        return out[0] if len(out) == 1 else lk.LightCurveCollection(out)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Plot flux against time, one colour per observation (matplotlib).

        The x axis is the mission time (BTJD/BKJD, days), the y axis the flux with its units.
        Returns the ``matplotlib.axes.Axes``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(10, 3.5))
        t = self._require("time")
        if t.ndim != 1:
            raise LcarchiveError("plot works on one target's light curve (select a target first)")
        _, info = self._observation_of_cadences()
        for cadences, obs in zip(self._per_observation(), info, strict=True):
            ax.plot(t.values[cadences], self._ds["flux"].values[cadences], ".", markersize=1.5, label=obs, **kwargs)
        unit = astropy_unit(self._ds["flux"].attrs) or "normalised"
        ax.set_xlabel(f"time [{self._ds.attrs.get('time_format', 'BTJD')}, days]")
        ax.set_ylabel(f"flux [{unit}]")
        if len(info) > 1:
            ax.legend(markerscale=6, fontsize="small")
        return ax


def from_lightkurve(lc: Any) -> xr.Dataset:
    """A lightkurve light curve as a dataset like :meth:`lcarchive.Archive.light_curve`'s.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Its ``time`` (any astropy format; stored as the mission time, BTJD for TESS and BKJD
        for Kepler/K2, in TDB), ``flux``, ``flux_err``, ``quality``, ``cadenceno`` and other
        columns; ``meta`` TICID/KEPLERID, SECTOR/QUARTER/CAMPAIGN, MISSION.

    Returns
    -------
    xarray.Dataset
        Dimension ``cadence``; one ``observation`` (``lightkurve``); ``ds.lc`` works on it.
    """
    meta = {str(k).upper(): v for k, v in dict(lc.meta).items()}
    mission = str(meta.get("MISSION") or ("TESS" if "TICID" in meta else "Kepler")).lower()
    mission = "k2" if mission.startswith("k2") else ("kepler" if mission.startswith("kepler") else "tess")
    epoch = 2457000.0 if mission == "tess" else 2454833.0
    time = lc.time.tdb
    t = (time.jd1 - epoch) + time.jd2
    target = int(meta.get("TICID") or meta.get("KEPLERID") or meta.get("TARGETID") or 0)
    data_vars: dict[str, Any] = {}
    for name in lc.colnames:
        if name == "time":
            continue
        column = lc[name]
        value = getattr(column, "value", np.asarray(column))
        unit = str(getattr(column, "unit", "") or "")
        if np.ma.isMaskedArray(value):
            value = value.filled(np.nan) if value.dtype.kind == "f" else value.filled(0)
        value = np.asarray(value)
        if value.ndim == 1:
            data_vars[name] = ("cadence", value, {"units": unit})
    segment_key = _MISSION_META[mission][1]
    segment = int(meta.get(segment_key) if meta.get(segment_key) is not None else -1)  # type: ignore[arg-type]  # not None: tested in the same expression
    table = "spoc" if mission == "tess" else "kepler"
    time_format = "BTJD" if mission == "tess" else "BKJD"
    data_vars["time"] = (
        "cadence",
        t,
        {"units": "d", "time_format": time_format, "time_scale": "tdb", "reference_epoch_jd": epoch},
    )
    n = len(t)
    coords = {
        "observation": ("observation", np.array(["lightkurve"], dtype=object)),
        "product": ("observation", np.array([str(meta.get("AUTHOR", "lightkurve"))], dtype=object)),
        "segment": ("observation", np.array([segment], dtype=np.int64)),
        "quality_flags": ("observation", np.array([table], dtype=object)),
        "cadence_observation": ("cadence", np.full(n, "lightkurve", dtype=object)),
        "target": target,
    }
    if "cadenceno" in data_vars:
        coords["cadenceno"] = data_vars.pop("cadenceno")
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "target": target,
            "mission": mission,
            "time_format": time_format,
            "time_reference_epoch_jd": epoch,
            "time_scale": "tdb",
        },
    )
