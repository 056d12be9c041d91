"""Read SkyPortal photometric series into ``LightCurveFile`` records.

SkyPortal (``skyportal/models/photometric_series.py``) stores a photometric series as an HDF5
file written with ``pandas.HDFStore``: one table with ``mjd`` (or ``mjds``), ``flux`` (or
``fluxes``) and ``fluxerr``, or ``mag`` (``mags``, ``magnitudes``) and ``magerr``, plus any
other columns, and the series metadata (``series_name``, ``series_obj_id``, ``obj_id``,
``filter``, ``exp_time``, ``ra``, ``dec``, ``channel``, ``origin``, ``time_stamp_alignment``,
``altdata``...) as the ``metadata`` attribute of the table's storer. ``lcarchive download
--format hdf5`` writes the same (:func:`lcarchive.export.skyportal_series`). The JSON form is
one object of the columns (lists), with the metadata keys at top level or under ``metadata``
(and the columns at top level or under ``data``, as SkyPortal's ``to_dict`` writes them).

Mapping to lcarchive (product definitions ``catalog/products/*-skyportal.json``):

* mission: the product whose detection rules hold for the metadata (``filter`` ``tess`` or
  ``kepler``); ``kepler`` is Kepler's or K2's as series_name/obj_id say (``k2``, ``EPIC``),
  else as the target ID's range says. Any other filter is refused.
* target: ``series_obj_id`` (else ``obj_id``), with or without a catalog prefix (``TIC``...).
* segment: the metadata key ``sector``/``quarter``/``campaign``, else read from
  ``series_name`` (``tess-spoc-2min-s0001``, ``sector 14``, ``S14``, ``q2``, ``c05``).
* time: the mission time is barycentric (BTJD = BJD_TDB - 2457000, BKJD = BJD_TDB - 2454833),
  and SkyPortal's ``mjd`` is not: it is the MJD of the observation in UTC, as observed. So
  the time comes from, in this order:

  - a ``bmjd_tdb`` column (BJD_TDB - 2400000.5), as lcarchive's exports write beside ``mjd``:
    mission time = bmjd_tdb + 2400000.5 - the reference epoch (BTJD = bmjd_tdb - 56999.5,
    BKJD = bmjd_tdb - 54832.5), the exported mission time to float64 rounding;
  - ``mjd`` itself when ``altdata.time_system`` is that of lcarchive's earlier exports
    (``mjd = BTJD + 2457000.0 - 2400000.5 (BJD_TDB - 2400000.5)``), which wrote barycentric
    times under that name;
  - otherwise (any other series) ``mjd`` as SkyPortal means it, made barycentric by
    :func:`lcarchive.timescales.barycentric_mjd`: UTC -> TDB (astropy), plus the barycentric
    correction for the Earth's centre towards the metadata's ``ra``/``dec``. That is exact for
    a geocentric observer, good to 21 ms for a ground-based one and to about 1.3 s for TESS,
    but off by minutes for Kepler and K2 (:data:`lcarchive.timescales.GEOCENTRIC_ERROR`);
    without ``ra``/``dec`` the times are only converted to TDB, off by up to 8.3 min. The
    computed values are kept as ``bmjd_tdb`` (no source column) and an ingest note says how.

  ``mjd`` is kept as a variable in every case.
* cadence numbers: from a ``cadenceno`` column if any, else derived from the time stamps
  (:func:`lcarchive.formats.frames.derive_cadences`).

Reading pandas' HDF5 makes PyTables unpickle string attributes; a file whose attributes hold
pickles that would import anything but numpy scalars is refused before pandas opens it.
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import threading
import uuid
from dataclasses import replace
from typing import Any

import numpy as np

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import DetectionRule, Mission, MissionCatalog, Product
from lcarchive.errors import CorruptFileError, InvalidTargetError, UnrecognizedProductError
from lcarchive.formats.frames import FrameLightCurve, build_light_curve, target_id
from lcarchive.formats.products import value_rule_holds
from lcarchive.formats.record import LightCurveFile
from lcarchive.identifiers import check_segment
from lcarchive.timescales import GEOCENTRIC_ERROR, barycentric_mjd

__all__ = ["parse_skyportal_hdf5", "parse_skyportal_json", "series_light_curve"]

MJD_COLUMNS = ("mjd", "mjds")
BARYCENTRIC_COLUMNS = ("bmjd_tdb",)
"""BJD_TDB - 2400000.5, written by lcarchive's exports beside SkyPortal's ``mjd`` (UTC)."""
FLUX_COLUMNS = ("flux", "fluxes")
MAG_COLUMNS = ("mag", "mags", "magnitudes")
"""Column names SkyPortal accepts (``verify_data`` and ``calc_flux_mag`` of its PhotometricSeries)."""

FLOAT_KEYS = frozenset({"ra", "dec", "exp_time", "magref", "magref_unc", "ra_unc", "dec_unc"})
"""Metadata SkyPortal types as float (``DATA_TYPES``); ``channel`` is kept as text (lcarchive writes 'camera_ccd')."""

_HDF5_LOCK = threading.Lock()  # HDF5 is not thread-safe; PyTables refuses two open files of one name

_SAFE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("_codecs", "encode"),
    }
)
"""What a pickled attribute may import: numpy scalars and arrays, and bytes (protocol 2)."""

_UNSAFE_OPCODES = frozenset({"INST", "OBJ", "PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4"})
_STRING_OPCODES = frozenset(
    {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_MEMO_OPCODES = frozenset({"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"})


def _pickle_import(value: bytes) -> str | None:
    """What a pickle would import beyond numpy scalars (None if nothing, or if it is no pickle)."""
    recent: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(value):
            name = opcode.name
            if name in _UNSAFE_OPCODES:
                return name
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                if (module, attr) not in _SAFE_GLOBALS:
                    return f"{module}.{attr}"
            elif name == "STACK_GLOBAL":
                if len(recent) < 2 or (recent[-2], recent[-1]) not in _SAFE_GLOBALS:
                    return ".".join(recent[-2:]) or "STACK_GLOBAL"
            if name in _STRING_OPCODES:
                recent.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
            elif name not in _MEMO_OPCODES:
                recent = []
    except Exception:  # not a pickle (or a broken one): pickle.loads stops at the same place
        return None
    return None


def _check_attributes(data: bytes, source: str) -> None:
    """Refuse an HDF5 file whose string attributes are pickles that would import code when PyTables reads them."""
    import h5py

    found: list[str] = []

    def check(path: str, attrs: Any) -> None:
        for key in attrs:
            try:
                value = attrs[key]
            except Exception:  # a type h5py cannot read: PyTables reads it as no pickle either
                continue
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value[()]
            if isinstance(value, str):
                value = value.encode("utf-8", errors="replace")
            if isinstance(value, bytes) and value.endswith(b"."):  # PyTables unpickles strings ending in "."
                imported = _pickle_import(value)
                if imported is not None:
                    found.append(f"{path or '/'}:{key} imports {imported}")

    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            check("", h5.attrs)
            h5.visititems(lambda name, obj: check(name, obj.attrs))
    except Exception as exc:
        raise CorruptFileError(source, f"unreadable HDF5: {exc}") from exc
    if found:
        raise UnrecognizedProductError(
            source, f"an HDF5 attribute is a pickle that would import code when read ({found[0]}): refused"
        )


def parse_skyportal_hdf5(data: bytes, source: str) -> LightCurveFile:
    """Parse a SkyPortal photometric series written with ``pandas.HDFStore``.

    Parameters
    ----------
    data : bytes
        The whole HDF5 file, opened in memory (HDF5 core driver, as SkyPortal opens uploads).
    source : str
        Path or URL, used in messages and provenance.

    Returns
    -------
    LightCurveFile

    Raises
    ------
    CorruptFileError
        Unreadable table.
    UnrecognizedProductError
        Several tables, none named ``phot_series``; no series metadata; no mjd or flux/mag
        column; a filter other than TESS's or Kepler's; no sector/quarter/campaign; pickled
        attributes that would import code.
    InvalidTargetError
        No valid TIC/KIC/EPIC ID in series_obj_id or obj_id.
    """
    import pandas as pd

    _check_attributes(data, source)
    try:
        with (
            _HDF5_LOCK,
            pd.HDFStore(
                f"series-{uuid.uuid4().hex}.h5",
                mode="r",
                driver="H5FD_CORE",
                driver_core_backing_store=0,
                driver_core_image=data,
            ) as store,
        ):
            keys = store.keys()
            if len(keys) != 1 and "/phot_series" not in keys:
                raise UnrecognizedProductError(
                    source,
                    f"a pandas HDF5 file with {len(keys)} tables ({', '.join(keys) or 'none'}): a SkyPortal "
                    "series holds one (or one named phot_series)",
                )
            key = keys[0] if len(keys) == 1 else "/phot_series"
            frame = store[key]
            attrs = store.get_storer(key).attrs
            metadata = attrs.metadata if "metadata" in attrs else None  # a PyTables AttributeSet
    except UnrecognizedProductError:
        raise
    except Exception as exc:
        raise CorruptFileError(source, f"unreadable pandas HDF5 table: {exc}") from exc
    if not isinstance(metadata, dict):
        raise UnrecognizedProductError(
            source, f"a pandas HDF5 table ({key}) without SkyPortal series metadata (a dict in its storer attribute 'metadata')"
        )
    if not isinstance(frame, pd.DataFrame):
        raise UnrecognizedProductError(source, f"{key} is a pandas {type(frame).__name__}, not a table of columns")
    return series_light_curve(frame.reset_index(drop=True), metadata, data, source)


def parse_skyportal_json(data: bytes, source: str) -> LightCurveFile:
    """Parse a SkyPortal photometric series written as JSON.

    The object holds the columns as equal-length lists (``mjd``, ``flux``, ``fluxerr``... at
    top level, or under ``data``) and the metadata as the other top-level keys, or under
    ``metadata``. JSON numbers become float64 or int64 columns; ``null`` is NaN.

    Parameters
    ----------
    data : bytes
        The whole file (UTF-8).
    source : str
        Path or URL, used in messages and provenance.

    Returns
    -------
    LightCurveFile

    Raises
    ------
    CorruptFileError
        Not valid JSON, or columns of different lengths.
    UnrecognizedProductError, InvalidTargetError
        As for :func:`parse_skyportal_hdf5`.
    """
    import pandas as pd

    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(source, f"unreadable JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UnrecognizedProductError(source, "a JSON file, but not a SkyPortal photometric series (an object of columns)")
    inner = document.get("data")
    table = inner if isinstance(inner, dict) else document
    columns = {str(k): v for k, v in table.items() if isinstance(v, list)}
    metadata = {k: v for k, v in document.items() if k not in ("data", "metadata") and not isinstance(v, list)}
    if isinstance(document.get("metadata"), dict):
        metadata.update(document["metadata"])
    if not any(c in columns for c in MJD_COLUMNS) or not any(c in columns for c in (*FLUX_COLUMNS, *MAG_COLUMNS)):
        raise UnrecognizedProductError(
            source, "a JSON file, but not a SkyPortal photometric series: no mjd and flux (or mag) arrays"
        )
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise CorruptFileError(
            source, f"columns of different lengths ({', '.join(f'{k}: {len(v)}' for k, v in columns.items())})"
        )
    try:
        frame = pd.DataFrame({k: _json_column(v) for k, v in columns.items()})
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(source, f"unreadable columns: {exc}") from exc
    return series_light_curve(frame, metadata, data, source)


def _json_column(values: list) -> Any:
    """A JSON list as a numpy array: numbers (null as NaN) as int64/float64, anything else as objects."""
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=object)


def _rule_holds(rule: DetectionRule, metadata: dict[str, Any], columns: set[str]) -> bool:
    """A detection rule tested on series metadata (keyword) or columns (column)."""
    return rule.column in columns if rule.column is not None else value_rule_holds(rule, metadata)


def _mission_of(product: Product) -> tuple[Mission, MissionCatalog]:
    catalog = static_catalog()
    mission = catalog.mission(product.mission)
    return mission, next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)


def _names(metadata: dict[str, Any], mission: Mission, target_catalog: MissionCatalog) -> bool:
    """True if series_name has the mission's name as a word, or obj_id/series_obj_id its catalog's prefix."""
    words = re.split(r"[^0-9a-z]+", str(metadata.get("series_name") or "").lower())
    if mission.name in words:
        return True
    return any(
        str(metadata.get(k) or "").strip().upper().startswith(target_catalog.name.upper()) for k in ("obj_id", "series_obj_id")
    )


def _raw_id(metadata: dict[str, Any]) -> tuple[Any, str]:
    """The target ID as written, and the key it was read from."""
    raw = metadata.get("series_obj_id")
    if raw is None or not re.search(r"\d", str(raw)):
        if metadata.get("obj_id") is not None:
            return metadata["obj_id"], "obj_id"
    return raw, "series_obj_id"


def _product(metadata: dict[str, Any], columns: set[str], source: str) -> Product:
    """The skyportal product whose rules hold; Kepler or K2 told apart by the names, then the ID."""
    products = [p for p in static_catalog().products if p.format == "skyportal"]
    candidates = [p for p in products if all(_rule_holds(r, metadata, columns) for r in p.detect)]
    if not candidates:
        filters = sorted({r.equals for p in products for r in p.detect if r.keyword == "filter" and r.equals})
        if metadata.get("filter") in (None, ""):
            raise UnrecognizedProductError(
                source, f"a SkyPortal series without a filter in its metadata: lcarchive needs one of {', '.join(filters)}"
            )
        raise UnrecognizedProductError(
            source,
            f"a SkyPortal series in filter {metadata['filter']!r}: lcarchive holds TESS, Kepler and K2 light "
            f"curves only (filters {', '.join(filters)})",
        )
    if len(candidates) == 1:
        return candidates[0]
    named = [p for p in candidates if _names(metadata, *_mission_of(p))]
    if len(named) == 1:
        return named[0]
    raw, key = _raw_id(metadata)
    fitting = []
    for p in named or candidates:
        try:
            target_id(raw, _mission_of(p)[1], source, key)
        except InvalidTargetError:
            continue
        fitting.append(p)
    if len(fitting) == 1:
        return fitting[0]
    names = " or ".join(p.mission for p in (named or candidates))
    raise InvalidTargetError(source, f"{key} = {raw!r} names no target of {names} (filter {metadata.get('filter')!r})")


def _segment(metadata: dict[str, Any], mission: Mission, source: str) -> int:
    """The sector/quarter/campaign: a metadata key, else read from series_name."""
    kind = mission.segment_kind
    lowered = {str(k).lower(): v for k, v in metadata.items()}
    for key in dict.fromkeys((kind, mission.segment_keyword.lower())):
        if lowered.get(key) is not None:
            return check_segment(lowered[key], mission, source, f"metadata {key}")
    name = str(metadata.get("series_name") or "")
    pattern = rf"(?<![0-9a-z])(?:{kind}|{kind[0]})[\s_-]*0*(\d+)(?![0-9])"
    found = sorted({int(m) for m in re.findall(pattern, name.lower())})
    if len(found) == 1:
        return check_segment(found[0], mission, source, f"the {kind} in series_name {name!r}")
    if found:
        raise UnrecognizedProductError(source, f"series_name {name!r} names several {kind}s ({', '.join(map(str, found))})")
    raise UnrecognizedProductError(
        source,
        f"no {kind}: neither a metadata key {kind!r} nor a {kind} in series_name {name!r} "
        f"(e.g. '{mission.name}-...-{kind[0]}{'0014' if kind == 'sector' else '05'}', '{kind} 5')",
    )


def _plain(value: Any) -> Any:
    """Metadata made JSON-ready: numpy scalars and arrays as Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _value(key: str, value: Any) -> Any:
    """A per-target value: SkyPortal's float keys as float (None if not a number), channel as text."""
    if value is None:
        return None
    if key in FLOAT_KEYS:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if key == "channel" or not isinstance(value, int | float | str | bool):
        return str(value)
    return value


def _instruments(channel: Any, mission: Mission) -> tuple[dict[str, int], list[str]]:
    """Camera/CCD (TESS) or module/output (Kepler, K2) of a channel written 'A_B', as lcarchive's exports do."""
    match = re.fullmatch(r"\s*(\d+)_(\d+)\s*", str(channel or ""))
    if match is None:
        return {}, []
    a, b = int(match[1]), int(match[2])
    if mission.instrument == "tess" and 1 <= a <= 4 and 1 <= b <= 4:
        return {"camera": a, "ccd": b}, [f"tess/camera{a}/ccd{b}"]
    if mission.instrument == "kepler" and 2 <= a <= 24 and 1 <= b <= 4:
        return {"module": a, "output": b}, [f"kepler/module{a}/output{b}"]
    return {}, []


def _barycentric_mjd(metadata: dict[str, Any]) -> bool:
    """True if ``altdata.time_system`` says ``mjd`` is BJD_TDB - 2400000.5, as lcarchive's exports said before
    they wrote ``mjd`` in UTC (``mjd = BTJD + 2457000.0 - 2400000.5 (BJD_TDB - 2400000.5)``)."""
    altdata = metadata.get("altdata")
    if isinstance(altdata, str):  # SkyPortal's API gives altdata as JSON text
        try:
            altdata = json.loads(altdata)
        except ValueError:
            return False
    system = altdata.get("time_system") if isinstance(altdata, dict) else None
    return isinstance(system, str) and system.startswith("mjd = ") and system.endswith("(BJD_TDB - 2400000.5)")


def _first(columns: list[str], names: tuple[str, ...]) -> str | None:
    exact = next((c for c in names if c in columns), None)
    if exact is not None:
        return exact
    lowered = {c.lower(): c for c in columns}
    return next((lowered[c] for c in names if c in lowered), None)


def series_light_curve(frame: Any, metadata: dict[str, Any], data: bytes, source: str) -> LightCurveFile:
    """Return the light curve of a SkyPortal series given as a DataFrame and its metadata.

    Parameters
    ----------
    frame : pandas.DataFrame
        The series' columns, one row per time stamp.
    metadata : dict
        The series metadata.
    data : bytes
        The file's bytes (checksum and size).
    source : str
        Path or URL, used in messages and provenance.

    Returns
    -------
    LightCurveFile

    Raises
    ------
    UnrecognizedProductError, InvalidTargetError, CorruptFileError
        As for :func:`parse_skyportal_hdf5`.
    """
    metadata = _plain(metadata)
    names = [str(c) for c in frame.columns]
    frame = frame.set_axis(names, axis=1)
    mjd = _first(names, MJD_COLUMNS)
    flux = _first(names, FLUX_COLUMNS)
    magnitudes = flux is None
    flux = flux or _first(names, MAG_COLUMNS)
    if mjd is None or flux is None:
        raise UnrecognizedProductError(
            source,
            f"not a SkyPortal photometric series: no {'mjd' if mjd is None else 'flux or mag'} column "
            f"(columns: {', '.join(names) or 'none'})",
        )
    product = _product(metadata, set(names), source)
    mission, target_catalog = _mission_of(product)
    raw, key = _raw_id(metadata)
    target = target_id(raw, target_catalog, source, key)
    segment = _segment(metadata, mission, source)
    barycentric = _first(names, BARYCENTRIC_COLUMNS)
    notes: dict[str, str] = {}
    computed = how = None
    if barycentric is not None:
        mjd_description = f"the series' {mjd} column: MJD (UTC) as observed"
    elif _barycentric_mjd(metadata):
        barycentric = mjd
        mjd_description = (
            f"the series' {mjd} column: BJD_TDB - 2400000.5, as altdata.time_system says (lcarchive's "
            "earlier exports wrote barycentric times under this name)"
        )
    else:
        try:
            observed = frame[mjd].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise UnrecognizedProductError(source, f"column {mjd!r} (time) is not numeric") from exc
        ra, dec = (_value(k, metadata.get(k)) for k in ("ra", "dec"))
        bmjd, corrected = barycentric_mjd(observed, ra, dec)
        barycentric = computed = "bmjd_tdb"
        frame = frame.assign(**{computed: bmjd})
        names.append(computed)
        mjd_description = f"the series' {mjd} column: MJD (UTC) as observed (SkyPortal's convention)"
        if corrected:
            how = (
                f"computed from {mjd} (UTC -> TDB, astropy) plus the barycentric correction for the Earth's centre "
                f"towards the metadata's ra/dec: for data taken in space, error "
                f"{GEOCENTRIC_ERROR.get(mission.name, 'the spacecraft-Earth light time')}"
            )
        else:
            how = (
                f"computed from {mjd} (UTC -> TDB, astropy) without barycentric correction (no ra/dec in the "
                "series metadata): off the barycentric time by up to 8.3 min"
            )
        notes["time"] = f"the series has no barycentric time column: BJD_TDB - 2400000.5 {how}"
    core = {"time": barycentric, "flux": flux}
    error = _first(names, ("magerr",) if magnitudes else ("fluxerr",))
    if error is not None:
        core["flux_err"] = error
    for var in ("quality", "cadenceno"):
        found = _first(names, (var,))
        if found is not None:
            core[var] = found
    units = {c: "mag" for c in (flux, error) if magnitudes and c is not None}
    units[mjd] = units[barycentric] = "d"
    descriptions = {
        barycentric: (
            f"not a column of the series: BJD_TDB - 2400000.5 {how}"
            if computed
            else f"the series' {barycentric} column: BJD_TDB - 2400000.5 (barycentric, TDB)"
        ),
        mjd: mjd_description,
        flux: f"the series' {flux} column" + (" (magnitudes)" if magnitudes else ""),
    }
    if error is not None:
        descriptions[error] = f"the series' {error} column"
    if "quality" in core:
        descriptions[core["quality"]] = (
            "the series' quality column: bits of the series' source pipeline (altdata.product of lcarchive's exports)"
        )
    values: dict[str, tuple[Any, dict[str, Any]]] = {}
    for var, meta_key in product.target_keywords.items():
        values[var] = (
            _value(meta_key, metadata.get(meta_key)),
            {"source_keyword": meta_key, "description": f"series metadata {meta_key!r}"},
        )
    extra, instruments = _instruments(metadata.get("channel"), mission)
    for var, number in extra.items():
        values[var] = (number, {"description": f"from the series' channel {metadata.get('channel')!r} (A_B: {var})"})
    values["series_metadata"] = (
        json.dumps(metadata, default=str, allow_nan=True),
        {"description": "the whole series metadata as JSON (SkyPortal PhotometricSeries attributes)"},
    )
    origin = metadata.get("origin")
    lc = build_light_curve(
        FrameLightCurve(
            source=source,
            data=data,
            product=product,
            mission=mission,
            target_catalog=target_catalog,
            target=target,
            segment=segment,
            frame=frame,
            core=core,
            time_format="mjd",
            units=units,
            descriptions=descriptions,
            target_values=values,
            notes=notes,
            pipeline_version=str(origin) if origin not in (None, "") else None,
            instruments=instruments,
        )
    )
    if computed is not None:  # not a column of the file
        lc.columns[computed] = replace(lc.columns[computed], source="")
    return lc
