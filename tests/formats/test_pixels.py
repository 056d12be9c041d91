"""Pixel files (target pixel files, TESScut cutouts, FFIs) told from light curves by their contents."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from lcarchive.errors import PixelFileError, UnrecognizedProductError
from lcarchive.formats import read_lightcurve
from lcarchive.formats.pixels import pixel_file

from conftest import DATA, PUBLIC

PIXEL = {
    "test-tpf-tesscut_1x1.fits": ("TESScut cutout", "HDU 1 (PIXELS) column FLUX holds a 1x1 image per cadence"),
    "test-tpf-kplr-tabby-100-cadences.fits": (
        "target pixel file",
        "HDU 1 (TARGETTABLES) column FLUX holds a 10x11 image per cadence",
    ),
    "tess25155310-s01-first-cadences.fits.gz": (
        "target pixel file",
        "HDU 1 (PIXELS) column FLUX holds a 11x11 image per cadence",
    ),
}


@pytest.mark.parametrize("name", sorted(PIXEL))
def test_real_pixel_files_are_refused_as_pixel_files_in_one_line(name):
    path = PUBLIC / "pixel" / name
    kind, evidence = PIXEL[name]
    with pytest.raises(PixelFileError) as info:
        read_lightcurve(str(path))
    assert isinstance(info.value, UnrecognizedProductError)  # callers catching the old class still catch it
    assert str(info.value) == (
        f"{path}: a pixel file ({kind}), not a light curve ({evidence}): ingest the light-curve file made from it"
    )
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "path",
    [
        DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits",
        DATA / "k2" / "ktwo211436265-c05_llc.fits",
        *sorted((PUBLIC / "cdips").glob("*.fits")),
        *sorted((PUBLIC / "k2varcat").glob("*.fits")),
    ],
    ids=lambda p: p.name,
)
def test_real_light_curves_are_no_pixel_files(path):
    """Light curves keep images too (SPOC's APERTURE, eleanor's pixel stamps), but no FLUX image per cadence."""
    with fits.open(path, memmap=False) as hdul:
        assert pixel_file(hdul) is None


def test_an_image_of_a_missions_detector_with_no_table_is_a_pixel_file(tmp_path):
    """An FFI or a cut of one (astrocut's fits_cut): an image HDU, no table; other images are not."""
    with fits.open(PUBLIC / "pixel" / "test-tpf-tesscut_1x1.fits", memmap=False) as hdul:
        primary = hdul[0].header.copy()
    ffi = fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(data=np.zeros((4, 5), "f4"))])
    found = pixel_file(ffi)
    assert found is not None and found[0] == "full-frame image or a cut of one"
    del primary["CREATOR"], primary["TELESCOP"]
    other = fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(data=np.zeros((4, 5), "f4"))])
    assert pixel_file(other) is None
