"""What the catalog repository stores per family and per target: the pin and the index line.

This module owns the two records of the catalog's JSON buckets (``docs/format.md``), as pydantic
models that mirror the stored JSON exactly:

- :class:`FamilyPin`, one family's entry in a bucket of the ``families`` array: the snapshot of
  the family's repository this version shows, the catalog entries of its groups, the target
  buckets holding its index lines, and the snapshot's SHA-256 (pins written before digests lack
  it). A pin read and written back is the same JSON (keys it lacks stay absent, keys it has that
  this model does not know are kept).
- :class:`IndexLine`, one line of the target index (one per target and observation group), stored
  column-wise in the ``targets`` and ``sky`` buckets (:mod:`lcarchive.store.buckets`); its fields
  are the columns of :data:`lcarchive.catalog.index.COLUMNS`, in their order, and those with a
  default are the ones an index written by an earlier version lacks
  (:data:`lcarchive.catalog.index.DEFAULTS`).

Nothing else reads or writes these records' keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from lcarchive.catalog.index import COLUMNS
from lcarchive.catalog.models import DataSet, Observation

__all__ = ["FamilyPin", "IndexLine", "frame_of_lines", "lines_of_frame"]


class FamilyPin(BaseModel):
    """A family's pin: which snapshot of its repository the archive's version shows, and what it holds.

    Stored as one JSON object (keys sorted) under the family's ID in its ``families`` bucket.

    Attributes
    ----------
    snapshot : str
        The pinned snapshot of the family's repository (an icechunk snapshot ID).
    observations : dict of str to dict
        The catalog entry of each group of the family (an observation and its release groups),
        by group ID, as stored (:class:`lcarchive.catalog.models.Observation` as JSON).
    datasets : dict of str to list of dict
        The data-set entries of each group, by group ID, as stored
        (:class:`lcarchive.catalog.models.DataSet` as JSON).
    buckets : list of int
        The target-index buckets holding the family's lines (sorted).
    snapshot_sha256 : str or None
        SHA-256 of the pinned snapshot's object (:mod:`lcarchive.store.digests`); None (absent
        from the JSON) in pins written before digests, or for a snapshot without a digest record.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    snapshot: str
    observations: dict[str, dict[str, Any]] = {}
    datasets: dict[str, list[dict[str, Any]]] = {}
    buckets: list[int] = []
    snapshot_sha256: str | None = None

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> FamilyPin:
        """The pin of a stored JSON object (already decoded).

        Raises
        ------
        pydantic.ValidationError
            If it is no pin (a ValueError).
        """
        return cls.model_validate(data)

    def stored(self) -> dict[str, Any]:
        """The JSON object stored for this pin: the keys it was made or read with (a pin read
        and written back is the same JSON), without ``snapshot_sha256`` when that is None."""
        data = self.model_dump(exclude_unset=True)
        if data.get("snapshot_sha256", "") is None:
            del data["snapshot_sha256"]
        return data

    def holds(self, observation: str) -> bool:
        """True if this pin holds the group ``observation``."""
        return observation in self.observations

    def observation_entries(self) -> list[Observation]:
        """The catalog entries of the family's groups, validated (in stored order).

        Raises
        ------
        pydantic.ValidationError
            If an entry is no valid catalog entry (a damaged or hostile pin).
        """
        return [Observation.model_validate(e) for e in self.observations.values()]

    def dataset_entries(self) -> list[DataSet]:
        """The data-set entries of the family's groups, validated (in stored order)."""
        return [DataSet.model_validate(d) for sets in self.datasets.values() for d in sets]


class IndexLine(BaseModel):
    """One line of the target index: a target in an observation group.

    Stored column-wise: a bucket's text is a JSON object of one list per field, in this order,
    NaN as null (:mod:`lcarchive.store.buckets`). The fields with defaults are those an index
    written by an earlier version lacks; a text without them reads as these defaults.

    Attributes
    ----------
    target : int
        The target's ID (TIC, KIC, EPIC).
    observation : str
        The observation group's ID.
    row : int
        The target's row in the group.
    ra, dec : float
        The target's position (deg, ICRS); NaN if unknown.
    mission, product : str
        The group's mission and product.
    segment : int
        The sector, quarter or campaign (-1 if none).
    current : bool
        False for a release group (a superseded release of the observation).
    n_cadences : int
        Cadences stored for the target (-1: unknown).
    coverage : float
        Fraction of the segment's cadences with a finite flux (NaN: unknown).
    magnitude : float
        TESSMAG or KEPMAG (mag; NaN if none).
    camera, ccd : int
        TESS's camera and CCD (-1 elsewhere).
    integrity : str
        The integrity state of the light curve's input file(s) ("" if not recorded).
    """

    model_config = ConfigDict(frozen=True)

    target: int
    observation: str
    row: int
    ra: float
    dec: float
    mission: str
    product: str
    segment: int
    current: bool
    n_cadences: int = -1
    coverage: float = math.nan
    magnitude: float = math.nan
    camera: int = -1
    ccd: int = -1
    integrity: str = ""
    target_catalog: str = ""
    designation: str = ""

    @field_validator("ra", "dec", "coverage", "magnitude", mode="before")
    @classmethod
    def _null_is_nan(cls, value: Any) -> Any:
        """null in the stored JSON is NaN."""
        return math.nan if value is None else value


def frame_of_lines(lines: Iterable[IndexLine]) -> pd.DataFrame:
    """Index lines as a frame of the index's columns and dtypes (:data:`lcarchive.catalog.index.COLUMNS`)."""
    rows = [line.model_dump() for line in lines]
    return pd.DataFrame({name: [r[name] for r in rows] for name in COLUMNS}).astype(COLUMNS)


def lines_of_frame(frame: pd.DataFrame) -> list[IndexLine]:
    """The index lines of a frame of the index's columns."""
    columns = {name: frame[name].tolist() for name in COLUMNS}
    return [IndexLine.model_validate({name: values[i] for name, values in columns.items()}) for i in range(len(frame))]
