"""What an oversight body's outside check of the audit log found on a running hub (session 18):

2. ``GET /v1/audit/events?child_id=`` filters on unsigned copies of the entry's fields: an
   operator who edits one hides the entry there, while the log still verifies. ``puente audit
   events`` on an export finds it, from the signed bytes, with the children merged in;
6. an unknown ``action`` is a 400 that lists the actions, and the OpenAPI description has them;
8. oversight's own reads of the log write no entry (docs/audit.md says so, and why).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from records_support import add_agency, envelope, example, push
from sqlalchemy import select, update
from test_audit_api import oversight_token

from exchange import db
from exchange.audit_log import AuditEntry
from exchange.audit_queries import known_actions, log_size
from exchange.audit_sequencer import integrate_pending
from exchange.child_duplicates import merge_children
from exchange.cli import main
from exchange.keys import hub_keys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
HIDDEN_AS = "nna_00000000000000000000"


@pytest.fixture
def hub(tmp_path: Path, app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The test hub, which the command line finds by the environment."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    return app


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _push_unlinked(client: FlaskClient, app: Flask, agency_id: str, local_id: str) -> str:
    """A record of the example child, without the identifiers that would link it at once."""
    data = example()
    data["child"]["identifiers"] = []
    response = push(client, add_agency(app, agency_id), envelope(local_id, data))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["child_id"])


def _events(client: FlaskClient, app: Flask, query: str) -> dict:
    response = client.get(f"/v1/audit/events?{query}", headers=oversight_token(app))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


@pytest.fixture
def merged(hub: Flask, client: FlaskClient) -> Iterator[tuple[str, str]]:
    """Two children found to be one: ``absorbed`` merged into ``survivor``, signed."""
    survivor = _push_unlinked(client, hub, "mx.chp.dif", "EXP-1")
    absorbed = _push_unlinked(client, hub, "mx.chp.tapachula.dif", "TAP-9")
    with hub.app_context():
        session = db.database(hub).sessions()
        with session.begin():
            merge_children(session, survivor, absorbed, reason="la misma niña")
        session.close()
    integrate_pending(hub, force_checkpoint=True)
    yield survivor, absorbed


def _indices(app: Flask, child_id: str) -> list[int]:
    with app.app_context(), db.database(app).sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.idx)
                .where(AuditEntry.child_id == child_id, AuditEntry.idx.is_not(None))
                .order_by(AuditEntry.idx)
            )
        )


# --- 2. a child's history, from the signed bytes ----------------------------------------------


def test_an_entry_hidden_from_the_events_view_is_found_in_a_verified_export(
    hub: Flask, client: FlaskClient, merged: tuple[str, str], tmp_path: Path
) -> None:
    survivor, absorbed = merged
    history = [e["index"] for e in _events(client, hub, f"child_id={survivor}")["events"]]
    absorbed_entries = _indices(hub, absorbed)
    assert absorbed_entries and set(absorbed_entries) <= set(history)

    # The operator edits the unsigned copy of the child: the view loses the entry ...
    hidden = absorbed_entries[0]
    with hub.app_context(), db.database(hub).sessions() as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.idx == hidden).values(child_id=HIDDEN_AS)
        )
        session.commit()
    view = _events(client, hub, f"child_id={survivor}")
    assert hidden not in [e["index"] for e in view["events"]]

    # ... and the log still verifies, so only a search of the signed entries shows it.
    out = tmp_path / "export"
    exported = _run("audit", "export", "--out", str(out), "--json")
    assert exported.exit_code == 0, exported.output
    vkey = hub_keys(hub).log
    assert vkey is not None
    assert _run("audit", "verify", "--full", str(out), "--vkey", vkey.vkey).exit_code == 0
    for asked in (survivor, absorbed):
        result = _run(
            "audit", "events", str(out), "--vkey", vkey.vkey, "--child-id", asked, "--json"
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["child_ids"] == [survivor, absorbed]
        (merge,) = report["merges"]
        assert (merge["into"], merge["merged"]) == (survivor, absorbed)
        found = [e["index"] for e in report["events"]]
        assert hidden in found and set(history) <= set(found), asked
        assert merge["index"] in found
        signed = {e["index"]: json.loads(e["entry"]) for e in report["events"]}
        assert signed[hidden]["child_id"] == absorbed  # the signed bytes, not the edited copy

    text = _run("audit", "events", str(out), "--vkey", vkey.vkey, "--child-id", survivor)
    assert f"Ids searched: {survivor}, {absorbed}" in text.stdout
    assert any(line.startswith(f"{hidden} {{") for line in text.stdout.splitlines())


def test_the_docs_say_the_events_view_is_a_convenience_and_how_to_check_completeness() -> None:
    docs = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "The events view is a convenience, not the evidence" in docs
    assert (
        "to know that a child's history is **complete**, search an export offline with "
        "`puente audit events`" in docs
    )


# --- 6. an unknown action lists the actions ----------------------------------------------------


def test_an_unknown_action_is_refused_with_the_actions_listed(
    hub: Flask, client: FlaskClient
) -> None:
    for lang, start in (
        (
            "en",
            "unknown action; those of schema audit-event/1 (GET /v1/schemas/audit-event/1) are: ",
        ),
        (
            "es",
            "acción desconocida; las del esquema audit-event/1 (GET "
            "/v1/schemas/audit-event/1) son: ",
        ),
    ):
        response = client.get(
            "/v1/audit/events?action=unknown",
            headers={**oversight_token(hub), "Accept-Language": lang},
        )
        assert response.status_code == 400
        (error,) = response.get_json()["errors"]
        assert error["pointer"] == "/query/action"
        assert error["message"] == start + ", ".join(known_actions())
        assert "record_read" in response.get_json()["detail"]


def test_the_openapi_action_parameter_lists_the_schemas_actions(
    hub: Flask, client: FlaskClient
) -> None:
    document = client.get("/openapi.json").get_json()
    parameters = document["paths"]["/v1/audit/events"]["get"]["parameters"]
    (action,) = [p for p in parameters if p["name"] == "action"]
    codes, dotted = action["schema"]["anyOf"]
    assert codes["enum"] == known_actions()
    assert "record.read" in action["description"]
    # The dotted names the route takes (record.read) match the second form.
    assert re.search(dotted["pattern"], "record.read")
    assert not re.search(dotted["pattern"], "record_read")


# --- 8. reading the log does not grow it -------------------------------------------------------


def test_oversights_reads_of_the_log_write_no_entry(hub: Flask, client: FlaskClient) -> None:
    _push_unlinked(client, hub, "mx.chp.dif", "EXP-2")
    integrate_pending(hub, force_checkpoint=True)
    headers = oversight_token(hub)
    integrate_pending(hub, force_checkpoint=True)

    def entries() -> int:
        with hub.app_context(), db.database(hub).sessions() as session:
            return len(session.scalars(select(AuditEntry.id)).all())

    before = entries()
    for path in (
        "/v1/audit/checkpoint",
        "/v1/audit/entries?start=0",
        "/v1/audit/proofs/inclusion?index=0",
        "/v1/audit/proofs/consistency?first=1",
        "/v1/audit/events",
        "/v1/audit/events?action=record_pushed",
        "/v1/audit/alerts",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_json())
    integrate_pending(hub, force_checkpoint=True)
    assert entries() == before
    with hub.app_context(), db.database(hub).sessions() as session:
        assert log_size(session) == before
    docs = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "Reading the log writes nothing to it" in docs
    assert "Reading the log to verify it must not grow it" in docs
