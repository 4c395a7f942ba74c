"""The WebSocket opening handshake, client and server side (RFC 6455 §4).

Client: :func:`build_request` gives the bytes of the upgrade request;
:func:`check_response` validates the server's answer, parsed by
``http11.ResponseParser``, and returns what was negotiated.

Server (the project's own echo server and tests): :func:`check_request`,
:func:`build_response` and :func:`build_reject`.

Header order and casing are kept exactly as built, defaults first; a user
header with the name of a default replaces it where it stands, so a
browser-like header set can be reproduced. The fields that make the handshake
work (``Upgrade``, ``Connection``, the key, the version, the accept value) are
never taken from the user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from rapidws._types import HeadersLike
from rapidws.errors import HandshakeError, InvalidStatus
from rapidws.protocol.deflate import EXTENSION_NAME, DeflateOptions, PerMessageDeflate, negotiate
from rapidws.protocol.headers import (
    ExtensionHeader,
    Headers,
    build_subprotocol_list,
    parse_extension_list,
    parse_subprotocol_list,
    parse_token_list,
    parse_upgrade_list,
)
from rapidws.protocol.http11 import Request, Response, serialize_request, serialize_response

__all__ = [
    "GUID",
    "DEFAULT_USER_AGENT",
    "HandshakeResult",
    "generate_key",
    "accept_key",
    "basic_auth_header",
    "build_request",
    "check_response",
    "check_request",
    "build_response",
    "build_reject",
]

#: RFC 6455 §1.3: the globally unique identifier appended to the key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Sent as ``User-Agent`` unless overridden. Keep in step with the package version.
DEFAULT_USER_AGENT = "rapidws/0.1.0"

# Fields the handshake computes itself: a user value would break it, or hide
# a bug. Host is not here: overriding it (virtual hosting behind a tunnel) is
# legitimate.
_RESERVED_REQUEST_FIELDS = frozenset(
    {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-accept"}
)
_RESERVED_RESPONSE_FIELDS = frozenset({"upgrade", "connection", "sec-websocket-accept"})
_RESERVED_REJECT_FIELDS = frozenset({"content-length", "transfer-encoding"})


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``.

    RFC 6455 §4.1: "a randomly selected 16-byte value that has been
    base64-encoded [...] The nonce MUST be selected randomly for each
    connection."
    """
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value that answers ``key``."""
    # RFC 6455 §4.2.2: "concatenate this with the Globally Unique Identifier
    # [...] "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" in string form, which is
    # unlikely to be used by network endpoints that do not understand the
    # WebSocket Protocol. A SHA-1 hash (160 bits) [FIPS.180-3], base64-encoded
    # (see Section 4 of [RFC4648]), of this concatenation is then returned in
    # the server's handshake."
    digest = hashlib.sha1((key + GUID).encode("latin-1")).digest()
    return base64.b64encode(digest).decode("ascii")


def basic_auth_header(user: str, password: str) -> str:
    """Return the ``Authorization`` (or ``Proxy-Authorization``) value for Basic auth.

    RFC 7617: ``"Basic " base64(user-id ":" password)``, with UTF-8 as the
    charset (§2.1).

    Raises:
        ValueError: if ``user`` contains a colon or either contains a control
            character (RFC 7617 §2: both are invalid).
    """
    if ":" in user:
        raise ValueError("invalid Basic auth user: a user-id cannot contain ':'")
    for part in (user, password):
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in part):
            raise ValueError("invalid Basic auth credentials: control characters are not allowed")
    credentials = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _merge(defaults: Headers, user: HeadersLike, reserved: frozenset[str]) -> Headers:
    # The first user field named like a default replaces it in place; further
    # fields of that name, and fields with new names, are appended in order.
    merged = defaults.copy()
    replaceable = {name.lower() for name, _ in defaults}
    for name, value in Headers(user):
        key = name.lower()
        if key in reserved:
            raise ValueError(
                f"header {name!r} is set by the WebSocket handshake and cannot be overridden"
            )
        if key in replaceable:
            replaceable.discard(key)
            merged.set(name, value)
        else:
            merged.add(name, value)
    return merged


# ---------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------


def build_request(
    *,
    host: str,
    resource: str,
    key: str,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    headers: HeadersLike = (),
    auth: tuple[str, str] | None = None,
    user_agent: str | None = DEFAULT_USER_AGENT,
    order: Sequence[str] | None = None,
) -> bytes:
    """Return the bytes of a client's opening handshake (RFC 6455 §4.1).

    ``host`` is the ready ``Host`` value (``example.com:8080``, ``[::1]:9000``)
    and ``resource`` the request target (path and query). ``extensions`` is a
    ready ``Sec-WebSocket-Extensions`` value.

    Fields are sent in this order: Host, Upgrade, Connection,
    Sec-WebSocket-Key, Sec-WebSocket-Version, then Origin,
    Sec-WebSocket-Protocol, Sec-WebSocket-Extensions and Authorization when
    given, User-Agent unless ``user_agent`` is None, then ``headers``. A field
    of ``headers`` named like one of these replaces its value in place (so an
    ``Authorization`` header wins over ``auth``).

    ``order`` (field names, case-insensitive) rearranges the finished fields:
    those it names come first, in its order; the others follow in the order
    above. Names and values are unchanged, so a browser's exact header order
    can be reproduced while the handshake still computes its own fields.

    Raises:
        ValueError: if ``headers`` tries to set Upgrade, Connection,
            Sec-WebSocket-Key, Sec-WebSocket-Version or Sec-WebSocket-Accept,
            or if any field or the resource is invalid (CR/LF injection).
    """
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a sequence of names, not a str")
    # RFC 6455 §4.1: "The request MUST contain an |Upgrade| header field whose
    # value MUST include the "websocket" keyword. [...] a |Connection| header
    # field whose value MUST include the "Upgrade" token. [...] a header field
    # with the name |Sec-WebSocket-Key| [...] a header field with the name
    # |Sec-WebSocket-Version|. The value of this header field MUST be 13."
    fields = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        fields.append(("Origin", origin))
    if subprotocols:
        fields.append(("Sec-WebSocket-Protocol", build_subprotocol_list(subprotocols)))
    if extensions:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    if auth is not None:
        fields.append(("Authorization", basic_auth_header(*auth)))
    if user_agent is not None:
        fields.append(("User-Agent", user_agent))
    if not headers and order is None:
        # Nothing to merge or reorder (the common case): the fields as built.
        return serialize_request("GET", resource, fields)
    merged = _merge(Headers(fields), headers, _RESERVED_REQUEST_FIELDS)
    if order is not None:
        merged = _reorder(merged, order)
    return serialize_request("GET", resource, merged.items())


def _reorder(fields: Headers, order: Sequence[str]) -> Headers:
    # A stable sort on the rank in ``order``: fields of one name keep their
    # relative order, and unnamed fields keep theirs after the named ones.
    # (RFC 9110 §5.3: only the order of fields with the same name matters to
    # HTTP, and that order is kept.)
    if isinstance(order, str):
        raise TypeError("order must be a sequence of field names, not a str")
    rank: dict[str, int] = {}
    for name in order:
        rank.setdefault(name.lower(), len(rank))
    items = fields.items()
    last = len(rank)
    return Headers(sorted(items, key=lambda item: rank.get(item[0].lower(), last)))


@dataclass(slots=True)
class HandshakeResult:
    """What the server accepted."""

    #: The subprotocol the server selected, if any.
    subprotocol: str | None
    #: Extensions the server accepted, with their parameters, in its order.
    extensions: list[ExtensionHeader]
    #: Every header of the 101 response (cookies, server name ...).
    headers: Headers
    #: permessage-deflate as agreed, when the server accepted an offer of it.
    deflate: PerMessageDeflate | None = None


def check_response(
    response: Response,
    *,
    key: str,
    subprotocols: Sequence[str] = (),
    offered_extensions: Sequence[str] = (),
    deflate_offers: Sequence[DeflateOptions] = (),
) -> HandshakeResult:
    """Validate the server's opening handshake (RFC 6455 §4.1, client rules).

    ``key`` is the ``Sec-WebSocket-Key`` that was sent, ``subprotocols`` the
    offered subprotocols and ``offered_extensions`` the names of the offered
    extensions. ``deflate_offers`` are the permessage-deflate offers sent
    (RFC 7692); the server's answer to them is checked and, when it accepted
    one, returned as ``deflate``. For a refused upgrade, fill ``response.body``
    (with a :class:`~rapidws.protocol.http11.BodyReader`) before calling, so
    that the error carries it.

    Raises:
        InvalidStatus: if the status is not 101.
        HandshakeError: if the 101 breaks a rule; ``status``, ``headers`` and
            ``body`` of the response are attached.
    """
    status = response.status
    fields = response.headers

    def fail(reason: str) -> HandshakeError:
        return HandshakeError(
            f"invalid WebSocket handshake response: {reason}",
            status=status,
            headers=fields.items(),
            body=response.body,
        )

    # "If the status code received from the server is not 101, the client
    # handles the response per HTTP [RFC2616] procedures. [...] Otherwise
    # [...] the client MUST _Fail the WebSocket Connection_."
    if status != 101:
        raise InvalidStatus(
            f"server rejected WebSocket connection: HTTP {status}",
            status=status,
            headers=fields.items(),
            body=response.body,
        )

    # "If the response lacks an |Upgrade| header field or the |Upgrade| header
    # field contains a value that is not an ASCII case-insensitive match for
    # the value "websocket", the client MUST _Fail the WebSocket Connection_."
    # (We accept "websocket" among other protocols, as browsers do.)
    values = fields.grouped()
    upgrade = values.get("upgrade", [])
    if not upgrade:
        raise fail("missing Upgrade header")
    # What nearly every server sends, "Upgrade: websocket", parses to just that.
    if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
        try:
            protocols = parse_upgrade_list(upgrade)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if "websocket" not in protocols:
            raise fail(f"Upgrade header is {', '.join(upgrade)!r}, not 'websocket'")

    # "If the response lacks a |Connection| header field or the |Connection|
    # header field doesn't contain a token that is an ASCII case-insensitive
    # match for the value "Upgrade", the client MUST _Fail the WebSocket
    # Connection_."
    connection = values.get("connection", [])
    if not connection:
        raise fail("missing Connection header")
    if len(connection) != 1 or connection[0].lower() != "upgrade":  # as above
        try:
            tokens = parse_token_list(connection)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if "upgrade" not in tokens:
            raise fail(f"Connection header is {', '.join(connection)!r}, without 'Upgrade'")

    # "If the response lacks a |Sec-WebSocket-Accept| header field or the
    # |Sec-WebSocket-Accept| contains a value other than the base64-encoded
    # SHA-1 of the concatenation of the |Sec-WebSocket-Key| (as a string, not
    # base64-decoded) with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    # but ignoring any leading and trailing whitespace, the client MUST _Fail
    # the WebSocket Connection_."
    accept = values.get("sec-websocket-accept", [])
    if not accept:
        raise fail("missing Sec-WebSocket-Accept header")
    if len(accept) > 1:
        raise fail("more than one Sec-WebSocket-Accept header")
    expected = accept_key(key)
    if accept[0] != expected:
        raise fail(f"Sec-WebSocket-Accept is {accept[0]!r}, expected {expected!r}")

    # "If the response includes a |Sec-WebSocket-Extensions| header field and
    # this header field indicates the use of an extension that was not present
    # in the client's handshake (the server has indicated an extension not
    # requested by the client), the client MUST _Fail the WebSocket
    # Connection_." Names compare exactly: the server echoes the offered token.
    # Parameters are for the extension itself (deflate.py) to check.
    extensions: list[ExtensionHeader] = []
    deflate: PerMessageDeflate | None = None
    extension_values = values.get("sec-websocket-extensions")
    if extension_values:
        try:
            extensions = parse_extension_list(extension_values)
        except ValueError as exc:
            raise fail(str(exc)) from None
        for name, _ in extensions:
            if name not in offered_extensions and not (deflate_offers and name == EXTENSION_NAME):
                raise fail(f"server accepted extension {name!r}, which was not offered")
        if deflate_offers:
            try:
                deflate = negotiate(extensions, deflate_offers)
            except ValueError as exc:
                raise fail(str(exc)) from None

    # "If the response includes a |Sec-WebSocket-Protocol| header field and
    # this header field indicates the use of a subprotocol that was not
    # present in the client's handshake (the server has indicated a
    # subprotocol not requested by the client), the client MUST _Fail the
    # WebSocket Connection_." RFC 6455 §4.2.2 adds that the server answers
    # with "a single value representing the subprotocol".
    subprotocol: str | None = None
    protocol_values = values.get("sec-websocket-protocol")
    if protocol_values:
        try:
            selected = parse_subprotocol_list(protocol_values)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if not subprotocols:
            raise fail(f"server selected subprotocol {', '.join(selected)!r}, none was offered")
        if len(selected) != 1:
            raise fail(f"server selected {len(selected)} subprotocols, expected one: {selected!r}")
        if selected[0] not in subprotocols:
            raise fail(f"server selected subprotocol {selected[0]!r}, which was not offered")
        subprotocol = selected[0]

    return HandshakeResult(
        subprotocol=subprotocol, extensions=extensions, headers=fields, deflate=deflate
    )


# ---------------------------------------------------------------------------
# Server side
# ---------------------------------------------------------------------------


def check_request(request: Request) -> str:
    """Validate a client's opening handshake (RFC 6455 §4.2.1); return its key.

    Raises:
        HandshakeError: if the request is not a valid upgrade. Its ``status``
            is the status to answer with (400, or 426 for an unsupported
            WebSocket version); pass it to :func:`build_reject`.
    """
    fields = request.headers

    def fail(reason: str, status: int = 400) -> HandshakeError:
        return HandshakeError(f"invalid WebSocket request: {reason}", status=status)

    # "1. An HTTP/1.1 or higher GET request, including a "Request-URI"".
    if request.method != "GET":
        raise fail(f"method is {request.method}, expected GET")
    if request.version != "HTTP/1.1":
        raise fail(f"version is {request.version}, expected HTTP/1.1")

    # "2. A |Host| header field containing the server's authority." RFC 7230
    # §5.4: a server MUST answer 400 to a request without Host or with more
    # than one.
    if len(fields.get_all("Host")) != 1:
        raise fail("expected exactly one Host header")

    # "3. An |Upgrade| header field containing the value "websocket", treated
    # as an ASCII case-insensitive value."
    try:
        if "websocket" not in parse_upgrade_list(fields.get_all("Upgrade")):
            raise fail("missing 'Upgrade: websocket'")
        # "4. A |Connection| header field that includes the token "Upgrade",
        # treated as an ASCII case-insensitive value."
        if "upgrade" not in parse_token_list(fields.get_all("Connection")):
            raise fail("missing 'Connection: Upgrade'")
    except ValueError as exc:
        raise fail(str(exc)) from None

    # "5. A |Sec-WebSocket-Key| header field with a base64-encoded [...] value
    # that, when decoded, is 16 bytes in length."
    keys = fields.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise fail("expected exactly one Sec-WebSocket-Key header")
    key = keys[0]
    try:
        raw = base64.b64decode(key.encode("latin-1"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise fail(f"Sec-WebSocket-Key {key!r} is not 16 base64-encoded bytes")

    # "6. A |Sec-WebSocket-Version| header field, with a value of 13." §4.4:
    # otherwise the server answers with an error such as 426 and its versions.
    versions = fields.get_all("Sec-WebSocket-Version")
    if versions != ["13"]:
        raise fail(f"unsupported Sec-WebSocket-Version {', '.join(versions)!r}", status=426)

    return key


def build_response(
    key: str,
    *,
    subprotocol: str | None = None,
    extensions: str | None = None,
    headers: HeadersLike = (),
) -> bytes:
    """Return a 101 Switching Protocols response accepting ``key`` (RFC 6455 §4.2.2).

    Raises:
        ValueError: if ``headers`` tries to set Upgrade, Connection or
            Sec-WebSocket-Accept, or a field is invalid.
    """
    fields = Headers()
    fields.add("Upgrade", "websocket")
    fields.add("Connection", "Upgrade")
    fields.add("Sec-WebSocket-Accept", accept_key(key))
    if subprotocol is not None:
        fields.add("Sec-WebSocket-Protocol", subprotocol)
    if extensions:
        fields.add("Sec-WebSocket-Extensions", extensions)
    fields = _merge(fields, headers, _RESERVED_RESPONSE_FIELDS)
    return serialize_response(101, "Switching Protocols", fields)


def build_reject(status: int, body: bytes, *, headers: HeadersLike = ()) -> bytes:
    """Return an HTTP error response refusing an upgrade, with ``Content-Length``.

    A 426 response carries ``Sec-WebSocket-Version: 13`` (RFC 6455 §4.4:
    "the server MUST [...] send an appropriate HTTP error code (such as 426
    Upgrade Required) and a |Sec-WebSocket-Version| header field indicating
    the version(s) the server is capable of understanding").

    Raises:
        ValueError: if ``status`` is below 200, or ``headers`` sets
            Content-Length or Transfer-Encoding, or a field is invalid.
    """
    if status < 200:
        raise ValueError(f"a rejection needs a final status code, got {status}")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    fields = Headers()
    if status == HTTPStatus.UPGRADE_REQUIRED:
        fields.add("Sec-WebSocket-Version", "13")
    fields.add("Content-Type", "text/plain; charset=utf-8")
    fields.add("Content-Length", str(len(body)))
    fields.add("Connection", "close")
    fields = _merge(fields, headers, _RESERVED_REJECT_FIELDS)
    return serialize_response(status, reason, fields, body)
