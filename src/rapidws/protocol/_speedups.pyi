"""The C accelerator: the signatures of ``_fallback.py``, which specifies it."""

from collections.abc import Callable
from typing import Any

BytesLike = bytes | bytearray | memoryview

def apply_mask(data: BytesLike, mask: BytesLike, /) -> bytes: ...
def build_frame(
    opcode: int, payload: BytesLike, fin: bool, rsv1: bool, mask: BytesLike | None, /
) -> bytes: ...
def parse_frames(
    buf: BytesLike,
    frames: list[Any],
    make_frame: Callable[[int, bytes, bool, bool], Any],
    expect_masked: bool,
    rsv1_allowed: bool,
    max_size: int | None,
    /,
) -> int: ...
def parse_messages(
    buf: BytesLike,
    messages: list[Any],
    expect_masked: bool,
    max_size: int | None,
    text: Any,
    binary: Any,
    /,
) -> int: ...

class PayloadBuffer:
    def __init__(self, size: int, /) -> None: ...
    def __len__(self) -> int: ...
    def view(self) -> memoryview: ...
    def take(self, nbytes: int, mask: BytesLike | None, /) -> bytes: ...
