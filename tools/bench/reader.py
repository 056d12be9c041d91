#!/usr/bin/env python
"""lcarchive's own shard reading against zarr's, side by side in one run.

    python tools/bench/reader.py [--n-targets 400] [--repeats 40] [--latency 0.02] [--json out.json]

``lcarchive.layout.shards`` and ``GroupReader`` read one target's inner chunk of a sharded
variable themselves: with the shard index cached after the first read, one range request per
variable. The issue that moved lcarchive onto icechunk asks to keep this only where it is at
least 1.5x faster than zarr's own path (``BatchedCodecPipeline``, the default, and
``FusedCodecPipeline``), which reads the shard index again on every read. This measures warm
point reads of the four core variables of random targets (all four concurrently, both ways) on
a synthetic TESS SPOC 2-min sector on a moto S3 server, directly and through a proxy adding
``--latency`` seconds per request, and on local disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import zarr
import zarr.api.asynchronous as zasync

import lcarchive
from lcarchive.store import run
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import SubprocessCountingMotoServer
from tools.bench.run import CORE, FIRST_ID, TEMPLATE, machine
from tools.synth import make_observation

OBS = "tess-spoc-2min-s0001"
PIPELINES = {
    "zarr BatchedCodecPipeline": "zarr.core.codec_pipeline.BatchedCodecPipeline",
    "zarr FusedCodecPipeline": "zarr.core.codec_pipeline.FusedCodecPipeline",
}


def lcarchive_reads(archive: lcarchive.Archive, rows: list[int]) -> list[float]:
    archive.handle.prepare([OBS])  # locate the group outside zarr's event loop
    reader = run(archive.handle.reader(OBS))
    run(reader.read_row(rows[0], CORE))  # open and cache what a warm reader has
    times = []
    for row in rows:
        t0 = time.perf_counter()
        run(reader.read_row(row, CORE))
        times.append(time.perf_counter() - t0)
    return times


def zarr_reads(archive: lcarchive.Archive, rows: list[int], pipeline: str) -> list[float]:
    with zarr.config.set({"codec_pipeline.path": pipeline}):
        store, path = archive.group_store(OBS)

        async def open_arrays() -> dict:
            group = await zasync.open_group(store, path=path, mode="r", zarr_format=3)
            return {name: await group.getitem(name) for name in CORE}

        arrays = run(open_arrays())

        async def read(row: int) -> list:
            return await asyncio.gather(*(arrays[n].getitem((row, slice(None))) for n in CORE))

        run(read(rows[0]))
        times = []
        for row in rows:
            t0 = time.perf_counter()
            run(read(row))
            times.append(time.perf_counter() - t0)
    return times


def check_equal(archive: lcarchive.Archive, row: int) -> None:
    archive.handle.prepare([OBS])
    ours = run(_ours(archive, row))
    store, path = archive.group_store(OBS)
    group = zarr.open_group(store, path=path, mode="r")
    for name in CORE:
        np.testing.assert_array_equal(ours[name], group[name][row])


async def _ours(archive: lcarchive.Archive, row: int) -> dict:
    reader = await archive.handle.reader(OBS)
    return await reader.read_row(row, CORE)


def measure(args: argparse.Namespace) -> dict:
    results: dict = {"config": {k: v for k, v in vars(args).items() if k != "json"}, "machine": machine(), "reads": {}}
    server = SubprocessCountingMotoServer()
    server.start()
    os.environ.update(server.environ())
    proxy = LatencyProxy(server.endpoint, latency=args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="lcreader-") as tmp:
            files = [str(p) for p in make_observation(TEMPLATE, Path(tmp) / "s01", args.n_targets, seed=0, first_id=FIRST_ID)]
            server.create_bucket("reader")
            local = str(Path(tmp) / "archive")
            for root in ("s3://reader/archive", local):
                assert lcarchive.Archive(root).ingest(files).ok
            places = {
                "moto": ("s3://reader/archive", {}),
                f"moto+{args.latency * 1e3:.0f}ms": ("s3://reader/archive", {"endpoint_url": proxy.url}),
                "local": (local, {}),
            }
            rng = random.Random(3)
            for where, (root, options) in places.items():
                archive = lcarchive.open_archive(root, options)
                rows = [rng.randrange(args.n_targets) for _ in range(args.repeats)]
                check_equal(archive, rows[1])
                row = {"lcarchive": statistics.median(lcarchive_reads(archive, rows))}
                for name, pipeline in PIPELINES.items():
                    row[name] = statistics.median(zarr_reads(lcarchive.open_archive(root, options), rows, pipeline))
                results["reads"][where] = row
                print(where, json.dumps(row), flush=True)
    finally:
        proxy.close()
        server.stop()
    return results


def report(results: dict) -> str:
    lines = [
        "| store | lcarchive (cached shard index) ms | zarr Batched ms | zarr Fused ms | speed-up vs best zarr |",
        "|---|---|---|---|---|",
    ]
    for where, row in results["reads"].items():
        best = min(row[n] for n in PIPELINES)
        lines.append(
            f"| {where} | {row['lcarchive'] * 1e3:.2f} | {row['zarr BatchedCodecPipeline'] * 1e3:.2f} "
            f"| {row['zarr FusedCodecPipeline'] * 1e3:.2f} | {best / row['lcarchive']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-targets", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.02)
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
