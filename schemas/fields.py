"""The field map of a schema: every place a document can hold a value, with its title and
data category.

A field is named by a *pointer template*: a JSON pointer (RFC 6901, ``~0``/``~1`` escaped)
where every array index is ``*`` — ``/child/names/given_names``, ``/placements/*/type``,
``/child/nationality/*``. The map is computed once per schema by walking ``properties``,
``items``/``prefixItems``, ``additionalProperties``/``patternProperties`` (as ``*``),
``$ref`` (by absolute id), ``allOf``/``anyOf``/``oneOf`` and ``then``/``else``.

Rules, kept deliberately simple so a schema author can predict them:

- **title**: the ``x-title`` of the property node, else of the definition it ``$ref``s.
- **category**: the ``x-category`` stated by the property node, else by the definition it
  ``$ref``s, else the category of the enclosing field (the deepest statement on the path wins,
  and a referring property overrides the default of the definition it refers to).
- **leaf**: the field holds a scalar (or an array of scalars is ``/…/*``): no properties or
  items below it. Redaction keeps or removes leaves by category.
- Where branches (``allOf``, ``then``…) describe the same field differently, the first
  description found wins; properties a branch adds are included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

MAX_TEMPLATE_DEPTH = 32
"""Recursive schemas are unrolled at most this deep."""


@dataclass(frozen=True)
class FieldInfo:
    """One field: its pointer template, ``x-title``, data category, whether it is a leaf,
    its JSON type as a reader would say it (``"string (date)"``, ``"array"``), whether its
    object requires it, and the ``x-labels`` of its codes."""

    pointer: str
    title: Mapping[str, str] | None
    category: str | None
    leaf: bool
    type: str = ""
    required: bool = False
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


Lookup = Callable[[str], Mapping[str, Any]]
Located = tuple[Any, str]  # a schema node and the base URI its references resolve against


def escape_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer_from_tokens(tokens: Sequence[str | int]) -> str:
    return "".join("/" + escape_token(token) for token in tokens)


def resolve_uri(lookup: Lookup, uri: str) -> Any:
    """The node ``uri`` (an absolute id, optionally with a ``#/json/pointer`` fragment) names."""
    document_uri, _, fragment = uri.partition("#")
    node: Any = lookup(document_uri)
    if not fragment:
        return node
    if not fragment.startswith("/"):
        raise LookupError(f"only JSON-pointer fragments are supported: {uri!r}")
    for token in fragment[1:].split("/"):
        token = unescape_token(token)
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _direct_chain(node: Any, base: str, lookup: Lookup) -> list[Located]:
    """``node`` followed by what its ``$ref`` names, and so on (cycles stop)."""
    chain: list[Located] = []
    seen: set[str] = set()
    while isinstance(node, Mapping):
        base = node.get("$id", base)
        chain.append((node, base))
        ref = node.get("$ref")
        if not isinstance(ref, str):
            break
        target = urljoin(base, ref)
        if target in seen:
            break
        seen.add(target)
        node = resolve_uri(lookup, target)
        base = target.partition("#")[0]
    return chain


def _applicable(nodes: Sequence[Located], lookup: Lookup) -> list[Located]:
    """Every schema node that applies at the same instance location as ``nodes``."""
    result: list[Located] = []
    seen: set[int] = set()
    stack = list(reversed(nodes))
    while stack:
        node, base = stack.pop()
        for each, each_base in _direct_chain(node, base, lookup):
            if id(each) in seen:
                continue
            seen.add(id(each))
            result.append((each, each_base))
            branches = [
                *each.get("allOf", ()),
                *each.get("anyOf", ()),
                *each.get("oneOf", ()),
                *(each[key] for key in ("then", "else") if key in each),
            ]
            stack.extend((branch, each_base) for branch in reversed(branches))
    return result


def collect_fields(root: Mapping[str, Any], lookup: Lookup) -> dict[str, FieldInfo]:
    """The field map of ``root`` (see the module documentation)."""
    fields: dict[str, FieldInfo] = {}
    base = str(root.get("$id", ""))
    root_title = root.get("x-title")
    pending: list[tuple[str, list[Located], Any, str | None, int, bool]] = [
        ("", [(root, base)], root_title, root.get("x-category"), 0, True)
    ]
    while pending:
        pointer, nodes, title, category, depth, required = pending.pop()
        applicable = _applicable(nodes, lookup)
        children: dict[str, list[Located]] = {}
        always_required = _required(nodes, lookup)
        for node, node_base in applicable:
            for name, sub in (node.get("properties") or {}).items():
                children.setdefault(escape_token(name), []).append((sub, node_base))
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), Mapping):
                    children.setdefault("*", []).append((node[key], node_base))
            for sub in node.get("prefixItems", ()):
                children.setdefault("*", []).append((sub, node_base))
            for sub in (node.get("patternProperties") or {}).values():
                children.setdefault("*", []).append((sub, node_base))
        if pointer not in fields:
            direct = [node for located in nodes for node, _ in _direct_chain(*located, lookup)]
            fields[pointer] = FieldInfo(
                pointer,
                title,
                category,
                leaf=not children,
                type=_type_name(direct),
                required=required,
                labels=next((n["x-labels"] for n in direct if "x-labels" in n), {}),
            )
        if depth >= MAX_TEMPLATE_DEPTH:
            continue
        for token, subs in reversed(children.items()):
            child_pointer = f"{pointer}/{token}"
            child_title, child_category = None, None
            for sub, sub_base in subs:
                for node, _ in _direct_chain(sub, sub_base, lookup):
                    if child_title is None and isinstance(node.get("x-title"), Mapping):
                        child_title = node["x-title"]
                    if child_category is None and isinstance(node.get("x-category"), str):
                        child_category = node["x-category"]
            pending.append(
                (
                    child_pointer,
                    subs,
                    child_title,
                    child_category or category,
                    depth + 1,
                    token in always_required,
                )
            )
    return fields


def _required(nodes: Sequence[Located], lookup: Lookup) -> set[str]:
    """Names required whatever the branch: ``required`` of the nodes, their ``$ref`` targets
    and ``allOf`` members (not ``anyOf``/``oneOf``/``then``, which are conditional)."""
    names: set[str] = set()
    stack = list(nodes)
    while stack:
        node, base = stack.pop()
        for each, each_base in _direct_chain(node, base, lookup):
            names.update(escape_token(name) for name in each.get("required", ()))
            stack.extend((member, each_base) for member in each.get("allOf", ()))
    return names


def _type_name(direct: Sequence[Mapping[str, Any]]) -> str:
    kind = next((node["type"] for node in direct if "type" in node), None)
    if kind is None and any("enum" in node or "const" in node for node in direct):
        values = next(
            node.get("enum", [node.get("const")])
            for node in direct
            if "enum" in node or "const" in node
        )
        kinds = sorted({type(value).__name__ for value in values})
        kind = "string" if kinds == ["str"] else None
    text = " | ".join(kind) if isinstance(kind, list) else (kind or "")
    fmt = next((node["format"] for node in direct if "format" in node), None)
    return f"{text} ({fmt})" if fmt and text else text


def find_field(fields: Mapping[str, FieldInfo], tokens: Sequence[str | int]) -> FieldInfo | None:
    """The field a concrete instance location (path tokens) falls in, or None."""
    template = ""
    for token in tokens:
        exact = f"{template}/{escape_token(token)}"
        if not isinstance(token, int) and exact in fields:
            template = exact
        elif f"{template}/*" in fields:
            template = f"{template}/*"
        elif exact in fields:
            template = exact
        else:
            return None
    return fields.get(template)
