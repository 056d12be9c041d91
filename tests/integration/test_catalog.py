"""The catalog: shipped definitions, JSON Schema, quality-flag tables, entries of an archive."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys

import pytest

from lcarchive.catalog.content import static_catalog
from lcarchive.catalog.models import Catalog

from conftest import REPO


def test_schema_file_is_current():
    module = runpy.run_path(str(REPO / "tools" / "export_schema.py"))
    committed = (REPO / "catalog" / "schema" / "catalog.schema.json").read_text()
    assert committed == module["schema_text"](), "run: python tools/export_schema.py"


def test_cli_prints_the_schema():
    out = subprocess.run([sys.executable, "-m", "lcarchive.cli", "catalog", "schema"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == Catalog.model_json_schema()


def test_static_definitions_are_consistent():
    cat = static_catalog()
    missions = {m.name for m in cat.missions}
    assert missions == {"tess", "kepler", "k2"}
    sources = {s.name for s in cat.photometric_sources}
    methods = {m.name for m in cat.processing_methods}
    tables = {t.name for t in cat.quality_flags}
    instruments = {i.name for i in cat.instruments}
    for m in cat.missions:
        assert m.target_catalog in {c.name for c in cat.mission_catalogs}
        assert m.instrument in instruments
    for p in cat.products:
        assert p.mission in missions
        # a product without a quality column may have no flag table; one with a column must name a known table
        assert p.quality_flags in tables if p.columns.quality else p.quality_flags in (None, *tables)
        for d in p.datasets:
            assert d.processing_method in methods
            if "{hdu}" in d.photometric_source:  # one source per matching table, e.g. k2sff-circ_aper0..9
                prefix = d.photometric_source.split("{hdu}")[0]
                assert sum(s.startswith(prefix) for s in sources) >= 10, d
            else:
                assert d.photometric_source in sources, d
    tess = next(i for i in cat.instruments if i.name == "tess")
    assert [len(c.children) for c in tess.children] == [4, 4, 4, 4]
    kepler = next(i for i in cat.instruments if i.name == "kepler")
    assert len(kepler.children) == 21 and all(len(m.children) == 4 for m in kepler.children)
    assert {m.name: m.time_system.reference_epoch for m in cat.missions} == {
        "tess": 2457000.0,
        "kepler": 2454833.0,
        "k2": 2454833.0,
    }


@pytest.mark.parametrize(("table", "flags_class"), [("spoc", "TessQualityFlags"), ("kepler", "KeplerQualityFlags")])
def test_quality_masks_equal_lightkurve(table, flags_class):
    utils = pytest.importorskip("lightkurve.utils")
    reference = getattr(utils, flags_class)
    flags = next(t for t in static_catalog().quality_flags if t.name == table).flags
    for f in flags:
        assert f.value == 1 << f.bit
    for mask in ("default", "hard", "hardest"):
        ours = 0
        for f in flags:
            if getattr(f, mask):
                ours |= f.value
        assert ours == getattr(reference, f"{mask.upper()}_BITMASK"), mask
    assert {f.value for f in flags} == set(reference.STRINGS)


def test_archive_catalog_describes_observations_and_lineage(full_archive):
    cat = Catalog.model_validate_json(full_archive.catalog.model_dump_json())  # what catalog show --json prints
    obs = cat.observation("tess-spoc-2min-s0001")
    assert (obs.mission, obs.product, obs.segment_kind, obs.segment) == ("tess", "spoc-2min", "sector", 1)
    assert obs.n_targets == 5 and obs.n_cadences == 20076
    assert obs.time_min < obs.time_max and obs.time_format == "BTJD"
    assert "tess/camera4/ccd2" in obs.instruments
    assert obs.superseded_by_release == ["tess-spoc-2min-s0001.dr0"]
    flux = next(d for d in cat.datasets if d.id == "tess-spoc-2min-s0001/flux")
    assert (flux.source_column, flux.processing_method, flux.photometric_source) == (
        "PDCSAP_FLUX",
        "PDC",
        "spoc-optimal-aperture",
    )
    assert flux.derived_from == ["tess-spoc-2min-s0001/sap_flux"]
    assert flux.error_variable == "flux_err" and flux.units == "electron / s"
    assert flux.inputs == []  # provenance is per target, in the group's arrays
    inputs = full_archive.inputs("tess-spoc-2min-s0001")
    assert set(inputs["target"]) == {261136679, 358108509, 425933644, 279741379, 25155310}
    assert all(len(s) == 64 for s in inputs["sha256"])
    assert "spoc-5.0.10-20200904" in flux.pipeline_versions and 42 in flux.data_releases
    qlp = next(d for d in cat.datasets if d.id == "tess-qlp-s0024/flux")
    assert (qlp.source_column, qlp.processing_method) == ("SAP_FLUX", "SAP")
    ksp = next(d for d in cat.datasets if d.id == "tess-qlp-s0024/kspsap_flux")
    assert ksp.derived_from == ["tess-qlp-s0024/flux"]
    kepler = cat.observation("kepler-lc-q02")
    assert (kepler.segment_kind, kepler.time_format) == ("quarter", "BKJD")
    assert kepler.instruments == ["kepler/module18/output3"]
    assert cat.observation("k2-lc-c05").n_targets == 9


def test_sentinel_magnitudes_are_nan_in_the_index(full_archive):
    import numpy as np

    from lcarchive.catalog.index import group_rows

    ds = full_archive.open_observation("tess-spoc-2min-s0001").load()
    assert np.isfinite(group_rows(ds, "tess-spoc-2min-s0001")["magnitude"]).all()  # real TESSMAGs kept
    tessmag = ds["tessmag"].values.copy()
    tessmag[0], tessmag[1] = 999.0, -99.0  # the sentinels some HLSP headers write for "unknown"
    lines = group_rows(ds.assign(tessmag=("target", tessmag)), "tess-spoc-2min-s0001")
    assert np.isnan(lines["magnitude"].iloc[:2]).all()
    np.testing.assert_array_equal(lines["magnitude"].iloc[2:], tessmag[2:])
