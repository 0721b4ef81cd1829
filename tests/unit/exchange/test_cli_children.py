"""``puente children duplicates`` and ``puente children merge`` as a hub administrator runs them."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from exchange import child_matching, db
from exchange.agencies import register_agency
from exchange.audit_log import AuditEntry
from exchange.children import (
    Child,
    ChildCaseNumber,
    ChildDistinctPair,
    ChildDuplicateSuggestion,
    ChildIdentifier,
    ChildNameKey,
    ChildProfile,
    link_child,
    resolve_child_id,
)
from exchange.cli import main
from exchange.cli.children import ALIKE_IN
from exchange.people import add_person
from tests.conftest import BACKENDS, backend_database, make_hub

CURP = "EEFK080702HNEJCVA9"
REASON = ("--reason", "same birth certificate")


@pytest.fixture(scope="module", params=BACKENDS)
def module_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, dict[str, str]]]:
    """One migrated hub per backend, and the environment that points ``puente`` at it."""
    folder = tmp_path_factory.mktemp("cli-children")
    with backend_database(request.param, folder) as url:
        app = make_hub(folder, url)
        register_deciders(app)
        yield app, {"PUENTE_INSTANCE_PATH": str(folder / "instance"), "PUENTE_DATABASE_URL": url}
        app.extensions["puente.db"].engine.dispose()


#: The registered people ``--by`` may name: administrators (``ana.admin``, and the login name
#: the option defaults to) and one who is not.
ADMINISTRATORS = ("ana.admin", getpass.getuser())
CLERK = "ana.clerk"


def register_deciders(app: Flask) -> None:
    with app.app_context(), db.database(app).sessions.begin() as session:
        register_agency(
            session,
            "mx.fed.pfpnna",
            "PFPNNA",
            "federal",
            "00",
            ["admin"],
            kind="federal_child_protection",
        )
        for person_id, role in [
            *((a, "administrator") for a in ADMINISTRATORS),
            (CLERK, "consent_officer"),
        ]:
            add_person(
                session,
                name=person_id,
                email=f"{person_id}@pfpnna.example",
                agency_id="mx.fed.pfpnna",
                roles=[role],
                person_id=person_id,
            )


def empty_child_index(session: Session) -> None:
    for model in (
        ChildDistinctPair,
        ChildNameKey,
        ChildProfile,
        ChildDuplicateSuggestion,
        ChildCaseNumber,
        ChildIdentifier,
    ):
        session.execute(delete(model))
    session.execute(update(Child).values(merged_into=None))
    session.execute(delete(Child))


def child(given: str, first: str, dob: str, **extra: Any) -> dict[str, Any]:
    return {
        "child": {
            "names": {"given_names": given, "first_surname": first},
            "date_of_birth": dob,
            "nationality": ["HN"],
            **extra,
        }
    }


@pytest.fixture
def hub(module_hub: tuple[Flask, dict[str, str]]) -> tuple[Flask, dict[str, str], dict[str, str]]:
    """An emptied child index with: a probable duplicate pair, an identifier conflict pair,
    and a child unlike any other."""
    app, env = module_hub
    with app.app_context(), db.database(app).sessions.begin() as session:
        empty_child_index(session)

        def push(agency: str, local_id: str, document: dict[str, Any]) -> str:
            return link_child(
                session, agency_id=agency, local_id=local_id, child_id=None, document=document
            )

        curp = [{"type": "curp", "value": CURP}]
        ids = {
            "jonathan": push(
                "mx.chp.dif", "A-1", child("Jonathan", "Hernández López", "2011-02-03")
            ),
            "jhonatan": push("mx.fed.inm", "I-1", child("Jhonatan", "Hernandes", "2011-02-03")),
            "kevin": push(
                "mx.chp.dif", "A-2", child("Kevin", "Ejemplo", "2008-07-02", identifiers=curp)
            ),
            "ana": push("mx.chp.dif", "A-3", child("Ana Lucía", "Muestra", "2016-05-14")),
        }
        # The agency's A-3 now carries Kevin's CURP: kept on Ana, with a conflict to review.
        push("mx.chp.dif", "A-3", child("Ana Lucía", "Muestra", "2016-05-14", identifiers=curp))
    return app, env, ids


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, "PUENTE_LANG": "en"})


def test_duplicates_lists_conflicts_then_probable_pairs(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    _app, env, ids = hub
    result = run(env, "children", "duplicates", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed["min_score"] == 0.85
    pairs = [
        ({p["child_id"], p["other_child_id"]}, p["reason"], p["identifier_kind"])
        for p in listed["duplicates"]
    ]
    assert pairs == [
        ({ids["kevin"], ids["ana"]}, "conflict", "curp"),
        ({ids["jonathan"], ids["jhonatan"]}, "probable", None),
    ]
    probable = listed["duplicates"][1]
    assert probable["score"] >= 0.85 and "name" in probable["matched_on"]

    strict = json.loads(run(env, "children", "duplicates", "--json", "--min-score", "0.99").output)
    assert [p["reason"] for p in strict["duplicates"]] == ["conflict"]  # conflicts always listed

    conflict = listed["duplicates"][0]
    assert conflict["raised_by"] == "mx.chp.dif" and conflict["raised_at"]
    assert conflict["agencies"] == [["mx.chp.dif"], ["mx.chp.dif"]]
    assert sorted(map(tuple, probable["agencies"])) == [("mx.chp.dif",), ("mx.fed.inm",)]

    text_result = run(env, "children", "duplicates")
    assert text_result.exit_code == 0
    header, first, second = text_result.stdout.splitlines()
    assert header.split("  ")[:4] == ["child A", "child B", "score", "reason"]
    assert first.split("  ")[3] == "CURP conflict"
    assert first.split("  ")[6].startswith("raised by mx.chp.dif on ")
    assert second.split("  ")[3] == "probable" and "name" in second.split("  ")[4]
    assert "A conflict: an agency pushed an identifier" in text_result.stderr
    spanish = CliRunner().invoke(main, ["children", "duplicates", "--lang", "es"], env=env)
    header, first, _second = spanish.stdout.splitlines()
    assert header.startswith("NNA A  NNA B  puntaje  motivo")
    assert first.split("  ")[3] == "conflicto de CURP"
    assert "planteado por mx.chp.dif el " in first
    assert "Un conflicto: una institución envió" in spanish.stderr


def test_merge_moves_the_child_and_is_audited(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    app, env, ids = hub
    keep, gone = ids["jonathan"], ids["jhonatan"]
    result = run(
        env,
        "children",
        "merge",
        keep,
        gone,
        "--reason",
        "same birth certificate",
        "--by",
        "ana.admin",
        "--json",
    )
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)
    assert merged["child_id"] == keep and merged["merged_child_id"] == gone
    assert (merged["already_merged"], merged["identifiers_moved"], merged["profiles_moved"]) == (
        False,
        1,
        1,
    )

    with app.app_context(), db.database(app).sessions() as session:
        assert resolve_child_id(session, gone) == keep
        owners = session.scalars(
            select(ChildIdentifier.child_id).where(ChildIdentifier.value == "I-1")
        ).all()
        assert owners == [keep]
        entry = session.get(AuditEntry, merged["audit_entry"])
        assert entry is not None
        logged = json.loads(entry.entry)
    assert logged["action"] == "child_merged" and logged["child_id"] == keep
    assert logged["actor"] == {
        "agency_id": "mx.fed.pfpnna",
        "person_id": "ana.admin",
        "role": "administrator",
    }
    assert logged["reason_code"] == f"merged_{gone}"

    listed = json.loads(run(env, "children", "duplicates", "--json").output)["duplicates"]
    assert all(gone not in (p["child_id"], p["other_child_id"]) for p in listed)

    again = run(env, "children", "merge", keep, gone, *REASON, "--json")
    assert again.exit_code == 0
    assert json.loads(again.output)["already_merged"] is True
    assert "already merged" in run(env, "children", "merge", keep, gone, *REASON).output


def test_merging_the_conflict_pair_resolves_the_conflict(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    _app, env, ids = hub
    assert (
        run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON, "--force").exit_code == 0
    )
    listed = json.loads(run(env, "children", "duplicates", "--json").output)["duplicates"]
    assert [p["reason"] for p in listed] == ["probable"]


def test_wrong_merges_are_refused(hub: tuple[Flask, dict[str, str], dict[str, str]]) -> None:
    _app, env, ids = hub
    itself = run(env, "children", "merge", ids["ana"], ids["ana"], *REASON)
    assert itself.exit_code == 1 and "into itself" in itself.output
    unknown = run(env, "children", "merge", ids["ana"], "nna_0000", *REASON)
    assert unknown.exit_code == 1 and "No such child nna_0000" in unknown.output
    assert (
        run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON, "--force").exit_code == 0
    )
    into_merged = run(env, "children", "merge", ids["ana"], ids["jonathan"], *REASON)
    assert into_merged.exit_code == 1 and f"merged into {ids['kevin']}" in into_merged.output
    spanish = CliRunner().invoke(
        main, ["children", "merge", ids["ana"], ids["ana"], *REASON, "--lang", "es"], env=env
    )
    assert "consigo mismo" in spanish.output
    bad_person = run(
        env, "children", "merge", ids["kevin"], ids["jonathan"], *REASON, "--by", "Ana María"
    )
    assert bad_person.exit_code == 2


def test_an_empty_index_has_no_duplicates(module_hub: tuple[Flask, dict[str, str]]) -> None:
    app, env = module_hub
    with db.database(app).sessions.begin() as session:
        empty_child_index(session)
    result = CliRunner().invoke(main, ["children", "duplicates", "--lang", "es"], env=env)
    assert result.exit_code == 0
    assert result.output.strip() == "Sin duplicados probables."


def test_a_merge_needs_a_reason(hub: tuple[Flask, dict[str, str], dict[str, str]]) -> None:
    """A merge cannot be undone: without a reason nothing is merged (usage error, exit 2)."""
    app, env, ids = hub
    keep, gone = ids["jonathan"], ids["jhonatan"]
    for reason in ((), ("--reason", ""), ("--reason", "   ")):
        result = run(env, "children", "merge", keep, gone, *reason)
        assert result.exit_code == 2, result.output
        assert "Give --reason" in result.output and "cannot be undone" in result.output
    spanish = CliRunner().invoke(main, ["children", "merge", keep, gone, "--lang", "es"], env=env)
    assert spanish.exit_code == 2 and "Indique --reason" in spanish.output
    with app.app_context(), db.database(app).sessions() as session:
        assert resolve_child_id(session, gone) == gone  # nothing merged
        assert session.get(Child, gone).merge_reason is None  # type: ignore[union-attr]
        merges = session.scalars(
            select(AuditEntry.id).where(
                AuditEntry.action == "child_merged", AuditEntry.child_id == keep
            )
        ).all()
    assert merges == []

    merged = run(env, "children", "merge", keep, gone, "--reason", "  same birth certificate ")
    assert merged.exit_code == 0, merged.output
    with app.app_context(), db.database(app).sessions() as session:
        assert session.get(Child, gone).merge_reason == "same birth certificate"  # type: ignore[union-attr]


def test_numbered_aliases_are_not_duplicates_on_the_strength_of_the_name(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    """Offices number unnamed children ("Niño 7", "Niño 777"): a different number is a
    different child, so only the same alias (and age) is listed for a person to review."""
    app, env, ids = hub

    def unnamed(alias: str, age: int) -> dict[str, Any]:
        return {
            "child": {
                "alias": alias,
                "nationality": ["GT"],
                "age_estimation": {"estimated_age_years": age, "assessed_on": "2024-05-01"},
            }
        }

    with app.app_context(), db.database(app).sessions.begin() as session:
        aliases = {}
        for number, (alias, age) in enumerate(
            [
                ("Niño 7", 12),
                ("Niño 777", 14),
                ("Niño 77", 12),
                ("Niño 1", 12),
                ("Niño 1000", 12),
                ("Niño 100", 12),
                ("Niño", 12),
                ("Niño 07", 13),
            ]
        ):
            aliases[alias] = link_child(
                session,
                agency_id="mx.chp.dif",
                local_id=f"SN-{number}",
                child_id=None,
                document=unnamed(alias, age),
            )
    listed = json.loads(run(env, "children", "duplicates", "--json").output)["duplicates"]
    probable = [{p["child_id"], p["other_child_id"]} for p in listed if p["reason"] == "probable"]
    # "Niño 07" is "Niño 7" written with a leading zero: the one numbered pair a person reviews.
    assert probable == [
        {ids["jonathan"], ids["jhonatan"]},
        {aliases["Niño 7"], aliases["Niño 07"]},
    ]


def test_every_reason_two_children_look_alike_is_worded_in_both_languages() -> None:
    source = Path(child_matching.__file__).read_text(encoding="utf-8")
    labels = set(re.findall(r'matched\.append\("(\w+)"\)', source))
    labels |= set(re.findall(r'return [^"\n]*"(date_of_birth\w*)"', source))
    assert {"name", "sex", "date_of_birth_swapped"} <= labels  # the patterns still find them
    assert labels <= set(ALIKE_IN), labels - set(ALIKE_IN)


def test_a_merge_of_children_the_records_set_apart_needs_force(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    """Kevin (2008) and Ana Lucía (2016) share a CURP by a record's mistake: merging them needs
    a person to say so explicitly, since a wrong merge shows one child's records as another's."""
    _app, env, ids = hub
    refused = run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON)
    assert refused.exit_code == 1, refused.output
    assert "births over a year apart: 2008–2008 ≠ 2016–2016" in refused.output
    assert "--force" in refused.output and "Nothing was merged" in refused.output
    spanish = CliRunner().invoke(
        main, ["children", "merge", ids["kevin"], ids["ana"], *REASON, "--lang", "es"], env=env
    )
    assert "nacimiento a más de un año" in spanish.output
    forced = run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON, "--force")
    assert forced.exit_code == 0, forced.output
    # Children the records do not set apart merge without it.
    same = run(env, "children", "merge", ids["jonathan"], ids["jhonatan"], *REASON)
    assert same.exit_code == 0, same.output


def test_merging_a_child_into_the_one_it_was_merged_into_says_they_are_one_already(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    _app, env, ids = hub
    assert run(env, "children", "merge", ids["jonathan"], ids["jhonatan"], *REASON).exit_code == 0
    backwards = run(env, "children", "merge", ids["jhonatan"], ids["jonathan"], *REASON)
    assert backwards.exit_code == 1 and "one child already" in backwards.output
