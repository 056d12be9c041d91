"""Archives of plain Zarr v3 groups, read-only: store format v1, and the copies ``download --format zarr`` writes.

Layout::

    <root>/catalog.json                   the catalog (lcarchive.Catalog as JSON)
    <root>/index/targets.parquet          the target index (lcarchive.catalog.index)
    <root>/observations/<id>.zarr/        one plain Zarr v3 group per observation group

Any Zarr client reads these groups; lcarchive reads them with the same read path as its own
archives (zarr on a store), and ``lcarchive migrate`` converts a v1 archive into format v2.
"""

from __future__ import annotations

import fsspec
import pandas as pd
import zarr

from lcarchive.catalog import index as target_index
from lcarchive.catalog.models import Catalog
from lcarchive.clients import missing_reason, read_bytes, read_store, store_errors, with_defaults
from lcarchive.errors import ArchiveNotFoundError, DamagedArchiveError
from lcarchive.identifiers import OBSERVATION_ID, check_observation_id

__all__ = ["CATALOG_NAME", "OBSERVATIONS_DIR", "PlainStore", "first_problem"]

CATALOG_NAME = "catalog.json"
OBSERVATIONS_DIR = "observations"


class PlainStore:
    """A read-only archive of plain Zarr groups at ``url`` (a local folder or an fsspec URL).

    Parameters
    ----------
    url : str
    storage_options : dict, optional
        fsspec options (credentials, endpoint).
    """

    read_only = True

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.storage_options = with_defaults(url, storage_options)
        self.fs, root = fsspec.core.url_to_fs(url, **self.storage_options)
        self.url = self.fs.unstrip_protocol(root).rstrip("/") if "://" in url else root.rstrip("/")
        self.root = root.rstrip("/")
        self.anon = bool(self.storage_options.get("anon"))
        self._index: pd.DataFrame | None = None

    def exists(self) -> bool:
        """True if the root holds a ``catalog.json``."""
        with store_errors(self.url, self.anon):
            return self.fs.exists(f"{self.root}/{CATALOG_NAME}")

    def catalog(self) -> Catalog:
        """The catalog stored at the root.

        Raises
        ------
        ArchiveNotFoundError
            If there is no ``catalog.json``.
        DamagedArchiveError
            If it is no valid catalog.
        """
        try:
            with store_errors(self.url, self.anon):
                text = read_bytes(self.fs, self.url, f"{self.root}/{CATALOG_NAME}", self.storage_options)
        except FileNotFoundError:
            raise ArchiveNotFoundError(self.url, missing_reason(self.fs, self.url, self.root)) from None
        try:
            return Catalog.model_validate_json(text)
        except ValueError as exc:  # pydantic's ValidationError (bad JSON included) is a ValueError
            raise DamagedArchiveError(self.url, CATALOG_NAME, first_problem(exc)) from exc

    def group_path(self, observation: str) -> str:
        """Path of a group under the root: ``observations/<id>.zarr``."""
        return f"{OBSERVATIONS_DIR}/{check_observation_id(observation)}.zarr"

    def group_ids(self) -> list[str]:
        """IDs of the groups present (one listing of ``observations/``)."""
        with store_errors(self.url, self.anon):
            try:
                listing = self.fs.ls(f"{self.root}/{OBSERVATIONS_DIR}", detail=False)
            except FileNotFoundError:
                return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in listing]
        return sorted(
            n.removesuffix(".zarr") for n in names if n.endswith(".zarr") and OBSERVATION_ID.fullmatch(n.removesuffix(".zarr"))
        )

    def group_store(self, observation: str) -> tuple[object, str]:
        """(zarr store, path) of a group, for :class:`lcarchive.store.reader.GroupReader` and xarray.

        Raises
        ------
        KeyError
            If the folder holds no such group (as :meth:`ArchiveStore.group_store
            <lcarchive.store.ArchiveStore.group_store>` does for a group its version does not pin).
        """
        url = f"{self.url}/{self.group_path(observation)}"
        with store_errors(self.url, self.anon):
            if not self.fs.exists(f"{self.root}/{self.group_path(observation)}/zarr.json"):
                raise KeyError(observation)
        store = read_store(url, self.storage_options)
        if isinstance(store, str):
            store = (
                zarr.storage.FsspecStore.from_url(store, storage_options=self.storage_options, read_only=True)
                if "://" in store
                else zarr.storage.LocalStore(store, read_only=True)
            )
        return store, ""

    def index(self, targets: list[int] | None = None) -> pd.DataFrame:
        """Lines of the target index (of ``targets``, or all).

        Raises
        ------
        DamagedArchiveError
            If ``index/targets.parquet`` is no Parquet table.
        """
        if self._index is None:
            try:
                with store_errors(self.url, self.anon):
                    data = read_bytes(self.fs, self.url, f"{self.root}/{target_index.INDEX_PATH}", self.storage_options)
            except FileNotFoundError:  # an archive written before the index existed
                from lcarchive.layout.encoding import open_group

                rows = []
                for obs_id in self.group_ids():
                    store, path = self.group_store(obs_id)
                    rows.append(target_index.group_rows(open_group(store, path), obs_id))
                self._index = target_index.merge_rows(None, rows, set())
            else:
                try:
                    self._index = target_index.from_bytes(data)
                except Exception as exc:  # pyarrow's errors for a damaged Parquet file are of many kinds
                    raise DamagedArchiveError(self.url, target_index.INDEX_PATH, first_problem(exc)) from exc
        frame = self._index
        if targets is not None:
            frame = frame[frame["target"].isin(list(targets))].reset_index(drop=True)
        return frame

    def analyses(self) -> list:
        """None stored: analyses live in an archive's catalog repository (format v2)."""
        return []

    def read_analysis(self, analysis_id: str) -> dict:
        """Raises KeyError: a folder of plain Zarr groups holds no analyses."""
        raise KeyError(analysis_id)

    def index_pixels(self, pixels: object) -> None:
        """None: a folder of plain Zarr groups keeps one index table and no sky index (searches
        by position read the whole table)."""
        return None


def first_problem(exc: Exception) -> str:
    """One line of what is wrong with a damaged file (pydantic lists every field; keep the first)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "the document"
            return f"{where}: {first.get('msg', '')}"
        except Exception:
            pass
    from lcarchive.clients import first_line

    return first_line(f"{type(exc).__name__}: {exc}")
