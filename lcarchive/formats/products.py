"""Which product a file is: detection rules, product versions and units, from the catalog's data.

Product definitions (``catalog/products/*.json``) recognise files by header keywords, table
columns and HDF5 attributes (:class:`~lcarchive.catalog.models.DetectionRule`). A file whose
rules hold for more than one product is ambiguous unless the products' ``priority`` settles it.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath
from typing import Any

from astropy import units as u
from astropy.io import fits

from lcarchive.catalog.content import static_catalog, unit_aliases
from lcarchive.catalog.models import DetectionRule, Product
from lcarchive.errors import UnrecognizedProductError

__all__ = [
    "astropy_unit",
    "choose_product",
    "detect_product",
    "header_keyword",
    "header_value",
    "product_version",
    "value_rule_holds",
]


def header_value(value: Any) -> Any:
    """Map astropy's Undefined (an empty keyword value) to None."""
    return None if isinstance(value, fits.card.Undefined) else value


def value_rule_holds(rule: DetectionRule, values: Any) -> bool:
    """A keyword rule tested on ``values``, a mapping of keyword to value (None: absent).

    Used on FITS headers, HDF5 root attributes and SkyPortal series metadata alike.
    """
    value = values.get(rule.keyword) if rule.keyword is not None else None
    present = value is not None
    if rule.present is not None and present != rule.present:
        return False
    if not present:
        return rule.present is False
    text = str(value).strip().lower()
    if rule.equals is not None and text != rule.equals.strip().lower():
        return False
    if rule.contains is not None and rule.contains.strip().lower() not in text:
        return False
    if rule.min is not None or rule.max is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
    return True


class _HeaderValues:
    """A FITS header as a mapping of keyword to value, astropy's Undefined as None."""

    def __init__(self, header: fits.Header) -> None:
        self.header = header

    def get(self, keyword: str) -> Any:
        return header_value(self.header[keyword]) if keyword in self.header else None


def _rule_holds(rule: DetectionRule, hdul: fits.HDUList) -> bool:
    if rule.hdu >= len(hdul):
        return False
    if rule.column is not None:
        hdu = hdul[rule.hdu]
        names = {n.upper() for n in hdu.columns.names} if isinstance(hdu, fits.BinTableHDU) else set()
        return rule.column.upper() in names
    return value_rule_holds(rule, _HeaderValues(hdul[rule.hdu].header))


def detect_product(hdul: fits.HDUList, source: str = "") -> Product | None:
    """Return the product whose detection rules all hold for this file, or None.

    Raises
    ------
    UnrecognizedProductError
        If the rules of several products hold and their ``priority`` does not settle it (the
        definitions overlap: a fault of the catalog's data, named in the message).
    """
    return choose_product(
        [
            p
            for p in static_catalog().products
            if p.format == "fits" and p.detect and all(_rule_holds(rule, hdul) for rule in p.detect)
        ],
        source,
    )


def choose_product(matches: list[Product], source: str) -> Product | None:
    """The one product of those whose rules hold: the highest ``priority``; None if none holds.

    Raises
    ------
    UnrecognizedProductError
        Two or more of the highest priority.
    """
    if not matches:
        return None
    best = max(p.priority for p in matches)
    top = [p for p in matches if p.priority == best]
    if len(top) > 1:
        raise UnrecognizedProductError(
            source,
            f"ambiguous: the detection rules of products {', '.join(p.name for p in top)} all hold "
            "(catalog/products: give one a higher priority or a rule the others fail)",
        )
    return top[0]


def header_keyword(hdul: fits.HDUList, keyword: str, hdus: tuple[int, ...]) -> tuple[Any, str] | None:
    for i in hdus:
        if keyword in hdul[i].header:
            value = header_value(hdul[i].header[keyword])
            return value, hdul[i].header.comments[keyword]
    return None


def product_version(product: Product, hdul: fits.HDUList | None, source: str) -> str:
    """The version of a product a file is, by the product's ``version_rules`` (first that holds).

    A rule reads a keyword (``VERSION``), matches the file name (``_v(?P<version>[0-9.]+)_``: MAST's
    HLSP names carry the HLSP's version) or tests a column (K2SC v2's ``trtime``, v1's ``trend_t``).
    """
    name = PurePosixPath(source.rstrip("/")).name
    for rule in product.version_rules:
        if rule.file_name is not None:
            match = re.search(rule.file_name, name)
            if match:
                return rule.version or f"v{match.group('version')}"
        elif hdul is not None and rule.keyword is not None:
            found = header_keyword(hdul, rule.keyword, tuple(range(min(len(hdul), 2))))
            if found is not None and found[0] is not None and str(found[0]).strip():
                return rule.version or f"v{str(found[0]).strip().lstrip('vV')}"
        elif hdul is not None and rule.column is not None:
            if any(rule.column.upper() in {n.upper() for n in h.columns.names} for h in hdul if isinstance(h, fits.BinTableHDU)):
                return rule.version or ""
    return ""


@functools.lru_cache(maxsize=1024)
def astropy_unit(fits_unit: str | None) -> str | None:
    """astropy unit string of a FITS TUNITn value (None if astropy cannot read it); cached."""
    if not fits_unit:
        return None
    fits_unit = unit_aliases().get(fits_unit.strip(), fits_unit)
    try:
        return u.Unit(fits_unit, format="fits", parse_strict="raise").to_string()
    except ValueError:
        pass
    try:
        return u.Unit(fits_unit, parse_strict="raise").to_string()
    except ValueError:
        return None
