"""A record read as FHIR: ``?format=fhir`` (or ``Accept: application/fhir+json``) on a record
and on a child's records answers the R5 Bundle ``puente export --adapter fhir`` writes, cut to
what the reader may see; a format a route cannot answer is a 400 before anything is read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from consent_support import COMAR, consent_document, entries, procuraduria, record_consent
from fhir.resources.bundle import Bundle
from flask import Flask
from flask.testing import FlaskClient
from records_support import PURPOSE, AgencyClient, add_agency, read


def resources(response: Any, kind: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    bundle = response.get_json()
    Bundle.model_validate(bundle)  # FHIR R5, as fhir.resources checks it
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == kind]


def record_reads(app: Flask) -> int:
    return len(entries(app, "record_read"))


def test_the_owner_reads_its_record_as_a_fhir_bundle(
    client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    as_json = read(client, owner, pushed["record_id"]).get_json()
    names = as_json["data"]["child"]["names"]
    for asked in (
        read(client, owner, pushed["record_id"], format="fhir"),
        client.get(
            f"/v1/records/{pushed['record_id']}",
            query_string={"purpose": PURPOSE},
            headers={**owner.headers, "Accept": "application/fhir+json"},
        ),
    ):
        [patient] = resources(asked, "Patient")
        written = json.dumps(patient["name"], ensure_ascii=False)
        assert names["first_surname"] in written and names["given_names"].split()[0] in written
        assert asked.headers["Puente-Decision"]
    # Asked for JSON, or for nothing in particular, it is JSON as before.
    assert read(client, owner, pushed["record_id"], format="json").mimetype == "application/json"


def test_another_agency_gets_in_fhir_only_what_its_consent_permits(
    app: Flask, client: FlaskClient, pushed: dict[str, Any]
) -> None:
    comar = add_agency(app, COMAR, jurisdiction="00", kind="refugee_commission")
    officer = procuraduria(app)
    consent = consent_document(
        COMAR, actions=["read"], purposes=["asylum_procedure"], categories=["identity"]
    )
    record_consent(client, officer, pushed["child_id"], consent)
    answer = read(client, comar, pushed["record_id"], purpose="asylum_procedure", format="fhir")
    assert resources(answer, "Patient")
    # Placements (Encounter), relatives (RelatedPerson) and the case (EpisodeOfCare) are
    # categories the consent does not open: none of them is written.
    assert not resources(answer, "Encounter")
    assert not resources(answer, "RelatedPerson")


def test_a_child_s_records_as_one_bundle_and_an_unknown_child_as_an_empty_one(
    client: FlaskClient, owner: AgencyClient, pushed: dict[str, Any]
) -> None:
    path = f"/v1/children/{pushed['child_id']}/records"
    query = {"purpose": PURPOSE, "format": "fhir"}
    assert len(resources(client.get(path, query_string=query, headers=owner.headers), "Patient"))
    unknown = client.get(
        "/v1/children/nna_000000000000000000000000/records",
        query_string=query,
        headers=owner.headers,
    )
    assert resources(unknown, "Patient") == []


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/records/{record}", {"format": "xml"}),
        ("/v1/records/{record}/versions", {"format": "fhir"}),
        ("/v1/children/{child}/records", {"format": "xml"}),
        ("/v1/records/{record}", {"purpsoe": "case_management"}),
    ],
)
def test_a_format_or_parameter_a_route_cannot_answer_is_refused_before_reading(
    app: Flask,
    client: FlaskClient,
    owner: AgencyClient,
    pushed: dict[str, Any],
    path: str,
    query: dict[str, str],
) -> None:
    before = record_reads(app)
    url = path.format(record=pushed["record_id"], child=pushed["child_id"])
    answer = client.get(
        url,
        query_string={"purpose": PURPOSE, **query},
        headers={**owner.headers, "Accept-Language": "es"},
    )
    assert answer.status_code == 400
    [(name, value)] = query.items()
    detail = answer.get_json()["detail"]
    assert name in detail
    if name == "format" and "versions" not in path:  # this route's formats, named
        assert f"«{value}» no está disponible; use fhir o json" in detail
    assert record_reads(app) == before  # nothing was read, so nothing was audited as read
