"""xarray's own calls on engine="lcarchive": chunking, the decoding keywords, open_datatree."""

from __future__ import annotations

import dask.array as da
import xarray as xr


def test_chunks_auto_gives_dask_arrays_of_the_same_values(full_archive):
    lazy = xr.open_dataset(full_archive.url, engine="lcarchive", target="TIC 39903405", chunks="auto")
    assert isinstance(lazy["flux"].data, da.Array) and isinstance(lazy["header_primary"].data, da.Array)
    eager = xr.open_dataset(full_archive.url, engine="lcarchive", target=39903405)
    xr.testing.assert_identical(lazy.load(), eager)


def test_decoding_keywords_are_accepted_and_change_nothing(full_archive):
    plain = xr.open_dataset(full_archive.url, engine="lcarchive", group="tess-spoc-2min-s0001").load()
    for keywords in (
        {"decode_times": False},
        {"mask_and_scale": True, "use_cftime": False},
        {"decode_coords": "all", "concat_characters": True, "decode_timedelta": False},
    ):
        with xr.open_dataset(full_archive.url, engine="lcarchive", group="tess-spoc-2min-s0001", **keywords) as ds:
            xr.testing.assert_identical(ds.load(), plain)


def test_open_datatree_gives_the_observations_or_a_stars_products(full_archive):
    tree = xr.open_datatree(full_archive.url, engine="lcarchive")
    assert sorted(tree.children) == sorted(o.id for o in full_archive.observations)
    xr.testing.assert_identical(
        tree["tess-spoc-2min-s0001"].to_dataset().load(), full_archive.open_observation("tess-spoc-2min-s0001").load()
    )
    star = xr.open_datatree(full_archive.url, engine="lcarchive", target=39903405)
    assert sorted(star.children) == ["qlp", "spoc-2min", "tess-spoc"]
    assert set(star["qlp"].to_dataset()["product"].values.tolist()) == {"qlp"}
