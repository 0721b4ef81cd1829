"""``/alerts``: what ``GET /v1/audit/alerts`` answers oversight, as a page.

For oversight alone, as the API route (``audit:read`` *and* an oversight body's kind now:
exchange.consents.is_oversight, as exchange.api.audit.oversight_only checks): anyone else gets
the portal's 403. The alerts are the API's own (exchange.audit_queries.collect_alerts, with
every source registered: denial spikes, emergency overrides and those unreviewed after 24 h,
log forks), over the same window and thresholds, taken from the same settings
(``AUDIT_ALERT_WINDOW_SECONDS``, ``AUDIT_ALERT_DENIALS``, ``AUDIT_ALERT_ACCESS_REQUESTS``);
the window may be chosen, within the API's bounds. Like the API route, reading them is not
audited: an alert holds ids and counts, never a justification (oversight reads an override's
on its page, ``/overrides/{id}``, audited).

What the page adds is words for a person: each kind of alert under its name, its code, and
what it means, in Spanish and English, the most urgent kinds first; and who acted, by name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import render_template, request

from exchange.api.audit import LONGEST_ALERT_WINDOW, SHORTEST_ALERT_WINDOW, alert_settings
from exchange.audit_queries import AlertWindow, collect_alerts
from exchange.auth import utcnow
from exchange.consents import OVERSIGHT_SCOPE, is_oversight
from exchange.db import session as db_session
from exchange.portal.alert_kinds import ALERT_KINDS, window_label
from exchange.portal.blueprint import Text, bp, message_page
from exchange.portal.override_views import basis_labels, names_of, parties_in
from exchange.portal.sessions import current_actor, login_required

#: The window's bounds, as ``GET /v1/audit/alerts?window=`` takes it (seconds).
SHORTEST_WINDOW, LONGEST_WINDOW = SHORTEST_ALERT_WINDOW, LONGEST_ALERT_WINDOW
#: The windows the page offers besides the configured one.
WINDOW_CHOICES = (3600, 86400, 7 * 86400, 30 * 86400)

_ONLY_OVERSIGHT: Text = (
    "Solo un órgano de supervisión lee las alertas de la bitácora de auditoría.",
    "Only an oversight body reads the audit log's alerts.",
)
_BAD_WINDOW: Text = (
    f"El periodo pedido no es válido (de {SHORTEST_WINDOW} segundos a 30 días); se muestra el "
    "periodo predeterminado.",
    f"The period asked for is not valid ({SHORTEST_WINDOW} seconds to 30 days); the default "
    "period is shown.",
)


def _window(default: int) -> tuple[int, list[Text]]:
    """The window the address asks for (``?window=`` seconds), or the default, with what was
    wrong with the address."""
    asked = request.args.get("window", "").strip()
    if not asked:
        return default, []
    # Bounded before int(): Python refuses to read more than 4,300 digits (a 500).
    digits = asked.isascii() and asked.isdigit() and len(asked) <= len(str(LONGEST_WINDOW))
    if digits and SHORTEST_WINDOW <= int(asked) <= LONGEST_WINDOW:
        return int(asked), []
    return default, [_BAD_WINDOW]


@bp.get("/alerts")
@login_required(OVERSIGHT_SCOPE)
def alerts() -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    if not is_oversight(actor):
        return message_page(403, ("Sin acceso", "No access"), _ONLY_OVERSIGHT)
    default, denials, requests = alert_settings()
    seconds, errors = _window(default)
    now = utcnow()
    window = AlertWindow(now - timedelta(seconds=seconds), now, denials, requests)
    found = collect_alerts(session, window)
    known = {kind.code for kind in ALERT_KINDS}
    groups: list[dict[str, Any]] = [
        {"kind": kind, "alerts": [alert for alert in found if alert["kind"] == kind.code]}
        for kind in ALERT_KINDS
    ]
    # A kind this page has no words for yet (a source added later) is still shown, as is.
    others = [alert for alert in found if alert["kind"] not in known]
    choices = sorted({*WINDOW_CHOICES, default, seconds})  # the one shown is among them
    return render_template(
        "alerts.html",
        groups=groups,
        others=others,
        total=len(found),
        generated_at=now,
        window=window,
        seconds=seconds,
        window_choices=[(choice, window_label(choice)) for choice in choices],
        window_said=window_label(seconds),
        names=names_of(session, parties_in(alert.get("actor") for alert in found)),
        basis_labels=basis_labels(),
        errors=errors,
    ), (400 if errors else 200)
