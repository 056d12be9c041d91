"""One set of tests, run on every kind of store an archive can be: an archive on local disk, an
archive on (moto) S3, and a read-only folder of plain Zarr groups (a download, or store format v1).

Each kind is a subclass of :class:`StoreConformance` giving its fixtures: ``archive_url`` (an
archive holding the light curves of :data:`FILES`, built once per class), ``fresh_url`` (a place
of that kind holding nothing yet) and ``store_of`` (the store object of the kind: ``ArchiveStore``
or ``PlainStore``). Tests that write skip on the read-only kind, saying so. Everything goes through
public APIs: ``lcarchive.open_archive``, ``Archive`` and the stores' public methods.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
import zarr

import lcarchive
from lcarchive.store import ArchiveStore, PlainStore

from conftest import DATA, aws_environ

lk = pytest.importorskip("lightkurve")

SPOC = DATA / "spoc-2min"
FILES = {  # sector 1, one observation group of three targets
    279741379: SPOC / "target_s0001.fits",
    261136679: SPOC / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits",
    358108509: SPOC / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits",
}
LATER = SPOC / "target_s0002.fits"  # TIC 279741379, sector 2
OBSERVATION = "tess-spoc-2min-s0001"


def _lightkurve(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lk.read(str(path), quality_bitmask="none")


def _ingest(url: str, files: list[Path]) -> None:
    report = lcarchive.Archive(url).ingest([str(p) for p in files])
    assert report.ok and not report.skipped, report


def _assert_as_lightkurve_reads(ds, path: Path) -> None:
    """Every stored cadence with a time stamp (lightkurve's read leaves out the others) equals
    lightkurve's read of the source file, value for value and in its dtype."""
    source = _lightkurve(path)
    timed = np.isfinite(ds["time"].values)
    assert timed.sum() == len(source)
    np.testing.assert_array_equal(ds["cadenceno"].values[timed], np.asarray(source["cadenceno"]))
    np.testing.assert_array_equal(ds["time"].values[timed], source.time.value)
    for name in ("flux", "flux_err", "quality", "sap_flux"):
        expected = np.asarray(getattr(source[name], "value", source[name]))
        assert ds[name].dtype == expected.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(ds[name].values[timed], expected, err_msg=name)


class StoreConformance:
    """The behaviour every kind of store shares. Subclasses set ``writable`` and ``versioned`` and
    give the fixtures ``archive_url``, ``fresh_url`` and ``store_of``."""

    writable = True
    versioned = True

    @pytest.fixture(scope="class")
    @classmethod
    def archive_url(cls) -> str:
        raise NotImplementedError

    @pytest.fixture
    def fresh_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store_of(self) -> Callable[[str], ArchiveStore | PlainStore]:
        raise NotImplementedError

    def needs_writing(self) -> None:
        if not self.writable:
            pytest.skip("a folder of plain Zarr groups is read-only (lcarchive migrate converts one)")

    # -- existence --------------------------------------------------------------------------
    def test_a_missing_archive_is_reported(self, fresh_url, store_of):
        archive = lcarchive.open_archive(fresh_url)
        assert not archive.exists
        assert not store_of(fresh_url).exists()
        with pytest.raises(lcarchive.ArchiveNotFoundError):
            archive.catalog
        with pytest.raises(lcarchive.ArchiveNotFoundError):
            archive.light_curve(261136679)

    def test_an_archive_exists(self, archive_url, store_of):
        archive = lcarchive.open_archive(archive_url)
        assert archive.exists and store_of(archive_url).exists()
        assert archive.read_only is not self.writable

    def test_ingest_creates_an_archive_that_reads_back_as_lightkurve_reads(self, fresh_url, store_of):
        self.needs_writing()
        _ingest(fresh_url, [FILES[261136679]])
        archive = lcarchive.open_archive(fresh_url)
        assert archive.exists and store_of(fresh_url).exists()
        _assert_as_lightkurve_reads(archive.light_curve("TIC 261136679", quality_bitmask="none"), FILES[261136679])

    def test_writes_are_refused_where_read_only(self, archive_url):
        archive = lcarchive.open_archive(archive_url)
        if self.writable:
            archive.check_root()  # the root takes writes (its bucket exists)
            return
        with pytest.raises(lcarchive.LcarchiveError, match="lcarchive migrate"):
            archive.ingest([str(LATER)])

    # -- catalog and index -----------------------------------------------------------------
    def test_the_catalog_lists_the_observation(self, archive_url, store_of):
        archive = lcarchive.open_archive(archive_url)
        assert [o.id for o in archive.observations] == [OBSERVATION]
        assert archive.group_ids() == [OBSERVATION]
        entry = archive.catalog.observation(OBSERVATION)
        assert entry.id == OBSERVATION
        store = store_of(archive_url)
        assert store.group_ids() == [OBSERVATION]
        assert [o.id for o in store.catalog().observations] == [OBSERVATION]

    def test_the_target_index_has_a_line_per_target_and_group(self, archive_url, store_of):
        archive = lcarchive.open_archive(archive_url)
        index = archive.target_index()
        assert sorted(index["target"]) == sorted(FILES)
        assert set(index["observation"]) == {OBSERVATION} and index["current"].all()
        targets = archive.targets(OBSERVATION)
        for _, line in index.iterrows():
            assert targets[int(line["row"])] == line["target"]
        one = archive.target_index([358108509])
        assert list(one["target"]) == [358108509]
        assert sorted(store_of(archive_url).index()["target"]) == sorted(FILES)

    # -- reading ---------------------------------------------------------------------------
    @pytest.mark.parametrize("target", sorted(FILES))
    def test_a_stored_light_curve_reads_as_lightkurve_reads(self, archive_url, target):
        archive = lcarchive.open_archive(archive_url)
        _assert_as_lightkurve_reads(archive.light_curve(target, quality_bitmask="none"), FILES[target])

    def test_a_groups_store_is_plain_zarr(self, archive_url):
        archive = lcarchive.open_archive(archive_url)
        store, path = archive.group_store(OBSERVATION)
        group = zarr.open_group(store, path=path, mode="r")
        targets = np.asarray(group["target"][:])
        np.testing.assert_array_equal(targets, archive.targets(OBSERVATION))
        flux = group["flux"]
        assert flux.shape == (len(FILES), group["cadenceno"].shape[0])
        with archive.open_observation(OBSERVATION) as ds:
            assert ds.sizes["target"] == len(FILES)
            row = int(np.flatnonzero(targets == 261136679)[0])
            np.testing.assert_array_equal(ds["flux"].isel(target=row).values, flux[row])

    # -- versions --------------------------------------------------------------------------
    def test_versions(self, archive_url):
        archive = lcarchive.open_archive(archive_url)
        if not self.versioned:
            assert archive.read_version() is None
            with pytest.raises(lcarchive.LcarchiveError, match="has no versions"):
                lcarchive.open_archive(archive_url, version="dr1").catalog
            return
        history = archive.history()
        assert history and history[0]["snapshot"] == archive.read_version()
        assert all(set(entry) >= {"snapshot", "time", "message", "metadata", "tags"} for entry in history)
        name = f"t{uuid.uuid4().hex[:8]}"
        assert archive.tag(name) == archive.read_version()
        assert lcarchive.open_archive(archive_url, version=name).read_version() == archive.read_version()
        with pytest.raises(lcarchive.LcarchiveError):
            archive.tag(name)

    def test_a_tag_keeps_its_version_while_the_archive_grows(self, fresh_url):
        self.needs_writing()
        _ingest(fresh_url, [FILES[279741379]])
        lcarchive.open_archive(fresh_url).tag("dr1")
        _ingest(fresh_url, [LATER])
        latest, dr1 = lcarchive.open_archive(fresh_url), lcarchive.open_archive(fresh_url, version="dr1")
        assert [o.id for o in dr1.observations] == [OBSERVATION]
        assert [o.id for o in latest.observations] == [OBSERVATION, "tess-spoc-2min-s0002"]
        assert "tess-spoc-2min-s0002" in set(latest.light_curve(279741379, quality_bitmask="none")["observation"].values)
        _assert_as_lightkurve_reads(dr1.light_curve(279741379, quality_bitmask="none"), FILES[279741379])
        history = latest.history()
        assert len(history) >= 2 and "dr1" in history[1]["tags"]
        assert LATER.name in history[0]["message"] or LATER.name in str(history[0]["metadata"])

    # -- errors ----------------------------------------------------------------------------
    def test_errors_name_what_is_missing(self, archive_url):
        archive = lcarchive.open_archive(archive_url)
        with pytest.raises(lcarchive.TargetNotFoundError):
            archive.light_curve(123456789)
        with pytest.raises(lcarchive.TargetNotFoundError):
            archive.light_curve(123456789, observation=OBSERVATION)
        with pytest.raises(lcarchive.ObservationNotFoundError):
            archive.light_curve(261136679, observation="tess-spoc-2min-s0002")
        with pytest.raises(lcarchive.ObservationNotFoundError):
            archive.open_observation("tess-spoc-2min-s0099")
        with pytest.raises(lcarchive.ObservationNotFoundError):
            archive.group_store("tess-spoc-2min-s0099")
        with pytest.raises(lcarchive.InvalidIdentifierError):
            archive.open_observation("../evil")


# -- the kinds -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_archive(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("conformance") / "archive")
    _ingest(url, list(FILES.values()))
    return url


class TestLocalArchive(StoreConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def archive_url(cls, local_archive) -> str:
        return local_archive

    @pytest.fixture
    def fresh_url(self, tmp_path) -> str:
        return str(tmp_path / "fresh")

    @pytest.fixture
    def store_of(self) -> Callable[[str], ArchiveStore | PlainStore]:
        return ArchiveStore


class TestS3Archive(StoreConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, moto_server) -> Iterator[str]:
        """A bucket of the moto server, the AWS variables pointing at it for the class's tests."""
        with pytest.MonkeyPatch.context() as patch:
            for key, value in aws_environ(moto_server).items():
                patch.setenv(key, value)
            boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="conformance")
            yield "s3://conformance"

    @pytest.fixture(scope="class")
    @classmethod
    def archive_url(cls, bucket) -> str:
        url = f"{bucket}/archive"
        _ingest(url, list(FILES.values()))
        return url

    @pytest.fixture
    def fresh_url(self, bucket) -> str:
        return f"{bucket}/fresh-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def store_of(self) -> Callable[[str], ArchiveStore | PlainStore]:
        return ArchiveStore


class TestPlainZarrFolder(StoreConformance):
    writable = False
    versioned = False

    @pytest.fixture(scope="class")
    @classmethod
    def archive_url(cls, local_archive, tmp_path_factory) -> str:
        dest = tmp_path_factory.mktemp("plain") / "download"
        report = lcarchive.download(local_archive, dest, lcarchive.Selection(), format="zarr")
        assert report.ok
        return str(dest)

    @pytest.fixture
    def fresh_url(self, tmp_path) -> str:
        (tmp_path / "empty").mkdir()
        return str(tmp_path / "empty")

    @pytest.fixture
    def store_of(self) -> Callable[[str], ArchiveStore | PlainStore]:
        return PlainStore
