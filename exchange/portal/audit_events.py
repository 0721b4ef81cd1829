"""``/audit``: the audit log's entries for oversight, as ``GET /v1/audit/events`` finds them.

For oversight alone, as the API route (``audit:read`` *and* an oversight body's kind now:
exchange.consents.is_oversight): anyone else gets the portal's 403. The entries are the API's
own (exchange.audit_queries.find_events, a child's history with the children merged into it,
exchange.audit_queries.child_family), with the same filters — child, actor, action, outcome,
period — chosen in a form. Like the API route, reading them is not audited: reading the log
must not grow it (docs/audit.md).

What the page adds is words for a person: each entry's action, outcome and object under the
audit-event schema's own labels, who acted and for whom by name, times in central Mexico time,
the newest first (the API pages the oldest first: a script reads the log in its order, a
person looks at what happened last), and the entry's signed text as the log holds it, to
check against an export with ``puente audit verify``. A period is chosen as days, read in
central Mexico time as the portal's other dates are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import render_template, request
from sqlalchemy.orm import Session

from exchange.audit_log import parse_entry
from exchange.audit_queries import child_family, find_events, known_actions
from exchange.consents import OVERSIGHT_SCOPE, is_oversight
from exchange.db import session as db_session
from exchange.people import control_characters_in
from exchange.portal.blueprint import PAGE_TIME, Text, bp, message_page
from exchange.portal.override_views import names_of, parties_in
from exchange.portal.sessions import current_actor, login_required
from schemas.registry import default_registry

#: Entries a page shows.
PAGE_SIZE = 50
#: The longest child or actor id a filter takes (ids are at most 100 characters).
LONGEST_ID = 200

_ONLY_OVERSIGHT: Text = (
    "Solo un órgano de supervisión lee las entradas de la bitácora de auditoría.",
    "Only an oversight body reads the audit log's entries.",
)


def _labels(*path: str) -> dict[str, Text]:
    """The audit-event schema's own words for each code of the property at ``path``."""
    node: Mapping[str, Any] = default_registry().document("audit-event", 1)
    for name in path:
        node = node["properties"][name]
    return {code: (said["es"], said["en"]) for code, said in node.get("x-labels", {}).items()}


class Filters:
    """What the form asks for, checked: each field's value, what was wrong with it (that
    filter is then left out, and said), and the values to keep in the form and links."""

    def __init__(self, actions: list[str]) -> None:
        self.errors: list[Text] = []
        self.kept: dict[str, str] = {}
        self.child_id = self._id("child_id", ("El niño, niña o adolescente", "The child"))
        self.actor = self._id("actor", ("El actor", "The actor"))
        self.action = self._choice("action", actions, ("La acción", "The action"))
        self.outcome = self._choice(
            "outcome", ["success", "denied", "failure"], ("El resultado", "The outcome")
        )
        self.since = self._day("since", ("La fecha «desde»", "The 'from' date"))
        self.until = self._day("until", ("La fecha «hasta»", "The 'to' date"))
        if self.since is not None and self.until is not None and self.until < self.since:
            self.errors.append(
                (
                    "La fecha «hasta» es anterior a la fecha «desde»; el periodo no se aplicó.",
                    "The 'to' date is before the 'from' date; the period was not applied.",
                )
            )
            self.since = self.until = None
        self.before = self._index("before")

    def _left_out(self, what: Text, es: str, en: str) -> None:
        """Say what is wrong with a filter, which is then left out (None)."""
        self.errors.append(
            (f"{what[0]} {es}; no se aplicó.", f"{what[1]} {en}; it was not applied.")
        )

    def _given(self, name: str) -> str:
        return request.args.get(name, "").strip()

    def _id(self, name: str, what: Text) -> str | None:
        value = self._given(name)
        if not value:
            return None
        if len(value) > LONGEST_ID or control_characters_in(value):
            return self._left_out(
                what, "no es un identificador válido", "is not a valid identifier"
            )
        self.kept[name] = value
        return value

    def _choice(self, name: str, allowed: list[str], what: Text) -> str | None:
        value = self._given(name)
        if not value:
            return None
        if value not in allowed:
            return self._left_out(what, "pedida no existe", "asked for does not exist")
        self.kept[name] = value
        return value

    def _day(self, name: str, what: Text) -> date | None:
        value = self._given(name)
        if not value:
            return None
        try:
            day = date.fromisoformat(value) if len(value) == 10 and value.isascii() else None
        except ValueError:
            day = None
        if day is None or day.year < 2000:
            return self._left_out(
                what, "no es una fecha (AAAA-MM-DD)", "is not a date (YYYY-MM-DD)"
            )
        self.kept[name] = value
        return day

    def _index(self, name: str) -> int | None:
        value = self._given(name)
        # Bounded before int(): Python refuses to read more than 4,300 digits (a 500).
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
        return None

    def period(self) -> tuple[datetime | None, datetime | None]:
        """``[since, until)`` as instants: from the start of the first day to the end of the
        last, in central Mexico time."""
        start = datetime.combine(self.since, time(), PAGE_TIME) if self.since else None
        end = (
            datetime.combine(self.until + timedelta(days=1), time(), PAGE_TIME)
            if self.until
            else None
        )
        return start, end


def _shown(row: Any) -> dict[str, Any]:
    entry = parse_entry(bytes(row.entry))
    return {"index": row.idx, "id": row.id, "entry": entry, "signed": bytes(row.entry).decode()}


def _events(session: Session, filters: Filters) -> tuple[list[dict[str, Any]], list[str] | None]:
    since, until = filters.period()
    family = None if filters.child_id is None else child_family(session, filters.child_id)
    rows = find_events(
        session,
        child_ids=family,
        actor=filters.actor,
        action=filters.action,
        outcome=filters.outcome,
        since=since,
        until=until,
        before_index=filters.before,
        newest_first=True,
        limit=PAGE_SIZE + 1,
    )
    return [_shown(row) for row in rows], family


@bp.get("/audit")
@login_required(OVERSIGHT_SCOPE)
def audit_events() -> tuple[str, int]:
    actor, session = current_actor(), db_session()
    if not is_oversight(actor):
        return message_page(403, ("Sin acceso", "No access"), _ONLY_OVERSIGHT)
    actions = known_actions()
    filters = Filters(actions)
    entries, family = _events(session, filters)
    older = entries[PAGE_SIZE - 1]["index"] if len(entries) > PAGE_SIZE else None
    entries = entries[:PAGE_SIZE]
    action_labels = _labels("action")
    return render_template(
        "audit_events.html",
        entries=entries,
        filters=filters,
        older=older,
        paged=filters.before is not None,
        merged=[child for child in family or [] if child != filters.child_id],
        actions=[(code, action_labels.get(code, (code, code))) for code in actions],
        action_labels=action_labels,
        outcome_labels=_labels("outcome"),
        object_labels=_labels("object", "type"),
        names=names_of(
            session,
            parties_in(
                party
                for shown in entries
                for party in (shown["entry"].get("actor"), shown["entry"].get("target"))
            ),
        ),
        errors=filters.errors,
    ), (400 if filters.errors else 200)
