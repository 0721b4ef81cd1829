"""``puente import`` and ``puente export`` through the real command line, on both backends:
straight into the hub's database (administrator) and through the API with the agency's own
credentials (the hub's test client stands in for the network), with rejects files, fixed
rejects sent again, re-imports that store nothing twice, and signed pushes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import OKPKey
from sqlalchemy import func, select

from exchange import db, hub_client
from exchange.agencies import register_agency
from exchange.agency_keys import public_jwk
from exchange.cli import main
from exchange.hub_client import Answer
from exchange.import_sinks import DirectSink, RecordSigner
from exchange.importer import idempotency_key
from exchange.record_push import canonical_body
from exchange.records import IdempotencyKey, Record, RecordVersion
from tests.api.records_support import example
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

OWNER, OTHER, SIGNING = "mx.chp.dif", "mx.nl.dif", "mx.chp.tapachula.dif"
HUB = "http://localhost"
SCOPES = ["records:write", "records:read"]


def flask_send(app: Flask) -> hub_client.Send:
    """The hub's test client in place of the network."""
    client = app.test_client()

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == HUB
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # base_url: the hub sees the address the client used (a private_key_jwt's audience).
        response = client.open(path, base_url=HUB, method=method, data=body, headers=headers)
        return Answer(response.status_code, dict(response.headers), response.get_data())

    return send


class Hub:
    def __init__(self, app: Flask, secrets: dict[str, str], key_file: Path) -> None:
        self.app = app
        self.secrets = secrets
        self.key_file = key_file

    def count(self, statement: Any) -> int:
        with db.database(self.app).sessions() as session:
            return int(session.scalar(statement) or 0)

    def versions(self) -> int:
        return self.count(select(func.count()).select_from(RecordVersion))

    def records(self, agency_id: str = OWNER) -> int:
        return self.count(
            select(func.count()).select_from(Record).where(Record.source_agency == agency_id)
        )


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    app = make_hub(tmp_path, database_url)
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setattr(hub_client, "default_send", lambda: flask_send(app))
    monkeypatch.chdir(tmp_path)
    key = OKPKey.generate_key("Ed25519")
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(key.as_pem(private=True))
    secrets = {}
    with app.app_context(), db.database(app).sessions.begin() as session:
        for agency_id, level, jurisdiction, signed in (
            (OWNER, "state", "07", False),
            (OTHER, "state", "19", False),
            (SIGNING, "municipal", "07089", True),
        ):
            registered = register_agency(
                session,
                agency_id,
                agency_id,
                level,
                jurisdiction,
                SCOPES,
                with_secret=True,
                public_jwk=public_jwk(key) if signed else None,
                require_signature=signed,
            )
            assert registered.client_secret is not None
            secrets[agency_id] = registered.client_secret
    yield Hub(app, secrets, key_file)
    app.extensions["puente.db"].engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def envelope(local_id: str, case_number: str = "C-1", **extra: Any) -> dict[str, Any]:
    data = copy.deepcopy(example("typical"))
    data.setdefault("case", {})["case_number"] = case_number
    return {"schema": "case-record/1", "local_id": local_id, **extra, "data": data}


def write_ndjson(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def office_file(tmp_path: Path) -> Path:
    """Four good records, one the adapter refuses (bad value), one the hub refuses (a child
    id this hub never issued), and a line that is not JSON."""
    wrong_sex = envelope("L-5")
    wrong_sex["data"]["child"]["sex"] = "zzz"
    return write_ndjson(
        tmp_path / "expedientes.ndjson",
        [
            envelope("L-1"),
            envelope("L-2"),
            wrong_sex,
            envelope("L-3"),
            envelope("L-6", child_id="chd_000000000000000000000000"),
            "{not json",
            envelope("L-4"),
        ],
    )


def api(hub: Hub, agency_id: str = OWNER) -> list[str]:
    return ["--hub", HUB, "--client-secret", hub.secrets[agency_id]]


MODES = ["direct", "api"]


@pytest.mark.parametrize("mode", MODES)
def test_import_stores_good_records_and_writes_rejects_in_the_original_format(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    file = office_file(tmp_path)
    extra = api(hub) if mode == "api" else []
    result = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--json", *extra)
    assert result.exit_code == 1, result.output  # some rejected
    summary = json.loads(result.output)
    assert summary["mode"] == mode
    assert (summary["read"], summary["stored"], summary["unchanged"]) == (7, 4, 0)
    assert (summary["rejected_by_adapter"], summary["rejected_by_hub"]) == (2, 1)
    assert summary["rejected"] == 3
    assert hub.records() == 4 and hub.versions() == 4

    rejects = tmp_path / "expedientes-rejects.ndjson"
    assert summary["rejects_file"] == str(rejects)
    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [line.get("local_id") for line in lines] == ["L-5", "L-6", None]
    # The original envelope, untouched, with the reasons: the adapter's ...
    assert lines[0]["data"]["child"]["sex"] == "zzz"
    assert any(e["pointer"] == "/data/child/sex" for e in lines[0]["errors"])
    # ... the hub's, for the line it refused ...
    assert lines[1]["child_id"] == "chd_000000000000000000000000"
    [refusal] = lines[1]["errors"]
    assert (
        refusal["pointer"] == "/child_id"
        and "chd_000000000000000000000000" in (refusal["message_en"])
    )
    # ... and the text that was not JSON.
    assert lines[2]["original"] == "{not json" and lines[2]["errors"]


@pytest.mark.parametrize("mode", MODES)
def test_importing_again_stores_nothing_twice_and_fixed_rejects_complete_the_file(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    file = office_file(tmp_path)
    extra = api(hub) if mode == "api" else []
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER, *extra).exit_code == 1
    again = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--json", *extra)
    summary = json.loads(again.output)
    assert (summary["stored"], summary["unchanged"], summary["rejected"]) == (0, 4, 3)
    assert hub.versions() == 4

    # The office fixes the rejects file where it stands (the errors member may stay) and
    # sends it again; what is still wrong stays in it.
    rejects = tmp_path / "expedientes-rejects.ndjson"
    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    lines[0]["data"]["child"]["sex"] = "female"
    del lines[1]["child_id"]
    write_ndjson(rejects, lines)
    fixed = run("import", "--adapter", "ndjson", rejects, "--agency", OWNER, "--json", *extra)
    summary = json.loads(fixed.output)
    assert fixed.exit_code == 1 and (summary["stored"], summary["rejected"]) == (2, 1)
    assert hub.records() == 6 and hub.versions() == 6
    left = rejects.read_text(encoding="utf-8").splitlines()
    assert len(left) == 1 and json.loads(left[0])["original"] == "{not json"

    # Without the line that can never be fixed, the whole file is in: exit code 0.
    write_ndjson(rejects, lines[:2])
    done = run("import", "--adapter", "ndjson", rejects, "--agency", OWNER, *extra)
    assert done.exit_code == 0, done.output
    assert hub.records() == 6 and hub.versions() == 6


@pytest.mark.parametrize("mode", MODES)
def test_one_at_a_time_under_idempotency_keys(hub: Hub, tmp_path: Path, mode: str) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("K-1"), envelope("K-2")])
    extra = api(hub) if mode == "api" else []
    args = ("import", "--adapter", "ndjson", file, "--agency", OWNER, "--batch", "1", "--json")
    first = json.loads(run(*args, *extra).output)
    assert first["stored"] == 2
    # Someone updates K-1 since; the old file sent again must not bring the old body back.
    updated = write_ndjson(tmp_path / "nuevo.ndjson", [envelope("K-1", case_number="C-2")])
    assert json.loads(run(*args[:3], updated, *args[4:], *extra).output)["stored"] == 1
    again = json.loads(run(*args, *extra).output)
    assert (again["stored"], again["replayed"], again["unchanged"]) == (0, 2, 0)
    assert hub.versions() == 3
    _canonical, sha256 = canonical_body(envelope("K-2"))
    key = idempotency_key(OWNER, "K-2", sha256)
    assert (
        hub.count(select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key))
        == 1
    )


@pytest.mark.parametrize("mode", MODES)
def test_an_agency_that_must_sign_signs_with_its_key(hub: Hub, tmp_path: Path, mode: str) -> None:
    file = write_ndjson(tmp_path / "firmados.ndjson", [envelope("S-1"), envelope("S-2")])
    extra = ["--hub", HUB, "--client-secret", hub.secrets[SIGNING]] if mode == "api" else []
    unsigned = run("import", "--adapter", "ndjson", file, "--agency", SIGNING, "--json", *extra)
    assert unsigned.exit_code == 1 and json.loads(unsigned.output)["rejected_by_hub"] == 2
    rejects = json.loads((tmp_path / "firmados-rejects.ndjson").read_text().splitlines()[0])
    assert rejects["errors"][0]["pointer"] == "/signature"
    signed = run(
        "import", "--adapter", "ndjson", file, "--agency", SIGNING, "--key", hub.key_file, *extra
    )
    assert signed.exit_code == 0, signed.output
    assert hub.records(SIGNING) == 2


def test_private_key_jwt_instead_of_a_secret(hub: Hub, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("P-1")])
    result = run(
        "import",
        "--adapter",
        "ndjson",
        file,
        "--agency",
        SIGNING,
        "--hub",
        HUB,
        "--key",
        hub.key_file,
    )
    assert result.exit_code == 0, result.output
    assert hub.records(SIGNING) == 1


def test_summary_in_spanish_and_english(hub: Hub, tmp_path: Path) -> None:
    file = office_file(tmp_path)
    result = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--lang", "es")
    spanish, english, rejects = result.output.splitlines()[-3:]
    assert spanish.startswith("Importación: leídos 7, guardados 4, sin cambios 0, rechazados 3")
    assert english.startswith("Import: read 7, stored 4, unchanged 0, rejected 3")
    assert "registros/s" in spanish and "records/s" in english
    assert rejects.endswith("expedientes-rejects.ndjson")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--adapter", "nope", "--agency", OWNER], "nope"),
        (["--adapter", "ndjson", "--agency", "mx.unknown.dif"], "mx.unknown.dif"),
        (["--adapter", "ndjson", "--agency", OWNER, "--client-secret", "x"], "--hub"),
        (["--adapter", "ndjson", "--agency", OWNER, "--hub", HUB], "--client-secret"),
        (["--adapter", "ndjson", "--agency", OWNER, "--hub", HUB, "--client-secret", "x"], "token"),
        (["--adapter", "ndjson", "--agency", OWNER, "--client-id", OTHER], "--client-id"),
    ],
)
def test_nothing_imported_when_the_command_cannot_start(
    hub: Hub, tmp_path: Path, args: list[str], says: str
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("U-1")])
    result = run("import", file, *args, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert hub.versions() == 0
    assert not (tmp_path / "uno-rejects.ndjson").exists()


# -- export ------------------------------------------------------------------------------------


def child_of(hub: Hub, local_id: str) -> str:
    with db.database(hub.app).sessions() as session:
        return str(session.scalar(select(Record.child_id).where(Record.local_id == local_id)))


@pytest.mark.parametrize("mode", MODES)
def test_export_gives_what_the_agency_may_read(hub: Hub, tmp_path: Path, mode: str) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("E-1"), envelope("E-2", "C-9")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    child = child_of(hub, "E-2")
    out = tmp_path / "salida.ndjson"
    common = ["export", "--adapter", "ndjson", "--purpose", "case_management", "--out", out]
    owner = run(
        *common, "--agency", OWNER, "--child", child, "--json", *(api(hub) if mode == "api" else [])
    )
    assert owner.exit_code == 0, owner.output
    assert json.loads(owner.output)["records"] >= 1
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    e2 = next(doc for doc in exported if doc["local_id"] == "E-2")
    assert e2["data"] == envelope("E-2", "C-9")["data"] and e2["child_id"] == child

    # Another agency, with no referral and no consent, gets nothing of it.
    elsewhere = tmp_path / "otra.ndjson"
    other = run(
        *common[:-1],
        elsewhere,
        "--agency",
        OTHER,
        "--child",
        child,
        "--json",
        *(api(hub, OTHER) if mode == "api" else []),
    )
    assert other.exit_code == 0, other.output
    assert json.loads(other.output)["records"] == 0
    assert not elsewhere.exists() or elsewhere.read_text().strip() == ""


def test_export_without_a_child_takes_every_child_of_the_agency(hub: Hub, tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("E-1"), envelope("E-2", "C-9")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "todo.ndjson"
    result = run(
        "export",
        "--adapter",
        "ndjson",
        "--agency",
        OWNER,
        "--purpose",
        "case_management",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["local_id"] for line in out.read_text().splitlines()) == [
        "E-1",
        "E-2",
    ]


# -- a spreadsheet, rejects in its own format -------------------------------------------------

SPREADSHEET = Path(__file__).resolve().parents[1] / "unit/adapters/fixtures/csv/dif-estatal.csv"


@pytest.mark.parametrize("mode", MODES)
def test_spreadsheet_rejects_carry_the_adapters_and_the_hubs_reasons(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    import csv

    rows = list(csv.DictReader(SPREADSHEET.open(encoding="utf-8")))
    broken = {**rows[1], "folio": "DIF-CHP-2024-0999", "fecha_nacimiento": "31/02/2015"}
    sheet = tmp_path / "casos.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), delimiter=";")  # as Excel in Mexico
        writer.writeheader()
        writer.writerows([*rows, broken])
    extra = ["--hub", HUB, "--client-secret", hub.secrets[SIGNING]] if mode == "api" else []
    args = ["import", "--adapter", "csv", "--mapping", "dif-estatal"]
    # The agency must sign its pushes and the office forgot its key: the hub refuses every row.
    unsigned = run(*args, sheet, "--agency", SIGNING, "--json", *extra)
    summary = json.loads(unsigned.output)
    assert unsigned.exit_code == 1
    assert (summary["rejected_by_adapter"], summary["rejected_by_hub"]) == (1, len(rows))
    rejects = tmp_path / "casos-rejects.csv"
    text = rejects.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("errores/errors;folio;")  # same delimiter
    back = list(csv.DictReader(text.splitlines(), delimiter=";"))
    assert [row["folio"] for row in back] == [*(row["folio"] for row in rows), "DIF-CHP-2024-0999"]
    assert back[0]["nombre(s)"] == rows[0]["nombre(s)"]  # the row as it came
    assert (
        "/signature" in back[0]["errores/errors"]
        and "Puente-Signature" in back[0]["errores/errors"]
    )
    assert "31/02/2015" in back[-1]["errores/errors"]

    # With the key, the rejects file itself goes in; the impossible date stays behind.
    signed = run(*args, rejects, "--agency", SIGNING, "--key", hub.key_file, "--json", *extra)
    summary = json.loads(signed.output)
    assert (summary["stored"], summary["rejected"]) == (len(rows), 1)
    assert hub.records(SIGNING) == len(rows)
    [left] = list(csv.DictReader(rejects.read_text(encoding="utf-8").splitlines(), delimiter=";"))
    assert left["folio"] == "DIF-CHP-2024-0999"
    again = run(*args, sheet, "--agency", SIGNING, "--key", hub.key_file, "--json", *extra)
    assert json.loads(again.output)["unchanged"] == len(rows) and hub.versions() == len(rows)


def test_a_hub_that_goes_away_leaves_the_rest_in_the_rejects_file(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import importer
    from exchange.hub_client import HubError

    working = flask_send(hub.app)
    bulk_calls = []

    def failing_after_one_batch(
        method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        if url.endswith("/v1/records/bulk"):
            bulk_calls.append(url)
            if len(bulk_calls) > 1:
                raise HubError("caído", "connection refused", transient=True)
        return working(method, url, body, headers)

    monkeypatch.setattr(hub_client, "default_send", lambda: failing_after_one_batch)
    monkeypatch.setattr(importer.time, "sleep", lambda _seconds: None)
    file = write_ndjson(tmp_path / "cinco.ndjson", [envelope(f"G-{n}") for n in range(5)])
    result = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--batch", "2",
                 "--json", *api(hub))  # fmt: skip
    summary = json.loads(result.output)
    assert result.exit_code == 1
    assert (summary["stored"], summary["not_sent"]) == (2, 3)
    assert "connection refused" in summary["stopped"]
    assert len(bulk_calls) == 1 + importer.SEND_ATTEMPTS  # tried again, then given up
    left = [
        json.loads(line) for line in (tmp_path / "cinco-rejects.ndjson").read_text().splitlines()
    ]
    assert [line["local_id"] for line in left] == ["G-2", "G-3", "G-4"]
    assert "send this file again" in left[0]["errors"][0]["message_en"]
    # Sent again once the hub is back: the rest goes in, nothing twice.
    monkeypatch.setattr(hub_client, "default_send", lambda: working)
    again = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--json", *api(hub))
    assert json.loads(again.output)["stored"] == 3 and hub.versions() == 5


@pytest.mark.parametrize("keyed", [False, True])
def test_a_document_with_no_canonical_form_is_a_rejected_row_not_a_crash(
    hub: Hub, keyed: bool
) -> None:
    # The built-in adapters validate first, so only an adapter that does not could hand the
    # sink a number JSON cannot carry exactly; signing it must not stop the import.
    too_large = {**envelope("N-1"), "extra": 2**60}
    signer = RecordSigner(OKPKey.import_key(hub.key_file.read_bytes()))
    with hub.app.app_context():
        sink = DirectSink(hub.app, SIGNING, signer=signer, keyed=keyed)
        try:
            outcomes = sink.push([too_large, envelope("N-2")])
        finally:
            sink.close()
    assert [outcome.status for outcome in outcomes] == ["rejected", "stored"]
    (problem,) = outcomes[0].problems
    assert problem.pointer == "/extra"
    assert "2^53" in problem.es and "demasiado grande" in problem.es
    assert "too large" in problem.en
