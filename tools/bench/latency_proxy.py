"""An HTTP proxy that adds object-store latency in front of a moto S3 server.

moto answers in a few milliseconds, so a benchmark against it hides what overlapping requests
buy on a real object store (S3 answers a first byte in ~10-30 ms). ``LatencyProxy`` waits
``latency`` seconds before forwarding each request, in a thread of its own, so requests that a
client sends at once also wait at once: the latency overlaps as it does on a real store, and a
client that sends its requests one after another pays it once per request.

Every socket of the proxy has Nagle's algorithm off (``TCP_NODELAY``), and a response leaves in
one send. Without it (the proxy as it was before 2026-12-07), a response body smaller than the
loopback segment waited for the client's delayed ACK: ~40 ms more per request, charged to every
dependent round of a small read (a warm 8 kB GET took 64-72 ms through a 20 ms proxy, 23-25 ms
with ``TCP_NODELAY``; ../shared/notes/read-path-measurements.md). ``tests/integration/test_latency_proxy.py``
checks that a small GET through the proxy costs the added latency plus a few ms.

    from tools.bench.latency_proxy import LatencyProxy

    with LatencyProxy("http://127.0.0.1:5000", latency=0.02) as proxy:
        proxy.url                # point clients here
"""

from __future__ import annotations

import http.client
import http.server
import socket
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
        self.arrivals: list[tuple[float, str, str]] = []
        """(monotonic time, method, path) of every request as it reached the proxy."""
        local = threading.local()
        proxy = self

        def connection() -> http.client.HTTPConnection:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # TCP_NODELAY on the client's connection
            wbufsize = 1 << 20  # status line, headers and body leave in one send, at the flush

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.arrivals.append((time.monotonic(), self.command, self.path))
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
                self.wfile.flush()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            # socketserver listens with a backlog of 5: a client opening more connections at once
            # (icechunk opens a repository's three objects on new connections, ten repositories
            # together) had SYNs dropped and retried a second later, an object store does not
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        """Forget the requests seen so far."""
        self.arrivals.clear()

    def rounds(self) -> list[list[str]]:
        """The requests seen since :meth:`reset`, grouped into dependent rounds.

        A request that waited for an earlier answer reached the proxy at least ``latency``
        after that request; requests sent together reach it within a few ms. So arrivals
        closer than half the latency are one round, and each gap longer than that starts the
        next. (A client that sends independent requests one at a time, slowly, is charged a
        round for each, as a store would charge it.)

        Returns
        -------
        list of list of str
            ``"METHOD path"`` of each request, round by round.
        """
        out: list[list[str]] = []
        last = None
        for at, method, path in sorted(self.arrivals):
            if last is None or at - last > self.latency / 2:
                out.append([])
            out[-1].append(f"{method} {path}")
            last = at
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
