"""Primero's option codes and the shared codes they become: the documented code map.

The Primero side is what a stock Primero v2 instance ships (``db/lookups/lookups.rb`` and the
``option_strings_text`` of ``db/configuration/forms/case/*.rb`` in primeroIMS/primero). Each
table maps a Primero code to a shared code (``case-record/1``); the first Primero code listed
for a shared code is the one :meth:`PrimeroAdapter.encode` writes back.

Deployments add and rename options. Two things keep that cheap: a value that is already a
shared code is accepted as it is (a Mexican instance that configured ``dif_cas`` as a care
arrangement needs no table), and :class:`~adapters.primero.PrimeroAdapter` takes extra
entries per field (``codes={"owned_by_agency_id": {"dif-tapachula": "mx.chp.tapachula.dif"}}``)
that win over these.

A table value ``""`` marks a Primero code with no shared counterpart: the value is left out
and nothing is reported. Where several Primero codes fold into one shared code (``rape`` and
``sexual_abuse_violence`` are both ``sexual_violence``) the round trip Primero → shared →
Primero writes the first one.
"""

from __future__ import annotations

from collections.abc import Mapping

# lookup-country ids (English names in snake case) → ISO 3166-1 alpha-2.
_COUNTRY_TABLE = """
afghanistan AF albania AL algeria DZ andorra AD angola AO antigua_and_barbuda AG argentina AR
armenia AM australia AU austria AT azerbaijan AZ bahamas BS bahrain BH bangladesh BD barbados BB
belarus BY belgium BE belize BZ benin BJ bhutan BT bolivia BO bosnia_and_herzegovina BA
botswana BW brazil BR brunei BN bulgaria BG burkina_faso BF burundi BI cabo_verde CV cambodia KH
cameroon CM canada CA central_african_republic CF chad TD chile CL china CN colombia CO
comoros KM congo CG drc CD costa_rica CR cote_divoire CI croatia HR cuba CU cyprus CY
czech_republic CZ denmark DK djibouti DJ dominica DM dominican_republic DO ecuador EC egypt EG
el_salvador SV equatorial_guinea GQ eritrea ER estonia EE ethiopia ET fiji FJ finland FI
france FR gabon GA gambia GM georgia GE germany DE ghana GH greece GR grenada GD guatemala GT
guinea GN guinea_bissau GW guyana GY haiti HT honduras HN hungary HU iceland IS india IN
indonesia ID iran IR iraq IQ ireland IE israel IL italy IT jamaica JM japan JP jordan JO
kazakhstan KZ kenya KE kiribati KI kosovo XK kuwait KW kyrgyzstan KG laos LA latvia LV
lebanon LB lesotho LS liberia LR libya LY liechtenstein LI lithuania LT luxembourg LU
macedonia MK madagascar MG malawi MW malaysia MY maldives MV mali ML malta MT
marshall_islands MH mauritania MR mauritius MU mexico MX micronesia FM moldova MD monaco MC
mongolia MN montenegro ME morocco MA mozambique MZ myanmar MM namibia NA nauru NR nepal NP
netherlands NL new_zealand NZ nicaragua NI niger NE nigeria NG north_korea KP norway NO oman OM
pakistan PK palau PW palestine PS panama PA papua_new_guinea PG paraguay PY peru PE
philippines PH poland PL portugal PT qatar QA romania RO russia RU rwanda RW
st_kitts_and_nevis KN st_lucia LC st_vincent_and_the_grenadines VC samoa WS san_marino SM
sao_tome_and_principe ST saudi_arabia SA senegal SN serbia RS seychelles SC sierra_leone SL
singapore SG slovakia SK slovenia SI solomon_islands SB somalia SO south_africa ZA
south_korea KR south_sudan SS spain ES sri_lanka LK sudan SD suriname SR swaziland SZ sweden SE
switzerland CH syria SY taiwan TW tajikistan TJ tanzania TZ thailand TH timor_leste TL togo TG
tonga TO trinidad_and_tobago TT tunisia TN turkey TR turkmenistan TM tuvalu TV uganda UG
ukraine UA united_arab_emirates AE uk GB usa US uruguay UY uzbekistan UZ vanuatu VU vatican VA
venezuela VE vietnam VN yemen YE zambia ZM zimbabwe ZW stateless XX unknown XX
"""


def _pairs(table: str) -> dict[str, str]:
    words = table.split()
    return dict(zip(words[0::2], words[1::2], strict=True))


COUNTRY = _pairs(_COUNTRY_TABLE)

# lookup-language is left to each deployment (``language1`` …); these are the names the
# Mexican and Central American instances use, as ISO 639 codes.
LANGUAGE = {
    "spanish": "es",
    "english": "en",
    "french": "fr",
    "portuguese": "pt",
    "haitian_creole": "ht",
    "creole": "ht",
    "kiche": "quc",
    "k_iche": "quc",
    "mam": "mam",
    "qeqchi": "kek",
    "q_eqchi": "kek",
    "kaqchikel": "cak",
    "qanjobal": "kjb",
    "chuj": "cac",
    "garifuna": "cab",
    "miskito": "miq",
    "lenca": "len",
    "nahuatl": "nah",
    "tsotsil": "tzo",
    "tseltal": "tzh",
    "wayuu": "guc",
    "arabic": "ar",
    "russian": "ru",
    "hindi": "hi",
    "chinese": "zh",
}

SEX = {"female": "female", "male": "male", "intersex": "intersex", "unknown": "unknown"}

# lookup-case-status. ``duplicate`` closes the case with closure reason ``duplicate``.
CASE_STATUS = {
    "open": "open",
    "closed": "closed",
    "transferred": "transferred",
    "duplicate": "closed",
}

# lookup-workflow → LGDNNA art. 123 stages.
WORKFLOW = {
    "new": "identification",
    "reopened": "identification",
    "assessment": "assessment",
    "case_plan": "case_plan",
    "service_provision": "implementation",
    "services_implemented": "follow_up",
    "closed": "closure",
}

RISK_LEVEL = {"low": "low", "medium": "medium", "high": "high"}

# protection_status (lookup-protection-status) and unaccompanied_separated_status.
ACCOMPANIMENT = {
    "unaccompanied": "unaccompanied",
    "separated": "separated",
    "unaccompanied_minor": "unaccompanied",
    "separated_child": "separated",
    "no": "accompanied",
    "accompanied": "accompanied",
    "unknown": "unknown",
    "other_vulnerable_child": "",  # not about accompaniment: left out
}

# lookup-protection-concerns.
PROTECTION_CONCERN = {
    "physical_abuse_violence": "physical_abuse",
    "sexual_abuse_violence": "sexual_violence",
    "rape": "sexual_violence",
    "emotional_or_psychological": "psychological_abuse",
    "neglect": "neglect",
    "abandonment": "neglect",
    "child_labour": "child_labour",
    "hazardous_work": "child_labour",
    "sexual_exploitation": "sexual_exploitation",
    "slavery_sale_abduction": "trafficking",
    "associated_with_armed": "criminal_recruitment",
    "deprived_of_liberty": "deprivation_of_liberty",
    "serious_medical_condition": "serious_health_condition",
    "functional_difficulty_seeing": "disability",
    "functional_difficulty_hearing": "disability",
    "functional_difficulty_walking": "disability",
    "functional_difficulty_remembering": "disability",
    "difficulty_with_self_care": "disability",
    "difficulty_communicating": "disability",
    "unaccompanied": "unaccompanied_or_separated",
    "separated": "unaccompanied_or_separated",
    "psychosocial_distress": "psychosocial_distress",
    "mental_disorder": "psychosocial_distress",
    "substance_abuse": "substance_use",
    "belongs_to_marginalised": "discrimination",
    "lack_of_documentation_birth_registration": "lack_of_documents",
    "child_marriage": "child_union_marriage",
    "female_genital_mutilation_fgm": "gender_based_violence",
    "pregnancy_child_parent": "adolescent_pregnancy",
    "other": "other",
    "orphan": "other",
    "in_conflict_with_the_law": "other",
    "denial_of_resources_opportunities_or_services": "other",
    "highly_vulnerable_care": "other",
    "child_survivor_of_explosive": "other",
}

# lookup-family-relationship → relationship, and the sex the Primero word implies.
RELATIONSHIP = {
    "mother": "mother",
    "father": "father",
    "aunt": "aunt_uncle",
    "uncle": "aunt_uncle",
    "grandmother": "grandparent",
    "grandfather": "grandparent",
    "sister": "sibling",
    "brother": "sibling",
    "wife": "partner",
    "husband": "partner",
    "partner": "partner",
    "child": "own_child",
    "other_family": "other_relative",
    "other_nonfamily": "other",
}
RELATIONSHIP_SEX = {
    "mother": "female",
    "aunt": "female",
    "grandmother": "female",
    "sister": "female",
    "wife": "female",
    "father": "male",
    "uncle": "male",
    "grandfather": "male",
    "brother": "male",
    "husband": "male",
}
# Encoding picks the Primero word by the related person's sex where the word is gendered.
RELATIONSHIP_BY_SEX = {
    ("aunt_uncle", "female"): "aunt",
    ("aunt_uncle", "male"): "uncle",
    ("grandparent", "female"): "grandmother",
    ("grandparent", "male"): "grandfather",
    ("sibling", "female"): "sister",
    ("sibling", "male"): "brother",
    ("partner", "female"): "wife",
    ("partner", "male"): "husband",
}

# relation_is_alive.
ALIVE = {"alive": "alive", "dead": "deceased", "unknown": "unknown"}

# lookup-care-arrangements-type → placement type. Residential care in Mexico is a Centro de
# Asistencia Social; a stock instance cannot tell a DIF one from a private one, so it is
# ``dif_cas`` unless the deployment maps it otherwise.
CARE_ARRANGEMENT = {
    "parent_s": "parental_care",
    "step_parent": "parental_care",
    "kinship_care_extended_family": "kinship_care",
    "adult_sibling": "kinship_care",
    "customary_caregiver_s": "kinship_care",
    "foster_care": "foster_family",
    "residential_care": "dif_cas",
    "independent_living": "supervised_independent_living",
    "other": "other",
    "kafala": "other",
    "child_headed_household": "other",
    "unrelated_adult": "other",
    "no_care_arrangement": "other",
}

# lookup-service-type → referral service type.
SERVICE_TYPE = {
    "medical": "health",
    "nutrition": "health",
    "sexual_and_reproductive_health": "health",
    "specialized_mhpss_services": "mental_health",
    "basic_psychosocial_support": "psychosocial",
    "focuses_non_specialized_mhpss_care": "psychosocial",
    "education_formal": "education",
    "non_formal_education": "education",
    "legal_support": "legal_aid",
    "security_e_g_safe_shelter": "shelter",
    "shelter": "shelter",
    "alternative_care": "shelter",
    "family_tracing_and_reunification": "family_tracing",
    "documentation": "documentation",
    "non_food_items": "material_assistance",
    "food": "material_assistance",
    "cash_assistance": "material_assistance",
    "wash": "material_assistance",
    "other_please_specify": "other",
    "livelihoods": "other",
    "services_for_children_with_disabilities": "other",
    "durable_solution_in_coordination_with_unhcr": "other",
    "relocation": "other",
}

# service_response_timeframe → urgency.
SERVICE_TIMEFRAME = {
    "1_hour": "urgent",
    "3_hours": "urgent",
    "1_day": "urgent",
    "3_days": "routine",
}

# closure_reason (closure_form.rb).
CLOSURE_REASON = {
    "death_of_child": "death",
    "not_seen_during_verification": "lost_contact",
    "repatriated": "assisted_return_completed",
    "transferred": "transferred",
    "other": "other",
    "formal_closing": "other",
}

# best_interest_recommendation (best_interest.rb). ``reunification`` does not say where; a
# DIF instance reunifies in Mexico unless it maps the code to the third-country solution.
BEST_INTEREST_RECOMMENDATION = {
    "local_integration": "local_integration",
    "maintain_change_current_arrangements": "maintain_current_arrangement",
    "repatriation": "assisted_return",
    "resettlement_to_3rd_country": "resettlement",
    "reunification": "family_reunification_mexico",
    "medical": "",  # no shared solution: the proposed support text is kept
}

# Every table by the Primero field it decodes. Adapter options extend these by field name.
BY_FIELD: Mapping[str, Mapping[str, str]] = {
    "sex": SEX,
    "nationality": COUNTRY,
    "country_of_birth": COUNTRY,
    "language": LANGUAGE,
    "status": CASE_STATUS,
    "workflow": WORKFLOW,
    "risk_level": RISK_LEVEL,
    "protection_status": ACCOMPANIMENT,
    "unaccompanied_separated_status": ACCOMPANIMENT,
    "protection_concerns": PROTECTION_CONCERN,
    "relation": RELATIONSHIP,
    "relation_sex": RELATIONSHIP_SEX,
    "relation_is_alive": ALIVE,
    "relation_nationality": COUNTRY,
    "relation_language": LANGUAGE,
    "care_arrangements_type": CARE_ARRANGEMENT,
    "service_type": SERVICE_TYPE,
    "service_response_timeframe": SERVICE_TIMEFRAME,
    "closure_reason": CLOSURE_REASON,
    "best_interest_recommendation": BEST_INTEREST_RECOMMENDATION,
}


def reverse(table: Mapping[str, str]) -> dict[str, str]:
    """Shared code → the first Primero code that maps to it."""
    out: dict[str, str] = {}
    for primero, shared in table.items():
        if shared:
            out.setdefault(shared, primero)
    return out
