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

from exchange import db, exporter, hub_client
from exchange.agencies import register_agency
from exchange.agency_keys import public_jwk
from exchange.cli import main
from exchange.hub_client import Answer
from exchange.import_sinks import DirectSink, RecordSigner
from exchange.importer import idempotency_key
from exchange.record_push import canonical_body
from exchange.records import IdempotencyKey, Record, RecordVersion
from exchange.sharing import RecordShare
from tests.api.records_support import example
from tests.conftest import make_hub

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

OWNER, OTHER, SIGNING = "mx.chp.dif", "mx.nl.dif", "mx.chp.tapachula.dif"
HUB = "http://127.0.0.1:8000"  # the test hub's PUBLIC_URL
OTHER_ADDRESS = "http://localhost"  # the same hub, reached at another address
SCOPES = ["records:write", "records:read"]


def flask_send(app: Flask) -> hub_client.Send:
    """The hub's test client in place of the network."""
    client = app.test_client()

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        assert base in (HUB, OTHER_ADDRESS)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # base_url: the hub sees the address the client used (a private_key_jwt's audience).
        response = client.open(path, base_url=base, method=method, data=body, headers=headers)
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


FHIR_R4 = Path(__file__).parents[1] / "unit" / "adapters" / "fixtures" / "fhir"
R4_LOCAL_IDS = "https://fhir.dif-bc.example/sid/expediente"


def test_a_fhir_case_with_a_broken_part_waits_whole_and_its_fixed_rejects_complete_it(
    hub: Hub, tmp_path: Path
) -> None:
    bundle = json.loads((FHIR_R4 / "bundle_r4_searchset.json").read_text(encoding="utf-8"))
    # The case alone: its Patient (without another hub's child id) and its parts.
    bundle["entry"] = [
        entry
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] in {"Patient", "RelatedPerson", "Encounter"}
    ]
    patient = bundle["entry"][0]["resource"]
    patient["identifier"] = [
        i for i in patient["identifier"] if i.get("system") != "urn:puente:child"
    ]
    good_start = bundle["entry"][2]["resource"]["period"]["start"]
    bundle["entry"][2]["resource"]["period"]["start"] = "2023-13-03"  # an impossible month
    file = tmp_path / "bundle.json"
    file.write_text(json.dumps(bundle), encoding="utf-8")
    args = ["--adapter", "fhir", "--option", f"local_id_system={R4_LOCAL_IDS}"]
    first = run("import", *args, file, "--agency", OWNER, "--json")
    assert json.loads(first.output)["stored"] == 0, first.output  # not a case missing a part
    assert hub.versions() == 0

    # The rejects Bundle holds the case whole (its Patient too): fixed, it goes in.
    rejects = tmp_path / "bundle-rejects.json"
    kept = json.loads(rejects.read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in kept["entry"]]
    assert "Patient" in {resource["resourceType"] for resource in resources}
    broken = next(r for r in resources if r.get("period", {}).get("start") == "2023-13-03")
    broken["period"]["start"] = good_start
    rejects.write_text(json.dumps(kept), encoding="utf-8")
    fixed = run("import", *args, rejects, "--agency", OWNER, "--json")
    assert json.loads(fixed.output)["stored"] == 1, fixed.output
    with db.database(hub.app).sessions() as session:
        [version] = session.scalars(select(RecordVersion)).all()
    assert version.version == 1


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("es", "no se pudo autenticar a la institución: identificador desconocido"),
        ("en", "the agency could not be authenticated: unknown or disabled client id"),
    ],
)
def test_a_wrong_client_secret_is_explained_in_the_language_asked_for(
    hub: Hub, tmp_path: Path, lang: str, words: str
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("E-1")])
    result = run(
        "import", "--adapter", "ndjson", file, "--agency", OWNER, "--hub", HUB,
        "--client-secret", "not-the-secret", "--lang", lang,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert words in result.output.lower(), result.output
    assert "cannot authenticate with methods" not in result.output


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


def test_a_hub_reached_at_another_address_needs_its_audience_pinned(
    hub: Hub, tmp_path: Path
) -> None:
    # The hub names its token endpoint on another origin than --hub: an address that is not
    # the hub could do the same to get an assertion for it, so the operator must pin it.
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("P-1")])
    command = ["import", "--adapter", "ndjson", file, "--agency", SIGNING]
    command += ["--hub", OTHER_ADDRESS, "--key", hub.key_file]
    refused = run(*command)
    assert refused.exit_code == 2, refused.output
    assert f"--audience {HUB}/oauth/token" in refused.output
    assert hub.records(SIGNING) == 0
    pinned = run(*command, "--audience", f"{HUB}/oauth/token")
    assert pinned.exit_code == 0, pinned.output
    assert hub.records(SIGNING) == 1
    alone = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--audience", HUB)
    assert alone.exit_code == 2 and "--audience goes with --hub and --key" in alone.output


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
    # ... and is told nothing was exported of the child it named (exit 1), in words that do
    # not say whether the child exists.
    assert other.exit_code == 1, other.output
    assert json.loads(other.output)["records"] == 0
    assert json.loads(other.output)["nothing_for_named_children"] is True
    assert not elsewhere.exists() or elsewhere.read_text().strip() == ""


@pytest.mark.parametrize("mode", MODES)
def test_an_agencys_own_export_imported_again_stores_nothing(
    hub: Hub, tmp_path: Path, mode: str
) -> None:
    # Pushed without child_id; the export names the child in every envelope.
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("E-1"), envelope("E-2", "C-9")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    versions = hub.versions()
    out = tmp_path / "salida.ndjson"
    extra = api(hub) if mode == "api" else []
    # (Through the API an export names its children; both records are of one child.)
    child = ["--child", child_of(hub, "E-1")] if mode == "api" else []
    exported = run(
        "export", "--adapter", "ndjson", "--agency", OWNER, "--purpose", "case_management",
        "--out", out, *child, *extra,
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert all("child_id" in json.loads(line) for line in out.read_text().splitlines())

    again = run("import", "--adapter", "ndjson", out, "--agency", OWNER, "--json", *extra)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert summary["stored"] == 0 and summary["unchanged"] + summary["replayed"] == 2, summary
    assert hub.versions() == versions

    # A real change in the exported file is still a new version.
    changed = [json.loads(line) for line in out.read_text().splitlines()]
    changed[0]["data"]["case"]["case_number"] = "C-10"
    write_ndjson(out, changed)
    assert run("import", "--adapter", "ndjson", out, "--agency", OWNER, *extra).exit_code == 0
    assert hub.versions() == versions + 1


@pytest.mark.parametrize(("status", "listed"), [("rejected", 0), ("cancelled", 0), ("pending", 1)])
def test_a_transfer_refused_or_withdrawn_adds_no_child_to_the_export(
    hub: Hub, tmp_path: Path, status: str, listed: int
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("E-1")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    with db.database(hub.app).sessions.begin() as session:
        record = session.scalars(select(Record)).one()
        session.add(
            RecordShare(
                record_id=record.id, from_agency=OWNER, agency_id=OTHER, kind="transfer",
                status=status, categories=[],
            )
        )  # fmt: skip
    assert len(exporter.children_of_agency(hub.app, OTHER)) == listed


def test_an_export_the_adapter_cannot_write_says_why_and_writes_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("E-1")])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    out = tmp_path / "r4.json"
    result = run(
        "export", "--adapter", "fhir", "--option", "version=R4", "--agency", OWNER,
        "--purpose", "case_management", "--out", out, "--lang", "es",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "escribe FHIR R5" in result.output and "Traceback" not in result.output
    assert not out.exists()


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


@pytest.mark.parametrize("mode", MODES)
def test_export_of_a_child_it_cannot_give_says_so(hub: Hub, tmp_path: Path, mode: str) -> None:
    extra = ["--hub", HUB, "--client-secret", hub.secrets[OWNER]] if mode == "api" else []
    out = tmp_path / "nada.ndjson"
    result = run(
        "export", "--adapter", "ndjson", "--agency", OWNER, "--purpose", "case_management",
        "--child", "nna_00000000000000000000", "--out", out, "--lang", "en", *extra,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "nothing was exported of nna_00000000000000000000" in result.output
    assert "Traceback" not in result.output


def test_export_after_a_merge_gives_each_record_once(hub: Hub, tmp_path: Path) -> None:
    other = envelope("E-2", "C-9")
    other["data"]["child"].pop("identifiers")  # no CURP in common: a child of its own
    file = write_ndjson(tmp_path / "dos.ndjson", [envelope("E-1"), other])
    assert run("import", "--adapter", "ndjson", file, "--agency", OWNER).exit_code == 0
    with db.database(hub.app).sessions() as session:
        first, second = sorted(session.scalars(select(Record.child_id)))
    assert first != second
    administrator = run(
        "person", "add", "--name", "Ana Admin", "--email", "ana.admin@dif.example",
        "--agency", OWNER, "--role", "administrator", "--id", "ana.admin",
    )  # fmt: skip
    assert administrator.exit_code == 0, administrator.output
    merged = run(
        "children", "merge", first, second, "--reason", "la misma niña", "--by", "ana.admin"
    )
    assert merged.exit_code == 0, merged.output
    out = tmp_path / "todo.ndjson"
    result = run(
        "export", "--adapter", "ndjson", "--agency", OWNER, "--purpose", "case_management",
        "--out", out, "--lang", "en",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["local_id"] for line in lines) == ["E-1", "E-2"]  # not twice each
    assert {line["child_id"] for line in lines} == {first}
    assert "Exported 2 records of 1 children" in result.output


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
    assert summary["needs_signing_key"] is True  # the fix is --key, not the sheet
    told = run(*args, sheet, "--agency", SIGNING, "--lang", "en", *extra)
    assert "the agency must sign its pushes: run again with --key" in told.output
    assert (summary["rejected_by_adapter"], summary["rejected_by_hub"]) == (1, len(rows))
    rejects = tmp_path / "casos-rejects.csv"
    text = rejects.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("errores/errors;fila/row;folio;")  # same delimiter
    back = list(csv.DictReader(text.splitlines(), delimiter=";"))
    assert [row["folio"] for row in back] == [*(row["folio"] for row in rows), "DIF-CHP-2024-0999"]
    # The row as the spreadsheet program numbers it (the header is row 1), here and in --json.
    assert [row["fila/row"] for row in back] == [str(n) for n in range(2, len(rows) + 3)]
    assert [item["position"] for item in summary["rejected_items"]] == [
        row["fila/row"] for row in back
    ]
    assert back[0]["nombre(s)"] == rows[0]["nombre(s)"]  # the row as it came
    assert (
        "/signature" in back[0]["errores/errors"]
        # In the office's words (a sheet has no request header nor line member), in both
        # languages, in API mode too.
        and "run puente import again with --key" in back[0]["errores/errors"]
        and "ejecute puente import otra vez con --key" in back[0]["errores/errors"]
        and "member" not in back[0]["errores/errors"]
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


def test_a_direct_import_on_sqlite_keeps_a_larger_page_cache(hub: Hub) -> None:
    # Each batch dirties index pages all over the child index; with SQLite's default 2 MiB
    # cache they are written to the WAL again and again (bench/import.py measures it).
    if hub.app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("a SQLite setting")
    with hub.app.app_context():
        sink = DirectSink(hub.app, OWNER)
        try:
            [outcome] = sink.push([envelope("CACHE-1")])
            pages = sink.session.connection().exec_driver_sql("PRAGMA cache_size").scalar()
        finally:
            sink.close()
    assert outcome.status == "stored"
    assert pages == -32768


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


# -- what reaches the person: problems of the whole file, refusals, failures ---------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


def sheet(path: Path, header: str, *rows: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode(encoding))
    return path


HEADER = "folio,nombre(s),primer_apellido,sexo,fecha_nacimiento,nacionalidad"
CSV = ["import", "--adapter", "csv", "--mapping", "dif-estatal"]


def test_a_misnamed_required_column_is_said_and_nothing_is_read(hub: Hub, tmp_path: Path) -> None:
    file = sheet(
        tmp_path / "hdr.csv",
        "Folio,Nombre(s),Fecha de nacimento,Nacionalidad",
        "HN-5,Ana,01/01/2012,Hondureña",
    )
    (tmp_path / "hdr-rejects.csv").write_text("being fixed\n")
    result = run(*CSV, file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 2, result.output  # nothing could be read: could not start
    said = "the required column 'fecha_nacimiento' is missing; is it fecha_de_nacimento?"
    assert said in result.output and "falta la columna obligatoria «fecha_nacimiento»" in (
        result.output
    )
    assert "Rechazos / rejects" not in result.output and "Traceback" not in result.output
    assert (tmp_path / "hdr-rejects.csv").read_text() == "being fixed\n"  # not replaced
    as_json = json.loads(run(*CSV, file, "--agency", OWNER, "--json").output)
    assert as_json["read"] == 0 and as_json["rejects_file"] is None
    assert as_json["file_problems"] == [
        {
            "position": "1",
            "pointer": "column:fecha_nacimiento",
            "message_es": (
                "falta la columna obligatoria «fecha_nacimiento»; ¿es fecha_de_nacimento?"
            ),
            "message_en": said,
        }
    ]
    assert hub.versions() == 0
    # Spelt as the docs show it, the header matches: "de" is a small connecting word.
    fixed = sheet(
        tmp_path / "hdr.csv",
        "Folio,Nombre(s),Fecha de nacimiento,Nacionalidad",
        "HN-5,Ana,01/01/2012,Hondureña",
    )
    assert run(*CSV, fixed, "--agency", OWNER).exit_code == 0 and hub.versions() == 1


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("libro.xlsx", b"PK\x03\x04" + bytes(range(256)) * 80, "Excel or OpenDocument workbook"),
        ("hdronly.csv", b"folio,nombre(s)\r\n", "the required column 'fecha_nacimiento'"),
    ],
)
def test_a_file_that_cannot_be_read_writes_no_rejects_and_exits_2(
    hub: Hub, tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    result = run(*CSV, file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert says in result.output and "nothing was imported" in result.output
    assert not list(tmp_path.glob("*-rejects*"))
    assert "Rechazos / rejects" not in result.output


@pytest.mark.parametrize(
    ("adapter", "says"),
    [
        ("primero", "not a Primero export"),
        ("ndjson", "not an NDJSON file"),
        ("json", "malformed JSON"),
        ("fhir", "not a FHIR Bundle"),
    ],
)
def test_the_wrong_adapter_never_writes_over_the_rejects_file_being_fixed(
    hub: Hub, tmp_path: Path, adapter: str, says: str
) -> None:
    file = sheet(tmp_path / "expedientes.csv", HEADER, "F-1,Ana,Ruiz,M,01/02/2010,Guatemala")
    rejects = tmp_path / "expedientes-rejects.csv"
    rejects.write_text("errores/errors,fila/row,folio\nfixing,2,F-9\n")
    result = run("import", "--adapter", adapter, file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert rejects.read_text() == "errores/errors,fila/row,folio\nfixing,2,F-9\n"


@pytest.mark.parametrize(
    ("encoding", "start"),
    [("cp1252", b"errores/errors;fila/row;folio"), ("utf-8-sig", b"\xef\xbb\xbferrores/errors")],
)
def test_spreadsheet_rejects_keep_the_encoding_of_the_sheet(
    hub: Hub, tmp_path: Path, encoding: str, start: bytes
) -> None:
    file = sheet(
        tmp_path / "latin.csv",
        HEADER.replace(",", ";"),
        "F-1;José;Núñez;H;02/07/2008;Hondureño",
        "F-2;María;Peña;M;31/02/2015;Guatemalteca",
        encoding=encoding,
    )
    result = run(*CSV, file, "--agency", OWNER)
    assert result.exit_code == 1, result.output
    written = (tmp_path / "latin-rejects.csv").read_bytes()
    assert written.startswith(start)
    text = written.decode(encoding)
    assert ";3;F-2;María;Peña;" in text and "febrero de 2015 tiene 28 días" in text


def test_a_row_with_too_few_cells_is_said_to_be_short(hub: Hub, tmp_path: Path) -> None:
    file = sheet(tmp_path / "cells.csv", HEADER, "B-002,María")
    result = run(*CSV, file, "--agency", OWNER, "--json")
    [rejected] = json.loads(result.output)["rejected_items"]
    assert rejected["position"] == "2"
    assert rejected["errors"][0]["message_en"].startswith(
        "the row has 2 cells and the header 6 columns"
    )


PRIMERO_CASES = Path(__file__).resolve().parents[1] / "unit/adapters/fixtures/primero"


def test_primero_refusals_name_each_case_and_ask_for_a_deny_consent(
    hub: Hub, tmp_path: Path
) -> None:
    cases = json.loads((PRIMERO_CASES / "cases_export.json").read_text())["data"]
    cases[0]["disclosure_other_orgs"] = False
    cases[1]["disclosure_other_orgs"] = True
    file = tmp_path / "casos.json"
    file.write_text(json.dumps({"data": cases[:2]}))
    codes = ["--mapping", str(PRIMERO_CASES / "codes.yaml")]
    result = run("import", "--adapter", "primero", *codes, file, "--agency", OWNER, "--lang", "es")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(
        "Acción necesaria en Puente para 1 registro importado / "
        "Action needed in Puente for 1 imported record:"
    )
    refusal = lines[at + 1]
    assert refusal.startswith(f"  posición / position data[0] ({cases[0]['id']}): ")
    assert "«denegar»" in refusal and "consent with the decision 'deny'" in refusal
    assert "se omitió" not in refusal and "left out" not in refusal
    as_json = json.loads(run("import", "--adapter", "primero", *codes, file, "--agency", OWNER,
                             "--json").output)  # fmt: skip
    [action] = as_json["action_items"]
    assert (action["position"], action["local_id"], action["pointer"]) == (
        "data[0]",
        cases[0]["id"],
        "field:disclosure_other_orgs",
    )
    assert "field:disclosure_other_orgs" not in as_json["warnings"]


def test_the_client_secret_in_the_environment_does_not_stop_a_direct_import(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exported for --hub runs, as section 3 of the docs suggests; not needed on the hub.
    monkeypatch.setenv("PUENTE_CLIENT_SECRET", hub.secrets[OWNER])
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("V-1")])
    result = run("import", "--adapter", "ndjson", file, "--agency", OWNER)
    assert result.exit_code == 0, result.output
    # Given on the command line without --hub, it is a mistake, said as such.
    explicit = run("import", "--adapter", "ndjson", file, "--agency", OWNER, "--client-secret", "x")
    assert explicit.exit_code == 2 and "--client-secret goes with --hub" in explicit.output


@pytest.mark.parametrize(
    ("args", "english", "spanish"),
    [
        (
            ["--adapter", "csv", "--mapping", "dif-estatal", "--option", "foo=bar"],
            "the adapter 'csv' has no option 'foo'; its options (--option KEY=VALUE): "
            "mapping, delimiter",
            "el adaptador «csv» no tiene la opción «foo»",
        ),
        (
            ["--adapter", "ndjson", "--mapping", "dif-estatal"],
            "the adapter 'ndjson' takes no mapping file (--mapping)",
            "el adaptador «ndjson» no usa un archivo de correspondencia (--mapping)",
        ),
        (
            ["--adapter", "primero", "--mapping", "dif-estatal"],
            "--mapping of primero is a code table",
            "--mapping de primero es una tabla de códigos",
        ),
    ],
)
def test_wrong_adapter_settings_are_said_in_both_languages(
    hub: Hub, tmp_path: Path, args: list[str], english: str, spanish: str
) -> None:
    file = write_ndjson(tmp_path / "uno.ndjson", [envelope("U-1")])
    for lang, expected in (("en", english), ("es", spanish)):
        result = run("import", file, *args, "--agency", OWNER, "--lang", lang)
        assert result.exit_code == 2, result.output
        assert expected in result.output
        assert "__init__" not in result.output and "Errno" not in result.output


@pytest.mark.parametrize(
    ("adapter", "content"),
    [("ndjson", b""), ("json", b"[]"), ("json", b""), ("csv", b""), ("primero", b'{"data": []}')],
)
def test_a_file_with_no_records_says_so(
    hub: Hub, tmp_path: Path, adapter: str, content: bytes
) -> None:
    file = tmp_path / "vacio.txt"
    file.write_bytes(content)
    mapping = ["--mapping", "dif-estatal"] if adapter == "csv" else []
    result = run("import", "--adapter", adapter, *mapping, file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 1, result.output
    assert "the file holds no records: nothing to import" in result.output
    assert "el archivo no tiene ningún registro" in result.output


# -- installed adapters: the docs' worked example, and one that raises ---------------------------


def install_package(site: Path, package: str, source: str, entry_points: dict[str, str]) -> None:
    """A package and its metadata as ``pip install`` leaves them, on ``sys.path``."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source, encoding="utf-8")
    info = site / f"{package}-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[puente.adapters]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import sys

    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in [m for m in sys.modules if m.startswith(("sigeca_puente", "raising_adapter"))]:
        del sys.modules[module]


def docs_example() -> tuple[str, dict[str, str]]:
    """The worked example of docs/adapters.md section 7, as printed there: its module and
    its entry points (from the pyproject.toml shown)."""
    import re
    import tomllib

    text = DOCS.read_text(encoding="utf-8")
    python = re.search(r"```python\n(# sigeca_puente/__init__.py\n.*?)```", text, re.S)
    toml = re.search(r"```toml\n(.*?)```", text, re.S)
    assert python is not None and toml is not None
    project = tomllib.loads(toml.group(1))["project"]
    return python.group(1), project["entry-points"]["puente.adapters"]


def test_the_docs_example_adapter_rejects_lines_that_are_not_objects(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    source, entry_points = docs_example()
    install_package(site, "sigeca_puente", source, entry_points)
    file = tmp_path / "export.jsonl"
    good = {"expediente": "SIG-1", "nombre": "Ana", "apellido": "S", "nacimiento": "2012-01-02",
            "pais": "GT"}  # fmt: skip
    file.write_text(json.dumps(good) + '\n[1, 2]\n"texto"\n{roto\n', encoding="utf-8")
    result = run("import", "--adapter", "sigeca", file, "--agency", OWNER, "--json")
    assert result.exit_code == 1, result.output  # rejected lines, not a failure
    summary = json.loads(result.output)
    assert (summary["stored"], summary["rejected"], summary["adapter_failure"]) == (1, 3, None)
    rejects = [
        json.loads(line) for line in (tmp_path / "export-rejects.jsonl").read_text().splitlines()
    ]
    assert [line["original"] for line in rejects] == ["[1, 2]\n", '"texto"\n', "{roto\n"]
    assert [line["errors"][0]["position"] for line in rejects] == ["2", "3", "4"]
    assert rejects[0]["errors"][0]["message_en"] == "the line is not a JSON object"


RAISING_ADAPTER = '''
import json

from adapters.base import Item, Problem
from adapters.native import NdjsonAdapter


class Adapter(NdjsonAdapter):
    """The native format, but it raises on a line that says "boom"."""

    name = "raising"

    def decode(self, stream):
        for number, raw in enumerate(stream, start=1):
            case = json.loads(raw)
            if case == "boom":
                raise KeyError("boom")
            if "local_id" not in case:
                yield Item(str(number), problems=(Problem("", "sin id", "no id"),), source=case)
                continue
            yield Item(str(number), document=case, source=case, local_id=case["local_id"])


class BrokenWriter(NdjsonAdapter):
    """The native format, with a rejects writer that fails on its first reject."""

    name = "broken-writer"

    def write_rejects(self, items, out):
        for _item in items:
            out.write(b"{half")
            raise OSError("disk full")
'''


def test_an_adapter_that_raises_is_reported_without_a_traceback(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    install_package(
        site, "raising_adapter", RAISING_ADAPTER, {"raising": "raising_adapter:Adapter"}
    )
    file = write_ndjson(
        tmp_path / "lote.ndjson", [envelope("R-1"), {"sin": "id"}, '"boom"', envelope("R-2")]
    )
    result = run("import", "--adapter", "raising", file, "--agency", OWNER, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert (
        "the adapter 'raising' failed after position 2 (KeyError: 'boom'); what came before is "
        "stored or in the rejects file, what came after was not read"
    ) in result.output
    assert "el adaptador «raising» falló después de la posición 2" in result.output
    assert hub.records() == 1  # R-1, read before the failure, is stored
    [rejected] = (tmp_path / "lote-rejects.ndjson").read_text().splitlines()  # so far
    assert json.loads(rejected)["sin"] == "id"
    as_json = json.loads(run("import", "--adapter", "raising", file, "--agency", OWNER,
                             "--json").output)  # fmt: skip
    assert as_json["adapter_failure"]["position"] == "2"
    assert as_json["adapter_failure"]["exception"] == "KeyError: 'boom'"


def test_a_rejects_writer_that_raises_leaves_no_half_file(
    hub: Hub, tmp_path: Path, site: Path
) -> None:
    install_package(
        site, "raising_adapter", RAISING_ADAPTER, {"broken-writer": "raising_adapter:BrokenWriter"}
    )
    file = write_ndjson(tmp_path / "lote.ndjson", [envelope("W-1"), {"sin": "id"}])
    result = run("import", "--adapter", "broken-writer", file, "--agency", OWNER, "--json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    summary = json.loads(result.output)
    assert summary["adapter_failure"]["exception"] == "OSError: disk full"
    assert "could not write the rejects file" in summary["adapter_failure"]["message_en"]
    assert summary["rejects_file"] is None and not (tmp_path / "lote-rejects.ndjson").exists()
    assert summary["rejected_items"][0]["position"] == "2"  # the reasons are not lost
    assert hub.records() == 1
