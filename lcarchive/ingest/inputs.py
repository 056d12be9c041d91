"""Inputs of an ingest: folders, globs and object-store prefixes expanded into files."""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterable

from lcarchive.catalog.content import ignored_suffixes
from lcarchive.errors import StoreError
from lcarchive.formats.tables import TABLE_SUFFIXES

__all__ = ["LIGHTCURVE_SUFFIXES", "expand_inputs"]


LIGHTCURVE_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".h5", ".hdf5", ".json")
"""Files a directory is searched for (``.json``: SkyPortal photometric series). CSV/Parquet
tables need a table map and are read only when named."""


def expand_inputs(
    inputs: Iterable[str],
    storage_options: dict | None = None,
    empty: list[tuple[str, str]] | None = None,
    ignored: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Expand folders (recursively), object-store prefixes and globs into files.

    A local folder or an object-store prefix (``s3://stpubdata/tess/public/tid/s0001/``, any
    fsspec URL that can be listed) gives its files named with ``LIGHTCURVE_SUFFIXES``, leaving
    out Zarr stores (folders holding a ``zarr.json``); a glob (``*``, ``?``, ``[``) gives the
    files it matches, locally or in a bucket. A URL naming a light-curve file, and ``http(s)://``
    URLs, are kept as given.

    Parameters
    ----------
    inputs : iterable of str
        Paths, folders, globs or URLs.
    storage_options : dict, optional
        fsspec options for listing URLs (``{"anon": True}`` for a public bucket).
    empty : list, optional
        Receives ``(input, reason)`` for each folder, prefix or glob that gives no file, and for
        each URL that cannot be listed (no such bucket, access denied...), which is then skipped.
    ignored : list, optional
        Receives ``(file, what)`` for each file a folder, prefix or glob gives that is no light
        curve by its name (``catalog/inputs.json``: ``*_tp.fits`` target pixel files...); such files
        are left out. Files named explicitly are always kept.

    Returns
    -------
    list of str
        Files in the order given, each folder's sorted; duplicates dropped. A path that matches
        nothing is returned as is, so that reading it reports "no such file" against its name.

    Raises
    ------
    lcarchive.errors.StoreError
        An object-store URL that cannot be listed (no such bucket, access denied, unreachable),
        when ``empty`` is not given.
    """
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            try:
                found = _expand_url(item, storage_options)
            except StoreError as exc:  # an input that cannot be listed: that input's reason, the others go on
                if empty is None:
                    raise
                empty.append((item, exc.reason))
                continue
        else:
            found = _expand_local(item.removeprefix("file://"))
        if found:
            suffixes = ignored_suffixes()
            kept = []
            for path in found:
                what = next((w for suffix, w in suffixes.items() if path.lower().endswith(suffix)), None)
                if what is None:
                    kept.append(path)
                elif ignored is not None:
                    ignored.append((path, what))
            found = kept
        if found is None:
            out.append(item)
        elif found:
            out.extend(found)
        elif empty is not None:
            kind = "glob" if any(ch in item for ch in "*?[") else "folder"
            empty.append((item, f"no light-curve files in this {kind} (looked for {', '.join(LIGHTCURVE_SUFFIXES)})"))
    return list(dict.fromkeys(out))


def _expand_local(path: str) -> list[str] | None:
    """Files of a local folder or glob; None for a path that is neither (kept as given)."""
    if os.path.isdir(path):
        files: list[str] = []
        for root, dirs, names in os.walk(path):
            if "zarr.json" in names:
                dirs.clear()
                continue
            dirs.sort()
            files.extend(os.path.join(root, f) for f in sorted(names) if f.lower().endswith(LIGHTCURVE_SUFFIXES))
        return files
    if any(ch in path for ch in "*?["):
        return [m for m in sorted(_glob.glob(path, recursive=True)) if os.path.isfile(m)]
    return None


def _expand_url(url: str, storage_options: dict | None) -> list[str] | None:
    """Objects under an object-store prefix or matching a glob; None for a URL naming one file."""
    scheme = url.split("://", 1)[0].lower()
    globbed = any(ch in url.split("://", 1)[1] for ch in "*?[")
    if scheme in ("http", "https") or (not globbed and url.lower().endswith(LIGHTCURVE_SUFFIXES + TABLE_SUFFIXES)):
        return None
    import fsspec

    from lcarchive.clients import bucket_exists, store_errors

    with store_errors(url):
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        if scheme == "s3" and not bucket_exists(fs, path.split("/", 1)[0]):
            raise FileNotFoundError(f"NoSuchBucket: {path.split('/', 1)[0]}")
        if globbed:
            paths = [p for p, info in sorted(fs.glob(path, detail=True).items()) if info.get("type") != "directory"]
        else:
            if not fs.isdir(path):
                return [] if url.endswith("/") else None  # a prefix named as such, holding nothing
            paths = sorted(fs.find(path))
            stores = {p.rsplit("/", 1)[0] for p in paths if p.endswith("/zarr.json")}
            paths = [p for p in paths if not any(p.startswith(f"{z}/") for z in stores)]
    return [fs.unstrip_protocol(p) for p in paths if p.lower().endswith(LIGHTCURVE_SUFFIXES)]
