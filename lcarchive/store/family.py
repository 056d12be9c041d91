"""Reading and writing the groups of one observation family on a writable zarr store: an icechunk
session's store (ingest, migrations) or a plain folder (a download's subsets of targets).

Everything goes through zarr on the session's store (zarr's fused codec pipeline encodes the
shards); nothing is visible to anyone until the session is committed. A group whose cadence
axis or variables must change is rewritten whole; new targets are appended and replaced rows
overwritten in place, the other rows' stored chunks kept as they are by zarr's partial shard
writes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from lcarchive.catalog.build import observation_entry
from lcarchive.catalog.content import static_catalog
from lcarchive.layout import Block, block_from_dataset, encoding, fused, merge_blocks, open_group, to_dataset
from lcarchive.layout.frametable import FRAMES_GROUP, frame_inputs, frame_table, merge_frames
from lcarchive.layout.ranks import n_rows, release_key, version
from lcarchive.store import cluster

__all__ = ["FamilyView", "GroupState", "instruments_of", "summary"]


@dataclass
class GroupState:
    """What a group holds, read without its light curves."""

    target: np.ndarray
    cadenceno: np.ndarray
    sha256: list[str]
    source_file: list[str]
    release_keys: list[tuple]
    n_rows: list[int | None]
    integrity: list[str]
    template: Block
    attrs: dict

    def row(self, target: int) -> int | None:
        where = np.flatnonzero(self.target == target)
        return int(where[0]) if where.size else None


@dataclass
class FamilyView:
    """The groups of one observation family on a writable zarr store (an icechunk session's
    store, or a plain folder a download writes): the states of its groups, and what was written.

    Attributes
    ----------
    store : zarr.abc.store.Store
    session : icechunk.Session, optional
        The writable session ``store`` belongs to; with ``client``, the chunks of sharded
        variables are encoded and written on the cluster's workers (:mod:`lcarchive.store.cluster`).
    client : dask.distributed.Client, optional
    states : dict
        The states of groups read so far (kept up to date by writes).
    written : dict of str to set of int
        Rows written per group (every row for a group written whole).
    """

    store: Any
    session: Any = None
    client: Any = None
    states: dict[str, GroupState] = field(default_factory=dict)
    written: dict[str, set[int]] = field(default_factory=dict)
    _groups: set[str] | None = None

    def group_ids(self) -> set[str]:
        """The groups of the family's repository."""
        if self._groups is None:
            try:
                root = zarr.open_group(self.store, mode="r", zarr_format=3)
                self._groups = set(root.group_keys())
            except (FileNotFoundError, zarr.errors.GroupNotFoundError):
                self._groups = set()
        return self._groups

    def state(self, group_id: str) -> GroupState | None:
        """What a group holds; None if the family has no such group."""
        cached = self.states.get(group_id)
        if cached is not None:
            return cached
        if group_id not in self.group_ids():
            return None
        ds = open_group(self.store, group_id)
        series = {n: np.empty((0, ds.sizes["cadence"]), v.dtype) for n, v in ds.data_vars.items() if "cadence" in v.dims}
        per_target = {
            n: np.empty((0, *v.shape[1:]), object if v.dtype.kind == "T" else v.dtype)
            for n, v in ds.data_vars.items()
            if "cadence" not in v.dims
        }
        attrs = {n: dict(v.attrs) for n, v in ds.data_vars.items()}
        values = {
            n: ds[n].values
            for n in (
                "target",
                "cadenceno",
                "source_sha256",
                "source_file",
                "data_release",
                "file_date",
                "pipeline_version",
                "product_version",
                "n_rows",
                "integrity",
            )
            if n in ds
        }
        count = ds.sizes["target"]
        products = [str(x) for x in values["product_version"]] if "product_version" in values else [""] * count
        rows: list[int | None] = [int(x) for x in values["n_rows"]] if "n_rows" in values else [None] * count
        state = GroupState(
            target=values["target"].astype(np.int64),
            cadenceno=values["cadenceno"].astype(np.int64),
            sha256=[str(x) for x in values["source_sha256"]],
            source_file=[str(x) for x in values["source_file"]],
            release_keys=[
                (version(p), int(r), str(d), str(v))
                for p, r, d, v in zip(
                    products, values["data_release"], values["file_date"], values["pipeline_version"], strict=True
                )
            ],
            n_rows=rows,
            integrity=[str(x) for x in values["integrity"]] if "integrity" in values else [""] * count,
            template=Block(np.empty(0, np.int64), values["cadenceno"].astype(np.int64), series, per_target, attrs),  # type: ignore[arg-type]  # xarray's names are Hashable; ours are str
            attrs={k: v for k, v in ds.attrs.items() if not k.startswith("lcarchive_") or k == "lcarchive_format_version"},
        )
        self.states[group_id] = state
        return state

    def read_rows(self, group_id: str, rows: list[int]) -> Block:
        return block_from_dataset(open_group(self.store, group_id).isel(target=rows).load())

    def read_all(self, group_id: str) -> Block:
        return block_from_dataset(open_group(self.store, group_id).load())

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, group_id: str, added: list[Block], replaced: dict[int, Block], attrs: dict) -> None:
        """Add rows to a group and replace some of its rows, rewriting it only when its layout must change."""
        state = self.state(group_id)
        if state is None:
            merged = merge_blocks(added)
            self._write_whole(group_id, merged, summary(attrs, [merged]))
            self._write_frames(group_id, frame_table(merged, _quality_table(attrs)))
            return
        aligned = _fits_layout(state, [*replaced.values(), *added])
        if aligned is None:  # new cadences, variables or image sizes: rewrite on the union
            whole = self.read_all(group_id)
            rows = [whole.select([i]) for i in range(whole.target.size)]
            for row, block in replaced.items():
                rows[row] = block
            merged = merge_blocks([*rows, *added])
            self._write_whole(group_id, merged, summary(attrs, [merged]))
            self._write_frames(group_id, frame_table(merged, _quality_table(attrs)))
            return
        replace = {row: aligned.select([i]) for i, row in enumerate(replaced)}
        new_rows = aligned.select(list(range(len(replaced), aligned.target.size)))
        attrs = summary({**state.attrs, **attrs}, [aligned], state.attrs)
        start = state.target.size
        self._write_rows(group_id, new_rows, start, replace, attrs)
        self.written.setdefault(group_id, set()).update(range(start, start + new_rows.target.size), replace)
        for row, block in replace.items():
            state.sha256[row] = str(block.per_target["source_sha256"][0])
            state.source_file[row] = str(block.per_target["source_file"][0])
            state.release_keys[row] = release_key(block)
            state.n_rows[row] = n_rows(block)
            state.integrity[row] = _integrity(block)
        for i in range(new_rows.target.size):
            state.sha256.append(str(new_rows.per_target["source_sha256"][i]))
            state.source_file.append(str(new_rows.per_target["source_file"][i]))
            state.release_keys.append(release_key(new_rows, i))
            state.n_rows.append(n_rows(new_rows, i))
            state.integrity.append(_integrity(new_rows, i))
        state.target = np.concatenate([state.target, new_rows.target])
        state.attrs = attrs
        quality = _quality_table(attrs)
        stored = None if replace else self.read_frames(group_id)
        if stored is None:  # rows replaced (a table cannot take a file's values out), or a group written before frames
            tables = frame_table(frame_inputs(open_group(self.store, group_id)), quality)
        else:
            tables = merge_frames([stored, frame_table(new_rows, quality)], quality)
        self._write_frames(group_id, tables)

    def read_frames(self, group_id: str) -> Any:
        """A group's stored frame table (``xarray.Dataset``, loaded), or None if it has none."""
        try:
            return open_group(self.store, f"{group_id}/{FRAMES_GROUP}").load()
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return None

    def _write_frames(self, group_id: str, table: Any) -> None:
        """Write a group's frame table (``docs/format.md#frame-table``) as its child group ``frames``.

        Not written over a variable of that name (a column ``FRAMES``): the light curves come first.
        """
        group = zarr.open_group(self.store, path=group_id, mode="r", zarr_format=3)
        if isinstance(group.get(FRAMES_GROUP), zarr.Array):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            table.to_zarr(
                self.store,
                group=f"{group_id}/{FRAMES_GROUP}",
                mode="w",
                encoding=encoding(table),
                consolidated=False,
                zarr_format=3,
            )

    @property
    def on_cluster(self) -> bool:
        """Chunks are encoded and written on a Dask cluster's workers."""
        return self.client is not None and self.session is not None

    def _write_whole(self, group_id: str, block: Block, attrs: dict) -> None:
        ds = to_dataset(block, attrs)
        if self.on_cluster:
            cluster.write_dataset(self.session, self.client, ds, group_id, encoding(ds))
        else:
            with fused(), warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                ds.to_zarr(self.store, group=group_id, mode="w", encoding=encoding(ds), consolidated=False, zarr_format=3)
        self.states.pop(group_id, None)
        self.group_ids().add(group_id)
        self.written[group_id] = set(range(block.target.size))

    def _write_rows(self, group_id: str, block: Block, start: int, replace: dict[int, Block], attrs: dict) -> None:
        n_new = block.target.size
        total = start + n_new
        values_of = {**block.series, **block.per_target, "target": block.target}
        later: list[tuple[str, int, np.ndarray]] = []  # the new rows of sharded arrays, written on the cluster
        with fused(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            group = zarr.open_group(self.store, path=group_id, mode="r+", zarr_format=3)
            for name, array in group.arrays():
                dims = tuple(array.metadata.dimension_names or ())  # type: ignore[union-attr]  # Zarr v3 arrays only
                if not dims or dims[0] != "target":
                    continue
                if n_new:
                    array.resize((total, *array.shape[1:]))
                    if self.on_cluster and array.shards is not None:
                        later.append((f"{group_id}/{name}", start, _zarr_values(values_of[name])))
                    else:
                        array[start:total] = _zarr_values(values_of[name])
                for row, one in replace.items():
                    value = {**one.series, **one.per_target, "target": one.target}[name]
                    array[row : row + 1] = _zarr_values(np.asarray(value))
            group.attrs.update(attrs)
        if later:
            cluster.write_regions(self.session, self.client, later)

    def set_entries(self, group_id: str, family: str) -> tuple[dict, list[dict]]:
        """Compute a group's catalog entries (:func:`lcarchive.catalog.build.observation_entry`) and
        keep them in its attributes; return (observation, datasets) as JSON values."""
        ds = open_group(self.store, group_id)
        observation, datasets = observation_entry(ds, group_id, f"observations/{family}/{group_id}", static_catalog())
        entry = observation.model_dump(mode="json")
        sets = [d.model_dump(mode="json", exclude={"inputs"}) for d in datasets]
        group = zarr.open_group(self.store, path=group_id, mode="r+", zarr_format=3)
        group.attrs.update({"lcarchive_observation": entry, "lcarchive_datasets": sets})
        return entry, sets


def _quality_table(attrs: dict) -> Any:
    """The flag table a group's attributes name (None for none)."""
    name = attrs.get("quality_flags") or ""
    return next((t for t in static_catalog().quality_flags if t.name == name), None)


def _fits_layout(state: GroupState, blocks: list[Block]) -> Block | None:
    """Align blocks on the group's cadence axis; None if they need a rewrite (new cadences or variables)."""
    aligned = merge_blocks([state.template, *blocks])
    if not np.array_equal(aligned.cadenceno, state.cadenceno):
        return None
    for part, old in ((aligned.series, state.template.series), (aligned.per_target, state.template.per_target)):
        if set(part) != set(old) or any(part[k].dtype != old[k].dtype or part[k].shape[1:] != old[k].shape[1:] for k in part):
            return None
    return aligned


def _zarr_values(values: np.ndarray) -> np.ndarray:
    """Values as zarr takes them (Python strings for variable-length string arrays)."""
    if values.dtype.kind in "OTU":
        return np.array([str(v) for v in values], dtype=object)
    return values


def instruments_of(per_target: dict[str, np.ndarray]) -> set[str]:
    """Instrument names (``tess/camera4/ccd2``, ``kepler/module18/output3``) of targets'
    camera/CCD or module/output values, shape (n_targets,) each."""
    found = set()
    for cam_key, ccd_key, fmt in (("camera", "ccd", "tess/camera{}/ccd{}"), ("module", "output", "kepler/module{}/output{}")):
        if cam_key in per_target and ccd_key in per_target:
            for a, b in zip(per_target[cam_key], per_target[ccd_key], strict=True):
                if np.isfinite(a) and np.isfinite(b):
                    found.add(fmt.format(int(a), int(b)))
    return found


def summary(attrs: dict, blocks: list[Block], previous: dict | None = None) -> dict:
    """Group attributes with the time range and instruments of the rows written (and of ``previous``)."""
    lows, highs, instruments = [], [], set(previous.get("instruments", [])) if previous else set()
    if previous and previous.get("time_min") is not None:
        lows.append(previous["time_min"])
        highs.append(previous["time_max"])
    for block in blocks:
        time = block.series["time"]
        finite = time[np.isfinite(time)]
        if finite.size:
            lows.append(float(finite.min()))
            highs.append(float(finite.max()))
        instruments |= instruments_of(block.per_target)
    return {
        **attrs,
        "time_min": min(lows) if lows else None,
        "time_max": max(highs) if highs else None,
        "instruments": sorted(instruments),
    }


def _integrity(block: Block, row: int = 0) -> str:
    """A block row's ``integrity`` ("" for a block of rows stored before it was recorded)."""
    return str(block.per_target["integrity"][row]) if "integrity" in block.per_target else ""
