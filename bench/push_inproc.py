"""The app's own CPU per push, without gunicorn: for comparing two trees of the code.

``bench/push.py`` measures what agencies get through the real server, but its figures move
with the machine's load and include gunicorn, the load generator and the audit integrator
thread. This one runs the Flask app in process (its test client: the whole WSGI app, every
hook, no sockets) on a SQLite file hub made by ``puente init`` and ``puente agency add``, with
the integrator thread off, and reports ``time.process_time()`` per push around a loop of
distinct demo records (``bench/push.py``'s bodies) after a warm-up, and optionally per line of
one bulk push. Run it for two trees one after the other, alternating, to see what a change
does::

    .venv/bin/python bench/push_inproc.py                       # this tree
    PYTHONPATH=/tmp/other-tree .venv/bin/python /tmp/other-tree/bench/push_inproc.py
    .venv/bin/python bench/push_inproc.py --pushes 1000 --repeats 3 --bulk 5000
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from push import AGENCY, push_bodies  # noqa: E402

WARM_UP = 200


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args], cwd=ROOT, capture_output=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"puente {' '.join(args)} failed:\n{done.stderr.decode()}")
    return done.stdout.decode()


def hub_client(folder: str) -> tuple[Any, dict[str, str]]:
    """A Flask test client of a SQLite file hub in ``folder`` (``puente init``, an agency
    added with ``puente agency add --secret``, the integrator thread off) and the headers of
    a push with that agency's token."""
    os.environ.update(
        {
            "PUENTE_INSTANCE_PATH": f"{folder}/instance",
            "PUENTE_DATABASE_URL": f"sqlite:///{folder}/puente.db",
            "PUENTE_LOG_LEVEL": "warning",
            "PUENTE_AUDIT_INTEGRATOR_THREAD": "false",
        }
    )
    _cli("init")
    added = json.loads(
        _cli(
            "agency", "add", AGENCY, "--name", "DIF Chiapas (bench)", "--level", "state",
            "--kind", "state_dif", "--jurisdiction", "07", "--scope", "records:write",
            "--secret", "--json",
        )
    )  # fmt: skip

    from exchange import create_app

    client = create_app().test_client()
    basic = base64.b64encode(f"{added['client_id']}:{added['client_secret']}".encode()).decode()
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "records:write"},
        headers={"Authorization": f"Basic {basic}"},
    )
    return client, {
        "Authorization": f"Bearer {answer.get_json()['access_token']}",
        "Content-Type": "application/json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pushes", type=int, default=1000, help="single pushes per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=0, help="lines of one bulk push (0: none)")
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory(prefix="puente-inproc-")
    client, headers = hub_client(folder.name)
    bodies = push_bodies(WARM_UP + args.pushes * args.repeats, "inproc")
    for body in bodies[:WARM_UP]:
        _push(client, "/v1/records", body, headers, 201)
    gc.freeze()  # as serving workers do once the app is loaded (exchange/serving.py)
    figures = []
    for repeat in range(args.repeats):
        start = WARM_UP + repeat * args.pushes
        began = time.process_time()
        for body in bodies[start : start + args.pushes]:
            _push(client, "/v1/records", body, headers, 201)
        figures.append((time.process_time() - began) / args.pushes * 1000)
    print(f"single pushes: {' '.join(f'{each:.3f}' for each in figures)} ms CPU a push")
    if args.bulk:
        lines = b"\n".join(push_bodies(args.bulk, "inproc-bulk")) + b"\n"
        began = time.process_time()
        answer = _push(
            client,
            "/v1/records/bulk",
            lines,
            {**headers, "Content-Type": "application/x-ndjson"},
            200,
        )
        spent = time.process_time() - began
        stored = answer.count(b'"stored"')
        print(f"bulk push of {args.bulk} lines: {spent / args.bulk * 1e6:.0f} µs CPU a line")
        if stored != args.bulk:
            raise SystemExit(f"only {stored} of {args.bulk} lines were stored")
    folder.cleanup()


def _push(client: object, path: str, body: bytes, headers: dict[str, str], status: int) -> bytes:
    answer = client.post(path, data=body, headers=headers)  # type: ignore[attr-defined]
    if answer.status_code != status:
        raise SystemExit(f"{path} answered {answer.status_code}: {answer.data[:300]!r}")
    return bytes(answer.data)


if __name__ == "__main__":
    main()
