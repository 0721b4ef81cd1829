"""Audit entries (``audit-event/1``) as FHIR R5 ``AuditEvent`` resources.

The entry was shaped after AuditEvent, so most fields have a home: ``action`` is the ``code``
(with the CRUDE ``action`` and a DICOM ``category`` derived from it), ``outcome`` the outcome
(HL7 code, Puente code and reason in ``detail``), ``actor`` and ``target`` the agents,
``purpose`` the ``authorization`` (R5's name for purpose of use), the child the ``patient``,
and the record, the object and the decision's consents, grants and override ``entity``s.
The hub that keeps the log is the ``source.observer``. R5 AuditEvent has no identifier, so
the entry's place in the log (its Merkle leaf index) is an extension, and also the resource id.
Codes, labels and references are those of every Puente FHIR resource (:mod:`adapters.fhir_terms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.fhir_contained import Contained

Json = dict[str, Any]

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

_DICOM_EVENT = {
    "110100": "Application Activity",
    "110106": "Export",
    "110107": "Import",
    "110110": "Patient Record",
    "110112": "Query",
    "110113": "Security Alert",
}

#: For each action: the DICOM event type and the CRUDE action (C create, R read, U update,
#: D delete, E execute). Pushing a first version creates a record, a later one updates it
#: (decided in :func:`_crude`); revocations keep the consent, so they are updates; searches and
#: dry runs execute a query.
_ACTIONS: Mapping[str, tuple[str, str]] = {
    "record_pushed": ("110107", "C"),
    "record_read": ("110110", "R"),
    "record_versions_listed": ("110112", "R"),
    "child_records_listed": ("110112", "R"),
    "child_searched": ("110112", "E"),
    "record_referred": ("110106", "C"),
    "record_transferred": ("110106", "C"),
    "transfer_accepted": ("110110", "U"),
    "transfer_rejected": ("110110", "U"),
    "transfer_withdrawn": ("110110", "U"),
    "consent_granted": ("110110", "C"),
    "consent_changed": ("110110", "U"),
    "consent_revoked": ("110110", "U"),
    "consents_read": ("110110", "R"),
    "child_views_recorded": ("110110", "C"),
    "decision_evaluated": ("110110", "E"),
    "access_requested": ("110110", "C"),
    "access_granted": ("110110", "U"),
    "access_denied": ("110110", "U"),
    "override_used": ("110113", "C"),
    "override_reviewed": ("110113", "U"),
    "agency_changed": ("110100", "U"),
    "person_changed": ("110100", "U"),
    "key_changed": ("110100", "U"),
    "schema_changed": ("110100", "U"),
    "peer_changed": ("110100", "U"),
    "peer_log_forked": ("110113", "E"),
    "own_log_conflict_reported": ("110113", "E"),
    "federation_envelope_sent": ("110106", "E"),
    "federation_envelope_received": ("110107", "C"),
    "child_merged": ("110110", "U"),
    "child_distinct_recorded": ("110110", "U"),
    "child_distinct_withdrawn": ("110110", "U"),
    "child_index_rebuilt": ("110100", "U"),
}
#: Reasons that mean the administrative change created something.
_CREATING_REASONS = frozenset({"registered", "added", "key_added"})

#: Puente outcome → HL7 outcome code and display. A consent denial is the request refused
#: (HTTP 403, a minor failure); a failure is the hub's own (serious).
_OUTCOMES = {
    "success": ("0", "Success"),
    "denied": ("4", "Minor failure"),
    "failure": ("8", "Serious failure"),
}
_SEVERITY = {"success": "informational", "denied": "notice", "failure": "error"}


def audit_entry_to_fhir(
    entry: Mapping[str, Any], *, index: int | None = None, hub_id: str | None = None
) -> dict[str, Any]:
    """The FHIR R5 ``AuditEvent`` of one audit entry (a valid ``audit-event/1`` document).

    ``index`` is the entry's place in the log, once sequenced; ``hub_id`` names the observer
    when the entry does not (entries written outside a request may lack ``hub``).
    """
    action = entry["action"]
    outcome = entry["outcome"]
    dicom, crude = _ACTIONS[action]
    contained = Contained()
    resource: Json = {"resourceType": "AuditEvent"}
    if index is not None:
        resource["id"] = str(index)
    resource["language"] = "es"
    extensions = []
    if index is not None:
        extensions.append({"url": t.extension_url("audit-log-index"), "valueInteger64": index})
    if "request_id" in entry:
        extensions.append(
            {"url": t.extension_url("request-id"), "valueString": entry["request_id"]}
        )
    if extensions:
        resource["extension"] = extensions
    resource["category"] = [
        {"coding": [{"system": _DCM, "code": dicom, "display": _DICOM_EVENT[dicom]}]}
    ]
    resource["code"] = t.concept("urn:puente:audit-action", action, "audit_action")
    resource["action"] = _crude(entry, crude)
    resource["severity"] = (
        "notice" if action == "override_used" and outcome == "success" else _SEVERITY[outcome]
    )
    resource["recorded"] = entry["time"]
    resource["outcome"] = _outcome(entry)
    if "purpose" in entry:
        resource["authorization"] = [t.concept(t.PURPOSE, entry["purpose"], "purpose")]
    if "child_id" in entry:
        resource["patient"] = t.child_reference(entry["child_id"])
    resource["agent"] = _agents(entry, contained)
    resource["source"] = {
        "observer": t.hub_reference(entry.get("hub") or hub_id),
        "type": [
            {"coding": [{"system": _SOURCE_TYPE, "code": "4", "display": "Application Server"}]}
        ],
    }
    entities = _entities(entry)
    if entities:
        resource["entity"] = entities
    return contained.attach(resource)


def _crude(entry: Mapping[str, Any], default: str) -> str:
    if entry["action"] == "record_pushed":
        return "U" if entry.get("record_version", 1) > 1 else "C"
    if entry["action"].endswith("_changed") and entry.get("reason_code") in _CREATING_REASONS:
        return "C"
    return default


def _outcome(entry: Mapping[str, Any]) -> Json:
    code, display = _OUTCOMES[entry["outcome"]]
    detail = [t.concept("urn:puente:audit-outcome", entry["outcome"], "audit_outcome")]
    if "reason_code" in entry:
        detail.append(t.concept("urn:puente:reason", entry["reason_code"]))
    decision = entry.get("decision")
    if decision is not None:
        detail.append(t.concept("urn:puente:decision-basis", decision["basis"], "decision_basis"))
        detail.extend(t.concept("urn:puente:rule", rule) for rule in decision.get("rule_ids", ()))
    return {"code": {"system": _OUTCOME, "code": code, "display": display}, "detail": detail}


def _agents(entry: Mapping[str, Any], contained: Contained) -> list[Json]:
    """Who acted (the requestor), the OAuth client they acted through, and the recipient."""
    actor = entry["actor"]
    who = contained.actor(actor, with_role=False)  # the role is the agent's, below
    assert who is not None  # the schema requires an agency or a person
    agent: Json = {"who": who, "requestor": True}
    if "role" in actor:
        agent["role"] = [t.concept(t.ROLE, actor["role"], "role")]
    if "purpose" in entry:
        agent["authorization"] = [t.concept(t.PURPOSE, entry["purpose"], "purpose")]
    agents = [agent]
    if "client_id" in actor:
        agents.append(
            {"who": t.identified("Device", t.OAUTH_CLIENT, actor["client_id"]), "requestor": False}
        )
    target = entry.get("target")
    if target:
        recipient = (
            t.identified("Organization", t.AGENCY, target["agency_id"])
            if "agency_id" in target
            else t.hub_reference(target["hub"])
        )
        agents.append(
            {
                "type": {
                    "coding": [
                        {
                            "system": _PARTICIPATION,
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "who": recipient,
                "requestor": False,
            }
        )
    return agents


def _entities(entry: Mapping[str, Any]) -> list[Json]:
    entities: list[Json] = []
    if "child_id" in entry:
        entities.append(
            {"what": t.child_reference(entry["child_id"]), "role": _role("1", "Patient")}
        )
    record = _record_entity(entry)
    if record is not None:
        entities.append(record)
    obj = entry.get("object")
    if obj is not None and not (obj["type"] == "record" and obj["id"] == entry.get("record_id")):
        entities.append(
            {
                "what": {
                    "identifier": {"system": t.object_system(obj["type"]), "value": obj["id"]},
                    "display": t.label_of("object_type", obj["type"])[0],
                },
                "role": _role("4", "Domain Resource"),
            }
        )
    decision = entry.get("decision")
    if decision is not None:
        entities.extend(_decision_entities(decision))
    return entities


def _record_entity(entry: Mapping[str, Any]) -> Json | None:
    """The record, named by id, with its version, schema and the SHA-256 of its body: proof of
    what was sent without carrying it."""
    if "record_id" not in entry:
        return None
    details = []
    if "record_version" in entry:
        details.append(
            {"type": _detail_type("record_version"), "valueInteger": entry["record_version"]}
        )
    if "schema" in entry:
        details.append({"type": _detail_type("schema"), "valueString": entry["schema"]})
    if "body_sha256" in entry:
        details.append({"type": _detail_type("body_sha256"), "valueString": entry["body_sha256"]})
    record: Json = {
        "what": {"identifier": {"system": t.RECORD, "value": entry["record_id"]}},
        "role": _role("4", "Domain Resource"),
    }
    if details:
        record["detail"] = details
    return record


def _decision_entities(decision: Mapping[str, Any]) -> list[Json]:
    """The disclosure decision (result, and the categories it let through as security labels)
    and the consents, grants and override it rests on."""
    verdict: Json = {
        "role": _role("13", "Security Resource"),
        "detail": [
            {
                "type": _detail_type("decision_result"),
                "valueCodeableConcept": t.concept(
                    "urn:puente:decision-result", decision["result"], "decision"
                ),
            },
        ],
    }
    if "id" in decision:
        verdict["what"] = {"identifier": {"system": t.DECISION, "value": decision["id"]}}
    if decision.get("categories"):
        verdict["securityLabel"] = [
            t.concept(t.DATA_CATEGORY, code, "data_category") for code in decision["categories"]
        ]
    entities = [verdict]
    # A grant (an approved access request) is a consent in R5's sense; an override is not.
    basis = [t.identified("Consent", t.CONSENT, cid) for cid in decision.get("consent_ids", ())]
    basis += [
        t.identified("Consent", t.object_system("grant"), gid)
        for gid in decision.get("grant_ids", ())
    ]
    if "override_id" in decision:
        override = {"system": t.object_system("override"), "value": decision["override_id"]}
        basis.append({"identifier": override})
    # The withhold-from entries and the child's views it applied: what limited the disclosure.
    basis += [
        {"identifier": {"system": t.object_system(kind), "value": ref}}
        for kind, key in (("withhold", "withhold_ids"), ("view", "view_ids"))
        for ref in decision.get(key, ())
    ]
    entities.extend({"what": what, "role": _role("13", "Security Resource")} for what in basis)
    return entities


def _role(code: str, display: str) -> Json:
    return {"coding": [{"system": _OBJECT_ROLE, "code": code, "display": display}]}


def _detail_type(code: str) -> Json:
    return {"coding": [{"system": "urn:puente:audit-detail", "code": code}]}
