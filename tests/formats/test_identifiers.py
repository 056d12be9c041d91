"""lcarchive.identifiers: target IDs parsed and checked against each mission catalog's ranges
(TIC, KIC, EPIC), targets of the other catalogs (Gaia DR2/DR3 source IDs, MPC designations),
observation IDs that are always one path segment, and safe file names."""

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
    DESIGNATION_KEYS,
    MAX_ID_LENGTH,
    Target,
    catalog_named,
    check_designation,
    check_observation_id,
    check_target_id,
    designation_key,
    parse_any_target,
    parse_target,
    parse_target_text,
    read_file_target,
    safe_name,
)

MISSIONS_CATALOGS = {m.target_catalog for m in static_catalog().missions}
CATALOGS = {c.name: c for c in static_catalog().mission_catalogs if c.name in MISSIONS_CATALOGS}
OTHERS = {c.name: c for c in static_catalog().mission_catalogs if c.name not in MISSIONS_CATALOGS}
GAIA_MAX = 12 * 4**12 * 2**35 - 1
NAMES = st.sampled_from(sorted(CATALOGS))
SEPARATORS = st.sampled_from(["", " ", "  ", "_", ":", "-", ": "])


def _case(name: str, how: int) -> str:
    return [name, name.lower(), name.title()][how % 3]


def test_the_catalogs_are_the_missions_and_gaia_and_the_minor_planet_center():
    assert set(CATALOGS) == {"TIC", "KIC", "EPIC"}
    assert set(OTHERS) == {"Gaia DR2", "Gaia DR3", "MPC"}
    assert OTHERS["MPC"].id_kind == "designation" and all(c.id_kind == "integer" for c in CATALOGS.values())


@pytest.mark.parametrize("name", ["Gaia DR2", "Gaia DR3"])
def test_gaia_source_ids_are_the_healpix_level_12_range(name):
    gaia = OTHERS[name]
    assert gaia.valid(5707485527450614656) and gaia.valid(6399196263939178880) and gaia.valid(GAIA_MAX)
    assert not gaia.valid(0) and not gaia.valid(GAIA_MAX + 1) and not gaia.valid(-5707485527450614656)
    assert DESIGNATION_KEYS[0] > GAIA_MAX and DESIGNATION_KEYS[1] == 2**63 - 1  # an int64, above every source_id


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("Gaia DR3 5707485527450614656", Target("Gaia DR3", 5707485527450614656)),
        ("gaiadr3:5707485527450614656", Target("Gaia DR3", 5707485527450614656)),
        ("DR2 3222255959210123904", Target("Gaia DR2", 3222255959210123904)),
        ("Gaia DR2 3222255959210123904", Target("Gaia DR2", 3222255959210123904)),
        ("TIC 261136679", Target("TIC", 261136679)),
        ("EPIC211436265", Target("EPIC", 211436265)),
        ("3I/ATLAS", Target("MPC", "3I")),
        ("MPC 3I/ATLAS", Target("MPC", "3I")),
        ("1P/Halley", Target("MPC", "1P")),
        ("(11251)", Target("MPC", "(11251)")),
        ("(11251) Icarion", Target("MPC", "(11251)")),
        ("MPC 11251", Target("MPC", "(11251)")),
        ("1981EK47", Target("MPC", "1981 EK47")),
        ("2000 AC115", Target("MPC", "2000 AC115")),
        ("C/2019 Y4 (ATLAS)", Target("MPC", "C/2019 Y4")),
        (" 261136679 ", 261136679),
        (np.int64(5707485527450614656), 5707485527450614656),
    ],
)
def test_a_user_names_a_target_of_any_catalog(text, target):
    assert parse_any_target(text) == target
    if isinstance(target, Target):
        assert parse_any_target(str(target)) == target  # its text reads back as itself
        assert target.key == (target.id if isinstance(target.id, int) else designation_key(target.catalog, target.id))


@pytest.mark.parametrize(
    "text",
    [
        "Gaia DR3 0",
        f"Gaia DR3 {GAIA_MAX + 1}",
        "Gaia DR3 12a",
        "Gaia DR4 5707485527450614656",
        "../../etc/passwd",
        "3I/../../x",
        "MPC 3I\nx",
        "MPC (0)",
        "MPC 3I/" + "A" * 70,
        "11251)",
        "",
    ],
)
def test_what_names_no_target_of_any_catalog_is_refused_in_one_line(text):
    with pytest.raises(ValueError) as refused:  # noqa: PT011 - each case has its own message
        parse_any_target(text)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("text", ["TIC 0", "KIC 261136679", "EPIC 5"])
def test_a_mission_catalogs_number_out_of_range_is_taken_as_given_as_ever(text):
    """A lookup of 'KIC 261136679' finds no target (parse_target_text's contract), it is no usage error."""
    name, number = text.split()
    assert parse_any_target(text) == Target(name, int(number)) and not CATALOGS[name].valid(int(number))


@given(number=st.integers(1, 9_999_999))
def test_a_numbered_minor_planet_is_one_key_however_written(number):
    keys = {parse_any_target(t).key for t in (f"({number})", f"MPC {number}", f"MPC ({number})", f"({number}) Name")}
    assert len(keys) == 1
    (key,) = keys
    assert DESIGNATION_KEYS[0] <= key <= DESIGNATION_KEYS[1]


def test_designation_keys_are_distinct_and_stable():
    designations = [f"({n})" for n in range(1, 3000)] + [f"{n}P" for n in range(1, 500)] + ["3I", "2I", "1I"]
    keys = {designation_key("MPC", d) for d in designations}
    assert len(keys) == len(designations)
    assert designation_key("MPC", "3I") == 7618626961650137811  # stored in archives: never changes


@pytest.mark.parametrize("raw", [None, "", "nan", " ", "../x", "3I/..", "(11251", 11251.0, True, "a\x00b"])
def test_check_designation_refuses_what_is_no_designation(raw):
    with pytest.raises(InvalidTargetError) as refused:
        check_designation(raw, OTHERS["MPC"], "f.fits", "OBJECT")
    assert "\n" not in str(refused.value)


def test_check_designation_takes_a_bare_number_where_the_catalog_is_told():
    assert check_designation("11251", OTHERS["MPC"], "f.fits", "OBJECT") == "(11251)"
    assert check_designation(11251, OTHERS["MPC"], "f.fits", "OBJECT") == "(11251)"
    assert parse_any_target("11251") == 11251  # untold: a bare number names no catalog


def _lookup(values):
    return values.get


@pytest.mark.parametrize("blank", [None, "", " ", "nan", "NaN", float("nan")])
def test_a_file_without_its_missions_id_is_read_under_the_other_catalogs_id(blank):
    tic = CATALOGS["TIC"]
    found = read_file_target(blank, tic, "f.fits", "TICID", {"Gaia DR3": "GAIADR3"}, _lookup({"GAIADR3": 5707485527450614656}))
    assert found == (catalog_named("Gaia DR3"), Target("Gaia DR3", 5707485527450614656))
    with pytest.raises(InvalidTargetError, match="names no target: TICID"):
        read_file_target(blank, tic, "f.fits", "TICID", {"Gaia DR3": "GAIADR3"}, _lookup({}))
    with pytest.raises(InvalidTargetError, match="not a Gaia DR2 ID"):
        read_file_target(blank, tic, "f.fits", "TICID", {"Gaia DR2": "GAIA-ID"}, _lookup({"GAIA-ID": 0}))


def test_a_file_with_its_missions_id_keeps_it_and_a_bad_one_is_refused():
    tic = CATALOGS["TIC"]
    others = {"Gaia DR3": "GAIADR3"}
    lookup = _lookup({"GAIADR3": 5707485527450614656})
    assert read_file_target("218795833", tic, "f.fits", "TICID", others, lookup) == (tic, Target("TIC", 218795833))
    with pytest.raises(InvalidTargetError):  # a TIC ID out of range is not "no TIC": refused, not re-read as Gaia
        read_file_target("0", tic, "f.fits", "TICID", others, lookup)


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
