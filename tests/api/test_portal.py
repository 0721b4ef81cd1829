"""People open the portal and read the shared schemas field by field, in Spanish or English."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_home_page_in_both_languages(client: FlaskClient) -> None:
    spanish = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Esquemas compartidos" in spanish
    assert "Shared schemas" in english


def test_schema_list_links_every_schema(client: FlaskClient) -> None:
    page = client.get("/schemas?lang=es").get_data(as_text=True)
    assert "/schemas/case-record/1" in page
    assert "/v1/schemas/case-record/1" in page


def test_schema_page_shows_fields_categories_and_codes(client: FlaskClient) -> None:
    response = client.get("/schemas/case-record/1?lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/child/date_of_birth" in page
    # The data category that decides disclosure, by its name in the page's language (its code
    # beside it for integrators).
    assert 'title="protection_concerns">Protection concerns</span>' in page
    spanish = client.get("/schemas/case-record/1?lang=es").get_data(as_text=True)
    assert 'title="protection_concerns">Riesgos y necesidades de protección</span>' in spanish


def test_a_document_of_shared_definitions_lists_them(client: FlaskClient) -> None:
    for lang, curp_title, category in (("es", "CURP", "Identidad"), ("en", "CURP", "Identity")):
        page = client.get(f"/schemas/common/1?lang={lang}").get_data(as_text=True)
        assert "<code>#/$defs/curp</code>" in page
        assert f"<td>{curp_title}</td>" in page
        assert f'title="identity">{category}</span>' in page


def test_schema_page_describes_the_schema_in_the_pages_language(client: FlaskClient) -> None:
    spanish = client.get("/schemas/case-record/1?lang=es").get_data(as_text=True)
    assert "El expediente de caso que una institución envía al nodo" in spanish
    assert "Every leaf carries x-category" not in spanish
    english = client.get("/schemas/case-record/1?lang=en").get_data(as_text=True)
    assert "The case record an agency pushes to the hub" in english


def test_unknown_schema_page_is_404(client: FlaskClient) -> None:
    response = client.get("/schemas/no-such/1?lang=es")
    assert response.status_code == 404
    assert response.mimetype == "text/html"  # a page for the person's browser
    page = response.get_data(as_text=True)
    assert "no-such" in page and "Ver los esquemas que tiene este nodo" in page
    assert client.get("/schemas/case-record/9?lang=en").status_code == 404
