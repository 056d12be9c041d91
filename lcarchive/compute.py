"""Archive-wide periodograms (``lcarchive compute``): astropy's ``BoxLeastSquares`` or
``LombScargle`` run on every selected star, or on every selected light curve, in parallel, the
results stored in the archive with their lineage.

A **periodogram per star** (the default, ``per="target"``) stitches a star's light curves of one
product (a TESS star's SPOC 2-min sectors, a Kepler star's quarters): each observation's light
curve gets lightkurve's default quality mask (the flags of its own observation's table), its NaN
cadences removed, its flux divided by its median and, by default for BLS, is flattened with
lightkurve's ``LightCurve.flatten`` (a Savitzky-Golay filter, polyorder 2, three 3-sigma clipping
passes, a window of ``flatten_window`` days turned into an odd number of that observation's
cadences); the observations are then joined in time order, as lightkurve's
``LightCurveCollection.stitch`` does after ``normalize``. A star of several products (SPOC 2-min
and QLP) gets one periodogram per product: their cadences and systematics differ. With
``per="observation"`` each (target, observation) light curve is searched alone.

The default flatten window is three times the longest BLS duration tried (0.72 d), the window
Hippke et al. 2019 (AJ 158, 143, Sect. 3.2) find keeps a transit's depth while removing stellar
variability slower than it; a Lomb-Scargle search (stellar rotation, pulsation) is not flattened
unless asked, since the filter would remove the signal sought.

Every periodogram of one analysis is evaluated on **one period grid**, evenly spaced in
frequency between ``1 / period_max`` and ``1 / period_min``: for BLS a step of
``frequency_factor`` x the shortest duration / baseline^2 (astropy ``BoxLeastSquares.autoperiod``'s
rule), for Lomb-Scargle ``1 / (samples_per_peak x baseline)`` (astropy ``LombScargle.autopower``),
for the longest baseline of the periodograms, at most ``max_periods`` periods (a coarser step
past that, said in :meth:`Grid.describe`). The grid is printed by ``lcarchive compute`` and stored
with the results (``period_grid``).

The unit of work is a batch of periodograms whose light curves are read together (a shard's worth
of one group's targets); batches run on this machine one after the other, or on a Dask cluster's
workers (each opens the archive at the same version). The results go into the catalog repository
(``analyses/<id>``) in one commit, one line per light curve read (a star's stitched result on
each of its light curves), with an :class:`~lcarchive.catalog.models.Analysis` entry naming the
input datasets, the snapshots read, the archive version, the method and its parameters, the
quality mask and the software versions. The ID hashes the inputs and parameters: running the same
computation again writes nothing.

References: Kovacs, Zucker & Mazeh 2002, A&A 391, 369 (BLS); Lomb 1976; Scargle 1982, ApJ 263, 835;
Savitzky & Golay 1964; Hippke et al. 2019, AJ 158, 143; astropy.timeseries; lightkurve.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lcarchive.config import WithSettings, settings
from lcarchive.errors import LcarchiveError

if TYPE_CHECKING:
    from lcarchive.archive import Archive
    from lcarchive.handle import ArchiveReads

__all__ = ["METHODS", "PER", "ComputeReport", "Grid", "Parameters", "compute", "period_grid", "periodogram", "plan"]

METHODS = ("bls", "lombscargle")
PER = ("target", "observation")
MIN_CADENCES = 50
"""Good cadences a light curve needs to be searched."""

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
        Also store each light curve's power on the period grid.
    per : {"target", "observation"}
        One periodogram per star and product, its observations stitched (default), or one per
        (target, observation) light curve.
    flatten : bool or None
        Detrend each observation's light curve with lightkurve's ``flatten`` first; None (the
        default) is the method's default: yes for BLS, no for Lomb-Scargle.
    flatten_window : float or None
        The flatten window, d (default three times the longest BLS duration; Hippke et al. 2019).
    max_periods : int
        Most periods in the grid; past it the step is widened.
    """

    method: str
    period_min: float = 0.5
    period_max: float = 15.0
    durations: tuple[float, ...] = (0.04, 0.06, 0.08, 0.12, 0.16, 0.24)
    frequency_factor: float = 1.0
    samples_per_peak: int = 10
    quality_bitmask: str = "default"
    keep_periodogram: bool = False
    per: str = "target"
    flatten: bool | None = None
    flatten_window: float | None = None
    max_periods: int = 100_000

    def check(self) -> None:
        """Raise :class:`LcarchiveError` for parameters no method can run."""
        if self.method not in METHODS:
            raise LcarchiveError(f"method {self.method!r}: one of {', '.join(METHODS)}")
        if not (0 < self.period_min < self.period_max):
            raise LcarchiveError(f"periods {self.period_min} .. {self.period_max} d: need 0 < min < max")
        if self.method == "bls" and (not self.durations or max(self.durations) >= self.period_min):
            raise LcarchiveError(
                f"BLS durations {list(self.durations)} d: each must be shorter than the shortest period ({self.period_min} d)"
            )
        if self.per not in PER:
            raise LcarchiveError(f"per {self.per!r}: one of {', '.join(PER)}")
        if self.flatten_window is not None and not self.flatten_window > 0:
            raise LcarchiveError(f"flatten window {self.flatten_window} d: must be positive")
        if self.max_periods < 100:
            raise LcarchiveError(f"max periods {self.max_periods}: at least 100")

    @property
    def window(self) -> float | None:
        """The flatten window, d, or None when the light curves are not flattened."""
        if self.flatten is False or (self.flatten is None and self.method != "bls"):
            return None
        return self.flatten_window if self.flatten_window is not None else 3 * max(self.durations)

    def describe(self) -> dict[str, Any]:
        """The parameters that shape the results (recorded in the catalog)."""
        out: dict[str, Any] = {
            "period_min": self.period_min,
            "period_max": self.period_max,
            "per": self.per,
            "flatten_window": self.window if self.window is not None else "none",
        }
        if self.method == "bls":
            out.update(durations=list(self.durations), frequency_factor=self.frequency_factor, objective="likelihood")
        else:
            out.update(samples_per_peak=self.samples_per_peak, normalization="standard")
        out["max_periods"] = self.max_periods
        if self.keep_periodogram:
            out["periodogram"] = "kept"
        return out


@dataclass(frozen=True)
class Grid:
    """The period grid of one analysis.

    Attributes
    ----------
    periods : numpy.ndarray, shape (n_periods,), d
        Ascending; evenly spaced in frequency.
    baseline : float
        The longest baseline of the analysis's periodograms, d (the grid's spacing is set for it).
    step : float
        Frequency step, 1 / d.
    capped : bool
        The method's own step would have given more than ``max_periods`` periods: the step was
        widened to ``max_periods``.
    """

    periods: np.ndarray
    baseline: float
    step: float
    capped: bool

    def describe(self) -> str:
        """One line for people: how many periods, their range and spacing."""
        text = (
            f"{self.periods.size:,} periods from {self.periods[0]:g} to {self.periods[-1]:g} d, evenly spaced in "
            f"frequency (step {self.step:.3g} / d, for the longest baseline, {self.baseline:.1f} d)"
        )
        return text + ("; capped at --max-periods: coarser than the method's own spacing" if self.capped else "")


def period_grid(params: Parameters, baseline: float) -> Grid:
    """The period grid for light curves spanning at most ``baseline`` days (see the module).

    Parameters
    ----------
    params : Parameters
    baseline : float
        Time from the first to the last cadence of the longest light curve (stitched), d.

    Returns
    -------
    Grid
    """
    baseline = max(baseline, 2 * params.period_max)  # a short light curve still gets a grid that resolves its range
    if params.method == "bls":
        step = params.frequency_factor * min(params.durations) / baseline**2
    else:
        step = 1.0 / (params.samples_per_peak * baseline)
    low, high = 1.0 / params.period_max, 1.0 / params.period_min
    n = math.ceil((high - low) / step) + 1  # the ends exact, the step at most the rule's
    capped = n > params.max_periods
    n = min(n, params.max_periods)
    frequency = np.linspace(low, high, n)
    return Grid(np.sort(1.0 / frequency), float(baseline), float((high - low) / (n - 1)), capped)


@dataclass
class ComputeReport:
    """What :func:`compute` did.

    Attributes
    ----------
    results : pandas.DataFrame
        One line per periodogram: ``target``, ``observations`` (list of str: the light curves
        stitched, one for ``per="observation"``), ``period`` (d), ``power``, for BLS ``depth``
        (relative flux), ``duration`` (d), ``t0`` (mission time, BTJD/BKJD), ``snr``;
        ``n_cadences`` (good cadences used).
    analysis : Analysis
        The catalog entry.
    grid : Grid or None
        The period grid (None when the same analysis was stored already).
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
    grid: Grid | None = None
    version: str | None = None
    unchanged: bool = False
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def periodogram(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray | None, params: Parameters, grid: np.ndarray | None = None
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
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
        periods = (
            grid * u.day
            if grid is not None
            else model.autoperiod(
                durations,
                minimum_period=params.period_min * u.day,
                maximum_period=params.period_max * u.day,
                frequency_factor=params.frequency_factor,
            )
        )
        result = model.power(periods, durations, objective="likelihood")
        i = int(np.nanargmax(result.power))
        best = {
            "period": float(result.period[i].value),
            "power": float(result.power[i]),
            "depth": float(result.depth[i]),
            "duration": float(result.duration[i].value),
            "t0": float(result.transit_time[i].value),
            "snr": float(result.depth_snr[i]),
        }
        return best, np.asarray(result.period.value), np.asarray(result.power)  # grid order: as given
    model = LombScargle(time, flux, flux_err)
    if grid is not None:  # the grid's frequencies, evenly spaced (what the fast method needs), ascending
        frequency = np.linspace(1.0 / grid.max(), 1.0 / grid.min(), grid.size)
        power = model.power(frequency)
    else:
        frequency, power = model.autopower(
            minimum_frequency=1.0 / params.period_max,
            maximum_frequency=1.0 / params.period_min,
            samples_per_peak=params.samples_per_peak,
        )
    i = int(np.nanargmax(power))
    return {"period": float(1.0 / frequency[i]), "power": float(power[i])}, 1.0 / np.asarray(frequency), np.asarray(power)


Star = tuple[int, tuple[tuple[str, int], ...]]
"""One periodogram's light curves: (target, ((observation, row in its group), ...)) in time order."""


def _clean(t: np.ndarray, f: np.ndarray, e: np.ndarray, window: float | None) -> tuple[np.ndarray, ...] | str:
    """One observation's light curve ready to search: (time, relative flux, error), or why not.

    Its failing and NaN cadences are gone already or here; the flux is divided by its median,
    flattened with lightkurve when ``window`` (d) is given, and a product without errors (K2SFF,
    some HLSPs) gets the scatter's robust sigma, 1.4826 x MAD, for every cadence.
    """
    ok = np.isfinite(t) & np.isfinite(f)
    median = np.nanmedian(f[ok]) if ok.any() else np.nan
    if ok.sum() < MIN_CADENCES or not median > 0:
        return f"{int(ok.sum())} good cadences, median flux {median:.3g}"
    t, y, err = t[ok], f[ok] / median, e[ok] / median
    has_errors = bool(np.isfinite(err).all() and (err > 0).all())
    if window is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lightkurve's note on an optional submodule, on import
            import lightkurve as lk

        cadence = float(np.median(np.diff(t)))
        length = max(5, round(window / cadence) | 1)  # odd, in cadences
        if length < t.size:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lightkurve's notes on time formats
                flat = lk.LightCurve(time=t, flux=y, flux_err=err if has_errors else None).flatten(
                    window_length=length, polyorder=2, break_tolerance=5, niters=3, sigma=3
                )
            y = np.asarray(flat.flux.value, dtype=np.float64)
            if has_errors:
                err = np.asarray(flat.flux_err.value, dtype=np.float64)
            keep = np.isfinite(y)
            t, y, err = t[keep], y[keep], err[keep]
    if not has_errors:
        err = np.full(y.size, 1.4826 * np.median(np.abs(y - np.median(y))))
    return t, y, err


def _block(
    archive: ArchiveReads, stars: list[Star], params: Parameters, grid: np.ndarray
) -> tuple[list[dict], list[tuple[int, str, str]], list[np.ndarray]]:
    """The periodograms of some stars (run where the work is: here, or on a Dask worker given a
    resolved handle): each group's rows of them read in one pass."""
    from lcarchive.accessor import LightCurveAccessor

    wanted: dict[str, set[int]] = defaultdict(set)
    for _, pieces in stars:
        for observation, row in pieces:
            wanted[observation].add(row)
    curves: dict[tuple[str, int], tuple[np.ndarray, ...] | str] = {}
    for observation, row_set in wanted.items():
        rows = sorted(row_set)
        with archive.open_observation(observation) as ds:
            part = ds[[n for n in ("time", "flux", "flux_err", "quality") if n in ds]].isel(target=rows).load()
        if "flux_err" not in part:  # a product without errors: the scatter stands in (_clean)
            part["flux_err"] = part["flux"] * np.nan
        part = LightCurveAccessor(part).good(params.quality_bitmask)  # failing cadences become NaN
        for k, row in enumerate(rows):
            curves[(observation, row)] = _clean(
                *(
                    np.asarray(part[n].values[k], dtype=np.float64)  # type: ignore[arg-type,call-arg]  # three arrays then the window
                    for n in ("time", "flux", "flux_err")
                ),
                params.window,
            )
    results, skipped, powers = [], [], []  # type: ignore[var-annotated]  # lists filled below
    for target, pieces in stars:
        used = [(o, curves[(o, r)]) for o, r in pieces if not isinstance(curves[(o, r)], str)]
        skipped.extend((target, o, curves[(o, r)]) for o, r in pieces if isinstance(curves[(o, r)], str))
        if not used:
            continue
        t, y, err = (np.concatenate([c[i] for _, c in used]) for i in range(3))
        order = np.argsort(t, kind="stable")
        best, _, power = periodogram(t[order], y[order], err[order], params, grid)
        results.append({"target": target, "observations": [o for o, _ in used], **best, "n_cadences": int(t.size)})
        if params.keep_periodogram:
            powers.append(power.astype(np.float32))
    return results, skipped, powers


def _stars(archive: ArchiveReads, groups: list[Any], per: str) -> list[Star]:
    """The periodograms of a selection: per light curve, or per star and product with its
    observations in time order; in the order of their first light curve's group and row (so that
    a batch reads neighbouring rows)."""
    if per == "observation":
        return [(int(t), ((g.observation, int(r)),)) for g in groups for t, r in zip(g.targets, g.rows, strict=True)]
    observations = {o.id: o for o in archive.catalog.observations}
    start = {g.observation: observations[g.observation].time_min or 0.0 for g in groups}
    pieces: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for g in groups:
        product = observations[g.observation].product
        for t, r in zip(g.targets, g.rows, strict=True):
            pieces[(product, int(t))].append((g.observation, int(r)))
    stars = [(target, tuple(sorted(p, key=lambda piece: start[piece[0]]))) for (_, target), p in pieces.items()]
    position = {g.observation: k for k, g in enumerate(groups)}
    return sorted(stars, key=lambda star: (position[star[1][0][0]], star[1][0][1]))


def _baseline(archive: ArchiveReads, stars: list[Star]) -> float:
    """The longest span of any periodogram's light curves, d (from the catalog's time ranges)."""
    spans = {o.id: (o.time_min or 0.0, o.time_max or 0.0) for o in archive.catalog.observations}
    longest = 0.0
    for _, pieces in stars:
        first = min(spans[o][0] for o, _ in pieces)
        last = max(spans[o][1] for o, _ in pieces)
        longest = max(longest, last - first)
    return longest


def _analysis_id(params: Parameters, inputs: dict[str, str], stars: list[Star]) -> str:
    text = json.dumps(
        {
            "method": params.method,
            "parameters": params.describe(),
            "mask": params.quality_bitmask,
            "inputs": inputs,
            "stars": [[t, [list(p) for p in pieces]] for t, pieces in stars],
        },
        sort_keys=True,
    )
    return f"{params.method}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def plan(archive: ArchiveReads, selection: Any, params: Parameters) -> tuple[list[Star], Grid]:
    """The periodograms a computation runs, and its period grid (what ``lcarchive compute``
    prints before it starts).

    Returns
    -------
    (list, Grid)
        One entry per periodogram: ``(target, ((observation, row), ...))``.

    Raises
    ------
    LcarchiveError
        For parameters no method can run or a selection of no light curve.
    """
    from lcarchive.search import select

    params.check()
    groups, _, _ = select(archive, selection)
    stars = _stars(archive, groups, params.per)
    if not stars:
        raise LcarchiveError("the selection holds no light curve")
    return stars, period_grid(params, _baseline(archive, stars))


def compute(
    archive: Archive,
    selection: Any,
    params: Parameters,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    planned: Callable[[int, int, Grid], None] | None = None,
) -> ComputeReport:
    """Run a periodogram on every selected star (or light curve) and store the results with their
    lineage (see the module).

    Parameters
    ----------
    archive : lcarchive.Archive
        A writable archive (format v2).
    selection : lcarchive.Selection
        The light curves (as for a search or a download); release groups only with
        ``include_superseded``.
    params : Parameters
    client : dask.distributed.Client, optional
        Run the batches on this cluster; default one after the other here.
    progress : callable, optional
        Called as ``progress(done, total)`` in periodograms, first with ``done = 0``.
    planned : callable, optional
        Called once before the work as ``planned(n_periodograms, n_light_curves, grid)``.

    Returns
    -------
    ComputeReport

    Raises
    ------
    LcarchiveError
        For parameters no method can run, a read-only archive, or a selection of no light curve.
    """
    import astropy

    from lcarchive import __version__
    from lcarchive.catalog.models import Analysis

    started = time.perf_counter()
    params.check()
    if archive.read_only:
        raise LcarchiveError(f"{archive.url}: a read-only archive (plain Zarr folder) cannot store an analysis")
    handle = archive.handle.resolved()  # this version, here and on every worker
    version = handle.version
    stars, grid = plan(handle, selection, params)
    inputs = {o: handle.snapshot_of(o) or "" for o in sorted({o for _, pieces in stars for o, _ in pieces})}
    analysis_id = _analysis_id(params, inputs, stars)
    existing = [a for a in archive.analyses() if a.id == analysis_id]
    if existing:
        return ComputeReport(
            _per_periodogram(archive.analysis(analysis_id)), existing[0], None, None, True, [], time.perf_counter() - started
        )

    if planned:
        planned(len(stars), sum(len(pieces) for _, pieces in stars), grid)
    block = settings().compute_block
    units = [stars[i : i + block] for i in range(0, len(stars), block)]
    if progress:
        progress(0, len(stars))
    done = 0
    if client is not None:
        from dask.distributed import as_completed

        futures = {
            client.submit(WithSettings(_block), handle, unit, params, grid.periods, pure=False): k for k, unit in enumerate(units)
        }
        by_unit: dict[int, tuple] = {}
        for future in as_completed(futures):
            by_unit[futures[future]] = future.result()
            done += len(units[futures[future]])
            if progress:
                progress(done, len(stars))
        outcomes = [by_unit[k] for k in range(len(units))]
    else:
        outcomes = []
        for unit in units:
            outcomes.append(_block(handle, unit, params, grid.periods))
            done += len(unit)
            if progress:
                progress(done, len(stars))
    names = BLS_COLUMNS if params.method == "bls" else LS_COLUMNS
    frame = pd.DataFrame(
        [r for results, _, _ in outcomes for r in results], columns=["target", "observations", *names, "n_cadences"]
    )
    skipped = [item for _, block_skipped, _ in outcomes for item in block_skipped]
    # stored per light curve: a star's result on each of its light curves (searches and downloads join on them)
    counts = frame["observations"].map(len)
    stored = frame.explode("observations").rename(columns={"observations": "observation"})
    stored["n_observations"] = counts.loc[stored.index].to_numpy(np.int64)
    columns: dict[str, np.ndarray] = {
        "target": stored["target"].to_numpy(np.int64),
        "observation": stored["observation"].to_numpy(object),
        **{n: stored[n].to_numpy(np.float64) for n in names},
        "n_cadences": stored["n_cadences"].to_numpy(np.int64),
        "n_observations": stored["n_observations"].to_numpy(np.int64),
        "period_grid": grid.periods,
    }
    if params.keep_periodogram and len(frame):
        powers = np.stack([p for _, _, block_powers in outcomes for p in block_powers])
        columns["periodogram"] = powers[np.repeat(np.arange(len(frame)), counts.to_numpy())]
    entry = Analysis(
        id=analysis_id,
        method=params.method,
        parameters={**params.describe(), "n_periods": int(grid.periods.size)},
        quality_bitmask=params.quality_bitmask,
        inputs=sorted(f"{o}/flux" for o in inputs),
        input_snapshots=inputs,
        archive_version=version,
        software={
            "lcarchive": __version__,
            "astropy": astropy.__version__,
            "numpy": np.__version__,
            **({"lightkurve": _lightkurve_version()} if params.window is not None else {}),
        },
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        n_light_curves=len(stored),
        variables=[*names, "n_cadences", "n_observations"],
        group=f"catalog/analyses/{analysis_id}",
    )
    written = archive.handle.repositories.write_analysis(
        entry, columns, f"analysis {entry.id}: {entry.method} over {entry.n_light_curves} light curve(s)"
    )
    archive.refresh()
    frame.attrs["analysis"] = entry
    return ComputeReport(frame, entry, grid, written, written is None, skipped, time.perf_counter() - started)


def _per_periodogram(stored: pd.DataFrame) -> pd.DataFrame:
    """Stored results (one line per light curve) back to one line per periodogram: the lines of
    one target with the same results are its stitched periodogram."""
    attrs, stored = dict(stored.attrs), pd.DataFrame(stored)
    stored.attrs = {}  # pandas compares attrs when it combines frames: arrays there cannot be compared
    value_columns = [c for c in stored.columns if c not in ("observation", "n_observations")]
    key = stored[value_columns].astype(str).agg("|".join, axis=1)  # a star's light curves share every value
    frame = (
        stored.groupby(key, sort=False)
        .agg({**dict.fromkeys(value_columns, "first"), "observation": list})
        .rename(columns={"observation": "observations"})
    )
    order = ["target", "observations", *[c for c in value_columns if c != "target"]]
    out = frame[order].reset_index(drop=True)
    out.attrs = attrs
    return out


def _lightkurve_version() -> str:
    from importlib.metadata import version

    return version("lightkurve")
