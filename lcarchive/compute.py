"""Archive-wide periodograms (``lcarchive compute``): astropy's ``BoxLeastSquares`` or
``LombScargle`` run on every selected light curve, in parallel, the results stored in the archive
with their lineage.

Each (target, observation) light curve gets lightkurve's default quality mask (the flags of its
own observation's table), its NaN cadences removed and its flux divided by its median, then the
method over a period range. The unit of work is a block of a group's targets (a shard's worth),
read with one pass of the group's chunks; blocks run on this machine's processes one after the
other, or on a Dask cluster's workers (each opens the archive at the same version). The results
go into the catalog repository (``analyses/<id>``) in one commit, with an
:class:`~lcarchive.catalog.models.Analysis` entry naming the input datasets, the snapshots read,
the archive version, the method and its parameters, the quality mask and the software versions.
The ID hashes the inputs and parameters: running the same computation again writes nothing.

References: Kovács, Zucker & Mazeh 2002, A&A 391, 369 (BLS); Lomb 1976; Scargle 1982, ApJ 263, 835;
astropy.timeseries.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lcarchive.errors import LcarchiveError

__all__ = ["METHODS", "ComputeReport", "Parameters", "compute", "periodogram"]

METHODS = ("bls", "lombscargle")
BLOCK = 512
"""Targets per unit of work (the targets of one shard)."""

BLS_COLUMNS = ("period", "power", "depth", "duration", "t0", "snr")
LS_COLUMNS = ("period", "power")


@dataclass(frozen=True)
class Parameters:
    """What a computation runs.

    Attributes
    ----------
    method : {"bls", "lombscargle"}
    period_min, period_max : float
        Period range searched, d.
    durations : tuple of float
        BLS transit durations tried, d (each shorter than ``period_min``).
    frequency_factor : float
        BLS period grid spacing (astropy ``BoxLeastSquares.autoperiod``; larger is coarser).
    samples_per_peak : int
        Lomb-Scargle frequency grid oversampling (astropy ``LombScargle.autopower``).
    quality_bitmask : str
        Quality mask applied first (lightkurve's names: ``default``, ``hard``, ``hardest``).
    keep_periodogram : bool
        Also store each light curve's power on the period grid (BLS: the grid of the first light
        curve's baseline is used for every light curve, so that they share one).
    """

    method: str
    period_min: float = 0.5
    period_max: float = 15.0
    durations: tuple[float, ...] = (0.04, 0.06, 0.08, 0.12, 0.16, 0.24)
    frequency_factor: float = 1.0
    samples_per_peak: int = 10
    quality_bitmask: str = "default"
    keep_periodogram: bool = False

    def check(self) -> None:
        """Raise :class:`LcarchiveError` for parameters no method can run."""
        if self.method not in METHODS:
            raise LcarchiveError(f"method {self.method!r}: one of {', '.join(METHODS)}")
        if not (0 < self.period_min < self.period_max):
            raise LcarchiveError(f"periods {self.period_min} .. {self.period_max} d: need 0 < min < max")
        if self.method == "bls" and (not self.durations or max(self.durations) >= self.period_min):
            raise LcarchiveError(f"BLS durations {list(self.durations)} d: each must be shorter than the shortest period "
                                 f"({self.period_min} d)")

    def describe(self) -> dict[str, Any]:
        """The parameters that shape the results (recorded in the catalog)."""
        out: dict[str, Any] = {"period_min": self.period_min, "period_max": self.period_max}
        if self.method == "bls":
            out.update(durations=list(self.durations), frequency_factor=self.frequency_factor, objective="likelihood")
        else:
            out.update(samples_per_peak=self.samples_per_peak, normalization="standard")
        if self.keep_periodogram:
            out["periodogram"] = "kept"
        return out


@dataclass
class ComputeReport:
    """What :func:`compute` did.

    Attributes
    ----------
    results : pandas.DataFrame
        One line per light curve (the columns of :meth:`lcarchive.Archive.analysis`).
    analysis : Analysis
        The catalog entry.
    version : str or None
        The archive version written; None when the same analysis was stored already.
    unchanged : bool
        The same inputs and parameters were computed before: nothing was written.
    skipped : list of (int, str, str)
        (target, observation, reason) of light curves with too few good cadences.
    seconds : float
    """

    results: pd.DataFrame
    analysis: Any
    version: str | None = None
    unchanged: bool = False
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def periodogram(time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray | None, params: Parameters,
                grid: np.ndarray | None = None) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One light curve's periodogram and its best peak.

    Parameters
    ----------
    time : numpy.ndarray, shape (n,), d
        Mission time (BTJD/BKJD), finite.
    flux, flux_err : numpy.ndarray, shape (n,)
        Normalised flux and its error (or None), finite.
    params : Parameters
    grid : numpy.ndarray, optional
        Periods, d, to evaluate (default the method's own grid for this baseline).

    Returns
    -------
    (dict, numpy.ndarray, numpy.ndarray)
        The best peak (``period``, ``power``; for BLS also ``depth``, ``duration``, ``t0``,
        ``snr`` = the depth over its error), the periods and the power on them.
    """
    import astropy.units as u
    from astropy.timeseries import BoxLeastSquares, LombScargle

    if params.method == "bls":
        model = BoxLeastSquares(time * u.day, flux, dy=flux_err)
        durations = np.asarray(params.durations) * u.day
        periods = grid * u.day if grid is not None else model.autoperiod(
            durations, minimum_period=params.period_min * u.day, maximum_period=params.period_max * u.day,
            frequency_factor=params.frequency_factor)
        result = model.power(periods, durations, objective="likelihood")
        i = int(np.nanargmax(result.power))
        best = {"period": float(result.period[i].value), "power": float(result.power[i]),
                "depth": float(result.depth[i]), "duration": float(result.duration[i].value),
                "t0": float(result.transit_time[i].value), "snr": float(result.depth_snr[i])}
        return best, np.asarray(result.period.value), np.asarray(result.power)  # grid order: as given
    model = LombScargle(time, flux, flux_err)
    if grid is not None:  # the grid's frequencies, evenly spaced (what the fast method needs), ascending
        frequency = np.linspace(1.0 / grid.max(), 1.0 / grid.min(), grid.size)
        power = model.power(frequency)
    else:
        frequency, power = model.autopower(minimum_frequency=1.0 / params.period_max,
                                           maximum_frequency=1.0 / params.period_min,
                                           samples_per_peak=params.samples_per_peak)
    i = int(np.nanargmax(power))
    return {"period": float(1.0 / frequency[i]), "power": float(power[i])}, 1.0 / np.asarray(frequency), np.asarray(power)


def _block(url: str, storage_options: dict | None, version: str | None, observation: str, rows: list[int],
           params: Parameters, grid: np.ndarray | None) -> tuple[list[dict], list[tuple[int, str, str]], list[np.ndarray]]:
    """Results of some rows of one group (run where the work is: here or on a Dask worker)."""
    from lcarchive.accessor import LightCurveAccessor
    from lcarchive.archive import open_archive

    archive = open_archive(url, storage_options, version=version)
    with archive.open_observation(observation) as ds:
        part = ds[[n for n in ("time", "flux", "flux_err", "quality") if n in ds]].isel(target=rows).load()
    if "flux_err" not in part:  # a product without errors: the scatter stands in below
        part["flux_err"] = part["flux"] * np.nan
    part = LightCurveAccessor(part).good(params.quality_bitmask)  # failing cadences become NaN
    results, skipped, powers = [], [], []
    for k, target in enumerate(part["target"].values.astype(np.int64)):
        t = np.asarray(part["time"].values[k], dtype=np.float64)
        f = np.asarray(part["flux"].values[k], dtype=np.float64)
        e = np.asarray(part["flux_err"].values[k], dtype=np.float64)
        ok = np.isfinite(t) & np.isfinite(f)
        median = np.nanmedian(f[ok]) if ok.any() else np.nan
        if ok.sum() < 50 or not median > 0:
            skipped.append((int(target), observation, f"{int(ok.sum())} good cadences, median flux {median:.3g}"))
            continue
        y = f[ok] / median
        if np.isfinite(e[ok]).all() and (e[ok] > 0).all():
            err = e[ok] / median
        else:  # no errors (K2SFF, some HLSPs): the scatter's robust sigma, 1.4826 x MAD, for every cadence
            err = np.full(y.size, 1.4826 * np.median(np.abs(y - np.median(y))))
        best, _, power = periodogram(t[ok], y, err, params, grid)
        results.append({"target": int(target), "observation": observation, **best, "n_cadences": int(ok.sum())})
        if params.keep_periodogram:
            powers.append(power.astype(np.float32))
    return results, skipped, powers


def _analysis_id(params: Parameters, inputs: dict[str, str], units: list[tuple[str, list[int]]]) -> str:
    text = json.dumps({"method": params.method, "parameters": params.describe(), "mask": params.quality_bitmask,
                       "inputs": inputs, "rows": [[o, r] for o, r in units]}, sort_keys=True)
    return f"{params.method}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def compute(archive: Any, selection: Any, params: Parameters, client: Any = None,
            progress: Callable[[int, int], None] | None = None) -> ComputeReport:
    """Run a periodogram on every selected light curve and store the results with their lineage.

    Parameters
    ----------
    archive : lcarchive.Archive
        A writable archive (format v2).
    selection : lcarchive.Selection
        The light curves (as for a search or a download); release groups only with
        ``include_superseded``.
    params : Parameters
    client : dask.distributed.Client, optional
        Run the blocks on this cluster; default one after the other here.
    progress : callable, optional
        Called as ``progress(done, total)`` in blocks.

    Returns
    -------
    ComputeReport

    Raises
    ------
    LcarchiveError
        For parameters no method can run, a read-only archive, or a selection of no light curve.
    """
    import astropy

    import lcarchive
    from lcarchive.catalog.models import Analysis
    from lcarchive.search import select

    started = time.perf_counter()
    params.check()
    if archive.read_only:
        raise LcarchiveError(f"{archive.url}: a read-only archive (plain Zarr folder) cannot store an analysis")
    version = archive.read_version()
    groups, _, _ = select(archive, selection)
    units = [(g.observation, [int(r) for r in g.rows[i:i + BLOCK]]) for g in groups for i in range(0, g.rows.size, BLOCK)]
    if not units:
        raise LcarchiveError("the selection holds no light curve")
    inputs = {g.observation: archive.snapshot_of(g.observation) or "" for g in groups}
    analysis_id = _analysis_id(params, inputs, units)
    existing = [a for a in archive.analyses() if a.id == analysis_id]
    if existing:
        return ComputeReport(archive.analysis(analysis_id), existing[0], None, True, [], time.perf_counter() - started)

    grid = None
    if params.keep_periodogram:  # one period grid for every light curve, from the longest baseline
        span = max((o.time_max or 0) - (o.time_min or 0) for o in archive.catalog.observations if o.id in inputs)
        grid = _grid(params, max(span, 2 * params.period_max))
    args = (archive.url, archive.storage_options, version)
    if client is not None:
        from dask.distributed import as_completed

        futures = {client.submit(_block, *args, obs, rows, params, grid, pure=False): k for k, (obs, rows) in enumerate(units)}
        done_results: dict[int, tuple] = {}
        for n, future in enumerate(as_completed(futures), start=1):
            done_results[futures[future]] = future.result()
            if progress:
                progress(n, len(units))
        outcomes = [done_results[k] for k in range(len(units))]
    else:
        outcomes = []
        for n, (obs, rows) in enumerate(units, start=1):
            outcomes.append(_block(*args, obs, rows, params, grid))
            if progress:
                progress(n, len(units))
    rows_out = [r for results, _, _ in outcomes for r in results]
    skipped = [item for _, block_skipped, _ in outcomes for item in block_skipped]
    names = BLS_COLUMNS if params.method == "bls" else LS_COLUMNS
    frame = pd.DataFrame(rows_out, columns=["target", "observation", *names, "n_cadences"])
    columns: dict[str, np.ndarray] = {"target": frame["target"].to_numpy(np.int64),
                                      "observation": frame["observation"].to_numpy(object),
                                      **{n: frame[n].to_numpy(np.float64) for n in names},
                                      "n_cadences": frame["n_cadences"].to_numpy(np.int64)}
    if params.keep_periodogram and rows_out:
        columns["periodogram"] = np.stack([p for _, _, powers in outcomes for p in powers])
        columns["periodogram_period"] = grid
    entry = Analysis(
        id=analysis_id, method=params.method, parameters=params.describe(), quality_bitmask=params.quality_bitmask,
        inputs=sorted(f"{o}/flux" for o in inputs), input_snapshots=inputs, archive_version=version,
        software={"lcarchive": getattr(lcarchive, "__version__", ""), "astropy": astropy.__version__, "numpy": np.__version__},
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), n_light_curves=len(frame),
        variables=[*names, "n_cadences"], group=f"catalog/analyses/{analysis_id}",
    )
    written = archive.write_analysis(entry, columns)
    frame.attrs["analysis"] = entry
    return ComputeReport(frame, entry, written, written is None, skipped, time.perf_counter() - started)


def _grid(params: Parameters, baseline: float) -> np.ndarray:
    """Periods, d, for a baseline of ``baseline`` days: BLS's autoperiod spacing, or Lomb-Scargle's."""
    if params.method == "bls":
        step = params.frequency_factor * min(params.durations) / baseline**2
    else:
        step = 1.0 / (params.samples_per_peak * baseline)
    frequency = np.arange(1.0 / params.period_max, 1.0 / params.period_min, step)
    return np.sort(1.0 / frequency)
