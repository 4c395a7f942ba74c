"""Random and mutated byte streams into the parser and the handshake validator.

Whatever arrives, the core either parses it or fails with its own error (the
connection closes with a code); nothing else escapes, nothing hangs, and a
hostile length field allocates nothing. Longer runs: the atheris harnesses in
fuzz/.
"""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidws.errors import HandshakeError
from rapidws.protocol.connection import Connection, Side, State
from rapidws.protocol.frames import build_frame
from rapidws.protocol.handshake import check_response
from rapidws.protocol.http11 import ResponseParser

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed_in_chunks(conn: Connection, data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        conn.receive_data(data[start:point])
        start = point


@st.composite
def valid_server_stream(draw: st.DrawFn) -> bytes:
    frames = []
    for _ in range(draw(st.integers(1, 8))):
        opcode = draw(st.sampled_from([0x1, 0x2, 0x9, 0xA]))
        payload = draw(st.binary(max_size=200 if opcode < 8 else 125))
        if opcode == 0x1:
            payload = payload.decode("latin-1").encode()  # valid UTF-8
        frames.append(build_frame(opcode, payload))
    return b"".join(frames)


class TestFrameStreams:
    @FUZZ
    @given(data=st.binary(max_size=2048), cuts=st.lists(st.integers(0, 2048), max_size=8))
    def test_random_bytes_parse_or_fail_cleanly(self, data: bytes, cuts: list[int]) -> None:
        conn = Connection(Side.CLIENT, max_message_size=1 << 20)
        feed_in_chunks(conn, data, cuts)  # must not raise
        if conn.failure is not None:
            assert conn.state is State.CLOSED
            assert 1000 <= conn.failure.close_code <= 1011
            out = conn.data_to_send()
            assert out and out[-1][0] == 0x88  # a CLOSE frame goes out

    @FUZZ
    @given(
        stream=valid_server_stream(),
        flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
        cuts=st.lists(st.integers(0, 10_000), max_size=6),
    )
    def test_mutated_valid_streams(
        self, stream: bytes, flips: list[tuple[int, int]], cuts: list[int]
    ) -> None:
        data = bytearray(stream)
        for index, xor in flips:
            data[index % len(data)] ^= xor
        conn = Connection(Side.CLIENT, max_message_size=1 << 20)
        feed_in_chunks(conn, bytes(data), cuts)
        messages_or_failure = conn.failure is not None or conn.state is State.OPEN
        assert messages_or_failure or conn.close_received is not None

    @FUZZ
    @given(length=st.integers((1 << 20) + 1, (1 << 63) - 1), opcode=st.sampled_from([1, 2]))
    def test_hostile_lengths_allocate_nothing(self, length: int, opcode: int) -> None:
        header = bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")
        tracemalloc.start()
        try:
            conn = Connection(Side.CLIENT, max_message_size=1 << 20)
            conn.receive_data(header + b"x" * 100)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert conn.failure is not None and conn.failure.close_code == 1009
        assert peak < 256 * 1024


class TestHandshakeValidator:
    @FUZZ
    @given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=8))
    def test_random_responses_give_a_response_or_handshake_error(
        self, data: bytes, cuts: list[int]
    ) -> None:
        parser = ResponseParser()
        points = sorted({c % (len(data) + 1) for c in cuts})
        start = 0
        try:
            for point in [*points, len(data)]:
                response = parser.feed(data[start:point])
                start = point
                if response is not None:
                    check_response(response, key="dGhlIHNhbXBsZSBub25jZQ==")
                    break
        except HandshakeError:
            pass

    @FUZZ
    @given(
        flips=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 255)), max_size=4),
    )
    def test_mutated_101_responses(self, flips: list[tuple[int, int]]) -> None:
        valid = bytearray(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        )
        for index, xor in flips:
            valid[index % len(valid)] ^= xor
        parser = ResponseParser()
        try:
            response = parser.feed(bytes(valid))
            if response is not None:
                check_response(response, key="dGhlIHNhbXBsZSBub25jZQ==")
        except HandshakeError:
            pass
