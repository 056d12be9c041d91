"""Scale-out on Dask: an ingest parsed, encoded and written on a LocalCluster of 2 workers writes
the archive a serial ingest writes (every stored object byte for byte, every variable, attribute,
catalog entry and index line)."""

from __future__ import annotations

import subprocess

import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import lcarchive
from conftest import DATA, lcarchive_command

distributed = pytest.importorskip("dask.distributed")

FILES = [str(p) for d in ("spoc-2min", "spoc-2min-release0", "kepler", "qlp", "k2", "tess-spoc") for p in sorted((DATA / d).glob("*.fits"))[:3]]


def _stored_objects(archive: lcarchive.Archive, observation: str) -> dict[str, bytes]:
    """Every stored object of a group (its metadata documents and every chunk icechunk's manifest
    lists), by key."""
    store, path = archive.group_store(observation)
    group = zarr.open_group(store, path=path, mode="r")
    keys = [f"{path}/zarr.json"]
    for name, _ in group.arrays():
        keys.append(f"{path}/{name}/zarr.json")

        async def coords(name: str = name) -> list:
            return [c async for c in store.session.chunk_coordinates(f"/{path}/{name}")]

        keys.extend(f"{path}/{name}/c/{'/'.join(map(str, c))}" for c in sync(coords()))
    return {key: sync(store.get(key, default_buffer_prototype())).to_bytes() for key in keys}


def _same_archives(a: lcarchive.Archive, b: lcarchive.Archive) -> None:
    assert a.group_ids() == b.group_ids()
    for obs in a.group_ids():
        x, y = _stored_objects(a, obs), _stored_objects(b, obs)
        assert sorted(x) == sorted(y), obs
        assert [k for k in x if x[k] != y[k]] == [], obs
    assert [o.model_dump() for o in a.catalog.observations] == [o.model_dump() for o in b.catalog.observations]
    assert [d.model_dump() for d in a.catalog.datasets] == [d.model_dump() for d in b.catalog.datasets]
    assert a.target_index().equals(b.target_index())
    for obs in a.group_ids():
        with a.open_observation(obs) as x, b.open_observation(obs) as y:
            assert x.identical(y), obs


@pytest.mark.parametrize("batch", [256, 2], ids=["whole-groups", "appends"])
def test_a_dask_ingest_equals_the_serial_ingest(tmp_path, batch):
    """Batches of 2 files in shards of 2 targets: groups grow by appends that start new shards,
    each written by its own worker task (as batches of a big sector do)."""
    with lcarchive.config.override(batch_files=batch, targets_per_shard=2 if batch == 2 else 512):
        serial = lcarchive.Archive(str(tmp_path / "serial"))
        assert serial.ingest(FILES, jobs=1).ok
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            parallel = lcarchive.Archive(str(tmp_path / "dask"))
            with distributed.get_task_stream(client) as stream:
                report = parallel.ingest(FILES, client=client)
            assert report.ok and len(report.added) + len(report.superseded) > 0
        writers = {t["worker"] for t in stream.data if _writes_chunks(str(t["key"]))}
        assert len(writers) == 2, {str(t["key"]) for t in stream.data}  # both workers wrote chunks
        assert (batch == 2) == any("_write_rows" in str(t["key"]) for t in stream.data)  # appends were written there
    _same_archives(lcarchive.open_archive(serial.url), lcarchive.open_archive(parallel.url))


def _writes_chunks(key: str) -> bool:
    """A task that encodes and writes chunks: icechunk's (Dask chunks stored into a fork, named
    ``ice-changeset-...``), or lcarchive's row writes."""
    return key.startswith("ice-changeset") or "_write_rows" in key


def test_the_ingest_command_on_a_local_cluster(tmp_path):
    root = tmp_path / "cli"
    result = subprocess.run([lcarchive_command(), "ingest", str(root), *FILES[:8], "--workers", "2"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "files/s" in result.stdout
    serial = tmp_path / "serial"
    assert lcarchive.Archive(str(serial)).ingest(FILES[:8], jobs=1).ok
    _same_archives(lcarchive.open_archive(str(serial)), lcarchive.open_archive(str(root)))
