"""WebSocketConnect: what ``ws_connect`` returns, awaitable and an async context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, final

from .._types import HeadersLike
from ..errors import WebSocketTimeout
from ..net.dial import open_transport
from ..net.tls import CertLike, VerifyLike, make_ssl_context
from ..net.url import WsURL
from ..protocol.deflate import DeflateOptions, build_offer
from ..protocol.handshake import build_request, generate_key
from .websocket import AsyncWebSocket

__all__ = ["ConnectOptions", "WebSocketConnect", "open_websocket"]


@dataclass(slots=True)
class ConnectOptions:
    """Every option of one connection, merged and validated (see session.py)."""

    headers: HeadersLike
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
    local_addr: tuple[str, int] | None


async def open_websocket(url: WsURL, options: ConnectOptions) -> AsyncWebSocket:
    """Connect, run the opening handshake and return the open connection.

    ``options.connect_timeout`` covers DNS, TCP, TLS and the HTTP upgrade
    together; the timeout error names the step that was under way.
    """
    ssl_context = make_ssl_context(options.verify, options.cert) if url.secure else None
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
    )
    key = generate_key()
    auth = options.auth
    if auth is None and url.user is not None:
        auth = (url.user, url.password or "")
    # Built before any I/O so a bad header fails without touching the network.
    request = build_request(
        host=url.host_header,
        resource=url.resource,
        key=key,
        origin=options.origin,
        subprotocols=options.subprotocols,
        extensions=build_offer(options.compression) if options.compression else None,
        headers=options.headers,
        auth=auth,
    )
    phase = ["DNS lookup"]

    async def handshake() -> None:
        transport, _ = await open_transport(
            lambda: ws,
            url,
            ssl_context=ssl_context,
            local_addr=options.local_addr,
            phase=phase,
        )
        ws.connection_made(transport)  # the TLS transport replaces the TCP one
        phase[0] = "WebSocket upgrade"
        await ws._begin_handshake(
            request,
            key=key,
            subprotocols=options.subprotocols,
            deflate_offers=options.compression,
        )

    try:
        if options.connect_timeout is None:
            await handshake()
        else:
            await asyncio.wait_for(handshake(), options.connect_timeout)
    except asyncio.TimeoutError:
        ws._abandon_handshake()
        ws.terminate()
        raise WebSocketTimeout(
            f"connecting to {url} timed out after {options.connect_timeout} s during the {phase[0]}"
        ) from None
    except BaseException:
        # Cancelled, or failed: never leave a socket behind.
        ws._abandon_handshake()
        ws.terminate()
        raise
    return ws


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
