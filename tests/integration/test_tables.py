"""SkyPortal photometric series (HDF5, JSON) and CSV/Parquet tables with a table map, built from
the real light curves in ../shared: what the archive holds equals the source columns."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import lcarchive
from lcarchive import export
from lcarchive.formats import read_lightcurve
from lcarchive.ingest import expand_inputs

from conftest import DATA, lcarchive_command
from reference import assert_bit_equal, source_table

SPOC = sorted((DATA / "spoc-2min").glob("tess2018206045859-s0001-*.fits"))  # three TESS targets, sector 1
KEPLER = DATA / "kepler" / "kplr010002792-2009259160929_llc.fits"  # KIC 10002792, Q2
K2 = sorted((DATA / "k2").glob("ktwo*-c05_llc.fits"))[:2]  # two EPIC targets, C5

MISSIONS = {  # mission -> (group attributes of lcarchive's own groups, flux, flux_err, quality columns)
    "tess": (
        {
            "mission": "tess",
            "product": "spoc-2min",
            "time_format": "BTJD",
            "time_reference_epoch_jd": 2457000.0,
            "target_catalog": "TIC",
            "pipeline": "SPOC",
        },
        "PDCSAP_FLUX",
        "PDCSAP_FLUX_ERR",
        "QUALITY",
    ),
    "kepler": (
        {
            "mission": "kepler",
            "product": "kepler-lc",
            "time_format": "BKJD",
            "time_reference_epoch_jd": 2454833.0,
            "target_catalog": "KIC",
            "pipeline": "Kepler SOC",
        },
        "PDCSAP_FLUX",
        "PDCSAP_FLUX_ERR",
        "SAP_QUALITY",
    ),
    "k2": (
        {
            "mission": "k2",
            "product": "k2-lc",
            "time_format": "BKJD",
            "time_reference_epoch_jd": 2454833.0,
            "target_catalog": "EPIC",
            "pipeline": "Kepler SOC",
        },
        "PDCSAP_FLUX",
        "PDCSAP_FLUX_ERR",
        "SAP_QUALITY",
    ),
}


def series_of(path: Path, mission: str, observation: str, extra: tuple[str, ...] = (), timecorr: bool = True):
    """A SkyPortal series (DataFrame, metadata) of a real file, as lcarchive's export writes it
    (without the light curve's TIMECORR if ``timecorr`` is False, as for an HLSP)."""
    cols, head, _ = source_table(path)
    attrs, flux, flux_err, quality = MISSIONS[mission]
    values = {
        "time": cols["TIME"],
        "flux": cols[flux],
        "flux_err": cols[flux_err],
        "quality": cols[quality].astype(np.int32),
        "ra": head["RA_OBJ"],
        "dec": head["DEC_OBJ"],
        **{name.lower(): cols[name] for name in extra},
    }
    if timecorr:
        values["timecorr"] = cols["TIMECORR"]
    if "CAMERA" in head:
        values |= {"camera": head["CAMERA"], "ccd": head["CCD"]}
    target = head["TICID"] if "TICID" in head else head["KEPLERID"]
    frame, metadata = export.skyportal_series(observation, target, values, attrs, [e.lower() for e in extra], None, 120.0)
    return frame, metadata, cols, target


def stored(archive, target: int, observation: str):
    return archive.light_curve(target, observation, quality_bitmask="none")


def per_target(lc, name: str):
    """A per-target value of a one-observation light curve (on its ``observation`` dimension)."""
    value = np.asarray(lc[name].values).ravel()[0]
    return str(value) if isinstance(value, str | np.ndarray) or lc[name].dtype.kind in "OTU" else value.item()


def utc_mjd(cols: dict, mission: str) -> np.ndarray:
    """MJD (UTC) at the spacecraft of a SPOC file: TIME - TIMECORR + BJDREF - 2400000.5, TDB -> UTC by astropy."""
    from astropy.time import Time

    epoch = MISSIONS[mission][0]["time_reference_epoch_jd"] - 2400000.5
    out = np.full(cols["TIME"].shape, np.nan)
    finite = np.isfinite(cols["TIME"])
    local = cols["TIME"][finite] - cols["TIMECORR"][finite].astype(np.float64)
    out[finite] = Time(np.full(local.shape, epoch), local, format="mjd", scale="tdb").utc.mjd
    return out


def assert_equals_source(lc, cols: dict, mission: str, exact_time: bool = False) -> None:
    """time within the rounding of the MJD conversion (or bit-equal), flux, flux_err and quality bit-equal."""
    _, flux, flux_err, quality = MISSIONS[mission]
    time = lc["time"].values
    if exact_time:
        assert_bit_equal(time, cols["TIME"], "time")
    else:
        finite = np.isfinite(cols["TIME"])
        assert np.array_equal(np.isfinite(time), finite)
        mjd = cols["TIME"][finite] + 56999.5
        assert np.all(np.abs(time[finite] - cols["TIME"][finite]) <= 2 * np.spacing(mjd)), "time beyond float rounding"
    assert_bit_equal(lc["flux"].values, cols[flux], "flux")
    assert_bit_equal(lc["flux_err"].values, cols[flux_err], "flux_err")
    assert_bit_equal(lc["quality"].values, cols[quality].astype(np.int32), "quality")


# -- SkyPortal photometric series ---------------------------------------------------------------


def test_download_hdf5_then_ingest_gives_the_source_back(tmp_path):
    """lcarchive's own `download --format hdf5` (SkyPortal series) ingested again equals the FITS sources."""
    first = lcarchive.Archive(str(tmp_path / "a"))
    assert first.ingest([str(p) for p in SPOC]).ok
    report = lcarchive.download(first, tmp_path / "series", lcarchive.Selection(), format="hdf5")
    assert report.ok and len(report.written) == len(SPOC)
    second = lcarchive.Archive(str(tmp_path / "b"))
    ingested = second.ingest([str(tmp_path / "series")])
    assert ingested.ok, ingested.skipped
    archive = lcarchive.open_archive(str(tmp_path / "b"))
    assert [o.id for o in archive.observations] == ["tess-skyportal-s0001"]
    assert archive.observations[0].n_targets == len(SPOC)
    for path in SPOC:
        cols, head, _ = source_table(path)
        lc = stored(archive, head["TICID"], "tess-skyportal-s0001")
        assert_equals_source(lc, cols, "tess")
        assert np.unique(lc["cadenceno"].values - cols["CADENCENO"]).size == 1  # derived: CADENCENO + a constant
        assert lc["mjd"].attrs["units"] == lc["bmjd_tdb"].attrs["units"] == "d"
        finite = np.isfinite(cols["TIME"])  # the archive's TIMECORR made mjd: UTC at the spacecraft
        assert np.allclose(lc["mjd"].values[finite], utc_mjd(cols, "tess")[finite], rtol=0, atol=1e-8)
        assert per_target(lc, "channel") == f"{head['CAMERA']}_{head['CCD']}"
        assert per_target(lc, "ra") == head["RA_OBJ"]
    assert archive.observations[0].instruments  # camera/CCD from the channel
    again = second.ingest([str(tmp_path / "series")])
    assert len(again.unchanged) == len(SPOC) and not again.added


def test_fits_download_of_a_series_reports_it_and_writes_the_rest(tmp_path):
    """A series has no source FITS file to rebuild: it is listed as not written, the FITS files are."""
    frame, metadata, _, target = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    series = tmp_path / "series.json"
    series.write_text(json.dumps({**{k: frame[k].tolist() for k in ("mjd", "flux", "fluxerr")}, **metadata}, default=str))
    archive = lcarchive.Archive(str(tmp_path / "a"))
    assert archive.ingest([str(series), str(SPOC[1])]).ok
    report = lcarchive.download(archive, tmp_path / "out", lcarchive.Selection(), format="fits")
    assert [(o, t) for o, t, _ in report.unwritable] == [("tess-skyportal-s0001", target)]
    assert "no FITS headers" in report.unwritable[0][2] and not report.ok
    [written] = list((tmp_path / "out").rglob("*.fits"))
    assert written.read_bytes() == SPOC[1].read_bytes()


@pytest.mark.parametrize("form", ["hdf5", "json"])
@pytest.mark.parametrize(
    ("mission", "path", "observation", "expected"),
    [
        ("tess", SPOC[0], "tess-spoc-2min-s0001", "tess-skyportal-s0001"),
        ("kepler", KEPLER, "kepler-lc-q02", "kepler-skyportal-q02"),
        ("k2", K2[0], "k2-lc-c05", "k2-skyportal-c05"),
    ],
)
def test_series_of_each_mission(tmp_path, form, mission, path, observation, expected):
    frame, metadata, cols, target = series_of(path, mission, observation, extra=("SAP_FLUX",))
    if form == "hdf5":
        series = tmp_path / f"{target}.h5"
        series.write_bytes(export.skyportal_hdf5_bytes(frame, metadata))
    else:
        series = tmp_path / f"{target}.json"
        series.write_text(json.dumps({**frame.to_dict(orient="list"), "metadata": metadata}))
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(series)])
    assert report.ok, report.skipped
    archive = lcarchive.open_archive(str(tmp_path / "a"))
    assert [o.id for o in archive.observations] == [expected]
    assert archive.observations[0].mission == mission
    lc = stored(archive, target, expected)
    finite = np.isfinite(cols["TIME"])
    mjd = lc["mjd"].values[finite]
    assert np.all(np.abs(lc["time"].values[finite] - cols["TIME"][finite]) <= 2 * np.spacing(mjd))
    if form == "hdf5":
        assert_equals_source(lc, cols, mission)
        assert_bit_equal(lc["sap_flux"].values, cols["SAP_FLUX"], "sap_flux")
    else:  # JSON numbers are float64: the same values
        for var, column in zip(("flux", "flux_err"), MISSIONS[mission][1:3], strict=True):
            assert np.array_equal(lc[var].values, cols[column].astype(np.float64), equal_nan=True), var
        assert np.array_equal(lc["quality"].values, cols[MISSIONS[mission][3]])
    assert json.loads(per_target(lc, "series_metadata")) == json.loads(json.dumps(metadata))
    assert per_target(lc, "series_name") == observation
    mjd_offset = 2457000.0 - 2400000.5 if mission == "tess" else 2454833.0 - 2400000.5
    assert np.allclose(lc["bmjd_tdb"].values[finite], cols["TIME"][finite] + mjd_offset, rtol=0, atol=1e-9)
    # mjd is SkyPortal's: UTC at the spacecraft (TIMECORR removed), kept as the series wrote it
    assert np.allclose(lc["mjd"].values[finite], utc_mjd(cols, mission)[finite], rtol=0, atol=1e-8)
    assert "UTC" in lc["mjd"].attrs["description"] and "barycentric" in lc["bmjd_tdb"].attrs["description"]
    dataset = next(d for d in archive.catalog.datasets if d.observation == expected)
    assert (dataset.variable, dataset.photometric_source, dataset.processing_method) == ("flux", "skyportal-series", "NONE")


TT_MINUS_UTC = 69.184
"""s, from 2017 on: TAI - UTC = 37 s (IERS Bulletin C) plus TT - TAI = 32.184 s."""


def test_exported_mjd_is_utc_at_the_spacecraft_and_bmjd_tdb_is_barycentric():
    """SkyPortal's mjd: TIME - TIMECORR + 2457000 - 2400000.5 converted TDB -> UTC by astropy;
    bmjd_tdb: the mission time + 56999.5, bit for bit as the old mjd."""
    frame, metadata, cols, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    time, timecorr = cols["TIME"], cols["TIMECORR"].astype(np.float64)
    finite = np.isfinite(time)
    assert len(frame) == time.size and list(frame.columns[:3]) == ["mjd", "bmjd_tdb", "flux"]
    np.testing.assert_array_equal(frame["bmjd_tdb"].to_numpy(), time + 56999.5)
    mjd = frame["mjd"].to_numpy()
    assert np.array_equal(np.isfinite(mjd), finite)
    assert np.max(np.abs(mjd[finite] - utc_mjd(cols, "tess")[finite])) < 1e-8
    # bmjd_tdb - mjd = the barycentric correction (68-106 s in sector 1) + TT - UTC (TDB - TT < 2 ms)
    delay = (frame["bmjd_tdb"].to_numpy()[finite] - mjd[finite]) * 86400.0 - TT_MINUS_UTC
    assert np.max(np.abs(delay - timecorr[finite] * 86400.0)) < 2e-3
    assert np.min(delay) > 60 and np.max(delay) < 110
    altdata = metadata["altdata"]
    n = int(finite.sum())  # cadences without a time stamp have none to correct
    assert altdata["mjd_correction"] == f"{n} of {n} time stamps: TIMECORR of the light curve"
    assert (
        "mjd: MJD (UTC)" in altdata["time_system"]
        and "bmjd_tdb: BJD_TDB - 2400000.5 = BTJD + 2457000.0" in altdata["time_system"]
    )


@pytest.mark.parametrize(("mission", "path", "seconds"), [("tess", SPOC[0], 0.4), ("kepler", KEPLER, 82), ("k2", K2[0], 410)])
def test_export_without_timecorr_corrects_for_the_earths_centre(mission, path, seconds):
    """An HLSP has no TIMECORR: mjd is made with the geocentric correction, off by the
    spacecraft's distance from the Earth (TESS < 0.4 s in S1, Kepler 47-81 s in Q2, K2 279-407 s in C5)."""
    frame, metadata, cols, _ = series_of(path, mission, "x-s0001", timecorr=False)
    finite = np.isfinite(cols["TIME"])
    error = np.abs(frame["mjd"].to_numpy()[finite] - utc_mjd(cols, mission)[finite]) * 86400.0
    assert np.max(error) < seconds
    epoch = MISSIONS[mission][0]["time_reference_epoch_jd"] - 2400000.5
    np.testing.assert_array_equal(frame["bmjd_tdb"].to_numpy(), cols["TIME"] + epoch)
    assert "no TIMECORR, computed for the Earth's centre" in metadata["altdata"]["mjd_correction"]


def test_export_without_timecorr_or_position_keeps_every_cadence_and_says_so():
    cols, head, _ = source_table(SPOC[0])
    values = {"time": cols["TIME"], "flux": cols["PDCSAP_FLUX"], "quality": cols["QUALITY"].astype(np.int32)}
    frame, metadata = export.skyportal_series("tess-spoc-2min-s0001", head["TICID"], values, MISSIONS["tess"][0], [], None, 120.0)
    finite = np.isfinite(cols["TIME"])
    assert len(frame) == cols["TIME"].size
    shift = (frame["bmjd_tdb"].to_numpy()[finite] - frame["mjd"].to_numpy()[finite]) * 86400.0  # TDB -> UTC only
    assert np.max(np.abs(shift - TT_MINUS_UTC)) < 2e-3
    assert "no ra/dec, none: mjd is the barycentric time in UTC" in metadata["altdata"]["mjd_correction"]


def test_download_of_an_hlsp_without_timecorr_then_ingest(tmp_path):
    """QLP has no TIMECORR: the download's mjd is corrected for the Earth's centre and says so;
    ingested again, the mission time comes back from bmjd_tdb."""
    qlp = DATA / "qlp" / "hlsp_qlp_tess_ffi_s0024-0000000039903405_tess_v01_llc.fits"
    first = lcarchive.Archive(str(tmp_path / "a"))
    assert first.ingest([str(qlp)]).ok
    report = lcarchive.download(first, tmp_path / "series", lcarchive.Selection(), format="hdf5")
    [h5] = list((tmp_path / "series").rglob("*.h5"))
    with pd.HDFStore(h5, mode="r") as store:
        series = store["phot_series"]
        altdata = store.get_storer("phot_series").attrs.metadata["altdata"]
    assert report.ok and "computed for the Earth's centre" in altdata["mjd_correction"]
    assert "TIMECORR of the light curve" not in altdata["mjd_correction"] and "1.3 s" in altdata["mjd_correction"]
    cols, head, _ = source_table(qlp)
    finite = np.isfinite(cols["TIME"])
    np.testing.assert_array_equal(series["bmjd_tdb"].to_numpy(), cols["TIME"] + 56999.5)
    delay = (series["bmjd_tdb"] - series["mjd"]).to_numpy()[finite] * 86400.0 - TT_MINUS_UTC  # the correction, s
    assert np.max(np.abs(delay)) > 60
    assert lcarchive.Archive(str(tmp_path / "b")).ingest([str(h5)]).ok
    lc = stored(lcarchive.open_archive(str(tmp_path / "b")), head["TICID"], "tess-skyportal-s0024")
    mjd = cols["TIME"][finite] + 56999.5
    assert np.all(np.abs(lc["time"].values[finite] - cols["TIME"][finite]) <= 2 * np.spacing(mjd))


def test_foreign_series_mjd_in_utc_is_made_barycentric(tmp_path):
    """A series with SkyPortal's mjd only (UTC, as observed): the mission time is mjd in TDB plus
    the geocentric barycentric correction (TESS: within 0.4 s of TIME), the computed values kept."""
    frame, metadata, cols, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    time = cols["TIME"]
    finite = np.isfinite(time)
    metadata = {k: v for k, v in metadata.items() if k != "altdata"}
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps({**frame[["mjd", "flux", "fluxerr"]].to_dict(orient="list"), **metadata}))
    lc = read_lightcurve(str(path))
    got = lc.columns["time"].data
    assert np.array_equal(np.isfinite(got), finite)
    assert np.max(np.abs(got[finite] - time[finite])) * 86400.0 < 0.4
    assert lc.columns["bmjd_tdb"].source == "" and lc.columns["mjd"].source == "mjd"
    assert "Earth's centre" in lc.notes["time"] and "1.3 s" in lc.notes["time"]
    # without RA/Dec: only UTC -> TDB, so TIME - TIMECORR (to TDB - TT, < 2 ms), and a note
    path.write_text(
        json.dumps(
            {**frame[["mjd", "flux"]].to_dict(orient="list"), **{k: v for k, v in metadata.items() if k not in ("ra", "dec")}}
        )
    )
    lc = read_lightcurve(str(path))
    local = time[finite] - cols["TIMECORR"][finite]
    assert np.max(np.abs(lc.columns["time"].data[finite] - local)) * 86400.0 < 2e-3
    assert "no ra/dec" in lc.notes["time"]


def test_series_of_earlier_exports_keep_their_barycentric_mjd(tmp_path):
    """lcarchive's exports before mjd was UTC wrote BJD_TDB - 2400000.5 as mjd, and said so in altdata."""
    frame, metadata, cols, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    altdata = {**metadata["altdata"], "time_system": "mjd = BTJD + 2457000.0 - 2400000.5 (BJD_TDB - 2400000.5)"}
    old = pd.DataFrame({"mjd": frame["bmjd_tdb"], "flux": frame["flux"], "fluxerr": frame["fluxerr"]})
    path = tmp_path / "old.h5"
    path.write_bytes(export.skyportal_hdf5_bytes(old, {**metadata, "altdata": altdata}))
    lc = read_lightcurve(str(path))
    finite = np.isfinite(cols["TIME"])
    mjd = cols["TIME"][finite] + 56999.5
    assert np.all(np.abs(lc.columns["time"].data[finite] - cols["TIME"][finite]) <= 2 * np.spacing(mjd))
    assert "time" not in lc.notes and "bmjd_tdb" not in lc.columns
    assert "BJD_TDB - 2400000.5" in lc.columns["mjd"].description


def _json_series(tmp_path: Path, name: str, **metadata) -> Path:
    frame, meta, _, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    frame = frame.iloc[:500]
    meta = {**meta, **metadata}
    meta = {k: v for k, v in meta.items() if v is not None}
    path = tmp_path / name
    path.write_text(json.dumps({**frame.to_dict(orient="list"), **meta}))
    return path


@pytest.mark.parametrize(
    ("metadata", "segment"),
    [
        ({"series_name": "sector 14"}, 14),
        ({"series_name": "S14"}, 14),
        ({"series_name": "tess_s0007_spoc"}, 7),
        ({"series_name": "my-series", "sector": 3}, 3),
    ],
)
def test_series_segment_from_name_or_metadata(tmp_path, metadata, segment):
    lc = read_lightcurve(str(_json_series(tmp_path, "s.json", **metadata)))
    assert (lc.segment, lc.observation_id) == (segment, f"tess-skyportal-s{segment:04d}")


def test_kepler_or_k2_from_names_and_ids(tmp_path):
    frame, metadata, _, _target = series_of(KEPLER, "kepler", "quarter 2")
    path = tmp_path / "k.json"
    for meta, mission in [
        ({**metadata, "series_name": "q2"}, "kepler"),  # a KIC ID: Kepler
        ({**metadata, "series_name": "k2 c5", "series_obj_id": "EPIC 211436265", "obj_id": "x"}, "k2"),
        ({**metadata, "series_name": "c5", "series_obj_id": "211436265", "obj_id": "x"}, "k2"),  # the EPIC range
    ]:
        path.write_text(json.dumps({**frame.iloc[:200].to_dict(orient="list"), **meta}))
        assert read_lightcurve(str(path)).mission.name == mission


def test_bad_series_are_refused_by_name_with_the_reason(tmp_path):
    ztf = _json_series(tmp_path, "ztf.json", filter="ztfg")
    nameless = _json_series(tmp_path, "nameless.json", series_name="my-series")
    kic = _json_series(tmp_path, "kic.json", series_obj_id="KIC 10002792", obj_id="KIC 10002792")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "not a series", "values": [1, 2, 3]}))
    frame, metadata, _, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    pickled = tmp_path / "pickled.h5"  # an attribute PyTables would unpickle, importing a callable
    pickled.write_bytes(export.skyportal_hdf5_bytes(frame.iloc[:100], metadata))
    with h5py.File(pickled, "r+") as h5:
        h5["phot_series"].attrs["extra"] = np.bytes_(pickle.dumps(str, protocol=0))
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(p) for p in (ztf, nameless, kic, other, pickled)])
    reasons = dict(report.skipped)
    assert "'ztfg'" in reasons[str(ztf)] and "tess" in reasons[str(ztf)]
    assert "no sector" in reasons[str(nameless)]
    assert "KIC" in reasons[str(kic)] and "TIC" in reasons[str(kic)]
    assert "not a SkyPortal photometric series" in reasons[str(other)]
    assert "pickle" in reasons[str(pickled)] and "phot_series:extra imports" in reasons[str(pickled)]
    assert not report.added and not report.observations


# -- CSV / Parquet tables with a table map --------------------------------------------------------


def spoc_table(time_format: str = "btjd") -> tuple[pd.DataFrame, dict[int, dict]]:
    """The three sector-1 SPOC targets in one table (IDs written 'TIC <id>'), and their source columns."""
    parts, sources = [], {}
    for path in SPOC:
        cols, head, _ = source_table(path)
        time = cols["TIME"] + 2457000.0 if time_format == "bjd" else cols["TIME"]
        parts.append(
            pd.DataFrame(
                {
                    "tic": f"TIC {head['TICID']}",
                    "sector": head["SECTOR"],
                    "t": time,
                    "cad": cols["CADENCENO"],
                    "pdc": cols["PDCSAP_FLUX"],
                    "pdc_err": cols["PDCSAP_FLUX_ERR"],
                    "q": cols["QUALITY"],
                    "sap_bkg": cols["SAP_BKG"],
                    "note": "x",
                }
            )
        )
        sources[head["TICID"]] = cols
    return pd.concat(parts, ignore_index=True), sources


TABLE_MAP = {
    "mission": "tess",
    "label": "mypipe",
    "target": "tic",
    "segment_column": "sector",
    "time": "t",
    "cadenceno": "cad",
    "flux": "pdc",
    "flux_err": "pdc_err",
    "quality": "q",
    "units": {"pdc": "electron/s"},
}


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_multi_target_table_makes_one_row_per_target(tmp_path, suffix):
    frame, sources = spoc_table()
    path = tmp_path / f"phot{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)], table_map=TABLE_MAP)
    assert report.ok, report.skipped
    assert sorted(t for _, _, t in report.added) == sorted(sources)
    archive = lcarchive.open_archive(str(tmp_path / "a"))
    (obs,) = archive.observations
    assert (obs.id, obs.product, obs.n_targets) == ("tess-table-mypipe-s0001", "tess-table", 3)
    for target, cols in sources.items():
        lc = stored(archive, target, obs.id)
        assert_bit_equal(lc["cadenceno"].values, cols["CADENCENO"].astype(np.int64), "cadenceno")
        if suffix == ".parquet":  # types kept
            assert_equals_source(lc, cols, "tess", exact_time=True)
            assert_bit_equal(lc["sap_bkg"].values, cols["SAP_BKG"], "sap_bkg")
        else:  # CSV: float64 columns of the same values (float32 written with its shortest repr)
            assert np.array_equal(lc["time"].values, cols["TIME"], equal_nan=True)
            assert np.array_equal(lc["flux"].values.astype(np.float32), cols["PDCSAP_FLUX"], equal_nan=True)
            assert np.array_equal(lc["quality"].values, cols["QUALITY"])
        assert lc["flux"].attrs["astropy_unit"] == "electron / s" and lc["flux"].attrs["units"] == "count s-1"
        assert "note" not in lc and "tic" not in lc
    dataset = next(d for d in archive.catalog.datasets if d.observation == obs.id)
    assert (dataset.source_column, dataset.photometric_source, dataset.error_variable) == ("pdc", "table", "flux_err")
    rebuilt = lcarchive.Archive(str(tmp_path / "a")).build_catalog()
    assert rebuilt.model_dump() == archive.catalog.model_dump()


def test_table_times_in_bjd_and_derived_cadences(tmp_path):
    frame, sources = spoc_table("bjd")
    frame = frame.drop(columns=["cad"])
    path = tmp_path / "bjd.parquet"
    frame.to_parquet(path)
    mapping = {k: v for k, v in TABLE_MAP.items() if k not in ("cadenceno", "label")} | {"time_format": "bjd"}
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(path)], table_map=mapping)
    assert report.ok, report.skipped
    archive = lcarchive.open_archive(str(tmp_path / "a"))
    assert [o.id for o in archive.observations] == ["tess-table-s0001"]
    for target, cols in sources.items():
        lc = stored(archive, target, "tess-table-s0001")
        finite = np.isfinite(cols["TIME"])
        assert np.all(np.abs(lc["time"].values[finite] - cols["TIME"][finite]) <= np.spacing(2457000.0 + cols["TIME"][finite]))
        assert_bit_equal(lc["t"].values, cols["TIME"] + 2457000.0, "original BJD column")
        assert_bit_equal(lc["flux"].values, cols["PDCSAP_FLUX"], "flux")
        assert np.unique(lc["cadenceno"].values - cols["CADENCENO"]).size == 1


def test_one_target_table_from_cli_with_map_file(tmp_path):
    cols, head, _ = source_table(KEPLER)
    table = tmp_path / "kic.csv"
    pd.DataFrame({"time": cols["TIME"] + 2454833.0 - 2400000.5, "flux": cols["SAP_FLUX"]}).to_csv(table, index=False)
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps(
            {
                "mission": "kepler",
                "target_id": f"KIC {head['KEPLERID']}",
                "segment": head["QUARTER"],
                "time": "time",
                "time_format": "mjd",
                "flux": "flux",
            }
        )
    )
    root = str(tmp_path / "a")
    run = subprocess.run(
        [lcarchive_command(), "ingest", root, str(table), "--table-map", str(mapping)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    subprocess.run([lcarchive_command(), "catalog", "build", root], check=True, capture_output=True)
    archive = lcarchive.open_archive(root)
    assert [o.id for o in archive.observations] == ["kepler-table-q02"]
    lc = stored(archive, head["KEPLERID"], "kepler-table-q02")
    assert np.array_equal(lc["flux"].values.astype(np.float32), cols["SAP_FLUX"], equal_nan=True)
    assert np.all(lc["quality"].values == 0) and np.all(np.isnan(lc["flux_err"].values))
    assert [d.id for d in archive.catalog.datasets] == ["kepler-table-q02/flux"]


def test_tables_need_a_map_and_are_not_searched_in_directories(tmp_path):
    frame, _ = spoc_table()
    folder = tmp_path / "in"
    folder.mkdir()
    frame.iloc[:100].to_csv(folder / "t.csv", index=False)
    series_frame, metadata, _, _ = series_of(SPOC[0], "tess", "tess-spoc-2min-s0001")
    (folder / "s.json").write_text(json.dumps({**series_frame.to_dict(orient="list"), **metadata}))
    (folder / "dl.zarr" / "flux").mkdir(parents=True)  # a Zarr store: its metadata files are no series
    for node in (folder / "dl.zarr", folder / "dl.zarr" / "flux"):
        (node / "zarr.json").write_text("{}")
    assert expand_inputs([str(folder)]) == [str(folder / "s.json")]
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(folder / "t.csv")])
    ((source, reason),) = report.skipped
    assert source == str(folder / "t.csv") and "--table-map" in reason


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (TABLE_MAP | {"flx": "pdc"}, ["unknown key 'flx'"]),
        ({k: v for k, v in TABLE_MAP.items() if k != "mission"}, ["mission is required"]),
        (TABLE_MAP | {"mission": "jwst"}, ["'jwst'", "tess"]),
        (TABLE_MAP | {"target_id": 261136679}, ["target", "target_id"]),
        ({k: v for k, v in TABLE_MAP.items() if k != "segment_column"}, ["segment"]),
        (TABLE_MAP | {"time_format": "bkjd"}, ["'bkjd'", "btjd"]),
        (TABLE_MAP | {"units": {"pdc": "furlongs per fortnight"}}, ["units", "astropy"]),
        (TABLE_MAP | {"label": "My Pipe"}, ["label"]),
    ],
)
def test_bad_table_maps_are_clear_errors(tmp_path, mapping, words):
    with pytest.raises(lcarchive.BadInputError) as caught:
        lcarchive.Archive(str(tmp_path / "a")).ingest([], table_map=mapping)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_table_not_matching_its_map_is_skipped_by_name(tmp_path):
    frame, _ = spoc_table()
    good, clash = tmp_path / "good.csv", tmp_path / "kic.csv"
    frame.iloc[:300].to_csv(good, index=False)
    frame.iloc[:300].assign(tic="KIC 10002792").to_csv(clash, index=False)
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(good), str(clash)], table_map=TABLE_MAP | {"flux": "flx"})
    reasons = dict(report.skipped)
    assert "'flx'" in reasons[str(good)] and "pdc" in reasons[str(good)]  # the missing column, and the columns there are
    report = lcarchive.Archive(str(tmp_path / "a")).ingest([str(clash)], table_map=TABLE_MAP)
    assert "KIC" in dict(report.skipped)[str(clash)]


def test_cli_table_map_errors_are_one_line(tmp_path):
    table = tmp_path / "t.csv"
    spoc_table()[0].iloc[:10].to_csv(table, index=False)
    for value, words in [
        ("{not json", ["--table-map", "JSON"]),
        (str(tmp_path / "none.json"), ["none.json", "cannot be read"]),
        ('{"mission": "tess"}', ["time is required", "flux is required"]),
    ]:
        run = subprocess.run(
            [lcarchive_command(), "ingest", str(tmp_path / "a"), str(table), "--table-map", value], capture_output=True, text=True
        )
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and all(w in run.stderr for w in words), run.stderr
