"""Browser impersonation: the profiles ``impersonate=`` accepts.

::

    >>> import rapidws.impersonate
    >>> rapidws.impersonate.available()[:3]
    ['chrome', 'chrome131', 'chrome156']
    >>> rapidws.impersonate.get("chrome").name     # a bare name: the newest profile
    'chrome156'

The package holds data (``profiles.py``) and the ClientHello fingerprints
(``fingerprint.py``); it imports nothing else of rapidws.
"""

from __future__ import annotations

from .profiles import NEWEST, PROFILES, Profile, TLSProfile

__all__ = ["Profile", "TLSProfile", "available", "get"]


def available() -> list[str]:
    """Every name ``impersonate=`` accepts, sorted: bare browser names and versioned ones."""
    return sorted([*NEWEST, *PROFILES])


def get(name: str) -> Profile:
    """The profile called ``name`` (case-insensitive); a bare browser name gives its newest.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"impersonate must be a browser name (str), got {name!r}")
    key = name.strip().lower()
    key = NEWEST.get(key, key)
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(
            f"unknown impersonate target {name!r}; choose one of: {', '.join(available())}"
        ) from None
