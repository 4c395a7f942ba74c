"""Open a connected asyncio transport, hop by hop, each error naming its hop.

The hops, in order (a connection takes some of them)::

    DNS of the proxy -> TCP to the proxy -> TLS to the proxy (https://)
        -> CONNECT or SOCKS handshake -> TLS to the server, inside the tunnel
    DNS of the server -> TCP to the server -> TLS to the server
    Unix domain socket -> TLS to the server

Each hop updates ``phase[0]``, which the caller quotes when its deadline
expires, and maps its OS, DNS and TLS errors to ``ConnectError(hop=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable, Iterable, Iterator

from ..errors import ConnectError
from .proxy import ProxyURL
from .tunnel import ConnectProtocol, http_connect, socks_connect
from .url import WsURL

__all__ = ["open_transport", "map_errors"]


@contextlib.contextmanager
def map_errors(hop: str, host: str, what: str = "") -> Iterator[None]:
    """Turn OS, DNS and TLS errors into ``ConnectError`` naming the hop.

    ``what`` names the peer in messages (``"proxy 10.0.0.1:3128"``); the
    original error stays reachable as ``__cause__``.
    """
    try:
        yield
    except ConnectError:
        raise
    except OSError as exc:
        raise _connect_error(exc, hop, host, what) from exc


def _connect_error(exc: OSError, hop: str, host: str, what: str = "") -> ConnectError:
    """The ``ConnectError`` that ``map_errors`` raises for ``exc``."""
    what = what or host
    if isinstance(exc, socket.gaierror):
        return ConnectError(
            f"DNS lookup of {what} failed: {exc.strerror or exc}", hop="dns", host=host
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectError(
            f"TLS certificate of {what} not trusted: {exc.verify_message or exc.reason}",
            hop=hop,
            host=host,
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectError(
            f"TLS handshake with {what} failed: {exc.reason or exc}", hop=hop, host=host
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"connection to {what} refused", hop=hop, host=host)
    detail = exc.strerror or str(exc) or type(exc).__name__
    return ConnectError(f"connection to {what} failed: {detail}", hop=hop, host=host)


def _set(phase: list[str] | None, text: str) -> None:
    if phase is not None:
        phase[0] = text


@functools.lru_cache(maxsize=256)
def _is_ip(host: str) -> bool:
    # Cached: ip_address() costs microseconds, and a client dials few hosts.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(
    host: str, port: int, what: str, phase: list[str] | None, family: int = socket.AF_UNSPEC
) -> list[str]:
    """The addresses of ``host``, in the resolver's order (RFC 6724 sorting)."""
    if _is_ip(host):
        return [host]
    _set(phase, f"DNS lookup of {what}")
    loop = asyncio.get_running_loop()
    with map_errors("dns", host, what):
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def _tcp(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    addresses: Iterable[str],
    port: int,
    *,
    hop: str,
    host: str,
    what: str,
    local_addr: tuple[str, int] | None,
    on_connected: Callable[[socket.socket], None] | None = None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """Connect to the first address that answers; the last error names the hop."""
    loop = asyncio.get_running_loop()
    failure: ConnectError | None = None
    direct = local_addr is None and isinstance(loop, BaseSelectorEventLoop)
    for address in addresses:
        try:  # map_errors, without a context manager on this path
            if direct and "%" not in address:
                transport, protocol = await _connect_ip(
                    loop, protocol_factory, address, port, on_connected
                )
            else:
                transport, protocol = await loop.create_connection(
                    protocol_factory, address, port, local_addr=local_addr
                )
        except ConnectError as exc:
            failure = exc
            continue
        except OSError as exc:
            failure = _connect_error(exc, hop, host, what)
            failure.__cause__ = exc
            continue
        return transport, protocol
    assert failure is not None
    raise failure


async def _connect_ip(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    address: str,
    port: int,
    on_connected: Callable[[socket.socket], None] | None = None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """``loop.create_connection(protocol_factory, address, port)`` for an IP address.

    What asyncio's own loop does, less what an IP address does not need: its
    create_connection and sock_connect each run the address through their
    resolver shortcut (enum conversions and parsing, ~10 us a connection).
    Errors are the same: ``OSError(errno, "Connect call failed (address)")``.
    ``on_connected(sock)`` runs as soon as TCP is up, before the transport
    exists (which takes asyncio two more loop iterations).
    """
    sockaddr: tuple[str, int] | tuple[str, int, int, int]
    if ":" in address:
        family, sockaddr = socket.AF_INET6, (address, port, 0, 0)
    else:
        family, sockaddr = socket.AF_INET, (address, port)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setblocking(False)
        try:
            sock.connect(sockaddr)
        except (BlockingIOError, InterruptedError):
            # In progress: writable once connected or refused.
            connected: asyncio.Future[None] = loop.create_future()
            fd = sock.fileno()
            loop.add_writer(fd, _connect_done, loop, connected, sock, sockaddr, on_connected)
            try:
                await connected
            finally:
                loop.remove_writer(fd)
        else:
            if on_connected is not None:
                on_connected(sock)
        transport, protocol = await loop.create_connection(protocol_factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport, protocol


def _connect_done(
    loop: asyncio.AbstractEventLoop,
    connected: asyncio.Future[None],
    sock: socket.socket,
    sockaddr: tuple[str, int] | tuple[str, int, int, int],
    on_connected: Callable[[socket.socket], None] | None,
) -> None:
    if connected.done():
        return
    loop.remove_writer(sock.fileno())  # before the next poll reports it again
    try:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, f"Connect call failed {sockaddr}")
        if on_connected is not None:
            on_connected(sock)
    except Exception as exc:
        connected.set_exception(exc)
    else:
        connected.set_result(None)


async def _start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    server_hostname: str,
    *,
    hop: str,
    what: str,
) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    try:
        with map_errors(hop, server_hostname, what):
            tls_transport = await loop.start_tls(
                transport, protocol, context, server_hostname=server_hostname
            )
    except BaseException:
        transport.abort()
        raise
    if tls_transport is None:  # the transport was closed under us
        transport.abort()
        raise ConnectError(
            f"connection to {what} closed during the TLS handshake", hop=hop, host=server_hostname
        )
    return tls_transport


async def _through_http_proxy(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    url: WsURL,
    proxy: ProxyURL,
    proxy_ssl_context: ssl.SSLContext | None,
    local_addr: tuple[str, int] | None,
    user_agent: str | None,
    phase: list[str] | None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    what = f"proxy {proxy.address}"
    addresses = await _resolve(proxy.host, proxy.port, what, phase)
    _set(phase, f"TCP connect to {what}")
    transport, tunnel = await _tcp(
        ConnectProtocol,
        addresses,
        proxy.port,
        hop="proxy-tcp",
        host=proxy.host,
        what=what,
        local_addr=local_addr,
    )
    assert isinstance(tunnel, ConnectProtocol)
    try:
        if proxy.scheme == "https":
            if proxy_ssl_context is None:
                raise ValueError("an https:// proxy needs proxy_ssl_context")
            _set(phase, f"TLS handshake with {what}")
            transport = await _start_tls(
                transport, tunnel, proxy_ssl_context, proxy.host, hop="proxy-tls", what=what
            )
            tunnel.connection_made(transport)
        _set(phase, f"CONNECT through {what}")
        await http_connect(tunnel, proxy, url.host, url.port, user_agent=user_agent)
        protocol = protocol_factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
    except BaseException:
        transport.abort()
        raise
    return transport, protocol


async def _through_socks_proxy(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    url: WsURL,
    proxy: ProxyURL,
    local_addr: tuple[str, int] | None,
    phase: list[str] | None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    what = f"proxy {proxy.address}"
    target = url.host
    if proxy.scheme == "socks4" and ":" in target:
        raise ConnectError(
            f"socks4 proxy {proxy.address} cannot reach the IPv6 address {target}: "
            "SOCKS4 carries IPv4 only (use socks5)",
            hop="proxy-tunnel",
            host=proxy.host,
        )
    if not proxy.remote_dns:
        # socks4 and socks5: the client resolves; SOCKS4 carries IPv4 only.
        family = socket.AF_INET if proxy.scheme == "socks4" else socket.AF_UNSPEC
        target = (await _resolve(target, url.port, target, phase, family))[0]
    addresses = await _resolve(proxy.host, proxy.port, what, phase)
    sock = await socks_connect(
        proxy, addresses[0], target, url.port, local_addr=local_addr, phase=phase
    )
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(protocol_factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport, protocol


async def open_transport(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    url: WsURL,
    *,
    ssl_context: ssl.SSLContext | None,
    local_addr: tuple[str, int] | None = None,
    phase: list[str] | None = None,
    proxy: ProxyURL | None = None,
    proxy_ssl_context: ssl.SSLContext | None = None,
    unix_socket: str | None = None,
    user_agent: str | None = None,
    on_connected: Callable[[socket.socket], None] | None = None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """Connect to ``url``'s host and port; with ``ssl_context``, wrap in TLS.

    Through ``proxy`` when given (``proxy_ssl_context`` for an ``https://``
    proxy; ``user_agent`` goes on its CONNECT), or over the Unix domain socket
    ``unix_socket``. TCP and TLS are separate steps (``start_tls``), so errors
    and timeouts name the one that failed; ``phase[0]`` is kept up to date for
    the caller's timeout message. ``on_connected(sock)``, for a direct TCP
    connection, may be called once TCP is up, before the transport exists: a
    chance to send the first bytes sooner.
    """
    loop = asyncio.get_running_loop()
    host = url.host
    if unix_socket is not None:
        _set(phase, f"connect to Unix socket {unix_socket}")
        with map_errors("unix", host, f"Unix socket {unix_socket}"):
            transport, protocol = await loop.create_unix_connection(protocol_factory, unix_socket)
    elif proxy is None:
        addresses = await _resolve(host, url.port, host, phase)
        _set(phase, "TCP connect")
        transport, protocol = await _tcp(
            protocol_factory,
            addresses,
            url.port,
            hop="tcp",
            host=host,
            what=host,
            local_addr=local_addr,
            on_connected=on_connected,
        )
    elif proxy.is_socks:
        transport, protocol = await _through_socks_proxy(
            protocol_factory, url, proxy, local_addr, phase
        )
    else:
        transport, protocol = await _through_http_proxy(
            protocol_factory, url, proxy, proxy_ssl_context, local_addr, user_agent, phase
        )
    if ssl_context is None:
        return transport, protocol
    _set(phase, "TLS handshake")
    tls_transport = await _start_tls(transport, protocol, ssl_context, host, hop="tls", what=host)
    return tls_transport, protocol
