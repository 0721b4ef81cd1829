"""``puente children distinct``: a person records that two children are different people."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.children import ChildDistinctPair, ChildDuplicateSuggestion
from exchange.cli import main
from tests.unit.exchange.test_cli_children import REASON, hub, module_hub, run

__all__ = ["hub", "module_hub"]  # the fixtures this module uses

Hub = tuple[Flask, dict[str, str], dict[str, str]]
DIFFERENT = ("--reason", "different mothers, checked with both offices")


def listed_pairs(env: dict[str, str]) -> list[tuple[set[str], str]]:
    result = run(env, "children", "duplicates", "--json")
    assert result.exit_code == 0, result.output
    return [
        ({p["child_id"], p["other_child_id"]}, p["reason"])
        for p in json.loads(result.output)["duplicates"]
    ]


def audit_entry(app: Flask, entry_id: str) -> dict[str, Any]:
    with app.app_context(), db.database(app).sessions() as session:
        entry = session.get(AuditEntry, entry_id)
        assert entry is not None
        return json.loads(entry.entry)  # type: ignore[no-any-return]


def test_a_pair_recorded_distinct_is_not_listed_again_and_is_audited(hub: Hub) -> None:
    app, env, ids = hub
    probable = {ids["jonathan"], ids["jhonatan"]}
    assert (probable, "probable") in listed_pairs(env)

    result = run(
        env, "children", "distinct", ids["jhonatan"], ids["jonathan"], *DIFFERENT,
        "--by", "ana.admin", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert {answer["child_id"], answer["other_child_id"]} == probable
    assert answer["child_id"] < answer["other_child_id"]
    assert (answer["distinct"], answer["unchanged"]) == (True, False)
    assert all(pair != probable for pair, _ in listed_pairs(env))

    logged = audit_entry(app, answer["audit_entry"])
    assert logged["action"] == "child_distinct_recorded"
    assert logged["child_id"] == answer["child_id"]
    assert logged["reason_code"] == f"distinct_from_{answer['other_child_id']}"
    assert logged["actor"] == {
        "agency_id": "mx.fed.pfpnna",
        "person_id": "ana.admin",
        "role": "administrator",
    }
    assert "mothers" not in json.dumps(logged)  # the free text stays on the pair's row
    with app.app_context(), db.database(app).sessions() as session:
        row = session.get(ChildDistinctPair, (answer["child_id"], answer["other_child_id"]))
        assert row is not None and row.reason == DIFFERENT[1] and row.decided_by == "ana.admin"

    again = run(env, "children", "distinct", ids["jonathan"], ids["jhonatan"], *DIFFERENT)
    assert again.exit_code == 0 and "already recorded as different people" in again.output


def test_recording_a_conflict_pair_distinct_resolves_the_conflict(hub: Hub) -> None:
    app, env, ids = hub
    assert ({ids["kevin"], ids["ana"]}, "conflict") in listed_pairs(env)
    result = run(env, "children", "distinct", ids["kevin"], ids["ana"], *DIFFERENT, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["suggestions_resolved"] == 1
    assert [reason for _, reason in listed_pairs(env)] == ["probable"]
    with app.app_context(), db.database(app).sessions() as session:
        open_ = session.scalars(
            select(ChildDuplicateSuggestion).where(ChildDuplicateSuggestion.resolved_at.is_(None))
        ).all()
    assert open_ == []


def test_a_distinct_pair_cannot_be_merged_until_the_record_is_withdrawn(hub: Hub) -> None:
    app, env, ids = hub
    keep, other = ids["jonathan"], ids["jhonatan"]
    assert (
        run(env, "children", "distinct", keep, other, *DIFFERENT, "--by", "ana.admin").exit_code
        == 0
    )

    refused = run(env, "children", "merge", keep, other, *REASON)
    assert refused.exit_code == 1
    assert "ana.admin recorded on" in refused.output and "--withdraw" in refused.output
    spanish = CliRunner().invoke(
        main, ["children", "merge", other, keep, *REASON, "--lang", "es"], env=env
    )
    assert spanish.exit_code == 1 and "son personas distintas" in spanish.output

    withdrawn = run(env, "children", "distinct", keep, other, "--withdraw", "--json")
    assert withdrawn.exit_code == 0, withdrawn.output
    answer = json.loads(withdrawn.output)
    assert (answer["distinct"], answer["unchanged"]) == (False, False)
    assert audit_entry(app, answer["audit_entry"])["action"] == "child_distinct_withdrawn"
    assert ({keep, other}, "probable") in listed_pairs(env)
    assert run(env, "children", "merge", keep, other, *REASON).exit_code == 0

    nothing = run(env, "children", "distinct", ids["ana"], ids["kevin"], "--withdraw")
    assert nothing.exit_code == 0 and "nothing was recorded" in nothing.output


def test_what_was_said_of_a_merged_child_holds_for_the_survivor(hub: Hub) -> None:
    """Kevin is not Jonathan; Ana is merged into Kevin: Kevin, the survivor, is still not
    Jonathan, and the pair's record names the survivor."""
    app, env, ids = hub
    assert run(env, "children", "distinct", ids["ana"], ids["jonathan"], *DIFFERENT).exit_code == 0
    assert (
        run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON, "--force").exit_code == 0
    )
    with app.app_context(), db.database(app).sessions() as session:
        pairs = session.execute(
            select(ChildDistinctPair.child_id, ChildDistinctPair.other_child_id)
        ).all()
    assert [set(pair) for pair in pairs] == [{ids["kevin"], ids["jonathan"]}]
    refused = run(env, "children", "merge", ids["kevin"], ids["jonathan"], *REASON)
    assert refused.exit_code == 1 and "different people" in refused.output


def test_wrong_distinct_records_are_refused(hub: Hub) -> None:
    _app, env, ids = hub
    missing = run(env, "children", "distinct", ids["ana"], ids["kevin"])
    assert missing.exit_code == 2 and "Give --reason" in missing.output
    spanish = CliRunner().invoke(
        main, ["children", "distinct", ids["ana"], ids["kevin"], "--lang", "es"], env=env
    )
    assert spanish.exit_code == 2 and "Indique --reason" in spanish.output
    itself = run(env, "children", "distinct", ids["ana"], ids["ana"], *DIFFERENT)
    assert itself.exit_code == 1 and "is one child" in itself.output
    unknown = run(env, "children", "distinct", ids["ana"], "nna_0000", *DIFFERENT)
    assert unknown.exit_code == 1 and "No such child nna_0000" in unknown.output
    assert (
        run(env, "children", "merge", ids["kevin"], ids["ana"], *REASON, "--force").exit_code == 0
    )
    merged = run(env, "children", "distinct", ids["ana"], ids["jonathan"], *DIFFERENT)
    assert merged.exit_code == 1 and f"merged into {ids['kevin']}" in merged.output
