"""docs/agencies.md §3 shows an agency system how to sign its pushes (``Puente-Signature``).

These tests take the guide's own snippets out of the file and run them against the hub, for an
agency that must sign: the Python of §2 (token) and §3 (signature and push) as printed, with
``urllib`` answered by the test client, and the one-line Python that makes the signature in the
curl example. The push must be stored with that signature, so a guide that drifts from what the
hub checks fails here.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import envelope, example, issue_token, rows
from sqlalchemy import select

from exchange import db
from exchange.agencies import register_agency
from exchange.agency_keys import generate_key_files, load_public_jwk
from exchange.records import RecordVersion

DOC = Path(__file__).resolve().parents[2] / "docs" / "agencies.md"
#: What the guide's snippets use: the hub's address and the agency's files.
HUB = "http://127.0.0.1:8000"
AGENCY = "mx.chp.dif"
BODY_FILE = "expediente.json"


def section(number: int) -> str:
    """The text of the guide's ``## number.`` section."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/agencies.md has no section {number}"
    return match.group(0)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


class _Answer(io.BytesIO):
    """What ``urllib.request.urlopen`` hands back, filled from a test-client response."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(body)
        self.status = status


def urlopen_through(client: FlaskClient) -> Callable[..., _Answer]:
    """``urllib.request.urlopen`` sending each request to the test client instead of HUB."""

    def urlopen(request: urllib.request.Request, *args: Any, **kwargs: Any) -> _Answer:
        url = urllib.parse.urlsplit(request.full_url)
        assert f"{url.scheme}://{url.netloc}" == HUB, request.full_url
        headers = dict(request.header_items())
        if request.data is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # as urllib sends it
        response = client.open(
            url.path, method=request.get_method(), data=request.data, headers=headers
        )
        body = response.get_data()
        if response.status_code >= 400:
            raise urllib.error.HTTPError(
                request.full_url,
                response.status_code,
                body.decode(),
                response.headers,  # type: ignore[arg-type]
                io.BytesIO(body),
            )
        return _Answer(response.status_code, body)

    return urlopen


@pytest.fixture
def hub(hub_factory: Callable[..., Flask], tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = hub_factory(tmp_path, database_url, PUBLIC_URL=HUB)
    yield app
    app.extensions["puente.db"].engine.dispose()


@pytest.fixture
def agency_folder(hub: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The agency's working folder as the guide has it: ``keys/mx.chp.dif.key`` (as ``puente
    keys generate --out ./keys --name mx.chp.dif`` writes it) and the push body in
    ``expediente.json``; the agency is registered with that key and must sign."""
    folder = tmp_path / "agency"
    files = generate_key_files(folder / "keys", AGENCY)
    with hub.app_context():
        session = db.database(hub).sessions()
        with session.begin():
            register_agency(
                session,
                AGENCY,
                "Sistema DIF Chiapas",
                "state",
                "07",
                ["records:write", "records:read"],
                public_jwk=load_public_jwk(files.public_key),
                require_signature=True,
                kind="state_dif",
            )
        session.close()
    # Formatted as a person would save it (indented, accents unescaped): the canonical form,
    # not these bytes, is what is signed.
    body = envelope("CHP-FIRMADO-0001", example("typical"))
    (folder / BODY_FILE).write_text(
        json.dumps(dict(reversed(body.items())), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    monkeypatch.chdir(folder)
    return folder


def stored_signatures(app: Flask) -> list[tuple[str | None, str | None]]:
    return [
        (signature, kid)
        for signature, kid in rows(app, select(RecordVersion.signature, RecordVersion.signing_kid))
    ]


def key_id(folder: Path) -> str:
    return str(load_public_jwk(folder / "keys" / f"{AGENCY}.pub")["kid"])


def test_the_guides_python_signs_a_push_the_hub_stores_with_its_signature(
    hub: Flask,
    agency_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [token_code] = blocks(section(2), "python")
    [signing_code] = blocks(section(3), "python")
    client = hub.test_client()
    monkeypatch.setattr(urllib.request, "urlopen", urlopen_through(client))
    names: dict[str, Any] = {"__name__": "agency_system"}
    exec(compile(token_code + "\n" + signing_code, str(DOC), "exec"), names)

    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith("201 {"), printed
    [(signature, kid)] = stored_signatures(hub)
    body = json.loads((agency_folder / BODY_FILE).read_text(encoding="utf-8"))
    assert signature == names["puente_signature"](body)  # Ed25519 signatures are deterministic
    assert kid == key_id(agency_folder)
    _header, empty, _signature = str(signature).split(".")
    assert empty == ""  # detached
    token = issue_token(hub, AGENCY, ["records:read"])
    record_id = rows(hub, select(RecordVersion.record_id))[0][0]
    versions = client.get(
        f"/v1/records/{record_id}/versions",
        query_string={"purpose": "case_management"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()["versions"]
    assert versions[0]["signed"] is True and versions[0]["signing_kid"] == kid

    # The bulk form the guide gives: each line carries its own "signature" member.
    other = envelope("CHP-FIRMADO-0002", example("typical"))
    line = {**other, "signature": names["puente_signature"](other)}
    answer = client.post(
        "/v1/records/bulk",
        data=json.dumps(line, ensure_ascii=False).encode() + b"\n",
        headers={
            "Authorization": f"Bearer {issue_token(hub, AGENCY, ['records:write'])}",
            "Content-Type": "application/x-ndjson",
        },
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert json.loads(answer.get_data(as_text=True).splitlines()[0])["status"] == "stored"
    assert len(stored_signatures(hub)) == 2


def test_the_guides_curl_signature_is_accepted_and_an_unsigned_push_is_not(
    hub: Flask, agency_folder: Path
) -> None:
    [curl_example] = blocks(section(3), "sh")
    python = re.search(r"SIGNATURE=\$\(python -W ignore -c '(.*?)'\)", curl_example, re.S)
    assert python, curl_example
    # What the curl line sends: that header and the file's bytes as they are.
    assert '-H "Puente-Signature: $SIGNATURE"' in curl_example
    assert "--data-binary @expediente.json" in curl_example
    made = subprocess.run(  # the guide's own code, run by this Python
        [sys.executable, "-W", "ignore", "-c", python.group(1)],
        cwd=agency_folder,
        capture_output=True,
        text=True,
        check=True,
    )
    signature = made.stdout.strip()
    client = hub.test_client()
    token = issue_token(hub, AGENCY, ["records:write"])
    sent = (agency_folder / BODY_FILE).read_bytes()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    unsigned = client.post("/v1/records", data=sent, headers={**headers, "Accept-Language": "en"})
    assert unsigned.status_code == 401
    assert unsigned.get_json()["detail"] == (
        "this agency must sign its pushes: the signature is missing from the Puente-Signature"
        " header"
    )
    signed = client.post(
        "/v1/records",
        data=sent,
        headers={**headers, "Idempotency-Key": "expediente-1", "Puente-Signature": signature},
    )
    assert signed.status_code == 201, signed.get_json()
    assert signed.get_json()["status"] == "stored"
    assert stored_signatures(hub) == [(signature, key_id(agency_folder))]
