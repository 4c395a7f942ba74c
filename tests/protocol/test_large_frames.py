"""Large frames: received into a buffer of their own (``PayloadBuffer``).

A frame of ``LARGE_FRAME`` payload bytes or more leaves the parser's stash once
its header is in; ``read_buffer`` then hands out the unfilled part of its own
buffer. Every test of the parser here runs with both implementations of
``PayloadBuffer`` (``impl``: py, c), which must give the same frames.
"""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Iterator

import pytest

from rapidws.flags import WsFlag
from rapidws.protocol import _fallback
from rapidws.protocol import parser as parser_module
from rapidws.protocol.connection import Connection, Side
from rapidws.protocol.frames import Frame, MaskKeys, Opcode, build_frame
from rapidws.protocol.parser import DIRECT_READ_MIN, LARGE_FRAME, FrameParser
from tests.protocol.conftest import HotFunctions

KEYS = MaskKeys()
GIB = 1 << 30
ALLOC_AHEAD = parser_module._ALLOC_AHEAD


@pytest.fixture
def large(impl: HotFunctions, monkeypatch: pytest.MonkeyPatch) -> HotFunctions:
    """The parser with ``impl``'s PayloadBuffer."""
    monkeypatch.setattr(parser_module, "PayloadBuffer", impl.PayloadBuffer)
    return impl


def pattern(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def read_stream(parser: FrameParser, chunks: list[bytes]) -> list[Frame]:
    """Deliver ``chunks`` as a transport does: each chunk is what the socket
    holds at one time, read into ``read_buffer()`` (as much as fits) until it
    is used up, each read followed by ``read_done``."""
    frames: list[Frame] = []
    for chunk in chunks:
        pos = 0
        while pos < len(chunk):
            view = parser.read_buffer()
            n = min(len(view), len(chunk) - pos)
            view[:n] = chunk[pos : pos + n]
            pos += n
            frames += parser.read_done(n)
    return frames


class TestPayloadBuffer:
    """The C ``PayloadBuffer`` does what ``_fallback.PayloadBuffer`` specifies."""

    def test_written_bytes_are_taken(self, impl: HotFunctions) -> None:
        buf = impl.PayloadBuffer(10)
        assert len(buf) == 10
        with buf.view() as view:
            assert len(view) == 10
            assert not view.readonly
            view[:4] = b"abcd"
            view[4:] = b"efghij"
        assert buf.take(10, None) == b"abcdefghij"
        assert len(buf) == 0

    @pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 63, 64, 65, LARGE_FRAME + 3])
    def test_take_unmasks(self, impl: HotFunctions, size: int) -> None:
        data, key = pattern(size, size), pattern(4, size + 1)
        buf = impl.PayloadBuffer(size)
        with buf.view() as view:
            view[:] = data
        assert buf.take(size, key) == impl.apply_mask(data, key)

    def test_take_fewer_bytes_than_the_buffer_holds(self, impl: HotFunctions) -> None:
        buf = impl.PayloadBuffer(8)
        with buf.view() as view:
            view[:] = b"12345678"
        assert buf.take(5, b"\x00\x00\x00\x01") == b"12355"

    @pytest.mark.parametrize("mask", [None, b"\x00\x00\x00\x20"])
    def test_a_view_held_at_take_cannot_change_the_payload(
        self, impl: HotFunctions, mask: bytes | None
    ) -> None:
        buf = impl.PayloadBuffer(6)
        view = buf.view()
        view[:] = b"stable"
        payload = buf.take(6, mask)
        assert view.tobytes() == b"stable"  # unmasked into a copy, not in place
        view[:] = b"XXXXXX"  # the storage outlives take(); the payload does not change
        assert payload == (b"stable" if mask is None else b"staBle")
        view.release()

    def test_c_take_hands_out_its_storage_without_a_copy(self) -> None:
        speedups = pytest.importorskip("rapidws.protocol._speedups")
        size = 1 << 20
        for held in (False, True):
            buf = speedups.PayloadBuffer(size)
            view = buf.view()
            view[:] = bytes(size)
            if not held:
                view.release()
            tracemalloc.start()
            try:
                payload = buf.take(size, b"\x01\x02\x03\x04")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert payload == b"\x01\x02\x03\x04" * (size // 4)
            # No view left: the storage itself, unmasked in place. A view
            # still held: a copy, since the view could write into it later.
            assert (peak >= size) is held
            view.release()

    def test_taken_buffer_is_empty(self, impl: HotFunctions) -> None:
        buf = impl.PayloadBuffer(3)
        with buf.view() as view:
            view[:] = b"abc"
        buf.take(3, None)
        assert len(buf) == 0
        with pytest.raises(BufferError):
            buf.view()
        with pytest.raises(BufferError):
            buf.take(0, None)

    @pytest.mark.parametrize(
        ("args", "error"),
        [((-1,), ValueError), ((1.5,), TypeError), (("3",), TypeError), ((), TypeError)],
    )
    def test_bad_sizes(
        self, impl: HotFunctions, args: tuple[object, ...], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            impl.PayloadBuffer(*args)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            ((5, None), ValueError),
            ((-1, None), ValueError),
            ((1 << 70, None), ValueError),
            ((1.0, None), TypeError),
            ((4, b"abc"), ValueError),
            ((4, 1234), TypeError),
            ((4,), TypeError),
        ],
    )
    def test_bad_take_arguments_change_nothing(
        self, impl: HotFunctions, args: tuple[object, ...], error: type[Exception]
    ) -> None:
        buf = impl.PayloadBuffer(4)
        with buf.view() as view:
            view[:] = b"abcd"
        with pytest.raises(error):
            buf.take(*args)  # type: ignore[arg-type]
        assert buf.take(4, None) == b"abcd"

    def test_arguments_are_positional_only(self, impl: HotFunctions) -> None:
        with pytest.raises(TypeError):
            impl.PayloadBuffer(size=4)  # type: ignore[call-arg]
        buf = impl.PayloadBuffer(4)
        with pytest.raises(TypeError):
            buf.take(nbytes=4, mask=None)  # type: ignore[call-arg]


def stream_around(payload: bytes, *, masked: bool, opcode: int = Opcode.BINARY) -> bytes:
    """A small frame, a frame carrying ``payload``, a small frame."""
    key = KEYS.next if masked else lambda: None
    return (
        build_frame(Opcode.TEXT, b"before", mask=key())
        + build_frame(opcode, payload, mask=key())
        + build_frame(Opcode.PING, b"after", mask=key())
    )


def expected_around(payload: bytes, opcode: int = Opcode.BINARY) -> list[Frame]:
    return [Frame(Opcode.TEXT, b"before"), Frame(opcode, payload), Frame(Opcode.PING, b"after")]


class TestChunkBoundaries:
    """A large frame cut anywhere gives the same frames, through ``feed`` and
    through ``read_buffer``."""

    @pytest.mark.parametrize("masked", [False, True])
    def test_every_cut(self, large: HotFunctions, masked: bool) -> None:
        payload = pattern(LARGE_FRAME, 7)
        stream = stream_around(payload, masked=masked)
        want = expected_around(payload)
        for cut in range(1, len(stream)):
            chunks = [stream[:cut], stream[cut:]]
            parser = FrameParser(expect_masked=masked)
            assert [f for c in chunks for f in parser.feed(c)] == want, cut
            assert parser.buffered == 0
            parser = FrameParser(expect_masked=masked)
            assert read_stream(parser, chunks) == want, cut
            assert parser.buffered == 0

    @pytest.mark.parametrize("masked", [False, True])
    def test_random_chunkings(self, large: HotFunctions, masked: bool) -> None:
        rng = random.Random(masked)
        payloads = [pattern(n, n) for n in (LARGE_FRAME - 1, 3 * ALLOC_AHEAD + 5, LARGE_FRAME)]
        stream = b"".join(stream_around(p, masked=masked) for p in payloads)
        want = [f for p in payloads for f in expected_around(p)]
        for _ in range(30):
            cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 40)))
            chunks = [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]
            parser = FrameParser(expect_masked=masked)
            assert [f for c in chunks for f in parser.feed(c)] == want
            parser = FrameParser(expect_masked=masked)
            assert read_stream(parser, chunks) == want

    def test_one_byte_at_a_time_through_the_header(self, large: HotFunctions) -> None:
        payload = pattern(LARGE_FRAME + 1)
        wire = build_frame(Opcode.BINARY, payload, mask=KEYS.next())
        parser = FrameParser(expect_masked=True)
        for i in range(14):
            assert parser.feed(wire[i : i + 1]) == []
        assert parser.buffered == 14
        assert parser.feed(wire[14:]) == [Frame(Opcode.BINARY, payload)]

    def test_feed_after_an_unused_read_buffer(self, large: HotFunctions) -> None:
        # get_buffer() without buffer_updated (the read would have blocked),
        # then bytes from elsewhere: they come first, nothing is lost.
        payload = pattern(3 * LARGE_FRAME)
        wire = build_frame(Opcode.BINARY, payload)
        parser = FrameParser(expect_masked=False)
        assert parser.feed(wire[:1000]) == []
        parser.read_buffer()
        assert parser.feed(wire[1000:2000]) == []
        assert read_stream(parser, [wire[2000:]]) == [Frame(Opcode.BINARY, payload)]


class TestReadStraightIntoTheFrame:
    def test_read_buffer_is_the_unfilled_part_of_the_frame(self, large: HotFunctions) -> None:
        payload = pattern(200_000)
        wire = build_frame(Opcode.BINARY, payload, fin=False)
        parser = FrameParser(expect_masked=False)
        shared = parser.read_buffer()
        assert parser.read_done(0) == []
        shared[:1000] = wire[:1000]
        assert parser.read_done(1000) == []
        view = parser.read_buffer()
        assert view.obj is not shared.obj
        assert len(view) == 200_000 - (1000 - 10)  # exactly the missing payload
        assert parser.read_buffer() is view  # until a read lands in it
        view[:100] = wire[1000:1100]
        assert parser.read_done(100) == []
        # Less than DIRECT_READ_MIN missing: the shared buffer, so the read
        # also brings what follows the frame.
        rest = len(wire) - 1100
        view = parser.read_buffer()
        view[: rest - DIRECT_READ_MIN + 1] = wire[1100 : len(wire) - DIRECT_READ_MIN + 1]
        assert parser.read_done(rest - DIRECT_READ_MIN + 1) == []
        assert parser.read_buffer().obj is shared.obj
        tail = wire[len(wire) - DIRECT_READ_MIN + 1 :] + build_frame(Opcode.CONT, b"end")
        shared[: len(tail)] = tail
        assert parser.read_done(len(tail)) == [
            Frame(Opcode.BINARY, payload, fin=False),
            Frame(Opcode.CONT, b"end"),
        ]

    def test_small_frames_keep_the_shared_buffer(self, large: HotFunctions) -> None:
        parser = FrameParser(expect_masked=False)
        wire = build_frame(Opcode.BINARY, bytes(LARGE_FRAME - 1))
        assert parser.feed(wire[:100]) == []
        assert parser.read_buffer().obj is FrameParser(expect_masked=False).read_buffer().obj


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


class TestCopies:
    def test_c_reads_a_large_frame_into_the_payload_itself(self, large: HotFunctions) -> None:
        # Through read_buffer, a 1 MiB frame costs one allocation of its size
        # with the C PayloadBuffer (the payload, filled by the reads), two
        # with the pure-Python one (its bytearray, then the bytes).
        payload = pattern(1 << 20)
        wire = build_frame(Opcode.BINARY, payload)
        chunks = list(chunks_of(wire, 300_000))
        parser = FrameParser(expect_masked=False)
        parser.read_buffer()  # the shared buffer exists before measuring
        tracemalloc.start()
        try:
            frames = read_stream(parser, chunks)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert frames == [Frame(Opcode.BINARY, payload)]
        copies = 2 if large.PayloadBuffer is _fallback.PayloadBuffer else 1
        assert copies << 20 < peak < (copies << 20) + 256 * 1024


class TestBoundedAllocation:
    """The announced length is the peer's word: the buffer grows with the bytes
    that come, never more than ``_ALLOC_AHEAD`` or twice them ahead."""

    @pytest.mark.parametrize("use_reads", [False, True])
    def test_huge_frame_without_limit_fed_slowly(
        self, large: HotFunctions, use_reads: bool
    ) -> None:
        parser = FrameParser(expect_masked=False, max_size=None)
        header = bytes([0x82, 127]) + (5 * GIB).to_bytes(8, "big")
        received = 0
        chunks = list(chunks_of(bytes(3 * ALLOC_AHEAD + 12345), 64 * 1024))
        tracemalloc.start()
        try:
            assert parser.feed(header) == []
            for chunk in chunks:
                if use_reads:
                    assert read_stream(parser, [chunk]) == []
                else:
                    assert parser.feed(chunk) == []
                received += len(chunk)
                current, peak = tracemalloc.get_traced_memory()
                # Held: the frame's buffer; at the peak also the one it grew from.
                assert current < max(ALLOC_AHEAD, 2 * received) + 128 * 1024
                assert peak < max(ALLOC_AHEAD, 3 * received) + 256 * 1024
                assert parser.buffered == 10 + received
                assert len(parser.read_buffer()) <= max(ALLOC_AHEAD, 2 * received)
        finally:
            tracemalloc.stop()
        assert parser.error is None

    def test_frame_that_grows_is_whole(self, large: HotFunctions) -> None:
        payload = pattern(5 * ALLOC_AHEAD + 3)
        wire = build_frame(Opcode.BINARY, payload, mask=KEYS.next())
        parser = FrameParser(expect_masked=True, max_size=None)
        assert read_stream(parser, list(chunks_of(wire, 100_000))) == [
            Frame(Opcode.BINARY, payload)
        ]

    def test_over_the_limit_fails_before_allocating(self, large: HotFunctions) -> None:
        parser = FrameParser(expect_masked=False, max_size=4 * 1024 * 1024)
        tracemalloc.start()
        try:
            header = bytes([0x82, 127]) + (4 * 1024 * 1024 + 1).to_bytes(8, "big")
            assert parser.feed(header + bytes(1000)) == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert parser.error is not None
        assert parser.error.close_code == 1009
        assert peak < 64 * 1024


class TestPendingLargeText:
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("skip", [0, 1, 2, 3, 5, 70_000])
    def test_arrived_part_from_skip(self, large: HotFunctions, masked: bool, skip: int) -> None:
        text = ("\u03ba\u1f79\u03c3\u03bc\u03b5" * 20_000).encode()
        wire = build_frame(Opcode.TEXT, text, mask=KEYS.next() if masked else None)
        header = len(wire) - len(text)
        parser = FrameParser(expect_masked=masked)
        assert read_stream(parser, [wire[: header + 100_000]]) == []
        assert parser.pending_text(skip, False) == (1, text[skip:100_000])
        assert parser.pending_text(100_000, False) is None
        assert parser.pending_text(0, True) == (1, text[:100_000])

    def test_binary_and_binary_continuations_give_nothing(self, large: HotFunctions) -> None:
        for opcode, cont_is_text in ((Opcode.BINARY, True), (Opcode.CONT, False)):
            parser = FrameParser(expect_masked=False)
            wire = build_frame(opcode, bytes(LARGE_FRAME))
            assert parser.feed(wire[:-1]) == []
            assert parser.pending_text(0, cont_is_text) is None
        parser = FrameParser(expect_masked=False)
        assert parser.feed(build_frame(Opcode.CONT, bytes(LARGE_FRAME))[:-1]) == []
        assert parser.pending_text(0, True) == (0, bytes(LARGE_FRAME - 1))

    @pytest.mark.parametrize("side", [Side.CLIENT, Side.SERVER])
    def test_invalid_utf8_fails_before_a_large_frame_ends(
        self, large: HotFunctions, side: Side
    ) -> None:
        # §8.1, Autobahn 6.4.3 style: the bad byte is in the first read of a
        # 1 MiB text frame whose rest never comes.
        conn = Connection(side)
        peer = Connection(Side.SERVER if side is Side.CLIENT else Side.CLIENT)
        wire = peer.encode(b"a" * 100_000 + b"\xff" + b"b" * 1_000_000, WsFlag.TEXT)
        view = conn.read_buffer()
        view[:150_000] = wire[:150_000]
        assert conn.read_done(150_000) == []
        assert conn.close_code == 1007

    def test_valid_large_text_message(self, large: HotFunctions) -> None:
        conn = Connection(Side.CLIENT)
        text = ("\U0001f600" * 300_000).encode()
        wire = build_frame(Opcode.TEXT, text)
        messages = []
        for chunk in chunks_of(wire, 99_999):  # cuts code points
            pos = 0
            while pos < len(chunk):
                view = conn.read_buffer()
                n = min(len(view), len(chunk) - pos)
                view[:n] = chunk[pos : pos + n]
                pos += n
                messages += conn.read_done(n)
        assert messages == [(text, WsFlag.TEXT)]
        assert conn.failure is None
