"""Parse and normalize WebSocket URLs (RFC 6455 §3), pure functions."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from .._types import ParamsLike

__all__ = ["WsURL", "parse_url", "encode_host"]

_SCHEMES = {"ws": False, "wss": True, "http": False, "https": True}


@dataclass(frozen=True, slots=True)
class WsURL:
    """A parsed ``ws://`` or ``wss://`` URL.

    ``host`` is ASCII (IDNA-encoded) without IPv6 brackets; ``resource`` is the
    request target: the path (``/`` at least) and the query.
    """

    secure: bool
    host: str
    port: int
    resource: str
    user: str | None = None
    # Kept out of the repr: URLs end up in logs and tracebacks.
    password: str | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        return "wss" if self.secure else "ws"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def _netloc_host(self) -> str:
        return f"[{self.host}]" if self.is_ipv6 else self.host

    @property
    def host_header(self) -> str:
        """The Host header: the port only when it is not the scheme's default."""
        default = 443 if self.secure else 80
        if self.port == default:
            return self._netloc_host
        return f"{self._netloc_host}:{self.port}"

    @property
    def origin(self) -> str:
        """The Origin a browser would send for a page served from this host."""
        return f"{'https' if self.secure else 'http'}://{self.host_header}"

    def __str__(self) -> str:
        # Credentials are left out: a URL is printed in errors and logs.
        return f"{self.scheme}://{self.host_header}{self.resource}"


def encode_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid host name {host!r}: {exc}") from None
    return host.lower()


def _query_pairs(params: ParamsLike) -> list[tuple[str, str]]:
    items: Iterable[tuple[str, str | int | float]]
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v)) for k, v in items]


def parse_url(url: str, params: ParamsLike | None = None) -> WsURL:
    """Parse ``url``; ``http``/``https`` are accepted as ``ws``/``wss``.

    ``params`` are appended to the query string. Raises ``ValueError`` for an
    unsupported scheme, a missing host, a bad port or a fragment (§3: "Fragment
    identifiers are meaningless in the context of WebSocket URIs").
    """
    if not params and type(url) is str:
        return _parse_plain(url)
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    return _parse(url, params)


@functools.lru_cache(maxsize=256)
def _parse_plain(url: str) -> WsURL:
    """``_parse(url, None)``, kept: a client connects to a few URLs again and
    again, and a ``WsURL`` is immutable. Failures raise every time."""
    return _parse(url, None)


def _parse(url: str, params: ParamsLike | None) -> WsURL:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r}: use ws:// or wss://")
    if parts.fragment:
        raise ValueError(f"WebSocket URLs cannot have a fragment: {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    secure = _SCHEMES[scheme]
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in URL {url!r}") from None
    if port is None:
        port = 443 if secure else 80
    if port == 0:
        raise ValueError(f"invalid port 0 in URL {url!r}")
    # Percent-encode what may not appear raw in a request target, keeping what
    # is already encoded.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = parts.query
    if params:
        extra = urlencode(_query_pairs(params))
        query = f"{query}&{extra}" if query else extra
    resource = urlunsplit(("", "", path, query, ""))
    user = parts.username
    password = parts.password

    return WsURL(
        secure=secure,
        host=encode_host(parts.hostname),
        port=port,
        resource=resource,
        user=unquote(user) if user is not None else None,
        password=unquote(password) if password is not None else None,
    )
