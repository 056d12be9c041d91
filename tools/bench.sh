#!/usr/bin/env bash
# The benchmarks, in one command: sets up .venv with the bench extras (tables, psycopg, moto) and
# PostgreSQL from Debian's packages if missing, then runs one (arguments passed on).
#   bash tools/bench.sh                      read/scan/ingest vs FITS, SkyPortal HDF5, PostgreSQL (tools/bench/run.py)
#   bash tools/bench.sh --json results.json  also keep the raw figures
#   bash tools/bench.sh --download [...]     lcarchive download vs s3fs copies and FITS downloads (tools/bench/download.py)
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh" "bench"
cd "$LCARCHIVE_ROOT"
if [ "${1:-}" = "--download" ]; then
    shift
    exec python tools/bench/download.py "$@"
fi
python tools/bench/run.py "$@"
