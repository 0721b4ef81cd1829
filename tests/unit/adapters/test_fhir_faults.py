"""pydantic's errors about FHIR resources, in Spanish."""

from __future__ import annotations

import pytest
from fhir.resources.patient import Patient

from adapters.fhir_faults import in_spanish


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


def test_an_unlisted_fault_keeps_pydantics_words_after_a_spanish_lead_in() -> None:
    assert in_spanish({"type": "something_new", "msg": "Input is odd"}) == (
        "no es válido: Input is odd"
    )


def test_a_missing_time_zone_is_said() -> None:
    error = {"type": "value_error", "msg": "Value error, DateTime must be timezone aware."}
    assert in_spanish(error) == "debe indicar la zona horaria"


def test_a_value_error_the_table_does_not_know_keeps_the_models_words() -> None:
    error = {"type": "value_error", "msg": "Value error, something odd"}
    assert in_spanish(error) == "valor no válido (Value error, something odd)"


def test_a_template_missing_its_context_still_reads() -> None:
    assert in_spanish({"type": "literal_error", "msg": "x"}) == "debe ser uno de estos valores"
