"""How outbox notifications reach agencies: a small transport contract, the signed webhook
and the file drop.

A notification is a Security Event Token (RFC 8417): a JWT signed by the hub's own signing key
(Ed25519, JWS ``EdDSA`` compact serialisation, ``typ: secevent+jwt``, ``kid`` = the key's
RFC 7638 thumbprint), pushed to the agency's webhook as in RFC 8935: ``POST`` with
``Content-Type: application/secevent+jwt``. It carries identifiers only (record id and version,
child id, share id and kind, purpose) — never case content: the recipient reads the record
through the API, where the access rules apply.

Outcomes: any 2xx means delivered; 408, 429, 5xx, timeouts and connection failures are
transient (retried with backoff); other statuses, including redirects (never followed: a
notification must not be carried to an address nobody registered), are permanent — a
redirect's reason names where it pointed (:data:`REDIRECTED`), so the administrator sees that
the receiver moved (say from http to https) and can register the new address.
``WEBHOOK_TIMEOUT_SECONDS`` is a deadline for the whole request (name lookup, connection, TLS,
sending, status line, headers and body), not for each socket read: a receiver that answers one
byte at a time cannot hold a worker longer than that.

Each agency chooses its transport through its ``webhook_url`` (:class:`AgencyTransports`):

- an ``http(s)://`` address: the signed webhook (:class:`WebhookTransport`);
- ``file-drop``: the file drop (:class:`FileDropTransport`) into ``<FILE_DROP_PATH>/<agency id>``;
- a ``file:///…`` URL: the file drop into that folder, which must lie inside ``FILE_DROP_PATH``
  (so a registry entry can never make the hub write anywhere else on its machine).

The file drop is for offices that collect files (a shared folder, an SFTP server) instead of
running a web server: each notification is the same signed token the webhook would POST, one
file per notification, written atomically (a hidden temporary file in the same folder, synced,
then renamed into place) under a name that sorts by delivery time and never collides
(``20250314T101500.123456Z-msg_….jwt``). A reader that lists the folder never sees half a file.
Each file is mode 0640 and an agency folder the worker creates 0750, whatever the worker's
umask (which could only take bits away), keeping the setgid bit and group it inherits from its
parent: an office's account reads its folder through the folder's group (docs/adapters.md §6).
A worker killed mid-write leaves its hidden temporary file behind (the message is written
again, under a new name, when it is retried): the transport removes its own leftovers, by
their exact name and once they are :data:`STALE_TEMPORARY_SECONDS` old, when it next writes
to that folder.

The hub signing key is its own key (not the audit log key): ``keys/hub-signing.key``
(PKCS#8 PEM, mode 0600) under the instance folder, created by ``puente init``, or its PEM text
in ``PUENTE_HUB_SIGNING_KEY``.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from flask import Flask
from joserfc import jwt
from joserfc.jwk import OKPKey

from exchange.config import resolve_instance_file
from exchange.keys import write_private_key

if TYPE_CHECKING:
    from exchange.agencies import Agency
    from exchange.outbox import OutboxMessage

log = logging.getLogger("puente.worker")

SET_MEDIA_TYPE = "application/secevent+jwt"
#: The ``webhook_url`` value that chooses the file drop into the agency's own folder.
FILE_DROP = "file-drop"
#: Extension of a dropped notification (the file holds one compact JWS, a SET).
DROP_SUFFIX = ".jwt"
#: The hidden temporary file :func:`write_atomically` writes a dropped notification to first
#: (``.20250314T101500.123456Z-msg_….jwt.tmp``): only files named so are ever removed.
DROP_TEMPORARY = re.compile(r"\.\d{8}T\d{6}\.\d{6}Z-msg_[0-9a-f]+\.jwt\.tmp")
#: Age after which such a file is a leftover of a worker killed mid-write, not a write in
#: progress (one takes milliseconds; minutes leave room for a slow network folder).
STALE_TEMPORARY_SECONDS = 15 * 60.0
SET_TYPE = "secevent+jwt"
EVENT_BASE = "https://puente.mx/events/"
#: Why a message to an agency with neither webhook nor file drop died (its ``last_error``,
#: compared as stored: ``puente agency set-webhook`` keeps such messages for the agency to
#: read, or sends them once it has a webhook).
NO_WEBHOOK = "agency {} has no usable webhook"
#: Why a notification the receiver answered with a redirect died: redirects are never
#: followed; where it pointed tells the administrator the receiver moved.
REDIRECTED = (
    "HTTP {status}: redirects are not followed (Location: {location}); if the receiver moved, "
    "register its new address: puente agency set-webhook"
)
#: Modes of a dropped notification and of an agency's drop folder the worker creates.
DROP_FILE_MODE = 0o640
DROP_FOLDER_MODE = 0o750


class DeliveryError(Exception):
    """A notification could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Worth trying again later (receiver down, overloaded, slow)."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: The receiver did not answer at all (a timeout, no connection): the worker holds
        #: the agency's other messages rather than wait for each in turn.
        self.unreachable = unreachable


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help (no webhook, receiver refuses the notification)."""


@runtime_checkable
class DeliveryTransport(Protocol):
    """Carries one outbox message to one agency; returns when it was accepted, else raises
    :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`."""

    def deliver(self, agency: Agency, message: OutboxMessage) -> None: ...


# --- the hub signing key -------------------------------------------------------------------


def signing_key_path(app: Flask) -> Path:
    return resolve_instance_file(
        Path(app.instance_path), app.config.get("HUB_SIGNING_KEY_FILE") or "keys/hub-signing.key"
    )


def ensure_hub_signing_key(app: Flask) -> Path | None:
    """Create the hub signing key file unless it (or the environment key) exists."""
    path = signing_key_path(app)
    if app.config.get("HUB_SIGNING_KEY") or path.exists():
        return None
    key = OKPKey.generate_key("Ed25519")
    write_private_key(path, key.as_pem(private=True).decode("ascii").strip())
    return path


def load_hub_signing_key(app: Flask) -> OKPKey:
    text = app.config.get("HUB_SIGNING_KEY")
    if not text:
        path = signing_key_path(app)
        if not path.exists():
            raise FileNotFoundError(
                f"no se encontró la clave de firma del hub / hub signing key {path} not found "
                "(run 'puente init')"
            )
        text = path.read_text(encoding="ascii")
    key = OKPKey.import_key(text.encode("ascii") if isinstance(text, str) else text)
    if not key.is_private or key.as_dict(private=False).get("crv") != "Ed25519":
        raise ValueError("the hub signing key must be an Ed25519 private key")
    return key


def hub_signing_public_jwk(app: Flask) -> dict[str, Any]:
    """The public half of the hub signing key, as a JWK with its thumbprint as ``kid``
    (what receivers pin to verify notifications)."""
    key = load_hub_signing_key(app)
    jwk = key.as_dict(private=False)
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "kid": key.thumbprint()}


# --- the signed webhook --------------------------------------------------------------------


def security_event_token(
    key: OKPKey, *, issuer: str, audience: str, message: OutboxMessage, issued_at: int
) -> str:
    """The RFC 8417 SET for ``message``: ``jti`` is the message id, so a receiver that sees
    the same notification twice (a retry after a lost answer) can tell."""
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "jti": message.id,
        "events": {EVENT_BASE + message.kind: message.payload},
    }
    header = {"alg": "EdDSA", "typ": SET_TYPE, "kid": key.thumbprint()}
    return jwt.encode(header, claims, key, algorithms=["EdDSA"])


class NotificationSigner:
    """Signs outbox messages as Security Event Tokens with the hub signing key: one signer
    for every transport, so a notification reads the same however it travels."""

    def __init__(self, app: Flask) -> None:
        self.key = load_hub_signing_key(app)
        self.issuer = str(app.config["HUB_ID"])

    def token(self, agency: Agency, message: OutboxMessage) -> str:
        return security_event_token(
            self.key,
            issuer=self.issuer,
            audience=agency.id,
            message=message,
            issued_at=int(time.time()),
        )


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: a hub POSTs where the receiver is registered or pinned, and a
    redirect would turn the POST into a GET elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError, handled as permanent below


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (RFC 9110 §10.2.3): a number of
    seconds, or an HTTP date (then counted from ``now``). Never negative. ``None`` when it is
    absent, neither form, or a date already past (it asks for no wait); the outbox then
    applies its own backoff, and caps what is given at ``OUTBOX_BACKOFF_MAX_SECONDS`` either
    way."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # "-0000": UTC, as HTTP dates always are
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return seconds if seconds > 0 else None


class _Connections:
    """The connections one webhook request opens, so that they can all be cut when its
    deadline passes (a socket that is shut down ends any read or write blocked on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connecting: list[http.client.HTTPConnection] = []
        # Kept apart from their connections: urllib drops ``connection.sock`` once the status
        # and headers are in, while the response goes on reading the body from the socket.
        self._sockets: list[socket.socket] = []
        self.cut = False

    def watch(self, connection: http.client.HTTPConnection) -> None:
        connect = connection.connect

        def watched_connect() -> None:
            self._check()
            connect()  # meanwhile connection.sock is the socket being set up (TLS included)
            with self._lock:
                if connection.sock is not None:
                    self._sockets.append(connection.sock)
            self._check()

        connection.connect = watched_connect  # type: ignore[method-assign]
        with self._lock:
            self._connecting.append(connection)

    def _check(self) -> None:
        with self._lock:
            if self.cut:
                raise TimeoutError("webhook deadline passed")

    def cut_all(self) -> None:
        with self._lock:
            self.cut = True
            sockets = [c.sock for c in self._connecting if c.sock is not None] + self._sockets
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected (the check after connect stops it) or already closed


class _Watching(urllib.request.AbstractHTTPHandler):
    """Hands every connection it opens to a :class:`_Connections`."""

    def __init__(self, connections: _Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    def do_open(self, http_class: Any, req: Any, **http_conn_args: Any) -> Any:
        def connection(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            opened = http_class(*args, **kwargs)
            self.connections.watch(opened)
            return opened  # type: ignore[no-any-return]

        return super().do_open(connection, req, **http_conn_args)


class _WatchedHTTP(_Watching, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watching, urllib.request.HTTPSHandler):
    pass


class WebhookTransport:
    """POSTs a signed Security Event Token to the agency's ``webhook_url``.

    ``timeout`` (``WEBHOOK_TIMEOUT_SECONDS``) bounds the whole request: it runs in a thread of
    its own, and when the deadline passes the delivery fails as transient at once and the
    request's connections are shut down, which ends the thread too.
    """

    def __init__(
        self, app: Flask, timeout: float | None = None, signer: NotificationSigner | None = None
    ) -> None:
        self.signer = signer or NotificationSigner(app)
        self.timeout = float(timeout or app.config.get("WEBHOOK_TIMEOUT_SECONDS") or 10)

    def deliver(self, agency: Agency, message: OutboxMessage) -> None:
        url = agency.webhook_url
        if not url or not url.lower().startswith(("https://", "http://")):
            raise PermanentDeliveryError(NO_WEBHOOK.format(agency.id))
        fault = webhook_url_fault(url)
        if fault is not None:
            # Registered before the registry checked it: no retry can mend the address. Said
            # without the URL, which may carry a password.
            raise PermanentDeliveryError(f"agency {agency.id}: malformed webhook URL: {fault[1]}")
        token = self.signer.token(agency, message)
        request = urllib.request.Request(  # noqa: S310 - only http(s), checked above
            # A fragment is the receiver's own business, never part of an HTTP request (urllib
            # would send it to a proxy).
            urllib.parse.urldefrag(url).url,
            data=token.encode("ascii"),
            method="POST",
            headers={
                "Content-Type": SET_MEDIA_TYPE,
                "Accept": "application/json",
                "User-Agent": "puente-hub",
            },
        )
        connections = _Connections()
        outcome: list[BaseException | None] = []

        def send() -> None:
            try:
                self._send(request, connections)
            except BaseException as error:  # noqa: BLE001 - handed to the caller below
                outcome.append(error)
            else:
                outcome.append(None)

        sender = threading.Thread(target=send, name=f"puente-webhook-{message.id}", daemon=True)
        sender.start()
        sender.join(self.timeout)
        if not outcome:
            connections.cut_all()
            raise TransientDeliveryError(
                f"TimeoutError: no complete answer within {self.timeout:g} s", unreachable=True
            )
        if outcome[0] is not None:
            raise outcome[0]

    def _send(self, request: urllib.request.Request, connections: _Connections) -> None:
        """The request itself, in the sender thread. Each socket operation is bounded by the
        timeout too, so a thread still resolving the name or connecting when the deadline cuts
        the request off ends soon after."""
        opener = urllib.request.build_opener(
            NoRedirects, _WatchedHTTP(connections), _WatchedHTTPS(connections)
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as error:
            status = error.code
            if 300 <= status < 400:
                location = _redirect_target(request.full_url, error.headers.get("Location"))
                error.close()
                raise PermanentDeliveryError(
                    REDIRECTED.format(status=status, location=location)
                ) from error
            description = _error_description(error)
            error.close()
            if status in (408, 429) or status >= 500:
                raise TransientDeliveryError(
                    f"HTTP {status}{description}",
                    retry_after=_retry_after(error.headers.get("Retry-After")),
                ) from error
            raise PermanentDeliveryError(f"HTTP {status}{description}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TransientDeliveryError(
                f"{type(reason).__name__}: {reason}", unreachable=True
            ) from error
        except (ValueError, OverflowError) as error:
            # http.client.InvalidURL (a ValueError), a port out of range: a malformed address
            # that :func:`webhook_url_fault` did not foresee; retrying will not mend it.
            raise PermanentDeliveryError(
                f"malformed webhook URL: {type(error).__name__}: {error}"
            ) from error


def _redirect_target(url: str, location: str | None) -> str:
    """Where a redirect pointed, as an absolute address on one line (without a user name or
    password it may carry), or ``none``."""
    if not location or not location.strip():
        return "none"
    target = urllib.parse.urljoin(url, location.strip())
    try:
        parts = urlsplit(target)
    except ValueError:
        return printable(target[:300])
    if "@" in parts.netloc:
        target = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return printable(target[:300])


def _error_description(error: urllib.error.HTTPError) -> str:
    # RFC 8935 receivers answer errors as {"err": ..., "description": ...}; keep it short.
    try:
        body = json.loads(error.read(4096) or b"{}")
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("err"), str):
        # The receiver's words, shown on one line by `puente outbox list`: no control
        # characters (a CR LF would start a fake line).
        return f" ({printable(body['err'][:100])})"
    return ""


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\r``, ``\\n``, ``\\x1b`` …), for a
    one-line display of something a receiver or an exception said."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def webhook_url_fault(url: str) -> tuple[str, str] | None:
    """What makes the http(s) ``url`` unusable as a webhook, in Spanish and English, or
    ``None``: spaces or control characters, user name or password (a secret that would be
    stored, listed and sent with every notification), no host, a port that is not a number
    from 1 to 65535."""
    if any(char.isspace() or not char.isprintable() for char in url):
        return (
            "contiene espacios o caracteres de control",
            "it contains spaces or control characters",
        )
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ ] around an IPv6 address
        return ("no es una URL válida", "it is not a valid URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return (
            "lleva usuario o contraseña (user:password@); la autenticación del hub es la firma "
            "de cada aviso",
            "it carries a user name or password (user:password@); notifications are "
            "authenticated by their signature",
        )
    if not parts.hostname:
        return ("no nombra un servidor", "it names no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return (
            "el puerto no es un número de 1 a 65535",
            "the port is not a number from 1 to 65535",
        )
    return None


def webhook_url_cautions(url: str, public_url: str | None) -> list[tuple[str, str]]:
    """Why an accepted http(s) webhook ``url`` may be a mistake, in Spanish and English (it is
    still accepted: tests and receivers on the hub's own machine need such addresses): plain
    http when the hub itself is served over https, or an address of this machine, of its
    private network or link-local (169.254.169.254 is the cloud metadata service)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []  # refused by webhook_url_fault
    cautions = []
    if parts.scheme.lower() == "http" and (public_url or "").lower().startswith("https://"):
        cautions.append(
            (
                "el webhook usa http sin cifrar y el hub se publica por https",
                "the webhook uses plain http while the hub is served over https",
            )
        )
    host = (parts.hostname or "").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or host.endswith(".localhost"):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None and (address.is_loopback or address.is_link_local or address.is_private):
        cautions.append(
            (
                f"{host} es una dirección de esta máquina o de una red privada o local",
                f"{host} is an address of this machine or of a private or link-local network",
            )
        )
    return cautions


# --- the file drop -------------------------------------------------------------------------


def file_drop_root(app: Flask) -> Path:
    """``FILE_DROP_PATH`` (relative to the instance folder unless absolute)."""
    return resolve_instance_file(
        Path(app.instance_path), app.config.get("FILE_DROP_PATH") or "drop"
    )


def uses_file_drop(webhook_url: str | None) -> bool:
    """Whether an agency's ``webhook_url`` chooses the file drop (``file-drop`` or ``file:``)."""
    value = (webhook_url or "").strip().lower()
    return value == FILE_DROP or value.startswith("file:")


def drop_folder(root: Path, agency: Agency) -> Path:
    """The folder an agency's notifications are dropped into; raises
    :class:`PermanentDeliveryError` when its ``webhook_url`` names no folder inside ``root``."""
    url = (agency.webhook_url or "").strip()
    root = root.resolve()
    if url.lower() == FILE_DROP:
        folder = root / agency.id
    elif url.lower().startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise PermanentDeliveryError(f"agency {agency.id}: file URL on another host: {url}")
        folder = Path(url2pathname(unquote(parts.path)))
        if not folder.is_absolute():
            raise PermanentDeliveryError(f"agency {agency.id}: file URL is not absolute: {url}")
    else:
        raise PermanentDeliveryError(f"agency {agency.id} has no file drop")
    folder = folder.resolve()
    if folder == root or not folder.is_relative_to(root):
        # The registry must not be able to make the hub write elsewhere on its machine.
        raise PermanentDeliveryError(
            f"agency {agency.id}: drop folder {folder} is not inside FILE_DROP_PATH {root}"
        )
    return folder


class FileDropTransport:
    """Writes each notification, signed as the webhook would send it, as one file in the
    agency's drop folder: atomically, under a name that sorts by time and never collides."""

    def __init__(
        self, app: Flask, root: Path | None = None, signer: NotificationSigner | None = None
    ) -> None:
        self.signer = signer or NotificationSigner(app)
        self.root = root or file_drop_root(app)
        self._last_ns = 0
        self._lock = threading.Lock()
        #: When each folder was last cleared of stale temporary files (``time.monotonic``).
        self._swept: dict[Path, float] = {}

    def deliver(self, agency: Agency, message: OutboxMessage) -> None:
        folder = drop_folder(self.root, agency)
        token = self.signer.token(agency, message)
        name = f"{self._stamp()}-{message.id}{DROP_SUFFIX}"
        try:
            make_drop_folder(folder)
            self._sweep(folder)
            write_atomically(folder / name, token.encode("ascii") + b"\n")
        except OSError as error:
            # A full disk, a missing mount, a permission: someone can fix it; try again later.
            # Said so an administrator reading `puente outbox list` knows what to fix.
            cause = error.strerror or type(error).__name__
            raise TransientDeliveryError(
                f"cannot write to the drop folder {error.filename or folder}: {cause} "
                f"(a file where the folder should be, a missing mount, a permission)"
            ) from error

    def _sweep(self, folder: Path) -> None:
        """Remove the stale temporary files a killed worker left in ``folder``: at this
        transport's first write there (a worker that starts again), then at most once per
        :data:`STALE_TEMPORARY_SECONDS`. Each holds a whole signed notification, readable by
        the folder's group, that no reader is meant to see."""
        now = time.monotonic()
        with self._lock:
            last = self._swept.get(folder)
            if last is not None and now - last < STALE_TEMPORARY_SECONDS:
                return
            self._swept[folder] = now
        for path in remove_stale_temporaries(folder):
            log.info("removed a stale temporary file of the file drop", extra={"path": str(path)})

    def _stamp(self) -> str:
        """UTC time to the microsecond, strictly increasing within this process, so names
        sort in the order notifications were written (the message id keeps them unique
        across processes)."""
        with self._lock:
            now = max(time.time_ns() // 1000, self._last_ns + 1)
            self._last_ns = now
        moment = datetime.fromtimestamp(now // 1_000_000, UTC)
        return f"{moment:%Y%m%dT%H%M%S}.{now % 1_000_000:06d}Z"


def remove_stale_temporaries(
    folder: Path, older_than: float = STALE_TEMPORARY_SECONDS, now: float | None = None
) -> list[Path]:
    """Remove from ``folder`` the regular files named as the file drop's temporary files
    (:data:`DROP_TEMPORARY`) last modified more than ``older_than`` seconds before ``now``,
    and return them. Anything else — the notifications, the readers' own files, a link — is
    left alone, and a file that cannot be removed (gone meanwhile, a permission) is skipped."""
    cutoff = (time.time() if now is None else now) - older_than
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not DROP_TEMPORARY.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_mtime > cutoff:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def make_drop_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) unless it exists, mode :data:`DROP_FOLDER_MODE`
    whatever the umask, keeping the setgid bit it inherits from a setgid parent (its group
    then is the parent's: the office's). A folder that exists is left as its administrator
    made it."""
    try:
        folder.mkdir(mode=DROP_FOLDER_MODE, parents=True)
    except FileExistsError:
        return
    os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) | DROP_FOLDER_MODE)


def write_atomically(path: Path, content: bytes, mode: int = DROP_FILE_MODE) -> None:
    """Write ``content`` to ``path`` so readers see no file or the whole file: a hidden
    temporary file in the same folder (a rename is atomic only within one file system),
    synced, renamed into place, and the folder synced so the rename survives a crash. The
    file gets ``mode`` exactly: a umask such as 077 would otherwise hide it from the folder's
    group, the office's account."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# --- each agency's choice ------------------------------------------------------------------


class AgencyTransports:
    """Delivers through the transport each agency chose with its ``webhook_url``: the file
    drop for ``file-drop`` and ``file:`` URLs, the signed webhook otherwise."""

    def __init__(self, webhook: DeliveryTransport, file_drop: DeliveryTransport) -> None:
        self.webhook = webhook
        self.file_drop = file_drop

    @classmethod
    def for_hub(cls, app: Flask) -> AgencyTransports:
        signer = NotificationSigner(app)
        return cls(WebhookTransport(app, signer=signer), FileDropTransport(app, signer=signer))

    def choose(self, agency: Agency) -> DeliveryTransport:
        return self.file_drop if uses_file_drop(agency.webhook_url) else self.webhook

    def deliver(self, agency: Agency, message: OutboxMessage) -> None:
        self.choose(agency).deliver(agency, message)
