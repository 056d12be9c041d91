"""The whole ingest -> list -> plain-xarray path against a real S3 endpoint (moto's server)."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
import lcarchive.config
from lcarchive.conventions import described

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
        assert obs["url"] == "s3://lcarchive-test/archive" and obs["group"].startswith("observations/")
    # icechunk and plain xarray (docs/format.md), credentials from the standard AWS variables
    import icechunk

    storage = icechunk.s3_storage(
        bucket="lcarchive-test",
        prefix="archive/observations/tess-spoc-2min-s0001",
        from_env=True,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        allow_http=True,
        force_path_style=True,
    )
    store = icechunk.Repository.open(storage).readonly_session(branch="main").store
    with (
        xr.open_dataset(store, group="tess-spoc-2min-s0001", engine="zarr", consolidated=False) as ds,
        xr.open_dataset(url, engine="lcarchive", group="tess-spoc-2min-s0001") as same,
    ):
        # the same data; lcarchive's engine adds netCDF-ready and CF attributes (lcarchive.conventions)
        assert ds.equals(same) and described(ds.copy()).identical(same)
        for path in FILES[:2]:
            with fits.open(path) as hdul:
                row = ds.sel(target=int(hdul[0].header["TICID"])).load()
                assert_bit_equal(row["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), path.name)
                assert_bit_equal(row["time"].values, hdul[1].data["TIME"].astype("f8"), path.name)
    archive = lcarchive.open_archive(url)
    lc = archive.light_curve(11442793, quality_bitmask="none")
    with fits.open(FILES[2]) as hdul:
        assert_bit_equal(lc["quality"].values, hdul[1].data["SAP_QUALITY"].astype("i4"), "quality")
    # again: nothing changes
    report = lcarchive.Archive(url).ingest([str(p) for p in FILES])
    assert len(report.unchanged) == 3 and not report.added


def test_missing_archive_on_s3_is_a_clear_error(s3):
    archive = lcarchive.open_archive(f"{s3}/nothing")
    with pytest.raises(lcarchive.ArchiveNotFoundError, match="lcarchive-test/nothing"):
        archive.observations
    with pytest.raises(lcarchive.ArchiveNotFoundError, match="lcarchive-test/nothing"):
        archive.light_curve(261136679, observation="tess-spoc-2min-s0001", quality_bitmask="none")


def test_s3_inputs_are_read_through_fsspec(s3, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.put(str(FILES[0]), "lcarchive-test/incoming/lc.fits")
    report = lcarchive.Archive(str(tmp_path / "local")).ingest([f"{s3}/incoming/lc.fits"])
    assert [t for _, _, t in report.added] == [261136679]
    ds = lcarchive.open_archive(str(tmp_path / "local")).open_observation("tess-spoc-2min-s0001")
    assert np.array_equal(ds["target"].values, [261136679])
    # an object larger than Settings.max_input_bytes is refused by name, read no further than the limit
    limit = FILES[0].stat().st_size - 1
    with lcarchive.config.override(max_input_bytes=limit):
        report = lcarchive.Archive(str(tmp_path / "other")).ingest([f"{s3}/incoming/lc.fits"])
    assert report.skipped == [
        (
            f"{s3}/incoming/lc.fits",
            f"larger than {limit} bytes (Settings.max_input_bytes): no "
            "light-curve file is so large; refused unread (LCARCHIVE_MAX_INPUT_BYTES raises the limit)",
        )
    ]


def test_store_errors_are_clear_messages(s3, tmp_path):
    cli = lcarchive_command()
    result = subprocess.run([cli, "ls", "s3://no-such-bucket-here/archive"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "no such bucket" in result.stderr and "Traceback" not in result.stderr
    # an endpoint nobody listens on: reported, not a traceback (one attempt, to keep the test short)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}, "config_kwargs": {"retries": {"max_attempts": 1}}}
    archive = lcarchive.open_archive("s3://lcarchive-test/archive", storage_options=options)
    with pytest.raises(lcarchive.StoreError, match="unreachable"):
        archive.observations
    result = subprocess.run(
        [
            cli,
            "ls",
            "s3://lcarchive-test/archive",
            "-o",
            f"endpoint_url=http://127.0.0.1:{port}",
            "-o",
            'config_kwargs={"retries": {"max_attempts": 1}}',
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "unreachable" in result.stderr and "Traceback" not in result.stderr


def test_anon_reads_a_public_bucket(s3):
    import boto3

    url = f"{s3}/public"
    lcarchive.Archive(url).ingest([str(FILES[0])])
    client = boto3.client("s3")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::lcarchive-test", "arn:aws:s3:::lcarchive-test/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket="lcarchive-test", Policy=json.dumps(policy))
    result = subprocess.run([lcarchive_command(), "ls", url, "--anon", "--json"], capture_output=True, text=True, check=True)
    assert [o["id"] for o in json.loads(result.stdout)] == ["tess-spoc-2min-s0001"]
    lc = lcarchive.open_archive(url, storage_options={"anon": True}).light_curve(
        261136679, observation="tess-spoc-2min-s0001", quality_bitmask="none"
    )
    with fits.open(FILES[0]) as hdul:
        assert_bit_equal(lc["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), "flux")


def test_parallel_ingest_to_s3_matches_source(s3):
    """The worker-process parse path (used for large batches) on a real endpoint."""
    import lcarchive.config

    url = f"{s3}/parallel"
    with lcarchive.config.override(parallel_min_files=2):
        report = lcarchive.Archive(url).ingest([str(p) for p in FILES] + [str(DATA / "bad")], jobs=2)
    assert len(report.added) == 3 and len(report.skipped) == len(list((DATA / "bad").glob("*.fits")))
    archive = lcarchive.open_archive(url)
    for path in FILES:
        with fits.open(path) as hdul:
            head = hdul[0].header
            target = int(head.get("TICID") or head["KEPLERID"])
            lc = archive.light_curve(target, quality_bitmask="none")
            assert_bit_equal(lc["time"].values, hdul[1].data["TIME"].astype("f8"), path.name)
