"""Type aliases shared by every layer (a leaf: imports only the stdlib)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

__all__ = ["BytesLike", "HeadersLike", "AuthLike", "TimeoutLike", "ParamsLike"]

#: Anything whose bytes can be sent as a payload.
BytesLike: TypeAlias = bytes | bytearray | memoryview

#: Request headers: a mapping, or (name, value) pairs to keep order and repeats.
HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

#: HTTP Basic credentials as ``(user, password)``.
AuthLike: TypeAlias = tuple[str, str]

#: Seconds for the whole connect phase, or ``(connect, read)``; ``None`` waits forever.
TimeoutLike: TypeAlias = float | tuple[float | None, float | None] | None

#: Query parameters merged into the URL.
ParamsLike: TypeAlias = Mapping[str, str | int | float] | Iterable[tuple[str, str | int | float]]
