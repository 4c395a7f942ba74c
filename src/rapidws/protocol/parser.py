"""Incremental frame parser (RFC 6455 §5.2).

Theory of operation: bytes are fed as they arrive, in chunks of any size. The
parser keeps one ``bytearray`` of not-yet-parsed bytes and parses every frame
that is complete in one call of ``parse_frames`` (``_speedups.c``, or its
specification in ``_fallback.py``), so a read that carries a hundred small
frames costs one call. When nothing is buffered (the common case for small
messages), the chunk itself is parsed without being copied first. After the
call the consumed prefix is dropped once (``del buf[:pos]``, O(1) in CPython
for a prefix), so total work is O(bytes received).

Header checks that can be made before the payload arrives (reserved bits and
opcodes, control frame rules, masking, the size limit) are made then: a frame
announcing 2**63 bytes fails at once, without waiting or allocating.
``parse_frames`` only says where a header broke a rule; ``_header_error``
reads that header again and names the rule, so the wording of every error
lives here, once.
"""

from __future__ import annotations

import threading

from ..errors import ProtocolError
from ._accel import apply_mask, parse_frames
from .frames import MAX_CONTROL_PAYLOAD, CloseCode, Frame

__all__ = ["FrameParser"]

_PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR
_MESSAGE_TOO_BIG = CloseCode.MESSAGE_TOO_BIG
_KNOWN_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})


class FrameParser:
    """Turns a byte stream into :class:`Frame` objects.

    ``expect_masked`` is the role's rule (RFC 6455 §5.1): a server requires
    masked frames, a client refuses them. ``rsv1_allowed`` is set when an
    extension (permessage-deflate) gives RSV1 a meaning. ``max_size`` bounds one
    frame's payload; ``None`` means no limit.
    """

    __slots__ = ("_buf", "expect_masked", "rsv1_allowed", "max_size", "error")

    def __init__(
        self,
        *,
        expect_masked: bool,
        max_size: int | None = None,
        rsv1_allowed: bool = False,
    ) -> None:
        self._buf = bytearray()
        self.expect_masked = expect_masked
        self.rsv1_allowed = rsv1_allowed
        self.max_size = max_size
        #: The violation that stopped parsing; frames before it were returned.
        self.error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed into a frame."""
        return len(self._buf)

    # Reading into a buffer (asyncio.BufferedProtocol): no bytes object per read.

    def read_buffer(self) -> memoryview:
        """Where the next read from the network should land; then call ``read_done``.

        One buffer shared by every parser of the thread: ``read_done`` parses
        it at once and copies out what it keeps, so it is free again for the
        next read, whichever connection it is for.
        """
        return _shared_buffer()

    def read_done(self, nbytes: int) -> list[Frame]:
        """Parse the ``nbytes`` that a read put at the start of ``read_buffer()``."""
        return self.feed(_shared_buffer()[:nbytes])

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Parse ``data``; return every frame completed by it, in order.

        ``data`` may be a view of a buffer the caller reuses: nothing refers
        to it after the call (payloads and leftovers are copied).

        On a protocol violation the frames before it are returned, ``error`` is
        set and every later call returns nothing.
        """
        if self.error is not None:
            return []
        frames: list[Frame] = []
        stash = self._buf
        if stash:
            # A frame begun in an earlier chunk: give it only the bytes it
            # lacks, so the rest of this chunk is parsed where it lies instead
            # of being copied behind the stash first.
            view = memoryview(data)
            used = 0
            while True:
                lacking = _lacking(stash)
                piece = view[used : used + lacking]
                stash += piece
                used += len(piece)
                pos = self._parse(stash, frames)
                if pos != 0 or len(piece) < lacking:
                    break  # a frame, an error, or the chunk ran out
            if pos <= 0 or self.error is not None:
                return frames  # still incomplete (kept), or failed
            stash.clear()
            if used == len(view):
                return frames
            data = view[used:]
        pos = self._parse(data, frames)
        if 0 <= pos < len(data):
            # Keep the start of an incomplete frame; never the caller's buffer.
            self._buf = bytearray(memoryview(data)[pos:])
        return frames

    def pending_text(self, skip: int, cont_is_text: bool) -> tuple[int, bytes | bytearray] | None:
        """Opcode and payload bytes past ``skip`` of a text frame still arriving.

        After :meth:`feed`, the buffer holds at most one incomplete frame. When
        its header is in, it is TEXT (or CONT and ``cont_is_text``), and more
        than ``skip`` payload bytes have come, return them so that the caller
        can validate UTF-8 before the frame ends (RFC 6455 §8.1; Autobahn 6.4.3
        and 6.4.4 "fail fast"). Otherwise None. Only new bytes are copied.
        """
        buf = self._buf
        if len(buf) < 2 or self.error is not None:
            return None
        opcode = buf[0] & 0x0F
        if opcode != 1 and (opcode != 0 or not cont_is_text):
            return None
        length = buf[1] & 0x7F
        start = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        if buf[1] & 0x80:  # masked (server role): unmask from the key's offset at skip
            start += 4
            if len(buf) <= start + skip:
                return None
            key = bytes(buf[start - 4 : start])
            turn = skip % 4
            return opcode, apply_mask(buf[start + skip :], key[turn:] + key[:turn])
        if len(buf) <= start + skip:
            return None
        return opcode, buf[start + skip :]  # one copy, of the new bytes only

    def _parse(self, buf: bytes | bytearray | memoryview, frames: list[Frame]) -> int:
        """Append the complete frames at the start of ``buf``; the position after them.

        On a broken rule, sets ``error``, drops the stash and returns a
        negative number.
        """
        pos = parse_frames(buf, frames, Frame, self.expect_masked, self.rsv1_allowed, self.max_size)
        if pos < 0:
            # parse_frames found a broken rule at ~pos; _header_error says which.
            self.error = self._header_error(buf, ~pos)
            self._buf = bytearray()
        return pos

    def _header_error(self, buf: bytes | bytearray | memoryview, pos: int) -> ProtocolError:
        """The ProtocolError for the header at ``pos``, which breaks a rule.

        Runs only after ``parse_frames`` has found a broken rule there, once
        per connection at most: it reads the header again to say which rule.
        """
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = b0 & 0x0F
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        elif length == 127:
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        # RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
        # defines meanings for non-zero values".
        if b0 & 0x70 and (b0 & 0x30 or not self.rsv1_allowed):
            return ProtocolError(
                "reserved bits set without a negotiated extension", _PROTOCOL_ERROR
            )
        # §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail_".
        if opcode not in _KNOWN_OPCODES:
            return ProtocolError(f"reserved opcode {opcode:#x}", _PROTOCOL_ERROR)
        if opcode & 0x8:
            # §5.5: "Control frames MUST NOT be fragmented" and "MUST have a
            # payload length of 125 bytes or less".
            if not b0 & 0x80:
                return ProtocolError("fragmented control frame", _PROTOCOL_ERROR)
            if length > MAX_CONTROL_PAYLOAD:
                return ProtocolError(f"control frame of {length} bytes", _PROTOCOL_ERROR)
        # §5.1: a server MUST close on an unmasked frame; "A client MUST close a
        # connection if it detects a masked frame."
        if bool(b1 & 0x80) is not bool(self.expect_masked):
            return ProtocolError(
                "masked frame from server" if b1 & 0x80 else "unmasked frame from client",
                _PROTOCOL_ERROR,
            )
        # §5.2: "the most significant bit MUST be 0" in the 64-bit length.
        if length >> 63:
            return ProtocolError("frame length with the most significant bit set", _PROTOCOL_ERROR)
        max_size = self.max_size
        if max_size is not None and length > max_size:
            return ProtocolError(
                f"frame of {length} bytes exceeds the limit of {max_size}", _MESSAGE_TOO_BIG
            )
        raise AssertionError(f"parse_frames rejected a valid header at {pos}")


# The shared read buffer: asyncio reads at most 256 KiB at once too.
READ_SIZE = 256 * 1024
_local = threading.local()


def _shared_buffer() -> memoryview:
    """This thread's read buffer, shared by all its parsers: each read is
    parsed before the next can land (one event loop per thread)."""
    try:
        view: memoryview = _local.view
    except AttributeError:
        view = _local.view = memoryview(bytearray(READ_SIZE))
    return view


def _lacking(buf: bytearray) -> int:
    """How many bytes the frame at the start of ``buf`` still needs (> 0).

    While its header is incomplete, the bytes that complete the header up to
    the mask key (so the header can be checked at once); then those that
    complete the whole frame.
    """
    n = len(buf)
    if n < 2:
        return 2 - n
    b1 = buf[1]
    length = b1 & 0x7F
    size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    if n < size:
        return size - n
    if length >= 126:
        length = int.from_bytes(buf[2:size], "big")
    return size + (4 if b1 & 0x80 else 0) + length - n
