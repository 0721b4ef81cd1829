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
    read,
    rows,
)
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from exchange.audit_log import AuditEntry
from exchange.import_sinks import DirectSink
from exchange.record_push import Pusher
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
    summary = f"stored={good}, unchanged=0, rejected={len(bad)}, older_version=0"
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


def test_a_batch_changing_a_record_and_back_ends_where_its_last_line_says(
    client: FlaskClient, dif: AgencyClient
) -> None:
    before, during = example(), changed(example(), "x")
    stored = push(client, dif, envelope("R", before)).get_json()
    # Sent again (a client's retry after a timeout), it holds only versions already stored.
    for attempt, statuses in ((1, ["stored", "stored"]), (2, ["unchanged", "unchanged"])):
        _, results = push_bulk(client, dif, [envelope("R", during), envelope("R", before)])
        assert [r["status"] for r in results] == statuses, attempt
        latest = read(client, dif, stored["record_id"])
        assert latest.get_json()["data"] == before, attempt
        assert latest.get_json()["version"] == results[1]["version"] == 3


def given_names(client: FlaskClient, agency: AgencyClient, record_id: str) -> str:
    data = read(client, agency, record_id).get_json()["data"]
    return str(data["child"]["names"]["given_names"])


def two_versions_of_one_record() -> list[dict[str, Any]]:
    """A nightly file holding two versions of DUP-1 (as a day's changes) and DUP-2."""
    first, second = distinct_record(1), distinct_record(1)
    first["child"]["names"]["given_names"] = "Primera"
    second["child"]["names"]["given_names"] = "Segunda"
    return [envelope("DUP-1", first), envelope("DUP-1", second), envelope("DUP-2")]


def test_a_file_sent_again_stores_nothing_and_brings_no_older_version_back(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lines = two_versions_of_one_record()
    _, first = push_bulk(client, dif, lines)
    assert [(r["status"], r["version"]) for r in first] == [
        ("stored", 1),
        ("stored", 2),
        ("stored", 1),
    ]
    response, again = push_bulk(client, dif, lines)
    # The header counts the line equal to an earlier version among the unchanged, and apart.
    summary = "stored=0, unchanged=3, rejected=0, older_version=1"
    assert response.headers["Puente-Bulk-Summary"] == summary
    # A line equal to an earlier version answers the record's latest version, with its digest.
    assert [(r["status"], r["version"], r.get("older_version")) for r in again] == [
        ("unchanged", 2, 1),
        ("unchanged", 2, None),
        ("unchanged", 1, None),
    ]
    assert again[0]["body_sha256"] == first[1]["body_sha256"]
    assert count(app, RecordVersion) == 3
    assert given_names(client, dif, first[0]["record_id"]) == "Segunda"


def test_a_file_sent_again_after_a_newer_single_push_leaves_the_newer_data(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lines = two_versions_of_one_record()
    _, first = push_bulk(client, dif, lines)
    newer = distinct_record(1)
    newer["child"]["names"]["given_names"] = "Tercera"
    assert push(client, dif, envelope("DUP-1", newer)).get_json()["version"] == 3
    _, again = push_bulk(client, dif, lines)
    assert [(r["status"], r["version"]) for r in again] == [
        ("unchanged", 3),
        ("unchanged", 3),
        ("unchanged", 1),
    ]
    assert count(app, RecordVersion) == 4
    assert given_names(client, dif, first[0]["record_id"]) == "Tercera"


def test_a_resend_cut_after_its_first_line_leaves_the_latest_version(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    # A 503 (answered_lines) asks for the whole file again; the resend may stop early too.
    lines = two_versions_of_one_record()
    _, first = push_bulk(client, dif, lines)
    _, [cut] = push_bulk(client, dif, lines[:1])
    assert (cut["status"], cut["version"]) == ("unchanged", 2)
    assert count(app, RecordVersion) == 3
    assert given_names(client, dif, first[0]["record_id"]) == "Segunda"


@pytest.mark.parametrize("batch_size", [1, 500])
def test_where_a_file_ends_does_not_depend_on_its_batches(
    app: Flask, client: FlaskClient, dif: AgencyClient, batch_size: int
) -> None:
    # Its last line sets the record back to its state before the file: the earlier line of
    # the same request was stored, whichever batch the two lines fell in.
    app.config["BULK_BATCH_SIZE"] = batch_size
    before, during = example(), changed(example(), "x")
    stored = push(client, dif, envelope("R", before)).get_json()
    _, results = push_bulk(client, dif, [envelope("R", during), envelope("R", before)])
    assert [r["status"] for r in results] == ["stored", "stored"]
    assert read(client, dif, stored["record_id"]).get_json()["data"] == before


def test_a_batch_stored_line_by_line_after_lost_races_ends_where_its_last_line_says(
    app: Flask, client: FlaskClient, dif: AgencyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, during = example(), changed(example(), "x")
    stored = push(client, dif, envelope("R", before)).get_json()
    store = Pusher.store

    def losing_whole_batches(self: Pusher, items: list[Any], **options: Any) -> Any:
        if len(items) > 1:  # a concurrent push keeps winning: stored one line at a time
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return store(self, items, **options)

    monkeypatch.setattr(Pusher, "store", losing_whole_batches)
    _, results = push_bulk(client, dif, [envelope("R", during), envelope("R", before)])
    assert [r["status"] for r in results] == ["stored", "stored"]
    assert read(client, dif, stored["record_id"]).get_json()["data"] == before


def test_a_direct_import_sent_again_brings_no_older_version_back(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    lines = two_versions_of_one_record()
    _, first = push_bulk(client, dif, lines)
    with app.app_context():
        sink = DirectSink(app, DIF)
        try:
            outcomes = sink.push(lines)
        finally:
            sink.close()
    assert [outcome.status for outcome in outcomes] == ["unchanged"] * 3
    assert count(app, RecordVersion) == 3
    assert given_names(client, dif, first[0]["record_id"]) == "Segunda"


def test_a_single_push_may_still_set_a_record_back_to_an_earlier_version(
    client: FlaskClient, dif: AgencyClient
) -> None:
    lines = two_versions_of_one_record()
    _, first = push_bulk(client, dif, lines)
    restored = push(client, dif, lines[0])
    assert restored.status_code == 201 and restored.get_json()["version"] == 3
    assert given_names(client, dif, first[0]["record_id"]) == "Primera"


@pytest.mark.parametrize("lang", ["es", "en"])
def test_an_idempotency_key_on_a_bulk_push_is_refused_not_ignored(
    app: Flask, client: FlaskClient, dif: AgencyClient, lang: str
) -> None:
    response = client.post(
        "/v1/records/bulk",
        data=ndjson([envelope("R")]),
        headers={
            **dif.headers,
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": "lote-1",
            "Accept-Language": lang,
        },
    )
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"].endswith("/validation")
    assert problem["errors"][0]["header"] == "Idempotency-Key"
    assert ("unchanged" in problem["detail"]) and (
        "encabezado" in problem["detail"] if lang == "es" else "header" in problem["detail"]
    )
    assert count(app, RecordVersion) == 0


def test_a_database_lost_midway_says_how_many_lines_were_handled(
    app: Flask, client: FlaskClient, dif: AgencyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["BULK_BATCH_SIZE"] = 2
    stored_batches: list[int] = []
    store = Pusher.store

    def failing_store(self: Pusher, items: list[Any], **options: Any) -> Any:
        if len(stored_batches) == 1:  # the second batch: the server went away
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        stored_batches.append(len(items))
        return store(self, items, **options)

    monkeypatch.setattr(Pusher, "store", failing_store)
    lines = [envelope(f"LOST-{number}", distinct_record(number)) for number in range(5)]
    response = client.post(
        "/v1/records/bulk",
        data=ndjson(lines),
        headers={**dif.headers, "Content-Type": "application/x-ndjson", "Accept-Language": "en"},
    )
    assert response.status_code == 503 and response.headers["Retry-After"]
    problem = response.get_json()
    assert problem["answered_lines"] == 2 and count(app, Record) == 2
    assert "The first 2 lines were already handled" in problem["detail"]
    assert "answered 'unchanged'" in problem["detail"]


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
    # Both languages ride along, for clients that file rejects for people (puente import).
    for answer in (spanish, english):
        assert "JSON mal formado" in answer["errors"][0]["message_es"]
        assert "malformed JSON" in answer["errors"][0]["message_en"]


# -- a body sent without Content-Length that passes BULK_MAX_CONTENT_LENGTH ----------------------


def push_chunked(
    client: FlaskClient, agency: AgencyClient, body: bytes, **headers: str
) -> tuple[Any, list[dict[str, Any]]]:
    """A bulk push with no Content-Length (Transfer-Encoding: chunked), as gunicorn passes it."""
    response = client.post(
        "/v1/records/bulk",
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},
        headers={
            **agency.headers,
            "Content-Type": "application/x-ndjson",
            "Transfer-Encoding": "chunked",
            **headers,
        },
    )
    return response, [json.loads(line) for line in response.get_data().splitlines()]


def padded(number: int, pad: int = 0) -> bytes:
    """A valid line (record ``L<number>``), ``pad`` bytes of note longer."""
    data = distinct_record(number)
    if pad:
        data["case"]["notes"] = "n" * pad
    return json.dumps(envelope(f"L{number}", data)).encode() + b"\n"


def test_the_line_the_byte_limit_cuts_is_too_large_and_nothing_after_it_is_read(
    tmp_path: Any, database_url: str, hub_factory: Any
) -> None:
    head = b"".join(padded(n) for n in range(1, 11)) + b"\n"  # ten records, then a blank line
    limit = len(head) + 500
    # Line 12, a good record, runs past the limit; line 13 comes after it.
    body = head + padded(12, pad=2000) + padded(13)
    app = hub_factory(tmp_path, database_url, BULK_MAX_CONTENT_LENGTH=limit)
    try:
        agency = add_agency(app, DIF)
        response, results = push_chunked(
            app.test_client(), agency, body, **{"Accept-Language": "es"}
        )
        assert response.status_code == 200
        assert [(r["line"], r["status"]) for r in results] == [
            *((n, "stored") for n in range(1, 11)),
            (12, "rejected"),
        ]
        cut = results[-1]
        assert cut["problem"] == "payload-too-large"  # not malformed JSON: it was not read whole
        assert [e["keyword"] for e in cut["errors"]] == ["max_bytes"]
        assert str(limit) in cut["errors"][0]["message"]
        assert "no se leyó nada" in cut["errors"][0]["message"]
        assert (
            response.headers["Puente-Bulk-Summary"]
            == "stored=10, unchanged=0, rejected=1, older_version=0"
        )
        assert count(app, Record) == 10
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_a_limit_between_two_lines_answers_the_next_line_and_a_body_of_the_limit_is_whole(
    tmp_path: Any, database_url: str, hub_factory: Any
) -> None:
    head = b"".join(padded(n) for n in range(1, 6))
    app = hub_factory(tmp_path, database_url, BULK_MAX_CONTENT_LENGTH=len(head))
    try:
        agency = add_agency(app, DIF)
        client = app.test_client()
        # Exactly the limit: every line is read and stored, and nothing is refused.
        response, results = push_chunked(client, agency, head)
        assert [(r["line"], r["status"]) for r in results] == [(n, "stored") for n in range(1, 6)]
        assert (
            response.headers["Puente-Bulk-Summary"]
            == "stored=5, unchanged=0, rejected=0, older_version=0"
        )
        # One line more: that line is the first one past the limit.
        response, results = push_chunked(client, agency, head + padded(6) + padded(7))
        assert [(r["line"], r["status"]) for r in results] == [
            *((n, "unchanged") for n in range(1, 6)),
            (6, "rejected"),
        ]
        assert results[-1]["problem"] == "payload-too-large"
        assert count(app, Record) == 5
    finally:
        app.extensions["puente.db"].engine.dispose()


def test_after_the_line_limit_no_further_line_is_answered(
    tmp_path: Any, database_url: str, hub_factory: Any
) -> None:
    lines = b"".join(padded(n) for n in range(1, 21))
    app = hub_factory(
        tmp_path, database_url, BULK_MAX_LINES=3, BULK_MAX_CONTENT_LENGTH=len(lines) // 2
    )
    try:
        agency = add_agency(app, DIF)
        response, results = push_chunked(app.test_client(), agency, lines)
        assert [(r["line"], r["status"]) for r in results] == [
            (1, "stored"), (2, "stored"), (3, "stored"), (4, "rejected"),
        ]  # fmt: skip
        assert [e["keyword"] for e in results[-1]["errors"]] == ["max_lines"]
        assert (
            response.headers["Puente-Bulk-Summary"]
            == "stored=3, unchanged=0, rejected=1, older_version=0"
        )
        assert count(app, Record) == 3
    finally:
        app.extensions["puente.db"].engine.dispose()


# -- the envelope, line by line -----------------------------------------------------------------


def test_an_unsigned_line_is_told_to_carry_its_signature_member(
    app: Flask, client: FlaskClient
) -> None:
    signer = add_agency(app, "mx.son.dif", jurisdiction="26", require_signature=True)
    for lang, where in (("es", "«signature» de la línea"), ("en", "line's 'signature' member")):
        _, [result] = push_bulk(client, signer, [envelope("S-1")], **{"Accept-Language": lang})
        assert result["problem"] == "bad-signature"
        [error] = result["errors"]
        assert error["pointer"] == "/signature"
        assert where in error["message"] and "Puente-Signature" not in error["message"]
    # A single push is told about the header.
    single = push(client, signer, envelope("S-1"), **{"Accept-Language": "en"})
    assert single.status_code == 401
    assert "Puente-Signature header" in single.get_json()["detail"]
    assert count(app, Record) == 0


def test_a_line_that_is_no_object_is_told_so_whether_or_not_signatures_are_required(
    app: Flask, client: FlaskClient, dif: AgencyClient
) -> None:
    signer = add_agency(app, "mx.son.dif", jurisdiction="26", require_signature=True)
    for agency in (dif, signer):
        _, results = push_bulk(client, agency, b'[1, 2]\n"texto"\n', **{"Accept-Language": "en"})
        assert [r["problem"] for r in results] == ["validation", "validation"]
        assert [e["message"] for r in results for e in r["errors"]] == [
            "expected a JSON object {…} but found an array [...]",
            "expected a JSON object {…} but found a string",
        ]
    assert count(app, Record) == 0


@pytest.mark.parametrize("local_id", ["   ", " L-1", "L-1 "])
def test_a_line_whose_local_id_is_blank_or_padded_is_refused(
    app: Flask, client: FlaskClient, dif: AgencyClient, local_id: str
) -> None:
    _, [result] = push_bulk(client, dif, [envelope(local_id)])
    assert result["status"] == "rejected" and result["problem"] == "validation"
    assert [e["pointer"] for e in result["errors"]] == ["/local_id"]
    assert count(app, Record) == 0
