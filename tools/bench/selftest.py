#!/usr/bin/env python
"""Quick self-test of the benchmark's building blocks.

    python tools/bench/selftest.py [--n-targets 20] [--workdir DIR] [--keep]

1. makes N synthetic targets from the SPOC 2-min template (tools/synth.py) and checks that
   lightkurve reads one;
2. checks the request counter of a moto S3 server (tools/bench/moto_counter.py);
3. runs every peer -- FITS and HDF5 on moto S3 and on local disk, PostgreSQL on a server
   started for it -- loads the N files, checks that every target reads back equal to its
   source file, and prints load / point-read / scan timings, bytes stored and the requests a
   point read and a scan make at the S3 endpoint.

Exits non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench.moto_counter import CountingMotoServer  # noqa: E402
from tools.bench.moto_counter import self_check as counter_self_check  # noqa: E402
from tools.bench.peers import FitsPeer, HDF5Peer, Peer, PostgresPeer, read_fits_lightcurve  # noqa: E402
from tools.synth import make_observation  # noqa: E402

TEMPLATE = ROOT.parent / "shared/data/lightcurves/spoc-2min/tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
KEYS = ("time", "flux", "flux_err", "quality")


def check_equal(peer: Peer, got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    for k in KEYS:
        a, b = want[k], got[k]
        if a.shape != b.shape:
            raise AssertionError(f"{peer.name} {what} {k}: shape {b.shape} != {a.shape}")
        if k == "time" and isinstance(peer, HDF5Peer):
            # stored as MJD = time + (BJDREF - 2400000.5): equal to float64 rounding of the sum
            ok = np.allclose(b, a, rtol=0, atol=1e-8, equal_nan=True) and np.array_equal(np.isnan(a), np.isnan(b))
        else:
            ok = np.array_equal(a.astype(b.dtype), b, equal_nan=a.dtype.kind == "f")
        if not ok:
            raise AssertionError(f"{peer.name} {what} {k}: values differ from the source file")


def run_peer(
    peer: Peer, where: str, files: list[Path], sources: dict, observation: str, server: CountingMotoServer | None
) -> dict:
    on_s3 = server is not None
    row: dict = {"peer": peer.name, "where": where}

    if on_s3:
        server.reset_counts()
    t = time.perf_counter()
    peer.load(files)
    row["load_s"] = time.perf_counter() - t
    if on_s3:
        row["load_requests"] = server.total()

    # correctness: every target, every column
    for target, want in sources.items():
        check_equal(peer, peer.read_target(target, observation), want, f"target {target}")

    # point reads: median over all targets, each measured alone
    times = []
    for target in sources:
        gc.collect()
        t = time.perf_counter()
        peer.read_target(target, observation)
        times.append(time.perf_counter() - t)
    row["read_ms"] = 1000 * statistics.median(times)

    # requests of one point read
    first = next(iter(sources))
    if on_s3:
        server.reset_counts()
        peer.read_target(first, observation)
        row["read_requests"] = server.counts()
        row["read_bytes_sent"] = server.bytes_sent()

    if on_s3:
        server.reset_counts()
    t = time.perf_counter()
    nbytes = peer.scan(observation)
    row["scan_s"] = time.perf_counter() - t
    row["scan_bytes"] = nbytes
    want_bytes = sum(sum(v[k].nbytes for k in KEYS) for v in sources.values())
    if peer.name == "postgres":  # stores flux/flux_err as float8: twice the float32 source
        want_bytes = sum(v["time"].nbytes * 3 + v["quality"].nbytes for v in sources.values())
    if nbytes != want_bytes:
        raise AssertionError(f"{peer.name} scan read {nbytes} bytes, expected {want_bytes}")
    if on_s3:
        row["scan_requests"] = server.counts()
        row["scan_bytes_sent"] = server.bytes_sent()

    row["stored_bytes"] = peer.stored_bytes()
    return row


def fmt_counts(c: dict | None) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(c.items())) if c else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-targets", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="lcbench-selftest-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        # 1. synthetic observation
        t = time.perf_counter()
        files = make_observation(TEMPLATE, work / "synth", args.n_targets, seed=0)
        print(
            f"synth: {len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB "
            f"in {time.perf_counter() - t:.2f} s  ({files[0].name} ...)"
        )
        sources = {}
        for f in files:
            lc = read_fits_lightcurve(f)
            sources[lc.target] = lc.arrays
        observation = lc.observation
        assert len(sources) == len(files), "synthetic target IDs are not unique"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lightkurve

            klc = lightkurve.read(files[0])
        first = sources[next(iter(sources))]
        assert int(klc.meta["TARGETID"]) == next(iter(sources)), klc.meta["TARGETID"]
        # lightkurve drops NaN-time and default-bitmask cadences; the rest is the file's PDCSAP_FLUX
        rows_kept = np.searchsorted(first["cadenceno"], np.asarray(klc.cadenceno))
        assert np.array_equal(np.asarray(klc.flux.value, dtype=np.float32), first["flux"][rows_kept], equal_nan=True)
        print(f"lightkurve.read: {type(klc).__name__} TIC {klc.meta['TARGETID']}, {len(klc)} cadences; observation {observation}")

        # 2. request counter
        counter_self_check()

        # 3. peers
        with CountingMotoServer() as server:
            bucket = server.create_bucket("lcbench")
            so = server.storage_options
            for where, make in [
                ("s3", lambda: [FitsPeer(f"{bucket}/fits", so), HDF5Peer(f"{bucket}/hdf5", so)]),
                ("local", lambda: [FitsPeer(work / "local" / "fits"), HDF5Peer(work / "local" / "hdf5")]),
            ]:
                for peer in make():
                    with peer:
                        rows.append(run_peer(peer, where, files, sources, observation, server if where == "s3" else None))
                    print(f"  {peer.name:8s} {where:6s} ok")
        t = time.perf_counter()
        with PostgresPeer() as peer:
            print(f"  postgres server up in {time.perf_counter() - t:.2f} s (PostgreSQL in {peer.server.bindir})")
            rows.append(run_peer(peer, "server", files, sources, observation, None))
            print(f"  {peer.name:8s} server ok")

        # report
        print()
        print(f"{args.n_targets} targets of {observation} ({len(next(iter(sources.values()))['time'])} cadences)")
        head = (
            f"{'peer':9s} {'where':7s} {'load s':>7s} {'read ms':>8s} {'scan s':>7s} {'stored MB':>10s} "
            f"{'scan MB':>8s}  {'requests: 1 read_target':26s} {'bytes sent':>10s}  requests: scan"
        )
        print(head)
        print("-" * len(head))
        for r in rows:
            print(
                f"{r['peer']:9s} {r['where']:7s} {r['load_s']:7.2f} {r['read_ms']:8.1f} {r['scan_s']:7.2f} "
                f"{r['stored_bytes'] / 1e6:10.2f} {r['scan_bytes'] / 1e6:8.2f}  "
                f"{fmt_counts(r.get('read_requests')):26s} {r.get('read_bytes_sent', 0):>10d}  "
                f"{fmt_counts(r.get('scan_requests'))}"
            )
        fits_s3 = next(r for r in rows if r["peer"] == "fits" and r["where"] == "s3")
        print()
        print(
            f"FitsPeer.read_target on S3: {fits_s3['read_requests']} = {sum(fits_s3['read_requests'].values())} "
            f"request(s), {fits_s3['read_bytes_sent']} bytes sent by the server "
            f"(file size {files[0].stat().st_size})"
        )
        print("selftest passed")
        return 0
    finally:
        if args.keep or args.workdir:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
