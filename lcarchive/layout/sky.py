"""The sky index's pixels: HEALPix (Górski et al. 2005, ApJ 622, 759) of order :data:`SKY_ORDER`,
nested numbering, ICRS, through astropy-healpix.

The target index is kept twice in the catalog repository: by target ID (point reads) and by the
HEALPix pixel of the target's RA_OBJ/DEC_OBJ (searches by position). A cone or a box reads the
pixels it touches only (:func:`pixels_in_cones`, :func:`pixels_in_box`), a superset of the lines
it wants; the exact cut is then made on the lines' coordinates.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix

__all__ = ["SKY_ORDER", "SKY_PIXELS", "pixels_in_box", "pixels_in_cones", "pixels_of"]

SKY_ORDER = 6
"""HEALPix order of the sky index: nside 64, 49,152 pixels of about 0.92 deg (a TESS camera,
24 deg square, spans some 700 of them)."""

SKY_PIXELS = 12 * 4**SKY_ORDER

_HEALPIX = HEALPix(nside=2**SKY_ORDER, order="nested")


def pixels_of(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """The sky-index pixel of each position.

    Parameters
    ----------
    ra, dec : numpy.ndarray, shape (n,), deg
        ICRS; NaN where a target has no position.

    Returns
    -------
    numpy.ndarray, shape (n,), int64
        Pixel numbers (nested), -1 where the position is not finite (such a target is in no
        pixel: no search by position finds it).
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    out = np.full(ra.shape, -1, dtype=np.int64)
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    if ok.any():
        out[ok] = _HEALPIX.lonlat_to_healpix(ra[ok] * u.deg, dec[ok] * u.deg)
    return out


def pixels_in_cones(ra: np.ndarray, dec: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Every pixel that overlaps at least one of some cones.

    Parameters
    ----------
    ra, dec, radius : numpy.ndarray, shape (n,), deg
        Cone centres (ICRS) and radii.

    Returns
    -------
    numpy.ndarray, shape (m,), int64
        Sorted unique pixel numbers (astropy-healpix's ``cone_search_lonlat``, which returns
        every pixel the cone overlaps, not only those whose centre it holds).
    """
    ra, dec, radius = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (ra, dec, radius)))
    if ra.size and float(np.max(radius)) >= 90:  # half the sky or more: every pixel
        return np.arange(SKY_PIXELS, dtype=np.int64)
    found = [_HEALPIX.cone_search_lonlat(a * u.deg, d * u.deg, r * u.deg) for a, d, r in zip(ra, dec, radius, strict=True)]
    return np.unique(np.concatenate(found).astype(np.int64)) if found else np.zeros(0, dtype=np.int64)


def pixels_in_box(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> np.ndarray:
    """Every pixel that overlaps a box of RA and Dec (an RA range that wraps through 0 when
    ``ra_min > ra_max``), as the pixels of the cone circumscribing it.

    Returns
    -------
    numpy.ndarray, shape (m,), int64
    """
    width = (ra_max - ra_min) % 360 or (360.0 if ra_max != ra_min else 0.0)
    centre_ra = (ra_min + width / 2) % 360
    centre_dec = (dec_min + dec_max) / 2
    steps = np.linspace(0.0, 1.0, 33)  # the box's edges, sampled: the farthest point need not be a corner
    edge_ra = ra_min + width * steps
    edge_dec = dec_min + (dec_max - dec_min) * steps
    corners_ra = np.concatenate([edge_ra, edge_ra, np.full(33, ra_min), np.full(33, ra_min + width)])
    corners_dec = np.concatenate([np.full(33, dec_min), np.full(33, dec_max), edge_dec, edge_dec])
    radius = _separation(centre_ra, centre_dec, corners_ra, corners_dec).max()
    if width > 180:
        radius = 180.0
    return pixels_in_cones(np.array([centre_ra]), np.array([centre_dec]), np.array([radius * 1.01 + 1e-6]))


def _separation(ra1: float, dec1: float, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    from astropy.coordinates import angular_separation

    return np.degrees(angular_separation(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2)))
