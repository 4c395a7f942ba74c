"""impersonate=: the upgrade request byte for byte, the TLS fields the stdlib controls, interop.

The request is recorded by rapidws.cli_fingerprint.CaptureServer, a raw-socket
server that keeps the bytes exactly as they arrived (and, over TLS, the
ClientHello records before any TLS code reads them). Expected requests are
built here from the profile data alone, and for the measured profiles from
the real browsers' captures in tests/impersonate/captures/.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

import rapidws.impersonate
from rapidws import AsyncSession, WsFlag
from rapidws.cli_fingerprint import Capture, CaptureServer
from rapidws.impersonate import profiles
from rapidws.impersonate.fingerprint import is_grease, ja4, parse_client_hello
from tests.peers.certs import TLSFiles
from tests.peers.launcher import PeerName, PeerPool

NAMES = sorted(profiles.PROFILES)
CAPTURES = Path(__file__).parent.parent / "impersonate" / "captures"


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as srv:
        yield srv


@pytest.fixture
def tls_server(tls_files: TLSFiles) -> Iterator[CaptureServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls_files.server_cert), str(tls_files.server_key))
    context.set_alpn_protocols(["http/1.1"])
    with CaptureServer(context) as srv:
        yield srv


async def capture(server: CaptureServer, url: str, **options: object) -> Capture:
    """Connect with ``options``, close, and return what the server recorded."""
    verify = options.pop("verify", True)
    async with AsyncSession(verify=verify) as s, s.ws_connect(url, **options):  # type: ignore[arg-type]
        pass
    recorded = server.next(timeout=10)
    assert recorded.error is None
    return recorded


def key_of(request: bytes) -> str:
    match = re.search(rb"\r\nSec-WebSocket-Key: ([A-Za-z0-9+/=]+)\r\n", request)
    assert match is not None
    return match.group(1).decode()


def expected_request(
    profile: profiles.Profile,
    *,
    resource: str,
    host: str,
    origin: str,
    key: str,
    extra: dict[str, str] | None = None,
) -> bytes:
    """The upgrade request the profile describes, built from its data alone."""
    values = {name.lower(): value for name, value in profile.headers}
    values.update(
        {
            "host": host,
            "upgrade": "websocket",
            "connection": "Upgrade",
            "sec-websocket-key": key,
            "sec-websocket-version": "13",
            "origin": origin,
        }
    )
    if profile.extensions is not None:
        values["sec-websocket-extensions"] = profile.extensions
    values.update({name.lower(): value for name, value in (extra or {}).items()})
    lines = [f"GET {resource} HTTP/1.1"]
    lines += [f"{name}: {values[name.lower()]}" for name in profile.order if name.lower() in values]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class TestRequestBytes:
    @pytest.mark.parametrize("name", NAMES)
    async def test_every_profile_sends_its_fields_in_order(
        self, server: CaptureServer, name: str
    ) -> None:
        url = server.url("/chat?room=1")
        recorded = await capture(server, url, impersonate=name)
        profile = rapidws.impersonate.get(name)
        host = f"localhost:{server.port}"
        assert recorded.request == expected_request(
            profile,
            resource="/chat?room=1",
            host=host,
            origin=f"http://{host}",
            key=key_of(recorded.request),
        )

    @pytest.mark.parametrize(
        ("name", "capture_file", "extra", "subprotocols"),
        [
            ("chrome156", "chromium156", {}, None),
            ("firefox153", "firefox153", {}, None),
            (
                "chrome156",
                "chromium156-cookie-subprotocols",
                {"Cookie": "sid=abc123"},
                ["chat", "superchat"],
            ),
            (
                "firefox153",
                "firefox153-cookie-subprotocols",
                {"Cookie": "sid=abc123"},
                ["chat", "superchat"],
            ),
        ],
    )
    async def test_measured_profiles_match_the_real_browser_byte_for_byte(
        self,
        server: CaptureServer,
        name: str,
        capture_file: str,
        extra: dict[str, str],
        subprotocols: list[str] | None,
    ) -> None:
        recorded = await capture(
            server, server.url("/ws"), impersonate=name, headers=extra, subprotocols=subprotocols
        )
        browser = (CAPTURES / f"{capture_file}-upgrade.http").read_bytes()
        profile = rapidws.impersonate.get(name)
        # What differs by nature: the port, the random key and the platform in
        # the UA (captured on Linux, profiles say Windows). The extension offer
        # is the browser's own, byte for byte.
        browser = re.sub(rb"localhost:\d+", f"localhost:{server.port}".encode(), browser)
        browser = re.sub(
            rb"Sec-WebSocket-Key: \S+",
            b"Sec-WebSocket-Key: " + key_of(recorded.request).encode(),
            browser,
        )
        browser = re.sub(
            rb"User-Agent: [^\r]+",
            b"User-Agent: " + dict(profile.headers)["User-Agent"].encode(),
            browser,
        )
        assert recorded.request == browser

    async def test_user_headers_replace_profile_values_in_place(
        self, server: CaptureServer
    ) -> None:
        recorded = await capture(
            server,
            server.url("/"),
            impersonate="chrome",
            headers={"user-agent": "MyAgent/1.0", "accept-language": "de-DE", "X-Trace": "7"},
        )
        lines = recorded.request.decode().split("\r\n")
        assert lines[5] == "User-Agent: MyAgent/1.0"  # the profile's place and casing
        assert lines[10] == "Accept-Language: de-DE"
        assert lines[-3] == "X-Trace: 7"  # unknown to the browser: last
        assert sum(line.lower().startswith("user-agent:") for line in lines) == 1

    async def test_session_headers_and_cookies_take_their_slot(self, server: CaptureServer) -> None:
        async with (
            AsyncSession(headers={"cookie": "a=1"}, impersonate="chrome131") as s,
            s.ws_connect(server.url("/")),
        ):
            pass
        lines = server.next().request.decode().split("\r\n")
        assert lines[11] == "Cookie: a=1"
        assert lines[12].startswith("Sec-WebSocket-Key: ")

    @pytest.mark.parametrize(
        ("origin", "site"),
        [
            (None, "same-origin"),
            ("http://localhost:1", "same-site"),
            ("https://localhost:{port}", "cross-site"),
            ("http://example.com", "cross-site"),
        ],
    )
    async def test_origin_and_sec_fetch_site(
        self, server: CaptureServer, origin: str | None, site: str
    ) -> None:
        if origin is not None:
            origin = origin.format(port=server.port)
        recorded = await capture(server, server.url("/"), impersonate="firefox", origin=origin)
        text = recorded.request.decode()
        sent = origin or f"http://localhost:{server.port}"
        assert f"\r\nOrigin: {sent}\r\n" in text
        assert f"\r\nSec-Fetch-Site: {site}\r\n" in text

    async def test_a_call_can_turn_the_session_profile_off(self, server: CaptureServer) -> None:
        async with AsyncSession(impersonate="safari") as s:
            async with s.ws_connect(server.url("/"), impersonate=None):
                pass
            async with s.ws_connect(server.url("/"), impersonate="edge"):
                pass
        plain, edge = server.next().request, server.next().request
        assert b"User-Agent: rapidws/" in plain and b"Pragma" not in plain
        assert b" Edg/131.0.0.0\r\n" in edge


class TestNames:
    def test_available_lists_bare_and_versioned_names(self) -> None:
        assert rapidws.impersonate.available() == [
            "chrome",
            "chrome131",
            "chrome156",
            "edge",
            "edge131",
            "firefox",
            "firefox153",
            "safari",
            "safari18",
        ]

    @pytest.mark.parametrize(
        ("name", "profile"),
        [
            ("chrome", "chrome156"),
            ("Chrome131", "chrome131"),
            ("firefox", "firefox153"),
            ("edge", "edge131"),
            ("safari", "safari18"),
        ],
    )
    def test_bare_names_mean_the_newest(self, name: str, profile: str) -> None:
        assert rapidws.impersonate.get(name).name == profile

    async def test_unknown_names_fail_before_any_io_listing_the_valid_ones(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"unknown impersonate target 'chrome99'; choose one of: chrome, chrome131",
        ):
            AsyncSession(impersonate="chrome99")
        async with AsyncSession() as s:
            with pytest.raises(ValueError, match="safari18"):
                s.ws_connect("ws://127.0.0.1:9/", impersonate="opera")
            with pytest.raises(TypeError, match="browser name"):
                s.ws_connect("ws://127.0.0.1:9/", impersonate=131)  # type: ignore[arg-type]


class TestTLS:
    """The ClientHello fields the standard library controls, captured before TLS reads them."""

    @pytest.mark.parametrize("name", NAMES)
    async def test_client_hello_under_each_profile(
        self, tls_server: CaptureServer, ca_path: str, name: str
    ) -> None:
        recorded = await capture(tls_server, tls_server.url("/"), impersonate=name, verify=ca_path)
        assert recorded.client_hello is not None
        hello = parse_client_hello(recorded.client_hello)
        tls = rapidws.impersonate.get(name).tls
        # The TLS 1.2 suites, in the browser's order, minus those this OpenSSL lacks.
        available = {c["id"] & 0xFFFF for c in ssl.create_default_context().get_ciphers()}
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.set_ciphers(tls.openssl_ciphers)
        available |= {c["id"] & 0xFFFF for c in probe.get_ciphers()}
        tls12 = [c for c in tls.cipher_suites if c >> 8 != 0x13 and c in available]
        sent = [c for c in hello.cipher_suites if not is_grease(c)]
        assert [c for c in sent if c >> 8 != 0x13 and c != 0x00FF] == tls12
        assert {c for c in sent if c >> 8 == 0x13} == {0x1301, 0x1302, 0x1303}
        assert hello.alpn == (b"http/1.1",)
        assert hello.server_name == "localhost"
        assert hello.tls_version == 0x0304
        assert 0x0303 in hello.supported_versions
        assert 0x0023 in hello.extensions  # session tickets, as every browser
        # Padding and encrypt_then_mac go out only if the browser sends them.
        assert tls.extensions is not None
        assert 0x0016 not in hello.extensions
        if 0x0015 not in tls.extensions:
            assert 0x0015 not in hello.extensions
        head = ja4(hello).split("_")[0]
        assert head == f"t13d{len(sent):02d}{len(hello.extensions):02d}h1"

    async def test_without_a_profile_the_hello_is_unchanged(
        self, tls_server: CaptureServer, ca_path: str
    ) -> None:
        recorded = await capture(tls_server, tls_server.url("/"), verify=ca_path)
        assert recorded.client_hello is not None
        hello = parse_client_hello(recorded.client_hello)
        assert 0x0016 in hello.extensions  # OpenSSL's encrypt_then_mac stays
        assert b"User-Agent: rapidws/" in recorded.request


class TestInterop:
    """Real servers accept every profile's upgrade, over ws and wss."""

    @pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
    @pytest.mark.parametrize("peer_name", ["websockets", "ws"])
    @pytest.mark.parametrize("name", NAMES)
    async def test_echo_and_headers_seen_by_the_peer(
        self, peer_pool: PeerPool, ca_path: str, peer_name: PeerName, tls: bool, name: str
    ) -> None:
        peer = peer_pool.get(peer_name, tls=tls)
        profile = rapidws.impersonate.get(name)
        async with (
            AsyncSession(verify=ca_path, impersonate=name) as s,
            s.ws_connect(peer.url("/headers")) as ws,
        ):
            report = await ws.recv_json(timeout=5)
            await ws.send_str("hello")
            assert await ws.recv(timeout=5) == (b"hello", WsFlag.TEXT)
        seen = [key.lower() for key, _ in report["headers"]]
        assert {name.lower() for name, _ in profile.headers} <= set(seen)
        assert seen == [n.lower() for n in profile.order if n.lower() in seen]
        assert dict((k.lower(), v) for k, v in report["headers"])["origin"] == (
            f"{'https' if tls else 'http'}://{peer.host}:{peer.port}"
        )
