"""The alias table's rules (lcarchive.aliases): names, pairs, removals, links, the header
pairs and the positional cross-match with proper motion."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from erfa import ErfaWarning

from lcarchive.aliases import (
    AliasTable,
    alias_settings,
    at_common_epoch,
    cross_match,
    header_pairs,
    names_of,
    normal_name,
    split_name,
)
from lcarchive.catalog.models import Alias

from conftest import DATA, PUBLIC

BOYAJIAN_Q16 = PUBLIC / "kepler-tess" / "kplr008462852-2013098041711_llc.fits"
TGLC_S07 = DATA / "tglc" / "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0007-cam2-ccd3_tess_v2_llc.fits"


def test_names_are_catalog_and_id_as_the_catalogs_spell_them():
    assert split_name("KIC 8462852") == ("KIC", "8462852")
    assert split_name("kic008462852") == ("KIC", "8462852")
    assert split_name(" TIC:185336364 ") == ("TIC", "185336364")
    assert split_name("gaia dr3 5707485527450614656") == ("Gaia DR3", "5707485527450614656")
    assert normal_name("EPIC 211436265") == "EPIC 211436265"
    for bad in ("8462852", "FOO 12", "KIC 0", "KIC 13161030", "TIC abc", "EPIC 1"):
        with pytest.raises(ValueError, match=r"names no star|outside the|are numbers"):
            split_name(bad)


def test_every_catalog_has_an_epoch_and_the_radius_its_reason():
    settings = alias_settings()
    assert {c["name"] for c in settings["catalogs"]} >= {"TIC", "KIC", "EPIC", "Gaia DR2", "Gaia DR3"}
    assert 0 < settings["match_radius_arcsec"] < 3.98 / 2 + 1e-9  # under half a Kepler pixel
    assert "arcsec" in settings["match_radius_reason"]


def test_pairs_removals_and_operators():
    table = AliasTable()
    derived = Alias(a="TIC 185336364", b="KIC 8462852", source="crossmatch", separation_arcsec=0.1)
    assert table.add(derived)
    assert [(a.a, a.b) for a in table.aliases()] == [("KIC 8462852", "TIC 185336364")]  # sorted within the pair
    assert not table.add(derived)  # there already
    assert table.remove("kic 8462852", "TIC 185336364")
    assert not table.add(derived)  # an operator removed it: the rules do not add it again
    again = AliasTable.from_text(table.to_text())
    assert not again.add(derived) and again.removed == {("KIC 8462852", "TIC 185336364")}
    assert again.add(Alias(a="KIC 8462852", b="TIC 185336364", source="operator"))  # an operator undoes the removal
    assert again.aliases()[0].source == "operator" and not again.removed
    assert not again.add(derived)  # a derived pair never replaces an operator's
    with pytest.raises(ValueError, match="the same name twice"):
        again.add(Alias(a="KIC 8462852", b="kic 8462852", source="operator"))


def test_names_are_linked_through_other_names():
    table = AliasTable(
        [
            Alias(a="KIC 8462852", b="TIC 185336364", source="crossmatch"),
            Alias(a="TIC 185336364", b="Gaia DR3 2081900940499099136", source="header"),
            Alias(a="TIC 1", b="KIC 2", source="operator"),
        ]
    )
    assert names_of(table, "KIC 8462852") == ["KIC 8462852", "Gaia DR3 2081900940499099136", "TIC 185336364"]
    assert names_of(table, "EPIC 211436265") == ["EPIC 211436265"]


def test_header_pairs_from_a_real_tglc_header():
    header = fits.getheader(TGLC_S07, 0)
    facts = pd.DataFrame(
        {
            "name": [f"TIC {int(header['TICID'])}"],
            "observation": ["tess-tglc-s0007"],
            "gaia_dr3": [str(header["GAIADR3"])],
            "gaia_id": ["0"],  # eleanor's "no Gaia ID"
        }
    )
    (pair,) = header_pairs(facts)
    assert (pair.a, pair.b, pair.source) == ("TIC 218795833", "Gaia DR3 5707485527450614656", "header")
    assert "gaia_dr3" in pair.evidence


def _row(name: str, ra: float, dec: float, pmra: float = np.nan, pmdec: float = np.nan) -> dict:
    return {"name": name, "catalog": split_name(name)[0], "observation": "o", "ra": ra, "dec": dec, "pmra": pmra, "pmdec": pmdec}


def test_cross_match_of_a_real_kepler_position():
    header = fits.getheader(BOYAJIAN_Q16, 0)
    ra, dec = header["RA_OBJ"], header["DEC_OBJ"]
    kic = pd.DataFrame([_row("KIC 8462852", ra, dec)])
    near = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(30 * u.deg, 0.5 * u.arcsec)
    far = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(30 * u.deg, 2.5 * u.arcsec)
    known = pd.DataFrame(
        [
            _row("TIC 185336364", near.ra.deg, near.dec.deg),
            _row("TIC 185336365", far.ra.deg, far.dec.deg),
            _row("KIC 8462853", ra, dec),
        ]
    )
    (pair,) = cross_match(kic, known)  # the TIC star 0.5 arcsec away; not the one 2.5 away, nor another KIC star
    assert (pair.a, pair.b, pair.source) == ("KIC 8462852", "TIC 185336364", "crossmatch")
    assert pair.separation_arcsec == pytest.approx(0.5, abs=1e-3)
    # mutual nearest only: a second TIC star nearer to the first TIC star's KIC position takes the pair
    nearer = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(0 * u.deg, 0.1 * u.arcsec)
    (pair,) = cross_match(kic, pd.concat([known, pd.DataFrame([_row("TIC 7", nearer.ra.deg, nearer.dec.deg)])]))
    assert pair.b == "TIC 7"


def test_proper_motion_brings_a_gaia_position_to_the_tic_epoch():
    # a star of 1 arcsec/yr: its Gaia DR3 position (epoch 2016.0) is 16 arcsec from its TIC position (epoch 2000.0)
    at_2000 = SkyCoord(
        301.564377 * u.deg,
        44.456875 * u.deg,
        pm_ra_cosdec=1000 * u.mas / u.yr,
        pm_dec=-300 * u.mas / u.yr,
        obstime=Time(2000.0, format="jyear"),
    )
    with warnings.catch_warnings():  # no distance given: ERFA says it takes a far one
        warnings.filterwarnings("ignore", message=".*distance overridden", category=ErfaWarning)
        at_2016 = at_2000.apply_space_motion(new_obstime=Time(2016.0, format="jyear"))
    gaia = pd.DataFrame([_row("Gaia DR3 5", at_2016.ra.deg, at_2016.dec.deg, 1000.0, -300.0)])
    tic = pd.DataFrame([_row("TIC 9", at_2000.ra.deg, at_2000.dec.deg)])
    ra, dec = at_common_epoch(gaia)
    assert SkyCoord(ra[0] * u.deg, dec[0] * u.deg).separation(at_2000).arcsec < 0.01  # of 16 arcsec moved
    (pair,) = cross_match(gaia, tic)
    assert pair.separation_arcsec < 0.01
    assert cross_match(gaia.assign(pmra=np.nan, pmdec=np.nan), tic) == []  # without its proper motion: 16 arcsec apart
