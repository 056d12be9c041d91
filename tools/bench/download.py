#!/usr/bin/env python
"""Benchmark of ``lcarchive download`` against copying objects and downloading FITS files.

    python tools/bench/download.py [--n-targets 3000] [--select 1000] [--jobs 16] [--json out.json]

(or ``bash tools/bench.sh --download ...``, which sets up ``.venv`` first).

1. Builds a synthetic TESS SPOC 2-min sector of ``--n-targets`` targets from a real template
   (``tools/synth.py``), ingests it into an lcarchive archive on a moto S3 server running in its
   own process, and uploads the same FITS files beside it (the MAST cloud layout).
2. Mirror: ``download --format zarr`` of the whole observation (objects copied undecoded)
   against s3fs copying the same objects (``S3FileSystem.get`` of the group's prefix, the raw-copy
   limit with the usual client). Goal: >= 0.8x of s3fs's throughput.
3. Selection: ``--select`` targets drawn at random, downloaded as Parquet, CSV, FITS, zarr and
   SkyPortal HDF5, against downloading their FITS files from the same endpoint with the same
   concurrency (s3fs ``get`` with ``batch_size=jobs``; and obstore, the client lcarchive uses, to
   tell client from layout). Goal: <= 0.2x of the FITS download's time.

Each figure is the median of ``--repeats`` runs into a fresh folder; requests and bytes are
counted at the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(1 << 20))

import lcarchive  # noqa: E402
from tools.bench.moto_counter import SubprocessCountingMotoServer  # noqa: E402
from tools.bench.run import TEMPLATE, machine  # noqa: E402
from tools.synth import make_observation  # noqa: E402

FIRST_ID = 4_000_000_000
OBS = "tess-spoc-2min-s0001"
GOALS = {"mirror_throughput_vs_s3fs_copy": (">=", 0.8), "selected_targets_time_vs_fits_download": ("<=", 0.2)}


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed_runs(fn, repeats: int, work: Path) -> tuple[float, object]:
    """Median seconds of ``fn(dest)`` over fresh destination folders, and the last result."""
    times, result = [], None
    for i in range(repeats):
        dest = work / f"run-{i}"
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.perf_counter()
        result = fn(dest)
        times.append(time.perf_counter() - t0)
        if i < repeats - 1:
            shutil.rmtree(dest, ignore_errors=True)
    return statistics.median(times), result


def s3fs_copy(prefix: str, dest: Path, jobs: int) -> int:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(config_kwargs={"max_pool_connections": max(jobs, 10)})
    fs.get(prefix, str(dest) + "/", recursive=True, batch_size=jobs)
    return _du(dest)


def s3fs_files(paths: list[str], dest: Path, jobs: int) -> int:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(config_kwargs={"max_pool_connections": max(jobs, 10)})
    dest.mkdir(parents=True, exist_ok=True)
    fs.get(paths, [str(dest / p.rsplit("/", 1)[-1]) for p in paths], batch_size=jobs)
    return _du(dest)


def obstore_files(bucket: str, keys: list[str], dest: Path, jobs: int) -> int:
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, config={"endpoint": os.environ["AWS_ENDPOINT_URL"]}, client_options={"allow_http": True})
    dest.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        limit = asyncio.Semaphore(jobs)

        async def one(key: str) -> None:
            async with limit:
                data = await (await obstore.get_async(store, key)).bytes_async()
            (dest / key.rsplit("/", 1)[-1]).write_bytes(bytes(data))

        await asyncio.gather(*(one(k) for k in keys))

    asyncio.run(main())
    return _du(dest)


def measure(args: argparse.Namespace) -> dict:
    results: dict = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="lcbench-dl-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        files = make_observation(TEMPLATE, work / "fits", args.n_targets, seed=0, first_id=FIRST_ID)
        results["synth_seconds"] = time.perf_counter() - t0
        server = SubprocessCountingMotoServer()
        server.start()
        os.environ.update(server.environ())
        try:
            server.create_bucket("bench")
            root = "s3://bench/lcarchive"
            t0 = time.perf_counter()
            report = lcarchive.Archive(root).ingest([str(p) for p in files])
            assert report.ok and len(report.added) == len(files)
            results["ingest_s"] = time.perf_counter() - t0
            import s3fs

            fs = s3fs.S3FileSystem()
            t0 = time.perf_counter()
            fs.put([str(p) for p in files], [f"bench/fits/{OBS}/{p.name}" for p in files])
            results["fits_upload_s"] = time.perf_counter() - t0
            fits_paths = {int(p.name.split("-")[2]): f"bench/fits/{OBS}/{p.name}" for p in files}
            group_prefix = f"bench/lcarchive/observations/{OBS}.zarr"
            group_bytes = int(fs.du(group_prefix, total=True))
            results["group_bytes"] = group_bytes
            results["fits_bytes_total"] = sum(p.stat().st_size for p in files)
            shutil.rmtree(work / "fits")  # the FITS now live on the endpoint only

            # -- mirror vs s3fs copy of the same objects
            mirror: dict = {}
            server.reset_counts()
            s, nbytes = timed_runs(lambda d: s3fs_copy(group_prefix, d, args.jobs), args.repeats, work)
            mirror["s3fs_copy"] = {
                "seconds": s,
                "bytes": nbytes,
                "mb_per_s": nbytes / s / 1e6,
                "requests": server.total() / args.repeats,
            }
            server.reset_counts()
            sel = lcarchive.Selection(observations=[OBS])
            s, rep = timed_runs(lambda d: lcarchive.download(root, d, sel, format="zarr", jobs=args.jobs), args.repeats, work)
            mirror["lcarchive_zarr_mirror"] = {
                "seconds": s,
                "bytes": rep.bytes_read,
                "mb_per_s": rep.bytes_read / s / 1e6,
                "requests": server.total() / args.repeats,
            }
            results["mirror"] = mirror

            # -- selected targets vs their FITS files
            rng = random.Random(1)
            chosen = sorted(rng.sample(sorted(fits_paths), args.select))
            sel = lcarchive.Selection(targets=chosen)
            selected: dict = {}
            for name, fn in (
                ("fits_files_s3fs", lambda d: s3fs_files([fits_paths[t] for t in chosen], d, args.jobs)),
                (
                    "fits_files_obstore",
                    lambda d: obstore_files("bench", [fits_paths[t].removeprefix("bench/") for t in chosen], d, args.jobs),
                ),
            ):
                server.reset_counts()
                s, nbytes = timed_runs(fn, args.repeats, work)
                selected[name] = {
                    "seconds": s,
                    "bytes_written": nbytes,
                    "requests": server.total() / args.repeats,
                    "bytes_sent": server.bytes_sent() / args.repeats,
                }
            for fmt in args.formats:
                server.reset_counts()
                s, rep = timed_runs(
                    lambda d, f=fmt: lcarchive.download(root, d, sel, format=f, jobs=args.jobs), args.repeats, work
                )
                selected[f"lcarchive_{fmt}"] = {
                    "seconds": s,
                    "bytes_written": rep.bytes_written,
                    "requests": server.total() / args.repeats,
                    "bytes_sent": server.bytes_sent() / args.repeats,
                }
            results["selected"] = selected
        finally:
            server.stop()
    base = results["selected"]["fits_files_s3fs"]["seconds"]
    results["ratios"] = {
        "mirror_throughput_vs_s3fs_copy": results["mirror"]["lcarchive_zarr_mirror"]["mb_per_s"]
        / results["mirror"]["s3fs_copy"]["mb_per_s"],
        **{
            f"selected_{k}_time_vs_fits_download": v["seconds"] / base
            for k, v in results["selected"].items()
            if k.startswith("lcarchive_")
        },
        "fits_obstore_vs_fits_s3fs": results["selected"]["fits_files_obstore"]["seconds"] / base,
    }
    return results


def report(r: dict) -> str:
    cfg = r["config"]
    lines = [
        f"{cfg['n_targets']} targets x 20,076 cadences; group {r['group_bytes'] / 1e6:.1f} MB, FITS {r['fits_bytes_total'] / 1e6:.1f} MB; "
        f"--jobs {cfg['jobs']}; medians of {cfg['repeats']}",
        "",
        "| mirror of the whole observation | s | MB/s | requests |",
        "|---|---|---|---|",
    ]
    for name, x in r["mirror"].items():
        lines.append(f"| {name} | {x['seconds']:.2f} | {x['mb_per_s']:.0f} | {x['requests']:.0f} |")
    lines += [
        "",
        f"| {cfg['select']} selected targets | s | ratio to FITS (s3fs) | MB written | requests | MB sent by the server |",
        "|---|---|---|---|---|---|",
    ]
    base = r["selected"]["fits_files_s3fs"]["seconds"]
    for name, x in r["selected"].items():
        lines.append(
            f"| {name} | {x['seconds']:.2f} | {x['seconds'] / base:.3f} | {x['bytes_written'] / 1e6:.1f} | {x['requests']:.0f} "
            f"| {x['bytes_sent'] / 1e6:.1f} |"
        )
    lines += ["", "| goal | target | reached | verdict |", "|---|---|---|---|"]
    mirror = r["ratios"]["mirror_throughput_vs_s3fs_copy"]
    lines.append(f"| mirror throughput vs s3fs copy | >= 0.8 | {mirror:.2f} | {'met' if mirror >= 0.8 else 'MISSED'} |")
    for k, v in r["ratios"].items():
        if k.startswith("selected_"):
            what = k.removeprefix("selected_").removesuffix("_time_vs_fits_download")
            lines.append(f"| {what} vs FITS download | <= 0.2 | {v:.3f} | {'met' if v <= 0.2 else 'MISSED'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-targets", type=int, default=3000)
    parser.add_argument("--select", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv", "hdf5", "zarr", "fits"])
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
