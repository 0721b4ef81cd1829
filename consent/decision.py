"""The engine's answer: permit or deny, the permitted and withheld categories, the basis, the ids
it rests on and the reasons in Spanish and English — the same explanation the audit log and the
portal show. The hub assigns decision ids; the engine stays deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consent.parts import Json, ordered, read_code, read_codes, read_list, read_object, read_text
from consent.vocabulary import BASES, CATEGORIES, DECISIONS


@dataclass(frozen=True, slots=True)
class Reason:
    """Why some categories were permitted or denied: the step (``code``, a basis), the id of
    the consent, grant, rule, override, withhold entry or view it rests on (``ref``), and the
    explanation in Spanish and English."""

    code: str
    result: str
    categories: tuple[str, ...]
    es: str
    en: str
    ref: str | None = None

    def to_json(self) -> Json:
        doc: Json = {"code": self.code, "result": self.result, "categories": list(self.categories)}
        if self.ref is not None:
            doc["ref"] = self.ref
        doc["es"] = self.es
        doc["en"] = self.en
        return doc

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Reason:
        doc = read_object(
            value, pointer, required=("code", "result", "categories", "es", "en"), optional=("ref",)
        )
        return cls(
            code=read_code(doc["code"], f"{pointer}/code", BASES, "fundamento/basis"),
            result=read_code(doc["result"], f"{pointer}/result", DECISIONS, "decisión/decision"),
            categories=tuple(
                ordered(
                    read_codes(
                        doc["categories"], f"{pointer}/categories", CATEGORIES, "categoría/category"
                    ),
                    CATEGORIES,
                )
            ),
            es=_required(doc, "es", pointer),
            en=_required(doc, "en", pointer),
            ref=read_text(doc, "ref", pointer),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Permit (some categories) or deny (all of them).

    ``basis`` is the step that decided: for a permit, the first step in precedence order that
    permitted a category; for a deny, the first that refused one. ``categories`` are the
    permitted ones and ``withheld`` the requested ones that are not, both in vocabulary order.
    """

    result: str
    basis: str
    categories: tuple[str, ...]
    withheld: tuple[str, ...]
    reasons: tuple[Reason, ...]
    consent_ids: tuple[str, ...] = ()
    grant_ids: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    override_ids: tuple[str, ...] = ()
    withhold_ids: tuple[str, ...] = ()
    view_ids: tuple[str, ...] = ()

    @property
    def permitted(self) -> bool:
        return self.result == "permit"

    def permits(self, category: str) -> bool:
        return category in self.categories

    def basis_of(self, category: str) -> str | None:
        """The step that decided ``category``; None if it was not requested."""
        for reason in self.reasons:
            if category in reason.categories:
                return reason.code
        return None

    def explanation(self, language: str = "es") -> str:
        """The reasons as one text, in Spanish (``es``) or English (``en``)."""
        return " ".join(reason.en if language == "en" else reason.es for reason in self.reasons)

    def to_json(self) -> Json:
        doc: Json = {
            "result": self.result,
            "basis": self.basis,
            "categories": list(self.categories),
            "withheld": list(self.withheld),
        }
        for key in (
            "consent_ids",
            "grant_ids",
            "rule_ids",
            "override_ids",
            "withhold_ids",
            "view_ids",
        ):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        doc["reasons"] = [reason.to_json() for reason in self.reasons]
        return doc

    def to_audit_json(self) -> Json:
        """The ``decision`` object of an ``audit-event/1`` entry: no text, only codes and ids
        (the hub adds its decision ``id``)."""
        doc: Json = {"result": self.result, "basis": self.basis}
        if self.categories:
            doc["categories"] = list(self.categories)
        for key in ("consent_ids", "rule_ids", "grant_ids"):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        if self.override_ids:
            doc["override_id"] = self.override_ids[0]
        for key in ("withhold_ids", "view_ids"):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        return doc

    @classmethod
    def from_json(cls, value: Any, pointer: str = "") -> Decision:
        id_lists = (
            "consent_ids",
            "grant_ids",
            "rule_ids",
            "override_ids",
            "withhold_ids",
            "view_ids",
        )
        doc = read_object(
            value,
            pointer,
            required=("result", "basis", "categories", "withheld", "reasons"),
            optional=id_lists,
        )

        def categories(key: str) -> tuple[str, ...]:
            codes = read_codes(doc[key], f"{pointer}/{key}", CATEGORIES, "categoría/category")
            return tuple(ordered(codes, CATEGORIES))

        def ids(key: str) -> tuple[str, ...]:
            items = read_list(doc.get(key, []), f"{pointer}/{key}")
            return tuple(str(item) for item in items)

        reasons = read_list(doc["reasons"], f"{pointer}/reasons")
        return cls(
            result=read_code(doc["result"], f"{pointer}/result", DECISIONS, "decisión/decision"),
            basis=read_code(doc["basis"], f"{pointer}/basis", BASES, "fundamento/basis"),
            categories=categories("categories"),
            withheld=categories("withheld"),
            reasons=tuple(
                Reason.from_json(item, f"{pointer}/reasons/{index}")
                for index, item in enumerate(reasons)
            ),
            consent_ids=ids("consent_ids"),
            grant_ids=ids("grant_ids"),
            rule_ids=ids("rule_ids"),
            override_ids=ids("override_ids"),
            withhold_ids=ids("withhold_ids"),
            view_ids=ids("view_ids"),
        )


def _required(doc: Any, key: str, pointer: str) -> str:
    value = read_text(doc, key, pointer)
    assert value is not None  # required by read_object
    return value
