"""TASOC, EVEREST, PATHOS, CDIPS and K2SC light curves: detection, reading, one-batch ingest, byte-exact
export and quality decoding.

No file of these five HLSPs is in ../shared/data/lightcurves. The files tested here are therefore
REAL light curves of ../shared rewritten in each product's documented layout (built once per module
in a temporary folder): the TESS SPOC 2-min light curve of TIC 261136679, sector 1
(``spoc-2min/tess2018206045859-s0001-0000000261136679-0120-s_lc.fits``) for TASOC (which also made
2-min light curves); the TESS-SPOC 30-min FFI light curve of TIC 39903405, sector 24
(``tess-spoc/hlsp_tess-spoc_tess_phot_0000000039903405-s0024_tess_v1_lc.fits``) for PATHOS and CDIPS,
which are FFI-only products without a cadence column (lcarchive numbers their cadences from the time
stamps, which needs an FFI cadence); and the K2 long-cadence light curve of EPIC 211436265, campaign 5
(``k2/ktwo211436265-c05_llc.fits``) for K2SC and EVEREST. Each keeps the real primary header,
adjusted as the product's pipeline does, and the real columns' values; the columns a pipeline derives
are simple functions of real columns (e.g. TASOC FLUX_CORR = PDCSAP_FLUX / median * 1e6 - 1e6, in ppm). The values are therefore not
what these pipelines would have computed; the layouts (HDUs, column names, formats, units, the
identifying keywords) are.

Sources of the layouts:

- lightkurve 2.6 ``io/detect.py`` (how each product is recognised) and its readers ``io/tasoc.py``,
  ``io/everest.py``, ``io/pathos.py``, ``io/cdips.py``, ``io/generic.py`` (columns read; lightkurve
  has no K2SC reader);
- TASOC: tasoc/photometry ``BasePhotometry.save_lightcurve`` (primary ORIGIN 'TASOC/Aarhus', table
  LIGHTCURVE with TIME, TIMECORR, CADENCENO, FLUX_RAW, FLUX_RAW_ERR, FLUX_BKG, FLUX_CORR, FLUX_CORR_ERR
  (ppm), QUALITY (corrector flags), PIXEL_QUALITY, MOM_CENTR1/2, POS_CORR1/2; rows without a time
  stamp removed), and its ``photometry/quality.py`` flags;
- EVEREST: rodluger/everest ``everest/fits.py`` v2 (primary = mission cards + COMMENT '*  EVEREST INFO  *',
  MISSION, VERSION, DATE; table 'ARRAYS' with CADN (float 'D'), FLUX, FRAW, FRAW_ERR, QUALITY
  (Kepler bits + EVEREST's, zero-based bits 22-26: bad, NaN, outlier, recursive, transit), TIME, FCOR,
  CBVnn; 'APERTURE MASK' image; NaN time stamps interpolated, as its K2 data reader does) and
  ``everest/config.py``;
- PATHOS: the MAST HLSP 'pathos' and lightkurve's reader (PSF_FLUX_RAW/COR, AP1-4_FLUX_RAW/COR,
  SKY_LOCAL, DQUALITY with TESS bits, TIME in BTJD; no pipeline keyword in the headers);
- CDIPS: the MAST HLSP 'cdips' readme (hlsp_cdips_tess_ffi_all_tess_v01_readme.md) and lightkurve's
  reader (ORIGIN containing 'cdips'; TMID_BJD the full BJD_TDB; IFL/IFE instrumental fluxes, IRM/IRE
  magnitudes, IRQ one-character quality, TFA/PCA detrended magnitudes, apertures 1-3; frames with
  momentum dumps or coarse pointing removed upstream);
- K2SC v2 (the release on MAST): real v2 files (hlsp_k2sc_k2_llc_<epic>-c04_kepler_v2_lc.fits) and
  OxES/k2sc ``bin/k2mastify`` and ``src/k2io.py`` (primary = the K2 primary with ORIGIN 'SPLOX: Stars and
  Planets at Oxford', CREATOR = PROGRAM 'k2SC v0.9' and DATE, PROCVER/FILEVER/TIMVERSN/CHECKSUM removed;
  tables 'PDC' and 'SAP' with time D, cadence J, quality J, x D, y D, flux D, error D, mflags B, trtime D,
  trposi D; only cadences with finite time and position are kept).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lcarchive
from lcarchive.formats import read_lightcurve
from lcarchive.quality import PADDING, bitmask, decode, good_cadences

from conftest import DATA
from reference import assert_bit_equal

TESS_SOURCE = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
FFI_SOURCE = DATA / "tess-spoc" / "hlsp_tess-spoc_tess_phot_0000000039903405-s0024_tess_v1_lc.fits"
K2_SOURCE = DATA / "k2" / "ktwo211436265-c05_llc.fits"

NAMES = {
    "tasoc": "hlsp_tasoc_tess_tpf_tic00261136679-s0001-cam4-ccd2-c0120_tess_v05_lc.fits",
    "pathos": "hlsp_pathos_tess_lightcurve_tic-0039903405-s0024_tess_v1_llc.fits",
    "cdips": "hlsp_cdips_tess_ffi_tic0000000039903405-0024-cam2-ccd4_tess_v01_llc.fits",
    "k2sc": "hlsp_k2sc_k2_llc_211436265-c05_kepler_v2_lc.fits",
    "everest": "hlsp_everest_k2_llc_211436265-c05_kepler_v2.0_lc.fits",
}
OBSERVATIONS = {
    "tasoc": "tess-tasoc-s0001",
    "pathos": "tess-pathos-s0024",
    "cdips": "tess-cdips-s0024",
    "k2sc": "k2-k2sc-c05",
    "everest": "k2-everest-c05",
}
LIGHTKURVE_READS = ("tasoc", "everest", "pathos", "cdips")  # lightkurve 2.6 has no K2SC reader

TIME_KEYWORDS = (
    "TIMEREF",
    "TASSIGN",
    "TIMESYS",
    "BJDREFI",
    "BJDREFF",
    "TIMEUNIT",
    "TELAPSE",
    "LIVETIME",
    "TSTART",
    "TSTOP",
    "DATE-OBS",
    "DATE-END",
    "DEADC",
    "TIMEPIXR",
    "TIERRELA",
    "INT_TIME",
    "READTIME",
    "FRAMETIM",
    "NUM_FRM",
    "TIMEDEL",
    "EXPOSURE",
)
TESS_DEFAULT = 1 | 2 | 4 | 8 | 32 | 64 | 128  # tasoc/photometry TESSQualityFlags.DEFAULT_BITMASK (pixel flags)
KEPLER_DEFAULT = 1130799  # lightkurve KeplerQualityFlags.DEFAULT_BITMASK


# -- building the files ---------------------------------------------------------------------------------


def _source(path: Path) -> tuple[fits.Header, fits.Header, dict[str, np.ndarray], fits.ImageHDU]:
    """Primary header, table header, the table's columns (native byte order) and the aperture image."""
    with fits.open(path, memmap=False) as hdul:
        table = hdul[1].data
        cols = {n: np.asarray(table[n]).astype(table[n].dtype.newbyteorder("=")) for n in table.names}
        aperture = fits.ImageHDU(data=np.asarray(hdul[2].data).copy(), header=hdul[2].header.copy())
        return hdul[0].header.copy(), hdul[1].header.copy(), cols, aperture


def _time_cards(source: fits.Header) -> list[tuple[str, object, str]]:
    return [(k, source[k], source.comments[k]) for k in TIME_KEYWORDS if k in source]


def _table(columns: list[fits.Column], name: str | None, cards: list[tuple[str, object, str]]) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(columns)
    if name is not None:
        hdu.header["EXTNAME"] = (name, "name of extension")
    for key, value, comment in cards:
        hdu.header.append((key, value, comment), end=True)
    return hdu


def _robust_outliers(x: np.ndarray, nsigma: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) outliers of x: beyond nsigma x 1.4826 MAD from the median; NaN is neither."""
    med = np.nanmedian(x)
    sigma = 1.4826 * np.nanmedian(np.abs(x - med))
    with np.errstate(invalid="ignore"):
        return x - med > nsigma * sigma, med - x > nsigma * sigma


def _primary(header: fits.Header, remove=(), **updates) -> fits.PrimaryHDU:
    header = header.copy()
    for key in ("CHECKSUM", "DATASUM", *remove):
        header.remove(key, ignore_missing=True)
    for key, value in updates.items():
        header[key] = value
    return fits.PrimaryHDU(header=header)


def build_tasoc(dest: Path) -> Path:
    """TASOC: the SPOC PDCSAP flux as FLUX_CORR in ppm, SAP_FLUX as FLUX_RAW; rows without time removed."""
    head, lc_head, c, aperture = _source(TESS_SOURCE)
    keep = np.isfinite(c["TIME"])
    c = {k: v[keep] for k, v in c.items()}
    median = np.nanmedian(c["PDCSAP_FLUX"].astype(np.float64))
    corr = c["PDCSAP_FLUX"].astype(np.float64) / median * 1e6 - 1e6
    corr_err = c["PDCSAP_FLUX_ERR"].astype(np.float64) / median * 1e6
    pixel = c["QUALITY"].astype(np.int32)
    quality = np.zeros(pixel.size, dtype=np.int32)
    quality[(pixel & TESS_DEFAULT) != 0] |= 1  # FlaggedBadData
    quality[(pixel & 128) != 0] |= 2  # ManualExclude
    up, down = _robust_outliers(corr)
    quality[up | down] |= 4  # SigmaClip
    d = lambda name: c[name].astype(np.float64)  # noqa: E731
    columns = [
        fits.Column("TIME", "D", "BJD - 2457000, days", array=c["TIME"]),
        fits.Column("TIMECORR", "E", "d", array=c["TIMECORR"]),
        fits.Column("CADENCENO", "J", array=c["CADENCENO"]),
        fits.Column("FLUX_RAW", "D", "e-/s", array=d("SAP_FLUX")),
        fits.Column("FLUX_RAW_ERR", "D", "e-/s", array=d("SAP_FLUX_ERR")),
        fits.Column("FLUX_BKG", "D", "e-/s", array=d("SAP_BKG")),
        fits.Column("FLUX_CORR", "D", "ppm", array=corr),
        fits.Column("FLUX_CORR_ERR", "D", "ppm", array=corr_err),
        fits.Column("QUALITY", "J", array=quality),
        fits.Column("PIXEL_QUALITY", "J", array=pixel),
        fits.Column("MOM_CENTR1", "D", "pixels", array=d("MOM_CENTR1")),
        fits.Column("MOM_CENTR2", "D", "pixels", array=d("MOM_CENTR2")),
        fits.Column("POS_CORR1", "D", "pixels", array=d("POS_CORR1")),
        fits.Column("POS_CORR2", "D", "pixels", array=d("POS_CORR2")),
    ]
    primary = _primary(
        head,
        remove=("CREATOR",),
        NEXTEND=2,
        ORIGIN="TASOC/Aarhus",
        DATE="2021-03-01",
        FILEVER="1.4",
        PROCVER="tasoc-photometry (layout test)",
        PHOTMET="aperture",
    )
    table = _table(columns, "LIGHTCURVE", _time_cards(lc_head))
    path = dest / NAMES["tasoc"]
    fits.HDUList([primary, table, aperture]).writeto(path)
    return path


PATHOS_APERTURES = (0.8, 0.9, 0.95, 1.0)  # AP1..AP4 as fractions of the SPOC aperture's flux


def build_pathos(dest: Path) -> Path:
    """PATHOS: PSF_FLUX_RAW/COR = SAP/PDCSAP, APk = SAP/PDCSAP x fraction, SKY_LOCAL = SAP_BKG,
    DQUALITY = QUALITY; FFI-based, so every row has a time stamp (rows without one removed)."""
    head, lc_head, c, _ = _source(FFI_SOURCE)
    keep = np.isfinite(c["TIME"])
    c = {k: v[keep] for k, v in c.items()}
    raw, cor = c["SAP_FLUX"].astype(np.float64), c["PDCSAP_FLUX"].astype(np.float64)
    columns = [
        fits.Column("TIME", "D", "BJD - 2457000, days", array=c["TIME"]),
        fits.Column("PSF_FLUX_RAW", "D", "e-/s", array=raw),
        fits.Column("PSF_FLUX_COR", "D", "e-/s", array=cor),
    ]
    for k, f in enumerate(PATHOS_APERTURES, start=1):
        columns += [
            fits.Column(f"AP{k}_FLUX_RAW", "D", "e-/s", array=raw * f),
            fits.Column(f"AP{k}_FLUX_COR", "D", "e-/s", array=cor * f),
        ]
    columns += [
        fits.Column("SKY_LOCAL", "D", "e-/s", array=c["SAP_BKG"].astype(np.float64)),
        fits.Column("X_POSITION", "D", "pixel", array=c["MOM_CENTR1"]),
        fits.Column("Y_POSITION", "D", "pixel", array=c["MOM_CENTR2"]),
        fits.Column("DQUALITY", "J", array=c["QUALITY"]),
    ]
    primary = _primary(head, remove=("ORIGIN", "CREATOR", "PROCVER", "FILEVER", "DATA_REL"), NEXTEND=1)
    table = _table(columns, None, _time_cards(lc_head))  # no EXTNAME
    path = dest / NAMES["pathos"]
    fits.HDUList([primary, table]).writeto(path)
    return path


CDIPS_APERTURES = (0.6, 0.85, 1.0)  # apertures 1..3 as fractions of the SPOC aperture's flux
BTJD_ZERO = 2457000.0


def build_cdips(dest: Path) -> Path:
    """CDIPS: TMID_BJD = TIME + 2457000; IFLk/IFEk = SAP flux/error x fraction; IRMk/IREk their magnitudes;
    TFAk/PCAk magnitudes of PDCSAP x fraction; IRQk 'G' where QUALITY is 0, else '0' (both good for
    lightkurve). Frames without a time stamp and frames with momentum dumps or coarse pointing
    (QUALITY & 36, lightkurve's QUALITY_BITMASK for CDIPS) are removed, as CDIPS removes them."""
    head, _, c, _ = _source(FFI_SOURCE)
    keep = np.isfinite(c["TIME"]) & ((c["QUALITY"] & 36) == 0)
    c = {k: v[keep] for k, v in c.items()}
    sap, sap_err = c["SAP_FLUX"].astype(np.float64), c["SAP_FLUX_ERR"].astype(np.float64)
    pdc = c["PDCSAP_FLUX"].astype(np.float64)
    zero_point = float(head["TESSMAG"]) + 2.5 * np.log10(np.nanmedian(sap))
    irq = np.where(c["QUALITY"] == 0, "G", "0")
    columns = [fits.Column("TMID_BJD", "D", "day", array=c["TIME"] + BTJD_ZERO)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, f in enumerate(CDIPS_APERTURES, start=1):
            columns += [
                fits.Column(f"IFL{k}", "D", "ADU", array=sap * f),
                fits.Column(f"IFE{k}", "D", "ADU", array=sap_err * f),
                fits.Column(f"IRM{k}", "D", "mag", array=zero_point - 2.5 * np.log10(sap * f)),
                fits.Column(f"IRE{k}", "D", "mag", array=2.5 / np.log(10) * sap_err / sap),
                fits.Column(f"IRQ{k}", "1A", array=irq),
            ]
        for k, f in enumerate(CDIPS_APERTURES, start=1):
            columns.append(fits.Column(f"TFA{k}", "D", "mag", array=zero_point - 2.5 * np.log10(pdc * f)))
        for k, f in enumerate(CDIPS_APERTURES, start=1):
            pca = zero_point - 2.5 * np.log10(pdc * f) + 1e-4 * (c["POS_CORR1"] - np.nanmedian(c["POS_CORR1"]))
            columns.append(fits.Column(f"PCA{k}", "D", "mag", array=pca))
    primary = _primary(
        head,
        remove=("CREATOR", "PROCVER", "FILEVER", "DATA_REL"),
        NEXTEND=1,
        ORIGIN="CDIPS pipeline (Bouma et al. 2019)",
        DATE="2019-10-01",
    )
    table = _table(columns, None, [("TIMESYS", "TDB", "time system is Barycentric Dynamical Time")])
    path = dest / NAMES["cdips"]
    fits.HDUList([primary, table]).writeto(path)
    return path


def _k2sc_table(
    c: dict[str, np.ndarray], flux_column: str, error_column: str, name: str, lc_head: fits.Header
) -> fits.BinTableHDU:
    """One K2SC v2 table, columns in the real files' order: time, cadence, quality, x, y, flux, error,
    mflags, trtime, trposi; flux = source flux - (trposi - mean) - (trtime - mean), as bin/k2mastify does."""
    f = c[flux_column].astype(np.float64)
    med = np.nanmedian(f)
    pc1, pc2, t = c["POS_CORR1"].astype(np.float64), c["POS_CORR2"].astype(np.float64), c["TIME"]
    trposi = med * (1 + 0.01 * (pc1 - np.median(pc1)) - 0.005 * (pc2 - np.median(pc2)))
    trtime = med * (1 + 0.002 * np.sin(2 * np.pi * (t - t[0]) / 10.0))
    flux = f - (trposi - np.nanmean(trposi)) - (trtime - np.nanmean(trtime))
    mflags = np.zeros(f.size, dtype=np.uint8)
    mflags[c["SAP_QUALITY"] != 0] |= 1
    up, down = _robust_outliers(flux)
    mflags[up] |= 8
    mflags[down] |= 16
    mflags[~np.isfinite(f)] |= 32
    columns = [
        fits.Column("time", "D", array=t),
        fits.Column("cadence", "J", array=c["CADENCENO"]),
        fits.Column("quality", "J", array=c["SAP_QUALITY"]),
        fits.Column("x", "D", array=pc1),
        fits.Column("y", "D", array=pc2),
        fits.Column("flux", "D", array=flux),
        fits.Column("error", "D", array=c[error_column].astype(np.float64)),
        fits.Column("mflags", "B", array=mflags),
        fits.Column("trtime", "D", array=trtime),
        fits.Column("trposi", "D", array=trposi),
    ]
    epic = int(lc_head.get("KEPLERID", 211436265))
    cards = [
        *_time_cards(lc_head),
        ("EPIC", epic, ""),
        ("SPLITS", "[2344]", ""),
        ("CDPPR", 40.0, ""),
        ("CDPPT", 35.0, ""),
        ("CDPPC", 30.0, ""),
        ("AP_WARN", False, ""),
        ("KER_NAME", "QuasiPeriodicKernel", ""),
        ("ORIGIN", "SPLOX: Stars and Planets at Oxford", ""),
        ("PROGRAM", "k2SC v0.9", ""),
        ("DATE", "2016-07-20T00:00:00", ""),
    ]
    return _table(columns, name, cards)


def build_k2sc(dest: Path) -> Path:
    """K2SC v2: tables PDC (from PDCSAP_FLUX) then SAP (from SAP_FLUX), cadences with finite time and position."""
    head, lc_head, c, _ = _source(K2_SOURCE)
    keep = np.isfinite(c["TIME"]) & np.isfinite(c["POS_CORR1"]) & np.isfinite(c["POS_CORR2"])
    c = {k: v[keep] for k, v in c.items()}
    primary = _primary(
        head,
        remove=("PROCVER", "FILEVER", "TIMVERSN"),
        NEXTEND=2,
        ORIGIN="SPLOX: Stars and Planets at Oxford",
        DATE="2016-07-20T00:00:00",
        PROGRAM="k2SC v0.9",
        CREATOR="k2SC v0.9",
    )
    tables = [
        _k2sc_table(c, "PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "PDC", lc_head),
        _k2sc_table(c, "SAP_FLUX", "SAP_FLUX_ERR", "SAP", lc_head),
    ]
    path = dest / NAMES["k2sc"]
    fits.HDUList([primary, *tables]).writeto(path)
    return path


EVEREST_COMMENTS = ("************************", "*     EVEREST INFO     *", "************************")


def build_everest(dest: Path) -> Path:
    """EVEREST: FRAW/FRAW_ERR = SAP, FLUX = PDCSAP (NaN where FRAW is), FCOR = FLUX - CBV model,
    CADN = CADENCENO as float, QUALITY = SAP_QUALITY + EVEREST bits 22-24, NaN times interpolated."""
    head, lc_head, c, aperture = _source(K2_SOURCE)
    time = c["TIME"].copy()
    nan = ~np.isfinite(time)
    index = np.arange(time.size)
    time[nan] = np.interp(index[nan], index[~nan], time[~nan])
    fraw, fraw_err = c["SAP_FLUX"].astype(np.float64), c["SAP_FLUX_ERR"].astype(np.float64)
    flux = c["PDCSAP_FLUX"].astype(np.float64)
    flux[~np.isfinite(fraw)] = np.nan
    cbv = []
    for name in ("POS_CORR1", "POS_CORR2"):
        x = c[name].astype(np.float64)
        x = np.where(np.isfinite(x), x, np.nanmedian(x))
        cbv.append((x - x.mean()) / (x.std() or 1.0))
    med = np.nanmedian(flux)
    fcor = flux - 1e-3 * med * cbv[0] - 5e-4 * med * cbv[1]
    quality = c["SAP_QUALITY"].astype(np.int32).copy()
    quality[(quality & KEPLER_DEFAULT) != 0] += 2**22  # QUALITY_BAD
    quality[~np.isfinite(fraw)] += 2**23  # QUALITY_NAN
    up, down = _robust_outliers(flux)
    quality[up | down] += 2**24  # QUALITY_OUT
    transit = (np.arange(quality.size) % 500) < 6
    quality[transit] += 2**26  # QUALITY_TRN: in transit, masked out of the model
    columns = [
        fits.Column("CADN", "D", array=c["CADENCENO"].astype(np.float64)),
        fits.Column("FLUX", "D", "e-/s", array=flux),
        fits.Column("FRAW", "D", "e-/s", array=fraw),
        fits.Column("FRAW_ERR", "D", "e-/s", array=fraw_err),
        fits.Column("QUALITY", "J", array=quality),
        fits.Column("TIME", "D", "BJD - 2454833", array=time),
        fits.Column("FCOR", "D", "e-/s", array=fcor),
        fits.Column("CBV01", "D", array=cbv[0]),
        fits.Column("CBV02", "D", array=cbv[1]),
    ]
    header = head.copy()
    for key in ("CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True)
    header["NEXTEND"] = 2
    for text in EVEREST_COMMENTS:
        header.append(("COMMENT", text), end=True)
    header["MISSION"] = ("k2", "Mission name")
    header["VERSION"] = ("2.0", "EVEREST pipeline version")
    header["DATE"] = ("2018-02-01", "EVEREST file creation date (YYYY-MM-DD)")
    cards = [
        *_time_cards(lc_head),
        *(("COMMENT", t, "") for t in EVEREST_COMMENTS),
        ("MISSION", "k2", "Mission name"),
        ("VERSION", "2.0", "EVEREST pipeline version"),
        ("MODEL", "nPLD", "Name of EVEREST model used"),
        ("APNAME", "k2sff_15", "Name of aperture used"),
    ]
    table = _table(columns, "ARRAYS", cards)
    mask = fits.ImageHDU(data=aperture.data, name="APERTURE MASK")
    for text in EVEREST_COMMENTS:
        mask.header.append(("COMMENT", text), end=True)
    path = dest / NAMES["everest"]
    fits.HDUList([fits.PrimaryHDU(header=header), table, mask]).writeto(path)
    return path


BUILDERS = {"tasoc": build_tasoc, "pathos": build_pathos, "cdips": build_cdips, "k2sc": build_k2sc, "everest": build_everest}


# -- fixtures -------------------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The five files, built from the real light curves of ../shared."""
    dest = tmp_path_factory.mktemp("hlsp-sources")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        return {name: build(dest) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def ingested(files, tmp_path_factory):
    """All five files in ONE ingest, no options; (archive, report)."""
    root = tmp_path_factory.mktemp("hlsp-archive") / "archive"
    report = lcarchive.Archive(str(root)).ingest([str(p) for p in files.values()])
    return lcarchive.open_archive(str(root)), report


@pytest.fixture(scope="module")
def archive(ingested):
    return ingested[0]


@pytest.fixture(scope="module")
def rows(archive) -> dict[str, tuple[str, str, int]]:
    """SHA-256 of each stored file -> (observation ID, group URL, row)."""
    found = {}
    for obs in archive.observations:
        url = (archive.url, obs.id)
        with archive.open_observation(obs.id) as ds:
            for row, shas in enumerate(ds["source_sha256"].values):
                for sha in str(shas).split("\n"):
                    found[sha] = (obs.id, url, row)
    return found


def _row(rows, path: Path) -> tuple[xr.Dataset, np.ndarray]:
    """The file's row of its group, read with plain xarray, and the cadences it has (quality not the fill)."""
    _, url, row = rows[_sha(path)]
    with xr.open_dataset(url[0], group=url[1], engine="lcarchive") as ds:
        one = ds.isel(target=row).load()
    return one, one["quality"].values != PADDING


@pytest.fixture(scope="module")
def exported(archive, tmp_path_factory) -> dict[str, Path]:
    """Everything in the archive downloaded as FITS; SHA-256 -> file."""
    dest = tmp_path_factory.mktemp("hlsp-exported")
    report = lcarchive.download(archive, dest, lcarchive.Selection(), format="fits")
    assert report.ok and report.written, report
    return {_sha(p): p for p in dest.rglob("*.fits")}


def _lightkurve(path: Path, **kwargs):
    lk = pytest.importorskip("lightkurve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lk.read(str(path), quality_bitmask="none", **kwargs)


def _table_of(path: Path, hdu: int | str = 1) -> dict[str, np.ndarray]:
    with fits.open(path, memmap=False) as hdul:
        table = hdul[hdu].data
        return {n: np.asarray(table[n]) for n in table.names}


def _native(a: np.ndarray) -> np.ndarray:
    return a.astype(a.dtype.newbyteorder("=")) if a.dtype.kind in "iuf" else a


# -- 1. detection and reading, against lightkurve -----------------------------------------------------


@pytest.mark.parametrize("product", list(BUILDERS))
def test_detected_as_its_product(product, files):
    """lcarchive recognises each layout as its product; lightkurve recognises the same file as the same product."""
    from lightkurve.io.detect import detect_filetype

    lc = read_lightcurve(str(files[product]))
    assert lc.product.name == product
    assert lc.observation_id == OBSERVATIONS[product]
    with fits.open(files[product]) as hdul:
        assert detect_filetype(hdul) == product.upper()  # TASOC, PATHOS, CDIPS, K2SC, EVEREST


def test_everest_cadence_column_is_float_and_read_as_cadence_numbers(files):
    lc = read_lightcurve(str(files["everest"]))
    cadn = _table_of(files["everest"])["CADN"]
    assert cadn.dtype == np.dtype(">f8")
    assert lc.cadenceno.dtype == np.int64 and np.array_equal(lc.cadenceno, cadn.astype(np.int64))
    assert "cadenceno" not in lc.notes


def test_cdips_time_is_tmid_bjd_minus_btjd_zero(files):
    lc = read_lightcurve(str(files["cdips"]))
    tmid = _native(_table_of(files["cdips"])["TMID_BJD"])
    assert_bit_equal(lc.columns["time"].data, tmid - BTJD_ZERO, "time")
    assert_bit_equal(lc.columns["tmid_bjd"].data, tmid, "tmid_bjd kept")
    for k in (1, 2, 3):  # one-character quality letters kept as their ASCII codes
        column = lc.columns[f"irq{k}"]
        assert column.fits_format == "1A" and column.data.dtype == np.uint8
        assert set(column.data.tolist()) <= {ord("G"), ord("0")}


@pytest.mark.parametrize("product", LIGHTKURVE_READS)
def test_core_variables_equal_lightkurve(product, files, rows):
    """time, flux, flux_err (and quality) of the archive, read back with plain xarray, equal lightkurve's reading
    (quality_bitmask="none") of the file, row for row."""
    path = files[product]
    lc = _lightkurve(path)
    one, present = _row(rows, path)
    ours_time = one["time"].values
    theirs_time = np.asarray(lc.time.value)
    if product == "cdips":
        # lightkurve 2.6 reads TMID_BJD (the full BJD) as if it were BTJD: its "btjd" values are BJD; lcarchive
        # subtracts 2457000 (cdips.json time_offset) and keeps the column as tmid_bjd.
        assert theirs_time.min() > BTJD_ZERO
        idx = np.array([np.flatnonzero(present & (one["tmid_bjd"].values == t))[0] for t in theirs_time])
        assert_bit_equal(ours_time[idx], theirs_time - BTJD_ZERO, "time")
    elif "cadenceno" in lc.colnames:  # TASOC CADENCENO, EVEREST CADN (float)
        cadences = np.asarray(lc["cadenceno"]).astype(np.int64)
        idx = np.searchsorted(one["cadenceno"].values, cadences)
        assert np.array_equal(one["cadenceno"].values[idx], cadences)
        assert_bit_equal(ours_time[idx], theirs_time, "time")
    else:  # PATHOS: no cadence column; lcarchive numbers the cadences from time
        idx = np.array([np.flatnonzero(present & (ours_time == t))[0] for t in theirs_time])
    assert present[idx].all()
    assert present.sum() == len(lc) == len(np.unique(idx))  # no row without a time stamp in these files
    assert np.array_equal(one["flux"].values[idx], np.asarray(lc.flux.value), equal_nan=True), "flux"
    if product == "cdips":
        # lightkurve gives CDIPS errors only with include_inst_errs=True (IRE1 for IRM1); lcarchive's
        # flux_err is IRE1 (cdips.json), so it equals that reading, not the default one (all NaN).
        assert np.all(np.isnan(np.asarray(lc.flux_err.value)))
        with_errors = _lightkurve(path, include_inst_errs=True)
        assert np.array_equal(np.asarray(with_errors.time.value), theirs_time)
        theirs_err = np.asarray(with_errors.flux_err.value)
        assert not np.all(np.isnan(theirs_err))
    else:
        theirs_err = np.asarray(lc.flux_err.value)
    assert np.array_equal(one["flux_err"].values[idx], theirs_err, equal_nan=True), "flux_err"
    if product == "pathos":  # lightkurve keeps DQUALITY as 'dquality' (it never becomes 'quality')
        assert np.array_equal(one["quality"].values[idx], np.asarray(lc["dquality"]))
    elif product == "cdips":  # lightkurve's quality is the IRQ1 letter; lcarchive's is 0, the letters kept as codes
        assert np.all(one["quality"].values[idx] == 0)
        assert np.array_equal(one["irq1"].values[idx], np.array([ord(q) for q in np.asarray(lc["quality"])], dtype=np.uint8))
    else:
        assert np.array_equal(one["quality"].values[idx], np.asarray(lc["quality"]))
    assert one["time"].attrs["time_format"] == lc.time.format.upper()
    assert one["time"].attrs["time_scale"] == lc.time.scale == "tdb"


@pytest.mark.parametrize("product", ["everest", "pathos", "cdips"])
def test_flux_units_equal_lightkurve(product, files, rows):
    """The archive's units of flux and flux_err are lightkurve's (EVEREST, PATHOS: e-/s; CDIPS: mag). TASOC's
    ppm is tested by test_tasoc_ppm_flux_units_without_lightkurve: whether astropy parses 'ppm' depends on
    whether lightkurve was imported before the ingest, i.e. on the order the tests run in."""
    from astropy import units as u

    from lcarchive.conventions import astropy_unit

    lc = _lightkurve(files[product], **({"include_inst_errs": True} if product == "cdips" else {}))
    one, _ = _row(rows, files[product])
    for ours, theirs in (("flux", lc.flux.unit), ("flux_err", lc.flux_err.unit)):
        attrs = one[ours].attrs
        unit = astropy_unit(attrs)  # astropy's spelling; `units` is UDUNITS' (CF)
        assert u.Unit(unit) == theirs, f"{ours}: units {unit!r} (TUNIT {attrs.get('fits_unit')!r}), lightkurve {theirs}"


def test_tasoc_ppm_flux_units_without_lightkurve(files):
    """TASOC FLUX_CORR/FLUX_CORR_ERR have TUNIT 'ppm'. astropy parses 'ppm' only once lightkurve is imported
    (lightkurve.units registers it with astropy), so read the file as `lcarchive ingest` does: in a fresh
    interpreter that has not imported lightkurve. The units must not depend on that."""
    import json
    import subprocess
    import sys

    from astropy import units as u

    code = (
        "import json, sys\n"
        "from lcarchive.formats import read_lightcurve\n"
        "lc = read_lightcurve(sys.argv[1])\n"
        "assert 'lightkurve' not in sys.modules\n"
        "print(json.dumps({k: lc.columns[k].units for k in ('flux', 'flux_err')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(files["tasoc"])], capture_output=True, text=True, check=True)
    units = json.loads(out.stdout.strip().splitlines()[-1])
    for name, unit in units.items():
        assert unit, f"{name}: TUNIT 'ppm' read as no unit ({unit!r}) when lightkurve is not imported"
        assert u.Unit(unit).decompose() == u.Unit(1e-6), f"{name}: {unit!r}"


def test_lightkurve_has_no_k2sc_reader(files):
    """lightkurve 2.6 recognises K2SC files but cannot read them, so K2SC is checked against astropy alone."""
    lk = pytest.importorskip("lightkurve")
    with pytest.raises(lk.LightkurveError, match="K2SC is not supported"):
        _lightkurve(files["k2sc"])


# -- 2. K2SC: the PDC table is the light curve, the SAP table is kept ----------------------------------


def test_k2sc_pdc_table_is_the_light_curve_and_sap_table_is_kept(files, rows):
    path = files["k2sc"]
    pdc, sap = _table_of(path, "PDC"), _table_of(path, "SAP")
    one, present = _row(rows, path)
    assert present.sum() == len(pdc["time"])
    assert np.array_equal(one["cadenceno"].values[present], pdc["cadence"].astype(np.int64))
    assert_bit_equal(one["time"].values[present], _native(pdc["time"]), "time")
    assert_bit_equal(one["flux"].values[present], _native(pdc["flux"]), "flux = PDC flux")
    assert_bit_equal(one["flux_err"].values[present], _native(pdc["error"]), "flux_err = PDC error")
    assert one["flux_err"].attrs["source_column"] == "error"
    assert_bit_equal(one["quality"].values[present], _native(pdc["quality"]), "quality = PDC quality")
    assert str(one["product_version"].values) == "v2"  # from the file name (and the trtime column)
    for name in ("x", "y", "trtime", "trposi", "mflags"):
        assert_bit_equal(one[name].values[present], _native(pdc[name]), f"PDC {name}")
    for name, values in sap.items():  # every column of the second table, as sap_<column>
        variable = f"sap_{name}"
        assert variable in one, variable
        assert_bit_equal(one[variable].values[present], _native(values), variable)
        assert one[variable].attrs["source_hdu"] == "SAP" and one[variable].attrs["source_column"] == name
    assert not np.array_equal(one["flux"].values[present], one["sap_flux"].values[present], equal_nan=True)


def test_k2sc_catalog_has_both_detrended_fluxes_once(archive):
    """The catalog's datasets: the PDC-based flux (flux) and the SAP-based one (sap_flux), each once."""
    datasets = [d for d in archive.catalog.datasets if d.observation == OBSERVATIONS["k2sc"]]
    by_variable = {d.variable: d for d in datasets}
    assert set(by_variable) == {"flux", "sap_flux"}
    assert by_variable["flux"].source_column == "flux" and by_variable["sap_flux"].source_column == "SAP.flux"
    assert {d.processing_method for d in datasets} == {"K2SC"}
    assert by_variable["flux"].error_variable == "flux_err"
    ids = [d.id for d in datasets]
    assert len(ids) == len(set(ids)), f"duplicate dataset IDs: {ids}"


# -- 3. one batch, no options; byte-identical export ---------------------------------------------------


def test_all_five_ingested_in_one_batch_without_skips(ingested, files):
    archive, report = ingested
    assert report.skipped == [], report.skipped
    assert {o.id for o in archive.observations} == set(OBSERVATIONS.values())
    assert {o.product for o in archive.observations} == set(BUILDERS)


@pytest.mark.parametrize("product", list(BUILDERS))
def test_exported_fits_is_the_source_byte_for_byte(product, files, exported):
    path = files[product]
    assert _sha(path) in exported, f"no exported file has the bytes of {path.name}"
    out = exported[_sha(path)]
    assert out.read_bytes() == path.read_bytes()


def test_exported_cdips_characters_and_everest_float_cadences(files, exported):
    """The columns lcarchive stores in another dtype come back in their own format."""
    cdips = exported[_sha(files["cdips"])]
    with fits.open(cdips) as hdul:
        for k in (1, 2, 3):
            assert hdul[1].columns[f"IRQ{k}"].format == "1A"
            assert np.array_equal(hdul[1].data[f"IRQ{k}"], _table_of(files["cdips"])[f"IRQ{k}"])
    everest = exported[_sha(files["everest"])]
    with fits.open(everest) as hdul:
        assert hdul["ARRAYS"].columns["CADN"].format == "D"
        assert_bit_equal(np.asarray(hdul["ARRAYS"].data["CADN"]), _table_of(files["everest"])["CADN"], "CADN")


# -- 4. quality flags ------------------------------------------------------------------------------------


def _stored_quality(archive, product) -> tuple[np.ndarray, str]:
    with archive.open_observation(OBSERVATIONS[product]) as ds:
        quality = ds["quality"].values[0]
        return quality[quality != PADDING], ds.attrs["quality_flags"]


def test_tasoc_quality_decodes_with_tasoc_flags(archive, files):
    quality, table = _stored_quality(archive, "tasoc")
    assert table == "tasoc"
    source = _table_of(files["tasoc"])
    assert np.array_equal(np.sort(quality), np.sort(_native(source["QUALITY"])))
    names = decode(quality, table)
    assert names[0] == [] and names[1] == ["FlaggedBadData"] and names[3] == ["FlaggedBadData", "ManualExclude"]
    if 4 in names:
        assert names[4] == ["SigmaClip"]
    assert bitmask(table, "default") == 3  # tasoc/photometry CorrectorQualityFlags.DEFAULT_BITMASK
    good = good_cadences(quality, table, "default")
    assert np.array_equal(good, (quality & 3) == 0)
    assert not good.all() and good.any()
    assert good_cadences(quality, table, "hardest").sum() == (quality == 0).sum()


def test_everest_quality_decodes_kepler_and_everest_bits(archive, files):
    quality, table = _stored_quality(archive, "everest")
    assert table == "everest"
    names = decode(quality, table)
    flagged = [q for q in names if q & 2**22]
    assert flagged and all("EverestKeplerFlag" in names[q] for q in flagged)
    assert all("EverestNaN" in names[q] for q in names if q & 2**23)
    assert any(q & 2**23 for q in names)
    assert all(not n.startswith("bit") for v in names.values() for n in v)
    lk = pytest.importorskip("lightkurve")
    for which in ("default", "hard", "hardest"):  # lightkurve's EVEREST reader applies KeplerQualityFlags
        good = good_cadences(quality, table, which)
        assert np.array_equal(good, (quality & lk.utils.KeplerQualityFlags.OPTIONS[which]) == 0), which
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert good.sum() == len(lk.read(str(files["everest"]), quality_bitmask=which)), which


def test_pathos_quality_decodes_with_tess_flags(archive, files):
    quality, table = _stored_quality(archive, "pathos")
    assert table == "spoc"
    assert np.array_equal(quality, _native(_table_of(files["pathos"])["DQUALITY"]))
    names = decode(quality, table)
    assert names[0] == []
    assert all(not n.startswith("bit") for v in names.values() for n in v)
    lk = pytest.importorskip("lightkurve")
    for which in ("default", "hard", "hardest"):  # lightkurve's PATHOS reader applies TessQualityFlags to DQUALITY
        good = good_cadences(quality, table, which)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = lk.read(str(files["pathos"]), quality_bitmask=which)
        assert good.sum() == len(kept), which
        assert np.array_equal(good, (quality & lk.utils.TessQualityFlags.OPTIONS[which]) == 0), which
    assert not good_cadences(quality, table, "default").all()


def test_k2sc_and_cdips_quality(archive, files):
    quality, table = _stored_quality(archive, "k2sc")
    assert table == "kepler"
    assert np.array_equal(quality, _native(_table_of(files["k2sc"], "PDC")["quality"]))
    with archive.open_observation(OBSERVATIONS["k2sc"]) as ds:
        mflags = ds["mflags"].values[0][ds["quality"].values[0] != PADDING]
    names = decode(mflags, "k2sc")
    assert names[0] == [] and all(not n.startswith("bit") for v in names.values() for n in v)
    assert all("K2QualityFlag" in names[m] for m in names if m & 1)
    cdips, table = _stored_quality(archive, "cdips")
    assert table == "" and np.all(cdips == 0)
