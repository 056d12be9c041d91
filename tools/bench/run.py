#!/usr/bin/env python
"""lcarchive's benchmark against the formats people use today, in one run, on one machine.

    python tools/bench/run.py [--n-targets 1000] [--repeats 15] [--json results.json]

(or ``bash tools/bench.sh``, which sets up ``.venv`` with the ``bench`` extras first).

What it does:

1. builds a synthetic TESS SPOC 2-min sector (``--n-targets`` targets) from a real template file
   with ``tools/synth.py``, and the same first ``--sector-targets`` targets in 9 more sectors;
2. starts a moto S3 server on 127.0.0.1 that counts the requests it receives, and PostgreSQL
   from Debian's packages on loopback;
3. stores the light curves in lcarchive (on S3 and on local disk) and in the peers: one FITS file
   per target (the MAST cloud layout read by lightkurve/astroquery), one HDF5 file per target in
   SkyPortal's photometric-series format, one PostgreSQL row of arrays per target and observation
   (MIT lightcurvedb's storage model);
4. measures, medians over ``--repeats``, on moto and through a proxy adding ``--latency`` per request:
   point reads (cold through xarray's ``engine="lcarchive"``; warm through
   ``Archive.light_curve``), one target across 10 observations, a scan of a whole observation,
   ingest throughput against the bare astropy parse, bytes stored, and HTTP requests per point read
   counted at the server; and prints the ratios to the FITS peer next to the goals.

Goals (ratios to the FITS peer on the same endpoint): cold point read through plain xarray <= 2x;
warm point read through Archive.light_curve <= 0.5x; target across 10 observations <= 0.3x;
scan <= 0.2x; bytes stored <= 0.35x of the source FITS; ingest >= 0.7x of the bare-parse rate.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(1 << 20))  # moto spills objects > 1 MiB to disk

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from astropy.io import fits  # noqa: E402

import lcarchive  # noqa: E402
import lcarchive.config  # noqa: E402
from lcarchive.store import clear_caches  # noqa: E402
from tools.bench.latency_proxy import LatencyProxy  # noqa: E402
from tools.bench.moto_counter import CountingMotoServer, SubprocessCountingMotoServer  # noqa: E402
from tools.bench.peers import FitsPeer, HDF5Peer, PostgresPeer  # noqa: E402
from tools.synth import make_observation  # noqa: E402

TEMPLATE = (
    REPO.parent / "shared" / "data" / "lightcurves" / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
)
CORE = ["time", "flux", "flux_err", "quality"]
FIRST_ID = 3_000_000_000
GOALS = {
    "cold_point_read_xarray": ("<=", 2.0),
    "warm_point_read_light_curve": ("<=", 0.5),
    "target_across_10_observations": ("<=", 0.3),
    "scan_observation": ("<=", 0.2),
    "bytes_stored": ("<=", 0.35),
    "ingest_rate_vs_bare_parse": (">=", 0.7),
}


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bare_parse(path: Path) -> None:
    """What any reader must do at least: parse the FITS file's table with astropy."""
    with fits.open(io.BytesIO(path.read_bytes()), memmap=False) as hdul:
        table = hdul[1].data
        for name in table.names:
            np.asarray(table[name])


def set_sector(files: list[Path], sector: int) -> None:
    for path in files:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["SECTOR"] = sector


def make_data(work: Path, n_targets: int, sector_targets: int, n_sectors: int) -> tuple[list[Path], list[list[Path]]]:
    main = make_observation(TEMPLATE, work / "s01", n_targets, seed=0, first_id=FIRST_ID)
    others = []
    for sector in range(2, n_sectors + 1):
        files = make_observation(TEMPLATE, work / f"s{sector:02d}", sector_targets, seed=sector, first_id=FIRST_ID)
        set_sector(files, sector)
        others.append(files)
    return main, others


def xarray_point_read(root: str, observation: str, target: int, options: dict | None = None) -> None:
    with xr.open_dataset(root, engine="lcarchive", group=observation, storage_options=options) as ds:
        ds[CORE].sel(target=target).load()


def xarray_scan(root: str, observation: str, options: dict | None = None) -> int:
    with xr.open_dataset(root, engine="lcarchive", group=observation, storage_options=options) as ds:
        loaded = ds[CORE].load()
        return int(sum(v.nbytes for v in loaded.data_vars.values()))


def prefix_bytes(url: str) -> int:
    """Bytes of every object under ``url`` (a local folder or an s3:// prefix)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return int(fs.du(path, total=True))


def real_files_bytes(work: Path) -> dict:
    """Stored bytes of the real light curves in ../shared (all but bad/) against their FITS bytes.

    Most of them are one target per observation, where a group's metadata and per-target
    variables weigh more than in a sector of thousands of targets.
    """
    base = TEMPLATE.parents[1]
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file() and "bad" not in p.relative_to(base).parts and p.suffix in (".fits", ".gz", ".h5", ".fit", ".fts")
    )
    root = work / "real"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in files])
    source = sum(p.stat().st_size for p in files)
    stored = prefix_bytes(str(root / "observations"))
    return {
        "files": len(files),
        "light_curves": len(report.added),
        "source_bytes": source,
        "stored_bytes": stored,
        "ratio": stored / source,
    }


def measure(args: argparse.Namespace) -> dict:
    results: dict = {"config": vars(args).copy(), "machine": machine()}
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="lcbench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        main, others = make_data(work, args.n_targets, args.sector_targets, 10)
        results["synth_seconds"] = time.perf_counter() - t0
        results["real_files"] = real_files_bytes(work)
        all_files = main + [f for fs in others for f in fs]
        fits_bytes = sum(p.stat().st_size for p in main)
        targets = [FIRST_ID + i for i in range(args.n_targets)]
        obs = "tess-spoc-2min-s0001"

        # ingest vs bare parse (same files, local disk)
        t0 = time.perf_counter()
        for p in main:
            bare_parse(p)
        parse_s = time.perf_counter() - t0
        results["bare_parse_files_per_s"] = len(main) / parse_s

        server = CountingMotoServer() if args.moto == "thread" else SubprocessCountingMotoServer()
        server.start()
        os.environ.update(server.environ())
        try:
            server.create_bucket("bench")
            rows = {}
            for where, root in (("s3", "s3://bench/lcarchive"), ("local", str(work / "lcarchive"))):
                t0 = time.perf_counter()
                report = lcarchive.Archive(root).ingest([str(p) for p in main])
                ingest_s = time.perf_counter() - t0
                assert report.ok and len(report.added) == len(main), report.skipped[:3]
                lcarchive.Archive(root).ingest([str(p) for p in all_files[len(main) :]])
                stored = prefix_bytes(f"{root}/observations/{obs}")  # the observation's repository, all of it
                rows[where] = {"ingest_files_per_s": len(main) / ingest_s, "stored_bytes": stored, "root": root, "options": {}}
            proxy = LatencyProxy(server.endpoint, latency=args.latency)
            slow = f"s3+{args.latency * 1e3:.0f}ms"
            rows[slow] = {**rows["s3"], "options": {"endpoint_url": proxy.url}}
            results["lcarchive"] = rows
            results["fits_bytes"] = fits_bytes

            peers = {
                "fits-s3": FitsPeer("s3://bench/fits"),
                "fits-local": FitsPeer(work / "fits"),
            }
            slow_fits = FitsPeer("s3://bench/fits", storage_options={"client_kwargs": {"endpoint_url": proxy.url}})
            if not args.skip_hdf5:
                peers["hdf5-s3"] = HDF5Peer("s3://bench/hdf5")
                peers["hdf5-local"] = HDF5Peer(work / "hdf5")
            if not args.skip_postgres:
                peers["postgres"] = PostgresPeer()
            peer_results = {}
            for name, peer in peers.items():
                t0 = time.perf_counter()
                peer.load(all_files if name.startswith("fits") or name == "postgres" else main)
                peer_results[name] = {"load_s": time.perf_counter() - t0, "stored_bytes": peer.stored_bytes()}
            slow_fits.urls = dict(peers["fits-s3"].urls)  # the same objects as fits-s3, through the latency proxy
            peers[f"fits-{slow}"] = slow_fits
            peer_results[f"fits-{slow}"] = dict(peer_results["fits-s3"])

            sample = [rng.choice(targets) for _ in range(args.repeats)]
            multi = [rng.choice(targets[: args.sector_targets]) for _ in range(args.repeats)]

            def timed(fn: Callable[[int], object], picks: list[int]) -> float:
                it = iter(picks)
                return median_time(lambda: fn(next(it)), len(picks))

            for where in ("s3", slow, "local"):
                r = rows[where]
                root, options = r["root"], r["options"]
                # cold: nothing of the archive opened in this process (its caches cleared)
                r["cold_point_read_xarray_s"] = timed(
                    lambda t: (clear_caches(), xarray_point_read(root, obs, t, options)), sample
                )
                r["cold_point_read_light_curve_s"] = timed(
                    lambda t: (
                        clear_caches(),
                        lcarchive.open_archive(root, options).light_curve(
                            t, observation=obs, variables=CORE, quality_bitmask="none"
                        ),
                    ),
                    sample,
                )
                archive = lcarchive.open_archive(root, options)
                archive.light_curve(targets[0], observation=obs, variables=CORE, quality_bitmask="none")
                for t in targets[:: lcarchive.config.settings().targets_per_shard]:  # warm every shard index once
                    archive.light_curve(t, observation=obs, variables=CORE, quality_bitmask="none")
                r["warm_point_read_light_curve_s"] = timed(
                    lambda t: archive.light_curve(t, observation=obs, variables=CORE, quality_bitmask="none"), sample
                )
                r["target_across_10_observations_s"] = timed(
                    lambda t: archive.light_curve(t, variables=CORE, quality_bitmask="none"), multi
                )
                t0 = time.perf_counter()
                nbytes = xarray_scan(root, obs, options)
                scan_s = time.perf_counter() - t0
                r.update(scan_s=scan_s, scan_targets_per_s=len(main) / scan_s, scan_mb_per_s=nbytes / scan_s / 1e6)

            obs_ids = [obs] + [f"tess-spoc-2min-s{s:04d}" for s in range(2, 11)]
            for name, peer in peers.items():
                pr = peer_results[name]
                pr["point_read_s"] = timed(lambda t: peer.read_target(t, obs), sample)
                pr["target_across_10_observations_s"] = (
                    timed(lambda t: [peer.read_target(t, o) for o in obs_ids], multi)
                    if name.startswith(("fits", "postgres"))
                    else None
                )
                t0 = time.perf_counter()
                nbytes = peer.scan(obs)
                scan_s = time.perf_counter() - t0
                pr.update(scan_s=scan_s, scan_targets_per_s=len(main) / scan_s, scan_mb_per_s=nbytes / scan_s / 1e6)
            results["peers"] = peer_results

            # HTTP requests per point read, counted at the server
            requests = {}
            t = sample[0]
            clear_caches()
            server.reset_counts()
            xarray_point_read("s3://bench/lcarchive", obs, t)
            requests["cold_xarray"] = server.counts()
            clear_caches()
            server.reset_counts()
            fresh = lcarchive.open_archive("s3://bench/lcarchive")
            fresh.light_curve(t, observation=obs, variables=CORE, quality_bitmask="none")
            requests["cold_light_curve_including_open_archive"] = server.counts()
            for other in targets[:: lcarchive.config.settings().targets_per_shard]:  # every shard index cached
                fresh.light_curve(other, observation=obs, variables=CORE, quality_bitmask="none")
            server.reset_counts()
            fresh.light_curve(sample[1], observation=obs, variables=CORE, quality_bitmask="none")
            requests["warm_light_curve"] = server.counts()
            server.reset_counts()
            peers["fits-s3"].read_target(t, obs)
            requests["fits"] = server.counts()
            results["requests_per_point_read"] = requests
            for peer in peers.values():
                peer.close()
            proxy.close()
        finally:
            server.stop()
    results["ratios"] = ratios(results)
    results["ratios_with_latency"] = ratios(results, slow)
    return results


def ratios(r: dict, where: str = "s3") -> dict:
    s3, fits_s3 = r["lcarchive"][where], r["peers"][f"fits-{where}"]
    return {
        "cold_point_read_xarray": s3["cold_point_read_xarray_s"] / fits_s3["point_read_s"],
        "warm_point_read_light_curve": s3["warm_point_read_light_curve_s"] / fits_s3["point_read_s"],
        "target_across_10_observations": s3["target_across_10_observations_s"] / fits_s3["target_across_10_observations_s"],
        "scan_observation": s3["scan_s"] / fits_s3["scan_s"],
        "bytes_stored": s3["stored_bytes"] / r["fits_bytes"],
        "ingest_rate_vs_bare_parse": s3["ingest_files_per_s"] / r["bare_parse_files_per_s"],
    }


def machine() -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in (
        "lcarchive",
        "icechunk",
        "zarr",
        "xarray",
        "numpy",
        "astropy",
        "s3fs",
        "fsspec",
        "moto",
        "pandas",
        "tables",
        "psycopg",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "versions": versions,
    }


def report(r: dict) -> str:
    slow = next(w for w in r["lcarchive"] if w.startswith("s3+"))
    lines = [f"| measure | goal | moto | verdict | {slow} | verdict |", "|---|---|---|---|---|---|"]
    for key, (op, goal) in GOALS.items():
        row = f"| {key} | {op} {goal} |"
        for ratio in (r["ratios"], r["ratios_with_latency"]):
            value = ratio[key]
            ok = value <= goal if op == "<=" else value >= goal
            row += f" {value:.3f} | {'met' if ok else 'MISSED'} |"
        lines.append(row)
    lines += [
        "",
        "| store | point read ms | 10 observations ms | scan targets/s | scan MB/s | stored MB |",
        "|---|---|---|---|---|---|",
    ]
    for where, x in r["lcarchive"].items():
        lines.append(
            f"| lcarchive {where} (cold xarray / warm light_curve) "
            f"| {x['cold_point_read_xarray_s'] * 1e3:.1f} / {x['warm_point_read_light_curve_s'] * 1e3:.1f} "
            f"| {x['target_across_10_observations_s'] * 1e3:.1f} | {x['scan_targets_per_s']:.0f} | {x['scan_mb_per_s']:.0f} "
            f"| {x['stored_bytes'] / 1e6:.1f} |"
        )
    for name, x in r["peers"].items():
        multi = x.get("target_across_10_observations_s")
        lines.append(
            f"| {name} | {x['point_read_s'] * 1e3:.1f} | {'-' if multi is None else f'{multi * 1e3:.1f}'} | {x['scan_targets_per_s']:.0f} "
            f"| {x['scan_mb_per_s']:.0f} | {x['stored_bytes'] / 1e6:.1f} |"
        )
    lines += [
        "",
        f"bare astropy parse: {r['bare_parse_files_per_s']:.1f} files/s; "
        + "; ".join(
            f"lcarchive ingest {w}: {x['ingest_files_per_s']:.1f} files/s" for w, x in r["lcarchive"].items() if "+" not in w
        ),
    ]
    x = r["real_files"]
    lines += [
        "",
        f"real files in ../shared: {x['light_curves']} light curves of {x['files']} files, "
        f"{x['stored_bytes'] / 1e6:.1f} MB stored for {x['source_bytes'] / 1e6:.1f} MB of sources ({x['ratio']:.2f}x)",
    ]
    lines += ["", "requests per point read (at the server): " + json.dumps(r["requests_per_point_read"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-targets", type=int, default=1000)
    parser.add_argument("--sector-targets", type=int, default=20, help="targets also observed in sectors 2-10")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--moto",
        choices=["process", "thread"],
        default="process",
        help="run moto in its own process (like a real endpoint; default) or as a thread of this one",
    )
    parser.add_argument("--latency", type=float, default=0.02, help="seconds a proxy adds per request (overlapping)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-hdf5", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--targets-per-shard", type=int, default=None, help="override lcarchive's shard size")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    shard = {"targets_per_shard": args.targets_per_shard} if args.targets_per_shard else {}
    with lcarchive.config.override(**shard):
        results = measure(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
