"""Light curves derived from a mission product by a processing tool (PyKE and others).

A file recognised as a mission product (Kepler, K2 or TESS SPOC light curves) may have been
rewritten by a tool: PyKE's ``kepcotrend`` appends ``CBVSAP_MODL``/``CBVSAP_FLUX``,
``kepflatten`` appends ``DETSAP_FLUX``, ``kepclip`` keeps some rows; most tools record their
call in HISTORY cards (``KEPFLATTEN -- infile=... datacol=...``). Such a file is no release of
the product: it is stored in its own observation, labelled by the tool
(``kepler-lc-kepcotrend-q03``), with datasets whose processing method names the tool and whose
lineage points at the columns they came from (``catalog/tools.json``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from astropy.io import fits

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import ProcessingTool, Product

__all__ = ["Derivation", "column_derivation", "derivation"]

_CALL = re.compile(r"\b([A-Z][A-Z0-9_]{2,}) --\s")


@dataclass
class Derivation:
    """How a file departs from the mission product it was recognised as.

    Attributes
    ----------
    label : str
        Observation label: the tool that added columns, else the last tool its HISTORY
        records, else ``derived``.
    tools : list of str
        Known tools found (HISTORY order, then the ones told by added columns).
    added_columns : list of str
        Columns of the light-curve table the product does not define.
    calls : list of str
        The tool calls its HISTORY records, one string each.
    parameters : dict of str to dict of str to str
        Each known tool's ``key=value`` parameters from its HISTORY call (the defaults of
        ``ProcessingTool.parameters`` where the call gives none).
    """

    label: str
    tools: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)


def _history(hdul: fits.HDUList, lc_hdu: int) -> list[str]:
    """The tool calls of the HISTORY cards (primary and light-curve table), cards rejoined."""
    calls: list[str] = []
    for index in dict.fromkeys((0, lc_hdu)):
        if index >= len(hdul) or "HISTORY" not in hdul[index].header:
            continue
        text = "".join(str(card) for card in hdul[index].header["HISTORY"])  # PyKE wraps calls at 72 characters
        starts = [m.start() for m in _CALL.finditer(text)]
        for a, b in zip(starts, [*starts[1:], len(text)], strict=True):
            call = text[a:b].strip()
            if call not in calls:
                calls.append(call)
    return calls


def derivation(hdul: fits.HDUList, lc_hdu: int, product: Product) -> Derivation | None:
    """The derivation of a file of ``product``, or None if it is the product as its pipeline wrote it.

    Only products with ``standard_columns`` (the mission products) are checked.
    """
    if not product.standard_columns:
        return None
    table = hdul[lc_hdu]
    names = list(table.columns.names) if isinstance(table, fits.BinTableHDU) else []
    return column_derivation(names, product, _history(hdul, lc_hdu))


def column_derivation(names: list[str], product: Product, calls: list[str] | None = None) -> Derivation | None:
    """The derivation of a file of ``product`` told by its column names (and HISTORY calls), or None.

    The shared rule of every input format: a column the product's ``standard_columns`` do not
    match (shell-style patterns, case-insensitive: an HDF5 product names its datasets by path,
    ``LightCurve/AperturePhotometry/Aperture_*/RawMagnitude``) was added by a tool; the tool is
    the one of ``catalog/tools.json`` whose ``columns`` match it.

    Parameters
    ----------
    names : list of str
        The file's light-curve columns (FITS ``TTYPEn``; HDF5 dataset paths).
    product : Product
        The product the file was recognised as; only products with ``standard_columns`` are checked.
    calls : list of str, optional
        Tool calls its HISTORY records (FITS).

    Returns
    -------
    Derivation or None
    """
    if not product.standard_columns:
        return None
    calls = list(calls or [])
    standard = [c.upper() for c in product.standard_columns]
    added = [n for n in names if not any(fnmatch.fnmatchcase(n.upper(), s) for s in standard)]
    tools = static_catalog().processing_tools
    by_history = {t.history.upper(): t for t in tools if t.history}
    found: list[ProcessingTool] = []
    parameters: dict[str, dict[str, str]] = {}
    for call in calls:
        tool = by_history.get(call.split(" ", 1)[0].upper())
        if tool is not None:
            if tool not in found:
                found.append(tool)
            given = dict(re.findall(r"(\w+)=(\S*)", call))
            parameters[tool.name] = {**tool.parameters, **{k: v for k, v in given.items() if k in tool.parameters}}
    adding = [t for t in tools if t.columns and any(fnmatch.fnmatch(c.upper(), p.upper()) for c in added for p in t.columns)]
    for tool in adding:
        if tool not in found:
            found.append(tool)
        parameters.setdefault(tool.name, dict(tool.parameters))
    if not added and not found:
        return None
    label = adding[-1].name if adding else found[-1].name if found else "derived"
    return Derivation(label, [t.name for t in found], added, calls, parameters)
