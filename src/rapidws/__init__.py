"""rapidws: a fast asyncio WebSocket client with curl_cffi's AsyncSession API.

::

    from rapidws import AsyncSession

    async with AsyncSession() as s:
        async with s.ws_connect("wss://example.com/ws") as ws:
            await ws.send_str("hello")
            print(await ws.recv_str())
"""

from __future__ import annotations

from .aio.connect import WebSocketConnect
from .aio.session import AsyncSession
from .aio.websocket import AsyncWebSocket
from .errors import (
    ConnectError,
    HandshakeError,
    InvalidStatus,
    ProtocolError,
    ProxyError,
    TooManyRedirects,
    WebSocketClosed,
    WebSocketError,
    WebSocketTimeout,
)
from .flags import CurlWsFlag, WsFlag
from .protocol._accel import ACCELERATED
from .protocol.deflate import DeflateOptions, PerMessageDeflate

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ACCELERATED",
    "AsyncSession",
    "AsyncWebSocket",
    "WebSocketConnect",
    "DeflateOptions",
    "PerMessageDeflate",
    "WsFlag",
    "CurlWsFlag",
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
