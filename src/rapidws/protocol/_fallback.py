"""Pure-Python hot functions: the specification of ``_speedups.c``.

Every function here has a C twin with the same signature and behaviour; the
test suite runs against both (``impl`` fixture, ids ``py`` and ``c``). The
arguments are positional-only because the C reads them that way (no keyword
parsing on the hot path). Nothing here raises ``ProtocolError``: a frame that
breaks a rule is reported by position, and ``parser.py`` builds the error, so
its wording lives in one place.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["PayloadBuffer", "apply_mask", "build_frame", "parse_frames"]

BytesLike = bytes | bytearray | memoryview

# Below this size, XOR through Python integers wins (one big-int operation,
# ~1 µs at 64 B); above it, four translate tables over strided slices win
# (~1.2 GB/s against ~0.45 GB/s at 1 MiB, in 64 KiB pieces, on the machine
# of the benchmarks).
_INT_XOR_MAX = 2048

# _TABLES[k][b] == b ^ k: bytes.translate() applies an XOR with one key byte
# to a whole strided slice in C.
_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]

# Large payloads are masked in pieces of this size (a multiple of 4, so every
# piece starts at key byte 0): the strided slices of one piece stay in the CPU
# cache, which makes masking 1 MiB about twice as fast as one pass over it.
_MASK_PIECE = 64 * 1024

# RFC 6455 §5.2: opcodes 0-2 and 8-10 are defined; bit n is set for opcode n.
_KNOWN_OPCODES = 0b0000_0111_0000_0111


def apply_mask(data: BytesLike, mask: BytesLike, /) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (RFC 6455 §5.3).

    Masking and unmasking are the same operation.
    """
    mask = _mask_key(mask)
    if type(data) is not bytes:
        data = _byte_view(data)
    n = len(data)
    if n <= _INT_XOR_MAX:
        data_int = int.from_bytes(data, "little")
        # Repeat the key to cover n bytes; the extra high bytes are cut off by
        # to_bytes(n) since the XOR cannot set bits above the data's length.
        mask_int = int.from_bytes(mask * ((n + 3) >> 2), "little")
        return (data_int ^ mask_int).to_bytes((n + 3) & ~3, "little")[:n]
    return b"".join(_masked_pieces(data, mask))


def _masked_pieces(data: bytes | memoryview, mask: bytes) -> list[bytearray]:
    """``data`` XORed with the key, as masked copies of its ``_MASK_PIECE``-byte
    pieces: one translate per key byte and piece, each over a strided slice
    (all four run in C)."""
    view = memoryview(data)
    tables = [_TABLES[k] for k in mask]
    pieces = []
    for start in range(0, len(view), _MASK_PIECE):
        piece = bytearray(view[start : start + _MASK_PIECE])
        for i in range(4):
            piece[i::4] = piece[i::4].translate(tables[i])
        pieces.append(piece)
    return pieces


def _byte_view(obj: BytesLike) -> memoryview:
    """The bytes of ``obj`` as the C reads them (a ``PyBUF_SIMPLE`` buffer):
    TypeError without the buffer protocol, BufferError when not contiguous,
    and a view of another item size counted in bytes."""
    view = memoryview(obj)
    if not view.c_contiguous:
        raise BufferError("buffer is not C-contiguous")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _mask_key(mask: BytesLike) -> bytes:
    """The 4-byte key as bytes: TypeError without the buffer protocol, else
    ValueError for a wrong length (the checks of the C, in its order)."""
    if type(mask) is not bytes:
        mask = bytes(_byte_view(mask))
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    return mask


def build_frame(
    opcode: int, payload: BytesLike, fin: bool, rsv1: bool, mask: BytesLike | None, /
) -> bytes:
    """One whole frame (RFC 6455 §5.2): header, mask key, (masked) payload.

    ``mask`` is the 4-byte key of the client role, or ``None`` for an
    unmasked frame. The C builds it in one buffer, masking straight into it.
    """
    if not 0 <= operator.index(opcode) <= 0xF:
        raise ValueError(f"opcode must be in range(16), got {opcode}")
    head = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    if type(payload) is not bytes:
        payload = _byte_view(payload)
    if mask is not None:
        mask = _mask_key(mask)
    length = len(payload)
    mask_bit = 0 if mask is None else 0x80
    if length < 126:
        header = bytes((head, mask_bit | length))
    elif length < 65536:
        header = bytes((head, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((head, mask_bit | 127)) + length.to_bytes(8, "big")
    if mask is None:
        return header + payload
    if length <= _INT_XOR_MAX:
        return header + mask + apply_mask(payload, mask)
    # Large: the masked pieces joined behind the header in one copy.
    return b"".join([header, mask, *_masked_pieces(payload, mask)])


def parse_frames(
    buf: BytesLike,
    frames: list[Any],
    make_frame: Callable[[int, bytes, bool, bool], Any],
    expect_masked: bool,
    rsv1_allowed: bool,
    max_size: int | None,
    /,
) -> int:
    """Append every complete frame at the start of ``buf`` to ``frames``.

    Each frame is ``make_frame(opcode, payload, fin, rsv1)`` with the payload
    unmasked (RSV2 and RSV3 are never set in a frame that passes). Returns the
    position after the last complete frame, or ``~pos`` (a negative number)
    when the header at ``pos`` breaks a rule of RFC 6455 §5.1-§5.5: then the
    frames before it were appended and the caller builds the error. A header
    is checked as soon as every byte of it but the mask key is in, so a frame
    that can never be accepted fails without waiting for its payload.
    """
    expect_masked = bool(expect_masked)
    rsv1_allowed = bool(rsv1_allowed)
    if max_size is not None and operator.index(max_size) < 0:
        raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
    if type(buf) is not bytes and type(buf) is not bytearray:
        buf = _byte_view(buf)
    # Names the loop touches per frame, bound once.
    end = len(buf)
    append = frames.append
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
        masked = b1 & 0x80
        if (
            # §5.2: RSV1-3 are 0 unless an extension gives them a meaning.
            (b0 & 0x70 and (b0 & 0x30 or not rsv1_allowed))
            # §5.2: an unknown opcode fails the connection.
            or not _KNOWN_OPCODES >> opcode & 1
            # §5.5: control frames are never fragmented, and carry <= 125 bytes.
            or (opcode & 0x8 and (not b0 & 0x80 or length > 125))
            # §5.1: a server needs masked frames, a client unmasked ones.
            or bool(masked) is not expect_masked
            # §5.2: the most significant bit of the 64-bit length is 0.
            or length >> 63
            or (max_size is not None and length > max_size)
        ):
            return ~pos
        if masked:
            stop = start + 4 + length
            if stop > end:
                break
            payload = apply_mask(buf[start + 4 : stop], buf[start : start + 4])
        else:
            stop = start + length
            if stop > end:
                break
            payload = bytes(buf[start:stop])
        append(make_frame(opcode, payload, bool(b0 & 0x80), bool(b0 & 0x40)))
        pos = stop
    return pos


def parse_messages(
    buf: BytesLike,
    messages: list[Any],
    expect_masked: bool,
    max_size: int | None,
    text: Any,
    binary: Any,
    /,
) -> int:
    """Append ``(payload, text or binary)`` for each whole message at the start of
    ``buf``: the fast path for the common case of unfragmented data frames.

    Takes frames while each one is complete, passes every check of
    ``parse_frames`` (with RSV1 not allowed), has FIN set, is TEXT or BINARY,
    and (TEXT) is valid UTF-8; stops before the first that is not and returns
    its position. The caller hands the rest to the full parser, which deals
    with what stopped this one (control frames, fragments, errors).
    """
    frames: list[tuple[int, bytes, bool, bool]] = []
    parse_frames(buf, frames, _frame_fields, expect_masked, False, max_size)
    view = _byte_view(buf)
    pos = 0
    for opcode, payload, fin, _ in frames:
        if not fin or not 1 <= opcode <= 2:
            break
        if opcode == 1:
            try:
                payload.decode()  # §8.1: a TEXT message is UTF-8
            except UnicodeDecodeError:
                break
        messages.append((payload, text if opcode == 1 else binary))
        b1 = view[pos + 1]
        code = b1 & 0x7F
        pos += 2 + (2 if code == 126 else 8 if code == 127 else 0) + (4 if b1 & 0x80 else 0)
        pos += len(payload)
    return pos


def _frame_fields(
    opcode: int, payload: bytes, fin: bool, rsv1: bool
) -> tuple[int, bytes, bool, bool]:
    return opcode, payload, fin, rsv1


class PayloadBuffer:
    """The payload of one large frame, written in place as it arrives.

    ``PayloadBuffer(size)`` holds ``size`` bytes; ``view()`` is a writable
    memoryview of all of them, for ``recv_into`` (the parser reads the network
    straight into it) or slice assignment. ``take(nbytes, mask)`` returns the
    first ``nbytes`` as ``bytes``, unmasked with the 4-byte ``mask`` unless it
    is None, and empties the buffer: ``len()`` is 0 after it and ``view`` and
    ``take`` raise.

    Here ``take`` copies. The C twin starts with an uninitialised ``bytes``
    object and, when every byte was written (``nbytes == len(self)``) and no
    view is still held, returns that very object, unmasked in place: the
    payload is never copied after the kernel wrote it. A view still held at
    ``take`` gets a copy instead, so nothing can change the ``bytes`` once it
    is out. Bytes past ``nbytes`` are never returned.
    """

    __slots__ = ("_buf",)

    def __init__(self, size: int, /) -> None:
        if operator.index(size) < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self._buf: bytearray | None = bytearray(size)

    def __len__(self) -> int:
        return 0 if self._buf is None else len(self._buf)

    def view(self) -> memoryview:
        """A writable view of the whole buffer; release it when done."""
        if self._buf is None:
            raise BufferError("the payload was taken")
        return memoryview(self._buf)

    def take(self, nbytes: int, mask: BytesLike | None, /) -> bytes:
        """The first ``nbytes`` (unmasked with ``mask`` unless None); empties the buffer."""
        buf = self._buf
        if buf is None:
            raise BufferError("the payload was taken")
        if not 0 <= operator.index(nbytes) <= len(buf):
            raise ValueError(f"nbytes must be in 0..{len(buf)}, got {nbytes}")
        if mask is not None:
            mask = _mask_key(mask)
        self._buf = None
        data = buf if nbytes == len(buf) else memoryview(buf)[:nbytes]
        # Unmasked into a copy, as the C does while a view is held: the
        # storage itself never changes.
        return bytes(data) if mask is None else apply_mask(data, mask)
