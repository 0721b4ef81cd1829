"""An oversight body asks for a child's history after two of the hub's children were found to
be one and merged: the history holds what was written under either id."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push
from test_audit_api import oversight_token

from exchange import db
from exchange.audit_sequencer import integrate_pending
from exchange.child_duplicates import merge_children


def _push_unlinked(client: FlaskClient, app: Flask, agency_id: str, local_id: str) -> str:
    """A record of the example child, without the identifiers that would link it at once."""
    data = example()
    data["child"]["identifiers"] = []
    response = push(client, add_agency(app, agency_id), envelope(local_id, data))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["child_id"])


def _events(client: FlaskClient, headers: dict[str, str], child_id: str) -> dict:
    response = client.get(f"/v1/audit/events?child_id={child_id}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_a_childs_history_holds_the_entries_of_children_merged_into_it(
    app: Flask, client: FlaskClient
) -> None:
    survivor = _push_unlinked(client, app, "mx.chp.dif", "EXP-1")
    absorbed = _push_unlinked(client, app, "mx.chp.tapachula.dif", "TAP-9")
    assert survivor != absorbed
    auditor = oversight_token(app)
    integrate_pending(app, force_checkpoint=True)
    before = {child: _events(client, auditor, child)["events"] for child in (survivor, absorbed)}
    assert before[survivor] and before[absorbed]

    with app.app_context():
        session = db.database(app).sessions()
        with session.begin():
            merge_children(session, survivor, absorbed, reason="la misma niña")
        session.close()
    integrate_pending(app, force_checkpoint=True)

    indexes = {e["index"] for e in before[survivor]} | {e["index"] for e in before[absorbed]}
    for asked in (survivor, absorbed):
        page = _events(client, auditor, asked)
        assert page["child_ids"] == [survivor, absorbed]
        found = [e["index"] for e in page["events"]]
        assert found == sorted(found)
        assert indexes <= set(found), asked


def test_an_id_the_hub_does_not_know_is_searched_as_given(app: Flask, client: FlaskClient) -> None:
    page = _events(client, oversight_token(app), "ch-de-otro-nodo")
    assert page == {"events": [], "next_cursor": None, "child_ids": ["ch-de-otro-nodo"]}
    unfiltered = client.get("/v1/audit/events", headers=oversight_token(app)).get_json()
    assert "child_ids" not in unfiltered
