"""FrameParser: incremental parsing of RFC 6455 §5.2 frames and the header rules."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side as WsSide
from websockets.streams import StreamReader

from rapidws.errors import ProtocolError
from rapidws.protocol.frames import Frame, MaskKeys, Opcode, build_frame
from rapidws.protocol.parser import FrameParser

GIB = 1 << 30
KEYS = MaskKeys()


def header_64(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """An unmasked header announcing ``length`` in the 64-bit form, built by hand."""
    return bytes([opcode | (0x80 if fin else 0), 127]) + length.to_bytes(8, "big")


def feed_error(parser: FrameParser, data: bytes) -> ProtocolError:
    """Feed ``data`` and return the violation it must contain."""
    assert parser.feed(data) == []
    assert parser.error is not None
    return parser.error


def feed_chunks(parser: FrameParser, chunks: list[bytes]) -> list[Frame]:
    parsed: list[Frame] = []
    for chunk in chunks:
        parsed += parser.feed(chunk)
    return parsed


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# Hypothesis: frames the parser must accept, in any order (the parser does not
# track messages, the assembler does).
# Long payloads repeat a short random pattern: cheap to generate, and they still
# exercise the 16-bit and 64-bit length forms.
long_payloads = st.builds(
    lambda size, pattern: (pattern * (size // len(pattern) + 1))[:size],
    st.integers(126, 70000),
    st.binary(min_size=1, max_size=16),
)
data_frames = st.builds(
    Frame,
    opcode=st.sampled_from([Opcode.CONT, Opcode.TEXT, Opcode.BINARY]),
    payload=st.binary(max_size=300) | long_payloads,
    fin=st.booleans(),
)
control_frames = st.builds(
    Frame,
    opcode=st.sampled_from([Opcode.CLOSE, Opcode.PING, Opcode.PONG]),
    payload=st.binary(max_size=125),
)
any_frames = st.lists(data_frames | control_frames, max_size=12)


class TestSection5_2Header:
    """Header fields are read correctly in every length form."""

    @pytest.mark.parametrize(
        ("header", "length"),
        [
            ("827d", 125),
            ("827e007e", 126),
            ("827effff", 65535),
            ("827f0000000000010000", 65536),
        ],
    )
    def test_length_forms(self, header: str, length: int) -> None:
        payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
        parser = FrameParser(expect_masked=False)
        assert parser.feed(bytes.fromhex(header) + payload) == [Frame(Opcode.BINARY, payload)]

    def test_64_bit_length_over_4_gib_is_read_in_full(self) -> None:
        # 5 GiB is 0x1_4000_0000: truncated to 32 bits it would read as 1 GiB.
        header = header_64(Opcode.BINARY, 5 * GIB)
        error = feed_error(FrameParser(expect_masked=False, max_size=2 * GIB), header)
        assert error.close_code == 1009
        assert error.reason == f"frame of {5 * GIB} bytes exceeds the limit of {2 * GIB}"
        # At exactly its length the limit lets the frame through: it waits.
        parser = FrameParser(expect_masked=False, max_size=5 * GIB)
        assert parser.feed(header) == []
        assert parser.error is None

    def test_huge_frame_fails_at_the_header_without_allocating(self) -> None:
        parser = FrameParser(expect_masked=False, max_size=1 << 20)
        tracemalloc.start()
        try:
            error = feed_error(parser, header_64(Opcode.BINARY, 5 * GIB))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert error.close_code == 1009
        assert peak < 64 * 1024
        assert parser.buffered == 0

    def test_huge_frame_without_limit_waits_buffering_only_what_came(self) -> None:
        parser = FrameParser(expect_masked=False, max_size=None)
        tracemalloc.start()
        try:
            assert parser.feed(header_64(Opcode.BINARY, 5 * GIB)) == []
            assert parser.buffered == 10
            for _ in range(4):
                assert parser.feed(bytes(16384)) == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert parser.error is None
        assert parser.buffered == 10 + 65536
        assert peak < 1 << 20

    @pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1])
    def test_most_significant_bit_of_64_bit_length_is_1002(self, length: int) -> None:
        # §5.2: "the most significant bit MUST be 0".
        for max_size in (None, 1 << 20):
            parser = FrameParser(expect_masked=False, max_size=max_size)
            error = feed_error(parser, header_64(Opcode.BINARY, length))
            assert error.close_code == 1002

    def test_largest_legal_64_bit_length_waits(self) -> None:
        parser = FrameParser(expect_masked=False)
        assert parser.feed(header_64(Opcode.BINARY, (1 << 63) - 1)) == []
        assert parser.error is None

    def test_non_minimal_length_forms_are_accepted(self) -> None:
        # §5.2 asks senders for the minimal form; receivers need not enforce it.
        parser = FrameParser(expect_masked=False)
        assert parser.feed(b"\x82\x7e\x00\x02ab" + header_64(Opcode.TEXT, 2) + b"cd") == [
            Frame(Opcode.BINARY, b"ab"),
            Frame(Opcode.TEXT, b"cd"),
        ]


class TestSection5_1Masking:
    """§5.1: a server MUST close on an unmasked frame, a client on a masked one."""

    def test_server_refuses_unmasked_frame(self) -> None:
        error = feed_error(FrameParser(expect_masked=True), b"\x81\x02hi")
        assert error.close_code == 1002

    def test_client_refuses_masked_frame(self) -> None:
        frame = build_frame(Opcode.TEXT, b"hi", mask=b"\x01\x02\x03\x04")
        error = feed_error(FrameParser(expect_masked=False), frame)
        assert error.close_code == 1002

    def test_server_unmasks(self) -> None:
        frame = bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455 §5.7
        assert FrameParser(expect_masked=True).feed(frame) == [Frame(Opcode.TEXT, b"Hello")]


class TestSection5_2ReservedBits:
    @pytest.mark.parametrize("bits", [0x40, 0x20, 0x10, 0x70])
    def test_reserved_bit_without_extension_is_1002(self, bits: int) -> None:
        error = feed_error(FrameParser(expect_masked=False), bytes([0x81 | bits, 0]))
        assert error.close_code == 1002

    @pytest.mark.parametrize("bits", [0x20, 0x10, 0x60, 0x50])
    def test_rsv2_and_rsv3_fail_even_when_rsv1_is_allowed(self, bits: int) -> None:
        parser = FrameParser(expect_masked=False, rsv1_allowed=True)
        assert feed_error(parser, bytes([0x81 | bits, 0])).close_code == 1002

    def test_rsv1_accepted_when_an_extension_defines_it(self) -> None:
        parser = FrameParser(expect_masked=False, rsv1_allowed=True)
        assert parser.feed(b"\xc1\x00") == [Frame(Opcode.TEXT, b"", rsv1=True)]
        assert parser.error is None


class TestSection5_2Opcodes:
    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcode_is_1002_before_the_payload(self, opcode: int) -> None:
        # Only the header arrives: the opcode alone condemns the frame.
        error = feed_error(FrameParser(expect_masked=False), bytes([0x80 | opcode, 5]))
        assert error.close_code == 1002
        assert error.reason == f"reserved opcode {opcode:#x}"

    @pytest.mark.parametrize("opcode", [0x0, 0x1, 0x2, 0x8, 0x9, 0xA])
    def test_defined_opcodes_are_accepted(self, opcode: int) -> None:
        parser = FrameParser(expect_masked=False)
        assert parser.feed(bytes([0x80 | opcode, 0])) == [Frame(opcode, b"")]


class TestSection5_5ControlFrames:
    @pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
    def test_fragmented_control_frame_is_1002(self, opcode: Opcode) -> None:
        error = feed_error(FrameParser(expect_masked=False), bytes([opcode, 0]))
        assert error.close_code == 1002

    @pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
    def test_control_frame_of_126_bytes_is_1002_before_the_payload(self, opcode: Opcode) -> None:
        error = feed_error(FrameParser(expect_masked=False), bytes([0x80 | opcode, 126, 0, 126]))
        assert error.close_code == 1002

    def test_control_frame_of_125_bytes_is_accepted(self) -> None:
        parser = FrameParser(expect_masked=False)
        assert parser.feed(build_frame(Opcode.PING, bytes(125))) == [Frame(Opcode.PING, bytes(125))]


class TestMaxSize:
    """A frame over ``max_size`` fails with 1009 as soon as its length is known."""

    @pytest.mark.parametrize(
        ("limit", "header"),
        [(100, b"\x82\x65"), (200, b"\x82\x7e\x00\xc9"), (70000, header_64(2, 70001))],
    )
    def test_over_the_limit_is_1009_from_the_header_alone(self, limit: int, header: bytes) -> None:
        error = feed_error(FrameParser(expect_masked=False, max_size=limit), header)
        assert error.close_code == 1009

    def test_masked_frame_over_the_limit_fails_before_the_mask_key(self) -> None:
        error = feed_error(FrameParser(expect_masked=True, max_size=100), b"\x82\xe5")
        assert error.close_code == 1009

    @pytest.mark.parametrize("limit", [0, 100, 65536])
    def test_exactly_at_the_limit_is_accepted(self, limit: int) -> None:
        parser = FrameParser(expect_masked=False, max_size=limit)
        frame = build_frame(Opcode.BINARY, bytes(limit))
        assert parser.feed(frame) == [Frame(Opcode.BINARY, bytes(limit))]
        assert parser.error is None


class TestErrors:
    def test_frames_before_the_violation_are_returned(self) -> None:
        parser = FrameParser(expect_masked=False)
        data = build_frame(Opcode.TEXT, b"a") + build_frame(Opcode.PING, b"b") + b"\x83\x00"
        assert parser.feed(data) == [Frame(Opcode.TEXT, b"a"), Frame(Opcode.PING, b"b")]
        assert parser.error is not None
        assert parser.error.close_code == 1002

    def test_nothing_is_parsed_after_a_violation(self) -> None:
        parser = FrameParser(expect_masked=False)
        parser.feed(b"\x81\x01a\x83")  # the reserved opcode is known from one byte
        assert parser.feed(b"\x00") == []  # error is already set
        error = parser.error
        assert error is not None
        assert parser.feed(build_frame(Opcode.TEXT, b"later")) == []
        assert parser.error is error
        assert parser.buffered == 0


class TestBuffering:
    def test_partial_frame_is_kept_until_complete(self) -> None:
        parser = FrameParser(expect_masked=False)
        frame = build_frame(Opcode.TEXT, b"hello")
        assert parser.feed(frame[:1]) == []
        assert parser.buffered == 1
        assert parser.feed(frame[1:4]) == []
        assert parser.buffered == 4
        assert parser.feed(frame[4:] + frame[:3]) == [Frame(Opcode.TEXT, b"hello")]
        assert parser.buffered == 3
        assert parser.feed(frame[3:]) == [Frame(Opcode.TEXT, b"hello")]
        assert parser.buffered == 0

    def test_callers_buffer_is_not_kept(self) -> None:
        parser = FrameParser(expect_masked=False)
        chunk = bytearray(b"\x81\x05he")
        parser.feed(chunk)  # type: ignore[arg-type]  # bytearray from a reader
        chunk[2:4] = b"XX"
        assert parser.feed(b"llo") == [Frame(Opcode.TEXT, b"hello")]

    @pytest.mark.parametrize("masked", [False, True])
    def test_one_byte_at_a_time(self, masked: bool) -> None:
        sent = [
            Frame(Opcode.TEXT, b"Hel", fin=False),
            Frame(Opcode.PING, b"?"),
            Frame(Opcode.CONT, b"lo"),
            Frame(Opcode.BINARY, bytes(300)),
            Frame(Opcode.BINARY, b""),
            Frame(Opcode.CLOSE, b"\x03\xe8"),
        ]
        stream = b"".join(
            build_frame(f.opcode, f.payload, fin=f.fin, mask=KEYS.next() if masked else None)
            for f in sent
        )
        parser = FrameParser(expect_masked=masked)
        assert feed_chunks(parser, [stream[i : i + 1] for i in range(len(stream))]) == sent
        assert parser.buffered == 0

    @settings(max_examples=60, deadline=None)
    @given(sent=any_frames, masked=st.booleans(), data=st.data())
    def test_any_chunking_gives_the_same_frames(
        self, sent: list[Frame], masked: bool, data: st.DataObject
    ) -> None:
        stream = b"".join(
            build_frame(f.opcode, f.payload, fin=f.fin, mask=KEYS.next() if masked else None)
            for f in sent
        )
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40), label="cuts")
        parser = FrameParser(expect_masked=masked)
        assert feed_chunks(parser, split_at(stream, cuts)) == sent
        assert parser.error is None
        assert parser.buffered == 0


def websockets_parse(data: bytes, *, mask: bool) -> WsFrame:
    """Parse one frame with the websockets library, which must consume all of ``data``."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parsing = WsFrame.parse(reader.read_exact, mask=mask, max_size=None)
    try:
        next(parsing)
    except StopIteration as done:
        frame = done.value
        assert isinstance(frame, WsFrame)
        assert reader.buffer == b""
        return frame
    raise AssertionError("websockets needs more bytes than the frame holds")


class TestPendingText:
    """``pending_text``: the arrived part of a text frame, for §8.1 fail-fast UTF-8."""

    def test_payload_of_a_text_frame_still_arriving(self) -> None:
        parser = FrameParser(expect_masked=False)
        assert parser.feed(build_frame(Opcode.TEXT, b"hello world")[:8]) == []
        assert parser.pending_text(0, False) == (1, b"hello ")
        assert parser.pending_text(4, False) == (1, b"o ")
        assert parser.pending_text(6, False) is None  # nothing new past skip

    @pytest.mark.parametrize("length", [200, 70000])
    def test_extended_length_forms(self, length: int) -> None:
        parser = FrameParser(expect_masked=False)
        payload = b"x" * length
        assert parser.feed(build_frame(Opcode.TEXT, payload)[:-1]) == []
        assert parser.pending_text(0, False) == (1, payload[:-1])

    def test_incomplete_header_gives_nothing(self) -> None:
        parser = FrameParser(expect_masked=False)
        parser.feed(header_64(Opcode.TEXT, 1000)[:5])
        assert parser.pending_text(0, False) is None

    def test_binary_and_control_frames_give_nothing(self) -> None:
        for opcode in (Opcode.BINARY, Opcode.PING):
            parser = FrameParser(expect_masked=False)
            parser.feed(build_frame(opcode, b"payload")[:5])
            assert parser.pending_text(0, True) is None

    def test_continuation_only_of_a_text_message(self) -> None:
        parser = FrameParser(expect_masked=False)
        parser.feed(build_frame(Opcode.CONT, b"more text")[:6])
        assert parser.pending_text(0, False) is None
        assert parser.pending_text(0, True) == (0, b"more")

    @pytest.mark.parametrize("skip", [0, 1, 2, 3, 5])
    def test_masked_payload_is_unmasked_from_the_right_key_offset(self, skip: int) -> None:
        parser = FrameParser(expect_masked=True)
        parser.feed(build_frame(Opcode.TEXT, b"abcdefghij", mask=KEYS.next())[:14])
        assert parser.pending_text(skip, False) == (1, b"abcdefgh"[skip:])

    def test_nothing_after_a_violation(self) -> None:
        parser = FrameParser(expect_masked=False)
        parser.feed(b"\xc1\x05ab")  # RSV1 without an extension
        assert parser.error is not None
        assert parser.pending_text(0, False) is None


class TestInteroperabilityWithWebsockets:
    """The websockets library as an independent parser and serializer."""

    @settings(max_examples=100, deadline=None)
    @given(frame=data_frames | control_frames)
    def test_our_client_frames_parse_identically_in_websockets(self, frame: Frame) -> None:
        built = build_frame(frame.opcode, frame.payload, fin=frame.fin, mask=KEYS.next())
        theirs = websockets_parse(built, mask=True)
        assert (int(theirs.opcode), bytes(theirs.data), theirs.fin) == (
            frame.opcode,
            frame.payload,
            frame.fin,
        )
        assert (theirs.rsv1, theirs.rsv2, theirs.rsv3) == (False, False, False)

    @settings(max_examples=100, deadline=None)
    @given(frame=data_frames | control_frames)
    def test_our_server_frames_parse_identically_in_websockets(self, frame: Frame) -> None:
        built = build_frame(frame.opcode, frame.payload, fin=frame.fin)
        theirs = websockets_parse(built, mask=False)
        assert (int(theirs.opcode), bytes(theirs.data), theirs.fin) == (
            frame.opcode,
            frame.payload,
            frame.fin,
        )

    @settings(max_examples=60, deadline=None)
    @given(sent=any_frames, masked=st.booleans(), data=st.data())
    def test_websockets_frames_parse_identically_here(
        self, sent: list[Frame], masked: bool, data: st.DataObject
    ) -> None:
        stream = b"".join(
            WsFrame(WsOpcode(f.opcode), f.payload, fin=f.fin).serialize(mask=masked) for f in sent
        )
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts")
        parser = FrameParser(expect_masked=masked)
        assert feed_chunks(parser, split_at(stream, cuts)) == sent
        assert parser.error is None

    @settings(max_examples=40, deadline=None)
    @given(
        pieces=st.lists(st.binary(max_size=200), min_size=1, max_size=5),
        ping=st.binary(max_size=125),
    )
    def test_websockets_server_protocol_reads_a_fragmented_message(
        self, pieces: list[bytes], ping: bytes
    ) -> None:
        # A whole exchange through websockets' own sans-I/O server state machine
        # (OPEN, as after a completed handshake): it checks masking, fragment
        # order and control frames between fragments.
        server = WsProtocol(WsSide.SERVER, max_size=None)
        stream = b""
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            opcode = Opcode.BINARY if i == 0 else Opcode.CONT
            stream += build_frame(opcode, piece, fin=last, mask=KEYS.next())
            if i == 0:
                stream += build_frame(Opcode.PING, ping, mask=KEYS.next())
        server.receive_data(stream)
        assert server.parser_exc is None
        received = [
            (int(f.opcode), bytes(f.data), f.fin)
            for f in server.events_received()
            if isinstance(f, WsFrame)
        ]
        expected = [(2 if i == 0 else 0, p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        expected.insert(1, (Opcode.PING, ping, True))
        assert received == expected
        # websockets answered the PING; our client-side parser reads the PONG.
        pong = b"".join(server.data_to_send())
        assert FrameParser(expect_masked=False).feed(pong) == [Frame(Opcode.PONG, ping)]
