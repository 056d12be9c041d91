#!/usr/bin/env python
"""Build a realistic synthetic observation from one real light-curve FITS file.

    python tools/synth.py TEMPLATE.fits OUTDIR --n-targets N [--seed S] [--first-id ID]

Each of the N files written to OUTDIR is a copy of TEMPLATE (same HDUs, the same cadence grid
CADENCENO, the same column set and dtypes, the same headers) for a new target:

* a new target ID (``TICID`` or ``KEPLERID``, ``first_id``, ``first_id + 1``, ...), and
  ``OBJECT`` = ``'TIC <id>'`` / ``'KIC <id>'`` / ``'EPIC <id>'`` in every HDU that has them;
* a new position: ``RA_OBJ``/``DEC_OBJ`` drawn uniformly within 2 degrees of the template's;
* a per-target flux level ``scale``, log-uniform in [0.1, 10] (``TESSMAG``/``KEPMAG`` shifted
  by ``-2.5 log10(scale)``): the flux columns (``SAP_FLUX``, ``PDCSAP_FLUX``; for QLP
  ``SAP_FLUX``, ``KSPSAP_FLUX`` and its ``_SML``/``_LAG`` variants) become the template's
  values x scale + Gaussian noise of sigma = the matching error column x scale; the error
  columns and ``SAP_BKG``/``SAP_BKG_ERR`` are multiplied by scale;
* centroid columns (``MOM_CENTR*``, ``PSF_CENTR*``, QLP ``SAP_X``/``SAP_Y``) shifted by a
  per-target constant of up to +-500 pixels (the star sits elsewhere on the CCD);
* ``TIME`` shifted, where finite, by a per-target constant offset in [-9e-5, 9e-5] d so that
  time stamps differ between targets, as the barycentric correction makes them do.

NaNs of the template stay NaN (and no new NaN is made), ``QUALITY``/``SAP_QUALITY``,
``CADENCENO``, ``TIMECORR``, ``POS_CORR*`` and the aperture image are kept. Files whose template
carries ``CHECKSUM``/``DATASUM`` get fresh ones. File names follow the template's: its target ID
inside the name is replaced by the new one with the same zero padding
(``tess2018206045859-s0001-<16-digit TIC>-0120-s_lc.fits``,
``hlsp_tess-spoc_tess_phot_<16-digit TIC>-s0024_tess_v1_lc.fits``,
``kplr<9-digit KIC>-2009350155506_llc.fits``, ``ktwo<EPIC>-c05_llc.fits``,
``hlsp_qlp_tess_ffi_s0024-<16-digit TIC>_tess_v01_llc.fits``).

Target i's content depends only on (template, seed, i, first_id), not on N: a run with
``--n-targets 20`` writes the same first 20 files as a run with ``--n-targets 1000``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

#: default first synthetic ID per catalog: high enough not to collide with the real stars of
#: ../shared/data (real KIC IDs are below 1.3e7, real EPIC IDs below 2.6e8), and inside
#: lcarchive's ID ranges (TIC 1..9999999999, KIC 1..99999999, EPIC 200000000..299999999).
DEFAULT_FIRST_ID = {"TIC": 3_000_000_000, "KIC": 50_000_000, "EPIC": 290_000_000}

SCALE_RANGE = (0.1, 10.0)  # per-target flux scale, log-uniform
POSITION_RADIUS_DEG = 2.0
TIME_OFFSET_MAX_D = 9e-5  # |offset| < 1e-4 d
CENTROID_OFFSET_MAX_PIX = 500.0

#: flux column -> error column used as noise sigma (before scaling)
_FLUX_ERR = {
    "SAP_FLUX": "SAP_FLUX_ERR",
    "PDCSAP_FLUX": "PDCSAP_FLUX_ERR",
    # QLP: no SAP_FLUX_ERR; its one error column serves all its flux columns
    "KSPSAP_FLUX": "KSPSAP_FLUX_ERR",
    "KSPSAP_FLUX_SML": "KSPSAP_FLUX_ERR",
    "KSPSAP_FLUX_LAG": "KSPSAP_FLUX_ERR",
    # QLP from sector 56 on
    "DET_FLUX": "DET_FLUX_ERR",
}
_QLP_SAP_ERR = ("KSPSAP_FLUX_ERR", "DET_FLUX_ERR")
_SCALED = ("SAP_FLUX_ERR", "PDCSAP_FLUX_ERR", "KSPSAP_FLUX_ERR", "DET_FLUX_ERR", "SAP_BKG", "SAP_BKG_ERR")
_CENTROIDS = (
    ("MOM_CENTR1", "PSF_CENTR1", "SAP_X"),  # column direction
    ("MOM_CENTR2", "PSF_CENTR2", "SAP_Y"),  # row direction
)


def _id_keyword(header: fits.Header) -> str:
    for key in ("TICID", "KEPLERID"):
        if key in header:
            return key
    raise ValueError("template has neither TICID nor KEPLERID in its primary header")


def _object_prefix(header: fits.Header, id_key: str) -> str:
    obj = str(header.get("OBJECT", "")).strip()
    m = re.match(r"([A-Za-z]+)\s*\d", obj)
    if m:
        return m.group(1).upper()
    if id_key == "TICID":
        return "TIC"
    return "EPIC" if str(header.get("MISSION", "")).strip().upper() == "K2" else "KIC"


def _file_name(template_name: str, template_id: int, new_id: int, prefix: str) -> str:
    """Template file name with its target ID replaced by ``new_id`` (same zero padding)."""
    for m in re.finditer(r"\d+", template_name):
        if int(m.group()) == template_id:
            digits = f"{new_id:0{len(m.group())}d}"
            return template_name[: m.start()] + digits + template_name[m.end() :]
    stem = template_name[:-5] if template_name.endswith(".fits") else template_name
    return f"{stem}-{prefix.lower()}{new_id}.fits"


def _finite_median(values: np.ndarray) -> float:
    finite = np.isfinite(values)
    return float(np.median(values[finite])) if finite.any() else float("nan")


def make_observation(
    template: str | Path,
    outdir: str | Path,
    n_targets: int,
    seed: int = 0,
    first_id: int | None = None,
) -> list[Path]:
    """Write ``n_targets`` synthetic light-curve files made from ``template`` into ``outdir``.

    Parameters
    ----------
    template : path
        A real light-curve FITS file (SPOC 2-min/20-s, TESS-SPOC, QLP, Kepler, K2).
    outdir : path
        Created if missing. Existing files of the same names are overwritten.
    n_targets : int
        Number of targets (files).
    seed : int
        Random seed; target ``i`` uses ``numpy.random.default_rng([seed, i])``.
    first_id : int, optional
        ID of the first target; the others follow consecutively. Default: 3 000 000 000 for
        TIC, 50 000 000 for KIC, 290 000 000 for EPIC (no real star has these).

    Returns
    -------
    list of Path
        The files written, in target order.
    """
    template = Path(template)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if n_targets < 0:
        raise ValueError("n_targets must be >= 0")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        hdul = fits.open(template, memmap=False)
        hdul.verify("silentfix")
    try:
        primary = hdul[0].header
        id_key = _id_keyword(primary)
        template_id = int(primary[id_key])
        prefix = _object_prefix(primary, id_key)
        if first_id is None:
            first_id = DEFAULT_FIRST_ID[prefix]
        checksum = any("CHECKSUM" in h.header for h in hdul)
        ra0 = float(primary.get("RA_OBJ", 0.0) or 0.0)
        dec0 = float(primary.get("DEC_OBJ", 0.0) or 0.0)
        mag_key = next((k for k in ("TESSMAG", "KEPMAG") if isinstance(primary.get(k), int | float)), None)
        mag0 = float(primary[mag_key]) if mag_key else None

        table = hdul["LIGHTCURVE"] if "LIGHTCURVE" in hdul else hdul[1]
        data = table.data
        names = [c.name.upper() for c in table.columns]
        cols = {n: c.name for n, c in zip(names, table.columns, strict=True)}  # upper -> actual
        orig = {n: np.array(data[cols[n]], copy=True) for n in names}
        is_qlp = "SAP_FLUX" in names and "SAP_FLUX_ERR" not in names

        flux_err: dict[str, str] = {}
        for flux, err in _FLUX_ERR.items():
            if flux in names and err in names:
                flux_err[flux] = err
        if is_qlp:
            err = next((e for e in _QLP_SAP_ERR if e in names), None)
            if err:
                flux_err["SAP_FLUX"] = err
        scaled = [n for n in _SCALED if n in names]

        written: list[Path] = []
        for i in range(n_targets):
            rng = np.random.default_rng([seed, i])
            new_id = first_id + i
            scale = float(10 ** rng.uniform(np.log10(SCALE_RANGE[0]), np.log10(SCALE_RANGE[1])))
            ddec = rng.uniform(-POSITION_RADIUS_DEG, POSITION_RADIUS_DEG)
            dra = rng.uniform(-POSITION_RADIUS_DEG, POSITION_RADIUS_DEG)
            dec = float(np.clip(dec0 + ddec, -89.999, 89.999))
            ra = float((ra0 + dra / max(np.cos(np.radians(dec)), 0.05)) % 360.0)
            dt = float(rng.uniform(-TIME_OFFSET_MAX_D, TIME_OFFSET_MAX_D))
            dxy = rng.uniform(-CENTROID_OFFSET_MAX_PIX, CENTROID_OFFSET_MAX_PIX, size=2)

            # --- table columns (computed in float64, stored back in the column's dtype) ---
            for flux, err in flux_err.items():
                sigma = orig[err].astype(np.float64) * scale
                noise = rng.standard_normal(sigma.shape) * np.where(np.isfinite(sigma), sigma, 0.0)
                data[cols[flux]][:] = orig[flux].astype(np.float64) * scale + noise
            for n in scaled:
                data[cols[n]][:] = orig[n].astype(np.float64) * scale
            for axis, group in enumerate(_CENTROIDS):
                for n in group:
                    if n in names:
                        data[cols[n]][:] = orig[n].astype(np.float64) + dxy[axis]
            if "TIME" in names:
                t = orig["TIME"]
                data[cols["TIME"]][:] = np.where(np.isfinite(t), t + dt, t)

            # --- headers ---
            for hdu in hdul:
                h = hdu.header
                if id_key in h:
                    h[id_key] = new_id
                if "OBJECT" in h:
                    h["OBJECT"] = f"{prefix} {new_id}"
                if "RA_OBJ" in h:
                    h["RA_OBJ"] = ra
                if "DEC_OBJ" in h:
                    h["DEC_OBJ"] = dec
                if mag_key and mag_key in h and mag0 is not None:
                    h[mag_key] = round(mag0 - 2.5 * np.log10(scale), 5)

            path = outdir / _file_name(template.name, template_id, new_id, prefix)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                hdul.writeto(path, overwrite=True, output_verify="silentfix", checksum=checksum)
            written.append(path)
        return written
    finally:
        hdul.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", type=Path, help="a real light-curve FITS file")
    parser.add_argument("outdir", type=Path, help="output directory (created if missing)")
    parser.add_argument("--n-targets", type=int, required=True, help="number of synthetic targets")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--first-id", type=int, default=None, help="ID of the first target (default per catalog)")
    args = parser.parse_args(argv)
    paths = make_observation(args.template, args.outdir, args.n_targets, seed=args.seed, first_id=args.first_id)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({total / 1e6:.1f} MB) to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
