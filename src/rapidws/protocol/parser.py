"""Incremental frame parser (RFC 6455 §5.2).

Theory of operation: bytes are fed as they arrive, in chunks of any size. The
parser keeps one ``bytearray`` of not-yet-parsed bytes and parses every frame
that is complete in one loop over a read position, so a read that carries a
hundred small frames costs one call. When nothing is buffered (the common case
for small messages), the chunk itself is parsed without being copied first.
After the loop the consumed prefix is dropped once (``del buf[:pos]``, O(1) in
CPython for a prefix), so total work is O(bytes received).

Header checks that can be made before the payload arrives (reserved bits and
opcodes, control frame rules, masking, the size limit) are made then: a frame
announcing 2**63 bytes fails at once, without waiting or allocating.
"""

from __future__ import annotations

from ..errors import ProtocolError
from ._accel import apply_mask
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

    def feed(self, data: bytes | memoryview) -> list[Frame]:
        """Parse ``data``; return every frame completed by it, in order.

        ``data`` may be a view of a buffer the caller reuses: nothing refers
        to it after the call (payloads and leftovers are copied).

        On a protocol violation the frames before it are returned, ``error`` is
        set and every later call returns nothing.
        """
        if self.error is not None:
            return []
        buf: bytes | bytearray | memoryview
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        frames: list[Frame] = []
        try:
            pos = self._parse(buf, frames)
        except ProtocolError as exc:
            self.error = exc
            self._buf = bytearray()
            return frames
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < len(buf):
            self._buf = bytearray(buf[pos:]) if pos else bytearray(buf)
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
        # Names the loop touches per frame, bound once.
        end = len(buf)
        append = frames.append
        max_size = self.max_size
        pos = 0
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if end - start < 2:
                    break
                length = (buf[start] << 8) | buf[start + 1]
                start += 2
            elif length == 127:
                if end - start < 8:
                    break
                length = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            # Every byte of the header but the mask key is here: check it now,
            # before waiting for a payload that may never be acceptable.
            self._check_header(b0, b1, opcode, length, max_size)
            if b1 & 0x80:
                stop = start + 4 + length
                if stop > end:
                    break
                payload = apply_mask(buf[start + 4 : stop], bytes(buf[start : start + 4]))
            else:
                stop = start + length
                if stop > end:
                    break
                payload = bytes(buf[start:stop])
            append(
                Frame(
                    opcode,
                    payload,
                    bool(b0 & 0x80),
                    bool(b0 & 0x40),
                    bool(b0 & 0x20),
                    bool(b0 & 0x10),
                )
            )
            pos = stop
        return pos

    def _check_header(
        self, b0: int, b1: int, opcode: int, length: int, max_size: int | None
    ) -> None:
        # RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
        # defines meanings for non-zero values".
        if b0 & 0x70 and (b0 & 0x30 or not self.rsv1_allowed):
            raise ProtocolError("reserved bits set without a negotiated extension", _PROTOCOL_ERROR)
        # §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail_".
        if opcode not in _KNOWN_OPCODES:
            raise ProtocolError(f"reserved opcode {opcode:#x}", _PROTOCOL_ERROR)
        if opcode & 0x8:
            # §5.5: "Control frames MUST NOT be fragmented" and "MUST have a
            # payload length of 125 bytes or less".
            if not b0 & 0x80:
                raise ProtocolError("fragmented control frame", _PROTOCOL_ERROR)
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(f"control frame of {length} bytes", _PROTOCOL_ERROR)
        # §5.1: a server MUST close on an unmasked frame; "A client MUST close a
        # connection if it detects a masked frame."
        if bool(b1 & 0x80) is not self.expect_masked:
            raise ProtocolError(
                "masked frame from server" if b1 & 0x80 else "unmasked frame from client",
                _PROTOCOL_ERROR,
            )
        # §5.2: "the most significant bit MUST be 0" in the 64-bit length.
        if length >> 63:
            raise ProtocolError("frame length with the most significant bit set", _PROTOCOL_ERROR)
        if max_size is not None and length > max_size:
            raise ProtocolError(
                f"frame of {length} bytes exceeds the limit of {max_size}", _MESSAGE_TOO_BIG
            )
