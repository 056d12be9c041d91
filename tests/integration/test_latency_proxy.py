"""The benchmarks' latency proxy (tools/bench/latency_proxy.py) charges the latency it is asked to
add, and no more: a small warm GET through it costs the added latency plus a few ms (before
TCP_NODELAY it cost ~40 ms more, the client's delayed ACK), and dependent rounds are counted."""

from __future__ import annotations

import http.client
import statistics
import sys
import time
from urllib.parse import urlparse

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import CountingMotoServer


@pytest.fixture(scope="module")
def server():
    with CountingMotoServer() as moto:
        moto.create_bucket("proxy")
        yield moto


def _put(endpoint: str, key: str, body: bytes) -> None:
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.request("PUT", f"/proxy/{key}", body=body, headers={"x-amz-acl": "public-read"})  # read unsigned
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.parametrize("size", [155, 8196, 40_000])
def test_small_warm_get_costs_the_latency_and_a_few_ms(server, size):
    _put(server.endpoint, f"small-{size}", bytes(range(256)) * (size // 256) + bytes(size % 256))
    latency = 0.05
    with LatencyProxy(server.endpoint, latency=latency) as proxy:
        url = urlparse(proxy.url)
        conn = http.client.HTTPConnection(url.hostname, url.port)
        times = []
        for _ in range(6):  # the first opens the connections; the others are warm
            start = time.perf_counter()
            conn.request("GET", f"/proxy/small-{size}")
            response = conn.getresponse()
            body = response.read()
            times.append(time.perf_counter() - start)
            assert response.status == 200 and len(body) == size
        conn.close()
    warm = statistics.median(times[1:])
    # Nagle's algorithm with a delayed ACK added ~40 ms here; moto itself answers in a few ms
    assert latency <= warm < latency + 0.02, times


def test_rounds_group_requests_sent_together(server):
    _put(server.endpoint, "r", b"x" * 100)
    latency = 0.05
    with LatencyProxy(server.endpoint, latency=latency) as proxy:
        url = urlparse(proxy.url)

        def get() -> None:
            conn = http.client.HTTPConnection(url.hostname, url.port)
            conn.request("GET", "/proxy/r")
            conn.getresponse().read()
            conn.close()

        import threading

        proxy.reset()
        get()  # round 1
        threads = [threading.Thread(target=get) for _ in range(3)]  # round 2: three together
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        get()  # round 3
        rounds = proxy.rounds()
    assert [len(r) for r in rounds] == [1, 3, 1], rounds


def test_many_new_connections_at_once_cost_one_latency(server):
    """Forty clients connecting at once (ten repositories opened together, three objects each) are
    all answered after the latency: the proxy's listen backlog was 5, and dropped SYNs were sent
    again a second later."""
    import threading

    _put(server.endpoint, "c", b"x" * 100)
    latency = 0.05
    with LatencyProxy(server.endpoint, latency=latency) as proxy:
        url = urlparse(proxy.url)
        times: list[float] = []
        ready = threading.Barrier(40)

        def get() -> None:
            ready.wait()
            start = time.perf_counter()
            conn = http.client.HTTPConnection(url.hostname, url.port)
            conn.request("GET", "/proxy/c")
            assert conn.getresponse().read() == b"x" * 100
            conn.close()
            times.append(time.perf_counter() - start)

        threads = [threading.Thread(target=get) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(times) == 40 and max(times) < latency + 0.5, sorted(times)
