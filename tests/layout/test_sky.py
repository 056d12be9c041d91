"""lcarchive.layout.sky: the sky index's HEALPix pixels against astropy-healpix, and the searches'
pixel sets holding every position they must."""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy_healpix import HEALPix
from hypothesis import given
from hypothesis import strategies as st

from lcarchive.layout.sky import SKY_ORDER, SKY_PIXELS, pixels_in_box, pixels_in_cones, pixels_of

RA = st.floats(0, 360, exclude_max=True)
DEC = st.floats(-90, 90)
NESTED = HEALPix(nside=2**SKY_ORDER, order="nested", frame="icrs")


def test_pixel_count_is_healpix_order_six():
    assert SKY_PIXELS == NESTED.npix == 49152


@given(ra=st.lists(RA, min_size=1, max_size=20), dec=st.data())
def test_pixels_of_are_astropy_healpix_nested_pixels(ra, dec):
    decs = dec.draw(st.lists(DEC, min_size=len(ra), max_size=len(ra)))
    got = pixels_of(np.array(ra), np.array(decs))
    expected = NESTED.skycoord_to_healpix(SkyCoord(np.array(ra) * u.deg, np.array(decs) * u.deg, frame="icrs"))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    # the centre of the pixel found lies in that pixel
    centre = NESTED.healpix_to_lonlat(got)
    np.testing.assert_array_equal(pixels_of(centre[0].deg, centre[1].deg), got)


def test_positions_that_are_not_finite_are_in_no_pixel():
    got = pixels_of(np.array([np.nan, 10.0, np.inf, 10.0, 5.0]), np.array([0.0, np.nan, 0.0, 91.0, -90.0]))
    np.testing.assert_array_equal(got[:4], [-1, -1, -1, -1])
    assert 0 <= got[4] < SKY_PIXELS


@given(ra=RA, dec=st.floats(-89.9, 89.9), radius=st.floats(0.001, 20), bearing=st.floats(0, 360), fraction=st.floats(0, 0.999))
def test_a_cone_holds_the_pixel_of_every_position_in_it(ra, dec, radius, bearing, fraction):
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    inside = centre.directional_offset_by(bearing * u.deg, radius * fraction * u.deg)
    pixels = pixels_in_cones(np.array([ra]), np.array([dec]), np.array([radius]))
    assert np.all(np.diff(pixels) > 0) and pixels.dtype == np.int64
    assert pixels_of(np.array([inside.ra.deg]), np.array([inside.dec.deg]))[0] in pixels
    assert pixels_of(np.array([ra]), np.array([dec]))[0] in pixels


def test_half_the_sky_or_more_is_every_pixel_and_no_cone_none():
    np.testing.assert_array_equal(pixels_in_cones(np.array([0.0]), np.array([0.0]), np.array([90.0])), np.arange(SKY_PIXELS))
    assert pixels_in_cones(np.zeros(0), np.zeros(0), np.zeros(0)).size == 0


@given(
    ra_min=RA,
    width=st.one_of(st.floats(0.01, 60), st.floats(181, 359)),
    dec_min=st.floats(-89, 88),
    height=st.floats(0.01, 30),
    data=st.data(),
)
def test_a_box_holds_the_pixel_of_every_position_in_it_wrapping_through_zero(ra_min, width, dec_min, height, data):
    ra_max = (ra_min + width) % 360
    dec_max = min(dec_min + height, 90.0)
    x, y = data.draw(st.floats(0, 1)), data.draw(st.floats(0, 1))
    ra = (ra_min + width * x) % 360
    dec = dec_min + (dec_max - dec_min) * y
    pixels = pixels_in_box(ra_min, ra_max, dec_min, dec_max)
    assert pixels_of(np.array([ra]), np.array([dec]))[0] in pixels
