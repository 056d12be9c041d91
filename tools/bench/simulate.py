#!/usr/bin/env python
"""A TESS-sized simulation, scaled to this machine: one sector of real shape ingested with 1 and 2
Dask workers, then an archive grown to ``--observations`` observations, with what each costs.

    python tools/bench/simulate.py [--sector-targets 1000] [--observations 95] [--targets-per-observation 10]
                                   [--full-sector 20000 [--chunk 1000]] [--parts sector,growth,full]
                                   [--json out.json]

Synthetic light curves come from a real TESS SPOC 2-min file (``tools/synth.py``: its 20,076
cadences, columns, headers and aperture; new TIC IDs, positions, flux levels and noise):

1. **One sector** of ``--sector-targets`` targets (a real sector has ~20,000), ingested on local
   disk by a Dask LocalCluster of 1 worker and of 2 workers (``Archive.ingest(client=...)``):
   files/s, the observation repository's objects and bytes, each worker's peak memory (RSS).
2. **Growth**: ``--observations`` sectors of ``--targets-per-observation`` targets ingested one
   batch per observation, one after the other into one archive; per batch the seconds of the
   whole ingest call and of its catalog commit (timed around ``ArchiveStore.change_catalog``), as
   the archive grows.
3. At the final size: a cold point read (``open_archive`` + ``light_curve`` of one target in one
   observation) and a cold 1 deg cone search.
4. **A full sector** (``--full-sector``, real size 20,000 targets x 20,076 cadences): made and
   ingested ``--chunk`` files at a time on 2 Dask workers into one observation group (each chunk's
   inputs deleted once stored: the inputs of a whole sector are ~40 GB), with the ingest rate,
   the commit times and the workers' memory per chunk as the group grows, the group's objects and
   bytes, and a cold point read and cone search in it.

The figures go to stdout (and ``--json``); docs/performance.md keeps a run with the machine and
versions. The model beyond this machine: parsing, encoding and chunk writes scale with workers;
the ingesting process's own work per file (planning, transfers, metadata, commits: the
``client_cpu_ms_per_file`` figure) and the catalog commit per batch do not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import lcarchive
from lcarchive.store import ArchiveStore
from tools.bench.engine import sector_files
from tools.bench.run import machine

FIRST_ID = 5_000_000_000


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def one_sector(work: Path, files: list[str], workers: int) -> dict:
    from dask.distributed import Client, LocalCluster

    root = work / f"sector-{workers}w"
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: None)  # workers up before the clock starts
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = lcarchive.Archive(str(root)).ingest(files, client=client)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        memory = client.run(lambda: __import__("psutil").Process().memory_info().rss)
    assert report.ok and len(report.added) == len(files), report.skipped[:3]
    objects, nbytes = folder_size(root / "observations" / "tess-spoc-2min-s0001")
    return {
        "workers": workers,
        "files": len(files),
        "seconds": round(seconds, 1),
        "files_per_s": round(len(files) / seconds, 1),
        "client_cpu_ms_per_file": round(1000 * cpu / len(files), 1),
        "objects": objects,
        "bytes": nbytes,
        "worker_rss_mb": sorted(round(v / 2**20) for v in memory.values()),
    }


@contextlib.contextmanager
def catalog_commits():
    """The seconds of each catalog commit made inside the block, timed where it happens
    (``ArchiveStore.change_catalog``); a list the caller clears between batches."""
    original = ArchiveStore.change_catalog
    timings: list[float] = []

    def timed(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            timings.append(time.perf_counter() - t0)

    ArchiveStore.change_catalog = timed
    try:
        yield timings
    finally:
        ArchiveStore.change_catalog = original


def cold_reads(root: Path, target: int, observation: str) -> tuple:
    """A cold point read (``open_archive`` + ``light_curve``) and a cold 1 deg cone search around
    the target: (light curve, seconds, lines found, seconds)."""
    t0 = time.perf_counter()
    lc = lcarchive.open_archive(str(root)).light_curve(
        target, observation=observation, variables=["time", "flux", "flux_err", "quality"]
    )
    point = time.perf_counter() - t0
    assert lc.sizes["cadence"] > 0
    line = lcarchive.open_archive(str(root)).target_index([target]).iloc[0]
    t0 = time.perf_counter()
    found = lcarchive.open_archive(str(root)).search(cone=(float(line["ra"]), float(line["dec"]), 1.0))
    return lc, point, found, time.perf_counter() - t0


def growth(work: Path, n_obs: int, per_obs: int) -> dict:
    root = work / "growth"
    rows = []
    with catalog_commits() as timings:
        for s in range(1, n_obs + 1):
            files = sector_files(work / "g", s, per_obs, FIRST_ID + 100_000)
            timings.clear()
            t0 = time.perf_counter()
            report = lcarchive.Archive(str(root)).ingest(files, jobs=1)
            total = time.perf_counter() - t0
            assert report.ok, report.skipped[:3]
            rows.append({"observation": s, "ingest_s": round(total, 3), "catalog_commit_s": round(sum(timings), 3)})
            if s in (1, 2, 5, 10, 25, 50, 75, n_obs) or s % 10 == 0:
                print(json.dumps(rows[-1]), flush=True)
    _lc, point, found, cone = cold_reads(root, FIRST_ID + 100_000, f"tess-spoc-2min-s{n_obs:04d}")
    objects, nbytes = folder_size(root)
    first, last = rows[: max(1, n_obs // 10)], rows[-max(1, n_obs // 10) :]
    return {
        "observations": n_obs,
        "targets_per_observation": per_obs,
        "batches": rows,
        "first_tenth": {k: round(statistics.median(r[k] for r in first), 3) for k in ("ingest_s", "catalog_commit_s")},
        "last_tenth": {k: round(statistics.median(r[k] for r in last), 3) for k in ("ingest_s", "catalog_commit_s")},
        "objects": objects,
        "bytes": nbytes,
        "cold_point_read_s": round(point, 3),
        "cold_cone_1deg_s": round(cone, 3),
        "cone_lines": len(found),
    }


def full_sector(work: Path, n_targets: int, chunk: int, workers: int = 2) -> dict:
    import shutil

    from dask.distributed import Client, LocalCluster

    root = work / "full"
    first = FIRST_ID + 1_000_000
    rows = []
    with catalog_commits() as timings:
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: None)
            for start in range(0, n_targets, chunk):
                n = min(chunk, n_targets - start)
                t0 = time.perf_counter()
                files = sector_files(work / "full-in", 1, n, first + start, seed=1000 + start // chunk)
                made = time.perf_counter() - t0
                timings.clear()
                t0, cpu0 = time.perf_counter(), time.process_time()
                report = lcarchive.Archive(str(root)).ingest(files, client=client)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                assert report.ok and len(report.added) == n, report.skipped[:3]
                shutil.rmtree(Path(files[0]).parent)
                memory = client.run(lambda: __import__("psutil").Process().memory_info().rss)
                rows.append(
                    {
                        "stored": start + n,
                        "synth_s": round(made, 1),
                        "ingest_s": round(seconds, 1),
                        "files_per_s": round(n / seconds, 1),
                        "client_cpu_ms_per_file": round(1000 * cpu / n, 1),
                        "catalog_commits_s": round(sum(timings), 2),
                        "worker_rss_mb": sorted(round(v / 2**20) for v in memory.values()),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    objects, nbytes = folder_size(root / "observations" / "tess-spoc-2min-s0001")
    target = first + n_targets // 2
    lc, point, found, cone = cold_reads(root, target, "tess-spoc-2min-s0001")
    seconds = sum(r["ingest_s"] for r in rows)
    return {
        "targets": n_targets,
        "point_read_cadences": int(lc.sizes["cadence"]),
        "workers": workers,
        "chunk": chunk,
        "chunks": rows,
        "ingest_s": round(seconds, 1),
        "files_per_s": round(n_targets / seconds, 1),
        "objects": objects,
        "bytes": nbytes,
        "cold_point_read_s": round(point, 3),
        "cold_cone_1deg_s": round(cone, 3),
        "cone_lines": len(found),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sector-targets", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=95)
    parser.add_argument("--targets-per-observation", type=int, default=10)
    parser.add_argument("--full-sector", type=int, default=20_000, help="targets of the full-size sector")
    parser.add_argument("--chunk", type=int, default=1000, help="files made and ingested at a time in the full sector")
    parser.add_argument("--parts", default="sector,growth,full", help="which parts to run (comma-separated)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    warnings.simplefilter("ignore")
    results: dict = {"config": {k: str(v) for k, v in vars(args).items()}, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="lcsim-") as tmp:
        work = Path(tmp)
        if "sector" in parts:
            t0 = time.perf_counter()
            files = sector_files(work / "sector", 1, args.sector_targets, FIRST_ID)
            results["synth_s"] = round(time.perf_counter() - t0, 1)
            results["sector"] = [one_sector(work, files, w) for w in (1, 2)]
            print(json.dumps(results["sector"]), flush=True)
        if "growth" in parts:
            results["growth"] = growth(work, args.observations, args.targets_per_observation)
        if "full" in parts:
            results["full"] = full_sector(work, args.full_sector, args.chunk)
    summary = {
        part: ({k: v for k, v in value.items() if k not in ("batches", "chunks")} if isinstance(value, dict) else value)
        for part, value in results.items()
        if part in ("sector", "growth", "full")
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
