"""rapidws.__all__ is exactly the public surface, and every name in it exists."""

from __future__ import annotations

import rapidws
from rapidws.protocol.handshake import DEFAULT_USER_AGENT

PUBLIC = {
    "__version__",
    "ACCELERATED",
    "AsyncSession",
    "AsyncWebSocket",
    "WebSocketConnect",
    "WsFlag",
    "CurlWsFlag",
    "WebSocketError",
    "WebSocketClosed",
    "WebSocketTimeout",
    "ProtocolError",
    "HandshakeError",
    "InvalidStatus",
    "ConnectError",
    "ProxyError",
    "DeflateOptions",
    "PerMessageDeflate",
    "TooManyRedirects",
}


def test_all_is_the_public_surface() -> None:
    assert set(rapidws.__all__) == PUBLIC
    assert len(rapidws.__all__) == len(PUBLIC)
    for name in rapidws.__all__:
        assert hasattr(rapidws, name), name


def test_flags_have_libcurl_values() -> None:
    flags = rapidws.WsFlag
    values = {f.name: int(f) for f in flags}
    assert values == {
        "TEXT": 1,
        "BINARY": 2,
        "CONT": 4,
        "CLOSE": 8,
        "PING": 16,
        "OFFSET": 32,
        "PONG": 64,
    }
    assert rapidws.CurlWsFlag is flags


def test_errors_keep_curl_cffi_oserror_behaviour() -> None:
    assert issubclass(rapidws.WebSocketClosed, ConnectionError)
    assert issubclass(rapidws.WebSocketTimeout, TimeoutError)
    assert issubclass(rapidws.ConnectError, OSError)
    for name in ("WebSocketClosed", "WebSocketTimeout", "ProtocolError", "HandshakeError"):
        assert issubclass(getattr(rapidws, name), rapidws.WebSocketError)
    assert issubclass(rapidws.InvalidStatus, rapidws.HandshakeError)
    closed = rapidws.WebSocketClosed(4000, "bye")
    assert (closed.code, closed.message) == (4000, "bye")
    assert str(closed) == "WebSocket closed with code 4000: bye"


def test_user_agent_tracks_the_version() -> None:
    assert f"rapidws/{rapidws.__version__}" == DEFAULT_USER_AGENT
