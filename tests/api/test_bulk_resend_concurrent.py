"""A file sent again never brings back an older version, also while others push the same
records: a caseworker's newer push during an upload, or the same file uploaded twice at once
(exchange.record_bulk, exchange.record_push.Pusher.store)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from exchange import db
from exchange.crypto import data_keyring
from exchange.record_bulk import push_lines
from exchange.record_push import Pusher, PushResult
from schemas import default_registry
from tests.api.records_support import (
    PURPOSE,
    add_agency,
    changed,
    envelope,
    example,
    push,
    read,
)

AGENCY = "mx.chp.dif"


def _bulk(app: Flask, lines: Iterator[tuple[int, Any]]) -> Iterator[PushResult]:
    """A bulk push of ``lines``, one line a batch, on a session of its own."""
    with app.app_context():
        session = db.database(app).sessions()
        pusher = Pusher(
            session,
            AGENCY,
            require_signature=False,
            keyring=data_keyring(),
            registry=default_registry(),
        )
        try:
            yield from push_lines(pusher, lines, max_lines=100, batch_size=1)
        finally:
            session.close()


def _latest(client: FlaskClient, agency: Any, record_id: str) -> dict[str, Any]:
    answer = read(client, agency, record_id)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["data"]


def test_an_old_line_sent_while_a_caseworker_pushes_a_newer_version_stores_nothing(
    app: Flask, client: FlaskClient
) -> None:
    dif = add_agency(app, AGENCY)
    older = example()
    newer = changed(older, "EXP-NUEVO")
    first = push(client, dif, envelope("EXP-1", older))
    assert first.status_code == 201
    record_id = first.get_json()["record_id"]

    def lines() -> Iterator[tuple[int, Any]]:
        yield 1, envelope("EXP-2")  # the upload has begun (and stored a batch)
        # A caseworker's newer version, pushed while the upload goes on.
        assert push(client, dif, envelope("EXP-1", newer)).status_code == 201
        yield 2, envelope("EXP-1", older)  # the old file's line for the same record

    results = list(_bulk(app, lines()))
    assert [each.status for each in results] == ["stored", "unchanged"]
    assert (results[1].record_id, results[1].version) == (record_id, 2)
    assert _latest(client, dif, record_id) == newer


def test_the_same_file_uploaded_twice_at_once_stores_each_version_once(
    app: Flask, client: FlaskClient
) -> None:
    dif = add_agency(app, AGENCY)
    one, two = example(), changed(example(), "EXP-SEGUNDA")
    file = [envelope("EXP-0"), envelope("EXP-1", one), envelope("EXP-1", two)]

    first_upload = _bulk(app, iter(enumerate(copy.deepcopy(file), 1)))
    second_upload = _bulk(app, iter(enumerate(copy.deepcopy(file), 1)))
    assert next(second_upload).status == "stored"  # the second upload begins first (EXP-0)
    assert [each.status for each in first_upload] == ["unchanged", "stored", "stored"]
    # The first upload stored both versions of EXP-1 meanwhile: the second's lines match them.
    rest = list(second_upload)
    assert [each.status for each in rest] == ["unchanged", "unchanged"]
    record_id = rest[-1].record_id
    assert record_id is not None and rest[-1].version == 2
    versions = client.get(
        f"/v1/records/{record_id}/versions", query_string={"purpose": PURPOSE}, headers=dif.headers
    )
    assert [each["version"] for each in versions.get_json()["versions"]] == [1, 2]
    assert _latest(client, dif, record_id) == two
