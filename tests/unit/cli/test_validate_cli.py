"""``puente validate`` and ``puente schemas …`` as a data officer runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from exchange.cli import main
from exchange.cli.schemas import _Progress
from schemas.registry import EXAMPLES_DIR

TYPICAL = json.loads((EXAMPLES_DIR / "case-record/1/valid/typical.json").read_text("utf-8"))


def _run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input)


def _broken(**child: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(TYPICAL))
    document["child"].update(child)
    return document


def _write(path: Path, *documents: Any) -> Path:
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in documents) + "\n")
    return path


def test_a_valid_document_exits_0_with_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(TYPICAL, indent=2))
    result = _run("validate", "--lang", "en", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "0 of 1 documents have errors\n"
    spanish = _run("validate", "--lang", "es", str(path))
    assert spanish.stdout == "0 de 1 documentos con errores\n"


def test_failures_are_printed_as_file_line_pointer_message(tmp_path: Path) -> None:
    path = _write(tmp_path / "cases.ndjson", TYPICAL, _broken(sex="F"), TYPICAL)
    result = _run("validate", "--lang", "es", str(path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"{path}:2 /child/sex El campo «sexo» (sex) tiene un valor no permitido"
    )
    assert lines[-1] == "1 de 3 documentos con errores"


def test_a_json_array_names_the_line_each_document_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    documents = [TYPICAL, TYPICAL, _broken(date_of_birth="02/07/2008")]
    text = json.dumps(documents, indent=2)
    path.write_text(text)
    third_starts = len(json.dumps(documents[:2], indent=2).splitlines())  # its "{" line
    result = _run("validate", "--lang", "en", str(path))
    assert result.exit_code == 1
    (failure, summary) = result.stdout.splitlines()
    assert failure.startswith(f"{path}:{third_starts} /child/date_of_birth ")
    assert text.splitlines()[third_starts - 1].strip() == "{"
    assert "YYYY-MM-DD" in failure
    assert summary == "1 of 3 documents have errors"
    # On one line, every document starts on line 1.
    path.write_text(json.dumps(documents))
    assert _run("validate", str(path)).stdout.startswith(f"{path}:1 /child/date_of_birth ")


@pytest.mark.parametrize("text", ["null", "42", "true", '"x"', '[1, "x", null]'])
def test_a_document_that_is_not_an_object_is_reported_and_the_next_file_checked(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "scalar.json"
    path.write_text(text + "\n")
    good = _write(tmp_path / "good.json", TYPICAL)
    result = _run("validate", "--lang", "en", str(path), str(good))
    assert result.exit_code == 1
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    failures = result.stdout.splitlines()[:-1]
    assert failures and all("expected a JSON object {…} but found" in f for f in failures)
    assert (
        result.stdout.splitlines()[-1]
        == f"{len(failures)} of {len(failures) + 1} documents have errors"
    )


def test_ndjson_with_a_broken_first_line_is_still_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"case":\n' + json.dumps(_broken(sex="x")) + "\n" + json.dumps(TYPICAL) + "\n")
    result = _run("validate", "--lang", "en", str(path))
    assert f"{path}:1 - malformed JSON at line 1" in result.stdout
    assert f"{path}:2 /child/sex " in result.stdout
    assert result.stdout.splitlines()[-1] == "2 of 3 documents have errors"


@pytest.mark.parametrize(("name", "text"), [("empty.ndjson", ""), ("empty.json", "[]\n")])
def test_a_file_with_no_documents_is_not_a_valid_export(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = _run("validate", "--lang", "en", str(path))
    assert result.exit_code == 1
    assert f"{path}:1 - the file holds no documents" in result.stdout
    assert (
        result.stdout.splitlines()[-1]
        == "0 of 0 documents have errors; 1 file(s) hold no documents"
    )


def test_an_envelope_without_data_is_told_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "push.ndjson", {"schema": "case-record/1", "local_id": "X"})
    result = _run("validate", "--lang", "en", str(path))
    assert result.stdout.splitlines()[0] == f"{path}:1 \"\" required field 'data' is missing"


def test_a_too_deep_json_file_names_the_same_limit_as_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100 + "]" * 100)
    single = tmp_path / "deep-object.json"
    single.write_text('{"a":' * 100 + "1" + "}" * 100)
    result = _run("validate", "--lang", "en", str(path), str(single))
    assert result.stdout.count("nested more than 64 levels") == 2, result.stdout


def test_a_pipe_is_read_like_a_file(tmp_path: Path) -> None:
    import os

    read, write = os.pipe()
    os.write(write, json.dumps(TYPICAL).encode())
    os.close(write)
    try:
        result = _run("validate", "--lang", "en", f"/dev/fd/{read}")
    finally:
        os.close(read)
    assert result.exit_code == 0, result.output
    assert result.stdout == "0 of 1 documents have errors\n"


def test_bad_lines_are_reported_and_validation_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    with path.open("wb") as out:
        out.write(json.dumps(TYPICAL).encode() + b"\n")
        out.write(b'{"case": \n')  # 2: malformed
        out.write(b"\n")  # 3: blank, skipped
        out.write(b'{"bad": "\xff"}\n')  # 4: not UTF-8
        out.write(b"[" * 100 + b"]" * 100 + b"\n")  # 5: too deep
        out.write(b"[1, 2]\n")  # 6: not an object
        out.write(b'{"x": "' + b"y" * (3 * 1024 * 1024) + b'"}\n')  # 7: too large
        out.write(json.dumps(TYPICAL).encode() + b"\n")  # 8
    result = _run("validate", "--lang", "en", str(path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    by_line = {int(line.split(" ")[0].rsplit(":", 1)[1]): line for line in lines[:-1]}
    assert sorted(by_line) == [2, 4, 5, 6, 7]
    assert "malformed JSON at line 2" in by_line[2]
    assert "UTF-8" in by_line[4]
    assert "nested more than 64" in by_line[5]
    assert "expected a JSON object" in by_line[6]
    assert "too large" in by_line[7]
    assert all(" - " in line for line in by_line.values())
    assert lines[-1] == "5 of 7 documents have errors"
    assert "Traceback" not in result.output


def test_envelopes_are_checked_against_the_schema_they_name(tmp_path: Path) -> None:
    good = {"schema": "case-record/1", "local_id": "DIF-1", "data": TYPICAL}
    unknown = {"schema": "case-record/9", "local_id": "DIF-2", "data": TYPICAL}
    bad = {"schema": "case-record/1", "local_id": "DIF-3", "data": _broken(sex=1)}
    path = _write(tmp_path / "push.ndjson", good, unknown, bad)
    result = _run("validate", "--lang", "en", str(path))
    assert result.exit_code == 1
    output = result.stdout
    assert f"{path}:2 /schema unknown schema 'case-record/9'" in output
    assert f"{path}:3 /data/child/sex " in output
    assert output.splitlines()[-1] == "2 of 3 documents have errors"


def test_schema_option_and_root_pointer(tmp_path: Path) -> None:
    path = _write(tmp_path / "children.ndjson", TYPICAL["child"], {"names": {"given_names": "A"}})
    result = _run("validate", "--schema", "child/1", "--lang", "en", str(path))
    assert result.exit_code == 1
    assert f'{path}:2 "" required field' in result.stdout
    assert result.stdout.splitlines()[-1] == "1 of 2 documents have errors"


def test_ndjson_is_recognised_by_content(tmp_path: Path) -> None:
    path = _write(tmp_path / "export.txt", TYPICAL, _broken(sex="x"))
    result = _run("validate", "--lang", "en", str(path))
    assert result.stdout.splitlines()[-1] == "1 of 2 documents have errors"


def test_stdin_is_read_with_a_dash() -> None:
    data = (json.dumps(TYPICAL) + "\n" + json.dumps(_broken(sex="x")) + "\n").encode()
    result = _run("validate", "--lang", "en", "-", input=data)
    assert result.exit_code == 1
    assert result.stdout.startswith("<stdin>:2 /child/sex ")


def test_quiet_prints_only_the_summary(tmp_path: Path) -> None:
    path = _write(tmp_path / "cases.ndjson", _broken(sex="F"))
    result = _run("validate", "--quiet", "--lang", "en", str(path))
    assert result.exit_code == 1
    assert result.stdout == "1 of 1 documents have errors\n"


def test_several_files_share_one_summary(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.ndjson", TYPICAL)
    second = _write(tmp_path / "b.ndjson", _broken(sex="F"), TYPICAL)
    result = _run("validate", "--lang", "en", str(first), str(second))
    assert result.stdout.splitlines()[-1] == "1 of 3 documents have errors"


def test_malformed_single_json_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "case": {\n    "status": open\n  }\n}\n')
    result = _run("validate", "--lang", "es", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"{path}:3 - JSON mal formado en la línea 3")


def test_a_huge_json_file_is_rejected_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as out:
        out.write(b"[")
        out.truncate(50 * 1024 * 1024)  # sparse: 50 MiB on paper
    started = time.perf_counter()
    result = _run("validate", "--lang", "en", str(path))
    assert time.perf_counter() - started < 2
    assert result.exit_code == 1
    assert "exceeds 32 MiB; use NDJSON" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 of 1 documents have errors"


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    path = _write(tmp_path / "cases.ndjson", TYPICAL)
    assert _run("validate", str(path)).stderr == ""


def test_progress_bar_counts_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    with _Progress(1000) as bar:
        bar.update(600)
        bar.write("a failure line")  # printed above the bar, on a line of its own
        bar.update(400)
    with _Progress(-1) as bar:  # disabled
        assert bar is None
    captured = capsys.readouterr()
    assert "/1.00k" in captured.err and "B/s" in captured.err
    assert "a failure line\n" in captured.err + captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "no-such-file.json"], "no such file: no-such-file.json"),
        (["validate", "."], ". is a directory"),
        (["validate", "--schema", "case-record/7", "x"], "unknown schema 'case-record/7'"),
        (["validate"], "Missing argument"),
        (["schemas", "show", "nope/1"], "unknown schema 'nope/1'"),
        (["schemas", "check-compat", "case-record/1", "case-record/5"], "case-record/5"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    result = _run(*args, "--lang", "en") if args != ["validate"] else _run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_schemas_list_plain_and_json() -> None:
    plain = _run("schemas", "list", "--lang", "es")
    assert plain.exit_code == 0
    assert any(
        line.startswith("case-record/1") and line.endswith("Expediente de caso")
        for line in plain.stdout.splitlines()
    )
    listed = json.loads(_run("schemas", "list", "--json").stdout)
    assert {"name": "case-record", "version": "1"}.items() <= listed[2].items() or any(
        item["name"] == "case-record" and item["version"] == "1" for item in listed
    )
    assert all(set(item) == {"name", "version", "id", "title"} for item in listed)


def test_schemas_show_prints_the_document() -> None:
    for ref in ("case-record/1", "case-record"):
        result = _run("schemas", "show", ref)
        assert result.exit_code == 0
        assert json.loads(result.stdout)["$id"] == "https://schemas.puente.mx/case-record/1"


def test_check_compat_by_ref_and_by_file(tmp_path: Path) -> None:
    same = _run("schemas", "check-compat", "case-record/1", "case-record/1")
    assert (same.exit_code, same.stdout) == (0, "compatible\n")
    old = {
        "$id": "https://schemas.puente.mx/thing/1",
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }
    new = {**old, "$id": "https://schemas.puente.mx/thing/2", "required": ["a"]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    widen = _run("schemas", "check-compat", str(tmp_path / "new.json"), str(tmp_path / "old.json"))
    assert widen.exit_code == 0
    narrow = _run(
        "schemas",
        "check-compat",
        "--lang",
        "en",
        str(tmp_path / "old.json"),
        str(tmp_path / "new.json"),
    )
    assert narrow.exit_code == 1
    assert narrow.stdout.splitlines() == ["/a 'a' becomes required", "incompatible: 1 difference"]
