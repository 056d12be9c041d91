"""Light-curve files of kinds not in ../shared, made at test time from the real light curves there.

Each is what a real tool writes from a real file, made the way that tool makes it:

- lightkurve itself (``LightCurve.to_fits()`` of a whole light curve and of a slice, and astropy's
  Table writer through ``LightCurve.write(..., format="fits")``, whose time column is an astropy
  ``Time`` stored as jd1, jd2 and whose keywords all sit in the table's header);
- PyKE's ``kepcotrend`` (KeplerGO/pyke ``kepcotrend.py``: the input file with ``CBVSAP_MODL`` and
  ``CBVSAP_FLUX`` appended to its light-curve table, TFORM D, TUNIT e-/s, and no HISTORY card), here
  with the model fitted by numpy least squares to the file's own POS_CORR1/2 in place of the CBVs,
  once per "fit" so that several outputs of one source differ;
- PyKE's ``kepflatten`` (``DETSAP_FLUX``/``DETSAP_FLUX_ERR`` appended, normalised, no TUNIT, and its
  ``KEPFLATTEN -- ...`` HISTORY call on the primary, written twice as PyKE does);
- K2SFF's engineering-test files (``hlsp_k2sff_k2_lightcurve_060019819-cet_kepler_v1_llc.fits``: the
  K2SFF layout, KEPLERID in the 60,0xx,xxx range, no CAMPAIGN keyword, time stamps in BKJD 1862-1869),
  here a real K2SFF file with those keywords and its time stamps moved into that span;
- gzip-compressed copies (``.fits.gz``);
- TGLC files of Gaia stars with no TIC match (TGLC writes ``TICID = ''`` for them; the Gaia DR3 ID
  stays in ``GAIADR3``, ``OBJECT`` and the file name), here a real TGLC file with its TICID blanked;
- a generic TESS light curve named by a solar-system designation (``OBJECT = '3I/ATLAS'``, no TICID),
  as the TESS comet products name their target: lightkurve's ``to_fits`` of a 200-row slice of a real
  SPOC light curve, relabelled. It is no comet's data (the comet's own files are in no stored
  repository): it tests how a file of no known product named by a designation is read.
"""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from conftest import DATA

SPOC = DATA / "spoc-2min" / "tess2018206045859-s0001-0000000261136679-0120-s_lc.fits"
KEPLER = DATA / "kepler" / "kplr011442793-2009350155506_llc.fits"
K2 = DATA / "k2" / "ktwo211436265-c05_llc.fits"
K2SFF = DATA / "k2sff" / "hlsp_k2sff_k2_lightcurve_201367065-c01_kepler_v1_llc.fits"
TGLC = DATA / "tglc" / "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0007-cam2-ccd3_tess_v2_llc.fits"


def lightkurve_files(dest: Path) -> dict[str, Path]:
    """lightkurve's own outputs of real light curves: to_fits (TESS, Kepler, K2, a 200-row slice) and write."""
    import lightkurve as lk

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tess, kepler, k2 = (lk.read(str(p)) for p in (SPOC, KEPLER, K2))
        for name, lc in (("tess", tess), ("kepler", kepler), ("k2", k2)):
            out[f"to_fits_{name}"] = dest / f"lk-to_fits-{name}.fits"
            lc.to_fits(str(out[f"to_fits_{name}"]), overwrite=True)
        out["to_fits_slice"] = dest / "lk-to_fits-tess-slice.fits"
        tess[100:300].to_fits(str(out["to_fits_slice"]), overwrite=True)
        out["write_tess"] = dest / "lk-write-tess.fits"
        tess.write(str(out["write_tess"]), format="fits", overwrite=True)
        out["write_kepler"] = dest / "lk-write-kepler.fits"
        kepler.write(str(out["write_kepler"]), format="fits", overwrite=True)
    return out


def kepcotrend_files(dest: Path, n: int = 4) -> list[Path]:
    """``n`` kepcotrend outputs of one Kepler file, each a different 'fit' (as fit methods give)."""
    paths = []
    with fits.open(KEPLER, memmap=False) as hdul:
        table = hdul[1].data
        sap = np.asarray(table["SAP_FLUX"], dtype=np.float64)
        basis = np.stack([np.nan_to_num(np.asarray(table[c], dtype=np.float64)) for c in ("POS_CORR1", "POS_CORR2")], axis=1)
        good = np.isfinite(sap)
        median = np.nanmedian(sap)
        for k in range(n):
            weights = np.linspace(1.0, 1.0 + 0.25 * k, good.sum())  # another fit of the same basis
            coeffs, *_ = np.linalg.lstsq(basis[good] * weights[:, None], (sap[good] / median - 1) * weights, rcond=None)
            model = basis @ coeffs
            model[~good] = np.nan
            flux = sap - model * median
            columns = table.columns + fits.ColDefs(
                [
                    fits.Column("CBVSAP_MODL", "D", "e-/s", array=model),
                    fits.Column("CBVSAP_FLUX", "D", "e-/s", array=flux),
                ]
            )
            new = fits.BinTableHDU.from_columns(columns, header=hdul[1].header)
            path = dest / f"kplr011442793-2009350155506_llc-kepcotrend-fit{k}.fits"
            fits.HDUList([hdul[0].copy(), new, *[h.copy() for h in hdul[2:]]]).writeto(path, overwrite=True)
            paths.append(path)
    return paths


def kepflatten_file(dest: Path) -> Path:
    """A kepflatten output of a real Kepler file, with its HISTORY call (twice, as PyKE writes it)."""
    with fits.open(KEPLER, memmap=False) as hdul:
        table = hdul[1].data
        flux = np.asarray(table["PDCSAP_FLUX"], dtype=np.float64)
        trend = np.convolve(np.nan_to_num(flux, nan=np.nanmedian(flux)), np.ones(49) / 49, mode="same")
        columns = table.columns + fits.ColDefs(
            [
                fits.Column("DETSAP_FLUX", "E", array=(flux / trend).astype(np.float32)),
                fits.Column("DETSAP_FLUX_ERR", "E", array=(np.asarray(table["PDCSAP_FLUX_ERR"]) / trend).astype(np.float32)),
            ]
        )
        primary = hdul[0].copy()
        call = (
            "KEPFLATTEN -- infile=kplr011442793-2009350155506_llc.fits outfile=flat.fits datacol=PDCSAP_FLUX "
            "errcol=PDCSAP_FLUX_ERR nsig=3.0 stepsize=0.5 winsize=5.0 npoly=3 niter=10 ranges=0,0 plot=False "
            "overwrite=True verbose=False logfile=kepflatten.log"
        )
        for _ in range(2):
            for i in range(0, len(call), 72):
                primary.header.add_history(call[i : i + 72])
        path = dest / "kplr011442793-2009350155506_llc-flat.fits"
        fits.HDUList(
            [primary, fits.BinTableHDU.from_columns(columns, header=hdul[1].header), *[h.copy() for h in hdul[2:]]]
        ).writeto(path, overwrite=True)
    return path


ENGINEERING_EPIC = 60019819
ENGINEERING_START = 1862.4  # BKJD of the K2 Two-Wheel Concept Engineering Test, 2014-02


def k2sff_engineering_file(dest: Path) -> Path:
    """A K2SFF file of the engineering test: KEPLERID 60019819, no CAMPAIGN, 321 rows in BKJD 1862.4-1869."""
    with fits.open(K2SFF, memmap=False) as hdul:
        new = fits.HDUList([h.copy() for h in hdul])
    for key in ("CAMPAIGN",):
        new[0].header.remove(key, ignore_missing=True)
    new[0].header["KEPLERID"] = ENGINEERING_EPIC
    new[0].header["OBJECT"] = f"EPIC {ENGINEERING_EPIC}"
    for i, hdu in enumerate(new):
        if isinstance(hdu, fits.BinTableHDU):
            data = hdu.data[:321].copy()
            data["T"] = ENGINEERING_START + (data["T"] - data["T"][0])
            new[i] = fits.BinTableHDU(data=data, header=hdu.header)
    path = dest / f"hlsp_k2sff_k2_lightcurve_{ENGINEERING_EPIC:09d}-cet_kepler_v1_llc.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new.writeto(path, overwrite=True)
    return path


def gzip_copy(src: Path, dest: Path) -> Path:
    """``src`` compressed with gzip, as ``<name>.gz``."""
    path = dest / f"{src.name}.gz"
    with open(src, "rb") as f, gzip.open(path, "wb") as g:
        shutil.copyfileobj(f, g)
    return path


def _without_tic(source: Path, value: str, dest: Path) -> Path:
    """A copy of the real file ``source`` with ``TICID = value`` in its primary header, the rest as it
    is; in ``dest/no-tic`` under the real name with ``-no-tic`` before ``.fits`` (two files of one name
    in one observation would export to one path)."""
    with fits.open(source, memmap=False) as hdul:
        new = fits.HDUList([h.copy() for h in hdul])
    new[0].header["TICID"] = value
    folder = dest / "no-tic"
    folder.mkdir(exist_ok=True)
    path = folder / source.name.replace(".fits", "-no-tic.fits")
    new.writeto(path, overwrite=True)
    return path


def tglc_without_tic(dest: Path) -> Path:
    """A TGLC file of a Gaia star with no TIC match: the real sector-7 file of Gaia DR3 5707485527450614656
    (TIC 218795833) with ``TICID = ''``, as TGLC writes such stars (:func:`_without_tic`)."""
    return _without_tic(TGLC, "", dest)


def cdips_without_tic(dest: Path) -> Path:
    """A CDIPS file of a Gaia DR2 star with no TIC match: the real sector-6 CDIPS file of Gaia DR2
    3007171311355035136 (tests/data/public/cdips, TIC 443387847) with ``TICID = 'nan'``, as CDIPS writes
    such stars (:func:`_without_tic`)."""
    from conftest import PUBLIC

    return _without_tic(
        PUBLIC / "cdips" / "hlsp_cdips_tess_ffi_gaiatwo0003007171311355035136-0006_tess_v01_llc.fits", "nan", dest
    )


def designated_generic_file(dest: Path) -> Path:
    """lightkurve's ``to_fits`` of rows 100-300 of the real SPOC sector-1 light curve of TIC 261136679, with
    ``OBJECT`` (and ``LABEL``) '3I/ATLAS' and no ``TICID`` or ``TARGETID``: a generic TESS file named by a designation (not a comet's data)."""
    import lightkurve as lk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = lk.read(str(SPOC))[100:300]
        path = dest / "lk-to_fits-tess-slice-designated.fits"
        lc.to_fits(str(path), overwrite=True)
    with fits.open(path, mode="update") as hdul:
        for hdu in hdul:
            for key in ("TICID", "TARGETID"):
                hdu.header.remove(key, ignore_missing=True, remove_all=True)
        for key in ("OBJECT", "LABEL"):
            if key in hdul[0].header:
                hdul[0].header[key] = "3I/ATLAS"
    return path
