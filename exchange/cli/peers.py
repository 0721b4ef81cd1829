"""``puente peer …``: pin the federation peers whose audit logs this hub witnesses and whose
signed envelopes it accepts.

Each change runs in one transaction with its audit entry. A malformed argument (a key that is
not a C2SP vkey, a log key not named after the origin, an id or URL of the wrong form) is a
usage error: exit 2, before anything is written. A duplicate or unknown peer ends with exit 1.
Messages are in Spanish or English (``--lang``), never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange import db
from exchange.cli import language_option, print_json, print_json_or_say, say, with_hub
from exchange.config import without_credentials
from exchange.federation_notices import dead_while_peer_disabled
from exchange.peers import (
    InvalidPeer,
    PeerError,
    add_peer,
    describe,
    disable_peer,
    enable_peer,
    list_peers,
    pin_signing_key,
    prefix_collisions,
    remove_peer,
    set_agency_prefixes,
    set_url,
    set_witness_key,
    url_fault,
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")

#: Which option (or argument) each field of :class:`InvalidPeer` comes from.
_OPTION_OF_FIELD = {
    "hub_id": "HUB_ID",
    "origin": "--origin",
    "log_vkey": "--log-vkey",
    "witness_vkey": "--witness-vkey",
    "base_url": "--url",
    "signing_jwk": "--signing-jwk",
    "agency_prefixes": "--agency-prefix",
}


def _jwk_text(value: str, param_hint: str = "--signing-jwk") -> str:
    """A JWK given as its JSON text or as the path of a file holding it."""
    if value.lstrip().startswith(("{", "[")):
        return value
    try:
        return Path(value).read_text(encoding="utf-8")
    except OSError as error:
        try:
            json.loads(value)
        except ValueError:
            raise click.BadParameter(
                f"no es JSON ni un archivo legible / neither JSON nor a readable file: {error}",
                param_hint=param_hint,
            ) from error
        return value  # JSON, though not an object: the key's check says what is wrong


@contextmanager
def _transaction(
    app: Flask,
    lang: str,
    arguments: Mapping[str, str] | None = None,
    conflict: tuple[str, str] = (
        "Ya existe (registro simultáneo).",
        "Already exists (concurrent change).",
    ),
) -> Iterator[Session]:
    """One transaction; a refusal said as click says it. ``arguments`` names the positional
    argument a field comes from in this command, where it is not an option; ``conflict`` says
    what a constraint the database enforced at the commit means."""
    hints = {**_OPTION_OF_FIELD, **(arguments or {})}
    try:
        with db.database(app).sessions.begin() as session:
            yield session
    except InvalidPeer as error:
        raise click.BadParameter(
            error.message(lang), param_hint=hints.get(error.field or "")
        ) from error
    except PeerError as error:
        raise click.ClickException(error.message(lang)) from error
    except IntegrityError as error:
        # The same hub id or origin pinned between our check and our commit (by default).
        raise click.ClickException(say(lang, *conflict)) from error


@click.group("peer")
def peer_group() -> None:
    """Federation peers: other hubs whose audit logs this hub witnesses."""


@peer_group.command("add")
@click.argument("hub_id")
@click.option(
    "--origin",
    required=True,
    help="The origin of the peer's checkpoints (audit_origin in its /.well-known/puente-hub).",
)
@click.option(
    "--log-vkey",
    required=True,
    help="The peer's log key (C2SP vkey, named after the origin), obtained out of band.",
)
@click.option("--witness-vkey", help="The peer's witness key (C2SP vkey, type 0x04).")
@click.option("--url", "base_url", help="The peer's base URL (https://…).")
@click.option(
    "--signing-jwk",
    help="The peer's envelope signing key (signing_jwk in its /.well-known/puente-hub): "
    "the JWK as JSON, or a file holding it. Without it the peer's envelopes are refused.",
)
@click.option(
    "--agency-prefix",
    "agency_prefixes",
    multiple=True,
    help="An agency id prefix the peer speaks for in its lookups (mx.fed.); repeatable. "
    "Default: the first two labels of HUB_ID.",
)
@click.option(
    "--origin-name-differs",
    is_flag=True,
    help="Pin an origin not named after HUB_ID (HUB_ID/audit): the peer configured another "
    "PUENTE_AUDIT_ORIGIN. Without it such an origin is refused as a likely typo.",
)
@json_option
@language_option
@with_hub
def add_command(
    app: Flask,
    hub_id: str,
    origin: str,
    log_vkey: str,
    witness_vkey: str | None,
    base_url: str | None,
    signing_jwk: str | None,
    agency_prefixes: tuple[str, ...],
    origin_name_differs: bool,
    as_json: bool,
    lang: str,
) -> None:
    """Pin a peer hub's log key: its checkpoints may then be cosigned by this hub's witness.

    Compare the keys with the peer's operators through a channel other than its
    /.well-known/puente-hub document: pinning is what makes the witness worth anything.
    """
    with _transaction(app, lang) as session:
        answer = describe(
            add_peer(
                session,
                hub_id,
                origin=origin,
                log_vkey=log_vkey,
                witness_vkey=witness_vkey,
                base_url=base_url,
                signing_jwk=_jwk_text(signing_jwk) if signing_jwk is not None else None,
                agency_prefixes=list(agency_prefixes) if agency_prefixes else None,
                check_origin_name=not origin_name_differs,
            )
        )
    print_json_or_say(
        as_json,
        answer,
        lang,
        f"Nodo par {hub_id} registrado: se atestigua la bitácora {origin}.",
        f"Peer hub {hub_id} pinned: its log {origin} is witnessed.",
    )


@peer_group.command("list")
@json_option
@language_option
@with_hub
def list_command(app: Flask, as_json: bool, lang: str) -> None:
    """List the pinned peers, active and disabled."""
    with db.database(app).sessions() as session:
        pinned = list_peers(session)
        peers = [describe(peer) for peer in pinned]
        collisions = {peer.hub_id: prefix_collisions(session, peer) for peer in pinned}
        faults = {peer.hub_id: url_fault(peer) for peer in pinned}
    for hub_id, fault in faults.items():
        if fault is not None:
            # Pinned before such URLs were refused: nothing reaches the peer at it.
            click.echo(
                say(
                    lang,
                    f"Aviso: la URL de {hub_id} no es utilizable: {fault[0]}; cámbiela: "
                    f"puente peer set-url {hub_id} URL",
                    f"Warning: the URL of {hub_id} is not usable: {fault[1]}; change it: "
                    f"puente peer set-url {hub_id} URL",
                ),
                err=True,
            )
    for hub_id, prefixes in collisions.items():
        if prefixes:
            # Pinned before such prefixes were refused: lookups under them are refused now,
            # but the administrator should replace them.
            said = " ".join(prefixes)
            click.echo(
                say(
                    lang,
                    f"Aviso: {hub_id} tiene prefijos de agencia que cubren agencias de este "
                    f"nodo ({said}); cámbielos: puente peer set-agency-prefixes {hub_id} …",
                    f"Warning: {hub_id} has agency prefixes covering this hub's agencies "
                    f"({said}); change them: puente peer set-agency-prefixes {hub_id} …",
                ),
                err=True,
            )
    if as_json:
        print_json({"peers": peers})
        return
    if not peers:
        click.echo(say(lang, "No hay nodos pares registrados.", "No peer hubs pinned."))
    for peer in peers:
        state = (
            say(lang, "activo", "active")
            if peer["active"]
            else say(lang, "DESACTIVADO", "DISABLED")
        )
        signing = say(lang, "firma: ", "signing: ") + (
            peer["signing_jwk"]["kid"] if peer["signing_jwk"] else "—"
        )
        agencies = say(lang, "agencias: ", "agencies: ") + (
            " ".join(f"{prefix}*" for prefix in peer["agency_prefixes"]) or "—"
        )
        witness = say(lang, "testigo: ", "witness: ") + (
            say(lang, "sí", "yes") if peer["witness_vkey"] else "—"
        )
        click.echo(
            f"{peer['hub_id']}  {peer['origin']}  {state}  {_shown_url(peer['base_url'])}  "
            f"{signing}  {witness}  {agencies}  {peer['log_vkey']}"
        )


def _shown_url(url: str | None) -> str:
    """The URL as listed: a user name or password pinned before they were refused is not
    shown."""
    return "—" if url is None else without_credentials(url)


@peer_group.command("disable")
@click.argument("hub_id")
@language_option
@with_hub
def disable_command(app: Flask, hub_id: str, lang: str) -> None:
    """Stop witnessing a peer's log (what was cosigned for it is kept) and refuse its
    envelopes."""
    with _transaction(app, lang) as session:
        disable_peer(session, hub_id)
    click.echo(
        say(
            lang,
            f"Nodo par {hub_id} desactivado: su bitácora ya no se atestigua y sus sobres se "
            "rechazan.",
            f"Peer hub {hub_id} disabled: its log is no longer witnessed and its envelopes are "
            "refused.",
        )
    )


@peer_group.command("enable")
@click.argument("hub_id")
@language_option
@with_hub
def enable_command(app: Flask, hub_id: str, lang: str) -> None:
    """Witness a disabled peer's log again (and ask its witness to cosign this hub's)."""
    with _transaction(app, lang) as session:
        enable_peer(session, hub_id)
        dead = dead_while_peer_disabled(session, hub_id)
    click.echo(
        say(
            lang,
            f"Nodo par {hub_id} activado: su bitácora se atestigua de nuevo y sus sobres se "
            "aceptan.",
            f"Peer hub {hub_id} enabled: its log is witnessed again and its envelopes are "
            "accepted.",
        )
    )
    if dead:
        # Not requeued here, as for an agency enabled again: the administrator decides.
        retry = f"puente outbox retry --all-dead --peer {hub_id}"
        if dead == 1:
            said = (
                "1 aviso de revocación para él no se entregó mientras estaba desactivado; para "
                f"enviarlo ahora: {retry}",
                f"1 revocation notice for it died while it was disabled; to send it now: {retry}",
            )
        else:
            said = (
                f"{dead} avisos de revocación para él no se entregaron mientras estaba "
                f"desactivado; para enviarlos ahora: {retry}",
                f"{dead} revocation notices for it died while it was disabled; to send them "
                f"now: {retry}",
            )
        click.echo(say(lang, *said))


def _value_or_remove(
    lang: str, value: str | None, remove: bool, noun: tuple[str, str], asked: tuple[str, str]
) -> None:
    """A verb that sets a value or, with --remove, takes it away takes exactly one of them.
    ``noun``: the value's name (Spanish, feminine as "URL" and "llave"; English); ``asked``:
    how to ask for it."""
    if value is not None and remove:
        raise click.UsageError(
            say(
                lang,
                f"Una {noun[0]} y --remove no van juntas: indique la {noun[0]} nueva, o solo "
                "--remove.",
                f"A {noun[1]} and --remove cannot go together: give the new {noun[1]}, or "
                "--remove alone.",
            )
        )
    if value is None and not remove:
        raise click.UsageError(
            say(
                lang,
                f"Indique {asked[0]}, o --remove para quitarla.",
                f"Give {asked[1]}, or --remove to remove it.",
            )
        )


@peer_group.command("set-url")
@click.argument("hub_id")
@click.argument("url", required=False)
@click.option("--remove", is_flag=True, help="Remove the URL / quitar la URL.")
@json_option
@language_option
@with_hub
def set_url_command(
    app: Flask, hub_id: str, url: str | None, remove: bool, as_json: bool, lang: str
) -> None:
    """Set the address this hub reaches a peer at (lookups, witness requests and revocation
    notices go there), or remove it with --remove."""
    _value_or_remove(lang, url, remove, ("URL", "URL"), ("una URL", "a URL"))
    with _transaction(app, lang, {"base_url": "URL"}) as session:
        answer = describe(set_url(session, hub_id, url))
    print_json_or_say(
        as_json,
        answer,
        lang,
        f"URL del nodo par {hub_id}: {url or 'ninguna'}.",
        f"URL of peer hub {hub_id}: {url or 'none'}.",
    )


@peer_group.command("set-witness-key")
@click.argument("hub_id")
@click.argument("witness_vkey", required=False)
@click.option("--remove", is_flag=True, help="Remove the witness key / quitar la llave.")
@json_option
@language_option
@with_hub
def set_witness_key_command(
    app: Flask, hub_id: str, witness_vkey: str | None, remove: bool, as_json: bool, lang: str
) -> None:
    """Pin (or replace, after the peer rotated it) the key of a peer's witness, which this hub
    asks to cosign its checkpoints (puente audit witness), or remove it with --remove.
    WITNESS_VKEY is the witness_vkey of the peer's /.well-known/puente-hub, named
    HUB_ID/witness; check it with the peer's operators."""
    _value_or_remove(
        lang,
        witness_vkey,
        remove,
        ("llave", "key"),
        ("la llave del testigo (WITNESS_VKEY)", "the witness key (WITNESS_VKEY)"),
    )
    with _transaction(app, lang, {"witness_vkey": "WITNESS_VKEY"}) as session:
        answer = describe(set_witness_key(session, hub_id, witness_vkey))
    if witness_vkey is None:
        said = (
            f"Llave de testigo del nodo par {hub_id} quitada: ya no se le pide cofirmar.",
            f"Witness key of peer hub {hub_id} removed: it is no longer asked to cosign.",
        )
    else:
        said = (
            f"Llave de testigo del nodo par {hub_id} registrada: se le pide cofirmar los puntos "
            "de control de este nodo (puente audit witness).",
            f"Witness key of peer hub {hub_id} pinned: it is asked to cosign this hub's "
            "checkpoints (puente audit witness).",
        )
    print_json_or_say(as_json, answer, lang, *said)


@peer_group.command("remove")
@click.argument("hub_id")
@json_option
@language_option
@with_hub
def remove_command(app: Flask, hub_id: str, as_json: bool, lang: str) -> None:
    """Take a disabled peer off the registry — one pinned under a mistyped id or origin — so
    that it can be pinned again. Refused while anything names it (its witness's cosignatures,
    notices to it, consents its agencies read under, envelopes it exchanged): it then stays,
    disabled. The audit entries that name it stay."""
    # Its witness's cosignature stored between the check and the commit.
    concurrent = (
        f"Algo que nombra al nodo par {hub_id} se escribió a la vez; no se quitó.",
        f"Something naming peer hub {hub_id} was written meanwhile; it was not removed.",
    )
    with _transaction(app, lang, conflict=concurrent) as session:
        remove_peer(session, hub_id)
    print_json_or_say(
        as_json,
        {"hub_id": hub_id, "removed": True},
        lang,
        f"Nodo par {hub_id} quitado del registro; puede registrarse de nuevo (puente peer add).",
        f"Peer hub {hub_id} removed; it can be pinned again (puente peer add).",
    )


@peer_group.command("pin-signing-key")
@click.argument("hub_id")
@click.argument("signing_jwk")
@json_option
@language_option
@with_hub
def pin_signing_key_command(
    app: Flask, hub_id: str, signing_jwk: str, as_json: bool, lang: str
) -> None:
    """Pin (or replace after a rotation) the key that signs a peer's federation envelopes:
    SIGNING_JWK is the JWK as JSON, or a file holding it. Check it with the peer's operators
    through a channel other than its /.well-known/puente-hub document."""
    with _transaction(app, lang, {"signing_jwk": "SIGNING_JWK"}) as session:
        answer = describe(
            pin_signing_key(session, hub_id, _jwk_text(signing_jwk, param_hint="SIGNING_JWK"))
        )
    print_json_or_say(
        as_json,
        answer,
        lang,
        f"Llave de firma del nodo par {hub_id} registrada: se aceptan sus sobres firmados.",
        f"Signing key of peer hub {hub_id} pinned: its signed envelopes are accepted.",
    )


@peer_group.command("set-agency-prefixes")
@click.argument("hub_id")
@click.argument("prefixes", nargs=-1, required=True)
@json_option
@language_option
@with_hub
def set_agency_prefixes_command(
    app: Flask, hub_id: str, prefixes: tuple[str, ...], as_json: bool, lang: str
) -> None:
    """Set the agency id prefixes a peer speaks for in its lookups (e.g. mx.fed. mx.ext. for
    the federal hub and the foreign consulates registered on it): a lookup for an agency under
    none of them is refused."""
    with _transaction(app, lang, {"agency_prefixes": "PREFIXES"}) as session:
        answer = describe(set_agency_prefixes(session, hub_id, list(prefixes)))
    if as_json:
        print_json(answer)
        return
    said = " ".join(answer["agency_prefixes"])
    click.echo(
        say(
            lang,
            f"El nodo par {hub_id} habla por las agencias {said}",
            f"Peer hub {hub_id} speaks for the agencies {said}",
        )
    )
