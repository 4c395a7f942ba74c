"""Payload masking, RFC 6455 §5.3, for every implementation (``impl``: py, c)."""

from __future__ import annotations

import importlib.util
import itertools
import operator
import os
import random
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidws.protocol import _fallback

ApplyMask = Callable[[bytes | bytearray | memoryview, bytes], bytes]

# The fallback switches algorithm above this size; both sides must agree.
THRESHOLD = _fallback._INT_XOR_MAX

masks = st.binary(min_size=4, max_size=4)
# ``impl`` returns a function and keeps no state, so sharing it across
# hypothesis examples is safe.
impl_settings = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

payloads = st.integers(0, 5000).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def naive_mask(data: bytes, mask: bytes) -> bytes:
    """§5.3: "octet i of the transformed data is the XOR of octet i of the
    original data with octet at index i modulo 4 of the masking key"."""
    return bytes(map(operator.xor, data, itertools.cycle(mask)))


class TestSection5_3MaskingAlgorithm:
    def test_rfc_example_hello(self, impl: ApplyMask) -> None:
        # RFC 6455 §5.7: "Hello" under the key 37 fa 21 3d.
        assert impl(b"Hello", b"\x37\xfa\x21\x3d") == bytes.fromhex("7f9f4d5158")

    @pytest.mark.parametrize(
        "size",
        [0, 1, 2, 3, 4, 5, 7, 8, 63, 64, 65, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 4096, 5000],
    )
    def test_matches_reference_at_edge_sizes(self, impl: ApplyMask, size: int) -> None:
        rng = random.Random(size)
        data = rng.randbytes(size)
        mask = rng.randbytes(4)
        assert impl(data, mask) == naive_mask(data, mask)

    @settings(impl_settings, max_examples=150)
    @given(data=payloads, mask=masks)
    def test_matches_reference(self, impl: ApplyMask, data: bytes, mask: bytes) -> None:
        assert impl(data, mask) == naive_mask(data, mask)

    def test_matches_reference_at_one_mebibyte(self, impl: ApplyMask) -> None:
        rng = random.Random(20)
        data = rng.randbytes(1 << 20)
        mask = b"\x01\x80\xfe\x7f"
        assert impl(data, mask) == naive_mask(data, mask)

    @settings(impl_settings, max_examples=100)
    @given(data=payloads, mask=masks)
    def test_masking_twice_restores_the_data(
        self, impl: ApplyMask, data: bytes, mask: bytes
    ) -> None:
        assert impl(impl(data, mask), mask) == data

    @pytest.mark.parametrize("size", [0, 10, THRESHOLD + 10])
    def test_zero_key_is_the_identity(self, impl: ApplyMask, size: int) -> None:
        data = random.Random(size).randbytes(size)
        assert impl(data, b"\x00\x00\x00\x00") == data

    @pytest.mark.parametrize("size", [5, THRESHOLD + 5])
    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_accepts_any_bytes_like_and_returns_bytes(
        self, impl: ApplyMask, size: int, kind: Callable[[bytes], bytes | bytearray | memoryview]
    ) -> None:
        data = random.Random(size).randbytes(size)
        mask = b"\xaa\x55\x0f\xf0"
        result = impl(kind(data), mask)
        assert type(result) is bytes
        assert result == naive_mask(data, mask)

    @pytest.mark.parametrize("size", [5, THRESHOLD + 5])
    def test_leaves_the_input_unchanged(self, impl: ApplyMask, size: int) -> None:
        data = bytearray(range(256)) * (size // 256 + 1)
        del data[size:]
        before = bytes(data)
        impl(data, b"\xff\xff\xff\xff")
        assert data == before

    @pytest.mark.parametrize("mask", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
    @pytest.mark.parametrize("size", [0, 4, THRESHOLD + 4])
    def test_mask_of_wrong_length_is_rejected(
        self, impl: ApplyMask, mask: bytes, size: int
    ) -> None:
        with pytest.raises(ValueError):
            impl(bytes(size), mask)


class TestImplementationChoice:
    """``_accel`` picks the C module when built, unless RAPIDWS_NO_SPEEDUPS is set."""

    @staticmethod
    def probe(env_value: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k != "RAPIDWS_NO_SPEEDUPS"}
        if env_value is not None:
            env["RAPIDWS_NO_SPEEDUPS"] = env_value
        code = (
            "from rapidws.protocol import _accel, _fallback;"
            "print(_accel.ACCELERATED, _accel.apply_mask is _fallback.apply_mask)"
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
