"""Ingest light-curve files into an archive (format v2).

Each batch of inputs (``Settings.batch_files``) is parsed (:mod:`lcarchive.ingest.parse`), its
light curves grouped by observation family, and each family changed in one commit of its
repository (:mod:`lcarchive.ingest.plan`, :mod:`lcarchive.store.family`); then one commit of
the catalog repository pins the families' new snapshots and adds their lines to the target index
(:func:`update_catalog`). That catalog commit is the archive's new version, its message naming
the inputs. With a Dask client the files are parsed, and the families' chunks encoded and
written, on its workers (forks of the family's session merged back before its one commit:
:mod:`lcarchive.store.cluster`). A commit that meets another writer's is redone on a fresh
session, so concurrent ingests lose nothing; a process killed before the catalog commit leaves the archive at its
previous version, and the next ingest of the same files completes it (they are found stored,
and the families not pinned yet are pinned).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from lcarchive.formats import LightCurveFile
from lcarchive.formats.tables import TableMap
from lcarchive.ingest.family import alias_facts, index_lines
from lcarchive.ingest.inputs import LIGHTCURVE_SUFFIXES, expand_inputs
from lcarchive.ingest.parse import parsed_batches
from lcarchive.ingest.plan import ingest_observation
from lcarchive.layout import open_group
from lcarchive.store import INDEX_COLUMNS
from lcarchive.store.aliases import update_aliases
from lcarchive.store.buckets import bucket_counts, read_pins, replace_catalog, update_index, update_pins
from lcarchive.store.family import FamilyView
from lcarchive.store.models import FamilyPin

if TYPE_CHECKING:
    from lcarchive.store.archive_store import ArchiveStore as _Store

__all__ = ["LIGHTCURVE_SUFFIXES", "IngestReport", "expand_inputs", "ingest_files", "reindex_families"]


@dataclass
class IngestReport:
    """What an ingest did. Every input is in exactly one of ``added``, ``unchanged``,
    ``superseded`` and ``skipped``.

    Attributes
    ----------
    added : list of (source, observation, target)
        Stored as the target's current light curve of the observation.
    unchanged : list of (source, observation, target)
        Already stored byte for byte (in the group or one of its release groups), or a second
        copy within the batch: nothing written.
    superseded : list of (source, observation, target, release group)
        Stored in a release group, because another light curve of the target ranks higher (or
        was stored first); also a current light curve moved there by a higher-ranked one.
    skipped : list of (source, reason)
        Inputs refused, with the reason (damaged bytes, no light curve, no valid target or
        segment), and folders, prefixes or globs that gave no file; nothing of them was stored.
    observations : list of str
        Observation groups written.
    ignored : list of (source, what)
        Files found in folders, prefixes or globs that are no light curves by MAST's file names
        (target pixel files, DV time series, FFIs: ``catalog/inputs.json``); not read.
    versions : list of str
        The archive versions (catalog snapshots) the ingest made, one per batch that changed it.
    integrity : dict of str to str
        Every file read: its integrity state (``sound``, ``no-checksums``, ``stale-cards``,
        ``damaged``: its DATASUM/CHECKSUM cards checked on its raw bytes,
        :mod:`lcarchive.formats.checksums`), by source.
    warnings : list of (source, warning)
        Values stored as the file gives them although they contradict its mission or are out
        of range (time-system keywords, coordinates), one line each.
    """

    added: list[tuple[str, str, int]] = field(default_factory=list)
    unchanged: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: list[tuple[str, str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    integrity: dict[str, str] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no input was skipped."""
        return not self.skipped

    def integrity_counts(self) -> dict[str, int]:
        """How many files read are of each integrity state (states of no file left out)."""
        counts: dict[str, int] = {}
        for state in self.integrity.values():
            counts[state] = counts.get(state, 0) + 1
        return counts


@dataclass
class FamilyOutcome:
    """What one family's commit did (the last attempt's, when it was redone)."""

    report: IngestReport
    base: str
    written: dict[str, set[int]]
    lines: pd.DataFrame | None = None
    entries: dict[str, tuple[dict, list[dict]]] = field(default_factory=dict)
    snapshot: str | None = None
    facts: pd.DataFrame | None = None


def _change_family(family: str, files: list[LightCurveFile], client: Any = None) -> Callable[[Any], FamilyOutcome]:
    def change(session: Any) -> FamilyOutcome:
        view = FamilyView(session.store, session, client)
        report = IngestReport()
        ingest_observation(view, family, files, report)
        outcome = FamilyOutcome(report, session.snapshot_id, dict(view.written))
        if not view.written:
            return outcome
        frames, facts = [], []
        for group_id, rows in sorted(view.written.items()):
            outcome.entries[group_id] = view.set_entries(group_id, family)
            ds = open_group(session.store, group_id)
            frames.append(index_lines(ds, group_id, sorted(rows)))
            facts.append(alias_facts(ds, group_id, sorted(rows)))
        outcome.lines = pd.concat(frames, ignore_index=True)
        outcome.facts = pd.concat(facts, ignore_index=True)
        return outcome

    return change


def _message(sources: list[str], prefix: str = "ingest") -> str:
    names = [s.rstrip("/").rsplit("/", 1)[-1] for s in dict.fromkeys(sources)]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{prefix} {len(names)} file(s): {shown}"


def family_pin(
    store: _Store, family: str, snapshot: str, facts: list[pd.DataFrame] | None = None
) -> tuple[FamilyPin, pd.DataFrame]:
    """A family's pin at ``snapshot`` (without its target buckets and digest: :func:`update_catalog`
    adds them) and every index line of its groups there (read from the groups' attributes and
    small per-target arrays); the groups' alias facts appended to ``facts`` when given
    (:func:`lcarchive.ingest.family.alias_facts`)."""
    session = store.family_session(family, snapshot)
    view = FamilyView(session.store)
    observations, datasets, frames = {}, {}, []
    for group_id in sorted(view.group_ids()):
        ds = open_group(session.store, group_id)
        observations[group_id] = ds.attrs.get("lcarchive_observation", {})
        datasets[group_id] = ds.attrs.get("lcarchive_datasets", [])
        frames.append(index_lines(ds, group_id))
        if facts is not None:
            facts.append(alias_facts(ds, group_id))
    lines = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({k: [] for k in INDEX_COLUMNS})
    return FamilyPin(snapshot=snapshot, observations=observations, datasets=datasets), lines


def _sealed(store: _Store, family: str, pin: FamilyPin, buckets: list[int]) -> FamilyPin:
    """The pin with its target buckets and the SHA-256 of the pinned snapshot's object (from its
    digest record), so that a reader opening the family at the pin finds its damage; a snapshot
    without a record (written before digests) gets none."""
    digest = store.snapshot_digest(f"observations/{family}", pin.snapshot)
    return pin.model_copy(update={"buckets": buckets, "snapshot_sha256": digest})


def update_catalog(
    store: _Store, families: Iterable[str], outcomes: dict[str, FamilyOutcome], force: bool = False, drop: Iterable[str] = ()
) -> Callable[[Any], Any]:
    """The catalog change of a batch: pin each family at its latest snapshot, and add its index lines.

    A family whose only change since its pin is this batch's commit gets that commit's lines;
    any other (a crash left it unpinned, another writer committed meanwhile) is re-indexed whole
    from its latest snapshot, its old lines dropped first. ``force`` re-indexes every family
    whole; the families in ``drop`` lose their pins and lines.
    """
    families = sorted(set(families))
    dropped = sorted(set(drop))

    def change(session: Any) -> list[str] | None:
        counts = bucket_counts(session.store)
        if force:  # a repair: every pin and index line made again from the families' latest snapshots
            pins: dict[str, FamilyPin] = {}
            frames: list[pd.DataFrame] = []
            every: list[pd.DataFrame] = []
            for family in families:
                head = store.family_head(family)
                if head is None:
                    continue
                pin, frame = family_pin(store, family, head, every)
                pins[family] = _sealed(store, family, pin, counts.targets_of(frame["target"].tolist()))
                frames.append(frame)
            replace_catalog(session, pins, pd.concat(frames, ignore_index=True) if frames else None)
            update_aliases(session, pd.concat(every, ignore_index=True) if every else pd.DataFrame())
            return sorted(pins)

        pins_now = read_pins(session, [*families, *dropped], counts)
        new_pins: dict[str, FamilyPin | None] = {}
        lines: list[pd.DataFrame] = []
        facts: list[pd.DataFrame] = []
        drop_obs: set[str] = set()
        drop_buckets: set[int] = set()
        for family in families:
            head = store.family_head(family)
            old = pins_now.get(family)
            if head is None or (not force and old is not None and old.snapshot == head):
                continue
            outcome = outcomes.get(family)
            fast = (
                not force
                and outcome is not None
                and outcome.snapshot == head
                and outcome.lines is not None
                and (
                    (old is not None and old.snapshot == outcome.base)
                    or (old is None and store.family_repository(family).lookup_snapshot(outcome.base).parent_id is None)
                )
            )
            if fast and outcome is not None and outcome.lines is not None:  # (what fast says, for the types)
                entries = outcome.entries
                pin = (old or FamilyPin(snapshot=head, observations={}, datasets={})).model_copy(
                    update={
                        "snapshot": head,
                        "observations": {**(old.observations if old else {}), **{g: e[0] for g, e in entries.items()}},
                        "datasets": {**(old.datasets if old else {}), **{g: e[1] for g, e in entries.items()}},
                    }
                )
                frame = outcome.lines
                if outcome.facts is not None:
                    facts.append(outcome.facts)
                buckets = sorted(set(old.buckets if old else []) | set(counts.targets_of(frame["target"].tolist())))
            else:
                pin, frame = family_pin(store, family, head, facts)
                if old is not None:
                    drop_obs.update(old.observations)
                    drop_buckets.update(old.buckets)
                buckets = counts.targets_of(frame["target"].tolist())
            new_pins[family] = _sealed(store, family, pin, buckets)
            lines.append(frame)
        for family in dropped:
            old = pins_now.get(family)
            if old is not None:
                new_pins[family] = None  # None: the family's pin is removed
                drop_obs.update(old.observations)
                drop_buckets.update(old.buckets)
        if not new_pins:
            return None
        update_pins(session, new_pins)
        frame = pd.concat(lines, ignore_index=True) if lines else pd.DataFrame({k: [] for k in INDEX_COLUMNS})
        update_index(session, frame, drop_obs, drop_buckets)
        update_aliases(session, pd.concat(facts, ignore_index=True) if facts else pd.DataFrame())
        return sorted(new_pins)

    return change


def reindex_families(
    store: _Store, families: Iterable[str], message: str, force: bool = False, drop: Iterable[str] = ()
) -> str | None:
    """Pin families at their latest snapshots and rebuild their index lines (a repair: ``catalog
    build``), in one catalog commit; return its snapshot (None if nothing changed)."""
    return store.change_catalog(update_catalog(store, families, {}, force, drop), message)[0]


def ingest_files(
    store: _Store,
    inputs: Iterable[str],
    storage_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
    jobs: int | None = None,
    table_map: TableMap | None = None,
    client: Any = None,
    committed: Callable[[str, int], None] | None = None,
) -> IngestReport:
    """Ingest files into the archive of ``store``; see :meth:`lcarchive.Archive.ingest`."""
    report = IngestReport()
    store.check_root()
    sources = expand_inputs(inputs, storage_options, empty=report.skipped, ignored=report.ignored)
    # held from the first write to the last commit: gc does not run beside an ingest
    with store.writing("ingest"):
        _ingest_batches(store, sources, report, storage_options, progress, jobs, table_map, client, committed)
    return report


def _ingest_batches(
    store: _Store,
    sources: list[str],
    report: IngestReport,
    storage_options: dict | None,
    progress: Callable[[str], None] | None,
    jobs: int | None,
    table_map: TableMap | None,
    client: Any,
    committed: Callable[[str, int], None] | None = None,
) -> None:
    if not store.exists(cached=False):
        store.create()
    touched: set[str] = set()
    for batch in parsed_batches(sources, storage_options, progress, jobs, table_map, client):
        by_family: dict[str, list[LightCurveFile]] = defaultdict(list)
        for item in batch:
            if isinstance(item, LightCurveFile):
                by_family[item.observation_id].append(item)
                report.integrity[item.source] = item.integrity.state
                report.warnings.extend((item.source, w) for w in item.warnings)
            else:
                report.skipped.append(item)
        outcomes: dict[str, FamilyOutcome] = {}
        for family, files in sorted(by_family.items()):
            snapshot, outcome = store.change_family(
                family,
                _change_family(family, files, client),
                _message([f.source for f in files], f"ingest into {family}"),
                metadata={"inputs": [{"name": f.name, "sha256": f.sha256, "target": f.target} for f in files]},
            )
            outcome.snapshot = snapshot
            outcomes[family] = outcome
            for part in ("added", "unchanged", "superseded"):
                getattr(report, part).extend(getattr(outcome.report, part))
            touched.update(outcome.written)
        if by_family:
            version, _ = store.change_catalog(
                update_catalog(store, by_family, outcomes),
                _message([f.source for files in by_family.values() for f in files]),
                metadata={
                    "inputs": [
                        {"name": f.name, "sha256": f.sha256, "observation": f.observation_id, "target": f.target}
                        for files in by_family.values()
                        for f in files
                    ]
                },
            )
            if version is not None:
                report.versions.append(version)
                if committed is not None:
                    committed(version, sum(len(o.report.added) + len(o.report.superseded) for o in outcomes.values()))
    report.observations = sorted(touched)
