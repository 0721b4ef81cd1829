"""Delivery transports: the signed webhook and the file drop pass one conformance suite (the
same signed notification, transient and permanent failures), the file drop writes atomically
under names that sort by time and never collide, and each agency's ``webhook_url`` chooses its
transport — end to end through the outbox worker on both database backends."""

from __future__ import annotations

import base64
import contextlib
import http.server
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy import select, update

from exchange import create_app, db
from exchange.agencies import Agency
from exchange.auth import as_utc, utcnow
from exchange.outbox import OutboxMessage, enqueue
from exchange.outbox_delivery import run_worker
from exchange.transports import (
    SET_MEDIA_TYPE,
    AgencyTransports,
    DeliveryError,
    DeliveryTransport,
    FileDropTransport,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookTransport,
    drop_folder,
    hub_signing_public_jwk,
)
from tests.conftest import make_hub

AGENCY = "mx.test.receiver"
EVENT = "https://puente.mx/events/record.referred"


@pytest.fixture
def signing_hub(tmp_path: Path) -> Flask:
    """A hub with a signing key and a drop folder (transports need no database)."""
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": tmp_path / "instance",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
            "HUB_SIGNING_KEY": OKPKey.generate_key("Ed25519").as_pem(private=True).decode(),
            "FILE_DROP_PATH": str(tmp_path / "drop"),
        }
    )


def agency(webhook_url: str | None, agency_id: str = AGENCY) -> Agency:
    found = Agency(id=agency_id, name="r", level="state", jurisdiction="07")
    found.webhook_url = webhook_url
    return found


def note(message_id: str = "msg_0123", record_id: str = "rec_9") -> OutboxMessage:
    return OutboxMessage(
        id=message_id, agency_id=AGENCY, kind="record.referred", payload={"record_id": record_id}
    )


def verified_claims(app: Flask, token: bytes) -> dict[str, Any]:
    """What a receiver does with a notification: verify it with the hub's published key."""
    public = OKPKey.import_key(hub_signing_public_jwk(app))
    decoded = jwt.decode(token.decode("ascii").strip(), public, algorithms=["EdDSA"])
    assert decoded.header["typ"] == "secevent+jwt"
    return dict(decoded.claims)


# --- one conformance suite for every transport ---------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Channel:
    """A transport with its receiving end: what arrived, and how to take the receiver down."""

    transport: DeliveryTransport
    agency: Agency
    arrived: Callable[[], list[bytes]]
    take_down: Callable[[], None]


def webhook_channel(app: Flask, tmp_path: Path) -> Iterator[Channel]:
    handler = type("Received", (Receiver,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"

    def arrived() -> list[bytes]:
        assert all(kind == SET_MEDIA_TYPE for kind, _ in handler.received)
        return [body for _, body in handler.received]

    def take_down() -> None:
        server.shutdown()
        server.server_close()

    yield Channel(WebhookTransport(app, timeout=2), agency(url), arrived, take_down)
    take_down()


def file_drop_channel(app: Flask, tmp_path: Path) -> Iterator[Channel]:
    root = tmp_path / "drop"
    folder = root / AGENCY

    def arrived() -> list[bytes]:
        return (
            [path.read_bytes() for path in sorted(folder.glob("*.jwt"))] if folder.exists() else []
        )

    def take_down() -> None:
        # An unmounted share: the drop root is not a folder any more.
        if root.exists():
            for path in folder.glob("*"):
                path.unlink()
            folder.rmdir()
            root.rmdir()
        root.write_text("not a folder")

    yield Channel(FileDropTransport(app), agency("file-drop"), arrived, take_down)


@pytest.fixture(params=["webhook", "file-drop"])
def channel(
    request: pytest.FixtureRequest, signing_hub: Flask, tmp_path: Path
) -> Iterator[Channel]:
    make = webhook_channel if request.param == "webhook" else file_drop_channel
    yield from make(signing_hub, tmp_path)


def test_transport_carries_the_signed_notification(signing_hub: Flask, channel: Channel) -> None:
    assert isinstance(channel.transport, DeliveryTransport)
    channel.transport.deliver(channel.agency, note("msg_1", "rec_1"))
    channel.transport.deliver(channel.agency, note("msg_2", "rec_2"))
    claims = [verified_claims(signing_hub, token) for token in channel.arrived()]
    assert [c["jti"] for c in claims] == ["msg_1", "msg_2"]
    assert {c["aud"] for c in claims} == {AGENCY}
    assert {c["iss"] for c in claims} == {signing_hub.config["HUB_ID"]}
    assert claims[1]["events"] == {EVENT: {"record_id": "rec_2"}}


def test_transport_down_is_transient(channel: Channel) -> None:
    channel.take_down()
    with pytest.raises(TransientDeliveryError):
        channel.transport.deliver(channel.agency, note())


def test_transport_without_an_address_is_permanent(channel: Channel) -> None:
    with pytest.raises(PermanentDeliveryError):
        channel.transport.deliver(agency(None), note())


class DripReceiver:
    """A webhook receiver that answers one line (or one body byte) at a time, every
    ``every`` seconds, for ``lines`` lines: each read finishes quickly, the answer never does."""

    def __init__(self, part: str, lines: int = 16, every: float = 0.25) -> None:
        self.part, self.lines, self.every = part, lines, every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"
        self.requests: list[bytes] = []
        self.sent = 0  # lines (or bytes) sent before the hub went away
        self.cut_at: float | None = None  # when sending failed: the hub shut the connection
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            self.requests.append(request)
            try:
                if self.part == "headers":
                    connection.sendall(b"HTTP/1.1 202 Accepted\r\n")
                    for number in range(self.lines):
                        time.sleep(self.every)
                        connection.sendall(f"X-Drip-{number}: {number}\r\n".encode())
                        self.sent += 1
                    connection.sendall(b"Content-Length: 0\r\n\r\n")
                else:
                    connection.sendall(
                        f"HTTP/1.1 202 Accepted\r\nContent-Length: {self.lines}\r\n\r\n".encode()
                    )
                    for _ in range(self.lines):
                        time.sleep(self.every)
                        connection.sendall(b"x")
                        self.sent += 1
            except OSError:
                self.cut_at = time.monotonic()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.mark.parametrize("part", ["headers", "body"])
def test_webhook_timeout_is_a_deadline_for_the_whole_request(signing_hub: Flask, part: str) -> None:
    # The receiver would take 16 × 0.25 s = 4 s to answer in full; each of its reads is quick.
    receiver = DripReceiver(part)
    try:
        transport = WebhookTransport(signing_hub, timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="1 s"):
            transport.deliver(agency(receiver.url), note())
        elapsed = time.monotonic() - started
        assert receiver.requests, "the notification reached the receiver"
        assert 0.9 <= elapsed < 2, f"gave up after {elapsed:.2f} s, not at the 1 s deadline"
        # The hub hangs up: the receiver's next line fails, long before its drip would end.
        receiver.thread.join(3)
        assert receiver.cut_at is not None and receiver.sent < receiver.lines
        assert receiver.cut_at - started < 3  # the drip would last 4 s
    finally:
        receiver.close()


def test_worker_counts_a_request_past_its_deadline_as_a_failed_attempt(
    drop_hub: Flask,
) -> None:
    receiver = DripReceiver("headers")
    try:
        add_agency(drop_hub, "mx.nl.dif", receiver.url)
        [waiting] = enqueue_for(drop_hub, "mx.nl.dif", "rec_slow")
        drop_hub.config["WEBHOOK_TIMEOUT_SECONDS"] = 1
        started = time.monotonic()
        totals = run_worker(drop_hub, once=True)
        assert time.monotonic() - started < 2.5
        assert totals.retrying == 1 and totals.delivered == 0
        status, error = statuses(drop_hub)[waiting]
        assert status == "failed" and error and "1 s" in error
        with db.database(drop_hub).sessions() as session:
            queued = session.get_one(OutboxMessage, waiting)
            assert queued.attempts == 1 and queued.lease_token is None
            assert as_utc(queued.next_attempt_at) > utcnow()  # retried later, with backoff
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "receiver", ["silent", "connection never completes", "tls never completes"]
)
def test_webhook_deadline_holds_for_a_receiver_that_never_answers(
    signing_hub: Flask, receiver: str
) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    # A backlog of 0 holds one connection nobody accepts; the next one is never completed.
    waiting = socket.create_connection(("127.0.0.1", port))
    accepted: list[socket.socket] = []
    if receiver != "connection never completes":
        accepted.append(listener.accept()[0])  # taken, read by nobody, never answered
        waiting.close()
    scheme = "https" if receiver == "tls never completes" else "http"
    message = note("msg_" + receiver.replace(" ", "_"))
    try:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match=r"^TimeoutError"):
            WebhookTransport(signing_hub, timeout=1).deliver(
                agency(f"{scheme}://127.0.0.1:{port}/hooks"), message
            )
        assert 0.9 <= time.monotonic() - started < 2
        # The request's thread does not outlive the deadline by much either.
        for sender in threading.enumerate():
            if sender.name == f"puente-webhook-{message.id}":
                sender.join(1.5)
                assert not sender.is_alive()
    finally:
        for opened in (waiting, *accepted, listener):
            opened.close()


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, headers, body) of ``answers`` (202 when none
    are left) and keeps what it was sent."""

    answers: ClassVar[list[tuple[int, dict[str, str], bytes]]] = []
    received: ClassVar[list[tuple[str, Message]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers))
        status, headers, body = self.answers.pop(0) if self.answers else (202, {}, b"")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class ScriptedReceiver:
    url: str  # the receiver's address, without a path
    handler: type[Scripted]
    server_names: list[str]  # the names TLS clients asked for (SNI)


@contextlib.contextmanager
def scripted_receiver(
    family: socket.AddressFamily = socket.AF_INET, tls: ssl.SSLContext | None = None
) -> Iterator[ScriptedReceiver]:
    handler = type("Answers", (Scripted,), {"answers": [], "received": []})
    server_class = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family})
    server = server_class(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0), handler)
    server_names: list[str] = []
    if tls is not None:
        tls.sni_callback = lambda _socket, name, _context: server_names.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    host = "[::1]" if family == socket.AF_INET6 else "localhost" if tls else "127.0.0.1"
    try:
        yield ScriptedReceiver(
            f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}",
            handler,
            server_names,
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_webhook_never_follows_a_redirect(signing_hub: Flask, status: int) -> None:
    with scripted_receiver() as receiver:
        # Followed, the redirect would reach the same receiver and be accepted.
        receiver.handler.answers.append((status, {"Location": f"{receiver.url}/elsewhere"}, b""))
        # Not followed, and said so with where it pointed (exchange.transports.REDIRECTED).
        says = (
            rf"^HTTP {status}: redirects are not followed \(Location: {receiver.url}/elsewhere\);"
        )
        with pytest.raises(PermanentDeliveryError, match=says):
            WebhookTransport(signing_hub).deliver(agency(f"{receiver.url}/hooks"), note())
        assert [path for path, _ in receiver.handler.received] == ["/hooks"]


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "says", "retry_after"),
    [
        (
            503,
            {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
            b"",
            TransientDeliveryError,
            "HTTP 503",
            None,
        ),
        (
            429,
            {"Retry-After": "12"},
            b'{"err": "slow_down"}',
            TransientDeliveryError,
            "HTTP 429 (slow_down)",
            12.0,
        ),
        (
            400,
            {},
            b'{"err": "invalid_audience", "description": "not us"}',
            PermanentDeliveryError,
            "HTTP 400 (invalid_audience)",
            None,
        ),
        (
            400,
            {},
            ('{"err": "' + "e" * 300 + '"}').encode(),
            PermanentDeliveryError,
            f"HTTP 400 ({'e' * 100})",
            None,
        ),
        (410, {}, b"<html>Gone</html>", PermanentDeliveryError, "HTTP 410", None),
    ],
)
def test_webhook_failure_says_what_the_receiver_answered(
    signing_hub: Flask,
    status: int,
    headers: dict[str, str],
    body: bytes,
    error: type[DeliveryError],
    says: str,
    retry_after: float | None,
) -> None:
    with scripted_receiver() as receiver:
        receiver.handler.answers.append((status, headers, body))
        with pytest.raises(error) as raised:
            WebhookTransport(signing_hub).deliver(agency(f"{receiver.url}/hooks"), note())
    assert str(raised.value) == says  # an RFC 8935 error code, briefly; anything else not
    assert getattr(raised.value, "retry_after", None) == retry_after


def test_webhook_reads_at_most_64_kib_of_an_answer(signing_hub: Flask) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    answered = threading.Event()

    def answer_without_end() -> None:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            connection.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 10000000\r\n\r\n")
            connection.sendall(b"x" * (64 * 1024 + 1))
            answered.wait(5)  # the rest never comes while the hub waits

    thread = threading.Thread(target=answer_without_end, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        WebhookTransport(signing_hub, timeout=2).deliver(
            agency(f"http://127.0.0.1:{listener.getsockname()[1]}/hooks"), note()
        )
        assert time.monotonic() - started < 1  # delivered, without waiting for the rest
    finally:
        answered.set()
        thread.join(5)
        listener.close()


def test_webhook_unreachable_says_why(signing_hub: Flask) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    transport = WebhookTransport(signing_hub, timeout=2)
    with pytest.raises(TransientDeliveryError, match=r"^ConnectionRefusedError: .*refused"):
        transport.deliver(agency(f"http://127.0.0.1:{port}/hooks"), note())
    with pytest.raises(TransientDeliveryError, match=r"^gaierror: "):
        transport.deliver(agency("https://receiver.invalid/hooks"), note())


@pytest.mark.parametrize(
    ("family", "path"),
    [(socket.AF_INET, "/hooks/puente?agency=mx.test&v=1"), (socket.AF_INET6, "/")],
)
def test_webhook_request_names_the_receiver_and_the_notification(
    signing_hub: Flask, family: socket.AddressFamily, path: str
) -> None:
    with scripted_receiver(family) as receiver:
        WebhookTransport(signing_hub).deliver(agency(receiver.url + path + "#ignored"), note())
        [(sent_path, headers)] = receiver.handler.received
    assert sent_path == path
    assert headers["Host"] == receiver.url.removeprefix("http://")  # with the port
    assert headers["Content-Type"] == SET_MEDIA_TYPE == "application/secevent+jwt"
    assert headers["Accept"] == "application/json" and headers["User-Agent"] == "puente-hub"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A certificate authority and a certificate it issued to ``localhost``, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)

    def issue(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = x509.SubjectAlternativeName([x509.DNSName("localhost")])
            builder = builder.add_extension(names, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    files = {
        "ca": issue("Puente test CA", ca_key, "Puente test CA", ca_key, True),
        "certificate": issue("localhost", server_key, "Puente test CA", ca_key, False),
    }
    paths = {name: folder / f"{name}.pem" for name in ("ca", "certificate", "key")}
    for name, certificate in files.items():
        paths[name].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def tls_server_context(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["certificate"], certificates["key"])
    return context


def test_webhook_over_https_checks_the_receiver_certificate(
    signing_hub: Flask, certificates: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with scripted_receiver(tls=tls_server_context(certificates)) as receiver:
        # Issued by an authority the hub does not trust: refused, and tried again later.
        with pytest.raises(TransientDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            WebhookTransport(signing_hub).deliver(agency(f"{receiver.url}/hooks"), note())
        assert not receiver.handler.received
        # Trusted (the default context reads SSL_CERT_FILE): delivered, to the name asked for.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))
        WebhookTransport(signing_hub).deliver(agency(f"{receiver.url}/hooks"), note())
        [(path, headers)] = receiver.handler.received
        assert path == "/hooks" and headers["Host"] == receiver.url.removeprefix("https://")
        assert receiver.server_names[-1] == "localhost"


class Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy: answers a request for a whole http URL itself, and tunnels
    ``CONNECT`` to the address asked for."""

    asked: ClassVar[list[tuple[str, str, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.asked.append(("POST", self.path, self.headers["Proxy-Authorization"]))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_CONNECT(self) -> None:
        self.asked.append(("CONNECT", self.path, self.headers["Proxy-Authorization"]))
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            back = threading.Thread(target=pipe, args=(upstream, self.connection), daemon=True)
            back.start()
            pipe(self.connection, upstream)
            back.join(5)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy() -> Iterator[tuple[str, type[Proxy]]]:
    handler = type("Asked", (Proxy,), {"asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_webhook_goes_through_the_proxy_the_environment_names(
    signing_hub: Flask,
    proxy: tuple[str, type[Proxy]],
    certificates: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, handler = proxy
    monkeypatch.setenv("http_proxy", f"http://hub:s%40cret@{address}")
    monkeypatch.setenv("https_proxy", address)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))
    transport = WebhookTransport(signing_hub)
    # http: the proxy is asked for the whole URL (never resolved by the hub).
    transport.deliver(agency("http://dif.example:8080/hooks?v=1#top"), note())
    basic = "Basic " + base64.b64encode(b"hub:s@cret").decode()
    assert handler.asked == [("POST", "http://dif.example:8080/hooks?v=1", basic)]
    # https: a tunnel through the proxy, TLS (and its certificate check) end to end.
    with scripted_receiver(tls=tls_server_context(certificates)) as receiver:
        transport.deliver(agency(f"{receiver.url}/hooks"), note())
        assert handler.asked[1] == ("CONNECT", receiver.url.removeprefix("https://"), None)
        assert [path for path, _ in receiver.handler.received] == ["/hooks"]
        assert receiver.server_names == ["localhost"]
    # Addresses in no_proxy are reached directly.
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with scripted_receiver() as direct:
        transport.deliver(agency(f"{direct.url}/hooks"), note())
        assert len(direct.handler.received) == 1 and len(handler.asked) == 2


# --- the file drop -------------------------------------------------------------------------


def test_file_names_sort_by_time_and_never_collide(signing_hub: Flask, tmp_path: Path) -> None:
    first, second = FileDropTransport(signing_hub), FileDropTransport(signing_hub)
    receiver = agency("file-drop")
    order = [f"msg_{n:03d}" for n in range(40)]
    for message_id in order:  # one transport: written in this order, within microseconds
        first.deliver(receiver, note(message_id))
    folder = tmp_path / "drop" / AGENCY
    names = sorted(path.name for path in folder.iterdir())
    assert [name.split("-", 1)[1].removesuffix(".jwt") for name in names] == order
    # Two workers at once (same microsecond possible): every notification gets its own file.
    threads = [
        threading.Thread(
            target=lambda t=transport, p=prefix: [
                t.deliver(receiver, note(f"msg_{p}{n}")) for n in range(30)
            ]
        )
        for transport, prefix in ((first, "a"), (second, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = list(folder.iterdir())
    assert len(files) == 40 + 60
    assert not [path for path in files if path.name.startswith(".")]  # no temporary left
    assert {path.stat().st_mode & 0o777 for path in files} == {0o640}


def test_a_failed_write_leaves_nothing_half_written(
    signing_hub: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = FileDropTransport(signing_hub)
    transport.deliver(agency("file-drop"), note("msg_ok"))

    def full_disk(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(TransientDeliveryError, match="No space left"):
        transport.deliver(agency("file-drop"), note("msg_lost"))
    names = [path.name for path in (tmp_path / "drop" / AGENCY).iterdir()]
    assert len(names) == 1 and "msg_ok" in names[0]  # the temporary was removed


def test_file_urls_must_stay_inside_the_drop_root(signing_hub: Flask, tmp_path: Path) -> None:
    root = tmp_path / "drop"
    inside = root / "sftp" / "chiapas"
    assert drop_folder(root, agency(f"file://{inside}")) == inside.resolve()
    assert drop_folder(root, agency(f"file://localhost{inside}")) == inside.resolve()
    assert drop_folder(root, agency("FILE-DROP")) == (root / AGENCY).resolve()
    FileDropTransport(signing_hub).deliver(agency(f"file://{inside}"), note())
    assert len(list(inside.glob("*-msg_0123.jwt"))) == 1
    for refused in (
        "file:///etc",
        f"file://{root}",  # the root itself is no agency's folder
        f"file://{root}/../elsewhere",
        f"file://other-host{inside}",
        "file:relative/folder",
    ):
        with pytest.raises(PermanentDeliveryError):
            drop_folder(root, agency(refused))
    assert not (tmp_path / "elsewhere").exists()


def test_a_drop_folder_that_cannot_be_made_says_what_to_fix(
    signing_hub: Flask, tmp_path: Path
) -> None:
    inside = tmp_path / "drop" / "sftp"
    inside.parent.mkdir()
    inside.write_text("a file where the agency's folder should be")
    with pytest.raises(TransientDeliveryError) as caught:
        FileDropTransport(signing_hub, root=tmp_path / "drop").deliver(
            agency(f"file://{inside}"), note()
        )
    said = str(caught.value)
    assert said.startswith(f"cannot write to the drop folder {inside}")
    assert "a file where the folder should be" in said


def test_each_agency_gets_the_transport_it_chose(signing_hub: Flask) -> None:
    transports = AgencyTransports.for_hub(signing_hub)
    assert isinstance(transports.choose(agency("file-drop")), FileDropTransport)
    assert isinstance(transports.choose(agency("file:///srv/drop/x")), FileDropTransport)
    assert isinstance(transports.choose(agency("https://dif.example/hooks")), WebhookTransport)
    assert isinstance(transports.choose(agency(None)), WebhookTransport)


# --- end to end through the outbox worker --------------------------------------------------


def add_agency(app: Flask, agency_id: str, webhook_url: str) -> None:
    # The registry validates webhooks as http(s) URLs; an administrator's file-drop choice is
    # written here the way the registry stores it.
    with db.database(app).sessions.begin() as session:
        session.add(
            Agency(
                id=agency_id,
                name=agency_id,
                level="state",
                jurisdiction="07",
                scope="records:read",
                active=True,
                require_signature=False,
                webhook_url=webhook_url,
            )
        )


def enqueue_for(app: Flask, agency_id: str, *record_ids: str) -> list[str]:
    with db.database(app).sessions.begin() as session:
        return [
            enqueue(session, agency_id, "record.referred", {"record_id": record_id}).id
            for record_id in record_ids
        ]


def statuses(app: Flask) -> dict[str, tuple[str, str | None]]:
    with db.database(app).sessions() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.last_error)
        )
        return {row.id: (row.status, row.last_error) for row in rows}


@pytest.fixture
def drop_hub(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_hub(tmp_path, database_url, FILE_DROP_PATH=str(tmp_path / "drop"))
    yield app
    app.extensions["puente.db"].engine.dispose()


def test_worker_delivers_by_file_drop_and_loses_nothing_while_it_fails(
    drop_hub: Flask, tmp_path: Path
) -> None:
    root = tmp_path / "drop"
    add_agency(drop_hub, "mx.chp.tapachula.dif", "file-drop")
    first = enqueue_for(drop_hub, "mx.chp.tapachula.dif", "rec_a", "rec_b")
    totals = run_worker(drop_hub, once=True)  # the transport each agency chose
    assert totals.delivered == 2
    folder = root / "mx.chp.tapachula.dif"
    files = sorted(folder.iterdir())
    assert [verified_claims(drop_hub, path.read_bytes())["jti"] for path in files] == first
    assert verified_claims(drop_hub, files[1].read_bytes())["events"] == {
        EVENT: {"record_id": "rec_b"}
    }

    # The shared folder goes away: the notification waits in the outbox, with the reason.
    for path in files:
        path.unlink()
    folder.rmdir()
    root.rmdir()
    root.write_text("unmounted")
    [waiting] = enqueue_for(drop_hub, "mx.chp.tapachula.dif", "rec_c")
    assert run_worker(drop_hub, once=True).retrying == 1
    status, error = statuses(drop_hub)[waiting]
    assert status == "failed" and error

    # Back again: the retry delivers it, once.
    root.unlink()
    with db.database(drop_hub).sessions.begin() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert run_worker(drop_hub, once=True).delivered == 1
    [dropped] = list(folder.iterdir())
    assert verified_claims(drop_hub, dropped.read_bytes())["jti"] == waiting
    assert statuses(drop_hub)[waiting][0] == "delivered"
