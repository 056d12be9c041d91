"""The package as a library: importing it changes nothing of its caller's process."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


LAZY = """
import sys
import lcarchive
heavy = ["astropy.io.fits", "lcarchive.ingest", "lcarchive.archive", "lcarchive.formats", "xarray", "zarr", "icechunk"]
print(repr([m for m in heavy if m in sys.modules]))
import lcarchive.cli
print(repr([m for m in heavy if m in sys.modules]))
archive = lcarchive.open_archive  # a public name imports its module, and the accessor with it
import xarray
print(repr(("lcarchive.archive" in sys.modules, hasattr(xarray.Dataset, "lc"), sorted(lcarchive.__all__) == sorted(
    n for n in dir(lcarchive) if n in lcarchive.__all__))))
"""


def test_importing_lcarchive_or_its_command_imports_no_heavy_module():
    """``import lcarchive`` (and the command's module, for ``lcarchive --help``) import neither the
    archive, the ingest, astropy's FITS reader nor zarr: public names are imported on first use."""
    result = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=300, check=True)
    package, command, used = (eval(line) for line in result.stdout.strip().splitlines()[-3:])  # noqa: S307 (our own reprs)
    assert package == [], package
    assert command == [], command
    assert used == (True, True, True)


def test_every_public_name_resolves():
    import lcarchive

    for name in lcarchive.__all__:
        assert getattr(lcarchive, name) is not None, name
    assert lcarchive.open_archive.__module__ == "lcarchive.archive"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = lcarchive.no_such_name


def test_zarr_internals_are_used_through_one_module():
    """zarr's private and semi-private APIs (``zarr.core``, ``zarr.abc``, ``store_path``,
    ``encode_chunk_key``) are used in lcarchive/zarr_internals.py alone."""
    import re
    from pathlib import Path

    import lcarchive

    root = Path(lcarchive.__file__).parent
    used = re.compile(
        r"^\s*(from|import)\s+zarr\.(core|abc)\b|zarr\.core\.[\w.]+\(|[\"']zarr\.core\.|\.store_path\b|\.encode_chunk_key\(", re.M
    )
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if used.search(p.read_text()))
    assert found == ["zarr_internals.py"], found
