"""AsyncWebSocket: the public connection object and its asyncio Protocol.

Theory of operation
-------------------
One object is both what the user holds and the ``asyncio.BufferedProtocol``
the transport calls, so a received chunk goes from ``buffer_updated`` to the
receive queue without a task switch:

- Receiving: the transport reads into one buffer shared by every connection
  of the thread (a plain ``Protocol`` makes asyncio allocate 256 KiB per read,
  which costs more than parsing a small message); ``buffer_updated`` feeds a
  view of it to the sans-I/O ``Connection`` (which copies what it keeps), puts the
  messages it completes on the ``RecvQueue`` (which pauses reading when full)
  and writes what the connection wants sent now (PONGs, CLOSE): control frames
  jump the send queue because they never enter it.
- Sending: ``send*`` frames the message at once and hands it to the transport
  when nothing is queued and the transport accepts writes; otherwise the frame
  waits in the send queue, drained by ``resume_writing``. asyncio's own TCP
  transport keeps no buffer (write buffer limits of 0): it pauses us as soon as a
  write leaves bytes behind and resumes us once they are all sent, so the send
  queue is the one buffer, and a large frame goes over in pieces the socket
  takes whole (asyncio before 3.12 copies what a write leaves behind, twice).
  While that buffer is empty, small frames go straight to the socket, and
  only what the socket leaves goes through the transport.
  When a piece is left over, the rest of that frame heads the queue ("cut"),
  and control frames go right after it, never inside it. With
  ``coalesce_frames`` every frame goes through the queue, written by one
  callback per loop iteration or as soon as ``send_queue_size`` wait, each
  keeping its own frame. ``send_queue_size`` bounds the queue: a full queue
  makes ``send*`` wait (backpressure), or raise ``WebSocketTimeout`` after
  ``timeout``.
- Closing: whoever closes first, the connection ends in ``connection_lost``,
  which settles every waiter. Until then ``recv`` hands out what is queued;
  after a failure it does so only with ``drain_on_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import (
    HandshakeError,
    InvalidStatus,
    WebSocketClosed,
    WebSocketError,
    WebSocketTimeout,
)
from ..flags import WsFlag
from ..protocol.connection import CloseReceived, Connection, Pong, Side, State
from ..protocol.deflate import DeflateOptions, PerMessageDeflate
from ..protocol.frames import CloseCode
from ..protocol.handshake import HandshakeResult, check_response
from ..protocol.http11 import BodyReader, Response, ResponseParser
from .queues import RecvQueue

__all__ = ["AsyncWebSocket"]

logger = logging.getLogger("rapidws.client")

_TEXT = WsFlag.TEXT
_BINARY = WsFlag.BINARY
_OPEN = State.OPEN
# Close codes after which iteration ends quietly instead of raising.
_NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})
# A frame larger than this goes to the transport in pieces of this size, and
# queued frames are joined into one write only while they add up to at most
# _JOIN_MAX (a join copies them all).
_WRITE_CHUNK = 256 * 1024
_JOIN_MAX = 64 * 1024
# Polling period of flush() on a TLS transport whose buffer is below its high
# mark: asyncio has no "buffer empty" callback (a TCP transport keeps no
# buffer, and resume_writing says when it is empty).
_FLUSH_POLL = 0.001

Message = tuple[bytes, WsFlag]
Chunk = bytes | memoryview


def _compact_dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class AsyncWebSocket(asyncio.BufferedProtocol):
    """A WebSocket connection; get one from ``AsyncSession.ws_connect``."""

    # Slots: a process may hold thousands of connections, and a fixed layout
    # is smaller and faster to read on every message than a __dict__.
    __slots__ = (
        "_loop",
        "_transport",
        "_key",
        "_subprotocols",
        "_response_parser",
        "_body_reader",
        "_response",
        "_handshake_waiter",
        "_early_request",
        "response",
        "subprotocol",
        "extensions",
        "_deflate_offers",
        "_conn",
        "_open",
        "_recv_queue",
        "_stream_fragments",
        "_drain_on_error",
        "_read_timeout",
        "_send_queue",
        "_send_queue_size",
        "_send_waiters",
        "_coalesce",
        "_drain_scheduled",
        "_write_paused",
        "_cut",
        "_pieces",
        "_sock",
        "close_timeout",
        "_close_info",
        "_lost",
        "_close_timer",
        "_close_waiters",
        "_on_lost",
        "_ping_interval",
        "_ping_timeout",
        "_keepalive_timer",
        "_ping_sent",
        "_ping_count",
        "latency",
        "_held_pong",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        recv_queue_size: int = 128,
        send_queue_size: int = 16,
        coalesce_frames: bool = False,
        drain_on_error: bool = False,
        max_message_size: int | None = 4 * 1024 * 1024,
        autoclose: bool = True,
        close_timeout: float | None = 10.0,
        read_timeout: float | None = None,
        stream_fragments: bool = False,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
    ) -> None:
        if send_queue_size < 1:
            raise ValueError(f"send_queue_size must be >= 1, got {send_queue_size}")
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None

        # Opening handshake (client side of RFC 6455 §4.1)
        self._key = ""
        self._subprotocols: tuple[str, ...] = ()
        self._response_parser: ResponseParser | None = None
        self._body_reader: BodyReader | None = None
        self._response: Response | None = None
        self._handshake_waiter: asyncio.Future[None] = self._loop.create_future()
        # The upgrade request, when connection_made is to send it (plain TCP).
        self._early_request: bytes | None = None
        #: The server's 101 response, once the connection is open.
        self.response: Response | None = None
        #: The subprotocol the server chose, or None.
        self.subprotocol: str | None = None
        #: Extensions in use, as agreed in the handshake: ``[PerMessageDeflate(...)]``
        #: when compression was negotiated, else empty.
        self.extensions: list[PerMessageDeflate] = []
        self._deflate_offers: tuple[DeflateOptions, ...] = ()

        # Receiving
        self._conn = Connection(
            Side.CLIENT,
            max_message_size=max_message_size,
            stream=stream_fragments,
            autoclose=autoclose,
        )
        self._open = False
        self._recv_queue: RecvQueue[Message] = RecvQueue(
            recv_queue_size, pause=self._pause_reading, resume=self._resume_reading
        )
        self._stream_fragments = stream_fragments
        self._drain_on_error = drain_on_error
        self._read_timeout = read_timeout

        # Sending
        # Lists, not deques: the queue is drained whole, and an empty deque
        # costs 760 bytes on each of thousands of connections.
        self._send_queue: list[Chunk] = []
        self._send_queue_size = send_queue_size
        self._send_waiters: list[asyncio.Future[None]] = []
        self._coalesce = coalesce_frames
        self._drain_scheduled = False
        self._write_paused = False
        #: Whether the send queue starts with the unwritten rest of a frame.
        self._cut = False
        #: Whether large frames go in pieces (asyncio's own TCP transport; see
        #: connection_made).
        self._pieces = False
        #: The TCP socket under asyncio's own transport, which small frames
        #: go straight to while the transport holds nothing (_write_frame).
        self._sock: socket.socket | None = None

        # Closing
        self.close_timeout = close_timeout
        self._close_info: tuple[int, str, BaseException | None] | None = None
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._close_timer: asyncio.TimerHandle | None = None
        self._on_lost: list[Callable[[AsyncWebSocket], None]] = []
        # close() calls waiting for connection_lost, each on its own future so
        # that cancelling one leaves _lost and the others alone.
        self._close_waiters: list[asyncio.Future[None]] = []

        # Keepalive: a PING every ping_interval; no PONG within ping_timeout
        # means the peer is gone (see _keepalive).
        self._ping_interval = ping_interval
        self._ping_timeout = ping_interval if ping_timeout is None else ping_timeout
        self._keepalive_timer: asyncio.TimerHandle | None = None
        #: (payload, loop time sent) of the keepalive PING awaiting its PONG.
        self._ping_sent: tuple[bytes, float] | None = None
        self._ping_count = 0
        #: Round-trip time of the last keepalive PING, in seconds.
        self.latency: float | None = None
        # Latest PONG held back while the transport's buffer is full (§5.5.3
        # allows answering only the most recent PING): a PING flood cannot
        # grow the buffer.
        self._held_pong: bytes | None = None

    # Public methods: receiving

    async def recv(self, timeout: float | None = None) -> tuple[bytes, WsFlag]:
        """The next whole message as ``(payload, flags)``.

        ``flags`` is TEXT or BINARY. Raises ``WebSocketClosed`` once the
        connection is closed and nothing is left to read, ``WebSocketTimeout``
        after ``timeout`` seconds.
        """
        queue = self._recv_queue
        item = queue.get_nowait()
        if item is None:
            # One coroutine frame less than going through _get(): this wait is
            # on every round trip.
            if timeout is None:
                timeout = self._read_timeout
            try:
                item = await queue.get(timeout)
            except (TimeoutError, WebSocketClosed) as exc:
                error = self._recv_error(exc, timeout)
                # Keep the ProtocolError that _closed_error() set as the cause
                # (README, "Errors"); a timeout has none.
                raise error from error.__cause__
        # Only stream_fragments puts CONT pieces in the queue.
        if self._stream_fragments and int(item[1]) & 4:
            return await self._join_fragments(item, timeout)
        return item

    async def recv_fragment(self, timeout: float | None = None) -> tuple[bytes, WsFlag]:
        """The next piece of a message: its flags carry CONT while more follow.

        Pieces are fragments as they arrived only with ``stream_fragments=True``;
        otherwise each piece is a whole message.
        """
        item = self._recv_queue.get_nowait()
        if item is not None:
            return item
        return await self._get(timeout)

    async def recv_str(self, timeout: float | None = None) -> str:
        """The next message, which must be TEXT, decoded."""
        data, flags = await self.recv(timeout)
        if not flags & _TEXT:
            raise WebSocketError(f"expected a TEXT message, got {flags!r}")
        return data.decode()

    async def recv_json(
        self, loads: Callable[[bytes], Any] = json.loads, timeout: float | None = None
    ) -> Any:
        """The next message, which must be TEXT, parsed with ``loads``."""
        data, flags = await self.recv(timeout)
        if not flags & _TEXT:
            raise WebSocketError(f"expected a TEXT message, got {flags!r}")
        return loads(data)

    def __aiter__(self) -> AsyncWebSocket:
        return self

    async def __anext__(self) -> bytes:
        """Payloads until the connection closes normally (1000, 1001, or no code)."""
        try:
            data, _ = await self.recv()
        except WebSocketClosed as exc:
            if exc.code in _NORMAL_CLOSE_CODES:
                raise StopAsyncIteration from None
            raise
        return data

    # Public methods: sending

    async def send(
        self,
        payload: str | bytes | bytearray | memoryview,
        flags: WsFlag | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Queue one message (or one fragment, with the CONT flag).

        ``str`` goes as TEXT and bytes-like as BINARY unless ``flags`` says
        otherwise. Waits while the send queue is full, or raises
        ``WebSocketTimeout`` after ``timeout`` seconds.
        """
        if isinstance(payload, str):
            payload = payload.encode()
            if flags is None:
                flags = _TEXT
        elif flags is None:
            flags = _BINARY
        if flags & WsFlag.PING:
            return await self.ping(payload)
        if flags & WsFlag.CLOSE:
            return await self.close(message=bytes(payload))
        if len(self._send_queue) >= self._send_queue_size:
            await self._wait_send_space(timeout)
        self._check_open()
        self._put_frame(self._conn.encode(payload, flags))

    async def send_str(self, payload: str, *, timeout: float | None = None) -> None:
        """Queue a TEXT message."""
        if len(self._send_queue) >= self._send_queue_size:
            await self._wait_send_space(timeout)
        self._check_open()
        self._put_frame(self._conn.encode_message(1, payload.encode()))

    async def send_bytes(
        self, payload: bytes | bytearray | memoryview, *, timeout: float | None = None
    ) -> None:
        """Queue a BINARY message."""
        if len(self._send_queue) >= self._send_queue_size:
            await self._wait_send_space(timeout)
        self._check_open()
        self._put_frame(self._conn.encode_message(2, payload))

    send_binary = send_bytes

    async def send_json(
        self,
        obj: Any,
        dumps: Callable[[Any], str | bytes] = _compact_dumps,
        *,
        timeout: float | None = None,
    ) -> None:
        """Queue ``obj`` as compact JSON in a TEXT message."""
        text = dumps(obj)
        payload = text.encode() if isinstance(text, str) else text
        if len(self._send_queue) >= self._send_queue_size:
            await self._wait_send_space(timeout)
        self._check_open()
        self._put_frame(self._conn.encode_message(1, payload))

    async def ping(self, payload: str | bytes | bytearray | memoryview = b"") -> None:
        """Send a PING now, ahead of queued messages (at most 125 bytes)."""
        if isinstance(payload, str):
            payload = payload.encode()
        if self._close_info is not None or not self._open:
            raise self._closed_error()
        self._write_control_frames([self._conn.ping(bytes(payload))])

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message has been written to the socket."""
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            transport = self._transport
            if not self._send_queue and (
                transport is None or transport.get_write_buffer_size() == 0
            ):
                return
            if self._lost.done():
                raise self._closed_error()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise WebSocketTimeout(f"flush did not finish within {timeout} s")
            if self._write_paused:
                # resume_writing wakes us: on TCP (no transport buffer) once
                # everything is sent, on TLS at the transport's low mark.
                await self._wait_writer(remaining)
            elif self._send_queue:
                await asyncio.sleep(0)  # a coalesced batch, drained this iteration
            else:
                # TLS below its high mark: asyncio says nothing when it empties.
                await asyncio.sleep(
                    _FLUSH_POLL if remaining is None else min(_FLUSH_POLL, remaining)
                )

    # Public methods: closing

    async def close(
        self,
        code: int = CloseCode.NORMAL_CLOSURE,
        message: str | bytes = b"",
        timeout: float | None = None,
    ) -> None:
        """Close the connection: flush, send CLOSE, wait for the server's, release.

        Waits at most ``timeout`` seconds (default: ``close_timeout``) in all,
        then drops the TCP connection. Safe to call more than once.
        """
        if timeout is None:
            timeout = self.close_timeout
        reason = message.decode() if isinstance(message, bytes) else message
        transport = self._transport
        if transport is None or self._lost.done():
            return
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        conn = self._conn
        try:
            if conn.close_sent is None and self._open:
                if self._send_queue or transport.get_write_buffer_size():
                    with contextlib.suppress(WebSocketError):
                        await self.flush(timeout)
                if conn.close_sent is None and not self._lost.done():
                    conn.close(code, reason)  # ValueError for an invalid code or reason
                    self._write_control()
                    if self._close_info is None:
                        self._set_closed(code, reason, None, discard=False)
            if not self._open:
                transport.abort()
            if not self._lost.done():
                timer = None if deadline is None else loop.call_at(deadline, transport.abort)
                # Settled by connection_lost itself: no shield, whose callbacks
                # would cost two more loop iterations per close.
                waiter: asyncio.Future[None] = loop.create_future()
                self._close_waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if timer is not None:
                        timer.cancel()
                    if waiter in self._close_waiters:  # cancelled or timed out
                        self._close_waiters.remove(waiter)
        except asyncio.CancelledError:
            transport.abort()
            raise

    def terminate(self) -> None:
        """Drop the connection now, without a closing handshake; thread-safe."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._abort()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._abort)

    async def __aenter__(self) -> AsyncWebSocket:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        # An error is in flight: close, but never let the close hide it.
        try:
            await self.close(CloseCode.GOING_AWAY if exc_type is not None else 1000)
        except Exception:
            logger.debug("error while closing after %r", exc_type, exc_info=True)

    # Public attributes

    @property
    def closed(self) -> bool:
        """Whether the connection is closed or closing."""
        return self._close_info is not None or self._lost.done()

    @property
    def close_code(self) -> int | None:
        """The close code once closed: the peer's, ours, or 1006 if TCP broke."""
        return None if self._close_info is None else self._close_info[0]

    @property
    def close_reason(self) -> str | None:
        return None if self._close_info is None else self._close_info[1]

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._transport

    def __repr__(self) -> str:
        state = "open" if self._open and self._close_info is None else "closed"
        return f"<AsyncWebSocket {state}>"

    # Private methods: receiving

    async def _get(self, timeout: float | None) -> Message:
        if timeout is None:
            timeout = self._read_timeout
        try:
            return await self._recv_queue.get(timeout)
        except (TimeoutError, WebSocketClosed) as exc:
            error = self._recv_error(exc, timeout)
            # Keep the ProtocolError that _closed_error() set as the cause
            # (README, "Errors"); a timeout has none.
            raise error from error.__cause__

    def _recv_error(self, exc: BaseException, timeout: float | None) -> WebSocketError:
        if isinstance(exc, WebSocketClosed) or (
            self._recv_queue.closed and not len(self._recv_queue)
        ):
            return self._closed_error()
        return WebSocketTimeout(f"no message received within {timeout} s")

    async def _join_fragments(self, first: Message, timeout: float | None) -> Message:
        """stream_fragments: join the pieces of one message for recv()."""
        parts = [first[0]]
        kind = _TEXT if int(first[1]) & 1 else _BINARY
        while True:
            data, more = await self._get(timeout)
            parts.append(data)
            if not int(more) & 4:
                return b"".join(parts), kind

    def _pause_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    # Private methods: sending

    def _check_open(self) -> None:
        if self._close_info is not None or not self._open:
            raise self._closed_error()

    def _put_frame(self, frame: bytes) -> None:
        """Write ``frame`` now, or queue it behind frames the socket has not taken."""
        queue = self._send_queue
        if self._coalesce:
            queue.append(frame)
            if self._write_paused:
                return
            if len(queue) >= self._send_queue_size:
                # A full batch goes now rather than making the sender wait a
                # loop iteration for the scheduled drain.
                self._drain_send_queue()
            elif not self._drain_scheduled:
                self._drain_scheduled = True
                self._loop.call_soon(self._scheduled_drain)
        elif queue or self._write_paused:
            queue.append(frame)
        else:
            self._write_frame(frame)

    def _write_frame(self, frame: Chunk) -> bool:
        """Write one frame; on asyncio's own TCP transport a large one a piece at
        a time while the socket takes each piece whole. Paused in the middle,
        the rest heads the send queue.

        Returns whether the transport paused us.
        """
        transport = self._transport
        assert transport is not None
        size = len(frame)
        if size <= _WRITE_CHUNK or not self._pieces:
            sock = self._sock
            if sock is None or transport.get_write_buffer_size() or transport.is_closing():
                transport.write(frame)
                return self._write_paused
            # What transport.write would do, less its Python: with nothing in
            # its buffer (always so while we are not paused, unless someone
            # raised its limits) the socket is next in line. Whatever the
            # socket does not take, the transport gets: it keeps the rest (and
            # pauses us) or meets the error and fails the connection, exactly
            # as if it had made this call itself.
            try:
                sent = sock.send(frame)
            except OSError:
                sent = 0
            if sent != size:
                transport.write(memoryview(frame)[sent:] if sent else frame)
            return self._write_paused
        view = memoryview(frame)
        for start in range(0, size, _WRITE_CHUNK):
            end = start + _WRITE_CHUNK
            transport.write(view[start:end])
            if self._write_paused:
                if end < size:
                    self._send_queue.insert(0, view[end:])
                    self._cut = True
                return True
        return False

    async def _wait_send_space(self, timeout: float | None) -> None:
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        while len(self._send_queue) >= self._send_queue_size:
            if self._close_info is not None or self._lost.done():
                raise self._closed_error()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise WebSocketTimeout(f"send queue still full after {timeout} s")
            await self._wait_writer(remaining)

    async def _wait_writer(self, timeout: float | None) -> None:
        """Until the writer moves (a drain, resume_writing, the end), or ``timeout``."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._send_waiters.append(waiter)
        timer = None if timeout is None else self._loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            with contextlib.suppress(ValueError):
                self._send_waiters.remove(waiter)

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self._drain_send_queue()

    def _drain_send_queue(self) -> None:
        """Hand queued frames to the transport until it has them all or pauses us."""
        queue = self._send_queue
        transport = self._transport
        if not queue or self._write_paused or transport is None or transport.is_closing():
            return
        self._send_queue = []
        self._cut = False
        if not self._pieces:
            # uvloop and TLS keep what the socket does not take without copying
            # it twice, and do best with few, large writes.
            transport.write(queue[0] if len(queue) == 1 else b"".join(queue))
        elif len(queue) > 1 and sum(map(len, queue)) <= _JOIN_MAX:
            transport.writelines(queue)  # small frames: one system call
        else:
            for i, frame in enumerate(queue):
                if self._write_frame(frame):
                    self._send_queue.extend(queue[i + 1 :])
                    break
        self._wake_senders()

    def _wake_senders(self) -> None:
        for waiter in self._send_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write_control(self) -> None:
        self._write_control_frames(self._conn.data_to_send())

    def _write_control_frames(self, frames: list[bytes]) -> None:
        """Write control frames ahead of queued messages, but after the rest of a
        cut frame: the bytes of two frames never interleave (§5.4 lets control
        frames in between the frames of a message, not inside one)."""
        transport = self._transport
        if not frames or transport is None or transport.is_closing():
            return
        if self._cut:
            self._send_queue[1:1] = frames
        elif len(frames) == 1:
            transport.write(frames[0])
        else:
            transport.writelines(frames)

    # Private methods: closing

    def _closed_error(self) -> WebSocketClosed:
        info = self._close_info
        if info is None:
            if not self._open:
                return WebSocketClosed(CloseCode.ABNORMAL_CLOSURE, "connection is not open")
            return WebSocketClosed(CloseCode.ABNORMAL_CLOSURE, "connection closed")
        exc = WebSocketClosed(info[0], info[1])
        if info[2] is not None:
            exc.__cause__ = info[2]
        return exc

    def _set_closed(
        self, code: int, reason: str, cause: BaseException | None, *, discard: bool
    ) -> None:
        """Record why the connection ends; settle every receiver and sender."""
        if self._close_info is None:
            self._close_info = (code, reason, cause)
        self._recv_queue.close(self._closed_error(), discard=discard)
        self._wake_senders()

    def _abort(self) -> None:
        if self._transport is not None:
            if self._close_info is None:
                self._set_closed(
                    CloseCode.ABNORMAL_CLOSURE, "connection terminated", None, discard=False
                )
            self._transport.abort()

    def _on_close_exchange(self) -> None:
        """Both CLOSE frames have crossed: the server should now close TCP.

        RFC 6455 §7.1.1: the server closes the TCP connection first; the client
        waits for it, and closes it itself only if that takes too long.
        """
        if self._close_timer is None and self._transport is not None:
            timeout = self.close_timeout
            self._close_timer = self._loop.call_later(
                10.0 if timeout is None else timeout, self._transport.abort
            )

    # Private methods: opening handshake (driven by connect.py)

    def _begin_handshake(
        self,
        request: bytes,
        *,
        key: str,
        subprotocols: tuple[str, ...],
        deflate_offers: tuple[DeflateOptions, ...] = (),
        early: bool = False,
        sock: socket.socket | None = None,
    ) -> asyncio.Future[None]:
        """Send the upgrade ``request``; the future is settled by the response.

        ``early``: called before the transport exists; ``connection_made``
        writes ``request`` (over plain TCP, what is left of it once connect.py
        has sent the start on the socket). ``sock``: the socket connect.py
        dialed, which the coming transport will own.
        """
        self._key = key
        self._sock = sock
        self._subprotocols = subprotocols
        self._deflate_offers = deflate_offers
        self._response_parser = ResponseParser()
        if early:
            self._early_request = request
        else:
            self._transport.write(request)  # type: ignore[union-attr]
        return self._handshake_waiter

    def _handshake_data(self, data: bytes) -> None:
        try:
            if self._body_reader is not None:
                if self._body_reader.feed(data):
                    self._refused()
                return
            parser = self._response_parser
            if parser is None:
                return
            response = parser.feed(data)
            if response is None:
                return
            self._response = response
            rest = parser.remaining
            if response.status != 101:
                self._body_reader = BodyReader(response.status, response.headers)
                if self._body_reader.feed(rest):
                    self._refused()
                return
            result = check_response(
                response,
                key=self._key,
                subprotocols=self._subprotocols,
                deflate_offers=self._deflate_offers,
            )
        except HandshakeError as exc:
            self._handshake_failed(exc)
            return
        self._opened(response, result)
        if rest:
            self._received(rest)

    def _opened(self, response: Response, result: HandshakeResult) -> None:
        self._open = True
        self.response = response
        self.subprotocol = result.subprotocol
        if result.deflate is not None:
            self._conn.enable_deflate(result.deflate)
            self.extensions = [result.deflate]
        self._response_parser = None
        self._start_keepalive()
        if not self._handshake_waiter.done():
            self._handshake_waiter.set_result(None)

    def _refused(self) -> None:
        exc = self._refusal()
        assert exc is not None
        self._handshake_failed(exc)

    def _refusal(self, note: str = "") -> InvalidStatus | None:
        """The refused upgrade as an error, with the body read so far; None when
        no refusal (a status other than 101) has arrived."""
        response = self._response
        reader = self._body_reader
        if response is None or reader is None:
            return None
        response.body = reader.body
        return InvalidStatus(
            f"server rejected WebSocket connection: HTTP {response.status}{note}",
            status=response.status,
            headers=response.headers.items(),
            body=reader.body,
        )

    def _abandon_handshake(self) -> None:
        """The connect attempt gave up: nobody will await the handshake result."""
        waiter = self._handshake_waiter
        if not waiter.done():
            waiter.cancel()
        elif not waiter.cancelled():
            waiter.exception()  # mark it retrieved: the caller raised its own error

    def _handshake_failed(self, exc: BaseException) -> None:
        if not self._handshake_waiter.done():
            self._handshake_waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol methods

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        # asyncio's own TCP transport gets no buffer and large frames go in
        # pieces: see "Sending" in the module docstring. Others keep their
        # defaults: uvloop keeps a leftover without copying it and measured
        # slower with many small writes; a TLS transport buffers in its TLS
        # layer anyway, and asyncio's pauses at a limit of 0 with nothing
        # buffered (it compares the size with >=), so it would never write.
        if isinstance(self._loop, BaseSelectorEventLoop) and (
            transport.get_extra_info("sslcontext") is None
        ):
            with contextlib.suppress(NotImplementedError):  # a transport without limits
                transport.set_write_buffer_limits(0)  # type: ignore[attr-defined]
                self._pieces = True
        if not self._pieces:
            self._sock = None
        request = self._early_request
        if request is not None:
            self._early_request = None
            self._transport.write(request)  # type: ignore[union-attr]

    def get_buffer(self, sizehint: int) -> memoryview:
        # One buffer per thread, shared by every connection (see the parser).
        return self._conn.read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if not self._open:
            self._handshake_data(bytes(self._conn.read_buffer()[:nbytes]))
            return
        self._after_read(self._conn.read_done(nbytes))

    def _received(self, data: bytes | memoryview) -> None:
        """Bytes that came in with the 101 response."""
        self._after_read(self._conn.receive_data(data))

    def _after_read(self, messages: list[Message]) -> None:
        conn = self._conn
        if messages:
            self._recv_queue.put_many(messages)
        out = conn.data_to_send()
        if out:
            if self._write_paused:
                out = self._hold_pongs(out)
            self._write_control_frames(out)
        events = conn.events_received()
        if events or conn.failure is not None:
            self._handle_events(events)

    def eof_received(self) -> bool | None:
        # Let asyncio close the transport; connection_lost follows.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        if not self._open:
            reader = self._body_reader
            if reader is not None and self._response is not None:
                reader.feed_eof()
                self._refused()
            elif self._response_parser is not None and not self._handshake_waiter.done():
                failure = HandshakeError(
                    "connection closed before the handshake completed" + (f": {exc}" if exc else "")
                )
                failure.__cause__ = exc
                self._handshake_waiter.set_exception(failure)
        self._conn.receive_eof()
        if self._close_info is None:
            reason = f"connection lost: {exc}" if exc else "connection closed without a close frame"
            self._set_closed(
                CloseCode.ABNORMAL_CLOSURE, reason, exc, discard=not self._drain_on_error
            )
        else:
            self._recv_queue.close(self._closed_error(), discard=False)
            self._wake_senders()
        if not self._lost.done():
            self._lost.set_result(None)
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        for callback in self._on_lost:
            callback(self)
        self._on_lost.clear()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._held_pong is not None:
            pong, self._held_pong = self._held_pong, None
            self._write_control_frames([pong])
        if self._send_queue:
            self._drain_send_queue()
        else:
            self._wake_senders()  # flush() waits for this

    def _hold_pongs(self, out: list[bytes]) -> list[bytes]:
        """Keep only the newest PONG back; let CLOSE frames through."""
        kept = []
        for frame in out:
            if frame[0] == 0x8A:  # FIN + PONG
                self._held_pong = frame
            else:
                kept.append(frame)
        return kept

    # Private methods: keepalive

    def _start_keepalive(self) -> None:
        if self._ping_interval is not None:
            self._keepalive_timer = self._loop.call_later(self._ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        """Timer: send the next PING, or fail if the last one went unanswered."""
        self._keepalive_timer = None
        if self._close_info is not None or self._transport is None:
            return
        now = self._loop.time()
        interval = self._ping_interval
        timeout = self._ping_timeout
        assert interval is not None and timeout is not None
        sent = self._ping_sent
        if sent is not None:
            if now - sent[1] >= timeout:
                self._fail_keepalive(timeout)
                return
            # Still within ping_timeout: check again when it runs out.
            self._keepalive_timer = self._loop.call_later(sent[1] + timeout - now, self._keepalive)
            return
        self._ping_count += 1
        payload = b"ka%d" % self._ping_count
        self._ping_sent = (payload, now)
        self._write_control_frames([self._conn.ping(payload)])
        self._keepalive_timer = self._loop.call_later(min(interval, timeout), self._keepalive)

    def _fail_keepalive(self, timeout: float) -> None:
        # The peer stopped answering: a closing handshake would wait on it too,
        # so send CLOSE 1011 for the record and drop TCP at once.
        reason = f"keepalive ping not answered within {timeout} s"
        logger.info("! %s", reason)
        self._conn.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._write_control()
        self._set_closed(CloseCode.INTERNAL_ERROR, reason, None, discard=not self._drain_on_error)
        assert self._transport is not None
        self._transport.abort()

    def _pong_received(self, payload: bytes) -> None:
        sent = self._ping_sent
        if sent is not None and payload == sent[0]:
            self.latency = self._loop.time() - sent[1]
            self._ping_sent = None
            if self._keepalive_timer is not None:
                self._keepalive_timer.cancel()
            assert self._ping_interval is not None
            delay = max(0.0, sent[1] + self._ping_interval - self._loop.time())
            self._keepalive_timer = self._loop.call_later(delay, self._keepalive)

    # Private methods: control events

    def _handle_events(self, events: list[Any]) -> None:
        conn = self._conn
        for event in events:
            if type(event) is CloseReceived:
                # With autoclose=False the application answers with close().
                self._set_closed(event.code, event.reason, None, discard=False)
            elif type(event) is Pong:
                self._pong_received(event.payload)
        failure = conn.failure
        if failure is not None:
            self._set_closed(
                failure.close_code, failure.reason, failure, discard=not self._drain_on_error
            )
            # §7.1.7: after failing, close the TCP connection (the CLOSE frame
            # written above goes out first: close() flushes the buffer).
            if self._transport is not None:
                self._transport.close()
        elif conn.close_expected():
            self._on_close_exchange()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
