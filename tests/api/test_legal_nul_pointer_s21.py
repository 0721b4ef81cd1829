"""A text holding U+0000 in a JSON body is refused pointing at it (``/reason``) and naming it,
in Spanish and English, as the other failures of a body are: it was the body as a whole
(pointer ``""``) and "a string contains the NUL character", which left the sender to search
for it."""

from __future__ import annotations

import pytest
from consent_support import PersonClient
from flask.testing import FlaskClient

from schemas.errors import DocumentError
from schemas.parsing import parse_document


def test_a_nul_in_a_decisions_reason_points_at_reason(
    client: FlaskClient, officer: PersonClient
) -> None:
    for language, said in (
        ("es", "«/reason» contiene el carácter nulo"),
        ("en", "'/reason' contains the NUL character"),
    ):
        answer = client.post(
            "/v1/access-requests/acr_x/decision",
            json={"approve": False, "reason": "No procede.\x00"},
            headers={**officer.headers, "Accept-Language": language},
        )
        assert answer.status_code == 400, answer.get_json()
        [error] = answer.get_json()["errors"]
        assert error["pointer"] == "/reason" and said in error["message"]


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        (b'{"reason": "a\\u0000"}', "/reason"),
        (b'{"a/b": {"c~d": ["x", "\\u0000"]}}', "/a~1b/c~0d/1"),
        (b'{"ok": 1, "na\\u0000me": 2}', ""),
        (b'"\\u0000"', ""),
        (b'{"views": {"summary": "\\udc00"}}', "/views/summary"),
    ],
)
def test_the_parser_says_where_the_string_is(data: bytes, pointer: str) -> None:
    with pytest.raises(DocumentError) as refused:
        parse_document(data)
    assert refused.value.code == "invalid-string" and refused.value.pointer == pointer
    if pointer:
        assert f"'{pointer}'" in refused.value.message_en
        assert f"«{pointer}»" in refused.value.message_es
