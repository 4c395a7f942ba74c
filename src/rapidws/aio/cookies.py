"""Cookies on the opening handshake, through ``http.cookiejar``.

The stdlib jar applies the rules of RFC 6265 (domain, path, ``Secure``,
expiry) to ``urllib.request.Request`` objects, so a ``ws://`` URL is shown to
it as ``http://`` and ``wss://`` as ``https://``: a ``Secure`` cookie then
goes over ``wss://`` only, as a browser sends it (RFC 6455 §4.1, step 11:
"the client MAY include [...] cookies").

Cookies given as a plain mapping have no domain. They are bound to the
origin (scheme, host and port) of the URL passed to ``ws_connect``: sent
there, never to another origin that a redirect leads to.
"""

from __future__ import annotations

import email.message
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from http.cookiejar import Cookie, CookieJar

from ..net.url import WsURL

__all__ = ["CookiesLike", "CookieContext", "check_cookies"]

#: A ``{name: value}`` mapping, or a ``http.cookiejar.CookieJar``.
CookiesLike = Mapping[str, str] | CookieJar


def check_cookies(cookies: CookiesLike | None, name: str = "cookies") -> None:
    """Raise TypeError unless ``cookies`` is None, a CookieJar or a str -> str mapping."""
    if cookies is None or isinstance(cookies, CookieJar):
        return
    if not isinstance(cookies, Mapping):
        raise TypeError(f"{name} must be a dict or an http.cookiejar.CookieJar, got {cookies!r}")
    for key, value in cookies.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{name} must map str to str, got {key!r}: {type(value).__name__}")
        if not key or any(c in key for c in "=;, \t\r\n") or any(c in value for c in ";\r\n"):
            raise ValueError(f"invalid cookie {key!r}: names are tokens, values have no ';'")


def _request(url: WsURL) -> urllib.request.Request:
    scheme = "https" if url.secure else "http"
    return urllib.request.Request(f"{scheme}://{url.host_header}{url.resource}")


class _Response:
    """The one method of a urllib response that ``CookieJar.extract_cookies`` calls."""

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self._message = email.message.Message()
        for name, value in headers:
            if name.lower() in ("set-cookie", "set-cookie2"):
                self._message[name] = value

    def info(self) -> email.message.Message:
        return self._message


def _host_cookies(cookies: Mapping[str, str], url: WsURL, jar: CookieJar) -> Sequence[Cookie]:
    # Made as if ``url`` had sent ``Set-Cookie: name=value; Path=/``: no Domain
    # attribute, so the jar makes them host-only for ``url``'s host.
    fields = [("Set-Cookie", f"{name}={value}; Path=/") for name, value in cookies.items()]
    response = _Response(fields)
    return jar.make_cookies(response, _request(url))  # type: ignore[arg-type]


class CookieContext:
    """The cookies of one ``ws_connect``, across its redirects.

    ``session_jar`` receives every ``Set-Cookie``. What is sent comes from the
    session's cookies, then the layers in order (a later cookie replaces one
    of the same name, domain and path): a CookieJar layer by its own rules, a
    mapping layer only on hops to the origin of ``url`` (scheme, host, port).
    """

    def __init__(
        self,
        session_jar: CookieJar,
        url: WsURL,
        *layers: CookiesLike | None,
    ) -> None:
        self._session_jar = session_jar
        self._origin = (url.secure, url.host, url.port)
        # Two views: with the mapping cookies (hops to the first origin), and
        # without them (any other origin a redirect leads to). Made only once
        # there is a cookie: most connections have none, and then skip the jars.
        self._home: CookieJar | None = None
        self._away: CookieJar | None = None
        for cookie in session_jar:
            home, away = self._views()
            home.set_cookie(cookie)
            away.set_cookie(cookie)
        for layer in layers:
            if layer is None:
                continue
            if isinstance(layer, CookieJar):
                for cookie in layer:
                    home, away = self._views()
                    home.set_cookie(cookie)
                    away.set_cookie(cookie)
            elif layer:
                home, _ = self._views()
                for cookie in _host_cookies(layer, url, home):
                    home.set_cookie(cookie)

    def _views(self) -> tuple[CookieJar, CookieJar]:
        if self._home is None or self._away is None:
            self._home = CookieJar()
            self._away = CookieJar()
        return self._home, self._away

    def header(self, url: WsURL) -> str | None:
        """The ``Cookie`` value for a handshake to ``url``, or None."""
        if self._home is None or self._away is None:
            return None  # no cookie at all
        jar = self._home if (url.secure, url.host, url.port) == self._origin else self._away
        request = _request(url)
        jar.add_cookie_header(request)
        value = request.get_header("Cookie")
        return value if value else None

    def store(self, url: WsURL, headers: Iterable[tuple[str, str]]) -> None:
        """Keep the ``Set-Cookie`` fields of a handshake response from ``url``."""
        headers = list(headers)
        if not any(name.lower() == "set-cookie" for name, _ in headers):
            return
        response = _Response(headers)
        home, away = self._views()
        for jar in (self._session_jar, home, away):
            jar.extract_cookies(response, _request(url))  # type: ignore[arg-type]
