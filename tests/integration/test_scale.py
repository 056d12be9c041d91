"""Scale-out on Dask: an ingest parsed, encoded and written on a LocalCluster of 2 workers writes
the archive a serial ingest writes (every stored object byte for byte, every variable, attribute,
catalog entry and index line)."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import lcarchive

from conftest import DATA, lcarchive_command

distributed = pytest.importorskip("dask.distributed")

FILES = [
    str(p)
    for d in ("spoc-2min", "spoc-2min-release0", "kepler", "qlp", "k2", "tess-spoc")
    for p in sorted((DATA / d).glob("*.fits"))[:3]
]


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
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            distributed.Client(cluster) as client,
        ):
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
    result = subprocess.run(
        [lcarchive_command(), "ingest", str(root), *FILES[:8], "--workers", "2"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "(8 file(s) in " in result.stdout
    serial = tmp_path / "serial"
    assert lcarchive.Archive(str(serial)).ingest(FILES[:8], jobs=1).ok
    _same_archives(lcarchive.open_archive(str(serial)), lcarchive.open_archive(str(root)))


@pytest.fixture(scope="module")
def cluster_client():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _files(dest) -> dict[str, bytes]:
    return {
        str(p.relative_to(dest)): p.read_bytes()
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.name != "_lcarchive_manifest.jsonl"
    }


@pytest.mark.parametrize("fmt", ["parquet", "fits", "zarr"])
def test_a_download_on_a_cluster_writes_the_serial_download(tmp_path, cluster_client, fmt):
    root = tmp_path / "archive"
    with lcarchive.config.override(targets_per_shard=2):  # groups of several shards: several tasks per group
        assert lcarchive.Archive(str(root)).ingest(FILES[:9], jobs=1).ok
    archive = lcarchive.open_archive(str(root))
    selection = lcarchive.Selection(missions=["tess", "kepler"])
    serial = lcarchive.download(archive, tmp_path / "serial", selection, format=fmt)
    with distributed.get_task_stream(cluster_client) as stream:
        parallel = lcarchive.download(archive, tmp_path / "dask", selection, format=fmt, client=cluster_client)
    parts = [t for t in stream.data if "_download_part" in str(t["key"])]
    observations = {g.observation for g in lcarchive.search.select(archive.handle, selection)[0]}
    assert len({t["worker"] for t in parts}) == 2 and len(parts) >= len(observations) > 1, parts
    assert sorted(parallel.written) == sorted(serial.written) and parallel.n_targets == serial.n_targets > 0
    assert parallel.bytes_written == serial.bytes_written and parallel.requests > 0
    a, b = _files(tmp_path / "serial"), _files(tmp_path / "dask")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
    # the manifest, written by this process alone, makes a second run a no-op and verifies
    again = lcarchive.download(archive, tmp_path / "dask", selection, format=fmt, client=cluster_client)
    outputs = [w for w in serial.written if not w.startswith(("catalog.json", "index/"))]  # zarr: its catalog too
    assert again.written == [] and sorted(again.skipped) == sorted(outputs)
    assert lcarchive.verify(tmp_path / "dask").ok


def test_a_search_of_many_positions_on_a_cluster_finds_the_serial_lines(tmp_path, cluster_client):
    root = tmp_path / "archive"
    assert lcarchive.Archive(str(root)).ingest(FILES, jobs=1).ok
    archive = lcarchive.open_archive(str(root))
    index = archive.target_index()
    ra = np.concatenate([index["ra"].to_numpy(), [10.0, 200.0]])  # every star, and two empty positions
    dec = np.concatenate([index["dec"].to_numpy(), [-5.0, 60.0]])
    radius = np.where(np.arange(ra.size) % 2 == 0, 0.5, 5.0)
    serial = archive.search(cone=(ra, dec, radius), where="magnitude > 0 or magnitude != magnitude")
    # several tasks of a few positions: the override reaches the submitter, and its workers
    with lcarchive.config.override(search_part=4), distributed.get_task_stream(cluster_client) as stream:
        parallel = archive.search(cone=(ra, dec, radius), where="magnitude > 0 or magnitude != magnitude", client=cluster_client)
    tasks = [t for t in stream.data if "_part_lines" in str(t["key"])]
    assert len(tasks) == -(-ra.size // 4) and len({t["worker"] for t in tasks}) == 2
    assert len(serial) > ra.size // 2 and set(serial["position"]) >= set(range(len(index)))
    pd.testing.assert_frame_equal(parallel, serial)
    assert parallel.attrs == serial.attrs
