"""Browser profiles: how each browser opens a WebSocket over HTTP/1.1. Data only.

A :class:`Profile` says which header fields the browser sends on the upgrade
request, in which order and with which casing, the fixed values among them,
its permessage-deflate offer, and what its TLS ClientHello looks like on that
connection (:class:`TLSProfile`). ``aio/session.py`` turns a profile into
plain values for ``protocol.handshake.build_request`` and ``net.tls``; this
module imports nothing of rapidws.

Where the values come from
--------------------------
"measured" means captured on loopback from a real browser build with the
procedure of ``rapidws fingerprint``: a page served from
``http://localhost:PORT/`` opens ``new WebSocket("ws://localhost:PORT/ws")``
(so ``Sec-Fetch-Site`` is ``same-origin``) and a ``wss://`` connection to a
capture server that records the raw ClientHello; a second run added a
cookie and the subprotocols ``chat, superchat`` to find where ``Cookie`` and
``Sec-WebSocket-Protocol`` go. Browsers measured (Debian 12 packages):
Chromium 156.0.8078.114 (``chromium --headless``) and Firefox ESR 153.8.0
(``firefox-esr --headless``). Both ran on Linux: the ``User-Agent`` values
below keep the measured format with the Windows platform token, the most
common desktop one, as each browser writes it on Windows (Chrome's reduced
UA ``Windows NT 10.0; Win64; x64``; Firefox's ``Windows NT 10.0; Win64; x64;
rv:N``); headless Chromium writes ``HeadlessChrome/N``, a desktop Chrome
``Chrome/N``.

"published" means a capture or specification found in public sources, cited
next to the value. Nothing here is invented: a field without a source is
marked unknown (``None``) and left out.

Browsers never send client hints (``sec-ch-ua*``) or, apart from Firefox,
``Sec-Fetch-*`` on a WebSocket upgrade: the measured Chromium 156 request has
neither, although the page load before it had both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TLSProfile", "Profile", "PROFILES", "NEWEST"]


@dataclass(frozen=True, slots=True)
class TLSProfile:
    """The browser's ClientHello on a WebSocket connection, and what we can copy of it.

    Code points are IANA values with GREASE left out. ``None`` means no
    published or measured value: the fingerprint tool then compares only what
    the JA4 string shows.
    """

    #: Every cipher suite the browser offers, in its order (TLS 1.3 ones first).
    cipher_suites: tuple[int, ...]
    #: The TLS 1.2 part of ``cipher_suites`` as an OpenSSL cipher string, same
    #: order: what ``SSLContext.set_ciphers`` can send. Names this OpenSSL
    #: lacks (3DES) are skipped by OpenSSL itself.
    openssl_ciphers: str
    #: Extension types the browser sends: the wire order of one capture
    #: (Chrome permutes them per connection, JA4 sorts them), or sorted when
    #: reconstructed from a published JA4_c.
    extensions: tuple[int, ...] | None
    #: signature_algorithms, in order.
    signature_algorithms: tuple[int, ...] | None
    #: supported_groups, in order.
    supported_groups: tuple[int, ...] | None
    #: ALPN protocols the browser offers on a WebSocket connection.
    alpn: tuple[str, ...]
    #: The browser's JA4 for that connection (FoxIO JA4 spec).
    ja4: str
    #: Where ``ja4`` and the lists come from.
    source: str
    #: Lowest and highest TLS versions offered.
    minimum_version: str = "TLSv1.2"
    maximum_version: str = "TLSv1.3"


@dataclass(frozen=True, slots=True)
class Profile:
    """One browser version's WebSocket upgrade request and TLS ClientHello."""

    #: ``chrome156``: the browser name and its major version.
    name: str
    browser: str
    version: int
    #: Every field the browser may send, in its order and casing. Fields that
    #: depend on the connection (Host, Origin, Cookie, the key, subprotocols,
    #: extensions) are sent only when there is a value for them.
    order: tuple[str, ...]
    #: Fields with fixed values, in the casing of ``order``.
    headers: tuple[tuple[str, str], ...]
    #: The browser's ``Sec-WebSocket-Extensions`` offer (permessage-deflate, RFC 7692).
    extensions: str | None
    tls: TLSProfile
    #: Where ``order``, ``headers`` and ``extensions`` come from.
    source: str


# ---------------------------------------------------------------------------
# Chrome and Edge (Chromium's network stack, BoringSSL)
# ---------------------------------------------------------------------------

# Order measured on Chromium 156; published captures of Chrome 103, 111, 130
# and 134 (a DevTools Network.webSocketWillSendHandshakeRequest dump, code
# samples quoting raw requests, the python-websockets benchmark
# experiments/optimization/parse_handshake.py) show the same order, so it
# holds for Chrome 131 too.
_CHROMIUM_ORDER = (
    "Host",
    "Connection",
    "Pragma",
    "Cache-Control",
    "User-Agent",
    "Upgrade",
    "Origin",
    "Sec-WebSocket-Version",
    "Accept-Encoding",
    "Accept-Language",
    "Cookie",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
)
# zstd joined Accept-Encoding in Chrome 123; the Chrome 130 and 134 captures
# and Chromium 156 send exactly this. en-US default language list (measured).
_CHROMIUM_ACCEPT = (
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9"),
)
_CHROMIUM_EXTENSIONS = "permessage-deflate; client_max_window_bits"


def _chromium_headers(product: str) -> tuple[tuple[str, str], ...]:
    """A Chromium browser's upgrade headers; they differ only in the end of the
    User-Agent, given as ``product`` ("Chrome/N.0.0.0 Safari/537.36 ...")."""
    return (
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
        (
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) {product}",
        ),
        *_CHROMIUM_ACCEPT,
    )


# Chrome's cipher suites: the JA4 specification's example list, whose sorted
# hash 8daaf6152771 is Chrome's published JA4_b; measured unchanged on 156.
_CHROME_CIPHERS = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
)
_CHROME_OPENSSL = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
    ]
)

_CHROME_156_TLS = TLSProfile(
    cipher_suites=_CHROME_CIPHERS,
    openssl_ciphers=_CHROME_OPENSSL,
    # One measured wire order (Chrome permutes extensions per connection).
    # No ALPS (0x44cd): Chrome sends it only when it offers h2.
    extensions=(
        0xCA34,
        0x000A,
        0xFF01,
        0x0033,
        0x001B,
        0x002D,
        0xFE0D,
        0x0017,
        0x0005,
        0x002B,
        0x000B,
        0x0000,
        0x0023,
        0x0012,
        0x0010,
        0x000D,
    ),
    signature_algorithms=(
        0x0904,
        0x0905,
        0x0906,
        0x0403,
        0x0804,
        0x0401,
        0x0503,
        0x0805,
        0x0501,
        0x0806,
        0x0601,
    ),
    # X25519MLKEM768, X25519, P-256, P-384.
    supported_groups=(0x11EC, 0x001D, 0x0017, 0x0018),
    # Chrome opens a WebSocket on its own connection offering only http/1.1.
    alpn=("http/1.1",),
    ja4="t13d1516h1_8daaf6152771_5b37b36a67c0",
    source="measured: Chromium 156.0.8078.114, wss:// from a page, loopback capture",
)

_CHROME_131_TLS = TLSProfile(
    cipher_suites=_CHROME_CIPHERS,
    openssl_ciphers=_CHROME_OPENSSL,
    # Reconstructed, sorted: with the signature algorithms below this set
    # reproduces the published JA4_c 02713d6af862 exactly (16 extensions with
    # SNI and ALPN, as JA4_a says). It is the page-load hello: 0x4469 is ALPS,
    # which Chrome sends only when offering h2, so a WebSocket connection
    # lacks it (as measured on 156).
    extensions=(
        0x0000,
        0x0005,
        0x000A,
        0x000B,
        0x000D,
        0x0010,
        0x0012,
        0x0017,
        0x001B,
        0x0023,
        0x002B,
        0x002D,
        0x0033,
        0x4469,
        0xFE0D,
        0xFF01,
    ),
    signature_algorithms=(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
    supported_groups=None,
    alpn=("http/1.1",),
    ja4="t13d1516h2_8daaf6152771_02713d6af862",
    source=(
        "published: FoxIO ja4plus-mapping.csv, 'Chromium Browser' (a page load, ALPN h2; "
        "on a WebSocket connection Chrome offers only http/1.1, as measured on 156)"
    ),
)


_CHROME_SOURCE = (
    "order, values and extension offer measured on Chromium 156; the same order in "
    "published Chrome 103-134 captures; UA: Chrome's reduced Windows UA"
)

CHROME_131 = Profile(
    name="chrome131",
    browser="chrome",
    version=131,
    order=_CHROMIUM_ORDER,
    headers=_chromium_headers("Chrome/131.0.0.0 Safari/537.36"),
    extensions=_CHROMIUM_EXTENSIONS,
    tls=_CHROME_131_TLS,
    source=_CHROME_SOURCE,
)

CHROME_156 = Profile(
    name="chrome156",
    browser="chrome",
    version=156,
    order=_CHROMIUM_ORDER,
    headers=_chromium_headers("Chrome/156.0.0.0 Safari/537.36"),
    extensions=_CHROMIUM_EXTENSIONS,
    tls=_CHROME_156_TLS,
    source=_CHROME_SOURCE,
)

# Edge is Chromium: the same network stack and BoringSSL (FoxIO's mapping
# files every Chromium browser under one JA4). Its UA appends "Edg/N"
# (published, e.g. in uNetworking/uWebSockets#1347: "... Safari/537.36
# Edg/97.0.1072.69"), reduced like Chrome's to N.0.0.0.
EDGE_131 = Profile(
    name="edge131",
    browser="edge",
    version=131,
    order=_CHROMIUM_ORDER,
    headers=_chromium_headers("Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    extensions=_CHROMIUM_EXTENSIONS,
    tls=_CHROME_131_TLS,
    source="Chromium's order and values (see chrome131) with Edge's published UA suffix",
)

# ---------------------------------------------------------------------------
# Firefox (Necko, NSS)
# ---------------------------------------------------------------------------

FIREFOX_153 = Profile(
    name="firefox153",
    browser="firefox",
    version=153,
    # Measured on Firefox ESR 153.8.0. The python-websockets capture of
    # Firefox 111 has the same order but "Connection: keep-alive, Upgrade"
    # and "Sec-Fetch-Dest: websocket"; 153 sends "Upgrade" and "empty".
    order=(
        "Host",
        "User-Agent",
        "Accept",
        "Accept-Language",
        "Accept-Encoding",
        "Sec-WebSocket-Version",
        "Origin",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Connection",
        "Cookie",
        "Sec-Fetch-Dest",
        "Sec-Fetch-Mode",
        "Sec-Fetch-Site",
        "Pragma",
        "Cache-Control",
        "Upgrade",
    ),
    headers=(
        (
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:153.0) Gecko/20100101 Firefox/153.0",
        ),
        ("Accept", "*/*"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Sec-Fetch-Dest", "empty"),
        ("Sec-Fetch-Mode", "websocket"),
        # For a page of the same origin; the session recomputes it from Origin.
        ("Sec-Fetch-Site", "same-origin"),
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
    ),
    extensions="permessage-deflate",
    tls=TLSProfile(
        cipher_suites=(
            0x1301,
            0x1303,
            0x1302,
            0xC02B,
            0xC02F,
            0xCCA9,
            0xCCA8,
            0xC02C,
            0xC030,
            0xC00A,
            0xC013,
            0xC014,
            0x009C,
            0x009D,
            0x002F,
            0x0035,
        ),
        openssl_ciphers=":".join(
            [
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES256-SHA",
                "ECDHE-RSA-AES128-SHA",
                "ECDHE-RSA-AES256-SHA",
                "AES128-GCM-SHA256",
                "AES256-GCM-SHA384",
                "AES128-SHA",
                "AES256-SHA",
            ]
        ),
        extensions=(
            0x0000,
            0x0017,
            0xFF01,
            0x000A,
            0x000B,
            0x0023,
            0x0010,
            0x0005,
            0x0022,
            0x0012,
            0x0033,
            0x002B,
            0x000D,
            0x002D,
            0x001C,
            0x001B,
            0xFE0D,
        ),
        signature_algorithms=(
            0x0403,
            0x0503,
            0x0603,
            0x0804,
            0x0805,
            0x0806,
            0x0401,
            0x0501,
            0x0601,
            0x0203,
            0x0201,
        ),
        # X25519MLKEM768, X25519, P-256, P-384, P-521, ffdhe2048, ffdhe3072.
        supported_groups=(0x11EC, 0x001D, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101),
        # Firefox offers h2 even for a WebSocket (it can run WebSockets over
        # HTTP/2, RFC 8441); rapidws speaks HTTP/1.1 only and offers http/1.1.
        alpn=("h2", "http/1.1"),
        ja4="t13d1617h2_86a278354501_3cbfd9057e0d",
        source="measured: Firefox ESR 153.8.0, wss:// from a page, loopback capture",
    ),
    source="order, values and extension offer measured on Firefox ESR 153.8.0",
)

# ---------------------------------------------------------------------------
# Safari (WebKit over CFNetwork)
# ---------------------------------------------------------------------------

SAFARI_18 = Profile(
    name="safari18",
    browser="safari",
    version=18,
    # UNVERIFIED ORDER. This is the order of WebKit's own handshake builder
    # (Source/WebCore/Modules/websockets/WebSocketHandshake.cpp,
    # clientHandshakeRequest), also the last published wire capture of a
    # WebKit upgrade (whatwg/html#852, 2016). Since Safari 15 the request goes
    # out through NSURLSession's WebSocket task, and we found no published
    # capture of what CFNetwork puts on the wire: it may reorder fields or
    # add Accept-Language / Accept-Encoding, which are therefore not sent.
    order=(
        "Upgrade",
        "Connection",
        "Host",
        "Origin",
        "Sec-WebSocket-Protocol",
        "Cookie",
        "Pragma",
        "Cache-Control",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "User-Agent",
    ),
    headers=(
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
        (
            "User-Agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.4 Safari/605.1.15",
        ),
    ),
    # NSURLSession's WebSocket offers the standard extension (published:
    # gorilla/websocket#696, "As of iOS 15, Safari defaults to using
    # NSURLSession Websocket, which uses the standard permessage-deflate").
    # Its parameters are not published: the bare offer is the assumption.
    extensions="permessage-deflate",
    tls=TLSProfile(
        # Published Safari list; its sorted hash is a09f3c656075, Safari's
        # published JA4_b. c008, c012 and 000a are 3DES, absent from OpenSSL 3.
        cipher_suites=(
            0x1301,
            0x1302,
            0x1303,
            0xC02C,
            0xC02B,
            0xCCA9,
            0xC030,
            0xC02F,
            0xCCA8,
            0xC00A,
            0xC009,
            0xC014,
            0xC013,
            0x009D,
            0x009C,
            0x0035,
            0x002F,
            0xC008,
            0xC012,
            0x000A,
        ),
        openssl_ciphers=":".join(
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES256-SHA",
                "ECDHE-ECDSA-AES128-SHA",
                "ECDHE-RSA-AES256-SHA",
                "ECDHE-RSA-AES128-SHA",
                "AES256-GCM-SHA384",
                "AES128-GCM-SHA256",
                "AES256-SHA",
                "AES128-SHA",
                "ECDHE-ECDSA-DES-CBC3-SHA",
                "ECDHE-RSA-DES-CBC3-SHA",
                "DES-CBC3-SHA",
            ]
        ),
        # Reconstructed, sorted: with the signature algorithms below (0805
        # twice, as Safari sends it) this set reproduces the published JA4_c
        # 14788d8d241b exactly. 0x0015 is padding.
        extensions=(
            0x0000,
            0x0005,
            0x000A,
            0x000B,
            0x000D,
            0x0010,
            0x0012,
            0x0015,
            0x0017,
            0x001B,
            0x002B,
            0x002D,
            0x0033,
            0xFF01,
        ),
        signature_algorithms=(
            0x0403,
            0x0804,
            0x0401,
            0x0503,
            0x0203,
            0x0805,
            0x0805,
            0x0501,
            0x0806,
            0x0601,
            0x0201,
        ),
        supported_groups=None,
        # Unknown for a WebSocket connection; http/1.1 is what rapidws can speak.
        alpn=("http/1.1",),
        ja4="t13d2014h2_a09f3c656075_14788d8d241b",
        source="published: FoxIO ja4plus-mapping.csv, 'Safari' (a page load, ALPN h2)",
    ),
    source=(
        "order from WebKit's handshake builder (unverified for NSURLSession, see comment); "
        "UA: Safari 18.4 on macOS"
    ),
)

#: Every profile by name.
PROFILES: dict[str, Profile] = {
    "chrome131": CHROME_131,
    "chrome156": CHROME_156,
    "edge131": EDGE_131,
    "firefox153": FIREFOX_153,
    "safari18": SAFARI_18,
}

#: What a bare browser name means: its newest profile.
NEWEST: dict[str, str] = {
    "chrome": "chrome156",
    "edge": "edge131",
    "firefox": "firefox153",
    "safari": "safari18",
}
