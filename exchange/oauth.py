"""The OAuth2 authorization server (Authlib): agency systems get short-lived bearer tokens.

- ``POST /oauth/token``: client credentials grant (RFC 6749 §4.4). Clients authenticate with
  ``private_key_jwt`` (RFC 7523: a JWT signed ``EdDSA`` by one of the agency's Ed25519 keys) or
  ``client_secret_basic``.
- ``POST /oauth/introspect`` (RFC 7662): an agency may introspect its own tokens only.
- ``POST /oauth/revoke`` (RFC 7009).

Answers use OAuth's own JSON errors (RFC 6749 §5.2), which OAuth client libraries expect, rather
than the RFC 9457 problems of the rest of the API. The ``client_id`` is the agency id.

Assertions: the algorithm allow-list is ``EdDSA`` alone (``none`` and HMAC are refused before any
key is touched, so a public key can never be used as an HMAC secret); ``aud`` must be this hub's
token endpoint; ``exp`` is required and at most :data:`ASSERTION_MAX_SECONDS` ahead; each ``jti``
is accepted once, enforced by a primary key in the database so it holds across gunicorn workers
and hub processes; ``kid`` must name a key of the agency that is valid now.

``aud`` is exactly ``PUBLIC_URL`` + ``/oauth/token``, never the address a request claims to have
reached (its ``Host`` and ``X-Forwarded-*`` headers are the client's to choose).

Nothing here tells whether an agency id or a token exists: an unknown or disabled agency is
refused with the words a wrong secret gets (and an assertion, with those of a key that does not
verify it), and revoking a token that is not the caller's answers as an unknown token does.

Transport: OAuth runs over https, or plain http to a loopback address (Authlib's rule), or over
plain http on any address when ``PUBLIC_URL`` itself is ``http://`` (a development or demo hub,
or one on a local network). Anything else is ``invalid_request`` saying how to configure it.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.common.security import is_secure_transport
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, OAuth2Request, grants
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Blueprint, Flask, Response, current_app, g, request
from flask.wrappers import Request
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError, SecurityWarning
from joserfc.jwk import KeySet, OKPKey
from joserfc.util import to_bytes
from sqlalchemy import DateTime, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, selectinload

from exchange import db, ratelimit
from exchange.auth import (
    MAX_TOKEN_SECONDS,
    SCOPES,
    AccessToken,
    as_utc,
    find_token,
    store_token,
    utcnow,
)
from exchange.db import Base
from exchange.httpbasics import request_body
from exchange.problems import negotiated_language

#: The only JWS algorithm accepted in client assertions (Ed25519 keys, RFC 8037).
ASSERTION_ALGORITHMS = ("EdDSA",)
#: An assertion may not be valid for longer than this (``exp`` at most this far ahead).
ASSERTION_MAX_SECONDS = 300
#: Clock skew allowed on ``exp``, ``nbf`` and ``iat``.
ASSERTION_LEEWAY_SECONDS = 30
JTI_MAX_LENGTH = 200

AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret

# joserfc warns on every use of "EdDSA" because RFC 9864 adds the fully specified "Ed25519"
# name. DESIGN.md fixes "EdDSA" with Ed25519 keys (and we accept nothing else), so the warning
# says nothing actionable; it is silenced process-wide because gunicorn threads make
# warnings.catch_warnings unsafe.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


class UsedAssertion(Base):
    """A client assertion ``jti`` already accepted; kept until the assertion would expire."""

    __tablename__ = "oauth_used_assertion"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    jti: Mapped[str] = mapped_column(String(JTI_MAX_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def consume_assertion_id(client_id: str, jti: str, expires_at: datetime) -> bool:
    """Record ``jti`` as used; False if it was used before (also by a concurrent request).

    Runs in a transaction of its own, committed before the token is issued: an assertion is good
    for one attempt whatever happens to the request afterwards. The primary key makes two
    concurrent inserts of the same ``jti`` end with exactly one success on either backend.
    """
    with db.database().sessions() as session:
        session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < utcnow()))
        session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


class AgencyClient(ClientMixin):  # type: ignore[misc]
    """Authlib's view of an active agency: a confidential client of the credentials grant."""

    def __init__(
        self,
        agency_id: str,
        scopes: list[str],
        secret_hash: str | None,
        public_jwks: list[dict[str, Any]],
    ) -> None:
        self.client_id = agency_id
        self.scopes = scopes
        self.secret_hash = secret_hash
        self.public_jwks = public_jwks

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def check_client_secret(self, client_secret: str) -> bool:
        from exchange.agencies import secret_matches

        return secret_matches(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "client_secret_basic":
            return self.secret_hash is not None
        if method == "private_key_jwt":
            return bool(self.public_jwks)
        return False

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # No scope asked: every scope of the agency. Anything the agency lacks: None, which
        # Authlib answers with invalid_scope (never a silently narrowed token).
        if not scope:
            return " ".join(self.scopes)
        requested = list(dict.fromkeys(scope_to_list(scope)))
        if not set(requested) <= set(self.scopes):
            return None
        return " ".join(requested)


def query_client(client_id: str) -> AgencyClient | None:
    """The active agency ``client_id``; unknown and disabled agencies are the same: None."""
    from exchange.agencies import Agency, active_keys

    if "\x00" in client_id:  # no agency id holds one, and PostgreSQL's text cannot
        return None
    agency = db.session().get(Agency, client_id, options=[selectinload(Agency.keys)])
    if agency is None or not agency.active:
        return None
    return AgencyClient(agency.id, agency.scopes, agency.client_secret_hash, active_keys(agency))


def save_token(token: dict[str, Any], oauth_request: Any) -> None:
    client: AgencyClient = oauth_request.client
    session = db.session()
    store_token(
        session,
        client_id=client.client_id,
        agency_id=client.client_id,
        scopes=scope_to_list(token.get("scope", "")) or [],
        seconds=int(token["expires_in"]),
        secret=token["access_token"],
    )
    session.commit()


def token_endpoint_urls() -> list[str]:
    """What an assertion's ``aud`` may be: ``PUBLIC_URL`` + ``/oauth/token``, and nothing else.

    Never the URL as this request reached the hub: its host and scheme come from the ``Host``
    and ``X-Forwarded-Proto`` headers, which the client chooses, so an assertion made for
    another audience (another hub, a proxy) could be replayed here under a spoofed ``Host``.
    """
    return [current_app.config["PUBLIC_URL"].rstrip("/") + TOKEN_PATH]


#: Why a client authenticating with a secret is refused, whatever went wrong: an unknown or
#: disabled agency and a wrong secret answer alike, so the answer does not tell which ids exist.
SECRET_REFUSAL = (
    "institución desconocida o deshabilitada, o secreto incorrecto",
    "Unknown or disabled client, or wrong secret.",
)


def authenticate_client_secret_basic(
    query: Any, oauth_request: OAuth2Request
) -> AgencyClient | None:
    """``client_secret_basic`` (HTTP Basic) with one refusal for every failure.

    Authlib's own answers ``The client does not exist on this server.`` for an unknown id but
    something else for a wrong secret; here both are :data:`SECRET_REFUSAL`, status 401 (the
    client used the Authorization header, RFC 6749 §5.2). No Basic credentials: None, so the
    next method (``private_key_jwt``) is tried.
    """
    client_id, client_secret = extract_basic_authorization(oauth_request.headers)
    if not (client_id and client_secret):
        return None
    client: AgencyClient | None = query(client_id)
    if client is not None and client.check_client_secret(client_secret):
        return client
    raise _refused(*SECRET_REFUSAL, status=401)


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client authentication with the agency's Ed25519 keys (``private_key_jwt``)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY_SECONDS)

    def __call__(self, query: Any, oauth_request: OAuth2Request) -> AgencyClient | None:
        # An unknown or disabled agency is an agency without keys: its assertion is refused as
        # one no key verifies ("kid" not a valid key, or the signature does not verify), the
        # words a real agency's forged assertion gets. Authlib would say the client does not
        # exist, telling anyone with a key pair which agency ids do.
        def known_or_keyless(client_id: str) -> AgencyClient:
            return query(client_id) or AgencyClient(client_id, [], None, [])

        return super().__call__(known_or_keyless, oauth_request)  # type: ignore[no-any-return]

    def get_audiences(self) -> list[str]:
        return token_endpoint_urls()

    def resolve_client_public_key(self, client: AgencyClient) -> KeySet:
        return KeySet([OKPKey.import_key(jwk) for jwk in client.public_jwks])

    def process_assertion_claims(self, assertion: str, key_set: KeySet) -> dict[str, Any]:
        header = jws.extract_compact(to_bytes(assertion)).headers()
        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise _refused(
                f"el algoritmo de la aserción {alg!r} no está permitido; use EdDSA",
                f"Assertion algorithm {alg!r} is not allowed; use EdDSA.",
            )
        # The two refusals below are also what an unknown or disabled agency gets (it has no
        # keys here): each names that cause too, so a disabled agency with its right key is
        # told so, and still cannot tell from the answer whether the id exists.
        candidates = list(key_set.keys)
        kid = header.get("kid")
        if kid is not None:
            candidates = [key for key in candidates if key.kid == kid]
            if not candidates:
                raise _refused(
                    f"la llave {kid!r} no es una llave vigente de esta institución, o la "
                    "institución es desconocida o está deshabilitada",
                    f"Key id {kid!r} is not a valid key of this client, or the client is "
                    "unknown or disabled.",
                )
        # Without a kid, each valid key is tried (an agency rotating keys has two for a while).
        for key in candidates:
            try:
                token = jwt.decode(assertion, key, algorithms=list(ASSERTION_ALGORITHMS))
            except BadSignatureError:
                continue
            except (JoseError, ValueError) as error:
                raise _refused(
                    f"aserción no válida: {error}", f"Invalid assertion: {error}"
                ) from error
            self.verify_claims(token.claims)
            return token.claims
        raise _refused(
            "la firma de la aserción no se verifica con las llaves vigentes de esta "
            "institución, o la institución es desconocida o está deshabilitada",
            "The assertion signature does not verify with a valid key of this client, or the "
            "client is unknown or disabled.",
        )

    def verify_claims(self, claims: Any) -> None:
        # Checked before Authlib's own checks, whose last step consumes the jti: an assertion
        # refused here leaves no trace, and one valid for too long is never accepted.
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _refused(
                "la aserción necesita un 'exp' numérico", "The assertion needs a numeric 'exp'."
            )
        if exp > time.time() + ASSERTION_MAX_SECONDS + self.leeway:
            raise _refused(
                f"la aserción vive demasiado: 'exp' a lo más {ASSERTION_MAX_SECONDS} s adelante",
                f"The assertion lives too long: 'exp' at most {ASSERTION_MAX_SECONDS} s ahead.",
            )
        jti = claims.get("jti")
        if jti is not None and (not isinstance(jti, str) or not 0 < len(jti) <= JTI_MAX_LENGTH):
            raise _refused("el 'jti' no es válido", "Invalid claim: 'jti'.")
        if isinstance(claims.get("aud"), list):
            # One audience only (draft-ietf-oauth-rfc7523bis): an assertion that also names
            # other servers may have been handed to them, and any of them could replay it here.
            raise _refused(
                "el 'aud' de la aserción es una sola cadena: el punto de tokens de este nodo",
                "The assertion's 'aud' is a single string: this hub's token endpoint.",
            )
        super().verify_claims(claims)

    def validate_jti(self, claims: Any, jti: str) -> bool:
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC) + timedelta(seconds=self.leeway)
        return consume_assertion_id(claims["sub"], jti, expires_at)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


def _lookup_token(token_string: str, _hint: str | None) -> AccessToken | None:
    return find_token(db.session(), token_string)


def agency_holds(token: AccessToken, client: AgencyClient) -> bool:
    """The tokens an agency introspects and revokes: its systems' own and its people's personal
    access tokens (a caseworker who left, a lost laptop)."""
    agency_id = client.get_client_id()
    return bool(
        token.client_id == agency_id
        or (token.person_id is not None and token.agency_id == agency_id)
    )


class AgencyIntrospection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | None:
        return _lookup_token(token_string, token_type_hint)

    def check_permission(self, token: AccessToken, client: AgencyClient, _request: Any) -> bool:
        # Anyone else's token looks exactly like an unknown one: {"active": false}.
        return agency_holds(token, client)

    def introspect_token(self, token: AccessToken) -> dict[str, Any]:
        answer = {
            "active": True,
            "client_id": token.client_id,
            # A personal access token's subject is its person; an agency token's, the agency.
            "sub": token.person_id or token.agency_id,
            "scope": token.scope,
            "token_type": "Bearer",
            "iat": int(as_utc(token.issued_at).timestamp()),
            "exp": int(as_utc(token.expires_at).timestamp()),
            "iss": current_app.config["PUBLIC_URL"].rstrip("/"),
        }
        if token.person_id is not None and token.agency_id is not None:
            answer["agency_id"] = token.agency_id
        return answer


class AgencyRevocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_token(self, oauth_request: Any, client: AgencyClient) -> AccessToken | None:
        # A token that is not the caller's (another agency's, another agency's person's) is
        # answered as an unknown one: 200 and nothing revoked (RFC 7009 §2.2). Authlib answers
        # invalid_grant, which would confirm to any agency that a leaked string is a real token.
        self.check_params(oauth_request, client)
        token = self.query_token(
            oauth_request.form["token"], oauth_request.form.get("token_type_hint")
        )
        return token if token is not None and agency_holds(token, client) else None

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | None:
        return _lookup_token(token_string, token_type_hint)

    def revoke_token(self, token: AccessToken, oauth_request: Any) -> None:
        from exchange.people import end_token

        session = db.session()
        # As `puente person revoke-token` ends it (the same audit entry for a person's token),
        # by the agency's system.
        end_token(session, token, by_agency=oauth_request.client.get_client_id())
        session.commit()


def token_seconds(app: Flask) -> int:
    """Lifetime of issued tokens: ``OAUTH2_TOKEN_SECONDS``, never above 15 minutes."""
    configured = int(app.config.get("OAUTH2_TOKEN_SECONDS") or MAX_TOKEN_SECONDS)
    return max(1, min(configured, MAX_TOKEN_SECONDS))


def plain_http_hub() -> bool:
    """Whether this hub is configured to be reached over plain http (``PUBLIC_URL`` http://)."""
    return urllib.parse.urlsplit(str(current_app.config["PUBLIC_URL"])).scheme == "http"


def transport_allowed() -> bool:
    """OAuth over this request's transport: https, plain http to a loopback host (Authlib's own
    rule), or plain http to any host when the hub itself is an http:// one."""
    return is_secure_transport(request.url) or plain_http_hub()


class PlainHttpRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """Authlib's request for a plain http request the hub allowed (:func:`transport_allowed`).

    Authlib's constructor raises ``InsecureTransportError`` (an unhandled 500) for plain http
    unless the host is a loopback one; it is given the https form of the URL to check, and
    keeps the real one. Otherwise the same as :class:`FlaskOAuth2Request`.
    """

    def __init__(self, flask_request: Request) -> None:
        _scheme, _sep, rest = flask_request.url.partition("://")
        OAuth2Request.__init__(
            self, flask_request.method, "https://" + rest, headers=flask_request.headers
        )
        self.uri = flask_request.url
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server, with the hub's transport rule (:func:`transport_allowed`)."""

    def create_oauth2_request(self, _request: Any) -> OAuth2Request:
        if not is_secure_transport(request.url) and transport_allowed():
            return PlainHttpRequest(request)
        return super().create_oauth2_request(_request)


def create_server(app: Flask) -> AuthorizationServer:
    server = HubAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    lifetime = token_seconds(app)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda _client, _grant_type: lifetime,
        ),
    )
    server.scopes_supported = list(SCOPES)  # unknown scopes: invalid_scope
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(AgencyIntrospection)
    server.register_endpoint(AgencyRevocation)
    return server


bp = Blueprint("oauth", __name__, url_prefix="/oauth")


def _server() -> AuthorizationServer:
    return current_app.extensions["puente.oauth"]


def claimed_client_id() -> str | None:
    """The client id a request says it is, nothing verified: for rate limits only."""
    claimed: Any = None
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic" and credentials.username:
        claimed = urllib.parse.unquote(credentials.username)  # as Authlib decodes it
    claimed = claimed or request.form.get("client_id")
    assertion = request.form.get("client_assertion")
    if not claimed and assertion:
        try:
            claimed = json.loads(jws.extract_compact(to_bytes(assertion)).payload).get("sub")
        except (JoseError, ValueError, AttributeError):
            return None
    # Agency ids are at most 100 characters; anything else is no client (the address counts).
    return claimed if isinstance(claimed, str) and 0 < len(claimed) <= 100 else None


def _refused(es: str, en: str, status: int = 400) -> InvalidClientError:
    """``invalid_client`` with ``en`` as its (ASCII, RFC 6749) description, remembering the
    Spanish wording for the ``detail`` member :func:`_explained` adds."""
    g.oauth_detail = (es, en)
    return InvalidClientError(description=en, status_code=status)


#: What each OAuth error means to a person, Spanish and English (``detail``).
OAUTH_ERRORS: dict[str, tuple[str, str]] = {
    "invalid_client": (
        "No se pudo autenticar a la institución: identificador desconocido o deshabilitado, "
        "secreto incorrecto, o una aserción vencida, repetida, para otro destinatario ('aud') "
        "o firmada con otra llave.",
        "The agency could not be authenticated: unknown or disabled client id, wrong secret, "
        "or an assertion that is expired, replayed, meant for another audience ('aud') or "
        "signed with another key.",
    ),
    "invalid_request": (
        "La solicitud de token está incompleta o mal formada.",
        "The token request is incomplete or malformed.",
    ),
    "unsupported_grant_type": (
        "Tipo de concesión no admitido: use grant_type=client_credentials.",
        "Unsupported grant type: use grant_type=client_credentials.",
    ),
    "unauthorized_client": (
        "Esta institución no puede usar este tipo de concesión.",
        "This agency may not use this grant type.",
    ),
    "invalid_grant": (
        "El token no es de esta institución o ya no es válido.",
        "The token is not this agency's or is no longer valid.",
    ),
    "unsupported_token_type": (
        "Tipo de token no admitido.",
        "Unsupported token type.",
    ),
}


def _explained(answer: Response) -> Response:
    """Add to an OAuth error what a person reads: ``detail`` in the client's language (Spanish
    or English; ``error_description`` stays the RFC's ASCII text) and the ``request_id``."""
    if answer.status_code < 400 or answer.mimetype != "application/json":
        return answer
    body = answer.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return answer
    error = body["error"]
    es, en = g.get("oauth_detail") or OAUTH_ERRORS.get(
        error, ("La solicitud OAuth no es válida.", "The OAuth request is not valid.")
    )
    if error == "invalid_scope":
        es, en = _scope_refusal()
    elif "oauth_detail" in g:
        # The hub's own words, in both languages; a failed authentication leads with what
        # every such failure may be.
        if error == "invalid_client":
            es = f"{OAUTH_ERRORS[error][0]} Causa: {es}."
            en = f"{OAUTH_ERRORS[error][1]} Cause: {en}"
    elif isinstance(body.get("error_description"), str) and body["error_description"]:
        # Authlib's own reasons (an expired or replayed assertion, a claim not valid) come in
        # English only: the Spanish reader gets them too, rather than the general sentence alone.
        cause = body["error_description"]
        es, en = f"{es} Causa (en inglés): {cause}", f"{en} Cause: {cause}"
    lang = negotiated_language()
    # Every error has its RFC 6749 ASCII description (Authlib leaves some without one).
    body.setdefault("error_description", en.encode("ascii", "replace").decode("ascii"))
    body["detail"] = es if lang == "es" else en
    body["request_id"] = g.get("request_id")
    answer.set_data(json.dumps(body, ensure_ascii=False))
    answer.headers["Content-Language"] = lang
    return answer


def _scope_refusal() -> tuple[str, str]:
    """Which of the requested scopes the agency was not registered with."""
    from exchange.agencies import Agency

    requested = scope_to_list(request.form.get("scope", "")) or []
    client_id = claimed_client_id()
    agency = db.session().get(Agency, client_id) if client_id else None
    allowed = set(agency.scopes if agency is not None else ())
    missing = [scope for scope in requested if scope not in allowed] or requested
    listed = ", ".join(missing)
    return (
        f"Alcance no permitido para esta institución o inexistente: {listed}.",
        f"Scope not granted to this agency, or not a scope at all: {listed}.",
    )


def _counting_failures(answer: Response) -> Response:
    # invalid_client is the client failing to authenticate: 401 when it used the Authorization
    # header, 400 otherwise (RFC 6749 §5.2), so the error code tells, not the status.
    if answer.status_code in (400, 401):
        error = answer.get_json(silent=True)
        if isinstance(error, dict) and error.get("error") == "invalid_client":
            ratelimit.authentication_failed(claimed_client_id())
    return _explained(answer)


def _ambiguous_client() -> Response | None:
    """A request that says two things about who the client is: two authentication methods
    (RFC 6749 §2.3: one per request), or a ``client_id`` other than the assertion's subject
    (RFC 7521 §4.2). Authlib would go by one of them; the hub refuses both."""
    assertion = request.form.get("client_assertion")
    credentials = request.authorization
    if assertion and credentials is not None:
        g.oauth_detail = (
            "Use un solo método de autenticación del cliente por solicitud: la aserción "
            "(client_assertion) o el encabezado Authorization, no ambos.",
            "Use one client authentication method per request: the assertion "
            "(client_assertion) or the Authorization header, not both.",
        )
        return _oauth_error("invalid_request", g.oauth_detail[1], 400)
    named = request.form.get("client_id")
    if assertion and named:
        try:
            subject = json.loads(jws.extract_compact(to_bytes(assertion)).payload).get("sub")
        except (JoseError, ValueError, AttributeError):
            return None  # not an assertion at all: Authlib refuses it as such
        if subject != named:
            g.oauth_detail = (
                "client_id no es la institución que firma la aserción (su 'sub').",
                "client_id is not the agency that signed the assertion (its 'sub').",
            )
            return _oauth_error("invalid_client", g.oauth_detail[1], 400)
    return None


def _insecure_transport() -> Response | None:
    """``invalid_request`` for OAuth over plain http that the hub does not allow
    (:func:`transport_allowed`), saying how to configure it, instead of Authlib's 500."""
    if transport_allowed():
        return None
    token_url = current_app.config["PUBLIC_URL"].rstrip("/") + TOKEN_PATH
    g.oauth_detail = (
        f"OAuth necesita https y esta solicitud llegó por http. Llame al nodo en {token_url}; "
        "detrás de un proxy inverso que termina TLS, el proxy debe enviar "
        "X-Forwarded-Proto: https (desde una dirección en FORWARDED_ALLOW_IPS de gunicorn). "
        "Un nodo de desarrollo o de red local sin TLS declara un PUENTE_PUBLIC_URL http://.",
        f"OAuth needs https and this request came over plain http. Call the hub at {token_url}; "
        "behind a reverse proxy that terminates TLS, the proxy must send "
        "X-Forwarded-Proto: https (from an address in gunicorn's FORWARDED_ALLOW_IPS). "
        "A development or local-network hub without TLS sets an http:// PUENTE_PUBLIC_URL.",
    )
    return _oauth_error("invalid_request", g.oauth_detail[1], 400)


#: Bodies the OAuth endpoints read: RFC 6749 §4.4.2 (and RFC 7662 §2.1, RFC 7009 §2.1) send
#: parameters as a form; a multipart form carries the same fields and is read alike.
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _not_a_form() -> Response | None:
    """``invalid_request`` for a body that is not a form (JSON, most often): Authlib reads form
    fields only, so it would answer as if nothing had been sent — ``unsupported_grant_type``
    to a client that did send ``grant_type=client_credentials``, in JSON."""
    if request.mimetype in FORM_MEDIA_TYPES or not request.get_data(cache=True):
        return None
    # Echoed in error_description, which RFC 6749 §5.2 keeps to printable ASCII.
    sent = "".join(c for c in request.mimetype[:100] if " " <= c <= "~")
    g.oauth_detail = (
        "Los parámetros OAuth van como formulario (Content-Type: "
        "application/x-www-form-urlencoded, RFC 6749 §4.4.2), "
        + (f"no como {sent}" if sent else "y la solicitud no dice su Content-Type")
        + ": envíe grant_type=client_credentials (y scope, client_assertion…) como campos "
        "de formulario.",
        "OAuth parameters are sent as a form (Content-Type: "
        "application/x-www-form-urlencoded, RFC 6749 section 4.4.2), "
        + (f"not as {sent}" if sent else "and the request names no Content-Type")
        + ": send grant_type=client_credentials (and scope, client_assertion...) as form "
        "fields.",
    )
    return _oauth_error("invalid_request", g.oauth_detail[1], 400)


def _oauth_error(error: str, description: str, status: int) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(
        body,
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@bp.post("/token")
def token() -> Response:
    return _counting_failures(
        _insecure_transport()
        or _not_a_form()
        or _ambiguous_client()
        or _server().create_token_response()
    )


@bp.post("/introspect")
def introspect() -> Response:
    return _counting_failures(
        _insecure_transport()
        or _not_a_form()
        or _ambiguous_client()
        or _server().create_endpoint_response(AgencyIntrospection.ENDPOINT_NAME)
    )


@bp.post("/revoke")
def revoke() -> Response:
    return _counting_failures(
        _insecure_transport()
        or _not_a_form()
        or _ambiguous_client()
        or _server().create_endpoint_response(AgencyRevocation.ENDPOINT_NAME)
    )


def _read_bounded_body() -> None:
    """Read the form's bytes through the /v1 routes' limit before anything parses it.

    Werkzeug cuts a chunked body (no Content-Length) at ``MAX_CONTENT_LENGTH`` instead of
    refusing it, and the first bytes of a form are a form: it would be served. Read here, an
    over-limit body is the 413 problem the JSON routes give, and Authlib parses the cached bytes.
    """
    request_body(cache=True)


def init_app(app: Flask) -> None:
    # One server per app: Authlib keeps its settings on the server, and tests build many apps.
    app.extensions["puente.oauth"] = create_server(app)
    app.register_blueprint(bp)
    ratelimit.guard_client_authentication(app, bp, claimed_client_id)
    # First of the blueprint's hooks: Flask-Limiter's, moved there, read the form's client id.
    app.before_request_funcs.setdefault(bp.name, []).insert(0, _read_bounded_body)
