"""Fixes to CURP linking found by an outside check: twins or siblings sharing a first given
name and given one CURP are two children; the CURP's rightful holder is not warned on each
push once a sibling was linked apart with it; a third child behind one CURP keeps one child
id across its records; a CURP mistyped by one or two characters still lists two children as
probable duplicates (named, not counted against them); and the contradiction warning reads
well in both languages."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, push, push_bulk, rows
from sqlalchemy import select

from exchange import db
from exchange.child_duplicates import near_identifiers, probable_duplicates
from exchange.child_matching import clearly_another_child, given_names_differ, profile_from_child
from exchange.children import ChildDuplicateSuggestion

DIF = "mx.chp.dif"
TAPACHULA = "mx.chp.tapachula.dif"
TWINS_CURP = "RAMJ130707HCSMRSA1"  # coded: born 2013-07-07, male
SISTERS_CURP = "SAVL090202MCSNRCA5"  # coded: born 2009-02-02, female


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, DIF)


def child(
    given: str,
    first: str,
    second: str,
    born: str,
    sex: str,
    curp: str,
) -> dict[str, Any]:
    names = {"given_names": given, "first_surname": first, "second_surname": second}
    return {
        "case": {"status": "open"},
        "child": {
            "names": names,
            "date_of_birth": born,
            "sex": sex,
            "nationality": ["MX"],
            "identifiers": [{"type": "curp", "value": curp}],
        },
    }


def twin(given: str) -> dict[str, Any]:
    return child(given, "Ramírez", "Mendoza", "2013-07-07", "male", TWINS_CURP)


def sister(given: str, born: str) -> dict[str, Any]:
    return child(given, "Santos", "Vera", born, "female", SISTERS_CURP)


def stored(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def codes(answer: dict[str, Any]) -> list[str]:
    return [warning["code"] for warning in answer.get("warnings", [])]


def open_conflicts(app: Flask) -> set[frozenset[str]]:
    found = rows(
        app,
        select(ChildDuplicateSuggestion.child_id, ChildDuplicateSuggestion.other_child_id).where(
            ChildDuplicateSuggestion.resolved_at.is_(None),
            ChildDuplicateSuggestion.reason == "conflict",
        ),
    )
    return {frozenset(pair) for pair in found}


# -- 1. twins sharing a first given name ---------------------------------------------------------


def test_twins_sharing_a_first_name_and_one_curp_are_two_children(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    luis = stored(push(client, dif, envelope("TW1", twin("José Luis"))))
    antonio = stored(push(client, dif, envelope("TW2", twin("José Antonio"))))
    assert antonio["child_id"] != luis["child_id"]
    assert codes(antonio) == ["identifier_names_another_child"]
    assert luis["child_id"] in antonio["warnings"][0]["en"]
    assert open_conflicts(app) == {frozenset((luis["child_id"], antonio["child_id"]))}
    # Each twin's later records find their own child, unwarned.
    again = stored(push(client, dif, envelope("TW3", twin("José Antonio"))))
    assert again["child_id"] == antonio["child_id"] and codes(again) == []
    later = stored(push(client, dif, envelope("TW4", twin("José Luis"))))
    assert later["child_id"] == luis["child_id"] and codes(later) == []


def test_given_names_differ_only_when_each_side_has_a_word_of_its_own() -> None:
    def differ(one: str, other: str) -> bool:
        return given_names_differ(one.lower().split(), other.lower().split())

    assert differ("jose luis", "jose antonio")
    assert differ("andres", "angel")
    assert not differ("jose luis", "jose")  # one name left out
    assert not differ("jose luis", "luis")
    assert not differ("jose luis", "j luis")  # an initial
    assert not differ("jose luis", "jose luiz")  # a typo
    assert not differ("jose luis", "luis jose")  # another order
    assert not differ("jose luis", "")  # nothing to weigh

    def profile(given: str) -> Any:
        return profile_from_child(twin(given)["child"], date(2026, 11, 1))

    assert clearly_another_child(profile("José Luis"), profile("José Antonio"))
    assert not clearly_another_child(profile("José Luis"), profile("Jose Luís"))
    assert not clearly_another_child(profile("María Guadalupe"), profile("Ma. Guadalupe"))


# -- 2. the CURP's rightful holder is not warned -------------------------------------------------


def test_the_curps_rightful_holder_is_not_warned_on_later_pushes(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lucia = stored(push(client, dif, envelope("S-1", sister("Lucía", "2009-02-02"))))
    fernanda = stored(push(client, dif, envelope("S-2", sister("Fernanda", "2011-05-05"))))
    assert codes(fernanda)[0] == "identifier_names_another_child"
    # The agency's own link for the CURP now names Fernanda's child: Lucía's next record
    # skips it and links to the child the CURP leads to, hers — nothing to warn of.
    later = stored(push(client, dif, envelope("S-3", sister("Lucia", "2009-02-02"))))
    assert later["child_id"] == lucia["child_id"] and "warnings" not in later
    _, lines = push_bulk(client, dif, [envelope("S-4", sister("Lucía", "2009-02-02"))])
    assert lines[0]["child_id"] == lucia["child_id"] and "warnings" not in lines[0]
    assert open_conflicts(app) == {frozenset((lucia["child_id"], fernanda["child_id"]))}


# -- 4. a third child behind one CURP ------------------------------------------------------------


def test_a_third_child_behind_one_curp_keeps_one_child_id(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lucia = stored(push(client, dif, envelope("S-1", sister("Lucía", "2009-02-02"))))
    fernanda = stored(push(client, dif, envelope("S-2", sister("Fernanda", "2011-05-05"))))
    gabriela = stored(push(client, dif, envelope("S-3", sister("Gabriela", "2013-08-08"))))
    assert len({lucia["child_id"], fernanda["child_id"], gabriela["child_id"]}) == 3
    warned = " ".join(
        w["en"] for w in gabriela["warnings"] if w["code"] == "identifier_names_another_child"
    )
    assert lucia["child_id"] in warned and fernanda["child_id"] in warned
    # Her next records, with new local ids, join her child (found by the agency's records
    # stating the CURP), unwarned; her sisters' still join theirs.
    for local_id in ("S-4", "S-5"):
        again = stored(push(client, dif, envelope(local_id, sister("Gabriela", "2013-08-08"))))
        assert again["child_id"] == gabriela["child_id"]
        # Her CURP is her sister's: it codes another birth date, and says so — no more.
        assert codes(again) == ["curp_contradicts_record"]
    assert (
        stored(push(client, dif, envelope("S-6", sister("Fernanda", "2011-05-05"))))["child_id"]
        == (fernanda["child_id"])
    )
    assert (
        stored(push(client, dif, envelope("S-7", sister("Lucía", "2009-02-02"))))["child_id"]
        == (lucia["child_id"])
    )


def test_a_third_child_twice_in_one_batch_is_one_child(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    _, lines = push_bulk(
        client,
        dif,
        [
            envelope("S-1", sister("Lucía", "2009-02-02")),
            envelope("S-2", sister("Fernanda", "2011-05-05")),
            envelope("S-3", sister("Gabriela", "2013-08-08")),
            envelope("S-4", sister("Gabriela", "2013-08-08")),
        ],
    )
    assert [line["status"] for line in lines] == ["stored"] * 4
    assert len({line["child_id"] for line in lines[:3]}) == 3
    assert lines[3]["child_id"] == lines[2]["child_id"]
    assert codes(lines[3]) == ["curp_contradicts_record"]


# -- 3. a CURP mistyped by a character -----------------------------------------------------------


def pushed_by_two_agencies(
    app: Flask, client: FlaskClient, dif: AgencyClient, curp: str
) -> set[str]:
    tapachula = add_agency(app, TAPACHULA)
    juana = child("Juana", "De la Cruz", "Hernández", "2011-08-08", "female", "CUHJ110808MCSRRNA2")
    first = stored(push(client, dif, envelope("V1", juana)))
    juana["child"]["identifiers"][0]["value"] = curp
    second = stored(push(client, tapachula, envelope("T2", juana)))
    return {first["child_id"], second["child_id"]}


def test_children_whose_curps_are_a_typo_apart_are_probable_duplicates(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    pair = pushed_by_two_agencies(app, client, dif, "CUHJ110808MCSRRNA3")
    assert len(pair) == 2
    with app.app_context(), db.database(app).sessions() as session:
        [found] = [
            p for p in probable_duplicates(session) if {p.child_id, p.other_child_id} == pair
        ]
    assert found.reason == "probable" and (found.score or 0) >= 0.85
    assert found.identifier_conflicts == () and found.identifier_near == ("curp",)
    shown = found.to_json()
    assert shown["identifier_near"] == ["curp"] and shown["identifier_conflicts"] == []


def test_children_whose_curps_differ_more_still_score_less(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    pair = pushed_by_two_agencies(app, client, dif, "CUHJ110808MCSRRXB7")  # three apart
    with app.app_context(), db.database(app).sessions() as session:
        assert all({p.child_id, p.other_child_id} != pair for p in probable_duplicates(session))
        [found] = [
            p for p in probable_duplicates(session, 0.4) if {p.child_id, p.other_child_id} == pair
        ]
    assert found.identifier_conflicts == ("curp",) and found.identifier_near == ()


def test_which_identifiers_are_near() -> None:
    assert near_identifiers("curp", {"CUHJ110808MCSRRNA2"}, {"CUHJ110808MCSRRNA3"})
    assert near_identifiers("curp", {"CUHJ110808MCSRRNA2"}, {"CUHJ110808MCSRRAN2"})  # a swap
    assert near_identifiers("curp", {"CUHJ110808MCSRRNA2"}, {"CUHJ110808MCSRRNB3"})
    assert not near_identifiers("curp", {"CUHJ110808MCSRRNA2"}, {"CUHJ110808MCSRRXB7"})
    assert not near_identifiers("curp", {"CUHJ110808MCSRRNA2"}, {"CUHJ110808MCSRRNA"})  # length
    assert not near_identifiers("unhcr", {"MEX-26C000101"}, {"MEX-26C000102"})


def test_the_duplicates_list_names_curps_a_typo_apart() -> None:
    from exchange.child_duplicates import DuplicatePair
    from exchange.cli.children import _pair_columns

    pair = DuplicatePair("nna_a", "nna_b", 1.0, "probable", identifier_near=("curp",))
    assert _pair_columns(pair, "en")[-1] == "CURPs one or two characters apart (mistyped?)"
    assert _pair_columns(pair, "es")[-1] == "CURP a una o dos letras (¿mal escrita?)"


# -- text ----------------------------------------------------------------------------------------


def test_the_curp_contradiction_reads_well_in_both_languages(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    answer = stored(push(client, dif, envelope("C-1", sister("Lucía", "2009-02-03"))))
    [warning] = answer["warnings"]
    assert warning["code"] == "curp_contradicts_record"
    assert "born on" not in warning["en"]
    assert warning["en"].startswith(
        "the CURP gives date of birth 2009-02-02 (the record says 2009-02-03)"
    )
    assert warning["es"].startswith(
        "la CURP indica fecha de nacimiento 2009-02-02 (el expediente dice 2009-02-03)"
    )


def test_the_curp_format_hint_gives_a_consistent_curp() -> None:
    from exchange.child_matching import BirthWindow, IdentityProfile, curp_contradictions
    from schemas.wording import PATTERN_HINTS

    example = PATTERN_HINTS["curp"][1].split()[-1]
    assert example in PATTERN_HINTS["curp"][0]
    # Born 2009-03-15 (a letter in position 17: after 1999), female (M), its check digit right.
    born_2009 = IdentityProfile(birth=BirthWindow.on(date(2009, 3, 15)), sex="female")
    assert curp_contradictions(example, born_2009) == ()
    values = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
    total = sum(values.index(char) * (18 - index) for index, char in enumerate(example[:17]))
    assert example[17] == str((10 - total % 10) % 10)
