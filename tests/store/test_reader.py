"""lcarchive.store.reader against zarr's own reads: shard indexes parsed and chunk ranges coalesced on
real sharded arrays written by zarr (through xarray with the layout's encoding, and directly with
the index at the shard's end and shards never written), on a local folder and on moto S3, for any
subset of rows in any order."""

from __future__ import annotations

import asyncio
import itertools

import boto3
import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec

import lcarchive.config
from lcarchive.layout import Block, encoding, merge_blocks, to_dataset
from lcarchive.store.reader import BulkReader, GroupReader, coalesce, run

from conftest import aws_environ

N_TARGETS = 11
N_CAD = 17
PER_SHARD = 3
NAMES = ["time", "flux", "quality", "aperture", "header_primary", "tessmag", "flux_end"]


def _group() -> xr.Dataset:
    rng = np.random.default_rng(21)
    blocks = []
    for i in range(N_TARGETS):
        cadences = np.sort(rng.choice(40, size=rng.integers(3, N_CAD), replace=False))
        flux = rng.normal(size=cadences.size).astype("f4")
        if i == 4:
            flux[:] = np.nan  # a row of only the fill: zarr writes no chunk for it
        blocks.append(
            Block(
                np.array([1000 + i]),
                cadences.astype(np.int64),
                {
                    "time": (1300.0 + cadences / 720.0)[np.newaxis],
                    "flux": flux[np.newaxis],
                    "quality": rng.integers(0, 4096, cadences.size).astype("i4")[np.newaxis],
                },
                {
                    "aperture": rng.integers(0, 9, (1, 2, 3)).astype("i4"),
                    "header_primary": np.array([f"SIMPLE  =  T / target {i} \u00b0"], dtype=object),
                    "tessmag": np.array([rng.normal()]),
                },
            )
        )
    return to_dataset(merge_blocks(blocks), {})


def _write(store) -> None:
    ds = _group()
    with lcarchive.config.override(targets_per_shard=PER_SHARD):
        enc = encoding(ds)
    ds.to_zarr(store, group="g", mode="w", encoding=enc, consolidated=False, zarr_format=3)
    # an array with its shard index at the end, of which only some rows were ever written
    shape = (ds.sizes["target"], ds.sizes["cadence"])
    end = zarr.create_array(
        store,
        name="g/flux_end",
        shape=shape,
        dtype="f8",
        fill_value=np.nan,
        chunks=(PER_SHARD, shape[1]),
        compressors=None,
        serializer=ShardingCodec(
            chunk_shape=(1, shape[1]), index_location="end", codecs=[BytesCodec(), BloscCodec(cname="zstd"), Crc32cCodec()]
        ),
        dimension_names=["target", "cadence"],
    )
    values = np.arange(shape[0] * shape[1], dtype="f8").reshape(shape)
    for row in (0, 2, 7):  # shards 1 and 3 are never written
        end[row] = values[row]


_WHOLE: dict[int, dict[str, np.ndarray]] = {}


@pytest.fixture(scope="module", params=["local", "s3"])
def group_store(request, tmp_path_factory, moto_server):
    if request.param == "local":
        store = zarr.storage.LocalStore(str(tmp_path_factory.mktemp("reader")))
        _write(store)
        yield store
        _WHOLE.pop(id(store), None)
        return
    with pytest.MonkeyPatch.context() as patch:
        for key, value in aws_environ(moto_server).items():
            patch.setenv(key, value)
        boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="reader-test")
        options = {"endpoint_url": moto_server, "key": "testing", "secret": "testing", "asynchronous": True}
        store = zarr.storage.FsspecStore.from_url("s3://reader-test/groups", storage_options=options)
        _write(store)
        yield store
        _WHOLE.pop(id(store), None)


def _expected(store, name: str, rows: list[int]) -> np.ndarray:
    """The rows as zarr reads them (each array read whole by zarr once per store)."""
    whole = _WHOLE.setdefault(id(store), {})
    if name not in whole:
        values = zarr.open_array(store, path=f"g/{name}", mode="r")[...]
        whole[name] = values.astype(object) if values.dtype.kind == "T" else values
    return whole[name][np.asarray(rows, dtype=np.int64)]


def _same(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert got.shape == expected.shape, what
    if expected.dtype == object:
        assert got.tolist() == expected.tolist(), what
    else:
        assert got.dtype == expected.dtype, what
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"), err_msg=what)


async def _bulk(store, rows: list[int], gap: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    reader = await GroupReader.open(store, "g", "test")
    bulk = BulkReader(reader, asyncio.Semaphore(8))
    if gap is None:
        values = await bulk.read_rows(rows, NAMES)
    else:
        with lcarchive.config.override(coalesce_gap_bytes=gap):
            values = await bulk.read_rows(rows, NAMES)
    return values, bulk.requests


def test_the_group_opens_with_its_coordinates(group_store):
    reader = run(GroupReader.open(group_store, "g", "test"))
    with xr.open_zarr(group_store, group="g", consolidated=False) as ds:
        np.testing.assert_array_equal(reader.target, ds["target"].values)
        np.testing.assert_array_equal(reader.cadenceno, ds["cadenceno"].values)
    assert set(NAMES) <= set(reader.names)
    assert reader.row_of(1004) == 4 and reader.row_of(5) is None


@settings(max_examples=6)  # each example opens the group anew: cold indexes, a few requests to moto
@given(rows=st.lists(st.integers(0, N_TARGETS - 1), max_size=2 * N_TARGETS))
def test_rows_read_in_bulk_equal_zarrs_read(group_store, rows):
    values, _ = run(_bulk(group_store, rows))
    for name in NAMES:
        _same(values[name], _expected(group_store, name, rows), name)


@settings(max_examples=4)
@given(row=st.integers(0, N_TARGETS - 1))
def test_one_row_read_through_the_cached_index_equals_zarrs_read(group_store, row):
    async def read() -> dict[str, np.ndarray]:
        reader = await GroupReader.open(group_store, "g", "test")
        first = await reader.read_row(row, NAMES)
        again = await reader.read_row(row, NAMES)  # from the cached shard indexes
        for name in NAMES:
            _same(first[name], again[name], name)
        return first

    values = run(read())
    for name in NAMES:
        expected = _expected(group_store, name, [row])[0]
        _same(
            np.asarray(values[name]), np.asarray(expected, dtype=values[name].dtype if name != "header_primary" else object), name
        )


def test_rows_of_one_shard_are_one_request_after_its_index(group_store):
    """Every row of every shard, coalesced: a request for each shard's index and one for its chunks."""
    rows = list(range(N_TARGETS))
    shards = -(-N_TARGETS // PER_SHARD)
    _, requests = run(_bulk(group_store, rows, gap=1 << 20))
    # per sharded variable, a request for each shard's index and one range for each shard's chunks;
    # time, flux and quality (READ_TOGETHER) had their indexes fetched when the group opened (a small
    # group), outside the count; flux_end's two shards never written have an index request that
    # finds nothing and no range; tessmag is read whole by zarr, outside the count
    ranges = len(["time", "flux", "quality", "aperture", "header_primary"]) * shards + (shards - 2)
    indexes = len(["aperture", "header_primary", "flux_end"]) * shards
    assert requests == ranges + indexes
    _, apart = run(_bulk(group_store, rows, gap=-1))  # no coalescing: a request per written chunk
    assert apart > requests


SPANS = st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 300)), max_size=40)


@given(spans=SPANS, gap=st.integers(0, 400), largest=st.integers(1, 3000))
def test_coalesced_requests_cover_every_span_once_within_the_limits(spans, gap, largest):
    requests = coalesce(spans, gap, largest)
    members = sorted(m for _, _, ms in requests for m in ms)
    assert members == list(range(len(spans)))
    starts = [start for start, _, _ in requests]
    assert starts == sorted(starts)
    for start, stop, ms in requests:
        for m in ms:
            offset, nbytes = spans[m]
            assert start <= offset and offset + nbytes <= stop
        ordered = sorted(ms, key=lambda m: spans[m][0])
        assert stop - start <= max(largest, spans[ordered[0]][1])  # larger only as its first span is
        reach = spans[ordered[0]][0] + spans[ordered[0]][1]
        for m in ordered[1:]:
            assert spans[m][0] - reach <= gap
            reach = max(reach, spans[m][0] + spans[m][1])
    # neighbours in different requests are further apart than the gap, or would make one too large
    for (s1, e1, _), (_, _, ms2) in itertools.pairwise(requests):
        first = min(ms2, key=lambda m: spans[m][0])
        assert spans[first][0] - e1 > gap or spans[first][0] + spans[first][1] - s1 > largest
