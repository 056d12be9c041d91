"""Load the catalog content shipped as data in ``catalog/``.

Missions, target catalogs, instruments, photometric sources, processing methods,
products and quality-flag tables are JSON files, not code; adding a product that
resembles an existing one is a new JSON file in ``catalog/products/``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from lcarchive.catalog.models import (
    Catalog,
    Instrument,
    Mission,
    MissionCatalog,
    PhotometricSource,
    ProcessingMethod,
    ProcessingTool,
    Product,
    QualityFlagTable,
)

__all__ = ["catalog_data_dir", "ignored_suffixes", "static_catalog", "unit_aliases"]


def catalog_data_dir() -> Path:
    """Return the folder holding the catalog content.

    In an installed wheel it is ``lcarchive/_catalog_data``; in a source checkout
    (editable install) it is the repository's top-level ``catalog/``.
    """
    package = Path(__file__).resolve().parents[1]  # lcarchive/
    for candidate in (package / "_catalog_data", package.parent / "catalog"):
        if (candidate / "missions.json").is_file():
            return candidate
    raise FileNotFoundError(f"lcarchive catalog data not found next to {package}")


def _load_json(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def static_catalog() -> Catalog:
    """Return a catalog holding only the shipped definitions (no observations).

    Returns
    -------
    Catalog
        Missions, target catalogs, instruments, photometric sources, processing
        methods, quality-flag tables and products, validated by pydantic.
    """
    root = catalog_data_dir()
    missions = _load_json(root / "missions.json")
    return Catalog(
        missions=[Mission.model_validate(m) for m in missions["missions"]],
        mission_catalogs=[MissionCatalog.model_validate(m) for m in missions["mission_catalogs"]],
        photometric_sources=[PhotometricSource.model_validate(m) for m in missions["photometric_sources"]],
        processing_methods=[ProcessingMethod.model_validate(m) for m in missions["processing_methods"]],
        instruments=[Instrument.model_validate(_load_json(p)) for p in sorted((root / "instruments").glob("*.json"))],
        quality_flags=[QualityFlagTable.model_validate(_load_json(p)) for p in sorted((root / "quality").glob("*.json"))],
        products=[Product.model_validate(_load_json(p)) for p in sorted((root / "products").glob("*.json"))],
        processing_tools=[ProcessingTool.model_validate(t) for t in _load_json(root / "tools.json")["tools"]],
    )


@functools.cache
def ignored_suffixes() -> dict[str, str]:
    """File-name endings of products that are no light curves (target pixel files, DV time series,
    FFIs), each with what it is (``catalog/inputs.json``); skipped when folders are expanded."""
    return {e["suffix"]: e["what"] for e in _load_json(catalog_data_dir() / "inputs.json")["not_light_curves"]}


@functools.cache
def unit_aliases() -> dict[str, str]:
    """Return FITS unit strings astropy cannot parse, mapped to astropy unit strings (``catalog/units.json``)."""
    return dict(_load_json(catalog_data_dir() / "units.json")["aliases"])
