"""Search: cones (one or many positions), boxes, catalog filters, ordering; the HEALPix sky index
kept in step with the target index; the ``lcarchive search`` command; ``light_curves``.

Cone searches are checked against astropy's ``SkyCoord.separation`` over the same index lines.
"""

from __future__ import annotations

import json
import subprocess

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import zarr
from astropy.coordinates import SkyCoord

import lcarchive
from lcarchive.layout.sky import SKY_PIXELS, pixels_in_box, pixels_in_cones, pixels_of
from lcarchive.store import ArchiveStore

from conftest import DATA, aws_environ, lcarchive_command

PI_MEN = 261136679


def _keys(frame: pd.DataFrame) -> set[tuple[int, str]]:
    return set(zip(frame["target"].tolist(), frame["observation"].tolist(), strict=True))


def _brute_cone(lines: pd.DataFrame, ra: float, dec: float, radius: float) -> pd.DataFrame:
    where = SkyCoord(lines["ra"].to_numpy() * u.deg, lines["dec"].to_numpy() * u.deg)
    separation = SkyCoord(ra * u.deg, dec * u.deg).separation(where).deg
    return lines[separation <= radius]


def _current(archive) -> pd.DataFrame:
    lines = archive.target_index()
    return lines[lines["current"]].reset_index(drop=True)


def test_cones_equal_astropy_separation_on_the_archive(full_archive):
    lines = _current(full_archive)
    assert len(lines) > 20 and lines["ra"].notna().all()
    rng = np.random.default_rng(11)
    cones = [
        (float(r), float(d), rad)
        for (r, d) in lines[["ra", "dec"]].drop_duplicates().to_numpy()[:8]
        for rad in (0.0, 1e-4, 2.0, 30.0)
    ]
    cones += [
        (float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1)))), float(rng.uniform(1, 120)))
        for _ in range(12)
    ]
    cones += [(0.0, 90.0, 50.0), (0.0, -90.0, 50.0), (359.99, -60.0, 40.0)]
    hits = 0
    for ra, dec, radius in cones:
        found = full_archive.search(cone=(ra, dec, radius))
        expected = _brute_cone(lines, ra, dec, radius)
        assert _keys(found) == _keys(expected), (ra, dec, radius)
        hits += len(found)
        if len(found):
            where = SkyCoord(found["ra"].to_numpy() * u.deg, found["dec"].to_numpy() * u.deg)
            assert np.allclose(found["separation"], SkyCoord(ra * u.deg, dec * u.deg).separation(where).deg, atol=1e-12)
            assert list(found["separation"]) == sorted(found["separation"])  # nearest first
    assert hits > len(cones)  # the cones found something


def test_many_positions_in_one_call(full_archive):
    lines = _current(full_archive)
    stars = lines[["ra", "dec"]].drop_duplicates().reset_index(drop=True)
    table = pd.DataFrame({"ra": [*stars["ra"], 10.0], "dec": [*stars["dec"], -10.0], "radius": [0.01] * len(stars) + [0.5]})
    found = full_archive.search(cone=table)
    assert sorted(found["position"].unique().tolist()) == list(range(len(stars)))  # the empty sky has no match
    for k in range(len(table)):
        one = full_archive.search(cone=(table["ra"][k], table["dec"][k], table["radius"][k]))
        mine = found[found["position"] == k]
        assert _keys(mine) == _keys(one)
        assert np.allclose(
            mine.sort_values(["target", "observation"])["separation"],
            one.sort_values(["target", "observation"])["separation"],
            atol=1e-9,
        )
    # arrays and a scalar radius are the same search
    again = full_archive.search(cone=(table["ra"].to_numpy(), table["dec"].to_numpy(), 0.01))
    assert _keys(again) == _keys(found[found["position"] < len(stars)])


def test_box_with_and_without_ra_wrap(full_archive):
    lines = _current(full_archive)
    ra, dec = lines["ra"].to_numpy(), lines["dec"].to_numpy()
    for box in [(0, 360, -90, 90), (80, 100, -80, -60), (300, 60, -90, 90), (250, 10, 0, 60), (284, 285, 49, 50)]:
        ra_min, ra_max, dec_min, dec_max = box
        in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max else (ra >= ra_min) | (ra <= ra_max)
        expected = lines[in_ra & (dec >= dec_min) & (dec <= dec_max)]
        assert _keys(full_archive.search(box=box)) == _keys(expected), box


def test_catalog_filters_order_limit_offset(full_archive):
    lines = _current(full_archive)
    tess = lines[lines["mission"] == "tess"]
    assert (tess["camera"] >= 1).all() and (tess["ccd"] >= 1).all() and tess["magnitude"].notna().all()
    camera = int(tess["camera"].mode()[0])
    found = full_archive.search(mission="tess", camera=camera)
    assert _keys(found) == _keys(tess[tess["camera"] == camera])
    found = full_archive.search(camera=[1, 2], ccd=[1, 2, 3])
    assert _keys(found) == _keys(lines[lines["camera"].isin([1, 2]) & lines["ccd"].isin([1, 2, 3])])
    low, high = np.nanpercentile(lines["magnitude"], [25, 75])
    found = full_archive.search(magnitude=(low, high))
    assert _keys(found) == _keys(lines[(lines["magnitude"] >= low) & (lines["magnitude"] <= high)])
    found = full_archive.search(product="spoc-2min", segment=[1, 2])
    assert _keys(found) == _keys(lines[(lines["product"] == "spoc-2min") & lines["segment"].isin([1, 2])])
    # order, limit, offset
    everything = full_archive.search(order_by=["-magnitude", "target"])
    magnitudes = everything["magnitude"].dropna().tolist()
    assert magnitudes == sorted(magnitudes, reverse=True)
    page = full_archive.search(order_by=["-magnitude", "target"], limit=5, offset=3)
    assert _keys(page) == _keys(everything.iloc[3:8])
    assert list(everything.columns[:8]) == ["target", "observation", "ra", "dec", "magnitude", "n_cadences", "coverage", "url"]
    assert everything["url"].str.startswith(full_archive.url).all()
    with pytest.raises(lcarchive.SelectionError, match="no such column"):
        full_archive.search(order_by="brightness")
    with pytest.raises(lcarchive.SelectionError, match="Dec must be within"):
        full_archive.search(cone=(10, 95, 1))
    with pytest.raises(lcarchive.SelectionError, match="no column radius"):
        full_archive.search(cone=pd.DataFrame({"ra": [1.0], "dec": [2.0]}))


def test_targets_and_time(full_archive):
    found = full_archive.search(targets=[PI_MEN, "KIC 11442793", 1])
    assert set(found["target"]) == {PI_MEN, 11442793}
    assert found.attrs["missing_targets"] == [1]
    first = full_archive.catalog.observation("tess-spoc-2min-s0001")
    found = full_archive.search(time=(first.time_min, first.time_min + 1), mission="tess")
    assert "tess-spoc-2min-s0001" in set(found["observation"])
    assert all(full_archive.catalog.observation(o).time_max >= first.time_min for o in found["observation"])


def test_the_sky_index_holds_every_line_in_its_pixel(full_archive):
    lines = full_archive.target_index()
    store = ArchiveStore(full_archive.url)
    sky = zarr.open_array(store.catalog_session().store, path="sky", mode="r")
    assert sky.shape == (SKY_PIXELS,) and sky.attrs["healpix_order"] == 6
    pixels = pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy())
    read = full_archive.index_pixels(np.unique(pixels))
    assert read.reset_index(drop=True).equals(lines.reset_index(drop=True))  # the two copies agree, line for line
    for pixel in np.unique(pixels)[:5]:
        mine = full_archive.index_pixels([pixel])
        assert _keys(mine) == _keys(lines[pixels == pixel])
    assert full_archive.index_pixels([int(p) for p in range(SKY_PIXELS) if p not in set(pixels.tolist())][:50]).empty


def test_healpix_pixels_cover_every_cone_and_box():
    """The pixels a cone or box reads hold every position in it (50,000 positions over the sky,
    near the poles and across RA 0)."""
    rng = np.random.default_rng(3)
    n = 50_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    pixel = pixels_of(ra, dec)
    assert (pixels_of(np.array([np.nan]), np.array([1.0])) == -1).all()
    where = SkyCoord(ra * u.deg, dec * u.deg)
    for c_ra, c_dec, radius in [
        (0.0, 0.0, 0.5),
        (359.9, 10.0, 3.0),
        (120.0, 89.9, 2.0),
        (45.0, -89.0, 5.0),
        (200.0, 30.0, 0.05),
        (10.0, 20.0, 45.0),
        (300.0, -40.0, 95.0),
    ]:
        inside = SkyCoord(c_ra * u.deg, c_dec * u.deg).separation(where).deg <= radius
        assert np.isin(pixel[inside], pixels_in_cones(c_ra, c_dec, radius)).all()
    for ra_min, ra_max, dec_min, dec_max in [
        (350, 10, -5, 5),
        (0, 360, 80, 90),
        (100, 130, -90, -80),
        (10, 200, -30, 30),
        (359, 1, -60, 60),
    ]:
        in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max else (ra >= ra_min) | (ra <= ra_max)
        inside = in_ra & (dec >= dec_min) & (dec <= dec_max)
        assert inside.any()
        assert np.isin(pixel[inside], pixels_in_box(ra_min, ra_max, dec_min, dec_max)).all()


def test_sky_index_follows_a_new_release_and_is_rebuilt(tmp_path):
    """A light curve replaced by a newer release moves in the sky index as in the target index;
    an archive whose catalog has no sky index (written before it) gets it at the next ingest, and
    ``catalog build`` writes it anew."""
    root = str(tmp_path / "a")
    old = DATA / "spoc-2min-release0"
    archive = lcarchive.Archive(root)
    assert archive.ingest([str(p) for p in sorted(old.glob("*.fits"))]).ok
    newer = [DATA / "spoc-2min" / p.name for p in sorted(old.glob("*.fits"))]
    assert archive.ingest([str(p) for p in [*newer, *sorted((DATA / "spoc-2min").glob("*s0001*.fits"))]]).ok
    archive = lcarchive.open_archive(root)
    lines = archive.target_index()
    assert len(lines) > len(lines[lines["current"]])  # older releases are indexed too
    pixels = np.unique(pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy()))
    assert _keys(archive.index_pixels(pixels)) == _keys(lines)

    store = ArchiveStore(root)  # a catalog as written before the sky index existed

    def drop_sky(session):
        del zarr.open_group(session.store, mode="r+")["sky"]
        return True  # a change to commit

    store.change_catalog(drop_sky, "drop the sky index")
    archive = lcarchive.open_archive(root)
    assert archive.index_pixels(pixels) is None
    assert _keys(archive.search(cone=(0, 0, 180))) == _keys(lines[lines["current"]])  # the whole index, read
    assert archive.ingest([str(DATA / "kepler")]).ok
    archive = lcarchive.open_archive(root)
    lines = archive.target_index()
    pixels = np.unique(pixels_of(lines["ra"].to_numpy(), lines["dec"].to_numpy()))
    assert _keys(archive.index_pixels(pixels)) == _keys(lines)
    archive.build_catalog()
    assert _keys(lcarchive.open_archive(root).index_pixels(pixels)) == _keys(lines)


def test_download_takes_the_search_selection(full_archive, tmp_path):
    lines = _current(full_archive)
    star = lines.iloc[0]
    selection = lcarchive.Selection(cone=(float(star["ra"]), float(star["dec"]), 3.0), missions=[str(star["mission"])])
    found = full_archive.search(selection)
    report = lcarchive.download(full_archive, tmp_path / "d", selection, format="parquet")
    assert report.ok and report.n_targets == len(found) > 0
    frame = pd.concat([pd.read_parquet(p) for p in (tmp_path / "d").rglob("*.parquet")])
    assert set(frame["target"].unique()) == set(found["target"])
    with pytest.raises(TypeError, match="not both"):
        full_archive.search(selection, product="qlp")


def test_search_command(full_archive, tmp_path):
    lines = _current(full_archive)
    star = lines[lines["target"] == PI_MEN].iloc[0]
    command = [lcarchive_command(), "search", full_archive.url]
    result = subprocess.run(
        [*command, "--cone", str(star["ra"]), str(star["dec"]), "0.5", "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    expected = _brute_cone(lines, float(star["ra"]), float(star["dec"]), 0.5)
    assert {(r["target"], r["observation"]) for r in records} == _keys(expected)
    for record in records:
        assert {"target", "observation", "ra", "dec", "magnitude", "n_cadences", "coverage", "url"} <= set(record)
    pi_men = next(r for r in records if r["target"] == PI_MEN)
    assert pi_men["n_cadences"] == int(star["n_cadences"]) and pi_men["separation"] == pytest.approx(0, abs=1e-9)

    positions = tmp_path / "positions.csv"
    positions.write_text(f"RA,Dec\n{star['ra']},{star['dec']}\n10,-10\n")
    result = subprocess.run(
        [*command, "--positions", str(positions), "--radius", "0.5"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert str(PI_MEN) in result.stdout and f"{len(expected)} light curve(s)" in result.stdout

    result = subprocess.run([*command, "-t", str(PI_MEN), "-t", "1", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "target(s) 1" in result.stderr
    assert {r["target"] for r in json.loads(result.stdout)} == {PI_MEN}
    for bad, reason in [
        (["--cone", "1", "100", "1"], "Dec must be within"),
        (["--positions", str(positions)], "no column radius"),
        (["--order-by", "nope"], "no such column"),
    ]:
        result = subprocess.run([*command, *bad], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_light_curves_of_many_targets(full_archive):
    lines = _current(full_archive)
    single = lines.groupby("target")["product"].nunique()
    targets = single[single == 1].index.tolist()[:12]
    many = full_archive.light_curves([*targets, targets[0]], variables=["time", "flux"], quality_bitmask="none")
    assert list(many) == targets
    for target in targets:
        one = full_archive.light_curve(target, variables=["time", "flux"], quality_bitmask="none")
        assert many[target].identical(one)
    with pytest.raises(lcarchive.TargetNotFoundError, match="target 1, 2 is not in"):
        full_archive.light_curves([targets[0], 1, 2], quality_bitmask="none")
    assert list(full_archive.light_curves([targets[0], 1], missing="skip", quality_bitmask="none")) == [targets[0]]


@pytest.mark.s3
def test_search_on_s3(s3, moto_server):
    url = f"{s3}/search"
    files = sorted((DATA / "spoc-2min").glob("*.fits"))[:6]
    assert lcarchive.Archive(url).ingest([str(p) for p in files]).ok
    archive = lcarchive.open_archive(url)
    lines = _current(archive)
    star = lines.iloc[0]
    found = archive.search(cone=(float(star["ra"]), float(star["dec"]), 10.0))
    assert _keys(found) == _keys(_brute_cone(lines, float(star["ra"]), float(star["dec"]), 10.0))
    result = subprocess.run(
        [lcarchive_command(), "search", url, "--box", "0", "360", "-90", "90", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **aws_environ(moto_server)},
    )
    assert result.returncode == 0, result.stderr
    assert {(r["target"], r["observation"]) for r in json.loads(result.stdout)} == _keys(lines)
