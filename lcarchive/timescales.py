"""Barycentric (BJD_TDB) and as-observed (UTC) time stamps, for SkyPortal's ``mjd``.

The missions' time stamps are barycentric: TESS's BTJD is BJD_TDB - 2457000 and Kepler's and
K2's BKJD is BJD_TDB - 2454833 (TESS Science Data Products Description Document, section 5.1;
Kepler Archive Manual, section 2.3.2). SPOC and Kepler SOC light curves carry the barycentric
correction of each cadence, ``TIMECORR`` (days): TIME - TIMECORR is the time at the
spacecraft, still in TDB. SkyPortal's ``mjd`` is the Modified Julian Date of the observation
in UTC, as observed (``skyportal/models/photometry.py``: "MJD of the observation"). The
conversions here go between the two with ``astropy.time`` (TDB <-> UTC, leap seconds
included).

Where there is no ``TIMECORR`` (HLSPs: QLP, TGLC, eleanor, K2SFF...), the barycentric
correction is computed for an observer at the Earth's centre: the Roemer delay
``r_earth . n / c`` of the target's direction ``n`` and the Earth's barycentric position
(``astropy.coordinates.get_body_barycentric``, its built-in ERFA ephemeris, good to a few km),
what ``astropy.time.Time.light_travel_time`` computes for a geocentric location. The error is
the spacecraft's distance from the Earth's centre projected on the target's direction, in
light travel time: up to about 1.3 s for TESS (apogee about 375,000 km; 0.4 s at most in
sector 1 against its TIMECORR), and for Kepler and K2, which trail the Earth around the Sun,
minutes growing with the years (against TIMECORR: 47-81 s in Kepler Q2-Q5, 2009-2010; 279-407 s
in K2 C5, 2015; see :data:`GEOCENTRIC_ERROR`). Without the target's RA/Dec nothing can
be computed: the time is then only converted between TDB and UTC, off by the whole barycentric
correction (up to 8.3 min, the light time across 1 au).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GEOCENTRIC_ERROR", "MJD_ZERO_JD", "barycentric_mjd", "geocentric_light_time", "observed_mjd"]

MJD_ZERO_JD = 2400000.5
"""Julian date of MJD 0."""

GEOCENTRIC_ERROR = {
    "tess": "up to about 1.3 s (TESS is at most about 375,000 km from the Earth's centre)",
    "kepler": "about 1 min or more (Kepler trailed the Earth: 47-81 s in Q2-Q5, growing to 2013)",
    "k2": "several minutes (the spacecraft trailed the Earth: 279-407 s in C5, about 8 min by 2018)",
}
"""Error of a geocentric barycentric correction, by mission: the spacecraft's offset from the
Earth's centre projected on the target's direction, in light travel time (the figures
measured against the TIMECORR of real SPOC files: TESS S1, Kepler Q2-Q5, K2 C5)."""

_SPEED_OF_LIGHT_AU_PER_DAY = 173.1446326742403
"""c in au/day (IAU 2012: au = 149597870700 m exactly; c = 299792458 m/s)."""


def geocentric_light_time(mjd_tdb: np.ndarray, ra: float, dec: float) -> np.ndarray:
    """Return the barycentric correction of an observer at the Earth's centre, days.

    The Roemer delay ``r . n / c``: ``r`` the Earth's barycentric position
    (``astropy.coordinates.get_body_barycentric("earth", ...)``, built-in ephemeris) and ``n``
    the unit vector of (RA, Dec) in ICRS; what ``astropy.time.Time.light_travel_time(...,
    kind="barycentric")`` returns for a geocentric location, without its need of IERS tables.
    BJD_TDB = (TDB at the Earth) + this.

    Parameters
    ----------
    mjd_tdb : numpy.ndarray, shape (n,)
        Times, MJD in TDB, finite.
    ra, dec : float
        Target's ICRS right ascension and declination, deg.

    Returns
    -------
    numpy.ndarray, shape (n,), float64, days
    """
    from astropy.coordinates import get_body_barycentric
    from astropy.time import Time

    if mjd_tdb.size == 0:
        return np.zeros(0)
    earth = get_body_barycentric("earth", Time(mjd_tdb, format="mjd", scale="tdb"))
    xyz = earth.xyz.to_value("au")  # shape (3, n)
    a, d = np.radians(ra), np.radians(dec)
    direction = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    return direction @ xyz / _SPEED_OF_LIGHT_AU_PER_DAY


def _convert(mjd: np.ndarray, scale: str, to: str) -> np.ndarray:
    """MJD values from one astropy time scale to another (NaN stays NaN)."""
    from astropy.time import Time

    out = np.full(mjd.shape, np.nan)
    finite = np.isfinite(mjd)
    if finite.any():
        out[finite] = getattr(Time(mjd[finite], format="mjd", scale=scale), to).mjd
    return out


def _positioned(ra: float | None, dec: float | None) -> bool:
    return ra is not None and dec is not None and bool(np.isfinite(ra)) and bool(np.isfinite(dec))


def observed_mjd(
    bmjd_tdb: np.ndarray, timecorr: np.ndarray | None, ra: float | None, dec: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the MJD (UTC) at the observer of barycentric time stamps, and how each was corrected.

    Parameters
    ----------
    bmjd_tdb : numpy.ndarray, shape (n,)
        BJD_TDB - 2400000.5, days (NaN where unknown).
    timecorr : numpy.ndarray, shape (n,), or None
        The light curve's ``TIMECORR`` column, days (BJD_TDB = spacecraft TDB + TIMECORR); used
        where finite.
    ra, dec : float or None
        Target's ICRS coordinates, deg, for a geocentric correction where TIMECORR is missing.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        MJD in UTC, shape (n,), float64 (NaN where ``bmjd_tdb`` is); and per cadence how the
        barycentric correction was removed: 0 from TIMECORR, 1 computed for the Earth's
        centre (the inverse found by two fixed-point steps, to microseconds), 2 not at all
        (no TIMECORR, no RA/Dec: the time is only converted TDB -> UTC), 3 no time stamp.
    """
    bmjd = np.asarray(bmjd_tdb, dtype=np.float64)
    how = np.where(np.isfinite(bmjd), 2, 3).astype(np.int8)
    local = bmjd.copy()  # TDB at the observer
    if timecorr is not None:
        corr = np.asarray(timecorr, dtype=np.float64)
        known = np.isfinite(corr) & np.isfinite(bmjd)
        local[known] = bmjd[known] - corr[known]
        how[known] = 0
    rest = how == 2
    if rest.any() and _positioned(ra, dec):
        guess = bmjd[rest]
        for _ in range(2):  # t = b - ltt(t): the delay changes by < 1e-4 s per s, so each step gains 1e4
            guess = bmjd[rest] - geocentric_light_time(guess, float(ra), float(dec))  # type: ignore[arg-type]  # _positioned: numbers
        local[rest] = guess
        how[rest] = 1
    return _convert(local, "tdb", "utc"), how


def barycentric_mjd(mjd_utc: np.ndarray, ra: float | None, dec: float | None) -> tuple[np.ndarray, bool]:
    """Return BJD_TDB - 2400000.5 of MJD (UTC) time stamps taken at the Earth's centre.

    Parameters
    ----------
    mjd_utc : numpy.ndarray, shape (n,)
        MJD in UTC at the observer, days (NaN where unknown).
    ra, dec : float or None
        Target's ICRS coordinates, deg.

    Returns
    -------
    (numpy.ndarray, bool)
        BJD_TDB - 2400000.5, shape (n,), float64; and whether the barycentric correction was
        applied (False without RA/Dec: the times are then only converted UTC -> TDB).
    """
    tdb = _convert(np.asarray(mjd_utc, dtype=np.float64), "utc", "tdb")
    if not _positioned(ra, dec):
        return tdb, False
    finite = np.isfinite(tdb)
    tdb[finite] += geocentric_light_time(tdb[finite], float(ra), float(dec))  # type: ignore[arg-type]  # _positioned
    return tdb, True
