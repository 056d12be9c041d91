"""Pixel files: target pixel files, TESScut/astrocut cutouts and full-frame images (or cuts of
them), told from light curves by their contents, and refused by that name.

A pixel file holds images, not a light curve: SPOC and Kepler/K2 target pixel files (a table
``PIXELS``/``TARGETTABLES`` whose ``FLUX``, ``RAW_CNTS``... hold one image per cadence, TESS SDPDD
5.2, Kepler Archive Manual 2.3.2), TESScut cutouts made by astrocut (the same layout, written by
``CREATOR = 'astrocut'``, with the full-frame image of each cadence in ``FFI_FILE``; astrocut's
``CubeFactory``/``CutoutFactory``), and full-frame images or image cutouts of them (no table, an
image of a mission's detector: ``fits_cut``). lcarchive stores light curves; a pixel file is
refused with :class:`~lcarchive.errors.PixelFileError` before its product or target is looked at.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from lcarchive.errors import PixelFileError

__all__ = ["PIXEL_COLUMNS", "pixel_file", "refuse_pixel_file"]

PIXEL_COLUMNS = ("FLUX", "RAW_CNTS", "FLUX_ERR", "FLUX_BKG", "FLUX_BKG_ERR", "COSMIC_RAYS")
"""Columns of a target pixel file's table that hold one image per cadence (TESS SDPDD table
"Target Pixel File"; Kepler Archive Manual, "Target Pixel Data")."""

_MISSION_TELESCOPES = ("tess", "kepler", "k2")


def _text(header: fits.Header, key: str) -> str:
    value = header.get(key)
    return value.strip() if isinstance(value, str) else ""


def pixel_file(hdul: fits.HDUList) -> tuple[str, str] | None:
    """What kind of pixel file ``hdul`` is, and the evidence; None for a file that is none.

    Returns
    -------
    (str, str) or None
        The kind (``target pixel file``, ``TESScut cutout``, ``full-frame image or a cut of
        one``) and the evidence in words (the HDU and column holding images, or the image HDU).
    """
    head = hdul[0].header
    astrocut = "astrocut" in _text(head, "CREATOR").lower()
    tables = [(i, h) for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU) and h.data is not None]
    for i, h in tables:
        names = {n.upper(): n for n in h.columns.names}
        for column in PIXEL_COLUMNS:
            name = names.get(column)
            if name is None:
                continue
            values = np.asarray(h.data.field(name))
            if values.ndim >= 3:  # (rows, pixel rows, pixel columns): an image per cadence
                tesscut = astrocut or "FFI_FILE" in names
                kind = "TESScut cutout" if tesscut else "target pixel file"
                shape = "x".join(str(n) for n in values.shape[1:])
                return kind, f"HDU {i} ({h.name or 'unnamed'}) column {name} holds a {shape} image per cadence"
    if tables:
        return None
    telescope = _text(head, "TELESCOP").lower()
    for i, h in enumerate(hdul):
        if not isinstance(h, fits.PrimaryHDU | fits.ImageHDU) or h.data is None or h.data.ndim < 2:
            continue
        if astrocut or telescope in _MISSION_TELESCOPES or _text(h.header, "TELESCOP").lower() in _MISSION_TELESCOPES:
            shape = "x".join(str(n) for n in h.data.shape)
            return (
                "full-frame image or a cut of one",
                f"HDU {i} ({h.name or 'unnamed'}) is a {shape} image and the file has no table",
            )
    return None


def refuse_pixel_file(hdul: fits.HDUList, source: str) -> None:
    """Raise :class:`~lcarchive.errors.PixelFileError` if ``hdul`` is a pixel file.

    Raises
    ------
    PixelFileError
        ``<source>: a pixel file (<kind>), not a light curve (<evidence>): ingest the light-curve
        file made from it``.
    """
    found = pixel_file(hdul)
    if found is not None:
        kind, evidence = found
        raise PixelFileError(
            source, f"a pixel file ({kind}), not a light curve ({evidence}): ingest the light-curve file made from it"
        )
