"""permessage-deflate (RFC 7692): negotiation and the per-message codec, sans I/O.

Theory of operation
-------------------
- Offer: each :class:`DeflateOptions` is one ``permessage-deflate`` element of
  the client's ``Sec-WebSocket-Extensions`` header, in preference order (§5).
  The default, ``DeflateOptions()``, is what browsers send:
  ``permessage-deflate; client_max_window_bits``.
- Response: :func:`negotiate` checks the server's answer against every rule of
  §7.1 and picks the first offer it fits; the result, :class:`PerMessageDeflate`,
  holds the parameters in force: who resets its context after each message and
  the window size of each side. A response that fits no offer raises
  ``ValueError``, which the handshake turns into a ``HandshakeError``.
- Messages: :class:`Deflater` compresses the messages this side sends and
  :class:`Inflater` decompresses the peer's (§7.2). Each keeps one zlib
  stream object for the whole connection. With context takeover that is the
  RFC's shared LZ77 window; without it, the deflater ends every message with
  ``Z_FULL_FLUSH``, which forgets the history, and the inflater needs nothing:
  a peer that does not take over its context never refers back to it. No zlib
  object is created per message.
- Safety: inflation is bounded. The inflater never produces more than
  ``max_size + 1`` bytes of one message (zlib's ``max_length``), so a small
  frame that would inflate to gigabytes fails with 1009 after at most
  ``max_size`` bytes were allocated.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeAlias

from ..errors import ProtocolError
from .frames import CloseCode
from .headers import ExtensionHeader, ExtensionParams, build_extension_list

__all__ = [
    "EXTENSION_NAME",
    "DeflateOptions",
    "PerMessageDeflate",
    "CompressionOption",
    "offers_from_option",
    "build_offer",
    "negotiate",
    "compressed_size_limit",
    "Deflater",
    "Inflater",
]

EXTENSION_NAME = "permessage-deflate"

# RFC 7692 §7.2.1: a compressed message ends with an empty stored block, whose
# last four octets the sender removes and the receiver appends again.
_TAIL = b"\x00\x00\xff\xff"

# RFC 7692 §7.1.2.1/§7.1.2.2: window sizes are "a decimal integer value without
# leading zeroes between 8 to 15, inclusive".
_WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")
_MIN_WINDOW_BITS = 8
_MAX_WINDOW_BITS = 15

# Below this size, appending the tail to a frame's payload (a copy) costs less
# than a second call to decompress().
_APPEND_TAIL_BELOW = 2048

_NO_CONTEXT_TAKEOVER = ("server_no_context_takeover", "client_no_context_takeover")
_MAX_WINDOW_BITS_PARAMS = ("server_max_window_bits", "client_max_window_bits")


# ---------------------------------------------------------------------------
# Configuration: what the client offers, what was agreed
# ---------------------------------------------------------------------------


def _check_window_bits(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int from 8 to 15, got {value!r}")
    if not _MIN_WINDOW_BITS <= value <= _MAX_WINDOW_BITS:
        raise ValueError(f"{name} must be from 8 to 15, got {value}")


@dataclass(frozen=True, slots=True)
class DeflateOptions:
    """One ``permessage-deflate`` offer (RFC 7692 §7.1), and how to compress.

    - ``server_no_context_takeover``: ask the server to compress every message
      on its own (it must agree, or this offer is not accepted).
    - ``client_no_context_takeover``: compress every message on its own; the
      server may also demand it.
    - ``server_max_window_bits``: ask the server to use an LZ77 window of at
      most 2**N bytes, N from 8 to 15 (it must agree).
    - ``client_max_window_bits``: ``True`` (the default, as browsers send it)
      lets the server pick our window size; an int N also caps it at 2**N;
      ``False`` leaves the parameter out, so our window is 2**15.
    - ``level`` (0-9) and ``mem_level`` (1-9): zlib's settings for what this
      side sends; ``min_size``: messages shorter than this go uncompressed
      (0: compress everything, as browsers do). They are not negotiated.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool = True
    level: int = 6
    mem_level: int = 8
    min_size: int = 0

    def __post_init__(self) -> None:
        for name in _NO_CONTEXT_TAKEOVER:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        if not isinstance(self.client_max_window_bits, bool):
            _check_window_bits("client_max_window_bits", self.client_max_window_bits)
        for name, low, high in (("level", 0, 9), ("mem_level", 1, 9)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
        if (
            isinstance(self.min_size, bool)
            or not isinstance(self.min_size, int)
            or self.min_size < 0
        ):
            raise ValueError(f"min_size must be an int >= 0, got {self.min_size!r}")

    def to_header(self) -> ExtensionHeader:
        """This offer as an element of ``Sec-WebSocket-Extensions``."""
        params: ExtensionParams = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not False:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return EXTENSION_NAME, params


@dataclass(frozen=True, slots=True)
class PerMessageDeflate:
    """permessage-deflate as agreed in the handshake: the parameters in force.

    ``*_no_context_takeover`` says whether that side starts every message with
    an empty LZ77 window; ``*_max_window_bits`` is the window size that side
    compresses with (2**N bytes). ``offer`` is the offer the server accepted
    (left out of comparisons: they are about what is in force).
    """

    name: ClassVar[str] = EXTENSION_NAME

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = _MAX_WINDOW_BITS
    client_max_window_bits: int = _MAX_WINDOW_BITS
    offer: DeflateOptions = field(default=DeflateOptions(), compare=False, repr=False)

    def __str__(self) -> str:
        """The agreement in header form, every parameter spelled out."""
        params: ExtensionParams = []
        for name in _NO_CONTEXT_TAKEOVER:
            if getattr(self, name):
                params.append((name, None))
        for name in _MAX_WINDOW_BITS_PARAMS:
            params.append((name, str(getattr(self, name))))
        return build_extension_list([(EXTENSION_NAME, params)])


#: What ``ws_connect(compression=...)`` takes.
CompressionOption: TypeAlias = Literal["deflate"] | DeflateOptions | Sequence[DeflateOptions] | None


def offers_from_option(compression: object) -> tuple[DeflateOptions, ...]:
    """The offers, in preference order, that a ``compression`` option stands for.

    ``"deflate"`` is the browser's offer, ``None`` none at all; a
    :class:`DeflateOptions` or a non-empty list of them is taken as given.
    """
    if compression is None:
        return ()
    if isinstance(compression, str):
        if compression == "deflate":
            return (DeflateOptions(),)
        raise ValueError(f"compression must be 'deflate' or None, got {compression!r}")
    if isinstance(compression, DeflateOptions):
        return (compression,)
    if isinstance(compression, (list, tuple)):
        if not compression:
            raise ValueError("compression is an empty list: use None to offer no compression")
        for offer in compression:
            if not isinstance(offer, DeflateOptions):
                raise TypeError(f"compression offers must be DeflateOptions, got {offer!r}")
        return tuple(compression)
    raise TypeError(
        "compression must be 'deflate', None, a DeflateOptions or a list of them, "
        f"got {compression!r}"
    )


def build_offer(offers: Sequence[DeflateOptions]) -> str:
    """The ``Sec-WebSocket-Extensions`` value for ``offers``.

    RFC 7692 §5: a client may offer the extension several times, "in the
    order of preference", each with its own parameters.
    """
    return build_extension_list([offer.to_header() for offer in offers])


# ---------------------------------------------------------------------------
# Negotiation, client side (RFC 7692 §5 and §7.1)
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Response:
    """The parameters of the server's permessage-deflate element, checked for form."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None


def _parse_response(params: ExtensionParams) -> _Response:
    # §7.1: "A client MUST _Fail the WebSocket Connection_ if the peer server
    # accepted an extension negotiation offer for this extension with an
    # extension negotiation response meeting any of the following conditions:
    # The negotiation response contains an extension parameter not defined for
    # use in a response. The negotiation response contains an extension
    # parameter with an invalid value. The negotiation response contains
    # multiple extension parameters with the same name."
    response = _Response()
    seen: set[str] = set()
    for name, value in params:
        if name in seen:
            raise ValueError(f"parameter {name} appears more than once")
        seen.add(name)
        if name in _NO_CONTEXT_TAKEOVER:
            # §7.1.1.1/§7.1.1.2: "This extension parameter has no value."
            if value is not None:
                raise ValueError(f"{name} takes no value, got {name}={value}")
            setattr(response, name, True)
        elif name in _MAX_WINDOW_BITS_PARAMS:
            # §7.1.2.2: client_max_window_bits may come without a value in an
            # offer, but a response "MUST" give one; server_max_window_bits
            # always has one.
            if value is None:
                raise ValueError(f"{name} needs a value from 8 to 15 in a response")
            if not _WINDOW_BITS_RE.fullmatch(value):
                raise ValueError(f"{name}={value} is not a window size from 8 to 15")
            setattr(response, name, int(value))
        else:
            raise ValueError(f"unknown parameter {name}")
    return response


def _mismatch(offer: DeflateOptions, response: _Response) -> str | None:
    """Why ``response`` cannot be the server's answer to ``offer``, or None if it can."""
    # §7.1.1.1: "A server accepts an extension negotiation offer that includes
    # the "server_no_context_takeover" extension parameter by including the
    # "server_no_context_takeover" extension parameter in the corresponding
    # extension negotiation response". A server may also send it unasked.
    if offer.server_no_context_takeover and not response.server_no_context_takeover:
        return "server_no_context_takeover was requested but not granted"
    # §7.1.2.1: "A server accepts an extension negotiation offer with this
    # parameter by including the "server_max_window_bits" extension parameter
    # in the extension negotiation response to send back to the client with the
    # same or smaller value as the offer." It may also send it unasked.
    server_bits = response.server_max_window_bits
    if offer.server_max_window_bits is not None:
        if server_bits is None:
            return (
                f"server_max_window_bits={offer.server_max_window_bits} was requested "
                "but not granted"
            )
        if server_bits > offer.server_max_window_bits:
            return (
                f"server_max_window_bits={server_bits} is larger than the requested "
                f"{offer.server_max_window_bits}"
            )
    # §7.1.2.2: "If a received extension negotiation offer doesn't have the
    # "client_max_window_bits" extension parameter, the corresponding extension
    # negotiation response to the offer MUST NOT include the
    # "client_max_window_bits" extension parameter." With a value in the offer,
    # the server may answer "with a value equal to or smaller than" it.
    client_bits = response.client_max_window_bits
    if client_bits is not None:
        offered = offer.client_max_window_bits
        if offered is False:
            return f"client_max_window_bits={client_bits} was not offered"
        if offered is not True and client_bits > offered:
            return f"client_max_window_bits={client_bits} is larger than the offered {offered}"
    return None


def _agree(offer: DeflateOptions, response: _Response) -> PerMessageDeflate:
    client_bits = response.client_max_window_bits
    if client_bits is None:
        # §7.1.2.2: an offered value binds the client even when the server
        # does not repeat it; otherwise the client may use the whole window.
        offered = offer.client_max_window_bits
        client_bits = _MAX_WINDOW_BITS if isinstance(offered, bool) else offered
    return PerMessageDeflate(
        server_no_context_takeover=response.server_no_context_takeover,
        # §7.1.1.2: client_no_context_takeover in an offer is "a hint that even
        # if the server doesn't include the "client_no_context_takeover"
        # extension parameter in the corresponding extension negotiation
        # response to the offer, the client is not going to use context
        # takeover."
        client_no_context_takeover=(
            response.client_no_context_takeover or offer.client_no_context_takeover
        ),
        server_max_window_bits=response.server_max_window_bits or _MAX_WINDOW_BITS,
        client_max_window_bits=client_bits,
        offer=offer,
    )


def negotiate(
    extensions: Sequence[ExtensionHeader], offers: Sequence[DeflateOptions]
) -> PerMessageDeflate | None:
    """What the server's accepted ``extensions`` agree to, given our ``offers``.

    Returns None when the server declined permessage-deflate. The response
    names no offer, so it goes to the first one it fits (§5: the server
    accepts one of the offers at most).

    Raises:
        ValueError: the response breaks a rule of RFC 7692 §7.1 or fits none
            of the offers; the message says which rule.
    """
    elements = [params for name, params in extensions if name == EXTENSION_NAME]
    if not elements:
        return None
    header = build_extension_list([(EXTENSION_NAME, params) for params in elements])
    if not offers:
        raise ValueError(f"server accepted {EXTENSION_NAME}, which was not offered")
    if len(elements) > 1:
        # §5: a server accepts one offer at most (two would also fight over
        # RSV1, §6).
        raise ValueError(f"server accepted {EXTENSION_NAME} more than once: {header!r}")
    try:
        response = _parse_response(elements[0])
    except ValueError as exc:
        raise ValueError(f"invalid {EXTENSION_NAME} response {header!r}: {exc}") from None
    problems: list[str] = []
    for offer in offers:
        problem = _mismatch(offer, response)
        if problem is None:
            return _agree(offer, response)
        problems.append(problem)
    if len(problems) == 1:
        raise ValueError(
            f"{EXTENSION_NAME} response {header!r} does not fit the offer: {problems[0]}"
        )
    listed = "; ".join(f"offer {n}: {problem}" for n, problem in enumerate(problems, 1))
    raise ValueError(f"{EXTENSION_NAME} response {header!r} fits none of the offers ({listed})")


def compressed_size_limit(max_size: int | None) -> int | None:
    """How large one compressed frame may be when messages may reach ``max_size``.

    The message limit applies to the decompressed size, and incompressible
    data grows a little when deflated: zlib's ``deflateBound()`` for any
    settings is n + n/8 + n/64 + 5 (raw deflate), plus a few bytes for flush
    markers. This bounds what is buffered before inflation starts.
    """
    if max_size is None:
        return None
    return max_size + ((max_size + 7) >> 3) + ((max_size + 63) >> 6) + 64


# ---------------------------------------------------------------------------
# The codec (RFC 7692 §7.2)
# ---------------------------------------------------------------------------


class Deflater:
    """Compresses the messages one side sends.

    ``window_bits`` is the agreed window size of this side (8-15);
    ``no_context_takeover`` resets the LZ77 history after every message;
    whole messages shorter than ``min_size`` go uncompressed. The zlib object
    is created on the first message, so a connection that never sends keeps
    no compression state.
    """

    __slots__ = (
        "_window_bits",
        "no_context_takeover",
        "min_size",
        "_level",
        "_mem_level",
        "_flush",
        "_zlib",
    )

    def __init__(
        self,
        window_bits: int,
        *,
        no_context_takeover: bool,
        level: int = 6,
        mem_level: int = 8,
        min_size: int = 0,
    ) -> None:
        # zlib refuses a raw deflate window of 8 bits (madler/zlib#171) and
        # would take 9 instead. A 9-bit deflater still never refers further
        # back than 512 - 262 = 250 bytes (deflate.h: MAX_DIST is the window
        # size less MIN_LOOKAHEAD), so its output fits a 256-byte window.
        self._window_bits = max(window_bits, 9)
        self.no_context_takeover = no_context_takeover
        self.min_size = min_size
        self._level = level
        self._mem_level = mem_level
        # Z_FULL_FLUSH ends the message like Z_SYNC_FLUSH (same empty stored
        # block) and also clears the match history, so the next message refers
        # to nothing before it: no context takeover without a new zlib object.
        self._flush = zlib.Z_FULL_FLUSH if no_context_takeover else zlib.Z_SYNC_FLUSH
        self._zlib: zlib._Compress | None = None

    def _encoder(self) -> zlib._Compress:
        encoder = self._zlib
        if encoder is None:
            encoder = self._zlib = zlib.compressobj(
                self._level, zlib.DEFLATED, -self._window_bits, self._mem_level
            )
        return encoder

    def compress_message(self, payload: bytes | bytearray | memoryview) -> bytes | None:
        """The compressed payload of a whole message in one frame.

        Returns None for a message shorter than ``min_size``, which goes
        uncompressed (RFC 7692 §6: each message is compressed or not, on its
        own); it never enters the LZ77 history, so context takeover is not
        disturbed.
        """
        if len(payload) < self.min_size:
            return None
        encoder = self._encoder()
        data = encoder.compress(payload)
        end = encoder.flush(self._flush)
        # §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail
        # end." The flush wrote them, unless nothing was pending (an empty
        # message right after another flush): then there is nothing to send.
        if end:
            data += end[:-4]
        return data

    def compress_fragment(self, payload: bytes | bytearray | memoryview, fin: bool) -> bytes:
        """The compressed payload of one frame of a fragmented message.

        Every frame is flushed so that it can go out now; only the last one
        loses the tail (§7.2.1 applies to the end of the message).
        """
        encoder = self._encoder()
        data = encoder.compress(payload)
        if not fin:
            return data + encoder.flush(zlib.Z_SYNC_FLUSH)
        end = encoder.flush(self._flush)
        return data + end[:-4] if end else data


class Inflater:
    """Decompresses the peer's messages, never past ``max_size`` bytes per message.

    ``window_bits`` is the peer's agreed window size; ``no_context_takeover``
    says whether the peer resets its history after each message.
    """

    __slots__ = ("_window_bits", "no_context_takeover", "max_size", "_size", "_zlib")

    def __init__(
        self, window_bits: int, *, no_context_takeover: bool, max_size: int | None = None
    ) -> None:
        self._window_bits = window_bits
        self.no_context_takeover = no_context_takeover
        self.max_size = max_size
        #: Decompressed bytes of the message in progress.
        self._size = 0
        self._zlib: zlib._Decompress | None = None

    def decompress(self, data: bytes, fin: bool) -> bytes:
        """Inflate one frame's payload; ``fin`` on the message's last frame.

        Raises:
            ProtocolError: 1009 when the message inflates past ``max_size``,
                1007 when the payload is not valid DEFLATE data.
        """
        # §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the
        # payload of the message."
        tail = fin
        if fin and len(data) < _APPEND_TAIL_BELOW:
            data += _TAIL
            tail = False
        max_size = self.max_size
        # One byte over the budget tells that the message is too big: zlib
        # stops there and keeps the rest of the input in unconsumed_tail.
        # (max_length=0 means no limit.)
        limit = 0 if max_size is None else max_size - self._size + 1
        try:
            out, ended = self._inflate(data, limit)
            if tail and not ended:
                more, _ = self._inflate(_TAIL, limit - len(out) if limit else 0)
                if more:
                    out += more
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}", CloseCode.INVALID_DATA) from None
        self._size = 0 if fin else self._size + len(out)
        return out

    def _inflate(self, data: bytes, limit: int) -> tuple[bytes, bool]:
        """Output of ``data``, and whether a final block ended the input."""
        decoder = self._zlib
        if decoder is None:
            decoder = self._zlib = zlib.decompressobj(-self._window_bits)
        out = decoder.decompress(data, limit)
        if limit and len(out) >= limit:
            raise self._too_big()
        while decoder.eof:
            # §7.2.3.4: a sender may end a message with a block whose BFINAL bit
            # is set. zlib's stream stops there; the tail we appended is left
            # over, or more blocks (the RFC's own example pads with an empty
            # stored block). A new stream takes them, with the window carried
            # over as a preset dictionary. Only the output at hand can seed it:
            # a reference further back fails with 1007 ("invalid distance too
            # far back"), never with wrong data.
            rest = decoder.unused_data
            window = out[-(1 << self._window_bits) :]
            if window and not self.no_context_takeover:
                decoder = zlib.decompressobj(-self._window_bits, zdict=window)
            else:
                decoder = zlib.decompressobj(-self._window_bits)
            self._zlib = decoder
            if not rest or rest == _TAIL:
                return out, True
            more = decoder.decompress(rest, limit - len(out) if limit else 0)
            if more:
                out += more
                if limit and len(out) >= limit:
                    raise self._too_big()
        return out, False

    def _too_big(self) -> ProtocolError:
        return ProtocolError(
            f"message exceeds the limit of {self.max_size} bytes once decompressed",
            CloseCode.MESSAGE_TOO_BIG,
        )
