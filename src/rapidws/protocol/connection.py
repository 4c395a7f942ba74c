"""The WebSocket connection state machine, sans I/O (RFC 6455 §5-§7).

Theory of operation
-------------------
A :class:`Connection` starts OPEN, after the opening handshake, and knows one
side: CLIENT masks what it sends and refuses masked input; SERVER the reverse.

- Input: ``receive_data(bytes)`` parses frames and returns the data messages
  they complete; control frames are handled here. ``read_buffer()`` and
  ``read_done(nbytes)`` do the same for a caller that reads into a buffer
  (``asyncio.BufferedProtocol``). A PING queues a PONG with the
  same payload in ``data_to_send()``; PINGs, PONGs and CLOSEs are also reported
  by ``events_received()``. ``receive_eof()`` records that TCP closed.
- Output: ``encode(payload, flags)`` returns the frame(s) of one data message
  for the caller's send queue; control frames (PONG, CLOSE) go to
  ``data_to_send()``, which the caller writes at once, ahead of queued data.
- Closing: the first CLOSE sent moves OPEN to CLOSING; the second CLOSE (the
  peer's) moves to CLOSED. On a peer's CLOSE while OPEN the answer is sent right
  away when ``autoclose`` is on. After CLOSED, ``close_expected()`` tells the
  caller to expect TCP to close; a client waits for the server to close it first
  (§7.1.1) and closes it itself after a timeout.
- Failure: a broken rule raises ProtocolError in the parser or assembler and is
  turned into a close code in one place, ``_fail``: a CLOSE with that code is
  queued, every later byte is discarded (§7.1.7) and ``failure`` keeps the cause.
- Compression: after ``enable_deflate`` (RFC 7692), data frames go through
  ``_receive_deflate`` and ``_encode_deflate``. Without it, receiving and
  sending pay one attribute check per call, nothing per frame.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from ..errors import ProtocolError, WebSocketClosed
from ..flags import WsFlag
from ._accel import build_frame, parse_messages
from .deflate import Deflater, Inflater, PerMessageDeflate, compressed_size_limit
from .frames import (
    MAX_CONTROL_PAYLOAD,
    CloseCode,
    Frame,
    MaskKeys,
    Opcode,
    build_close_payload,
    parse_close_payload,
)
from .messages import MessageAssembler
from .parser import FrameParser

__all__ = ["Side", "State", "Connection", "Ping", "Pong", "CloseReceived", "Event"]

logger = logging.getLogger("rapidws.protocol")


class Side(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclass(slots=True)
class Ping:
    payload: bytes


@dataclass(slots=True)
class Pong:
    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's CLOSE frame: its code (1005 when it had none) and reason."""

    code: int
    reason: str


Event = Ping | Pong | CloseReceived

_TEXT = WsFlag.TEXT
_BINARY = WsFlag.BINARY
_CONT = WsFlag.CONT
_TEXT_BIT = int(WsFlag.TEXT)
_CONT_BIT = int(WsFlag.CONT)
# Plain ints for the send path: reading Opcode.TEXT goes through the enum
# class (~50 ns a time on CPython 3.11).
_OP_CONT = int(Opcode.CONT)
_OP_TEXT = int(Opcode.TEXT)
_OP_BINARY = int(Opcode.BINARY)
_OPEN = State.OPEN
_NO_EVENTS: list[Event] = []


class Connection:
    """One WebSocket connection in the OPEN state or later.

    ``max_message_size`` bounds a received message (``None``: unlimited; over
    it the connection fails with 1009). ``stream`` hands out fragments as they
    arrive instead of whole messages. ``autoclose`` answers the peer's CLOSE.
    """

    __slots__ = (
        "side",
        "_mask_keys",
        "autoclose",
        "debug",
        "_parser",
        "_assembler",
        "_events",
        "eof_received",
        "max_message_size",
        "deflate",
        "_inflater",
        "_deflater",
        "_inflating",
        "_out",
        "_sending",
        "state",
        "close_sent",
        "close_received",
        "failure",
    )

    def __init__(
        self,
        side: Side,
        *,
        max_message_size: int | None = None,
        stream: bool = False,
        autoclose: bool = True,
    ) -> None:
        # Role
        self.side = side
        client = side is Side.CLIENT
        self._mask_keys: MaskKeys | None = MaskKeys.for_thread() if client else None
        self.autoclose = autoclose
        self.debug = logger.isEnabledFor(logging.DEBUG)

        # Input: parser -> assembler; control frames handled in receive_data.
        self._parser = FrameParser(expect_masked=not client, max_size=max_message_size)
        self._assembler = MessageAssembler(max_size=max_message_size, stream=stream)
        self._events: list[Event] = []
        self.eof_received = False
        self.max_message_size = max_message_size

        # permessage-deflate, once enable_deflate() was called: the codec for
        # each direction, and whether the message being received is compressed.
        self.deflate: PerMessageDeflate | None = None
        self._inflater: Inflater | None = None
        self._deflater: Deflater | None = None
        self._inflating = False

        # Output: control frames and anything to write right away.
        self._out: list[bytes] = []
        #: Opcode of a message being sent in fragments (CONT flag), else None.
        self._sending: int | None = None

        # Closing handshake
        self.state = State.OPEN
        self.close_sent: tuple[int | None, str] | None = None
        self.close_received: CloseReceived | None = None
        #: Why the connection failed, when it did.
        self.failure: ProtocolError | None = None

    # Input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[tuple[bytes, WsFlag]]:
        """Feed bytes from the network; return the data messages they complete.

        ``data`` may be a view of a buffer that the caller reuses: nothing
        keeps a reference to it.
        """
        if self.close_received is not None or self.failure is not None:
            # §7.1.7 / §1.4: after the peer's CLOSE, or a failure, input is discarded.
            return []
        return self._receive_frames(self._parser.feed(data))

    def read_buffer(self) -> memoryview:
        """Where the next read should land, for ``asyncio.BufferedProtocol.get_buffer``.

        Then ``read_done(nbytes)`` instead of ``receive_data``: reads then
        allocate nothing, and a large frame is read straight into its own
        buffer (``FrameParser.read_buffer``). The buffer is only valid until
        ``read_done`` returns.
        """
        return self._parser.read_buffer()

    def read_done(self, nbytes: int) -> list[tuple[bytes, WsFlag]]:
        """The data messages completed by ``nbytes`` read into ``read_buffer()``."""
        if self.close_received is not None or self.failure is not None:
            return []  # §7.1.7 / §1.4: discarded, as in receive_data
        parser = self._parser
        if self._inflater is None and self._assembler.idle:
            view = parser.idle_view(nbytes)
            if view is not None:
                # The common case, whole unfragmented messages: straight to
                # (payload, flags), no Frame objects; the full path takes over
                # at the first frame that needs it.
                messages: list[tuple[bytes, WsFlag]] = []
                pos = parse_messages(
                    view, messages, parser.expect_masked, parser.max_size, _TEXT, _BINARY
                )
                if pos < nbytes:
                    messages += self._receive_frames(parser.feed(view[pos:]))
                return messages
        return self._receive_frames(parser.read_done(nbytes))

    def _receive_frames(self, frames: list[Frame]) -> list[tuple[bytes, WsFlag]]:
        parser = self._parser
        messages: list[tuple[bytes, WsFlag]] = []
        if frames and self._inflater is not None:
            if self._receive_deflate(frames, messages):
                return messages
        elif frames:
            assembler = self._assembler
            try:
                for frame in frames:
                    opcode = frame.opcode
                    if opcode & 0x8:
                        if self._receive_control(opcode, frame.payload):
                            # §5.5.1: nothing after a CLOSE is data.
                            return messages
                        continue
                    if opcode:
                        message = assembler.start(opcode, frame.payload, frame.fin)
                    else:
                        message = assembler.continue_(frame.payload, frame.fin)
                    if message is not None:
                        messages.append(message)
            except ProtocolError as exc:
                self._fail(exc)
                return messages
        if parser.error is not None:
            self._fail(parser.error)
        elif parser.buffered and self._inflater is None:
            # §8.1: invalid UTF-8 fails the connection. Check the part of a text
            # frame that has arrived, so a bad byte fails now, not at the end of
            # a frame the peer may take its time to finish. With
            # permessage-deflate the bytes on the wire are compressed: text is
            # checked as it is inflated, frame by frame.
            assembler = self._assembler
            pending = parser.pending_text(assembler.checked, assembler.text_in_progress)
            if pending is not None:
                try:
                    assembler.check_ahead(*pending)
                except ProtocolError as exc:
                    self._fail(exc)
        return messages

    def _receive_deflate(self, frames: list[Frame], messages: list[tuple[bytes, WsFlag]]) -> bool:
        """``receive_data``'s frame loop with permessage-deflate; True to stop reading."""
        assembler = self._assembler
        inflater = self._inflater
        assert inflater is not None
        try:
            for frame in frames:
                opcode = frame.opcode
                if opcode & 0x8:
                    # RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message
                    # Compressed" bit of control frames and non-first fragments
                    # of a data message. An endpoint receiving such a frame MUST
                    # _Fail the WebSocket Connection_."
                    if frame.rsv1:
                        raise ProtocolError("compressed control frame", CloseCode.PROTOCOL_ERROR)
                    if self._receive_control(opcode, frame.payload):
                        return True
                    continue
                payload = frame.payload
                fin = frame.fin
                if opcode:
                    # §6.1: RSV1 on the first frame marks a compressed message.
                    # A new message in the middle of another is refused by
                    # start() before its payload is inflated.
                    if frame.rsv1 and not assembler.in_progress:
                        payload = inflater.decompress(payload, fin)
                        self._inflating = not fin
                    message = assembler.start(opcode, payload, fin)
                else:
                    if frame.rsv1:
                        raise ProtocolError(
                            "compressed bit set on a continuation frame", CloseCode.PROTOCOL_ERROR
                        )
                    if self._inflating:
                        payload = inflater.decompress(payload, fin)
                        self._inflating = not fin
                    message = assembler.continue_(payload, fin)
                if message is not None:
                    messages.append(message)
        except ProtocolError as exc:
            self._fail(exc)
            return True
        return False

    def receive_eof(self) -> None:
        """The peer closed TCP (or the transport was lost)."""
        self.eof_received = True
        self.state = State.CLOSED

    def events_received(self) -> list[Event]:
        """Control events since the last call: Ping, Pong, CloseReceived."""
        events = self._events
        if not events:
            return _NO_EVENTS
        self._events = []
        return events

    def _receive_control(self, opcode: int, payload: bytes) -> bool:
        """Handle a control frame; True when it was the peer's CLOSE."""
        if opcode == Opcode.PING:
            # §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
            # frame in response, unless it already received a Close frame."
            if self.close_sent is None:
                self._out.append(self._frame(Opcode.PONG, payload))
            self._events.append(Ping(payload))
            return False
        if opcode == Opcode.PONG:
            self._events.append(Pong(payload))
            return False
        code, reason = parse_close_payload(payload)
        if self._assembler.in_progress and self.debug:
            logger.debug("< CLOSE in the middle of a fragmented message")
        self.close_received = CloseReceived(code, reason)
        self._events.append(self.close_received)
        if self.close_sent is None:
            if self.autoclose:
                # §5.5.1: "the endpoint MUST send a Close frame in response
                # ... It SHOULD do so as soon as practical", usually echoing
                # the status code it received.
                self._send_close(None if code == CloseCode.NO_STATUS_RCVD else code, "")
            else:
                self.state = State.CLOSING
        else:
            self.state = State.CLOSED
        return True

    # Output

    def encode(self, payload: bytes | bytearray | memoryview, flags: WsFlag) -> bytes:
        """The frame for a data message (or one fragment of it, with CONT).

        ``flags`` holds TEXT or BINARY; with CONT the message goes on with the
        next call, as in libcurl's ``curl_ws_send``.
        """
        if self.state is not _OPEN:
            raise self._closed_error()
        if self._deflater is not None:
            return self._encode_deflate(payload, flags)
        # A plain int: every & on an IntFlag runs enum code (~0.3 µs each).
        bits = int(flags)
        sending = self._sending
        if sending is not None:
            opcode = _OP_CONT  # the next fragment of a message in progress
        elif bits & _TEXT_BIT:
            opcode = _OP_TEXT
        else:
            opcode = _OP_BINARY
        keys = self._mask_keys
        if bits & _CONT_BIT:
            if sending is None:
                self._sending = opcode
            return build_frame(opcode, payload, False, False, keys.next() if keys else None)
        self._sending = None
        return build_frame(opcode, payload, True, False, keys.next() if keys else None)

    def encode_message(self, opcode: int, payload: bytes | bytearray | memoryview) -> bytes:
        """The frame of a whole TEXT (1) or BINARY (2) message: the fast path."""
        if self.state is not _OPEN:
            raise self._closed_error()
        if self._sending is not None or self._deflater is not None:
            # A fragmented message is open (this payload is its last fragment),
            # or messages are compressed: the general path.
            return self.encode(payload, _TEXT if opcode == 1 else _BINARY)
        keys = self._mask_keys
        return build_frame(opcode, payload, True, False, keys.next() if keys else None)

    def _encode_deflate(self, payload: bytes | bytearray | memoryview, flags: WsFlag) -> bytes:
        """``encode`` when permessage-deflate is in use (RFC 7692 §6)."""
        deflater = self._deflater
        assert deflater is not None
        keys = self._mask_keys
        mask = keys.next() if keys else None
        fin = not flags & _CONT
        if self._sending is None:
            opcode = Opcode.TEXT if flags & _TEXT else Opcode.BINARY
            if fin:
                data = deflater.compress_message(payload)
                if data is None:
                    return build_frame(opcode, payload, True, False, mask)
                # RFC 7692 §6: RSV1 ("Per-Message Compressed") goes on the
                # first frame of a compressed message, and only there.
                return build_frame(opcode, data, True, True, mask)
            # Fragments are always compressed: min_size is for whole messages,
            # and a fragmented one's size is unknown until its end.
            self._sending = opcode
            data = deflater.compress_fragment(payload, False)
            return build_frame(opcode, data, False, True, mask)
        if fin:
            self._sending = None
        data = deflater.compress_fragment(payload, fin)
        return build_frame(Opcode.CONT, data, fin, False, mask)

    def enable_deflate(self, extension: PerMessageDeflate) -> None:
        """Use permessage-deflate as agreed in the handshake (RFC 7692).

        Call it before any frame is received or sent.
        """
        client = self.side is Side.CLIENT
        offer = extension.offer
        local_bits, remote_bits = extension.client_max_window_bits, extension.server_max_window_bits
        local_reset = extension.client_no_context_takeover
        remote_reset = extension.server_no_context_takeover
        if not client:
            local_bits, remote_bits = remote_bits, local_bits
            local_reset, remote_reset = remote_reset, local_reset
        self.deflate = extension
        self._deflater = Deflater(
            local_bits,
            no_context_takeover=local_reset,
            level=offer.level,
            mem_level=offer.mem_level,
            min_size=offer.min_size,
        )
        self._inflater = Inflater(
            remote_bits, no_context_takeover=remote_reset, max_size=self.max_message_size
        )
        # RFC 6455 §5.2: RSV1 now has a meaning. max_message_size bounds the
        # decompressed message; a frame may be a little larger compressed.
        self._parser.rsv1_allowed = True
        self._parser.max_size = compressed_size_limit(self.max_message_size)

    def ping(self, payload: bytes = b"") -> bytes:
        """A PING frame (§5.5.2) for the caller to write."""
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"ping payload is {len(payload)} bytes; at most 125 allowed")
        if self.state is not _OPEN:
            raise self._closed_error()
        return self._frame(Opcode.PING, payload)

    def pong(self, payload: bytes = b"") -> bytes:
        """An unsolicited PONG frame (§5.5.3: a unidirectional heartbeat)."""
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"pong payload is {len(payload)} bytes; at most 125 allowed")
        if self.state is not _OPEN:
            raise self._closed_error()
        return self._frame(Opcode.PONG, payload)

    def close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake, or answer the peer's CLOSE.

        Does nothing when a CLOSE was already sent. The frame lands in
        ``data_to_send()``.
        """
        if self.close_sent is not None or self.state is State.CLOSED:
            return
        self._send_close(code, reason)

    def data_to_send(self) -> list[bytes]:
        """Bytes to write now, in order (PONGs and CLOSE frames)."""
        out = self._out
        if out:
            self._out = []
        return out

    def close_expected(self) -> bool:
        """Whether TCP should close now: both CLOSEs exchanged, or a failure."""
        return self.failure is not None or (
            self.close_sent is not None and self.close_received is not None
        )

    # Results

    @property
    def close_code(self) -> int | None:
        """The code the connection closed with: the peer's, ours, or 1006."""
        if self.close_received is not None:
            return self.close_received.code
        if self.failure is not None:
            return self.failure.close_code
        if self.close_sent is not None and self.state is State.CLOSED:
            return CloseCode.ABNORMAL_CLOSURE
        if self.eof_received:
            return CloseCode.ABNORMAL_CLOSURE
        return None

    @property
    def close_reason(self) -> str:
        if self.close_received is not None:
            return self.close_received.reason
        if self.failure is not None:
            return self.failure.reason
        return ""

    def _closed_error(self) -> WebSocketClosed:
        code = self.close_code
        if code is None and self.close_sent is not None:
            code = self.close_sent[0] or CloseCode.NO_STATUS_RCVD
        exc = WebSocketClosed(code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)
        if self.failure is not None:
            exc.__cause__ = self.failure
        return exc

    # Private

    def _frame(
        self, opcode: int, payload: bytes | bytearray | memoryview, *, fin: bool = True
    ) -> bytes:
        keys = self._mask_keys
        return build_frame(opcode, payload, fin, False, keys.next() if keys else None)

    def _send_close(self, code: int | None, reason: str) -> None:
        payload = build_close_payload(code, reason)  # raises ValueError before any change
        self._out.append(self._frame(Opcode.CLOSE, payload))
        self.close_sent = (code, reason)
        self.state = State.CLOSED if self.close_received is not None else State.CLOSING

    def _fail(self, exc: ProtocolError) -> None:
        """Fail the WebSocket connection (§7.1.7) with the error's close code."""
        if self.debug:
            logger.debug("! failing connection: %s (%d)", exc.reason, exc.close_code)
        self.failure = exc
        if self.close_sent is None:
            # The reason is for logs and the exception; the frame carries a
            # fixed one so nothing about our internals reaches the peer.
            self._send_close(exc.close_code, "")
        self.state = State.CLOSED
