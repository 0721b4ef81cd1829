"""The agency registry as the hub's services use it: validation, secrets, keys, disabling, audit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import audit_log, db
from exchange.agencies import (
    Agency,
    AgencyError,
    AgencyKey,
    DuplicateAgency,
    InvalidAgency,
    UnknownAgency,
    active_keys,
    add_key,
    describe,
    disable_agency,
    enable_agency,
    list_agencies,
    register_agency,
    retire_key,
    rotate_key,
    set_kind,
    set_webhook,
)
from exchange.agency_keys import public_jwk
from exchange.auth import AccessToken, find_token, store_token, utcnow

STATE = {"level": "state", "jurisdiction": "07"}


@contextmanager
def admin(app: Flask) -> Iterator[Session]:
    with app.app_context(), db.database(app).sessions.begin() as session:
        yield session


def new_jwk() -> dict[str, Any]:
    return public_jwk(OKPKey.generate_key("Ed25519"))


def add(app: Flask, agency_id: str = "mx.chp.dif", **fields: Any) -> Any:
    values: dict[str, Any] = {"name": "DIF Chiapas", **STATE, "scopes": ["records:write"]}
    values.update(fields)
    with admin(app) as session:
        return register_agency(session, agency_id, **values)


def count(app: Flask, model: type) -> int:
    with db.database(app).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every record_event call, passed on to the real audit log (which checks the fields)."""
    calls: list[dict[str, Any]] = []
    real = audit_log.record_event

    def spy(session: Session, **fields: Any) -> Any:
        calls.append(fields)
        return real(session, **fields)

    monkeypatch.setattr(audit_log, "record_event", spy)
    return calls


def test_registration_shows_the_secret_once_and_stores_a_hash(app: Flask) -> None:
    jwk = new_jwk()
    result = add(app, public_jwk=jwk, with_secret=True, scopes=["records:write", "records:read"])
    assert result.to_json() == {
        "agency_id": "mx.chp.dif",
        "client_id": "mx.chp.dif",
        "client_secret": result.client_secret,
        "key_id": jwk["kid"],
    }
    assert result.client_secret and len(result.client_secret) >= 43  # 256 bits
    with db.database(app).sessions() as session:
        agency = session.get(Agency, "mx.chp.dif")
        assert agency is not None
        assert agency.client_secret_hash and result.client_secret not in agency.client_secret_hash
        assert agency.client_secret_hash.startswith("sha256:")
        assert agency.check_client_secret(result.client_secret)
        assert not agency.check_client_secret(result.client_secret + "x")
        assert agency.scopes == ["records:write", "records:read"]
        assert active_keys(agency) == [jwk]
        assert "client_secret" not in str(describe(agency))


def test_registration_without_secret_has_none(app: Flask) -> None:
    result = add(app, public_jwk=new_jwk())
    assert "client_secret" not in result.to_json()
    with db.database(app).sessions() as session:
        agency = session.get(Agency, "mx.chp.dif")
        assert agency is not None and agency.client_secret_hash is None
        assert not agency.check_client_secret("")


BAD_IDS = [
    "MX.chp.dif",
    "mxchpdif",
    "mx..dif",
    "mx.chp.",
    ".mx.chp",
    "-mx.chp",
    "mx.chp dif",
    "mx." + "a" * 100,
    "mx_chp.dif",
]
MISMATCHED = [
    ("federal", "07"),
    ("state", "00"),
    ("state", "33"),
    ("state", "7"),
    ("state", "07089"),
    ("municipal", "07"),
    ("municipal", "07000"),
    ("municipal", "33001"),
    ("municipal", "0708a"),
    ("national", "00"),
]
VALID = [
    ("mx.fed.pfpnna", "federal", "00"),
    ("mx.bcn.dif", "state", "02"),
    ("mx.yuc.dif", "state", "32"),
    ("mx.chp.tapachula.dif", "municipal", "07089"),
]


def test_bad_ids_are_refused(app: Flask) -> None:
    for agency_id in BAD_IDS:
        with pytest.raises(InvalidAgency) as caught:
            add(app, agency_id)
        assert [e.field for e in caught.value.errors] == ["id"], agency_id
    assert count(app, Agency) == 0


def test_level_and_jurisdiction_must_agree(app: Flask) -> None:
    for level, jurisdiction in MISMATCHED:
        with pytest.raises(InvalidAgency) as caught:
            add(app, level=level, jurisdiction=jurisdiction)
        error = caught.value.errors[0]
        assert error.field in ("level", "jurisdiction"), (level, jurisdiction)
        assert error.message("es") != error.message("en")
    assert count(app, Agency) == 0


def test_valid_levels_and_jurisdictions(app: Flask) -> None:
    for agency_id, level, jurisdiction in VALID:
        add(app, agency_id, level=level, jurisdiction=jurisdiction, with_secret=True)
    with db.database(app).sessions() as session:
        assert [a.id for a in list_agencies(session)] == sorted(v[0] for v in VALID)


def test_every_problem_is_reported_at_once_in_both_languages(app: Flask) -> None:
    with pytest.raises(InvalidAgency) as caught:
        add(
            app,
            "Bad",
            name=" ",
            level="state",
            jurisdiction="99",
            scopes=["records:write", "everything"],
            webhook_url="ftp://example",
            require_signature=True,
        )
    fields = [error.field for error in caught.value.errors]
    assert fields == ["id", "name", "jurisdiction", "scopes", "webhook_url", "require_signature"]
    assert "everything" in caught.value.message("es") and "everything" in caught.value.message("en")
    assert "Alcances desconocidos" in caught.value.message("es")
    assert "Unknown scopes" in caught.value.message("en")


def test_at_least_one_scope(app: Flask) -> None:
    with pytest.raises(InvalidAgency) as caught:
        add(app, scopes=[])
    assert caught.value.errors[0].field == "scopes"


def test_duplicate_agency_and_duplicate_key_are_refused(app: Flask) -> None:
    jwk = new_jwk()
    add(app, public_jwk=jwk)
    with pytest.raises(DuplicateAgency):
        add(app, public_jwk=new_jwk())
    with pytest.raises(DuplicateAgency):
        add(app, "mx.chp.tapachula.dif", public_jwk=jwk)
    assert count(app, Agency) == 1
    assert count(app, AgencyKey) == 1


def test_only_ed25519_public_keys_are_accepted(app: Flask) -> None:
    private = OKPKey.generate_key("Ed25519").as_dict(private=True)
    x25519 = OKPKey.generate_key("X25519").as_dict(private=False)
    ec = ECKey.generate_key("P-256").as_dict(private=False)
    for jwk in (private, x25519, ec, {"kty": "OKP", "crv": "Ed25519", "x": "short"}):
        with pytest.raises(InvalidAgency):
            add(app, public_jwk=jwk)
    assert count(app, Agency) == 0


def test_the_kid_is_the_thumbprint_whatever_the_file_says(app: Flask) -> None:
    key = OKPKey.generate_key("Ed25519")
    jwk = {**public_jwk(key), "kid": "chosen-by-someone"}
    assert add(app, public_jwk=jwk).key_id == key.thumbprint()


def test_rotation_keeps_old_keys_for_the_grace_period(app: Flask) -> None:
    first = new_jwk()
    add(app, public_jwk=first)
    second = new_jwk()
    with admin(app) as session:
        rotated = rotate_key(session, "mx.chp.dif", second, grace=timedelta(hours=2))
    assert rotated.key_id == second["kid"]
    assert list(rotated.retiring) == [first["kid"]]
    with db.database(app).sessions() as session:
        agency = session.get(Agency, "mx.chp.dif")
        assert agency is not None
        assert active_keys(agency) == [second, first]  # newest first
        later = utcnow() + timedelta(hours=3)
        assert active_keys(agency, later) == [second]
    # A later rotation does not extend an earlier key's grace.
    third = new_jwk()
    with admin(app) as session:
        rotated = rotate_key(session, "mx.chp.dif", third, grace=timedelta(days=30))
    assert rotated.retiring[first["kid"]] < utcnow() + timedelta(hours=2, minutes=1)
    assert rotated.retiring[second["kid"]] > utcnow() + timedelta(days=29)


def test_rotation_without_grace_and_retirement_are_immediate(app: Flask) -> None:
    first, second, third = new_jwk(), new_jwk(), new_jwk()
    add(app, public_jwk=first)
    with admin(app) as session:
        rotate_key(session, "mx.chp.dif", second, grace=timedelta(0))
        kid = add_key(session, "mx.chp.dif", third)
    assert kid == third["kid"]
    with admin(app) as session:
        agency = session.get(Agency, "mx.chp.dif")
        assert agency is not None
        assert {k["kid"] for k in active_keys(agency)} == {second["kid"], third["kid"]}
        retire_key(session, "mx.chp.dif", second["kid"])
        assert active_keys(agency) == [third]
    with admin(app) as session, pytest.raises(AgencyError):
        retire_key(session, "mx.other.dif", third["kid"])


def test_disabling_ends_tokens_at_once_and_enabling_does_not_revive_them(app: Flask) -> None:
    add(app, with_secret=True)
    with admin(app) as session:
        old, _row = store_token(
            session, client_id="mx.chp.dif", agency_id="mx.chp.dif", scopes=["records:write"]
        )
    with admin(app) as session:
        assert find_token(session, old) is not None
        disable_agency(session, "mx.chp.dif")
    with admin(app) as session:
        assert find_token(session, old) is None
        assert session.scalars(select(AccessToken)).one().revoked
        enable_agency(session, "mx.chp.dif")
    with admin(app) as session:
        token = find_token(session, old)
        assert token is not None and token.is_revoked()  # validation still refuses it
        new, _row = store_token(
            session, client_id="mx.chp.dif", agency_id="mx.chp.dif", scopes=["records:write"]
        )
    with admin(app) as session:
        token = find_token(session, new)
        assert token is not None and not token.is_revoked()


def test_unknown_agency(app: Flask) -> None:
    actions = [
        lambda s: disable_agency(s, "mx.nadie.dif"),
        lambda s: enable_agency(s, "mx.nadie.dif"),
        lambda s: rotate_key(s, "mx.nadie.dif", new_jwk()),
        lambda s: add_key(s, "mx.nadie.dif", new_jwk()),
        lambda s: set_webhook(s, "mx.nadie.dif", "https://example.org/hook"),
    ]
    for action in actions:
        with admin(app) as session, pytest.raises(UnknownAgency) as caught:
            action(session)
        assert "mx.nadie.dif" in caught.value.message("es")
    assert count(app, AgencyKey) == 0


def test_webhook(app: Flask) -> None:
    add(app, with_secret=True, webhook_url="https://dif.chiapas.example/puente")
    with admin(app) as session:
        with pytest.raises(InvalidAgency):
            set_webhook(session, "mx.chp.dif", "javascript:alert(1)")
        set_webhook(session, "mx.chp.dif", "http://10.0.0.5:8080/notify")
    with db.database(app).sessions() as session:
        assert session.get(Agency, "mx.chp.dif").webhook_url == "http://10.0.0.5:8080/notify"  # type: ignore[union-attr]
    with admin(app) as session:
        set_webhook(session, "mx.chp.dif", None)
    with db.database(app).sessions() as session:
        assert session.get(Agency, "mx.chp.dif").webhook_url is None  # type: ignore[union-attr]


def test_every_change_is_audited(app: Flask, audited: list[dict[str, Any]]) -> None:
    first, second = new_jwk(), new_jwk()
    add(app, public_jwk=first, with_secret=True)
    with admin(app) as session:
        rotate_key(session, "mx.chp.dif", second)
        retire_key(session, "mx.chp.dif", first["kid"])
        set_webhook(session, "mx.chp.dif", "https://example.org/hook")
        disable_agency(session, "mx.chp.dif")
        enable_agency(session, "mx.chp.dif")
    assert [(c["action"], c["detail"]) for c in audited] == [
        ("agency.registered", "registered.mx.chp.dif"),
        ("agency.key_added", "key_added.mx.chp.dif"),
        ("agency.key_rotated", "key_rotated.mx.chp.dif"),
        ("agency.key_revoked", "key_retired.mx.chp.dif"),
        ("agency.updated", "webhook_changed.mx.chp.dif"),
        ("agency.suspended", "disabled.mx.chp.dif"),
        ("agency.updated", "enabled.mx.chp.dif"),
    ]
    assert all(c["outcome"] == "success" and c["actor_role"] == "administrator" for c in audited)
    # Key changes name the key (oversight must tell which key was retired), nothing else does.
    assert [(c.get("object_type"), c.get("object_id")) for c in audited[1:4]] == [
        ("key", f"kid:{first['kid']}"),
        ("key", f"kid:{second['kid']}"),
        ("key", f"kid:{first['kid']}"),
    ]
    assert not any("object_type" in c for c in audited[:1] + audited[4:])
    # No secret, key material or name in any entry.
    assert "DIF Chiapas" not in str(audited)
    with db.database(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(audit_log.AuditEntry)) == len(
            audited
        )


def test_a_refused_registration_leaves_no_audit_entry(
    app: Flask, audited: list[dict[str, Any]]
) -> None:
    add(app)
    with pytest.raises(DuplicateAgency):
        add(app)
    with db.database(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(audit_log.AuditEntry)) == 1


def test_kind_defaults_by_level_and_is_validated(app: Flask) -> None:
    add(app, "mx.chp.dif")
    add(app, "mx.chp.tapachula.dif", level="municipal", jurisdiction="07089")
    add(app, "mx.fed.inm", level="federal", jurisdiction="00")  # too diverse to guess
    add(app, "mx.fed.cndh", level="federal", jurisdiction="00", kind="oversight")
    add(app, "gt.consulado", kind="foreign_authority", country=" gt ")
    with db.database(app).sessions() as session:
        shown = {a.id: (a.kind, a.country) for a in list_agencies(session)}
        assert describe(session.get(Agency, "gt.consulado"))["country"] == "GT"  # type: ignore[arg-type]
    assert shown == {
        "mx.chp.dif": ("state_dif", None),
        "mx.chp.tapachula.dif": ("municipal_dif", None),
        "mx.fed.inm": ("other", None),
        "mx.fed.cndh": ("oversight", None),
        "gt.consulado": ("foreign_authority", "GT"),
    }
    for fields, field in (
        ({"kind": "consulate"}, "kind"),
        ({"kind": "foreign_authority"}, "country"),
        ({"kind": "foreign_authority", "country": "GTM"}, "country"),
        ({"kind": "foreign_authority", "country": "MX"}, "country"),
        ({"kind": "state_dif", "country": "GT"}, "country"),
    ):
        with pytest.raises(InvalidAgency) as refused:
            add(app, "mx.otra.dif", **fields)
        assert [error.field for error in refused.value.errors] == [field], fields
        assert refused.value.message_es and refused.value.message_en


def test_set_kind_is_audited_and_validated(app: Flask, audited: list[dict[str, Any]]) -> None:
    add(app, "mx.fed.inm", level="federal", jurisdiction="00")
    with admin(app) as session:
        set_kind(session, "mx.fed.inm", "immigration_enforcement")
    with pytest.raises(InvalidAgency), admin(app) as session:
        set_kind(session, "mx.fed.inm", "foreign_authority")
    with pytest.raises(UnknownAgency), admin(app) as session:
        set_kind(session, "mx.nadie.inm", "oversight")
    with db.database(app).sessions() as session:
        assert session.get(Agency, "mx.fed.inm").kind == "immigration_enforcement"  # type: ignore[union-attr]
    assert [(c["action"], c["detail"]) for c in audited] == [
        ("agency.registered", "registered.mx.fed.inm"),
        ("agency.updated", "kind_changed.mx.fed.inm"),
    ]
