"""Tests of rapidws.protocol.handshake, grouped by the section of RFC 6455 they guard.

The ``websockets`` library's sans-I/O protocols serve as an independent
implementation: what we build, it must accept, and the other way round.
"""

from __future__ import annotations

import base64

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

from rapidws.errors import HandshakeError, InvalidStatus
from rapidws.protocol.handshake import (
    DEFAULT_USER_AGENT,
    GUID,
    HandshakeResult,
    accept_key,
    basic_auth_header,
    build_reject,
    build_request,
    build_response,
    check_request,
    check_response,
    generate_key,
)
from rapidws.protocol.headers import Headers
from rapidws.protocol.http11 import (
    BodyReader,
    Request,
    RequestParser,
    Response,
    ResponseParser,
)

# RFC 6455 §1.3 and §4.2.2: the sample nonce and its accept value.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

DEFAULT_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"User-Agent: rapidws/0.1.0\r\n"
    b"\r\n"
)


def request(**kwargs: object) -> bytes:
    """build_request with the sample host, resource and key."""
    options: dict[str, object] = {
        "host": "server.example.com",
        "resource": "/chat",
        "key": SAMPLE_KEY,
    }
    options.update(kwargs)
    return build_request(**options)  # type: ignore[arg-type]


def field_lines(data: bytes) -> list[bytes]:
    """The header lines of a serialized head, without the start line."""
    head, _, _ = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[1:]


def parse_request(data: bytes) -> Request:
    parsed = RequestParser().feed(data)
    assert parsed is not None
    return parsed


def parse_response(data: bytes) -> Response:
    """Parse a whole response, body included, as the client does."""
    parser = ResponseParser()
    response = parser.feed(data)
    assert response is not None
    if response.status != 101:
        reader = BodyReader(response.status, response.headers)
        reader.feed(parser.remaining)
        reader.feed_eof()
        response.body = reader.body
    return response


def switching(*extra: tuple[str, str], accept: str | None = SAMPLE_ACCEPT) -> Response:
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    if accept is not None:
        headers.add("Sec-WebSocket-Accept", accept)
    for name, value in extra:
        headers.add(name, value)
    return Response(101, "Switching Protocols", headers)


class TestKeys:
    """RFC 6455 §1.3, §4.1, §4.2.2: Sec-WebSocket-Key and Sec-WebSocket-Accept."""

    def test_sample_accept_value(self) -> None:
        assert accept_key(SAMPLE_KEY) == SAMPLE_ACCEPT

    def test_guid(self) -> None:
        assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def test_generated_keys_are_16_random_bytes(self) -> None:
        keys = {generate_key() for _ in range(32)}
        assert len(keys) == 32
        for key in keys:
            assert len(key) == 24
            assert len(base64.b64decode(key, validate=True)) == 16


class TestBuildRequest:
    """RFC 6455 §4.1: the client's opening handshake."""

    def test_default_request_exact(self) -> None:
        assert request() == DEFAULT_REQUEST

    def test_default_user_agent(self) -> None:
        assert DEFAULT_USER_AGENT == "rapidws/0.1.0"

    def test_every_option_in_order(self) -> None:
        data = request(
            origin="https://example.com",
            subprotocols=["chat", "superchat"],
            extensions="permessage-deflate; client_max_window_bits",
            auth=("user", "pass"),
            headers=[("X-Custom", "1"), ("Cookie", "a=b")],
        )
        assert data == (
            b"GET /chat HTTP/1.1\r\n"
            b"Host: server.example.com\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Origin: https://example.com\r\n"
            b"Sec-WebSocket-Protocol: chat, superchat\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            b"Authorization: Basic dXNlcjpwYXNz\r\n"
            b"User-Agent: rapidws/0.1.0\r\n"
            b"X-Custom: 1\r\n"
            b"Cookie: a=b\r\n"
            b"\r\n"
        )

    def test_user_agent_none_is_omitted(self) -> None:
        assert b"User-Agent" not in request(user_agent=None)

    def test_resource_with_query_and_ipv6_host(self) -> None:
        data = request(host="[::1]:9000", resource="/a/b?c=d&e=%20")
        assert data.startswith(b"GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: [::1]:9000\r\n")

    def test_user_header_replaces_default_in_place(self) -> None:
        data = request(
            origin="https://a.example",
            headers=[("X-First", "1"), ("user-agent", "Mozilla/5.0"), ("Origin", "https://b")],
        )
        assert field_lines(data)[5:] == [
            b"Origin: https://b",
            b"user-agent: Mozilla/5.0",
            b"X-First: 1",
        ]

    def test_host_may_be_overridden(self) -> None:
        data = request(headers=[("Host", "virtual.example")])
        assert field_lines(data)[0] == b"Host: virtual.example"
        assert data.count(b"Host:") == 1

    def test_header_without_default_is_appended(self) -> None:
        data = request(headers=[("Origin", "https://o")])
        assert field_lines(data)[-1] == b"Origin: https://o"

    def test_repeated_user_headers_are_all_sent(self) -> None:
        data = request(headers=[("User-Agent", "a"), ("X", "1"), ("User-Agent", "b")])
        assert field_lines(data)[5:] == [b"User-Agent: a", b"X: 1", b"User-Agent: b"]

    def test_mapping_headers_are_accepted(self) -> None:
        data = request(headers={"X-A": "1", "X-B": "2"})
        assert field_lines(data)[-2:] == [b"X-A: 1", b"X-B: 2"]

    def test_user_authorization_wins_over_auth(self) -> None:
        data = request(auth=("user", "pass"), headers=[("authorization", "Bearer t")])
        lines = field_lines(data)
        assert lines[5:] == [b"authorization: Bearer t", b"User-Agent: rapidws/0.1.0"]

    @pytest.mark.parametrize(
        "name",
        [
            "Upgrade",
            "connection",
            "Sec-WebSocket-Key",
            "SEC-WEBSOCKET-VERSION",
            "Sec-WebSocket-Accept",
        ],
    )
    def test_handshake_fields_cannot_be_overridden(self, name: str) -> None:
        with pytest.raises(ValueError, match=f"header '{name}' is set by the WebSocket handshake"):
            request(headers=[(name, "x")])

    @pytest.mark.parametrize(
        "options",
        [
            {"headers": [("X-Evil", "a\r\nInjected: 1")]},
            {"headers": [("X-Evil\r\nInjected", "1")]},
            {"host": "example.com\r\nInjected: 1"},
            {"origin": "https://a\nInjected: 1"},
            {"user_agent": "ua\r\n\r\nGET /other HTTP/1.1"},
            {"extensions": "x\r\nInjected: 1"},
        ],
    )
    def test_header_injection_is_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(ValueError, match="invalid"):
            request(**options)

    @pytest.mark.parametrize("resource", ["/chat HTTP/1.1\r\nX: 1\r\n\r\n", "/a b", ""])
    def test_invalid_resource_is_refused(self, resource: str) -> None:
        with pytest.raises(ValueError, match="invalid request line"):
            request(resource=resource)

    def test_subprotocols_as_a_string_is_refused(self) -> None:
        with pytest.raises(TypeError, match="not a str"):
            request(subprotocols="chat")

    def test_explicit_order_rearranges_every_field(self) -> None:
        data = request(
            origin="https://example.com",
            headers=[("Pragma", "no-cache"), ("Cookie", "a=b")],
            order=[
                "host",
                "Connection",
                "Pragma",
                "User-Agent",
                "Upgrade",
                "Origin",
                "Sec-WebSocket-Version",
                "Cookie",
                "Sec-WebSocket-Key",
            ],
        )
        assert data == (
            b"GET /chat HTTP/1.1\r\n"
            b"Host: server.example.com\r\n"
            b"Connection: Upgrade\r\n"
            b"Pragma: no-cache\r\n"
            b"User-Agent: rapidws/0.1.0\r\n"
            b"Upgrade: websocket\r\n"
            b"Origin: https://example.com\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Cookie: a=b\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"\r\n"
        )

    def test_fields_missing_from_the_order_follow_in_their_own_order(self) -> None:
        data = request(
            headers=[("X-B", "1"), ("X-A", "2"), ("X-B", "3")],
            order=["Sec-WebSocket-Key", "X-B", "Host"],
        )
        assert field_lines(data) == [
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            b"X-B: 1",
            b"X-B: 3",
            b"Host: server.example.com",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Version: 13",
            b"User-Agent: rapidws/0.1.0",
            b"X-A: 2",
        ]

    def test_an_order_does_not_make_handshake_fields_overridable(self) -> None:
        with pytest.raises(ValueError, match="set by the WebSocket handshake"):
            request(headers=[("Connection", "close")], order=["Connection"])

    def test_order_as_a_string_is_refused(self) -> None:
        with pytest.raises(TypeError, match="not a str"):
            request(order="Host")

    def test_invalid_subprotocol_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid subprotocol"):
            request(subprotocols=["chat room"])


class TestBasicAuth:
    """RFC 7617: Basic credentials, UTF-8 encoded."""

    def test_rfc_7617_example(self) -> None:
        # RFC 7617 §2.
        assert basic_auth_header("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="

    def test_non_ascii_is_utf_8(self) -> None:
        # RFC 7617 §2.1: "test" / "123£" with charset="UTF-8".
        assert basic_auth_header("test", "123\u00a3") == "Basic dGVzdDoxMjPCow=="

    def test_non_ascii_in_request(self) -> None:
        data = request(auth=("jürgen", "pässwörd"))
        expected = base64.b64encode("jürgen:pässwörd".encode()).decode()
        assert f"Authorization: Basic {expected}\r\n".encode() in data

    def test_password_may_contain_colons(self) -> None:
        assert basic_auth_header("u", "a:b") == "Basic " + base64.b64encode(b"u:a:b").decode()

    def test_colon_in_user_is_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot contain ':'"):
            basic_auth_header("us:er", "p")

    def test_control_characters_are_refused(self) -> None:
        with pytest.raises(ValueError, match="control characters"):
            basic_auth_header("user", "pa\nss")


class TestCheckResponseAccepts:
    """RFC 6455 §4.1: a valid 101 gives what was negotiated."""

    def test_minimal_101(self) -> None:
        response = switching()
        result = check_response(response, key=SAMPLE_KEY)
        assert result == HandshakeResult(subprotocol=None, extensions=[], headers=response.headers)

    def test_tokens_are_case_insensitive_and_may_be_in_lists(self) -> None:
        headers = Headers(
            [
                ("upgrade", "WebSocket"),
                ("connection", "keep-alive, UPGRADE"),
                ("sec-websocket-accept", SAMPLE_ACCEPT),
            ]
        )
        result = check_response(Response(101, "", headers), key=SAMPLE_KEY)
        assert result.subprotocol is None

    def test_selected_subprotocol(self) -> None:
        response = switching(("Sec-WebSocket-Protocol", "superchat"))
        result = check_response(response, key=SAMPLE_KEY, subprotocols=["chat", "superchat"])
        assert result.subprotocol == "superchat"

    def test_accepted_extension_with_parameters(self) -> None:
        response = switching(
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=10")
        )
        result = check_response(response, key=SAMPLE_KEY, offered_extensions=["permessage-deflate"])
        assert result.extensions == [("permessage-deflate", [("server_max_window_bits", "10")])]


class TestCheckResponseRejects:
    """RFC 6455 §4.1: every way a server response fails the connection."""

    def test_non_101_status_raises_invalid_status_with_the_response(self) -> None:
        headers = Headers([("Content-Length", "9"), ("Set-Cookie", "s=1")])
        response = Response(403, "Forbidden", headers, b"Forbidden")
        with pytest.raises(InvalidStatus) as info:
            check_response(response, key=SAMPLE_KEY)
        error = info.value
        assert isinstance(error, HandshakeError)
        assert str(error) == "server rejected WebSocket connection: HTTP 403"
        assert error.status == 403
        assert error.headers == [("Content-Length", "9"), ("Set-Cookie", "s=1")]
        assert error.body == b"Forbidden"

    @pytest.mark.parametrize(
        ("response", "reason"),
        [
            (
                Response(101, "", Headers([("Connection", "Upgrade")])),
                "missing Upgrade header",
            ),
            (
                Response(101, "", Headers([("Upgrade", "h2c"), ("Connection", "Upgrade")])),
                "Upgrade header is 'h2c', not 'websocket'",
            ),
            (
                Response(101, "", Headers([("Upgrade", "web socket"), ("Connection", "Upgrade")])),
                "invalid Upgrade header: expected ',' at position 4",
            ),
            (
                Response(101, "", Headers([("Upgrade", "websocket")])),
                "missing Connection header",
            ),
            (
                Response(101, "", Headers([("Upgrade", "websocket"), ("Connection", "close")])),
                "Connection header is 'close', without 'Upgrade'",
            ),
            (switching(accept=None), "missing Sec-WebSocket-Accept header"),
            (
                switching(accept="dGhlIHNhbXBsZSBub25jZQ=="),
                "Sec-WebSocket-Accept is 'dGhlIHNhbXBsZSBub25jZQ==', "
                "expected 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='",
            ),
            (
                switching(("Sec-WebSocket-Accept", SAMPLE_ACCEPT)),
                "more than one Sec-WebSocket-Accept header",
            ),
        ],
    )
    def test_invalid_101(self, response: Response, reason: str) -> None:
        response.body = b"body"
        with pytest.raises(HandshakeError) as info:
            check_response(response, key=SAMPLE_KEY)
        error = info.value
        assert not isinstance(error, InvalidStatus)
        assert str(error).startswith(f"invalid WebSocket handshake response: {reason}")
        assert error.status == 101
        assert error.headers == response.headers.items()
        assert error.body == b"body"

    def test_accept_for_another_key(self) -> None:
        with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept is"):
            check_response(switching(), key=generate_key())

    def test_extension_not_offered(self) -> None:
        response = switching(("Sec-WebSocket-Extensions", "permessage-deflate"))
        with pytest.raises(HandshakeError, match="extension 'permessage-deflate', which was not"):
            check_response(response, key=SAMPLE_KEY)

    def test_extension_other_than_offered(self) -> None:
        response = switching(("Sec-WebSocket-Extensions", "permessage-deflate, x-webkit"))
        with pytest.raises(HandshakeError, match="extension 'x-webkit', which was not offered"):
            check_response(response, key=SAMPLE_KEY, offered_extensions=["permessage-deflate"])

    def test_extension_names_compare_exactly(self) -> None:
        response = switching(("Sec-WebSocket-Extensions", "Permessage-Deflate"))
        with pytest.raises(HandshakeError, match="'Permessage-Deflate', which was not offered"):
            check_response(response, key=SAMPLE_KEY, offered_extensions=["permessage-deflate"])

    def test_malformed_extension_header(self) -> None:
        response = switching(("Sec-WebSocket-Extensions", "permessage-deflate;"))
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Extensions header"):
            check_response(response, key=SAMPLE_KEY, offered_extensions=["permessage-deflate"])

    def test_subprotocol_when_none_offered(self) -> None:
        response = switching(("Sec-WebSocket-Protocol", "chat"))
        with pytest.raises(HandshakeError, match="selected subprotocol 'chat', none was offered"):
            check_response(response, key=SAMPLE_KEY)

    def test_subprotocol_not_offered(self) -> None:
        response = switching(("Sec-WebSocket-Protocol", "Chat"))
        with pytest.raises(HandshakeError, match="subprotocol 'Chat', which was not offered"):
            check_response(response, key=SAMPLE_KEY, subprotocols=["chat"])

    @pytest.mark.parametrize(
        "fields",
        [
            [("Sec-WebSocket-Protocol", "chat, superchat")],
            [("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "superchat")],
        ],
    )
    def test_several_subprotocols(self, fields: list[tuple[str, str]]) -> None:
        with pytest.raises(HandshakeError, match="selected 2 subprotocols, expected one"):
            check_response(switching(*fields), key=SAMPLE_KEY, subprotocols=["chat", "superchat"])

    def test_malformed_subprotocol_header(self) -> None:
        response = switching(("Sec-WebSocket-Protocol", "chat/1"))
        with pytest.raises(HandshakeError, match="invalid Sec-WebSocket-Protocol header"):
            check_response(response, key=SAMPLE_KEY, subprotocols=["chat"])


class TestServerHandshake:
    """RFC 6455 §4.2: the server side, for the echo server."""

    def test_round_trip_with_the_client_builder(self) -> None:
        key = generate_key()
        data = build_request(host="localhost:8765", resource="/", key=key, subprotocols=["a"])
        parsed = parse_request(data)
        assert check_request(parsed) == key
        response = parse_response(build_response(key, subprotocol="a"))
        result = check_response(response, key=key, subprotocols=["a"])
        assert result.subprotocol == "a"

    def test_build_response_exact(self) -> None:
        data = build_response(
            SAMPLE_KEY,
            subprotocol="chat",
            extensions="permessage-deflate",
            headers=[("Server", "rapidws")],
        )
        assert data == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            b"Server: rapidws\r\n"
            b"\r\n"
        )

    @pytest.mark.parametrize("name", ["Upgrade", "Connection", "Sec-WebSocket-Accept"])
    def test_build_response_refuses_handshake_fields(self, name: str) -> None:
        with pytest.raises(ValueError, match=f"header '{name}' is set by the WebSocket handshake"):
            build_response(SAMPLE_KEY, headers=[(name, "x")])

    @pytest.mark.parametrize(
        ("replace", "reason", "status"),
        [
            ((b"GET /chat", b"POST /chat"), "method is POST, expected GET", 400),
            ((b"HTTP/1.1\r\n", b"HTTP/1.0\r\n"), "version is HTTP/1.0, expected HTTP/1.1", 400),
            ((b"Host: server.example.com\r\n", b""), "expected exactly one Host header", 400),
            ((b"Host: server.example.com\r\n", b"Host: a\r\nHost: b\r\n"), "exactly one Host", 400),
            ((b"Upgrade: websocket\r\n", b""), "missing 'Upgrade: websocket'", 400),
            ((b"Upgrade: websocket", b"Upgrade: h2c"), "missing 'Upgrade: websocket'", 400),
            ((b"Upgrade: websocket", b"Upgrade: a b"), "invalid Upgrade header", 400),
            ((b"Connection: Upgrade", b"Connection: close"), "missing 'Connection: Upgrade'", 400),
            (
                (b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
                "expected exactly one Sec-WebSocket-Key header",
                400,
            ),
            (
                (b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25jZQ"),
                "is not 16 base64-encoded bytes",
                400,
            ),
            (
                (b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ="),
                "Sec-WebSocket-Key 'c2hvcnQ=' is not 16 base64-encoded bytes",
                400,
            ),
            (
                (b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25j!Q=="),
                "is not 16 base64-encoded bytes",
                400,
            ),
            (
                (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
                "unsupported Sec-WebSocket-Version '8'",
                426,
            ),
            (
                (b"Sec-WebSocket-Version: 13\r\n", b""),
                "unsupported Sec-WebSocket-Version ''",
                426,
            ),
        ],
    )
    def test_check_request_rejections(
        self, replace: tuple[bytes, bytes], reason: str, status: int
    ) -> None:
        data = DEFAULT_REQUEST.replace(*replace)
        assert data != DEFAULT_REQUEST
        with pytest.raises(HandshakeError) as info:
            check_request(parse_request(data))
        assert str(info.value).startswith("invalid WebSocket request: ")
        assert reason in str(info.value)
        assert info.value.status == status

    def test_build_reject_exact(self) -> None:
        data = build_reject(403, b"go away", headers=[("Server", "rapidws")])
        assert data == (
            b"HTTP/1.1 403 Forbidden\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 7\r\n"
            b"Connection: close\r\n"
            b"Server: rapidws\r\n"
            b"\r\n"
            b"go away"
        )

    def test_version_mismatch_reject_names_version_13(self) -> None:
        # RFC 6455 §4.4.
        data = DEFAULT_REQUEST.replace(b"Version: 13", b"Version: 8")
        with pytest.raises(HandshakeError) as info:
            check_request(parse_request(data))
        assert info.value.status is not None
        response = parse_response(build_reject(info.value.status, b"version"))
        assert (response.status, response.reason) == (426, "Upgrade Required")
        assert response.headers.get("Sec-WebSocket-Version") == "13"
        assert response.body == b"version"

    def test_reject_headers_replace_defaults(self) -> None:
        data = build_reject(400, b"{}", headers=[("Content-Type", "application/json")])
        assert field_lines(data)[0] == b"Content-Type: application/json"

    def test_reject_refuses_framing_overrides_and_1xx(self) -> None:
        with pytest.raises(ValueError, match="'Content-Length' is set"):
            build_reject(400, b"", headers=[("Content-Length", "99")])
        with pytest.raises(ValueError, match="final status"):
            build_reject(101, b"")

    def test_reject_with_unknown_status(self) -> None:
        assert build_reject(599, b"").startswith(b"HTTP/1.1 599 \r\n")


class TestWebsocketsServerAsOracle:
    """The websockets library's server accepts our requests; we accept its responses."""

    def handshake(self, server: ServerProtocol, data: bytes) -> tuple[WsRequest, Response, bytes]:
        server.receive_data(data)
        [ws_request] = server.events_received()
        assert isinstance(ws_request, WsRequest)
        ws_response = server.accept(ws_request)
        assert server.handshake_exc is None
        assert ws_response.status_code == 101
        server.send_response(ws_response)
        assert server.state is State.OPEN
        # The server's first frame travels with the 101.
        server.send_text(b"hello")
        output = b"".join(server.data_to_send())
        parser = ResponseParser()
        response = parser.feed(output)
        assert response is not None
        return ws_request, response, parser.remaining

    def test_default_request(self) -> None:
        key = generate_key()
        data = build_request(host="example.com", resource="/chat?room=1", key=key)
        ws_request, response, remaining = self.handshake(ServerProtocol(), data)
        assert ws_request.path == "/chat?room=1"
        assert ws_request.headers["User-Agent"] == DEFAULT_USER_AGENT
        result = check_response(response, key=key)
        assert (result.subprotocol, result.extensions) == (None, [])
        assert remaining == b"\x81\x05hello"

    def test_subprotocol_extension_origin_auth_and_custom_headers(self) -> None:
        key = generate_key()
        data = build_request(
            host="example.com:8080",
            resource="/",
            key=key,
            origin="https://example.com",
            subprotocols=["chat", "v2.json"],
            extensions="permessage-deflate; client_max_window_bits",
            auth=("user", "pässword"),
            headers=[("User-Agent", "Mozilla/5.0"), ("X-Trace", "abc")],
        )
        server = ServerProtocol(
            origins=[Origin("https://example.com")],
            subprotocols=[Subprotocol("v2.json")],
            extensions=[ServerPerMessageDeflateFactory()],
        )
        ws_request, response, remaining = self.handshake(server, data)
        assert ws_request.headers["Host"] == "example.com:8080"
        assert ws_request.headers["User-Agent"] == "Mozilla/5.0"
        assert ws_request.headers["X-Trace"] == "abc"
        result = check_response(
            response,
            key=key,
            subprotocols=["chat", "v2.json"],
            offered_extensions=["permessage-deflate"],
        )
        assert result.subprotocol == "v2.json"
        assert [name for name, _ in result.extensions] == ["permessage-deflate"]
        assert remaining  # a compressed frame; decoding it is deflate's business

    def test_rejection_reaches_the_caller_with_its_body(self) -> None:
        server = ServerProtocol()
        server.receive_data(build_request(host="h", resource="/", key=generate_key()))
        [ws_request] = server.events_received()
        assert isinstance(ws_request, WsRequest)
        server.send_response(server.reject(403, "Forbidden by policy\n"))
        response = parse_response(b"".join(server.data_to_send()))
        with pytest.raises(InvalidStatus) as info:
            check_response(response, key="unused")
        assert info.value.status == 403
        assert info.value.body == b"Forbidden by policy\n"
        assert ("Content-Length", "20") in info.value.headers

    def test_server_refuses_what_it_should(self) -> None:
        # The oracle is not a pushover: a wrong version is refused.
        data = build_request(host="h", resource="/", key=generate_key()).replace(
            b"Version: 13", b"Version: 8"
        )
        server = ServerProtocol()
        server.receive_data(data)
        [ws_request] = server.events_received()
        assert isinstance(ws_request, WsRequest)
        assert server.accept(ws_request).status_code == 400
        assert server.handshake_exc is not None


class TestWebsocketsClientAsOracle:
    """The websockets library's client accepts our server's responses."""

    def client_request(self, client: ClientProtocol) -> Request:
        client.send_request(client.connect())
        return parse_request(b"".join(client.data_to_send()))

    def test_our_server_accepts_and_their_client_opens(self) -> None:
        client = ClientProtocol(parse_uri("ws://example.com/path"))
        parsed = self.client_request(client)
        assert parsed.target == "/path"
        key = check_request(parsed)
        client.receive_data(build_response(key) + b"\x81\x02hi")
        assert client.handshake_exc is None
        assert client.state is State.OPEN
        events = client.events_received()
        assert len(events) == 2  # the Response, then the frame sent along with it
        assert getattr(events[1], "data", None) == b"hi"

    def test_negotiated_subprotocol_and_extension(self) -> None:
        client = ClientProtocol(
            parse_uri("ws://example.com/"),
            subprotocols=[Subprotocol("chat")],
            extensions=[ClientPerMessageDeflateFactory()],
        )
        key = check_request(self.client_request(client))
        client.receive_data(
            build_response(key, subprotocol="chat", extensions="permessage-deflate")
        )
        assert client.handshake_exc is None
        assert client.subprotocol == "chat"
        assert [extension.name for extension in client.extensions] == ["permessage-deflate"]

    def test_their_client_refuses_a_wrong_accept(self) -> None:
        client = ClientProtocol(parse_uri("ws://example.com/"))
        self.client_request(client)
        client.receive_data(build_response(generate_key()))
        assert client.handshake_exc is not None
        assert client.state is not State.OPEN

    def test_their_client_reads_our_reject(self) -> None:
        client = ClientProtocol(parse_uri("ws://example.com/"))
        self.client_request(client)
        client.receive_data(build_reject(426, b"use 13"))
        assert client.handshake_exc is not None
        [ws_response] = client.events_received()
        assert getattr(ws_response, "status_code", None) == 426
        assert getattr(ws_response, "body", None) == b"use 13"
