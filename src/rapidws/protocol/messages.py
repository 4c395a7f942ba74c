"""Message reassembly: data frames in, whole messages (or fragments) out.

RFC 6455 §5.4: a message is one frame with FIN set, or a TEXT/BINARY frame
without FIN followed by CONT frames, the last with FIN. Control frames may come
between the fragments; they never reach this module.

Text is validated as UTF-8 as it arrives (§8.1), fragment by fragment with an
incremental decoder, so invalid bytes fail the connection with 1007 as soon as
their fragment is in, and a code point split across fragments is accepted.
``check_ahead`` goes further: it validates the part of a text frame received
so far, and the frame's completion then validates only the rest.
"""

from __future__ import annotations

import codecs

from ..errors import ProtocolError
from ..flags import WsFlag
from .frames import CloseCode

__all__ = ["MessageAssembler"]

_TEXT = WsFlag.TEXT
_BINARY = WsFlag.BINARY
_CONT = WsFlag.CONT
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class MessageAssembler:
    """Collects the fragments of one message at a time.

    ``max_size`` bounds a whole message (``None``: no limit). With
    ``stream=True`` every fragment is handed out as it comes, flagged ``CONT``
    while more follow, so a huge message never has to be held whole.
    """

    __slots__ = ("max_size", "stream", "_flag", "_parts", "_size", "_decoder", "checked")

    def __init__(self, *, max_size: int | None = None, stream: bool = False) -> None:
        self.max_size = max_size
        self.stream = stream
        #: TEXT or BINARY while a fragmented message is in progress, else None.
        self._flag: WsFlag | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        #: Payload bytes of the frame still arriving that check_ahead validated.
        self.checked = 0

    @property
    def idle(self) -> bool:
        """No fragmented message in progress and no text checked ahead."""
        return self._flag is None and not self.checked

    @property
    def in_progress(self) -> bool:
        """Whether a fragmented message has started and not finished."""
        return self._flag is not None

    @property
    def text_in_progress(self) -> bool:
        """Whether a fragmented TEXT message has started and not finished."""
        return self._flag is _TEXT

    def check_ahead(self, opcode: int, data: bytes | bytearray) -> None:
        """Validate ``data``, the next bytes of a TEXT (1) or CONT (0) frame whose
        payload is still arriving, so invalid UTF-8 fails now (§8.1), not when
        the frame ends. ``start``/``continue_`` skip what was checked here.
        """
        if opcode == 1 and not self.checked:
            if self._flag is not None:
                return  # start() will fail the interleaved message with 1002
            self._decoder = _Utf8Decoder()
        elif self._decoder is None:
            return  # CONT of a binary message, or of none (continue_ fails it)
        self.checked += len(data)
        self._validate(data, False)

    def start(self, opcode: int, payload: bytes, fin: bool) -> tuple[bytes, WsFlag] | None:
        """A TEXT (1) or BINARY (2) frame: the first, or only, frame of a message."""
        if self._flag is not None:
            # §5.4: fragments of one message may not be interleaved with another.
            raise ProtocolError(
                "new data frame while a fragmented message is in progress",
                CloseCode.PROTOCOL_ERROR,
            )
        flag = _TEXT if opcode == 1 else _BINARY
        if fin:
            # The common case: a whole message in one frame.
            if self.max_size is not None and len(payload) > self.max_size:
                raise ProtocolError(
                    f"message exceeds the limit of {self.max_size} bytes", CloseCode.MESSAGE_TOO_BIG
                )
            if flag is _TEXT:
                if self.checked:  # check_ahead validated the start of it
                    self._validate(memoryview(payload)[self.checked :], True)
                    self.checked = 0
                    self._decoder = None
                    return payload, flag
                try:
                    payload.decode()
                except UnicodeDecodeError:
                    raise ProtocolError(
                        "invalid UTF-8 in text message", CloseCode.INVALID_DATA
                    ) from None
            return payload, flag
        self._flag = flag
        self._size = 0
        if flag is _TEXT and not self.checked:
            self._decoder = _Utf8Decoder()
        return self._add(payload, False)

    def continue_(self, payload: bytes, fin: bool) -> tuple[bytes, WsFlag] | None:
        """A CONT (0) frame."""
        if self._flag is None:
            # §5.4: a continuation frame needs a message to continue.
            raise ProtocolError("continuation frame without a message", CloseCode.PROTOCOL_ERROR)
        return self._add(payload, fin)

    def _add(self, payload: bytes, fin: bool) -> tuple[bytes, WsFlag] | None:
        flag = self._flag
        assert flag is not None
        self._size += len(payload)
        if self.max_size is not None and self._size > self.max_size:
            raise ProtocolError(
                f"message exceeds the limit of {self.max_size} bytes", CloseCode.MESSAGE_TOO_BIG
            )
        if self._decoder is not None:
            checked = self.checked
            if checked:  # check_ahead validated the start of this frame
                self.checked = 0
                self._validate(memoryview(payload)[checked:], fin)
            else:
                self._validate(payload, fin)
        if fin:
            self._flag = None
            self._decoder = None
        if self.stream:
            return payload, flag if fin else flag | _CONT
        self._parts.append(payload)
        if not fin:
            return None
        parts = self._parts
        self._parts = []
        return (parts[0] if len(parts) == 1 else b"".join(parts)), flag

    def _validate(self, data: bytes | bytearray | memoryview, final: bool) -> None:
        decoder = self._decoder
        assert decoder is not None
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in text message", CloseCode.INVALID_DATA) from None
        if not final:
            # CPython's decoder holds ED A0..ED BF back as an incomplete
            # sequence (a surrogate, U+D800-DFFF), although Unicode Table 3-7
            # allows only 80..9F after ED: reject it now, not a fragment later.
            pending = decoder.getstate()[0]
            if len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise ProtocolError("invalid UTF-8 in text message", CloseCode.INVALID_DATA)
