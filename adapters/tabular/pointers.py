"""Putting values into a document at a JSON pointer, and reading them back.

Pointers are RFC 6901, parsed once into tokens: a key (``str``), an array index (``int``) or
:data:`APPEND` — the ``-`` of RFC 6902, "a new element at the end of this array". A pointer
with ``-`` (``/child/identifiers/-/value``) comes with the fields that identify the new element
(``type: curp``): :func:`put` writes them into it, and :func:`get` finds the element by them.
Missing objects and arrays on the way are created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

APPEND: Final = "-"
Token = str | int
Tokens = tuple[Token, ...]
Fixed = tuple[tuple[Tokens, Any], ...]  # the fields that identify an appended element
MISSING: Final = object()


def parse_pointer(pointer: str) -> Tokens:
    """``"/placements/0/-/type"`` → ``("placements", 0, "-", "type")``. Raises ValueError."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(pointer)
    tokens: list[Token] = []
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        tokens.append(int(token) if token.isdigit() and token == str(int(token)) else token)
    return tuple(tokens)


def format_pointer(tokens: Sequence[Token]) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def _new_container(next_token: Token) -> Any:
    return [] if isinstance(next_token, int) or next_token == APPEND else {}


def put(
    node: Any, tokens: Tokens, value: Any, fixed: Fixed = (), path: list[Token] | None = None
) -> None:
    """Set ``value`` at ``tokens`` inside ``node``. ``path``, when given, receives the concrete
    tokens (the index an appended element got)."""
    last = len(tokens) - 1
    for position, token in enumerate(tokens):
        if token == APPEND:
            element: Any = value
            if position < last:
                element = {}
                for fixed_tokens, fixed_value in fixed:
                    put(element, fixed_tokens, fixed_value)
            node.append(element)
            if path is not None:
                path.append(len(node) - 1)
            if position == last:
                return
            node = element
            continue
        if path is not None:
            path.append(token)
        if isinstance(token, int):
            while len(node) <= token:
                node.append(None)
            if position == last:
                node[token] = value
                return
            child = node[token]
            if child is None:
                child = node[token] = _new_container(tokens[position + 1])
        else:
            if position == last:
                node[token] = value
                return
            child = node.get(token)
            if child is None:
                child = node[token] = _new_container(tokens[position + 1])
        node = child


def get(node: Any, tokens: Tokens, fixed: Fixed = ()) -> Any:
    """The value at ``tokens``, or :data:`MISSING`. At ``-`` the first element whose ``fixed``
    fields all match is followed."""
    for token in tokens:
        if token == APPEND:
            if not isinstance(node, list):
                return MISSING
            node = next((each for each in node if _matches(each, fixed)), MISSING)
        elif isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                return MISSING
            node = node[token]
        else:
            if not isinstance(node, dict) or token not in node:
                return MISSING
            node = node[token]
        if node is MISSING:
            return MISSING
    return node


def _matches(element: Any, fixed: Fixed) -> bool:
    return all(get(element, tokens) == value for tokens, value in fixed)


def template(tokens: Sequence[Token]) -> str:
    """The field-map template of a pointer: every index and ``-`` is ``*``
    (see :mod:`schemas.fields`)."""
    return format_pointer(["*" if isinstance(t, int) or t == APPEND else t for t in tokens])
