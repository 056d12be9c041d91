"""A moto S3 server on 127.0.0.1 that counts the HTTP requests it receives.

Requests are counted *at the server*: moto's WSGI application (the same
``DomainDispatcherApplication`` that ``moto.server.ThreadedMotoServer`` serves) is wrapped in a
small WSGI middleware that counts every request by HTTP method and sums the bytes of the response
bodies it returns, before handing the request to moto. Whatever the client library does (retries,
HEAD before GET, multipart uploads, listing), every request that reaches the endpoint is counted
once. Requests to moto's own control API (``/moto-api/...``, e.g. the state reset) are not
counted.

    from tools.bench.moto_counter import CountingMotoServer

    with CountingMotoServer() as server:
        server.create_bucket("bench")
        fs = s3fs.S3FileSystem(**server.storage_options)
        server.reset_counts()
        fs.cat_file("bench/key")
        server.counts()          # {'GET': 1}
        server.total()           # 1
        server.bytes_sent()      # response body bytes
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CountingMiddleware:
    """WSGI middleware: count requests by method, sum response body bytes and request body bytes."""

    def __init__(self, app: Any, keep_log: bool = False) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.by_method: Counter[str] = Counter()
        self.body_bytes = 0
        self.received_bytes = 0
        self.keep_log = keep_log
        self.log: list[tuple[str, str, str]] = []

    def reset(self) -> None:
        with self.lock:
            self.by_method.clear()
            self.body_bytes = 0
            self.received_bytes = 0
            self.log.clear()

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_counter"):  # read or reset the counts from another process
            import json

            if environ.get("REQUEST_METHOD") == "POST":
                self.reset()
            with self.lock:
                body = json.dumps(
                    {"counts": dict(self.by_method), "bytes": self.body_bytes, "received": self.received_bytes}
                ).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "?")
        with self.lock:
            self.by_method[method] += 1
            self.received_bytes += int(environ.get("CONTENT_LENGTH") or 0)
            if self.keep_log:
                query = environ.get("QUERY_STRING", "")
                self.log.append((method, path + (f"?{query}" if query else ""), environ.get("HTTP_RANGE", "")))
        return self._count_body(self.app(environ, start_response))

    def _count_body(self, body: Iterable[bytes]) -> Iterable[bytes]:
        try:
            for chunk in body:
                with self.lock:
                    self.body_bytes += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


class CountingMotoServer(ThreadedMotoServer):
    """moto's threaded S3 server on 127.0.0.1, a free port, counting requests at the server.

    Parameters
    ----------
    port : int, optional
        Default: a free port.
    keep_log : bool
        Also keep a list of ``(method, path?query, Range header)`` of the counted requests
        (``server.log()``), for debugging which requests a client made.
    """

    def __init__(self, port: int | None = None, keep_log: bool = False) -> None:
        super().__init__(ip_address="127.0.0.1", port=port or free_port(), verbose=False)
        self._counter = _CountingMiddleware(DomainDispatcherApplication(create_backend_app), keep_log=keep_log)

    # ThreadedMotoServer._server_entry with our middleware around moto's WSGI app
    def _server_entry(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
        self._server = make_server(self._ip_address, self._port, self._counter, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def __enter__(self) -> CountingMotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- endpoint and client settings ---
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def storage_options(self) -> dict:
        """fsspec/s3fs storage options for this endpoint (dummy credentials)."""
        return {
            "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": CREDENTIALS["AWS_DEFAULT_REGION"]},
        }

    def environ(self) -> dict[str, str]:
        """Environment variables that point AWS clients (boto3, s3fs, obstore...) here."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    # --- counts ---
    def reset_counts(self) -> None:
        self._counter.reset()

    def counts(self) -> dict[str, int]:
        """Requests received since the last ``reset_counts()``, by HTTP method."""
        with self._counter.lock:
            return dict(self._counter.by_method)

    def total(self) -> int:
        with self._counter.lock:
            return sum(self._counter.by_method.values())

    def bytes_sent(self) -> int:
        """Response body bytes sent since the last ``reset_counts()``."""
        with self._counter.lock:
            return self._counter.body_bytes

    def bytes_received(self) -> int:
        """Request body bytes received (what clients wrote) since the last ``reset_counts()``."""
        with self._counter.lock:
            return self._counter.received_bytes

    def log(self) -> list[tuple[str, str, str]]:
        with self._counter.lock:
            return list(self._counter.log)

    # --- state ---
    def reset_state(self) -> None:
        """Drop every bucket and object (POST /moto-api/reset). Counts are kept."""
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def create_bucket(self, name: str) -> str:
        """Create a bucket (not counted in the request counts); return ``s3://name``."""
        import boto3

        before = self.counts(), self.bytes_sent()
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        with self._counter.lock:  # give the set-up request back
            self._counter.by_method = Counter(before[0])
            self._counter.body_bytes = before[1]
        return f"s3://{name}"


class SubprocessCountingMotoServer(CountingMotoServer):
    """The same server in a separate process, as a real endpoint is: its request handling does
    not compete with the client for this interpreter's GIL. Counts are read over HTTP."""

    def start(self) -> None:
        import subprocess
        import sys
        import time
        import urllib.request

        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self._port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_counter", timeout=2) as resp:
                    resp.read()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("moto server process did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)

    def _remote(self, method: str = "GET") -> dict:
        import json
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/_counter", method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset_counts(self) -> None:
        self._remote("POST")

    def counts(self) -> dict[str, int]:
        return self._remote()["counts"]

    def total(self) -> int:
        return sum(self.counts().values())

    def bytes_sent(self) -> int:
        return self._remote()["bytes"]

    def bytes_received(self) -> int:
        return self._remote()["received"]

    def log(self) -> list[tuple[str, str, str]]:
        raise NotImplementedError("keep_log needs the in-process server")

    def create_bucket(self, name: str) -> str:
        import boto3

        before = self.counts()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=name)
        if not before:
            self.reset_counts()
        return f"s3://{name}"


def serve(port: int) -> None:
    """Run the counting server in this process until terminated (``--serve PORT``)."""
    server = CountingMotoServer(port=port)
    server._server_entry()


def self_check() -> None:
    """Check the counts against requests whose number is known."""
    import s3fs

    with CountingMotoServer(keep_log=True) as server:
        server.create_bucket("counter-check")
        assert server.total() == 0
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options)
        fs.pipe_file("counter-check/a.bin", b"x" * 1000)
        print("pipe_file (1 PUT):", server.counts())
        assert server.counts() == {"PUT": 1}

        # s3fs >= 2025: a whole-object cat_file asks for the size first (HEAD), to decide whether
        # to split the download into concurrent ranged GETs; with max_concurrency=1 it does not.
        server.reset_counts()
        data = fs.cat_file("counter-check/a.bin")
        print("cat_file, default s3fs (HEAD + GET):", server.counts(), server.bytes_sent(), "bytes", server.log())
        assert server.counts() == {"HEAD": 1, "GET": 1} and server.bytes_sent() == len(data) == 1000

        fs1 = s3fs.S3FileSystem(skip_instance_cache=True, max_concurrency=1, **server.storage_options)
        server.reset_counts()
        fs1.cat_file("counter-check/a.bin")
        print("cat_file, max_concurrency=1 (1 GET):", server.counts(), server.bytes_sent(), "bytes")
        assert server.counts() == {"GET": 1} and server.bytes_sent() == 1000

        server.reset_counts()
        fs.cat_file("counter-check/a.bin", start=10, end=20)
        print("ranged cat_file (1 GET):", server.counts(), server.bytes_sent(), "bytes", server.log())
        assert server.counts() == {"GET": 1} and server.bytes_sent() == 10

        server.reset_counts()
        for _ in range(5):
            fs.cat_file("counter-check/a.bin", start=0, end=1)
        assert server.total() == 5, server.counts()

        server.reset_state()
        fs1.invalidate_cache()
        assert not fs1.exists("counter-check/a.bin")  # reset_state dropped the bucket
        server.reset_counts()
        print("ok")


if __name__ == "__main__":
    import sys as _sys

    if len(_sys.argv) == 3 and _sys.argv[1] == "--serve":
        serve(int(_sys.argv[2]))
    else:
        self_check()
