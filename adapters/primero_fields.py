"""Which Primero case fields the adapter reads, which it knows and leaves, and the code book.

Field names are those of a stock Primero v2 case (``db/configuration/forms/case/*.rb`` in
primeroIMS/primero). A field in none of these sets is *unknown*: a deployment's own field, or
a typo. Unknown fields are reported as warnings and the case is imported without them — every
Primero instance adds fields of its own, so rejecting cases for them would reject whole
exports. Fields Puente *knows but does not carry* (religion, marital status, the consent tick
boxes…) are left out silently: the shared record has no place for them, by design.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters import primero_codes as codes
from schemas.registry import SchemaRegistry

CASE_FIELDS = frozenset(
    """
    id case_id unique_identifier case_id_display status transfer_status registration_date
    workflow owned_by owned_by_agency_id last_updated_at
    name_first name_middle name_last name_last_second name_nickname sex age date_of_birth
    estimated
    nationality country_of_birth place_of_birth ethnicity language
    location_current address_current telephone_current
    unhcr_individual_no unhcr_id_no national_id_no other_id_type other_id_no cpims_id
    other_agency_id other_agency_name
    protection_status unaccompanied_separated_status urgent_protection_concern risk_level
    protection_concerns protection_concerns_other
    family_details_section care_arrangements_section services_section
    closure_reason closure_reason_other date_closure
    best_interest_recommendation best_interest_recommendation_date
    best_interest_proposed_support disclosure_other_orgs
    """.split()
)

SUBFORM_FIELDS: Mapping[str, frozenset[str]] = {
    "family_details_section": frozenset(
        """
        unique_id relation_name relation_name_last relation_name_last_second relation
        relation_is_caregiver relation_nickname
        relation_is_alive relation_death_details relation_age relation_date_of_birth
        relation_language relation_religion relation_ethnicity relation_nationality
        relation_address_current relation_location_current relation_telephone
        relation_other_family
        """.split()
    ),
    "care_arrangements_section": frozenset(
        """
        unique_id child_caregiver_status child_caregiver_reason_change
        care_arrangements_include_referral_form care_arrangements_type
        care_arrangements_type_other care_arrangements_type_notes care_agency_name
        name_caregiver nickname_caregiver caregiver_age caregiver_dob relationship_caregiver
        care_arrangement_started_date
        """.split()
    ),
    "services_section": frozenset(
        """
        unique_id service_response_type service_type service_response_day_time
        service_response_timeframe service_appointment_date service_implementing_agency
        service_provider service_delivery_location service_implementing_agency_individual
        service_status_referred service_location service_referral_notes service_implemented
        service_implemented_day_time note_on_referral_from_provider
        """.split()
    ),
}

# Standard Primero case data the shared record does not hold, and record bookkeeping.
KNOWN_NOT_CARRIED = frozenset(
    """
    short_id name case_status_reopened marked_for_mobile assessment_due_date ration_card_no
    icrc_ref_no rc_id_no un_no family_number maritial_status
    occupation address_is_permanent religion sub_ethnicity_1 sub_ethnicity_2 address_last
    landmark_last location_last telephone_last country_of_origin displacement_status
    unhcr_protection_code unhcr_needs_codes disability_type disability_special_needs
    disability_communications interview_subject consent_source_other consent_for_services
    consent_reporting consent_for_tracing consent_info_sharing consent_info_sharing_others
    disclosure_deny_details withholding_info_reason withholding_info_other_reason
    unhcr_export_opt_in legitimate_basis current_name_caregiver current_care_arrangements_type
    current_care_arrangement_started_date name_caregiver closure_approved closure_approved_date
    closure_approved_comments approval_status_closure best_interest_report_submitted
    best_interest_date_submitted best_interest_agency_responsible
    best_interest_proposed_support_accepted best_interest_why_support_refused
    best_interest_date_implementation best_interest_implementing_agency
    owned_by_text owned_by_full_name owned_by_groups owned_by_location owned_by_agency_name
    reassigned_tranferred_on assigned_user_names associated_user_names
    associated_user_groups associated_user_agencies database_operator_user_name
    address_registration location_registration created_by created_by_agency created_at
    created_organization previously_owned_by previous_agency module_id reopened_logs
    record_state last_updated_by last_updated_organization posted_at flag_count flagged
    photo photos recorded_audio documents alert_count sync_status not_edited_by_owner
    has_case_plan age_group case_priority case_priority_date registration_date_time
    """.split()
)

_AGENCY_ID = re.compile(r"^[a-z]{2}(\.[a-z0-9_-]{1,40}){1,5}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

# The shared field whose codes a Primero field's value may already be.
_SHARED_ENUM = {
    "sex": "/child/sex",
    "status": "/case/status",
    "workflow": "/case/workflow_stage",
    "risk_level": "/protection_concerns/risk_level",
    "protection_status": "/child/unaccompanied_status",
    "unaccompanied_separated_status": "/child/unaccompanied_status",
    "protection_concerns": "/protection_concerns/concerns/*/code",
    "relation": "/related_persons/*/relationship",
    "relation_is_alive": "/related_persons/*/alive",
    "care_arrangements_type": "/placements/*/type",
    "service_type": "/referrals/*/service_type",
    "service_response_timeframe": "/referrals/*/urgency",
    "closure_reason": "/closure/reason",
    "best_interest_recommendation": "/best_interest/assessments/*/recommendation",
    "other_id_type": "/child/identifiers/*/type",
}
_SHARED_PATTERN = {
    "nationality": _COUNTRY,
    "country_of_birth": _COUNTRY,
    "relation_nationality": _COUNTRY,
    "language": _LANGUAGE,
    "relation_language": _LANGUAGE,
    "agency": _AGENCY_ID,
}
# Primero fields that share one table of the deployment's codes.
_TABLE_OF = {
    "owned_by_agency_id": "agency",
    "service_implementing_agency": "agency",
    "relation_location_current": "location_current",
}
NO_SHARED_CODE = ""
"""A table value meaning: a known Primero code with no shared counterpart (left out)."""


class CodeBook:
    """Primero code → shared code for each field: the deployment's own entries first, then
    :mod:`adapters.primero_codes`, then the value itself when it already is a shared code.

    ``extra`` is keyed by Primero field name, except that every agency field shares the table
    ``agency`` and ``relation_location_current`` shares ``location_current``.
    """

    def __init__(
        self,
        registry: SchemaRegistry,
        extra: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        extra = extra or {}
        self._forward: dict[str, dict[str, str]] = {}
        self._reverse: dict[str, dict[str, str]] = {}
        for table in {*codes.BY_FIELD, *extra}:
            stock = codes.BY_FIELD.get(table, {})
            own = dict(extra.get(table, {}))
            self._forward[table] = {**stock, **own}
            self._reverse[table] = {**codes.reverse(stock), **codes.reverse(own)}
        fields = registry.fields("case-record", 1)
        self._enums = {
            field: frozenset(fields[pointer].labels) for field, pointer in _SHARED_ENUM.items()
        }

    @staticmethod
    def table(field: str) -> str:
        return _TABLE_OF.get(field, field)

    def lookup(self, field: str, value: Any) -> str | None:
        """The shared code, :data:`NO_SHARED_CODE`, or None when the code is unknown."""
        if not isinstance(value, str) or not value:
            return None
        table = self.table(field)
        known = self._forward.get(table, {}).get(value)
        if known is not None:
            return known
        if value in self._enums.get(table, ()):
            return value
        pattern = _SHARED_PATTERN.get(table)
        if pattern is not None and pattern.match(value):
            return value
        return None

    def primero_code(self, field: str, shared: str) -> str:
        """The Primero code to write for ``shared``: the deployment's, the stock one, or the
        shared code itself (which :meth:`lookup` reads back)."""
        return self._reverse.get(self.table(field), {}).get(shared, shared)
