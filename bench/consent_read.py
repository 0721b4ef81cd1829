"""What the consent decision adds to a record read through the hub (HTTP handler, SQLite).

    .venv/bin/python bench/consent_read.py [--reads 2000] [--consents 20]

A hub in a temporary folder holds one record (``typical.json``, about a 14-year-old
unaccompanied girl) whose child has ``--consents`` consents of 5 provisions each, recorded by
the Procuraduría. COMAR reads it ``--reads`` times for the asylum procedure through the Flask
test client (the whole route: token check, decision, audit entry, commit, redaction, JSON).
The same reads are then timed with the disclosure step replaced by a decision that permits
everything without looking (no consent loading, no decision, no redaction): the difference of
the two is what the consent decision adds to a read. Latencies are per read, wall clock and
CPU (``time.thread_time``), after a warm-up.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "api")]

from consent_support import (  # noqa: E402
    COMAR,
    OWNER,
    consent_document,
    procuraduria,
    push_child,
    record_consent,
)
from records_support import add_agency, read  # noqa: E402

from consent import ALL_CATEGORIES, Decision  # noqa: E402
from exchange import disclosure  # noqa: E402
from tests.conftest import make_hub  # noqa: E402

PURPOSES = ["asylum_procedure", "legal_representation", "health_care", "education"]
CATEGORY_SETS = [["identity", "legal_status"], ["identity", "family"], None]


def consents(count: int) -> list[dict[str, Any]]:
    """``count`` consents of 5 provisions each (the last one permits COMAR's reads)."""
    found = []
    for index in range(count):
        grantee = COMAR if index == count - 1 else f"mx.agencia{index:02d}.dif"
        document = consent_document(
            grantee,
            actions=["read"],
            purposes=sorted({PURPOSES[index % len(PURPOSES)], "asylum_procedure"}),
            categories=CATEGORY_SETS[index % 2],
        )
        provision = document["provision"][0]
        document["provision"] = [
            provision,
            {**copy.deepcopy(provision), "purpose": ["case_management"]},
            {**copy.deepcopy(provision), "action": ["refer"]},
            {"decision": "deny", "purpose": ["statistics"]},
            {"decision": "deny", "data_category": ["contact_location"]},
        ]
        found.append(document)
    return found


def percentiles(timings: list[float]) -> str:
    ordered = sorted(timings)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {at(0.5):.2f} ms  p99 {at(0.99):.2f} ms  max {ordered[-1] * 1000:.2f} ms"


def timed(client: Any, agency: Any, record_id: str, reads: int) -> tuple[list[float], list[float]]:
    for _ in range(50):
        assert read(client, agency, record_id, purpose="asylum_procedure").status_code == 200
    wall, cpu = [], []
    for _ in range(reads):
        started, started_cpu = time.perf_counter(), time.thread_time()
        response = read(client, agency, record_id, purpose="asylum_procedure")
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
        assert response.status_code == 200
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--consents", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = make_hub(Path(folder), f"sqlite:///{folder}/puente.db")
        client = app.test_client()
        owner = add_agency(app, OWNER)
        officer = procuraduria(app)
        comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
        pushed = push_child(client, owner)
        for document in consents(args.consents):
            record_consent(client, officer, pushed["child_id"], document)
        body = read(client, comar, pushed["record_id"], purpose="asylum_procedure").get_json()
        print(
            f"machine: {platform.machine()}, Python {platform.python_version()}; "
            f"{args.consents} consents; decision: {body['decision']['basis']}, "
            f"categories {body['decision']['categories']}"
        )
        with_wall, with_cpu = timed(client, comar, pushed["record_id"], args.reads)

        everything = Decision("permit", "consent", tuple(sorted(ALL_CATEGORIES)), (), ())

        def permit_all(session: Any, actor: Any, child: Any, **fields: Any) -> Any:
            # The read is still audited, as every read was before consent decided them.
            entry = disclosure.audit_decision(
                session,
                actor,
                everything,
                audit_action=fields["audit_action"],
                purpose=fields["purpose"],
                child_id=child.child_id,
                record_id=fields["record"].id,
            )
            return disclosure.Disclosure(everything, entry)

        class Child:
            def __init__(self, child_id: str) -> None:
                self.child_id = child_id
                self.bodies: dict[str, Any] = {}  # none decrypted: body_of fetches the record's

        from exchange.api import record_reads

        saved = (record_reads.decide_disclosure, record_reads.redact, record_reads.load_child)
        record_reads.decide_disclosure = permit_all  # type: ignore[assignment]
        record_reads.redact = lambda _s, data, _d: (data, ())  # type: ignore[assignment]
        record_reads.load_child = lambda _session, child_id: Child(child_id)  # type: ignore[assignment]
        try:
            without_wall, without_cpu = timed(client, comar, pushed["record_id"], args.reads)
        finally:
            (
                record_reads.decide_disclosure,  # type: ignore[assignment]
                record_reads.redact,  # type: ignore[assignment]
                record_reads.load_child,  # type: ignore[assignment]
            ) = saved
        print(f"read with the consent decision:    {percentiles(with_wall)}")
        print(f"                          CPU:     {percentiles(with_cpu)}")
        print(f"read without (permit everything):  {percentiles(without_wall)}")
        print(f"                          CPU:     {percentiles(without_cpu)}")
        added = [a - b for a, b in zip(sorted(with_wall), sorted(without_wall), strict=True)]
        print(f"added by the decision (quantile differences): {percentiles(added)}")
        print(json.dumps({"reads": args.reads, "consents": args.consents}))


if __name__ == "__main__":
    main()
