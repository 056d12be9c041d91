#!/usr/bin/env python
"""How long ``lcarchive gc`` takes on a small real archive, as an operator runs it (issue 20).

    python tools/bench/gc_time.py [--repeats 3] [--baseline DIR] [--profile] [--json out.json]

(named ``gc_time``, not ``gc``: a script's folder comes first on ``sys.path`` and would shadow
the standard library's ``gc``). It ingests every light curve of ``../shared/data/lightcurves``
(the files of ``bad/`` are refused, as they should be) into a local archive in three versions
(the first tagged ``dr1``; the later ones append to groups of the first, rewriting their
shards), then, on a fresh copy of that archive each time, times:

- ``import``: ``python -c "import lcarchive.cli"`` (what every CLI call pays first);
- ``cli, nothing expires``: ``lcarchive gc ROOT --older-than 0`` with the default safety bound of
  a day (everything is younger: nothing is expired or deleted, only the pin tags are written);
- ``cli, expiring``: the same with ``LCARCHIVE_GC_SAFETY_SECONDS=0``: the untagged middle
  version and the group snapshots no kept version pins are expired, their objects deleted;
- ``cli, again``: that once more on the same copy (nothing left to expire);
- ``in-process ...``: ``Archive(root).collect_garbage(timedelta(0))`` alone, timed inside a
  process that has imported lcarchive already, for the same three cases.

Each measure is run in a child process so that ``--baseline DIR`` (a checkout of lcarchive's
package, e.g. ``git archive HEAD~1 lcarchive | tar -x -C DIR``) runs the same measures against
the code before a change, back to back (``PYTHONPATH=DIR``). Times are medians of
``--repeats``. ``--profile`` prints cProfile's top functions of one in-process expiring gc.

Figures of 2026-12-07 (2 cores, loaded by two test runs; 53 files, 27 groups in 24 family
repositories + the catalog, 5 versions; local disk; medians of 3), before -> after gc collected
the repositories 8 at once (commit 7b03113):

    import lcarchive.cli           7.74 -> 7.41 s
    cli, nothing expires           8.14 -> 8.98 s
    cli, expiring (440 objects)    7.57 -> 6.53 s
    cli, again                     9.64 -> 8.58 s
    in-process, nothing expires    1.38 -> 1.53 s
    in-process, expiring           1.20 -> 1.12 s
    in-process, again              1.08 -> 1.01 s

On local disk gc's own work is about a second either way (CPU-bound on 2 cores); the CLI's wall
time is the import of lcarchive (2.3-3.5 s unloaded, 7-8 s on this loaded machine: ``lcarchive
gc --help`` alone took 3.7-4 s). On moto S3 the work is icechunk's ``garbage_collect``, some
470 LIST and GET requests per repository (it lists each object folder by prefix): 46 of 52 s
sequentially before, each repository ~2 s. Collecting 8 repositories at once was slower there
(one round: in-process expiring 68.5 -> 73.2 s, cli expiring 75.1 -> 84.8 s; moto's LISTs
scan the bucket in one process) and no faster on local disk, so it was reverted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("LCARCHIVE_TEST_DATA", REPO.parent / "shared" / "data" / "lightcurves"))
BIN = Path(sys.executable).parent

INPROCESS = """
import datetime as dt, json, sys, time
t0 = time.perf_counter()
import lcarchive
t1 = time.perf_counter()
profile = sys.argv[2] == "1"
if profile:
    import cProfile, pstats
    prof = cProfile.Profile(); prof.enable()
t2 = time.perf_counter()
stats = lcarchive.Archive(sys.argv[1]).collect_garbage(dt.timedelta(0))
t3 = time.perf_counter()
if profile:
    prof.disable()
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
print(json.dumps({"import": t1 - t0, "gc": t3 - t2, "versions_expired": stats["versions_expired"],
                  "snapshots_expired": stats["snapshots_expired"], "objects_deleted": stats["objects_deleted"]}))
"""


def inputs() -> list[list[str]]:
    """Three batches of every light curve of DATA: the first file of each folder, the second ones,
    the rest."""
    batches: list[list[str]] = [[], [], []]
    for folder in sorted(p for p in DATA.rglob("*") if p.is_dir()):
        files = sorted(str(f) for f in folder.iterdir() if f.is_file() and f.suffix in (".fits", ".h5", ".gz"))
        for i, f in enumerate(files):
            batches[min(i, 2)].append(f)
    return batches


def build(root: Path) -> dict:
    sys.path.insert(0, str(REPO))
    import lcarchive

    archive = lcarchive.Archive(str(root))
    batches = inputs()
    t0 = time.perf_counter()
    reports = [archive.ingest(batches[0])]
    archive.tag("dr1")
    reports += [archive.ingest(b) for b in batches[1:]]
    seconds = time.perf_counter() - t0
    from lcarchive.store.archive_store import ArchiveStore

    return {
        "files": sum(map(len, batches)),
        "ingest_seconds": round(seconds, 1),
        "groups": len(archive.observations),
        "repositories": len(ArchiveStore(str(root)).families_in_store()) + 1,
        "skipped": sum(len(r.skipped) for r in reports),
        "versions": len(archive.history()),
    }


AWS: dict[str, str] = {}
"""The AWS variables of the moto server of ``--s3`` (empty: local disk)."""


def env(code: str | None, safety: int | None) -> dict:
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LCARCHIVE_GC_SAFETY_SECONDS")}
    out.update(AWS)
    if code:
        out["PYTHONPATH"] = code
    if safety is not None:
        out["LCARCHIVE_GC_SAFETY_SECONDS"] = str(safety)
    return out


def timed(cmd: list[str], e: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=e)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr}")
    return seconds, done.stdout


def copy_of(template: Path, work: Path, name: str) -> str:
    """A fresh copy of the template archive: a local folder, or a prefix of the moto bucket."""
    if not AWS:
        copy = work / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(template, copy, symlinks=True)
        return str(copy)
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=AWS["AWS_ENDPOINT_URL"], key="testing", secret="testing")
    with contextlib.suppress(FileNotFoundError):
        fs.rm(f"gcbench/{name}", recursive=True)
    fs.put(f"{template}/", f"gcbench/{name}", recursive=True)
    return f"s3://gcbench/{name}"


def measure(template: Path, work: Path, code: str | None) -> dict:
    """One round of every measure against a fresh copy of the template, with the code at ``code``
    (None: this checkout's)."""
    out: dict[str, float] = {}
    out["import"], _ = timed([sys.executable, "-c", "import lcarchive.cli"], env(code, None))
    for how in ("cli", "in-process"):
        copy = copy_of(template, work, f"{how}-{code is not None}")
        for case, safety in (("nothing expires", None), ("expiring", 0), ("again", 0)):
            if how == "cli":
                out[f"cli, {case}"], text = timed([str(BIN / "lcarchive"), "gc", copy, "--older-than", "0"], env(code, safety))
                out[f"cli, {case} [output]"] = text.strip()
            else:
                _, text = timed([sys.executable, "-c", INPROCESS, copy, "0"], env(code, safety))
                result = json.loads(text)
                out[f"in-process, {case}"] = result["gc"]
                out[f"in-process, {case} [output]"] = {k: v for k, v in result.items() if k not in ("gc", "import")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="a folder holding the lcarchive package to compare against (PYTHONPATH)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of one expiring gc")
    parser.add_argument("--s3", action="store_true", help="the archive on a moto S3 server (its own process)")
    parser.add_argument("--template", type=Path, help="reuse this archive built by an earlier run (not modified)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lcarchive-gc-bench-") as tmp:
        work = Path(tmp)
        template = args.template or work / "template"
        built = {"template": str(template)} if args.template else build(template)
        server = None
        if args.s3:
            sys.path.insert(0, str(REPO))
            from tools.bench.moto_counter import CREDENTIALS, SubprocessCountingMotoServer

            server = SubprocessCountingMotoServer()
            server.start()
            server.create_bucket("gcbench")
            AWS.update(CREDENTIALS, AWS_ENDPOINT_URL=server.endpoint)
        print(f"archive: {built}", flush=True)
        codes = [("before", str(Path(args.baseline).resolve()))] if args.baseline else []
        codes.append(("after" if args.baseline else "this checkout", None))
        rounds: dict[str, list[dict]] = {label: [] for label, _ in codes}
        for _ in range(args.repeats):
            for label, code in codes:  # interleaved: the machine's load falls on both alike
                rounds[label].append(measure(template, work, code))
        results = {"archive": built, "repeats": args.repeats}
        names = [k for k in rounds[codes[0][0]][0] if not k.endswith("[output]")]
        print(f"{'seconds (median of ' + str(args.repeats) + ')':34}" + "".join(f"{label:>15}" for label, _ in codes))
        for name in names:
            row = {label: statistics.median(r[name] for r in rounds[label]) for label, _ in codes}
            results[name] = row
            print(f"{name:34}" + "".join(f"{row[label]:15.2f}" for label, _ in codes))
        for name in (k for k in rounds[codes[-1][0]][0] if k.endswith("[output]")):
            print(f"{name}: {rounds[codes[-1][0]][0][name]}")
        if args.profile:
            copy = copy_of(template, work, "profiled")
            subprocess.run([sys.executable, "-c", INPROCESS, copy, "1"], env=env(None, 0))
        if server is not None:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
