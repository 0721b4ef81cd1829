"""A child's consents and grants compiled for fast decisions (:class:`ConsentSet`).

The consents and grants become nodes (:mod:`consent.nodes`). For each requested category the
deepest matching node decides; between nodes of equal depth a deny wins. This holds across all
of the child's consents and grants, so an explicit provision of one consent outweighs another
consent's base decision, and an explicit deny of one outweighs an equally deep permit of
another.

Speed: nodes are indexed by (action, purpose) and by the agency or person they name; the nodes
that match an actor and record are remembered per request shape, and the verdict per request
shape is remembered with the time window in which it stays true (between the nearest period
boundaries), so a repeated question costs a dictionary lookup. The hub caches one
``ConsentSet`` per child and builds a new one when a consent or grant changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consent._time import FOREVER, timestamp
from consent.access import Grant
from consent.decision import Decision, Reason
from consent.errors import RequestError
from consent.facts import ChildFacts
from consent.model import Consent
from consent.nodes import Node, consent_nodes, grant_nodes
from consent.request import Request
from consent.vocabulary import ACTIONS, PURPOSES


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the consents and grants say about the categories still open."""

    permit: int
    deny: int
    reasons: tuple[Reason, ...]
    consent_ids: tuple[str, ...]
    grant_ids: tuple[str, ...]
    #: "consent" when any consent permitted a category, else "grant" (or "" if none did).
    permit_basis: str


NO_VERDICT = Verdict(0, 0, (), (), (), "")


class ConsentSet:
    """The consents and grants of one child, compiled (see the module documentation)."""

    __slots__ = (
        "_buckets",
        "_candidates",
        "_decisions",
        "_everywhere",
        "_merged",
        "_verdicts",
        "child",
        "child_id",
        "consents",
        "grants",
        "nodes",
        "remember",
    )

    MEMO_LIMIT = 4096

    def __init__(
        self,
        items: Iterable[Consent | Grant] = (),
        *,
        child: ChildFacts | None = None,
        remember: bool = True,
    ) -> None:
        """``remember=False`` works every verdict out afresh (for benchmarks and for tests
        that check the remembered answers against fresh ones)."""
        self.remember = remember
        self.child = child if child is not None else ChildFacts()
        items = tuple(items)
        self.consents = tuple(item for item in items if isinstance(item, Consent))
        self.grants = tuple(item for item in items if isinstance(item, Grant))
        child_ids = {item.child_id for item in items}
        if self.child.child_id is not None:
            child_ids.add(self.child.child_id)
        if len(child_ids) > 1:
            raise RequestError(
                f"Consentimientos de varias niñas, niños o adolescentes: {sorted(child_ids)}.",
                f"Consents of several children mixed: {sorted(child_ids)}.",
            )
        self.child_id = next(iter(child_ids), None)
        cap = timestamp(self.child.eighteenth_birthday, FOREVER)
        nodes: list[Node] = []
        for index, consent in enumerate(self.consents):
            nodes.extend(consent_nodes(consent, index, cap))
        for index, grant in enumerate(self.grants):
            nodes.extend(grant_nodes(grant, index, cap))
        # Deepest first, deny before permit at equal depth, then a stable order for reasons.
        nodes.sort(
            key=lambda node: (
                -node.depth,
                not node.deny,
                node.kind,
                node.ref,
                node.where,
                node.start,
            )
        )
        for order, node in enumerate(nodes):
            # Still private to this constructor, so setting the derived fields is safe.
            object.__setattr__(node, "order", order)
            object.__setattr__(node, "exact", node.indexed_exactly())
        self.nodes = tuple(nodes)
        # Nodes for any action and purpose (base decisions, broad provisions) are kept once;
        # the others under each (action, purpose) they allow.
        self._everywhere = _Bucket()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        for node in self.nodes:
            keys = node.index_keys()
            if not node.actions and not node.purposes:
                self._everywhere.add(node, keys)
                continue
            for action in node.actions or ACTIONS:
                for purpose in node.purposes or PURPOSES:
                    bucket = self._buckets.get((action, purpose))
                    if bucket is None:
                        bucket = self._buckets[(action, purpose)] = _Bucket()
                    bucket.add(node, keys)
        self._merged: dict[tuple[str, str], _Bucket] = {}  # everywhere + (action, purpose)
        self._candidates: dict[tuple[object, ...], tuple[Node, ...]] = {}
        self._verdicts: dict[tuple[object, ...], tuple[float, float, Verdict]] = {}
        self._decisions: dict[tuple[object, ...], tuple[object, Verdict, Decision]] = {}

    def __len__(self) -> int:
        return len(self.consents) + len(self.grants)

    def recall(self, key: tuple[object, ...], rules: object, verdict: Verdict) -> Decision | None:
        """A decision made before from the same rules and verdict (engine use)."""
        found = self._decisions.get((id(rules), id(verdict), *key))
        # The entry holds the rules and verdict it was made from, so their ids stay theirs.
        if found is not None and found[0] is rules and found[1] is verdict:
            return found[2]
        return None

    def keep(
        self, key: tuple[object, ...], rules: object, verdict: Verdict, decision: Decision
    ) -> None:
        if not self.remember:
            return
        if len(self._decisions) >= self.MEMO_LIMIT:
            self._decisions.clear()
        self._decisions[(id(rules), id(verdict), *key)] = (rules, verdict, decision)

    def _match(self, request: Request) -> tuple[Node, ...]:
        """The nodes that match the request's action, purpose, actor and record, in order."""
        key = (request.action, request.purpose)
        bucket = self._merged.get(key)
        if bucket is None:
            bucket = self._merged[key] = self._everywhere.merged_with(self._buckets.get(key))
        return bucket.candidates(request)

    def evaluate(self, request: Request, moment: float, open_mask: int) -> Verdict:
        """The verdict for the categories in ``open_mask`` at POSIX time ``moment``."""
        if not open_mask or not self.nodes:
            return NO_VERDICT
        if not self.remember:
            return _verdict(self._match(request), moment, open_mask)
        actor = request.actor
        shape = (
            request.action,
            request.purpose,
            actor.agency_id,
            actor.person_id,
            actor.roles,
            request.record_id,
        )
        key = (*shape, open_mask)
        remembered = self._verdicts.get(key)
        if remembered is not None and remembered[0] <= moment < remembered[1]:
            return remembered[2]
        candidates = self._candidates.get(shape)
        if candidates is None:
            candidates = self._match(request)
            if len(self._candidates) >= self.MEMO_LIMIT:
                self._candidates.clear()
            self._candidates[shape] = candidates
        verdict = _verdict(candidates, moment, open_mask)
        low, high = _window(candidates, moment)
        if len(self._verdicts) >= self.MEMO_LIMIT:
            self._verdicts.clear()
        self._verdicts[key] = (low, high, verdict)
        return verdict


class _Bucket:
    """The nodes of one (action, purpose), indexed by the agency or person they name."""

    __slots__ = ("by_agency", "by_person", "general")

    def __init__(self) -> None:
        self.by_agency: dict[str, list[Node]] = {}
        self.by_person: dict[str, list[Node]] = {}
        self.general: list[Node] = []

    def add(self, node: Node, keys: tuple[list[str], list[str]] | None) -> None:
        if keys is None:
            self.general.append(node)
            return
        agencies, persons = keys
        for agency_id in agencies:
            self.by_agency.setdefault(agency_id, []).append(node)
        for person_id in persons:
            self.by_person.setdefault(person_id, []).append(node)

    def merged_with(self, other: _Bucket | None) -> _Bucket:
        """A bucket holding the nodes of both (each node is in at most one of them)."""
        merged = _Bucket()
        for source in (self, other) if other is not None else (self,):
            merged.general.extend(source.general)
            for agency_id, nodes in source.by_agency.items():
                merged.by_agency.setdefault(agency_id, []).extend(nodes)
            for person_id, nodes in source.by_person.items():
                merged.by_person.setdefault(person_id, []).extend(nodes)
        return merged

    def candidates(self, request: Request) -> tuple[Node, ...]:
        """The nodes that match the request's actor and record, in decision order."""
        actor = request.actor
        agency_id, person_id, roles = actor.agency_id, actor.person_id, actor.roles
        record_id = request.record_id
        found = [
            node
            for node in self.general
            if node.matches_actor(agency_id, person_id, roles)
            and (node.record_ids is None or record_id in node.record_ids)
        ]
        by_agency = self.by_agency.get(agency_id, ()) if agency_id is not None else ()
        by_person = self.by_person.get(person_id, ()) if person_id is not None else ()
        for node in by_agency:
            if (node.exact or node.matches_actor(agency_id, person_id, roles)) and (
                node.record_ids is None or record_id in node.record_ids
            ):
                found.append(node)
        if by_person:
            # A node naming both the actor's agency and the actor's person is in both lists.
            seen = {node.order for node in found} if by_agency else set()
            for node in by_person:
                if (
                    node.order not in seen
                    and (node.exact or node.matches_actor(agency_id, person_id, roles))
                    and (node.record_ids is None or record_id in node.record_ids)
                ):
                    found.append(node)
        found.sort(key=_order)
        return tuple(found)


def _order(node: Node) -> int:
    return node.order


def _verdict(nodes: tuple[Node, ...], moment: float, open_mask: int) -> Verdict:
    """Deepest match per category, deny winning at equal depth.

    ``nodes`` are sorted deepest first and, within a depth, denies first: so the first node in
    force that speaks about a category settles it, and one pass suffices."""
    remaining = open_mask
    permit = deny = 0
    reasons: list[Reason] = []
    consent_ids: list[str] = []
    grant_ids: list[str] = []
    by_consent = by_grant = False
    for node in nodes:
        hit = node.mask & remaining
        if hit and node.start <= moment < node.end:
            remaining &= ~hit
            if node.deny:
                deny |= hit
            else:
                permit |= hit
            reasons.append(node.reason(hit))
            if node.kind == "grant":
                grant_ids.append(node.ref)
                by_grant = True
            else:
                consent_ids.append(node.ref)
                by_consent = by_consent or not node.deny
            if not remaining:
                break
    return Verdict(
        permit,
        deny,
        tuple(reasons),
        tuple(sorted(set(consent_ids))) if consent_ids else (),
        tuple(sorted(set(grant_ids))) if grant_ids else (),
        "consent" if by_consent else ("grant" if by_grant else ""),
    )


def _window(nodes: tuple[Node, ...], moment: float) -> tuple[float, float]:
    """The interval around ``moment`` in which no node starts or ends."""
    low, high = -FOREVER, FOREVER
    for node in nodes:
        for bound in (node.start, node.end):
            if bound <= moment:
                low = max(low, bound)
            else:
                high = min(high, bound)
    return low, high
