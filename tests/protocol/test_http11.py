"""Tests of rapidws.protocol.http11, grouped by the section of RFC 7230 they guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidws.errors import HandshakeError
from rapidws.protocol.headers import Headers, validate_header
from rapidws.protocol.http11 import (
    MAX_BODY_SIZE,
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    MAX_LINE_LENGTH,
    BodyReader,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    serialize_request,
    serialize_response,
)

SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)
# A text frame "Hello" and a ping, as a server may send right after the 101.
FRAMES = b"\x81\x05Hello\x89\x00"


def parse_response(data: bytes) -> Response:
    response = ResponseParser().feed(data)
    assert response is not None
    return response


def parse_request(data: bytes) -> Request:
    request = RequestParser().feed(data)
    assert request is not None
    return request


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def head_with_fields(count: int, value_size: int = 1) -> bytes:
    fields = b"".join(b"X-Field-%d: %s\r\n" % (i, b"v" * value_size) for i in range(count))
    return b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n"


class TestStatusLine:
    """RFC 7230 §3.1.2: status-line = HTTP-version SP status-code SP reason-phrase."""

    def test_fields_are_parsed(self) -> None:
        response = parse_response(SWITCHING)
        assert response.status == 101
        assert response.reason == "Switching Protocols"
        assert response.version == "HTTP/1.1"
        assert response.body == b""
        assert response.headers.items() == [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]

    def test_http_1_0_is_accepted(self) -> None:
        response = parse_response(b"HTTP/1.0 403 Forbidden\r\n\r\n")
        assert (response.version, response.status, response.reason) == (
            "HTTP/1.0",
            403,
            "Forbidden",
        )

    @pytest.mark.parametrize(
        ("line", "reason"),
        [(b"HTTP/1.1 404 ", ""), (b"HTTP/1.1 404", ""), (b"HTTP/1.1 599 A  b", "A  b")],
    )
    def test_empty_or_spaced_reason(self, line: bytes, reason: str) -> None:
        assert parse_response(line + b"\r\n\r\n").reason == reason

    def test_reason_may_hold_obs_text(self) -> None:
        assert parse_response(b"HTTP/1.1 200 \xe9t\xe9\r\n\r\n").reason == "\xe9t\xe9"

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b"HTTP/2.0 200 OK", "unsupported HTTP version"),
            (b"HTTP/1.1 99 Too short", "malformed status line"),
            (b"HTTP/1.1 2000 Too long", "malformed status line"),
            (b"HTTP/1.1 abc OK", "malformed status line"),
            (b"HTTP/1.1 012 Leading zero", "invalid status code"),
            (b"HTTP/1.1  200 OK", "malformed status line"),
            (b"HTTP/1.1 200 O\x00K", "malformed status line"),
            (b"http/1.1 200 OK", "not an HTTP status line"),
            (b"ICY 200 OK", "not an HTTP status line"),
            (b"", "malformed status line"),
        ],
    )
    def test_invalid_status_lines_are_refused(self, line: bytes, message: str) -> None:
        with pytest.raises(HandshakeError, match=f"^invalid HTTP response: {message}"):
            ResponseParser().feed(line + b"\r\n\r\n")

    def test_non_http_peer_is_detected_on_its_first_bytes(self) -> None:
        # A TLS ServerHello on a plain connection: no need to wait for 8 KiB.
        parser = ResponseParser()
        assert parser.feed(b"HTT") is None
        with pytest.raises(HandshakeError, match="not an HTTP status line"):
            parser.feed(b"\x16\x03\x03")


class TestHeaderFields:
    """RFC 7230 §3.2: header-field = field-name ":" OWS field-value OWS."""

    def test_order_casing_and_repeats_are_kept(self) -> None:
        response = parse_response(
            b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nX-B: 2\r\nSet-Cookie: b=2\r\n\r\n"
        )
        assert response.headers.items() == [
            ("set-cookie", "a=1"),
            ("X-B", "2"),
            ("Set-Cookie", "b=2"),
        ]

    def test_optional_whitespace_is_trimmed(self) -> None:
        response = parse_response(b"HTTP/1.1 200 OK\r\nA:value\r\nB: \t v  w \t\r\nC:\r\n\r\n")
        assert response.headers.items() == [("A", "value"), ("B", "v  w"), ("C", "")]

    def test_obs_text_is_decoded_as_latin_1(self) -> None:
        response = parse_response(b"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\n\r\n")
        assert response.headers.get("X") == "caf\xc3\xa9"

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b" folded", "obsolete line folding"),
            (b"\tfolded", "obsolete line folding"),
            (b"No colon here", "header line without a colon"),
            (b"Name : value", "whitespace before the colon"),
            (b"Name\t: value", "whitespace before the colon"),
            (b": value", "invalid header name"),
            (b"Na(me): value", "invalid header name"),
            (b"Name: val\x00ue", "invalid character in header value"),
            (b"Name: val\rue", "invalid character in header value"),
            (b"Name: val\x7fue", "invalid character in header value"),
        ],
    )
    def test_invalid_fields_are_refused(self, line: bytes, message: str) -> None:
        with pytest.raises(HandshakeError, match=f"^invalid HTTP response: {message}"):
            ResponseParser().feed(b"HTTP/1.1 200 OK\r\nA: b\r\n" + line + b"\r\n\r\n")


class TestLineEndings:
    """RFC 7230 §3.5: a recipient MAY accept a bare LF as a line terminator."""

    def test_bare_lf_is_accepted(self) -> None:
        response = parse_response(SWITCHING.replace(b"\r\n", b"\n"))
        assert response == parse_response(SWITCHING)

    def test_mixed_line_endings_are_accepted(self) -> None:
        response = parse_response(b"HTTP/1.1 200 OK\nA: 1\r\nB: 2\n\r\n")
        assert response.headers.items() == [("A", "1"), ("B", "2")]


class TestIncrementalParsing:
    """Input split anywhere gives the same result; bytes after the head are kept."""

    def test_incomplete_head_returns_none(self) -> None:
        parser = ResponseParser()
        assert parser.feed(SWITCHING[:-1]) is None
        assert parser.remaining == b""
        response = parser.feed(SWITCHING[-1:])
        assert response == parse_response(SWITCHING)

    def test_one_byte_at_a_time(self) -> None:
        data = SWITCHING + FRAMES
        parser = ResponseParser()
        results = [parser.feed(data[i : i + 1]) for i in range(len(SWITCHING))]
        assert results[:-1] == [None] * (len(SWITCHING) - 1)
        assert results[-1] == parse_response(SWITCHING)
        assert parser.remaining == b""

    def test_frames_sent_with_the_101_are_kept(self) -> None:
        parser = ResponseParser()
        response = parser.feed(SWITCHING + FRAMES)
        assert response is not None
        assert response.status == 101
        assert parser.remaining == FRAMES

    def test_frames_after_a_split_head_are_kept(self) -> None:
        parser = ResponseParser()
        assert parser.feed(SWITCHING[:-3]) is None
        assert parser.feed(SWITCHING[-3:] + FRAMES) is not None
        assert parser.remaining == FRAMES

    def test_feeding_after_completion_is_a_bug(self) -> None:
        parser = ResponseParser()
        parser.feed(SWITCHING)
        with pytest.raises(RuntimeError, match="already complete"):
            parser.feed(FRAMES)

    @given(st.data())
    def test_any_chunking_gives_the_same_result(self, data: st.DataObject) -> None:
        message = SWITCHING + FRAMES
        cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=len(message)))
        parser = ResponseParser()
        chunks = split(message, cuts)
        response, fed = None, 0
        while response is None and fed < len(chunks):
            response = parser.feed(chunks[fed])
            fed += 1
        assert response == parse_response(SWITCHING)
        assert parser.remaining + b"".join(chunks[fed:]) == FRAMES


class TestLimits:
    """Limits are enforced as soon as they are crossed: no hang, no unbounded buffer."""

    def test_line_of_max_length_is_accepted(self) -> None:
        name = b"X: "
        line = name + b"v" * (MAX_LINE_LENGTH - len(name))
        response = parse_response(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n")
        assert response.headers.get("X") == "v" * (MAX_LINE_LENGTH - len(name))

    def test_complete_line_too_long_is_refused(self) -> None:
        line = b"X: " + b"v" * (MAX_LINE_LENGTH - 2)
        with pytest.raises(HandshakeError, match="line longer than 8192 bytes"):
            ResponseParser().feed(b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n")

    def test_unterminated_line_fails_as_soon_as_it_is_too_long(self) -> None:
        parser = ResponseParser()
        parser.feed(b"HTTP/1.1 200 OK\r\nX: ")
        # MAX_LINE_LENGTH + 1 bytes could still be a valid line and its CR.
        assert parser.feed(b"v" * (MAX_LINE_LENGTH - 2)) is None
        with pytest.raises(HandshakeError, match="line longer than"):
            parser.feed(b"v")

    def test_huge_chunk_without_line_ending_fails_at_once(self) -> None:
        with pytest.raises(HandshakeError, match="line longer than"):
            ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"v" * (10 * 1024 * 1024))

    def test_max_headers_are_accepted(self) -> None:
        response = parse_response(head_with_fields(MAX_HEADERS))
        assert len(response.headers) == MAX_HEADERS

    def test_too_many_headers_are_refused(self) -> None:
        with pytest.raises(HandshakeError, match="more than 128 header fields"):
            ResponseParser().feed(head_with_fields(MAX_HEADERS + 1))

    def test_head_too_large_is_refused(self) -> None:
        # 100 fields of 700 bytes: under the line and count limits, over 64 KiB.
        with pytest.raises(HandshakeError, match="head larger than 65536 bytes"):
            ResponseParser().feed(head_with_fields(100, 700))

    def test_head_too_large_is_refused_before_it_ends(self) -> None:
        parser = ResponseParser()
        head = head_with_fields(100, 700)[:-2]  # no final empty line
        with pytest.raises(HandshakeError, match="head larger than"):
            for start in range(0, len(head), 1000):
                parser.feed(head[start : start + 1000])

    def test_head_at_the_size_limit_fed_byte_by_byte(self) -> None:
        # About 64 KiB, one byte at a time: linear work keeps this fast.
        head = head_with_fields(90, 700)
        assert len(head) < MAX_HEAD_SIZE
        parser = ResponseParser()
        results = [parser.feed(head[i : i + 1]) for i in range(len(head))]
        assert results[-1] is not None
        assert len(results[-1].headers) == 90


class TestRequestParser:
    """RFC 7230 §3.1.1: request-line = method SP request-target SP HTTP-version."""

    REQUEST = b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\r\n"

    def test_fields_are_parsed(self) -> None:
        request = parse_request(self.REQUEST)
        assert request == Request(
            "GET",
            "/chat?x=1",
            Headers([("Host", "server.example.com"), ("Upgrade", "websocket")]),
            "HTTP/1.1",
        )

    def test_one_byte_at_a_time_and_remaining(self) -> None:
        parser = RequestParser()
        data = self.REQUEST + b"\x81\x85"
        results = [parser.feed(data[i : i + 1]) for i in range(len(self.REQUEST))]
        assert results[-1] == parse_request(self.REQUEST)
        assert parser.remaining == b""
        parser = RequestParser()
        parser.feed(data)
        assert parser.remaining == b"\x81\x85"

    def test_leading_empty_lines_are_ignored(self) -> None:
        # RFC 7230 §3.5: a server SHOULD ignore at least one leading empty line.
        assert parse_request(b"\r\n\n" + self.REQUEST) == parse_request(self.REQUEST)

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b"GET /chat", "malformed request line"),
            (b"GET  /chat HTTP/1.1", "malformed request line"),
            (b"GET /a b HTTP/1.1", "malformed request line"),
            (b"G(T / HTTP/1.1", "malformed request line"),
            (b"GET / HTTP/2.0", "unsupported HTTP version"),
        ],
    )
    def test_invalid_request_lines_are_refused(self, line: bytes, message: str) -> None:
        with pytest.raises(HandshakeError, match=f"^invalid HTTP request: {message}"):
            RequestParser().feed(line + b"\r\n\r\n")

    def test_header_errors_name_the_request(self) -> None:
        with pytest.raises(HandshakeError, match="^invalid HTTP request: whitespace before"):
            RequestParser().feed(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n")


class TestBodyReaderFraming:
    """RFC 7230 §3.3.3: how the body of a response ends."""

    @pytest.mark.parametrize("status", [100, 101, 204, 304])
    def test_statuses_without_body(self, status: int) -> None:
        reader = BodyReader(status, Headers([("Content-Length", "10")]))
        assert reader.complete
        assert reader.feed(b"ignored") is True
        assert reader.body == b""

    def test_content_length(self) -> None:
        reader = BodyReader(403, Headers([("Content-Length", "9")]))
        assert reader.feed(b"Forb") is False
        assert reader.feed(b"idden and more") is True
        assert reader.body == b"Forbidden"
        assert not reader.truncated

    def test_zero_content_length_is_complete_at_once(self) -> None:
        reader = BodyReader(404, Headers([("Content-Length", "0")]))
        assert reader.complete
        assert reader.body == b""

    def test_repeated_identical_content_lengths_are_accepted(self) -> None:
        reader = BodyReader(404, Headers([("Content-Length", "3, 3"), ("Content-Length", "3")]))
        assert reader.feed(b"abc") is True

    @pytest.mark.parametrize(
        "values", [["3", "4"], ["3, 4"], ["-1"], ["+3"], ["0x10"], [""], ["1 2"], ["³"]]
    )
    def test_invalid_content_length_is_refused(self, values: list[str]) -> None:
        with pytest.raises(HandshakeError, match="Content-Length"):
            BodyReader(400, Headers([("Content-Length", v) for v in values]))

    def test_chunked(self) -> None:
        reader = BodyReader(400, Headers([("Transfer-Encoding", "chunked")]))
        assert reader.feed(b"5\r\nHello\r\n7;ext=1\r\n, World\r\n") is False
        assert reader.feed(b"0\r\nTrailer: x\r\n\r\n") is True
        assert reader.body == b"Hello, World"
        assert not reader.truncated

    def test_chunked_with_bare_lf_and_upper_case_hex(self) -> None:
        reader = BodyReader(400, Headers([("Transfer-Encoding", "Chunked")]))
        assert reader.feed(b"A\n0123456789\n0\n\n") is True
        assert reader.body == b"0123456789"

    @given(st.data())
    def test_chunked_any_chunking(self, data: st.DataObject) -> None:
        body = b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n3 ; x\r\n123\r\n0\r\nT: 1\r\n\r\n"
        cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=len(body)))
        reader = BodyReader(500, Headers([("Transfer-Encoding", "chunked")]))
        results = [reader.feed(chunk) for chunk in split(body, cuts)]
        assert results[-1] is True
        assert reader.body == b"abcdefghijklmnopqrstuvwxyz123"

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"x\r\n", "invalid chunk size"),
            (b"\r\n", "invalid chunk size"),
            (b"-1\r\n", "invalid chunk size"),
            (b"3\r\nabcdef\r\n", "chunk data longer than its size"),
        ],
    )
    def test_invalid_chunks_are_refused(self, data: bytes, message: str) -> None:
        reader = BodyReader(400, Headers([("Transfer-Encoding", "chunked")]))
        with pytest.raises(HandshakeError, match=message):
            reader.feed(data)

    def test_overlong_chunk_line_is_refused(self) -> None:
        reader = BodyReader(400, Headers([("Transfer-Encoding", "chunked")]))
        with pytest.raises(HandshakeError, match="chunk line longer than"):
            reader.feed(b"1" * (MAX_LINE_LENGTH + 2))

    def test_transfer_encoding_wins_over_content_length(self) -> None:
        headers = Headers([("Content-Length", "100"), ("Transfer-Encoding", "chunked")])
        reader = BodyReader(400, headers)
        assert reader.feed(b"2\r\nok\r\n0\r\n\r\n") is True
        assert reader.body == b"ok"

    def test_non_chunked_transfer_encoding_reads_until_eof(self) -> None:
        reader = BodyReader(400, Headers([("Transfer-Encoding", "gzip")]))
        assert reader.feed(b"\x1f\x8b") is False
        reader.feed_eof()
        assert reader.complete
        assert reader.body == b"\x1f\x8b"
        assert not reader.truncated

    def test_until_eof_without_framing_headers(self) -> None:
        reader = BodyReader(503, Headers())
        assert reader.feed(b"down ") is False
        assert reader.feed(b"for maintenance") is False
        reader.feed_eof()
        assert reader.complete
        assert reader.body == b"down for maintenance"
        assert not reader.truncated

    def test_early_eof_keeps_what_was_read(self) -> None:
        reader = BodyReader(500, Headers([("Content-Length", "10")]))
        reader.feed(b"abc")
        reader.feed_eof()
        assert (reader.complete, reader.truncated, reader.body) == (True, True, b"abc")


class TestBodyReaderLimit:
    """Refusal bodies are capped at MAX_BODY_SIZE: truncated, never an error."""

    def test_default_limit(self) -> None:
        reader = BodyReader(500, Headers())
        reader.feed(b"x" * (MAX_BODY_SIZE + 10))
        assert (reader.complete, reader.truncated) == (True, True)
        assert len(reader.body) == MAX_BODY_SIZE

    def test_content_length_over_limit_stops_at_the_limit(self) -> None:
        reader = BodyReader(500, Headers([("Content-Length", "100")]), limit=10)
        assert reader.feed(b"x" * 10) is True
        assert (reader.truncated, reader.body) == (True, b"x" * 10)

    def test_body_of_exactly_the_limit_is_not_truncated(self) -> None:
        reader = BodyReader(500, Headers([("Content-Length", "10")]), limit=10)
        assert reader.feed(b"x" * 10) is True
        assert not reader.truncated

    def test_chunked_over_limit(self) -> None:
        reader = BodyReader(500, Headers([("Transfer-Encoding", "chunked")]), limit=4)
        assert reader.feed(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n") is True
        assert (reader.truncated, reader.body) == (True, b"abcd")

    def test_chunked_ending_exactly_at_limit_is_not_truncated(self) -> None:
        reader = BodyReader(500, Headers([("Transfer-Encoding", "chunked")]), limit=3)
        assert reader.feed(b"3\r\nabc\r\n0\r\n\r\n") is True
        assert (reader.truncated, reader.body) == (False, b"abc")

    def test_until_eof_over_limit(self) -> None:
        reader = BodyReader(500, Headers(), limit=5)
        assert reader.feed(b"123") is False
        assert reader.feed(b"456") is True
        assert (reader.truncated, reader.body) == (True, b"12345")


class TestSerialization:
    """Heads go out exactly in the given order and casing, validated."""

    def test_request_exact(self) -> None:
        data = serialize_request("GET", "/a?b=c", [("host", "x"), ("X-Two", "2"), ("Host", "y")])
        assert data == b"GET /a?b=c HTTP/1.1\r\nhost: x\r\nX-Two: 2\r\nHost: y\r\n\r\n"

    def test_request_values_are_utf_8(self) -> None:
        data = serialize_request("GET", "/", [("X-Name", "café")])
        assert data == b"GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n"

    @pytest.mark.parametrize(
        ("method", "target"),
        [("GET", "/a b"), ("GET", "/a\r\nX: 1"), ("G T", "/"), ("GET", ""), ("GET", "/é")],
    )
    def test_invalid_request_line_is_refused(self, method: str, target: str) -> None:
        with pytest.raises(ValueError, match="invalid request line"):
            serialize_request(method, target, [])

    def test_request_header_injection_is_refused(self) -> None:
        with pytest.raises(ValueError, match="header injection"):
            serialize_request("GET", "/", [("X", "1\r\nEvil: 1")])

    def test_response_exact(self) -> None:
        data = serialize_response(
            403, "Forbidden", [("Content-Length", "4"), ("x-b", "1")], b"nope"
        )
        assert data == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nx-b: 1\r\n\r\nnope"

    @pytest.mark.parametrize(("status", "reason"), [(99, "X"), (1000, "X"), (200, "O\r\nK")])
    def test_invalid_response_line_is_refused(self, status: int, reason: str) -> None:
        with pytest.raises(ValueError):
            serialize_response(status, reason, [])

    def test_round_trip(self) -> None:
        data = serialize_response(200, "OK", [("A", "1"), ("b", "two words")])
        assert parse_response(data) == Response(
            200, "OK", Headers([("A", "1"), ("b", "two words")])
        )


# Pieces of response heads, valid and not, for the equivalence tests below.
_STATUS_LINES = [
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.0 101",
    b"HTTP/1.1 101 ",
    b"HTTP/1.1 404 Not \x80Found\t",
    b"HTTP/1.1 099 Low",
    b"HTTP/2.0 101 Switching",
    b"HTTP/1.1 10 Short",
    b"HTTP/1.1 101 Bad\x7fReason",
    b"HTTP/1.1 101 Bad\rReason",
    b"http/1.1 101 Lower",
]
_FIELD_LINES = [
    b"Upgrade: websocket",
    b"Connection:Upgrade",
    b"X-Empty:",
    b"X-Spaces:   \t value with  spaces \t ",
    b"X-Obs: caf\xe9",
    b"X-Tab:\tv",
    b"Bad Name: v",
    b"Bad-Colon : v",
    b" folded: v",
    b"\tfolded: v",
    b"no colon",
    b"X-Ctl: a\x01b",
    b"X-Cr: a\rb",
    b":empty-name",
    b"X-Del: \x7f",
]


class TestOneChunkParsingMatchesLineByLine:
    """A whole head in one feed takes a one-match shortcut when it is simple;
    anything the shortcut does not take goes line by line. Both must agree."""

    @staticmethod
    def outcome(data: bytes, *, line_by_line: bool) -> object:
        parser = ResponseParser()
        try:
            if line_by_line:  # the general path, which the shortcut must agree with
                if not parser._feed(data):
                    return None
                version, status, reason = parser._start_line or ("", "", "")
                response = Response(int(status), reason, parser._headers, b"", version)
            else:
                maybe = parser.feed(data)
                if maybe is None:
                    return None
                response = maybe
        except HandshakeError as exc:
            return str(exc)
        fields = response.headers.items()
        return response.version, response.status, response.reason, fields, parser.remaining

    @given(
        status=st.sampled_from(_STATUS_LINES),
        fields=st.lists(st.sampled_from(_FIELD_LINES), max_size=6),
        endings=st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=8, max_size=8),
        tail=st.sampled_from([b"", FRAMES, b"\r\n"]),
    )
    def test_same_result_as_line_by_line(
        self, status: bytes, fields: list[bytes], endings: list[bytes], tail: bytes
    ) -> None:
        lines = [status, *fields, b""]
        head = b"".join(line + endings[i] for i, line in enumerate(lines))
        data = head + tail
        expected = self.outcome(data, line_by_line=True)
        assert self.outcome(data, line_by_line=False) == expected

    def test_simple_head_keeps_every_field_and_the_rest(self) -> None:
        parser = ResponseParser()
        response = parser.feed(SWITCHING[:-2] + b"X-Spaces:  a  b \t\r\n\r\n" + FRAMES)
        assert response is not None
        assert response.headers.items() == [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("X-Spaces", "a  b"),
        ]
        assert parser.remaining == FRAMES
        with pytest.raises(RuntimeError, match="already complete"):
            parser.feed(b"more")

    def test_limits_still_apply_to_a_head_in_one_piece(self) -> None:
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
        with pytest.raises(HandshakeError, match=f"more than {MAX_HEADERS} header fields"):
            ResponseParser().feed(b"HTTP/1.1 101 OK\r\n" + fields + b"\r\n")
        long_value = b"X-Long: " + b"v" * MAX_LINE_LENGTH + b"\r\n"
        with pytest.raises(HandshakeError, match="line longer than"):
            ResponseParser().feed(b"HTTP/1.1 101 OK\r\n" + long_value + b"\r\n")


def _validate_all(fields: list[tuple[str, str]]) -> str | None:
    """What validating each field in turn says: the first error, or None."""
    try:
        for name, value in fields:
            validate_header(name, value)
    except ValueError as exc:
        return str(exc)
    return None


class TestSerializationChecksEveryField:
    """Fields are checked with one match over all of them; errors still come
    from validate_header, naming the first bad field."""

    _texts = st.text(
        alphabet=st.sampled_from(list("aZ09-_!~:; \t\r\n\x00\x01\x7f\x80é€")), max_size=8
    )

    @given(fields=st.lists(st.tuples(_texts, _texts), max_size=5))
    def test_same_verdict_as_validate_header(self, fields: list[tuple[str, str]]) -> None:
        expected = _validate_all(fields)
        if expected is None:
            head = serialize_request("GET", "/", fields)
            lines = b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in fields)
            assert head == b"GET / HTTP/1.1\r\n" + lines + b"\r\n"
        else:
            with pytest.raises(ValueError) as info:
                serialize_request("GET", "/", fields)
            assert str(info.value) == expected

    @pytest.mark.parametrize(
        "fields",
        [
            [("X-A", "1\nInjected: 2")],
            [("X-A", "1\nB\x002")],  # shaped like two fields of the one-match check
            [("X-A\x00v\nB", "2")],
            [("X-A\nInjected", "2")],
            [("X-A:B", "c")],
            [("X-A", "1\x00"), ("B", "2")],
            [("A", "ok"), ("X-A", "1\r\n")],
        ],
    )
    def test_a_field_that_looks_like_two_is_refused(self, fields: list[tuple[str, str]]) -> None:
        with pytest.raises(ValueError, match="invalid"):
            serialize_request("GET", "/", fields)

    def test_a_value_that_is_not_a_str_fails_as_before(self) -> None:
        with pytest.raises(TypeError):
            serialize_request("GET", "/", [("X-Number", 1)])  # type: ignore[list-item]
