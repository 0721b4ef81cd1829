"""``puente worker`` delivers the outbox, sequences the audit log and gets its checkpoints
cosigned by the peers' witnesses; ``puente outbox list|retry`` lets an operator see and requeue
what could not be delivered."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import db
from exchange.agencies import UnknownAgency, get_agency
from exchange.audit_sequencer import ensure_integrator, integrate_pending
from exchange.auth import as_utc, utcnow
from exchange.cli import language_option, print_json, say, with_hub
from exchange.cli.hub import warn_of_unsafe_keys
from exchange.outbox import STATUSES, OutboxMessage, requeue, run_worker, unknown_message_ids
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
    warn_of_unsafe_keys(app)
    click.echo(
        f"puente worker: entregando / delivering (batch {batch}, poll {poll_seconds}s)", err=True
    )
    try:
        transport = AgencyTransports.for_hub(app)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
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
    click.echo(
        f"puente worker: entregadas / delivered {totals.delivered}, "
        f"reintento / retrying {totals.retrying}, sin entregar / dead {totals.dead}",
        err=True,
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
@with_hub
def outbox_list(
    app: Flask,
    status: str | None,
    agency_id: str | None,
    peer_hub: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List outbox messages, newest first. A message to a peer hub (a consent revocation for
    one of its agencies) shows as ``<hub>/<agency>``."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    if agency_id:
        query = query.where(OutboxMessage.agency_id == agency_id)
    if peer_hub:
        query = query.where(OutboxMessage.peer_hub == peer_hub)
    with db.database(app).sessions() as session:
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
            # last_error may quote a receiver: escaped, so one message stays one line.
            error = printable(message.last_error or "")
            click.echo(
                f"{message.id}  {message.status:<9}  {recipient}  {message.kind}  "
                f"attempts={message.attempts}  {lease}{error}".rstrip()
            )
    if not listed and not as_json:  # (--json: no line, as NDJSON of no message is)
        click.echo("no messages / ningún mensaje")


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


def _requeue_dead_to_peer(session: Session, peer_hub: str, lang: str) -> int:
    """Requeue every dead notice to ``peer_hub`` (``--all-dead --peer``): requeued by id, in
    batches, as the outbox's own requeue filters by agency only."""
    from exchange.peers import Peer

    if session.get(Peer, peer_hub) is None:
        # A mistyped hub id would otherwise look like a peer with nothing dead.
        raise click.ClickException(
            say(
                lang,
                f"No hay un nodo par {peer_hub!r} registrado (puente peer list).",
                f"No peer hub {peer_hub!r} is pinned (puente peer list).",
            )
        )
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
            try:
                get_agency(session, agency_id)  # a mistyped id is a mistake, not "none dead"
            except UnknownAgency as error:
                raise click.ClickException(error.message(lang)) from error
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
    # Ids that all name nothing get the error alone: "0 requeued" would read as if they did.
    if all_dead or len(unknown) < len(set(message_ids)):
        click.echo(f"{count} reencolados / requeued")
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
