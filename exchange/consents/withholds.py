""" "Withhold from" entries: recording, listing and revoking them, and checking that what
an entry names (agency, person, peer hub, period) would withhold from someone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import CATEGORIES, ConsentError, WithholdFrom
from consent.parts import ActorRef
from exchange.auth import Actor, as_utc, utcnow
from exchange.consent_store import WithholdRow, new_id
from exchange.consents.common import (
    REASON,
    ConsentProblem,
    OwnAgency,
    audit,
    format_error,
    instant_problem,
    instant_text,
    officer_row,
    own_agency,
    party,
    refuse_control_characters,
    require_acts_for,
    require_officer,
)
from exchange.consents.records import period_state
from exchange.crypto import data_keyring
from exchange.disclosure import ChildContext, forget_child
from exchange.people import Person

#: Where a withhold entry stands now (``state`` in ``GET /v1/children/{id}/withholds``).
WITHHOLD_STATES = ("active", "not_started", "expired", "revoked")


def names_own_agency(row: WithholdRow, agency: OwnAgency) -> bool:
    """Whether the entry withholds from ``agency`` or someone of it: its people never see it,
    nor revoke it (docs/consent.md §8.8)."""
    return agency.named_by(row.target(), row.actor_kind)


def _withhold_state(row: WithholdRow, moment: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    return period_state(
        as_utc(row.starts_at) if row.starts_at else None,
        as_utc(row.ends_at) if row.ends_at else None,
        moment,
    )


def withhold_json(row: WithholdRow, moment: datetime) -> dict[str, Any]:
    """A withhold entry as the consent officers who act for the child read it, written
    reasons included."""
    document = row.open(data_keyring())
    target = row.target()
    revocation = None
    if row.revoked_at is not None:
        revocation = {
            "revoked_at": instant_text(row.revoked_at),
            "revoked_by": party(row.revoked_by_agency, row.revoked_by_person),
            "reason": document.get("revocation_reason"),
        }
    return {
        "id": row.id,
        "state": _withhold_state(row, moment),
        "child_id": row.child_id,
        "target": None if target is None else target.to_json(),
        "target_hub": document.get("target_hub"),
        "actor_kind": row.actor_kind,
        # Every category named, even when the entry was recorded without any: an officer must
        # never read an empty list as "nothing withheld".
        "categories": list(row.categories or CATEGORIES),
        "starts": instant_text(row.starts_at) if row.starts_at else None,
        "ends": instant_text(row.ends_at) if row.ends_at else None,
        "reason": document.get("reason"),
        "recorded_at": instant_text(row.recorded_at),
        "recorded_by": party(row.recorded_by_agency, row.recorded_by_person),
        "revocation": revocation,
    }


def _unknown_target(
    session: Session, target: ActorRef | None, target_hub: str | None = None
) -> list[dict[str, str]]:
    """What the hub does not know in an entry's target: an entry naming an agency or person
    that is not registered here (a mistyped id) would withhold from nobody while the officer
    believes the child protected. An agency of a pinned peer hub (which may look the child up,
    docs/federation.md) is named with that hub in ``target_hub``: the hub, and that it speaks for
    the agency, are checked instead."""
    from exchange.agencies import Agency

    if target_hub is not None:
        return _peer_target_problems(session, target, target_hub)
    if target is None:
        return []
    found = []
    if target.agency_id is not None and session.get(Agency, target.agency_id) is None:
        found.append(
            {
                "pointer": "/target/agency_id",
                "message_es": f"En este nodo no hay ninguna agencia {target.agency_id!r}.",
                "message_en": f"This hub has no agency {target.agency_id!r}.",
            }
        )
    if target.person_id is not None:
        person = session.get(Person, target.person_id)
        if person is None:
            found.append(
                {
                    "pointer": "/target/person_id",
                    "message_es": f"En este nodo no hay ninguna persona {target.person_id!r}.",
                    "message_en": f"This hub has no person {target.person_id!r}.",
                }
            )
        elif target.agency_id is not None and person.agency_id != target.agency_id:
            found.append(
                {
                    "pointer": "/target/person_id",
                    "message_es": f"{target.person_id!r} pertenece a {person.agency_id!r}, "
                    f"no a {target.agency_id!r}: la reserva no alcanzaría a nadie.",
                    "message_en": f"{target.person_id!r} belongs to {person.agency_id!r}, "
                    f"not {target.agency_id!r}: the entry would withhold from nobody.",
                }
            )
    return found


def _withhold_period_problems(entry: WithholdFrom, moment: datetime) -> list[dict[str, str]]:
    if entry.ends is None:
        return []
    if entry.starts is not None and entry.ends <= entry.starts:
        return [
            {
                "pointer": "/ends",
                "message_es": "El fin debe ser posterior al inicio («starts»).",
                "message_en": "The end must come after the start ('starts').",
            }
        ]
    if entry.ends <= moment:
        return [
            {
                "pointer": "/ends",
                "message_es": "El fin ya pasó: la reserva no protegería nada.",
                "message_en": "The end is in the past: the entry would protect nothing.",
            }
        ]
    return []


def _peer_target_problems(
    session: Session, target: ActorRef | None, target_hub: str
) -> list[dict[str, str]]:
    """``target_hub`` names the pinned peer whose agency the entry withholds from: only an
    agency, not registered here, that the hub speaks for (under its agency prefixes, the rule
    a consent naming a peer's agency is checked by): a lookup from that hub names no other, so
    an entry for a mistyped agency (``mx.fde.comar``) would protect nobody."""
    from exchange.agencies import Agency
    from exchange.peers import Peer, speaks_for

    if target is None or target.agency_id is None or target.person_id is not None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": "target_hub va con target.agency_id (una agencia de ese nodo), "
                "sin persona: las personas de otro nodo no consultan aquí.",
                "message_en": "target_hub goes with target.agency_id (an agency of that hub), "
                "without a person: another hub's people never ask here.",
            }
        ]
    if session.get(Agency, target.agency_id) is not None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": f"{target.agency_id} es una agencia de este nodo: quite target_hub.",
                "message_en": f"{target.agency_id} is an agency of this hub: leave out target_hub.",
            }
        ]
    peer = session.get(Peer, target_hub)
    if peer is None:
        return [
            {
                "pointer": "/target_hub",
                "message_es": f"No hay un nodo par {target_hub!r} registrado (puente peer list).",
                "message_en": f"No peer hub {target_hub!r} is pinned (puente peer list).",
            }
        ]
    if not speaks_for(peer, target.agency_id):
        # Any pinned peer, active or not, as above: a disabled one may be enabled again, and
        # the entry must stand then.
        prefixes = ", ".join(peer.agency_prefixes) or "—"
        return [
            {
                "pointer": "/target/agency_id",
                "message_es": f"El nodo par {target_hub} no habla por {target.agency_id!r} (sus "
                f"prefijos de agencia: {prefixes}): ninguna consulta suya puede nombrarla, y la "
                "reserva no alcanzaría a nadie.",
                "message_en": f"Peer hub {target_hub} does not speak for {target.agency_id!r} "
                f"(its agency prefixes: {prefixes}): no lookup of its can name it, and the "
                "entry would withhold from nobody.",
            }
        ]
    return []


def record_withhold(
    session: Session, actor: Actor, child: ChildContext, document: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Record a withhold entry (the request body, already schema-valid: ``target`` and/or
    ``actor_kind``, ``categories``, ``starts``, ``ends``, ``reason``). A consent officer's,
    who acts for the child; it counts from the next decision on, in every process."""
    refuse_control_characters(("/reason", document.get("reason"), REASON))
    require_acts_for(session, actor, child)
    require_officer(actor)
    moment = utcnow()
    withhold_id = new_id("wth")
    fields = ("target", "actor_kind", "categories", "starts", "ends")
    beyond = [
        {"pointer": f"/{key}", "message_es": problem[0], "message_en": problem[1]}
        for key in ("starts", "ends")
        if (problem := instant_problem(document.get(key), key)) is not None
    ]
    if beyond:  # an instant Python cannot hold in UTC would fail only when stored
        raise ConsentProblem(
            "validation",
            "La reserva no puede registrarse.",
            "The withhold entry cannot be recorded.",
            beyond,
        )
    try:
        entry = WithholdFrom.from_json(
            {
                "child_id": child.child_id,
                "id": withhold_id,
                **{key: document[key] for key in fields if document.get(key) is not None},
            }
        )
    except ConsentError as error:
        raise format_error(error) from error
    target_hub = document.get("target_hub")
    found = _unknown_target(session, entry.target, target_hub) + _withhold_period_problems(
        entry, moment
    )
    if found:
        raise ConsentProblem(
            "validation",
            "La reserva no puede registrarse.",
            "The withhold entry cannot be recorded.",
            found,
        )
    target = entry.target
    row = WithholdRow(
        id=withhold_id,
        child_id=child.child_id,
        target_agency_id=target.agency_id if target else None,
        target_person_id=target.person_id if target else None,
        target_role=target.role if target else None,
        actor_kind=entry.actor_kind,
        categories=[code for code in CATEGORIES if code in entry.categories],
        # In UTC, as every stored instant is (SQLite keeps no offset).
        starts_at=entry.starts.astimezone(UTC) if entry.starts else None,
        ends_at=entry.ends.astimezone(UTC) if entry.ends else None,
        recorded_by_agency=actor.agency_id,
        recorded_by_person=actor.person_id,
        recorded_at=moment,
    )
    sealed = {"reason": document["reason"]}
    if target_hub is not None:
        sealed["target_hub"] = target_hub
    row.seal(data_keyring(), sealed)
    session.add(row)
    # Codes and ids only: the written reason may describe the child's situation.
    audit_entry = audit(
        session,
        actor,
        "consent_changed",
        child.child_id,
        object_type="withhold",
        object_id=withhold_id,
        detail="withhold_recorded",
    )
    forget_child(child.child_id)
    answer = withhold_json(row, moment)
    if target_hub is not None and target is not None and target.agency_id is not None:
        # Checked against the peer's prefixes only (_peer_target_problems): the officer is told
        # the id itself could not be, with the answer, not in the stored entry.
        answer["warnings"] = [_peer_agency_warning(session, target_hub, target.agency_id)]
    return answer, audit_entry


def _peer_agency_warning(session: Session, target_hub: str, agency_id: str) -> dict[str, str]:
    from exchange.peers import Peer, peer_agency_caution

    peer = session.get(Peer, target_hub)
    assert peer is not None  # else _peer_target_problems refused the entry
    return peer_agency_caution(session, peer, agency_id, "/target/agency_id")


def list_withholds(
    session: Session, actor: Actor, child: ChildContext
) -> tuple[list[dict[str, Any]], str]:
    """The child's withhold entries (and those of children merged into it), newest first,
    active and past, each with its ``state``: for a caller who acts for the child, anyone else
    gets ``LookupError`` (404). Entries that withhold from the caller's agency or someone of it
    are left out (:func:`names_own_agency`). Each reading is an audit entry (``consents_read``,
    detail ``withholds``; ids only)."""
    require_acts_for(session, actor, child)
    moment = utcnow()
    rows = session.scalars(
        select(WithholdRow)
        .where(WithholdRow.child_id.in_(child.family))
        .order_by(WithholdRow.recorded_at.desc(), WithholdRow.id.desc())
    )
    agency = own_agency(session, actor)
    found = [withhold_json(row, moment) for row in rows if not names_own_agency(row, agency)]
    entry = audit(session, actor, "consents_read", child.child_id, detail="withholds")
    return found, entry


def revoke_withhold(
    session: Session, actor: Actor, withhold_id: str, reason: str
) -> tuple[dict[str, Any], str]:
    """End a withhold entry at once (a consent officer's, who acts for the child, of another
    agency than the one it withholds from: to that agency's people it does not exist); a
    revoked entry is kept, with who revoked it, when and why."""
    refuse_control_characters(("/reason", reason, REASON))
    row, child = officer_row(session, actor, WithholdRow, withhold_id, names_own_agency)
    if row.revoked_at is not None:
        raise ConsentProblem(
            "conflict",
            "La reserva ya fue revocada.",
            "The withhold entry was already revoked.",
        )
    moment = utcnow()
    keyring = data_keyring()
    row.seal(keyring, {**row.open(keyring), "revocation_reason": reason})
    row.revoked_at = moment
    row.revoked_by_agency = actor.agency_id
    row.revoked_by_person = actor.person_id
    entry = audit(
        session,
        actor,
        "consent_changed",
        child.child_id,
        object_type="withhold",
        object_id=row.id,
        detail="withhold_revoked",
    )
    forget_child(child.child_id)
    return withhold_json(row, moment), entry
