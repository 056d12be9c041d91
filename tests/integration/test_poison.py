"""Poison inputs and hostile archives: each is refused by name with a true reason, or stored safely;
nothing already stored is lost, and nothing is written outside a download's folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import lcarchive

from conftest import DATA, lcarchive_command

SOURCE = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000358108509-0120-s_lc.fits"


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _header(key, value, hdu=0):
    def change(hdul):
        hdul[hdu].header[key] = value

    return change


def _rows(n):
    def change(hdul):
        hdul[1].data = hdul[1].data[:n]

    return change


def _column(name, fmt, convert):
    def change(hdul):
        cols = [
            c if c.name != name else fits.Column(name=name, format=fmt, array=convert(np.asarray(hdul[1].data[name])))
            for c in hdul[1].columns
        ]
        hdul[1] = fits.BinTableHDU.from_columns(cols, header=hdul[1].header)

    return change


def _all_nan_time(hdul):
    hdul[1].data["TIME"][:] = np.nan


def _many_hdus(hdul):
    hdul.extend(fits.ImageHDU(np.zeros(1, dtype="u1")) for _ in range(1500))


def _primary_only(hdul):
    del hdul[1:]


REFUSED = {  # name: (change, words of the reason)
    "sector-2e62": (_header("SECTOR", 2**62), "SECTOR = 4611686018427387904 is not a"),
    "sector-1e18": (_header("SECTOR", 10**18), "is not a Transiting Exoplanet Survey Satellite (TESS) sector"),
    "sector-negative": (_header("SECTOR", -1), "SECTOR = -1 is not a"),
    "sector-text": (_header("SECTOR", "one"), "SECTOR = 'one' is not a"),
    "sector-fraction": (_header("SECTOR", 1.5), "SECTOR = 1.5 is not a"),
    "tic-zero": (_header("TICID", 0), "TICID = 0 is not a TIC ID"),
    "tic-huge": (_header("TICID", 10**15), "is not a TIC ID (the IDs issued: 1..10005000540)"),
    "tic-text": (_header("TICID", "abc"), "TICID = 'abc' is not an integer TIC ID"),
    "tic-empty": (_header("TICID", ""), "no TICID value"),
    "rows-0": (_rows(0), "holds no rows"),
    "time-all-nan": (_all_nan_time, "no finite time stamp"),
    "flux-complex": (_column("PDCSAP_FLUX", "C", lambda a: a.astype("c8")), "holds complex numbers"),
    "time-text": (_column("TIME", "20A", lambda a: np.array([str(x) for x in a])), "the time column TIME (TFORM 20A) holds text"),
    "quality-float": (_column("QUALITY", "E", lambda a: a.astype("f4")), "not integer bit masks"),
    "hdus-1500": (_many_hdus, "more than 1000 HDUs"),
    "primary-only": (_primary_only, "holds no table"),
}


def _write(dest: Path, name: str, change) -> Path:
    with fits.open(SOURCE) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
        change(hdul)
        path = dest / f"{name}.fits"
        hdul.writeto(path, output_verify="silentfix")
    return path


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """An archive holding one real light curve, to show that bad inputs change nothing."""
    root = tmp_path_factory.mktemp("poison") / "archive"
    assert lcarchive.Archive(str(root)).ingest([str(DATA / "spoc-2min" / "target_s0001.fits")]).ok
    return root


@pytest.mark.parametrize("name", list(REFUSED))
def test_poison_file_is_refused_by_name_and_changes_nothing(name, stored, tmp_path):
    change, reason = REFUSED[name]
    path = _write(tmp_path, name, change)
    root = tmp_path / "archive"
    shutil.copytree(stored, root)
    before = snapshot(root)
    started = time.perf_counter()
    report = lcarchive.Archive(str(root)).ingest([str(path)])
    assert time.perf_counter() - started < 60  # bounded, even for 1500 HDUs
    assert [s for s, _ in report.skipped] == [str(path)], report
    assert reason in report.skipped[0][1], report.skipped[0][1]
    assert "\n" not in report.skipped[0][1]
    assert snapshot(root) == before


@pytest.mark.parametrize("cut", [100, 2880, 5000, 2880 * 3 + 7, 0.5, -100])
def test_truncated_file_is_refused_as_damaged(cut, tmp_path):
    data = SOURCE.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    path = tmp_path / "cut.fits"
    path.write_bytes(data[:n])
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)])
    assert len(report.skipped) == 1 and report.added == []
    assert any(w in report.skipped[0][1] for w in ("truncated", "unreadable", "corrupt")), report.skipped


@pytest.mark.parametrize("n", [1, 5])
def test_short_files_are_light_curves(n, tmp_path):
    """One rule for every length: a file with rows and a time stamp is a light curve (0 rows is none)."""
    path = _write(tmp_path, f"rows-{n}", _rows(n))
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)])
    assert report.ok and len(report.added) == 1
    ds = lcarchive.open_archive(str(tmp_path / "a")).open_observation("tess-spoc-2min-s0001")
    assert int(ds["n_rows"].values[0]) == n and ds.sizes["cadence"] == n
    assert str(ds["integrity"].values[0]) == "stale-cards"  # astropy kept the old CHECKSUM cards: a cut-down copy
    assert "a cut-down copy" in str(ds["ingest_notes"].values[0])


def test_wrong_datasum_cards_damage_a_mission_product_not_a_published_hlsp(tmp_path):
    """DATASUM cards that fail with no CHECKSUM to say otherwise: on a SPOC file (a mission product, whose
    pipeline writes them right) the file is possibly damaged; on a K2SFF HLSP (published so: the DATASUM of
    every aperture table) it is recorded as stale-cards."""
    from lcarchive.formats import read_lightcurves

    k2sff = DATA / "k2sff" / "hlsp_k2sff_k2_lightcurve_221312395-c91_kepler_v1_llc.fits"
    states = {}
    for name, src in (("spoc", SOURCE), ("k2sff", k2sff)):
        with fits.open(src) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
            for h in hdul:
                h.header.pop("CHECKSUM", None)
                if isinstance(h, fits.BinTableHDU):
                    h.header["DATASUM"] = "12345"
            path = tmp_path / f"{name}.fits"
            hdul.writeto(path)
        (lc,) = read_lightcurves(str(path))
        states[name] = lc.integrity.state
        assert {h.datasum for h in lc.integrity.hdus if h.name != "PRIMARY"} <= {"fail", "absent"}
    assert states == {"spoc": "damaged", "k2sff": "stale-cards"}


def test_gzip_files_are_read_and_are_the_file_they_hold(tmp_path):
    gz = tmp_path / f"{SOURCE.name}.gz"
    gz.write_bytes(gzip.compress(SOURCE.read_bytes()))
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(gz)])
    assert report.ok and len(report.added) == 1
    ds = lcarchive.open_archive(str(root)).open_observation("tess-spoc-2min-s0001")
    assert str(ds["source_sha256"].values[0]) == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert "gzip" in str(ds["ingest_notes"].values[0])
    again = lcarchive.Archive(str(root)).ingest([str(SOURCE)])  # the plain file is the same input
    assert len(again.unchanged) == 1 and not again.added
    exported = lcarchive.download(str(root), tmp_path / "x", format="fits")
    (out,) = (tmp_path / "x").rglob("*.fits")
    assert exported.ok and out.name == SOURCE.name and out.read_bytes() == SOURCE.read_bytes()
    cut = tmp_path / "cut.fits.gz"
    cut.write_bytes(gz.read_bytes()[:5000])
    report = lcarchive.Archive(str(root)).ingest([str(cut)])
    assert report.skipped and "truncated gzip" in report.skipped[0][1]


def test_file_name_with_control_characters_is_stored_safely(tmp_path):
    weird = tmp_path / "new\nline\tname.fits"
    weird.write_bytes(SOURCE.read_bytes())
    root = tmp_path / "a"
    assert lcarchive.Archive(str(root)).ingest([str(weird)]).ok
    archive = lcarchive.open_archive(str(root))
    assert str(archive.open_observation("tess-spoc-2min-s0001")["source_file"].values[0]) == "new%0Aline%09name.fits"
    # later ingests of the observation and a catalog rebuild still work, and the row is still one file
    assert lcarchive.Archive(str(root)).ingest([str(DATA / "spoc-2min" / "target_s0001.fits")]).ok
    lcarchive.Archive(str(root)).build_catalog()
    names = set(lcarchive.open_archive(str(root)).inputs()["name"])
    assert names == {"new%0Aline%09name.fits", "target_s0001.fits"}


def test_table_sector_beyond_int64_is_refused_by_name(tmp_path):
    import pandas as pd

    with fits.open(SOURCE) as hdul:
        t = hdul[1].data
        frame = pd.DataFrame(
            {
                "btjd": t["TIME"][:50].astype("f8"),
                "flux": t["PDCSAP_FLUX"][:50].astype("f8"),
                "sector": [1e19] * 50,
                "tic": [358108509] * 50,
            }
        )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    mapping = {"mission": "tess", "target": "tic", "segment_column": "sector", "time": "btjd", "flux": "flux"}
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)], table_map=mapping)
    assert report.skipped and "10000000000000000000 is not a" in report.skipped[0][1]
    assert not (tmp_path / "a" / "observations").exists() or not any((tmp_path / "a" / "observations").iterdir())


def test_header_fuzz_never_breaks_an_ingest(tmp_path):
    """Forty copies of a real file with random bytes of its headers changed: each is stored or refused with
    a one-line reason, never an exception, and the archive's catalog still rebuilds to the same."""
    data = bytearray(SOURCE.read_bytes())
    rng = np.random.default_rng(9)
    header_bytes = [i for i in range(2880 * 4) if chr(data[i]) not in " "]
    paths = []
    for k in range(40):
        copy = bytearray(data)
        for position in rng.choice(header_bytes, size=3, replace=False):
            copy[position] = int(rng.integers(32, 127))
        path = tmp_path / f"fuzz{k:02d}.fits"
        path.write_bytes(bytes(copy))
        paths.append(path)
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in paths])
    accounted = {s for s, *_ in report.added} | {s for s, *_ in report.superseded} | {s for s, *_ in report.unchanged}
    accounted |= {s for s, _ in report.skipped}
    assert accounted == {str(p) for p in paths}
    assert all("\n" not in reason and reason for _, reason in report.skipped)
    archive = lcarchive.open_archive(str(root))
    assert lcarchive.Archive(str(root)).build_catalog().model_dump() == archive.catalog.model_dump()


def test_damaged_catalog_buckets_name_themselves_and_the_repair(stored, tmp_path):
    cli = lcarchive_command()
    root = tmp_path / "archive"
    shutil.copytree(stored, root)
    for path in (root / "catalog" / "chunks").iterdir():  # every bucket of the pins and of the target index
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x04
        path.write_bytes(bytes(data))
    for probe in (["ls", str(root)], ["ls", str(root), "--target", "279741379"], ["catalog", "show", str(root)]):
        result = subprocess.run([cli, *probe], capture_output=True, text=True)
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "/catalog/families is damaged" in result.stderr and f"lcarchive catalog build {root}" in result.stderr
    subprocess.run([cli, "catalog", "build", str(root)], capture_output=True, text=True, check=True)
    listed = json.loads(
        subprocess.run(
            [cli, "ls", str(root), "--target", "279741379", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [o["id"] for o in listed] == ["tess-spoc-2min-s0001"]


def _tamper_pins(root: Path, change) -> None:
    """Change the catalog's pins with icechunk itself, as a hostile writer of the store could."""
    import icechunk
    import zarr

    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(root / "catalog")))
    session = repo.writable_session("main")
    array = zarr.open_array(session.store, path="families", mode="r+")
    values = array[:]
    for i, text in enumerate(values):
        if text:
            values[i] = json.dumps(change(json.loads(str(text))))
    array[:] = values
    session.commit("tampered")


def test_hostile_catalog_ids_never_leave_dest(stored, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(stored, root)

    def evil(pins: dict) -> dict:
        for pin in pins.values():
            for entry in pin["observations"].values():
                entry["id"] = "../evil"
        return pins

    _tamper_pins(root, evil)
    dest = tmp_path / "dest" / "inner"
    for fmt in ("fits", "zarr", "parquet"):
        result = subprocess.run(
            [lcarchive_command(), "download", str(root), str(dest), "--format", fmt], capture_output=True, text=True
        )
        assert result.returncode == 2 and "'../evil' is not a valid observation ID" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "dest").rglob("*") if p.is_file()) == []
    assert not (tmp_path / "dest" / "evil").exists() and not (tmp_path / "evil").exists()
    archive = lcarchive.open_archive(str(stored))
    for bad in ("../..", "/tmp/x", "a/b", "Tess-Spoc"):
        with pytest.raises(lcarchive.InvalidIdentifierError):
            archive.light_curve(279741379, observation=bad, quality_bitmask="none")
        with pytest.raises(lcarchive.LcarchiveError):
            archive.open_observation(bad)


def test_source_file_names_never_leave_dest(stored, tmp_path):
    """A stored file name of '../../x.fits' (a hostile or damaged group) still writes inside DEST."""
    from lcarchive.export import fits_name

    for stored_name, expected in (
        ("../../x.fits", ["x.fits"]),
        ("..", ["obs-1.fits"]),
        (".hidden.fits", ["obs-1.fits"]),
        ("a\\..\\b.fits", ["b.fits"]),
    ):
        assert fits_name({"source_file": stored_name}, "obs", 1) == expected


def test_download_into_an_unwritable_folder_is_one_line(stored, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run([lcarchive_command(), "download", str(stored), str(blocker / "dest")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cannot write here" in result.stderr and str(blocker / "dest") in result.stderr


def _flipped(dest: Path, k: int, in_header: bool, name: str = "PDCSAP_FLUX") -> Path:
    """A copy of SOURCE with one bit flipped: in a value of column ``name`` of row 1000 + 997 k, or in a
    digit of a primary-header value (TESSMAG, TEFF)."""
    data = bytearray(SOURCE.read_bytes())
    with fits.open(SOURCE) as hdul:
        start, width, column = hdul[1]._data_offset, hdul[1].data.dtype.itemsize, hdul[1].data.dtype.fields[name][1]
    if in_header:
        card = data.index(b"TESSMAG =" if k % 2 == 0 else b"TEFF    =")
        position = card + 28  # a digit of the value
        data[position] ^= 0x01
    else:
        position = start + (1000 + 997 * k) * width + column + 2  # a mantissa byte: the value changes, stays finite
        data[position] ^= 0x10
    path = dest / f"flip-{'header' if in_header else 'data'}-{k}.fits"
    path.write_bytes(bytes(data))
    return path


def test_flipped_bits_are_stored_flagged_never_current(tmp_path):
    """Three copies of a real SPOC file with one bit flipped (in a flux, in a time stamp, in a header): each is
    kept (a damaged time stamp costs no cadence: CADENCENO is kept), its integrity 'damaged' recorded and counted,
    and it never becomes current over the sound file, whether it comes before it in one batch or is stored
    first in an earlier ingest."""
    flipped = [_flipped(tmp_path, k, in_header=k >= 2, name=("PDCSAP_FLUX", "TIME", "PDCSAP_FLUX")[k]) for k in range(3)]
    root = tmp_path / "a"
    first = lcarchive.Archive(str(root)).ingest([str(flipped[0])])  # a damaged copy stored first, alone
    assert first.ok and first.integrity_counts() == {"damaged": 1} and len(first.added) == 1
    report = lcarchive.Archive(str(root)).ingest([*(str(p) for p in flipped[1:]), str(SOURCE)])
    assert report.ok and report.integrity_counts() == {"damaged": 2, "sound": 1}
    archive = lcarchive.open_archive(str(root))
    current = archive.open_observation("tess-spoc-2min-s0001")
    assert str(current["source_file"].values[0]) == SOURCE.name and str(current["integrity"].values[0]) == "sound"
    inputs = archive.inputs()
    assert len(inputs) == 4 and set(inputs["name"]) == {SOURCE.name, *(p.name for p in flipped)}
    damaged = archive.inputs(integrity="damaged")
    assert set(damaged["name"]) == {p.name for p in flipped}
    assert not damaged["observation"].eq("tess-spoc-2min-s0001").any()
    for hdus in damaged["integrity_hdus"]:  # the evidence: which HDU's CHECKSUM fails
        failed = [h["hdu"] for h in json.loads(hdus) if h["CHECKSUM"] == "fail"]
        assert failed in ([0], [1])
    time_flip = damaged[damaged["name"] == flipped[1].name]
    row = archive.open_observation(time_flip["observation"].iloc[0]).isel(target=0)
    assert int(row["n_rows"]) == 20076 and "kept although TIME does not increase" in str(row["ingest_notes"].values)
    header_flips = damaged[damaged["name"].str.startswith("flip-header")]
    assert [json.loads(h)[0]["CHECKSUM"] for h in header_flips["integrity_hdus"]] == ["fail"]
    index = archive.target_index([358108509])
    assert dict(zip(index["observation"], index["integrity"], strict=True))["tess-spoc-2min-s0001"] == "sound"
    assert (index["integrity"] == "damaged").sum() == 3
    found = archive.search(targets=[358108509], include_superseded=True, where="integrity == 'damaged'")
    assert len(found) == 3 and not found["current"].any()
    sound = archive.search(lcarchive.Selection(targets=[358108509], integrity=["sound"], include_superseded=True))
    assert list(sound["observation"]) == ["tess-spoc-2min-s0001"]


def test_ingest_summary_and_ls_show_integrity(tmp_path):
    root = tmp_path / "a"
    flipped = _flipped(tmp_path, 0, in_header=False)
    cli = lcarchive_command()
    done = subprocess.run([cli, "ingest", str(root), str(flipped), str(SOURCE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 sound, 1 damaged" in done.stdout
    assert f"from {flipped} (possibly damaged" in done.stdout
    rows = json.loads(
        subprocess.run(
            [cli, "ls", str(root), "--target", "358108509", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert {r["id"]: r["target_integrity"] for r in rows} == {
        "tess-spoc-2min-s0001": "sound",
        "tess-spoc-2min-s0001.alt2": "damaged",
    }


CONTRADICTIONS = {  # (HDU, keyword): (value, words of the warning)
    (1, "BJDREFI"): (12345, "BJDREFI = 12345, BJDREFF = 0.0 (reference BJD 12345.0) contradict TESS's BTJD reference"),
    (1, "TIMESYS"): ("UTC", "TIMESYS = 'UTC' contradicts TESS's time scale TDB"),
    (1, "TIMEREF"): ("LOCAL", "TIMEREF = 'LOCAL' contradicts TESS's SOLARSYSTEM"),
    (0, "RA_OBJ"): (999.0, "RA_OBJ = 999.0 is outside 0..360 deg: stored as the file gives it"),
    (0, "DEC_OBJ"): (-91.5, "DEC_OBJ = -91.5 is outside -90..90 deg"),
}


def test_contradicting_keywords_are_kept_with_a_warning_never_relabelled(tmp_path):
    """Time-system keywords contradicting TESS and coordinates out of range: the file is stored with its own
    values (TIME as the file gives it, its header kept, RA_OBJ 999), one one-line warning per value recorded
    with it and in the ingest report; nothing is relabelled with the mission's epoch."""

    def change(hdul):
        for (hdu, key), (value, _) in CONTRADICTIONS.items():
            hdul[hdu].header[key] = value

    path = _write(tmp_path, "contradicting", change)
    root = tmp_path / "a"
    report = lcarchive.Archive(str(root)).ingest([str(path)])
    assert report.ok and len(report.added) == 1
    archive = lcarchive.open_archive(str(root))
    (recorded,) = archive.inputs()["warnings"]
    assert len(recorded) == len(report.warnings) == len(CONTRADICTIONS)
    for (_, words), (source, warning), line in zip(CONTRADICTIONS.values(), report.warnings, recorded, strict=True):
        assert source == str(path) and words in warning and warning == line and "\n" not in line
    ds = archive.open_observation("tess-spoc-2min-s0001")
    with fits.open(SOURCE) as hdul:
        time_column = np.asarray(hdul[1].data["TIME"], dtype=np.float64)
    stored = ds["time"].values[0]
    assert np.array_equal(np.sort(stored[np.isfinite(stored)]), np.sort(time_column[np.isfinite(time_column)]))
    assert "BJDREFI =                12345" in str(ds["header_lightcurve"].values[0])
    assert float(ds["ra"].values[0]) == 999.0 and float(ds["dec"].values[0]) == -91.5


@pytest.mark.parametrize("kind", ["gzip", "sparse"])
def test_bombs_are_refused_fast_by_name_in_bounded_memory(kind, tmp_path):
    """A .fits.gz inflating past the limit (a gzip bomb) and a sparse file larger than the input limit are
    refused by name, in bounded time and memory: the bomb is inflated in steps and given up at the limit,
    the sparse file refused by its size, unread."""
    import tracemalloc
    import zlib

    from lcarchive.config import override

    limit = 32 * 1024**2
    if kind == "gzip":
        path = tmp_path / "bomb.fits.gz"
        deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(16 * 1024**2)
        with open(path, "wb") as f:
            f.write(deflate.compress(SOURCE.read_bytes()[:2880]))
            for _ in range(16):  # 256 MiB of zeros after a real primary header
                f.write(deflate.compress(zeros))
            f.write(deflate.flush())
        words = f"gzip stream inflates beyond {limit} bytes"
    else:
        path = tmp_path / "sparse.fits"
        with open(path, "wb") as f:
            f.write(SOURCE.read_bytes()[:2880])
            f.truncate(2 * 1024**3)
        words = f"2147483648 bytes: larger than {limit} bytes"
    root = tmp_path / "a"
    with override(max_input_bytes=limit, max_decompressed_bytes=limit):
        tracemalloc.start()
        started = time.perf_counter()
        report = lcarchive.Archive(str(root)).ingest([str(path)])
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert [s for s, _ in report.skipped] == [str(path)] and words in report.skipped[0][1], report.skipped
    assert "\n" not in report.skipped[0][1]
    assert peak < 3 * limit, (seconds, peak)  # bounded memory; its time: docs/format.md (no timed tests)
