"""Concurrent pushes from several processes (each its own hub process and database
connections, like gunicorn workers): no record is lost, none is stored twice, versions stay
contiguous, and one Idempotency-Key sent twenty times at once stores one push."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from records_support import AgencyClient, add_agency, envelope, rows
from sqlalchemy import func, select

from exchange import create_app
from exchange.records import IdempotencyKey, Record, RecordVersion

DIF = "mx.chp.dif"
FORK = multiprocessing.get_context("fork")


def record_data(process: int, number: int) -> dict[str, Any]:
    return {
        "case": {"status": "open", "case_number": f"P{process}-N{number}"},
        "child": {
            "names": {"given_names": "Ana", "first_surname": f"Prueba{number}"},
            "date_of_birth": f"{2010 + number % 10}-01-{1 + number % 28:02d}",
            "nationality": ["GT"],
        },
    }


def _worker(
    config: dict[str, Any],
    token: str,
    requests: list[tuple[dict[str, Any], dict[str, str]]],
    start: Any,
    results: Any,
) -> None:
    """One hub process: its own app, engine and connections; waits, then pushes."""
    try:
        app = create_app(config)
        client = app.test_client()
        start.wait(timeout=60)
        answers = []
        for body, headers in requests:
            response = client.post(
                "/v1/records",
                json=body,
                headers={"Authorization": f"Bearer {token}", **headers},
            )
            answers.append(
                (
                    response.status_code,
                    response.get_json(),
                    response.headers.get("Idempotent-Replayed"),
                )
            )
        app.extensions["puente.db"].engine.dispose()
        results.put((os.getpid(), answers))
    except BaseException as error:  # noqa: BLE001 - report it, never hang the parent
        results.put((os.getpid(), repr(error)))


def run_processes(
    app: Flask, agency: AgencyClient, plans: list[list[tuple[dict[str, Any], dict[str, str]]]]
) -> list[tuple[int, Any, str | None]]:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": Path(app.instance_path),
        "DATABASE_URL": app.config["DATABASE_URL"],
    }
    start = FORK.Barrier(len(plans))
    results = FORK.Queue()
    app.extensions["puente.db"].engine.dispose()  # no pooled connection crosses a fork
    workers = [
        FORK.Process(target=_worker, args=(config, agency.token, plan, start, results))
        for plan in plans
    ]
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    answers = []
    for _pid, outcome in collected:
        assert not isinstance(outcome, str), outcome
        answers.extend(outcome)
    return answers


def count(app: Flask, model: type) -> int:
    return int(rows(app, select(func.count()).select_from(model))[0][0])


def test_several_processes_lose_nothing_and_store_nothing_twice(app: Flask) -> None:
    agency = add_agency(app, DIF)
    processes, shared, own = 4, 6, 6
    plans = []
    for process in range(processes):
        plan = []
        for number in range(shared):  # the same local ids in every process, other bodies
            body = envelope(f"SHARED-{number}", record_data(process, number))
            plan.append((body, {}))
        for number in range(own):
            body = envelope(f"P{process}-{number}", record_data(process, 100 + number))
            plan.append((body, {}))
        plans.append(plan)
    answers = run_processes(app, agency, plans)

    assert len(answers) == processes * (shared + own)
    assert {status for status, _, _ in answers} == {201}, answers
    stored = {(a["record_id"], a["version"]) for _, a, _ in answers}
    assert len(stored) == len(answers)  # no two pushes were given the same version

    assert count(app, Record) == shared + processes * own
    assert count(app, RecordVersion) == len(answers)
    versions: dict[str, list[int]] = {}
    for record_id, version in rows(app, select(RecordVersion.record_id, RecordVersion.version)):
        versions.setdefault(record_id, []).append(version)
    for record_id, numbers in versions.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), record_id
    assert stored == {(r, v) for r, numbers in versions.items() for v in numbers}
    latest = dict(rows(app, select(Record.id, Record.latest_version)))
    assert latest == {r: len(numbers) for r, numbers in versions.items()}
    by_local_id = dict(rows(app, select(Record.local_id, Record.latest_version)))
    assert {by_local_id[f"SHARED-{n}"] for n in range(shared)} == {processes}


def test_one_idempotency_key_sent_twenty_times_at_once_stores_one_push(app: Flask) -> None:
    agency = add_agency(app, DIF)
    body = envelope("EXP-RETRY", record_data(0, 1))
    headers = {"Idempotency-Key": "nightly-2024-05-20-000317"}
    answers = run_processes(app, agency, [[(body, headers)] for _ in range(20)])

    assert len(answers) == 20
    assert {status for status, _, _ in answers} == {201}, answers
    bodies = {json.dumps(answer, sort_keys=True) for _, answer, _ in answers}
    assert len(bodies) == 1  # every caller got the first answer
    assert sum(1 for _, _, replayed in answers if replayed == "true") == 19
    assert count(app, Record) == 1
    assert count(app, RecordVersion) == 1
    assert count(app, IdempotencyKey) == 1


@pytest.mark.parametrize("same_body", [True, False])
def test_the_same_record_pushed_at_once_without_a_key(app: Flask, same_body: bool) -> None:
    agency = add_agency(app, DIF)
    plans = [
        [(envelope("EXP-1", record_data(0 if same_body else process, 1)), {})]
        for process in range(6)
    ]
    answers = run_processes(app, agency, plans)
    assert all(status in (200, 201) for status, _, _ in answers), answers
    assert len({a["record_id"] for _, a, _ in answers}) == 1
    if same_body:
        # One stores it; the others find it identical to the latest version.
        assert sorted(status for status, _, _ in answers) == [200] * 5 + [201]
        assert count(app, RecordVersion) == 1
    else:
        assert sorted(a["version"] for _, a, _ in answers) == [1, 2, 3, 4, 5, 6]
        assert count(app, RecordVersion) == 6
