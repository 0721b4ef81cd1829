"""A CURP (or UNHCR individual number, or the agency's own number for the child) links a new
record to the child it names only if the record does not clearly describe another child: a
mistyped CURP, or siblings given one, must not join two children's records (and so their
consents, withholds and access requests). Such a record starts a child of its own, a conflict
suggestion names both for a person to decide, and the push (single or bulk) is warned in
Spanish and English, with the link recorded in its audit entry. A CURP that codes another date
of birth or sex than its record states is warned of too."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, changed, envelope, push, push_bulk, rows
from sqlalchemy import select

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.child_duplicates import merge_children, probable_duplicates
from exchange.child_matching import (
    BirthWindow,
    IdentityProfile,
    clearly_another_child,
    curp_contradictions,
    profile_from_child,
)
from exchange.children import ChildDuplicateSuggestion, ChildIdentifier

DIF = "mx.chp.dif"
COMAR = "mx.fed.comar"
CURP = "EEFK161117MNEJCVA5"  # coded: born 2016-11-17, female (M), born abroad (NE)
KEILA, MARIA = "DIF-07-2024-0001825", "DIF-07-2024-0024105"


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, DIF)


def case(
    given: str,
    first: str,
    second: str | None = None,
    *,
    sex: str = "female",
    born: str | None = "2016-11-17",
    identifiers: tuple[tuple[str, str], ...] = (("curp", CURP),),
) -> dict[str, Any]:
    names = {"given_names": given, "first_surname": first}
    if second:
        names["second_surname"] = second
    child: dict[str, Any] = {"names": names, "sex": sex, "nationality": ["MX"]}
    if born:
        child["date_of_birth"] = born
    else:
        child["age_estimation"] = {"estimated_age_years": 8, "assessed_on": "2024-11-17"}
    child["identifiers"] = [{"type": kind, "value": value} for kind, value in identifiers]
    return {"case": {"status": "open"}, "child": child}


def keila(**changes: Any) -> dict[str, Any]:
    return case("Keila", "Cruz", **changes)


def maria(**changes: Any) -> dict[str, Any]:
    return case("María José", "Ficticio", **changes)


def open_suggestions(app: Flask) -> set[tuple[frozenset[str], str, str]]:
    found = rows(
        app,
        select(
            ChildDuplicateSuggestion.child_id,
            ChildDuplicateSuggestion.other_child_id,
            ChildDuplicateSuggestion.reason,
            ChildDuplicateSuggestion.identifier_kind,
        ).where(ChildDuplicateSuggestion.resolved_at.is_(None)),
    )
    return {(frozenset((a, b)), reason, kind) for a, b, reason, kind in found}


def audited(app: Flask, entry_id: str) -> dict[str, Any]:
    [(entry,)] = rows(app, select(AuditEntry.entry).where(AuditEntry.id == entry_id))
    return dict(json.loads(entry))


def stored(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


# -- the report's case ------------------------------------------------------------------------


def test_one_curp_on_two_clearly_different_children_links_neither_to_the_other(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = stored(push(client, dif, envelope(KEILA, keila())))
    assert "warnings" not in first
    second = stored(push(client, dif, envelope(MARIA, maria())))
    assert second["child_id"] != first["child_id"]
    assert open_suggestions(app) == {
        (frozenset((first["child_id"], second["child_id"])), "conflict", "curp")
    }
    [warning] = second["warnings"]
    assert warning["code"] == "identifier_names_another_child"
    assert warning["pointer"] == "/data/child/identifiers/0/value"
    assert first["child_id"] in warning["es"] and first["child_id"] in warning["en"]
    assert "CURP" in warning["es"] and "claramente" in warning["es"]
    assert "clearly differ" in warning["en"] and second["child_id"] in warning["en"]
    assert CURP not in warning["es"] + warning["en"]
    # The push's audit entry says that the record was linked apart, and from which child.
    entry = audited(app, second["audit_entry"])
    assert entry["child_id"] == second["child_id"]
    assert entry["reason_code"] == f"linked_apart.curp.{first['child_id']}"
    assert "reason_code" not in audited(app, first["audit_entry"])
    # The CURP stays with the first child; this agency's records with it find the second.
    links = rows(
        app,
        select(ChildIdentifier.scope, ChildIdentifier.child_id).where(
            ChildIdentifier.kind == "curp", ChildIdentifier.value == CURP
        ),
    )
    assert sorted(links) == [("", first["child_id"]), (DIF, second["child_id"])]


def test_later_records_of_either_child_join_their_own_child(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    keila_child = stored(push(client, dif, envelope(KEILA, keila())))["child_id"]
    maria_child = stored(push(client, dif, envelope(MARIA, maria())))["child_id"]
    again = stored(push(client, dif, envelope("DIF-07-2024-0030001", maria())))
    assert again["child_id"] == maria_child and "warnings" not in again
    other = stored(push(client, dif, envelope("DIF-07-2024-0030002", case("Keyla", "Cruz"))))
    # The CURP's rightful holder links to the child the CURP leads to: no warning, though
    # the agency's own link named María José's child (skipped).
    assert other["child_id"] == keila_child and "warnings" not in other
    # A new version of either record keeps its child, and nothing piles up.
    stored(push(client, dif, envelope(MARIA, changed(maria(), "v2"))))
    assert open_suggestions(app) == {(frozenset((keila_child, maria_child)), "conflict", "curp")}


def test_the_same_child_written_differently_still_links(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = stored(push(client, dif, envelope(KEILA, keila())))
    for local_id, data in (
        ("A-2", case("Keyla", "Cruz", "Pérez")),  # a sound-alike, a second surname
        ("A-3", case("K.", "Cruz")),  # an initial
        ("A-4", case("Keila", "Cruz", born=None)),  # an age estimation instead of the date
    ):
        answer = stored(push(client, dif, envelope(local_id, data)))
        assert answer["child_id"] == first["child_id"], local_id
        assert "warnings" not in answer
    assert open_suggestions(app) == set()


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(keila(sex="male"), id="another-sex"),
        pytest.param(keila(born="2009-03-02"), id="born-years-apart"),
        pytest.param(case("Keila", "Ejemplo"), id="another-surname"),
    ],
)
def test_another_sex_or_birth_or_surname_is_another_child(
    app: Flask, client: FlaskClient, dif: AgencyClient, other: dict[str, Any]
) -> None:
    first = stored(push(client, dif, envelope(KEILA, keila())))
    second = stored(push(client, dif, envelope("A-2", other)))
    assert second["child_id"] != first["child_id"]
    codes = {w["code"] for w in second["warnings"]}
    assert "identifier_names_another_child" in codes


def test_a_unhcr_number_and_the_agencys_own_number_are_checked_too(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    for kind, value, stored_kind in (
        ("unhcr_individual", "MEX-23C045120", "unhcr"),
        ("agency_local", "FAM-0042", "child_local"),
    ):
        mine = ((kind, value),)
        first = stored(push(client, dif, envelope(f"{kind}-1", keila(identifiers=mine))))
        second = stored(push(client, dif, envelope(f"{kind}-2", maria(identifiers=mine))))
        assert second["child_id"] != first["child_id"], kind
        [warning] = second["warnings"]
        assert warning["pointer"] == "/data/child/identifiers/0/value"
        assert audited(app, second["audit_entry"])["reason_code"] == (
            f"linked_apart.{stored_kind}.{first['child_id']}"
        )
        pair = frozenset((first["child_id"], second["child_id"]))
        assert (pair, "conflict", stored_kind) in open_suggestions(app)


def test_another_agency_that_may_know_the_child_is_checked_as_well(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    comar = add_agency(app, COMAR)
    first = stored(push(client, comar, envelope("C-1", keila())))
    # COMAR holds a record of the child: its own next record with the CURP is checked.
    second = stored(push(client, comar, envelope("C-2", maria())))
    assert second["child_id"] != first["child_id"]
    assert second["warnings"][0]["code"] == "identifier_names_another_child"


# -- bulk pushes --------------------------------------------------------------------------------


def test_a_bulk_push_links_apart_within_its_batch_and_says_so_per_line(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    response, lines = push_bulk(
        client,
        dif,
        [
            envelope(KEILA, keila()),
            envelope(MARIA, maria()),
            envelope("DIF-07-2024-0030001", maria()),  # María José again: her child
            envelope("DIF-07-2024-0030002", keila()),  # Keila again: hers
        ],
    )
    assert response.status_code == 200
    assert [line["status"] for line in lines] == ["stored"] * 4
    keila_child, maria_child = lines[0]["child_id"], lines[1]["child_id"]
    assert keila_child != maria_child
    assert lines[2]["child_id"] == maria_child and lines[3]["child_id"] == keila_child
    assert "warnings" not in lines[0] and "warnings" not in lines[2]
    [warning] = lines[1]["warnings"]
    assert warning["code"] == "identifier_names_another_child"
    assert warning["es"] and warning["en"] and keila_child in warning["en"]
    assert audited(app, lines[1]["audit_entry"])["reason_code"] == (
        f"linked_apart.curp.{keila_child}"
    )
    assert open_suggestions(app) == {(frozenset((keila_child, maria_child)), "conflict", "curp")}


def test_a_bulk_push_checks_against_the_children_already_stored(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = stored(push(client, dif, envelope(KEILA, keila())))
    _, lines = push_bulk(
        client, dif, [envelope(MARIA, maria()), envelope("A-3", case("Keyla", "Cruz"))]
    )
    assert lines[0]["child_id"] != first["child_id"]
    assert lines[0]["warnings"][0]["code"] == "identifier_names_another_child"
    assert lines[1]["child_id"] == first["child_id"]


# -- a person decides -----------------------------------------------------------------------------


def test_the_pair_waits_for_a_person_who_may_merge_it(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first = stored(push(client, dif, envelope(KEILA, keila())))
    second = stored(push(client, dif, envelope(MARIA, maria())))
    with app.app_context(), db.database(app).sessions() as session:
        [pair] = probable_duplicates(session)
        assert pair.reason == "conflict" and pair.identifier_kind == "curp"
        assert {pair.child_id, pair.other_child_id} == {first["child_id"], second["child_id"]}
        merge_children(session, first["child_id"], second["child_id"], actor_person=None)
        session.commit()
        assert probable_duplicates(session) == []
    # After the merge, the agency's records with the CURP are of the one child.
    third = stored(push(client, dif, envelope("A-9", maria())))
    assert third["child_id"] == first["child_id"] and "warnings" not in third


# -- a CURP that contradicts its own record ------------------------------------------------------


def test_a_curp_coding_another_birth_or_sex_than_its_record_is_warned_of(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    answer = stored(push(client, dif, envelope("A-1", keila(born="2016-11-18", sex="male"))))
    [warning] = answer["warnings"]
    assert warning["code"] == "curp_contradicts_record"
    assert warning["pointer"] == "/data/child/identifiers/0/value"
    assert "2016-11-17" in warning["es"] and "2016-11-18" in warning["en"]
    assert "mujer" in warning["es"] and "hombre" in warning["es"]
    assert "female" in warning["en"] and "male" in warning["en"]
    # A warning only: the record is stored and linked, and its audit entry is a plain push.
    assert "reason_code" not in audited(app, answer["audit_entry"])
    agreeing = stored(push(client, dif, envelope("A-2", case("Ana", "Muestra", identifiers=()))))
    assert "warnings" not in agreeing


def test_a_curp_and_a_clear_other_child_give_both_warnings(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    stored(push(client, dif, envelope(KEILA, keila())))
    answer = stored(push(client, dif, envelope(MARIA, maria(sex="male"))))
    assert [w["code"] for w in answer["warnings"]] == [
        "identifier_names_another_child",
        "curp_contradicts_record",
    ]


def test_an_idempotent_replay_answers_the_warnings_again(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    stored(push(client, dif, envelope(KEILA, keila())))
    body = envelope(MARIA, maria())
    first = stored(push(client, dif, body, **{"Idempotency-Key": "k-1"}))
    replay = push(client, dif, body, **{"Idempotency-Key": "k-1"})
    assert replay.get_json()["warnings"] == first["warnings"]


# -- the tests themselves (no database) -----------------------------------------------------------


def profile(data: dict[str, Any]) -> IdentityProfile:
    return profile_from_child(data["child"], date(2024, 11, 17))


def test_what_clearly_another_child_is() -> None:
    base = profile(keila())
    assert clearly_another_child(base, profile(maria()))
    assert clearly_another_child(base, profile(keila(sex="male")))
    assert clearly_another_child(base, profile(keila(born="2010-01-01")))
    assert not clearly_another_child(base, profile(case("Keyla", "Cruz", "Pérez")))
    assert not clearly_another_child(base, profile(keila(born="2016-11-18")))  # a typo
    assert not clearly_another_child(base, IdentityProfile())  # nothing to weigh
    assert not clearly_another_child(base, IdentityProfile(sex="female"))


def test_what_a_curp_codes() -> None:
    def said(curp: str, born: str | None, sex: str | None) -> tuple[tuple[str, str, str], ...]:
        birth = BirthWindow.on(date.fromisoformat(born)) if born else None
        return curp_contradictions(curp, IdentityProfile(birth=birth, sex=sex))

    assert said(CURP, "2016-11-17", "female") == ()
    assert said(CURP, "1916-11-17", "female") == (("date_of_birth", "2016-11-17", "1916-11-17"),)
    # A digit in position 17: born before 2000.
    assert said("EEFK991117HNEJCV05", "1999-11-17", "male") == ()
    assert said("EEFK991117HNEJCV05", None, "female") == (("sex", "male", "female"),)
    # X codes no sex; a date that does not exist, or no CURP at all, contradicts nothing.
    assert said("EEFK161117XNEJCVA5", "2016-11-17", "male") == ()
    assert said("EEFK160231MNEJCVA5", "2016-11-17", "female") == ()
    assert said("not a curp", "2016-11-17", "male") == ()
