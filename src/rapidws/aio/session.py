"""AsyncSession: connection defaults, merged once per ``ws_connect``."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from http.cookiejar import CookieJar
from types import TracebackType
from typing import TypeVar, cast
from urllib.parse import urljoin

from .. import impersonate as _impersonate
from .._types import HeadersLike, ParamsLike, TimeoutLike
from ..impersonate.profiles import Profile
from ..net.proxy import ProxiesLike, parse_proxy
from ..net.tls import CertLike, TLSOptions, VerifyLike
from ..net.tunnel import check_socks
from ..net.url import WsURL, parse_url
from ..protocol.deflate import CompressionOption, DeflateOptions, offers_from_option
from ..protocol.handshake import DEFAULT_USER_AGENT
from ..protocol.headers import Headers
from .connect import ConnectOptions, WebSocketConnect, open_websocket
from .cookies import CookieContext, CookiesLike, check_cookies
from .websocket import AsyncWebSocket

__all__ = ["AsyncSession", "UNSET"]

T = TypeVar("T")

#: Default for the connect phase (DNS, TCP, TLS, upgrade), as curl_cffi's.
DEFAULT_TIMEOUT = 30.0
#: Largest message accepted by default, as curl_cffi's: bounds memory per message.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Redirects followed by default: curl_cffi's (and libcurl's CURLOPT_MAXREDIRS in curl).
DEFAULT_MAX_REDIRECTS = 30


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "Not given": lets ``verify=False`` or ``timeout=None`` on a call win over the session.
UNSET = _Unset.UNSET


def _merge(session_value: T, call_value: T | _Unset) -> T:
    return session_value if call_value is UNSET else call_value


def _merge_headers(session: HeadersLike | None, call: HeadersLike | None) -> Headers:
    """Session headers, then the call's: a call header replaces one of the same name."""
    merged = Headers(session)
    if call is not None:
        for name, value in Headers(call).items():
            merged.set(name, value)
    return merged


#: What ``compression="deflate"`` offers (DeflateOptions is immutable: shared).
_DEFAULT_OFFERS = offers_from_option("deflate")


def _profile(name: str | None) -> Profile | None:
    return None if name is None else _impersonate.get(name)


def _fetch_site(origin: str, url: WsURL) -> str:
    """``Sec-Fetch-Site`` for a WebSocket to ``url`` opened by a page of ``origin``.

    Fetch Metadata §2.1: same-origin, same-site or cross-site. Without the
    public suffix list a site is approximated by the host: another port is
    same-site, a sibling subdomain is reported cross-site.
    """
    if origin == url.origin:
        return "same-origin"
    scheme, _, rest = origin.partition("://")
    host = rest.rsplit(":", 1)[0] if not rest.endswith("]") else rest
    target = f"[{url.host}]" if url.is_ipv6 else url.host
    same_scheme = scheme == ("https" if url.secure else "http")
    return "same-site" if same_scheme and host.lower() == target else "cross-site"


def _impersonated_headers(
    profile: Profile, user: Headers, origin: str | None, url: WsURL
) -> tuple[Headers, str]:
    """The profile's fields with the user's over them, and the Origin to send.

    A user field named like a profile field replaces its value where it
    stands, in the profile's casing; other user fields are appended (in the
    profile's casing when the profile orders them, e.g. ``Cookie``).
    """
    fields = Headers(profile.headers)
    casing = {name.lower(): name for name in profile.order}
    for name, value in user.items():
        key = name.lower()
        if key in fields:
            fields.set(casing.get(key, name), value)
        else:
            fields.add(casing.get(key, name), value)
    # Browsers send Origin on every WebSocket request (RFC 6455 §4.1 item 8,
    # Fetch §4.1): the page's origin, here the target's own unless given.
    sent_origin = fields.get("Origin") or origin or url.origin
    if "sec-fetch-site" in fields and "sec-fetch-site" not in user:
        fields.set(casing["sec-fetch-site"], _fetch_site(sent_origin, url))
    return fields, sent_origin


def _browser_offer(profile: Profile) -> tuple[DeflateOptions, ...]:
    """The permessage-deflate offer the profile's browser sends, as options."""
    offer = profile.extensions
    if offer is None:
        return ()
    params = {part.strip() for part in offer.split(";")[1:]}
    return (DeflateOptions(client_max_window_bits="client_max_window_bits" in params),)


def _tls_options(profile: Profile) -> TLSOptions:
    tls = profile.tls
    known = tls.extensions
    return TLSOptions(
        ciphers=tls.openssl_ciphers,
        minimum_version=tls.minimum_version.replace(".", "_"),
        maximum_version=tls.maximum_version.replace(".", "_"),
        # Leave out what the browser is known not to send.
        no_padding=known is not None and 0x0015 not in known,
        no_encrypt_then_mac=known is not None and 0x0016 not in known,
    )


def _split_timeout(timeout: TimeoutLike) -> tuple[float | None, float | None]:
    if timeout is None:
        return None, None
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be a number or (connect, read), got {timeout!r}")
        connect, read = timeout
        return _check_seconds("connect timeout", connect), _check_seconds("read timeout", read)
    return _check_seconds("timeout", timeout), None


def _check_seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def _check_positive(name: str, value: float | None) -> float | None:
    seconds = _check_seconds(name, value)
    if seconds == 0:
        raise ValueError(f"{name} must be > 0, got 0")
    return seconds


def _check_size(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_auth(auth: tuple[str, str] | None, name: str = "auth") -> tuple[str, str] | None:
    if auth is None:
        return None
    if not (isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth)):
        raise TypeError(f"{name} must be a (user, password) tuple of str")
    return auth


def _check_optional_str(name: str, value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _check_proxies(proxies: object) -> ProxiesLike | None:
    if proxies is None:
        return None
    if not isinstance(proxies, Mapping):
        kind = type(proxies).__name__
        raise TypeError(f"proxies must be a dict like {{'https': URL}}, got {kind}")
    for key, value in proxies.items():
        if not isinstance(key, str):
            raise TypeError(f"proxies keys must be str, got {key!r}")
        if key == "no_proxy":
            _check_optional_str("proxies['no_proxy']", value)
        elif value is not None and not isinstance(value, str):
            raise TypeError(f"proxies[{key!r}] must be a proxy URL str, got {value!r}")
        elif value:
            _check_proxy(value, None)
    return cast("ProxiesLike", proxies)


def _check_proxy(spec: str, auth: tuple[str, str] | None) -> None:
    proxy = parse_proxy(spec, auth)
    if proxy.is_socks:
        check_socks()


def _check_interface(interface: str | None) -> tuple[str, int] | None:
    """``interface=`` is a local IP address to bind (curl also takes names: not here)."""
    if interface is None:
        return None
    if not isinstance(interface, str):
        raise TypeError(f"interface must be an IP address str, got {type(interface).__name__}")
    try:
        ipaddress.ip_address(interface)
    except ValueError:
        raise ValueError(f"interface must be a local IP address, got {interface!r}") from None
    return (interface, 0)


def _check_unix_socket(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"unix_socket must be a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not text:
        raise ValueError("unix_socket must be a non-empty path")
    return text


class AsyncSession:
    """Defaults shared by the WebSockets it opens; closes them all on exit.

    Every keyword but ``base_url`` and ``trust_env`` is a default for
    ``ws_connect``, which takes the same keywords to override it for one
    connection. ``cookies`` is the session's jar: ``Set-Cookie`` on a
    handshake response lands there.
    """

    def __init__(
        self,
        *,
        headers: HeadersLike | None = None,
        cookies: CookiesLike | None = None,
        auth: tuple[str, str] | None = None,
        params: ParamsLike | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        verify: VerifyLike = True,
        cert: CertLike = None,
        origin: str | None = None,
        referer: str | None = None,
        interface: str | None = None,
        proxy: str | None = None,
        proxies: ProxiesLike | None = None,
        proxy_auth: tuple[str, str] | None = None,
        trust_env: bool = True,
        allow_redirects: bool = True,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        allow_insecure_redirects: bool = False,
        base_url: str | None = None,
        unix_socket: str | os.PathLike[str] | None = None,
        impersonate: str | None = None,
    ) -> None:
        _profile(impersonate)  # an unknown name fails here, listing the valid ones
        self.impersonate = impersonate
        self.headers = Headers(headers)
        check_cookies(cookies)
        #: The session's cookie jar: what handshake responses set, sent back by domain/path rules.
        self.cookies: CookieJar = cookies if isinstance(cookies, CookieJar) else CookieJar()
        # A mapping has no domain: bound to each connection's first origin (cookies.py).
        self._host_cookies: Mapping[str, str] | None = (
            None if cookies is None or isinstance(cookies, CookieJar) else dict(cookies)
        )
        self.auth = _check_auth(auth)
        self.params = params
        _split_timeout(timeout)
        self.timeout = timeout
        self.verify = verify
        self.cert = cert
        self.origin = _check_optional_str("origin", origin)
        self.referer = _check_optional_str("referer", referer)
        _check_interface(interface)
        self.interface = interface
        self.proxy_auth = _check_auth(proxy_auth, "proxy_auth")
        if proxy is not None:
            _check_optional_str("proxy", proxy)
            if proxy:
                _check_proxy(proxy, self.proxy_auth)
        self.proxy = proxy
        self.proxies = _check_proxies(proxies)
        self.trust_env = bool(trust_env)
        self.allow_redirects = bool(allow_redirects)
        self.max_redirects = _check_size("max_redirects", max_redirects, minimum=0)
        self.allow_insecure_redirects = bool(allow_insecure_redirects)
        if base_url is not None:
            parse_url(_check_optional_str("base_url", base_url) or "")
        self.base_url = base_url
        self.unix_socket = _check_unix_socket(unix_socket)
        self._websockets: set[AsyncWebSocket] = set()
        self._closed = False

    def __repr__(self) -> str:
        # Headers, auth, cookies and proxies hold secrets: none of them here.
        state = "closed" if self._closed else f"{len(self._websockets)} open"
        return f"<AsyncSession {state}>"

    # Public methods

    def ws_connect(
        self,
        url: str,
        *,
        params: ParamsLike | None | _Unset = UNSET,
        headers: HeadersLike | None = None,
        cookies: CookiesLike | None = None,
        auth: tuple[str, str] | None | _Unset = UNSET,
        timeout: TimeoutLike | _Unset = UNSET,
        verify: VerifyLike | _Unset = UNSET,
        cert: CertLike | _Unset = UNSET,
        origin: str | None | _Unset = UNSET,
        referer: str | None | _Unset = UNSET,
        interface: str | None | _Unset = UNSET,
        proxy: str | None | _Unset = UNSET,
        proxies: ProxiesLike | None | _Unset = UNSET,
        proxy_auth: tuple[str, str] | None | _Unset = UNSET,
        allow_redirects: bool | _Unset = UNSET,
        max_redirects: int | _Unset = UNSET,
        allow_insecure_redirects: bool | _Unset = UNSET,
        unix_socket: str | os.PathLike[str] | None | _Unset = UNSET,
        impersonate: str | None | _Unset = UNSET,
        subprotocols: Sequence[str] | None = None,
        compression: CompressionOption = "deflate",
        recv_queue_size: int = 128,
        send_queue_size: int = 16,
        coalesce_frames: bool = False,
        drain_on_error: bool = False,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        autoclose: bool = True,
        close_timeout: float | None = 10.0,
        stream_fragments: bool = False,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
    ) -> WebSocketConnect:
        """Open a WebSocket: ``async with s.ws_connect(url) as ws`` or ``await``.

        ``compression`` is ``"deflate"`` (offer permessage-deflate as browsers
        do), ``None`` (offer nothing), a ``DeflateOptions`` or a list of them
        (offers in preference order). Every argument is checked here, before
        any I/O.
        """
        if self._closed:
            raise RuntimeError("this AsyncSession is closed")
        connect_timeout, read_timeout = _split_timeout(_merge(self.timeout, timeout))
        query = _merge(self.params, params)
        target = parse_url(self._absolute(url), self._params_list(query))
        if subprotocols is not None and isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a list of names, not a str")
        if max_message_size is not None:
            _check_size("max_message_size", max_message_size)
        check_cookies(cookies)
        merged_headers = _merge_headers(self.headers, headers)
        call_referer = _check_optional_str("referer", _merge(self.referer, referer))
        if call_referer is not None and "Referer" not in merged_headers:
            merged_headers.set("Referer", call_referer)
        proxy_auth_value = _check_auth(_merge(self.proxy_auth, proxy_auth), "proxy_auth")
        proxy_value = _check_optional_str("proxy", _merge(self.proxy, proxy))
        proxies_value = _check_proxies(_merge(self.proxies, proxies))
        sent_origin = _check_optional_str("origin", _merge(self.origin, origin))
        profile = _profile(_merge(self.impersonate, impersonate))
        offers = _DEFAULT_OFFERS if compression == "deflate" else offers_from_option(compression)
        if profile is not None:
            merged_headers, sent_origin = _impersonated_headers(
                profile, merged_headers, sent_origin, target
            )
            if compression == "deflate":
                # The default offer becomes the browser's own.
                offers = _browser_offer(profile)
        options = ConnectOptions(
            headers=merged_headers.items(),
            auth=_check_auth(_merge(self.auth, auth)),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            verify=_merge(self.verify, verify),
            cert=_merge(self.cert, cert),
            subprotocols=tuple(subprotocols or ()),
            compression=offers,
            origin=sent_origin,
            recv_queue_size=_check_size("recv_queue_size", recv_queue_size),
            send_queue_size=_check_size("send_queue_size", send_queue_size),
            coalesce_frames=bool(coalesce_frames),
            drain_on_error=bool(drain_on_error),
            max_message_size=max_message_size,
            autoclose=bool(autoclose),
            close_timeout=_check_seconds("close_timeout", close_timeout),
            stream_fragments=bool(stream_fragments),
            ping_interval=_check_positive("ping_interval", ping_interval),
            ping_timeout=_check_positive("ping_timeout", ping_timeout),
            local_addr=_check_interface(_merge(self.interface, interface)),
            cookies=CookieContext(self.cookies, target, self._host_cookies, cookies),
            proxy=proxy_value,
            proxies=proxies_value,
            proxy_auth=proxy_auth_value,
            trust_env=self.trust_env,
            allow_redirects=bool(_merge(self.allow_redirects, allow_redirects)),
            max_redirects=_check_size(
                "max_redirects",
                _merge(self.max_redirects, max_redirects),
                minimum=0,
            ),
            allow_insecure_redirects=bool(
                _merge(self.allow_insecure_redirects, allow_insecure_redirects)
            ),
            unix_socket=_check_unix_socket(_merge(self.unix_socket, unix_socket)),
            header_order=profile.order if profile is not None else None,
            # Under a profile, User-Agent is one of the profile's headers.
            user_agent=DEFAULT_USER_AGENT if profile is None else None,
            tls=None if profile is None else _tls_options(profile),
        )
        # The proxy of the first hop, parsed now: a bad proxy URL (from an
        # argument or the environment) fails here, before any I/O.
        first_proxy = options.proxy_for(target)
        if first_proxy is not None and first_proxy.is_socks:
            check_socks()
        return WebSocketConnect(lambda: open_websocket(target, options), self._track)

    async def close(self) -> None:
        """Close every WebSocket this session opened that is still open."""
        self._closed = True
        websockets = list(self._websockets)
        if websockets:
            await asyncio.gather(*(ws.close() for ws in websockets), return_exceptions=True)
        self._websockets.clear()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Private methods

    def _absolute(self, url: str) -> str:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        if self.base_url is None or "://" in url:
            return url
        return urljoin(self.base_url, url)

    @staticmethod
    def _params_list(query: ParamsLike | None) -> Iterable[tuple[str, str | int | float]] | None:
        if query is None:
            return None
        if isinstance(query, Mapping):
            return list(query.items())
        return list(query)

    def _track(self, ws: AsyncWebSocket) -> None:
        self._websockets.add(ws)
        ws._on_lost.append(self._websockets.discard)
