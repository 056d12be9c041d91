"""Shared fixtures: the real light curves in ../shared, archives built from them, a moto S3 server."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LCARCHIVE_TEST_DATA", REPO.parent / "shared" / "data" / "lightcurves"))
# Real files of kinds ../shared does not hold (pixel files, K2VARCAT, CDIPS, moving objects, one star
# observed by Kepler/K2 and TESS), copied byte for byte from public repositories; provenance and
# licences in tests/data/public/INVENTORY.md.
PUBLIC = REPO / "tests" / "data" / "public"

# Folders of ../shared/data/lightcurves of the SPOC-like products (SPOC, TESS-SPOC, QLP, Kepler/K2 SOC), which
# the column-by-column checks of test_fidelity.py cover; every other kind is covered by test_products.py.
IN_SCOPE = ("spoc-2min", "spoc-2min-release0", "tess-spoc", "qlp", "kepler", "k2")


# Property tests (tests/layout, tests/formats, tests/store): few examples by default, so that the unit
# and property tests together run in seconds; HYPOTHESIS_PROFILE=thorough runs many more. No
# example database (no .hypothesis/ folder in the checkout) and no deadline (zarr and icechunk
# calls vary in time with the machine's load).
hypothesis_settings.register_profile(
    "default", max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "thorough", max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
def public_dir() -> Path:
    """tests/data/public: real files from public repositories that ../shared does not hold."""
    return PUBLIC


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


def _chunk_get(method: str, path: str) -> bool:
    """A GET of a chunk object: ``/chunks/`` of an icechunk repository, ``/c/`` of a plain Zarr group."""
    return method == "GET" and ("/c/" in path or "/chunks/" in path)


@pytest.fixture
def cutting_proxy(moto_server):
    """Make proxies in front of the moto server that cut off the bodies of chunk reads: every GET of a
    chunk object answering 200/206 is sent with its full Content-Length but half its bytes, then
    the connection closed (a FaultProxy of rate 1 and fault ``cut`` on chunk GETs). ``cuts``: how
    many responses to cut (None: all); ``proxy.cut`` counts them."""
    made = []

    def make(cuts: int | None = None) -> FaultProxy:
        made.append(FaultProxy(moto_server, 1.0, faults=("cut",), where=_chunk_get, limit=cuts))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


class FaultProxy:
    """An HTTP proxy in front of a moto server that injects the transient faults of a real store.

    Each request, in turn, draws from a seeded random generator (the same faults in the same
    order on every run): with probability ``rate`` it gets one of ``faults``, picked uniformly:

    ``"503"``
        a ``503 SlowDown`` answer (S3's throttling), the request not forwarded;
    ``"reset"``
        the connection reset (TCP RST) before any answer;
    ``"cut"``
        the answer's full Content-Length announced, half its body sent, the connection closed
        (a body cut off mid-way); a request with no body to cut is reset instead;
    ``"stall"``
        the answer held back ``stall`` seconds, then sent whole.

    Only requests for which ``where(method, path)`` holds are drawn for (default: all), and at
    most ``limit`` faults are made (None: no limit); a cut applies to 200/206 answers only. Other
    requests pass through unchanged. Loopback only, at most ``max_connections`` connections
    served at once, TCP_NODELAY on every socket. ``counts`` tallies what was done; ``cut`` is
    ``counts["cut"]``.
    """

    def __init__(
        self,
        upstream: str,
        rate: float,
        faults: tuple[str, ...] = ("503", "reset", "cut", "stall"),
        stall: float = 1.0,
        seed: int = 18,
        max_connections: int = 256,
        where: Callable[[str, str], bool] | None = None,
        limit: int | None = None,
    ) -> None:
        import http.client
        import http.server
        import random
        import socketserver
        import struct
        import threading
        import time
        from collections import Counter
        from urllib.parse import urlparse

        up = urlparse(upstream)
        proxy = self
        self.rate = rate
        self.faults = tuple(faults)
        self.stall = stall
        self.random = random.Random(seed)
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        slots = threading.BoundedSemaphore(max_connections)

        def draw(method: str, path: str) -> str | None:
            with proxy.lock:
                proxy.counts["requests"] += 1
                if where is not None and not where(method, path):
                    return None
                fault = proxy.random.choice(proxy.faults) if proxy.random.random() < proxy.rate else None
                if fault is not None and fault != "cut":  # a cut is counted once made (it needs a body)
                    if limit is not None and proxy.made() >= limit:
                        return None
                    proxy.counts[fault] += 1
                return fault

        def cut_made() -> bool:
            with proxy.lock:
                if limit is not None and proxy.made() >= limit:
                    return False
                proxy.counts["cut"] += 1
                return True

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _reset(self) -> None:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = draw(self.command, self.path)
                if fault == "reset":
                    return self._reset()
                if fault == "503":
                    data = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b"<Message>Please reduce your request rate.</Message></Error>"
                    )
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":  # an answer to HEAD has no body
                        self.wfile.write(data)
                    return None
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{up.hostname}:{up.port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if fault == "cut" and where is not None and (response.status not in (200, 206) or len(data) < 2):
                    fault = None  # nothing of the chosen kind to cut: passed through
                if fault == "cut" and not cut_made():
                    fault = None
                if fault == "cut" and (self.command == "HEAD" or len(data) < 2):
                    return self._reset()
                if fault == "stall":
                    time.sleep(proxy.stall)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                if fault == "cut":
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data[: len(data) // 2] if fault == "cut" else data)
                self.wfile.flush()
                if fault == "cut":
                    self.close_connection = True
                return None

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def process_request(self, request, client_address):  # noqa: ANN001 (socketserver's signature)
                slots.acquire()
                super().process_request(request, client_address)

            def process_request_thread(self, request, client_address):  # noqa: ANN001
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def made(self) -> int:
        """Faults made so far."""
        return sum(n for kind, n in self.counts.items() if kind != "requests")

    @property
    def cut(self) -> int:
        """Bodies cut off so far."""
        return self.counts["cut"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy(moto_server):
    """Make FaultProxy instances in front of the moto server (``fault_proxy(rate, faults=..., stall=...)``);
    closed after the test."""
    made = []

    def make(rate: float, **kwargs) -> FaultProxy:
        made.append(FaultProxy(moto_server, rate, **kwargs))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()
