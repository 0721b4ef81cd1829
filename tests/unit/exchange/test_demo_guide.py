"""What ``puente demo`` prints is safe to follow: it refuses an address it cannot listen on
before it seeds or prints a secret, says so when other machines reach it, aims every command at
the hub's public address, names the credentials file and counts what the hub holds; the record
its guide pushes is a new child of the pushing agency, not a copy of a seeded one.

gunicorn is never started: ``os.execvpe`` is replaced, and the metric folders a server would
make go under the test's own folder.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from exchange import create_app, db
from exchange.child_duplicates import probable_duplicates
from exchange.cli import hub as hub_cli
from exchange.cli import main
from exchange.demo_data import SAMPLE_AGENCY, SAMPLE_LOCAL_ID, demo_records, sample_push
from exchange.listening import cannot_listen, listens_beyond_this_machine
from exchange.records import Record
from schemas.envelope import validate_envelope

Exec = list[tuple[list[str], dict[str, str]]]


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """A demo folder on the backend under test (the demo's own database is SQLite by default;
    ``PUENTE_DATABASE_URL`` puts it anywhere)."""
    folder = tmp_path / "instance"
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(folder))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    return folder


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Exec:
    calls: Exec = []
    monkeypatch.setattr(os, "execvpe", lambda _file, argv, env: calls.append((argv, env)))
    (tmp_path / "shm").mkdir()
    monkeypatch.setattr(hub_cli, "SHARED_MEMORY", tmp_path / "shm")
    monkeypatch.delenv("PUENTE_ACCESS_LOG", raising=False)
    return calls


@pytest.fixture
def busy_address() -> Iterator[str]:
    """An address another program listens on (as gunicorn would, SO_REUSEADDR and all)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield f"127.0.0.1:{other.getsockname()[1]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo(*args: str) -> Result:
    return CliRunner().invoke(main, ["demo", *args])


@pytest.mark.parametrize("how", ["--bind", "PUENTE_BIND"])
def test_a_busy_address_is_refused_before_anything_is_seeded_or_printed(
    how: str,
    instance: Path,
    exec_calls: Exec,
    busy_address: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if how == "PUENTE_BIND":
        monkeypatch.setenv("PUENTE_BIND", busy_address)
        refused = demo()
    else:
        refused = demo("--bind", busy_address)
    assert refused.exit_code != 0
    assert refused.stdout == ""  # no guide, no secret aimed at someone else's port
    [line] = refused.stderr.splitlines()
    assert f"no se puede escuchar en {busy_address}" in line
    assert f"cannot listen on {busy_address}: the address is already in use" in line
    assert "PUENTE_BIND" in line and "--bind" in line
    assert exec_calls == []
    assert not (instance / "demo").exists()  # nothing seeded
    assert list((tmp_path / "shm").iterdir()) == []  # no metric folder left behind

    also_json = demo("--json", "--bind", busy_address)
    assert also_json.exit_code != 0 and also_json.stdout == ""


def test_serve_refuses_a_busy_address_too(
    instance: Path, exec_calls: Exec, busy_address: str, tmp_path: Path
) -> None:
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    refused = CliRunner().invoke(main, ["serve", "--bind", busy_address])
    assert refused.exit_code != 0
    assert f"cannot listen on {busy_address}" in refused.stderr
    assert exec_calls == [] and list((tmp_path / "shm").iterdir()) == []


def test_no_serve_does_not_need_the_address(
    instance: Path, exec_calls: Exec, busy_address: str
) -> None:
    seeded = demo("--no-serve", "--bind", busy_address)
    assert seeded.exit_code == 0, seeded.output
    assert exec_calls == []


def test_the_refusal_says_why_for_each_kind_of_address() -> None:
    assert cannot_listen("127.0.0.1:99999") is not None
    assert cannot_listen("127.0.0.1:http") is not None
    # An address of no interface of this machine (TEST-NET-3).
    assert cannot_listen("203.0.113.1:8000") == (
        "esa dirección no es de esta máquina",
        "that address is not one of this machine's",
    )
    assert cannot_listen(f"127.0.0.1:{free_port()}") is None
    assert cannot_listen("unix:/tmp/puente.sock") is None  # gunicorn's to check


def test_a_demo_other_machines_reach_says_so_and_prints_an_address_to_call(
    instance: Path, exec_calls: Exec
) -> None:
    port = free_port()
    served = demo("--bind", f"0.0.0.0:{port}")
    assert served.exit_code == 0, served.output
    [warning] = [line for line in served.stderr.splitlines() if "warning" in line]
    assert warning.startswith("aviso / warning: la demo escucha en 0.0.0.0:")
    assert "son públicas" in warning and "they are public" in warning
    assert "0.0.0.0" not in served.stdout
    assert f"http://127.0.0.1:{port}/oauth/token" in served.stdout
    [(_argv, env)] = exec_calls
    assert env["PUENTE_BIND"] == f"0.0.0.0:{port}"

    on_loopback = demo("--bind", f"127.0.0.1:{free_port()}")
    assert on_loopback.exit_code == 0 and "warning" not in on_loopback.stderr
    quiet = demo("--no-serve", "--bind", f"0.0.0.0:{port}")
    assert "warning" not in quiet.stderr


def test_which_addresses_other_machines_reach() -> None:
    assert not listens_beyond_this_machine("127.0.0.1:8000")
    assert not listens_beyond_this_machine("localhost:8000")
    assert not listens_beyond_this_machine("[::1]:8000")
    assert not listens_beyond_this_machine("unix:/tmp/puente.sock")
    assert listens_beyond_this_machine("0.0.0.0:8000")
    assert listens_beyond_this_machine("[::]:8000")
    assert listens_beyond_this_machine(":8000")  # gunicorn's every interface


def test_the_guide_uses_the_configured_public_url(
    instance: Path, exec_calls: Exec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUENTE_PUBLIC_URL", "https://demo.example.org/")
    printed = demo("--bind", f"0.0.0.0:{free_port()}")
    assert printed.exit_code == 0, printed.output
    assert "https://demo.example.org/oauth/token" in printed.stdout
    assert "http://" not in printed.stdout
    answer = json.loads(demo("--no-serve", "--json").stdout)
    assert answer["url"] == "https://demo.example.org"


def guide_counts(output: str) -> tuple[str, str]:
    held = next(line for line in output.splitlines() if "on the hub:" in line)
    added = next(line for line in output.splitlines() if "added by this run:" in line)
    return held.split(":", 1)[1].strip(), added.split(":", 1)[1].strip()


def hub_client() -> tuple[Flask, FlaskClient]:
    """The demo hub (``PUENTE_*`` as the fixtures set them) and a client of it."""
    app = create_app()
    return app, app.test_client()


def push_sample(client: FlaskClient, secret: str, sample: Path, key: str) -> dict[str, Any]:
    """The guide's first two commands: a token for the Chiapas DIF, then the push."""
    raw = base64.b64encode(f"{SAMPLE_AGENCY}:{secret}".encode()).decode()
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    ).get_json()["access_token"]
    pushed = client.post(
        "/v1/records",
        data=sample.read_bytes(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    assert pushed.status_code in (200, 201), pushed.get_data(as_text=True)
    return pushed.get_json()  # type: ignore[no-any-return]


def test_the_guide_names_the_credentials_file_and_counts_what_the_hub_holds(
    instance: Path,
) -> None:
    first = demo("--no-serve", "--json")
    assert first.exit_code == 0, first.output
    answer = json.loads(first.stdout)
    credentials = instance / "demo" / "credentials.json"
    assert answer["credentials_file"] == str(credentials) and credentials.is_file()
    assert answer["records"] == answer["records_added"] == len(demo_records())

    app, client = hub_client()
    secret = answer["agencies"][SAMPLE_AGENCY]["client_secret"]
    push_sample(client, secret, Path(answer["sample_push"]), "demo-1")
    app.extensions["puente.db"].engine.dispose()

    again = demo("--no-serve")
    assert again.exit_code == 0, again.output
    assert f"demo credentials:     {credentials}\n" in again.stdout
    held, added = guide_counts(again.stdout)
    assert held == f"9 instituciones / agencies, {len(demo_records()) + 1} expedientes / records"
    assert added.startswith("0 expedientes / records")
    rerun = json.loads(demo("--no-serve", "--json").stdout)
    assert (rerun["records"], rerun["records_added"]) == (len(demo_records()) + 1, 0)


def test_the_first_run_says_what_it_added(instance: Path) -> None:
    first = demo("--no-serve")
    assert first.exit_code == 0, first.output
    assert guide_counts(first.stdout) == (
        f"9 instituciones / agencies, {len(demo_records())} expedientes / records",
        f"{len(demo_records())} expedientes / records",
    )


def test_the_sample_push_is_a_new_child_of_the_pushing_agency(instance: Path) -> None:
    answer = json.loads(demo("--no-serve", "--json").stdout)
    sample = Path(answer["sample_push"])
    envelope = json.loads(sample.read_text())
    assert envelope == sample_push() and validate_envelope(envelope) == []
    data = envelope["data"]
    assert data["case"]["owner"]["agency_id"] == SAMPLE_AGENCY
    assert data["child"]["current_location"]["address"]["state"] == "07"  # Chiapas
    assert {p["operator"].get("agency_id") for p in data["placements"]} <= {SAMPLE_AGENCY, None}
    seeded = [e["data"]["child"] for _agency, e in demo_records()]
    assert all(
        (c.get("names"), c.get("date_of_birth")) != (data["child"]["names"], "2010-05-20")
        for c in seeded
    )
    assert data["child"]["identifiers"] not in [c["identifiers"] for c in seeded]

    app, client = hub_client()
    with db.database(app).sessions() as session:
        before = {(p.child_id, p.other_child_id) for p in probable_duplicates(session)}
        seeded_children = set(session.scalars(select(Record.child_id)))
    secret = answer["agencies"][SAMPLE_AGENCY]["client_secret"]
    first = push_sample(client, secret, sample, "demo-1")
    again = push_sample(client, secret, sample, "demo-2")  # the guide run a second time
    assert first["record_id"] == again["record_id"]
    assert first["child_id"] == again["child_id"]
    assert first["child_id"] not in seeded_children
    with db.database(app).sessions() as session:
        after = {(p.child_id, p.other_child_id) for p in probable_duplicates(session)}
        record = session.get(Record, first["record_id"])
        assert record is not None and record.local_id == SAMPLE_LOCAL_ID
    assert after == before  # the sample is nobody's probable duplicate
    app.extensions["puente.db"].engine.dispose()


def test_an_earlier_demos_sample_is_replaced_on_a_rerun(instance: Path) -> None:
    assert demo("--no-serve").exit_code == 0
    sample = instance / "demo" / "push-example.json"
    earlier = dict(demo_records()[0][1], local_id=SAMPLE_LOCAL_ID)  # a seeded child's copy
    sample.write_text(json.dumps(earlier))
    assert demo("--no-serve").exit_code == 0
    assert json.loads(sample.read_text()) == sample_push()
    assert oct(sample.stat().st_mode & 0o777) == oct(0o600)


def test_no_two_demo_records_share_a_case_number() -> None:
    numbers = [
        e["data"]["case"]["case_number"]
        for _agency, e in demo_records()
        if "case_number" in e["data"]["case"]
    ]
    assert len(numbers) == len(set(numbers))
    assert sample_push()["data"]["case"]["case_number"] not in numbers
