"""The web portal for people: what Puente is, the shared schemas field by field, and — for
people who log in with their e-mail and password — their personal access tokens, access
requests, emergency overrides, and oversight's alerts and audit log entries.

- :mod:`~exchange.portal.blueprint`: the blueprint, the page's language, shared page helpers,
  the one-time notice after a form;
- :mod:`~exchange.portal.sessions`: the session cookie, who is logged in, CSRF tokens;
- :mod:`~exchange.portal.public`: the home page, the schemas, the page for no page;
- :mod:`~exchange.portal.login`: logging in (failed logins limited) and out;
- :mod:`~exchange.portal.tokens`: a person's own personal access tokens;
- :mod:`~exchange.portal.access_requests`: a legal representative's requests, an officer's queue;
  :mod:`~exchange.portal.request_views` says what the page tells of each request, and
  :mod:`~exchange.portal.request_paging` pages through both lists;
- :mod:`~exchange.portal.overrides`: emergency overrides for their reviewers (the review form)
  and oversight (:mod:`~exchange.portal.override_views` says what the page tells of each,
  :mod:`~exchange.portal.list_paging` pages through its lists);
- :mod:`~exchange.portal.alerts`: oversight's alerts, as ``GET /v1/audit/alerts`` answers them
  (:mod:`~exchange.portal.alert_kinds` says what each kind means);
- :mod:`~exchange.portal.audit_events`: the audit log's entries for oversight, as
  ``GET /v1/audit/events`` finds them.
"""

from flask import Flask

from exchange.portal import (
    access_requests,
    alerts,
    audit_events,
    login,
    overrides,
    public,
    sessions,
    tokens,
)
from exchange.portal.blueprint import bp, page_language


def init_app(app: Flask) -> None:
    """The portal's session cookie and its secret; the page a person's browser gets for an
    address that has no page."""
    sessions.init_app(app)
    public.init_app(app)


__all__ = [
    "access_requests",
    "alerts",
    "audit_events",
    "bp",
    "init_app",
    "login",
    "overrides",
    "page_language",
    "public",
    "sessions",
    "tokens",
]
