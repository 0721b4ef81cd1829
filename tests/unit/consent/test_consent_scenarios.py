"""The scenario table (scenarios.yaml) run against ``decide``.

Each row is decided three ways that must agree: with a compiled, remembering ConsentSet (as
the hub runs it, asked twice so the second answer comes from memory), with a fresh set that
remembers nothing, and from the bare list of consents and grants.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from consent import (
    DEFAULT_RULE_SET,
    Actor,
    ChildFacts,
    ChildView,
    Consent,
    ConsentSet,
    Custodian,
    Decision,
    Grant,
    Override,
    Request,
    WithholdFrom,
    decide,
)

TABLE = yaml.safe_load((Path(__file__).parent / "scenarios.yaml").read_text(encoding="utf-8"))
LIBRARY = TABLE["library"]
DEFAULTS = TABLE["defaults"]
CHILD_ID = "ch-7f3a9d2e"


def child_facts(spec: str | dict[str, Any]) -> ChildFacts:
    data = dict(LIBRARY["children"][spec] if isinstance(spec, str) else spec)
    custodians = data.pop("custodians", None)
    return ChildFacts(
        child_id=CHILD_ID,
        date_of_birth=_day(data.pop("date_of_birth", None)),
        estimated_age_years=data.pop("estimated_age_years", None),
        age_assessed_on=_day(data.pop("age_assessed_on", None)),
        accompaniment=data.pop("accompaniment", "unknown"),
        international_protection=data.pop("international_protection", None),
        countries_of_origin=frozenset(data.pop("countries_of_origin", ())),
        custodians=None if custodians is None else tuple(Custodian(**c) for c in custodians),
        conflict_of_interest=data.pop("conflict_of_interest", False),
        representing_procuradurias=frozenset(data.pop("representing_procuradurias", ())),
        **data,
    )


def consent_doc(spec: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        doc = copy.deepcopy(LIBRARY["consents"][spec])
    elif "use" in spec:
        doc = copy.deepcopy(LIBRARY["consents"][spec["use"]])
        doc.update(copy.deepcopy(spec.get("set", {})))
    else:
        doc = copy.deepcopy(spec)
    doc["child_id"] = CHILD_ID
    return doc


def actor(spec: str | dict[str, Any]) -> Actor:
    data = dict(LIBRARY["actors"][spec] if isinstance(spec, str) else spec)
    return Actor.from_json(data)


def with_child(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "child_id": CHILD_ID}


def build(row: dict[str, Any]) -> dict[str, Any]:
    spec = row["request"]
    request = Request(
        actor=actor(spec["actor"]),
        child_id=CHILD_ID,
        action=spec["action"],
        purpose=spec["purpose"],
        owner_agency_id=spec.get("owner"),
        record_id=spec.get("record_id"),
        **({"categories": frozenset(spec["categories"])} if "categories" in spec else {}),
    )
    return {
        "request": request,
        "child": child_facts(row.get("child", DEFAULTS["child"])),
        "consents": [Consent.from_json(consent_doc(c)) for c in row.get("consents", [])]
        + [Grant.from_json(with_child(g)) for g in row.get("grants", [])],
        "views": [ChildView.from_json(with_child(v)) for v in row.get("views", [])],
        "overrides": [Override.from_json(with_child(o)) for o in row.get("overrides", [])],
        "withholds": [WithholdFrom.from_json(with_child(w)) for w in row.get("withholds", [])],
        "now": datetime.fromisoformat(row.get("now", DEFAULTS["now"]).replace("Z", "+00:00")),
    }


def run(case: dict[str, Any], consents: Any) -> Decision:
    return decide(
        case["request"],
        consents,
        case["views"],
        case["overrides"],
        DEFAULT_RULE_SET,
        case["now"],
        child=case["child"],
        withholds=case["withholds"],
    )


def test_the_table_has_at_least_40_rows_with_unique_names() -> None:
    names = [row["name"] for row in TABLE["scenarios"]]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


def test_the_table_covers_every_basis() -> None:
    bases = {row["expect"]["basis"] for row in TABLE["scenarios"]}
    assert bases == {
        "hard_rule",
        "originating_agency",
        "withhold",
        "override",
        "objection",
        "consent",
        "grant",
        "default_deny",
    }


@pytest.mark.parametrize("row", TABLE["scenarios"], ids=lambda row: row["name"])
def test_scenario(row: dict[str, Any]) -> None:
    case = build(row)
    compiled = ConsentSet(case["consents"], child=case["child"])
    decision = run(case, compiled)
    expect = row["expect"]
    assert decision.result == expect["result"], decision.explanation("en")
    assert decision.basis == expect["basis"], decision.explanation("en")
    assert set(decision.categories) == set(expect["categories"]), decision.explanation("en")
    requested = case["request"].categories
    assert set(decision.withheld) == requested - set(expect["categories"])
    if "withheld" in expect:
        assert set(decision.withheld) == set(expect["withheld"])
    for key in ("rule_ids", "consent_ids", "grant_ids", "override_ids", "withhold_ids", "view_ids"):
        if key in expect:
            assert list(getattr(decision, key)) == expect[key], key
    # Every requested category is explained exactly once (hard rules may all be named), by a
    # reason of the right result.
    explained = [
        c for reason in decision.reasons for c in reason.categories if reason.code != "hard_rule"
    ]
    hard = {
        c for reason in decision.reasons if reason.code == "hard_rule" for c in reason.categories
    }
    assert sorted(explained + sorted(hard)) == sorted(requested)
    for reason in decision.reasons:
        assert reason.es and reason.en
        within = set(reason.categories) <= set(decision.categories)
        assert (reason.result == "permit") == within
    # The same answer from memory, from a set that remembers nothing, and from the bare list.
    assert run(case, compiled) == decision
    assert run(case, ConsentSet(case["consents"], child=case["child"], remember=False)) == decision
    assert run(case, case["consents"]) == decision
    assert Decision.from_json(decision.to_json()) == decision


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)
