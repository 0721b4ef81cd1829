"""The reasons a person reads, in Spanish and English, one builder per step of the engine.

Reasons depend only on the step, the id it rests on and the categories concerned, so they are
built once and reused (a bounded memo): explaining a decision costs a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from consent._time import format_instant
from consent.decision import Reason
from consent.rules import Rule
from consent.vocabulary import CATEGORY_LABELS, PURPOSE_LABELS, categories_of

_MEMO: dict[tuple[object, ...], Reason] = {}
_MEMO_LIMIT = 16384


def _memo(key: tuple[object, ...], build: Callable[[], Reason]) -> Reason:
    found = _MEMO.get(key)
    if found is None:
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        found = _MEMO[key] = build()
    return found


def labels(mask: int) -> tuple[str, str]:
    """The categories in ``mask`` as readable lists (Spanish, English)."""
    names = categories_of(mask)
    return (
        ", ".join(CATEGORY_LABELS[name][0] for name in names),
        ", ".join(CATEGORY_LABELS[name][1] for name in names),
    )


def hard_rule(rule: Rule, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        return Reason(
            "hard_rule",
            "deny",
            categories_of(mask),
            f"Regla legal inderogable «{rule.id}»: {rule.title[0]} Se retiene: {es}.",
            f"Hard legal rule “{rule.id}”: {rule.title[1]} Withheld: {en}.",
            rule.id,
        )

    return _memo(("hard_rule", rule.id, rule.title, mask), build)


def originating_agency(mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        return Reason(
            "originating_agency",
            "permit",
            categories_of(mask),
            f"La agencia de origen consulta su propio expediente, lo cual no es una "
            f"divulgación; solo las reglas legales la limitan. Se permite: {es}.",
            f"The originating agency is reading its own record, which is not a disclosure; "
            f"only hard legal rules limit it. Permitted: {en}.",
        )

    return _memo(("originating_agency", mask), build)


def withhold(ref: str | None, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        return Reason(
            "withhold",
            "deny",
            categories_of(mask),
            f"Hay una reserva registrada para no divulgar a esta persona o agencia: {es}.",
            f"A withhold-from entry forbids disclosing to this person or agency: {en}.",
            ref,
        )

    return _memo(("withhold", ref, mask), build)


def override(ref: str | None, basis_code: str, ends: datetime, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        until = format_instant(ends)
        return Reason(
            "override",
            "permit",
            categories_of(mask),
            f"Acceso de emergencia por interés superior ({basis_code}) vigente hasta {until}, "
            f"sujeto a revisión de la Procuraduría. Se permite: {es}.",
            f"Emergency best-interest override ({basis_code}) in force until {until}, "
            f"subject to review by the Procuraduría. Permitted: {en}.",
            ref,
        )

    return _memo(("override", ref, basis_code, ends, mask), build)


def objection(ref: str | None, heard_on: date, upheld: bool, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        heard = heard_on.isoformat()
        if upheld:
            state_es = "la Procuraduría confirmó la oposición al revisarla"
            state_en = "the Procuraduría upheld the objection on review"
        else:
            state_es = "bloquea hasta que la Procuraduría la revise"
            state_en = "it blocks until the Procuraduría reviews it"
        return Reason(
            "objection",
            "deny",
            categories_of(mask),
            f"La o el adolescente se opuso (escuchado el {heard}); {state_es}. Se retiene: {es}.",
            f"The adolescent objected (heard on {heard}); {state_en}. Withheld: {en}.",
            ref,
        )

    return _memo(("objection", ref, heard_on, upheld, mask), build)


def consent(ref: str, where: str, deny: bool, mask: int, revoked: bool = False) -> Reason:
    """``where`` is ``"base"`` for the consent's base decision, else the provision path;
    ``revoked`` marks a restriction of a consent since revoked, which stays in force."""

    def build() -> Reason:
        es, en = labels(mask)
        if where == "base":
            place_es = "decisión base (ninguna disposición aplica)"
            place_en = "base decision (no provision applies)"
        else:
            place_es, place_en = f"disposición {where}", f"provision {where}"
        verb_es, verb_en = ("deniega", "denies") if deny else ("permite", "permits")
        note_es = note_en = ""
        if revoked:
            note_es = " (consentimiento revocado: sus restricciones siguen vigentes)"
            note_en = " (consent revoked: its restrictions stay in force)"
        return Reason(
            "consent",
            "deny" if deny else "permit",
            categories_of(mask),
            f"Consentimiento {ref}{note_es}, {place_es}: {verb_es} {es}.",
            f"Consent {ref}{note_en}, {place_en}: {verb_en} {en}.",
            ref,
        )

    return _memo(("consent", ref, where, deny, mask, revoked), build)


def grant(ref: str, purpose: str, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        purpose_es, purpose_en = PURPOSE_LABELS[purpose]
        return Reason(
            "grant",
            "permit",
            categories_of(mask),
            f"Autorización {ref} (solicitud de acceso aprobada) para «{purpose_es}»: "
            f"se permite {es}.",
            f"Grant {ref} (approved access request) for “{purpose_en}”: permits {en}.",
            ref,
        )

    return _memo(("grant", ref, purpose, mask), build)


def default_deny(purpose: str, mask: int) -> Reason:
    def build() -> Reason:
        es, en = labels(mask)
        purpose_es, purpose_en = PURPOSE_LABELS[purpose]
        return Reason(
            "default_deny",
            "deny",
            categories_of(mask),
            # Worded so that it stays true when a reader is told it in place of a reason they
            # may not hear (exchange.api.record_reads.decision_for_reader).
            f"No hay nada vigente que le permita esta solicitud para «{purpose_es}»: se deniega "
            f"{es}. Puede solicitar acceso a la Procuraduría.",
            f"Nothing in force permits you this request for “{purpose_en}”: {en} denied. You "
            f"may ask the Procuraduría for access.",
        )

    return _memo(("default_deny", purpose, mask), build)
