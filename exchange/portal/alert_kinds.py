"""The kinds of alert ``GET /v1/audit/alerts`` answers (``kind``), in words for oversight:
each one's name and what it means, in Spanish and English, the most urgent first — what
``/alerts`` shows under each. The codes and their rules are the alert sources' own
(exchange.audit_queries, exchange.consents.overrides, exchange.witness_service)."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.portal.blueprint import Text


@dataclass(frozen=True)
class AlertKind:
    code: str
    name: Text
    meaning: Text


ALERT_KINDS: tuple[AlertKind, ...] = (
    AlertKind(
        "override_unreviewed",
        ("Acceso de emergencia sin revisar", "Unreviewed emergency override"),
        (
            "Un acceso de emergencia que la Procuraduría aún no revisa 24 horas después de "
            "abrirse, sea cuando sea que se abrió (no solo en el periodo elegido). Cada acceso "
            "de emergencia debe revisarse; mientras no se revise, sigue en vigor hasta su fin.",
            "An emergency override the Procuraduría has still not reviewed 24 hours after it was "
            "opened, whenever that was (not only within the period chosen). Every emergency "
            "override must be reviewed; until it is, it stays in force until its end.",
        ),
    ),
    AlertKind(
        "peer_log_fork",
        ("Bifurcación del registro de un nodo par", "Fork in a peer hub's log"),
        (
            "Este nodo, como testigo de un nodo par, recibió dos árboles distintos del mismo "
            "tamaño: ese nodo no muestra la misma bitácora a todos.",
            "This hub, as a peer hub's witness, was sent two different trees of the same size: "
            "that hub does not show the same log to everyone.",
        ),
    ),
    AlertKind(
        "own_log_conflict",
        ("Conflicto en la bitácora de este nodo", "Conflict in this hub's own log"),
        (
            "El testigo de un nodo par cofirmó un árbol de la bitácora de este nodo que este "
            "nodo no firmó.",
            "A peer hub's witness cosigned a tree of this hub's log that this hub did not sign.",
        ),
    ),
    AlertKind(
        "override",
        ("Acceso de emergencia", "Emergency override"),
        (
            "Un acceso de emergencia por interés superior en vigor en algún momento del periodo: "
            "una persona con el rol de oficial de acceso de emergencia abrió algunas categorías "
            "de datos de una niña, niño o adolescente sin consentimiento, por 72 horas como "
            "máximo, con un fundamento legal y una justificación escrita (que se lee en la "
            "página del acceso; cada lectura queda en la bitácora).",
            "An emergency best-interest override in force at some time during the period: a "
            "person with the emergency override officer role opened some categories of a "
            "child's data without consent, for at most 72 hours, on a legal basis and a written "
            "justification (read on the override's page; each reading is logged).",
        ),
    ),
    AlertKind(
        "denial_spike",
        ("Pico de denegaciones", "Denial spike"),
        (
            "Una institución o persona a la que se negó algo al menos tantas veces como el "
            "umbral en el periodo: puede estar buscando niñas, niños o datos a los que no tiene "
            "derecho. No cuentan las decisiones sobre solicitudes de acceso de otros ni las "
            "pruebas de decisión de un oficial.",
            "An agency or person refused something at least as many times as the threshold "
            "within the period: it may be looking for children or data it has no right to. "
            "Decisions on other people's access requests and an officer's decision dry runs do "
            "not count.",
        ),
    ),
    AlertKind(
        "request_denial_spike",
        ("Pico de solicitudes denegadas", "Request denial spike"),
        (
            "Una persona que denegó al menos tantas solicitudes de acceso como el umbral en el "
            "periodo: el acceso de quien representa a una niña, niño o adolescente es un "
            "derecho, y tantas denegaciones merecen revisarse.",
            "A person who denied at least as many access requests as the threshold within the "
            "period: access for a child's representative is a right, and so many denials are "
            "worth a look.",
        ),
    ),
    AlertKind(
        "access_request_spike",
        ("Pico de solicitudes de acceso", "Access request spike"),
        (
            "Una institución o persona que hizo al menos tantas solicitudes de acceso como el "
            "umbral en el periodo: puede estar sondeando qué niñas, niños o adolescentes tiene "
            "el nodo, o saturando la cola de los oficiales.",
            "An agency or person that filed at least as many access requests as the threshold "
            "within the period: it may be probing which children the hub holds, or burying the "
            "officers' queue.",
        ),
    ),
)

#: (seconds, the last one in Spanish and English, the last several): «la última hora», "the last
#: 24 hours". Days only beyond two, as a day's window is said in hours.
_UNITS: tuple[tuple[int, Text, Text], ...] = (
    (86400, ("el último día", "the last day"), ("los últimos {} días", "the last {} days")),
    (3600, ("la última hora", "the last hour"), ("las últimas {} horas", "the last {} hours")),
    (
        60,
        ("el último minuto", "the last minute"),
        ("los últimos {} minutos", "the last {} minutes"),
    ),
    (
        1,
        ("el último segundo", "the last second"),
        ("los últimos {} segundos", "the last {} seconds"),
    ),
)


def window_label(seconds: int) -> Text:
    """A window as a person says it: «las últimas 24 horas», "the last 7 days"."""
    for size, one, several in _UNITS:
        if seconds % size or (size == 86400 and seconds <= 2 * 86400):
            continue
        count = seconds // size
        if count == 1:
            return one
        return several[0].format(count), several[1].format(count)
    raise ValueError(f"not a window: {seconds} seconds")
