"""Deciding what an ingest does with each light curve of one observation family.

Every input whose (target, SHA-256) is not stored yet in the observation's group or any of its
release groups is stored: as the target's current row, or in a release group when another light
curve of the target ranks higher (:func:`lcarchive.layout.ranks.rank`: a file whose checksum cards
say it is damaged below any other, then its release); on a full tie the one stored first stays
current. Another segment of a stored light curve joins its row.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lcarchive.formats import LightCurveFile
from lcarchive.ingest.family import group_attrs
from lcarchive.layout import Block, block_from_file, fill_value, merge_blocks
from lcarchive.layout.ranks import SEPARATOR, damaged, n_rows, rank, release_key
from lcarchive.store.family import FamilyView

__all__ = ["family_groups", "ingest_observation", "store_release"]


@dataclass
class Entry:
    """The light curve of a target that is (or will be) current in its observation group.

    ``block`` is None while it is the stored row, untouched; ``rank`` orders it against others
    (see :func:`_rank`); ``new`` lists the inputs of this ingest it holds.
    """

    block: Block | None
    rank: tuple
    sha: str
    source: str
    new: list[str] = field(default_factory=list)


def family_groups(view: FamilyView, obs_id: str) -> list[str]:
    """The observation group and its release groups (``<obs_id>.<label>``) in the store."""
    prefix = f"{obs_id}."
    return [obs_id, *sorted(g for g in view.group_ids() if g.startswith(prefix))]


def ingest_observation(view: FamilyView, obs_id: str, files: list[LightCurveFile], report: Any) -> list[str]:
    """Merge one observation's files into its group(s); return the groups written.

    Every input whose (target, SHA-256) is not yet stored in the observation's group or any of
    its release groups is stored in this call: as the target's current row, or in a release
    group when another light curve of the target ranks higher (:func:`lcarchive.layout.ranks.rank`).
    """
    state = view.state(obs_id)
    stored: set[tuple[int, str]] = set()
    for group_id in family_groups(view, obs_id):
        held = state if group_id == obs_id else view.state(group_id)
        if held is not None:
            for t, shas in zip(held.target, held.sha256, strict=True):
                stored.update((int(t), sha) for sha in shas.split(SEPARATOR))
    current: dict[int, Entry] = {}
    if state is not None:
        for i, t in enumerate(state.target):
            current[int(t)] = Entry(
                None,
                rank(state.release_keys[i], state.n_rows[i], damaged(state.integrity[i])),
                state.sha256[i],
                state.source_file[i],
            )
    others: dict[str, list[tuple[Block | int, str]]] = defaultdict(list)  # label -> (block or stored row, source)
    for lc in files:
        if (lc.target, lc.sha256) in stored:
            report.unchanged.append((lc.source, obs_id, lc.target))
            continue
        stored.add((lc.target, lc.sha256))
        block = block_from_file(lc)
        ranked = rank(release_key(block), lc.n_rows, lc.integrity.state == "damaged")
        entry = current.get(lc.target)
        if entry is None:
            current[lc.target] = Entry(block, ranked, lc.sha256, lc.source, [lc.source])
            continue
        if _same_release(entry.rank, ranked):
            held = entry.block if entry.block is not None else view.read_rows(obs_id, [state.row(lc.target)])  # type: ignore[assignment,list-item,union-attr]  # state is known when entry.block is None
            if _disjoint(held, block):  # type: ignore[arg-type]  # a Block (above); another segment of the same light curve (Kepler SC months)
                combined = _combine_segments(held, block)  # type: ignore[arg-type]  # a Block (above)
                current[lc.target] = Entry(
                    combined,
                    rank(release_key(combined), n_rows(combined), _damaged_block(combined)),
                    str(combined.per_target["source_sha256"][0]),
                    str(combined.per_target["source_file"][0]),
                    [*entry.new, lc.source],
                )
                continue
        if entry.rank[-1] < 0:  # a stored row of a group written before n_rows was recorded
            entry.rank = (*entry.rank[:-1], n_rows(view.read_rows(obs_id, [state.row(lc.target)])))  # type: ignore[list-item,union-attr]  # as above
        if ranked > entry.rank:
            older: Block | int = entry.block if entry.block is not None else state.row(lc.target)  # type: ignore[assignment,union-attr]  # as above
            others[_label(entry.rank, ranked)].append((older, entry.source))
            current[lc.target] = Entry(block, ranked, lc.sha256, lc.source, [lc.source])
        else:
            others[_label(ranked, entry.rank)].append((block, lc.source))
    written: list[str] = []
    first = files[0]
    for label, entries in sorted(others.items()):
        blocks = [e if isinstance(e, Block) else view.read_rows(obs_id, [e]) for e, _ in entries]
        rel_id = f"{obs_id}.{label}"
        rel_attrs = group_attrs(first, rel_id, superseded_release=label, current_observation=obs_id)
        written.extend(
            store_release(view, rel_id, list(zip(blocks, [s for _, s in entries], strict=True)), obs_id, rel_attrs, report)
        )
    held_targets = set() if state is None else {int(t) for t in state.target}
    added = [e.block for t, e in current.items() if t not in held_targets and e.block is not None]
    replaced = {state.row(t): e.block for t, e in current.items() if t in held_targets and e.block is not None} if state else {}
    for t, e in current.items():
        report.added.extend((source, obs_id, t) for source in e.new)
    if added or replaced:
        view.apply(obs_id, added, replaced, group_attrs(first, obs_id))  # type: ignore[arg-type]  # rows of targets the group holds: not None
        written.append(obs_id)
    return written


def _same_release(a: tuple, b: tuple) -> bool:
    """Same product version, DATA_REL and PROCVER (the file dates may differ) of two ranks."""
    return a[1] == b[1] and a[2] == b[2] and a[4] == b[4]


def _damaged_block(block: Block) -> bool:
    """Whether a block's first row holds a file whose integrity is ``damaged``."""
    return "integrity" in block.per_target and damaged(str(block.per_target["integrity"][0]))


def _present(block: Block) -> np.ndarray:
    quality = block.series["quality"][0]
    return block.cadenceno[quality != fill_value(quality.dtype)]


def _disjoint(stored: Block, new: Block) -> bool:
    """True if the new file's cadences are all cadences the stored row does not have, and its time
    stamps lie wholly before or after the stored row's (Kepler short-cadence months do; a copy whose
    cadence numbers were made from time does not)."""
    if np.intersect1d(_present(stored), new.cadenceno).size:
        return False
    spans = []
    for block in (stored, new):
        quality, time = block.series["quality"][0], block.series["time"][0]
        finite = time[(quality != fill_value(quality.dtype)) & np.isfinite(time)]
        if finite.size == 0:
            return False
        spans.append((float(finite.min()), float(finite.max())))
    (a0, a1), (b0, b1) = spans
    return a1 < b0 or b1 < a0


def _combine_segments(a: Block, b: Block) -> Block:
    """One row from two files holding different cadences of one light curve (Kepler short
    cadence comes as one file per month). Per-target values are the earlier segment's; the
    headers are kept one after the other, file names and checksums joined with a newline,
    sizes added, the file date the latest."""
    first, second = sorted((a, b), key=lambda blk: int(_present(blk).min()))
    both = merge_blocks([first, second])
    series = {}
    for name, values in both.series.items():
        row = values[0].copy()
        take = both.series["quality"][1] != fill_value(both.series["quality"].dtype)
        row[take] = values[1][take]
        series[name] = row[np.newaxis]
    per_target = {name: values[:1].copy() for name, values in both.per_target.items()}
    for name in ("source_file", "source_sha256", "integrity", "integrity_hdus", "input_warnings"):
        if name in both.per_target:
            per_target[name] = np.array([SEPARATOR.join(str(v) for v in both.per_target[name])], dtype=object)
    for name in both.per_target:
        if name.startswith("header_"):
            per_target[name] = np.array(["".join(str(v) for v in both.per_target[name])], dtype=object)
    per_target["source_size"] = np.array([int(np.sum(both.per_target["source_size"]))], dtype=np.int64)
    per_target["file_date"] = np.array([max(str(v) for v in both.per_target["file_date"])], dtype=object)
    if "n_rows" in both.per_target:  # coverage of the union: the segments' covered spans over their joint span
        per_target["n_rows"] = np.array([int(np.sum(both.per_target["n_rows"]))], dtype=np.int64)
        start, stop = both.per_target["tstart"].astype(np.float64), both.per_target["tstop"].astype(np.float64)
        covered = np.nansum(both.per_target["coverage"].astype(np.float64) * (stop - start))
        joint = float(np.nanmax(stop) - np.nanmin(start)) if np.isfinite(start).any() else math.nan
        per_target["tstart"] = np.array([np.nanmin(start) if np.isfinite(start).any() else math.nan])
        per_target["tstop"] = np.array([np.nanmax(stop) if np.isfinite(stop).any() else math.nan])
        per_target["coverage"] = np.array([min(1.0, covered / joint) if joint > 0 else math.nan])
    return Block(both.target[:1], both.cadenceno, series, per_target, both.attrs)


def _label(other: tuple, current: tuple) -> str:
    """The release group's label for a light curve that is not current (ranks ``other`` against the
    current one's ``current``): ``v<version>`` for another product version (``v1`` for v01), ``dr<N>``
    for another DATA_REL, else ``alt2`` (another file of the same release: a cut-down copy, a
    re-delivery)."""
    if other[1] != current[1] and other[1]:
        return "v" + "-".join(str(n) for n in other[1])
    if other[2] != current[2] and other[2] >= 0:
        return f"dr{other[2]}"
    return "alt2"


def _next_label(label: str) -> str:
    """The label after ``label`` for a target its group already holds: alt2 -> alt3, dr0 -> dr0-alt2."""
    match = re.fullmatch(r"(?:(.+)-)?alt(\d+)", label)
    if match is None:
        return f"{label}-alt2"
    head, k = match.group(1), int(match.group(2)) + 1
    return f"{head}-alt{k}" if head else f"alt{k}"


def store_release(
    view: FamilyView, rel_id: str, blocks: list[tuple[Block, str]], obs_id: str, attrs: dict, report: Any
) -> list[str]:
    """Store light curves that are not current in the release group ``rel_id``; return the groups written.

    A target the group already holds (another file of the same release label) goes to the next
    group (:func:`_next_label`: ``alt2`` -> ``alt3``), so that every input is kept.
    """
    state = view.state(rel_id)
    held = set() if state is None else {int(t) for t in state.target}
    added: list[Block] = []
    elsewhere: list[tuple[Block, str]] = []
    for block, source in blocks:
        t = int(block.target[0])
        if t in held or any(int(b.target[0]) == t for b in added):
            elsewhere.append((block, source))
            continue
        added.append(block)
        report.superseded.append((source, obs_id, t, rel_id))
    written: list[str] = []
    if added:
        view.apply(rel_id, added, {}, attrs)
        written.append(rel_id)
    if elsewhere:
        label = _next_label(rel_id.split(".", 1)[1])
        alt = f"{obs_id}.{label}"
        written.extend(
            store_release(view, alt, elsewhere, obs_id, {**attrs, "observation": alt, "superseded_release": label}, report)
        )
    return written
