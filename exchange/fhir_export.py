"""Consents as FHIR R5 ``Consent`` and audit entries as FHIR R5 ``AuditEvent`` resources.

Both return plain JSON dicts (``resourceType`` first) that ``fhir.resources`` 8.x (R5) accepts;
the tests check them with it. A consent is written by the ``fhir`` adapter's writer
(:mod:`adapters.fhir_consent_write`, which says how Puente's consents map to R5), so what the
hub answers and what ``puente export --adapter fhir`` writes are one shape; the audit mapping
lives in :mod:`exchange.fhir_audit` and is exported from here.
"""

from __future__ import annotations

from typing import Any

from adapters.fhir_consent_write import write_consent
from consent.model import Consent
from exchange.fhir_audit import audit_entry_to_fhir

__all__ = ["audit_entry_to_fhir", "consent_to_fhir"]


def consent_to_fhir(consent: Consent, *, hub_base_url: str | None = None) -> dict[str, Any]:
    """The FHIR R5 ``Consent`` resource of ``consent``.

    ``hub_base_url`` (the hub's public origin) becomes ``meta.source``. The consent is written
    in its canonical form (codes in the vocabulary's order, instants in UTC) but for
    ``recorded_at``, whose date becomes ``Consent.date``: the day where it was recorded.
    """
    document = consent.to_json()
    if consent.recorded_at is not None:
        document["recorded_at"] = consent.recorded_at.isoformat()
    return write_consent(document, meta_source=hub_base_url)
