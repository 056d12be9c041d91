#!/usr/bin/env python
"""Point reads of one star against one FITS GET, side by side, with dependent rounds counted.

    python tools/bench/pointread.py [--n-targets 1000] [--sectors 10] [--repeats 5] [--latencies 0.02 0.1] [--json out.json]

Makes ``--n-targets`` synthetic TESS SPOC 2-min light curves (``tools/synth.py``), ingests them
into an archive on a moto S3 server and uploads the same files one per target (the FITS peer,
read by astropy through fsspec as lightkurve reads a cloud file). Then, on moto alone and behind
``tools/bench/latency_proxy.py`` at each latency (``TCP_NODELAY``; requests overlap), for random
targets:

- ``fits``: one target's FITS file;
- ``xarray cold``: ``xr.open_dataset(url, engine="lcarchive", group=obs).sel(target=t)[core].load()``
  in a process that has read nothing of the archive (its caches cleared);
- ``light_curve cold``: ``open_archive(url).light_curve(t, observation=obs)``, likewise;
- ``light_curve warm``: a target not read before, through the handle of the cold read;
- ``star, N sectors cold``: ``open_archive(url).light_curve(t)`` of a star in ``--sectors``
  observations (sectors 2..N hold ``--sector-targets`` targets each), against its N FITS
  files read one after another (as lightkurve's ``download_all``) and read concurrently;
- with ``--lsdb`` (lsdb installed): LSDB reading the same light curves as a nested HATS
  catalog in ~61 MiB partitions (the layout of the public TESS SPOC HATS catalog), by TIC ID
  and by a 1-arcsec cone then the ID.

The proxy counts the dependent rounds of each read (``LatencyProxy.rounds``) and the requests.
Times are medians of ``--repeats``; ratios are to ``fits`` at the same place.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import xarray as xr

import lcarchive
from lcarchive.store import clear_caches
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import SubprocessCountingMotoServer
from tools.bench.peers import FitsPeer
from tools.bench.run import CORE, FIRST_ID, TEMPLATE, machine, set_sector
from tools.synth import make_observation

OBS = "tess-spoc-2min-s0001"
ROOT = "s3://points/archive"


def lcarchive_reads(options: dict, targets: list[int], warm_target: int) -> list[tuple[str, bool, Callable[[], object]]]:
    """The lcarchive reads measured, in order: (name, cold, read). A cold read is run with the
    process's caches cleared first; the warm one reads through the handle of the cold
    ``light_curve``."""
    holder: dict = {}

    def xarray_cold() -> None:
        with xr.open_dataset(ROOT, engine="lcarchive", group=OBS, storage_options=options) as ds:
            ds.sel(target=targets[0])[CORE].load()

    def light_curve_cold() -> None:
        holder["archive"] = lcarchive.open_archive(ROOT, options)
        holder["archive"].light_curve(targets[1], observation=OBS, variables=CORE, quality_bitmask="none")

    def light_curve_warm() -> None:
        holder["archive"].light_curve(warm_target, observation=OBS, variables=CORE, quality_bitmask="none")

    return [
        ("xarray cold", True, xarray_cold),
        ("light_curve cold", True, light_curve_cold),
        ("light_curve warm", False, light_curve_warm),
    ]


def measures(options: dict, targets: list[int], warm_targets: list[int], fits: FitsPeer) -> dict:
    """One target read each way: {measure: seconds}."""
    t0 = time.perf_counter()
    fits.read_target(targets[0], OBS)
    out = {"fits": time.perf_counter() - t0}
    for name, cold, read in lcarchive_reads(options, targets[1:], warm_targets[0]):
        if cold:
            clear_caches()
        t0 = time.perf_counter()
        read()
        out[name] = time.perf_counter() - t0
    return out


def star_reads(options: dict, target: int, observations: list[str], fits: FitsPeer, proxy: LatencyProxy | None = None) -> dict:
    """One star across its observations: lcarchive cold (all its current observations, one
    call), its FITS files one after another and concurrently. Seconds each, and the rounds and
    requests of the lcarchive read when ``proxy`` counts them."""
    from concurrent.futures import ThreadPoolExecutor

    clear_caches()
    if proxy is not None:
        proxy.reset()
    t0 = time.perf_counter()
    lc = lcarchive.open_archive(ROOT, options).light_curve(target, variables=CORE, quality_bitmask="none")
    out: dict = {"star cold": time.perf_counter() - t0}
    if proxy is not None:
        rounds = proxy.rounds()
        out["rounds"] = {"rounds": len(rounds), "requests": sum(map(len, rounds))}
    assert sorted(set(lc["cadence_observation"].values.tolist())) == observations
    t0 = time.perf_counter()
    for observation in observations:
        fits.read_target(target, observation)
    out["fits one after another"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(observations)) as pool:
        list(pool.map(lambda o: fits.read_target(target, o), observations))
    out["fits concurrently"] = time.perf_counter() - t0
    return out


def rounds_of(proxy: LatencyProxy, options: dict, target: int, warm_target: int) -> dict:
    """Dependent rounds and requests of each lcarchive read, counted at the proxy."""
    out = {}
    for name, cold, read in lcarchive_reads(options, [target, target], warm_target):
        if cold:
            clear_caches()
        proxy.reset()
        read()
        rounds = proxy.rounds()
        out[name] = {"rounds": len(rounds), "requests": sum(map(len, rounds))}
    return out


def lsdb_catalog(files: list[Path], work: Path) -> tuple[Path, dict[int, tuple[float, float]]]:
    """The same light curves as a nested HATS catalog, as the public TESS SPOC HATS catalog
    is laid out: one row per light curve (target, ra, dec) with a nested ``lc`` column of
    ``time``, ``flux``, ``flux_err``, ``quality``, in HEALPix partitions of ~61 MiB. Returns
    the catalog's folder and each target's (ra, dec)."""
    import lsdb
    import nested_pandas as npd
    import pandas as pd

    from tools.bench.peers import read_fits_lightcurve

    base, parts = [], []
    for f in files:
        lc = read_fits_lightcurve(f)
        base.append({"target": lc.target, "ra": float(lc.meta["ra"]), "dec": float(lc.meta["dec"])})
        parts.append(pd.DataFrame({k: lc.arrays[k] for k in CORE}))
    frame = pd.DataFrame(base)
    flat = pd.concat(parts, keys=range(len(parts))).droplevel(1)
    nested = npd.NestedFrame(frame).join_nested(flat, "lc")
    folder = work / "hats"
    lsdb.from_dataframe(nested, ra_column="ra", dec_column="dec", partition_bytes=61 * 2**20).write_catalog(str(folder))
    return folder, {int(b["target"]): (b["ra"], b["dec"]) for b in base}


def lsdb_reads(url: str, endpoint: str, positions: dict[int, tuple[float, float]], targets: list[int]) -> dict:
    """LSDB point reads of the same light curves: by TIC ID (a filter on the target column, as
    a catalog without an index catalog is searched), and by a 1-arcsec cone at the target's
    position then its ID (as one reads a star whose position the TIC gives). Seconds each."""
    import os

    import lsdb
    from upath import UPath

    path = UPath(
        url,
        key=os.environ["AWS_ACCESS_KEY_ID"],
        secret=os.environ["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": endpoint},
    )
    out: dict[str, list[float]] = {"lsdb by ID": [], "lsdb cone, then ID": []}
    for target in targets:
        t0 = time.perf_counter()
        rows = lsdb.read_hats(path, filters=[("target", "==", target)]).compute()
        out["lsdb by ID"].append(time.perf_counter() - t0)
        assert list(rows["target"]) == [target] and len(rows["lc"].iloc[0]) > 0
        ra, dec = positions[target]
        t0 = time.perf_counter()
        rows = lsdb.read_hats(path).cone_search(ra, dec, 1.0).compute()
        rows = rows[rows["target"] == target]
        out["lsdb cone, then ID"].append(time.perf_counter() - t0)
        assert len(rows) == 1
    return {k: statistics.median(v) for k, v in out.items()}


def measure(args: argparse.Namespace) -> dict:
    results: dict = {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "times": {},
        "rounds": {},
    }
    server = SubprocessCountingMotoServer()
    server.start()
    import os

    os.environ.update(server.environ())
    proxies = {f"moto+{latency * 1e3:.0f}ms": LatencyProxy(server.endpoint, latency=latency) for latency in args.latencies}
    try:
        with tempfile.TemporaryDirectory(prefix="lcpoint-") as tmp:
            files = make_observation(TEMPLATE, Path(tmp) / "s01", args.n_targets, seed=0, first_id=FIRST_ID)
            server.create_bucket("points")
            assert lcarchive.Archive(ROOT).ingest([str(f) for f in files]).ok
            loader = FitsPeer("s3://points/fits")
            loader.load(files)
            observations = [OBS]
            for sector in range(2, args.sectors + 1):
                more = make_observation(
                    TEMPLATE, Path(tmp) / f"s{sector:02d}", args.sector_targets, seed=sector, first_id=FIRST_ID
                )
                set_sector(more, sector)
                assert lcarchive.Archive(ROOT).ingest([str(f) for f in more]).ok
                loader.load(more)
                observations.append(f"tess-spoc-2min-s{sector:04d}")
            if args.lsdb:
                import fsspec

                folder, positions = lsdb_catalog(files, Path(tmp))
                fsspec.filesystem("s3").put(str(folder), "points/hats", recursive=True)
            ids = list(range(FIRST_ID, FIRST_ID + args.n_targets))
            places = {"moto": {}, **{name: {"endpoint_url": p.url} for name, p in proxies.items()}}
            rng = random.Random(7)
            for where, options in places.items():
                fits = FitsPeer(
                    "s3://points/fits",
                    storage_options={"client_kwargs": {"endpoint_url": options["endpoint_url"]}} if options else None,
                )
                fits.urls = dict(loader.urls)
                runs = [measures(options, rng.sample(ids, 3), rng.sample(ids, 1), fits) for _ in range(args.repeats)]
                row = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
                if args.sectors > 1:
                    stars = [
                        star_reads(options, t, observations, fits, proxies.get(where))
                        for t in rng.sample(ids[: args.sector_targets], min(args.repeats, args.sector_targets))
                    ]
                    results.setdefault("stars", {})[where] = {
                        name: statistics.median(r[name] for r in stars) for name in stars[0] if name != "rounds"
                    }
                    if where in proxies:
                        results.setdefault("star_rounds", {})[where] = [r["rounds"] for r in stars]
                if args.lsdb:
                    row.update(
                        lsdb_reads(
                            "s3://points/hats",
                            options.get("endpoint_url", server.endpoint),
                            positions,
                            rng.sample(ids, min(args.repeats, 3)),
                        )
                    )
                results["times"][where] = row
                if where in proxies:
                    results["rounds"][where] = rounds_of(proxies[where], options, *rng.sample(ids, 2))
                print(where, json.dumps(row), json.dumps(results["rounds"].get(where, {})), flush=True)
    finally:
        for proxy in proxies.values():
            proxy.close()
        server.stop()
    return results


def report(results: dict) -> str:
    places = list(results["times"])
    head = "| measure | " + " | ".join(f"{p} ms | vs FITS" for p in places) + " | rounds (requests) |"
    lines = [head, "|---" * (2 * len(places) + 2) + "|"]
    slow = [p for p in places if p in results["rounds"]]
    for name in results["times"][places[0]]:
        cells = []
        for p in places:
            row = results["times"][p]
            cells.append(f"{row[name] * 1e3:.0f} | {row[name] / row['fits']:.2f}x")
        counted = results["rounds"][slow[-1]].get(name) if slow else None  # at the longest latency: no round split by CPU
        rounds = f"{counted['rounds']} ({counted['requests']})" if counted else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rounds} |")
    if "stars" in results:
        n = results["config"]["sectors"]
        lines += [
            "",
            f"| one star, {n} sectors | " + " | ".join(f"{p} ms" for p in places) + " | rounds (requests) |",
            "|---" * (len(places) + 2) + "|",
        ]
        counted = results.get("star_rounds", {}).get(slow[-1], []) if slow else []
        for name in ("star cold", "fits one after another", "fits concurrently"):
            cells = [f"{results['stars'][p][name] * 1e3:.0f}" for p in places]
            rounds = ", ".join(f"{c['rounds']} ({c['requests']})" for c in counted) if name == "star cold" else ""
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {rounds} |")
        for base in ("fits one after another", "fits concurrently"):
            cells = [f"{results['stars'][p]['star cold'] / results['stars'][p][base]:.2f}x" for p in places]
            lines.append(f"| star cold vs {base} | " + " | ".join(cells) + " | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-targets", type=int, default=1000)
    parser.add_argument("--sectors", type=int, default=10, help="observations of the star read across them (1: none)")
    parser.add_argument("--sector-targets", type=int, default=10, help="targets of each sector after the first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.02, 0.1])
    parser.add_argument("--lsdb", action="store_true", help="also LSDB reading a nested HATS catalog of the same light curves")
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
