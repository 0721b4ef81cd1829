"""What a newcomer following the README and docs/agencies.md met at the command line: every
``puente person`` verb's ``--json`` describes the person alike (with their working tokens); the
command ``puente adapters template csv`` suggests runs once its placeholders are filled in;
``puente import --hub`` without credentials names every way to give them; and the documented
``retire-key … --json -- KEY_ID`` works as written."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from exchange import create_app, db
from exchange.cli import main
from exchange.people import Person
from exchange.records import Record

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "tres tristes tigres trigo"


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], input=stdin)


def run_json(*args: str | Path, stdin: str | None = None) -> Any:
    result = run(*args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def hub(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub made as an administrator makes one: ``puente init``, a state DIF, an oversight
    body and one of its auditors."""
    monkeypatch.setenv("PUENTE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    for added in (
        run(
            "agency", "add", "mx.chp.dif", "--name", "DIF Chiapas", "--level", "state",
            "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
            "--scope", "records:read", "--generate-key", tmp_path / "keys",
        ),
        run(
            "agency", "add", "mx.fed.cndh", "--name", "CNDH", "--level", "federal",
            "--kind", "oversight", "--jurisdiction", "00", "--scope", "audit:read", "--secret",
        ),
        run(
            "person", "add", "--name", "Julia Ejemplo", "--email", "julia@example.org",
            "--agency", "mx.fed.cndh", "--role", "auditor", "--id", "julia",
        ),
    ):  # fmt: skip
        assert added.exit_code == 0, added.output
    return tmp_path


def listed(person_id: str) -> dict[str, Any]:
    (person,) = [p for p in run_json("person", "list")["people"] if p["id"] == person_id]
    return dict(person)


# -- 1. person verbs describe the person alike ----------------------------------------------


def test_set_password_json_lists_the_tokens_that_person_list_lists(hub: Path) -> None:
    token = run_json("person", "token", "julia", "--scope", "audit:read", "--name", "informes")
    answer = run_json("person", "set-password", "julia", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert [t["token_id"] for t in answer["tokens"]] == [token["token_id"]]
    assert answer["tokens"][0]["name"] == "informes"
    assert answer == listed("julia")
    # The token it named is the one a disable then revokes.
    disabled = run("person", "disable", "julia", "--lang", "en")
    assert "1 token(s) revoked" in disabled.output


def test_enable_json_lists_the_tokens_that_person_list_lists(hub: Path) -> None:
    token = run_json("person", "token", "julia", "--scope", "audit:read")
    # A person marked disabled while a token of theirs stayed unrevoked (a row changed by
    # hand, say): enabling them again makes that token work, so --json must say so.
    app = create_app()
    try:
        with db.database(app).sessions.begin() as session:
            session.execute(update(Person).where(Person.id == "julia").values(active=False))
    finally:
        app.extensions["puente.db"].engine.dispose()
    answer = run_json("person", "enable", "julia")
    assert answer["active"] is True
    assert [t["token_id"] for t in answer["tokens"]] == [token["token_id"]]
    assert answer == listed("julia")


def test_add_json_describes_the_person_as_list_does(hub: Path) -> None:
    added = run_json(
        "person", "add", "--name", "Mario Muestra", "--email", "mario@example.org",
        "--agency", "mx.fed.cndh", "--role", "auditor", "--id", "mario",
    )  # fmt: skip
    assert added == listed("mario")


# -- 2. the command the template suggests ----------------------------------------------------


def suggested_command(output: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.strip().startswith("puente import")]
    return shlex.split(line)


@pytest.mark.parametrize(
    ("lang", "agency_placeholder", "file_placeholder"),
    [("en", "AGENCY_ID", "FILE.csv"), ("es", "ID_INSTITUCION", "ARCHIVO.csv")],
)
def test_the_suggested_import_runs_once_its_placeholders_are_filled_in(
    hub: Path, lang: str, agency_placeholder: str, file_placeholder: str
) -> None:
    folder = hub / "mi plantilla"  # a space: the suggested command must quote it
    written = run("adapters", "template", "csv", "--out", folder, "--lang", lang)
    assert written.exit_code == 0, written.output
    command = suggested_command(written.output)
    assert command[:2] == ["puente", "import"]
    assert ["--agency", agency_placeholder] == command[-3:-1]
    assert command[-1] == file_placeholder
    assert f"{agency_placeholder}:" in written.output  # the placeholder is explained

    sheet = folder / "case-record-1.csv"
    header = next(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    row = dict.fromkeys(header, "")
    row.update(
        {
            "local_id": "EXP-1",
            "case.status": "Abierto",
            "child.names.given_names": "Ana",
            "child.date_of_birth": "01/02/2012",
            "child.nationality": "GT",
            "child.sex": "Mujer",
        }
    )
    filled = hub / "expedientes.csv"
    with filled.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=header)
        writer.writeheader()
        writer.writerow(row)
    arguments = [
        {agency_placeholder: "mx.chp.dif", file_placeholder: str(filled)}.get(part, part)
        for part in command[1:]
    ]
    imported = run(*arguments, "--lang", lang)
    assert imported.exit_code == 0, imported.output
    app = create_app()
    try:
        with db.database(app).sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Record))
    finally:
        app.extensions["puente.db"].engine.dispose()
    assert stored == 1


# -- 3. --hub without credentials ------------------------------------------------------------


@pytest.mark.parametrize("verb", ["import", "export"])
@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "with --hub the agency authenticates: export PUENTE_CLIENT_SECRET"),
        ("es", "con --hub, la institución se identifica: exporte PUENTE_CLIENT_SECRET"),
    ],
)
def test_hub_without_credentials_names_every_way_to_give_them(
    tmp_path: Path, verb: str, lang: str, sentence: str
) -> None:
    file = tmp_path / "uno.ndjson"
    file.write_text("{}\n", encoding="utf-8")
    common = ["--adapter", "ndjson", "--agency", "mx.chp.dif", "--hub", "http://localhost"]
    args = [file, *common] if verb == "import" else [*common, "--purpose", "case_management"]
    if verb == "export":
        args += ["--out", tmp_path / "salida.ndjson", "--child", "nna_x"]
    result = run(verb, *args, "--lang", lang)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert sentence in message
    for way in ("PUENTE_CLIENT_SECRET", "--client-secret", "--key"):
        assert way in message


# -- 5. the documented retire-key ------------------------------------------------------------


def test_retire_key_as_docs_agencies_writes_it(hub: Path) -> None:
    text = (DOCS / "agencies.md").read_text(encoding="utf-8")
    (documented,) = re.findall(r"^puente agency retire-key .*?KEY_ID", text, re.MULTILINE)
    assert " --json " in documented
    (agency,) = [a for a in run_json("agency", "list")["agencies"] if a["id"] == "mx.chp.dif"]
    (key_id,) = [key["key_id"] for key in agency["keys"]]
    # Its last key is not retired without a next one (or --even-if-last): rotate first.
    assert run("agency", "rotate-key", "mx.chp.dif", "--generate-key", hub / "next").exit_code == 0
    words = shlex.split(documented)[1:]
    answer = run(*[key_id if word == "KEY_ID" else word for word in words])
    assert answer.exit_code == 0, answer.output
    retired = json.loads(answer.output)
    assert retired["agency_id"] == "mx.chp.dif" and retired["key_id"] == key_id
    assert retired["valid"] is False and retired["retired_at"]
