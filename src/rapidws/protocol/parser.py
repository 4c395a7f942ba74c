"""Incremental frame parser (RFC 6455 §5.2).

Theory of operation: bytes are fed as they arrive, in chunks of any size. The
parser keeps one ``bytearray`` of not-yet-parsed bytes and parses every frame
that is complete in one call of ``parse_frames`` (``_speedups.c``, or its
specification in ``_fallback.py``), so a read that carries a hundred small
frames costs one call. When nothing is buffered (the common case for small
messages), the chunk itself is parsed without being copied first. After the
call the consumed prefix is dropped once (``del buf[:pos]``, O(1) in CPython
for a prefix), so total work is O(bytes received).

A frame of ``LARGE_FRAME`` bytes or more gets a buffer of its own
(``PayloadBuffer``) once its header is in, and ``read_buffer`` hands out the
unfilled part of it, so the kernel writes the payload where it stays instead
of into the shared buffer, then the stash, then a ``bytes``. The C
``PayloadBuffer`` then becomes the payload without a copy; the pure-Python one
copies once. The buffer is never allocated further ahead of the bytes
received than ``_ALLOC_AHEAD`` (or twice what came): a header announcing a
huge frame costs nothing until the peer sends it.

Header checks that can be made before the payload arrives (reserved bits and
opcodes, control frame rules, masking, the size limit) are made then: a frame
announcing 2**63 bytes fails at once, without waiting or allocating.
``parse_frames`` only says where a header broke a rule; ``_header_error``
reads that header again and names the rule, so the wording of every error
lives here, once.
"""

from __future__ import annotations

import contextlib
import threading

from ..errors import ProtocolError
from ._accel import PayloadBuffer, apply_mask, parse_frames
from .frames import MAX_CONTROL_PAYLOAD, CloseCode, Frame

__all__ = ["FrameParser"]

_PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR
_MESSAGE_TOO_BIG = CloseCode.MESSAGE_TOO_BIG
_KNOWN_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})

# A frame with a payload of at least this many bytes is received into a
# buffer of its own (PayloadBuffer) instead of the stash.
LARGE_FRAME = 64 * 1024
# The network is read straight into that buffer while at least this much of
# the payload is missing; a shorter tail comes through the shared buffer,
# together with what follows it, in one read.
DIRECT_READ_MIN = 16 * 1024
# How far ahead of the bytes received a frame's buffer may be allocated: the
# announced length is the peer's word (up to max_size, or 2**63 - 1 without a
# limit). Past this, the buffer doubles as bytes come, so it never exceeds
# max(_ALLOC_AHEAD, twice the payload received).
_ALLOC_AHEAD = 1024 * 1024


class FrameParser:
    """Turns a byte stream into :class:`Frame` objects.

    ``expect_masked`` is the role's rule (RFC 6455 §5.1): a server requires
    masked frames, a client refuses them. ``rsv1_allowed`` is set when an
    extension (permessage-deflate) gives RSV1 a meaning. ``max_size`` bounds one
    frame's payload; ``None`` means no limit.
    """

    __slots__ = (
        "_buf",
        "expect_masked",
        "rsv1_allowed",
        "max_size",
        "error",
        "_large",
        "_large_b0",
        "_large_key",
        "_large_header",
        "_large_length",
        "_large_filled",
        "_view",
    )

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
        # The large frame being received, when there is one: its payload
        # buffer, first header byte (opcode, FIN, RSV1), mask key, header
        # size, announced payload length and the payload bytes in so far.
        self._large: PayloadBuffer | None = None
        self._large_b0 = 0
        self._large_key: bytes | None = None
        self._large_header = 0
        self._large_length = 0
        self._large_filled = 0
        # What read_buffer() handed out into the large frame's buffer.
        self._view: memoryview | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed into a frame."""
        if self._large is not None:
            return self._large_header + self._large_filled
        return len(self._buf)

    # Reading into a buffer (asyncio.BufferedProtocol): no bytes object per read.

    def read_buffer(self) -> memoryview:
        """Where the next read from the network should land; then call ``read_done``.

        While a large frame is arriving, the unfilled part of its own buffer
        (``LARGE_FRAME``). Otherwise one buffer shared by every parser of the
        thread: ``read_done`` parses it at once and copies out what it keeps,
        so it is free again for the next read, whichever connection it is for.
        """
        view = self._view
        if view is not None:
            return view  # handed out before, and not read into yet
        large = self._large
        if large is not None and self._large_length - self._large_filled >= DIRECT_READ_MIN:
            filled = self._large_filled
            if filled == len(large):
                large = self._grow(filled)
            with large.view() as whole:
                view = self._view = whole[filled:]
            return view
        return _shared_buffer()

    def idle_view(self, nbytes: int) -> memoryview | None:
        """The ``nbytes`` a read put in the shared buffer, when no frame is
        pending (nothing stashed, no large frame, no error): the caller may
        take whole messages from its start itself, then ``feed`` the rest.
        None otherwise: call ``read_done``."""
        if self._view is not None or self._large is not None or self._buf or self.error:
            return None
        return _shared_buffer()[:nbytes]

    def read_done(self, nbytes: int) -> list[Frame]:
        """Parse the ``nbytes`` that a read put at the start of ``read_buffer()``."""
        view = self._view
        if view is None:
            return self.feed(_shared_buffer()[:nbytes])
        self._view = None
        # Released, the view can write no more, and the C PayloadBuffer can
        # become the payload itself. A transport that still holds it makes
        # that fail: then take() copies.
        with contextlib.suppress(BufferError):
            view.release()
        frames: list[Frame] = []
        self._large_filled += nbytes
        if self._large_filled == self._large_length:
            self._finish(frames)
        return frames

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Parse ``data``; return every frame completed by it, in order.

        ``data`` may be a view of a buffer the caller reuses: nothing refers
        to it after the call (payloads and leftovers are copied).

        On a protocol violation the frames before it are returned, ``error`` is
        set and every later call returns nothing.
        """
        if self.error is not None:
            return []
        if self._view is not None:
            # A read into the large frame's buffer that never happened: these
            # bytes come first.
            with contextlib.suppress(BufferError):
                self._view.release()
            self._view = None
        frames: list[Frame] = []
        if self._large is not None or self._buf:
            # A frame begun in an earlier chunk: give it only the bytes it
            # lacks, so the rest of this chunk is parsed where it lies instead
            # of being copied behind the stash first.
            view = _byte_view(data)
            used = self._resume(view, frames)
            if self.error is not None or self._large is not None or self._buf:
                return frames  # still incomplete (kept), or failed
            if used == len(view):
                return frames
            data = view[used:]
        pos = self._parse(data, frames)
        if 0 <= pos < len(data):
            # Keep the start of an incomplete frame; never the caller's buffer.
            rest = _byte_view(data)[pos:]
            if not self._start_large(rest):
                self._buf = bytearray(rest)
        return frames

    def _resume(self, view: memoryview, frames: list[Frame]) -> int:
        """Complete the frame begun earlier from the start of ``view``; the bytes used.

        Appends the frame to ``frames`` when it completes. Leaves it in the
        stash or its own buffer when ``view`` runs out first.
        """
        used = 0
        stash = self._buf
        while self._large is None:
            lacking = _lacking(stash)
            piece = view[used : used + lacking]
            stash += piece
            used += len(piece)
            pos = self._parse(stash, frames)
            if pos != 0:
                if pos > 0:
                    stash.clear()
                return used  # a frame, or an error
            # Incomplete: a large frame whose header is in moves to a buffer of
            # its own, with the rest of this chunk.
            if self._start_large(stash):
                stash.clear()
            elif len(piece) < lacking:
                return used  # the chunk ran out
        return used + self._fill(view[used:], frames)

    def _start_large(self, buf: bytearray | memoryview) -> bool:
        """Move the incomplete frame at the start of ``buf`` to a buffer of its own.

        Only a frame whose header (with the mask key) is in and passed the
        checks of ``parse_frames``, and whose payload is at least
        ``LARGE_FRAME`` bytes. False, changing nothing, for any other.
        """
        n = len(buf)
        if n < 2:
            return False
        b1 = buf[1]
        length = b1 & 0x7F
        if length < 126:
            return False  # LARGE_FRAME needs a longer length field
        size = 4 if length == 126 else 10
        header = size + 4 if b1 & 0x80 else size
        if n < header:
            return False
        length = int.from_bytes(buf[2:size], "big")
        if length < LARGE_FRAME:
            return False
        with memoryview(buf) as whole, whole[header:] as payload:
            got = len(payload)  # < length: the frame is incomplete
            large = PayloadBuffer(min(length, max(_ALLOC_AHEAD, 2 * got)))
            if got:
                with large.view() as dest:
                    dest[:got] = payload
        self._large = large
        self._large_b0 = buf[0]
        self._large_key = bytes(buf[size:header]) if b1 & 0x80 else None
        self._large_header = header
        self._large_length = length
        self._large_filled = got
        return True

    def _fill(self, data: memoryview, frames: list[Frame]) -> int:
        """Copy the start of ``data`` into the large frame's buffer; the bytes used.

        Appends the frame to ``frames`` when that completes it.
        """
        large = self._large
        assert large is not None
        filled = self._large_filled
        want = min(len(data), self._large_length - filled)
        used = 0
        while used < want:
            if filled == len(large):
                large = self._grow(filled)
            step = min(want - used, len(large) - filled)
            with large.view() as dest:
                dest[filled : filled + step] = data[used : used + step]
            filled += step
            used += step
        self._large_filled = filled
        if filled == self._large_length:
            self._finish(frames)
        return used

    def _grow(self, filled: int) -> PayloadBuffer:
        """A larger buffer for the large frame, whose ``filled`` bytes fill the
        current one: twice as large, at most the frame."""
        old = self._large
        assert old is not None
        large = PayloadBuffer(min(self._large_length, 2 * filled))
        with old.view() as src, large.view() as dest:
            dest[:filled] = src
        self._large = large
        return large

    def _finish(self, frames: list[Frame]) -> None:
        """The large frame is complete: append it to ``frames``."""
        large = self._large
        assert large is not None
        b0 = self._large_b0
        payload = large.take(self._large_filled, self._large_key)
        frames.append(Frame(b0 & 0x0F, payload, bool(b0 & 0x80), bool(b0 & 0x40)))
        self._large = None
        self._large_key = None

    def pending_text(self, skip: int, cont_is_text: bool) -> tuple[int, bytes | bytearray] | None:
        """Opcode and payload bytes past ``skip`` of a text frame still arriving.

        After :meth:`feed`, the buffer holds at most one incomplete frame. When
        its header is in, it is TEXT (or CONT and ``cont_is_text``), and more
        than ``skip`` payload bytes have come, return them so that the caller
        can validate UTF-8 before the frame ends (RFC 6455 §8.1; Autobahn 6.4.3
        and 6.4.4 "fail fast"). Otherwise None. Only new bytes are copied.
        """
        large = self._large
        if large is not None:
            return self._pending_large_text(large, skip, cont_is_text)
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

    def _pending_large_text(
        self, large: PayloadBuffer, skip: int, cont_is_text: bool
    ) -> tuple[int, bytes] | None:
        """``pending_text`` for the large frame being received."""
        opcode = self._large_b0 & 0x0F
        if opcode != 1 and (opcode != 0 or not cont_is_text):
            return None
        filled = self._large_filled
        if filled <= skip:
            return None
        key = self._large_key
        with large.view() as whole, whole[skip:filled] as new:
            if key is None:
                return opcode, bytes(new)
            turn = skip % 4
            return opcode, apply_mask(new, key[turn:] + key[:turn])

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


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """``data`` as a flat view of bytes, whatever its format."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _lacking(buf: bytearray) -> int:
    """How many bytes the frame at the start of ``buf`` still needs (> 0).

    While its header is incomplete, the bytes that complete the header up to
    the mask key (so the header can be checked at once); for a large frame,
    then those up to the end of the key (so it can move to its own buffer);
    then those that complete the whole frame.
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
    header = size + 4 if b1 & 0x80 else size
    if length >= LARGE_FRAME and n < header:
        return header - n
    return header + length - n
