"""AsyncSession: connection defaults, merged once per ``ws_connect``."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

from .._types import HeadersLike, ParamsLike, TimeoutLike
from ..net.tls import CertLike, VerifyLike
from ..net.url import parse_url
from ..protocol.deflate import CompressionOption, offers_from_option
from ..protocol.headers import Headers
from .connect import ConnectOptions, WebSocketConnect, open_websocket
from .websocket import AsyncWebSocket

__all__ = ["AsyncSession", "UNSET"]

T = TypeVar("T")

#: Default for the connect phase (DNS, TCP, TLS, upgrade), as curl_cffi's.
DEFAULT_TIMEOUT = 30.0
#: Largest message accepted by default, as curl_cffi's: bounds memory per message.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "Not given": lets ``verify=False`` or ``timeout=None`` on a call win over the session.
UNSET = _Unset.UNSET


def _merge(session_value: T, call_value: T | _Unset) -> T:
    return session_value if call_value is UNSET else call_value


def _merge_headers(session: HeadersLike | None, call: HeadersLike | None) -> Headers:
    """Session headers, then the call's: a call header replaces one of the same name."""
    merged = Headers(session)
    for name, value in Headers(call).items():
        merged.set(name, value)
    return merged


def _split_timeout(timeout: TimeoutLike) -> tuple[float | None, float | None]:
    if timeout is None:
        return None, None
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be a number or (connect, read), got {timeout!r}")
        connect, read = timeout
        return _check_seconds("connect timeout", connect), _check_seconds("read timeout", read)
    return _check_seconds("timeout", timeout), None


def _check_seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def _check_size(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_auth(auth: tuple[str, str] | None) -> tuple[str, str] | None:
    if auth is None:
        return None
    if not (isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth)):
        raise TypeError("auth must be a (user, password) tuple of str")
    return auth


class AsyncSession:
    """Defaults shared by the WebSockets it opens; closes them all on exit.

    Every keyword is a default for ``ws_connect``, which takes the same
    keywords to override it for one connection.
    """

    def __init__(
        self,
        *,
        headers: HeadersLike | None = None,
        auth: tuple[str, str] | None = None,
        params: ParamsLike | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        verify: VerifyLike = True,
        cert: CertLike = None,
        origin: str | None = None,
        interface: str | None = None,
    ) -> None:
        self.headers = Headers(headers)
        self.auth = _check_auth(auth)
        self.params = params
        _split_timeout(timeout)
        self.timeout = timeout
        self.verify = verify
        self.cert = cert
        self.origin = origin
        self.interface = interface
        self._websockets: set[AsyncWebSocket] = set()
        self._closed = False

    # Public methods

    def ws_connect(
        self,
        url: str,
        *,
        params: ParamsLike | None | _Unset = UNSET,
        headers: HeadersLike | None = None,
        auth: tuple[str, str] | None | _Unset = UNSET,
        timeout: TimeoutLike | _Unset = UNSET,
        verify: VerifyLike | _Unset = UNSET,
        cert: CertLike | _Unset = UNSET,
        origin: str | None | _Unset = UNSET,
        interface: str | None | _Unset = UNSET,
        subprotocols: Sequence[str] | None = None,
        compression: CompressionOption = "deflate",
        recv_queue_size: int = 128,
        send_queue_size: int = 16,
        coalesce_frames: bool = False,
        drain_on_error: bool = False,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        autoclose: bool = True,
        close_timeout: float | None = 10.0,
        stream_fragments: bool = False,
    ) -> WebSocketConnect:
        """Open a WebSocket: ``async with s.ws_connect(url) as ws`` or ``await``.

        ``compression`` is ``"deflate"`` (offer permessage-deflate as browsers
        do), ``None`` (offer nothing), a ``DeflateOptions`` or a list of them
        (offers in preference order). Every argument is checked here, before
        any I/O.
        """
        if self._closed:
            raise RuntimeError("this AsyncSession is closed")
        connect_timeout, read_timeout = _split_timeout(_merge(self.timeout, timeout))
        query = _merge(self.params, params)
        target = parse_url(url, self._params_list(query))
        if subprotocols is not None and isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a list of names, not a str")
        if max_message_size is not None:
            _check_size("max_message_size", max_message_size)
        local = _merge(self.interface, interface)
        options = ConnectOptions(
            headers=_merge_headers(self.headers, headers).items(),
            auth=_check_auth(_merge(self.auth, auth)),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            verify=_merge(self.verify, verify),
            cert=_merge(self.cert, cert),
            subprotocols=tuple(subprotocols or ()),
            compression=offers_from_option(compression),
            origin=_merge(self.origin, origin),
            recv_queue_size=_check_size("recv_queue_size", recv_queue_size),
            send_queue_size=_check_size("send_queue_size", send_queue_size),
            coalesce_frames=bool(coalesce_frames),
            drain_on_error=bool(drain_on_error),
            max_message_size=max_message_size,
            autoclose=bool(autoclose),
            close_timeout=_check_seconds("close_timeout", close_timeout),
            stream_fragments=bool(stream_fragments),
            local_addr=(local, 0) if local else None,
        )
        return WebSocketConnect(lambda: open_websocket(target, options), self._track)

    async def close(self) -> None:
        """Close every WebSocket this session opened that is still open."""
        self._closed = True
        websockets = list(self._websockets)
        if websockets:
            await asyncio.gather(*(ws.close() for ws in websockets), return_exceptions=True)
        self._websockets.clear()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Private methods

    @staticmethod
    def _params_list(query: ParamsLike | None) -> Iterable[tuple[str, str | int | float]] | None:
        if query is None:
            return None
        if isinstance(query, Mapping):
            return list(query.items())
        return list(query)

    def _track(self, ws: AsyncWebSocket) -> None:
        self._websockets.add(ws)
        ws._on_lost.append(self._websockets.discard)
