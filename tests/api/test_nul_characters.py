"""U+0000 in what a client sends is refused the same way on SQLite and PostgreSQL: PostgreSQL's
text cannot hold it, so before this it was a 500 there (and a bulk push lost its good lines)
while SQLite stored it."""

from __future__ import annotations

import base64
import json

from consent_support import PersonClient
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push, push_bulk

from exchange import db
from exchange.import_sinks import DirectSink
from exchange.records import Record

DIF = "mx.chp.dif"


def _records(app: Flask) -> int:
    with app.app_context():
        return db.session().query(Record).count()


def _nul_in_alias(local_id: str) -> dict:
    data = example()
    data["child"]["alias"] = "Niña\x00sin nombre"
    return envelope(local_id, data)


def test_a_push_with_nul_is_a_validation_problem(app: Flask, client: FlaskClient) -> None:
    dif = add_agency(app, DIF)
    for body in (envelope("EXP\x00-1"), _nul_in_alias("EXP-2")):
        response = push(client, dif, body)
        assert response.status_code == 400, response.get_json()
        problem = response.get_json()
        assert problem["type"].endswith("/validation")
        assert "\\u0000" in json.dumps(problem["errors"], ensure_ascii=False)
    assert _records(app) == 0


def test_a_bulk_line_with_nul_is_rejected_and_the_good_lines_stored(
    app: Flask, client: FlaskClient
) -> None:
    dif = add_agency(app, DIF)
    lines = [envelope("A"), _nul_in_alias("B"), envelope("C")]
    response, results = push_bulk(client, dif, lines)
    assert response.status_code == 200
    assert [r["status"] for r in results] == ["stored", "rejected", "stored"]
    assert results[1]["line"] == 2
    assert _records(app) == 2


def test_nul_in_a_path_query_or_search_is_a_400(app: Flask, client: FlaskClient) -> None:
    dif = add_agency(app, DIF)
    for url in (
        "/v1/records/rec_%00?purpose=case_management",
        "/v1/records/rec_x?purpose=case%00_management",
    ):
        response = client.get(url, headers=dif.headers)
        assert response.status_code == 400, url
        pointer = response.get_json()["errors"][0]["pointer"]
        assert pointer in ("/path", "/query/purpose")
        assert "X-Request-Id" in response.headers
    search = client.post(
        "/v1/children/search",
        json={
            "purpose": "case_management",
            "identifier": {"type": "agency_local", "value": "a\x00b"},
        },
        headers=dif.headers,
    )
    assert search.status_code == 400, search.get_json()


def test_a_client_id_with_nul_is_an_unknown_client(app: Flask, client: FlaskClient) -> None:
    credentials = base64.b64encode(b"mx.chp\x00dif:secreto").decode()
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_an_adapters_document_with_nul_is_rejected_with_its_pointer(app: Flask) -> None:
    # A spreadsheet cell can hold U+0000 (Python's csv module keeps it); the push service says
    # where, whichever backend stores the rest.
    add_agency(app, DIF)
    with app.app_context():
        sink = DirectSink(app, DIF)
        try:
            outcomes = sink.push([envelope("A"), _nul_in_alias("B")])
        finally:
            sink.close()
    assert [o.status for o in outcomes] == ["stored", "rejected"]
    pointers = [p.pointer for p in outcomes[1].problems]
    assert pointers == ["/data/child/alias"]
    assert _records(app) == 1


def test_a_login_with_nul_is_refused_as_any_failed_login(app: Flask, client: FlaskClient) -> None:
    # The portal's pages answer in HTML, so its forms are checked by the portal itself.
    from portal_support import page_csrf

    response = client.post(
        "/login",
        data={
            "csrf_token": page_csrf(client),
            "email": "ana\x00@example.org",
            "password": "una contraseña larga",
        },
    )
    assert response.status_code in (400, 401), response.status_code
    assert response.mimetype == "text/html"


def test_a_portal_address_with_nul_is_no_500(app: Flask, officer: PersonClient) -> None:
    from portal_support import csrf_of, logged_in

    browser = logged_in(app, officer.id)
    csrf = csrf_of(browser.get("/requests").get_data(as_text=True))
    for path in ("/requests/acr_%00/decision", "/tokens/%00/revoke"):
        response = browser.post(path, data={"csrf_token": csrf, "decision": "deny", "reason": "x"})
        assert response.status_code in (400, 404), (path, response.status_code)
