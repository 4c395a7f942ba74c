"""Fixtures of the protocol tests: every implementation of the hot functions.

``_fallback.py`` is the specification and ``_speedups.c`` must behave exactly
like it, so tests of a hot function take ``impl`` and run once per
implementation: ``py`` always, ``c`` when the extension is built.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rapidws.protocol import _fallback

ApplyMask = Callable[[bytes | bytearray | memoryview, bytes], bytes]


@pytest.fixture(params=["py", "c"])
def impl(request: pytest.FixtureRequest) -> ApplyMask:
    """``apply_mask`` of the pure-Python fallback (``py``) or the C module (``c``)."""
    if request.param == "py":
        return _fallback.apply_mask
    speedups = pytest.importorskip("rapidws.protocol._speedups")
    apply_mask: ApplyMask = speedups.apply_mask
    return apply_mask
