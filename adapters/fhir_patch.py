"""What the standard FHIR elements of a resource do not carry, as a JSON Merge Patch.

Most of ``case-record/1`` has no FHIR element (protection concerns, health, education, legal
proceedings, referrals, best interest, the restitution plan, the child's entry to Mexico…),
and some fields are carried only in part (a given name with two spaces between its words comes
back with one). So that an agency's own FHIR export imported again gives back exactly the
records it holds, each resource Puente writes carries, in the
``https://schemas.puente.mx/fhir/StructureDefinition/case-record-patch`` extension
(``valueString``), an RFC 7386 JSON Merge Patch: applied to what the adapter reads from that
resource's standard elements, it gives the part of the record the resource stands for.

- **Patient** → ``/child``;
- **RelatedPerson** → its item of ``/related_persons``;
- **Encounter** → its item of ``/placements``;
- **EpisodeOfCare** → the rest of the record (``/case``, ``/closure`` and every other section).

The writer computes the patch by reading back the resource it has just written (so the patch
holds only what the standard elements miss, and nothing when they carry everything); a patch
that is not a JSON object is a problem of its case, never silently dropped.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t
from adapters.base import Problem

PATCH = t.extension_url("case-record-patch")
#: Levels of nesting a patch may have: a case record has about eight; applying a patch
#: recurses once a level, so a deeper one is refused rather than exhaust the stack.
MAX_DEPTH = 64
_TOO_DEEP = object()


def _depth(value: Any) -> int:
    """How many levels of objects and lists ``value`` nests (a loop: no recursion)."""
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            level.extend((child, depth + 1) for child in children)
    return deepest


def diff(wanted: Any, read: Any) -> Any:
    """The merge patch that turns ``read`` into ``wanted`` (``{}`` when they are equal).

    Objects are compared member by member (``null`` removes a member ``read`` has and
    ``wanted`` lacks); any other value, lists included, is replaced whole."""
    if not isinstance(wanted, Mapping) or not isinstance(read, Mapping):
        return copy.deepcopy(wanted)
    patch: dict[str, Any] = {}
    for key, value in wanted.items():
        if key not in read:
            patch[key] = copy.deepcopy(value)
        elif not _same(value, read[key]):
            if isinstance(value, Mapping) and isinstance(read[key], Mapping):
                patch[key] = diff(value, read[key])
            else:
                patch[key] = copy.deepcopy(value)
    for key in read:
        if key not in wanted:
            patch[key] = None
    return patch


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``True`` is not ``1``, ``1`` is not ``1.0``."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def apply(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch); ``target`` is left as it was."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result


def add_patch(resource: dict[str, Any], wanted: Any, read: Any) -> dict[str, Any]:
    """``resource`` with the extension that patches ``read`` into ``wanted``, when needed."""
    patch = diff(wanted, read)
    if patch != {}:
        text = json.dumps(patch, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        extension = t.extension(PATCH, "String", text)
        resource["extension"] = [*t.as_list(resource.get("extension")), extension]
    return resource


def read_patch(
    resource: Mapping[str, Any], position: str, problems: list[Problem]
) -> dict[str, Any]:
    """The merge patch a resource carries (``{}`` for none); a broken one is a problem."""
    found = t.extensions(resource, PATCH)
    if not found:
        return {}
    kind = resource.get("resourceType")
    pointer = f"resource:{kind}.extension"
    value = found[0].get("valueString")
    try:
        patch = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        patch = None
    except RecursionError:
        patch = _TOO_DEEP
    if patch is not _TOO_DEEP and _depth(patch) > MAX_DEPTH:
        patch = _TOO_DEEP
    if patch is _TOO_DEEP:
        problems.append(
            Problem(
                pointer,
                f"{position}: la extensión {PATCH} está anidada demasiado profundo (más de "
                f"{MAX_DEPTH} niveles): los campos que lleva se perderían, así que el caso no se "
                "importa",
                f"{position}: the {PATCH} extension is nested too deep (more than {MAX_DEPTH} "
                "levels): the fields it carries would be lost, so the case is not imported",
            )
        )
        return {}
    if isinstance(patch, dict):
        return patch
    problems.append(
        Problem(
            pointer,
            f"{position}: la extensión {PATCH} no es un JSON Merge Patch (un objeto JSON en "
            "valueString): los campos que lleva se perderían, así que el caso no se importa",
            f"{position}: the {PATCH} extension is not a JSON Merge Patch (a JSON object in "
            "valueString): the fields it carries would be lost, so the case is not imported",
        )
    )
    return {}
