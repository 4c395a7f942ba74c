"""The HTTP/1.1 subset a WebSocket client needs: heads in, heads out (RFC 7230).

``ResponseParser`` and ``RequestParser`` read a message head incrementally:
feed them bytes as they arrive, in chunks of any size, and they return the
parsed head once the empty line that ends it has arrived. Bytes that came
after the head are kept in ``remaining``: a server may send its first
WebSocket frames in the same segment as the 101, and they must not be lost.

Theory of operation: input is appended to one ``bytearray``; the parser keeps
the offset of the current line and the offset up to which that line is known
to hold no LF, so each byte is searched once whatever the chunking, and total
work is O(n). Each complete line is parsed at once and the limits below are
checked as soon as they are crossed, so a hostile peer can neither make the
parser wait forever for a line ending nor make the buffer grow past
``MAX_HEAD_SIZE`` plus one chunk.

Line endings: CRLF, or a bare LF. RFC 7230 §3.5 allows a recipient to
"recognize a single LF as a line terminator and ignore any preceding CR"; some
small embedded servers send bare LFs, so we do. A CR anywhere else in a line
is an error.

Encoding: field values are decoded as ISO-8859-1, which maps every byte to one
character and loses nothing (RFC 7230 §3.2.4: "Historically, HTTP has allowed
field content with text in the ISO-8859-1 charset"). When serializing, values
are encoded as UTF-8, which is what servers that accept non-ASCII expect.

``BodyReader`` reads the body of a refused upgrade so that the error can show
it. Bodies are capped at ``MAX_BODY_SIZE`` (see there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rapidws.errors import HandshakeError
from rapidws.protocol.headers import Headers, parse_token_list, validate_header

__all__ = [
    "MAX_LINE_LENGTH",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "MAX_BODY_SIZE",
    "Response",
    "Request",
    "ResponseParser",
    "RequestParser",
    "BodyReader",
    "serialize_request",
    "serialize_response",
]

# Limits. Each is checked as soon as input crosses it.

#: Longest line, CRLF excluded: 8 KiB is the most common default of popular HTTP servers.
MAX_LINE_LENGTH = 8192
#: Most header fields in one head: browsers send about 15; this leaves room for proxies and CDNs.
MAX_HEADERS = 128
#: Largest head, terminating empty line included: bounds memory held before the head completes.
MAX_HEAD_SIZE = 64 * 1024
#: Most body bytes kept from a refused upgrade: the body only illustrates the error, so
#: anything beyond is dropped and ``BodyReader.truncated`` is set rather than failing.
MAX_BODY_SIZE = 1 * 1024 * 1024


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Response:
    """An HTTP response head, and the body of a refused upgrade once read."""

    status: int
    reason: str
    headers: Headers
    #: Filled by the caller from a :class:`BodyReader` for a non-101 response.
    body: bytes = b""
    #: ``"HTTP/1.1"`` or ``"HTTP/1.0"``.
    version: str = "HTTP/1.1"


@dataclass(slots=True)
class Request:
    """An HTTP request head (the server side of a handshake)."""

    method: str
    target: str
    headers: Headers
    #: ``"HTTP/1.1"`` or ``"HTTP/1.0"``; RFC 6455 §4.2.1 requires HTTP/1.1.
    version: str = "HTTP/1.1"


# ---------------------------------------------------------------------------
# Grammar (RFC 7230 §3.1, §3.2)
# ---------------------------------------------------------------------------

# status-line   = HTTP-version SP status-code SP reason-phrase CRLF
# HTTP-version  = HTTP-name "/" DIGIT "." DIGIT
# HTTP-name     = %x48.54.54.50 ; "HTTP", case-sensitive
# status-code   = 3DIGIT
# reason-phrase = *( HTAB / SP / VCHAR / obs-text )
# Some servers omit the SP before an empty reason phrase; that is accepted.
_status_line_re = re.compile(rb"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")

# request-line   = method SP request-target SP HTTP-version CRLF
# method         = token
# request-target = origin-form / absolute-form / authority-form / asterisk-form
#                  (all of them printable ASCII without spaces)
_request_line_re = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")

# header-field   = field-name ":" OWS field-value OWS
# field-name     = token
_field_name_re = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")

# field-value    = *( field-content / obs-fold )
# field-content  = field-vchar [ 1*( SP / HTAB ) field-vchar ]
# field-vchar    = VCHAR / obs-text
# (checked after stripping OWS: only HTAB, SP, VCHAR and obs-text remain legal)
_field_value_re = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

_SUPPORTED_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")

# A whole response head in one piece, CRLF line endings, nothing the rules
# above refuse: what a server sends nearly always. One match then replaces
# the line-by-line parse; anything else (bare LF, a stray CR, a bad field, a
# head cut in two) takes the line-by-line path, which gives the exact error.
_simple_response_head_re = re.compile(
    rb"(HTTP/1\.[01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n"
    rb"((?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n"
)


def _show(line: bytes | bytearray) -> str:
    # Enough of a bad line to recognize it, never a whole 8 KiB of it.
    return repr(bytes(line[:80])) + ("..." if len(line) > 80 else "")


# ---------------------------------------------------------------------------
# Head parsers
# ---------------------------------------------------------------------------


class _HeadParser:
    """Shared line machinery of ResponseParser and RequestParser."""

    __slots__ = ("_buffer", "_line_start", "_scan", "_start_line", "_headers", "_remaining")

    #: "response" or "request", for error messages.
    _kind = "message"

    def __init__(self) -> None:
        # Everything received until the head is complete.
        self._buffer = bytearray()
        # Offset of the first byte of the line being read.
        self._line_start = 0
        # Offset from which to look for the next LF: bytes before it hold none.
        self._scan = 0
        # The parsed start line, once read.
        self._start_line: tuple[str, str, str] | None = None
        self._headers = Headers()
        # Bytes after the head; None until the head is complete.
        self._remaining: bytes | None = None

    @property
    def remaining(self) -> bytes:
        """Bytes received after the head: the start of what follows it.

        Empty until the head is complete.
        """
        return self._remaining if self._remaining is not None else b""

    def _error(self, reason: str) -> HandshakeError:
        return HandshakeError(f"invalid HTTP {self._kind}: {reason}")

    def _feed(self, data: bytes) -> bool:
        """Consume ``data``; return True once the head is complete."""
        if self._remaining is not None:
            raise RuntimeError(f"the HTTP {self._kind} head is already complete")
        buffer = self._buffer
        buffer += data
        while True:
            lf = buffer.find(b"\n", self._scan)
            if lf == -1:
                # No line ending yet: check what we hold against the limits so
                # that a peer never makes us wait for one forever.
                self._scan = len(buffer)
                partial = len(buffer) - self._line_start
                # +1: the last byte may be the CR of a CRLF not yet complete.
                if partial > MAX_LINE_LENGTH + 1:
                    raise self._error(f"line longer than {MAX_LINE_LENGTH} bytes")
                if len(buffer) > MAX_HEAD_SIZE:
                    raise self._error(f"head larger than {MAX_HEAD_SIZE} bytes")
                if self._start_line is None:
                    self._check_start(buffer[self._line_start : self._line_start + 5])
                return False
            end = lf
            if end > self._line_start and buffer[end - 1] == 0x0D:  # CR
                end -= 1
            line = bytes(buffer[self._line_start : end])
            self._line_start = self._scan = lf + 1
            if lf + 1 > MAX_HEAD_SIZE:
                raise self._error(f"head larger than {MAX_HEAD_SIZE} bytes")
            if len(line) > MAX_LINE_LENGTH:
                raise self._error(f"line longer than {MAX_LINE_LENGTH} bytes")
            if self._start_line is None:
                self._parse_start(line)
            elif line:
                self._parse_field(line)
            else:
                self._remaining = bytes(buffer[lf + 1 :])
                self._buffer = bytearray()
                return True

    def _parse_field(self, line: bytes) -> None:
        # RFC 7230 §3.2.4 deprecates obs-fold: a server may reject it, a user
        # agent should unfold it. We reject it both ways on purpose: no
        # WebSocket server folds, and folding is a classic smuggling vector.
        if line[0] in b" \t":
            raise self._error(f"obsolete line folding: {_show(line)}")
        colon = line.find(b":")
        if colon == -1:
            raise self._error(f"header line without a colon: {_show(line)}")
        name = line[:colon]
        # RFC 7230 §3.2.4: "No whitespace is allowed between the header
        # field-name and colon. [...] A server MUST reject any received request
        # message that contains whitespace between a header field-name and
        # colon". We refuse it in responses as well.
        if name and name[-1] in b" \t":
            raise self._error(f"whitespace before the colon of a header field: {_show(line)}")
        if not _field_name_re.fullmatch(name):
            raise self._error(f"invalid header name: {_show(line)}")
        value = line[colon + 1 :].strip(b" \t")
        if not _field_value_re.fullmatch(value):
            raise self._error(f"invalid character in header value: {_show(line)}")
        if len(self._headers) >= MAX_HEADERS:
            raise self._error(f"more than {MAX_HEADERS} header fields")
        self._headers.add(name.decode("ascii"), value.decode("latin-1"))

    # Start line: implemented by subclasses.

    def _check_start(self, partial: bytes | bytearray) -> None:
        """Fail early on an incomplete start line that cannot become valid."""

    def _parse_start(self, line: bytes) -> None:
        raise NotImplementedError


class ResponseParser(_HeadParser):
    """Parse an HTTP/1.x response head incrementally.

    >>> parser = ResponseParser()
    >>> parser.feed(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n")
    >>> response = parser.feed(b"\\r\\n\\x81\\x00")
    >>> response.status, parser.remaining
    (101, b'\\x81\\x00')
    """

    __slots__ = ()

    _kind = "response"

    def feed(self, data: bytes) -> Response | None:
        """Consume ``data``; return the response once its head is complete.

        Raises:
            HandshakeError: ``"invalid HTTP response: <reason>"``.
            RuntimeError: if called again after the head was returned.
        """
        if self._start_line is None and not self._buffer:
            response = self._feed_simple(data)
            if response is not None:
                return response
        if not self._feed(data):
            return None
        assert self._start_line is not None
        version, status, reason = self._start_line
        return Response(int(status), reason, self._headers, b"", version)

    def _feed_simple(self, data: bytes) -> Response | None:
        """The whole head at once when it is simple; None to parse line by line."""
        match = _simple_response_head_re.match(data)
        if match is None:
            return None
        end = match.end()
        if end > MAX_LINE_LENGTH:  # long lines or a large head: the limits apply
            return None
        version, status, reason, block = match.groups()
        lines = block.split(b"\r\n")
        del lines[-1]  # after the last CRLF
        if len(lines) > MAX_HEADERS:
            return None
        headers = self._headers
        for line in lines:
            name, _, value = line.partition(b":")
            headers.add(name.decode("ascii"), value.strip(b" \t").decode("latin-1"))
        version_text = version.decode("ascii")
        reason_text = (reason or b"").decode("latin-1")
        self._start_line = (version_text, status.decode("ascii"), reason_text)
        self._remaining = bytes(data[end:])
        return Response(int(status), reason_text, headers, b"", version_text)

    def _check_start(self, partial: bytes | bytearray) -> None:
        # A peer that does not speak HTTP (TLS to a plain port, a raw TCP
        # service) is detected on its first bytes, not after 8 KiB.
        prefix = bytes(partial[:5])
        if prefix != b"HTTP/"[: len(prefix)]:
            raise self._error(f"not an HTTP status line: {_show(partial)}")

    def _parse_start(self, line: bytes) -> None:
        self._check_start(line)
        match = _status_line_re.fullmatch(line)
        if match is None:
            raise self._error(f"malformed status line: {_show(line)}")
        version, status, reason = match.groups()
        if version not in _SUPPORTED_VERSIONS:
            raise self._error(f"unsupported HTTP version: {_show(version)}")
        if status[0] == 0x30:  # "0": status codes are 100 to 999
            raise self._error(f"invalid status code: {_show(status)}")
        self._start_line = (
            version.decode("ascii"),
            status.decode("ascii"),
            (reason or b"").decode("latin-1"),
        )


class RequestParser(_HeadParser):
    """Parse an HTTP/1.x request head incrementally (the server side)."""

    __slots__ = ()

    _kind = "request"

    def feed(self, data: bytes) -> Request | None:
        """Consume ``data``; return the request once its head is complete.

        Raises:
            HandshakeError: ``"invalid HTTP request: <reason>"``.
            RuntimeError: if called again after the head was returned.
        """
        if not self._feed(data):
            return None
        assert self._start_line is not None
        method, target, version = self._start_line
        return Request(method, target, self._headers, version)

    def _parse_start(self, line: bytes) -> None:
        # RFC 7230 §3.5: "a server that is expecting to receive and parse a
        # request-line SHOULD ignore at least one empty line (CRLF) received
        # prior to the request-line". MAX_HEAD_SIZE bounds how many.
        if not line:
            return
        match = _request_line_re.fullmatch(line)
        if match is None:
            raise self._error(f"malformed request line: {_show(line)}")
        method, target, version = match.groups()
        if version not in _SUPPORTED_VERSIONS:
            raise self._error(f"unsupported HTTP version: {_show(version)}")
        self._start_line = (
            method.decode("ascii"),
            target.decode("ascii"),
            version.decode("ascii"),
        )


# ---------------------------------------------------------------------------
# Bodies of refused upgrades
# ---------------------------------------------------------------------------

# chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
# chunk-size = 1*HEXDIG
# chunk-ext  = *( ";" chunk-ext-name [ "=" chunk-ext-val ] )
# Extensions are ignored, so only their leading ";" is checked; whitespace
# before it is tolerated (RFC 7230 errata 4667 adds BWS there).
_chunk_size_re = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;.*)?", re.DOTALL)

# Framing of the body (RFC 7230 §3.3.3).
_NO_BODY, _LENGTH, _CHUNKED, _UNTIL_EOF = range(4)
# Where a chunked body is.
_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER = range(4)


class BodyReader:
    """Read the body that follows a response head (RFC 7230 §3.3.3).

    Feed it ``ResponseParser.remaining`` first, then whatever arrives, until
    :meth:`feed` returns True or the connection closes (:meth:`feed_eof`).

    At most ``limit`` bytes are kept. When the body is longer, reading stops
    there: ``feed`` returns True and ``truncated`` is set. This is not an
    error, since the body only illustrates why the upgrade was refused.
    """

    __slots__ = (
        "_mode",
        "_limit",
        "_body",
        "_done",
        "truncated",
        "_left",
        "_buffer",
        "_scan",
        "_chunk_state",
        "_trailers",
    )

    def __init__(self, status: int, headers: Headers, *, limit: int = MAX_BODY_SIZE) -> None:
        self._limit = limit
        self._body = bytearray()
        self._done = False
        #: True when ``body`` is shorter than the server's body: the limit was
        #: reached, or the connection closed before the announced end.
        self.truncated = False
        # Bytes left in the body (_LENGTH) or the current chunk (_CHUNKED).
        self._left = 0
        # Chunked framing: undecoded input and where the next LF search starts.
        self._buffer = bytearray()
        self._scan = 0
        self._chunk_state = _CHUNK_SIZE
        self._trailers = 0

        transfer_encoding = headers.get_all("Transfer-Encoding")
        if 100 <= status < 200 or status in (204, 304):
            # "Any response to a HEAD request and any response with a 1xx
            # (Informational), 204 (No Content), or 304 (Not Modified) status
            # code is always terminated by the first empty line after the
            # header fields, regardless of the header fields present"
            self._mode = _NO_BODY
            self._done = True
        elif transfer_encoding:
            # "If a Transfer-Encoding header field is present and the chunked
            # transfer coding is the final encoding, the message body length is
            # determined by reading and decoding the chunked data [...] If a
            # Transfer-Encoding header field is present in a response and the
            # chunked transfer coding is not the final encoding, the message
            # body length is determined by reading the connection until it is
            # closed by the server." Content-Length is then ignored.
            try:
                codings = parse_token_list(transfer_encoding)
            except ValueError as exc:
                raise HandshakeError(f"invalid HTTP response: {exc}") from None
            self._mode = _CHUNKED if codings and codings[-1] == "chunked" else _UNTIL_EOF
        elif "Content-Length" in headers:
            self._mode = _LENGTH
            self._left = self._content_length(headers.get_all("Content-Length"))
            self._done = self._left == 0
        else:
            # "Otherwise, this is a response message without a declared message
            # body length, so the message body length is determined by the
            # number of octets received prior to the server closing the
            # connection."
            self._mode = _UNTIL_EOF

    @staticmethod
    def _content_length(values: list[str]) -> int:
        # Content-Length = 1*DIGIT. RFC 7230 §3.3.2 lets a recipient accept a
        # list of identical values ("42, 42"); anything else is an error.
        lengths = {item.strip(" \t") for value in values for item in value.split(",")}
        if len(lengths) != 1:
            raise HandshakeError(f"invalid HTTP response: conflicting Content-Length {values!r}")
        (length,) = lengths
        if not (length.isascii() and length.isdigit()):
            raise HandshakeError(f"invalid HTTP response: invalid Content-Length {length!r}")
        return int(length)

    @property
    def body(self) -> bytes:
        """The body read so far (decoded from chunks), at most ``limit`` bytes."""
        return bytes(self._body)

    @property
    def complete(self) -> bool:
        """Whether reading is over: the body ended, the limit was hit, or EOF."""
        return self._done

    def feed(self, data: bytes) -> bool:
        """Consume ``data``; return True once the body is complete.

        Input after the end of the body is ignored.

        Raises:
            HandshakeError: if the chunked framing is invalid.
        """
        if self._done or not data:
            return self._done
        mode = self._mode
        if mode == _LENGTH:
            taken = data[: self._left]
            self._left -= len(taken)
            self._keep(taken)
            if self._left == 0:
                self._done = True
            elif len(self._body) >= self._limit:
                # Content-Length says more follows: no need to wait for it.
                self.truncated = self._done = True
        elif mode == _UNTIL_EOF:
            self._keep(data)
        else:
            self._feed_chunked(data)
        return self._done

    def feed_eof(self) -> None:
        """Signal that the connection closed. Never raises: what was read is kept."""
        if not self._done:
            if self._mode != _UNTIL_EOF:
                self.truncated = True
            self._done = True

    def _keep(self, data: bytes | bytearray) -> None:
        room = self._limit - len(self._body)
        if len(data) > room:
            self._body += data[:room]
            self.truncated = True
            self._done = True
        else:
            self._body += data

    def _line(self, buffer: bytearray, pos: int) -> tuple[bytes, int] | None:
        # One CRLF- (or LF-) terminated line of chunk framing, or None if it
        # has not fully arrived yet.
        lf = buffer.find(b"\n", max(pos, self._scan))
        if lf == -1:
            self._scan = len(buffer)
            if len(buffer) - pos > MAX_LINE_LENGTH + 1:
                raise HandshakeError(
                    f"invalid HTTP response: chunk line longer than {MAX_LINE_LENGTH} bytes"
                )
            return None
        end = lf - 1 if lf > pos and buffer[lf - 1] == 0x0D else lf
        if end - pos > MAX_LINE_LENGTH:
            raise HandshakeError(
                f"invalid HTTP response: chunk line longer than {MAX_LINE_LENGTH} bytes"
            )
        return bytes(buffer[pos:end]), lf + 1

    def _feed_chunked(self, data: bytes) -> None:
        # chunked-body = *chunk last-chunk trailer-part CRLF
        buffer = self._buffer
        buffer += data
        pos = 0
        while not self._done:
            state = self._chunk_state
            if state == _CHUNK_DATA:
                if pos == len(buffer):
                    break
                taken = buffer[pos : pos + self._left]
                pos += len(taken)
                self._left -= len(taken)
                self._keep(taken)
                if self._left == 0:
                    self._chunk_state = _CHUNK_END
                continue
            result = self._line(buffer, pos)
            if result is None:
                break
            line, pos = result
            self._scan = pos
            if state == _CHUNK_SIZE:
                match = _chunk_size_re.fullmatch(line)
                if match is None:
                    raise HandshakeError(f"invalid HTTP response: invalid chunk size {_show(line)}")
                self._left = int(match.group(1), 16)
                self._chunk_state = _CHUNK_DATA if self._left else _TRAILER
            elif state == _CHUNK_END:
                if line:
                    raise HandshakeError(
                        f"invalid HTTP response: chunk data longer than its size: {_show(line)}"
                    )
                self._chunk_state = _CHUNK_SIZE
            elif line:  # _TRAILER: fields are read and dropped
                self._trailers += 1
                if self._trailers > MAX_HEADERS:
                    raise HandshakeError(
                        f"invalid HTTP response: more than {MAX_HEADERS} trailer fields"
                    )
            else:
                self._done = True
        # Compact once per feed: what is left is at most one partial line.
        del buffer[:pos]
        self._scan = max(0, self._scan - pos)


# ---------------------------------------------------------------------------
# Serialization
# ---------------------------------------------------------------------------


# Every field checked at once, as "name NUL value LF" lines: each name an
# RFC 7230 token, each value free of the control characters validate_header
# refuses (NUL and LF among them). A line holds exactly one NUL and one LF, so
# when there are as many LFs as fields, no name or value holds either, the
# lines are the fields, and the match says what validate_header says of each.
_valid_fields_re = re.compile(r"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+\x00[^\x00-\x08\x0a-\x1f\x7f]*\n)*")


def _serialize_fields(head: bytearray, headers: Iterable[tuple[str, str]]) -> None:
    fields = headers if isinstance(headers, list) else list(headers)
    try:
        lines = "".join([name + "\x00" + value + "\n" for name, value in fields])
    except TypeError:  # not a str: validate_header says so
        lines = "\x00"
    if _valid_fields_re.fullmatch(lines) is None or lines.count("\n") != len(fields):
        for name, value in fields:
            validate_header(name, value)  # raises, naming the field
    # Names are ASCII tokens, so encoding every line as UTF-8 encodes names as ASCII.
    head += "".join([f"{name}: {value}\r\n" for name, value in fields]).encode("utf-8")
    head += b"\r\n"


def serialize_request(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialize an HTTP/1.1 request head; fields go out in the given order and casing.

    Raises:
        ValueError: if the method, target or a header field is invalid.
    """
    head = bytearray()
    try:
        head += b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target.encode("ascii"))
    except UnicodeEncodeError:
        raise ValueError(f"invalid request line: {method!r} {target!r} is not ASCII") from None
    if not _request_line_re.fullmatch(head[:-2]):
        raise ValueError(f"invalid request line: method {method!r}, target {target!r}")
    _serialize_fields(head, headers)
    return bytes(head)


def serialize_response(
    status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes = b""
) -> bytes:
    """Serialize an HTTP/1.1 response; fields go out in the given order and casing.

    ``body`` is appended as is: include ``Content-Length`` in ``headers``.

    Raises:
        ValueError: if the status, reason or a header field is invalid.
    """
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code {status}: must be 100 to 999")
    head = bytearray(b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("utf-8")))
    if not _status_line_re.fullmatch(head[:-2]):
        raise ValueError(f"invalid reason phrase {reason!r}")
    _serialize_fields(head, headers)
    head += body
    return bytes(head)
