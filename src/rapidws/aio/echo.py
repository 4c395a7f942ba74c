"""A WebSocket echo server on rapidws's own core, in the server role.

It exists for the ``rapidws`` command (``echo-server``, ``demo``) and for tests
that want a peer without a third-party server. It is small on purpose: one
``asyncio.Protocol`` per connection, the sans-I/O ``Connection`` doing the
framing.

Theory of operation
-------------------
- Opening handshake (RFC 6455 §4.2): bytes go to a ``RequestParser`` until the
  request head is complete; ``check_request`` validates it and gives the key.
  A valid upgrade is answered with a 101 (``build_response``), choosing the
  first subprotocol the client offers that the server supports; anything else
  with a plain HTTP error (``build_reject``: 400, or 426 with
  ``Sec-WebSocket-Version: 13``), then TCP is closed.
- Echo: each ``data_received`` feeds the ``Connection`` and writes what it
  wants sent (PONGs), then every whole message it returned, with the same
  type. When the chunk ended with the peer's CLOSE or a broken rule, the
  messages before it are echoed first and the CLOSE frame goes last.
- Closing: once both CLOSE frames have crossed, or the connection failed, the
  server closes TCP first (§7.1.1). ``EchoServer.close()`` sends 1001 to every
  open connection and gives clients ``CLOSE_TIMEOUT`` to answer.
- Flow control: when the transport's write buffer is full (``pause_writing``),
  reading stops until it drains, so a client that sends faster than it reads
  meets TCP backpressure instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Sequence
from types import TracebackType
from typing import cast

from ..errors import HandshakeError
from ..flags import WsFlag
from ..protocol.connection import Connection, Side, State
from ..protocol.frames import CloseCode, Opcode, build_frame
from ..protocol.handshake import build_reject, build_response, check_request
from ..protocol.headers import parse_subprotocol_list
from ..protocol.http11 import Request, RequestParser

__all__ = ["EchoServer", "EchoProtocol", "serve_echo"]

logger = logging.getLogger("rapidws.server")

#: Largest message echoed by default: big enough for any test, bounded so one
#: client cannot make the server buffer without limit.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20
#: Seconds a client has to complete its upgrade request: a silent client must
#: not hold a socket forever.
OPEN_TIMEOUT = 10.0
#: Seconds a client has to answer our CLOSE, or to read what is left in our
#: buffer once we close TCP, before the connection is dropped.
CLOSE_TIMEOUT = 5.0

_OPEN = State.OPEN
_TEXT = WsFlag.TEXT


class EchoProtocol(asyncio.Protocol):
    """One client connection of an :class:`EchoServer`."""

    def __init__(self, server: EchoServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self.debug = logger.isEnabledFor(logging.DEBUG)

        # Opening handshake: the parser until the request is answered, then the connection.
        self._parser: RequestParser | None = RequestParser()
        self._conn: Connection | None = None
        #: The subprotocol chosen for this connection, if any.
        self.subprotocol: str | None = None

        # Closing: a timer that drops a connection stuck in the handshake or the close.
        self._timer: asyncio.TimerHandle | None = None
        #: Done when the TCP connection is gone.
        self.lost: asyncio.Future[None] = self._loop.create_future()

    # Public methods

    def shutdown(self) -> None:
        """Start closing: 1001 to an open connection, TCP close before the handshake."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        conn = self._conn
        if conn is None:
            transport.close()
        else:
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
            self._write(conn.data_to_send())
        self._start_timer(CLOSE_TIMEOUT)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol methods

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer = f"{peer[0]}:{peer[1]}"
        self._server._connections.add(self)
        self._start_timer(OPEN_TIMEOUT)
        if self.debug:
            logger.debug("= connection from %s", self._peer)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            self._handshake_data(data)
            return
        was_open = conn.state is _OPEN
        messages = conn.receive_data(data)
        if conn.state is _OPEN:
            self._write(conn.data_to_send())  # PONGs jump ahead of the echoes
            if messages:
                self._write([conn.encode(payload, flags) for payload, flags in messages])
        else:
            # RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST
            # NOT send any further data frames": echo only if we had not.
            if messages and was_open:
                self._echo_before_close(messages)
            self._write(conn.data_to_send())  # the CLOSE goes last
        if conn.close_expected():
            self._finish(conn)

    def eof_received(self) -> bool | None:
        # The client half-closed without a closing handshake: close our side too.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._conn is not None:
            self._conn.receive_eof()
        self._server._connections.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)
        if self.debug:
            logger.debug("= connection from %s lost%s", self._peer, f": {exc}" if exc else "")

    # Flow control callbacks

    def pause_writing(self) -> None:
        # The client reads slower than it sends: stop reading until it catches up.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    # Private methods: opening handshake

    def _handshake_data(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # rejected: ignore whatever else arrives
            return
        try:
            request = parser.feed(data)
            if request is None:
                return
            key = check_request(request)
            subprotocol = self._select_subprotocol(request)
        except HandshakeError as exc:
            self._reject(exc)
            return
        rest = parser.remaining
        self._parser = None
        self.subprotocol = subprotocol
        self._conn = Connection(Side.SERVER, max_message_size=self._server.max_message_size)
        self._write([build_response(key, subprotocol=subprotocol)])
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.debug:
            logger.debug("= %s open: %s, subprotocol %s", self._peer, request.target, subprotocol)
        if rest:
            # Frames may come in the same segment as the request.
            self.data_received(rest)

    def _select_subprotocol(self, request: Request) -> str | None:
        """The first subprotocol the client offers that the server supports."""
        offered = request.headers.get_all("Sec-WebSocket-Protocol")
        if not offered:
            return None
        try:
            names = parse_subprotocol_list(offered)
        except ValueError as exc:
            raise HandshakeError(f"invalid WebSocket request: {exc}", status=400) from None
        supported = self._server.subprotocols
        # RFC 6455 §4.2.2: the server picks one of the client's values, or none.
        return next((name for name in names if name in supported), None)

    def _reject(self, exc: HandshakeError) -> None:
        status = exc.status or 400
        logger.info("! rejected request from %s: HTTP %d, %s", self._peer, status, exc.reason)
        self._parser = None
        self._write([build_reject(status, (exc.reason + "\n").encode())])
        self._close_transport()

    # Private methods: echo and close

    def _echo_before_close(self, messages: list[tuple[bytes, WsFlag]]) -> None:
        # The peer's CLOSE, or a broken rule, came in this chunk after these
        # messages. Echo them before the CLOSE frame, as RFC 6455 §5.5.1 allows
        # ("An endpoint MAY delay sending a Close frame until its current
        # message is sent"). The Connection no longer encodes data once closing,
        # so the frames are built here.
        self._write(
            [
                build_frame(Opcode.TEXT if flags & _TEXT else Opcode.BINARY, payload)
                for payload, flags in messages
            ]
        )

    def _finish(self, conn: Connection) -> None:
        """Both CLOSE frames crossed, or the connection failed: close TCP first (§7.1.1)."""
        failure = conn.failure
        if failure is not None:
            logger.info(
                "! failing connection from %s: %s (%d)",
                self._peer,
                failure.reason,
                failure.close_code,
            )
        elif self.debug:
            logger.debug("= %s closed with code %s", self._peer, conn.close_code)
        self._close_transport()

    def _close_transport(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            # close() sends what is buffered first; a client that never reads
            # it is dropped after CLOSE_TIMEOUT.
            transport.close()
            self._start_timer(CLOSE_TIMEOUT)

    def _write(self, frames: list[bytes]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for frame in frames:
            transport.write(frame)

    def _start_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, self.abort)


class EchoServer:
    """A running echo server; get one from :func:`serve_echo`.

    ``host`` is the host it was asked to listen on, ``port`` the port it got,
    ``url`` the ``ws://`` (or ``wss://``) URL to connect to.
    """

    def __init__(
        self,
        *,
        host: str,
        secure: bool,
        subprotocols: Sequence[str],
        max_message_size: int | None,
    ) -> None:
        self.host = host
        self.port = 0
        self.secure = secure
        self.subprotocols = tuple(subprotocols)
        self.max_message_size = max_message_size
        self._server: asyncio.Server | None = None
        self._connections: set[EchoProtocol] = set()
        self._closing: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        scheme = "wss" if self.secure else "ws"
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/"

    async def close(self) -> None:
        """Stop listening, close every connection (1001), wait for them to end."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        loop = asyncio.get_running_loop()
        self._closing = loop.create_future()
        try:
            if self._server is not None:
                self._server.close()
            connections = list(self._connections)
            for protocol in connections:
                protocol.shutdown()
            if connections:
                # Each connection has its own CLOSE_TIMEOUT timer; this is the backstop.
                await asyncio.wait(
                    [protocol.lost for protocol in connections], timeout=CLOSE_TIMEOUT + 1
                )
                for protocol in connections:
                    protocol.abort()
            if self._server is not None:
                await self._server.wait_closed()
            logger.info("= echo server on %s closed", self.url)
        finally:
            self._closing.set_result(None)

    async def __aenter__(self) -> EchoServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<EchoServer {self.url}>"


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl: ssl_module.SSLContext | None = None,
    subprotocols: Sequence[str] = (),
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
) -> EchoServer:
    """Start an echo server on ``host``:``port`` (0: a free port) and return it.

    ``ssl`` serves wss with that server context. ``subprotocols`` lists the
    subprotocols the server supports, chosen in the client's order.
    ``max_message_size`` bounds a received message (``None``: no limit);
    a larger one fails the connection with 1009.

    With ``port=0`` and a host that resolves to several addresses (such as
    ``localhost``), each address may get a different port: ``port`` is the
    first one's. Use a literal address for tests.
    """
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a sequence of names, not a str")
    if max_message_size is not None and max_message_size < 1:
        raise ValueError(f"max_message_size must be >= 1, got {max_message_size}")
    server = EchoServer(
        host=host,
        secure=ssl is not None,
        subprotocols=subprotocols,
        max_message_size=max_message_size,
    )
    loop = asyncio.get_running_loop()
    server._server = await loop.create_server(lambda: EchoProtocol(server), host, port, ssl=ssl)
    sockets = server._server.sockets
    server.port = sockets[0].getsockname()[1] if sockets else port
    logger.info("= echo server listening on %s", server.url)
    return server
