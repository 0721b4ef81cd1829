"""What a pushing agency signs, and how the hub checks it: ``Puente-Signature``.

The signed bytes are the RFC 8785 (JCS) canonical JSON of the push body (the envelope
``{"schema", "local_id", "child_id"?, "data"}``). The same bytes are hashed for
``body_sha256`` and encrypted at rest, so a stored version, its hash and its signature always
describe one byte string.

The signature is a detached JWS in compact form (RFC 7515 with RFC 7797 unencoded payload)::

    BASE64URL({"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"<agency key id>"}) + ".." + sig

Only ``EdDSA`` (Ed25519) is accepted, ``b64`` must be ``false`` and named in ``crit``, the
payload must be detached, and ``kid`` must name one of the agency's active keys. joserfc does
the JWS work; this module decides what is acceptable.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785
from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import OKPKey
from joserfc.jws import JWSAlgModel

ALGORITHM = "EdDSA"
MAX_SIGNATURE_CHARS = 2048


class _EdDSAOnly(jws.JWSRegistry):
    """joserfc's registry allowing EdDSA alone. RFC 9864 deprecates the polymorphic "EdDSA"
    name and joserfc warns on every use; the Puente contract (API.md) names it, so the warning
    is noise here and is left out."""

    def get_alg(self, name: str) -> JWSAlgModel:
        if name != ALGORITHM:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


_REGISTRY = _EdDSAOnly(algorithms=[ALGORITHM])
# The detached payload is the whole canonical body; the request size limit bounds it already.
_REGISTRY.max_payload_length = 64 * 1024 * 1024

# -- canonical JSON ----------------------------------------------------------------------------

_SAFE_INTEGER = 2**53 - 1
# orjson with sorted keys writes what JCS writes for such values: no whitespace, UTF-8 left
# unescaped, the same short escapes (\b \t \n \f \r \" \\) and \u00xx for other controls.
# Types that are not JSON (datetimes, dataclasses, subclasses of str, int, dict, list) are
# passed through, so orjson refuses them as the reference does instead of writing them.
_FAST_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# Member names sort by UTF-16 code unit in JCS and by code point in Python: the two orders
# differ only when a name holds a character outside the Basic Multilingual Plane.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# JSON text holds a float only where a digit is followed by ".", "e" or "E"; an integer beyond
# 2**53 only in a run of 16 or more digits; an astral character only as a 4-byte UTF-8
# sequence (lead byte F0-F4) or a \uD800-\uDBFF escape. Text with none of these proves the
# fast path applies; text with them (a "1.5" inside a string, say) is looked at more closely.
# The scan maps every byte to its class ("d" digit, "x" one of .eE, "!" a 4-byte lead) with one
# bytes.translate and then searches the classes for fixed strings: all in C, ~5x faster than
# walking the parsed value (a character-class regex over the text was slower than the walk).


def _byte_classes() -> bytes:
    classes = bytearray(b" " * 256)
    for byte in b"0123456789":
        classes[byte] = ord("d")
    for byte in b".eE":
        classes[byte] = ord("x")
    for byte in range(0xF0, 0x100):
        classes[byte] = ord("!")
    return bytes(classes)


_CLASSES = _byte_classes()
_HIGH_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")


def _text_proves_fast_path(source: bytes) -> bool:
    classes = source.translate(_CLASSES)
    if b"dx" in classes or b"!" in classes or b"d" * 16 in classes:
        return False
    return b"\\u" not in source or not _HIGH_SURROGATE_ESCAPE.search(source)


def _fast_path_applies(value: Any) -> bool:
    """True when orjson gives exactly the RFC 8785 bytes: no floats (JCS prints numbers
    as ECMAScript doubles, Python does not), integers within ±(2**53 - 1), and member names
    without astral-plane characters (Python sorts keys by code point, JCS by UTF-16 unit; they
    agree on the Basic Multilingual Plane)."""
    stack = [value] if type(value) in (dict, list) else [[value]]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            names = "".join(node)
            if not names.isascii() and _ASTRAL.search(names):
                return False
            children: Any = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind is str:
                continue
            if kind is dict or kind is list:
                push(child)
            elif kind is int:
                if not -_SAFE_INTEGER <= child <= _SAFE_INTEGER:
                    return False
            elif kind is float:
                return False
    return True


def canonical_json(value: Any, *, source: bytes | None = None) -> bytes:
    """The RFC 8785 canonical bytes of a JSON value.

    ``rfc8785`` (pure Python) is the reference; when the value has no floats, no integers
    beyond 2**53 and no astral-plane characters in member names, orjson produces the same
    bytes some sixty times faster (ten times faster than the ``json`` module), which matters
    on the push path (tests/unit/exchange/test_canonical_json.py proves the equality).
    ``source``, the JSON text ``value`` was parsed from (members may since have been removed,
    not added or changed), lets a quick scan of the text stand in for walking the value;
    without it, orjson's text is scanned instead.
    Raises ``ValueError`` for a value JCS cannot represent.
    """
    try:
        written = orjson.dumps(value, option=_FAST_OPTIONS)
    except orjson.JSONEncodeError:
        written = None  # an unpaired surrogate, say: let the reference say what is wrong
    if written is not None and (
        (source is not None and _text_proves_fast_path(source))
        # Without source text (a document an adapter built), orjson's own text is scanned the
        # same way, except that it writes NaN and infinities as null, which the scan cannot
        # tell from a null: text holding null is looked at more closely.
        or (b"null" not in written and _text_proves_fast_path(written))
        or _fast_path_applies(value)
    ):
        return written
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError, RecursionError) as error:
        raise ValueError(f"not canonicalisable as RFC 8785 JSON: {error}") from error


def body_sha256(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


# -- detached JWS ------------------------------------------------------------------------------


class SignatureError(Exception):
    """A ``Puente-Signature`` that cannot be accepted, with the reason in Spanish and English."""

    def __init__(self, message_es: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_es = message_es
        self.message_en = message_en


@dataclass(frozen=True)
class VerifiedSignature:
    kid: str
    jws: str


@functools.lru_cache(maxsize=1024)
def _public_key(crv: str, x: str) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": crv, "x": x})


def verify_detached(
    signature: str, canonical_body: bytes, keys: Mapping[str, Mapping[str, Any]]
) -> VerifiedSignature:
    """Check ``signature`` over ``canonical_body`` with one of ``keys`` (kid → public JWK).

    Returns the verified signature or raises :class:`SignatureError` saying what was wrong.
    """
    text = signature.strip()
    if not text or len(text) > MAX_SIGNATURE_CHARS or not text.isascii():
        raise SignatureError("la firma no es un JWS compacto", "the signature is not a compact JWS")
    parts = text.split(".")
    if len(parts) != 3:
        raise SignatureError(
            "la firma no es un JWS compacto (encabezado..firma)",
            "the signature is not a compact JWS (header..signature)",
        )
    if parts[1]:
        raise SignatureError(
            "la firma debe ser separada (JWS con la carga vacía: encabezado..firma)",
            "the signature must be detached (JWS with an empty payload: header..signature)",
        )
    try:
        parsed = jws.extract_compact(text.encode("ascii"), payload=b"", registry=_REGISTRY)
        header = parsed.headers()
    except (JoseError, ValueError, TypeError):
        raise SignatureError(
            "el encabezado de la firma no es válido", "the signature header is not valid"
        ) from None
    _check_header(header)
    kid = header["kid"]
    if kid not in keys:
        raise SignatureError(
            f"la clave «{kid}» no es una clave activa de la institución",
            f"key '{kid}' is not an active key of the agency",
        )
    try:
        verified = jws.extract_compact(
            text.encode("ascii"), payload=canonical_body, registry=_REGISTRY
        )
        jwk = keys[kid]
        key = _public_key(str(jwk.get("crv")), str(jwk.get("x")))
        valid = jws.validate_compact(verified, key, registry=_REGISTRY)
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise SignatureError(
            "la firma no corresponde al cuerpo enviado (forma canónica RFC 8785) con esa clave",
            "the signature does not match the body sent (RFC 8785 canonical form) with that key",
        )
    return VerifiedSignature(kid=kid, jws=text)


def _check_header(header: Mapping[str, Any]) -> None:
    if header.get("alg") != ALGORITHM:
        raise SignatureError(
            f"algoritmo «{header.get('alg')}» no admitido; se requiere EdDSA",
            f"algorithm '{header.get('alg')}' is not accepted; EdDSA is required",
        )
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise SignatureError(
            'el encabezado debe llevar "b64": false y "crit": ["b64"] (RFC 7797)',
            'the header must carry "b64": false and "crit": ["b64"] (RFC 7797)',
        )
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise SignatureError(
            "el encabezado debe nombrar la clave («kid»)", "the header must name the key ('kid')"
        )


def sign_detached(canonical_body: bytes, private_key: OKPKey, kid: str) -> str:
    """A ``Puente-Signature`` value, as an agency system makes it (used by tests and the demo)."""
    header = {"alg": ALGORITHM, "b64": False, "crit": ["b64"], "kid": kid}
    compact = jws.serialize_compact(header, canonical_body, private_key, registry=_REGISTRY)
    head, _payload, signature = compact.split(".")
    return f"{head}..{signature}"


def agency_signing_keys(agency: Any) -> dict[str, dict[str, Any]]:
    """kid → public JWK of the keys that verify the agency's signatures now."""
    from exchange.agencies import active_keys

    return {jwk["kid"]: jwk for jwk in active_keys(agency)}
