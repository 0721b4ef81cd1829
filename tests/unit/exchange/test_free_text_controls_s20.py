"""The one check every free text of the consent area goes through
(exchange.consents.common.control_characters_said): control characters (Unicode category C*)
are named, sorted and once each, with the field's own name; line breaks and tabs are text."""

from __future__ import annotations

import pytest

from exchange.consents.common import (
    JUSTIFICATION,
    REASON,
    ConsentProblem,
    control_characters_said,
    refuse_control_characters,
)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a\x00b", "U+0000"),
        ("\x1b[31mrojo\x1b[0m", "U+001B"),
        ("fin\x7f", "U+007F"),
        ("\u202egnp.exe", "U+202E"),
        ("sin\u200bespacio\u2066", "U+2066"),  # a bidi isolate refused, a zero-width space not
        ("privado\ue000", "U+E000"),  # private use (Co)
        ("\x85línea", "U+0085"),  # NEL: a line break no text box sends
    ],
)
def test_control_characters_are_named_with_the_fields_name(text: str, named: str) -> None:
    said = control_characters_said(text, REASON)
    assert said == (
        f"El motivo contiene caracteres de control ({named}): bórrelos y vuelva a enviar el "
        "texto (los saltos de línea y los tabuladores sí se admiten).",
        f"The reason contains control characters ({named}): delete them and send it again "
        "(line breaks and tabs are fine).",
    )


def test_line_breaks_tabs_and_any_script_are_text() -> None:
    assert (
        control_characters_said("Primera línea:\r\n\tsegunda — ñandú, 漢字, عربي", REASON) is None
    )


def test_the_refusal_names_every_pointer_and_skips_what_is_absent() -> None:
    with pytest.raises(ConsentProblem) as refused:
        refuse_control_characters(
            ("/reason", "a\x1bb", REASON),
            ("/justification", None, JUSTIFICATION),
            ("/summary", "bien", REASON),
            ("/not_heard_reason", "\u202e", REASON),
        )
    assert refused.value.kind == "validation"
    assert [error["pointer"] for error in refused.value.errors] == ["/reason", "/not_heard_reason"]
    refuse_control_characters(("/reason", "bien\n", REASON), ("/summary", None, REASON))
