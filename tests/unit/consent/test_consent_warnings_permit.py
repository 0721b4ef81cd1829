"""``consent_warnings``: a top-level ``permit`` provision under a ``permit`` base decision limits
nothing (the base decision already permits the grantees everything), so the consent is recorded
with a bilingual warning pointing at each such provision — never refused, as FHIR allows it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

from consent import ChildFacts, Consent, check_consent, consent_warnings
from schemas.registry import EXAMPLES_DIR

SUPLENCIA = Consent.from_json(
    json.loads(
        (EXAMPLES_DIR / "consent/1/valid/procuraduria_suplencia_unaccompanied.json").read_text(
            "utf-8"
        )
    )
)
PERMITTING = dataclasses.replace(SUPLENCIA, decision="permit")


def test_permit_provisions_under_a_deny_base_limit_the_grantees_and_warn_of_nothing() -> None:
    assert SUPLENCIA.decision == "deny"
    assert consent_warnings(SUPLENCIA) == []


def test_each_permit_provision_under_a_permit_base_is_warned_of() -> None:
    warnings = consent_warnings(PERMITTING)
    assert [(w.code, w.pointer) for w in warnings] == [
        ("permit_under_permit", f"/provision/{index}")
        for index, provision in enumerate(PERMITTING.provisions)
        if provision.decision == "permit"
    ]
    assert warnings
    for warning in warnings:
        assert "limita nada" in warning.es and "limits nothing" in warning.en
        assert "'deny'" in warning.es and "'deny'" in warning.en


def test_a_deny_provision_under_a_permit_base_limits_and_is_not_warned_of() -> None:
    [first, *_] = PERMITTING.provisions
    only_deny = dataclasses.replace(
        PERMITTING, provisions=(dataclasses.replace(first, decision="deny"),)
    )
    assert consent_warnings(only_deny) == []


def test_check_consent_does_not_refuse_it() -> None:
    facts = ChildFacts(
        child_id=PERMITTING.child_id,
        date_of_birth=date(2010, 1, 1),
        accompaniment="unaccompanied",
        representing_procuradurias=frozenset({"mx.chp.procuraduria"}),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    codes = {problem.code for problem in check_consent(PERMITTING, facts, now)}
    assert "permit_under_permit" not in codes


def test_no_shipped_valid_example_teaches_a_provision_that_limits_nothing() -> None:
    # People copy the examples: one that warns would teach a consent that permits more than
    # its grantor meant.
    examples = sorted((EXAMPLES_DIR / "consent/1/valid").glob("*.json"))
    assert examples
    for path in examples:
        consent = Consent.from_json(json.loads(path.read_text("utf-8")))
        assert consent_warnings(consent) == [], path.name
