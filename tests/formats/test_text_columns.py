"""Text and other non-numeric columns kept as their bytes: exact, and read as astropy reads text."""

from __future__ import annotations

import io

import numpy as np
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from lcarchive.formats.fits import raw_text
from lcarchive.formats.record import fits_text, is_text_format

FIELD = st.binary(min_size=5, max_size=5)


@given(rows=st.lists(FIELD, min_size=1, max_size=20))
def test_raw_text_keeps_every_byte(rows):
    raw = np.frombuffer(b"".join(rows), dtype="S5")  # numpy's S hides trailing NULs; the buffer keeps them
    text = raw_text(raw)
    assert text.dtype == object and [t.encode("latin-1") for t in text] == rows


@given(
    rows=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=6), st.sampled_from([b" ", b"\0"])
        ),
        min_size=1,
        max_size=12,
    )
)
def test_fits_text_is_what_astropy_reads(rows):
    """Text padded with blanks or NULs (writers do either) reads back as astropy reads it."""
    fields = [t.encode().ljust(8, pad) for t, pad in rows]
    hdu = fits.BinTableHDU.from_columns([fits.Column("NAME", "8A", array=np.zeros(len(rows), "S8"))])
    buf = io.BytesIO()
    hdu.writeto(buf)
    data = bytearray(buf.getvalue())
    start = 2880 * 2  # one header block each: the primary's and the table's
    data[start : start + 8 * len(rows)] = b"".join(fields)
    with fits.open(io.BytesIO(bytes(data))) as hdul:
        table = hdul[1].data
        want = [str(v) for v in table["NAME"]]
        kept = raw_text(np.asarray(table.view(np.ndarray)["NAME"]))
    assert [k.encode("latin-1") for k in kept] == fields
    assert fits_text(kept).tolist() == want == [t for t, _ in rows]


def test_text_formats():
    assert is_text_format("48A") and is_text_format(" 2A ")
    assert not any(is_text_format(f) for f in ("1A", "A", "L", "12X", "C", "", None))
