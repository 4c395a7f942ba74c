"""Choose the C accelerator or the pure-Python fallback, once, at import.

Set ``RAPIDWS_NO_SPEEDUPS=1`` to force the fallback (the test suite runs both).
``ACCELERATED`` tells which one is in use.
"""

from __future__ import annotations

import os

__all__ = [
    "ACCELERATED",
    "PayloadBuffer",
    "apply_mask",
    "build_frame",
    "parse_frames",
    "parse_messages",
]

if os.environ.get("RAPIDWS_NO_SPEEDUPS"):
    from ._fallback import PayloadBuffer, apply_mask, build_frame, parse_frames, parse_messages

    ACCELERATED = False
else:
    try:
        from ._speedups import (  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]
            PayloadBuffer,
            apply_mask,
            build_frame,
            parse_frames,
            parse_messages,
        )

        ACCELERATED = True
    except ImportError:
        from ._fallback import PayloadBuffer, apply_mask, build_frame, parse_frames, parse_messages

        ACCELERATED = False
