"""The catalog at a version, assembled from the catalog repository: pins, index lines, analyses.

This module owns what a reader asks of the catalog repository at the store's version:
:class:`CatalogReads` reads the families' pins (all, or a few families' buckets at once), the
target index's lines (of some targets, or of some sky pixels, reading only their buckets), the
catalog (the shipped catalog with every pinned group's entries), the analyses (their entries and
result arrays, and the commit that stores one), and locates an observation group (its family's
session at the pin). The buckets' texts are decoded by :mod:`lcarchive.store.buckets`; the
bucket counts are the catalog root's (:func:`lcarchive.store.buckets.bucket_counts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import icechunk as ic
import numpy as np
import pandas as pd
import zarr

from lcarchive.aliases import AliasTable
from lcarchive.catalog.build import finish_catalog
from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import Analysis, Catalog
from lcarchive.clients import RetryingStore
from lcarchive.config import settings
from lcarchive.layout.sky import pixels_of
from lcarchive.store.aliases import read_aliases, write_aliases
from lcarchive.store.buckets import CHECKED, BucketCounts, bucket_counts, decode_index, decode_pins
from lcarchive.store.models import FamilyPin
from lcarchive.store.repositories import CATALOG_REPO, family_of
from lcarchive.store.sessions import Sessions

__all__ = ["CatalogReads"]


class CatalogReads(Sessions):
    """The catalog of the archive at ``url`` at one version (the parameters of
    :class:`~lcarchive.store.repositories.Repositories`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins: dict[str, FamilyPin] | None = None
        self._bucket_pins: dict[int, dict[str, FamilyPin]] = {}
        self._counts: BucketCounts | None = None

    def refresh(self) -> None:
        """Forget what was read: the next read sees the latest version (of a store at the latest)."""
        super().refresh()
        self._pins = None
        self._bucket_pins = {}
        self._counts = None

    def _catalog_array(self, session: ic.Session, name: str) -> zarr.Array:
        try:
            return zarr.open_array(RetryingStore(session.store, self.url), path=name, mode="r")
        except ic.IcechunkError:
            self._catalog_checked()  # a snapshot that fails to parse because it is damaged is said as such
            raise

    def _read_catalog(self, name: str, selection: Any = None) -> np.ndarray:
        """Buckets of the catalog array ``name`` (all, or the coordinates given).

        Raises
        ------
        DamagedArchiveError
            If a bucket does not match its CRC32C (a repair: ``lcarchive catalog build``).
        """
        array = self._catalog_array(self._open_catalog_session(), name)
        try:
            with zarr.config.set({"async.concurrency": settings().catalog_reads}):
                values = array[:] if selection is None else array.get_coordinate_selection(selection)
        except ic.IcechunkError as exc:
            raise self._failure(exc) from exc
        except ValueError as exc:  # zarr's crc32c codec: the stored and computed checksums differ
            from lcarchive.clients import first_line
            from lcarchive.errors import DamagedArchiveError

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/{name}", first_line(str(exc), 120)) from exc
        finally:
            self._catalog_checked()  # nothing read is used before its snapshot is checked: a damaged one is said first
        return values  # type: ignore[return-value]  # zarr's get returns an ndarray here

    def bucket_counts(self) -> BucketCounts:
        """The bucket counts of the catalog at this version (its root's attributes, or its arrays'
        shapes in an archive written without them)."""
        if self._counts is None:
            try:
                self._counts = bucket_counts(RetryingStore(self._open_catalog_session().store, self.url))
            except ic.IcechunkError as exc:
                self._catalog_checked()  # a snapshot that fails to parse because it is damaged is said as such
                raise self._failure(exc) from exc
        return self._counts

    def _decoded_pins(self, text: str) -> dict[str, FamilyPin]:
        """The pins of a ``families`` bucket's text.

        Raises
        ------
        DamagedArchiveError
            If the text holds no valid pins (a repair: ``lcarchive catalog build``).
        """
        try:
            return decode_pins(text)
        except ValueError as exc:  # no JSON, or pydantic's ValidationError: no pin
            from lcarchive.errors import DamagedArchiveError
            from lcarchive.store.plain import first_problem

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/families", first_problem(exc)) from exc

    def pins(self) -> dict[str, FamilyPin]:
        """Every family's pin (:class:`~lcarchive.store.models.FamilyPin`), by family."""
        if self._pins is None:
            values = self._read_catalog("families")
            pins: dict[str, FamilyPin] = {}
            for text in values:
                pins.update(self._decoded_pins(str(text)))
            self._pins = pins
        return self._pins

    def pin(self, family: str) -> FamilyPin | None:
        """One family's pin (reading only its bucket), or None if this version has no such family."""
        return self.pins_of([family])[family]

    def pins_of(self, families: Iterable[str]) -> dict[str, FamilyPin | None]:
        """Some families' pins (None for a family this version has not), their buckets read at
        once: one round for the families of a star's ten sectors, not one each."""
        families = list(families)
        if self._pins is not None:
            return {f: self._pins.get(f) for f in families}
        counts = self.bucket_counts()
        buckets = {f: counts.family(f) for f in families}
        missing = sorted({b for b in buckets.values() if b not in self._bucket_pins})
        if missing:
            texts = self._read_catalog("families", np.asarray(missing, dtype=np.int64))
            for bucket, text in zip(missing, texts, strict=True):
                self._bucket_pins[bucket] = self._decoded_pins(str(text))
        return {f: self._bucket_pins[buckets[f]].get(f) for f in families}

    def index(self, targets: Iterable[int] | None = None) -> pd.DataFrame:
        """Target-index lines: of the given targets (reading only their buckets), or all."""
        if targets is None:
            texts = [str(t) for t in self._read_catalog("targets")]
        else:
            targets = list(targets)
            wanted = self.bucket_counts().targets_of(targets)
            texts = [str(t) for t in self._read_catalog("targets", np.asarray(wanted, dtype=np.int64))] if wanted else []
        frame = decode_index(texts)
        if targets is not None:
            frame = frame[frame["target"].isin(targets)]
        return frame.sort_values(["target", "observation"], kind="stable").reset_index(drop=True)

    def index_pixels(self, pixels: Iterable[int]) -> pd.DataFrame | None:
        """Target-index lines of the targets in some sky pixels (:mod:`lcarchive.layout.sky`),
        reading only those buckets; None if this version has no sky index (an archive written
        before there was one: ``lcarchive catalog build`` adds it, as does the next ingest)."""
        session = self.catalog_session()
        try:
            self._catalog_array(session, "sky")
        except (KeyError, FileNotFoundError, zarr.errors.NodeNotFoundError):
            return None
        wanted = np.unique(np.asarray(list(pixels), dtype=np.int64))
        if wanted.size > self.bucket_counts().targets:  # fewer requests: every target bucket
            lines = self.index()
            return lines[np.isin(pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy()), wanted)].reset_index(drop=True)
        texts = [str(t) for t in self._read_catalog("sky", wanted)] if wanted.size else []
        return decode_index(texts).sort_values(["target", "observation"], kind="stable").reset_index(drop=True)

    def catalog(self) -> Catalog:
        """The catalog at this store's version: the shipped catalog (missions, instruments,
        products) with the pinned entries of every observation group (one read of the pins)."""
        catalog = static_catalog().model_copy(deep=True)
        try:
            for _, pin in sorted(self.pins().items()):
                catalog.observations.extend(pin.observation_entries())
                catalog.datasets.extend(pin.dataset_entries())
        except ValueError as exc:  # pydantic's ValidationError: an entry that is no valid catalog entry
            from lcarchive.errors import DamagedArchiveError
            from lcarchive.store.plain import first_problem

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/families", first_problem(exc)) from exc
        catalog.analyses.extend(self.analyses())
        catalog.aliases.extend(self.alias_table().aliases())
        return finish_catalog(catalog)

    # -- aliases: names of one star in several catalogs (lcarchive.store.aliases) --------------------
    def alias_table(self) -> AliasTable:
        """The alias table of this version (empty in an archive written before there was one).

        Raises
        ------
        DamagedArchiveError
            If the stored table is no alias table.
        """
        session = self.catalog_session()
        try:
            return read_aliases(RetryingStore(session.store, self.url))
        except ValueError as exc:  # JSON, pydantic or the codecs' CRC32C
            from lcarchive.errors import DamagedArchiveError
            from lcarchive.store.plain import first_problem

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/aliases", first_problem(exc)) from exc

    def change_aliases(self, edit: Callable[[AliasTable], bool], message: str) -> str | None:
        """Edit the alias table in one catalog commit (redone on another writer's table on
        conflict); ``edit`` returns False when it changed nothing (then nothing is committed).
        Return the new version's snapshot, or None."""

        def change(session: ic.Session) -> bool | None:
            table = read_aliases(RetryingStore(session.store))
            if not edit(table):
                return None
            write_aliases(session, table)
            return True

        return self.change_catalog(change, message, metadata={"aliases": message})[0]

    # -- analyses: results of one method over many light curves, in the catalog repository --------
    def analyses(self) -> list[Analysis]:
        """The analyses of this version (entries in the catalog root's attributes), oldest first."""
        root = zarr.open_group(RetryingStore(self.catalog_session().store, self.url), mode="r")
        entries = dict(root.attrs.get("analyses", {}))  # type: ignore[arg-type]  # the analyses attribute is a JSON object
        return sorted((Analysis.model_validate(e) for e in entries.values()), key=lambda a: (a.created, a.id))

    def read_analysis(self, analysis_id: str) -> dict[str, np.ndarray]:
        """The result arrays of one analysis (each shape (n_light_curves,) or (n_light_curves, n)).

        Raises
        ------
        KeyError
            If this version has no such analysis.
        """
        store = RetryingStore(self.catalog_session().store, self.url)
        root = zarr.open_group(store, mode="r")
        if analysis_id not in root.attrs.get("analyses", {}):  # type: ignore[operator]  # as above
            raise KeyError(analysis_id)
        group = zarr.open_group(store, path=f"analyses/{analysis_id}", mode="r")
        try:
            return {name: np.asarray(array[...]) for name, array in group.arrays()}
        except ValueError as exc:  # zarr's crc32c codec
            from lcarchive.clients import first_line
            from lcarchive.errors import DamagedArchiveError

            raise DamagedArchiveError(self.url, f"{CATALOG_REPO}/analyses/{analysis_id}", first_line(str(exc), 120)) from exc

    def write_analysis(self, entry: Analysis, columns: dict[str, np.ndarray], message: str) -> str | None:
        """Store an analysis in one catalog commit (its group and its entry); nothing is written if an
        analysis of this ID is there already. Return the new version's snapshot, or None."""

        def change(session: ic.Session) -> bool | None:
            root = zarr.open_group(session.store, mode="r+")
            entries = dict(root.attrs.get("analyses", {}))  # type: ignore[arg-type]  # as above
            if entry.id in entries:
                return None
            group = root.require_group(f"analyses/{entry.id}")
            for name, values in columns.items():
                values = np.asarray(values)
                dtype = str if values.dtype.kind in "OUT" else values.dtype
                array = group.create_array(
                    name,
                    shape=values.shape,
                    dtype=dtype,
                    compressors=CHECKED,
                    overwrite=True,
                    chunks=(max(1, min(values.shape[0], 65536)), *values.shape[1:]) if values.ndim else (),
                    fill_value="" if dtype is str else None,
                )
                array[...] = values.astype(object) if dtype is str else values
            group.attrs.update(entry.model_dump(mode="json"))
            entries[entry.id] = entry.model_dump(mode="json")
            root.attrs["analyses"] = entries
            return True

        return self.change_catalog(change, message, metadata={"analysis": entry.id})[0]

    def group_ids(self) -> list[str]:
        """The observation groups of this version."""
        return sorted(g for pin in self.pins().values() for g in pin.observations)

    def group_store(self, observation: str) -> tuple[Any, str]:
        """(zarr store, path) of an observation group at this version: a read-only icechunk
        session's store of its family, pinned.

        Raises
        ------
        KeyError
            If this version has no such group.
        """
        family = family_of(observation)
        pin = self.pin(family)
        if pin is None or not pin.holds(observation):
            raise KeyError(observation)
        return RetryingStore(self.family_session(family).store, self.url), observation
