"""The alias table in a catalog session: the sky pixels a cross-match reads (lcarchive.store.aliases)."""

from __future__ import annotations

import numpy as np

from lcarchive.layout.sky import pixels_in_cones
from lcarchive.store.aliases import _pixels_near


def test_the_pixels_read_hold_every_star_within_the_radius():
    rng = np.random.default_rng(22)
    ra = np.concatenate([rng.uniform(0, 360, 3000), [0.0, 45.0, 359.9999, 12.0]])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 3000))), [90.0, 41.8103, 0.0, -89.9999]])
    radius = 11.5 / 3600
    read = set(_pixels_near(ra, dec, radius))
    for r, d in zip(ra, dec, strict=True):  # astropy-healpix's cone search: every pixel each cone overlaps
        assert set(pixels_in_cones(np.array([r]), np.array([d]), np.array([radius])).tolist()) <= read, (r, d)
