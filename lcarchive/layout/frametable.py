"""The per-cadence frame table of an observation group (``docs/format.md#frame-table``).

One row per cadence and instrument (TESS camera/CCD, Kepler module/output) of the light curves
a group holds, made from their stored columns: the spacecraft time of the cadence (``TIME -
TIMECORR``: the time before the target-specific barycentric correction, shared by every target
read out with the same CCD), its start and end (the FITS time keywords ``TIMEDEL`` and
``TIMEPIXR`` of the light-curve header), the quality bits every file sets and any file sets, the
spacecraft-level bits (flags whose ``level`` is ``spacecraft`` in ``catalog/quality``), the
source frame name (CDIPS ``RSTFC``) and the header keywords equal in every file.

Modelled on MIT lightcurvedb's ``FITSFrame`` (one row per cadence of an observation) and
``TargetSpecificTime`` (the barycentric times per target, which here stay the group's ``time``).
Every value is an aggregate that merges in any order (minimum, maximum, AND, OR, sums, an
intersection of headers), so a group's table made from all its rows equals the merge of the
tables of any split of its rows: appends merge, rewrites recompute.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import xarray as xr

from lcarchive.catalog.models import QualityFlagTable
from lcarchive.layout.blocks import Block, block_from_dataset, fill_value

__all__ = [
    "FRAMES_GROUP",
    "FRAME_TIME_TOLERANCE",
    "FRAME_VARIABLES",
    "frame_inputs",
    "frame_table",
    "merge_frames",
    "spacecraft_mask",
]

FRAMES_GROUP = "frames"
"""Name of the frame table's group inside an observation group (``<observation>/frames``)."""

FRAME_TIME_TOLERANCE = 1e-8
"""Days (0.86 ms): files whose spacecraft times of one cadence and instrument differ by more
disagree (``time_disagrees``); float32 ``TIMECORR`` rounds to about 1e-10 d."""

FRAME_VARIABLES = (
    "frame_time",
    "frame_time_spread",
    "frame_start",
    "frame_end",
    "quality_all",
    "quality_any",
    "spacecraft_quality",
    "frame_name",
    "frame_name_differs",
    "n_files",
)
"""Variables of the frame table, on (``cadence``, ``instrument``)."""

_DESCRIPTIONS = {
    "frame_time": "mid-time of the cadence before barycentric correction: TIME - TIMECORR of the files "
    "(the smallest where they differ), the mission's time format without the barycentric correction "
    "(TJD/KJD: days, TDB); NaN where no file gives TIMECORR",
    "frame_time_spread": "largest minus smallest TIME - TIMECORR over the files of this cadence and instrument, d "
    "(0 where they agree; NaN where none)",
    "frame_start": "start of the cadence: frame_time - TIMEPIXR * TIMEDEL (the light-curve header's FITS time keywords)",
    "frame_end": "end of the cadence: frame_start + TIMEDEL",
    "quality_all": "quality bits set in every file having this cadence (bitwise AND)",
    "quality_any": "quality bits set in any file having this cadence (bitwise OR)",
    "spacecraft_quality": "quality_any restricted to the spacecraft-level flags of the group's flag table "
    "(catalog/quality: level 'spacecraft')",
    "frame_name": "name of the source frame of the cadence (CDIPS RSTFC), the smallest where files differ; '' where none",
    "frame_name_differs": "1 where files give this cadence different frame names",
    "n_files": "light curves (rows of the group) having this cadence",
}

_NAME_COLUMNS = ("RSTFC",)
"""Source columns naming the frame each cadence came from."""

_SKIPPED_KEYWORDS = frozenset({"", "COMMENT", "HISTORY", "CHECKSUM", "DATASUM"})


def spacecraft_mask(table: QualityFlagTable | None) -> int:
    """Bits of a quality-flag table's spacecraft-level flags (``QualityFlag.level``)."""
    if table is None:
        return 0
    return int(sum({f.value for f in table.flags if f.level == "spacecraft"}))


def _instruments(block: Block) -> np.ndarray:
    """Each row's instrument (``tess/camera3/ccd4``, ``kepler/module18/output3``; "" when unknown)."""
    n = block.target.size
    out = np.array([""] * n, dtype=object)
    for a, b, fmt in (("camera", "ccd", "tess/camera{}/ccd{}"), ("module", "output", "kepler/module{}/output{}")):
        if a in block.per_target and b in block.per_target:
            for i, (x, y) in enumerate(zip(block.per_target[a], block.per_target[b], strict=True)):
                try:
                    xf, yf = float(x), float(y)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(xf) and math.isfinite(yf) and xf > -1e9 and yf > -1e9:
                    out[i] = fmt.format(int(xf), int(yf))
    return out


def _column(block: Block, source: str) -> str | None:
    """The series variable stored from a source column (case-insensitive)."""
    return next((n for n in block.series if str(block.attrs.get(n, {}).get("source_column", "")).upper() == source), None)


def _header_values(text: str) -> dict[str, Any]:
    """Keyword -> value of one header's 80-character cards (COMMENT, HISTORY, checksums left out)."""
    from astropy.io import fits

    try:
        header = fits.Header.fromstring(text)
    except Exception:  # not FITS cards (an HDF5 file's attributes): no keywords
        return {}
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if key in _SKIPPED_KEYWORDS or key in out:
            continue
        try:
            value = card.value
        except fits.VerifyError:  # an unparsable card (a fuzzed or broken header): kept in the stored header, no value here
            continue
        if isinstance(value, fits.card.Undefined):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        out[key] = value
    return out


def _parsed_headers(block: Block) -> dict[str, list[dict[str, Any]]]:
    """Each stored header (``header_*``) of each row, parsed once: keyword -> value."""
    return {
        name: [_header_values(text) if isinstance(text, str) and text else {} for text in values]
        for name, values in block.per_target.items()
        if name.startswith("header_") and values.ndim == 1
    }


def _shared_headers(parsed: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per header variable, the keywords with one value in every row that has the header."""
    shared: dict[str, dict[str, Any]] = {}
    for name, rows in parsed.items():
        common: dict[str, Any] | None = None
        for cards in rows:
            if not cards:
                continue
            common = cards if common is None else {k: v for k, v in common.items() if k in cards and cards[k] == v}
        if common:
            shared[name] = common
    return shared


def _timing(cards: dict[str, Any]) -> tuple[float, float]:
    """TIMEDEL (d) and TIMEPIXR of a light-curve header's keywords (NaN, 0.5 when absent)."""
    delta, position = cards.get("TIMEDEL"), cards.get("TIMEPIXR", 0.5)
    delta = float(delta) if isinstance(delta, int | float) and not isinstance(delta, bool) else math.nan
    position = float(position) if isinstance(position, int | float) and not isinstance(position, bool) else 0.5
    return delta, position


def frame_inputs(ds: xr.Dataset) -> Block:
    """The rows of a stored observation group that its frame table is made from, loaded
    (time, TIMECORR, quality, frame names, headers, camera/CCD or module/output)."""
    wanted = {"time", "quality", "camera", "ccd", "module", "output"}
    sources = {"TIMECORR", *_NAME_COLUMNS}
    names = [
        n
        for n, v in ds.data_vars.items()
        if n in wanted or str(n).startswith("header_") or str(v.attrs.get("source_column", "")).upper() in sources
    ]
    return block_from_dataset(ds[names].load())


def frame_table(block: Block, quality: QualityFlagTable | None = None) -> xr.Dataset:
    """The frame table of a group's rows.

    Parameters
    ----------
    block : Block
        Rows of one observation group (all of them, or some to be merged with
        :func:`merge_frames`).
    quality : QualityFlagTable, optional
        The group's flag table (its spacecraft-level flags make ``spacecraft_quality``).

    Returns
    -------
    xarray.Dataset
        Dimensions ``cadence`` (coordinate ``cadenceno``, the block's) and ``instrument``
        (sorted names); the variables of :data:`FRAME_VARIABLES`; attribute ``shared_headers``
        (JSON: header variable -> keywords equal in every row).
    """
    instruments_of = _instruments(block)
    instruments = sorted(set(instruments_of.tolist()))
    n_c, n_i = block.cadenceno.size, len(instruments)
    quality_values = block.series.get("quality")
    present = (
        quality_values != fill_value(quality_values.dtype)
        if quality_values is not None
        else np.ones((block.target.size, n_c), bool)
    )
    time = block.series.get("time")
    corr_name = _column(block, "TIMECORR")
    name_var = next((v for c in _NAME_COLUMNS if (v := _column(block, c)) is not None), None)
    parsed = _parsed_headers(block)
    lc_header = parsed.get(f"header_{str(block.attrs.get('time', {}).get('source_hdu', '')).lower()}", [])
    low = np.full((n_c, n_i), np.nan)
    high = np.full((n_c, n_i), np.nan)
    start_offset = np.full((n_c, n_i), np.nan)
    end_offset = np.full((n_c, n_i), np.nan)
    q_all = np.full((n_c, n_i), -1, np.int64)
    q_any = np.zeros((n_c, n_i), np.int64)
    names = np.full((n_c, n_i), "", dtype=object)
    differs = np.zeros((n_c, n_i), np.int8)
    count = np.zeros((n_c, n_i), np.int32)
    for row in range(block.target.size):
        k = instruments.index(instruments_of[row])
        has = present[row]
        count[has, k] += 1
        if quality_values is not None:
            bits = quality_values[row].astype(np.int64) & 0xFFFFFFFF
            q_all[has, k] &= bits[has]
            q_any[has, k] |= bits[has]
        if time is not None and corr_name is not None:
            spacecraft = time[row].astype(np.float64) - block.series[corr_name][row].astype(np.float64)
            ok = has & np.isfinite(spacecraft)
            low[ok, k] = np.fmin(low[ok, k], spacecraft[ok])
            high[ok, k] = np.fmax(high[ok, k], spacecraft[ok])
            delta, position = _timing(lc_header[row] if row < len(lc_header) else {})
            if math.isfinite(delta):
                start_offset[ok, k] = np.fmin(start_offset[ok, k], -position * delta)
                end_offset[ok, k] = np.fmin(end_offset[ok, k], (1 - position) * delta)
        if name_var is not None:
            given = block.series[name_var][row]
            for c in np.flatnonzero(has):
                value = given[c]
                value = value.decode() if isinstance(value, bytes) else str(value)
                value = value.strip()
                if not value:
                    continue
                if names[c, k] and names[c, k] != value:
                    differs[c, k] = 1
                names[c, k] = min(names[c, k], value) if names[c, k] else value
    q_all[count == 0] = 0
    return _dataset(
        block.cadenceno,
        instruments,
        {
            "low": low,
            "high": high,
            "start_offset": start_offset,
            "end_offset": end_offset,
            "quality_all": q_all,
            "quality_any": q_any,
            "frame_name": names,
            "frame_name_differs": differs,
            "n_files": count,
        },
        _shared_headers(parsed),
        spacecraft_mask(quality),
    )


def _dataset(
    cadenceno: np.ndarray,
    instruments: list[str],
    parts: dict[str, np.ndarray],
    shared: dict[str, dict[str, Any]],
    mask: int,
) -> xr.Dataset:
    """The stored form of a frame table from its mergeable parts."""
    low, high = parts["low"], parts["high"]
    spread = high - low
    q_any = parts["quality_any"].astype(np.int64)
    as_int32 = lambda a: (np.asarray(a, np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)  # noqa: E731
    values = {
        "frame_time": low,
        "frame_time_spread": spread,
        "frame_start": low + parts["start_offset"],
        "frame_end": low + parts["end_offset"],
        "quality_all": as_int32(parts["quality_all"]),
        "quality_any": as_int32(q_any),
        "spacecraft_quality": as_int32(q_any & mask),
        "frame_name": np.array([[str(v) for v in r] for r in parts["frame_name"]], dtype=np.dtypes.StringDType()).reshape(
            low.shape
        ),
        "frame_name_differs": parts["frame_name_differs"].astype(np.int8),
        "n_files": parts["n_files"].astype(np.int32),
    }
    timed = ("frame_time", "frame_time_spread", "frame_start", "frame_end")
    data_vars = {
        name: xr.Variable(
            ("cadence", "instrument"),
            values[name],
            attrs={
                "description": _DESCRIPTIONS[name],
                **({"units": "d"} if name in timed else {}),
            },
        )
        for name in FRAME_VARIABLES
    }
    coords = {
        "cadenceno": xr.Variable(("cadence",), np.asarray(cadenceno, np.int64), attrs={"description": "cadence number"}),
        "instrument": xr.Variable(
            ("instrument",),
            np.array(instruments, dtype=np.dtypes.StringDType()),
            attrs={"description": "TESS camera/CCD or Kepler module/output the rows were read out with ('' unknown)"},
        ),
    }
    attrs = {
        "shared_headers": json.dumps(shared, sort_keys=True),
        "spacecraft_mask": int(mask),
        "time_tolerance_d": FRAME_TIME_TOLERANCE,
        "description": "per-cadence frame table of the observation (docs/format.md#frame-table)",
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _parts(ds: xr.Dataset, cadenceno: np.ndarray, instruments: list[str]) -> dict[str, np.ndarray]:
    """A stored frame table's mergeable parts on another (larger) cadence and instrument axis."""
    rows = np.searchsorted(cadenceno, ds["cadenceno"].values)
    cols = [instruments.index(str(i)) for i in ds["instrument"].values]
    shape = (cadenceno.size, len(instruments))

    def put(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[np.ix_(rows, cols)] = values
        return out

    low = ds["frame_time"].values.astype(np.float64)
    count = put(ds["n_files"].values, 0, np.int32)
    every = put(ds["quality_all"].values.astype(np.int64) & 0xFFFFFFFF, -1, np.int64)
    every[count == 0] = -1  # no file: the AND's identity, not its stored 0
    return {
        "low": put(low, np.nan, np.float64),
        "high": put(low + ds["frame_time_spread"].values, np.nan, np.float64),
        "start_offset": put(ds["frame_start"].values - low, np.nan, np.float64),
        "end_offset": put(ds["frame_end"].values - low, np.nan, np.float64),
        "quality_all": every,
        "quality_any": put(ds["quality_any"].values.astype(np.int64) & 0xFFFFFFFF, 0, np.int64),
        "frame_name": put(ds["frame_name"].values.astype(object), "", object),
        "frame_name_differs": put(ds["frame_name_differs"].values, 0, np.int8),
        "n_files": count,
    }


def merge_frames(tables: list[xr.Dataset], quality: QualityFlagTable | None = None) -> xr.Dataset:
    """Merge frame tables of disjoint sets of rows of one group (an append) into one.

    A cadence and instrument several tables have keeps the smallest spacecraft time (and the
    spread of all), the AND and OR of their bits, the smallest frame name (``frame_name_differs``
    set where names differ), the sum of ``n_files``; ``shared_headers`` keeps the keywords equal
    in all. The result does not depend on the order of ``tables``.
    """
    cadenceno = np.unique(np.concatenate([t["cadenceno"].values.astype(np.int64) for t in tables]))
    instruments = sorted({str(i) for t in tables for i in t["instrument"].values})
    parts = [_parts(t, cadenceno, instruments) for t in tables]
    merged = parts[0]
    for other in parts[1:]:
        names = merged["frame_name"]
        differ = (names != "") & (other["frame_name"] != "") & (names != other["frame_name"])
        merged = {
            "low": np.fmin(merged["low"], other["low"]),
            "high": np.fmax(merged["high"], other["high"]),
            "start_offset": np.fmin(merged["start_offset"], other["start_offset"]),
            "end_offset": np.fmin(merged["end_offset"], other["end_offset"]),
            "quality_all": merged["quality_all"] & other["quality_all"],
            "quality_any": merged["quality_any"] | other["quality_any"],
            "frame_name": np.where(
                names == "",
                other["frame_name"],
                np.where(other["frame_name"] == "", names, np.minimum(names, other["frame_name"])),
            ),
            "frame_name_differs": (merged["frame_name_differs"] | other["frame_name_differs"] | differ).astype(np.int8),
            "n_files": merged["n_files"] + other["n_files"],
        }
    merged["quality_all"] = np.where(merged["n_files"] == 0, 0, merged["quality_all"])
    shared: dict[str, dict[str, Any]] | None = None
    for t in tables:
        these = json.loads(t.attrs.get("shared_headers", "{}"))
        if shared is None:
            shared = these
        else:
            shared = {
                h: {k: v for k, v in cards.items() if k in these.get(h, {}) and these[h][k] == v}
                for h, cards in shared.items()
                if h in these
            }
    return _dataset(cadenceno, instruments, merged, shared or {}, spacecraft_mask(quality))
