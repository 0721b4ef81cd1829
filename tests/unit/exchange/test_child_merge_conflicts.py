"""Merging two children who hold different CURPs or UNHCR individual numbers needs ``--force``,
the duplicates list marks and penalises such pairs, and ``--by`` must name a registered
administrator (the person the audit log holds to the merge). On both backends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from exchange import db
from exchange.child_duplicates import MergeConflicts, merge_children, probable_duplicates
from exchange.children import link_child, resolve_child_id
from exchange.cli import main
from tests.unit.exchange.test_cli_children import (
    ADMINISTRATORS,
    CLERK,
    REASON,
    hub,
    module_hub,
    run,
)

__all__ = ["hub", "module_hub"]  # the fixtures this module uses

CURPS = ("PELJ150601HCSRPN07", "MOGA150601HCSRPN08")  # more than a typo apart
UNHCR = ("MEX-26C000101", "MEX-26C000102")


def juan(*identifiers: tuple[str, str]) -> dict[str, Any]:
    return {
        "child": {
            "names": {"given_names": "Juan", "first_surname": "Pérez", "second_surname": "López"},
            "date_of_birth": "2015-06-01",
            "sex": "male",
            "nationality": ["MX"],
            "identifiers": [{"type": kind, "value": value} for kind, value in identifiers],
        }
    }


def two_juans(app: Flask, kind: str, values: tuple[str, str]) -> tuple[str, str]:
    """Two children alike in every profile field, each holding its own ``kind`` number."""
    with app.app_context(), db.database(app).sessions.begin() as session:
        return (
            link_child(
                session,
                agency_id="mx.chp.dif",
                local_id=f"J-{kind}-1",
                child_id=None,
                document=juan((kind, values[0])),
            ),
            link_child(
                session,
                agency_id="mx.fed.inm",
                local_id=f"J-{kind}-2",
                child_id=None,
                document=juan((kind, values[1])),
            ),
        )


@pytest.mark.parametrize(
    ("kind", "values", "words"),
    [
        ("curp", CURPS, ("different CURPs", "CURP distintas")),
        ("unhcr_individual", UNHCR, ("different UNHCR individual numbers", "ACNUR distintos")),
    ],
)
def test_different_personal_identifiers_block_a_merge_without_force(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
    kind: str,
    values: tuple[str, str],
    words: tuple[str, str],
) -> None:
    app, env, _ids = hub
    keep, gone = two_juans(app, kind, values)
    with app.app_context(), db.database(app).sessions() as session:
        with pytest.raises(MergeConflicts) as refused:
            merge_children(session, keep, gone, reason="x", check_conflicts=True)
    assert words[0] in refused.value.message_en and words[1] in refused.value.message_es
    for value in values:
        assert value not in refused.value.message_en + refused.value.message_es

    english = run(env, "children", "merge", keep, gone, *REASON, "--by", "ana.admin")
    assert english.exit_code == 1 and words[0] in english.output and "--force" in english.output
    spanish = CliRunner().invoke(
        main,
        ["children", "merge", keep, gone, *REASON, "--by", "ana.admin", "--lang", "es"],
        env=env,
    )
    assert spanish.exit_code == 1 and words[1] in spanish.output
    assert all(value not in english.output + spanish.output for value in values)
    with app.app_context(), db.database(app).sessions() as session:
        assert resolve_child_id(session, gone) == gone  # nothing merged

    forced = run(env, "children", "merge", keep, gone, *REASON, "--by", "ana.admin", "--force")
    assert forced.exit_code == 0, forced.output
    with app.app_context(), db.database(app).sessions() as session:
        assert resolve_child_id(session, gone) == keep


def test_the_duplicates_list_marks_and_penalises_different_personal_identifiers(
    hub: tuple[Flask, dict[str, str], dict[str, str]],
) -> None:
    app, env, _ids = hub
    keep, gone = two_juans(app, "curp", CURPS)
    pair = {keep, gone}
    with app.app_context(), db.database(app).sessions() as session:
        # Alike in everything else, they would score 1: with two CURPs they are not listed at
        # the default threshold, and are shown marked below it.
        assert all({p.child_id, p.other_child_id} != pair for p in probable_duplicates(session))
        [marked] = [
            p for p in probable_duplicates(session, 0.4) if {p.child_id, p.other_child_id} == pair
        ]
    assert marked.identifier_conflicts == ("curp",) and marked.score == pytest.approx(0.5)
    listed = json.loads(run(env, "children", "duplicates", "--json", "--min-score", "0.4").output)
    [shown] = [p for p in listed["duplicates"] if {p["child_id"], p["other_child_id"]} == pair]
    assert shown["identifier_conflicts"] == ["curp"]
    text = run(env, "children", "duplicates", "--min-score", "0.4").stdout
    [line] = [line for line in text.splitlines() if keep in line and gone in line]
    assert line.split("  ")[6] == "different CURPs" and CURPS[0] not in text


@pytest.mark.parametrize("person", ["qa", CLERK])
def test_by_must_name_a_registered_administrator(
    hub: tuple[Flask, dict[str, str], dict[str, str]], person: str
) -> None:
    app, env, ids = hub
    keep, gone = ids["jonathan"], ids["jhonatan"]
    refused = run(env, "children", "merge", keep, gone, *REASON, "--by", person)
    assert refused.exit_code == 1
    assert "not an active registered person with the administrator role" in refused.output
    spanish = CliRunner().invoke(
        main, ["children", "merge", keep, gone, *REASON, "--by", person, "--lang", "es"], env=env
    )
    assert "no es una persona registrada y activa con rol de administrador" in spanish.output
    distinct = run(env, "children", "distinct", keep, gone, "--reason", "x", "--by", person)
    assert distinct.exit_code == 1
    with app.app_context(), db.database(app).sessions() as session:
        assert resolve_child_id(session, gone) == gone  # nothing merged
    assert (
        run(env, "children", "merge", keep, gone, *REASON, "--by", ADMINISTRATORS[0]).exit_code == 0
    )
