"""``/overrides`` in the portal: emergency best-interest overrides for the Procuraduría officers
who review them (a review form) and for oversight (read-only), as ``GET /v1/overrides``, ``GET
/v1/overrides/{id}`` and ``POST /v1/overrides/{id}/review`` show and do them — an override
reviewer used to get only "My personal access tokens", and had to review by curl. Nobody sees
through the portal what the API would not show them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from consent_support import (
    OWNER,
    PROCURADURIA,
    PersonClient,
    add_person_client,
    consent_officer,
    entries,
    legal_representative,
    procuraduria,
    push_child,
)
from flask import Flask
from flask.testing import FlaskClient
from portal_support import csrf_of, logged_in, text_of
from records_support import AgencyClient, add_agency, execute, rows
from sqlalchemy import select, update
from test_override_queue_paging import copies

from exchange.consent_store import OverrideRow

#: Written by the opener: it must reach the page as text, never as markup.
JUSTIFICATION = (
    "<script>alert('x')</script> Ingreso a urgencias inconsciente; el hospital necesita "
    'antecedentes médicos & el contacto de la "madre".'
)
REASON = "Urgencia <b>acreditada</b> por el hospital & la Procuraduría."
UNKNOWN = "ovr_000000000000000000000000"
_PANEL = re.compile(r'<section class="panel" id="override-(ovr_[^"]+)">')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


@pytest.fixture
def people(app: Flask) -> dict[str, PersonClient]:
    """The opener and a colleague (Procuraduría Chiapas), a federal reviewer (PFPNNA), an
    officer of another state (Nuevo León), a lawyer and an auditor of the CNDH."""
    procuraduria(app)
    add_agency(app, "mx.fed.pfpnna", jurisdiction="00", kind="federal_child_protection")
    add_agency(app, "mx.nl.procuraduria", jurisdiction="19", kind="state_dif")
    add_agency(app, "mx.osc.clinica", kind="civil_society")
    add_agency(app, "mx.fed.cndh", jurisdiction="00", kind="oversight", scopes=("audit:read",))
    return {
        "opener": add_person_client(
            app, "ov-chp-001", PROCURADURIA, ["override_officer"], ["override", "records:read"]
        ),
        "colleague": consent_officer(app, "co-chp-001"),
        "reviewer": consent_officer(app, "co-fed-001", "mx.fed.pfpnna"),
        "elsewhere": consent_officer(app, "co-nl-001", "mx.nl.procuraduria"),
        "lawyer": legal_representative(app, "lic-ana"),
        "auditor": add_person_client(
            app, "aud-cndh-001", "mx.fed.cndh", ["auditor"], ["audit:read"]
        ),
    }


@pytest.fixture
def owner(app: Flask) -> AgencyClient:
    return add_agency(app, OWNER)


def open_override(
    client: FlaskClient, opener: PersonClient, child_id: str, justification: str = JUSTIFICATION
) -> str:
    response = client.post(
        "/v1/overrides",
        json={
            "child_id": child_id,
            "basis_code": "medical_emergency",
            "justification": justification,
            "categories": ["health", "family"],
            "hours": 48,
        },
        headers=opener.headers,
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


@pytest.fixture
def opened(
    client: FlaskClient, people: dict[str, PersonClient], owner: AgencyClient
) -> dict[str, Any]:
    child = push_child(client, owner)["child_id"]
    return {"id": open_override(client, people["opener"], child), "child_id": child}


def opened_hours_ago(app: Flask, override_id: str, hours: int) -> None:
    """Move an override's opening back: one opened 25 h ago is overdue for its review."""
    [(starts, ends)] = rows(
        app, select(OverrideRow.starts_at, OverrideRow.ends_at).where(OverrideRow.id == override_id)
    )
    back = timedelta(hours=hours)
    execute(
        app,
        update(OverrideRow)
        .where(OverrideRow.id == override_id)
        .values(starts_at=starts - back, ends_at=ends - back),
    )


def reviewed_at(app: Flask, override_id: str) -> Any:
    [(moment,)] = rows(app, select(OverrideRow.reviewed_at).where(OverrideRow.id == override_id))
    return moment


def review(browser: FlaskClient, override_id: str, **form: str) -> Any:
    page = browser.get(f"/overrides/{override_id}?lang=en").get_data(as_text=True)
    return browser.post(
        f"/overrides/{override_id}/review?lang=en", data={"csrf_token": csrf_of(page), **form}
    )


def test_the_reviewer_finds_it_first_marked_overdue_reads_it_and_reviews_it(
    app: Flask, client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    later = open_override(client, people["opener"], opened["child_id"])
    opened_hours_ago(app, opened["id"], 25)
    browser = logged_in(app, "co-fed-001")

    listed = browser.get("/overrides?lang=en")
    assert listed.status_code == 200
    assert listed.headers["Cache-Control"] == "no-store"
    page = listed.get_data(as_text=True)
    assert _PANEL.findall(page) == [opened["id"], later]  # the longest waiting first
    words = text_of(listed)
    assert "2 emergency overrides await review, oldest first; all are on this page." in words
    assert words.count("Unreviewed more than 24 hours after it was opened") == 1
    assert "Medical emergency" in words and "Persona ov-chp-001" in words
    # As the API's queue: the justification is read one override at a time, audited.
    assert "Ingreso a urgencias" not in page and not entries(app, "consents_read")

    read = browser.get(f"/overrides/{opened['id']}?lang=en")
    assert read.status_code == 200
    body = read.get_data(as_text=True)
    assert "<script>alert" not in body and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    assert "&amp; el contacto de la &#34;madre&#34;." in body
    [reading] = entries(app, "consents_read")
    assert reading["actor"]["person_id"] == "co-fed-001"
    assert reading["object"] == {"type": "override", "id": opened["id"]}

    done = review(browser, opened["id"], review="upheld", reason=f"  {REASON}  ")
    assert done.status_code == 303 and done.headers["Location"].startswith("/overrides?lang=en")
    after = browser.get(done.headers["Location"])
    assert f"Review recorded: {opened['id']} — upheld" in text_of(after)
    assert _PANEL.findall(after.get_data(as_text=True)) == [later, opened["id"]]
    assert "1 emergency override" not in text_of(after)  # one line per list, worded for one
    assert "One emergency override awaits review." in text_of(after)
    assert "One emergency override was reviewed." in text_of(after)

    shown = browser.get(f"/overrides/{opened['id']}?lang=en").get_data(as_text=True)
    assert "Urgencia &lt;b&gt;acreditada&lt;/b&gt; por el hospital &amp; la Procuraduría." in shown
    assert "<b>acreditada" not in shown
    assert 'name="review"' not in shown  # reviewed: no form


def test_a_reason_typed_in_the_browser_counts_and_is_kept_as_typed(
    app: Flask, client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    # A browser sends each line break as CRLF but counts it as one character against the
    # textarea's maxlength (2000): a reason that fitted there fits here, kept with LF as the
    # API keeps it. A soft hyphen or a zero-width joiner pasted from a document is no control.
    paragraph = "Urgencia acreditada por el hospital y la Procura\u00adduría " + "a" * 44
    reason = (paragraph + "\r\n") * 20
    assert len(reason.replace("\r\n", "\n")) == 2000
    browser = logged_in(app, "co-fed-001")
    done = review(browser, opened["id"], review="upheld", reason=reason)
    assert done.status_code == 303, text_of(done)
    answer = client.get(f"/v1/overrides/{opened['id']}", headers=people["reviewer"].headers)
    assert answer.get_json()["override"]["review"]["reason"] == (paragraph + "\n") * 19 + paragraph


def test_a_review_through_the_portal_is_the_same_audit_entry_as_through_the_api(
    app: Flask, client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    by_api = open_override(client, people["opener"], opened["child_id"])
    answer = client.post(
        f"/v1/overrides/{by_api}/review",
        json={"upheld": False, "reason": REASON},
        headers=people["reviewer"].headers,
    )
    assert answer.status_code == 200
    browser = logged_in(app, "co-fed-001")
    assert review(browser, opened["id"], review="not_upheld", reason=REASON).status_code == 303

    through_api, through_portal = sorted(
        entries(app, "override_reviewed"), key=lambda entry: entry["object"]["id"] != by_api
    )
    assert through_api["object"]["id"] == by_api
    assert through_portal["object"] == {"type": "override", "id": opened["id"]}
    varying = {"id", "time", "object", "index", "request_id"}
    assert {k: v for k, v in through_portal.items() if k not in varying} == {
        k: v for k, v in through_api.items() if k not in varying
    }
    assert through_portal["outcome"] == "success" and through_portal["reason_code"] == "not_upheld"
    # Both stored the same review: not upheld ends the override at once.
    document = client.get(f"/v1/overrides/{opened['id']}", headers=people["reviewer"].headers)
    assert document.get_json()["override"]["review"]["reason"] == REASON
    assert document.get_json()["in_force"] is False


def test_a_second_review_is_refused_as_the_api_refuses_it(
    app: Flask, client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    page = browser.get(f"/overrides/{opened['id']}?lang=es").get_data(as_text=True)
    form = {"csrf_token": csrf_of(page), "review": "upheld", "reason": "Procede."}
    assert browser.post(f"/overrides/{opened['id']}/review?lang=es", data=form).status_code == 303
    first = reviewed_at(app, opened["id"])

    again = browser.post(f"/overrides/{opened['id']}/review?lang=es", data=form)
    api = client.post(
        f"/v1/overrides/{opened['id']}/review",
        json={"upheld": True, "reason": "Procede."},
        headers={**people["reviewer"].headers, "Accept-Language": "es"},
    )
    assert again.status_code == api.status_code == 409
    assert api.get_json()["detail"] in text_of(again)  # «Ya fue revisado.»
    assert 'role="alert"' in again.get_data(as_text=True)
    assert reviewed_at(app, opened["id"]) == first
    assert len(entries(app, "override_reviewed")) == 1


def test_a_form_without_a_choice_or_reason_is_answered_beside_its_fields(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    refused = review(browser, opened["id"], reason="   ")
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert 'id="review-errors"' in page and 'aria-describedby="error-upheld"' in page
    assert 'aria-invalid="true" aria-describedby="error-reason"' in page
    words = text_of(refused)
    assert "Choose whether the emergency override is upheld or not." in words
    assert "Write the reason for your review." in words
    too_long = review(browser, opened["id"], review="upheld", reason="x" * 2001)
    assert too_long.status_code == 400
    assert "The reason is too long: 2001 characters, and at most 2000 fit." in text_of(too_long)
    assert "x" * 2001 in too_long.get_data(as_text=True)  # what was typed comes back
    assert reviewed_at(app, opened["id"]) is None


def test_a_reason_the_api_refuses_the_portal_refuses_beside_its_field(
    app: Flask, client: FlaskClient, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    """A reason holding a bidirectional override (U+202E), which would make the text read
    otherwise than it was written, answered by the service as the API answers it."""
    forged = "Procede \u202econforme a derecho."
    other = open_override(client, people["opener"], opened["child_id"])
    api = client.post(
        f"/v1/overrides/{other}/review",
        json={"upheld": True, "reason": forged},
        headers={**people["reviewer"].headers, "Accept-Language": "en"},
    )
    browser = logged_in(app, "co-fed-001")
    answer = review(browser, opened["id"], review="upheld", reason=forged)
    assert answer.status_code == api.status_code
    if api.status_code == 400:
        [error] = api.get_json()["errors"]
        assert error["pointer"] == "/reason"
        page = answer.get_data(as_text=True)
        assert 'aria-invalid="true" aria-describedby="error-reason"' in page
        assert f'<span class="visually-hidden" id="error-reason">{error["message"]}' in page
        assert reviewed_at(app, opened["id"]) is None


def test_a_review_without_the_sessions_csrf_token_does_nothing(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    for token in ("", "forged"):
        refused = browser.post(
            f"/overrides/{opened['id']}/review?lang=en",
            data={"csrf_token": token, "review": "not_upheld", "reason": "Forjado."},
        )
        assert refused.status_code == 400
        assert "security token" in text_of(refused)
    assert reviewed_at(app, opened["id"]) is None and not entries(app, "override_reviewed")


def test_oversight_reads_every_override_but_reviews_none(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "aud-cndh-001")
    home = text_of(browser.get("/?lang=en"))
    assert "Oversight alerts" in home and "Emergency overrides" in home
    listed = browser.get("/overrides?lang=en")
    assert listed.status_code == 200
    assert _PANEL.findall(listed.get_data(as_text=True)) == [opened["id"]]
    assert "for oversight: the review is the Procuraduría’s" in text_of(listed)
    read = browser.get(f"/overrides/{opened['id']}?lang=en")
    assert read.status_code == 200 and "&lt;script&gt;" in read.get_data(as_text=True)
    assert 'name="review"' not in read.get_data(as_text=True)
    [reading] = entries(app, "consents_read")
    assert reading["actor"]["agency_id"] == "mx.fed.cndh"
    page = read.get_data(as_text=True)
    refused = browser.post(
        f"/overrides/{opened['id']}/review?lang=en",
        data={"csrf_token": csrf_of(page), "review": "not_upheld", "reason": "No procede."},
    )
    assert refused.status_code == 403  # as POST /v1/overrides/{id}/review: consent:write
    assert reviewed_at(app, opened["id"]) is None


def test_an_officer_of_another_state_sees_none_and_gets_the_unknown_overrides_404(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-nl-001")
    home = browser.get("/?lang=en").get_data(as_text=True)
    assert 'href="/overrides?lang=en"' in home and 'href="/alerts' not in home
    listed = browser.get("/overrides?lang=en")
    assert listed.status_code == 200 and _PANEL.findall(listed.get_data(as_text=True)) == []
    assert "No emergency override awaits review." in text_of(listed)
    theirs = browser.get(f"/overrides/{opened['id']}?lang=en")
    unknown = browser.get(f"/overrides/{UNKNOWN}?lang=en")
    assert theirs.status_code == unknown.status_code == 404
    assert text_of(theirs) == text_of(unknown).replace(UNKNOWN, opened["id"])
    assert "Ingreso a urgencias" not in theirs.get_data(as_text=True)
    page = listed.get_data(as_text=True)
    refused = browser.post(
        f"/overrides/{opened['id']}/review?lang=en",
        data={"csrf_token": csrf_of(page), "review": "not_upheld", "reason": "No procede."},
    )
    assert refused.status_code == 404
    assert reviewed_at(app, opened["id"]) is None and not entries(app, "consents_read")


def test_the_openers_agency_reads_it_but_is_not_offered_the_review(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-chp-001")
    assert _PANEL.findall(browser.get("/overrides").get_data(as_text=True)) == []
    read = browser.get(f"/overrides/{opened['id']}?lang=en")
    assert read.status_code == 200 and 'name="review"' not in read.get_data(as_text=True)
    assert "neither whoever opened it nor their agency reviews it" in text_of(read)
    refused = browser.post(
        f"/overrides/{opened['id']}/review?lang=en",
        data={
            "csrf_token": csrf_of(read.get_data(as_text=True)),
            "review": "upheld",
            "reason": "Sí.",
        },
    )
    assert refused.status_code == 403
    assert "Neither whoever opened the emergency override nor their agency" in text_of(refused)
    assert reviewed_at(app, opened["id"]) is None


@pytest.mark.parametrize("person", ["lic-ana", "ov-chp-001"])
def test_a_lawyer_and_the_opener_get_the_portals_403_as_from_the_api(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any], person: str
) -> None:
    browser = logged_in(app, person)
    home = browser.get("/?lang=en").get_data(as_text=True)
    assert "/overrides" not in home and "/alerts" not in home
    for path in ("/overrides?lang=en", f"/overrides/{opened['id']}?lang=en"):
        refused = browser.get(path)
        assert refused.status_code == 403
        assert "Your roles do not allow this page." in text_of(refused)
        assert "Ingreso a urgencias" not in refused.get_data(as_text=True)
    posted = browser.post(
        f"/overrides/{opened['id']}/review",
        data={
            "csrf_token": csrf_of(home),
            "review": "not_upheld",
            "reason": "No procede.",
        },
    )
    assert posted.status_code == 403
    assert reviewed_at(app, opened["id"]) is None and not entries(app, "consents_read")


def test_a_review_sent_after_logging_out_is_not_recorded_and_leads_back_to_its_page(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    page = browser.get(f"/overrides/{opened['id']}?lang=en").get_data(as_text=True)
    assert browser.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    sent = browser.post(
        f"/overrides/{opened['id']}/review?lang=en",
        data={"csrf_token": csrf_of(page), "review": "upheld", "reason": "Procede."},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"].startswith("/login?")
    assert f"overrides/{opened['id']}" in sent.headers["Location"]
    assert reviewed_at(app, opened["id"]) is None


def test_an_agency_systems_token_opens_no_portal_page(
    app: Flask, client: FlaskClient, owner: AgencyClient, opened: dict[str, Any]
) -> None:
    for path in ("/overrides", f"/overrides/{opened['id']}"):
        answer = client.get(path, headers={"Authorization": f"Bearer {owner.token}"})
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/login")
    posted = client.post(
        f"/overrides/{opened['id']}/review",
        data={"review": "upheld", "reason": "Sí."},
        headers={"Authorization": f"Bearer {owner.token}"},
    )
    assert posted.status_code == 400  # no session, no CSRF token: nothing is done
    assert "Ingreso a urgencias" not in posted.get_data(as_text=True)
    assert reviewed_at(app, opened["id"]) is None


def test_the_page_speaks_the_persons_language(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    spanish = text_of(browser.get("/overrides?lang=es"))
    assert "Accesos de emergencia" in spanish and "En espera de revisión" in spanish
    assert "Urgencia médica" in spanish and "Leer la justificación y revisarlo" in spanish
    read = text_of(browser.get(f"/overrides/{opened['id']}"))  # the language chosen is kept
    assert "Justificación escrita" in read and "¿Se confirma el acceso de emergencia?" in read
    english = text_of(browser.get(f"/overrides/{opened['id']}?lang=en"))
    assert "Written justification" in english and "Is the emergency override upheld?" in english


def test_a_page_address_naming_no_override_starts_over(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    browser = logged_in(app, "co-fed-001")
    answer = browser.get(f"/overrides?lang=en&after={UNKNOWN}")
    assert answer.status_code == 400
    assert "The page of the list asked for does not exist" in text_of(answer)
    assert _PANEL.findall(answer.get_data(as_text=True)) == [opened["id"]]


def test_the_reviewer_pages_through_every_override_as_the_api_pages_them(
    app: Flask, people: dict[str, PersonClient], opened: dict[str, Any]
) -> None:
    older = copies(app, opened["id"], 120, datetime.now(UTC) - timedelta(hours=3), "old")
    browser = logged_in(app, "co-fed-001")
    path, pages = "/overrides?lang=en", []
    while True:
        response = browser.get(path)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        pages.append((text_of(response), _PANEL.findall(page)))
        further = _NEXT.findall(page)
        if not further:
            break
        path = html.unescape(further[0])
    assert [found for _, found in pages for found in found] == [*older, opened["id"]]
    assert [len(found) for _, found in pages] == [100, 21]
    said = "121 emergency overrides await review, oldest first; this page shows numbers 1 to 100."
    assert said in pages[0][0]
    assert "this page shows numbers 101 to 121." in pages[1][0] and "First page" in pages[1][0]
    assert "121 accesos de emergencia esperan revisión" in text_of(
        browser.get("/overrides?lang=es")
    )
