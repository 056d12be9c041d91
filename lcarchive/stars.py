"""Reading stars: one target's light curve, stitched over its observations, and many targets' at once.

A star's index lines (one partition of the target index) say which groups hold it and at which
row; only those groups are read, concurrently, and in each only the target's chunks
(:mod:`lcarchive.store.reader`). The light curve is then assembled: its cadences joined along
``cadence``, its per-target values on an ``observation`` dimension, the quality mask and the
normalisation of :class:`lcarchive.accessor.LightCurveAccessor` applied.

:meth:`lcarchive.Archive.light_curve` and :meth:`lcarchive.Archive.light_curves` are the user's
entry points and document the parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lcarchive.accessor import LightCurveAccessor
from lcarchive.catalog.content import static_catalog
from lcarchive.config import settings
from lcarchive.conventions import described
from lcarchive.errors import MixedProductsError, TargetNotFoundError, UnknownProductError
from lcarchive.formats.record import fits_text, is_text_format
from lcarchive.handle import ReadHandle
from lcarchive.identifiers import observation_id, parse_any_target
from lcarchive.layout import fill_value
from lcarchive.store import GroupReader, run

__all__ = ["across_missions", "light_curve", "light_curves", "of_catalog", "plan", "star_names", "target_of"]


def light_curve(
    handle: ReadHandle,
    target: int | str,
    observation: str | None = None,
    variables: Iterable[str] | None = None,
    include_superseded: bool = False,
    product: str | None = None,
    quality_bitmask: str | int | None = "default",
    normalize: bool = False,
    observations: Iterable[str] | None = None,
    products: str | None = None,
    missions: str | None = None,
) -> xr.Dataset | dict[str, xr.Dataset]:
    """One target's light curve: :meth:`lcarchive.Archive.light_curve`."""
    if missions is not None:
        if missions != "all":
            raise ValueError(
                f"missions={missions!r}: 'all' (the star's light curves of every mission, through its aliases) or None"
            )
        if observation is not None or observations is not None or products is not None:
            raise ValueError("missions='all' reads every observation of the star: give no observation(s) or products")
        return across_missions(handle, target, variables, include_superseded, product, quality_bitmask, normalize)
    number, catalog = target_of(target)
    check_product(product)
    if products is not None and products != "all":
        raise ValueError(f"products={products!r}: 'all' (every product's light curve) or None")
    wanted = None if variables is None else list(dict.fromkeys(["quality", *variables]))
    if observation is not None and products is None:
        row = handle.row_of(observation, number)
        pairs = [] if row is None else [(observation, row)]
        return _read_star(handle, number, pairs, {}, wanted, quality_bitmask, normalize, _where(handle, observation, product))
    lines = _lines_of(handle, number, catalog, observation, observations, include_superseded)
    if products is None:
        pairs, others = plan(number, lines, product, keep_derived=observations is not None)
        return _read_star(handle, number, pairs, others, wanted, quality_bitmask, normalize, _where(handle, None, product))
    if lines.empty:
        raise TargetNotFoundError(number, _where(handle, observation, product))
    return {
        str(p): _read_star(
            handle,
            number,
            plan(number, lines, str(p))[0],
            {},
            wanted,
            quality_bitmask,
            normalize,
            _where(handle, observation, str(p)),
        )
        for p in sorted(set(lines["product"]))
        if product is None or p == product
    }


def light_curves(
    handle: ReadHandle,
    targets: Iterable[int | str],
    variables: Iterable[str] | None = None,
    include_superseded: bool = False,
    product: str | None = None,
    quality_bitmask: str | int | None = "default",
    normalize: bool = False,
    missing: str = "raise",
) -> dict[int, xr.Dataset]:
    """Many targets' light curves, read concurrently: :meth:`lcarchive.Archive.light_curves`."""
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing={missing!r}: 'raise' or 'skip'")
    check_product(product)
    named = dict(target_of(t) for t in targets)  # the last prefix given for a number wins
    ids = list(named)
    wanted = None if variables is None else list(dict.fromkeys(["quality", *variables]))
    index = handle.target_index(ids)
    if not include_superseded:
        index = index[index["current"]]
    lines_of = {t: of_catalog(lines, named[t]) for t, lines in index.groupby("target")}
    planned = {t: plan(t, lines_of[t], product) if t in lines_of else ([], {}) for t in ids}
    absent = [t for t, (pairs, _) in planned.items() if not pairs]
    if absent and missing == "raise":
        shown = ", ".join(map(str, absent[:10])) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise TargetNotFoundError(shown, _where(handle, None, product))
    pairs = [(t, p) for t, (ps, _) in planned.items() for p in ps]
    handle.prepare(sorted({o for _, (o, _) in pairs}))
    results = run(handle.read_rows([p for _, p in pairs], wanted, limit=settings().read_jobs))
    read: dict[int, list] = {}
    for (t, pair), values in zip(pairs, results, strict=True):  # one pass, not one per target
        read.setdefault(t, []).append((pair, values))
    return {
        t: _note_others(
            _finish(handle, t, [p for p, _ in read[t]], [v for _, v in read[t]], quality_bitmask, normalize), planned[t][1]
        )
        for t in ids
        if t in read
    }


DERIVED = "derived"
"""Key of ``plan``'s other observations for the derived light curves it left out."""


def is_derived(observation: str, mission: str, product: str, segment: int) -> bool:
    """True for an observation of light curves derived from ``product`` by a processing tool
    (``kepler-lc-kepcotrend-q03``, ``tess-qlp-hdf5-qsp-s0070``: the tool is its label)."""
    catalog = static_catalog()
    try:
        m, p = catalog.mission(mission), catalog.product(product)
    except (KeyError, ValueError):
        return False
    base = observation.split(".", 1)[0]
    labels = [t.name for t in catalog.processing_tools] + ["derived"]
    return any(base == observation_id(m, p, int(segment), label) for label in labels)


def plan(
    target: int, lines: pd.DataFrame, product: str | None, keep_derived: bool = False
) -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
    """The (observation, row) pairs of a target's light curve from its index lines: of
    ``product``, or of its mission's default product (``Product.default_rank``); and the
    other products' observations, by product.

    Light curves derived from the product by a processing tool (their own observations, see
    ``docs/format.md``) are not joined with the product's: unless ``keep_derived`` (the
    observations were named) or the target has only derived ones, they are left out and listed
    under the key :data:`DERIVED` of the other observations.

    Raises
    ------
    MixedProductsError
        If the lines are of several missions (a bare number naming stars of several catalogs).
    """
    if product is not None:
        lines = lines[lines["product"] == product]
    products = {str(p): sorted(str(o) for o in group["observation"]) for p, group in lines.groupby("product")}
    others: dict[str, list[str]] = {}
    if len(products) > 1:
        missions = sorted({str(m) for m in lines["mission"]})
        if len(missions) > 1:
            catalogs = sorted({static_catalog().mission(m).target_catalog for m in missions})
            raise MixedProductsError(target, products, catalogs)
        chosen = min(products, key=lambda p: (_default_rank(p), p))
        others = {p: obs for p, obs in products.items() if p != chosen}
        lines = lines[lines["product"] == chosen]
    if not keep_derived and len(lines):
        derived = np.array(
            [
                is_derived(str(o), str(m), str(p), int(s))
                for o, m, p, s in zip(lines["observation"], lines["mission"], lines["product"], lines["segment"], strict=True)
            ],
            dtype=bool,
        )
        if derived.any() and not derived.all():
            others[DERIVED] = sorted(str(o) for o in lines["observation"][derived])
            lines = lines[~derived]
    return [(str(o), int(r)) for o, r in zip(lines["observation"], lines["row"], strict=True)], others


def check_product(product: str | None) -> None:
    """Raise UnknownProductError for a product name no product definition has."""
    if product is None:
        return
    known = {p.name for p in static_catalog().products}
    if product not in known:
        raise UnknownProductError(product, sorted(known))


def _read_star(
    handle: ReadHandle,
    target: int,
    pairs: list[tuple[str, int]],
    others: dict[str, list[str]],
    wanted: list[str] | None,
    quality_bitmask: str | int | None,
    normalize: bool,
    where: str,
) -> xr.Dataset:
    """A target's light curve from its (observation, row) pairs, naming the other products."""
    if not pairs:
        raise TargetNotFoundError(target, where)
    handle.prepare([o for o, _ in pairs])
    results = run(handle.read_rows(pairs, wanted))
    return _note_others(_finish(handle, target, pairs, results, quality_bitmask, normalize), others)


def _lines_of(
    handle: ReadHandle,
    target: int,
    catalog: str | None,
    observation: str | None,
    observations: Iterable[str] | None,
    include_superseded: bool,
) -> pd.DataFrame:
    """A target's index lines: of its catalog's missions, of the observations asked for
    (every release of those), else of the current releases unless ``include_superseded``."""
    lines = of_catalog(handle.target_index([target]), catalog)
    if observation is not None:
        lines = lines[lines["observation"] == observation]
    elif observations is not None:  # only these (release groups among them are read as asked)
        chosen = [observations] if isinstance(observations, str) else list(observations)
        lines = lines[lines["observation"].isin(chosen)]
    elif not include_superseded:
        lines = lines[lines["current"]]
    return lines


def _where(handle: ReadHandle, observation: str | None, product: str | None) -> str:
    if observation:
        return f"observation {observation}"
    return f"product {product} of archive {handle.url}" if product else f"archive {handle.url}"


def _finish(
    handle: ReadHandle,
    target: int,
    pairs: list[tuple[str, int]],
    results: list[dict[str, np.ndarray]],
    quality_bitmask: str | int | None,
    normalize: bool,
) -> xr.Dataset:
    parts = [(obs_id, handle.opened_reader(obs_id), values) for (obs_id, _), values in zip(pairs, results, strict=True)]
    lc = described(_assemble(target, parts))
    if quality_bitmask is not None and quality_bitmask != "none":  # "none": every stored cadence, as stored
        lc = LightCurveAccessor(lc).good(quality_bitmask)
    return LightCurveAccessor(lc).normalize() if normalize else lc


_OBSERVATION_COORDS = (
    ("product", "product", "", str, "product of each observation (catalog name)"),
    ("segment", "segment", -1, np.int64, "sector, quarter or campaign of each observation"),
    ("quality_flags", "quality_flags", "", str, "quality-flag table of each observation (catalog name)"),
)
"""Coordinates on ``observation`` of a target's light curve, from each group's attributes: what
``ds.lc`` needs to mask, normalise and convert each observation's cadences."""


def target_of(target: Any) -> tuple[int, str | None]:
    """A target given by a user (``261136679``, ``"TIC 261136679"``, ``"KIC 11442793"``, ``"Gaia DR3
    5707485527450614656"``, ``"3I/ATLAS"``) as its key in the index (the ID, or a designation's key)
    and the name of its catalog (None for a bare number: any catalog).

    Raises
    ------
    ValueError
        If it is no target ID.
    """
    named = parse_any_target(target)
    if isinstance(named, int):
        return named, None
    return named.key, named.catalog


def of_catalog(lines: pd.DataFrame, catalog: str | None) -> pd.DataFrame:
    """The index lines whose target is of ``catalog`` (all for None): a line's ``target_catalog``, or
    where that is "" (every line of an archive written before other catalogs), its mission's."""
    if catalog is None or lines.empty:
        return lines
    missions = {m.name: m.target_catalog for m in static_catalog().missions}
    named = lines["target_catalog"] if "target_catalog" in lines else pd.Series([""] * len(lines), index=lines.index)
    effective = [c or missions.get(str(m), "") for c, m in zip(named, lines["mission"], strict=True)]
    return lines[[c == catalog for c in effective]]


def _default_rank(product: str) -> int:
    try:
        return static_catalog().product(product).default_rank
    except KeyError:  # a product this version of lcarchive does not define: after every known one
        return 1_000


def _note_others(lc: xr.Dataset, others: dict[str, list[str]]) -> xr.Dataset:
    """Say on a light curve which other products the archive has of its target."""
    others = dict(others)
    if derived := others.pop(DERIVED, None):
        lc.attrs["derived_observations"] = ", ".join(derived)
        lc.attrs["derived_note"] = (
            f"light curves derived from this product by a processing tool are in {', '.join(derived)}: observation=... reads one"
        )
    if others:
        product = str(lc["product"].values[0])
        listed = ", ".join(f"{p} ({len(obs)} observation{'s' if len(obs) > 1 else ''})" for p, obs in sorted(others.items()))
        lc.attrs["other_products"] = ", ".join(sorted(others))
        lc.attrs["note"] = (
            f"{product}, the mission's default product, is read; this archive also has {listed}: "
            f"product=... reads one, products='all' every one"
        )
    return lc


def _assemble(target: int, parts: list[tuple[str, GroupReader, dict[str, np.ndarray]]]) -> xr.Dataset:
    """Build one target's light curve from the rows read in each observation group.

    Light-curve variables keep only the cadences the target has (quality is not the fill) and
    are joined along ``cadence``; a variable missing from an observation is filled (NaN, the
    integer fill, ""). Per-target values go on an ``observation`` dimension; images are padded
    to the largest.
    """
    masks = [values["quality"] != fill_value(values["quality"].dtype) for _, _, values in parts]
    meta: dict[str, tuple[tuple[str, ...], dict, np.dtype]] = {}
    for _, reader, values in parts:
        for name, value in values.items():
            if name not in meta:
                array = reader.arrays[name]
                dims = tuple(array.metadata.dimension_names or ())[1:]
                attrs = {k: v for k, v in array.attrs.items() if k not in ("coordinates", "_FillValue")}
                dtype = np.dtype(object) if value.dtype.kind in "TUO" else value.dtype
                meta[name] = (dims, attrs, dtype)
    data_vars = {}
    for name, (dims, attrs, dtype) in meta.items():
        if dims == ("cadence",):
            pieces = []
            for (_, _, values), mask in zip(parts, masks, strict=True):
                pieces.append(values[name][mask] if name in values else np.full(int(mask.sum()), fill_value(dtype), dtype))
            joined = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            if dtype == object:  # a text column (CDIPS's frame names): as astropy reads it, fixed-width text
                joined = fits_text(joined) if is_text_format(attrs.get("fits_format")) else joined.astype(str)
            data_vars[name] = xr.Variable(dims, joined, attrs=attrs)
        else:
            shape = tuple(max(v[name].shape[d] for _, _, v in parts if name in v) for d in range(len(dims)))
            stack = np.full((len(parts), *shape), fill_value(dtype), dtype=dtype)
            for i, (_, _, values) in enumerate(parts):
                if name in values:
                    value = values[name]
                    stack[(i, *(slice(0, n) for n in value.shape))] = value.astype(dtype) if dtype == object else value  # type: ignore[index]  # a tuple of an int and slices
            if dtype == object:  # fixed-width text: netCDF writes it, dask chunks it
                stack = stack.astype(str)
            data_vars[name] = xr.Variable(("observation", *dims), stack, attrs=attrs)
    cadenceno = np.concatenate([reader.cadenceno[mask] for (_, reader, _), mask in zip(parts, masks, strict=True)])
    # fixed-width text, not objects: xarray scans an object coordinate of every cadence (~150 ms for 10 sectors)
    observation = np.repeat(np.array([obs_id for obs_id, _, _ in parts], dtype=str), [int(m.sum()) for m in masks])
    first = parts[0][1].attrs
    return xr.Dataset(
        data_vars,
        coords={
            "cadenceno": ("cadence", cadenceno, {"description": "cadence number (CADENCENO)"}),
            "cadence_observation": ("cadence", observation, {"description": "observation of each cadence"}),
            "observation": ("observation", np.array([o for o, _, _ in parts], dtype=str)),
            **{
                name: (
                    "observation",
                    np.array([reader.attrs.get(key, default) for _, reader, _ in parts], dtype=dtype),
                    {"description": text},
                )
                for name, key, default, dtype, text in _OBSERVATION_COORDS
            },
            "target": target,
        },
        attrs={
            "target": target,
            **{k: first[k] for k in ("mission", "time_format", "time_reference_epoch_jd", "time_scale") if k in first},
        },
    )


# -- one star across missions ----------------------------------------------------------------------
def star_names(handle: ReadHandle, target: Any) -> list[str]:
    """Every name of a star in the archive's alias table, the one given first
    (:func:`lcarchive.aliases.names_of`).

    Raises
    ------
    ValueError
        If ``target`` names no catalog (a bare number: which catalog's star is meant?) or is no ID.
    """
    from lcarchive.aliases import names_of

    if isinstance(target, int | np.integer) or str(target).strip().isdigit():
        raise ValueError(f"{target!r}: name the catalog of the star read across missions (e.g. 'KIC 8462852', 'TIC 185336364')")
    return names_of(handle.alias_table(), str(target))


def across_missions(
    handle: ReadHandle,
    target: Any,
    variables: Iterable[str] | None = None,
    include_superseded: bool = False,
    product: str | None = None,
    quality_bitmask: str | int | None = "default",
    normalize: bool = False,
) -> xr.Dataset:
    """One star's light curves of every mission, through its aliases, in BJD_TDB:
    :meth:`lcarchive.Archive.light_curve` with ``missions="all"``."""
    names = star_names(handle, target)
    wanted = None if variables is None else list(dict.fromkeys(["quality", "time", *variables]))
    pairs: list[tuple[str, int]] = []
    named: dict[str, tuple[str, str, int]] = {}  # observation -> (name, catalog, key)
    for name in names:
        star = parse_any_target(name)
        if isinstance(star, int):  # the alias table writes every name with its catalog
            continue
        lines = _lines_of(handle, star.key, star.catalog, None, None, include_superseded)
        if product is not None:
            lines = lines[lines["product"] == product]
        for _, of_mission in lines.groupby("mission"):
            chosen, _ = plan(star.key, of_mission, None)
            for obs, row in chosen:
                if obs not in named:
                    pairs.append((obs, row))
                    named[obs] = (name, star.catalog, star.key)
    if not pairs:
        raise TargetNotFoundError(" = ".join(names), _where(handle, None, product))
    handle.prepare([o for o, _ in pairs])
    results = run(handle.read_rows(pairs, wanted))
    parts = [(obs, handle.opened_reader(obs), values) for (obs, _), values in zip(pairs, results, strict=True)]
    parts.sort(key=_first_bjd)  # in time order, whichever name the star was read by: lightkurve's stitch() keeps the order
    first_id = named[parts[0][0]][2]
    lc = described(_assemble(first_id, parts))
    lc = _in_bjd(lc, parts, named, names)
    if quality_bitmask is not None and quality_bitmask != "none":
        lc = LightCurveAccessor(lc).good(quality_bitmask)
    return LightCurveAccessor(lc).normalize() if normalize else lc


def _first_bjd(part: tuple[str, GroupReader, dict[str, np.ndarray]]) -> float:
    """An observation's first time stamp in BJD_TDB (its own first time plus its mission's offset;
    infinite for an observation with no time stamp, which goes last)."""
    _, reader, values = part
    times = np.asarray(values.get("time", np.empty(0)), dtype=np.float64)
    finite = times[np.isfinite(times)]
    if finite.size == 0:
        return np.inf
    return float(reader.attrs.get("time_reference_epoch_jd", 0.0)) + float(finite.min())


_BJD_NOTE = (
    "BJD_TDB, days (Julian date in TDB at the solar-system barycentre): each observation's own times plus its "
    "mission's offset, BJD_TDB = BKJD + 2454833 (Kepler, K2) = BTJD + 2457000 (TESS), as astropy's "
    "Time(BJDREFI + BJDREFF + TIME, format='jd', scale='tdb') gives them"
)


def _in_bjd(
    lc: xr.Dataset,
    parts: list[tuple[str, GroupReader, dict[str, np.ndarray]]],
    named: dict[str, tuple[str, str, int]],
    names: list[str],
) -> xr.Dataset:
    """A light curve of observations of several missions with its times in BJD_TDB (each
    observation's offset added to its own times, named per observation and in the attributes),
    and each observation's mission, catalog name and ID as coordinates on ``observation``."""
    from astropy.time import Time

    epochs = {obs: float(reader.attrs.get("time_reference_epoch_jd", np.nan)) for obs, reader, _ in parts}
    formats = {obs: str(reader.attrs.get("time_format", "")) for obs, reader, _ in parts}
    observations = [str(o) for o in lc["observation"].values]
    per_cadence = np.array([epochs[o] for o in observations])[
        pd.Index(observations).get_indexer(lc["cadence_observation"].values.astype(str))
    ]
    if "time" in lc:
        own = np.asarray(lc["time"].values, dtype=np.float64)
        bjd = np.full(own.shape, np.nan)  # a cadence without a time (a safe mode's) keeps none
        real = np.isfinite(own)
        if real.any():  # the files' BJDREFI + BJDREFF + TIME, in TDB
            bjd[real] = Time(per_cadence[real] + own[real], format="jd", scale="tdb").tdb.jd
        lc["time"] = lc["time"].copy(data=bjd)
        lc["time"].attrs.update(
            {
                "units": "d",
                "time_format": "jd",
                "time_scale": "tdb",
                "time_reference_epoch_jd": 0.0,
                "long_name": "BJD_TDB",
                "description": _BJD_NOTE,
            }
        )
        for key in ("reference_epoch_jd", "fits_unit", "astropy_unit"):
            lc["time"].attrs.pop(key, None)
    missions = [str(p[1].attrs.get("mission", "")) for p in parts]
    lc = lc.assign_coords(
        observation_mission=("observation", np.array(missions, dtype=str), {"description": "mission of each observation"}),
        observation_target=(
            "observation",
            np.array([named[o][2] for o in observations], dtype=np.int64),
            {"description": "the star's ID in the catalog of each observation's mission"},
        ),
        observation_catalog=(
            "observation",
            np.array([named[o][1] for o in observations], dtype=str),
            {"description": "the catalog of each observation's target ID (TIC, KIC, EPIC)"},
        ),
        time_offset_jd=(
            "observation",
            np.array([epochs[o] for o in observations], dtype=np.float64),
            {
                "units": "d",
                "description": "each observation's own time offset: its stored times (BKJD, BTJD) are BJD_TDB minus this",
            },
        ),
        time_format_of_observation=(
            "observation",
            np.array([formats[o] for o in observations], dtype=str),
            {"description": "each observation's own time format (bkjd, btjd)"},
        ),
    )
    offsets = sorted({(formats[o].upper(), epochs[o]) for o in observations})
    lc.attrs.update(
        {
            "mission": "all",
            "missions": ", ".join(sorted(set(missions))),
            "names": ", ".join(names),
            "target_name": names[0],
            "time_format": "jd",
            "time_scale": "tdb",
            "time_system": "BJD_TDB",
            "time_reference_epoch_jd": 0.0,
            "time_offsets": "; ".join(f"{f} = BJD_TDB - {e:.1f}" for f, e in offsets),
            "time_note": _BJD_NOTE,
        }
    )
    return lc
