"""QLP's internal HDF5 light curves (the files MIT's lightcurvedb ingested), and the dispatch of
HDF5 files between them and SkyPortal photometric series written by pandas."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import DetectionRule
from lcarchive.errors import CorruptFileError, UnrecognizedProductError
from lcarchive.formats.cadences import cadence_numbers
from lcarchive.formats.derived import column_derivation
from lcarchive.formats.products import choose_product, value_rule_holds
from lcarchive.formats.record import Column, LightCurveFile, check_rows
from lcarchive.identifiers import check_segment, check_target_id, observation_id

__all__ = ["parse_hdf5"]


def _h5_variable(path: str) -> str:
    """Variable name of an HDF5 dataset: its path, lower case, without the LightCurve/AperturePhotometry levels."""
    name = path.lower().removeprefix("lightcurve/").replace("aperturephotometry/", "")
    return name.replace("/", "_").replace(" ", "_")


def _h5_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _is_pandas_store(h5: Any) -> bool:
    """True for an HDF5 file written by pandas (HDFStore: a top-level group with ``pandas_type``)."""
    try:
        return any("pandas_type" in obj.attrs for obj in h5.values())
    except Exception:  # dangling links, unreadable objects: not a store pandas could read either
        return False


def parse_hdf5(data: bytes, source: str) -> LightCurveFile:
    """Parse an HDF5 light-curve file of a product whose format is 'hdf5' (see Product.format), or a
    SkyPortal photometric series written by pandas."""
    import h5py

    try:
        h5 = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:
        raise CorruptFileError(source, f"unreadable HDF5: {exc}") from exc
    with h5:
        root = {k: _h5_scalar(v) for k, v in h5.attrs.items()}

        def holds(rule: DetectionRule) -> bool:
            return rule.column in h5 if rule.column is not None else value_rule_holds(rule, root)

        product = choose_product(
            [p for p in static_catalog().products if p.format == "hdf5" and all(holds(r) for r in p.detect)], source
        )
        if product is None:
            if _is_pandas_store(h5):  # a SkyPortal photometric series?
                from lcarchive.formats.skyportal import parse_skyportal_hdf5

                return parse_skyportal_hdf5(data, source)
            raise UnrecognizedProductError(
                source, f"an HDF5 file of no light-curve product lcarchive knows (root attributes: {', '.join(root) or 'none'})"
            )
        catalog = static_catalog()
        mission = catalog.mission(product.mission)
        target_catalog = next(c for c in catalog.mission_catalogs if c.name == mission.target_catalog)
        keyword = product.target_keyword or target_catalog.id_keyword
        target = check_target_id(root.get(keyword), target_catalog, source, keyword)
        segment_keyword = product.segment_keyword or mission.segment_keyword
        segment = check_segment(root.get(segment_keyword), mission, source, segment_keyword)
        attributes: dict[str, dict[str, Any]] = {"/": root}
        datasets: dict[str, Any] = {}

        def visit(name: str, obj: Any) -> None:
            if obj.attrs:
                attributes[name] = {k: _h5_scalar(v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                datasets[name] = obj

        h5.visititems(visit)
        placeholders: dict[str, Any] = dict(product.attribute_defaults)
        for group_attrs in attributes.values():
            placeholders.update(group_attrs)
        cmap = product.columns

        def path(template: str | None) -> str | None:
            if template is None:
                return None
            try:
                return template.format(**placeholders)
            except (KeyError, ValueError, IndexError):
                return None

        time_path, flux_path = path(cmap.time), path(cmap.flux)
        missing = [p for p in (time_path, flux_path) if p is None or p not in datasets]
        if missing:
            raise UnrecognizedProductError(source, f"{product.name}: no dataset {missing[0] or cmap.flux}")
        n = datasets[time_path].shape[0]  # type: ignore[index]  # not None: nothing is missing
        core = {"time": time_path, "flux": flux_path}
        for candidate in cmap.flux_err:
            if path(candidate) in datasets:
                core["flux_err"] = path(candidate)
                break
        for var, template in (("cadenceno", cmap.cadenceno), ("quality", cmap.quality)):
            if path(template) in datasets:
                core[var] = path(template)
        by_path = {p: v for v, p in core.items()}
        columns: dict[str, Column] = {}
        images: dict[str, tuple[np.ndarray, dict]] = {}
        dropped = []
        for name, dset in datasets.items():
            values = np.asarray(dset[()])
            if values.dtype.kind not in "iuf":
                dropped.append(name)
                continue
            values = values.astype(values.dtype.newbyteorder("="), copy=False)
            var = _h5_variable(name)
            if values.ndim == 1 and values.shape[0] == n:
                units = "mag" if "magnitude" in name.lower() and "error" not in name.lower() else None
                core_var = by_path.get(name)
                if core_var in ("time", "cadenceno"):
                    columns[core_var] = Column(
                        core_var, name, values, "d" if core_var == "time" else None, None, f"HDF5 dataset {name}", ""
                    )
                    continue
                columns[var] = Column(var, name, values, units, None, f"HDF5 dataset {name}", "")
                if core_var is not None:  # flux, flux_err, quality: a copy, since the dataset differs per target
                    copy = values.astype(np.int32) if core_var == "quality" else values
                    columns[core_var] = Column(
                        core_var,
                        "",
                        copy,
                        units,
                        None,
                        f"the target's {core_var} dataset (named by the per-target {core_var}_source)",
                        "",
                    )
            else:
                images[_h5_variable(name)] = (values, {"description": f"HDF5 dataset {name}", "source_column": name})
        if "flux_err" not in columns:
            columns["flux_err"] = Column(
                "flux_err",
                "",
                np.full(n, np.nan, dtype=columns["flux"].data.dtype),
                columns["flux"].units,
                None,
                "no error dataset for the default flux",
                "",
            )
        if "quality" not in columns:
            columns["quality"] = Column(
                "quality",
                "",
                np.zeros(n, dtype=np.int32),
                None,
                None,
                "no quality flags in this file: 0 (no flag) on every cadence",
                "",
            )
        cadenceno, derived = cadence_numbers(columns, source)
        columns.pop("cadenceno", None)
        check_rows(columns["time"].data, cadenceno, source)
        target_values = {}
        for var, keyword in product.target_keywords.items():
            target_values[var] = (root.get(keyword), {"source_keyword": keyword, "description": f"root attribute {keyword!r}"})
        for var in ("flux", "flux_err", "quality"):
            if core.get(var):
                target_values[f"{var}_source"] = (core[var], {"description": f"HDF5 dataset copied to {var} for this target"})
        headers = {"hdf5_attributes": json.dumps(attributes, sort_keys=True, default=str)}
        notes = {"cadenceno": derived} if derived else {}
        label, processing, derived_from = "", [], None
        if (how_derived := column_derivation(list(datasets), product)) is not None:
            # QLP's LC-qsp/ files: LC/'s datasets plus QSP's detrended magnitudes, a derived light curve
            label, processing = how_derived.label, how_derived.tools
            derived_from = observation_id(mission, product, segment)
            notes["derived"] = json.dumps(
                {
                    "tools": how_derived.tools,
                    "added_columns": how_derived.added_columns,
                    "history": [],
                    "parameters": how_derived.parameters,
                },
                sort_keys=True,
            )
        if dropped:
            notes["dropped_columns"] = ", ".join(dropped)
        instruments = []
        if (
            "camera" in target_values
            and "ccd" in target_values
            and None not in (target_values["camera"][0], target_values["ccd"][0])
        ):
            instruments = [f"tess/camera{target_values['camera'][0]}/ccd{target_values['ccd'][0]}"]
        return LightCurveFile(
            source=source,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            product=product,
            mission=mission,
            target_catalog=target_catalog,
            target=target,
            segment=segment,
            cadenceno=cadenceno,
            columns=columns,
            target_values=target_values,
            headers=headers,
            images=images,
            notes=notes,
            data_release=None,
            pipeline_version=None,
            file_date=None,
            instruments=instruments,
            label=label,
            processing=processing,
            derived_from=derived_from,
        )
