"""Store errors in one line on every command, and object-store inputs listed like folders: against a
real S3 endpoint (moto's server on 127.0.0.1), and behind a proxy that cuts off response bodies."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
import lcarchive.config

from conftest import DATA, aws_environ, lcarchive_command
from reference import assert_bit_equal

pytestmark = pytest.mark.s3

FILE = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [lcarchive_command(), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def assert_one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr  # one line: no traceback, no client debug dump
    assert "Traceback" not in result.stderr and "Debug source" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.fixture
def archive_url(s3):
    url = f"{s3}/archive"
    assert lcarchive.Archive(url).ingest([str(FILE)]).ok
    return url


def test_missing_bucket_is_named_on_every_command(s3, tmp_path):
    url = "s3://no-such-bucket-here/archive"
    for args in (
        ["ingest", url, str(FILE)],
        ["ls", url],
        ["ls", url, "--target", "261136679"],
        ["catalog", "show", url],
        ["catalog", "build", url],
        ["download", url, str(tmp_path / "d")],
        ["export", url, str(tmp_path / "e")],
    ):
        assert_one_line(run(*args), url, "no such bucket 'no-such-bucket-here'")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_missing_prefix_in_an_existing_bucket_is_no_such_prefix(s3, archive_url, tmp_path):
    url = f"{s3}/nothing-here"
    for args in (["ls", url], ["catalog", "show", url], ["download", url, str(tmp_path / "d")]):
        assert_one_line(run(*args), url, "no such prefix", "'lcarchive-test'")
    assert_one_line(
        run("ls", f"{s3}/archive/observations"), "no lcarchive archive under this prefix"
    )  # a prefix that exists, but no archive


def test_unreachable_endpoint_is_one_line(s3, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    few = ["-o", 'config_kwargs={"retries": {"max_attempts": 2}}']  # botocore's back-off, shortened for the test
    for args in (
        ["ls", f"{s3}/archive"],
        ["ingest", f"{s3}/archive", str(FILE), *few],
        ["download", f"{s3}/archive", str(tmp_path / "d"), *few],
    ):
        assert_one_line(run(*args, env=env), f"{s3}/archive", "unreachable")


def test_anon_on_a_private_bucket_is_access_denied(archive_url, tmp_path):
    for args in (
        ["ls", archive_url, "--anon"],
        ["catalog", "show", archive_url, "--anon"],
        ["download", archive_url, str(tmp_path / "d"), "--anon"],
    ):
        assert_one_line(run(*args), archive_url, "access denied", "--anon")


def test_wrong_credentials_are_access_denied(archive_url):
    result = run("ls", archive_url, "-o", "key=nobody", "-o", "secret=wrong")
    # moto accepts any key unless IAM is enforced: a denial, if any, must still be one line
    assert result.returncode in (0, 2)
    if result.returncode == 2:
        assert_one_line(result, "access denied")


MAST_KEYS = {  # the layout of MAST's public bucket (s3://stpubdata/tess/public/tid/s<NNNN>/<tic in four-digit groups>/)
    FILE: "tess/public/tid/s0001/0000/0002/6113/6679/tess2018206045859-s0001-0000000261136679-0120-s_lc.fits",
    DATA
    / "spoc-2min"
    / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits": "tess/public/tid/s0001/0000/0003/5810/8509/tess2018206045859-s0001-0000000358108509-0120-s_lc.fits",  # noqa: E501 - MAST paths
    DATA
    / "spoc-2min"
    / "tess2018206045859-s0001-0000000425933644-0120-s_lc.fits": "tess/public/tid/s0001/0000/0004/2593/3644/tess2018206045859-s0001-0000000425933644-0120-s_lc.fits",  # noqa: E501 - MAST paths
    DATA
    / "spoc-2min"
    / "tess2020106103520-s0024-0000000039903405-0180-s_lc.fits": "tess/public/tid/s0024/0000/0000/3990/3405/tess2020106103520-s0024-0000000039903405-0180-s_lc.fits",  # noqa: E501 - MAST paths
}


@pytest.fixture
def public_bucket(moto_server, s3):
    """A public bucket laid out like MAST's stpubdata, holding real light curves (and a non-light-curve file)."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_server)
    client.create_bucket(Bucket="stpubdata")
    for path, key in MAST_KEYS.items():
        client.upload_file(str(path), "stpubdata", key)
    client.put_object(Bucket="stpubdata", Key="tess/public/tid/s0001/README.txt", Body=b"not a light curve")
    client.put_object(
        Bucket="stpubdata",
        Key="tess/public/tid/s0001/0000/0002/6113/6679/"  # a target pixel file's name
        "tess2018206045859-s0001-0000000261136679-0120-s_tp.fits",
        Body=b"SIMPLE  = T",
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::stpubdata", "arn:aws:s3:::stpubdata/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket="stpubdata", Policy=json.dumps(policy))
    return "s3://stpubdata"


def test_an_object_store_prefix_is_ingested_like_a_folder(public_bucket, tmp_path):
    root = tmp_path / "local"
    result = run("ingest", str(root), f"{public_bucket}/tess/public/tid/s0001/", "--anon")
    assert result.returncode == 0, result.stderr
    assert "ingested 3 light curve(s)" in result.stdout
    assert "1 file(s) of the folders given are no light curves by their names, not read: TESS target pixel file" in result.stdout
    archive = lcarchive.open_archive(str(root))
    assert [o.id for o in archive.observations] == ["tess-spoc-2min-s0001"]
    ds = archive.open_observation("tess-spoc-2min-s0001")
    assert sorted(ds["target"].values.tolist()) == [261136679, 358108509, 425933644]
    with fits.open(FILE) as hdul:
        assert_bit_equal(ds.sel(target=261136679)["flux"].values, hdul[1].data["PDCSAP_FLUX"].astype("f4"), "flux")
    # a glob over sectors, into an archive on the same S3 server (credentials for the archive, --anon for the inputs)
    result = run("ingest", "s3://lcarchive-test/mast", f"{public_bucket}/tess/public/tid/s00*/**/*_lc.fits", "--anon")
    assert result.returncode == 0, result.stderr
    assert {o.id for o in lcarchive.open_archive("s3://lcarchive-test/mast").observations} == {
        "tess-spoc-2min-s0001",
        "tess-spoc-2min-s0024",
    }
    # the same prefix again: nothing changes
    again = run("ingest", str(root), f"{public_bucket}/tess/public/tid/s0001", "--anon")
    assert again.returncode == 0 and "3 already stored" in again.stdout


def test_an_empty_or_missing_prefix_is_reported(public_bucket, tmp_path):
    result = run("ingest", str(tmp_path / "a"), f"{public_bucket}/tess/public/tid/s0099/", "--anon")
    assert result.returncode == 1 and "no light-curve files in this folder" in result.stderr
    result = run("ingest", str(tmp_path / "a"), "s3://no-such-bucket-here/tess/", str(FILE), "--anon")
    assert result.returncode == 1 and "ingested 1 light curve(s)" in result.stdout  # the other input goes in
    assert "s3://no-such-bucket-here/tess/: no such bucket 'no-such-bucket-here'" in result.stderr


def test_cut_off_response_bodies_are_retried(archive_url, cutting_proxy, tmp_path):
    proxy = cutting_proxy(cuts=2)
    env = {"AWS_ENDPOINT_URL": proxy.url}
    result = run("download", archive_url, str(tmp_path / "d"), "--format", "parquet", env=env)
    assert result.returncode == 0, result.stderr
    assert proxy.cut == 2
    import pandas as pd

    table = pd.read_parquet(tmp_path / "d")
    with fits.open(FILE) as hdul:
        flux = hdul[1].data["PDCSAP_FLUX"].astype("f4")
    assert np.array_equal(np.asarray(table["flux"], dtype="f4"), flux, equal_nan=True)
    with xr.open_dataset(archive_url, engine="lcarchive", group="tess-spoc-2min-s0001") as ds:
        assert ds.sizes["target"] == 1


def test_cut_off_response_bodies_end_in_one_line(archive_url, cutting_proxy, tmp_path):
    proxy = cutting_proxy(cuts=None)
    env = {"AWS_ENDPOINT_URL": proxy.url, "LCARCHIVE_STORE_ATTEMPTS": "4"}  # icechunk's back-off, shortened for the test
    result = run("download", archive_url, str(tmp_path / "d"), "--format", "parquet", env=env)
    assert_one_line(result, archive_url, "responses cut off")
    assert proxy.cut >= 4  # retried before giving up
    assert not list((tmp_path / "d").glob("**/*.parquet"))


def test_python_api_raises_store_errors(s3, archive_url):
    with pytest.raises(lcarchive.StoreError, match="no such bucket"):
        lcarchive.Archive("s3://no-such-bucket-here/x").ingest([str(FILE)])
    with pytest.raises(lcarchive.ArchiveNotFoundError, match="no such prefix"):
        lcarchive.open_archive(f"{s3}/nope").observations
    with pytest.raises(lcarchive.StoreAccessError):
        lcarchive.open_archive(archive_url, storage_options={"anon": True}).observations
    assert aws_environ("x")["AWS_ENDPOINT_URL"] == "x"


# -- transient faults: reads ride them out, or end in one line naming the cause ----------------------------


def test_reads_ride_out_transient_faults(archive_url, fault_proxy, tmp_path, monkeypatch, capfd):
    """10 % of requests answered 503, reset, cut off or stalled: every read path succeeds, and
    icechunk's log lines stay off stderr."""
    proxy = fault_proxy(0.1, stall=0.5)
    env = {"AWS_ENDPOINT_URL": proxy.url}
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    with fits.open(FILE) as hdul:
        flux = hdul[1].data["PDCSAP_FLUX"].astype("f4")
    lc = lcarchive.open_archive(archive_url).light_curve(261136679, quality_bitmask="none")
    assert_bit_equal(lc["flux"].values, flux, "flux")
    assert capfd.readouterr().err == ""  # no icechunk log line
    result = run("download", archive_url, str(tmp_path / "d"), "--format", "parquet", env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert np.array_equal(np.asarray(pd_read(tmp_path / "d")["flux"], dtype="f4"), flux, equal_nan=True)
    result = run("search", archive_url, "--target", "261136679", "--json", env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [line["target"] for line in json.loads(result.stdout)] == [261136679]
    assert sum(proxy.counts[f] for f in ("503", "reset", "cut", "stall")) >= 5, proxy.counts


def pd_read(path):
    import pandas as pd

    return pd.read_parquet(path)


@pytest.mark.parametrize(("fault", "cause"), [("reset", "connection reset"), ("503", "throttled"), ("cut", "responses cut off")])
def test_reads_that_keep_failing_name_the_true_cause(archive_url, fault_proxy, tmp_path, fault, cause, monkeypatch):
    """Every request failing the same way: one line naming the archive and that cause (a reset is
    no "unreachable"), from the command line and as lcarchive's own error from the Python API."""
    proxy = fault_proxy(1.0, faults=(fault,))
    few = {"LCARCHIVE_STORE_ATTEMPTS": "2", "LCARCHIVE_READ_ATTEMPTS": "2"}  # the back-off, shortened for the test
    env = {"AWS_ENDPOINT_URL": proxy.url, **few}
    for args in (["ls", archive_url], ["download", archive_url, str(tmp_path / "d"), "--format", "parquet"]):
        result = run(*args, env=env)
        assert_one_line(result, archive_url, cause)
        assert "unreachable" not in result.stderr and "\x1b[" not in result.stderr  # no icechunk log line
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    with lcarchive.config.override(store_attempts=2, read_attempts=2), pytest.raises(lcarchive.StoreError, match=cause) as raised:
        lcarchive.open_archive(archive_url).light_curve(261136679, quality_bitmask="none")
    assert "\n" not in str(raised.value) and str(raised.value).startswith(archive_url)
