"""lcarchive.identifiers: target IDs parsed and checked against each mission catalog's ranges
(TIC, KIC, EPIC), observation IDs that are always one path segment, and safe file names."""

from __future__ import annotations

import re
from urllib.parse import unquote

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lcarchive.catalog.content import static_catalog
from lcarchive.errors import InvalidIdentifierError, InvalidTargetError
from lcarchive.identifiers import (
    MAX_ID_LENGTH,
    check_observation_id,
    check_target_id,
    parse_target,
    parse_target_text,
    safe_name,
)

CATALOGS = {c.name: c for c in static_catalog().mission_catalogs}
NAMES = st.sampled_from(sorted(CATALOGS))
SEPARATORS = st.sampled_from(["", " ", "  ", "_", ":", "-", ": "])


def _case(name: str, how: int) -> str:
    return [name, name.lower(), name.title()][how % 3]


def test_the_catalogs_are_tic_kic_and_epic():
    assert set(CATALOGS) == {"TIC", "KIC", "EPIC"}


@given(name=NAMES, number=st.integers(0, 10**11), sep=SEPARATORS, how=st.integers(0, 2), pad=st.sampled_from(["", " "]))
def test_target_text_round_trips_with_any_prefix_spelling(name, number, sep, how, pad):
    text = f"{pad}{_case(name, how)}{sep}{number}{pad}"
    assert parse_target_text(text) == (name, number)
    assert parse_target_text(str(number)) == (None, number)
    assert parse_target_text(number) == (None, number)
    assert parse_target_text(np.int64(number)) == (None, number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TIC 261136679", ("TIC", 261136679)),
        ("KIC 8462852", ("KIC", 8462852)),
        ("EPIC211436265", ("EPIC", 211436265)),
        ("epic 60021426", ("EPIC", 60021426)),
        ("261136679", (None, 261136679)),
    ],
)
def test_the_documented_examples(text, expected):
    assert parse_target_text(text) == expected


@pytest.mark.parametrize("text", ["GAIA 123", "TIC", "", "-5", "12.5", "TIC 1 2", "1e6", True])
def test_what_is_no_target_is_refused(text):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_target_text(text)


@given(name=NAMES, number=st.integers(-10, 10**10 + 10**7), form=st.sampled_from(["int", "text", "prefixed", "float"]))
def test_parse_target_accepts_exactly_the_ids_its_catalog_issued(name, number, form):
    assume(number >= 0 or form != "prefixed")  # "TIC -5" is TIC 5: "-" separates a prefix ("TIC-5")
    catalog = CATALOGS[name]
    raw = {"int": number, "text": str(number), "prefixed": f"{name} {number}", "float": float(number)}[form]
    if number >= 0 and catalog.valid(number) and (form != "float" or float(number) == number):
        assert parse_target(raw, catalog, "f.fits", "OBJECT") == number
        assert check_target_id(raw if form != "prefixed" else number, catalog, "f.fits", "TICID") == number
    else:
        with pytest.raises(InvalidTargetError):
            parse_target(raw, catalog, "f.fits", "OBJECT")


@given(name=NAMES, other=NAMES, number=st.integers(1, 13161029))
def test_another_catalogs_prefix_is_refused(name, other, number):
    assume(name != other)
    with pytest.raises(InvalidTargetError, match=f"a {other} ID; {name} IDs are expected"):
        parse_target(f"{other} {number}", CATALOGS[name], "f.fits", "OBJECT")


@pytest.mark.parametrize("raw", [None, "", " ", 2.5, float("nan"), float("inf"), True, np.bool_(False), "12a"])
def test_check_target_id_refuses_what_is_no_integer(raw):
    with pytest.raises(InvalidTargetError):
        check_target_id(raw, CATALOGS["TIC"], "f.fits", "TICID")


def test_the_ranges_are_the_missions():
    tic, kic, epic = CATALOGS["TIC"], CATALOGS["KIC"], CATALOGS["EPIC"]
    assert tic.valid(261136679) and not tic.valid(0) and not tic.valid(10005000541)
    assert kic.valid(8462852) and kic.valid(100001645) and not kic.valid(13161030) and not kic.valid(99999999)
    assert epic.valid(60021426) and epic.valid(211436265) and not epic.valid(61000000) and not epic.valid(200000000)


OBS = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*(?:\.[a-z0-9_]+(?:-[a-z0-9_]+)*)?")


@given(text=st.text(alphabet="abz09_-./ A\\", max_size=40))
def test_an_observation_id_is_always_one_safe_path_segment(text):
    try:
        assert check_observation_id(text) == text
    except InvalidIdentifierError:
        assert not OBS.fullmatch(text)
        return
    assert "/" not in text and "\\" not in text and ".." not in text and " " not in text
    assert not text.startswith((".", "-")) and not text.endswith(("-", ".")) and text.count(".") <= 1
    assert 0 < len(text) <= MAX_ID_LENGTH


def test_observation_ids_of_the_examples_and_the_limits():
    for good in ("tess-spoc-2min-s0001", "tess-spoc-2min-s0001.dr0", "k2-k2sff-cet", "a" * MAX_ID_LENGTH):
        assert check_observation_id(good) == good
    for bad in ("../evil", "/tmp/x", "", "Tess-x", "a" * (MAX_ID_LENGTH + 1), "a--b", "a.b.c", 5, None):
        with pytest.raises(InvalidIdentifierError):
            check_observation_id(bad)


@given(name=st.text(max_size=40))
def test_safe_names_hold_no_control_character_and_decode_back(name):
    safe = safe_name(name)
    assert not re.search(r"[\x00-\x1f\x7f]", safe)
    assert unquote(safe) == name
    assert safe_name(name) == safe
