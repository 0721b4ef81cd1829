"""POST /v1/records/bulk: NDJSON in, one result per line out, in order; good lines stored
exactly once (whole: version, child link, audit entry), bad lines reported with their line
number and pointers; streamed with bounded memory, a line limit and a byte limit."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import (
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    ndjson,
    push,
    push_bulk,
    rows,
)
from sqlalchemy import func, select

from exchange.audit_log import AuditEntry
from exchange.records import Record, RecordVersion

DIF = "mx.chp.dif"
GIVEN = ["Ana", "Luis", "María", "José", "Kevin", "Dayana", "Wilson", "Yeimi", "Brayan", "Óscar"]


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, DIF)


def distinct_record(number: int) -> dict[str, Any]:
    """A valid, clearly fictitious record; different children for different numbers."""
    rng = random.Random(number)
    surname = "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(4))
    return {
        "case": {"status": "open", "case_number": f"BULK-{number:06d}"},
        "child": {
            "names": {"given_names": rng.choice(GIVEN), "first_surname": surname.capitalize()},
            "date_of_birth": f"{rng.randint(2007, 2023)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}",
            "nationality": [rng.choice(["HN", "GT", "SV", "VE", "HT"])],
        },
    }


def count(app: Flask, model: type) -> int:
    return int(rows(app, select(func.count()).select_from(model))[0][0])


def test_ten_percent_bad_lines_in_ten_thousand(
    app: Flask, client: FlaskClient, dif: AgencyClient, database_url: str
) -> None:
    # The full 10,000 lines on SQLite; 2,000 on PostgreSQL, where each new child's linking
    # round trips make the full file take minutes on a shared 2-core machine.
    total = 10_000 if database_url.startswith("sqlite") else 2_000
    lines: list[Any] = []
    bad: dict[int, str] = {}
    for number in range(1, total + 1):
        if number % 10 == 3:  # every tenth line is bad, in turns of four ways
            kind = ("malformed", "invalid", "schema", "envelope")[(number // 10) % 4]
            bad[number] = kind
            if kind == "malformed":
                lines.append(b'{"schema": "case-record/1", "local_id": ')
            elif kind == "invalid":
                lines.append(envelope(f"L{number}", example("missing_child", "invalid")))
            elif kind == "schema":
                lines.append({**envelope(f"L{number}"), "schema": "case-record/7"})
            else:
                lines.append({"schema": "case-record/1", "data": {}})
        else:
            lines.append(envelope(f"L{number}", distinct_record(number)))
    response, results = push_bulk(client, dif, lines, **{"Accept-Language": "en"})
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert [r["line"] for r in results] == list(range(1, total + 1))
    for result in results:
        line = result["line"]
        if line in bad:
            assert result["status"] == "rejected", result
            assert result["errors"] and all("pointer" in e for e in result["errors"])
            expected_problem = "unsupported-schema" if bad[line] == "schema" else "validation"
            assert result["problem"] == expected_problem
            if bad[line] == "invalid":
                assert all(e["pointer"].startswith("/data") for e in result["errors"])
        else:
            assert result["status"] == "stored", result
            assert result["version"] == 1
    good = total - len(bad)
    summary = f"stored={good}, unchanged=0, rejected={len(bad)}"
    assert response.headers["Puente-Bulk-Summary"] == summary
    assert count(app, Record) == good
    assert count(app, RecordVersion) == good
    stored_ids = {r["record_id"] for r in results if r["status"] == "stored"}
    assert len(stored_ids) == good
    audited = rows(
        app,
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "record_pushed"),
    )
    assert audited[0][0] == good

    # Sending the whole file again stores nothing twice.
    _, second = push_bulk(client, dif, lines)
    assert [r["status"] for r in second if r["line"] not in bad] == ["unchanged"] * good
    assert {r["record_id"] for r in second if r["status"] == "unchanged"} == stored_ids
    assert count(app, RecordVersion) == good


def test_lines_of_one_record_become_its_versions_in_order(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    first, second = example(), changed(example(), "v2")
    _, results = push_bulk(
        client, dif, [envelope("R", first), envelope("R", second), envelope("R", second)]
    )
    assert [(r["status"], r["version"]) for r in results] == [
        ("stored", 1),
        ("stored", 2),
        ("unchanged", 2),
    ]
    assert len({r["record_id"] for r in results}) == 1
    assert count(app, RecordVersion) == 2


def test_bulk_and_single_pushes_name_the_same_records(
    client: FlaskClient, dif: AgencyClient
) -> None:
    single = push(client, dif, envelope("R")).get_json()
    _, [result] = push_bulk(client, dif, [envelope("R", changed(example(), "later"))])
    assert result["record_id"] == single["record_id"]
    assert result["version"] == 2


def test_a_line_refused_while_storing_does_not_hold_back_the_others(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lines = [
        envelope("A"),
        envelope("B", child_id="nna_doesnotexist00"),
        envelope("C", changed(example(), "c")),
    ]
    _, results = push_bulk(client, dif, lines)
    assert [r["status"] for r in results] == ["stored", "rejected", "stored"]
    assert results[1]["errors"][0]["pointer"] == "/child_id"
    assert {local for (local,) in rows(app, select(Record.local_id))} == {"A", "C"}


def test_blank_lines_are_skipped_but_counted(client: FlaskClient, dif: AgencyClient) -> None:
    body = (
        b"\n"
        + ndjson([envelope("A")])
        + b"\r\n   \n"
        + ndjson([envelope("B", changed(example(), "b"))])
    )
    _, results = push_bulk(client, dif, body)
    assert [(r["line"], r["status"]) for r in results] == [(2, "stored"), (5, "stored")]


def test_no_newline_at_the_end_is_fine(client: FlaskClient, dif: AgencyClient) -> None:
    _, results = push_bulk(client, dif, json.dumps(envelope("A")).encode())
    assert [r["status"] for r in results] == ["stored"]


def test_lines_past_the_limit_are_not_read(
    tmp_path: Any, database_url: str, hub_factory: Any
) -> None:
    app = hub_factory(tmp_path, database_url, BULK_MAX_LINES=3)
    try:
        agency = add_agency(app, DIF)
        client = app.test_client()
        lines = [envelope(f"L{n}", distinct_record(n)) for n in range(1, 7)]
        response, results = push_bulk(client, agency, lines)
        assert response.status_code == 200
        assert [(r["line"], r["status"]) for r in results] == [
            (1, "stored"), (2, "stored"), (3, "stored"), (4, "rejected"),
        ]  # fmt: skip
        assert results[3]["problem"] == "payload-too-large"
        assert "3" in results[3]["errors"][0]["message"]
        assert count(app, Record) == 3
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_a_body_over_the_bulk_limit_is_refused_whole(
    tmp_path: Any, database_url: str, hub_factory: Any
) -> None:
    app = hub_factory(tmp_path, database_url, BULK_MAX_CONTENT_LENGTH=4096)
    try:
        agency = add_agency(app, DIF)
        client = app.test_client()
        lines = [envelope(f"L{n}", distinct_record(n)) for n in range(1, 40)]
        response, _ = push_bulk(client, agency, lines)
        assert response.status_code == 413
        assert response.get_json()["type"].endswith("/payload-too-large")
        assert count(app, Record) == 0

        # Without Content-Length (chunked), the lines read before the limit are answered and
        # the rest is reported as not read.
        stream = io.BytesIO(ndjson(lines))
        chunked = client.post(
            "/v1/records/bulk",
            input_stream=stream,
            environ_overrides={"wsgi.input_terminated": True},  # as gunicorn does
            headers={
                **agency.headers,
                "Content-Type": "application/x-ndjson",
                "Transfer-Encoding": "chunked",
            },
        )
        assert chunked.status_code == 200
        results = [json.loads(line) for line in chunked.get_data().splitlines()]
        assert results[-1]["status"] == "rejected"
        assert results[-1]["problem"] == "payload-too-large"
        stored = [r for r in results if r["status"] == "stored"]
        assert 0 < len(stored) < len(lines)
        assert count(app, Record) == len(stored)
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_bulk_bodies_may_exceed_the_single_push_limit(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lines = [envelope(f"L{n}", distinct_record(n)) for n in range(1, 41)]
    body = b"".join(
        json.dumps(line, indent=1).replace("\n", "").encode() + b" " * 60_000 + b"\n"
        for line in lines
    )
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]
    response, results = push_bulk(client, dif, body)
    assert response.status_code == 200
    assert {r["status"] for r in results} == {"stored"}
    assert len(results) == 40


def test_the_bulk_route_refuses_other_media_types(client: FlaskClient, dif: AgencyClient) -> None:
    response = client.post("/v1/records/bulk", json=[envelope("A")], headers=dif.headers)
    assert response.status_code == 415
    assert response.get_json()["type"].endswith("/validation")


def test_the_bulk_route_needs_the_write_scope(app: Flask, client: FlaskClient) -> None:
    reader = add_agency(app, DIF, scopes=("records:read",))
    response, _ = push_bulk(client, reader, [envelope("A")])
    assert response.status_code == 403
    assert count(app, Record) == 0


def test_messages_follow_the_language_asked_for(client: FlaskClient, dif: AgencyClient) -> None:
    _, [spanish] = push_bulk(client, dif, b"{\n", **{"Accept-Language": "es"})
    _, [english] = push_bulk(client, dif, b"{\n", **{"Accept-Language": "en"})
    assert "JSON mal formado" in spanish["errors"][0]["message"]
    assert "malformed JSON" in english["errors"][0]["message"]
