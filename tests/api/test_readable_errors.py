"""What a person reads in an error is words, in Spanish and in English: never a bare JSON
Schema keyword, never a library's English-only text."""

from __future__ import annotations

from typing import Any

import pytest
from consent_support import consent_officer, procuraduria
from flask import Flask
from flask.testing import FlaskClient
from records_support import AgencyClient, add_agency, envelope, example, push, push_bulk

from exchange.problems import PROBLEM_BASE

SPANISH = {"Accept-Language": "es-MX"}
ENGLISH = {"Accept-Language": "en"}
TOO_LARGE = 2**60


@pytest.fixture
def officer(app: Flask) -> Any:
    procuraduria(app)
    return consent_officer(app, "co-chp-004", "mx.chp.procuraduria")


def problem_in_both(send: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same failing request answered in Spanish and in English (a 400 validation problem)."""
    answers = []
    for language in (SPANISH, ENGLISH):
        response = send(language)
        assert response.status_code == 400, response.get_data(as_text=True)
        body = response.get_json(force=True)
        assert body["type"] == PROBLEM_BASE + "validation"
        answers.append(body)
    return answers[0], answers[1]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error  # type: ignore[no-any-return]


def test_access_request_decision_with_a_non_boolean_approve(
    client: FlaskClient, officer: Any
) -> None:
    es, en = problem_in_both(
        lambda language: client.post(
            "/v1/access-requests/acr-1/decision",
            json={"approve": "yes", "reason": "Acreditado."},
            headers={**officer.headers, **language},
        )
    )
    assert only_error(es)["pointer"] == only_error(en)["pointer"] == "/approve"
    assert "verdadero o falso" in only_error(es)["message"]
    assert "true or false" in only_error(en)["message"]
    assert '"yes"' in only_error(en)["message"]


def test_override_review_with_a_non_boolean_upheld(client: FlaskClient, officer: Any) -> None:
    es, en = problem_in_both(
        lambda language: client.post(
            "/v1/overrides/ovr-1/review",
            json={"upheld": "si", "reason": "Subsiste la urgencia."},
            headers={**officer.headers, **language},
        )
    )
    assert only_error(es)["pointer"] == only_error(en)["pointer"] == "/upheld"
    assert "verdadero o falso" in only_error(es)["message"]
    assert "true or false" in only_error(en)["message"]


def test_access_request_queue_with_an_unknown_status(client: FlaskClient, officer: Any) -> None:
    es, en = problem_in_both(
        lambda language: client.get(
            "/v1/access-requests?status=bogus", headers={**officer.headers, **language}
        )
    )
    for body, words in ((es, "valores permitidos"), (en, "allowed values")):
        error = only_error(body)
        assert (error["pointer"], error["parameter"]) == ("/query/status", "status")
        assert words in error["message"]
        assert all(f'"{code}"' in error["message"] for code in ("pending", "granted", "denied"))


def test_consent_revocation_without_a_reason(client: FlaskClient, officer: Any) -> None:
    es, en = problem_in_both(
        lambda language: client.post(
            "/v1/consents/cns-1/revoke", json={}, headers={**officer.headers, **language}
        )
    )
    assert only_error(es)["pointer"] == only_error(en)["pointer"] == ""
    assert only_error(es)["message"] == "falta el campo obligatorio «motivo» (reason)"
    assert only_error(en)["message"] == "required field 'written reason' (reason) is missing"


def test_dry_run_decision_with_a_body_that_is_not_an_object(
    client: FlaskClient, officer: Any
) -> None:
    es, en = problem_in_both(
        lambda language: client.post(
            "/v1/decisions", json=[1], headers={**officer.headers, **language}
        )
    )
    assert only_error(es)["pointer"] == only_error(en)["pointer"] == ""
    assert "debe ser un objeto" in only_error(es)["message"]
    assert "must be an object" in only_error(en)["message"]
    assert "lista" in only_error(es)["message"] and "list" in only_error(en)["message"]


def test_dry_run_decision_without_a_purpose_says_it_is_missing(
    client: FlaskClient, officer: Any
) -> None:
    es, en = problem_in_both(
        lambda language: client.post(
            "/v1/decisions",
            json={"child_id": "nna_00000000000000000000"},
            headers={**officer.headers, **language},
        )
    )
    assert only_error(es)["message"] == "falta el campo obligatorio «finalidad» (purpose)"
    assert only_error(en)["message"] == "required field 'purpose' is missing"


def test_missing_scope_names_the_scope_needed(app: Flask, client: FlaskClient) -> None:
    reader = add_agency(app, "mx.chp.dif", scopes=("records:read",))
    for language, words in ((SPANISH, "alcance requerido"), (ENGLISH, "scope")):
        response = client.get("/v1/access-requests", headers={**reader.headers, **language})
        assert response.status_code == 403
        detail = response.get_json(force=True)["detail"]
        assert words in detail and "access:decide" in detail


def test_unknown_url_and_wrong_method_are_explained_in_both_languages(
    client: FlaskClient,
) -> None:
    english_only = ("The requested URL", "The method is not allowed")
    missing_es = client.get("/v1/nothing-here", headers=SPANISH).get_json(force=True)
    missing_en = client.get("/v1/nothing-here", headers=ENGLISH).get_json(force=True)
    assert missing_es["detail"].startswith("No hay nada en /v1/nothing-here")
    assert missing_en["detail"].startswith("There is nothing at /v1/nothing-here")
    wrong_es = client.delete("/v1/schemas", headers=SPANISH).get_json(force=True)
    wrong_en = client.delete("/v1/schemas", headers=ENGLISH).get_json(force=True)
    assert wrong_es["detail"].startswith("El método DELETE no se admite en /v1/schemas; use ")
    assert wrong_en["detail"].startswith("Method DELETE is not allowed on /v1/schemas; use ")
    assert "GET" in wrong_en["detail"]
    for body in (missing_es, missing_en, wrong_es, wrong_en):
        assert not any(text in body["detail"] for text in english_only)


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, "mx.chp.dif")


def record_with_a_huge_number() -> dict[str, Any]:
    data = example()
    data["case"]["case_number"] = TOO_LARGE
    return envelope("EXP-HUGE", data)


def test_a_push_with_an_integer_beyond_two_to_the_53(
    client: FlaskClient, dif: AgencyClient
) -> None:
    es, en = problem_in_both(
        lambda language: push(client, dif, record_with_a_huge_number(), **language)
    )
    assert only_error(es)["pointer"] == only_error(en)["pointer"] == "/data/case/case_number"
    assert only_error(es)["message"].startswith(f"el número {TOO_LARGE} es demasiado grande")
    assert only_error(en)["message"].startswith(f"the number {TOO_LARGE} is too large")
    assert "2^53" in es["detail"] and "2^53" in en["detail"]


def test_a_bulk_line_with_an_integer_beyond_two_to_the_53(
    client: FlaskClient, dif: AgencyClient
) -> None:
    good = envelope("EXP-OK")
    messages = {}
    for language, name in ((SPANISH, "es"), (ENGLISH, "en")):
        _response, results = push_bulk(client, dif, [good, record_with_a_huge_number()], **language)
        assert [r["status"] for r in results][1] == "rejected"
        [error] = results[1]["errors"]
        assert error["pointer"] == "/data/case/case_number"
        messages[name] = error["message"]
    assert messages["es"].startswith(f"el número {TOO_LARGE} es demasiado grande")
    assert messages["en"].startswith(f"the number {TOO_LARGE} is too large")
