"""For the fuzz tests: a seeded hub whose callers hold every scope, the findings not fixed yet,
and the check schemathesis does not make itself (every error is ``application/problem+json``)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consent_support import (
    COMAR,
    PROCURADURIA,
    add_person_client,
    consent_document,
    push_child,
    record_consent,
)
from flask import Flask
from records_support import add_agency
from schemathesis import Case, CheckContext, Response
from schemathesis.core.parameters import ParameterLocation

from exchange.auth import SCOPES
from tests.conftest import make_hub

#: Pushes the seeded record and grants its consent: a state DIF's Procuraduría, so its people
#: may be consent and override officers.
OWNER = PROCURADURIA
#: Every role a person of a state DIF may hold (an auditor belongs to an oversight body).
PERSON_ROLES = ["consent_officer", "override_officer", "legal_representative", "administrator"]
#: Operations an agency's system calls; a person calls the others (consents, access, audit).
SYSTEM_TAGS = frozenset({"records", "sharing", "federation", "children"})
#: Operations on the audit log: an auditor of an oversight body calls them, the only one whose
#: tokens may carry ``audit:read``.
AUDIT_TAGS = frozenset({"audit"})
#: Every scope but ``audit:read``, which the registry gives oversight bodies only.
CASE_SCOPES = [scope for scope in SCOPES if scope != "audit:read"]


@dataclass
class FuzzHub:
    app: Flask
    system_token: str
    person_token: str
    auditor_token: str
    #: Path parameter name -> an id that exists.
    known_ids: dict[str, str] = field(default_factory=dict)

    def headers_for(self, case: Case) -> dict[str, str]:
        """A bearer token with every scope: the agency system's, its officer's or, for the
        audit log, an oversight body's auditor's."""
        tags = set(case.operation.tags or ())
        if AUDIT_TAGS & tags:
            return {"Authorization": f"Bearer {self.auditor_token}"}
        system = SYSTEM_TAGS & tags
        return {"Authorization": f"Bearer {self.system_token if system else self.person_token}"}

    def aim(self, case: Case) -> None:
        """Point about a third of the valid cases' path parameters at ids that exist (chosen
        from the case itself, so a run is reproducible)."""
        if not case.path_parameters or not set(case.path_parameters) & set(self.known_ids):
            return
        if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
            return
        if zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 3:
            return
        for name in list(case.path_parameters):
            if name in self.known_ids:
                case.path_parameters[name] = self.known_ids[name]


def make_fuzz_hub(folder: Path, database_url: str) -> FuzzHub:
    """A hub with the agencies the description's examples name, a child with a record and a
    consent, an agency system token and a person token, both with every scope."""
    app = make_hub(folder, database_url)
    system = add_agency(app, OWNER, scopes=tuple(CASE_SCOPES), kind="state_dif")
    add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    add_agency(
        app, "mx.chp.tapachula.dif", level="municipal", jurisdiction="07089", kind="municipal_dif"
    )
    person = add_person_client(app, "fuzz.oficial", OWNER, PERSON_ROLES, CASE_SCOPES)
    add_agency(app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",))
    auditor = add_person_client(app, "fuzz.auditora", "mx.fed.cndh", ["auditor"], ["audit:read"])
    client = app.test_client()
    pushed = push_child(client, system)
    consent = record_consent(client, person, pushed["child_id"], consent_document(COMAR))
    return FuzzHub(
        app,
        system.token,
        person.token,
        auditor.token,
        {
            "record_id": pushed["record_id"],
            "child_id": pushed["child_id"],
            "consent_id": consent["id"],
        },
    )


PROBLEM = "application/problem+json"
#: Operations whose errors are not RFC 9457 problems by design: OAuth errors follow
#: RFC 6749 §5.2 (``application/json``, but 429 is a problem); readiness answers 503 with
#: its checks. The portal's pages for people answer refusals as HTML pages in their language.
NOT_PROBLEMS = frozenset(
    {
        "oauthToken",
        "oauthIntrospect",
        "oauthRevoke",
        "readyz",
        "portalLogin",
        "portalLoginSubmit",
        "portalLogout",
        "portalTokens",
        "portalCreateToken",
        "portalRevokeToken",
        "portalAccessRequests",
        "portalCreateAccessRequest",
        "portalDecideAccessRequest",
        "portalOverrides",
        "portalOverride",
        "portalReviewOverride",
        "portalAlerts",
        "portalAuditEvents",
    }
)


def operation_id(case: Case) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def problem_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error is ``application/problem+json`` with the response's status (base.yaml)."""
    if response.status_code < 400:
        return None
    if operation_id(case) in NOT_PROBLEMS and response.status_code != 429:
        return None
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM, (
        f"{response.status_code} answered with {content_type!r}, not {PROBLEM!r}"
    )
    body = response.json()
    assert isinstance(body, dict) and body.get("status") == response.status_code, (
        f"{response.status_code} answered with the problem {body!r}"
    )
    return None


# Findings of the fuzz test not fixed yet (the numbers are those of the report that listed
# them). Each names the checks it fails, the operations, and which requests: the checks still
# run on every other request. Remove an entry once its finding is fixed.


def _query(case: Case, name: str) -> Any:
    return (case.query or {}).get(name)


def _body(case: Case, name: str) -> Any:
    return case.body.get(name) if isinstance(case.body, dict) else None


def _beyond_int32(value: Any) -> bool:
    try:
        return int(value) > 2**31 - 1
    except (TypeError, ValueError):
        return False


def _always(case: Case) -> bool:
    return True


@dataclass(frozen=True)
class Known:
    finding: str
    operations: tuple[str, ...]
    checks: tuple[str, ...]
    when: Callable[[Case], bool] = _always


SERVER_ERROR = ("not_a_server_error", "status_code_conformance")
REASON_OPERATIONS = (
    "revokeConsent",
    "reviewChildViews",
    "recordWithhold",
    "revokeWithhold",
    "decideAccessRequest",
    "revokeGrant",
    "reviewOverride",
)
KNOWN: tuple[Known, ...] = (
    # Not findings. The portal's pages are for people: an unknown schema is an HTML page in
    # their language (documented so), not a problem. A text body is a string whatever it holds,
    # so no "invalid" one exists. OPTIONS /v1/records/bulk lists GET, which is
    # GET /v1/records/{record_id} for "bulk".
    Known(
        "the portal's 404 for an unknown schema is an HTML page, by design",
        ("portalSchemaFields",),
        ("problem_json",),
    ),
    Known(
        "an NDJSON body is a string whatever it holds",
        ("pushRecordsBulk",),
        ("negative_data_rejection",),
    ),
    Known(
        "/v1/records/bulk also matches /v1/records/{record_id}",
        ("pushRecordsBulk",),
        ("allow_header_conformance",),
    ),
    Known(
        "a portal form sent without a session goes to the login page (303) whatever it holds:"
        " nothing of it is read before the person has logged in",
        (
            "portalCreateToken",
            "portalRevokeToken",
            "portalCreateAccessRequest",
            "portalDecideAccessRequest",
            "portalReviewOverride",
        ),
        ("negative_data_rejection",),
    ),
)


def known_checks(case: Case) -> set[str]:
    """The checks ``case`` skips because of a finding not fixed yet."""
    operation = operation_id(case)
    return {
        check
        for known in KNOWN
        if operation in known.operations and known.when(case)
        for check in known.checks
    }
