"""Frames and close codes: the vocabulary of RFC 6455 §5 and §7.4."""

from __future__ import annotations

import contextlib
import enum
import os
import threading
from dataclasses import dataclass

from ..errors import ProtocolError
from ._accel import build_frame as _build_frame

__all__ = [
    "Opcode",
    "CloseCode",
    "Frame",
    "DATA_OPCODES",
    "CTRL_OPCODES",
    "MAX_CONTROL_PAYLOAD",
    "is_valid_close_code",
    "build_close_payload",
    "parse_close_payload",
    "build_frame",
    "MaskKeys",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 §5.2); 3-7 and 11-15 are reserved."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


CONT = Opcode.CONT
TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CLOSE = Opcode.CLOSE
PING = Opcode.PING
PONG = Opcode.PONG

DATA_OPCODES = frozenset({CONT, TEXT, BINARY})
CTRL_OPCODES = frozenset({CLOSE, PING, PONG})

# RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD = 125


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# Codes an endpoint may put in a close frame. 1005, 1006 and 1015 are "designated
# for use in applications expecting a status code to indicate" what happened and
# "MUST NOT be set as a status code in a Close control frame" (§7.4.1); 1004 is
# reserved; 1016-2999 are reserved for future revisions of the protocol or its
# extensions (§7.4.2). 3000-3999 are registered with IANA, 4000-4999 are private.
_SENDABLE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame on the wire (RFC 6455 §7.4)."""
    return code in _SENDABLE_CODES or 3000 <= code <= 4999


def build_close_payload(code: int | None, reason: str | bytes = b"") -> bytes:
    """The payload of a close frame: a 2-byte code then a UTF-8 reason (§5.5.1).

    ``code=None`` gives the empty payload (no status code at all).
    """
    reason_bytes = reason.encode() if isinstance(reason, str) else bytes(reason)
    if code is None:
        if reason_bytes:
            raise ValueError("a close reason requires a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code}: use 1000-1003, 1007-1014 or 3000-4999")
    if len(reason_bytes) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError(
            f"close reason is {len(reason_bytes)} bytes; at most "
            f"{MAX_CONTROL_PAYLOAD - 2} fit in a control frame"
        )
    try:
        reason_bytes.decode()
    except UnicodeDecodeError:
        raise ValueError("close reason must be valid UTF-8") from None
    return code.to_bytes(2, "big") + reason_bytes


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Code and reason of a received close frame.

    An empty payload means "no status code": 1005 (§7.1.5). Raises
    ``ProtocolError`` for a 1-byte payload or a code that may not be sent (1002),
    or a reason that is not UTF-8 (1007).
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        # RFC 6455 §5.5.1: the body, if any, MUST start with a 2-byte status code.
        raise ProtocolError("close frame with a 1-byte payload", CloseCode.PROTOCOL_ERROR)
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}", CloseCode.PROTOCOL_ERROR)
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not valid UTF-8", CloseCode.INVALID_DATA) from None
    return code, reason


@dataclass(slots=True)
class Frame:
    """One frame as parsed from the wire, payload already unmasked."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __str__(self) -> str:
        try:
            kind = Opcode(self.opcode).name
        except ValueError:
            kind = f"opcode {self.opcode}"
        more = "" if self.fin else " [continued]"
        return f"{kind} {len(self.payload)} bytes{more}"


_thread_local = threading.local()


class MaskKeys:
    """Masking keys drawn from the OS's CSPRNG, 1024 at a time.

    RFC 6455 §5.3: the key "MUST be derived from a strong source of entropy". One
    ``os.urandom`` call per frame costs a system call; reading 4 KiB at once and
    handing out 4-byte slices keeps the entropy and drops that cost.

    Connections share their thread's pool (``for_thread``): a pool per
    connection would cost every one of thousands of idle connections 4 KiB
    and a 4 KiB ``os.urandom`` on its first frame. Every key is still used
    once and unpredictable to the peer, which is all §5.3 asks.
    """

    __slots__ = ("_pool", "_pos")

    _POOL_SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    @classmethod
    def for_thread(cls) -> MaskKeys:
        """The pool shared by the connections of the calling thread."""
        try:
            keys: MaskKeys = _thread_local.mask_keys
        except AttributeError:
            keys = _thread_local.mask_keys = cls()
        return keys

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(self._POOL_SIZE)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


def _new_pool_after_fork() -> None:
    # A child process must not draw the keys its parent draws next.
    with contextlib.suppress(AttributeError):
        del _thread_local.mask_keys


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pool_after_fork)


def build_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Serialize one frame (RFC 6455 §5.2).

    With ``mask`` (4 bytes; the client role), the payload is masked and the key
    placed in the header; without it the frame goes out unmasked (server role).
    Hot paths call ``_accel.build_frame`` with positional arguments directly.
    """
    return _build_frame(opcode, payload, fin, rsv1, mask)
