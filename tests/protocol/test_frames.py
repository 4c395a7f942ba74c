"""Frames, masking keys and close payloads: RFC 6455 §5.2, §5.3, §5.5.1 and §7.4."""

from __future__ import annotations

import array
import itertools
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidws.errors import ProtocolError
from rapidws.flags import WsFlag
from rapidws.protocol.connection import Connection, Side
from rapidws.protocol.frames import (
    CTRL_OPCODES,
    DATA_OPCODES,
    MAX_CONTROL_PAYLOAD,
    CloseCode,
    Frame,
    MaskKeys,
    Opcode,
    build_close_payload,
    build_frame,
    is_valid_close_code,
    parse_close_payload,
)
from rapidws.protocol.parser import FrameParser
from tests.protocol.conftest import BytesLike, HotFunctions

RFC_KEY = b"\x37\xfa\x21\x3d"  # the masking key of the examples in RFC 6455 §5.7

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]


def payload_of(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size)) if size < 70000 else os.urandom(size)


def parse_one(data: bytes, *, masked: bool) -> Frame:
    """Parse exactly one complete frame, with nothing left over."""
    parser = FrameParser(expect_masked=masked)
    parsed = parser.feed(data)
    assert parser.error is None
    assert parser.buffered == 0
    assert len(parsed) == 1
    return parsed[0]


class TestSection5_2Opcodes:
    def test_opcode_values_are_those_of_the_rfc(self) -> None:
        assert {op.name: op.value for op in Opcode} == {
            "CONT": 0x0,
            "TEXT": 0x1,
            "BINARY": 0x2,
            "CLOSE": 0x8,
            "PING": 0x9,
            "PONG": 0xA,
        }

    def test_data_and_control_opcodes_are_split_on_bit_3(self) -> None:
        assert {Opcode.CONT, Opcode.TEXT, Opcode.BINARY} == DATA_OPCODES
        assert {Opcode.CLOSE, Opcode.PING, Opcode.PONG} == CTRL_OPCODES
        assert all(op & 0x8 for op in CTRL_OPCODES)
        assert not any(op & 0x8 for op in DATA_OPCODES)

    def test_control_payload_limit_is_125(self) -> None:
        assert MAX_CONTROL_PAYLOAD == 125

    @pytest.mark.parametrize(
        ("frame", "text"),
        [
            (Frame(Opcode.TEXT, b"Hello"), "TEXT 5 bytes"),
            (Frame(Opcode.BINARY, b"ab", fin=False), "BINARY 2 bytes [continued]"),
            (Frame(3, b""), "opcode 3 0 bytes"),
        ],
    )
    def test_str_names_the_opcode_and_elides_the_payload(self, frame: Frame, text: str) -> None:
        assert str(frame) == text


class TestSection5_2BuildFrame:
    """Header layout: FIN, RSV1, opcode; MASK, 7-bit length or 126/127 escapes."""

    @pytest.mark.parametrize(
        ("opcode", "payload", "fin", "mask", "expected"),
        [
            # RFC 6455 §5.7 examples, byte for byte.
            (Opcode.TEXT, b"Hello", True, None, "810548656c6c6f"),
            (Opcode.TEXT, b"Hello", True, RFC_KEY, "818537fa213d7f9f4d5158"),
            (Opcode.TEXT, b"Hel", False, None, "010348656c"),
            (Opcode.CONT, b"lo", True, None, "80026c6f"),
            (Opcode.PING, b"Hello", True, None, "890548656c6c6f"),
            (Opcode.PONG, b"Hello", True, RFC_KEY, "8a8537fa213d7f9f4d5158"),
        ],
    )
    def test_rfc_examples(
        self, opcode: Opcode, payload: bytes, fin: bool, mask: bytes | None, expected: str
    ) -> None:
        assert build_frame(opcode, payload, fin=fin, mask=mask) == bytes.fromhex(expected)

    @pytest.mark.parametrize(
        ("size", "header"),
        [
            (0, "8200"),
            (125, "827d"),  # the largest 7-bit length
            (126, "827e007e"),  # the smallest 16-bit length
            (256, "827e0100"),  # RFC 6455 §5.7: 256 bytes binary
            (65535, "827effff"),  # the largest 16-bit length
            (65536, "827f0000000000010000"),  # the smallest 64-bit length; RFC 6455 §5.7
        ],
    )
    def test_length_uses_the_minimal_form(self, size: int, header: str) -> None:
        payload = payload_of(size)
        assert build_frame(Opcode.BINARY, payload) == bytes.fromhex(header) + payload

    @pytest.mark.parametrize(
        ("size", "header"),
        [(125, "82fd"), (126, "82fe007e"), (65535, "82feffff"), (65536, "82ff0000000000010000")],
    )
    def test_mask_bit_is_set_with_every_length_form(self, size: int, header: str) -> None:
        payload = payload_of(size)
        built = build_frame(Opcode.BINARY, payload, mask=RFC_KEY)
        head = bytes.fromhex(header)
        assert built[: len(head)] == head
        assert built[len(head) : len(head) + 4] == RFC_KEY
        assert len(built) == len(head) + 4 + size

    def test_rsv1_sets_bit_6_of_the_first_byte(self) -> None:
        assert build_frame(Opcode.TEXT, b"", rsv1=True) == b"\xc1\x00"
        assert build_frame(Opcode.CONT, b"", fin=False, rsv1=True) == b"\x40\x00"

    @pytest.mark.parametrize("kind", [bytearray, memoryview])
    @pytest.mark.parametrize("mask", [None, RFC_KEY])
    def test_accepts_bytes_like_payloads(
        self, kind: Callable[[bytes], bytearray | memoryview], mask: bytes | None
    ) -> None:
        payload = b"Hello"
        assert build_frame(Opcode.TEXT, kind(payload), mask=mask) == build_frame(
            Opcode.TEXT, payload, mask=mask
        )

    def test_masking_does_not_touch_the_callers_buffer(self) -> None:
        payload = bytearray(b"Hello")
        build_frame(Opcode.TEXT, payload, mask=RFC_KEY)
        assert payload == b"Hello"


def reference_frame(
    opcode: int, payload: bytes, fin: bool, rsv1: bool, mask: bytes | None
) -> bytes:
    """§5.2 written out field by field, independently of both implementations."""
    head = bytes([opcode | fin << 7 | rsv1 << 6])
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n <= 125:
        length = bytes([mask_bit | n])
    elif n <= 0xFFFF:
        length = bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        length = bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + length + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + length + mask + masked


frame_sizes = st.sampled_from([0, 1, 3, 17, 64, 125, 126, 127, 1000, 65535, 65536, 70001])


class TestBuildFrameImplementations:
    """``build_frame`` of ``_fallback`` (py) and ``_speedups`` (c) byte for byte."""

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        opcode=st.integers(0, 15),
        size=frame_sizes,
        fin=st.booleans(),
        rsv1=st.booleans(),
        mask=st.none() | st.binary(min_size=4, max_size=4),
        seed=st.integers(0, 255),
    )
    def test_matches_the_reference(
        self,
        impl: HotFunctions,
        opcode: int,
        size: int,
        fin: bool,
        rsv1: bool,
        mask: bytes | None,
        seed: int,
    ) -> None:
        payload = bytes((seed + 7 * i) & 0xFF for i in range(size))
        built = impl.build_frame(opcode, payload, fin, rsv1, mask)
        assert type(built) is bytes
        assert built == reference_frame(opcode, payload, fin, rsv1, mask)

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    @pytest.mark.parametrize("size", [5, 300, 70000])
    def test_any_bytes_like_payload_and_mask(
        self, impl: HotFunctions, kind: Callable[[bytes], BytesLike], size: int
    ) -> None:
        payload = payload_of(size)
        expected = reference_frame(2, payload, True, False, RFC_KEY)
        assert impl.build_frame(2, kind(payload), True, False, kind(RFC_KEY)) == expected

    def test_payload_view_inside_a_larger_buffer(self, impl: HotFunctions) -> None:
        chunk = payload_of(1003)
        view = memoryview(chunk)[3:]
        assert impl.build_frame(1, view, True, False, RFC_KEY) == reference_frame(
            1, chunk[3:], True, False, RFC_KEY
        )

    @pytest.mark.parametrize("mask", [None, RFC_KEY])
    def test_view_of_wider_items_counts_bytes(self, impl: HotFunctions, mask: bytes | None) -> None:
        for words in (array.array("H", range(30)), array.array("Q", range(400))):
            built = impl.build_frame(2, memoryview(words), True, False, mask)
            assert built == reference_frame(2, words.tobytes(), True, False, mask)

    def test_strided_views_are_buffer_errors(self, impl: HotFunctions) -> None:
        with pytest.raises(BufferError):
            impl.build_frame(2, memoryview(bytes(10))[::2], True, False, None)
        with pytest.raises(BufferError):
            impl.build_frame(2, b"", True, False, memoryview(bytes(8))[::2])

    def test_flags_are_read_by_truth_value(self, impl: HotFunctions) -> None:
        assert impl.build_frame(Opcode.TEXT, b"", 1, 0, None) == b"\x81\x00"  # type: ignore[arg-type]
        assert impl.build_frame(Opcode.TEXT, b"", [], "yes", None) == b"\x41\x00"  # type: ignore[arg-type]

    @pytest.mark.parametrize("opcode", [-1, 16, 255, 1 << 70, -(1 << 70)])
    def test_opcode_out_of_range_is_a_value_error(self, impl: HotFunctions, opcode: int) -> None:
        with pytest.raises(ValueError, match=f"^opcode must be in range\\(16\\), got {opcode}$"):
            impl.build_frame(opcode, b"", True, False, None)

    @pytest.mark.parametrize(
        ("opcode", "payload", "mask"),
        [
            ("1", b"", None),  # opcode not an int
            (1.0, b"", None),
            (None, b"", None),
            (1, "text", None),  # str is not bytes-like
            (1, [1, 2], None),
            (1, None, RFC_KEY),
            (1, b"", "abcd"),  # mask not bytes-like
            (1, b"", 1234),
        ],
    )
    def test_wrong_types_are_type_errors(
        self, impl: HotFunctions, opcode: Any, payload: Any, mask: Any
    ) -> None:
        with pytest.raises(TypeError):
            impl.build_frame(opcode, payload, True, False, mask)

    @pytest.mark.parametrize("mask", [b"", b"abc", b"abcde", bytearray(8)])
    @pytest.mark.parametrize("size", [0, 200])
    def test_mask_of_wrong_length_is_a_value_error(
        self, impl: HotFunctions, mask: bytes, size: int
    ) -> None:
        with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
            impl.build_frame(2, bytes(size), True, False, mask)

    def test_takes_five_positional_arguments(self, impl: HotFunctions) -> None:
        with pytest.raises(TypeError):
            impl.build_frame(2, b"", True, False)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            impl.build_frame(2, b"", True, False, mask=None)  # type: ignore[call-arg]

    def test_masking_leaves_the_payload_alone(self, impl: HotFunctions) -> None:
        payload = bytearray(payload_of(100))
        impl.build_frame(2, payload, True, False, RFC_KEY)
        assert payload == payload_of(100)


class TestSection5_2RoundTrip:
    """What build_frame writes, FrameParser reads back identically."""

    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("opcode", [Opcode.CONT, Opcode.TEXT, Opcode.BINARY])
    @pytest.mark.parametrize("masked", [False, True], ids=["server", "client"])
    def test_data_frames(self, opcode: Opcode, size: int, masked: bool) -> None:
        payload = payload_of(size)
        mask = os.urandom(4) if masked else None
        built = build_frame(opcode, payload, mask=mask)
        assert parse_one(built, masked=masked) == Frame(opcode, payload)

    @pytest.mark.parametrize("size", [0, 1, 125])
    @pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
    @pytest.mark.parametrize("masked", [False, True], ids=["server", "client"])
    def test_control_frames(self, opcode: Opcode, size: int, masked: bool) -> None:
        payload = payload_of(size)
        mask = os.urandom(4) if masked else None
        assert parse_one(build_frame(opcode, payload, mask=mask), masked=masked) == Frame(
            opcode, payload
        )

    @pytest.mark.parametrize("opcode", [Opcode.CONT, Opcode.TEXT, Opcode.BINARY])
    def test_fin_clear_survives(self, opcode: Opcode) -> None:
        built = build_frame(opcode, b"part", fin=False, mask=os.urandom(4))
        assert parse_one(built, masked=True) == Frame(opcode, b"part", fin=False)

    def test_rsv1_survives_when_an_extension_allows_it(self) -> None:
        parser = FrameParser(expect_masked=False, rsv1_allowed=True)
        assert parser.feed(build_frame(Opcode.TEXT, b"x", rsv1=True)) == [
            Frame(Opcode.TEXT, b"x", rsv1=True)
        ]


class TestSection5_3MaskingKeys:
    """§5.3: a fresh key per frame, "derived from a strong source of entropy"."""

    def test_keys_are_four_bytes(self) -> None:
        keys = MaskKeys()
        assert {len(keys.next()) for _ in range(2000)} == {4}

    def test_consecutive_keys_differ(self) -> None:
        keys = MaskKeys()
        drawn = [keys.next() for _ in range(3000)]  # crosses two pool refills
        assert all(a != b for a, b in itertools.pairwise(drawn))
        # 3000 random 32-bit keys collide with probability ~1e-3; a stuck or
        # short-cycling pool would give far fewer distinct keys.
        assert len(set(drawn)) >= 2990

    def test_one_urandom_call_per_1024_keys(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []

        def fake_urandom(n: int) -> bytes:
            calls.append(n)
            return bytes((len(calls) + i) & 0xFF for i in range(n))

        monkeypatch.setattr(os, "urandom", fake_urandom)  # looked up by MaskKeys at each refill
        keys = MaskKeys()
        first_pool = [keys.next() for _ in range(1024)]
        assert calls == [4096]
        assert first_pool[0] == bytes([1, 2, 3, 4])
        assert first_pool[1023] == bytes((1 + i) & 0xFF for i in range(4092, 4096))
        assert keys.next() == bytes([2, 3, 4, 5])  # the second pool
        assert calls == [4096, 4096]

    def test_connections_of_a_thread_share_one_pool(self) -> None:
        # Thousands of idle connections must not hold 4 KiB of keys each.
        first = Connection(Side.CLIENT)
        second = Connection(Side.CLIENT)
        assert first._mask_keys is second._mask_keys is MaskKeys.for_thread()
        other: list[MaskKeys] = []
        thread = threading.Thread(target=lambda: other.append(MaskKeys.for_thread()))
        thread.start()
        thread.join()
        assert other[0] is not MaskKeys.for_thread()
        # Shared, yet every frame still gets its own key.
        masks = {first.encode(b"x", WsFlag.BINARY)[2:6] for _ in range(500)}
        masks |= {second.encode(b"x", WsFlag.BINARY)[2:6] for _ in range(500)}
        assert len(masks) >= 995

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_forked_child_draws_keys_of_its_own(self) -> None:
        keys = MaskKeys.for_thread()
        keys.next()  # the pool is filled: a child would inherit it
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: send its next 64 keys to the parent
            try:
                os.write(write_end, b"".join(MaskKeys.for_thread().next() for _ in range(64)))
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)
        parent = b"".join(keys.next() for _ in range(64))
        assert len(child) == 256
        assert child != parent


class TestSection7_4CloseCodes:
    """§7.4.1 defines 1000-1015, §7.4.2 reserves the rest below 3000; IANA
    registered 1012-1014; 3000-4999 are for libraries and applications."""

    @staticmethod
    def expected_valid(code: int) -> bool:
        if code in (1004, 1005, 1006, 1015):
            # 1004 is reserved; 1005, 1006 and 1015 "MUST NOT be set as a
            # status code in a Close control frame by an endpoint".
            return False
        return 1000 <= code <= 1014 or 3000 <= code <= 4999

    def test_every_code_is_classified_as_the_rfc_says(self) -> None:
        wrong = [
            code for code in range(65536) if is_valid_close_code(code) != self.expected_valid(code)
        ]
        assert wrong == []

    def test_known_valid_and_invalid_codes(self) -> None:
        valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
        invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
        assert [c for c in valid if not is_valid_close_code(c)] == []
        assert [c for c in invalid if is_valid_close_code(c)] == []
        assert is_valid_close_code(3000) and is_valid_close_code(4999)

    def test_close_code_enum_values(self) -> None:
        assert [int(c) for c in CloseCode] == list(range(1000, 1004)) + list(range(1005, 1016))


class TestSection5_5_1ParseClosePayload:
    def test_empty_payload_means_no_status_1005(self) -> None:
        assert parse_close_payload(b"") == (1005, "")

    def test_one_byte_payload_is_a_protocol_error(self) -> None:
        with pytest.raises(ProtocolError) as caught:
            parse_close_payload(b"\x03")
        assert caught.value.close_code == 1002

    def test_code_and_reason(self) -> None:
        assert parse_close_payload(b"\x03\xe8") == (1000, "")
        assert parse_close_payload(b"\x0f\xa0caf\xc3\xa9") == (4000, "café")

    def test_every_code_parses_or_fails_with_1002(self) -> None:
        wrong = []
        for code in range(5001):
            payload = code.to_bytes(2, "big") + b"why"
            try:
                result = parse_close_payload(payload)
            except ProtocolError as exc:
                if is_valid_close_code(code) or exc.close_code != 1002:
                    wrong.append(code)
            else:
                if not is_valid_close_code(code) or result != (code, "why"):
                    wrong.append(code)
        assert wrong == []

    @pytest.mark.parametrize("reason", [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
    def test_invalid_utf8_reason_is_1007(self, reason: bytes) -> None:
        with pytest.raises(ProtocolError) as caught:
            parse_close_payload(b"\x03\xe8" + reason)
        assert caught.value.close_code == 1007


class TestSection5_5_1BuildClosePayload:
    def test_code_then_utf8_reason(self) -> None:
        assert build_close_payload(1000, "bye") == b"\x03\xe8bye"
        assert build_close_payload(4999, "é") == b"\x13\x87\xc3\xa9"
        assert build_close_payload(1001) == b"\x03\xe9"
        assert build_close_payload(3000, b"raw") == b"\x0b\xb8raw"

    def test_no_code_gives_the_empty_payload(self) -> None:
        assert build_close_payload(None) == b""

    def test_reason_without_code_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            build_close_payload(None, "why")

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    def test_code_that_may_not_be_sent_is_rejected(self, code: int) -> None:
        with pytest.raises(ValueError):
            build_close_payload(code)

    def test_every_code_builds_iff_valid(self) -> None:
        wrong = []
        for code in range(5001):
            try:
                built = build_close_payload(code)
            except ValueError:
                if is_valid_close_code(code):
                    wrong.append(code)
            else:
                if not is_valid_close_code(code) or built != code.to_bytes(2, "big"):
                    wrong.append(code)
        assert wrong == []

    def test_reason_of_123_bytes_fits(self) -> None:
        payload = build_close_payload(1000, "x" * 123)
        assert len(payload) == MAX_CONTROL_PAYLOAD

    @pytest.mark.parametrize("reason", ["x" * 124, "é" * 62, b"y" * 124])
    def test_reason_over_123_bytes_is_rejected(self, reason: str | bytes) -> None:
        with pytest.raises(ValueError):
            build_close_payload(1000, reason)

    def test_invalid_utf8_bytes_reason_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            build_close_payload(1000, b"\xff")

    @pytest.mark.parametrize("code", [1000, 1014, 3000, 4999])
    def test_round_trip(self, code: int) -> None:
        assert parse_close_payload(build_close_payload(code, "done ✓")) == (code, "done ✓")
