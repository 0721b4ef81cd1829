"""Consents and grants flattened into *nodes*, the form :class:`~consent.compiled.ConsentSet`
decides with.

Every provision becomes a node carrying everything that must hold for it to match — the
conditions of the provisions above it included, since a nested provision only applies inside
its parent — and its depth: the consent's base decision is depth 0, its top provisions depth 1,
their nested provisions depth 2, and so on. A grant is a permit node at depth 1.

A node whose path names actors matches those actors. A node that names none — the base
decision, or a provision without ``actor`` — speaks to the consent's grantees (everyone when it
has none), except that a deny provision without actors binds everyone: a restriction the grantor
wrote protects the child whoever asks.

A consent yields nodes while ``status`` is ``active`` (or ``inactive`` because it was revoked);
each node's time window runs from the period start to the earliest of the period end and the
child's 18th birthday, narrowed by the provision periods on its path. A revocation ends the
consent's *permits* at once; its *denies* stay: withdrawing consent only ever narrows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consent import messages
from consent._time import FOREVER, timestamp
from consent.access import Grant
from consent.decision import Reason
from consent.model import Consent, Provision
from consent.parts import ActorRef
from consent.vocabulary import ALL_CATEGORIES_MASK, mask_of


@dataclass(frozen=True, slots=True)
class Node:
    """One base decision, provision or grant, flattened with its ancestors' conditions."""

    depth: int
    deny: bool
    mask: int  # categories it speaks about
    filters: tuple[tuple[ActorRef, ...], ...]  # each level's actor list: one of each must match
    scope: tuple[ActorRef, ...] | None  # grantees to match when no filter; None: anyone
    actions: frozenset[str]
    purposes: frozenset[str]
    record_ids: frozenset[str] | None
    start: float
    end: float
    kind: str  # consent | grant
    ref: str
    where: str  # "base", "2", "2.1" (provision path) or "grant"
    purpose: str | None = None  # a grant's purpose, for its reason
    order: int = 0  # position in the set's decision order
    #: Being found under the actor's agency or person id already proves the actor matches.
    exact: bool = False
    #: A restriction of a consent since revoked (it stays in force; the reason says so).
    revoked: bool = False
    #: Reasons by category mask, built on first use.
    reasons: dict[int, Reason] = field(default_factory=dict, compare=False, repr=False)

    def indexed_exactly(self) -> bool:
        """Whether one actor condition of single agency or person ids is all there is."""
        if len(self.filters) > 1 or (self.filters and self.scope is not None):
            return False
        level = self.filters[0] if self.filters else self.scope
        if level is None:
            return False
        return all(
            (ref.agency_id is None) != (ref.person_id is None) and ref.role is None for ref in level
        )

    def index_keys(self) -> tuple[list[str], list[str]] | None:
        """The agency and person ids one of which an actor must have to match; None when a
        role alone (or anyone) may match."""
        level = self.filters[0] if self.filters else self.scope
        if level is None:
            return None
        agencies: list[str] = []
        persons: list[str] = []
        for ref in level:
            if ref.person_id is not None:
                persons.append(ref.person_id)
            elif ref.agency_id is not None:
                agencies.append(ref.agency_id)
            else:
                return None
        return agencies, persons

    def matches_actor(
        self, agency_id: str | None, person_id: str | None, roles: frozenset[str]
    ) -> bool:
        for level in self.filters:
            if not any(ref.matches(agency_id, person_id, roles) for ref in level):
                return False
        if self.scope is not None and not any(
            ref.matches(agency_id, person_id, roles) for ref in self.scope
        ):
            return False
        return True

    def reason(self, mask: int) -> Reason:
        found = self.reasons.get(mask)
        if found is None:
            if self.kind == "grant":
                assert self.purpose is not None
                found = messages.grant(self.ref, self.purpose, mask)
            else:
                found = messages.consent(self.ref, self.where, self.deny, mask, self.revoked)
            self.reasons[mask] = found
        return found


def consent_nodes(consent: Consent, index: int, cap: float) -> list[Node]:
    """The nodes of an active consent — or of a revoked one, whose restrictions stay."""
    revocation = consent.revocation
    if consent.status == "active":
        revoked_at = FOREVER if revocation is None else revocation.revoked_at.timestamp()
    elif consent.status == "inactive" and revocation is not None:
        revoked_at = -FOREVER  # marked revoked: it permits nothing, whatever the instant says
    else:
        return []
    start = timestamp(consent.period.start, -FOREVER)
    end = min(timestamp(consent.period.end, FOREVER), cap)
    if start >= end:
        return []
    emit = _Emitter(
        ref=consent.id or f"consent-{index + 1}",
        scope=consent.grantees or None,
        revoked_at=revoked_at,
    )
    base = _Path("base", 0, (), frozenset(), frozenset(), ALL_CATEGORIES_MASK, None, start, end)
    emit(base, deny=consent.decision == "deny")
    for position, provision in enumerate(consent.provisions, start=1):
        top = _Path(
            str(position), 1, (), frozenset(), frozenset(), ALL_CATEGORIES_MASK, None, start, end
        )
        _flatten(provision, top, emit)
    return emit.nodes


@dataclass(frozen=True, slots=True)
class _Path:
    """The conditions accumulated from the consent down to a provision (for the base decision,
    the consent's own), and the place (``where``, ``depth``) of the provision."""

    where: str
    depth: int
    filters: tuple[tuple[ActorRef, ...], ...]
    actions: frozenset[str]  # empty: any
    purposes: frozenset[str]  # empty: any
    mask: int
    record_ids: frozenset[str] | None
    start: float
    end: float


class _Emitter:
    """Makes a consent's nodes. A revocation ends what the consent permits at once, but what it
    forbids stays in force (until the period or the 18th birthday ends it): withdrawing consent
    can only narrow disclosure. A deny spanning the revocation becomes two nodes, so the reason
    can say the consent was revoked."""

    def __init__(self, ref: str, scope: tuple[ActorRef, ...] | None, revoked_at: float) -> None:
        self.ref = ref
        self.scope = scope
        self.revoked_at = revoked_at
        self.nodes: list[Node] = []

    def __call__(self, path: _Path, *, deny: bool) -> None:
        windows = [(path.start, min(path.end, self.revoked_at), False)]
        if deny:  # a restriction outlives the revocation
            windows.append((max(path.start, self.revoked_at), path.end, True))
        for start, end, revoked in windows:
            if start >= end:
                continue
            self.nodes.append(
                Node(
                    depth=path.depth,
                    deny=deny,
                    mask=path.mask,
                    filters=path.filters,
                    # The base decision and actor-less permits speak to the grantees; an
                    # actor-less deny binds everyone.
                    scope=None if path.filters or (deny and path.depth) else self.scope,
                    actions=path.actions,
                    purposes=path.purposes,
                    record_ids=path.record_ids,
                    start=start,
                    end=end,
                    kind="consent",
                    ref=self.ref,
                    where=path.where,
                    revoked=revoked,
                )
            )


def _flatten(provision: Provision, above: _Path, emit: _Emitter) -> None:
    """Emit ``provision`` (at ``above.where``/``above.depth``, under the conditions of
    ``above``) and its nested provisions."""
    actions = _narrow(above.actions, provision.actions)
    purposes = _narrow(above.purposes, provision.purposes)
    mask = above.mask & (
        mask_of(provision.categories) if provision.categories else ALL_CATEGORIES_MASK
    )
    records = above.record_ids
    if provision.record_ids:
        records = provision.record_ids if records is None else records & provision.record_ids
    start = max(above.start, timestamp(provision.period.start, -FOREVER))
    end = min(above.end, timestamp(provision.period.end, FOREVER))
    # A provision whose conditions can never hold together matches nothing, nor do its children.
    if actions is None or purposes is None or not mask or records == frozenset() or start >= end:
        return
    filters = above.filters + ((provision.actors,) if provision.actors else ())
    here = _Path(above.where, above.depth, filters, actions, purposes, mask, records, start, end)
    emit(here, deny=provision.decision == "deny")
    for position, nested in enumerate(provision.provisions, start=1):
        below = _Path(
            f"{here.where}.{position}",
            here.depth + 1,
            filters,
            actions,
            purposes,
            mask,
            records,
            start,
            end,
        )
        _flatten(nested, below, emit)


def _narrow(above: frozenset[str], own: frozenset[str]) -> frozenset[str] | None:
    """Codes allowed by both levels (empty: any); None when they have none in common."""
    if not own:
        return above
    if not above:
        return own
    both = above & own
    return both or None


def grant_nodes(grant: Grant, index: int, cap: float) -> list[Node]:
    start = timestamp(grant.starts, -FOREVER)
    end = min(grant.until.timestamp(), cap)
    if grant.revoked_at is not None:
        end = min(end, grant.revoked_at.timestamp())
    if start >= end:
        return []
    return [
        Node(
            depth=1,
            deny=False,
            mask=mask_of(grant.categories),
            filters=((grant.grantee,),),
            scope=None,
            actions=grant.actions,
            purposes=frozenset({grant.purpose}),
            record_ids=grant.record_ids or None,
            start=start,
            end=end,
            kind="grant",
            ref=grant.id or f"grant-{index + 1}",
            where="grant",
            purpose=grant.purpose,
        )
    ]
