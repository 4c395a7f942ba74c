"""FrameParser: incremental parsing of RFC 6455 §5.2 frames and the header rules."""

from __future__ import annotations

import array
import itertools
import tracemalloc
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side as WsSide
from websockets.streams import StreamReader

from rapidws.errors import ProtocolError
from rapidws.protocol import _fallback
from rapidws.protocol import parser as parser_module
from rapidws.protocol.frames import Frame, MaskKeys, Opcode, build_frame
from rapidws.protocol.parser import READ_SIZE, FrameParser
from tests.protocol.conftest import BytesLike, HotFunctions

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

    def test_huge_frame_without_limit_waits_allocating_little_ahead(self) -> None:
        # A header's word is worth _ALLOC_AHEAD at most: 5 GiB announced and
        # 64 KiB sent cost about 1 MiB, not 5 GiB.
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
        assert peak < parser_module._ALLOC_AHEAD + 256 * 1024

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
        parser.feed(chunk)  # a bytearray, as a reader may hand out
        chunk[2:4] = b"XX"
        assert parser.feed(b"llo") == [Frame(Opcode.TEXT, b"hello")]

    def test_views_of_a_reused_read_buffer(self) -> None:
        # As asyncio.BufferedProtocol hands them out: every read lands in the
        # same buffer, overwriting the last, and the parser sees a view of it.
        sent = [Frame(Opcode.TEXT, b"x" * n) for n in (3, 200, 70000, 0, 5)]
        stream = b"".join(build_frame(f.opcode, f.payload) for f in sent)
        parser = FrameParser(expect_masked=False)
        buffer = bytearray(4096)
        parsed: list[Frame] = []
        for start in range(0, len(stream), 1000):
            piece = stream[start : start + 1000]
            buffer[: len(piece)] = piece
            parsed += parser.feed(memoryview(buffer)[: len(piece)])
            buffer[:] = bytes(4096)  # the next read overwrites it
        assert parsed == sent
        assert parser.buffered == 0

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


def read_chunks(parser: FrameParser, stream: bytes, sizes: list[int]) -> list[Frame]:
    """Deliver ``stream`` as asyncio.BufferedProtocol does: each read lands in
    ``read_buffer()`` (at most the size asked, at most what the buffer holds),
    then ``read_done(n)``. The shared buffer is scribbled over after every
    read, as the next read on any connection of the thread may do."""
    shared = FrameParser(expect_masked=False).read_buffer()
    parsed: list[Frame] = []
    pos = 0
    for size in itertools.cycle(sizes or [len(stream) or 1]):
        if pos == len(stream):
            return parsed
        view = parser.read_buffer()
        n = min(size, len(view), len(stream) - pos)
        assert n > 0
        view[:n] = stream[pos : pos + n]
        pos += n
        parsed += parser.read_done(n)
        shared[:] = bytes(len(shared))
    raise AssertionError("unreachable")


big_frames = st.builds(
    Frame,
    opcode=st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    payload=st.sampled_from([bytes(range(256)) * 256, b"\xab" * (READ_SIZE - 11)])
    | st.integers(READ_SIZE - 20, READ_SIZE + 600_000).map(lambda n: b"z" * n),
    fin=st.booleans(),
)


class TestReadBuffer:
    """``read_buffer``/``read_done``: the same frames as ``feed``, without a
    bytes object per read."""

    @settings(max_examples=40, deadline=None)
    @given(
        sent=st.lists(data_frames | control_frames | big_frames, max_size=6),
        masked=st.booleans(),
        sizes=st.lists(st.integers(1, 300_000), max_size=6),
    )
    def test_any_reads_give_the_frames_of_feed(
        self, sent: list[Frame], masked: bool, sizes: list[int]
    ) -> None:
        stream = b"".join(
            build_frame(f.opcode, f.payload, fin=f.fin, mask=KEYS.next() if masked else None)
            for f in sent
        )
        parser = FrameParser(expect_masked=masked)
        assert read_chunks(parser, stream, sizes) == sent
        assert parser.error is None
        assert parser.buffered == 0

    def test_parsers_of_a_thread_share_one_buffer(self) -> None:
        a, b = FrameParser(expect_masked=False), FrameParser(expect_masked=False)
        assert a.read_buffer().obj is b.read_buffer().obj
        assert len(a.read_buffer()) == READ_SIZE

    def test_each_thread_has_its_own_buffer(self) -> None:
        # One event loop per thread: reads in two threads may land at once.
        parser = FrameParser(expect_masked=False)
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(lambda: FrameParser(expect_masked=False).read_buffer()).result()
        assert other.obj is not parser.read_buffer().obj

    def test_broken_rule_after_good_frames(self) -> None:
        parser = FrameParser(expect_masked=False)
        view = parser.read_buffer()
        data = build_frame(Opcode.TEXT, b"a") + b"\x83\x00"
        view[: len(data)] = data
        assert parser.read_done(len(data)) == [Frame(Opcode.TEXT, b"a")]
        assert parser.error is not None
        assert parser.error.reason == "reserved opcode 0x3"
        view = parser.read_buffer()
        view[:2] = b"\x81\x00"
        assert parser.read_done(2) == []


def as_tuple(opcode: int, payload: bytes, fin: bool, rsv1: bool) -> tuple[int, bytes, bool, bool]:
    return (opcode, payload, fin, rsv1)


def raw_frame(b0: int, mask: bytes | None, payload: bytes, *, length_form: int = 0) -> bytes:
    """A frame with any first byte (reserved bits and opcodes too), in the
    smallest length form or a larger one (``length_form`` 1: 16 bits, 2: 64)."""
    n = len(payload)
    form = max(length_form, 0 if n < 126 else 1 if n < 65536 else 2)
    bit = 0x80 if mask is not None else 0
    if form == 0:
        head = bytes([b0, bit | n])
    elif form == 1:
        head = bytes([b0, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# Frames with every header bit free: reserved bits, reserved opcodes, control
# frames that are too long or fragmented, either masking: each implementation
# must stop at the same header, after the same frames.
wild_frames = st.builds(
    raw_frame,
    b0=st.integers(0, 255),
    mask=st.none() | st.binary(min_size=4, max_size=4),
    payload=st.binary(max_size=140) | st.sampled_from([bytes(126), bytes(300), bytes(65536)]),
    length_form=st.integers(0, 2),
)
tame_b0 = st.sampled_from([0x80, 0x81, 0x82, 0x00, 0x01, 0x02, 0x88, 0x89, 0x8A, 0xC1])
tame_frames = st.builds(
    raw_frame,
    b0=tame_b0,
    mask=st.just(None),
    payload=st.binary(max_size=125),
)
impl_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestParseFramesImplementations:
    """``parse_frames`` of ``_speedups`` (c) does what ``_fallback`` (py) specifies."""

    @impl_settings
    @given(
        stream=st.lists(tame_frames | wild_frames, max_size=8).map(b"".join),
        cut=st.integers(0, 1 << 17),
        expect_masked=st.booleans(),
        rsv1_allowed=st.booleans(),
        max_size=st.none() | st.integers(0, 70000),
    )
    def test_same_frames_and_position_as_the_specification(
        self,
        impl: HotFunctions,
        stream: bytes,
        cut: int,
        expect_masked: bool,
        rsv1_allowed: bool,
        max_size: int | None,
    ) -> None:
        buf = stream[:cut]
        args = (as_tuple, expect_masked, rsv1_allowed, max_size)
        ours: list[tuple[int, bytes, bool, bool]] = []
        spec: list[tuple[int, bytes, bool, bool]] = []
        assert impl.parse_frames(buf, ours, *args) == _fallback.parse_frames(buf, spec, *args)
        assert ours == spec

    @impl_settings
    @given(sent=any_frames, masked=st.booleans(), data=st.data())
    def test_every_complete_frame_up_to_a_cut(
        self, impl: HotFunctions, sent: list[Frame], masked: bool, data: st.DataObject
    ) -> None:
        built = [
            build_frame(f.opcode, f.payload, fin=f.fin, mask=KEYS.next() if masked else None)
            for f in sent
        ]
        stream = b"".join(built)
        cut = data.draw(st.integers(0, len(stream)), label="cut")
        complete = list(
            itertools.takewhile(lambda end: end <= cut, itertools.accumulate(map(len, built)))
        )
        frames: list[Frame] = []
        pos = impl.parse_frames(stream[:cut], frames, Frame, masked, False, None)
        assert frames == sent[: len(complete)]
        assert pos == (complete[-1] if complete else 0)

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_any_bytes_like_buffer(
        self, impl: HotFunctions, kind: Callable[[bytes], BytesLike]
    ) -> None:
        stream = build_frame(Opcode.TEXT, b"hi") + build_frame(Opcode.BINARY, bytes(300)) + b"\x82"
        frames: list[Frame] = []
        assert impl.parse_frames(kind(stream), frames, Frame, False, False, None) == len(stream) - 1
        assert frames == [Frame(Opcode.TEXT, b"hi"), Frame(Opcode.BINARY, bytes(300))]

    def test_view_of_wider_items_counts_bytes(self, impl: HotFunctions) -> None:
        stream = build_frame(Opcode.TEXT, b"hello") + build_frame(Opcode.BINARY, b"!")
        words = array.array("I")
        assert len(stream) % 4 == 2
        words.frombytes(stream + b"\x82\x7e")  # a header still missing its 16-bit length
        frames: list[Frame] = []
        assert impl.parse_frames(memoryview(words), frames, Frame, False, False, None) == len(
            stream
        )
        assert frames == [Frame(Opcode.TEXT, b"hello"), Frame(Opcode.BINARY, b"!")]

    def test_strided_view_is_a_buffer_error(self, impl: HotFunctions) -> None:
        with pytest.raises(BufferError):
            impl.parse_frames(memoryview(bytes(8))[::2], [], Frame, False, False, None)

    def test_view_into_the_middle_of_a_chunk(self, impl: HotFunctions) -> None:
        frame = build_frame(Opcode.BINARY, bytes(range(200)), mask=b"\x01\x02\x03\x04")
        chunk = b"xyz" + frame
        frames: list[Frame] = []
        pos = impl.parse_frames(memoryview(chunk)[3:], frames, Frame, True, False, None)
        assert (pos, frames) == (len(frame), [Frame(Opcode.BINARY, bytes(range(200)))])

    @pytest.mark.parametrize(
        ("bad", "rule"),
        [
            (b"\xc1\x00", "RSV1 without an extension"),
            (b"\xa1\x00", "RSV2"),
            (b"\x83\x00", "reserved opcode"),
            (b"\x09\x00", "fragmented PING"),
            (b"\x89\x7e\x00\x7e", "PING of 126 bytes"),
            (b"\x81\x80", "masked frame to a client"),
            (b"\x82\x7f\x80" + bytes(7), "64-bit length with the top bit"),
            (b"\x82\x7e\x01\x00", "over max_size"),
        ],
    )
    def test_broken_rule_returns_the_complement_of_its_position(
        self, impl: HotFunctions, bad: bytes, rule: str
    ) -> None:
        good = build_frame(Opcode.TEXT, b"ok")
        frames: list[Frame] = []
        assert impl.parse_frames(good + bad + good, frames, Frame, False, False, 255) == ~len(good)
        assert frames == [Frame(Opcode.TEXT, b"ok")]

    def test_header_is_judged_before_its_mask_key_and_payload(self, impl: HotFunctions) -> None:
        # A server sees 5 GiB announced over a 1 MiB limit: fails on 10 bytes.
        header = b"\x82\xff" + (5 << 30).to_bytes(8, "big")
        assert impl.parse_frames(header, [], Frame, True, False, 1 << 20) == ~0
        assert impl.parse_frames(header, [], Frame, True, False, None) == 0

    @pytest.mark.parametrize("max_size", [None, 1 << 64, 1 << 70])
    def test_max_size_beyond_64_bits_is_no_limit(
        self, impl: HotFunctions, max_size: int | None
    ) -> None:
        header = b"\x82\x7f" + ((1 << 63) - 1).to_bytes(8, "big")
        assert impl.parse_frames(header, [], Frame, False, False, max_size) == 0

    def test_frames_may_be_any_object_with_append(self, impl: HotFunctions) -> None:
        frames: deque[Frame] = deque()
        stream = build_frame(Opcode.TEXT, b"a") + build_frame(Opcode.TEXT, b"b")
        assert impl.parse_frames(stream, frames, Frame, False, False, None) == len(stream)  # type: ignore[arg-type]
        assert list(frames) == [Frame(Opcode.TEXT, b"a"), Frame(Opcode.TEXT, b"b")]

    def test_make_frame_errors_propagate_after_earlier_frames(self, impl: HotFunctions) -> None:
        def make(opcode: int, payload: bytes, fin: bool, rsv1: bool) -> bytes:
            if payload == b"boom":
                raise KeyError(payload)
            return payload

        frames: list[bytes] = []
        stream = b"".join(build_frame(Opcode.TEXT, p) for p in (b"a", b"boom", b"c"))
        with pytest.raises(KeyError):
            impl.parse_frames(stream, frames, make, False, False, None)
        assert frames == [b"a"]

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (("text", [], Frame, False, False, None), TypeError),  # str is not a buffer
            (([0x81, 0], [], Frame, False, False, None), TypeError),
            ((b"", None, Frame, False, False, None), AttributeError),  # nowhere to append
            ((b"\x81\x00", [], None, False, False, None), TypeError),  # make_frame not callable
            ((b"", [], Frame, False, False, -1), ValueError),
            ((b"", [], Frame, False, False, 1.5), TypeError),
            ((b"", [], Frame, False, False, "10"), TypeError),
            ((b"", [], Frame, False, False), TypeError),  # five arguments
        ],
    )
    def test_bad_arguments_raise_the_same_errors(
        self, impl: HotFunctions, args: tuple[Any, ...], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            impl.parse_frames(*args)

    def test_negative_max_size_message(self, impl: HotFunctions) -> None:
        with pytest.raises(ValueError, match="^max_size must be >= 0 or None, got -3$"):
            impl.parse_frames(b"", [], Frame, False, False, -3)


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
