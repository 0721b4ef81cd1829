"""An office with no web server, end to end: its spreadsheet goes in with ``puente import``
through a real ``puente serve`` (API mode, the agency's own credentials), a referral made to
another office is delivered by the outbox worker as a signed file in that office's drop
folder, and the office verifies the file with the key the hub publishes."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy import select, update

from exchange import db
from exchange.agencies import Agency, register_agency
from exchange.outbox_delivery import run_worker
from exchange.records import Record
from tests.conftest import make_hub
from tests.e2e.test_serve import free_port, wait_until_ready

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

PUENTE = [sys.executable, "-m", "exchange.cli"]
OFFICE, RECIPIENT = "mx.chp.dif", "mx.chp.tapachula.dif"
PROCURADURIA = "mx.chp.procuraduria"
SCOPES = ["records:write", "records:read"]
#: A separated 15-year-old in the spreadsheet: the Procuraduría consents for him (suplencia).
REFERRED = "DIF-CHP-2024-0104"
SPREADSHEET = Path(__file__).resolve().parents[1] / "unit/adapters/fixtures/csv/dif-estatal.csv"


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, FILE_DROP_PATH=str(tmp_path / "drop"))
    yield app
    app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def served(hub: Flask, tmp_path: Path, database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env.update(
        PUENTE_INSTANCE_PATH=hub.instance_path,
        PUENTE_DATABASE_URL=database_url,
        PUENTE_PUBLIC_URL=base,
        PUENTE_ACCESS_LOG=str(tmp_path / "access.log"),
    )
    process = subprocess.Popen(
        [*PUENTE, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(base, process)
        yield base, env
    finally:
        process.terminate()
        process.wait(20)


def register(app: Flask) -> dict[str, str]:
    secrets = {}
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, level, jurisdiction, scopes in (
            (OFFICE, "state", "07", SCOPES),
            (RECIPIENT, "municipal", "07089", SCOPES),
            (PROCURADURIA, "state", "07", ["consent:write", "consent:read"]),
        ):
            registered = register_agency(
                session, agency_id, agency_id, level, jurisdiction, scopes, with_secret=True
            )
            assert registered.client_secret is not None
            secrets[agency_id] = registered.client_secret
        # The recipient collects files: its "webhook" is the file drop.
        session.execute(
            update(Agency).where(Agency.id == RECIPIENT).values(webhook_url="file-drop")
        )
    return secrets


def call(base: str, method: str, path: str, *, token: str | None = None, body: Any = None) -> Any:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None


def token_of(base: str, agency_id: str, secret: str, scope: str) -> str:
    form = f"grant_type=client_credentials&scope={scope.replace(' ', '+')}".encode()
    pair = base64.b64encode(f"{agency_id}:{secret}".encode()).decode()
    request = urllib.request.Request(
        base + "/oauth/token",
        data=form,
        headers={"Authorization": f"Basic {pair}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def suplencia(grantee: str) -> dict[str, Any]:
    """The Procuraduría's consent for a separated child: ``grantee`` may receive a referral of
    the child's identity data for case management."""
    return {
        "status": "active",
        "grantor": {
            "type": "procuraduria",
            "representation": "suplencia",
            "agency_id": PROCURADURIA,
            "identity_verified": True,
        },
        "grantee": [{"agency_id": grantee}],
        "decision": "deny",
        "period": {"start": "2026-01-01T00:00:00-06:00", "end": "2028-06-01T00:00:00-06:00"},
        "policy_basis": [{"code": "lgdnna_art_106_suplencia"}],
        "provision": [
            {
                "decision": "permit",
                "actor": [{"agency_id": grantee}],
                "purpose": ["case_management"],
                "data_category": ["identity"],
            }
        ],
    }


def test_spreadsheet_in_through_the_api_and_a_referral_out_by_file_drop(
    hub: Flask, served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    secrets = register(hub)

    # The office's spreadsheet, with one row that cannot be read.
    text = SPREADSHEET.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    broken = {**rows[0], "folio": "DIF-CHP-2024-0999", "fecha_nacimiento": "31/02/2015"}
    sheet = tmp_path / "casos.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, broken])
    imported = subprocess.run(
        [*PUENTE, "import", "--adapter", "csv", "--mapping", "dif-estatal", str(sheet),
         "--agency", OFFICE, "--hub", base, "--json"],
        env={**env, "PUENTE_CLIENT_SECRET": secrets[OFFICE]},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert imported.returncode == 1 and imported.stdout, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["mode"], summary["stored"], summary["rejected"]) == ("api", len(rows), 1)
    rejects = list(csv.DictReader((tmp_path / "casos-rejects.csv").open(encoding="utf-8")))
    assert [row["folio"] for row in rejects] == ["DIF-CHP-2024-0999"]
    assert "31/02/2015" in rejects[0]["errores/errors"]

    # What it sent it can read back (export, on the hub's machine).
    exported = tmp_path / "mine.ndjson"
    subprocess.run(
        [*PUENTE, "export", "--adapter", "ndjson", "--agency", OFFICE, "--purpose",
         "case_management", "--out", str(exported)],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert sorted(json.loads(line)["local_id"] for line in exported.open()) == sorted(
        row["folio"] for row in rows
    )

    # The Procuraduría consents, and the office refers the boy's record to Tapachula.
    with db.database(hub).sessions() as session:
        record_id, child_id = session.execute(
            select(Record.id, Record.child_id).where(Record.local_id == REFERRED)
        ).one()
    consenting = token_of(base, PROCURADURIA, secrets[PROCURADURIA], "consent:write")
    call(
        base,
        "POST",
        f"/v1/children/{child_id}/consents",
        token=consenting,
        body=suplencia(RECIPIENT),
    )
    token = token_of(base, OFFICE, secrets[OFFICE], "records:write records:read")
    share = call(
        base,
        "POST",
        f"/v1/records/{record_id}/referrals",
        token=token,
        body={"to": RECIPIENT, "purpose": "case_management", "categories": ["identity"]},
    )

    # The worker delivers it as a file in Tapachula's folder, signed by the hub.
    with hub.app_context():  # as 'puente worker' runs it
        totals = run_worker(hub, once=True)
    assert totals.delivered == 1
    [dropped] = list((tmp_path / "drop" / RECIPIENT).iterdir())
    assert dropped.name.endswith(".jwt") and not dropped.name.startswith(".")
    published = call(base, "GET", "/.well-known/puente-hub")["signing_jwk"]
    claims = jwt.decode(
        dropped.read_text().strip(), OKPKey.import_key(published), algorithms=["EdDSA"]
    ).claims
    assert claims["aud"] == RECIPIENT and claims["iss"] == hub.config["HUB_ID"]
    [event] = claims["events"].values()
    assert event["record_id"] == record_id and event["share_id"] == share["id"]
