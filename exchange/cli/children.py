"""``puente children …``: probable duplicates for a person to review, the merge they decide,
and bringing the index up to date after an upgrade.

Nothing is ever merged automatically: ``duplicates`` only lists, ``merge A B`` merges child B
into child A when a person asks, and the merge is recorded in the audit log; ``distinct A B``
records that two children are different people, so the pair is not listed again. ``reindex``
stores what search needs for records pushed before the hub's upgrade; it never relinks.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import sys
from collections.abc import Iterator
from typing import Any

import click
from flask import Flask

from exchange import db
from exchange.child_duplicates import (
    IDENTIFIER_CONFLICT_WORDS,
    PairRefused,
    merge_children,
    probable_duplicates,
    record_distinct,
    withdraw_distinct,
)
from exchange.child_matching import DUPLICATE_MIN_SCORE
from exchange.cli import language_option, print_json, say, with_hub


@click.group("children")
def children_group() -> None:
    """Child index: duplicates, merges, distinct pairs, reindex / índice de NNA: duplicados,
    fusiones, personas distintas, reindexar."""


@children_group.command("duplicates")
@click.option(
    "--min-score",
    type=click.FloatRange(0, 1),
    default=DUPLICATE_MIN_SCORE,
    show_default=True,
    help="Lowest score listed / puntaje mínimo listado.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"duplicates": [...]} as JSON.')
@language_option
@with_hub
def duplicates_command(app: Flask, min_score: float, as_json: bool, lang: str) -> None:
    """List probable duplicate children and identifier conflicts (nothing is merged)."""
    session = db.database(app).sessions()
    with session:
        pairs = probable_duplicates(session, min_score)
    if as_json:
        print_json({"min_score": min_score, "duplicates": [pair.to_json() for pair in pairs]})
        return
    if not pairs:
        click.echo("Sin duplicados probables." if lang == "es" else "No probable duplicates.")
        return
    # Columns are separated by two spaces; each one reads in the language asked for.
    click.echo(
        say(
            lang,
            "NNA A  NNA B  puntaje  motivo  coinciden en  instituciones de A | de B  conflicto",
            "child A  child B  score  reason  alike in  agencies of A | of B  conflict",
        )
    )
    for pair in pairs:
        click.echo("  ".join(_pair_columns(pair, lang)))
    hint = say(
        lang,
        "Un conflicto: una institución envió un identificador (CURP, número ACNUR) que ya "
        "tiene otra NNA; se guardó aparte hasta que una persona decida. Confirme con las "
        "instituciones de cada NNA; fusione con: puente children merge CONSERVAR FUSIONAR "
        "--reason …; si son personas distintas: puente children distinct A B --reason … (no "
        "vuelven a listarse).",
        "A conflict: an agency pushed an identifier (CURP, UNHCR number) another child already "
        "holds; it was kept apart until a person decides. Check with each child's agencies; "
        "merge with: puente children merge KEEP MERGE --reason …; if they are different "
        "people: puente children distinct A B --reason … (not listed again).",
    )
    click.echo(hint, err=True)


#: How ``duplicates`` names what two children's profiles agree in (Spanish, English).
ALIKE_IN = {
    "name": ("nombre", "name"),
    "name_similar": ("nombre parecido", "similar name"),
    "date_of_birth": ("fecha de nacimiento", "date of birth"),
    "date_of_birth_near": ("fecha de nacimiento cercana", "near date of birth"),
    "date_of_birth_estimated": ("edad estimada", "estimated age"),
    "date_of_birth_swapped": (
        "fecha de nacimiento con día y mes invertidos",
        "date of birth with day and month swapped",
    ),
    "nationality": ("nacionalidad", "nationality"),
    "sex": ("sexo", "sex"),
}
IDENTIFIER_NAMES = {
    "curp": ("CURP", "CURP"),
    "unhcr": ("número ACNUR", "UNHCR number"),
    "agency_local": ("identificador local", "local id"),
    "child_local": ("número propio de la agencia para la NNA", "agency's own number for the child"),
}


#: How the list names identifiers a typo apart (DuplicatePair.identifier_near).
IDENTIFIER_NEAR_WORDS = {
    "curp": (
        "CURP a una o dos letras (¿mal escrita?)",
        "CURPs one or two characters apart (mistyped?)",
    ),
}


def _pair_columns(pair: Any, lang: str) -> list[str]:
    score = "-" if pair.score is None else f"{pair.score:.3f}"
    if pair.reason == "conflict":
        code = pair.identifier_kind or "?"
        kind_es, kind_en = IDENTIFIER_NAMES.get(code, (code, code))
        why = say(lang, f"conflicto de {kind_es}", f"{kind_en} conflict")
    else:
        why = "probable"
    alike = ", ".join(say(lang, *ALIKE_IN.get(code, (code, code))) for code in pair.matched_on)
    agencies = " | ".join(", ".join(side) or "-" for side in pair.agencies)
    raised = ""
    if pair.identifier_conflicts:
        raised = "; ".join(
            say(lang, *IDENTIFIER_CONFLICT_WORDS[kind]) for kind in pair.identifier_conflicts
        )
    if pair.identifier_near:
        near = "; ".join(
            say(lang, *IDENTIFIER_NEAR_WORDS.get(kind, (kind, kind)))
            for kind in pair.identifier_near
        )
        raised = f"{raised}; {near}" if raised else near
    if pair.raised_by:
        day = pair.raised_at.date().isoformat() if pair.raised_at else "?"
        by = say(
            lang, f"planteado por {pair.raised_by} el {day}", f"raised by {pair.raised_by} on {day}"
        )
        raised = f"{by}; {raised}" if raised else by
    return [pair.child_id, pair.other_child_id, score, why, alike or "-", agencies, raised or "-"]


#: The audit log's person id pattern (common/1 person_id).
PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,79}$")


def _person_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not PERSON_ID.match(value):
        raise click.BadParameter(
            f"{value!r}: use letters, digits and . _ : @ - / letras, dígitos y . _ : @ -"
        )
    return value


#: ``--by``: the person who decides a merge or a distinct pair, named in the audit log.
deciding_person = click.option(
    "--by",
    "person",
    default=getpass.getuser,
    show_default="the login name",
    callback=_person_id,
    help="Who decides: the id of an active registered person with the administrator role, "
    "named in the audit log / quién decide: id de una persona registrada y activa con rol de "
    "administrador, que queda en la bitácora.",
)


def require_administrator(session: Any, person_id: str, lang: str) -> None:
    """The audit log names ``person_id`` as the administrator who decided: oversight must be
    able to hold a registered person to it, not whatever name the shell gave."""
    from exchange.people import Person

    person = session.get(Person, person_id)
    if person is None or not person.active or "administrator" not in person.role_list:
        raise click.ClickException(
            say(
                lang,
                f"«{person_id}» no es una persona registrada y activa con rol de administrador; "
                "indique con --by quién decide (puente person add … --role administrator). "
                "Nada cambió.",
                f"'{person_id}' is not an active registered person with the administrator "
                "role; name who decides with --by (puente person add … --role administrator). "
                "Nothing changed.",
            )
        )


@children_group.command("merge")
@click.argument("into")
@click.argument("merged")
@click.option(
    "--reason",
    help="Required: why they are one child (no names) / obligatorio: motivo (sin nombres).",
)
@deciding_person
@click.option(
    "--force",
    is_flag=True,
    help="Merge although the records disagree (CURP, UNHCR individual number, sex, "
    "nationality, date of birth) / fusionar aunque los expedientes no coincidan.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the merge as JSON.")
@language_option
@with_hub
def merge_command(
    app: Flask,
    into: str,
    merged: str,
    reason: str | None,
    person: str,
    force: bool,
    as_json: bool,
    lang: str,
) -> None:
    """Merge child MERGED into child INTO (its identifiers move; reads of it follow INTO).

    A merge cannot be undone, so --reason is required: it is kept with the merged child.
    --by must name an active registered administrator (the audit log names them). Children
    whose records hold different CURPs or UNHCR individual numbers, or disagree on sex,
    nationality or date of birth, are merged only with --force.
    """
    if reason is None or not reason.strip():
        raise click.UsageError(
            say(
                lang,
                "Indique --reason: por qué son la misma NNA (sin nombres). Una fusión no se "
                "puede deshacer y el motivo queda registrado.",
                "Give --reason: why they are the same child (no names). A merge cannot be "
                "undone and the reason is kept on record.",
            )
        )
    reason = reason.strip()
    session = db.database(app).sessions()
    with session, _pair_refusals(lang):
        require_administrator(session, person, lang)
        result = merge_children(
            session,
            into,
            merged,
            reason=reason,
            actor_person=person,
            check_conflicts=not force,
        )
        session.commit()
    if as_json:
        print_json(result.to_json())
    elif result.already_merged:
        click.echo(
            f"{merged} ya estaba fusionado en {into}; nada cambió."
            if lang == "es"
            else f"{merged} was already merged into {into}; nothing changed."
        )
    else:
        click.echo(
            f"{merged} fusionado en {into}: {result.identifiers_moved} identificadores, "
            f"{result.profiles_moved} perfiles."
            if lang == "es"
            else f"{merged} merged into {into}: {result.identifiers_moved} identifiers, "
            f"{result.profiles_moved} profiles moved."
        )


@contextlib.contextmanager
def _pair_refusals(lang: str) -> Iterator[None]:
    """An unknown child or a refused decision about two children ends the command with one
    line in the language asked for."""
    try:
        yield
    except LookupError as error:
        raise click.ClickException(
            say(lang, f"No existe la NNA {error.args[0]}.", f"No such child {error.args[0]}.")
        ) from error
    except PairRefused as refused:
        raise click.ClickException(
            refused.message_es if lang == "es" else refused.message_en
        ) from refused


@children_group.command("distinct")
@click.argument("child")
@click.argument("other")
@click.option(
    "--reason",
    help="Required: why they are different people (no names) / obligatorio: motivo (sin nombres).",
)
@click.option("--withdraw", is_flag=True, help="Withdraw the record (it was a mistake).")
@deciding_person
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@language_option
@with_hub
def distinct_command(
    app: Flask,
    child: str,
    other: str,
    reason: str | None,
    withdraw: bool,
    person: str,
    as_json: bool,
    lang: str,
) -> None:
    """Record that CHILD and OTHER are different people ("not the same child").

    The pair is no longer listed by ``duplicates``, its open conflicts are resolved, and a
    merge of the two is refused until the record is withdrawn with --withdraw.
    """
    if not withdraw and (reason is None or not reason.strip()):
        raise click.UsageError(
            say(
                lang,
                "Indique --reason: por qué son personas distintas (sin nombres); el motivo "
                "queda registrado.",
                "Give --reason: why they are different people (no names); the reason is kept "
                "on record.",
            )
        )
    session = db.database(app).sessions()
    with session, _pair_refusals(lang):
        require_administrator(session, person, lang)
        if withdraw:
            result = withdraw_distinct(session, child, other, actor_person=person)
        else:
            result = record_distinct(
                session, child, other, reason=(reason or "").strip(), actor_person=person
            )
        session.commit()
    if as_json:
        print_json(result.to_json())
        return
    pair = f"{result.child_id} / {result.other_child_id}"
    if withdraw:
        click.echo(
            say(
                lang,
                f"{pair}: no había registro; nada cambió.",
                f"{pair}: nothing was recorded; nothing changed.",
            )
            if result.unchanged
            else say(
                lang,
                f"{pair}: registro retirado; pueden volver a listarse como posibles duplicados.",
                f"{pair}: record withdrawn; they may be listed as probable duplicates again.",
            )
        )
    elif result.unchanged:
        click.echo(
            say(
                lang,
                f"{pair}: ya estaba registrado como personas distintas; nada cambió.",
                f"{pair}: already recorded as different people; nothing changed.",
            )
        )
    else:
        click.echo(
            say(
                lang,
                f"{pair}: registrados como personas distintas; no volverán a listarse "
                f"({result.suggestions_resolved} conflicto(s) resuelto(s)).",
                f"{pair}: recorded as different people; they will not be listed again "
                f"({result.suggestions_resolved} conflict(s) resolved).",
            )
        )


@children_group.command("reindex")
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Records per transaction / expedientes por transacción.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@language_option
@with_hub
def reindex_command(app: Flask, batch_size: int, as_json: bool, lang: str) -> None:
    """Bring the child index up to date with stored records (run after an upgrade).

    Reads every record's latest version and adds what search needs and an earlier version of
    the hub did not keep (documents, INM files, agency-local ids; identity profiles). Never
    changes which child a record belongs to. Safe to interrupt and to run again.
    """
    from exchange.children_reindex import records_to_read, reindex_children
    from exchange.crypto import DataKeyError, data_keyring

    sessions = db.database(app).sessions
    with _progress(records_to_read(sessions), lang) as bar:
        try:
            summary = reindex_children(
                sessions, data_keyring(app), batch_size=batch_size, progress=bar.update
            )
        except DataKeyError as error:
            raise click.ClickException(
                say(
                    lang,
                    f"No se pudo descifrar un expediente ({error}); los lotes ya hechos quedan. "
                    "Revise las claves de datos y vuelva a ejecutar.",
                    f"A record could not be decrypted ({error}); batches already done stay. "
                    "Check the data keys and run it again.",
                )
            ) from error
    if as_json:
        print_json(summary.to_json())
        return
    read = summary.records_read
    if not summary.changed:
        click.echo(
            say(
                lang,
                f"El índice de NNA ya estaba al día: nada que hacer ({read} expedientes leídos).",
                f"The child index was already up to date: nothing to do ({read} records read).",
            )
        )
        return
    added, refreshed = summary.identifiers_added, summary.profiles_refreshed
    click.echo(
        say(
            lang,
            f"Expedientes leídos: {read}; identificadores de búsqueda agregados: {added}; "
            f"perfiles de identidad actualizados: {refreshed}.",
            f"Records read: {read}; search identifiers added: {added}; "
            f"identity profiles refreshed: {refreshed}.",
        )
    )


def _progress(total: int, lang: str) -> Any:
    """A progress bar on stderr over the records (off when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=say(lang, " expedientes", " records"),
        desc=say(lang, "reindexando", "reindexing"),
        file=sys.stderr,
        disable=None,
        mininterval=0.5,
        dynamic_ncols=True,
    )
