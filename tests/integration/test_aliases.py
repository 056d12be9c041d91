"""One star across catalogs and missions, end to end on real files: the alias table filled by
ingest (header identifiers), edited by operators (Archive and the lcarchive command), kept by
re-opens, re-ingests, repairs and concurrent catalog commits; and light_curve(missions="all"),
the xarray backend and download --missions all reading a star's Kepler or K2 and TESS light
curves in one call, in BJD_TDB, stitched by lightkurve.

A true pair: HAT-P-7, KIC 10666592 in a Kepler short-cadence file of quarter 0 and TIC 424865156
in a SPOC 2-min file of sector 14 (tests/data/public/kepler-tess), paired by the positional
cross-match with no alias given, and read in one call. No public repository the search tools
reach holds a TESS file of Boyajian's star (KIC 8462852, TIC 185336364, whose Kepler file is here
too) nor of a K2 star, so the K2 case (and the other tests) make a real SPOC file of another star
(TIC 261136679, pi Men) one star with the Kepler and K2 stars by an operator's alias: every step
of the read after the alias (the index lines of both catalogs, each file's own time system,
quality flags and normalisation) is the one a true pair takes.
"""

from __future__ import annotations

import subprocess
import threading

import lightkurve as lk
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.time import Time

from lcarchive import Archive

from conftest import DATA, PUBLIC, lcarchive_command

KEPLER = PUBLIC / "kepler-tess" / "kplr008462852-2013098041711_llc.fits"
K2 = DATA / "k2" / "ktwo211436265-c05_llc.fits"
TESS = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
HATP7_KEPLER = PUBLIC / "kepler-tess" / "kplr010666592-2009131110544_slc.fits"
HATP7_TESS = PUBLIC / "kepler-tess" / "tess2019198215352-s0014-0000000424865156-0150-s_lc.fits"
TGLC = [
    DATA / "tglc" / "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0007-cam2-ccd3_tess_v2_llc.fits",
    DATA / "tglc" / "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0008-cam2-ccd4_tess_v2_llc.fits",
]
LCARCHIVE = lcarchive_command()


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([LCARCHIVE, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"lcarchive {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def _pairs(archive: Archive) -> list[tuple[str, str, str]]:
    return [(r.a, r.b, r.source) for r in archive.aliases().itertuples()]


def test_header_aliases_survive_reopen_reingest_and_repair(tmp_path):
    root = str(tmp_path / "arch")
    archive = Archive(root)
    archive.ingest([str(TGLC[0])])
    expected = [("Gaia DR3 5707485527450614656", "TIC 218795833", "header")]  # TGLC's GAIADR3 beside its TICID
    assert _pairs(archive) == expected
    assert "gaia_dr3 of tess-tglc" in archive.aliases()["evidence"][0]
    assert _pairs(Archive(root)) == expected  # a re-open reads it from the catalog repository
    version = archive.read_version()
    report = archive.ingest([str(TGLC[0])])  # the same file again: nothing changes
    assert report.unchanged and archive.read_version() == version and _pairs(archive) == expected
    archive.ingest([str(p) for p in TGLC])  # a second sector of the star: the same pair, once
    assert _pairs(archive) == expected
    assert [(a.a, a.b) for a in archive.catalog.aliases] == [expected[0][:2]]  # in the catalog document
    archive.build_catalog()  # a repair rebuilds pins and index: the table stays
    assert _pairs(Archive(root)) == expected
    assert Archive(root).names("TIC 218795833") == ["TIC 218795833", "Gaia DR3 5707485527450614656"]


def test_cross_match_pairs_no_stars_that_are_apart(tmp_path):
    archive = Archive(str(tmp_path / "arch"))
    archive.ingest([str(KEPLER), str(K2), str(TESS)])  # three stars of three catalogs, degrees apart
    assert archive.aliases().empty
    lines = archive.target_index()
    assert set(lines["target"]) == {8462852, 211436265, 261136679}


def test_operator_aliases_with_the_command(tmp_path):
    root = str(tmp_path / "arch")
    run("ingest", root, str(KEPLER), str(TESS))
    added = run("alias", root, "KIC 8462852", "tic 261136679", "--note", "the test's pair")
    assert "KIC 8462852 = tic 261136679: recorded" in added.stdout
    assert "already recorded" in run("alias", root, "KIC 8462852", "TIC 261136679").stdout
    listed = run("alias", root, "KIC 8462852").stdout.splitlines()
    assert listed[0] == "KIC 8462852 = TIC 261136679"
    assert listed[1].split("\t") == ["KIC 8462852", "TIC 261136679", "operator", "the test's pair"]
    assert run("alias", root).stdout.splitlines() == listed[1:]
    run("ingest", root, str(KEPLER), str(TESS), str(K2))  # kept on re-ingest and on another ingest
    assert _pairs(Archive(root)) == [("KIC 8462852", "TIC 261136679", "operator")]
    assert "removed" in run("alias", root, "TIC 261136679", "KIC 8462852", "--remove").stdout
    assert run("alias", root, "KIC 8462852").stdout.splitlines() == ["KIC 8462852", "no aliases of KIC 8462852"]
    assert "nothing removed" in run("alias", root, "TIC 261136679", "KIC 8462852", "--remove").stdout
    bad = run("alias", root, "KIC 8462852", "XYZ 1", check=False)
    assert bad.returncode == 2 and "names no star of a catalog" in bad.stderr and "Traceback" not in bad.stderr
    messages = [v["message"] for v in Archive(root).history()]
    assert "alias KIC 8462852 = TIC 261136679" in messages and "alias removed: KIC 8462852 = TIC 261136679" in messages


def _own_times(path) -> np.ndarray:
    """A file's times in BJD_TDB as astropy gives them from its own keywords."""
    with fits.open(path) as hdul:
        head = hdul[1].header
        t = np.asarray(hdul[1].data["TIME"], dtype=np.float64)
    out = np.full(t.shape, np.nan)
    ok = np.isfinite(t)
    out[ok] = Time(head["BJDREFI"] + head["BJDREFF"] + t[ok], format="jd", scale="tdb").jd
    return out


@pytest.mark.parametrize(
    ("other", "name", "mission", "offset"),
    [(KEPLER, "KIC 8462852", "kepler", 2454833.0), (K2, "EPIC 211436265", "k2", 2454833.0)],
    ids=["kepler+tess", "k2+tess"],
)
def test_one_star_across_missions_in_one_call(tmp_path, other, name, mission, offset):
    root = str(tmp_path / "arch")
    archive = Archive(root)
    archive.ingest([str(other), str(TESS)])
    alone = archive.light_curve(name, missions="all")  # no alias yet: the star of its own mission alone
    assert list(alone["observation_mission"].values) == [mission] and alone.attrs["names"] == name
    archive.add_alias(name, "TIC 261136679")
    every = Archive(root).light_curve(name, missions="all", quality_bitmask="none")
    assert every.attrs["time_system"] == "BJD_TDB" and every.attrs["time_format"] == "jd"
    assert every.attrs["time_offsets"] == f"BKJD = BJD_TDB - {offset:.1f}; BTJD = BJD_TDB - 2457000.0"
    assert every.attrs["names"] == f"{name}, TIC 261136679"
    assert list(every["observation_mission"].values) == [mission, "tess"]
    assert list(every["time_offset_jd"].values) == [offset, 2457000.0]
    for obs, path in zip(every["observation"].values, (other, TESS), strict=True):
        mine = every["time"].values[every["cadence_observation"].values == obs]
        np.testing.assert_array_equal(mine, _own_times(path))  # every row, each file's own times converted
    # each observation keeps its own quality flags and is normalised by its own median
    masked = archive.light_curve(name, missions="all", normalize=True)
    for obs, alone in zip(
        masked["observation"].values, (archive.light_curve(name), archive.light_curve("TIC 261136679")), strict=True
    ):
        part = masked["cadence_observation"].values == obs
        assert part.sum() == alone.sizes["cadence"]
        assert np.nanmedian(masked["flux"].values[part]) == pytest.approx(1.0, abs=1e-6)
    # lightkurve: a collection of each mission's class that stitch() takes, times as lightkurve reads the files
    collection = masked.lc.to_lightkurve()
    assert isinstance(collection, lk.LightCurveCollection)
    assert [type(c).__name__ for c in collection] == ["KeplerLightCurve", "TessLightCurve"]
    assert collection[0].meta["KEPLERID"] == int(name.split()[1]) and collection[1].meta["TICID"] == 261136679
    stitched = collection.stitch()
    assert len(stitched) == masked.sizes["cadence"]
    theirs = lk.LightCurveCollection([lk.read(str(other)), lk.read(str(TESS))]).stitch()
    np.testing.assert_array_equal(stitched.time.tdb.jd, theirs.time.tdb.jd)
    np.testing.assert_allclose(stitched.flux.value, theirs.flux.value, rtol=1e-6)


def test_a_true_pair_is_matched_by_position_and_read_in_one_call(tmp_path):
    """HAT-P-7 in Kepler and TESS files, ingested in one batch with no options and no alias."""
    root = str(tmp_path / "arch")
    Archive(root).ingest([str(HATP7_TESS), str(HATP7_KEPLER)])
    archive = Archive(root)
    pairs = _pairs(archive)
    assert pairs == [("KIC 10666592", "TIC 424865156", "crossmatch")], pairs
    assert archive.names("TIC 424865156") == ["TIC 424865156", "KIC 10666592"]
    every = archive.light_curve("TIC 424865156", missions="all", quality_bitmask="none")
    assert list(every["observation_mission"].values) == ["kepler", "tess"]  # in time order
    for obs, path in zip(every["observation"].values, (HATP7_KEPLER, HATP7_TESS), strict=True):
        mine = every["time"].values[every["cadence_observation"].values == obs]
        np.testing.assert_array_equal(mine, _own_times(path))
    # the same star from its Kepler name: the same light curve
    xr.testing.assert_identical(
        archive.light_curve("KIC 10666592", missions="all", quality_bitmask="none").drop_attrs(),
        every.drop_attrs(),
    )
    stitched = archive.light_curve("KIC 10666592", missions="all", normalize=True).lc.to_lightkurve().stitch()
    theirs = lk.LightCurveCollection([lk.read(str(HATP7_KEPLER)), lk.read(str(HATP7_TESS))]).stitch()
    np.testing.assert_array_equal(stitched.time.tdb.jd, theirs.time.tdb.jd)
    np.testing.assert_allclose(stitched.flux.value, theirs.flux.value, rtol=1e-6)


def test_backend_and_download_read_every_mission(tmp_path):
    root = str(tmp_path / "arch")
    archive = Archive(root)
    archive.ingest([str(KEPLER), str(TESS)])
    archive.add_alias("KIC 8462852", "TIC 261136679")
    with xr.open_dataset(root, engine="lcarchive", target="KIC 8462852", missions="all") as ds:
        assert list(ds["observation_mission"].values) == ["kepler", "tess"]
        assert ds.attrs["time_system"] == "BJD_TDB"
    dest = tmp_path / "down"
    run("download", root, str(dest), "-t", "KIC 8462852", "--missions", "all", "--format", "fits")
    written = sorted(p.name for p in dest.rglob("*.fits"))
    assert len(written) == 2 and any("8462852" in n for n in written) and any("261136679" in n for n in written), written
    alone = tmp_path / "alone"
    run("download", root, str(alone), "-t", "KIC 8462852", "--format", "fits")
    assert len(list(alone.rglob("*.fits"))) == 1
    bad = run("download", root, str(tmp_path / "x"), "-t", "KIC 8462852", "--missions", "some", check=False)
    assert bad.returncode == 2 and "'all'" in bad.stderr


def test_concurrent_catalog_commits_keep_every_pair(tmp_path):
    root = str(tmp_path / "arch")
    Archive(root).ingest([str(KEPLER), str(TESS)])
    errors: list[BaseException] = []

    def guarded(work):
        def go():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 (reported by the test)
                errors.append(exc)

        return threading.Thread(target=go)

    threads = [
        guarded(lambda: Archive(root).ingest([str(p) for p in TGLC])),  # its header pair, in its catalog commit
        guarded(lambda: Archive(root).add_alias("KIC 8462852", "TIC 261136679")),
        guarded(lambda: Archive(root).ingest([str(K2)])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _pairs(Archive(root)) == [
        ("Gaia DR3 5707485527450614656", "TIC 218795833", "header"),
        ("KIC 8462852", "TIC 261136679", "operator"),
    ]
    assert 211436265 in set(Archive(root).target_index()["target"])
