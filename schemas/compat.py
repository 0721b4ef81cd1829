"""Is version N+1 of a schema backward compatible with version N?

"Compatible" means: every document version N accepted, version N+1 accepts too, so records
already pushed stay valid and senders that have not upgraded keep working. Only additive
changes are provable here: new optional properties, relaxed bounds, more enum values, more
types. :func:`check_compatibility` compares the two schemas keyword by keyword (following
``$ref`` on both sides) and reports an :class:`Incompatibility` for everything it cannot
*prove* compatible — it is conservative, never optimistic: a changed ``pattern``, ``anyOf``
or ``if``/``then`` is reported unless it is unchanged.

Pointers are instance templates like :mod:`schemas.fields` uses (``/placements/*/type``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.errors import IncompatibleSchema
from schemas.fields import escape_token
from schemas.flatten import (
    BOUNDS,
    Flat,
    Lookup,
    canonical,
    divides,
    document_lookup,
    extra,
    flatten,
    properties,
    ref_documents,
    reference_validator,
    tightest,
    types,
)

# Keywords compared only for equality (changed → reported).
OPAQUE: tuple[str, ...] = (
    *("anyOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas"),
    *("patternProperties", "propertyNames", "prefixItems", "contains", "unevaluatedItems"),
    *("unevaluatedProperties", "minContains", "maxContains", "$dynamicRef"),
)


@dataclass(frozen=True)
class Incompatibility:
    """A place where the new schema may reject what the old one accepted, and why."""

    pointer: str
    reason_es: str
    reason_en: str

    def reason(self, lang: str = "en") -> str:
        return self.reason_es if lang == "es" else self.reason_en


class _Checker:
    def __init__(self, old_lookup: Lookup, new_lookup: Lookup) -> None:
        self.old_lookup, self.new_lookup = old_lookup, new_lookup
        self.found: list[Incompatibility] = []
        self.in_progress: set[tuple[int, int, str, str]] = set()

    def report(self, pointer: str, es: str, en: str) -> None:
        self.found.append(Incompatibility(pointer or "/", es, en))

    def covers(self, old: Any, old_base: str, new: Any, new_base: str, pointer: str) -> None:
        key = (id(old), id(new), old_base, new_base)
        if key in self.in_progress:  # recursive schema: assume, and prove the rest
            return
        self.in_progress.add(key)
        try:
            self._covers(old, old_base, new, new_base, pointer)
        finally:
            self.in_progress.discard(key)

    def _covers(self, old: Any, old_base: str, new: Any, new_base: str, pointer: str) -> None:
        old_flat = flatten(old, old_base, self.old_lookup)
        new_flat = flatten(new, new_base, self.new_lookup)
        if old_flat is None or (new_flat is not None and not new_flat.keywords):
            return  # old accepts nothing, or new accepts everything
        if new_flat is None:
            self.report(
                pointer,
                "la nueva versión no admite ningún valor aquí",
                "the new version accepts no value here",
            )
            return
        if "enum" in old_flat.keywords:
            self._finite(old, old_base, old_flat, new, new_base, pointer)
            return
        self._scalars(old_flat, new_flat, pointer)
        self._objects(old_flat, new_flat, pointer)
        self._arrays(old_flat, new_flat, pointer)
        for keyword in OPAQUE:
            if keyword in new_flat.keywords and not self._unchanged(old_flat, new_flat, keyword):
                self.report(
                    pointer,
                    f"cambió «{keyword}»; no se puede probar que sea compatible",
                    f"'{keyword}' changed; it cannot be proved compatible",
                )

    def _unchanged(self, old: Flat, new: Flat, keyword: str) -> bool:
        """The same text, and every document it refers to the same on both sides."""
        text = canonical(old, keyword)
        if text != canonical(new, keyword):
            return False
        documents = ref_documents(json.loads(text))
        return all(self.old_lookup(uri) == self.new_lookup(uri) for uri in documents)

    def _finite(
        self, old: Any, old_base: str, flat: Flat, new: Any, new_base: str, pointer: str
    ) -> None:
        """Old accepts a finite set of values: check each against the new schema."""
        candidates = flat.values("enum")[0]
        old_check = reference_validator(old, old_base, self.old_lookup)
        new_check = reference_validator(new, new_base, self.new_lookup)
        for value in candidates:
            if old_check.is_valid(value) and not new_check.is_valid(value):
                self.report(
                    pointer,
                    f"la nueva versión ya no admite el valor {json.dumps(value)}",
                    f"the new version no longer accepts the value {json.dumps(value)}",
                )

    def _scalars(self, old: Flat, new: Flat, pointer: str) -> None:
        old_types = types(old)
        new_types = types(new)
        if new_types is not None and (old_types is None or not old_types <= new_types):
            missing = sorted((old_types or {"any"}) - new_types)
            self.report(
                pointer,
                f"la nueva versión ya no admite el tipo {', '.join(missing)}",
                f"the new version no longer accepts type {', '.join(missing)}",
            )
        if "enum" in new.keywords:
            self.report(
                pointer,
                "la nueva versión limita los valores a una lista (enum)",
                "the new version restricts the values to a list (enum)",
            )
        for pattern in new.values("pattern"):
            if pattern not in old.values("pattern"):
                self.report(
                    pointer,
                    f"patrón nuevo o distinto: {pattern}",
                    f"new or changed pattern: {pattern}",
                )
        for fmt in new.values("format"):
            if fmt not in old.values("format"):
                self.report(pointer, f"formato nuevo: {fmt}", f"new format: {fmt}")
        for keyword, tighter in BOUNDS.items():
            new_limit = tightest(new, keyword, tighter)
            old_limit = tightest(old, keyword, tighter)
            if new_limit is not None and (old_limit is None or tighter(new_limit, old_limit)):
                self.report(
                    pointer,
                    f"«{keyword}» más estricto: {old_limit} → {new_limit}",
                    f"stricter '{keyword}': {old_limit} → {new_limit}",
                )
        for divisor in new.values("multipleOf"):
            if not any(divides(divisor, each) for each in old.values("multipleOf")):
                self.report(
                    pointer,
                    f"«multipleOf» nuevo o distinto: {divisor}",
                    f"new or changed 'multipleOf': {divisor}",
                )
        if any(new.values("uniqueItems")) and not any(old.values("uniqueItems")):
            self.report(
                pointer,
                "la nueva versión exige elementos sin repetir",
                "the new version requires unique items",
            )

    def _objects(self, old: Flat, new: Flat, pointer: str) -> None:
        new_required = set().union(*map(set, new.values("required")))
        old_required = set().union(*map(set, old.values("required")))
        for name in sorted(new_required - old_required):
            self.report(
                f"{pointer}/{escape_token(name)}",
                f"«{name}» pasa a ser obligatorio",
                f"'{name}' becomes required",
            )
        if (
            len(old.keywords.get("additionalProperties", ())) > 1
            or len(new.keywords.get("additionalProperties", ())) > 1
        ):
            if canonical(old, "additionalProperties") != canonical(new, "additionalProperties"):
                self.report(
                    pointer,
                    "varios «additionalProperties» combinados; no comparable",
                    "several combined 'additionalProperties'; not comparable",
                )
            return
        old_props, new_props = properties(old), properties(new)
        old_extra, new_extra = extra(old), extra(new)
        for name in sorted(old_props.keys() | new_props.keys()):
            at = f"{pointer}/{escape_token(name)}"
            olds = old_props.get(name) or ([old_extra] if old_extra[0] is not False else [])
            news = new_props.get(name) or [new_extra]
            for old_schema, old_base in olds:
                for new_schema, new_base in news:
                    if new_schema is False and name not in new_props:
                        self.report(
                            at,
                            f"se quitó el campo «{name}» y no se admiten campos extra",
                            f"field '{name}' was removed and extra fields are not allowed",
                        )
                    else:
                        self.covers(old_schema, old_base, new_schema, new_base, at)
        if old_extra[0] is not False and new_extra[0] is False:
            self.report(
                pointer,
                "la nueva versión ya no admite campos adicionales",
                "the new version no longer accepts additional fields",
            )
        elif old_extra[0] is not False:
            self.covers(*old_extra, *new_extra, f"{pointer}/*")

    def _arrays(self, old: Flat, new: Flat, pointer: str) -> None:
        for new_items, new_base in new.keywords.get("items", ()):
            for old_items, old_base in old.keywords.get("items") or [(True, "")]:
                self.covers(old_items, old_base, new_items, new_base, f"{pointer}/*")


def check_compatibility(
    old_schema: Mapping[str, Any], new_schema: Mapping[str, Any], registry: Any
) -> list[Incompatibility]:
    """Everything that may make ``new_schema`` reject a document ``old_schema`` accepted.
    Empty means compatible. ``registry`` (a :class:`~schemas.registry.SchemaRegistry`)
    resolves references to other documents."""
    checker = _Checker(document_lookup(registry, old_schema), document_lookup(registry, new_schema))
    checker.covers(
        old_schema, str(old_schema.get("$id", "")), new_schema, str(new_schema.get("$id", "")), ""
    )
    unique = {(item.pointer, item.reason_en): item for item in checker.found}
    return [unique[key] for key in sorted(unique)]


def require_compatible(
    old_schema: Mapping[str, Any], new_schema: Mapping[str, Any], registry: Any
) -> None:
    """Return if ``new_schema`` is provably compatible; raise
    :class:`~schemas.errors.IncompatibleSchema` listing every reason otherwise."""
    found = check_compatibility(old_schema, new_schema, registry)
    if found:
        raise IncompatibleSchema(found)
