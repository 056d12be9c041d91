"""The whole ingest -> list -> plain-xarray path against a real S3 endpoint (moto's server)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from conftest import DATA, lcarchive_command
from reference import assert_bit_equal

pytestmark = pytest.mark.s3

FILES = [
    DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits",
    DATA / "spoc-2min" / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits",
    DATA / "kepler" / "kplr011442793-2009350155506_llc.fits",
]


def test_ingest_list_and_read_on_s3(s3):
    url = f"{s3}/archive"
    cli = lcarchive_command()
    subprocess.run([cli, "ingest", url, *map(str, FILES)], check=True, capture_output=True)
    listing = json.loads(subprocess.run([cli, "ls", url, "--json"], check=True, capture_output=True, text=True).stdout)
    assert {o["id"] for o in listing} == {"tess-spoc-2min-s0001", "kepler-lc-q03"}
    for obs in listing:
        assert obs["url"].startswith("s3://lcarchive-test/archive/observations/")
    by_id = {o["id"]: o["url"] for o in listing}
    # plain xarray, endpoint and credentials from the standard AWS variables only
    with xr.open_dataset(by_id["tess-spoc-2min-s0001"], engine="zarr") as ds:
        for path in FILES[:2]:
            with fits.open(path) as hdul:
                row = ds.sel(target=int(hdul[0].header["TICID"])).load()
                assert_bit_equal(row["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), path.name)
                assert_bit_equal(row["time"].values, hdul[1].data["TIME"].astype("f8"), path.name)
    archive = lcarchive.open_archive(url)
    lc = archive.light_curve(11442793)
    with fits.open(FILES[2]) as hdul:
        assert_bit_equal(lc["quality"].values, hdul[1].data["SAP_QUALITY"].astype("i4"), "quality")
    # again: nothing changes
    report = lcarchive.Archive(url).ingest([str(p) for p in FILES])
    assert len(report.unchanged) == 3 and not report.added


def test_missing_archive_on_s3_is_a_clear_error(s3):
    archive = lcarchive.open_archive(f"{s3}/nothing")
    with pytest.raises(lcarchive.ArchiveNotFoundError, match="lcarchive-test/nothing"):
        archive.observations
    with pytest.raises(lcarchive.ObservationNotFoundError, match="tess-spoc-2min-s0001"):
        archive.light_curve(261136679, observation="tess-spoc-2min-s0001")


def test_s3_inputs_are_read_through_fsspec(s3, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.put(str(FILES[0]), "lcarchive-test/incoming/lc.fits")
    report = lcarchive.Archive(str(tmp_path / "local")).ingest([f"{s3}/incoming/lc.fits"])
    assert [t for _, _, t in report.added] == [261136679]
    ds = lcarchive.open_archive(str(tmp_path / "local")).open_observation("tess-spoc-2min-s0001")
    assert np.array_equal(ds["target"].values, [261136679])
