"""The child index: normalising names, scoring matches, linking pushed records to children,
conflict suggestions, probable duplicates, merges and how merged children resolve."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.orm import Session

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.child_duplicates import MergeRefused, merge_children, probable_duplicates
from exchange.child_matching import (
    DUPLICATE_MIN_SCORE,
    SEARCH_MIN_SCORE,
    BirthWindow,
    IdentityProfile,
    birth_agreement,
    name_tokens,
    normalize_text,
    phonetic_key,
    profile_from_child,
    score_match,
    token_similarity,
    tokens_similarity,
)
from exchange.child_search import search_by_identifier, search_by_profile
from exchange.children import (
    Child,
    ChildCaseNumber,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildNameKey,
    ChildProfile,
    link_child,
    merged_child_ids,
    resolve_child_id,
)
from tests.conftest import BACKENDS, backend_database, make_hub

TODAY = date(2024, 6, 1)
EXAMPLES = Path(__file__).resolve().parents[3] / "schemas/examples/case-record/1/valid"

# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Núñez", "nunez"),
        ("PEÑA", "pena"),
        ("  MARÍA   José ", "maria jose"),
        ("García-López", "garcia lopez"),
        ("García — López", "garcia lopez"),
        ("D'Ángelo", "dangelo"),
        ("Müller", "muller"),
        ("Ximénez\tde  la Cruz", "ximenez de la cruz"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, normalised: str) -> None:
    assert normalize_text(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "given", "tokens"),
    [
        ("de la Cruz", False, ("cruz",)),
        ("Del Valle", False, ("valle",)),
        ("De León y Pérez", False, ("leon", "perez")),
        ("García López", False, ("garcia", "lopez")),
        ("García-López", False, ("garcia", "lopez")),
        ("van der Berg", False, ("berg",)),
        ("De", False, ("de",)),  # only a particle: kept, or nothing would be left
        ("Ma. Guadalupe", True, ("maria", "guadalupe")),
        ("Ma. Guadalupe", False, ("ma", "guadalupe")),  # abbreviations are for given names
        (None, False, ()),
    ],
)
def test_name_tokens(raw: str | None, given: bool, tokens: tuple[str, ...]) -> None:
    assert name_tokens(raw, given=given) == tokens


def test_compound_surname_in_one_field_or_two_gives_one_profile() -> None:
    one = profile_from_child(
        {"names": {"given_names": "Ana", "first_surname": "García López"}, "nationality": ["GT"]},
        TODAY,
    )
    two = profile_from_child(
        {
            "names": {"given_names": "ANA", "first_surname": "Garcia", "second_surname": "López"},
            "nationality": ["GT"],
        },
        TODAY,
    )
    assert one.surnames == two.surnames == ("garcia", "lopez")
    assert score_match(one, two).score == pytest.approx(0.85)  # no date: neutral 0.5 for it


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("hernandez", "hernandes"),
        ("jonathan", "jhonatan"),
        ("yesenia", "yessenia"),
        ("kevin", "kebin"),
        ("edwin", "eduin"),
        ("gerardo", "jerardo"),
        ("cesar", "sesar"),
    ],
)
def test_spellings_that_sound_alike_share_a_key(a: str, b: str) -> None:
    assert phonetic_key(a) == phonetic_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("guillermo", "jillermo"), ("jose", "josue"), ("ana", "anna l")]
)
def test_different_names_keep_different_keys(a: str, b: str) -> None:
    assert phonetic_key(a) != phonetic_key(b)


def test_token_lists_compare_in_any_order_and_a_missing_surname_costs_little() -> None:
    assert tokens_similarity(("lopez", "garcia"), ("garcia", "lopez")) == 1.0
    partial = tokens_similarity(("garcia",), ("garcia", "lopez"))
    assert partial is not None and 0.85 < partial < 1.0
    unrelated = tokens_similarity(("martinez",), ("ochoa",))
    assert unrelated is not None and unrelated < 0.2
    assert tokens_similarity((), ("garcia",)) is None


@pytest.mark.parametrize(
    ("a", "b", "similarity"),
    [
        ("7", "777", 0.0),  # "777" sounds like "7" once repeated letters collapse
        ("1", "1000", 0.0),  # and "1" is not the initial of "1000"
        ("100", "1000", 0.0),
        ("12", "13", 0.0),
        ("nino7", "nino77", 0.0),
        ("7", "7", 1.0),
        ("07", "7", 1.0),  # a leading zero writes the same number
        ("nino07", "nino7", 1.0),
    ],
)
def test_tokens_with_numbers_agree_only_on_the_same_number(
    a: str, b: str, similarity: float
) -> None:
    assert token_similarity(a, b) == token_similarity(b, a) == similarity


def test_names_whose_numbers_differ_do_not_agree() -> None:
    assert tokens_similarity(("nino", "7"), ("nino", "777")) == 0.0
    assert tokens_similarity(("nino", "7"), ("nino",)) == 0.0  # a number against none
    assert tokens_similarity(("nino", "7"), ("7", "nino")) == 1.0
    assert tokens_similarity(("nina", "12"), ("nino", "12")) == pytest.approx(0.71, abs=0.01)
    # The rest of the name still counts when the numbers agree.
    assert tokens_similarity(("nino", "7", "tapachula"), ("nino", "7")) == pytest.approx(0.94, 0.01)


def numbered(alias: str, age: int) -> IdentityProfile:
    return profile_from_child(
        {
            "alias": alias,
            "nationality": ["GT"],
            "age_estimation": {"estimated_age_years": age, "assessed_on": "2024-05-01"},
        },
        TODAY,
    )


def test_numbered_aliases_are_not_a_name_match() -> None:
    """Offices number unnamed children; "Niño 7" and "Niño 777" are two children."""
    for one, other in (("Niño 7", "Niño 777"), ("Niño 1", "Niño 1000"), ("Niño", "Niño 7")):
        match = score_match(numbered(one, 12), numbered(other, 14))
        assert match == score_match(numbered(other, 14), numbered(one, 12))
        assert not {"name", "name_similar"} & set(match.matched_on), (one, other)
        assert match.score < SEARCH_MIN_SCORE, (one, other)
    same = score_match(numbered("Niño 7", 12), numbered("NIÑO 07", 13))
    assert "name" in same.matched_on and same.score >= DUPLICATE_MIN_SCORE


# -- dates of birth and scores --------------------------------------------------------------


def test_birth_window_from_an_age_estimation() -> None:
    window = BirthWindow.from_age(13, date(2023, 6, 3), slack=0)
    assert (window.earliest, window.latest) == (date(2009, 6, 4), date(2010, 6, 3))
    widened = BirthWindow.from_age(13, date(2023, 6, 3))
    assert (widened.earliest, widened.latest) == (date(2008, 6, 4), date(2011, 6, 3))
    leap = BirthWindow.from_age(3, date(2024, 2, 29), slack=0)
    assert leap.latest == date(2021, 2, 28)


@pytest.mark.parametrize(
    ("a", "b", "score", "label"),
    [
        (
            BirthWindow.on(date(2010, 5, 14)),
            BirthWindow.on(date(2010, 5, 14)),
            1.0,
            "date_of_birth",
        ),
        (
            BirthWindow.on(date(2010, 5, 4)),
            BirthWindow.on(date(2010, 4, 5)),
            0.85,
            "date_of_birth_swapped",
        ),
        (
            BirthWindow.on(date(2010, 5, 4)),
            BirthWindow.on(date(2010, 5, 9)),
            0.6,
            "date_of_birth_near",
        ),
        (
            BirthWindow.on(date(2010, 5, 4)),
            BirthWindow.on(date(2011, 5, 4)),
            0.6,
            "date_of_birth_near",
        ),
        (
            BirthWindow.on(date(2010, 5, 4)),
            BirthWindow.from_age(13, date(2023, 6, 3)),
            0.7,
            "date_of_birth_estimated",
        ),
        (
            BirthWindow.from_age(12, date(2023, 1, 1)),
            BirthWindow.from_age(13, date(2023, 6, 3)),
            0.6,
            "date_of_birth_estimated",
        ),
        (BirthWindow.on(date(2004, 5, 4)), BirthWindow.on(date(2010, 5, 4)), 0.0, ""),
        (BirthWindow.on(date(2016, 1, 1)), BirthWindow.from_age(13, date(2023, 6, 3)), 0.0, ""),
        (None, BirthWindow.on(date(2010, 5, 4)), None, ""),
    ],
)
def test_birth_agreement(
    a: BirthWindow | None, b: BirthWindow | None, score: float | None, label: str
) -> None:
    assert birth_agreement(a, b) == (score, label)


KEVIN = IdentityProfile(
    given=("kevin", "josue"),
    surnames=("ejemplo", "ficticio"),
    birth=BirthWindow.on(date(2008, 7, 2)),
    sex="male",
    nationalities=frozenset({"HN"}),
)


def test_full_agreement_scores_one_and_says_what_matched() -> None:
    match = score_match(KEVIN, KEVIN)
    assert match.score == 1.0
    assert match.matched_on == ("name", "date_of_birth", "nationality", "sex")


def test_a_name_alone_is_never_certain_and_a_far_date_rules_a_child_out() -> None:
    name_only = IdentityProfile(given=("kevin", "josue"), surnames=("ejemplo", "ficticio"))
    assert score_match(name_only, KEVIN).score == pytest.approx(0.8)
    far = IdentityProfile(
        given=KEVIN.given, surnames=KEVIN.surnames, birth=BirthWindow.on(date(2002, 7, 2))
    )
    assert score_match(far, KEVIN).score < SEARCH_MIN_SCORE


def test_different_sex_and_nationality_lower_the_score() -> None:
    girl = IdentityProfile(
        given=KEVIN.given,
        surnames=KEVIN.surnames,
        birth=KEVIN.birth,
        sex="female",
        nationalities=frozenset({"GT"}),
    )
    assert score_match(girl, KEVIN).score == pytest.approx(0.45)


def test_a_full_name_matches_whatever_field_the_parts_were_in() -> None:
    full = IdentityProfile(unplaced=("ejemplo", "kevin"), birth=KEVIN.birth)
    match = score_match(full, KEVIN)
    assert "name" in match.matched_on and match.score > 0.85


def test_twins_are_not_probable_duplicates() -> None:
    twin = IdentityProfile(
        given=("maria", "fernanda"),
        surnames=KEVIN.surnames,
        birth=KEVIN.birth,
        nationalities=KEVIN.nationalities,
    )
    assert score_match(twin, KEVIN).score < DUPLICATE_MIN_SCORE


# -- linking pushed records (both backends) -----------------------------------------------------


def child_record(
    given: str | None = None,
    first: str | None = None,
    second: str | None = None,
    *,
    dob: str | None = None,
    age: int | None = None,
    assessed_on: str | None = None,
    nationality: tuple[str, ...] = ("HN",),
    sex: str | None = None,
    identifiers: tuple[tuple[str, str], ...] = (),
    alias: str | None = None,
) -> dict[str, Any]:
    """A case-record/1 document's data with just the child part that matters here."""
    child: dict[str, Any] = {"nationality": list(nationality)}
    if given:
        names = {"given_names": given}
        if first:
            names["first_surname"] = first
        if second:
            names["second_surname"] = second
        child["names"] = names
    if alias:
        child["alias"] = alias
    if dob:
        child["date_of_birth"] = dob
    if age is not None:
        child["age_estimation"] = {"estimated_age_years": age}
        if assessed_on:
            child["age_estimation"]["assessed_on"] = assessed_on
    if sex:
        child["sex"] = sex
    if identifiers:
        child["identifiers"] = [{"type": kind, "value": value} for kind, value in identifiers]
    return {"case": {"status": "open"}, "child": child}


CURP = "EEFK080702HNEJCVA9"


@pytest.fixture(scope="module", params=BACKENDS)
def module_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One migrated hub per backend for the module (migrating per test would dominate)."""
    folder = tmp_path_factory.mktemp("children")
    with backend_database(request.param, folder) as url:
        app = make_hub(folder, url)
        yield app
        app.extensions["puente.db"].engine.dispose()


def empty_child_index(app: Flask) -> None:
    with db.database(app).sessions.begin() as session:
        for model in (ChildNameKey, ChildProfile, ChildDuplicateSuggestion, ChildCaseNumber):
            session.execute(delete(model))
        session.execute(delete(ChildIdentifier))
        session.execute(update(Child).values(merged_into=None))
        session.execute(delete(Child))


@pytest.fixture
def session(module_hub: Flask) -> Iterator[Session]:
    empty_child_index(module_hub)
    with module_hub.app_context(), db.database(module_hub).sessions() as session:
        yield session


def push(
    session: Session, agency: str, local_id: str, doc: dict[str, Any], child_id: str | None = None
) -> str:
    linked = link_child(
        session, agency_id=agency, local_id=local_id, child_id=child_id, document=doc
    )
    session.commit()
    return linked


def identifiers_of(session: Session, child_id: str) -> set[tuple[str, str, str]]:
    rows = session.execute(
        select(ChildIdentifier.kind, ChildIdentifier.scope, ChildIdentifier.value).where(
            ChildIdentifier.child_id == child_id
        )
    )
    return {tuple(row) for row in rows}


def open_conflicts(session: Session) -> set[tuple[str, str, str]]:
    rows = session.scalars(
        select(ChildDuplicateSuggestion).where(ChildDuplicateSuggestion.resolved_at.is_(None))
    )
    return {(row.child_id, row.other_child_id, row.identifier_kind) for row in rows}


def test_the_typical_example_links_its_curp_and_comar_case(session: Session) -> None:
    typical = json.loads((EXAMPLES / "typical.json").read_text(encoding="utf-8"))
    child_id = push(session, "mx.chp.dif", "EXP-1", typical)
    assert child_id.startswith("nna_")
    assert identifiers_of(session, child_id) == {
        ("agency_local", "mx.chp.dif", "EXP-1"),
        ("curp", "", CURP),
    }
    assert [
        c.child_id
        for c in search_by_identifier(session, "comar", "comar-tap-2024-011873", agency_id=None)
    ] == [child_id]
    # Pushing the same record again is the same child, with nothing added.
    assert push(session, "mx.chp.dif", "EXP-1", typical) == child_id
    assert session.scalar(select(text("count(*)")).select_from(Child)) == 1


def test_a_known_curp_on_a_new_local_id_is_the_same_child(session: Session) -> None:
    first = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
    )
    # Another agency, lower case and spaces: still the same national identifier.
    second = push(
        session,
        "mx.fed.comar",
        "C-77",
        child_record("Kevin Josue", "Ejemplo", identifiers=(("curp", " eefk080702hnejcva9 "),)),
    )
    assert second == first
    assert ("agency_local", "mx.fed.comar", "C-77") in identifiers_of(session, first)
    assert open_conflicts(session) == set()


def test_a_unhcr_individual_number_links_but_a_case_number_does_not(session: Session) -> None:
    one = push(
        session,
        "mx.bc.dif",
        "T-1",
        child_record("Jean", "Exemple", identifiers=(("unhcr_individual", "MEX-23C045120"),)),
    )
    same = push(
        session,
        "mx.fed.inm",
        "I-9",
        child_record("Jean", "Exemple", identifiers=(("unhcr_individual", "MEX-23C045120"),)),
    )
    assert same == one
    # Siblings share a family's case number and stay two children.
    brother = push(
        session,
        "mx.bc.dif",
        "T-2",
        child_record("Luc", "Exemple", identifiers=(("unhcr_case", "MEX-24C000451"),)),
    )
    sister = push(
        session,
        "mx.bc.dif",
        "T-3",
        child_record("Marie", "Exemple", identifiers=(("unhcr_case", "MEX-24C000451"),)),
    )
    assert brother != sister
    found = search_by_identifier(session, "unhcr", "MEX-24C000451", agency_id=None)
    assert {c.child_id for c in found} == {brother, sister}
    assert {c.matched_on for c in found} == {("unhcr_case",)}
    assert open_conflicts(session) == set()


def test_a_childs_own_identifiers_are_kept_for_search_and_agency_local_ones_stay_scoped(
    session: Session,
) -> None:
    at_dif = push(
        session,
        "mx.chp.dif",
        "CHP-DEMO-0013",
        child_record(
            "Ana",
            "Muestra",
            identifiers=(("agency_local", "DEMO-0013"), ("inm_file", "INM/CHP/0042")),
        ),
    )
    # Another agency's child with the same local value is another child.
    at_comar = push(
        session,
        "mx.fed.comar",
        "COM-7",
        child_record("Luis", "Ejemplo", identifiers=(("agency_local", "demo-0013"),)),
    )
    assert at_dif != at_comar

    def found(
        kind: str, value: str, agency: str | None
    ) -> list[tuple[str, float, tuple[str, ...]]]:
        return [
            (c.child_id, c.score, c.matched_on)
            for c in search_by_identifier(session, kind, value, agency_id=agency)
        ]

    assert found("agency_local", "DEMO-0013", "mx.chp.dif") == [(at_dif, 1.0, ("agency_local",))]
    assert found("agency_local", "DEMO-0013", "mx.fed.comar") == [
        (at_comar, 1.0, ("agency_local",))
    ]
    assert found("agency_local", "DEMO-0013", "mx.fed.inm") == []
    assert found("agency_local", "DEMO-0013", None) == []
    assert found("inm_file", "inm/chp/0042", None) == [(at_dif, 0.9, ("inm_file",))]
    # Kept for search only: they link nothing, so the same file number on a new local id is
    # a new child (the search then answers both), and nothing is left as a conflict.
    sibling = push(
        session,
        "mx.fed.inm",
        "I-1",
        child_record("Luz", "Muestra", identifiers=(("inm_file", "INM/CHP/0042"),)),
    )
    assert sibling not in (at_dif, at_comar)
    assert {c for c, _, _ in found("inm_file", "INM/CHP/0042", None)} == {at_dif, sibling}
    # The agency's own number for the child links its own records only (its scope).
    assert identifiers_of(session, at_dif) == {
        ("agency_local", "mx.chp.dif", "CHP-DEMO-0013"),
        ("child_local", "mx.chp.dif", "DEMO-0013"),
    }
    assert open_conflicts(session) == set()


def test_an_agency_local_identifier_is_scoped_to_its_issuer(session: Session) -> None:
    document = child_record("Ana", "Muestra")
    document["child"]["identifiers"] = [
        {"type": "agency_local", "value": "EXP-9", "issuer_agency": "mx.fed.inm"}
    ]
    child_id = push(session, "mx.chp.dif", "CHP-1", document)
    found = search_by_identifier(session, "agency_local", "EXP-9", agency_id="mx.fed.inm")
    assert [c.child_id for c in found] == [child_id]
    assert search_by_identifier(session, "agency_local", "EXP-9", agency_id="mx.chp.dif") == []


def test_an_unknown_child_id_is_a_lookup_error(session: Session) -> None:
    with pytest.raises(LookupError):
        link_child(
            session,
            agency_id="mx.chp.dif",
            local_id="X",
            child_id="nna_nope",
            document=child_record("A"),
        )


def test_an_agency_link_wins_over_a_curp_and_leaves_a_conflict(session: Session) -> None:
    holder = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
    )
    # The same agency linked A-2 to another child earlier; now A-2 carries the CURP.
    other = push(session, "mx.chp.dif", "A-2", child_record("Kevin", "Ejemplo"))
    assert other != holder
    assert (
        push(
            session,
            "mx.chp.dif",
            "A-2",
            child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
        )
        == other
    )
    assert ("curp", "", CURP) in identifiers_of(session, holder)  # not moved
    assert open_conflicts(session) == {(other, holder, "curp")}
    # Pushing it again does not pile up suggestions.
    push(
        session,
        "mx.chp.dif",
        "A-2",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
    )
    assert len(open_conflicts(session)) == 1


def test_an_explicit_child_id_contradicting_a_curp_is_kept_with_a_conflict(
    session: Session,
) -> None:
    holder = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
    )
    chosen = push(session, "mx.tab.dif", "T-1", child_record("Ana", "Muestra"))
    linked = push(
        session,
        "mx.fed.inm",
        "INM-5",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
        child_id=chosen,
    )
    assert linked == chosen
    assert ("agency_local", "mx.fed.inm", "INM-5") in identifiers_of(session, chosen)
    assert open_conflicts(session) == {(chosen, holder, "curp")}


def test_the_profile_holds_normalised_identity_data_only_and_follows_pushes(
    session: Session,
) -> None:
    child_id = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record(
            "María José",
            "de la Cruz",
            "Núñez",
            dob="2012-03-04",
            nationality=("SV", "XX"),
            sex="female",
        ),
    )
    profile = session.scalars(select(ChildProfile)).one()
    assert (profile.child_id, profile.given_names, profile.surnames) == (
        child_id,
        "maria jose",
        "cruz nunez",
    )
    assert (profile.birth_exact, profile.nationalities, profile.sex) == (
        date(2012, 3, 4),
        "SV",
        "female",
    )
    keys = set(session.scalars(select(ChildNameKey.key)))
    assert keys == {"g:maria", "g:jose", "s:krus", "s:nunes"}
    stamp = profile.updated_at
    push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record(
            "María José", "de la Cruz", "Núñez", dob="2012-03-04", nationality=("SV",), sex="female"
        ),
    )
    session.refresh(profile)
    assert profile.updated_at == stamp  # unchanged identity data: nothing rewritten
    # A corrected name replaces the profile and its keys.
    push(session, "mx.chp.dif", "A-1", child_record("Maria", "Cruz", dob="2012-03-04", age=None))
    session.refresh(profile)
    assert (profile.given_names, profile.surnames, profile.sex) == ("maria", "cruz", None)
    assert set(session.scalars(select(ChildNameKey.key))) == {"g:maria", "s:krus"}


def test_an_estimated_age_is_stored_as_a_window(session: Session) -> None:
    push(
        session, "mx.chh.dif", "CH-1", child_record(alias="Chepe", age=13, assessed_on="2023-06-03")
    )
    profile = session.scalars(select(ChildProfile)).one()
    assert (profile.birth_earliest, profile.birth_latest, profile.birth_exact) == (
        date(2008, 6, 4),
        date(2011, 6, 3),
        None,
    )
    assert profile.alias == "chepe"


def test_search_by_profile_uses_the_name_key_index(session: Session) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite; PostgreSQL plans depend on statistics")
    engine = session.get_bind()
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        search_by_profile(session, KEVIN)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in seen if "FROM child_name_key" in s)
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    plan = " | ".join(
        str(row[-1]) for row in cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    )
    assert "INDEX ix_child_name_key_lookup (key=? AND birth_year_to>?)" in plan, plan
    assert "SCAN child_name_key" not in plan, plan


# -- search, duplicates, merge --------------------------------------------------------------


def test_search_by_profile_finds_spelling_variants_and_estimated_ages(session: Session) -> None:
    kevin = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin Josué", "Hernández", "García", dob="2010-05-14"),
    )
    estimated = push(
        session,
        "mx.chh.dif",
        "B-1",
        child_record("Yessenia", "López", age=12, assessed_on="2024-01-10"),
    )
    push(
        session, "mx.chp.dif", "A-2", child_record("Kevin", "Hernández", dob="2001-01-01")
    )  # too old
    found = search_by_profile(
        session,
        IdentityProfile(
            given=("kebin",),
            surnames=("hernandes",),
            birth=BirthWindow.on(date(2010, 5, 14)),
            nationalities=frozenset({"HN"}),
        ),
    )
    assert [c.child_id for c in found] == [kevin]
    assert found[0].matched_on[1:] == ("date_of_birth", "nationality")
    by_age = search_by_profile(
        session,
        IdentityProfile(
            given=("yesenia",), surnames=("lopez",), birth=BirthWindow.from_age(12, TODAY)
        ),
    )
    assert [c.child_id for c in by_age] == [estimated]
    assert "date_of_birth_estimated" in by_age[0].matched_on


def test_probable_duplicates_are_listed_not_merged(session: Session) -> None:
    a = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Jonathan", "Hernández", "López", dob="2011-02-03", sex="male"),
    )
    b = push(
        session,
        "mx.fed.inm",
        "I-1",
        child_record("Jhonatan", "Hernandes Lopez", dob="2011-03-02", sex="male"),
    )
    twin = push(
        session,
        "mx.chp.dif",
        "A-2",
        child_record("Fernando", "Hernández", "López", dob="2011-02-03", sex="male"),
    )
    push(
        session,
        "mx.chp.dif",
        "A-3",
        child_record("Jonathan", "Hernández", "López", dob="2004-02-03"),
    )
    pairs = probable_duplicates(session)
    assert [(p.child_id, p.other_child_id) for p in pairs] == [tuple(sorted((a, b)))]
    assert pairs[0].reason == "probable" and pairs[0].score is not None
    assert pairs[0].score >= DUPLICATE_MIN_SCORE
    assert "date_of_birth_swapped" in pairs[0].matched_on
    assert twin not in {pairs[0].child_id, pairs[0].other_child_id}
    assert (
        session.scalars(select(Child.merged_into).where(Child.merged_into.is_not(None))).all() == []
    )
    # A lower bar lists the twin brother too (same surnames and birthday, another name).
    lower = probable_duplicates(session, min_score=0.5)
    assert any(twin in (p.child_id, p.other_child_id) for p in lower)
    assert all(p.score is not None and 0.5 <= p.score < DUPLICATE_MIN_SCORE for p in lower[1:])


def test_search_and_duplicates_agree_on_numbered_aliases(session: Session) -> None:
    ids = {
        alias: push(
            session,
            "mx.chp.dif",
            f"SN-{number}",
            child_record(alias=alias, age=age, assessed_on="2024-05-01", nationality=("GT",)),
        )
        for number, (alias, age) in enumerate(
            [("Niño 7", 12), ("Niño 777", 14), ("Niño 77", 12), ("Niño 1000", 12)]
        )
    }
    assert probable_duplicates(session) == []
    found = search_by_profile(session, numbered("Niño 7", 12))
    assert [c.child_id for c in found] == [ids["Niño 7"]]
    again = push(
        session,
        "mx.fed.inm",
        "I-7",
        child_record(alias="Niño 07", age=13, assessed_on="2024-05-01", nationality=("GT",)),
    )
    [pair] = probable_duplicates(session)
    assert {pair.child_id, pair.other_child_id} == {ids["Niño 7"], again}
    assert "name" in pair.matched_on


def test_identifier_conflicts_are_listed_first(session: Session) -> None:
    holder = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin", "Ejemplo", identifiers=(("curp", CURP),)),
    )
    other = push(session, "mx.chp.dif", "A-2", child_record("Ana", "Muestra"))
    push(
        session, "mx.chp.dif", "A-2", child_record("Ana", "Muestra", identifiers=(("curp", CURP),))
    )
    pairs = probable_duplicates(session)
    assert pairs[0].reason == "conflict" and pairs[0].identifier_kind == "curp"
    assert {pairs[0].child_id, pairs[0].other_child_id} == {holder, other}


def test_merge_moves_identifiers_and_profiles_and_reads_follow(session: Session) -> None:
    keep = push(
        session,
        "mx.chp.dif",
        "A-1",
        child_record("Kevin", "Ejemplo", dob="2008-07-02", identifiers=(("curp", CURP),)),
    )
    gone = push(
        session,
        "mx.fed.inm",
        "I-1",
        child_record(
            "Kevin", "Ejemplo", dob="2008-07-02", identifiers=(("unhcr_case", "MEX-24C000451"),)
        ),
    )
    push(
        session,
        "mx.fed.inm",
        "I-1",
        child_record("Kevin", "Ejemplo", dob="2008-07-02", identifiers=(("curp", CURP),)),
    )
    assert open_conflicts(session) == {(gone, keep, "curp")}

    result = merge_children(session, keep, gone, reason="same CURP", actor_person="admin-1")
    session.commit()
    assert (
        not result.already_merged and result.identifiers_moved == 1 and result.profiles_moved == 1
    )
    assert result.audit_entry
    assert ("agency_local", "mx.fed.inm", "I-1") in identifiers_of(session, keep)
    assert identifiers_of(session, gone) == set()
    assert resolve_child_id(session, gone) == keep
    assert merged_child_ids(session, gone) == [keep, gone]
    assert open_conflicts(session) == set()
    assert [
        c.child_id for c in search_by_identifier(session, "unhcr", "MEX-24C000451", agency_id=None)
    ] == [keep]
    # Later pushes naming the merged child, or its old local id, land on the survivor.
    assert push(session, "mx.fed.inm", "I-1", child_record("Kevin", "Ejemplo")) == keep
    assert (
        push(session, "mx.tab.dif", "T-1", child_record("Kevin", "Ejemplo"), child_id=gone) == keep
    )

    entry = session.get(AuditEntry, result.audit_entry)
    assert entry is not None and (entry.action, entry.child_id) == ("child_merged", keep)
    assert b"same CURP" not in entry.entry and gone.encode() in entry.entry
    assert session.get(Child, gone).merge_reason == "same CURP"

    # Asking again changes nothing; the wrong merges are refused.
    assert merge_children(session, keep, gone).already_merged
    third = push(session, "mx.tab.dif", "T-9", child_record("Ana", "Muestra"))
    with pytest.raises(MergeRefused):
        merge_children(session, keep, keep)
    with pytest.raises(MergeRefused, match="merged into"):
        merge_children(session, gone, third)
    with pytest.raises(MergeRefused, match="already merged"):
        merge_children(session, third, gone)
    with pytest.raises(LookupError):
        merge_children(session, keep, "nna_nope")


def test_merging_a_survivor_flattens_the_chain(session: Session) -> None:
    a = push(session, "mx.chp.dif", "A-1", child_record("Ana", "Muestra"))
    b = push(session, "mx.chp.dif", "A-2", child_record("Ana", "Muestra"))
    c = push(session, "mx.chp.dif", "A-3", child_record("Ana", "Muestra"))
    merge_children(session, b, c)
    merge_children(session, a, b)
    session.commit()
    assert session.get(Child, c).merged_into == a  # one hop, not c -> b -> a
    assert sorted(merged_child_ids(session, c)) == sorted([a, b, c])
    with pytest.raises(LookupError):
        resolve_child_id(session, "nna_unknown")


# -- batches (bulk pushes) ----------------------------------------------------------------------


def test_a_batch_links_records_that_see_each_other(session: Session) -> None:
    from exchange.child_linking import LinkRequest, link_children

    holder = push(session, "mx.fed.inm", "I-1", child_record("Ana", "Muestra"))
    curp = (("curp", CURP),)
    results = link_children(
        session,
        agency_id="mx.chp.dif",
        requests=[
            LinkRequest("B-1", None, child_record("Kevin", "Ejemplo", identifiers=curp)),
            LinkRequest("B-2", None, child_record("Kevin J.", "Ejemplo", identifiers=curp)),
            LinkRequest("B-3", "nna_unknown", child_record("Luis", "Prueba")),
            LinkRequest("B-1", None, child_record("Kevin Josué", "Ejemplo", identifiers=curp)),
            LinkRequest("B-4", holder, child_record("Kevin", "Ejemplo", identifiers=curp)),
        ],
    )
    session.commit()
    kevin = results[0]
    assert results[1] == results[3] == kevin  # the CURP seen earlier in the batch; same local id
    assert isinstance(results[2], LookupError) and results[4] == holder
    assert open_conflicts(session) == {(holder, kevin, "curp")}
    profiles = {
        p.local_id: (p.child_id, p.given_names) for p in session.scalars(select(ChildProfile))
    }
    assert profiles == {
        "I-1": (holder, "ana"),
        "B-1": (kevin, "kevin josue"),  # the last version in the batch
        "B-2": (kevin, "kevin j"),
        "B-4": (holder, "kevin"),
    }
    assert "B-3" not in {value for _, _, value in identifiers_of(session, kevin)}


def test_blocking_finds_every_pair_a_naive_comparison_finds() -> None:
    """The blocks are a speed-up, not a filter: cross-check with comparing every pair."""
    from exchange.child_duplicates import probable_pairs

    rng = random.Random(20240601)
    given = ["kevin", "kebin", "jonathan", "jhonatan", "yesenia", "yessenia", "ana", "maria"]
    surnames = ["hernandez", "hernandes", "lopez", "garcia", "garsia", "cruz"]
    profiles = []
    for number in range(250):
        day = date(2008, 1, 1) + timedelta(days=rng.randrange(3 * 365))
        if rng.random() < 0.3:  # a typo, a swap or an estimation
            day = rng.choice([day.replace(day=min(day.month, 28), month=min(day.day, 12)), day])
        birth = (
            BirthWindow.from_age(rng.randrange(10, 16), date(2023, 6, 1))
            if rng.random() < 0.2
            else BirthWindow.on(day)
        )
        profile = IdentityProfile(
            given=tuple(rng.sample(given, rng.choice([1, 2]))),
            surnames=tuple(rng.sample(surnames, rng.choice([1, 2]))),
            birth=birth,
            sex=rng.choice(["female", "male", None]),
            nationalities=frozenset({rng.choice(["HN", "GT"])}),
        )
        profiles.append((f"nna_{number:04d}", profile))
    naive = set()
    for i, (left_id, left) in enumerate(profiles):
        for right_id, right in profiles[i + 1 :]:
            match = score_match(left, right)
            assert match == score_match(right, left)  # symmetric, so block order cannot matter
            if match.score >= DUPLICATE_MIN_SCORE:
                naive.add((left_id, right_id))
    assert len(naive) > 10, "the sample should contain duplicates"
    assert set(probable_pairs(profiles, DUPLICATE_MIN_SCORE)) == naive


def test_a_batch_updates_each_changed_profile(session: Session) -> None:
    from exchange.child_linking import LinkRequest, link_children

    names = {"C-1": "Ana", "C-2": "Luis", "C-3": "Rosa"}
    first = [
        LinkRequest(local, None, child_record(given, "Muestra")) for local, given in names.items()
    ]
    ids = link_children(session, agency_id="mx.chp.dif", requests=first)
    session.commit()
    corrected = {"C-1": "Ana Lucía", "C-2": "Luis", "C-3": "Rosa María"}
    again = [
        LinkRequest(local, None, child_record(given, "Muestra"))
        for local, given in corrected.items()
    ]
    assert link_children(session, agency_id="mx.chp.dif", requests=again) == ids
    session.commit()
    stored = {p.local_id: p.given_names for p in session.scalars(select(ChildProfile))}
    assert stored == {"C-1": "ana lucia", "C-2": "luis", "C-3": "rosa maria"}
    keys = session.execute(
        select(ChildProfile.local_id, ChildNameKey.key).join(
            ChildNameKey, ChildNameKey.profile_id == ChildProfile.id
        )
    ).all()
    assert sorted(keys) == [
        ("C-1", "g:ana"),
        ("C-1", "g:lusia"),
        ("C-1", "s:muestra"),
        ("C-2", "g:luis"),
        ("C-2", "s:muestra"),
        ("C-3", "g:maria"),
        ("C-3", "g:rosa"),
        ("C-3", "s:muestra"),
    ]
