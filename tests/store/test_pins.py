"""The family pin (lcarchive.store.models.FamilyPin): the JSON it reads is the JSON it writes, byte for byte.

The literals in data/buckets_7b3233e.json are bucket texts written by lcarchive before the pin was a model
(commit 7b3233e) on real ingests; new ingests of the same files must write the same texts, old pins
(without the digest) must read, and a damaged pin is named as such.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import lcarchive
from lcarchive.errors import DamagedArchiveError
from lcarchive.store import ArchiveStore, FamilyPin
from lcarchive.store.buckets import decode_pins, encode_pins

from conftest import DATA

CAPTURED = json.loads((Path(__file__).parent / "data" / "buckets_7b3233e.json").read_text())
SCENARIOS = ("one_batch", "two_batches")


def _family_texts(scenario: str) -> list[str]:
    return list(CAPTURED[scenario]["families"].values())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stored_pins_write_back_byte_for_byte(scenario):
    for text in _family_texts(scenario):
        pins = decode_pins(text)
        assert pins and all(isinstance(p, FamilyPin) for p in pins.values())
        assert encode_pins(pins) == text


def test_a_stored_pin_reads_as_its_fields():
    pin = decode_pins(CAPTURED["one_batch"]["families"]["123"])["kepler-lc-q02"]
    assert re.fullmatch(r"[0-9A-Z]{20}", pin.snapshot)
    assert pin.snapshot_sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", pin.snapshot_sha256)
    assert pin.buckets == [360]
    assert pin.holds("kepler-lc-q02") and not pin.holds("kepler-lc-q05")
    assert [o.id for o in pin.observation_entries()] == ["kepler-lc-q02"]
    assert [d.id for d in pin.dataset_entries()] == ["kepler-lc-q02/flux", "kepler-lc-q02/sap_flux", "kepler-lc-q02/sap_bkg"]
    assert pin.observations["kepler-lc-q02"]["current"] is None  # a stored null stays a null


def test_a_pin_written_before_digests_reads_and_writes_back_without_one():
    stored = json.loads(CAPTURED["one_batch"]["families"]["123"])
    del stored["kepler-lc-q02"]["snapshot_sha256"]
    text = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    pin = decode_pins(text)["kepler-lc-q02"]
    assert pin.snapshot_sha256 is None
    assert "snapshot_sha256" not in pin.stored()
    assert encode_pins(decode_pins(text)) == text


def test_keys_a_pin_lacks_stay_absent_and_unknown_keys_are_kept():
    bare = FamilyPin.from_stored({"snapshot": "E4M3FB95WYT3A9GXDSP0"})
    assert bare.observations == {} and bare.buckets == [] and bare.snapshot_sha256 is None
    assert bare.stored() == {"snapshot": "E4M3FB95WYT3A9GXDSP0"}
    newer = {"snapshot": "E4M3FB95WYT3A9GXDSP0", "buckets": [1], "written_by": {"lcarchive": "9.9"}}
    assert FamilyPin.from_stored(newer).stored() == newer
    assert FamilyPin.from_stored(bare.model_copy(update={"snapshot_sha256": None}).stored()).stored() == bare.stored()


def test_no_pin_is_refused():
    for bad in ({}, {"snapshot": 3}, {"snapshot": "X", "buckets": ["a"]}, {"snapshot": "X", "observations": []}):
        with pytest.raises(ValidationError):
            FamilyPin.from_stored(bad)


_json_leaf = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
_json = st.recursive(
    _json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8
)
_group = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=24)
_stored_pin = st.fixed_dictionaries(
    {"snapshot": st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=20, max_size=20)},
    optional={
        "observations": st.dictionaries(_group, st.dictionaries(st.text(max_size=12), _json, max_size=4), max_size=3),
        "datasets": st.dictionaries(
            _group, st.lists(st.dictionaries(st.text(max_size=12), _json, max_size=3), max_size=3), max_size=3
        ),
        "buckets": st.lists(st.integers(0, 1023), unique=True).map(sorted),
        "snapshot_sha256": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    },
)


@settings(deadline=None, max_examples=50)
@given(st.dictionaries(_group, _stored_pin, max_size=4))
def test_any_stored_bucket_of_pins_writes_back_byte_for_byte(stored):
    text = json.dumps(stored, sort_keys=True, separators=(",", ":")) if stored else ""
    pins = decode_pins(text)
    assert {f: p.stored() for f, p in pins.items()} == stored
    assert encode_pins(pins) == text


# -- real ingests against the texts written before the split -----------------------------------
def _ingest(scenario: str, root: Path) -> ArchiveStore:
    for batch in CAPTURED[scenario]["files"]:
        report = lcarchive.Archive(str(root)).ingest([str(DATA / "kepler" / name) for name in batch])
        assert report.ok, report.skipped
    return lcarchive.open_archive(str(root)).handle.repositories


@pytest.fixture(scope="module")
def one_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of the captured files ingested in one batch (copy it to change it)."""
    root = tmp_path_factory.mktemp("pins") / "archive"
    _ingest("one_batch", root)
    return root


def _copy(root: Path, dest: Path) -> ArchiveStore:
    shutil.copytree(root, dest)
    return lcarchive.open_archive(str(dest)).handle.repositories


def _texts(store: ArchiveStore, name: str) -> dict[str, str]:
    values = zarr.open_array(store.catalog_session().store, path=name, mode="r")[:]
    return {str(i): str(t) for i, t in enumerate(values) if t}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_an_ingest_writes_the_buckets_it_wrote_before(scenario, one_batch, tmp_path):
    store = (
        lcarchive.open_archive(str(one_batch)).handle.repositories
        if scenario == "one_batch"
        else _ingest(scenario, tmp_path / "a")
    )
    pins = store.pins()
    for name in ("families", "targets", "sky"):
        written, expected = _texts(store, name), CAPTURED[scenario][name]
        assert sorted(written) == sorted(expected), name
        for bucket, text in expected.items():
            if name == "families":  # the snapshot IDs and their digests are this ingest's own
                for family, then in json.loads(text).items():
                    text = text.replace(then["snapshot"], pins[family].snapshot)
                    text = text.replace(then["snapshot_sha256"], str(pins[family].snapshot_sha256))
            assert written[bucket] == text, (name, bucket)


def test_pins_of_an_older_lcarchive_read(one_batch, tmp_path):
    """A catalog whose pins lack the digest (written before digests) reads, and opens the groups."""
    root = tmp_path / "archive"
    store = _copy(one_batch, root)
    old = {
        f: FamilyPin.from_stored({k: v for k, v in p.stored().items() if k != "snapshot_sha256"}) for f, p in store.pins().items()
    }
    store.change_catalog(lambda session: ArchiveStore.update_pins(session, old) or True, "pins of an older lcarchive")
    archive = lcarchive.open_archive(str(root))
    assert all(p.snapshot_sha256 is None for p in archive.handle.repositories.pins().values())
    assert archive.open_observation("kepler-lc-q05").sizes["target"] == 1


def test_a_damaged_pin_is_named(one_batch, tmp_path):
    root = tmp_path / "archive"
    store = _copy(one_batch, root)
    bucket = int(next(iter(CAPTURED["one_batch"]["families"])))
    broken = json.dumps({"kepler-lc-q02": {"observations": {}}})  # no snapshot: no pin
    store.change_catalog(lambda session: ArchiveStore.write_buckets(session, "families", {bucket: broken}) or True, "damage")
    for read in (lambda s: s.pins(), lambda s: s.pin("kepler-lc-q02")):
        with pytest.raises(DamagedArchiveError, match="catalog/families"):
            read(ArchiveStore(str(root)))
    assert ArchiveStore(str(root)).pin("kepler-lc-q05") is not None  # other buckets read


def test_the_captured_files_are_there():
    for scenario in SCENARIOS:
        for batch in CAPTURED[scenario]["files"]:
            for name in batch:
                assert (DATA / "kepler" / name).is_file(), name
