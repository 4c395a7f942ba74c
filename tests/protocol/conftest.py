"""Fixtures of the protocol tests: every implementation of the hot functions.

``_fallback.py`` is the specification and ``_speedups.c`` must behave exactly
like it, so tests of a hot function take ``impl`` and run once per
implementation: ``py`` always, ``c`` when the extension is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import pytest

from rapidws.protocol import _fallback

BytesLike = bytes | bytearray | memoryview


class PayloadBufferLike(Protocol):
    """An instance of ``PayloadBuffer``."""

    def __len__(self) -> int: ...
    def view(self) -> memoryview: ...
    def take(self, nbytes: int, mask: BytesLike | None, /) -> bytes: ...


class HotFunctions(Protocol):
    """The functions ``_fallback.py`` specifies and ``_speedups.c`` mirrors."""

    @staticmethod
    def PayloadBuffer(size: int, /) -> PayloadBufferLike: ...

    @staticmethod
    def apply_mask(data: BytesLike, mask: BytesLike, /) -> bytes: ...

    @staticmethod
    def build_frame(
        opcode: int, payload: BytesLike, fin: bool, rsv1: bool, mask: BytesLike | None, /
    ) -> bytes: ...

    @staticmethod
    def parse_frames(
        buf: BytesLike,
        frames: list[Any],
        make_frame: Callable[[int, bytes, bool, bool], Any],
        expect_masked: bool,
        rsv1_allowed: bool,
        max_size: int | None,
        /,
    ) -> int: ...

    @staticmethod
    def parse_messages(
        buf: BytesLike,
        messages: list[Any],
        expect_masked: bool,
        max_size: int | None,
        text: Any,
        binary: Any,
        /,
    ) -> int: ...


@pytest.fixture(params=["py", "c"])
def impl(request: pytest.FixtureRequest) -> HotFunctions:
    """The pure-Python fallback (``py``) or the C module (``c``)."""
    if request.param == "py":
        return cast(HotFunctions, _fallback)
    return cast(HotFunctions, pytest.importorskip("rapidws.protocol._speedups"))
