"""Every exception rapidws raises.

The tree::

    Exception
    └── WebSocketError
        ├── WebSocketClosed          (also ConnectionError)  .code, .message
        ├── WebSocketTimeout         (also TimeoutError)
        ├── ProtocolError            .reason, .close_code: a rule of RFC 6455 was broken
        ├── HandshakeError           the upgrade failed; .status/.headers/.body when a response came
        │   ├── InvalidStatus        the server answered with a status other than 101
        │   └── TooManyRedirects     more redirects than max_redirects, or a loop
        └── ConnectError             (also ConnectionError)  .hop: DNS, TCP, TLS, proxy ...
            └── ProxyError           the proxy refused: .status is its HTTP status or SOCKS code

``WebSocketClosed`` and ``WebSocketTimeout`` are ``OSError`` subclasses through
``ConnectionError`` and ``TimeoutError``, so ``except OSError`` code written for
curl_cffi keeps catching them.
"""

from __future__ import annotations

__all__ = [
    "WebSocketError",
    "WebSocketClosed",
    "WebSocketTimeout",
    "ProtocolError",
    "HandshakeError",
    "InvalidStatus",
    "TooManyRedirects",
    "ConnectError",
    "ProxyError",
]


class WebSocketError(Exception):
    """Base class of every rapidws error."""


class WebSocketClosed(WebSocketError, ConnectionError):
    """The connection is closed, by the peer, locally, or because it failed.

    ``code`` is the close code (1006 when no close frame was exchanged) and
    ``message`` the close reason. When the close was caused by an error, that
    error is the ``__cause__``.
    """

    def __init__(self, code: int = 1006, message: str = "") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        if self.message:
            return f"WebSocket closed with code {self.code}: {self.message}"
        return f"WebSocket closed with code {self.code}"


class WebSocketTimeout(WebSocketError, TimeoutError):
    """An operation did not finish within its timeout."""


class ProtocolError(WebSocketError):
    """The peer broke a rule of the protocol.

    ``close_code`` is the code the connection is failed with (RFC 6455 §7.4.1):
    1002 for framing errors, 1007 for invalid UTF-8, 1009 for a message too big.
    """

    def __init__(self, reason: str, close_code: int = 1002) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    When the server sent an HTTP response, ``status``, ``headers`` (a list of
    ``(name, value)`` pairs) and ``body`` hold it; otherwise they are ``None``,
    ``[]`` and ``b""``.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers: list[tuple[str, str]] = headers if headers is not None else []
        self.body = body


class InvalidStatus(HandshakeError):
    """The server refused the upgrade: it answered with a status other than 101."""


class TooManyRedirects(HandshakeError):
    """The handshake was redirected more than ``max_redirects`` times, or in a loop.

    ``status``, ``headers`` and ``body`` are those of the last redirect.
    """


class ConnectError(WebSocketError, ConnectionError):
    """The connection could not be established; ``hop`` says which step failed.

    ``hop`` is one of:

    - ``"dns"``: a host name (the server's or the proxy's) did not resolve;
    - ``"proxy-tcp"``, ``"proxy-tls"``: the TCP connection or the TLS
      handshake with the proxy failed;
    - ``"proxy-auth"``: the proxy refused the credentials (``ProxyError``);
    - ``"proxy-tunnel"``: the proxy refused to open the tunnel (``ProxyError``),
      or broke its protocol;
    - ``"tcp"``, ``"tls"``: the TCP connection or the TLS handshake with the
      server failed (through the tunnel, when there is a proxy);
    - ``"unix"``: the Unix domain socket could not be connected.

    ``host`` is the host of that hop. Messages never contain credentials.
    """

    def __init__(self, reason: str, *, hop: str, host: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hop = hop
        self.host = host


class ProxyError(ConnectError):
    """The proxy refused: the credentials (``hop="proxy-auth"``) or the tunnel.

    ``status`` is the proxy's HTTP status (407, 403, 502 ...) or SOCKS reply
    code when it gave one, else None.
    """

    def __init__(
        self, reason: str, *, hop: str, host: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(reason, hop=hop, host=host)
        self.status = status
