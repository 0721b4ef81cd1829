"""Consent services: recording consents and the child's views, revoking, emergency overrides,
"withhold from" entries, access requests and the grants made on them. Each action is an audit
entry in its own transaction; the routes in :mod:`exchange.api.consents` call these.

- :mod:`~exchange.consents.common`: who may act for a child (jurisdictions, the officer's role),
  :class:`ConsentProblem`, audit entries and the parties answers name;
- :mod:`~exchange.consents.records`: consents, their states and revocation notices;
- :mod:`~exchange.consents.views`: the child's views and their review;
- :mod:`~exchange.consents.overrides`: emergency overrides and their alerts for oversight;
- :mod:`~exchange.consents.withholds`: "withhold from" entries;
- :mod:`~exchange.consents.access`: access requests and grants.

The names other modules use are re-exported here.
"""

from exchange.consents.access import (
    ACCESS_KEY,
    active_grants,
    decide_request,
    grant_end_as_told,
    may_see_request,
    pending_queue,
    request_access,
    request_access_basis,
    revoke_grant,
)
from exchange.consents.common import (
    CONSENT_AUTHORITY_KINDS,
    OVERSIGHT_SCOPE,
    ConsentProblem,
    acts_for_child,
    is_oversight,
    party,
    require_acts_for,
)
from exchange.consents.overrides import (
    OVERRIDE_STATES,
    open_override,
    override_queue,
    read_override,
    review_override,
)
from exchange.consents.records import find_consent, list_consents, record_consent, revoke_consent
from exchange.consents.views import list_views, record_views, review_views
from exchange.consents.withholds import list_withholds, record_withhold, revoke_withhold

__all__ = [
    "ACCESS_KEY",
    "CONSENT_AUTHORITY_KINDS",
    "OVERRIDE_STATES",
    "OVERSIGHT_SCOPE",
    "ConsentProblem",
    "active_grants",
    "acts_for_child",
    "decide_request",
    "find_consent",
    "grant_end_as_told",
    "is_oversight",
    "list_consents",
    "list_views",
    "list_withholds",
    "may_see_request",
    "open_override",
    "override_queue",
    "party",
    "pending_queue",
    "read_override",
    "record_consent",
    "record_views",
    "record_withhold",
    "request_access",
    "request_access_basis",
    "require_acts_for",
    "review_override",
    "review_views",
    "revoke_consent",
    "revoke_grant",
    "revoke_withhold",
]
