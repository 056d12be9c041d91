"""``lcarchive download``: real files ingested into an S3 archive on a moto server, downloaded in
every format and compared with the source files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from astropy.time import Time

import lcarchive
from lcarchive.conventions import described
from lcarchive.downloads import read_targets_file, select
from lcarchive.formats.tables import read_csv_exact

from conftest import DATA, aws_environ, lcarchive_command
from reference import assert_bit_equal, source_table

pytestmark = pytest.mark.s3

BUCKET = "lcarchive-download"
PI_MEN = 261136679
SPOC_S1 = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
KEPLER = DATA / "kepler" / "kplr011442793-2009350155506_llc.fits"
QLP = DATA / "qlp" / "hlsp_qlp_tess_ffi_s0024-0000000039903405_tess_v01_llc.fits"
K2 = DATA / "k2" / "ktwo211436265-c05_llc.fits"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _header_ids(path: Path) -> tuple[int, str]:
    with fits.open(path) as hdul:
        head = hdul[0].header
        return int(head.get("TICID") or head.get("KEPLERID")), head


@pytest.fixture(scope="module")
def s3_env(moto_server: str):
    """AWS variables pointing at the moto server, for the whole module (its own bucket)."""
    import boto3
    import s3fs

    with pytest.MonkeyPatch.context() as mp:
        for key, value in aws_environ(moto_server).items():
            mp.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()
        boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=BUCKET)
        yield moto_server
        s3fs.S3FileSystem.clear_instance_cache()


SOURCES = [
    *sorted((DATA / "spoc-2min").glob("*s0001*.fits")),
    *sorted((DATA / "spoc-2min").glob("hlsp_*.fits")),
    DATA / "spoc-2min" / "target_s0001.fits",
    *sorted((DATA / "spoc-2min-release0").glob("*.fits")),
    *sorted((DATA / "kepler").glob("kplr011442793-*.fits")),
    QLP,
    K2,
    DATA / "tess-spoc" / "hlsp_tess-spoc_tess_phot_0000000039903405-s0024_tess_v1_lc.fits",
]
"""Real files of every in-scope product kind (ingest into moto costs ~10 requests a second)."""


@pytest.fixture(scope="module")
def s3_archive(s3_env) -> str:
    """Real files of ../shared (SPOC, an older release, Kepler, QLP, K2, TESS-SPOC) ingested into
    an archive on S3 (moto)."""
    url = f"s3://{BUCKET}/archive"
    report = lcarchive.Archive(url).ingest([str(p) for p in dict.fromkeys(SOURCES)])
    assert not report.skipped and report.added
    return url


def _all_files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


# -- FITS -------------------------------------------------------------------------------------


def test_fits_download_reproduces_the_source_files(s3_archive, tmp_path):
    sources = [SPOC_S1, KEPLER, QLP, K2]
    targets = [_header_ids(p)[0] for p in sources]
    dest = tmp_path / "fits"
    report = lcarchive.download(s3_archive, dest, lcarchive.Selection(targets=targets), format="fits", jobs=8)
    assert report.ok and not report.skipped
    by_name = {p.name: p for p in dest.rglob("*.fits")}
    for source in sources:
        out = by_name[source.name]
        # the whole file, byte for byte: the SHA-256 recorded at ingest
        assert _sha256(out) == _sha256(source), source.name
        # and as a reader sees it: every column on every row, every primary keyword
        expected, head0, head1 = source_table(source)
        actual, out0, out1 = source_table(out)
        assert set(actual) == set(expected)
        for name, column in expected.items():
            assert_bit_equal(actual[name], column, f"{source.name} {name}")
        assert list(out0.items()) == list(head0.items())
        assert list(out1.items()) == list(head1.items())
    # every light curve of those targets, in every observation, one file each
    index = lcarchive.open_archive(s3_archive).target_index()
    current = index[index["target"].isin(targets) & index["current"]]
    assert len(list(dest.rglob("*.fits"))) == len(current) == report.n_targets
    manifest = [json.loads(line) for line in (dest / "_lcarchive_manifest.jsonl").read_text().splitlines()]
    units = [m for m in manifest if "unit" in m]
    assert all(m["identical_to_source"] == [True] for m in units)


def test_fits_with_columns_and_time_range_reads_back(s3_archive, tmp_path):
    selection = lcarchive.Selection(
        targets=[PI_MEN], observations=["tess-spoc-2min-s0001"], columns=["sap_flux"], time=(1330.0, 1335.0)
    )
    lcarchive.download(s3_archive, tmp_path, selection, format="fits")
    [out] = list(tmp_path.rglob("*.fits"))
    expected, _head0, head1 = source_table(SPOC_S1)
    keep = (expected["TIME"] >= 1330.0) & (expected["TIME"] <= 1335.0)
    with fits.open(out) as hdul:
        table = hdul[1].data
        assert table.names == ["TIME", "CADENCENO", "SAP_FLUX", "PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "QUALITY"]
        for name in table.names:
            assert_bit_equal(np.asarray(table[name]).astype(expected[name].dtype), expected[name][keep], name)
        assert hdul[1].header["TUNIT3"] == head1["TUNIT4"]  # SAP_FLUX keeps its unit
        assert hdul[0].header["TICID"] == PI_MEN
        assert [h.name for h in hdul] == ["PRIMARY", "LIGHTCURVE", "APERTURE"]


# -- Parquet, CSV, HDF5 -------------------------------------------------------------------------


def _expected_rows(path: Path, flux: str, flux_err: str | None, quality: str) -> pd.DataFrame:
    cols, _, _ = source_table(path)
    frame = pd.DataFrame(
        {
            "cadenceno": cols["CADENCENO"].astype(np.int64),
            "time": cols["TIME"],
            "flux": cols[flux],
            "flux_err": cols[flux_err] if flux_err else np.full(len(cols["TIME"]), np.nan, dtype="f4"),
            "quality": cols[quality].astype(np.int32),
        }
    )
    return frame.sort_values("cadenceno", kind="stable").reset_index(drop=True)


def test_parquet_download_equals_the_source_columns(s3_archive, tmp_path):
    sources = {
        SPOC_S1: ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "QUALITY"),
        KEPLER: ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "SAP_QUALITY"),
        QLP: ("SAP_FLUX", "KSPSAP_FLUX_ERR", "QUALITY"),  # as lightkurve: SAP flux, the KSP error
    }
    targets = [_header_ids(p)[0] for p in sources]
    selection = lcarchive.Selection(targets=targets, columns=["sap_flux"])
    lcarchive.download(s3_archive, tmp_path, selection, format="parquet", jobs=4)
    table = pd.read_parquet(tmp_path)  # every part file of the folder as one table
    assert list(table.columns) == ["target", "observation", "cadenceno", "time", "flux", "flux_err", "quality", "sap_flux"]
    for source, (flux, err, quality) in sources.items():
        target, _head = _header_ids(source)
        obs = {SPOC_S1: "tess-spoc-2min-s0001", KEPLER: "kepler-lc-q03", QLP: "tess-qlp-s0024"}[source]
        got = table[(table["target"] == target) & (table["observation"] == obs)].reset_index(drop=True)
        want = _expected_rows(source, flux, err, quality)
        assert len(got) == len(want), source.name
        for name in ("cadenceno", "time", "flux", "flux_err", "quality"):
            assert_bit_equal(got[name].to_numpy(), want[name].to_numpy(), f"{source.name} {name}")
        sap = source_table(source)[0]["SAP_FLUX"]
        assert_bit_equal(
            got["sap_flux"].to_numpy(), sap[np.argsort(source_table(source)[0]["CADENCENO"], kind="stable")], "sap_flux"
        )
    import pyarrow.parquet as pq

    part = next(tmp_path.glob("tess-spoc-2min-s0001/*.parquet"))
    schema = pq.read_schema(part)
    assert schema.field("flux").metadata[b"units"] == b"electron / s"
    assert schema.field("time").metadata[b"time_format"] == b"BTJD"
    meta = json.loads(schema.metadata[b"lcarchive"])
    assert meta["observation"]["id"] == "tess-spoc-2min-s0001"
    assert {d["variable"] for d in meta["datasets"]} >= {"flux", "sap_flux"}
    # the standard readers, with units and descriptions
    import astropy.units as u
    from astropy.table import Table

    astropy_table = Table.read(part)
    assert astropy_table["flux"].unit == u.electron / u.s and astropy_table["time"].unit == u.day
    assert astropy_table["observation"][0] == "tess-spoc-2min-s0001"
    assert astropy_table["cadenceno"].description == "cadence number (CADENCENO)"
    frame = pd.read_parquet(part)
    assert frame.attrs["units"]["flux"] == "electron / s" and frame.attrs["units"]["time"] == "d"
    assert_bit_equal(np.asarray(astropy_table["flux"]), frame["flux"].to_numpy(), "astropy and pandas read one table")
    assert pq.read_table(part).column("observation").type == "string"


def test_csv_and_hdf5_downloads(s3_archive, tmp_path):
    selection = lcarchive.Selection(targets=[PI_MEN], observations=["tess-spoc-2min-s0001"])
    lcarchive.download(s3_archive, tmp_path / "csv", selection, format="csv")
    lcarchive.download(s3_archive, tmp_path / "h5", selection, format="hdf5")
    want = _expected_rows(SPOC_S1, "PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "QUALITY")
    [csv] = list((tmp_path / "csv").rglob("*.csv"))
    got = read_csv_exact(csv)  # pandas' default parser before 3.1 may miss the last bit
    assert (got["target"] == PI_MEN).all() and (got["observation"] == "tess-spoc-2min-s0001").all()
    np.testing.assert_array_equal(got["cadenceno"], want["cadenceno"])
    np.testing.assert_array_equal(got["quality"], want["quality"])
    # CSV text round-trips float32/float64 exactly (shortest repr)
    np.testing.assert_array_equal(got["flux"].to_numpy(np.float32), want["flux"].to_numpy())
    np.testing.assert_array_equal(got["time"].to_numpy(), want["time"].to_numpy())
    [h5] = list((tmp_path / "h5").rglob("*.h5"))
    with pd.HDFStore(h5, mode="r") as store:  # SkyPortal's reading: one table, metadata on its storer
        [key] = store.keys()
        series = store[key]
        metadata = store.get_storer(key).attrs.metadata
    # bmjd_tdb: BJD_TDB - 2400000.5 = BTJD + 56999.5; mjd: SkyPortal's, UTC at the spacecraft from the stored TIMECORR
    np.testing.assert_array_equal(series["bmjd_tdb"].to_numpy(), want["time"].to_numpy() + (2457000.0 - 2400000.5))
    cols, _, _ = source_table(SPOC_S1)
    finite = np.isfinite(cols["TIME"])
    local = cols["TIME"][finite] - cols["TIMECORR"][finite].astype(np.float64)
    utc = Time(np.full(local.shape, 2457000.0 - 2400000.5), local, format="mjd", scale="tdb").utc.mjd
    assert np.max(np.abs(series["mjd"].to_numpy()[finite] - utc)) < 1e-8
    delay = (series["bmjd_tdb"].to_numpy() - series["mjd"].to_numpy())[finite] * 86400.0 - 69.184  # minus TT - UTC
    assert delay.min() > 60 and delay.max() < 110  # pi Men's barycentric correction in sector 1, s
    assert "TIMECORR" in metadata["altdata"]["mjd_correction"] and "mjd: MJD (UTC)" in metadata["altdata"]["time_system"]
    assert_bit_equal(series["flux"].to_numpy(), want["flux"].to_numpy(), "flux")
    assert_bit_equal(series["fluxerr"].to_numpy(), want["flux_err"].to_numpy(), "fluxerr")
    with fits.open(SPOC_S1) as hdul:
        head = hdul[0].header
        assert metadata["series_obj_id"] == str(PI_MEN)
        assert metadata["series_name"] == "tess-spoc-2min-s0001"
        assert metadata["ra"] == head["RA_OBJ"] and metadata["dec"] == head["DEC_OBJ"]
        assert metadata["channel"] == f"{head['CAMERA']}_{head['CCD']}"
    assert metadata["filter"] == "tess" and metadata["exp_time"] == 120.0 and metadata["time_stamp_alignment"] == "middle"


# -- zarr ---------------------------------------------------------------------------------------


def test_zarr_subset_is_an_archive_readable_with_plain_xarray(s3_archive, tmp_path):
    targets = [PI_MEN, 358108509, 11442793]
    report = lcarchive.download(s3_archive, tmp_path, lcarchive.Selection(targets=targets), format="zarr", jobs=8)
    assert report.ok
    source = lcarchive.open_archive(s3_archive)
    copy = lcarchive.open_archive(str(tmp_path))
    index = source.target_index()
    expected_groups = set(index.loc[index["target"].isin(targets) & index["current"], "observation"])
    assert {o.id for o in copy.observations} == expected_groups
    for obs in expected_groups:
        with xr.open_dataset(tmp_path / "observations" / f"{obs}.zarr", engine="zarr") as ds, source.open_observation(obs) as src:
            assert set(ds.target.values) == set(targets) & set(src.target.values)
            assert set(ds.data_vars) == set(src.data_vars)
            for t in ds.target.values:
                a, b = ds.sel(target=t).load(), src.sel(target=t).load()
                for name in ("time", "flux", "flux_err", "quality", "sap_flux", "header_primary"):
                    if name in b:
                        np.testing.assert_array_equal(a[name].values, b[name].values)
                # the stored attributes, which the archive's datasets give with CF's long_name added
                assert described(a)["flux"].attrs == b["flux"].attrs
    for t in targets:
        a, b = copy.light_curve(t, quality_bitmask="none"), source.light_curve(t, quality_bitmask="none")
        assert_bit_equal(a["flux"].values, b["flux"].values, f"{t} flux")
        np.testing.assert_array_equal(a["cadenceno"].values, b["cadenceno"].values)


async def _objects(store, prefix: str) -> dict[str, bytes]:
    from zarr.core.buffer import default_buffer_prototype

    keys = [k async for k in store.list_prefix(prefix)]
    return {k[len(prefix) + 1 :]: (await store.get(k, default_buffer_prototype())).to_bytes() for k in keys}


def test_a_zarr_subset_of_many_groups_at_once_completes(full_archive, tmp_path):
    """A few columns of every group of the archive (27 groups): the writers once filled zarr's own
    threads with synchronous zarr calls waiting on I/O that needed those threads, and it hung."""
    dest = tmp_path / "many"
    result = subprocess.run(
        [lcarchive_command(), "download", full_archive.url, str(dest), "--format", "zarr", "--columns", "time,flux"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    groups = {p.name.removesuffix(".zarr") for p in (dest / "observations").glob("*.zarr")}
    assert len(groups) >= 9 and groups == set(full_archive.search()["observation"])
    with xr.open_zarr(dest / "observations" / "tess-spoc-2min-s0001.zarr", consolidated=True) as ds:
        assert {"time", "flux"} <= set(ds.data_vars) and "sap_flux" not in ds


def test_zarr_mirror_of_a_whole_observation_copies_the_objects(s3_archive, tmp_path):
    from zarr.core.sync import sync

    report = lcarchive.download(s3_archive, tmp_path, lcarchive.Selection(observations=["tess-spoc-2min-s0001"]), format="zarr")
    assert report.n_targets == 5
    store, path = lcarchive.open_archive(s3_archive).group_store("tess-spoc-2min-s0001")
    remote = sync(_objects(store, path))
    local_root = tmp_path / "observations" / "tess-spoc-2min-s0001.zarr"
    local = {str(p.relative_to(local_root)): p.read_bytes() for p in local_root.rglob("*") if p.is_file()}
    assert local == remote  # undecoded, object for object
    with xr.open_dataset(local_root, engine="zarr") as ds:
        assert ds.sizes["target"] == 5
    copy = lcarchive.open_archive(str(tmp_path))
    assert [o.id for o in copy.observations] == ["tess-spoc-2min-s0001"]
    # the same catalog entry, but for the link to the older release's group, which was not copied
    original = lcarchive.open_archive(s3_archive).catalog.observation("tess-spoc-2min-s0001")
    assert original.superseded_by_release == ["tess-spoc-2min-s0001.dr0"]
    entry = copy.catalog.observation("tess-spoc-2min-s0001")
    assert entry.superseded_by_release == []
    assert entry.group == "observations/tess-spoc-2min-s0001.zarr"
    same = {"superseded_by_release", "group"}
    assert entry.model_dump(exclude=same) == original.model_dump(exclude=same)


# -- resumable, verified ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["fits", "parquet", "zarr"])
def test_a_second_identical_run_rewrites_nothing(s3_archive, tmp_path, fmt):
    selection = lcarchive.Selection(targets=[PI_MEN, 11442793])
    first = lcarchive.download(s3_archive, tmp_path, selection, format=fmt)
    assert first.written
    before = _all_files(tmp_path)
    second = lcarchive.download(s3_archive, tmp_path, selection, format=fmt)
    expected_skipped = sorted(u for u in first.written if not u.endswith(("catalog.json", ".parquet")) or fmt != "zarr")
    assert second.written == [] and sorted(second.skipped) == expected_skipped
    after = _all_files(tmp_path)
    manifest = "_lcarchive_manifest.jsonl"
    assert {k: v for k, v in after.items() if k != manifest} == {k: v for k, v in before.items() if k != manifest}
    assert lcarchive.verify(tmp_path).ok


def test_interrupted_download_resumes_and_verify_finds_damage(s3_archive, tmp_path):
    selection = lcarchive.Selection(products=["spoc-2min"], segments=[1])
    lcarchive.download(s3_archive, tmp_path, selection, format="fits")
    files = sorted(tmp_path.rglob("*.fits"))
    assert len(files) == 5
    # an interruption: one output never finished (its partial file left behind), one cut short
    gone, cut = files[0], files[1]
    gone.rename(gone.with_name(f".{gone.name}.partial"))
    cut.write_bytes(cut.read_bytes()[:1000])
    report = lcarchive.verify(tmp_path)
    assert not report.ok
    assert {p for p, _ in report.problems} == {str(gone.relative_to(tmp_path)), str(cut.relative_to(tmp_path))}
    untouched = {p: p.stat().st_mtime_ns for p in files[2:]}
    again = lcarchive.download(s3_archive, tmp_path, selection, format="fits")
    assert sorted(again.written) == sorted(str(p.relative_to(tmp_path)) for p in (gone, cut))
    assert all(p.stat().st_mtime_ns == m for p, m in untouched.items())
    assert lcarchive.verify(tmp_path).ok
    assert not list(tmp_path.rglob("*.partial")) or all(p.name.startswith(".") for p in tmp_path.rglob("*.partial"))
    for p in files:
        with fits.open(p) as hdul:
            assert hdul[1].data is not None


def test_a_killed_download_is_told_by_verify_and_completed_by_a_rerun(s3_archive, tmp_path):
    """A run killed (SIGKILL) once its first output is written: verify fails naming what the run
    promised and never wrote; the same command again completes it."""
    dest = tmp_path / "d"
    kill_after_first = (
        "import os, signal, sys, lcarchive\n"
        "lcarchive.download(sys.argv[1], sys.argv[2], format='fits', progress=lambda done, total: os.kill(os.getpid(), signal.SIGKILL))"
    )
    killed = subprocess.run([sys.executable, "-c", kill_after_first, s3_archive, str(dest)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = {str(p.relative_to(dest)) for p in dest.rglob("*.fits")}
    verify = subprocess.run([lcarchive_command(), "download", "--verify", str(dest)], capture_output=True, text=True)
    assert verify.returncode == 1 and "all match" not in verify.stdout, verify.stdout
    assert "missing of the" in verify.stderr and "run the same download again" in verify.stderr, verify.stderr
    report = lcarchive.verify(dest)
    assert report.missing and not report.ok and report.promised > report.checked
    again = lcarchive.download(s3_archive, dest, format="fits")
    assert again.skipped and set(again.skipped) <= left  # what the killed run finished is kept
    complete = {str(p.relative_to(dest)) for p in dest.rglob("*.fits")}
    assert left < complete
    for path in complete - left:  # each output the killed run left out was named, or its observation was
        assert path in report.missing or f"{path.split('/')[0]}/" in report.missing, (path, report.missing)
    assert lcarchive.verify(dest).ok


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB tmpfs (a full disk for real); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_destination_is_named_and_the_rerun_completes(s3_archive, tiny_disk):
    dest = tiny_disk / "d"
    args = [lcarchive_command(), "download", s3_archive, str(dest), "--product", "spoc-2min", "--sector", "1", "--format", "fits"]
    full = subprocess.run(args, capture_output=True, text=True)
    assert full.returncode == 2 and full.stderr.count("\n") == 1, full.stderr
    assert full.stderr.startswith(f"lcarchive: {dest}: ") and "no room left on the device" in full.stderr, full.stderr
    assert s3_archive not in full.stderr
    report = lcarchive.verify(dest)
    assert report.missing and not report.ok
    for path in dest.rglob("*.fits"):  # what was written is whole
        with fits.open(path) as hdul:
            assert hdul[1].data is not None
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert len(list(dest.rglob("*.fits"))) == 5 and lcarchive.verify(dest).ok


# -- selection ----------------------------------------------------------------------------------------


def test_unknown_target_is_named_and_the_rest_downloaded(s3_archive, tmp_path):
    env = dict(os.environ)
    out = subprocess.run(
        [
            lcarchive_command(),
            "download",
            s3_archive,
            str(tmp_path),
            "--target",
            str(PI_MEN),
            "--target",
            "123456789",
            "--format",
            "parquet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1, out.stderr
    assert "123456789" in out.stderr and "Traceback" not in out.stderr
    assert set(pd.read_parquet(tmp_path)["target"]) == {PI_MEN}
    out = subprocess.run(
        [lcarchive_command(), "download", s3_archive, str(tmp_path / "x"), "--observation", "tess-spoc-2min-s0099"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1 and "tess-spoc-2min-s0099" in out.stderr
    verify = subprocess.run([lcarchive_command(), "download", "--verify", str(tmp_path)], capture_output=True, text=True)
    assert verify.returncode == 0 and "all match" in verify.stdout


def test_targets_file_forms(tmp_path):
    text = tmp_path / "toi.txt"
    text.write_text("# my targets\nTIC 261136679\n\n358108509  # second\nKIC 11442793\n")
    assert read_targets_file(text) == [261136679, 358108509, 11442793]
    table = tmp_path / "t.csv"
    pd.DataFrame({"name": ["pi Men", "x"], "TIC_ID": [261136679, 358108509]}).to_csv(table, index=False)
    assert read_targets_file(table) == [261136679, 358108509]
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"obj": [5, 6], "other": [1, 2]}).to_parquet(parquet)
    assert read_targets_file(parquet, column="obj") == [5, 6]
    bad = tmp_path / "bad.txt"
    bad.write_text("261136679\npi Men\n")
    with pytest.raises(lcarchive.BadInputError, match=r"bad.txt.*line 2.*pi Men"):
        read_targets_file(bad)
    with pytest.raises(lcarchive.BadInputError, match="no target column"):
        read_targets_file(parquet)


def test_selection_filters(s3_archive):
    archive = lcarchive.open_archive(s3_archive)

    def chosen(**kwargs) -> set[tuple[str, int]]:
        groups, _, _ = select(archive, lcarchive.Selection(**kwargs))
        return {(g.observation, int(t)) for g in groups for t in g.targets}

    everything = chosen()
    assert all(not o.endswith(".dr0") for o, _ in everything)
    assert ("tess-spoc-2min-s0001.dr0", 25155310) in chosen(include_superseded=True)
    assert {o for o, _ in chosen(missions=["kepler"])} == {"kepler-lc-q03", "kepler-lc-q04", "kepler-lc-q05"}
    assert {o for o, _ in chosen(products=["qlp"], segments=[24])} == {"tess-qlp-s0024"}
    # cone of 1 degree around pi Men (RA_OBJ 84.29, Dec -80.47): pi Men only
    with fits.open(SPOC_S1) as hdul:
        ra, dec = hdul[0].header["RA_OBJ"], hdul[0].header["DEC_OBJ"]
    assert {t for _, t in chosen(cone=(ra, dec, 1.0))} == {PI_MEN}
    # a time range picks the observations it overlaps: BTJD 1330 is in sector 1 only
    assert {o for o, _ in chosen(missions=["tess"], time=(1330.0, 1331.0))} == {"tess-spoc-2min-s0001"}
    # ISO dates (UTC) are converted to each mission's time: 2018-08-01 is in TESS sector 1
    assert {o for o, _ in chosen(missions=["tess"], time=("2018-08-01", "2018-08-02"))} == {"tess-spoc-2min-s0001"}
    groups, missing, _ = select(archive, lcarchive.Selection(targets=[PI_MEN, 1]))
    assert missing == [1] and {int(t) for g in groups for t in g.targets} == {PI_MEN}
    with pytest.raises(lcarchive.SelectionError, match="ISO"):
        select(archive, lcarchive.Selection(time=("soon", "later")))


def test_bad_requests_are_clear_errors(s3_archive, tmp_path):
    with pytest.raises(lcarchive.SelectionError, match=r"unknown column.*nope"):
        lcarchive.download(s3_archive, tmp_path, lcarchive.Selection(targets=[PI_MEN], columns=["nope"]), format="parquet")
    with pytest.raises(lcarchive.SelectionError, match="unknown format"):
        lcarchive.download(s3_archive, tmp_path, format="votable")
    with pytest.raises(lcarchive.SelectionError, match="local folder"):
        lcarchive.download(s3_archive, "s3://elsewhere/x", format="fits")
    out = subprocess.run([lcarchive_command(), "download", "--verify", str(tmp_path / "none")], capture_output=True, text=True)
    assert out.returncode == 2 and "no download manifest" in out.stderr


def test_command_line_selection_options(s3_archive, tmp_path):
    targets = tmp_path / "targets.csv"
    pd.DataFrame({"name": ["pi Men", "other"], "tic": [PI_MEN, 358108509]}).to_csv(targets, index=False)
    out = subprocess.run(
        [
            lcarchive_command(),
            "download",
            s3_archive,
            str(tmp_path / "out"),
            "--targets-file",
            str(targets),
            "--sector",
            "1",
            "--mission",
            "tess",
            "--columns",
            "sap_flux,mom_centr1",
            "--time",
            "1330",
            "1335",
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "2 light curve(s) selected" in out.stdout
    table = pd.concat(pd.read_csv(p) for p in (tmp_path / "out").rglob("*.csv"))
    assert list(table.columns) == [
        "target",
        "observation",
        "cadenceno",
        "time",
        "flux",
        "flux_err",
        "quality",
        "sap_flux",
        "mom_centr1",
    ]
    assert set(table["target"]) == {PI_MEN, 358108509} and set(table["observation"]) == {"tess-spoc-2min-s0001"}
    assert table["time"].between(1330, 1335).all()
