"""The alias table in the catalog repository: read, written, and kept in step by catalog commits.

The table is one JSON text in the catalog root's string array ``aliases`` (shape (1,), the
catalog's checked codecs: ``docs/format.md``), written by :func:`write_aliases` in the same
catalog commit as the pins and the target index, so it is at every archive version what the
targets were. :func:`update_aliases` is what each ingest's (and each repair's) catalog commit
runs: the header pairs of the targets it stores, and the positional cross-match of those targets
against the archive's targets of other catalogs near them (the sky index's buckets of their
pixels: nothing else is read). A commit redone on conflict redoes this on the other writer's
table, so concurrent ingests and ``lcarchive alias`` lose no pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import zarr
from astropy_healpix import HEALPix

from lcarchive.aliases import AliasTable, alias_settings, cross_match, header_pairs
from lcarchive.catalog.content import static_catalog
from lcarchive.clients import RetryingStore
from lcarchive.layout.sky import pixels_of
from lcarchive.store.buckets import CHECKED, decode_index, read_buckets

__all__ = ["ALIASES", "FACT_COLUMNS", "index_names", "read_aliases", "update_aliases", "write_aliases"]

ALIASES = "aliases"
"""The catalog root's array holding the alias table's JSON text."""

FACT_COLUMNS = ["name", "catalog", "observation", "ra", "dec", "pmra", "pmdec"]
"""What :func:`update_aliases` needs of each stored target (pmra, pmdec in mas/yr; the
``header_identifiers`` variables of ``catalog/aliases.json`` as further columns)."""


def read_aliases(store: Any) -> AliasTable:
    """The alias table in a catalog session's zarr ``store`` (empty in an archive without one).

    Raises
    ------
    ValueError
        If the stored text is no alias table (a damaged catalog).
    """
    try:
        array = zarr.open_array(store, path=ALIASES, mode="r")
    except (KeyError, FileNotFoundError, zarr.errors.NodeNotFoundError):
        return AliasTable()
    return AliasTable.from_text(str(array[0]))


def write_aliases(session: Any, table: AliasTable) -> None:
    """Write the alias table in a writable catalog session (the array made on first use)."""
    root = zarr.open_group(session.store, mode="r+")
    if ALIASES not in root:
        array = root.create_array(ALIASES, shape=(1,), chunks=(1,), dtype=str, fill_value="", compressors=CHECKED)
        array.attrs.update({"description": "alias table: JSON {aliases: [Alias...], removed: [[a, b]...]} (docs/format.md)"})
    else:
        array = zarr.open_array(session.store, path=ALIASES, mode="r+")
    array[0] = table.to_text()


def index_names(lines: pd.DataFrame) -> pd.DataFrame:
    """Targets of some index lines as alias facts (name, catalog, ra, dec; one row per target):
    the catalog of a line is its own ``target_catalog`` where it has one, else its mission's, and a
    designation (an asteroid's, a comet's) names its target where there is one."""
    if lines.empty:
        return pd.DataFrame({c: [] for c in FACT_COLUMNS})
    by_mission = {m.name: m.target_catalog for m in static_catalog().missions}
    own = lines["target_catalog"].astype(str) if "target_catalog" in lines else pd.Series("", index=lines.index)
    catalogs = own.where(own != "", lines["mission"].astype(str).map(by_mission))
    designations = lines["designation"].astype(str) if "designation" in lines else pd.Series("", index=lines.index)
    frame = pd.DataFrame(
        {
            "catalog": catalogs.to_numpy(str),
            "name": [f"{c} {d or int(t)}" for c, d, t in zip(catalogs, designations, lines["target"], strict=True)],
            "observation": lines["observation"].astype(str).to_numpy(),
            "ra": lines["ra"].to_numpy(np.float64),
            "dec": lines["dec"].to_numpy(np.float64),
        }
    )
    return frame.drop_duplicates("name").reset_index(drop=True)


def update_aliases(session: Any, facts: pd.DataFrame) -> int:
    """Add the header pairs and the cross-match pairs of the stored targets ``facts``
    (:data:`FACT_COLUMNS`) to the alias table of a writable catalog session (after the target
    index is updated); return how many pairs were added. Nothing is written when none is."""
    if facts.empty:
        return 0
    table = read_aliases(RetryingStore(session.store))
    found = header_pairs(facts)
    radius = float(alias_settings()["match_radius_arcsec"])
    placed = facts[np.isfinite(facts["ra"].to_numpy(np.float64)) & np.isfinite(facts["dec"].to_numpy(np.float64))]
    if not placed.empty:
        # the buckets of every pixel within the radius, widened by what proper motion can move a star
        # between catalog epochs (10 arcsec: 0.4 arcsec/yr over 25 years)
        pixels = _pixels_near(placed["ra"].to_numpy(np.float64), placed["dec"].to_numpy(np.float64), (radius + 10.0) / 3600.0)
        texts = read_buckets(session, "sky", pixels) if "sky" in zarr.open_group(session.store, mode="r") else {}
        known = index_names(decode_index(texts.values()))
        found.extend(cross_match(placed[FACT_COLUMNS], known, radius))
    added = sum(table.add(a) for a in found)
    if added:
        write_aliases(session, table)
    return added


def _pixels_near(ra: np.ndarray, dec: np.ndarray, radius: float) -> list[int]:
    """Every sky pixel a star within ``radius`` (deg) of some positions can be in: each position's
    pixel and its eight neighbours (the radius, seconds of arc, is far below a pixel's 0.92 deg, so
    no other pixel reaches it), computed at once for a sector's twenty thousand targets."""
    from lcarchive.layout.sky import SKY_ORDER

    pixels = np.unique(pixels_of(ra, dec))
    pixels = pixels[pixels >= 0]
    if not pixels.size:
        return []
    with np.errstate(invalid="ignore"):  # a pixel of seven neighbours: -1 for the eighth, and numpy says "invalid"
        around = HEALPix(nside=2**SKY_ORDER, order="nested").neighbours(pixels)  # (8, n)
    every = np.concatenate([pixels, around.ravel()])
    return sorted(set(every[every >= 0].tolist()))
