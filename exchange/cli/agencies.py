"""``puente agency …``: register agencies, their keys and webhooks, list and disable them,
and say whether their pushes must be signed.

Every command runs in one transaction with its audit entry. Mistakes (a duplicate id, an
unknown agency, a key file that is not an Ed25519 public key) end with a message in Spanish or
English and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.vocabulary import ACTOR_KINDS
from exchange import db
from exchange.agencies import (
    KINDS,
    LEVELS,
    ROTATION_GRACE,
    Agency,
    AgencyError,
    InvalidAgency,
    RetiredKey,
    add_key,
    describe,
    disable_agency,
    enable_agency,
    list_agencies,
    register_agency,
    remove_secret,
    replace_secret,
    retire_key,
    rotate_key,
    set_kind,
    set_require_signature,
    set_scopes,
    set_webhook,
)
from exchange.agency_keys import FolderError, KeyFiles, generate_key_files, load_public_jwk
from exchange.auth import SCOPES, as_utc, utcnow
from exchange.cli import language_option, print_json, print_json_or_say, say, with_hub
from exchange.outbox import dead_while_disabled
from exchange.transports import (
    DeliveryError,
    drop_folder,
    file_drop_root,
    uses_file_drop,
    webhook_url_cautions,
)


def _refusal(error: AgencyError, lang: str) -> click.ClickException:
    if isinstance(error, InvalidAgency):
        return click.ClickException(
            "\n".join(["", *(f"  - {e.message(lang)}" for e in error.errors)])
        )
    return click.ClickException(error.message(lang))


@contextmanager
def _transaction(app: Flask, lang: str) -> Iterator[Session]:
    """One transaction; registry refusals become clean command-line errors."""
    try:
        with db.database(app).sessions.begin() as session:
            yield session
    except AgencyError as error:
        raise _refusal(error, lang) from error
    except IntegrityError as error:
        # Someone registered the same id or key between our check and our commit.
        raise click.ClickException(
            say(lang, "Ya existe (registro simultáneo).", "Already exists (concurrent change).")
        ) from error


def read_public_key(path: Path, lang: str) -> dict[str, Any]:
    """The Ed25519 public JWK in ``path`` (PEM or JWK); a private key file is refused."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        # A bad key file is the operator's mistake like the others: exit 1 (docs/agencies.md).
        raise click.ClickException(
            say(lang, f"No existe el archivo {path}.", f"No such file: {path}.")
        ) from error
    except IsADirectoryError as error:
        raise click.ClickException(
            say(
                lang,
                f"{path} es una carpeta: indique el archivo de la clave pública.",
                f"{path} is a folder: give the public key file.",
            )
        ) from error
    except PermissionError as error:
        raise click.ClickException(
            say(
                lang,
                f"No se puede leer {path}: sin permiso de lectura.",
                f"Cannot read {path}: no permission to read it.",
            )
        ) from error
    except OSError as error:
        reason = error.strerror or error
        raise click.ClickException(
            say(lang, f"No se puede leer {path}: {reason}", f"Cannot read {path}: {reason}")
        ) from error
    looks_private = b"PRIVATE KEY" in data
    if data.lstrip().startswith(b"{"):
        try:
            looks_private = looks_private or "d" in json.loads(data)
        except ValueError:
            pass
    if looks_private:
        raise click.ClickException(
            say(
                lang,
                f"{path} es una clave privada: registre la pública (.pub o .jwk); la privada "
                "no sale del sistema de la agencia.",
                f"{path} is a private key: register the public one (.pub or .jwk); the private "
                "key never leaves the agency's system.",
            )
        )
    try:
        return load_public_jwk(path)
    except ValueError as error:
        raise click.ClickException(
            say(
                lang,
                f"{path} no es una clave pública Ed25519 (PEM o JWK).",
                f"{path} is not an Ed25519 public key (PEM or JWK).",
            )
        ) from error


def _new_key_files(directory: Path, name: str, lang: str) -> KeyFiles:
    try:
        return generate_key_files(directory, name)
    except FileExistsError as error:
        raise click.ClickException(
            say(
                lang,
                f"{error.filename} ya existe: no se sobrescribe.",
                f"{error.filename} already exists: not overwritten.",
            )
        ) from error
    except FolderError as error:
        raise click.ClickException(error.message(lang)) from error


def _remove(files: KeyFiles | None) -> None:
    # The registration failed: key files nobody will use must not linger.
    if files is not None:
        for path in (files.private_key, files.public_key, files.public_jwk):
            path.unlink(missing_ok=True)


def _key_source(
    public_key: Path | None, generate_key: Path | None, name: str, lang: str
) -> tuple[dict[str, Any] | None, KeyFiles | None]:
    if public_key and generate_key:
        raise click.UsageError(
            say(
                lang,
                "Use --public-key o --generate-key, no ambos.",
                "Use --public-key or --generate-key, not both.",
            )
        )
    if public_key:
        return read_public_key(public_key, lang), None
    if generate_key:
        files = _new_key_files(generate_key.resolve(), name, lang)
        return load_public_jwk(files.public_jwk), files
    return None, None


def _with_key_files(answer: dict[str, Any], files: KeyFiles | None) -> dict[str, Any]:
    if files is not None:
        answer["private_key"] = str(files.private_key)
        answer["public_key"] = str(files.public_key)
    return answer


# The file is checked by read_public_key (exit 1, in the language asked for), not by click.
public_key_option = click.option(
    "--public-key",
    type=click.Path(path_type=Path),
    help="The agency's Ed25519 public key (PEM or JWK file).",
)
generate_key_option = click.option(
    "--generate-key",
    type=click.Path(file_okay=False, path_type=Path),
    help="Generate a key pair in this folder (private key mode 0600); register the public key.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def check_kind(kind: str, lang: str) -> None:
    """Refuse an unknown kind, listing each code with its meaning (click.Choice would only list
    fifteen bare codes, in English)."""
    if kind in KINDS:
        return
    raise click.BadParameter(
        say(
            lang,
            f"tipo {kind!r} desconocido; use uno de:",
            f"unknown kind {kind!r}; use one of:",
        )
        + "\n"
        + "\n".join(f"  {code}: {say(lang, *ACTOR_KINDS[code])}" for code in KINDS),
        param_hint="--kind",
    )


kind_option = click.option(
    "--kind",
    required=True,
    help="What kind of body the agency is (the hard legal rules depend on it): "
    + ", ".join(KINDS)
    + ".",
)
country_option = click.option(
    "--country",
    help="For a foreign authority: the ISO 3166-1 alpha-2 country it acts for (GT, HN, SV…).",
)


@click.group("agency")
def agency_group() -> None:
    """Agencies: OAuth2 clients of the hub, with their keys, scopes and webhooks."""


@agency_group.command("add")
@click.argument("agency_id")
@click.option("--name", required=True, help="Name shown to people.")
@click.option("--level", type=click.Choice(LEVELS), required=True)
@kind_option
@country_option
@click.option(
    "--jurisdiction",
    required=True,
    help='INEGI code: "00" federal, "07" a state, "07089" a municipality.',
)
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES), help="Repeat."
)
@click.option("--contact", help="Who to call at the agency (e-mail or phone).")
@public_key_option
@generate_key_option
@click.option("--secret", is_flag=True, help="Also issue a client secret (development).")
@click.option("--require-signature", is_flag=True, help="Pushes must carry Puente-Signature.")
@click.option("--webhook", help="URL where the hub delivers notifications.")
@json_option
@language_option
@with_hub
def add_command(
    app: Flask,
    agency_id: str,
    name: str,
    level: str,
    kind: str,
    country: str | None,
    jurisdiction: str,
    scopes: tuple[str, ...],
    contact: str | None,
    public_key: Path | None,
    generate_key: Path | None,
    secret: bool,
    require_signature: bool,
    webhook: str | None,
    as_json: bool,
    lang: str,
) -> None:
    """Register an agency; prints its client id, and its secret and key id if any.

    The client secret is shown once here and stored only as a hash.
    """
    if not (public_key or generate_key or secret):
        raise click.UsageError(
            say(
                lang,
                "La agencia necesita una credencial: --public-key, --generate-key o --secret.",
                "The agency needs a credential: --public-key, --generate-key or --secret.",
            )
        )
    check_kind(kind, lang)
    jwk, files = _key_source(public_key, generate_key, agency_id, lang)
    try:
        with _transaction(app, lang) as session:
            result = register_agency(
                session,
                agency_id,
                name,
                level,
                jurisdiction,
                list(scopes),
                contact=contact,
                public_jwk=jwk,
                with_secret=secret,
                require_signature=require_signature,
                webhook_url=webhook,
                kind=kind,
                country=country,
                drop_root=file_drop_root(app),
            )
    except click.ClickException:
        _remove(files)
        raise
    _warn_about_webhook(app, webhook, lang)
    answer = _with_key_files(result.to_json(), files)
    if as_json:
        print_json(answer)
        return
    click.echo(say(lang, f"Agencia {agency_id} registrada.", f"Agency {agency_id} registered."))
    click.echo(f"  client_id: {result.client_id}")
    if result.key_id:
        click.echo(f"  key_id: {result.key_id}")
    if files is not None:
        click.echo(
            say(lang, "  clave privada (secreta): ", "  private key (keep secret): ")
            + str(files.private_key)
        )
    if result.client_secret:
        click.echo(f"  client_secret: {result.client_secret}")
        click.echo(
            say(
                lang,
                "  Guarde el secreto ahora: no se vuelve a mostrar.",
                "  Store the secret now: it is not shown again.",
            )
        )


@agency_group.command("list")
@json_option
@language_option
@with_hub
def list_command(app: Flask, as_json: bool, lang: str) -> None:
    """List the agencies with their scopes, state, keys and where their notifications go
    (webhook, file drop folder, or kept for them to read with GET /v1/notifications)."""
    with db.database(app).sessions() as session:
        now = utcnow()
        listed = list_agencies(session)
        agencies = [describe(agency, now) for agency in listed]
        notices = {agency.id: _notices_go(app, agency, lang) for agency in listed}
    if as_json:
        print_json({"agencies": agencies})
        return
    if not agencies:
        click.echo(say(lang, "No hay agencias registradas.", "No agencies registered."))
    for agency in agencies:
        state = (
            say(lang, "activa", "active")
            if agency["active"]
            else say(lang, "DESACTIVADA", "DISABLED")
        )
        valid = sum(1 for key in agency["keys"] if key["valid"])
        kind = agency["kind"] + (f" ({agency['country']})" if agency["country"] else "")
        click.echo(
            f"{agency['id']}  {agency['level']}  {kind}  {agency['jurisdiction']}  {state}  "
            f"{' '.join(agency['scopes'])}  "
            + say(lang, f"claves válidas: {valid}", f"valid keys: {valid}")
            + f"  {notices[agency['id']]}  {agency['name']}"
        )


def _notices_go(app: Flask, agency: Agency, lang: str) -> str:
    """Where ``agency``'s notifications go, for ``agency list``: its webhook (without a user
    name or password an old entry may carry), its file drop folder, or nowhere (kept for it to
    read)."""
    url = (agency.webhook_url or "").strip()
    if not url:
        return say(
            lang,
            "avisos: se guardan para GET /v1/notifications",
            "notices: kept for GET /v1/notifications",
        )
    if uses_file_drop(url):
        try:
            folder = str(drop_folder(file_drop_root(app), agency))
        except DeliveryError:
            folder = say(lang, f"{url} (no utilizable)", f"{url} (unusable)")
        return say(lang, f"avisos: buzón de archivos {folder}", f"notices: file drop {folder}")
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # an unbalanced [ ]: shown as it is
        netloc = ""
    if "@" in netloc:
        url = url.replace(netloc, "***@" + netloc.rsplit("@", 1)[1], 1)
    return say(lang, f"avisos: webhook {url}", f"notices: webhook {url}")


@agency_group.command("disable")
@click.argument("agency_id")
@json_option
@language_option
@with_hub
def disable_command(app: Flask, agency_id: str, as_json: bool, lang: str) -> None:
    """Disable an agency: no new tokens, and the tokens it holds and its people's stop working
    at once; the access requests it or its people have pending are denied and the grants they
    hold revoked (enabling it again brings none back)."""
    with _transaction(app, lang) as session:
        denied, revoked = disable_agency(session, agency_id)
    print_json_or_say(
        as_json,
        {
            "agency_id": agency_id,
            "active": False,
            "access_requests_denied": denied,
            "grants_revoked": revoked,
        },
        lang,
        f"Agencia {agency_id} desactivada; sus tokens y los de su personal dejaron de valer. "
        f"Solicitudes de acceso pendientes denegadas: {denied}; autorizaciones revocadas: "
        f"{revoked}. Reactivarla no las devuelve: harán falta solicitudes nuevas.",
        f"Agency {agency_id} disabled; its tokens and its people's no longer work. Pending "
        f"access requests denied: {denied}; grants revoked: {revoked}. Enabling it again "
        "brings none back: new requests will be needed.",
    )


@agency_group.command("enable")
@click.argument("agency_id")
@json_option
@language_option
@with_hub
def enable_command(app: Flask, agency_id: str, as_json: bool, lang: str) -> None:
    """Enable a disabled agency again (old tokens stay revoked, and the access requests and
    grants disabling ended stay denied and revoked)."""
    with _transaction(app, lang) as session:
        enable_agency(session, agency_id)
        dead = dead_while_disabled(session, agency_id)
    if as_json:
        # How many of its notifications died meanwhile: `puente outbox retry --all-dead
        # --agency ID` sends them (not done here: some may be stale by now).
        print_json({"agency_id": agency_id, "active": True, "dead_notifications": dead})
        return
    click.echo(say(lang, f"Agencia {agency_id} activada.", f"Agency {agency_id} enabled."))
    if dead:
        # Not requeued here: some may be stale by now, and the administrator decides.
        retry = f"puente outbox retry --all-dead --agency {agency_id}"
        click.echo(
            say(
                lang,
                f"{dead} avisos para ella no se entregaron mientras estaba desactivada; "
                f"para enviarlos ahora: {retry}",
                f"{dead} notifications for it died while it was disabled; "
                f"to send them now: {retry}",
            )
        )


def _warn_about_webhook(app: Flask, url: str | None, lang: str) -> None:
    """Say (on stderr) why an accepted webhook address may be a mistake."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return
    for spanish, english in webhook_url_cautions(url, app.config.get("PUBLIC_URL")):
        click.echo(say(lang, f"Aviso: {spanish}.", f"Warning: {english}."), err=True)


@agency_group.command("set-kind")
@click.argument("agency_id")
@kind_option
@country_option
@language_option
@with_hub
def set_kind_command(app: Flask, agency_id: str, kind: str, country: str | None, lang: str) -> None:
    """Say what kind of body an agency is (for agencies registered before kinds existed)."""
    check_kind(kind, lang)
    with _transaction(app, lang) as session:
        set_kind(session, agency_id, kind, country)
    shown = kind + (f" ({country.upper()})" if country else "")
    click.echo(say(lang, f"{agency_id}: tipo {shown}.", f"{agency_id}: kind {shown}."))


@agency_group.command("set-scopes")
@click.argument("agency_id")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeat; the agency gets exactly these.",
)
@json_option
@language_option
@with_hub
def set_scopes_command(
    app: Flask, agency_id: str, scopes: tuple[str, ...], as_json: bool, lang: str
) -> None:
    """Give an agency exactly these scopes (for example federation, to look children up on
    other hubs); a scope taken away ends the tokens its systems hold."""
    with _transaction(app, lang) as session:
        changed = set_scopes(session, agency_id, scopes)
    if as_json:
        print_json(
            {"agency_id": agency_id, "scopes": list(dict.fromkeys(scopes)), "changed": changed}
        )
        return
    listed = " ".join(dict.fromkeys(scopes))
    if changed:
        click.echo(say(lang, f"{agency_id}: alcances {listed}.", f"{agency_id}: scopes {listed}."))
    else:
        click.echo(
            say(lang, f"{agency_id} ya tenía {listed}.", f"{agency_id} already had {listed}.")
        )


@agency_group.command("rotate-key")
@click.argument("agency_id")
@public_key_option
@generate_key_option
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=ROTATION_GRACE.total_seconds() / 3600,
    show_default=True,
    help="How long the replaced keys keep verifying (0: retire them now).",
)
@json_option
@language_option
@with_hub
def rotate_key_command(
    app: Flask,
    agency_id: str,
    public_key: Path | None,
    generate_key: Path | None,
    grace_hours: float,
    as_json: bool,
    lang: str,
) -> None:
    """Make a new key the agency's current key; the old ones retire after the grace period."""
    if not (public_key or generate_key):
        raise click.UsageError(
            say(
                lang,
                "Indique --public-key o --generate-key.",
                "Give --public-key or --generate-key.",
            )
        )
    name = f"{agency_id}-{utcnow():%Y%m%dT%H%M%S%fZ}"
    jwk, files = _key_source(public_key, generate_key, name, lang)
    assert jwk is not None
    try:
        with _transaction(app, lang) as session:
            result = rotate_key(session, agency_id, jwk, grace=timedelta(hours=grace_hours))
    except click.ClickException:
        _remove(files)
        raise
    answer = _with_key_files(result.to_json(), files)
    if as_json:
        print_json(answer)
        return
    click.echo(say(lang, f"Clave nueva: {result.key_id}", f"New key: {result.key_id}"))
    for kid, moment in result.retiring.items():
        until = f"{moment:%Y-%m-%d %H:%M} UTC"
        click.echo(say(lang, f"  {kid} vale hasta {until}", f"  {kid} valid until {until}"))
    if files is not None:
        click.echo(
            say(lang, "  clave privada (secreta): ", "  private key (keep secret): ")
            + str(files.private_key)
        )


@agency_group.command("add-key")
@click.argument("agency_id")
@click.option(
    "--public-key",
    type=click.Path(path_type=Path),
    required=True,
    help="The Ed25519 public key (PEM or JWK file).",
)
@json_option
@language_option
@with_hub
def add_key_command(app: Flask, agency_id: str, public_key: Path, as_json: bool, lang: str) -> None:
    """Register one more key for an agency, beside the keys it has."""
    jwk = read_public_key(public_key, lang)
    with _transaction(app, lang) as session:
        kid = add_key(session, agency_id, jwk)
    answer = {"agency_id": agency_id, "key_id": kid}
    print_json_or_say(as_json, answer, lang, f"Clave añadida: {kid}", f"Key added: {kid}")


@agency_group.command("retire-key")
@click.argument("agency_id")
@click.argument("key_id")
@click.option(
    "--even-if-last",
    is_flag=True,
    help="Retire it even if it is the last valid key of an agency with no client secret, "
    "which is then locked out until a new key is registered.",
)
@json_option
@language_option
@with_hub
def retire_key_command(
    app: Flask, agency_id: str, key_id: str, even_if_last: bool, as_json: bool, lang: str
) -> None:
    """Stop a key verifying at once (for example a compromised key); the tokens the agency's
    systems hold end too, so they get new ones with their other credentials. The last valid key
    of an agency with no client secret is kept unless --even-if-last: rotate-key first.

    A key id may begin with '-' (it is a base64url thumbprint): write it after '--', as in
    puente agency retire-key mx.chp.dif -- -lQ2…"""
    with _transaction(app, lang) as session:
        retired = retire_key(session, agency_id, key_id, even_if_last=even_if_last)
    if as_json:
        # As `agency list --json` shows a key; the systems' tokens have ended too.
        print_json(
            {
                "agency_id": agency_id,
                "key_id": key_id,
                "valid": False,
                "retired_at": as_utc(retired.retired_at).isoformat(),
                "valid_keys_left": retired.valid_keys_left,
                "has_secret": retired.has_secret,
            }
        )
    else:
        click.echo(
            say(
                lang,
                f"Clave {key_id} retirada; los tokens de los sistemas de {agency_id} terminaron.",
                f"Key {key_id} retired; the tokens of {agency_id}'s systems have ended.",
            )
        )
    for spanish, english in _left_without_keys(retired):
        click.echo(say(lang, f"Aviso: {spanish}", f"Warning: {english}"), err=True)


def _left_without_keys(retired: RetiredKey) -> list[tuple[str, str]]:
    """What the agency is left with when no key of its stays valid (said on stderr, so that
    the JSON stays parseable)."""
    agency, add = retired.agency_id, f"puente agency add-key {retired.agency_id} --public-key …"
    if retired.lasting_keys_left:
        return []
    if retired.valid_keys_left:  # only keys in a rotation's grace
        left_es = f"a {agency} solo le quedan claves que dejarán de valer al acabar su gracia"
        left_en = f"{agency} has only keys left that stop verifying when their grace ends"
    else:
        left_es = f"a {agency} no le queda ninguna clave vigente"
        left_en = f"{agency} has no valid key left"
    if not retired.has_secret:
        return [
            (
                f"{left_es}, y no tiene secreto de cliente: sin clave no puede autenticarse; "
                f"registre una nueva ({add}).",
                f"{left_en}, and no client secret: without a key it cannot authenticate; "
                f"register a new one ({add}).",
            )
        ]
    warnings = [
        (
            f"{left_es}: sus sistemas se autentican solo con el secreto de cliente.",
            f"{left_en}: its systems authenticate with the client secret only.",
        )
    ]
    if retired.require_signature:
        warnings.append(
            (
                f"{agency} debe firmar sus envíos (require-signature): sin clave vigente se "
                f"rechazan; registre una ({add}).",
                f"{agency} must sign its pushes (require-signature): with no valid key they "
                f"are refused; register one ({add}).",
            )
        )
    return warnings


@agency_group.command("new-secret")
@click.argument("agency_id")
@click.option("--json", "as_json", is_flag=True, help="Print the new secret as JSON.")
@language_option
@with_hub
def new_secret_command(app: Flask, agency_id: str, as_json: bool, lang: str) -> None:
    """Give the agency a new client secret (shown once): the old one stops working and the
    tokens its systems hold end at once (for example a leaked secret)."""
    with _transaction(app, lang) as session:
        secret = replace_secret(session, agency_id)
    print_json_or_say(
        as_json,
        {"agency_id": agency_id, "client_id": agency_id, "client_secret": secret},
        lang,
        f"Secreto nuevo de {agency_id} (se muestra una sola vez; guárdelo): {secret}",
        f"New secret of {agency_id} (shown once; keep it): {secret}",
    )


@agency_group.command("remove-secret")
@click.argument("agency_id")
@json_option
@language_option
@with_hub
def remove_secret_command(app: Flask, agency_id: str, as_json: bool, lang: str) -> None:
    """Take the agency's client secret away: it authenticates with its keys from then on."""
    with _transaction(app, lang) as session:
        remove_secret(session, agency_id)
    print_json_or_say(
        as_json,
        {"agency_id": agency_id, "has_secret": False},
        lang,
        f"Secreto de {agency_id} retirado; sus sistemas se autentican con sus claves.",
        f"Secret of {agency_id} removed; its systems authenticate with their keys.",
    )


@agency_group.command("set-webhook")
@click.argument("agency_id")
@click.argument("url")
@json_option
@language_option
@with_hub
def set_webhook_command(app: Flask, agency_id: str, url: str, as_json: bool, lang: str) -> None:
    """Set where the hub delivers the agency's notifications ("-" removes it)."""
    webhook = None if url == "-" else url
    with _transaction(app, lang) as session:
        moved = set_webhook(session, agency_id, webhook, drop_root=file_drop_root(app))
    if as_json:
        print_json(
            {
                "agency_id": agency_id,
                "webhook_url": webhook,
                "notifications_held": moved.held,
                "notifications_queued": moved.queued,
            }
        )
        _warn_about_webhook(app, webhook, lang)  # on stderr: the JSON stays parseable
        return
    if url == "-":
        click.echo(
            say(
                lang,
                f"Webhook de {agency_id} retirado: lee sus avisos con GET /v1/notifications.",
                f"Webhook of {agency_id} removed: it reads its notices with GET /v1/notifications.",
            )
        )
    else:
        click.echo(say(lang, f"Webhook de {agency_id}: {url}", f"Webhook of {agency_id}: {url}"))
    if moved.held:
        click.echo(
            say(
                lang,
                f"{moved.held} avisos para ella aún sin entregar (en espera de envío, o sin "
                "entregar por falta de webhook) quedan para que los lea con "
                "GET /v1/notifications.",
                f"{moved.held} notifications for it not yet delivered (waiting to be sent, or "
                "dead for want of a webhook) are now kept for it to read with "
                "GET /v1/notifications.",
            )
        )
    if moved.queued:
        click.echo(
            say(
                lang,
                f"{moved.queued} avisos para ella no enviados por falta de webhook "
                "(guardados sin leer, o sin entregar) se enviarán ahora (puente worker).",
                f"{moved.queued} notifications for it not sent for want of a webhook (kept "
                "unread, or dead) will now be sent (puente worker).",
            )
        )
    _warn_about_webhook(app, webhook, lang)


@agency_group.command("require-signature")
@click.argument("agency_id")
@click.option(
    "--off",
    is_flag=True,
    help="Stop requiring it: unsigned pushes are accepted again (signed ones still checked).",
)
@json_option
@language_option
@with_hub
def require_signature_command(
    app: Flask, agency_id: str, off: bool, as_json: bool, lang: str
) -> None:
    """Require the agency's pushes to carry Puente-Signature (from its next push on).

    The agency needs a valid public key first. --off accepts unsigned pushes again.
    """
    required = not off
    with _transaction(app, lang) as session:
        changed = set_require_signature(session, agency_id, required)
    if as_json:
        print_json({"agency_id": agency_id, "require_signature": required, "changed": changed})
        return
    if required:
        message = say(
            lang,
            f"{agency_id}: sus envíos deben llevar Puente-Signature.",
            f"{agency_id}: its pushes must carry Puente-Signature.",
        )
    else:
        message = say(
            lang,
            f"{agency_id}: sus envíos ya no necesitan Puente-Signature.",
            f"{agency_id}: its pushes no longer need Puente-Signature.",
        )
    if not changed:
        message += say(lang, " (ya estaba así; nada cambió)", " (already so; nothing changed)")
    click.echo(message)
