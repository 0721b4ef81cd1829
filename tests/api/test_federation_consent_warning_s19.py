"""A consent naming a peer hub's agency is taken by that hub's agency prefixes alone: its
answer warns that the id could not be checked here (docs/federation.md §1). Two hubs as in
:mod:`tests.api.test_federation`, the holding hub on each backend."""

from __future__ import annotations

import pytest
from consent_support import COMAR, consent_document, consent_officer

from tests.api.test_federation import ASKER_ID, Federation
from tests.api.test_federation import fed as two_hubs  # noqa: F401 - a fixture


@pytest.fixture
def fed(two_hubs: Federation) -> Federation:  # noqa: F811 - the imported fixture, by another name
    return two_hubs


def test_a_deny_naming_a_peers_mistyped_agency_warns(fed: Federation) -> None:
    officer = consent_officer(fed.holder, "oficial-chp")
    document = consent_document(COMAR, actions=["read"], purposes=["asylum_procedure"])
    document["provision"].append({"decision": "deny", "actor": [{"agency_id": "mx.fed.comr"}]})
    response = fed.holder_client.post(
        f"/v1/children/{fed.child_id}/consents", json=document, headers=officer.headers
    )
    assert response.status_code == 201, response.get_json()
    warned = {
        w["pointer"]: w
        for w in response.get_json()["warnings"]
        if w["code"] == "peer_agency_unchecked"
    }
    assert set(warned) == {"/grantee/0/agency_id", "/provision/0/actor/0/agency_id",
                           "/provision/1/actor/0/agency_id"}  # fmt: skip
    typo = warned["/provision/1/actor/0/agency_id"]
    assert f"mx.fed.comr is an agency of peer hub {ASKER_ID}" in typo["en"]
    assert "no puede comprobar que exista" in typo["es"]
