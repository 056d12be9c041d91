"""``lcarchive migrate OLD NEW``: convert an archive of store format v1 into format v2.

A v1 archive is a folder (or prefix) of plain Zarr groups with ``catalog.json`` and
``index/targets.parquet`` (:mod:`lcarchive.store.plain`). Each group is read whole through
xarray and written again into its family's repository with the v2 encoding (checksummed
chunks), its variables, attributes and per-target provenance unchanged; each family is one
commit, and one catalog commit at the end pins them all. OLD is only read. An interrupted
migration is completed by running it again: groups already in NEW are left as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lcarchive.errors import ArchiveNotFoundError, LcarchiveError
from lcarchive.ingest import reindex_families
from lcarchive.layout import FORMAT_VERSION, block_from_dataset, open_group
from lcarchive.store import ArchiveStore, PlainStore, failures, family_of
from lcarchive.store.family import FamilyView

__all__ = ["MigrateReport", "migrate"]


@dataclass
class MigrateReport:
    """What a migration did.

    Attributes
    ----------
    groups : int
        Observation groups written into the new archive.
    light_curves : int
        Target rows in them.
    already : int
        Groups found in the new archive already (an earlier, interrupted run), left as they are.
    versions : list of str
        The new archive's versions made.
    """

    groups: int = 0
    light_curves: int = 0
    already: int = 0
    versions: list[str] = field(default_factory=list)


def migrate(
    old: str,
    new: str,
    old_options: dict | None = None,
    new_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> MigrateReport:
    """Convert the v1 archive at ``old`` into a v2 archive at ``new``.

    Parameters
    ----------
    old, new : str
        Archive roots (local folders or ``s3://`` prefixes); ``new`` may already hold a
        (partly) migrated archive.
    old_options, new_options : dict, optional
        Storage options of each.
    progress : callable, optional
        Called with each group's ID as it is written.

    Returns
    -------
    MigrateReport

    Raises
    ------
    ArchiveNotFoundError
        If ``old`` holds no v1 archive.
    LcarchiveError
        If ``new`` is ``old``, or holds a v1 archive.
    """
    if old.rstrip("/") == new.rstrip("/"):
        raise LcarchiveError(f"{new}: migrate into a new folder or prefix, not into the v1 archive itself")
    source = PlainStore(old, old_options)
    if not source.exists():
        raise ArchiveNotFoundError(old, "no catalog.json here: not an archive of store format v1")
    if PlainStore(new, new_options).exists():
        raise LcarchiveError(f"{new}: holds an archive of store format v1 already; give a new folder or prefix")
    store = ArchiveStore(new, new_options)
    report = MigrateReport()
    with failures(new, new_options):
        store.check_root()
        if not store.exists(cached=False):
            store.create()
        by_family: dict[str, list[str]] = defaultdict(list)
        for group_id in source.group_ids():
            by_family[family_of(group_id)].append(group_id)
        for family, groups in sorted(by_family.items()):
            _, done = store.change_family(
                family, _copy_groups(source, family, groups, progress), f"migrate {len(groups)} group(s) of {family} from {old}"
            )
            written, already, rows = done
            report.groups += written
            report.already += already
            report.light_curves += rows
        version = reindex_families(store, sorted(by_family), f"migrate {report.groups} group(s) from {old} (store format v1)")
    if version is not None:
        report.versions.append(version)
    return report


def _copy_groups(
    source: PlainStore, family: str, groups: list[str], progress: Callable[[str], None] | None
) -> Callable[[Any], tuple[int, int, int]]:
    def change(session: Any) -> tuple[int, int, int]:
        view = FamilyView(session.store)
        present = view.group_ids()
        written = already = rows = 0
        for group_id in sorted(groups):
            if group_id in present:
                already += 1
                continue
            with open_group(*source.group_store(group_id)) as ds:
                loaded = ds.load()
            attrs = {k: v for k, v in loaded.attrs.items() if k not in ("time_min", "time_max", "instruments")}
            attrs["lcarchive_format_version"] = FORMAT_VERSION
            block = block_from_dataset(loaded)
            view.apply(group_id, [block], {}, attrs)
            view.set_entries(group_id, family)
            written += 1
            rows += int(block.target.size)
            if progress is not None:
                progress(group_id)
        return written, already, rows

    return change
