"""lcarchive.formats.checksums against astropy's own: the ones'-complement sum of any bytes, and the
DATASUM/CHECKSUM cards astropy writes checked on the raw bytes, passing as written and failing
where a byte changed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from lcarchive.formats.checksums import BLOCK, HduCheck, hdu_checks, integrity, ones_complement_sum


def _reference_sum(data: bytes) -> int:
    """FITS 4.0 Appendix J, word by word with the end-around carry."""
    total = 0
    padded = data + b"\0" * (-len(data) % 4)
    for k in range(0, len(padded), 4):
        total += int.from_bytes(padded[k : k + 4], "big")
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


@given(data=st.binary(max_size=3000))
def test_ones_complement_sum_is_astropys_and_the_standards(data):
    expected = _reference_sum(data)
    assert ones_complement_sum(data) == expected
    if len(data) % 4 == 0:  # astropy's sums whole words
        assert ones_complement_sum(data) == fits.PrimaryHDU()._compute_checksum(np.frombuffer(data, dtype=np.uint8))


@given(data=st.binary(min_size=1, max_size=400), start=st.integers(0, 100), length=st.integers(0, 300))
def test_a_byte_range_sums_as_the_slice(data, start, length):
    stop = start + length
    assert ones_complement_sum(data, start, stop) == _reference_sum(data[start:stop])
    assert ones_complement_sum(memoryview(data), start, stop) == _reference_sum(data[start:stop])


def test_the_carry_folds_back_in():
    assert ones_complement_sum(b"\xff\xff\xff\xff" * 2) == 0xFFFFFFFF
    assert ones_complement_sum(b"\xff\xff\xff\xff\x00\x00\x00\x01") == 1


def _file(seed: int, checksum: bool = True) -> bytes:
    rng = np.random.default_rng(seed)
    primary = fits.PrimaryHDU(rng.normal(size=(3, 5)).astype(">f4"))
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="TIME", format="D", array=rng.normal(size=70)),
            fits.Column(name="QUALITY", format="J", array=rng.integers(0, 9, 70)),
        ]
    )
    table.name = "LIGHTCURVE"
    out = io.BytesIO()
    fits.HDUList([primary, table]).writeto(out, checksum=checksum)
    return out.getvalue()


def _checks(data: bytes) -> list[HduCheck]:
    with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdul:
        return hdu_checks(hdul, data)


@given(seed=st.integers(0, 2**16))
def test_cards_astropy_writes_pass_on_the_raw_bytes(seed):
    checks = _checks(_file(seed))
    assert [(c.index, c.name, c.datasum, c.checksum) for c in checks] == [
        (0, "PRIMARY", "ok", "ok"),
        (1, "LIGHTCURVE", "ok", "ok"),
    ]
    assert integrity(checks, mission_product=True, rewritten=None).state == "sound"


@given(seed=st.integers(0, 2**16), where=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_a_changed_byte_fails_the_cards_of_its_hdu(seed, where, bit):
    data = bytearray(_file(seed))
    with fits.open(io.BytesIO(bytes(data)), memmap=False) as hdul:
        places = [(h._header_offset, h._data_offset, h._data_offset + -(-h._data_size // BLOCK) * BLOCK) for h in hdul]
    data_bytes = [k for head, body, end in places for k in range(body, end)]
    k = data_bytes[where % len(data_bytes)]
    data[k] ^= 1 << bit
    checks = _checks(bytes(data))
    hdu = next(i for i, (_, body, end) in enumerate(places) if body <= k < end)
    assert checks[hdu].datasum == "fail" and checks[hdu].checksum == "fail"
    assert all(not c.failed for c in checks if c.index != hdu)
    state = integrity(checks, mission_product=True, rewritten=None)
    assert state.state == "damaged" and f"HDU {hdu}" in state.reason
    assert integrity(checks, mission_product=True, rewritten="lightkurve wrote it").state == "stale-cards"


def test_no_cards_is_no_checksums_and_a_wrong_datasum_under_a_good_checksum_is_stale():
    checks = _checks(_file(1, checksum=False))
    assert all((c.datasum, c.checksum) == ("absent", "absent") for c in checks)
    assert integrity(checks, mission_product=True, rewritten=None).state == "no-checksums"
    cards = [HduCheck(0, "PRIMARY", "ok", "ok"), HduCheck(1, "LC", "fail", "ok")]
    assert integrity(cards, mission_product=True, rewritten=None).state == "stale-cards"
    only_datasum = [HduCheck(0, "PRIMARY", "absent", "absent"), HduCheck(1, "LC", "fail", "absent")]
    assert integrity(only_datasum, mission_product=False, rewritten=None).state == "stale-cards"
    assert integrity(only_datasum, mission_product=True, rewritten=None).state == "damaged"


@pytest.mark.parametrize("text", ["12x", "-1", ""])
def test_a_datasum_that_is_no_unsigned_integer_fails(text):
    data = bytearray(_file(2))
    with fits.open(io.BytesIO(bytes(data)), memmap=False) as hdul:
        hdul[1].header["DATASUM"] = text
        out = io.BytesIO()
        hdul.writeto(out, checksum=False)
    assert _checks(out.getvalue())[1].datasum == "fail"
