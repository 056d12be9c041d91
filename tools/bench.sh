#!/usr/bin/env bash
# The benchmark, in one command: sets up .venv with the bench extras (tables, psycopg, moto) and
# PostgreSQL from Debian's packages if missing, then runs tools/bench/run.py (arguments passed on).
#   bash tools/bench.sh                      1000 synthetic targets, results printed as Markdown
#   bash tools/bench.sh --json results.json  also keep the raw figures
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh" "bench"
cd "$LCARCHIVE_ROOT"
python tools/bench/run.py "$@"
