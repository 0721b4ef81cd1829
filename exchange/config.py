"""One configuration path: defaults, then the instance file, then ``PUENTE_*`` environment.

Every setting is listed once here and once in the README. Keys are namespaced
(``DATABASE_*``, ``AUDIT_*``, ``OAUTH2_*``) so a newcomer can tell where a value is used.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from schemas.errors import BilingualError

#: The instance file read from the instance folder, if present (Python syntax, UPPERCASE names).
INSTANCE_CONFIG_FILE = "puente.cfg"
#: Where ``puente serve`` and ``puente demo`` listen unless ``--bind`` says otherwise.
DEFAULT_BIND = "127.0.0.1:8000"


def public_url_for_bind(bind: str) -> str:
    """The address clients use when ``PUBLIC_URL`` is not set: ``http://HOST:PORT`` of the
    address gunicorn listens on (``puente serve --bind`` passes it on as ``PUENTE_BIND``
    before the app is imported). A Unix socket or file descriptor has no such address."""
    if bind.startswith(("unix:", "fd://")):
        bind = DEFAULT_BIND
    host, _colon, port = bind.rpartition(":")
    if not (host and port.isdigit()):
        host, port = bind, "8000"  # a host alone: gunicorn's default port
    # "Every address" is nobody's address to call: the loopback one works on this machine;
    # elsewhere set PUENTE_PUBLIC_URL (the README says so).
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)  # noqa: S104
    return f"http://{host}:{port}"


DEFAULTS: dict[str, Any] = {
    # Identity of this hub; used in the audit log origin and federation.
    "HUB_ID": "mx.local.puente",
    "HUB_NAME": "Puente (local)",
    # Database: None means a SQLite file under the instance folder.
    "DATABASE_URL": None,
    "DATABASE_ECHO": False,
    # Largest request body accepted, in bytes (bulk pushes stream; they have their own limit).
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "BULK_MAX_CONTENT_LENGTH": 512 * 1024 * 1024,
    # Bulk pushes: lines accepted per request, and valid lines stored per transaction.
    "BULK_MAX_LINES": 100_000,
    "BULK_BATCH_SIZE": 500,
    # Idempotency-Key answers are replayed for at least this long, then pruned.
    "IDEMPOTENCY_KEY_HOURS": 24,
    # Data keys (record bodies encrypted at rest): files in this folder (relative to the
    # instance folder), and/or DATA_KEY = "key_id:base64key[,…]" from the environment.
    "DATA_KEYS_DIR": "keys/data",
    "DATA_KEY": None,
    # Audit log origin (C2SP checkpoint origin line); None means "<HUB_ID>/audit".
    "AUDIT_ORIGIN": None,
    # Hub keys: files under the instance folder unless given as paths. The key texts themselves
    # may instead come from the environment (PUENTE_AUDIT_LOG_KEY, PUENTE_AUDIT_WITNESS_KEY).
    "AUDIT_LOG_KEY": None,
    "AUDIT_WITNESS_KEY": None,
    "AUDIT_LOG_KEY_FILE": "keys/log.key",
    "AUDIT_WITNESS_KEY_FILE": "keys/witness.key",
    # Audit sequencing: the integrator thread (None: in `puente serve` workers unless TESTING),
    # how often it runs, entries per index batch and per run, and the spacing of checkpoints.
    "AUDIT_INTEGRATOR_THREAD": None,
    "AUDIT_INTEGRATE_INTERVAL": 0.25,
    "AUDIT_BATCH_SIZE": 256,
    "AUDIT_MAX_PER_RUN": 4096,
    "AUDIT_CHECKPOINT_INTERVAL": 0.25,
    # Cosignatures: seconds between `puente worker`'s rounds asking the peers' witnesses to
    # cosign the latest checkpoint, and the deadline of one request to one witness.
    "AUDIT_WITNESS_INTERVAL": 5.0,
    "AUDIT_WITNESS_TIMEOUT": 10.0,
    # Federation: seconds a lookup waits for the peer hub's answer (a request worker waits
    # with it, so keep it short).
    "FEDERATION_TIMEOUT": 10.0,
    # ... and the least time a lookup's answer takes: a lookup of a child this hub holds costs
    # decisions and audit entries that one of an unknown child does not, and the difference in
    # time would tell the asking hub which children are here.
    "FEDERATION_ANSWER_FLOOR": 0.25,
    # Least seconds a refused record read takes (404, or a child with nothing readable), so that
    # time does not tell an existing record from none (exchange.api.record_reads). It must
    # exceed the slowest refusal on the deployment (deciding and auditing a refused read of a
    # child with many records took ~80 ms on PostgreSQL): refusals are rare in legitimate use.
    "READ_REFUSAL_FLOOR": 0.2,
    # Audit API: largest page of GET /v1/audit/entries; denial-spike and access-request-spike
    # alerts (denials, or access requests filed, of one actor within the window).
    "AUDIT_ENTRIES_PAGE_MAX": 1000,
    "AUDIT_ALERT_DENIALS": 10,
    "AUDIT_ALERT_ACCESS_REQUESTS": 50,
    "AUDIT_ALERT_WINDOW_SECONDS": 3600,
    # Consent: a JSON file of hard legal rules added to the shipped ones (consent.Rule format;
    # relative to the instance folder). The shipped rules cannot be switched off.
    "CONSENT_RULES_FILE": None,
    # Hub signing key (Ed25519 PEM) for webhook notifications; or its text in
    # PUENTE_HUB_SIGNING_KEY.
    "HUB_SIGNING_KEY": None,
    "HUB_SIGNING_KEY_FILE": "keys/hub-signing.key",
    # Delivery outbox (puente worker): attempts before a message is dead (110: about three
    # days at the 1 h ceiling, two to four with the jitter, so a receiver down over a weekend
    # loses nothing), exponential backoff (base and ceiling, seconds), how long a worker's claim
    # lasts, webhook request timeout.
    "OUTBOX_MAX_ATTEMPTS": 110,
    "OUTBOX_BACKOFF_SECONDS": 5.0,
    "OUTBOX_BACKOFF_MAX_SECONDS": 3600.0,
    "OUTBOX_LEASE_SECONDS": 60.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # File drop: agencies whose webhook_url is "file-drop" (or a file: URL inside this folder)
    # get each notification as a file in <FILE_DROP_PATH>/<agency id>; relative to the instance.
    "FILE_DROP_PATH": "drop",
    # Logging: JSON lines to stderr.
    "LOG_LEVEL": "INFO",
    # Language of human-readable messages when the client does not ask (es or en).
    "DEFAULT_LANGUAGE": "es",
    # Public address of this hub (used in links, the discovery document, /openapi.json and
    # as the token issuer); by default the address `puente serve --bind` listens on.
    "PUBLIC_URL": public_url_for_bind(os.environ.get("PUENTE_BIND", DEFAULT_BIND)),
    # Lifetime of OAuth2 access tokens, in seconds; never more than 900 (15 minutes).
    "OAUTH2_TOKEN_SECONDS": 900,
    # Rate limits (exchange/ratelimit.py), in the ``limits`` notation ("10 per minute",
    # "100 per hour; 1000 per day"). Failed client authentication at /oauth/* and unknown bearer
    # tokens, per address and per client id: None means "10 per minute", but off under TESTING;
    # "" turns it off. RATE_LIMIT: every request of one authenticated client (None: no limit).
    "RATE_LIMIT_AUTH_FAILURES": None,
    "RATE_LIMIT": None,
    # Where the counters live: memory:// (each process its own) or redis://host:6379/0 (shared
    # by all workers and hosts); the counting strategy (fixed-window, moving-window,
    # sliding-window-counter); trusted reverse proxies whose X-Forwarded-For names the client.
    "RATE_LIMIT_STORAGE": "memory://",
    "RATE_LIMIT_STRATEGY": "fixed-window",
    "RATE_LIMIT_PROXY_HOPS": 0,
    # Portal (exchange/portal/): the secret that signs its session cookies (None: the file
    # below, which `puente init` creates), how many hours a login lasts at most (a whole
    # number ≥ 1), and failed logins allowed per e-mail from one client address, per client
    # address, and per e-mail from every address together ("" turns a limit off; see
    # exchange/portal/login.py for what each refuses).
    "PORTAL_SECRET_KEY": None,
    "PORTAL_SECRET_KEY_FILE": "keys/portal-secret.key",
    "PORTAL_SESSION_HOURS": 8,
    "PORTAL_LOGIN_FAILURES": "10 per 15 minutes",
    "PORTAL_LOGIN_FAILURES_ADDRESS": "30 per 15 minutes",
    "PORTAL_LOGIN_FAILURES_EMAIL": "100 per 15 minutes",
}

#: Settings that are a whole number of hours, one at least (a login that lasts no time is none).
WHOLE_HOURS = ("PORTAL_SESSION_HOURS",)


def instance_path_from_env() -> Path:
    """The instance folder: ``PUENTE_INSTANCE_PATH`` (an empty value counts as unset) or
    ``./instance``, made absolute."""
    return Path(os.environ.get("PUENTE_INSTANCE_PATH") or "instance").resolve()


def default_database_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'puente.db'}"


def resolve_instance_file(instance_path: Path, value: str | os.PathLike[str]) -> Path:
    """Paths in settings are relative to the instance folder unless absolute."""
    path = Path(value)
    return path if path.is_absolute() else instance_path / path


class SettingError(BilingualError, ValueError):
    """A setting whose value cannot be used; says which one and what it takes."""


#: Settings read by ``puente serve`` (exchange/serving.py) from the environment only.
SERVING_INTEGERS = ("WORKERS", "THREADS", "WORKER_TIMEOUT", "GRACEFUL_TIMEOUT")
LANGUAGES = ("es", "en")
#: ``PUENTE_LANG`` as a locale names it: ``es``, ``en``, or with a region and encoding
#: (``es_MX.UTF-8``), as the command line reads it (exchange.cli.default_language).
LANG_VALUE = re.compile(r"(es|en)([_.@-].*)?", re.IGNORECASE)
#: Counts and sizes that 0 would break (a bulk push stored 0 lines at a time, a notification
#: dead before its first attempt, an empty page of the audit log) or that the code reading them
#: would quietly replace by its default: a whole number ≥ 1.
AT_LEAST_ONE = (
    "MAX_CONTENT_LENGTH",
    "BULK_MAX_CONTENT_LENGTH",
    "BULK_MAX_LINES",
    "BULK_BATCH_SIZE",
    "IDEMPOTENCY_KEY_HOURS",
    "AUDIT_BATCH_SIZE",
    "AUDIT_MAX_PER_RUN",
    "AUDIT_ENTRIES_PAGE_MAX",
    "AUDIT_ALERT_DENIALS",
    "AUDIT_ALERT_ACCESS_REQUESTS",
    "AUDIT_ALERT_WINDOW_SECONDS",
    "OUTBOX_MAX_ATTEMPTS",
    "OAUTH2_TOKEN_SECONDS",
)
#: Seconds that 0 would break (a timeout of 0 fails every request, a lease of 0 hands a message
#: to two workers) or that the code reading them would quietly replace by its default: > 0.
#: The floors (READ_REFUSAL_FLOOR, FEDERATION_ANSWER_FLOOR) may be 0: that is no floor.
MORE_THAN_ZERO = (
    "AUDIT_INTEGRATE_INTERVAL",
    "AUDIT_CHECKPOINT_INTERVAL",
    "AUDIT_WITNESS_INTERVAL",
    "AUDIT_WITNESS_TIMEOUT",
    "FEDERATION_TIMEOUT",
    "OUTBOX_BACKOFF_SECONDS",
    "OUTBOX_BACKOFF_MAX_SECONDS",
    "OUTBOX_LEASE_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
)
#: Settings in the ``limits`` notation (exchange/ratelimit.py, exchange/portal/login.py):
#: checked here with the others, so that a wrong one is named where it was written.
LIMITS = (
    "RATE_LIMIT",
    "RATE_LIMIT_AUTH_FAILURES",
    "PORTAL_LOGIN_FAILURES",
    "PORTAL_LOGIN_FAILURES_ADDRESS",
    "PORTAL_LOGIN_FAILURES_EMAIL",
)
#: Switches whose default, None, lets the process decide (the integrator thread: in
#: ``puente serve`` workers): set, they are true or false like any switch — ``"off"`` or
#: ``"no"``, which the environment gives as text, are not false, and must not count as true.
SWITCHES_OR_UNSET = ("AUDIT_INTEGRATOR_THREAD",)
#: Texts whose default, None, means unset: set, they are text (or a path). The environment
#: gives a value that reads as JSON as such (``PUENTE_AUDIT_ORIGIN=123`` is a number), which
#: no key, origin, address or file name is.
TEXTS_OR_UNSET = (
    "DATABASE_URL",
    "DATA_KEY",
    "AUDIT_ORIGIN",
    "AUDIT_LOG_KEY",
    "AUDIT_WITNESS_KEY",
    "CONSENT_RULES_FILE",
    "HUB_SIGNING_KEY",
    "PORTAL_SECRET_KEY",
)
#: A hub id as the audit-event schema takes it, and as a peer's is checked
#: (exchange.peer_checks.HUB_ID): this one is in every audit entry, token and federated request.
HUB_ID_VALUE = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def check_settings(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, at start, a setting whose value is not of its kind (``PUENTE_MAX_CONTENT_LENGTH=abc``
    would otherwise fail every request later): numbers must be numbers in their range, switches
    true/false, the hub id and public address usable. Each is named where it was written."""
    wrong: list[tuple[str, str, str]] = []  # (setting, what it takes es, en)
    for name, default in DEFAULTS.items():
        takes = _kind_wanted(name, default, config.get(name))
        if takes is not None:
            wrong.append((name, *takes))
    named = {name for name, _es, _en in wrong}
    for name in LIMITS:
        if name not in named and not _are_limits(config.get(name)):
            wrong.append(
                (
                    name,
                    "un límite como «10 per minute», o varios («10 per minute; 100 per hour»; "
                    "per second, minute, hour, day, month o year), o vacío para ninguno",
                    "a limit such as '10 per minute', or several ('10 per minute; 100 per "
                    "hour'; per second, minute, hour, day, month or year), or empty for none",
                )
            )
    hub_id = config.get("HUB_ID")
    if isinstance(hub_id, str) and not HUB_ID_VALUE.fullmatch(hub_id):
        wrong.append(
            (
                "HUB_ID",
                "un id de hub como mx.chp.puente: hasta 100 minúsculas, cifras, '.', '_' o '-'",
                "a hub id such as mx.chp.puente: up to 100 lowercase letters, digits, '.', '_' "
                "or '-'",
            )
        )
    public_url = config.get("PUBLIC_URL")
    if isinstance(public_url, str) and not _usable_public_url(public_url):
        wrong.append(
            (
                "PUBLIC_URL",
                "una URL http(s) absoluta como https://puente.example.org, sin usuario, "
                "contraseña, consulta ni fragmento",
                "an absolute http(s) URL such as https://puente.example.org, without user, "
                "password, query or fragment",
            )
        )
    if config.get("DEFAULT_LANGUAGE") not in LANGUAGES:
        wrong.append(("DEFAULT_LANGUAGE", "es o en", "es or en"))
    # The command line's language; empty counts as unset (then LANG, the locale, decides).
    if environ.get("PUENTE_LANG") and not LANG_VALUE.fullmatch(environ["PUENTE_LANG"]):
        wrong.append(("LANG", "es o en", "es or en"))
    for name in SERVING_INTEGERS:
        text = environ.get(f"PUENTE_{name}")
        if text is not None and not (text.strip().isdigit() and int(text) > 0):
            wrong.append((name, "un número entero > 0", "a whole number > 0"))
    if wrong:
        in_file = _names_in_file(config)
        listed_es = "; ".join(
            _shown(config, environ, in_file, name, "es", f"debe ser {es}") for name, es, _ in wrong
        )
        listed_en = "; ".join(
            _shown(config, environ, in_file, name, "en", f"must be {en}") for name, _, en in wrong
        )
        raise SettingError(
            f"configuración no válida: {listed_es}", f"settings not valid: {listed_en}"
        )


def _kind_wanted(name: str, default: Any, value: Any) -> tuple[str, str] | None:
    """What ``name`` takes (Spanish, English) when ``value`` is not of its kind, else None."""
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if name in WHOLE_HOURS:
        if not (number and isinstance(value, int) and value >= 1):
            return "un número entero de horas ≥ 1", "a whole number of hours ≥ 1"
        return None
    if value is None:
        return None
    if name in SWITCHES_OR_UNSET:
        if isinstance(value, bool):
            return None
        return "true o false, o sin poner", "true or false, or unset"
    if name in TEXTS_OR_UNSET:
        # (bytes: a secret key written in puente.cfg as b"…", as Flask's own takes it)
        if isinstance(value, (str, bytes, os.PathLike)):
            return None
        return "un texto, o sin poner", "a text, or unset"
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else ("true o false", "true or false")
    if isinstance(default, int):
        least = 1 if name in AT_LEAST_ONE else 0
        if number and isinstance(value, int) and value >= least:
            return None
        return f"un número entero ≥ {least}", f"a whole number ≥ {least}"
    if isinstance(default, float):
        if name in MORE_THAN_ZERO:
            return None if number and value > 0 else ("un número > 0", "a number > 0")
        return None if number and value >= 0 else ("un número ≥ 0", "a number ≥ 0")
    if isinstance(default, str) and not isinstance(value, (str, os.PathLike)):
        return "un texto", "a text"
    return None


def _are_limits(value: Any) -> bool:
    """Whether ``value`` is limits (``"10 per minute; 100 per hour"``) or none (empty)."""
    if not value:
        return True
    from limits import parse_many

    try:
        parse_many(str(value))
    except ValueError:
        return False
    return True


def folder_problem(folder: Path) -> tuple[str, str] | None:
    """Why this process could not write files in ``folder`` (Spanish, English), or None. A
    folder not there yet is judged by the nearest folder above it that is (what is missing
    is made when first needed); writing is tried, not guessed from the mode, which says
    nothing of a read-only or virtual file system (``/proc``)."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} no es una carpeta", f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        cause = error.strerror or str(error)
        return (
            f"no se pueden escribir archivos en {existing} ({cause})",
            f"files cannot be written in {existing} ({cause})",
        )
    return None


def _usable_public_url(url: str) -> bool:
    """An absolute http(s) address clients can call: it becomes the token issuer and the
    audience of assertions, so a credential, query or fragment in it would be published or
    would make every assertion's audience wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and parts.password is None
        and not parts.query
        and not parts.fragment
        and not any(character.isspace() for character in url)
    )


def _names_in_file(config: Mapping[str, Any]) -> set[str]:
    """The UPPERCASE names the instance file assigns (it ran already, so it parses), so that an
    error names the file rather than the environment variable for a value written there."""
    root = getattr(config, "root_path", None)  # Flask's Config: the instance folder
    if root is None:
        return set()
    try:
        tree = ast.parse((Path(root) / INSTANCE_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.isupper()
    }


def without_credentials(url: str) -> str:
    """``https://…@host`` for ``https://user:password@host``: an address that is printed or
    logged (a setting's error, a peer's listed URL) must not show a password. Anything else is
    given back as it is."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return url
    if "@" not in netloc:
        return url
    return url.replace(netloc, "…@" + netloc.rpartition("@")[2], 1)


def _shown(
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    in_file: set[str],
    name: str,
    lang: str,
    takes: str,
) -> str:
    """``PUENTE_X = 'abc' (environment; must be …)`` or ``X = 'abc' (/…/puente.cfg; must be
    …)``: the setting as the operator wrote it and where, as :class:`UnknownSetting` says it."""
    variable = f"PUENTE_{name}"
    given = config.get(name, environ.get(variable))
    value = repr(without_credentials(given) if isinstance(given, str) else given)
    if variable in environ:  # the environment wins over the file
        where = "entorno" if lang == "es" else ENVIRONMENT
        return f"{variable} = {value} ({where}; {takes})"
    if name in in_file:
        root = getattr(config, "root_path", "")
        return f"{name} = {value} ({Path(root) / INSTANCE_CONFIG_FILE}; {takes})"
    return f"{variable} = {value} ({takes})"  # a default, or given by the caller (tests)


#: ``PUENTE_*`` variables read from the environment only, never as settings of the app.
ENVIRONMENT_ONLY = (
    "INSTANCE_PATH",  # where the instance folder is
    "BIND",
    "ACCESS_LOG",
    *SERVING_INTEGERS,  # puente serve (exchange/serving.py)
    "LANG",  # the command line's language
    "CLIENT_SECRET",  # puente import/export through the API
    "TEST_DATABASE_URL",
    "TEST_SHARED_DATA",  # the test suite (tests/conftest.py)
)


#: Where an :class:`UnknownSetting` was written, besides :data:`INSTANCE_CONFIG_FILE`.
ENVIRONMENT = "environment"


@dataclass(frozen=True)
class UnknownSetting:
    """A setting the hub does not read, as the operator wrote it: ``name`` in its ``source``
    (``PUENTE_X`` in the environment, ``X`` in puente.cfg) and the setting meant, written the
    same way, when one is close."""

    name: str
    source: str  # ENVIRONMENT or INSTANCE_CONFIG_FILE
    closest: str | None = None

    def described(self, lang: str = "en") -> str:
        """``PUENTE_DATABSE_URL (environment) → PUENTE_DATABASE_URL?``, in ``lang``."""
        where = "entorno" if lang == "es" and self.source == ENVIRONMENT else self.source
        if self.closest is None:
            return f"{self.name} ({where})"
        meant = f"¿{self.closest}?" if lang == "es" else f"{self.closest}?"
        return f"{self.name} ({where}) → {meant}"


def unknown_settings(
    names: Iterable[str],
    known_elsewhere: Iterable[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> list[UnknownSetting]:
    """Settings (``names`` without ``PUENTE_``: those of puente.cfg, then those of
    :func:`environment_setting_names`) that the hub does not read, each with the closest one it
    does when there is one: ``PUENTE_DATABSE_URL`` would otherwise be silently ignored and the
    hub would run on the SQLite file instead of the database meant. Each says where it was
    written, as the operator must look there: a name the environment gives is its, and the
    file's too when ``names`` holds it more often than the environment does."""
    listed = list(names)
    known = {*DEFAULTS, *ENVIRONMENT_ONLY, *known_elsewhere}
    from_environment = environment_setting_names(environ)
    described = []
    for name in sorted(set(listed) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        meant = close[0] if close else None
        in_environment = from_environment.count(name)
        if listed.count(name) > in_environment:
            described.append(UnknownSetting(name, INSTANCE_CONFIG_FILE, meant))
        if in_environment:
            environment_meant = f"PUENTE_{meant}" if meant else None
            described.append(UnknownSetting(f"PUENTE_{name}", ENVIRONMENT, environment_meant))
    return described


def environment_setting_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The names after ``PUENTE_`` of the environment's ``PUENTE_*`` variables, as
    Flask's ``from_prefixed_env`` reads them (a ``__`` marks a nested key: its first part)."""
    return [
        key.removeprefix("PUENTE_").split("__")[0]
        for key in environ
        if key.startswith("PUENTE_") and len(key) > len("PUENTE_")
    ]
