"""``puente demo``: seed a local hub with fictitious agencies and children's records.

Seeding happens once per instance folder; the demo agencies' client secrets (shown once by the
registry) are kept in ``instance/demo/credentials.json`` (mode 0600) so a rerun can print the
same working example. Nothing here is used outside the demo.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from exchange import db
from exchange.agencies import Agency, register_agency
from exchange.crypto import data_keyring
from exchange.demo_data import AGENCIES, demo_records
from exchange.record_push import Pusher, PushResult, canonical_body
from schemas.registry import default_registry


@dataclass(frozen=True)
class DemoHub:
    credentials: dict[str, str]  # agency id -> client secret
    records: int
    sample_push: Path


def demo_folder(app: Flask) -> Path:
    return Path(app.instance_path) / "demo"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def seed_demo(app: Flask) -> DemoHub:
    """Register the demo agencies and push the demo records, unless already done."""
    folder = demo_folder(app)
    credentials_file = folder / "credentials.json"
    sample = folder / "push-example.json"
    records = demo_records()
    with db.database(app).sessions() as session:
        if session.get(Agency, AGENCIES[0].id) is not None and credentials_file.exists():
            credentials = json.loads(credentials_file.read_text(encoding="utf-8"))
            return DemoHub(credentials, len(records), sample)
        credentials = {}
        for agency in AGENCIES:
            registered = register_agency(
                session,
                agency.id,
                agency.name,
                agency.level,
                agency.jurisdiction,
                list(agency.scopes),
                with_secret=True,
            )
            credentials[agency.id] = registered.client_secret or ""
        session.commit()
        _write_private(credentials_file, json.dumps(credentials, indent=2))
        registry = default_registry()
        keyring = data_keyring(app)
        for agency_id, envelope in records:
            pusher = Pusher(
                session, agency_id, require_signature=False, keyring=keyring, registry=registry
            )
            canonical, sha256 = canonical_body(envelope)
            item = pusher.check(envelope, canonical, sha256, None)
            if isinstance(item, PushResult):
                raise RuntimeError(f"demo record {envelope['local_id']} refused: {item}")
            pusher.store_committed([item])
    sample_push = dict(records[0][1], local_id="CHP-DEMO-EJEMPLO-CURL")
    _write_private(sample, json.dumps(sample_push, ensure_ascii=False, indent=2))
    return DemoHub(credentials, len(records), sample)


def curl_example(base: str, hub: DemoHub, agency_id: str = "mx.chp.dif") -> list[str]:
    secret = hub.credentials[agency_id]
    extract_token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"  # noqa: S105 - a shell snippet
    return [
        f"TOKEN=$(curl -s -u {agency_id}:{secret} -d grant_type=client_credentials "
        f"{base}/oauth/token | {extract_token})",
        f'curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        f'-H "Idempotency-Key: demo-$(date +%s)" --data @{hub.sample_push} {base}/v1/records',
        f'curl -s -H "Authorization: Bearer $TOKEN" '
        f'"{base}/v1/records/RECORD_ID?purpose=case_management"',
    ]


def oversight_example(base: str, hub: DemoHub, agency_id: str = "mx.fed.cndh") -> list[str]:
    """An oversight body reading the signed checkpoint and the audit events."""
    secret = hub.credentials[agency_id]
    extract_token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"  # noqa: S105
    return [
        f"AUDIT=$(curl -s -u {agency_id}:{secret} -d grant_type=client_credentials "
        f"{base}/oauth/token | {extract_token})",
        f'curl -s -H "Authorization: Bearer $AUDIT" {base}/v1/audit/checkpoint',
        f'curl -s -H "Authorization: Bearer $AUDIT" "{base}/v1/audit/events?limit=5"',
    ]


def summary(hub: DemoHub) -> dict[str, Any]:
    return {"agencies": sorted(hub.credentials), "records": hub.records}
