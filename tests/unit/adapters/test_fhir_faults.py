"""pydantic's errors about FHIR resources, in Spanish, and the common ones in plain English."""

from __future__ import annotations

import pytest
from fhir.resources.patient import Patient

from adapters.fhir_faults import in_english, in_spanish


def faults(resource: dict[str, object]) -> list[str]:
    with pytest.raises(ValueError) as raised:
        Patient.model_validate({"resourceType": "Patient", **resource})
    return [in_spanish(error) for error in raised.value.errors()]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("resource", "spanish"),
    [
        ({"birthDate": "2015-02-31"}, "debe ser una fecha válida (ese día no existe en ese mes)"),
        ({"foo": 1}, "este elemento no existe en el recurso"),
        ({"name": "Ana"}, "debe ser una lista [...]"),
        ({"active": "quizá"}, "debe ser verdadero o falso (true/false)"),
        ({"multipleBirthInteger": "x"}, "debe ser un número entero"),
        ({"birthDate": "15/03/2009"}, "debe ser una fecha FHIR (AAAA, AAAA-MM o AAAA-MM-DD)"),
    ],
)
def test_common_faults_read_in_spanish(resource: dict[str, object], spanish: str) -> None:
    assert faults(resource) == [spanish]


def test_an_unlisted_fault_is_said_in_spanish_and_keeps_pydantics_words_in_english() -> None:
    error = {"type": "something_new", "msg": "Input is odd"}
    assert in_spanish(error) == "no es válido (el detalle está en el texto en inglés)"
    assert in_english(error) == "Input is odd"


def test_a_missing_time_zone_is_said() -> None:
    error = {"type": "value_error", "msg": "Value error, DateTime must be timezone aware."}
    assert in_spanish(error) == "debe indicar la zona horaria"


def test_a_value_error_the_table_does_not_know_keeps_the_models_words() -> None:
    error = {"type": "value_error", "msg": "Value error, something odd"}
    assert in_spanish(error) == "valor no válido (el detalle está en el texto en inglés)"
    assert in_english(error) == "Value error, something odd"


def test_a_template_missing_its_context_still_reads() -> None:
    assert in_spanish({"type": "literal_error", "msg": "x"}) == "debe ser uno de estos valores"


@pytest.mark.parametrize(
    ("resource", "english"),
    [
        (
            {"birthDate": "2015-02-31"},
            "must be a valid date (that day does not exist in that month)",
        ),
        ({"birthDate": "2015-13-01"}, "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
        ({"birthDate": "15/03/2009"}, "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"),
        ({"foo": 1}, "Extra inputs are not permitted"),  # pydantic's own words read well
    ],
)
def test_date_faults_read_in_plain_english(resource: dict[str, object], english: str) -> None:
    with pytest.raises(ValueError) as raised:
        Patient.model_validate({"resourceType": "Patient", **resource})
    assert [in_english(e) for e in raised.value.errors()] == [english]  # type: ignore[attr-defined]


def test_a_date_and_time_fault_reads_in_plain_english() -> None:
    regex = {
        "type": "value_error",
        "msg": "Value error, DateTime value string does not match spec regex.",
    }
    assert in_english(regex) == "must be a FHIR dateTime (YYYY-MM-DD, or with a time and time zone)"
    no_day = {
        "type": "datetime_from_date_parsing",
        "msg": "Input should be a valid datetime or date, day value is outside expected range",
        "ctx": {"error": "day value is outside expected range"},
    }
    assert in_english(no_day) == (
        "must be a valid date and time (that day does not exist in that month)"
    )
