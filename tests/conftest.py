"""Shared fixtures: the real light curves in ../shared, archives built from them, a moto S3 server."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LCARCHIVE_TEST_DATA", REPO.parent / "shared" / "data" / "lightcurves"))

# Folders of ../shared/data/lightcurves of the SPOC-like products (SPOC, TESS-SPOC, QLP, Kepler/K2 SOC), which
# the column-by-column checks of test_fidelity.py cover; every other kind is covered by test_products.py.
IN_SCOPE = ("spoc-2min", "spoc-2min-release0", "tess-spoc", "qlp", "kepler", "k2")


def pytest_configure(config: pytest.Config) -> None:
    if not DATA.is_dir():
        raise pytest.UsageError(
            f"test data not found at {DATA}: the suite reads the real light curves in ../shared/data/lightcurves "
            "(or set LCARCHIVE_TEST_DATA)"
        )


def in_scope_files() -> list[Path]:
    return sorted(p for d in IN_SCOPE for p in (DATA / d).glob("*.fits"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def full_archive(tmp_path_factory: pytest.TempPathFactory):
    """An archive holding every in-scope light curve of ../shared (ingested once per session)."""
    import lcarchive

    root = tmp_path_factory.mktemp("full") / "archive"
    archive = lcarchive.Archive(str(root))
    report = archive.ingest([str(DATA / d) for d in IN_SCOPE])
    assert not report.skipped, report.skipped
    return lcarchive.open_archive(str(root))


@pytest.fixture
def copy_of(tmp_path: Path):
    """Copy an archive folder, so a test can change it without touching the session one."""

    def _copy(archive) -> str:
        dest = tmp_path / "copy"
        shutil.copytree(archive.url, dest)
        return str(dest)

    return _copy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """A real S3 endpoint: moto's server over HTTP on 127.0.0.1 with a free port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def aws_environ(endpoint: str) -> dict[str, str]:
    """The standard AWS variables pointing at a moto server, with its test credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch):
    """Point the standard AWS variables at the moto server, with a fresh state and one bucket."""
    import boto3
    import requests

    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    for key, value in aws_environ(moto_server).items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="lcarchive-test")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    yield "s3://lcarchive-test"
    s3fs.S3FileSystem.clear_instance_cache()


def lcarchive_command() -> str:
    """Path of the installed ``lcarchive`` script next to the running interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "lcarchive"
    return str(beside) if beside.exists() else (shutil.which("lcarchive") or "lcarchive")
