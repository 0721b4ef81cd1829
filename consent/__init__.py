"""The consent decision engine: pure functions over consent records and a request.

No I/O, no Flask, no SQLAlchemy, nothing from the other packages: the hub passes the child's
consents, grants, views, overrides, withhold entries and facts in, and stores what comes out.

- :func:`decide` — every disclosure decided in the order of ``docs/consent.md``, returning a
  :class:`Decision` (permit or deny, permitted and withheld categories, basis, ids, reasons in
  Spanish and English);
- :class:`ConsentSet` — a child's consents and grants compiled for fast decisions;
- :data:`DEFAULT_RULES` / :data:`DEFAULT_RULE_SET` — the shipped hard legal rules;
- :func:`redact` — keep only the permitted categories of a document, driven by the schema's
  leaf-category map;
- :func:`check_consent`, :func:`check_override`, :func:`check_grant`, :func:`check_view` —
  what keeps a record from being accepted, as bilingual :class:`Problem` lists;
  :func:`consent_warnings` — what a consent recorded all the same may not say as meant.
"""

from consent.access import Grant, WithholdFrom
from consent.compiled import ConsentSet
from consent.decision import Decision, Reason
from consent.engine import ADOLESCENCE, decide
from consent.errors import ConsentError, ConsentFormatError, RequestError
from consent.facts import ChildFacts, Custodian
from consent.measures import (
    MAX_OVERRIDE,
    OVERRIDE_REVIEW_DUE,
    OVERRIDE_ROLE,
    ChildView,
    Override,
    Review,
)
from consent.model import Consent, Grantor, PolicyBasis, Provision, Revocation, SourceDocument
from consent.parts import ActorRef, Period
from consent.redaction import FieldTree, compile_fields, redact
from consent.request import Actor, Request
from consent.rules import DEFAULT_RULE_SET, DEFAULT_RULES, DEFAULT_RULES_JSON, Rule, RuleSet
from consent.validity import (
    Problem,
    check_consent,
    check_grant,
    check_override,
    check_view,
    consent_warnings,
)
from consent.vocabulary import (
    ACTIONS,
    ACTOR_KINDS,
    ALL_CATEGORIES,
    BASES,
    CATEGORIES,
    CATEGORY_LABELS,
    PURPOSE_LABELS,
    PURPOSES,
    ROLES,
)

__all__ = [
    "ACTIONS",
    "ACTOR_KINDS",
    "ADOLESCENCE",
    "ALL_CATEGORIES",
    "BASES",
    "CATEGORIES",
    "CATEGORY_LABELS",
    "DEFAULT_RULES",
    "DEFAULT_RULES_JSON",
    "DEFAULT_RULE_SET",
    "MAX_OVERRIDE",
    "OVERRIDE_REVIEW_DUE",
    "OVERRIDE_ROLE",
    "PURPOSES",
    "PURPOSE_LABELS",
    "ROLES",
    "Actor",
    "ActorRef",
    "ChildFacts",
    "ChildView",
    "Consent",
    "ConsentError",
    "ConsentFormatError",
    "ConsentSet",
    "Custodian",
    "Decision",
    "FieldTree",
    "Grant",
    "Grantor",
    "Override",
    "Period",
    "PolicyBasis",
    "Problem",
    "Provision",
    "Reason",
    "Request",
    "RequestError",
    "Review",
    "Revocation",
    "Rule",
    "RuleSet",
    "SourceDocument",
    "WithholdFrom",
    "check_consent",
    "check_grant",
    "check_override",
    "check_view",
    "compile_fields",
    "consent_warnings",
    "decide",
    "redact",
]
