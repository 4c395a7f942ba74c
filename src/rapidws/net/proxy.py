"""Proxy URLs and which proxy a connection goes through: pure functions, no I/O.

A proxy is given as ``scheme://[user:password@]host[:port]``:

========= ============================================== ============
scheme    what the client does                           default port
========= ============================================== ============
http      HTTP ``CONNECT`` over TCP (RFC 9110 §9.3.6)    1080
https     TLS to the proxy, then ``CONNECT`` inside it   443
socks4    SOCKS4, the client resolves the target          1080
socks4a   SOCKS4a, the proxy resolves the target          1080
socks5    SOCKS5 (RFC 1928), the client resolves          1080
socks5h   SOCKS5, the proxy resolves ("h": host name)     1080
========= ============================================== ============

The default ports are curl's, so a proxy string means what it means to curl.
A string without ``://`` is an ``http`` proxy, as in curl.

Which proxy: :func:`select_proxy` follows curl_cffi and requests: ``proxy=``
applies to every URL; ``proxies=`` is looked up by the target's scheme
(``wss``/``https`` for secure targets, ``ws``/``http`` for plain ones, then
``all``), optionally per host (``"https://example.com"``); with ``trust_env``
the environment's ``https_proxy``/``http_proxy``/``all_proxy`` (lower case
first, then upper case) fill in, unless ``no_proxy`` matches the host.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .url import WsURL, encode_host

__all__ = [
    "PROXY_SCHEMES",
    "ProxyURL",
    "ProxiesLike",
    "parse_proxy",
    "select_proxy",
    "bypass_proxy",
]

#: Scheme -> default port (curl's defaults).
PROXY_SCHEMES: Mapping[str, int] = {
    "http": 1080,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}

#: ``{"https": url, "http": url, "all": url, "no_proxy": "host,..."}``; a value
#: of ``None`` or ``""`` means "no proxy" for that key.
ProxiesLike = Mapping[str, "str | None"]


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed proxy URL. The password never shows in ``str`` or ``repr``."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy, not the client, resolves the target's name."""
        return self.scheme in ("socks4a", "socks5h", "http", "https")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        # Printed in errors and logs: the user name may show, the password never.
        user = f"{self.user}:***@" if self.user is not None else ""
        return f"{self.scheme}://{user}{self.address}"

    def __repr__(self) -> str:
        return f"ProxyURL({str(self)!r})"


def _redact(url: str) -> str:
    """``url`` with its password hidden, for error messages about a bad proxy URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{hostport}"


def parse_proxy(url: str, auth: tuple[str, str] | None = None) -> ProxyURL:
    """Parse a proxy URL; ``auth`` replaces credentials given in the URL.

    Raises:
        TypeError: if ``url`` is not a str.
        ValueError: for an unsupported scheme, a missing host, a bad port, or a
            path, query or fragment (a proxy URL names a server, nothing more).
            The message never includes the password.
    """
    if not isinstance(url, str):
        raise TypeError(f"a proxy URL must be a str, got {type(url).__name__}")
    text = url.strip()
    shown = _redact(text)
    if "://" not in text:
        text = "http://" + text  # curl: no scheme means an HTTP proxy
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        # urlsplit's messages do not include the URL, so no password leaks.
        raise ValueError(f"invalid proxy URL {shown!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        schemes = ", ".join(PROXY_SCHEMES)
        raise ValueError(f"unsupported proxy scheme {parts.scheme!r} in {shown!r}: use {schemes}")
    if not parts.hostname:
        raise ValueError(f"proxy URL has no host: {shown!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a proxy URL is scheme://host:port, without a path: {shown!r}")
    if port == 0:
        raise ValueError(f"invalid port 0 in proxy URL {shown!r}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if auth is not None:
        user, password = auth
    # RFC 1929 §2: ULEN and PLEN are one octet each.
    if (
        user is not None
        and scheme in ("socks5", "socks5h")
        and (len(user.encode()) > 255 or len((password or "").encode()) > 255)
    ):
        raise ValueError("SOCKS5 user name and password are limited to 255 bytes each")
    return ProxyURL(
        scheme=scheme,
        host=encode_host(parts.hostname),
        port=port if port is not None else PROXY_SCHEMES[scheme],
        user=user,
        password=password,
    )


def _keys(target: WsURL) -> tuple[str, ...]:
    schemes = ("wss", "https") if target.secure else ("ws", "http")
    host = target.host
    per_host = tuple(f"{scheme}://{host}" for scheme in schemes) + (f"all://{host}",)
    return per_host + schemes + ("all",)


def _env(env: Mapping[str, str], name: str) -> str | None:
    # Lower case first, as urllib and curl do (curl ignores HTTP_PROXY in upper
    # case; urllib reads both).
    for key in (name.lower(), name.upper()):
        value = env.get(key)
        if value is not None:
            return value.strip()
    return None


def bypass_proxy(target: WsURL, no_proxy: str | None) -> bool:
    """Whether ``no_proxy`` (comma-separated) exempts ``target`` from proxying.

    Entries, as curl and requests read them: ``*`` (every host); a host name,
    which also matches its subdomains (a leading dot is optional); an IP
    address; a CIDR block (``10.0.0.0/8``); any of them with ``:port`` to
    match one port only.
    """
    if not no_proxy:
        return False
    host = target.host.lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [::1]:8080 or [::1]
            bracket = entry.find("]")
            rest = entry[bracket + 1 :]
            entry = entry[1:bracket]
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
        elif entry.count(":") == 1:
            name, _, port_text = entry.partition(":")
            if port_text.isdigit():
                entry, entry_port = name, int(port_text)
        if entry_port is not None and entry_port != target.port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def select_proxy(
    target: WsURL,
    *,
    proxy: str | None = None,
    proxies: ProxiesLike | None = None,
    trust_env: bool = True,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The proxy URL for ``target``, or None to connect directly.

    ``proxy`` wins; then the first key of ``proxies`` that matches (``proxies``
    may carry its own ``no_proxy``); then, with ``trust_env``, the environment
    (``env``, default ``os.environ``).
    """
    if proxy is not None:
        return proxy or None
    if proxies and not bypass_proxy(target, proxies.get("no_proxy")):
        for key in _keys(target):
            if key in proxies:
                return proxies[key] or None
    if not trust_env:
        return None
    environ = os.environ if env is None else env
    # curl reads http_proxy for ws:// and https_proxy for wss://.
    value = _env(environ, "https_proxy" if target.secure else "http_proxy")
    if not value:
        value = _env(environ, "all_proxy")
    if not value:
        return None
    # no_proxy only matters once there is a proxy to skip.
    if bypass_proxy(target, _env(environ, "no_proxy")):
        return None
    return value
