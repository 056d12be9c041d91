"""An HTTP proxy that adds object-store latency in front of a moto S3 server.

moto answers in a few milliseconds, so a benchmark against it hides what overlapping requests
buy on a real object store (S3 answers a first byte in ~10-30 ms). ``LatencyProxy`` waits
``latency`` seconds before forwarding each request, in a thread of its own, so requests that a
client sends at once also wait at once: the latency overlaps as it does on a real store, and a
client that sends its requests one after another pays it once per request.

    from tools.bench.latency_proxy import LatencyProxy

    with LatencyProxy("http://127.0.0.1:5000", latency=0.02) as proxy:
        proxy.url                # point clients here
"""

from __future__ import annotations

import http.client
import http.server
import socketserver
import threading
import time
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class LatencyProxy:
    """Forward HTTP requests to ``upstream`` after ``latency`` seconds each (overlapping)."""

    def __init__(self, upstream: str, latency: float = 0.02) -> None:
        up = urlparse(upstream)
        self.latency = latency
        local = threading.local()
        proxy = self

        def connection() -> http.client.HTTPConnection:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
            return conn

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(proxy.latency)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                for attempt in (0, 1):  # a kept-alive upstream connection may have been closed
                    conn = connection()
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        response = conn.getresponse()
                        data = response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt:
                            raise
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length if length is not None else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
