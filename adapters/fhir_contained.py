"""The resources a FHIR Consent or AuditEvent carries inside itself (``contained``).

Written by :mod:`adapters.fhir_consent_write` and the hub's AuditEvent export
(``exchange/fhir_audit.py``); read back by :mod:`adapters.fhir_consent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import fhir_terms as t

Json = dict[str, Any]


class Contained:
    """The contained resources of one resource being written, each added once.

    An actor (an ``{agency_id, person_id, role}`` mapping, as the schemas write actors) that
    names both a person and an agency, or a role, is a ``PractitionerRole``: FHIR's way to say
    "this person, at this agency, in this role" (a role alone means anyone holding it). A bare
    agency or person is a logical reference and needs nothing contained.
    """

    def __init__(self) -> None:
        self.resources: list[Json] = []
        self._ids: dict[tuple[Any, ...], str] = {}

    def add(self, key: tuple[Any, ...], resource: Json) -> Json:
        """Contain ``resource`` (once per ``key``) and return the local reference to it."""
        local_id = self._ids.get(key)
        if local_id is None:
            local_id = self._ids[key] = f"{resource['resourceType'].lower()}-{len(self._ids) + 1}"
            self.resources.append(
                {
                    "resourceType": resource["resourceType"],
                    "id": local_id,
                    **{k: v for k, v in resource.items() if k != "resourceType"},
                }
            )
        return {"reference": f"#{local_id}", "type": resource["resourceType"]}

    def actor(self, actor: Mapping[str, Any], *, with_role: bool = True) -> Json | None:
        """A reference to ``actor``, None if it names no one; ``with_role=False`` leaves the
        role to the caller (a provision actor states it in ``role``), so a role alone is None."""
        agency, person = actor.get("agency_id"), actor.get("person_id")
        role = actor.get("role") if with_role else None
        if role is None and (agency is None or person is None):
            if person is not None:
                return t.identified("Practitioner", t.PERSON, person)
            if agency is not None:
                return t.identified("Organization", t.AGENCY, agency)
            return None
        resource: Json = {"resourceType": "PractitionerRole"}
        if person is not None:
            resource["practitioner"] = t.identified("Practitioner", t.PERSON, person)
        if agency is not None:
            resource["organization"] = t.identified("Organization", t.AGENCY, agency)
        if role is not None:
            resource["code"] = [t.concept(t.ROLE, role, "role")]
        return self.add(("actor", agency, person, role), resource)

    def attach(self, resource: Json) -> Json:
        """``resource`` with the contained list, if anything was contained."""
        if self.resources:
            resource["contained"] = self.resources
        return resource
