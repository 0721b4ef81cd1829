"""What the portal's forms check of a field before a service sees it, said beside the field."""

from __future__ import annotations

from flask import request

from exchange.consents.common import REASON, control_characters_said
from exchange.portal.blueprint import Text


def typed_text(name: str) -> str:
    """A text box's text as the person typed it: browsers send each line break as CRLF (and
    count it as one character against ``maxlength``), the API's clients as LF. Stored and
    counted alike, whichever way it came."""
    return request.form.get(name, "").replace("\r\n", "\n")


def reason_error(reason: str, limit: int, missing: Text) -> Text | None:
    """What is wrong with the reason of a decision or a review: none written (``missing``),
    a control character (as the consent services refuse it), or more than ``limit``
    characters. None when it may be sent."""
    if not reason.strip():
        return missing
    if (unwritable := control_characters_said(reason.strip(), REASON)) is not None:
        return unwritable
    if len(reason) > limit:
        return (
            f"El motivo es demasiado largo: {len(reason)} caracteres, y el máximo es {limit}.",
            f"The reason is too long: {len(reason)} characters, and at most {limit} fit.",
        )
    return None
