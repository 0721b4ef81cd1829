"""docs/consent.md §8 runs as printed against ``puente demo``, as a newcomer runs it.

The guide's shell blocks are taken from the file and run with bash and curl, one after the other
in one shell, against a demo served on a free port. The only things filled in are what the guide
tells the reader to fill in from what the demo printed: the hub's address, the people's
personal access tokens (named by the person id on each line) and the demo's own ``TOKEN=`` and
``COMAR=`` commands. Each step's answer is then checked against what the guide shows.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

from tests.e2e.test_demo_serve import Demo, demo, printed_so_far  # noqa: F401 - the fixture
from tests.e2e.test_demo_serve import pytestmark as demo_marks

pytestmark = demo_marks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "consent.md"
MARK = "=== block "


def section_8() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("## 8. In the hub")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


def filled_in(block: str, printed: str, base: str) -> str:
    """The setup block with what the reader copies from the demo's output."""
    lines = []
    for line in block.splitlines():
        if line.startswith("HUB="):
            line = f"HUB={base}"
        elif token := re.match(r"^([A-Z_]+)=pat_… +# ([a-z-]+):", line):
            variable, person = token.groups()
            found = re.search(rf"^  {person} \([^)]*\): (pat_\S+)$", printed, re.M)
            assert found, f"the demo prints no token for {person}"
            line = f"{variable}={found.group(1)}"
        elif line.startswith("OWNER=$TOKEN"):
            for variable in ("TOKEN", "COMAR"):
                found = re.search(rf"^  ({variable}=\$\(curl .*)$", printed, re.M)
                assert found, f"the demo prints no {variable}= command"
                lines.append(found.group(1))
        lines.append(line)
    return "\n".join(lines)


def answers(output: str) -> str:
    """Every JSON answer in a block's output, written the way the guide writes them (", ",
    ": ", accents unescaped); other lines (headers, echoes) as they are."""
    decoder = json.JSONDecoder()
    parts: list[str] = []
    position = 0
    while position < len(output):
        start = output.find("{", position)
        if start == -1:
            parts.append(output[position:])
            break
        parts.append(output[position:start])
        try:
            value: Any
            value, position = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            parts.append("{")
            position = start + 1
            continue
        parts.append(json.dumps(value, ensure_ascii=False))
    return "".join(parts)


#: What each block's answers must hold, as the guide shows them, in the order of the blocks.
EXPECTED: list[tuple[str, ...]] = [
    (),  # the variables
    (),  # CHILD and RECORD: checked below
    ('"status": "active"', '"agency_id": "mx.chp.procuraduria"'),  # 8.1 the consent
    ("Content-Type: application/fhir+json", '"resourceType": "Consent"', '"decision": "deny"'),
    ('"position": "objection"',),  # 8.2 the views
    ('"review_state": "awaiting_review"', '"may_review": true'),
    ('"upheld": false',),
    (  # 8.3 the dry run
        '"result": "deny", "basis": "hard_rule"',
        '"rule_ids": ["no_protection_data_to_immigration_enforcement", '
        '"no_protection_data_for_migration_procedure"]',
    ),
    (  # 8.4 COMAR's read
        "Puente-Decision: ",
        '"withheld_categories": ["contact_location", "health", "education", "placement",',
        '"result": "permit", "basis": "consent", '
        '"categories": ["identity", "family", "protection_concerns", "legal_status"]',
    ),
    (  # the transfers
        '"basis": "hard_rule"',
        '"rule_ids": ["no_protection_data_to_immigration_enforcement", '
        '"no_transfer_to_immigration_enforcement"]',
        '"needs_every_category": true, "covered": []',
        "A transfer moves responsibility for the whole record, so it needs consent for every "
        "data category. Withheld: Identity, Contact and location, Family,",
        '"basis": "default_deny"',
    ),
    (  # 8.5 the lawyer's request, granted at once
        '"status": "granted"',
        '"until": "9999-12-31T23:59:59+00:00"',
        "It holds until 2027-12-31T06:00:00+00:00 (before the date asked for,",
        '"until": "2027-12-31T06:00:00+00:00", "active": true}, "grant_id": null',
    ),
    (  # her second request: pending, approved with a date cut, listed
        '"status": "pending"',
        '"requester": {"agency_id": "mx.chp.clinica-juridica", '
        '"person_id": "chp-clinica-representante"}',
        '"withheld": ["family"]',
        '"grantee": {"person_id": "chp-clinica-representante"}, '
        '"purpose": "legal_representation", "categories": ["identity", "family"], '
        '"until": "2027-09-30T00:00:00+00:00", "actions": ["read"]',
        '{"grants": [{"id": "grt_',
    ),
    ('"by_roles": ["override_officer"]',),  # 8.6 the override
    (
        '"categories": ["family", "health"]',
        '"opened_by": {"agency_id": "mx.chp.procuraduria"',
        '"in_force": true, "status": "open"',
        '"may_review": true',
        '"justification": "Ingreso a urgencias',
    ),
    (
        '"upheld": true, "by": {"agency_id": "mx.fed.pfpnna", '
        '"person_id": "pfpnna-consentimientos"',
        '"kind": "override"',
        '"basis_code": "medical_emergency"',
        '"reviewed": true, "upheld": true}',  # the alert leaves the justification out
    ),
    ('"status": "inactive"', '"notified": ["mx.fed.comar"]'),  # 8.7 the revocation
    ('"event": "consent.revoked"', "Stop using the data received under this consent."),
    (
        "It no longer gives access; if you still need it, make a new request.",
        '"active": false',
        '"ended_because": "revoked"',
    ),
    (  # 8.8 the withhold entry
        '"state": "active"',
        '"target": {"agency_id": "mx.nl.dif"}',
        '"categories": ["contact_location", "placement"]',
    ),
    ('"result": "deny", "basis": "withhold"', '"withhold_ids": ["wth_'),
    ('"withholds": [{"id": "wth_', '"state": "revoked"', '"revocation": {"revoked_at": '),
]


def test_the_guides_section_8_runs_as_printed_on_the_demo(demo: Demo) -> None:  # noqa: F811
    guide = section_8()
    dates = sorted(
        set(re.findall(r'"(?:until|end)": "(\d{4}-\d{2}-\d{2})T', guide)) - {"9999-12-31"}
    )
    passed = [day for day in dates if date.fromisoformat(day) <= date.today()]
    assert not passed, f"docs/consent.md §8 asks for dates that have passed: {passed}"

    printed = printed_so_far(demo)
    blocks = shell_blocks(guide)
    assert len(blocks) == len(EXPECTED)
    blocks[0] = filled_in(blocks[0], printed, demo.base)
    assert "pat_…" not in blocks[0]
    # The guide's keep() shows each answer on standard error: the reader sees both streams.
    script = ["set -euo pipefail", "exec 2>&1"]
    for number, block in enumerate(blocks):
        script += [f"echo; echo '{MARK}{number}'", block]
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:]
    outputs = re.split(rf"^{MARK}\d+\n", done.stdout, flags=re.M)[1:]
    assert len(outputs) == len(EXPECTED), done.stdout[-4000:]

    child, record = outputs[1].split()
    assert child.startswith("nna_") and record.startswith("rec_")
    assert f'"child_id": "{child}"' in answers(outputs[2])
    for number, expected in enumerate(EXPECTED):
        shown = answers(outputs[number])
        for fragment in expected:
            assert fragment in shown, (number, fragment, shown[-3000:])
