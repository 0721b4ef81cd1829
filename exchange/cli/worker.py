"""``puente worker`` delivers the outbox, sequences the audit log and gets its checkpoints
cosigned by the peers' witnesses; ``puente outbox list|retry`` lets an operator see and requeue
what could not be delivered."""

from __future__ import annotations

import re
import signal
import threading
from types import FrameType

import click
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import UnknownAgency, get_agency, keep_notices_for_reading
from exchange.audit_sequencer import ensure_integrator, integrate_pending
from exchange.auth import as_utc, utcnow
from exchange.cli import language_option, print_json, say, with_hub
from exchange.cli.hub import refuse_another_hub_id, warn_of_old_schema, warn_of_unsafe_keys
from exchange.key_safety import init_would_refuse, key_faults
from exchange.keys import MISSING, UNREADABLE, hub_keys
from exchange.outbox import STATUSES, OutboxMessage, requeue, unknown_message_ids
from exchange.outbox_delivery import BatchResult, run_worker
from exchange.transports import AgencyTransports, printable
from exchange.witnessing import request_cosignatures, start_cosigning


@click.command("worker")
@click.option("--once", is_flag=True, help="One pass over what is due, then exit.")
@click.option(
    "--batch",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="Messages claimed at a time.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(0.05, 3600),
    default=1.0,
    show_default=True,
    help="Pause when nothing is due.",
)
@with_hub
def worker_command(app: Flask, once: bool, batch: int, poll_seconds: float) -> None:
    """Deliver webhook notifications from the outbox, sequence the audit log and ask the peers'
    witnesses to cosign its checkpoints (several workers may run at once).

    SIGTERM or Ctrl-C stops the worker after the delivery in progress.
    """
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    # As serve: a database at an old schema would otherwise pass for one with nothing to do.
    warn_of_old_schema(app)
    refuse_another_hub_id(app)
    warn_of_unsafe_keys(app)
    # Every notification is signed: without the key nothing can go, so say so before
    # announcing a delivery that will not happen.
    try:
        transport = AgencyTransports.for_hub(app)
    except Exception as error:  # whatever the key library says of a non-key
        raise click.ClickException(_signing_key_refusal(app, error)) from error
    click.echo(
        f"puente worker: entregando / delivering (batch {batch}, poll {poll_seconds}s)", err=True
    )
    cosigning = None
    if once:
        integrate_pending(app)
        request_cosignatures(app)
    else:
        # The same integrator thread as in each 'puente serve' worker: entries recorded by the
        # command line or by other processes get sequenced and checkpointed here too.
        ensure_integrator(app, serving=True)
        # Witnesses are asked every few seconds, not at each checkpoint: a busy log signs four
        # a second, and each peer needs only the latest.
        cosigning = start_cosigning(app)
    try:
        totals = run_worker(
            app,
            once=once,
            stop_event=stop,
            batch=batch,
            poll_seconds=poll_seconds,
            transport=transport,
        )
    finally:
        if cosigning is not None:
            cosigning.stop()
    click.echo(f"puente worker: {_summary(totals)}", err=True)


#: Each outcome a pass counts (:class:`exchange.outbox_delivery.BatchResult`), as the summary
#: names it.
_OUTCOMES = (
    ("delivered", "entregadas", "delivered"),
    ("retrying", "reintento", "retrying"),
    ("dead", "sin entregar", "dead"),
    ("withheld", "retenidas", "withheld"),
    ("deferred", "aplazadas", "deferred"),
    ("lost_lease", "tomadas por otro worker", "lost leases"),
)


def _summary(totals: BatchResult) -> str:
    """Every outcome of the worker's passes, so the numbers add up to what it took."""
    return ", ".join(
        f"{spanish} / {english} {getattr(totals, field)}" for field, spanish, english in _OUTCOMES
    )


def _signing_key_refusal(app: Flask, error: Exception) -> str:
    """Why the worker cannot start without the hub signing key, naming the file (or setting)
    and what to do, in Spanish and English."""
    faults = [fault for fault in key_faults(app, hub_keys(app)) if fault.role == "signing"]
    if not faults:  # it loads now (mended meanwhile): say what failed then
        es = en = f"{type(error).__name__}: {error}"
        todo_es, todo_en = "vuelva a arrancar el worker", "start the worker again"
    else:
        fault = faults[0]
        es, en = fault.described()
        if fault.kind == MISSING and init_would_refuse(app):
            # A restore drill's copy (signed checkpoints, no log key): init makes nothing there.
            todo_es = (
                "restáurela desde la copia de seguridad ('puente init' no la crearía aquí); en "
                "la copia de un simulacro de restauración, no ejecute el worker"
            )
            todo_en = (
                "restore it from the backup ('puente init' would not make it here); on a "
                "restore drill's copy, do not run the worker"
            )
        elif fault.kind == MISSING:
            todo_es, todo_en = "créela con «puente init»", "run 'puente init' to create it"
        elif fault.given:
            todo_es = f"corrija {fault.source} y vuelva a arrancar el worker"
            todo_en = f"correct {fault.source} and start the worker again"
        elif fault.kind == UNREADABLE:
            todo_es = (
                "ejecute el worker como el dueño del archivo, o déselo al usuario que lo "
                "ejecuta (chown, chmod 600)"
            )
            todo_en = (
                "run the worker as the file's owner, or give the file to the user who runs it "
                "(chown, chmod 600)"
            )
        else:
            todo_es = "restáurela desde la copia de seguridad y vuelva a arrancar el worker"
            todo_en = "restore it from the backup and start the worker again"
    return (
        f"puente worker: no se entregó nada: sin la llave de firma del nodo ({es}) no se firma "
        f"ningún aviso; {todo_es}. / puente worker: nothing was delivered: without the hub "
        f"signing key ({en}) no notification can be signed; {todo_en}."
    )


@click.group("outbox")
def outbox_group() -> None:
    """Notifications waiting for delivery, delivered or dead."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only messages in this state.")
@click.option("--agency", "agency_id", help="Only messages for this agency (of this hub).")
@click.option("--peer", "peer_hub", help="Only messages to this peer hub.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@language_option
@with_hub
def outbox_list(
    app: Flask,
    status: str | None,
    agency_id: str | None,
    peer_hub: str | None,
    limit: int,
    as_json: bool,
    lang: str,
) -> None:
    """List outbox messages, newest first. A message to a peer hub (a consent revocation for
    one of its agencies) shows as ``<hub>/<agency>``. An unknown --agency or --peer is
    refused. Why a message failed is shown in the language asked for when the hub wrote it
    (--json: as stored, in English). A held or dead message its agency has read (with GET
    /v1/notifications) says when (read_at)."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    if agency_id:
        query = query.where(OutboxMessage.agency_id == agency_id)
    if peer_hub:
        query = query.where(OutboxMessage.peer_hub == peer_hub)
    with db.database(app).sessions() as session:
        # A mistyped id would otherwise look like an agency or peer with no messages.
        if agency_id:
            _require_agency(session, agency_id, lang)
        if peer_hub:
            _require_peer(session, peer_hub, lang)
        listed = 0
        for message in session.scalars(query):
            listed += 1
            if as_json:
                print_json(message.to_json())
                continue
            recipient = message.agency_id
            if message.peer_hub is not None:
                recipient = f"{message.peer_hub}/{message.payload.get('agency_id')}"
            # A message a worker holds now (being delivered, or claimed by a worker that died,
            # until its lease runs out) says so: its status is the last attempt's.
            lease = ""
            if message.lease_until is not None and as_utc(message.lease_until) > utcnow():
                lease = f"leased_until={as_utc(message.lease_until).isoformat()}  "
            # A held or dead message its agency read (GET /v1/notifications) got to it: no
            # need to requeue it.
            if message.status in ("held", "dead") and message.delivered_at is not None:
                lease += f"read_at={as_utc(message.delivered_at).isoformat()}  "
            # last_error may quote a receiver: escaped, so one message stays one line.
            error = printable(failure_reason(message.last_error or "", lang))
            click.echo(
                f"{message.id}  {message.status:<9}  {recipient}  {message.kind}  "
                f"attempts={message.attempts}  {lease}{error}".rstrip()
            )
    if not listed and not as_json:  # (--json: no line, as NDJSON of no message is)
        click.echo("no messages / ningún mensaje")


#: Why deliveries fail, as the hub writes it in a message's ``last_error`` (English, stored and
#: compared as written: :func:`exchange.outbox.dead_because`), and in Spanish for
#: ``outbox list``: the stored text's pattern, and its translation. Text that matches none (a
#: receiver's own words, an error of the system) is shown as it is.
_REASONS_ES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), spanish)
    for pattern, spanish in (
        # exchange.outbox: what wraps another reason ({inner}, {answer}: translated in turn)
        (
            r"(?P<inner>.+); an earlier attempt may have reached the agency",
            "{inner}; un intento anterior pudo haber llegado a la agencia",
        ),
        (
            r"(?P<inner>withheld: .+); the receiver did not take it \(its last answer: "
            r"(?P<answer>.*)\)",
            "{inner}; el receptor no la tomó (su última respuesta: {answer})",
        ),
        (
            r"gave up after (?P<n>\d+) attempts \(its agency may still read it: GET "
            r"/v1/notifications\): (?P<inner>.*)",
            "se dejó de intentar tras {n} intentos (su agencia aún puede leerlo: GET "
            "/v1/notifications): {inner}",
        ),
        (
            r"gave up after (?P<n>\d+) attempts: (?P<inner>.*)",
            "se dejó de intentar tras {n} intentos: {inner}",
        ),
        # exchange.transports
        (
            r"agency (?P<a>\S+) has no usable webhook",
            "la agencia {a} no tiene un webhook utilizable",
        ),
        (r"agency (?P<a>\S+) has no file drop", "la agencia {a} no tiene buzón de archivos"),
        (
            r"agency (?P<a>\S+): malformed webhook URL: (?P<why>.*)",
            "la agencia {a}: la URL del webhook está mal formada: {why}",
        ),
        (r"malformed webhook URL: (?P<why>.*)", "la URL del webhook está mal formada: {why}"),
        (
            r"TimeoutError: no complete answer within (?P<s>\S+) s",
            "TimeoutError: sin respuesta completa en {s} s",
        ),
        (
            r"cannot write to the drop folder (?P<path>.*): (?P<cause>[^:]*) \(a file where the "
            r"folder should be, a missing mount, a permission\)",
            "no se puede escribir en el buzón {path}: {cause} (un archivo donde debería estar la "
            "carpeta, un montaje que falta, un permiso)",
        ),
        (
            r"agency (?P<a>\S+): file URL on another host: (?P<url>.*)",
            "la agencia {a}: la URL de archivo es de otro servidor: {url}",
        ),
        (
            r"agency (?P<a>\S+): file URL is not absolute: (?P<url>.*)",
            "la agencia {a}: la URL de archivo no es absoluta: {url}",
        ),
        (
            r"agency (?P<a>\S+): drop folder (?P<f>.*) is not inside FILE_DROP_PATH (?P<r>.*)",
            "la agencia {a}: el buzón {f} no está dentro de FILE_DROP_PATH {r}",
        ),
        # exchange.outbox
        (
            r"agency (?P<a>\S+) is unknown or disabled",
            "la agencia {a} no existe o está desactivada",
        ),
        (
            r"no outcome recorded after (?P<n>\d+) attempts",
            "ningún resultado registrado tras {n} intentos",
        ),
        (
            r"withheld by consent decision (?P<d>\S+) \((?P<basis>[^)]*)\): consent no longer "
            r"permits telling this agency \(revoked, expired or changed since the notice was "
            r"queued\); it is not sent",
            "retenido por la decisión de consentimiento {d} ({basis}): el consentimiento ya no "
            "permite avisar a esta agencia (se revocó, venció o cambió desde que se encoló el "
            "aviso); no se envía",
        ),
        (  # as hubs wrote it before
            r"withheld by consent decision (?P<d>\S+) \((?P<basis>.*)\)",
            "retenido por la decisión de consentimiento {d} ({basis})",
        ),
        (
            r"withheld: the request of transfer (?P<t>\S+) never reached the recipient",
            "retenido: la solicitud de la transferencia {t} nunca llegó al destinatario",
        ),
        (
            r"withheld: the recipient did not take the request of transfer (?P<t>\S+)",
            "retenido: el destinatario no tomó la solicitud de la transferencia {t}",
        ),
        (
            r"withheld: transfer (?P<t>\S+) is (?P<status>\S+), no longer pending",
            "retenido: la transferencia {t} está {status}, ya no pendiente",
        ),
        # exchange.federation_notices
        (
            r"peer hub (?P<p>\S+) is not pinned or is disabled \(puente peer enable (?P=p)\)",
            "el nodo par {p} no está registrado o está desactivado (puente peer enable {p})",
        ),
        (
            r"peer hub (?P<p>\S+) has no URL pinned \(puente peer set-url (?P=p) URL\)",
            "el nodo par {p} no tiene URL registrada (puente peer set-url {p} URL)",
        ),
        (
            r"peer hub (?P<p>\S+) refused the notice \(HTTP (?P<n>\d+)\): (?P<detail>.*)",
            "el nodo par {p} rechazó el aviso (HTTP {n}): {detail}",
        ),
        (
            r"HTTP (?P<n>\d+) from peer hub (?P<p>\S+): (?P<detail>.*)",
            "HTTP {n} del nodo par {p}: {detail}",
        ),
        # exchange.transports: the receiver's answer ({code}: what it means is added)
        (
            r"HTTP (?P<code>3\d\d): redirects are not followed \(Location: (?P<url>.*)\); if "
            r"the receiver moved, register its new address: puente agency set-webhook",
            "el receptor respondió HTTP {code}: no se siguen redirecciones (Location: {url}); "
            "si el receptor se mudó, registre su nueva dirección: puente agency set-webhook",
        ),
        # (the receiver's own words, in parentheses, say what its status means)
        (r"HTTP (?P<n>\d{3}) \((?P<err>.*)\)", "el receptor respondió HTTP {n} ({err})"),
        (r"HTTP (?P<code>\d{3})", "el receptor respondió HTTP {code}"),
        # the network, as urllib reports it: the system's words ({cause}) in Spanish
        (
            r"(?P<error>\w+): \[Errno (?P<errno>-?\d+)\] (?P<cause>.+)",
            "{cause} ({error}, errno {errno})",
        ),
        (
            r"TimeoutError: (?P<detail>timed out|webhook deadline passed)",
            "TimeoutError: el receptor no respondió a tiempo ({detail})",
        ),
        (
            r"(?P<error>RemoteDisconnected): Remote end closed connection without response",
            "el receptor cerró la conexión sin responder ({error})",
        ),
        (
            r"(?P<error>SSL\w*Error): (?P<detail>.*)",
            "falló la conexión cifrada (TLS) con el receptor, p. ej. su certificado no se pudo "
            "verificar ({error}: {detail})",
        ),
    )
)
#: What a receiver's HTTP status means, added to it in Spanish.
_HTTP_ES = {
    "300": "varias opciones",
    "301": "se mudó de forma permanente",
    "302": "se encuentra en otra dirección",
    "303": "véase otra dirección",
    "307": "redirección temporal",
    "308": "redirección permanente",
    "400": "solicitud rechazada",
    "401": "sin autenticar",
    "403": "prohibido",
    "404": "no encontrado",
    "405": "método no permitido",
    "408": "se agotó su tiempo de espera",
    "410": "ya no existe",
    "413": "demasiado grande",
    "415": "tipo de contenido no admitido",
    "429": "demasiadas solicitudes",
    "500": "error interno del receptor",
    "502": "puerta de enlace errónea",
    "503": "servicio no disponible",
    "504": "se agotó el tiempo de la puerta de enlace",
}
#: Groups that hold another reason, translated in turn.
_NESTED_REASONS = ("inner", "answer")
#: The system's words (``strerror``) and a transfer's states, inside those reasons.
_WORDS_ES = {
    "File exists": "ya existe un archivo con ese nombre",
    "Permission denied": "permiso denegado",
    "No space left on device": "no queda espacio en el disco",
    "Not a directory": "no es una carpeta",
    "Is a directory": "es una carpeta",
    "No such file or directory": "no existe el archivo o la carpeta",
    "Read-only file system": "sistema de archivos de solo lectura",
    "Disk quota exceeded": "cuota de disco excedida",
    "Connection refused": "conexión rechazada: nada escucha en esa dirección y puerto",
    "Name or service not known": "no se encontró el nombre del servidor",
    "Temporary failure in name resolution": "falla temporal al buscar el nombre del servidor",
    "No address associated with hostname": "el nombre del servidor no tiene dirección",
    "Connection reset by peer": "el receptor cortó la conexión",
    "Connection timed out": "se agotó el tiempo para conectar",
    "No route to host": "no hay ruta hasta el servidor",
    "Network is unreachable": "la red no está al alcance",
    "Broken pipe": "el receptor cerró la conexión",
    "accepted": "aceptada",
    "rejected": "rechazada",
    "cancelled": "cancelada",
}


def failure_reason(text: str, lang: str) -> str:
    """A message's ``last_error`` for a person reading ``lang``: in Spanish when it is one of
    the reasons the hub writes (:data:`_REASONS_ES`), else as stored."""
    if lang != "es":
        return text
    for pattern, spanish in _REASONS_ES:
        found = pattern.fullmatch(text)
        if found is not None:
            parts = found.groupdict()
            for name in ("cause", "status"):
                if parts.get(name) is not None:
                    parts[name] = _WORDS_ES.get(parts[name], parts[name])
            for name in _NESTED_REASONS:
                if parts.get(name) is not None:
                    parts[name] = failure_reason(parts[name], lang)
            code = parts.get("code")
            if code is not None and code in _HTTP_ES:
                parts["code"] = f"{code} ({_HTTP_ES[code]})"
            return spanish.format(**parts)
    return text


#: Why a message named to ``outbox retry`` is left alone, in Spanish, and in English where its
#: status alone does not say it. A message is withheld by consent or because its transfer's news
#: went stale: the reason is its last_error, listed by ``outbox list``.
_STATUS_ES = {
    "delivered": "ya entregado",
    "pending": "pendiente de entrega",
    "withheld": "retenido, no se enviará (el motivo, en «puente outbox list»)",
    "held": "en espera",
}
_STATUS_EN = {"withheld": "withheld, never to be sent (the reason: puente outbox list)"}


def _require_agency(session: Session, agency_id: str, lang: str) -> None:
    """Refuse an ``--agency`` that names no agency of this hub."""
    try:
        get_agency(session, agency_id)
    except UnknownAgency as error:
        raise click.ClickException(error.message(lang)) from error


def _require_peer(session: Session, peer_hub: str, lang: str) -> None:
    """Refuse a ``--peer`` that names no pinned peer hub."""
    from exchange.peers import Peer

    if session.get(Peer, peer_hub) is None:
        raise click.ClickException(
            say(
                lang,
                f"No hay un nodo par {peer_hub!r} registrado (puente peer list).",
                f"No peer hub {peer_hub!r} is pinned (puente peer list).",
            )
        )


def _requeue_dead_to_peer(session: Session, peer_hub: str, lang: str) -> int:
    """Requeue every dead notice to ``peer_hub`` (``--all-dead --peer``): requeued by id, in
    batches, as the outbox's own requeue filters by agency only."""
    # A mistyped hub id would otherwise look like a peer with nothing dead.
    _require_peer(session, peer_hub, lang)
    dead = list(
        session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.peer_hub == peer_hub, OutboxMessage.status == "dead"
            )
        )
    )
    return sum(
        requeue(session, dead[start : start + _REQUEUE_BATCH])
        for start in range(0, len(dead), _REQUEUE_BATCH)
    )


#: Ids requeued in one statement: well under SQLite's limit on bound parameters.
_REQUEUE_BATCH = 500


@outbox_group.command("retry")
@click.argument("message_ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="Requeue every dead message.")
@click.option("--agency", "agency_id", help="With --all-dead: only this agency's.")
@click.option("--peer", "peer_hub", help="With --all-dead: only the notices to this peer hub.")
@language_option
@with_hub
def outbox_retry(
    app: Flask,
    message_ids: tuple[str, ...],
    all_dead: bool,
    agency_id: str | None,
    peer_hub: str | None,
    lang: str,
) -> None:
    """Make dead or failed messages due again, with a fresh attempt count.

    An id that names no message is reported (exit code 1) after the others are requeued; an
    unknown --agency or --peer is refused.
    """
    for option, given in (("--agency", agency_id), ("--peer", peer_hub)):
        if given is not None and not all_dead:
            raise click.UsageError(
                say(lang, f"{option} va con --all-dead", f"{option} goes with --all-dead")
            )
    if agency_id is not None and peer_hub is not None:
        # A notice to a peer hub is for one of its agencies, never one of this hub's.
        raise click.UsageError(
            say(
                lang,
                "use --agency o --peer, no ambos",
                "pass --agency or --peer, not both",
            )
        )
    if not message_ids and not all_dead:
        raise click.UsageError(
            say(
                lang,
                "indique ids de mensajes o use --all-dead",
                "name message ids or pass --all-dead",
            )
        )
    with db.database(app).sessions.begin() as session:
        if peer_hub is not None:
            count = _requeue_dead_to_peer(session, peer_hub, lang)
            click.echo(f"{count} reencolados / requeued")
            return
        if agency_id is not None:
            _require_agency(session, agency_id, lang)  # a mistyped id, not "none dead"
        unknown = [] if all_dead else unknown_message_ids(session, list(message_ids))
        # Known messages that are neither dead nor failed have nothing to retry: say why.
        untouched = (
            []
            if all_dead
            else session.execute(
                select(OutboxMessage.id, OutboxMessage.status).where(
                    OutboxMessage.id.in_(message_ids),
                    OutboxMessage.status.not_in(("dead", "failed")),
                )
            ).all()
        )
        count = requeue(session, None if all_dead else list(message_ids), agency_id=agency_id)
        # Sent to an agency with no webhook or file drop, a requeued message would only die
        # again for want of one: it is kept for the agency to read instead.
        kept = keep_notices_for_reading(
            session, agency_id=agency_id, message_ids=None if all_dead else list(message_ids)
        )
    # Ids that all name nothing get the error alone: "0 requeued" would read as if they did.
    if all_dead or len(unknown) < len(set(message_ids)):
        click.echo(f"{count} reencolados / requeued")
    if kept:
        click.echo(
            say(
                lang,
                f"{kept} de ellos quedan para que su agencia, que no tiene webhook ni buzón, "
                "los lea con GET /v1/notifications",
                f"{kept} of them are kept for their agency, which has no webhook or file drop, "
                "to read with GET /v1/notifications",
            )
        )
    for message_id, status in untouched:
        click.echo(
            say(
                lang,
                f"{message_id}: {_STATUS_ES.get(status, status)}; no hay nada que reintentar",
                f"{message_id}: {_STATUS_EN.get(status, status)}; nothing to retry",
            )
        )
    if unknown:
        # A mistyped id would otherwise look like a message that needed no retry.
        names = ", ".join(unknown)
        raise click.ClickException(
            say(
                lang,
                f"No existe el mensaje {names} en la bandeja de salida."
                if len(unknown) == 1
                else f"No existen los mensajes {names} en la bandeja de salida.",
                f"There is no outbox message {names}."
                if len(unknown) == 1
                else f"There are no outbox messages {names}.",
            )
        )
