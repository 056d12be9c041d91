#!/usr/bin/env python
"""Cone search on a target index of 10^6 targets: the HEALPix sky index against a scan of the
whole target index, on local disk, moto, and moto behind a latency proxy.

    python tools/bench/search.py [--targets 1000000] [--sectors 26] [--latency 0.02] [--repeats 5] [--json out.json]

The archive: one real light curve ingested (``tools/bench/run.py``'s template, TESS SPOC 2-min
sector 1), then a catalog commit writing ``--targets`` synthetic index lines (positions uniform
over the sphere, TESSMAG 6-16, camera by Dec band, CCD at random) into ``--sectors`` synthetic
observations (RA strips, each pinned to the real family's snapshot: a search reads the index and
the catalog, never the groups). Each query opens the archive afresh (cold: the catalog
repository's open is in the time) or reuses one ``Archive`` (warm). The peer is what a search
without the sky index does: read every target-index bucket, then astropy's separation over all
lines. A second peer is LSDB (the HATS catalog TESS light curves are published in): the same
lines written with ``lsdb.from_dataframe(...).to_hats``, uploaded, and searched with
``read_hats(...).cone_search(...).compute()`` (cold: ``read_hats`` in the time; warm: one catalog
object reused). Counts of requests and bytes come from the moto server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord

import lcarchive
from lcarchive.store import ArchiveStore, FamilyPin
from tools.bench.latency_proxy import LatencyProxy
from tools.bench.moto_counter import SubprocessCountingMotoServer
from tools.bench.run import TEMPLATE, machine

RADII = (0.01, 0.1, 1.0, 5.0, 12.0)
"""Cone radii, deg: a star, a cluster, a few pixels of the sky index, a TESS camera's half width."""


def synthetic_lines(n: int, sectors: int, seed: int = 1) -> pd.DataFrame:
    """Index lines of ``n`` targets spread uniformly over the sphere, one observation each."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    sector = (ra / 360 * sectors).astype(np.int64) + 1
    return pd.DataFrame(
        {
            "target": np.arange(1, n + 1, dtype=np.int64) + 4_000_000_000,
            "observation": [f"tess-spoc-2min-s{s:04d}" for s in sector],
            "row": np.zeros(n, dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "mission": "tess",
            "product": "spoc-2min",
            "segment": sector,
            "current": True,
            "n_cadences": np.full(n, 20_076, dtype=np.int64),
            "coverage": rng.uniform(0.8, 1.0, n),
            "magnitude": rng.uniform(6, 16, n),
            "camera": np.clip(((dec + 90) / 45).astype(np.int64) + 1, 1, 4),
            "ccd": rng.integers(1, 5, n),
        }
    )


def build(root: str, lines: pd.DataFrame, sectors: int) -> dict:
    """Ingest the template, then write the synthetic observations' pins and index lines in one
    catalog commit; return the seconds each step took."""
    t0 = time.perf_counter()
    report = lcarchive.Archive(root).ingest([str(TEMPLATE)])
    assert report.ok, report.skipped
    ingest_s = time.perf_counter() - t0
    store = ArchiveStore(root)
    real = store.pin("tess-spoc-2min-s0001")
    assert real is not None
    entry = real.observations["tess-spoc-2min-s0001"]
    counts = lines["observation"].value_counts()
    pins = {}
    for s in range(1, sectors + 1):
        obs = f"tess-spoc-2min-s{s:04d}"
        pins[obs] = FamilyPin(
            snapshot=real.snapshot,
            observations={obs: {**entry, "id": obs, "segment": s, "n_targets": int(counts.get(obs, 0))}},
            datasets={obs: []},
            buckets=[],
        )
    t0 = time.perf_counter()
    store.change_catalog(
        lambda session: ArchiveStore.replace_catalog(session, pins, lines) or True,  # True: commit
        f"bench: {len(lines)} synthetic index lines in {sectors} observations",
    )
    return {"ingest_template_s": round(ingest_s, 2), "catalog_write_s": round(time.perf_counter() - t0, 2)}


def scan_cone(archive: lcarchive.Archive, ra: float, dec: float, radius: float) -> pd.DataFrame:
    """The peer: every target-index bucket read, then the exact cut over every line."""
    lines = archive.target_index()
    where = SkyCoord(lines["ra"].to_numpy() * u.deg, lines["dec"].to_numpy() * u.deg)
    return lines[SkyCoord(ra * u.deg, dec * u.deg).separation(where).deg <= radius]


def lsdb_peer(lines: pd.DataFrame, work: Path, places: dict, centres: list, server: SubprocessCountingMotoServer) -> dict:
    """LSDB cone searches over the same lines, as a HATS catalog on local disk and on the S3 places."""
    import fsspec
    import lsdb
    from upath import UPath

    t0 = time.perf_counter()
    local = work / "hats"
    lsdb.from_dataframe(lines, ra_column="ra", dec_column="dec").write_catalog(str(local))
    out: dict = {"write_s": round(time.perf_counter() - t0, 2), "version": lsdb.__version__}
    fs = fsspec.filesystem("s3")
    fs.put(str(local), "bench/hats", recursive=True)
    for name, (_, options) in places.items():
        endpoint = (options or {}).get("endpoint_url", server.endpoint)
        path = (
            UPath(local)
            if name == "local"
            else UPath(
                "s3://bench/hats",
                key=os.environ["AWS_ACCESS_KEY_ID"],
                secret=os.environ["AWS_SECRET_ACCESS_KEY"],
                client_kwargs={"endpoint_url": endpoint},
            )
        )
        cones = {}
        warm_catalog = lsdb.read_hats(path)
        for radius in RADII:
            cold, warm, found, requests = [], [], [], []
            for ra, dec in centres:
                server.reset_counts()
                t0 = time.perf_counter()
                hit = lsdb.read_hats(path).cone_search(ra, dec, radius * 3600).compute()
                cold.append(time.perf_counter() - t0)
                requests.append(server.total())
                t0 = time.perf_counter()
                again = warm_catalog.cone_search(ra, dec, radius * 3600).compute()
                warm.append(time.perf_counter() - t0)
                assert len(again) == len(hit)
                found.append(len(hit))
            cones[str(radius)] = {
                "cold_s": round(statistics.median(cold), 4),
                "warm_s": round(statistics.median(warm), 4),
                "lines_found": int(statistics.median(found)),
                "requests": int(statistics.median(requests)) if name != "local" else None,
            }
        out[name] = cones
        print(json.dumps({f"lsdb {name}": cones}), flush=True)
    return out


def measure(args: argparse.Namespace) -> dict:
    results: dict = {"config": vars(args).copy(), "machine": machine(), "places": {}}
    lines = synthetic_lines(args.targets, args.sectors)
    rng = np.random.default_rng(7)
    centres = [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-0.9, 0.9))))) for _ in range(args.repeats)]
    server = SubprocessCountingMotoServer()
    server.start()
    os.environ.update(server.environ())
    try:
        server.create_bucket("bench")
        proxy = LatencyProxy(server.endpoint, latency=args.latency)
        with tempfile.TemporaryDirectory(prefix="lcsearch-") as tmp:
            local = str(Path(tmp) / "archive")
            places = {
                "local": (local, None),
                "s3": ("s3://bench/search", None),
                f"s3+{args.latency * 1e3:.0f}ms": ("s3://bench/search", {"endpoint_url": proxy.url}),
            }
            built = {}
            for name, (root, options) in places.items():
                if root not in built:
                    built[root] = build(root, lines, args.sectors)
                results["places"][name] = place = {"build": built[root], "cone": {}}
                opts = {"client_kwargs": options} if options else None
                for radius in RADII:
                    cold, warm, found, requests, read = [], [], [], [], []
                    warm_archive = lcarchive.open_archive(root, opts)
                    warm_archive.search(cone=(0.0, 0.0, 0.01))  # the catalog opened once
                    for ra, dec in centres:
                        server.reset_counts()
                        t0 = time.perf_counter()
                        hit = lcarchive.open_archive(root, opts).search(cone=(ra, dec, radius))
                        cold.append(time.perf_counter() - t0)
                        requests.append(server.total())
                        read.append(server.bytes_sent())
                        t0 = time.perf_counter()
                        again = warm_archive.search(cone=(ra, dec, radius))
                        warm.append(time.perf_counter() - t0)
                        assert len(again) == len(hit)
                        found.append(len(hit))
                    place["cone"][str(radius)] = {
                        "cold_s": round(statistics.median(cold), 4),
                        "warm_s": round(statistics.median(warm), 4),
                        "lines_found": int(statistics.median(found)),
                        "requests": int(statistics.median(requests)) if name != "local" else None,
                        "bytes_read": int(statistics.median(read)) if name != "local" else None,
                    }
                ra, dec = centres[0]
                t0 = time.perf_counter()
                peer = scan_cone(lcarchive.open_archive(root, opts), ra, dec, 1.0)
                place["scan_peer_1deg_s"] = round(time.perf_counter() - t0, 3)
                ours = lcarchive.open_archive(root, opts).search(cone=(ra, dec, 1.0))
                assert set(zip(peer["target"], peer["observation"], strict=True)) == set(
                    zip(ours["target"], ours["observation"], strict=True)
                )
                many = lines.sample(args.positions, random_state=3)
                t0 = time.perf_counter()
                matched = warm_archive.search(cone=(many["ra"].to_numpy(), many["dec"].to_numpy(), 10 / 3600))
                place["many_positions"] = {
                    "positions": args.positions,
                    "radius_arcsec": 10,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "matched": len(matched),
                }
                print(json.dumps({name: place}), flush=True)
            if not args.skip_lsdb:
                results["lsdb"] = lsdb_peer(lines, Path(tmp), places, centres, server)
    finally:
        server.stop()
    return results


def report(r: dict) -> str:
    out = [f"# cone search, {r['config']['targets']:,} targets in {r['config']['sectors']} observations", ""]
    head = "| radius (deg) | " + " | ".join(f"{p} cold / warm (s)" for p in r["places"]) + " | lines | requests (s3) |"
    out += [head, "|" + "---|" * (len(r["places"]) + 3)]
    for radius in RADII:
        cells = [f"{v['cone'][str(radius)]['cold_s']:.3f} / {v['cone'][str(radius)]['warm_s']:.3f}" for v in r["places"].values()]
        first = next(iter(r["places"].values()))["cone"][str(radius)]
        s3 = r["places"].get("s3", {}).get("cone", {}).get(str(radius), {})
        out.append(f"| {radius} | " + " | ".join(cells) + f" | {first['lines_found']} | {s3.get('requests')} |")
    if "lsdb" in r:
        out += [
            "",
            f"LSDB {r['lsdb']['version']} (HATS catalog of the same lines, written in {r['lsdb']['write_s']:.0f} s):",
            "",
            "| radius (deg) | " + " | ".join(f"{p} cold / warm (s)" for p in r["places"]) + " | lines | requests (s3) |",
            "|" + "---|" * (len(r["places"]) + 3),
        ]
        for radius in RADII:
            cells = [
                f"{r['lsdb'][p][str(radius)]['cold_s']:.3f} / {r['lsdb'][p][str(radius)]['warm_s']:.3f}" for p in r["places"]
            ]
            out.append(
                f"| {radius} | " + " | ".join(cells) + f" | {r['lsdb']['local'][str(radius)]['lines_found']} | "
                f"{r['lsdb'].get('s3', {}).get(str(radius), {}).get('requests')} |"
            )
    out.append("")
    for name, v in r["places"].items():
        out.append(
            f"- {name}: scan of the whole index, 1 deg cone {v['scan_peer_1deg_s']:.2f} s; "
            f"{v['many_positions']['positions']} positions (10 arcsec) in one call {v['many_positions']['seconds']:.2f} s; "
            f"catalog write {v['build']['catalog_write_s']:.1f} s"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--sectors", type=int, default=26)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--skip-lsdb", action="store_true", help="leave out the LSDB peer")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = measure(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
