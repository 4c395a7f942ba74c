"""Tunnels through a proxy: HTTP ``CONNECT`` by hand, SOCKS through python-socks.

HTTP ``CONNECT`` (RFC 9110 §9.3.6) is written here, on ``protocol.http11``,
rather than taken from python-socks, for two reasons:

- The tunnel must run over an asyncio *transport*: for an ``https://`` proxy
  that transport is already TLS, and the WebSocket's own TLS then runs inside
  it (``loop.start_tls`` on a TLS transport). python-socks drives raw sockets
  or its own streams.
- Measured with python-socks 3.2.1: its HTTP connector parses the first
  ``read()`` as the whole answer. A proxy whose ``200`` head arrives in two
  TCP segments (``HTTP/1.1 200 Conn``, then the rest of the head) is
  accepted after the first, and the rest of the head is left in the socket,
  where the TLS or WebSocket handshake would read it as the server's.
  ``ResponseParser`` waits for the blank line.

SOCKS has no such problem (fixed-size replies, read exactly), so python-socks
does it and hands back a connected socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

from ..errors import ConnectError, HandshakeError, ProxyError
from ..protocol.handshake import basic_auth_header
from ..protocol.http11 import BodyReader, Response, ResponseParser, serialize_request
from .proxy import ProxyURL

__all__ = ["ConnectProtocol", "http_connect", "socks_connect", "connect_request", "check_socks"]

_SOCKS_HINT = "SOCKS proxies need python-socks: pip install 'rapidws[socks]'"


def authority(host: str, port: int) -> str:
    """``host:port`` as a request target, IPv6 literals in brackets (RFC 9110 §9.3.6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_request(
    host: str,
    port: int,
    proxy: ProxyURL,
    *,
    user_agent: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The ``CONNECT`` request head for ``host:port``, with Basic proxy credentials."""
    target = authority(host, port)
    # RFC 9110 §9.3.6: "the request-target consists of only the host and port
    # number of the tunnel destination"; §7.2: a client MUST send Host.
    fields = [("Host", target)]
    if proxy.user is not None:
        # RFC 9110 §11.7.2: credentials for the proxy go in Proxy-Authorization.
        fields.append(("Proxy-Authorization", basic_auth_header(proxy.user, proxy.password or "")))
    if user_agent is not None:
        fields.append(("User-Agent", user_agent))
    fields.extend(headers)
    return serialize_request("CONNECT", target, fields)


class ConnectProtocol(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``; handed over once the tunnel is open."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[Response] = loop.create_future()
        self._parser: ResponseParser | None = ResponseParser()
        self._response: Response | None = None
        self._body: BodyReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        try:
            if self._body is not None:
                if self._body.feed(data):
                    self._refused()
                return
            assert self._parser is not None
            response = self._parser.feed(data)
            if response is None:
                return
            rest = self._parser.remaining
            self._parser = None
            if 200 <= response.status < 300:
                if rest:
                    # The target never speaks first in a WebSocket or TLS
                    # handshake: bytes here would be lost, so refuse them.
                    raise HandshakeError(f"{len(rest)} unexpected bytes after the CONNECT answer")
                self.answer.set_result(response)
                return
            self._response = response
            self._body = BodyReader(response.status, response.headers)
            if self._body.feed(rest):
                self._refused()
        except HandshakeError as exc:
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer.done():
            return
        if self._body is not None:
            self._body.feed_eof()
            self._refused()
            return
        failure = HandshakeError("the proxy closed the connection before answering CONNECT")
        failure.__cause__ = exc
        self.answer.set_exception(failure)

    def _refused(self) -> None:
        assert self._response is not None and self._body is not None
        self._response.body = self._body.body
        self.answer.set_result(self._response)


async def http_connect(
    protocol: ConnectProtocol,
    proxy: ProxyURL,
    host: str,
    port: int,
    *,
    user_agent: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Ask the proxy for a tunnel to ``host:port`` and wait for its 2xx.

    Raises:
        ProxyError: ``hop="proxy-auth"`` on 407, else ``hop="proxy-tunnel"``,
            with the proxy's status.
        ConnectError: ``hop="proxy-tunnel"`` if the proxy broke HTTP or closed.
    """
    transport = protocol.transport
    assert transport is not None
    transport.write(connect_request(host, port, proxy, user_agent=user_agent, headers=headers))
    try:
        response = await protocol.answer
    except HandshakeError as exc:
        raise ConnectError(
            f"proxy {proxy.address} broke the CONNECT exchange: {exc}",
            hop="proxy-tunnel",
            host=proxy.host,
        ) from exc
    status = response.status
    if 200 <= status < 300:
        return
    line = f"HTTP {status} {response.reason}".rstrip()
    if status in (401, 407):
        # RFC 9110 §15.5.8: 407 Proxy Authentication Required. Some proxies
        # (tinyproxy, for wrong credentials) answer 401 instead.
        given = "were refused" if proxy.user is not None else "are required and none were given"
        raise ProxyError(
            f"proxy {proxy.address}: credentials {given} ({line})",
            hop="proxy-auth",
            host=proxy.host,
            status=status,
        )
    raise ProxyError(
        f"proxy {proxy.address} refused the tunnel to {authority(host, port)} ({line})",
        hop="proxy-tunnel",
        host=proxy.host,
        status=status,
    )


def check_socks() -> None:
    """Raise ImportError naming the extra when python-socks is missing."""
    try:
        import python_socks.async_.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImportError(_SOCKS_HINT) from exc


async def socks_connect(
    proxy: ProxyURL,
    proxy_ip: str,
    host: str,
    port: int,
    *,
    local_addr: tuple[str, int] | None = None,
    phase: list[str] | None = None,
) -> socket.socket:
    """A socket connected to ``host:port`` through the SOCKS proxy at ``proxy_ip``.

    ``proxy_ip`` is the proxy's address, resolved by the caller so that a DNS
    failure names its hop. The target's name goes to the proxy for
    ``socks4a``/``socks5h``, and is resolved here otherwise.
    """
    check_socks()
    from python_socks import ProxyConnectionError, ProxyType
    from python_socks import ProxyError as SocksError
    from python_socks.async_.asyncio import Proxy

    proxy_type = ProxyType.SOCKS4 if proxy.scheme.startswith("socks4") else ProxyType.SOCKS5
    client = Proxy(
        proxy_type,
        proxy_ip,
        proxy.port,
        username=proxy.user,
        password=proxy.password,
        rdns=proxy.remote_dns,
    )
    if phase is not None:
        phase[0] = f"TCP connect and {proxy.scheme.upper()} handshake with proxy {proxy.address}"
    kwargs: dict[str, Any] = {"local_addr": local_addr} if local_addr is not None else {}
    try:
        # The caller's own deadline (wait_for) ends this first: python-socks'
        # timeout is only a backstop, never reached.
        sock: socket.socket = await client.connect(host, port, timeout=1e9, **kwargs)
    except ProxyConnectionError as exc:
        cause = exc.__cause__
        what = "refused" if isinstance(cause, ConnectionRefusedError) else "failed"
        detail = f": {cause.strerror}" if isinstance(cause, OSError) and cause.strerror else ""
        raise ConnectError(
            f"TCP connection to proxy {proxy.address} {what}{detail}",
            hop="proxy-tcp",
            host=proxy.host,
        ) from exc
    except SocksError as exc:
        raise _socks_refusal(exc, proxy, proxy_type is ProxyType.SOCKS5, host, port) from exc
    except OSError as exc:
        # python-socks lets errors of the socket itself through (a reset mid-handshake).
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise ConnectError(
            f"{proxy.scheme} proxy {proxy.address} failed during the handshake: {detail}",
            hop="proxy-tunnel",
            host=proxy.host,
        ) from exc
    return sock


def _socks_refusal(
    exc: Exception, proxy: ProxyURL, socks5: bool, host: str, port: int
) -> ProxyError:
    # python-socks sets error_code only for the reply to CONNECT (SOCKS5 REP,
    # RFC 1928 §6; SOCKS4 CD 91-93): then the tunnel itself was refused.
    code: int | None = getattr(exc, "error_code", None)
    if code is not None:
        return ProxyError(
            f"{proxy.scheme} proxy {proxy.address} refused the tunnel to "
            f"{authority(host, port)}: {exc} (code {code:#04x})",
            hop="proxy-tunnel",
            host=proxy.host,
            status=code,
        )
    if socks5 and proxy.user is not None:
        # RFC 1929 §2: a failed login ends the connection; python-socks does
        # not say at which step it failed, so the message keeps both readings.
        return ProxyError(
            f"{proxy.scheme} proxy {proxy.address}: credentials refused, "
            f"or the handshake failed: {exc}",
            hop="proxy-auth",
            host=proxy.host,
        )
    return ProxyError(
        f"{proxy.scheme} proxy {proxy.address}: handshake failed: {exc}",
        hop="proxy-tunnel",
        host=proxy.host,
    )
