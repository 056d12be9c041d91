"""QLP's internal HDF5 LC-qsp/ files (LC/'s photometry plus QSP-detrended magnitudes) are light
curves derived from the LC/ files, stored in their own observation with lineage, not releases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import pytest

import lcarchive

from conftest import DATA
from reference import assert_bit_equal

LC = DATA / "qlp-h5" / "LC"
QSP = DATA / "qlp-h5" / "LC-qsp"
SOURCE, DERIVED = "tess-qlp-hdf5-s0070", "tess-qlp-hdf5-qsp-s0070"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=["LC first", "LC-qsp first"])
def archive(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("qsp") / "archive"
    order = [str(LC), str(QSP)] if request.param == "LC first" else [str(QSP), str(LC)]
    report = lcarchive.Archive(str(root)).ingest(order)
    assert report.skipped == [] and report.superseded == []
    assert len(report.added) == 12
    return lcarchive.open_archive(str(root))


def test_qsp_files_are_a_derived_observation(archive):
    by_id = {o.id: o for o in archive.observations}
    assert set(by_id) == {SOURCE, DERIVED}  # no release group (.alt2): the LC-qsp files are no release
    assert by_id[DERIVED].derived_from == SOURCE and by_id[DERIVED].processing == ["qsp"]
    assert by_id[SOURCE].derived_from is None and by_id[SOURCE].n_targets == by_id[DERIVED].n_targets == 6
    with archive.open_observation(DERIVED) as ds:
        assert ds.attrs["derived_from_observation"] == SOURCE
        added = ds.attrs["added_columns"]  # a list, JSON text in the datasets lcarchive returns (CF attributes)
        added = set(json.loads(added) if isinstance(added, str) else added)
    names: dict[str, set[str]] = {}
    for directory in (LC, QSP):
        with h5py.File(directory / "2761238.h5", "r") as f:
            found: set[str] = set()
            f.visititems(lambda n, o, found=found: found.add(n) if isinstance(o, h5py.Dataset) else None)
            names[directory.name] = found
    assert added == names["LC-qsp"] - names["LC"]
    assert len(added) == 15 and all(n.rsplit("/", 1)[1].startswith("QSP") for n in added)


def test_lineage_in_the_catalog(archive):
    datasets = {d.id: d for d in archive.catalog.datasets}
    for k in range(5):
        qsp = datasets[f"{DERIVED}/aperture_{k:03d}_qspmagnitude"]
        assert qsp.processing_method == "QSP"
        assert qsp.derived_from == [f"{DERIVED}/aperture_{k:03d}_rawmagnitude"]
        assert f"{SOURCE}/aperture_{k:03d}_qspmagnitude" not in datasets  # LC/ files have none
    assert any(t.name == "qsp" for t in archive.catalog.processing_tools)


def test_every_file_stored_once(archive):
    seen: dict[str, list[str]] = {}
    for obs in (SOURCE, DERIVED):
        with archive.open_observation(obs) as ds:
            for shas in ds["source_sha256"].values:
                for sha in str(shas).split("\n"):
                    seen.setdefault(sha, []).append(obs)
    expected = {_sha(p): (SOURCE if p.parent == LC else DERIVED) for p in [*LC.glob("*.h5"), *QSP.glob("*.h5")]}
    assert {sha: obs for sha, [obs] in seen.items()} == expected


@pytest.mark.parametrize("name", sorted(p.name for p in LC.glob("*.h5")))
def test_light_curve_defaults_to_the_raw_best_aperture(archive, name):
    """As lightkurve reads QLP's FITS SAP_FLUX: the best aperture's RawMagnitude (and its error),
    from the product's observation; the derived observation is named, not joined."""
    target = int(name.removesuffix(".h5"))
    lc = archive.light_curve(target, quality_bitmask="none")
    assert list(lc["observation"].values) == [SOURCE]
    assert lc.attrs["derived_observations"] == DERIVED
    with h5py.File(LC / name, "r") as f:
        best = f"LightCurve/AperturePhotometry/Aperture_{int(f['LightCurve/AperturePhotometry'].attrs['bestap']):03d}"
        assert_bit_equal(lc["flux"].values, f[f"{best}/RawMagnitude"][()], "flux")
        assert_bit_equal(lc["flux_err"].values, f[f"{best}/RawMagnitudeError"][()], "flux_err")
        assert_bit_equal(lc["time"].values, f["LightCurve/BJD"][()], "time")


@pytest.mark.parametrize("name", sorted(p.name for p in QSP.glob("*.h5")))
def test_detrended_magnitudes_readable(archive, name):
    target = int(name.removesuffix(".h5"))
    lc = archive.light_curve(target, observation=DERIVED, quality_bitmask="none")
    with h5py.File(QSP / name, "r") as f:
        photometry = f["LightCurve/AperturePhotometry"]
        assert photometry.attrs["bestdmagkey"] in ("QSPMagnitude", b"QSPMagnitude")
        for k in range(int(photometry.attrs["naps"])):
            for column in ("QSPMagnitude", "QSPIntermediateMagnitude", "QSPMagnitudeError", "RawMagnitude"):
                variable = f"aperture_{k:03d}_{column.lower()}"
                assert_bit_equal(lc[variable].values, photometry[f"Aperture_{k:03d}/{column}"][()], variable)
        best = f"Aperture_{int(photometry.attrs['bestap']):03d}"
        assert_bit_equal(lc["flux"].values, photometry[f"{best}/RawMagnitude"][()], "flux")
    both = archive.light_curve(target, observations=[SOURCE, DERIVED], quality_bitmask="none")
    assert sorted(set(both["cadence_observation"].values)) == sorted([SOURCE, DERIVED])  # named: read as asked


def test_reingest_changes_nothing(archive):
    before = archive.catalog.model_dump_json()
    history = len(archive.history()) if hasattr(archive, "history") else None
    report = lcarchive.Archive(archive.url).ingest([str(QSP), str(LC)])
    assert report.added == [] and report.superseded == [] and report.versions == []
    assert len(report.unchanged) == 12
    again = lcarchive.open_archive(archive.url)
    assert again.catalog.model_dump_json() == before
    if history is not None:
        assert len(again.history()) == history
