"""WebSocketConnect: what ``ws_connect`` returns, awaitable and an async context manager.

Opening a connection: pick the proxy for the URL, dial (``net.dial``), send
the upgrade with the cookies that apply, and follow redirects while the
server answers 3xx with a ``Location``, under one connect deadline.

Redirect safety (what a browser does, and a little more):

- Authorization (``auth=``, URL credentials, an ``Authorization`` header) and
  an explicit ``Cookie`` header go only to the origin they were given for
  (scheme, host and port), never to another one a redirect names;
- jar cookies follow their own domain and path rules on every hop, and
  ``Set-Cookie`` on a redirect is stored before following it;
- ``wss://`` is never downgraded to ``ws://`` unless
  ``allow_insecure_redirects=True``;
- a URL seen twice is a loop, and more than ``max_redirects`` hops is an
  error (``TooManyRedirects``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar, final
from urllib.parse import urljoin

from ..errors import HandshakeError, InvalidStatus, TooManyRedirects, WebSocketTimeout
from ..net.dial import open_transport
from ..net.proxy import ProxiesLike, ProxyURL, parse_proxy, select_proxy
from ..net.tls import CertLike, TLSOptions, VerifyLike, make_ssl_context
from ..net.url import WsURL, parse_url
from ..protocol.deflate import DeflateOptions, build_offer
from ..protocol.handshake import DEFAULT_USER_AGENT, build_request, generate_key
from .cookies import CookieContext
from .websocket import AsyncWebSocket

__all__ = ["ConnectOptions", "WebSocketConnect", "open_websocket", "REDIRECT_STATUSES"]

#: RFC 9110 §15.4: the statuses whose Location a client follows (300 and 304 are not).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_T = TypeVar("_T")

# Fields that belong to one origin: dropped from the user's headers when a
# redirect leads elsewhere.
_ORIGIN_BOUND_FIELDS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(slots=True, repr=False)
class ConnectOptions:
    """Every option of one connection, merged and validated (see session.py).

    ``repr`` is left out on purpose: these hold credentials.
    """

    headers: list[tuple[str, str]]
    auth: tuple[str, str] | None
    connect_timeout: float | None
    read_timeout: float | None
    verify: VerifyLike
    cert: CertLike
    subprotocols: tuple[str, ...]
    #: permessage-deflate offers, in preference order; empty: none.
    compression: tuple[DeflateOptions, ...]
    origin: str | None
    recv_queue_size: int
    send_queue_size: int
    coalesce_frames: bool
    drain_on_error: bool
    max_message_size: int | None
    autoclose: bool
    close_timeout: float | None
    stream_fragments: bool
    ping_interval: float | None
    ping_timeout: float | None
    local_addr: tuple[str, int] | None
    cookies: CookieContext | None = None
    proxy: str | None = None
    proxies: ProxiesLike | None = None
    proxy_auth: tuple[str, str] | None = None
    trust_env: bool = True
    env: Mapping[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = 30
    allow_insecure_redirects: bool = False
    unix_socket: str | None = None
    #: Browser impersonation, resolved to plain values by the session.
    header_order: tuple[str, ...] | None = None
    user_agent: str | None = DEFAULT_USER_AGENT
    tls: TLSOptions | None = None
    _proxy_cache: dict[str, ProxyURL] = field(default_factory=dict)
    #: The first URL asked about and its answer: the session checks the first
    #: hop before any I/O, and the connection then uses that same answer.
    _first_hop: tuple[WsURL, ProxyURL | None] | None = None

    def proxy_for(self, url: WsURL) -> ProxyURL | None:
        """The proxy that ``url`` goes through, parsed; None for a direct connection."""
        first = self._first_hop
        if first is not None and first[0] is url:
            return first[1]
        proxy = self._select(url)
        if first is None:
            self._first_hop = (url, proxy)
        return proxy

    def _select(self, url: WsURL) -> ProxyURL | None:
        if self.unix_socket is not None:
            return None
        spec = select_proxy(
            url,
            proxy=self.proxy,
            proxies=self.proxies,
            trust_env=self.trust_env,
            env=self.env,
        )
        if spec is None:
            return None
        parsed = self._proxy_cache.get(spec)
        if parsed is None:
            parsed = self._proxy_cache[spec] = parse_proxy(spec, self.proxy_auth)
        return parsed


@functools.lru_cache(maxsize=64)
def _offer_header(offers: tuple[DeflateOptions, ...]) -> str:
    """``build_offer(offers)``, kept: a session sends the same offer every time."""
    return build_offer(offers)


def _same_origin(a: WsURL, b: WsURL) -> bool:
    return (a.secure, a.host, a.port) == (b.secure, b.host, b.port)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    key = name.lower()
    for field_name, value in headers:
        if field_name.lower() == key:
            return value
    return None


async def open_websocket(url: WsURL, options: ConnectOptions) -> AsyncWebSocket:
    """Connect, run the opening handshake (following redirects) and return the connection.

    ``options.connect_timeout`` covers every hop of every redirect together:
    DNS, TCP, the proxy handshake, TLS and the HTTP upgrade; the timeout error
    names the step that was under way.
    """
    loop = asyncio.get_running_loop()
    timeout = options.connect_timeout
    deadline = None if timeout is None else loop.time() + timeout
    headers = options.headers
    auth = options.auth
    first = url
    seen: set[str] = set()  # the URLs visited, filled at the first redirect
    redirects = 0
    while True:
        cross_origin = not _same_origin(first, url)
        if cross_origin:
            headers = [(n, v) for n, v in headers if n.lower() not in _ORIGIN_BOUND_FIELDS]
            auth = None
        hop_auth = auth
        if url.user is not None:
            hop_auth = (url.user, url.password or "")
        phase = ["DNS lookup"]
        cut_off: list[InvalidStatus] = []
        try:
            coro = _open_once(url, options, headers, hop_auth, phase, cut_off)
            if deadline is None:
                ws = await coro
            else:
                ws = await _before(deadline, coro)
        except asyncio.TimeoutError:
            if cut_off:
                raise cut_off[0] from None
            raise WebSocketTimeout(
                f"connecting to {url} timed out after {timeout} s during the {phase[0]}"
            ) from None
        except InvalidStatus as exc:
            if options.cookies is not None:
                options.cookies.store(url, exc.headers)
            location = _header(exc.headers, "Location")
            if (
                not options.allow_redirects
                or exc.status not in REDIRECT_STATUSES
                or location is None
            ):
                raise
            target = _redirect_target(url, location, exc)
            if url.secure and not target.secure and not options.allow_insecure_redirects:
                raise HandshakeError(
                    f"refusing to follow a redirect from {url} to {target}: it would drop TLS "
                    "(pass allow_insecure_redirects=True to allow it)",
                    status=exc.status,
                    headers=exc.headers,
                    body=exc.body,
                ) from None
            redirects += 1
            if not seen:
                seen.add(str(first))
            if str(target) in seen:
                raise TooManyRedirects(
                    f"redirect loop: {url} redirected back to {target}",
                    status=exc.status,
                    headers=exc.headers,
                    body=exc.body,
                ) from None
            if redirects > options.max_redirects:
                raise TooManyRedirects(
                    f"more than {options.max_redirects} redirects (the last to {target})",
                    status=exc.status,
                    headers=exc.headers,
                    body=exc.body,
                ) from None
            seen.add(str(target))
            url = target
            continue
        if options.cookies is not None and ws.response is not None:
            options.cookies.store(url, ws.response.headers.items())
        return ws


async def _before(deadline: float, coro: Coroutine[Any, Any, _T]) -> _T:
    """``await coro``, cancelled at loop time ``deadline`` with TimeoutError.

    What ``asyncio.timeout_at`` (3.11+) does, for less: a timer that cancels
    the current task. Not ``wait_for``, which on 3.11 runs ``coro`` in a Task
    of its own, at two loop iterations to start it and to collect its result.
    """
    task = asyncio.current_task()
    if task is None:  # driven outside a task: nothing to cancel
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(coro, max(0.0, deadline - loop.time()))
    # 3.11+ counts the cancellations asked for: one more than now at the end
    # means someone else cancelled the task too, and that wins.
    cancelling = 0
    if sys.version_info >= (3, 11):
        cancelling = task.cancelling()
    expired: list[bool] = []
    timer = asyncio.get_running_loop().call_at(deadline, _expire, task, expired)
    try:
        result = await coro
    except asyncio.CancelledError:
        if not expired or (_uncancel(task) > cancelling):
            raise
        raise asyncio.TimeoutError from None
    except BaseException:
        if expired:
            _uncancel(task)
        raise
    finally:
        timer.cancel()
    if expired:  # cancelled too late to interrupt anything
        _uncancel(task)
    return result


def _uncancel(task: asyncio.Task[Any]) -> int:
    if sys.version_info >= (3, 11):
        return task.uncancel()
    return 0


def _expire(task: asyncio.Task[Any], expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


def _redirect_target(url: WsURL, location: str, exc: InvalidStatus) -> WsURL:
    base = f"{'https' if url.secure else 'http'}://{url.host_header}{url.resource}"
    try:
        # Location may be relative (RFC 9110 §10.2.2); ws(s):// and http(s)://
        # both map to a WebSocket URL.
        return parse_url(urljoin(base, location.strip()))
    except ValueError as reason:
        raise HandshakeError(
            f"cannot follow the redirect from {url}: {reason}",
            status=exc.status,
            headers=exc.headers,
            body=exc.body,
        ) from None


async def _open_once(
    url: WsURL,
    options: ConnectOptions,
    headers: list[tuple[str, str]],
    auth: tuple[str, str] | None,
    phase: list[str],
    cut_off: list[InvalidStatus],
) -> AsyncWebSocket:
    """One connection attempt to ``url``, no redirects; never leaves a socket behind."""
    ssl_context = (
        make_ssl_context(options.verify, options.cert, options.tls) if url.secure else None
    )
    proxy = options.proxy_for(url)
    proxy_ssl: ssl.SSLContext | None = None
    if proxy is not None and proxy.scheme == "https":
        proxy_ssl = make_ssl_context(options.verify, None)
    key = generate_key()
    hop_headers = headers
    if options.cookies is not None and _header(headers, "Cookie") is None:
        cookie = options.cookies.header(url)
        if cookie is not None:
            hop_headers = [*headers, ("Cookie", cookie)]
    # Built before any I/O so a bad header fails without touching the network.
    request = build_request(
        host=url.host_header,
        resource=url.resource,
        key=key,
        origin=options.origin,
        subprotocols=options.subprotocols,
        extensions=_offer_header(options.compression) if options.compression else None,
        headers=hop_headers,
        auth=auth,
        user_agent=options.user_agent,
        order=options.header_order,
    )
    user_agent = _header(headers, "User-Agent") or DEFAULT_USER_AGENT
    # Over plain TCP straight to the server, the request goes out as soon as
    # TCP is up (_send_early), or else from connection_made.
    early = ssl_context is None and proxy is None
    unsent = [request]
    dialed: list[socket.socket] = []  # the socket, when _send_early saw it
    made: list[AsyncWebSocket] = []

    def protocol() -> AsyncWebSocket:
        # Called once TCP is up: the connection object is made while the
        # server reads the request, not before dialing.
        ws = AsyncWebSocket(
            recv_queue_size=options.recv_queue_size,
            send_queue_size=options.send_queue_size,
            coalesce_frames=options.coalesce_frames,
            drain_on_error=options.drain_on_error,
            max_message_size=options.max_message_size,
            autoclose=options.autoclose,
            close_timeout=options.close_timeout,
            read_timeout=options.read_timeout,
            stream_fragments=options.stream_fragments,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
        )
        made.append(ws)
        if early:  # connection_made writes what _send_early could not
            ws._begin_handshake(
                unsent[0],
                key=key,
                subprotocols=options.subprotocols,
                deflate_offers=options.compression,
                early=True,
                sock=dialed[0] if dialed else None,
            )
        return ws

    try:
        transport, _ = await open_transport(
            protocol,
            url,
            ssl_context=ssl_context,
            local_addr=options.local_addr,
            phase=phase,
            proxy=proxy,
            proxy_ssl_context=proxy_ssl,
            unix_socket=options.unix_socket,
            user_agent=user_agent,
            on_connected=functools.partial(_send_early, unsent, dialed) if early else None,
        )
        ws = made[0]
        ws.connection_made(transport)  # the TLS transport replaces the TCP one
        phase[0] = "WebSocket upgrade"
        if not early:  # else protocol() began it
            ws._begin_handshake(
                request,
                key=key,
                subprotocols=options.subprotocols,
                deflate_offers=options.compression,
            )
        await ws._handshake_waiter
    except BaseException as exc:
        # Timed out, cancelled, or failed: never leave a socket behind.
        if not made:  # failed before TCP was up: dialing closed its socket
            raise
        ws = made[0]
        if isinstance(exc, asyncio.CancelledError):
            # A server that refused the upgrade but never finished the body:
            # its status and headers say more than a timeout would.
            refusal = ws._refusal(f" (the body was cut off after {options.connect_timeout} s)")
            if refusal is not None:
                cut_off.append(refusal)
        ws._abandon_handshake()
        ws.terminate()
        raise
    return ws


def _send_early(unsent: list[bytes], dialed: list[socket.socket], sock: socket.socket) -> None:
    """The upgrade request, written on the socket as soon as TCP is connected.

    The server starts on it while asyncio builds the transport; what the
    socket did not take (or all of it, after an error, which the transport
    then meets) is left in ``unsent[0]`` for ``connection_made`` to write.
    ``sock`` goes in ``dialed`` (in place of any earlier address's) for the
    connection's own small writes.
    """
    dialed[:] = [sock]
    request = unsent[0]
    try:
        sent = sock.send(request)
    except OSError:
        return
    unsent[0] = request[sent:]


@final
class WebSocketConnect:
    """``await`` it for the connection, or use it as ``async with``."""

    __slots__ = ("_opener", "_on_open", "_ws")

    def __init__(
        self,
        opener: Callable[[], Awaitable[AsyncWebSocket]],
        on_open: Callable[[AsyncWebSocket], None] | None = None,
    ) -> None:
        self._opener = opener
        self._on_open = on_open
        self._ws: AsyncWebSocket | None = None

    async def _connect(self) -> AsyncWebSocket:
        ws = await self._opener()
        if self._on_open is not None:
            self._on_open(ws)
        self._ws = ws
        return ws

    def __await__(self) -> Generator[Any, None, AsyncWebSocket]:
        return self._connect().__await__()

    async def __aenter__(self) -> AsyncWebSocket:
        return await self._connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.__aexit__(exc_type, exc, tb)
