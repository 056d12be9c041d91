"""The package as a library: importing it changes nothing of its caller's process."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import logging, warnings
import astropy.table, astropy.io.fits, numcodecs, numpy, pandas, xarray, zarr, icechunk   # their own filters first
before, levels = list(warnings.filters), {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict}
import lcarchive, lcarchive.archive, lcarchive.compute, lcarchive.downloads, lcarchive.search, lcarchive.store.reader
import lcarchive.xarray_backend, lcarchive.integrity, lcarchive.export
added = [f for f in warnings.filters if f not in before]
changed = {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict if logging.getLogger(n).level != levels.get(n, 0)}
print(repr((added, changed)))
"""


def test_importing_lcarchive_installs_no_warning_filter_or_log_level():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, check=True)
    added, changed = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 (our own repr of lists and dicts)
    assert added == [] and changed == {}, (added, changed)
