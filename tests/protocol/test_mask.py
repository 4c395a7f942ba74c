"""Payload masking, RFC 6455 §5.3, for every implementation (``impl``: py, c)."""

from __future__ import annotations

import array
import importlib.util
import itertools
import operator
import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidws.protocol import _fallback
from tests.protocol.conftest import BytesLike, HotFunctions

# The fallback switches algorithm above this size; both sides must agree.
THRESHOLD = _fallback._INT_XOR_MAX

masks = st.binary(min_size=4, max_size=4)
# ``impl`` is a module of pure functions, so sharing it across hypothesis
# examples is safe.
impl_settings = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

payloads = st.integers(0, 5000).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def naive_mask(data: bytes, mask: bytes) -> bytes:
    """§5.3: "octet i of the transformed data is the XOR of octet i of the
    original data with octet at index i modulo 4 of the masking key"."""
    return bytes(map(operator.xor, data, itertools.cycle(mask)))


class TestSection5_3MaskingAlgorithm:
    def test_rfc_example_hello(self, impl: HotFunctions) -> None:
        # RFC 6455 §5.7: "Hello" under the key 37 fa 21 3d.
        assert impl.apply_mask(b"Hello", b"\x37\xfa\x21\x3d") == bytes.fromhex("7f9f4d5158")

    @pytest.mark.parametrize(
        "size",
        # Around the 8-byte word, 16-byte (SSE2, NEON) and 32-byte (AVX2) strides
        # of the C, its 64-byte AVX2 cut-in, the fallback's algorithm switch and
        # the edges of the fallback's 64 KiB pieces.
        [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 63, 64, 65, 95, 96, 97]
        + [127, 128, 129, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 4096, 5000]
        + [65535, 65536, 65537, 2 * 65536 + 3],
    )
    def test_matches_reference_at_edge_sizes(self, impl: HotFunctions, size: int) -> None:
        rng = random.Random(size)
        data = rng.randbytes(size)
        mask = rng.randbytes(4)
        assert impl.apply_mask(data, mask) == naive_mask(data, mask)

    @settings(impl_settings, max_examples=150)
    @given(data=payloads, mask=masks)
    def test_matches_reference(self, impl: HotFunctions, data: bytes, mask: bytes) -> None:
        assert impl.apply_mask(data, mask) == naive_mask(data, mask)

    def test_matches_reference_at_one_mebibyte(self, impl: HotFunctions) -> None:
        rng = random.Random(20)
        data = rng.randbytes(1 << 20)
        mask = b"\x01\x80\xfe\x7f"
        assert impl.apply_mask(data, mask) == naive_mask(data, mask)

    @settings(impl_settings, max_examples=100)
    @given(data=payloads, mask=masks)
    def test_masking_twice_restores_the_data(
        self, impl: HotFunctions, data: bytes, mask: bytes
    ) -> None:
        assert impl.apply_mask(impl.apply_mask(data, mask), mask) == data

    @pytest.mark.parametrize("size", [0, 10, THRESHOLD + 10])
    def test_zero_key_is_the_identity(self, impl: HotFunctions, size: int) -> None:
        data = random.Random(size).randbytes(size)
        assert impl.apply_mask(data, b"\x00\x00\x00\x00") == data

    @pytest.mark.parametrize("size", [5, THRESHOLD + 5])
    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_accepts_any_bytes_like_and_returns_bytes(
        self, impl: HotFunctions, size: int, kind: Callable[[bytes], bytes | bytearray | memoryview]
    ) -> None:
        data = random.Random(size).randbytes(size)
        mask = b"\xaa\x55\x0f\xf0"
        result = impl.apply_mask(kind(data), mask)
        assert type(result) is bytes
        assert result == naive_mask(data, mask)

    @pytest.mark.parametrize("offset", [1, 2, 3, 5])
    @pytest.mark.parametrize("size", [70, 1000, THRESHOLD + 70])
    def test_unaligned_input(self, impl: HotFunctions, offset: int, size: int) -> None:
        # A view that starts off any word boundary, as a payload inside a chunk does.
        chunk = random.Random(size + offset).randbytes(size + offset)
        mask = b"\x12\x34\x56\x78"
        assert impl.apply_mask(memoryview(chunk)[offset:], mask) == naive_mask(chunk[offset:], mask)

    @pytest.mark.parametrize("size", [5, THRESHOLD + 5])
    def test_leaves_the_input_unchanged(self, impl: HotFunctions, size: int) -> None:
        data = bytearray(range(256)) * (size // 256 + 1)
        del data[size:]
        before = bytes(data)
        impl.apply_mask(data, b"\xff\xff\xff\xff")
        assert data == before

    @pytest.mark.parametrize("mask", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
    @pytest.mark.parametrize("size", [0, 4, THRESHOLD + 4])
    def test_mask_of_wrong_length_is_rejected(
        self, impl: HotFunctions, mask: bytes, size: int
    ) -> None:
        with pytest.raises(ValueError, match="^mask must contain 4 bytes$"):
            impl.apply_mask(bytes(size), mask)

    @pytest.mark.parametrize(
        "mask", [bytearray(b"\x01\x02\x03\x04"), memoryview(b"\x01\x02\x03\x04")]
    )
    def test_mask_may_be_any_bytes_like(self, impl: HotFunctions, mask: BytesLike) -> None:
        assert impl.apply_mask(b"abcdefgh", mask) == naive_mask(b"abcdefgh", b"\x01\x02\x03\x04")

    @pytest.mark.parametrize(
        ("data", "mask"),
        [
            ("text", b"\x01\x02\x03\x04"),  # str is not bytes-like
            ("", b"\x01\x02\x03\x04"),  # not even when empty
            ([1, 2, 3], b"\x01\x02\x03\x04"),  # a list of ints is not a buffer
            (None, b"\x01\x02\x03\x04"),
            (b"data", "abcd"),
            (b"data", None),
            (b"data", 1234),
        ],
    )
    def test_non_bytes_like_arguments_are_type_errors(
        self, impl: HotFunctions, data: Any, mask: Any
    ) -> None:
        with pytest.raises(TypeError):
            impl.apply_mask(data, mask)

    def test_view_of_wider_items_counts_bytes(self, impl: HotFunctions) -> None:
        words = array.array("I", range(1000, 1700))  # 2800 bytes: the fallback's table path
        mask = b"\x0f\xf0\x55\xaa"
        assert impl.apply_mask(memoryview(words), mask) == naive_mask(words.tobytes(), mask)
        assert impl.apply_mask(memoryview(words)[:5], mask) == naive_mask(words[:5].tobytes(), mask)

    @pytest.mark.parametrize("size", [16, THRESHOLD + 16])
    def test_strided_view_is_a_buffer_error(self, impl: HotFunctions, size: int) -> None:
        with pytest.raises(BufferError):
            impl.apply_mask(memoryview(bytes(size))[::2], b"\x01\x02\x03\x04")
        with pytest.raises(BufferError):
            impl.apply_mask(b"data", memoryview(bytes(8))[::2])

    def test_mask_is_checked_before_data(self, impl: HotFunctions) -> None:
        with pytest.raises(ValueError):
            impl.apply_mask("not bytes", b"\x01")  # type: ignore[arg-type]

    @pytest.mark.parametrize("args", [(), (b"x",), (b"x", b"1234", b"")])
    def test_takes_exactly_two_arguments(self, impl: HotFunctions, args: tuple[bytes, ...]) -> None:
        with pytest.raises(TypeError):
            impl.apply_mask(*args)

    def test_arguments_are_positional_only(self, impl: HotFunctions) -> None:
        with pytest.raises(TypeError):
            impl.apply_mask(data=b"x", mask=b"1234")  # type: ignore[call-arg]


class TestImplementationChoice:
    """``_accel`` picks the C module when built, unless RAPIDWS_NO_SPEEDUPS is set."""

    @staticmethod
    def probe(env_value: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k != "RAPIDWS_NO_SPEEDUPS"}
        if env_value is not None:
            env["RAPIDWS_NO_SPEEDUPS"] = env_value
        code = (
            "from rapidws.protocol import _accel, _fallback;"
            "names = ('apply_mask', 'build_frame', 'parse_frames');"
            "same = {getattr(_accel, n) is getattr(_fallback, n) for n in names};"
            "print(_accel.ACCELERATED, *same)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def test_no_speedups_forces_the_fallback(self) -> None:
        assert self.probe("1") == "False True"

    def test_default_uses_the_extension_when_built(self) -> None:
        built = importlib.util.find_spec("rapidws.protocol._speedups") is not None
        assert self.probe(None) == ("True False" if built else "False True")
