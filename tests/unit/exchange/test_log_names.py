"""Every log line of the hub is a JSON line (README: "Logs are JSON lines on stderr"): the
``puente`` loggers get the JSON handler (exchange.logs), and so do the libraries' that may write
to the hub's log (``exchange.logs.LIBRARY_LOGGERS``, which that module alone names), so every
logger the hub's code logs through must be a ``puente`` one — not Flask's ``app.logger``, not a
module's ``__name__``."""

from __future__ import annotations

import re
from pathlib import Path

EXCHANGE = Path(__file__).resolve().parents[3] / "exchange"


def test_the_hub_logs_only_through_puente_loggers() -> None:
    strays = []
    for path in sorted(EXCHANGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"getLogger\(([^)]*)\)", text):
            if path.name == "logs.py" and match.group(1).strip() == "name":
                continue  # configure() sends LIBRARY_LOGGERS to the JSON handler too
            if not match.group(1).strip().startswith(('"puente', "'puente")):
                strays.append(f"{path.name}: getLogger({match.group(1)})")
        if re.search(r"\bapp\.logger\b|current_app\.logger\b", text):
            strays.append(f"{path.name}: Flask's app.logger")
    assert strays == []
