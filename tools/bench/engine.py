#!/usr/bin/env python
"""What one more ingest batch costs as an archive grows, and what a cold point read costs.

    python tools/bench/engine.py [--sizes 1 10 100] [--batch 10] [--latency 0.02] [--json out.json]

For each archive size N (observations), on a moto S3 server that counts requests and bytes at
the server, and again through a proxy adding ``--latency`` seconds per request (overlapping):

1. builds an archive of N synthetic TESS SPOC 2-min observations (sectors 1..N, ``--targets``
   targets each, from a real template with ``tools/synth.py``) in one ingest call;
2. ingests one batch of ``--batch`` new targets into an existing observation (sector 1) and one
   batch into a new observation (sector N+1), and counts for each: wall time, requests, bytes
   written (request bodies) and bytes read (response bodies) at the server;
3. opens the archive cold and reads one target of sector 1 (requests, bytes, time).

Flat means: the figures of step 2 and 3 do not grow with N.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from astropy.io import fits

import lcarchive
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import SubprocessCountingMotoServer
from tools.bench.run import TEMPLATE, machine
from tools.synth import make_observation

FIRST_ID = 3_000_000_000


def sector_files(work: Path, sector: int, n: int, first_id: int, seed: int | None = None) -> list[str]:
    files = make_observation(
        TEMPLATE, work / f"s{sector:04d}-{first_id}", n, seed=sector if seed is None else seed, first_id=first_id
    )
    for path in files:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["SECTOR"] = sector
    return [str(p) for p in files]


def counted(server: SubprocessCountingMotoServer, fn) -> dict:
    server.reset_counts()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    counts = server.counts()
    return {
        "seconds": round(seconds, 3),
        "requests": sum(counts.values()),
        "by_method": counts,
        "bytes_written": server.bytes_received(),
        "bytes_read": server.bytes_sent(),
    }


def measure(args: argparse.Namespace) -> dict:
    results: dict = {"config": {k: v for k, v in vars(args).items() if k != "json"}, "machine": machine(), "sizes": {}}
    server = SubprocessCountingMotoServer()
    server.start()
    os.environ.update(server.environ())
    proxy = LatencyProxy(server.endpoint, latency=args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="lcengine-") as tmp:
            work = Path(tmp)
            for n in args.sizes:
                bucket = f"engine-{n}"
                server.create_bucket(bucket)
                root = f"s3://{bucket}/archive"
                files = [f for s in range(1, n + 1) for f in sector_files(work, s, args.targets, FIRST_ID)]
                t0 = time.perf_counter()
                report = lcarchive.Archive(root).ingest(files)
                assert report.ok and len(report.added) == len(files), report.skipped[:3]
                row: dict = {"build_seconds": round(time.perf_counter() - t0, 1), "light_curves": len(files)}
                next_id = FIRST_ID + 10_000
                endpoints = (("moto", {}), (f"moto+{args.latency * 1e3:.0f}ms", {"endpoint_url": proxy.url}))
                for k, (endpoint, options) in enumerate(endpoints):
                    into_existing = sector_files(work, 1, args.batch, next_id)
                    into_new = sector_files(work, n + 1 + k, args.batch, next_id)  # a sector no other batch used
                    next_id += args.batch
                    row[endpoint] = {
                        "batch_into_existing_observation": counted(
                            server, lambda: lcarchive.Archive(root, storage_options=options).ingest(into_existing)
                        ),
                        "batch_into_new_observation": counted(
                            server, lambda: lcarchive.Archive(root, storage_options=options).ingest(into_new)
                        ),
                        "cold_point_read": counted(
                            server,
                            lambda: lcarchive.open_archive(root, storage_options=options).light_curve(
                                FIRST_ID + 1,
                                observation="tess-spoc-2min-s0001",
                                variables=["time", "flux", "flux_err", "quality"],
                                quality_bitmask="none",
                            ),
                        ),
                    }
                results["sizes"][n] = row
                print(f"N={n}: " + json.dumps(row), flush=True)
    finally:
        proxy.close()
        server.stop()
    return results


def report(results: dict) -> str:
    lines = [
        "| observations | endpoint | batch into existing: s / requests / kB written / kB read "
        "| batch into new: s / requests / kB written / kB read | cold point read: s / requests / kB read |",
        "|---|---|---|---|---|",
    ]
    for n, row in results["sizes"].items():
        for endpoint, x in row.items():
            if not isinstance(x, dict):
                continue
            e, w, r = x["batch_into_existing_observation"], x["batch_into_new_observation"], x["cold_point_read"]
            lines.append(
                f"| {n} | {endpoint} | {e['seconds']:.2f} / {e['requests']} / {e['bytes_written'] / 1e3:.0f} / {e['bytes_read'] / 1e3:.0f} "
                f"| {w['seconds']:.2f} / {w['requests']} / {w['bytes_written'] / 1e3:.0f} / {w['bytes_read'] / 1e3:.0f} "
                f"| {r['seconds']:.3f} / {r['requests']} / {r['bytes_read'] / 1e3:.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--targets", type=int, default=5, help="targets per observation of the archive")
    parser.add_argument("--batch", type=int, default=10, help="light curves per measured ingest batch")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the proxy adds per request")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    results = measure(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
