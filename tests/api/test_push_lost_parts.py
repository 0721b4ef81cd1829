"""A new version that lacks parts the version it replaced had is stored (it is valid), and the
push's answer names them (``lost_parts``): single pushes, their idempotent replays, and each
line of a bulk push. A first version, or one that keeps every part, answers no such member."""

from __future__ import annotations

import copy

import pytest
from flask import Flask
from flask.testing import FlaskClient
from records_support import (
    AgencyClient,
    add_agency,
    changed,
    envelope,
    example,
    push,
    push_bulk,
)

DIF = "mx.chp.dif"


@pytest.fixture
def dif(app: Flask) -> AgencyClient:
    return add_agency(app, DIF)


def without_placements_and_relatives() -> dict:
    data = copy.deepcopy(example("typical"))
    del data["placements"], data["related_persons"]
    return data


def test_a_single_push_names_the_parts_its_new_version_lacks(
    client: FlaskClient, dif: AgencyClient
) -> None:
    first = push(client, dif, envelope("LP-1", example("typical")))
    assert first.status_code == 201 and "lost_parts" not in first.get_json()

    second = push(
        client,
        dif,
        envelope("LP-1", without_placements_and_relatives()),
        **{"Idempotency-Key": "lost-parts-1"},
    )
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["version"] == 2
    assert second.get_json()["lost_parts"] == ["/placements", "/related_persons"]

    replay = push(
        client,
        dif,
        envelope("LP-1", without_placements_and_relatives()),
        **{"Idempotency-Key": "lost-parts-1"},
    )
    assert replay.get_json()["lost_parts"] == ["/placements", "/related_persons"]


def test_a_change_that_keeps_every_part_answers_none(
    client: FlaskClient, dif: AgencyClient
) -> None:
    push(client, dif, envelope("LP-2", example("typical")))
    second = push(client, dif, envelope("LP-2", changed(example("typical"), "otra nota")))
    assert second.status_code == 201 and second.get_json()["version"] == 2
    assert "lost_parts" not in second.get_json()


def test_each_bulk_line_names_the_parts_its_new_version_lacks(
    client: FlaskClient, dif: AgencyClient
) -> None:
    _, first = push_bulk(client, dif, [envelope(f"LPB-{n}", example("typical")) for n in (1, 2)])
    assert [line.get("lost_parts") for line in first] == [None, None]

    fewer = copy.deepcopy(example("typical"))
    fewer["placements"] = fewer["placements"][:1]  # one of two shelters
    _, second = push_bulk(
        client,
        dif,
        [
            envelope("LPB-1", without_placements_and_relatives()),
            envelope("LPB-2", fewer),
            envelope("LPB-3", example("typical")),  # a new record: nothing to compare
        ],
    )
    assert [line["status"] for line in second] == ["stored"] * 3
    assert second[0]["lost_parts"] == ["/placements", "/related_persons"]
    assert second[1]["lost_parts"] == ["/placements/*"]
    assert "lost_parts" not in second[2]
