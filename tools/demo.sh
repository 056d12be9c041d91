#!/usr/bin/env bash
# The main job: ingest light curves into a local archive, print the catalog summary and
# open one observation with xarray (lcarchive's backend).
#   bash tools/demo.sh                 ingest ../shared/data/lightcurves (if present) into ./demo-archive
#   bash tools/demo.sh FILE|DIR|URL... ingest those instead
# ARCHIVE=/path or s3://bucket/prefix picks another archive.
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh" ""
cd "$LCARCHIVE_ROOT"
ARCHIVE="${ARCHIVE:-$LCARCHIVE_ROOT/demo-archive}"
if [ "$#" -gt 0 ]; then
    inputs=("$@")
elif [ -d "$LCARCHIVE_ROOT/../shared/data/lightcurves" ]; then
    inputs=("$LCARCHIVE_ROOT/../shared/data/lightcurves")
else
    echo "no ../shared/data/lightcurves here: give light-curve files, folders or URLs to ingest" >&2
    exit 2
fi
status=0
lcarchive ingest "$ARCHIVE" "${inputs[@]}" || status=$?
# name this version, as a data release is named: the README's version="dr1" reads it (a re-run keeps the first)
lcarchive history "$ARCHIVE" | grep -qw dr1 || lcarchive tag "$ARCHIVE" dr1
lcarchive catalog show "$ARCHIVE"
python - "$ARCHIVE" <<'PY'
import json, subprocess, sys
import xarray as xr

listing = json.loads(subprocess.run(["lcarchive", "ls", sys.argv[1], "--json"], check=True, capture_output=True, text=True).stdout)
if not listing:
    sys.exit("the archive holds no observation")
first = max(listing, key=lambda o: o["n_targets"])
print(f"\nxarray.open_dataset({first['url']!r}, engine='lcarchive', group={first['id']!r}):")
print(xr.open_dataset(first["url"], engine="lcarchive", group=first["id"]))
PY
# Files skipped (bad or not yet supported) were listed above; ingest exits 1 in that case.
exit 0
