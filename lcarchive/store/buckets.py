"""The catalog repository's JSON buckets: where a pin or an index line goes, and its text.

This module owns the three string arrays of the catalog root (``docs/format.md``) and is the only
code that encodes or decodes their texts:

- ``families`` (``family_buckets`` chunks): a bucket holds ``{family: pin}`` for the families whose
  ID hashes to it (CRC-32, :func:`family_bucket`), keys sorted (:class:`~lcarchive.store.models.FamilyPin`);
- ``targets`` (``target_buckets`` chunks): a bucket holds the index lines of the targets whose
  ID falls in it (:func:`target_bucket`), column-wise (one JSON list per column of
  :class:`~lcarchive.store.models.IndexLine`, NaN as null), sorted by (target, observation);
- ``sky`` (:data:`lcarchive.layout.sky.SKY_PIXELS` chunks): the same lines by HEALPix pixel of
  the target's position, what a cone search reads.

The bucket counts are the catalog root's attributes ``family_buckets`` and ``target_buckets``
(written when the archive is created), or the arrays' shapes in an archive without them
(:func:`bucket_counts`); :data:`FAMILY_BUCKETS` and :data:`TARGET_BUCKETS` are only what a new
archive gets. The functions taking a session read and write the buckets in a writable
session of the catalog repository (an ingest's or a repair's catalog commit).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from lcarchive.catalog.index import COLUMNS, DEFAULTS, OMITTED_WHEN_DEFAULT, real_magnitudes
from lcarchive.clients import RetryingStore
from lcarchive.layout.sky import SKY_ORDER, SKY_PIXELS, pixels_of
from lcarchive.store.models import FamilyPin

__all__ = [
    "FAMILY_BUCKETS",
    "INDEX_COLUMNS",
    "TARGET_BUCKETS",
    "BucketCounts",
    "bucket_counts",
    "create_catalog_arrays",
    "decode_index",
    "decode_pins",
    "empty_index",
    "encode_index",
    "encode_pins",
    "family_bucket",
    "index_columns",
    "read_buckets",
    "read_pins",
    "replace_catalog",
    "target_bucket",
    "update_index",
    "update_pins",
    "upsert",
    "write_buckets",
]

FAMILY_BUCKETS = 256
"""Buckets of the pins of a new archive (an archive's own count: :func:`bucket_counts`)."""
TARGET_BUCKETS = 1024
"""Buckets of the target index of a new archive (an archive's own count: :func:`bucket_counts`)."""
INDEX_COLUMNS = COLUMNS
"""Columns of the target index: one line per (target, observation group)."""

CHECKED = [ZstdCodec(level=3), Crc32cCodec()]
"""Codecs of the catalog arrays: a damaged bucket is an error, never a wrong pin or index line."""


def family_bucket(family: str, n: int) -> int:
    """The bucket of ``n`` holding a family's pin (CRC-32 of its ID)."""
    return zlib.crc32(family.encode()) % n


def target_bucket(target: int, n: int) -> int:
    """The bucket of ``n`` holding a target's index lines."""
    return int(target) % n


@dataclass(frozen=True)
class BucketCounts:
    """An archive's bucket counts (of its ``families`` and ``targets`` arrays)."""

    families: int
    targets: int

    def family(self, family: str) -> int:
        """The bucket holding a family's pin."""
        return family_bucket(family, self.families)

    def target(self, target: int) -> int:
        """The bucket holding a target's index lines."""
        return target_bucket(target, self.targets)

    def targets_of(self, targets: Iterable[int]) -> list[int]:
        """The buckets holding some targets' index lines, sorted, each once."""
        return sorted({target_bucket(t, self.targets) for t in targets})


def bucket_counts(store: Any) -> BucketCounts:
    """The bucket counts of the catalog in a zarr ``store`` (a catalog session's): the root's
    attributes, or the arrays' shapes in a catalog written without them."""
    root = zarr.open_group(store, mode="r")
    attrs = root.attrs
    counts = []
    for key, name in (("family_buckets", "families"), ("target_buckets", "targets")):
        value = attrs.get(key)
        counts.append(int(value) if isinstance(value, int) else zarr.open_array(store, path=name, mode="r").shape[0])
    return BucketCounts(*counts)


def create_catalog_arrays(root: zarr.Group, counts: BucketCounts) -> None:
    """Make the catalog's bucket arrays in a new catalog root, and record their counts in its attributes."""
    root.attrs.update({"family_buckets": counts.families, "target_buckets": counts.targets})
    root.create_array("families", shape=(counts.families,), chunks=(1,), dtype=str, fill_value="", compressors=CHECKED)
    root.create_array("targets", shape=(counts.targets,), chunks=(1,), dtype=str, fill_value="", compressors=CHECKED)
    create_sky(root)


def create_sky(root: zarr.Group) -> zarr.Array:
    """Make the catalog's ``sky`` array anew (empty)."""
    array = root.create_array(
        "sky", shape=(SKY_PIXELS,), chunks=(1,), dtype=str, fill_value="", compressors=CHECKED, overwrite=True
    )
    array.attrs.update({"healpix_order": SKY_ORDER, "healpix_numbering": "nested", "frame": "icrs"})
    return array


# -- the pins' texts ---------------------------------------------------------------------------
def decode_pins(text: str) -> dict[str, FamilyPin]:
    """The pins of a ``families`` bucket's text ("" holds none).

    Raises
    ------
    ValueError
        If the text is no JSON object of pins (``json.JSONDecodeError``, ``pydantic.ValidationError``).
    """
    if not text:
        return {}
    return {family: FamilyPin.from_stored(pin) for family, pin in json.loads(text).items()}


def encode_pins(pins: Mapping[str, FamilyPin | Mapping[str, Any]]) -> str:
    """A ``families`` bucket's text of some pins ("" for none): one JSON object, keys sorted."""
    if not pins:
        return ""
    stored = {f: p.stored() if isinstance(p, FamilyPin) else dict(p) for f, p in pins.items()}
    return json.dumps(stored, sort_keys=True, separators=(",", ":"))


# -- the index's texts -------------------------------------------------------------------------
def empty_index() -> pd.DataFrame:
    """A frame of no index lines, of the index's columns and dtypes."""
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in INDEX_COLUMNS.items()})


def decode_index(texts: Iterable[str]) -> pd.DataFrame:
    """The index lines of some buckets' texts, as one frame (the JSON columns joined first: one
    DataFrame for all, not one per bucket); columns a text lacks get their defaults."""
    joined: dict[str, list] = {k: [] for k in INDEX_COLUMNS}
    for text in texts:
        if not text:
            continue
        columns = json.loads(text)
        n = len(columns.get("target", []))
        for k in INDEX_COLUMNS:
            joined[k].extend(columns[k] if k in columns else [DEFAULTS[k]] * n)
    if not joined["target"]:
        return empty_index()
    frame = pd.DataFrame(joined)
    for name, dtype in INDEX_COLUMNS.items():
        if dtype == "float64":  # null (NaN) in JSON
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    frame["magnitude"] = real_magnitudes(frame["magnitude"].to_numpy())  # indexes written before sentinels were dropped
    return frame.astype(INDEX_COLUMNS)


def index_columns(text: str) -> dict[str, list]:
    """The columns of a bucket's text as JSON lists (columns an older text lacks filled with
    their defaults; NaN as None)."""
    columns = json.loads(text) if text else {}
    n = len(columns.get("target", []))
    out = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = columns[name] if name in columns else [DEFAULTS[name]] * n if n else []
        out[name] = [None if v is None or v != v else float(v) for v in values] if dtype == "float64" else values  # type: ignore[arg-type]  # a number (the column is float64)
    return out


def columns_by(lines: pd.DataFrame, keys: list[int]) -> dict[int, dict[str, list]]:
    """Index lines as JSON columns (NaN as None), grouped by a key per line (a bucket or pixel)."""
    if lines.empty:
        return {}
    columns = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = lines[name].tolist()
        columns[name] = [None if v != v else float(v) for v in values] if dtype == "float64" else values
    grouped: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        grouped.setdefault(int(key), []).append(i)
    return {key: {name: [values[i] for i in rows] for name, values in columns.items()} for key, rows in grouped.items()}


def upsert(text: str, new: dict[str, list] | None, replaced: set, dropped: set) -> tuple[str, dict[str, list]]:
    """A bucket's text with its lines of keys (target, observation) in ``replaced`` or of
    observations in ``dropped`` removed and the ``new`` lines added, sorted by (target,
    observation); and the lines removed. Plain lists, not a DataFrame per bucket: a catalog
    commit updates a few hundred buckets, and ``update_index`` of 256 lines into 20,000 took
    2.57 s that way against 0.67 s this way (docs/performance.md)."""
    columns = index_columns(text)
    gone = [(t, o) in replaced or o in dropped for t, o in zip(columns["target"], columns["observation"], strict=True)]
    removed = {k: [x for x, g in zip(v, gone, strict=True) if g] for k, v in columns.items()}
    columns = {k: [x for x, g in zip(v, gone, strict=True) if not g] + (new[k] if new else []) for k, v in columns.items()}
    order = sorted(range(len(columns["target"])), key=lambda i: (columns["target"][i], columns["observation"][i]))
    if not order:
        return "", removed
    return json.dumps(_stored({k: [v[i] for i in order] for k, v in columns.items()}), separators=(",", ":")), removed


def _stored(columns: dict[str, list]) -> dict[str, list]:
    """The columns a bucket's text holds: those of :data:`lcarchive.catalog.index.OMITTED_WHEN_DEFAULT`
    only when a line has a value other than the default (an archive of mission-catalog targets only
    stores its index as before they existed)."""
    return {k: v for k, v in columns.items() if k not in OMITTED_WHEN_DEFAULT or any(x != DEFAULTS[k] for x in v)}


def encode_index(frame: pd.DataFrame) -> str:
    """A bucket's text of some index lines ("" for none), sorted by (target, observation)."""
    if frame.empty:
        return ""
    frame = frame.sort_values(["target", "observation"], kind="stable")
    out = {}
    for name, dtype in INDEX_COLUMNS.items():
        values = frame[name].tolist()
        if dtype == "float64":
            values = [None if v != v else float(v) for v in values]  # NaN as null: valid JSON
        out[name] = values
    return json.dumps(_stored(out), separators=(",", ":"))


def sky_texts(lines: pd.DataFrame) -> dict[int, str]:
    """Sky buckets of some index lines (lines without a position are in none)."""
    pixels = pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy())
    return {int(p): encode_index(part) for p, part in lines.groupby(pixels, sort=True) if p >= 0}


# -- reading and writing buckets in a catalog session ------------------------------------------
def read_buckets(session: Any, name: str, buckets: Iterable[int]) -> dict[int, str]:
    """The texts of some buckets of the catalog array ``name`` (``families``, ``targets``, ``sky``)."""
    wanted = sorted(set(buckets))
    if not wanted:
        return {}
    array = zarr.open_array(RetryingStore(session.store), path=name, mode="r")
    values = array.get_coordinate_selection(np.asarray(wanted, dtype=np.int64))
    return {b: str(v) for b, v in zip(wanted, values, strict=True)}  # type: ignore[arg-type]  # zarr's selection returns an ndarray here


def write_buckets(session: Any, name: str, texts: dict[int, str]) -> None:
    """Write some buckets of the catalog array ``name``."""
    if not texts:
        return
    array = zarr.open_array(session.store, path=name, mode="r+")
    wanted = sorted(texts)
    array.set_coordinate_selection(np.asarray(wanted, dtype=np.int64), np.array([texts[b] for b in wanted], dtype=object))


def read_pins(session: Any, families: Iterable[str], counts: BucketCounts | None = None) -> dict[str, FamilyPin | None]:
    """Some families' pins in a catalog session (None for a family it has not), their buckets read at once."""
    counts = counts or bucket_counts(session.store)
    families = list(families)
    where = {f: counts.family(f) for f in families}
    texts = read_buckets(session, "families", where.values())
    pins: dict[str, FamilyPin] = {}
    for text in texts.values():
        pins.update(decode_pins(text))
    return {f: pins.get(f) for f in families}


def update_pins(session: Any, pins: Mapping[str, FamilyPin | None]) -> None:
    """Set (or, for None, remove) the pins of some families in a writable catalog session (the
    other pins of their buckets written back as they were stored)."""
    counts = bucket_counts(session.store)
    by_bucket: dict[int, list[str]] = {}
    for family in pins:
        by_bucket.setdefault(counts.family(family), []).append(family)
    texts = read_buckets(session, "families", by_bucket)
    out = {}
    for bucket, families in by_bucket.items():
        current: dict[str, FamilyPin | Mapping[str, Any]] = json.loads(texts[bucket]) if texts.get(bucket) else {}
        for family in families:
            pin = pins[family]
            if pin is None:
                current.pop(family, None)
            else:
                current[family] = pin
        out[bucket] = encode_pins(current)
    write_buckets(session, "families", out)


def update_index(
    session: Any, lines: pd.DataFrame, drop_observations: Iterable[str] = (), drop_buckets: Iterable[int] = ()
) -> list[int]:
    """Upsert index lines (key: target, observation) in a writable catalog session, first removing
    every line of ``drop_observations`` from ``drop_buckets``; return the target buckets written.

    The sky buckets follow: a line leaves the pixel of its old position and enters the pixel
    of its new one. A catalog without a sky index (written before there was one) gets it here,
    made from every target bucket.
    """
    size = bucket_counts(session.store).targets
    lines = lines.astype(INDEX_COLUMNS) if not lines.empty else empty_index()
    buckets = {target_bucket(t, size) for t in lines["target"].tolist()} | set(drop_buckets)
    root = zarr.open_group(session.store, mode="r+")
    sky_missing = "sky" not in root
    texts = read_buckets(session, "targets", range(size) if sky_missing else buckets)
    dropped = set(drop_observations)
    new_keys = set(zip(lines["target"].tolist(), lines["observation"].tolist(), strict=True))
    by_bucket = columns_by(lines, [target_bucket(t, size) for t in lines["target"].tolist()])
    out, removed = {}, []
    for bucket in sorted(buckets):
        out[bucket], gone = upsert(texts.get(bucket, ""), by_bucket.get(bucket), new_keys, dropped)
        removed.append(gone)
    write_buckets(session, "targets", out)
    if sky_missing:  # every target bucket as it is now: the sky index made whole
        create_sky(root)
        write_buckets(session, "sky", sky_texts(decode_index(out.get(b, texts.get(b, "")) for b in range(size))))
        return sorted(buckets)
    old = {k: [v for part in removed for v in part[k]] for k in INDEX_COLUMNS}
    old_ra = np.asarray([np.nan if v is None else v for v in old["ra"]], dtype=np.float64)
    old_dec = np.asarray([np.nan if v is None else v for v in old["dec"]], dtype=np.float64)
    new_pixels = pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy())
    touched = set(pixels_of(old_ra, old_dec).tolist()) | set(new_pixels.tolist())
    touched.discard(-1)
    gone_keys = set(zip(old["target"], old["observation"], strict=True)) | new_keys
    sky_now = read_buckets(session, "sky", touched)
    by_pixel = columns_by(lines, new_pixels.tolist())
    sky_out = {pixel: upsert(sky_now.get(pixel, ""), by_pixel.get(pixel), gone_keys, set())[0] for pixel in sorted(touched)}
    write_buckets(session, "sky", sky_out)
    return sorted(buckets)


def replace_catalog(session: Any, pins: Mapping[str, FamilyPin], lines: pd.DataFrame | None) -> None:
    """Write every bucket of the pins and of the target index anew (nothing read: a repair of
    damaged buckets), in a writable catalog session."""
    counts = bucket_counts(session.store)
    families = zarr.open_array(session.store, path="families", mode="r+")
    targets = zarr.open_array(session.store, path="targets", mode="r+")
    by_bucket: dict[int, dict[str, FamilyPin]] = {}
    for family, pin in pins.items():
        by_bucket.setdefault(counts.family(family), {})[family] = pin
    families[:] = np.array([encode_pins(by_bucket.get(b, {})) for b in range(counts.families)], dtype=object)
    texts = [""] * counts.targets
    create_sky(zarr.open_group(session.store, mode="r+"))  # anew: no pixel of the old index is left
    if lines is not None and not lines.empty:
        lines = lines.astype(INDEX_COLUMNS)
        for bucket, part in lines.groupby(lines["target"].to_numpy() % counts.targets, sort=True):
            texts[int(bucket)] = encode_index(part)
        write_buckets(session, "sky", sky_texts(lines))
    targets[:] = np.array(texts, dtype=object)
