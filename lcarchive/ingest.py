"""Ingest light-curve files into observation groups.

Rules (``docs/format.md``):

* files of the same observation (mission x product x sector/quarter/campaign) go into
  one group; a later batch adds targets to it;
* a file whose bytes (SHA-256) are already stored for its target changes nothing;
* a different release of a light curve already stored (another DATA_REL, PROCVER,
  DATE or content) never overwrites it silently: the newest release, by
  (DATA_REL, DATE, PROCVER), is kept in the observation group and the other one in
  a release group ``<observation>.<label>`` (label ``dr<DATA_REL>``), both in the
  catalog;
* bad files are reported with their name and the reason and change nothing.
"""

from __future__ import annotations

import glob as _glob
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lcarchive.errors import BadInputError
from lcarchive.layout import FORMAT_VERSION, Block, block_from_dataset, block_from_file, merge_blocks, to_dataset
from lcarchive.readers import LightCurveFile, read_lightcurve

if TYPE_CHECKING:
    from lcarchive.archive import Archive

__all__ = ["IngestReport", "expand_inputs", "ingest_files"]

LIGHTCURVE_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")


@dataclass
class IngestReport:
    """What an ingest did.

    Attributes
    ----------
    added : list of (source, observation, target)
    unchanged : list of (source, observation, target)
        Files already stored byte for byte.
    superseded : list of (source, observation, target, release group)
        A release moved to (or stored in) a release group because another one is current.
    skipped : list of (source, reason)
        Bad inputs, with the reason; nothing of them was stored.
    observations : list of str
        Observation groups written.
    """

    added: list[tuple[str, str, int]] = field(default_factory=list)
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: list[tuple[str, str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no input was skipped."""
        return not self.skipped


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Expand directories (recursively) and globs into files; keep URLs as given.

    Raises nothing: a path that matches nothing is returned as is, so that reading
    it reports "no such file" against its name.
    """
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            out.append(item)
            continue
        path = item.removeprefix("file://")
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(LIGHTCURVE_SUFFIXES))
        elif any(ch in path for ch in "*?["):
            matches = sorted(_glob.glob(path, recursive=True))
            out.extend(m for m in matches if os.path.isfile(m)) if matches else out.append(path)
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def _release_key(block: Block, row: int = 0) -> tuple:
    p = block.per_target
    return (int(p["data_release"][row]), str(p["file_date"][row]), str(p["pipeline_version"][row]))


def _release_label(block: Block, row: int = 0) -> str:
    data_rel = int(block.per_target["data_release"][row])
    if data_rel >= 0:
        return f"dr{data_rel}"
    return f"sha{str(block.per_target['source_sha256'][row])[:10]}"


def ingest_files(
    archive: Archive,
    inputs: Iterable[str],
    storage_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest files into ``archive``; see ``lcarchive.Archive.ingest``."""
    report = IngestReport()
    by_obs: dict[str, list[LightCurveFile]] = defaultdict(list)
    for source in expand_inputs(inputs):
        if progress is not None:
            progress(source)
        try:
            lc = read_lightcurve(source, storage_options)
        except BadInputError as exc:
            report.skipped.append((exc.source, exc.reason))
            continue
        except Exception as exc:  # anything unforeseen in a file is that file's fault
            report.skipped.append((source, f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        by_obs[lc.observation_id].append(lc)
    touched: list[str] = []
    for obs_id, files in sorted(by_obs.items()):
        touched.extend(_ingest_observation(archive, obs_id, files, report))
    if touched or not archive.exists:
        archive._update_catalog(touched)
    report.observations = sorted(set(touched))
    return report


def _group_attrs(lc: LightCurveFile, obs_id: str, **extra: object) -> dict:
    return {
        "lcarchive_format_version": FORMAT_VERSION,
        "observation": obs_id,
        "title": f"{lc.product.title}, {lc.mission.segment_kind} {lc.segment}",
        "mission": lc.mission.name,
        "product": lc.product.name,
        "pipeline": lc.product.pipeline,
        "segment_kind": lc.mission.segment_kind,
        "segment": lc.segment,
        "time_format": lc.mission.time_system.format_name,
        "time_reference_epoch_jd": lc.mission.time_system.reference_epoch,
        "time_scale": lc.mission.time_system.scale,
        "quality_flags": lc.product.quality_flags,
        "target_catalog": lc.target_catalog.name,
        **extra,
    }


def _load_block(archive: Archive, obs_id: str) -> Block | None:
    if not archive._group_exists(obs_id):
        return None
    with archive._open_group(obs_id) as ds:
        return block_from_dataset(ds.load())


def _ingest_observation(archive: Archive, obs_id: str, files: list[LightCurveFile], report: IngestReport) -> list[str]:
    """Merge one observation's files into its group(s); return the groups written."""
    existing = _load_block(archive, obs_id)
    current: dict[int, Block] = {}
    if existing is not None:
        for i, t in enumerate(existing.target):
            current[int(t)] = existing.select([i])
    existing_targets = set(current)
    replaced: set[int] = set()
    released: dict[str, list[tuple[Block, str]]] = defaultdict(list)
    for lc in sorted(files, key=lambda f: f.release_key):
        block = block_from_file(lc)
        cur = current.get(lc.target)
        if cur is None:
            current[lc.target] = block
            report.added.append((lc.source, obs_id, lc.target))
            continue
        if str(cur.per_target["source_sha256"][0]) == lc.sha256:
            report.unchanged.append((lc.source, obs_id, lc.target))
            continue
        if _release_key(block) >= _release_key(cur):
            older, newer, older_source = cur, block, str(cur.per_target["source_file"][0])
            report.added.append((lc.source, obs_id, lc.target))
            if lc.target in existing_targets:
                replaced.add(lc.target)
        else:
            older, newer, older_source = block, cur, lc.source
        label = _release_label(older)
        released[label].append((older, older_source))
        current[lc.target] = newer
    written: list[str] = []
    first = files[0]
    for label, blocks in sorted(released.items()):
        rel_id = f"{obs_id}.{label}"
        if _store_release(archive, rel_id, blocks, report, obs_id, _group_attrs(first, rel_id, superseded_release=label, current_observation=obs_id)):
            written.append(rel_id)
    new_targets = [t for t in current if t not in existing_targets]
    if existing is not None and not replaced and not new_targets:
        return written
    attrs = _group_attrs(first, obs_id)
    if existing is not None and not replaced:
        appended = _try_append(archive, obs_id, existing, [current[t] for t in new_targets], attrs)
        if appended:
            written.append(obs_id)
            return written
    merged = merge_blocks(list(current.values()))
    archive._write_group(obs_id, to_dataset(merged, _with_summary(attrs, merged, first)), append=False)
    written.append(obs_id)
    return written


def _store_release(
    archive: Archive, rel_id: str, blocks: list[tuple[Block, str]], report: IngestReport, obs_id: str, attrs: dict
) -> bool:
    existing = _load_block(archive, rel_id)
    rows: dict[int, Block] = {}
    if existing is not None:
        for i, t in enumerate(existing.target):
            rows[int(t)] = existing.select([i])
    changed = False
    for block, source in blocks:
        t = int(block.target[0])
        sha = str(block.per_target["source_sha256"][0])
        if t in rows and str(rows[t].per_target["source_sha256"][0]) == sha:
            continue
        if t in rows:  # same label, other content: keep both by naming this one after its checksum
            alt = f"{obs_id}.sha{sha[:10]}"
            _store_release(archive, alt, [(block, source)], report, obs_id, {**attrs, "observation": alt, "superseded_release": f"sha{sha[:10]}"})
            continue
        rows[t] = block
        report.superseded.append((source, obs_id, t, rel_id))
        changed = True
    if not changed:
        return False
    merged = merge_blocks(list(rows.values()))
    archive._write_group(rel_id, to_dataset(merged, _with_summary(attrs, merged, None)), append=False)
    return True


def _with_summary(attrs: dict, block: Block, lc: LightCurveFile | None) -> dict:
    time = block.series["time"]
    finite = time[np.isfinite(time)]
    instruments = set()
    for cam_key, ccd_key, fmt in (("camera", "ccd", "tess/camera{}/ccd{}"), ("module", "output", "kepler/module{}/output{}")):
        if cam_key in block.per_target and ccd_key in block.per_target:
            for a, b in zip(block.per_target[cam_key], block.per_target[ccd_key], strict=True):
                if np.isfinite(a) and np.isfinite(b):
                    instruments.add(fmt.format(int(a), int(b)))
    return {
        **attrs,
        "time_min": float(finite.min()) if finite.size else None,
        "time_max": float(finite.max()) if finite.size else None,
        "instruments": sorted(instruments),
    }


def _try_append(archive: Archive, obs_id: str, existing: Block, new_rows: list[Block], attrs: dict) -> bool:
    """Append new targets to a group when they fit its cadence axis and variables; else False."""
    template = existing.select([])
    merged = merge_blocks([template, *new_rows])
    if not np.array_equal(merged.cadenceno, existing.cadenceno):
        return False
    for part, old in ((merged.series, existing.series), (merged.per_target, existing.per_target)):
        if set(part) != set(old) or any(
            part[k].dtype != old[k].dtype or part[k].shape[1:] != old[k].shape[1:] for k in part
        ):
            return False
    whole = merge_blocks([existing, merged])
    ds = to_dataset(merged, {})
    archive._write_group(obs_id, ds, append=True)
    _update_group_attrs(archive, obs_id, _with_summary(attrs, whole, None))
    return True


def _update_group_attrs(archive: Archive, obs_id: str, attrs: dict) -> None:
    import warnings

    import zarr

    url = archive.observation_url(obs_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        opts = {"storage_options": archive.storage_options} if "://" in archive.url else {}
        group = zarr.open_group(url, mode="r+", zarr_format=3, **opts)
        group.attrs.update(attrs)
        zarr.consolidate_metadata(group.store, path=group.path or None, zarr_format=3)

