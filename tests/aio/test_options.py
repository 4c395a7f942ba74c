"""Request-style options of ws_connect against real servers: cookies, redirects,
timeouts, referer, interface, IPv6, base_url, Unix sockets, and validation.

Proxies have their own module: tests/net/test_proxies.py.
"""

from __future__ import annotations

import asyncio
import json
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, unix_serve

from rapidws import (
    AsyncSession,
    AsyncWebSocket,
    ConnectError,
    HandshakeError,
    InvalidStatus,
    TooManyRedirects,
    WebSocketTimeout,
)
from tests.aio.raw import has_ipv6_loopback
from tests.peers.launcher import BASIC_CREDENTIALS, Peer, PeerError, PeerPool

Report = dict[str, object]


async def report_of(ws: AsyncWebSocket) -> Report:
    """The /headers message: what the server received."""
    report: Report = await ws.recv_json(timeout=10)
    return report


def values(report: Report, name: str) -> list[str]:
    pairs = report["headers"]
    assert isinstance(pairs, list)
    return [value for key, value in pairs if key.lower() == name.lower()]


def redirect(peer: Peer, status: int, location: str, **extra: str) -> str:
    """A /reject URL on ``peer`` that redirects to ``location``."""
    query = f"status={status}&location={quote(location, safe='')}"
    for name, value in extra.items():
        query += f"&{name}={quote(value, safe='')}"
    return peer.url(f"/reject?{query}")


class TestCookies:
    async def test_set_cookie_on_101_is_sent_back_next_time(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            async with s.ws_connect(peer.url("/set-cookie?sid=abc123&theme=dark")) as ws:
                first = await report_of(ws)
            assert values(first, "Cookie") == []
            assert sorted((c.name, c.value) for c in s.cookies) == [
                ("sid", "abc123"),
                ("theme", "dark"),
            ]
            async with s.ws_connect(peer.url("/headers")) as ws:
                second = await report_of(ws)
        assert values(second, "Cookie") == ["sid=abc123; theme=dark"]

    async def test_path_rule(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            url = peer.url("/set-cookie?" + quote("p=1; Path=/set-cookie", safe="=&"))
            async with s.ws_connect(url) as ws:
                await report_of(ws)
            async with s.ws_connect(peer.url("/headers")) as ws:
                assert values(await report_of(ws), "Cookie") == []
            async with s.ws_connect(peer.url("/set-cookie")) as ws:
                assert values(await report_of(ws), "Cookie") == ["p=1"]

    async def test_secure_cookie_goes_over_wss_only(
        self, websockets_wss_peer: Peer, websockets_peer: Peer, ca_path: str
    ) -> None:
        # Both peers are reached as "localhost": cookies ignore the port
        # (RFC 6265 §8.5), so only Secure tells them apart.
        plain = f"ws://localhost:{websockets_peer.port}/headers"
        async with AsyncSession(verify=ca_path) as s:
            url = websockets_wss_peer.url(
                "/set-cookie?" + quote("sec=1; Secure", safe="=") + "&pub=2"
            )
            async with s.ws_connect(url) as ws:
                await report_of(ws)
            async with s.ws_connect(plain) as ws:
                assert values(await report_of(ws), "Cookie") == ["pub=2"]
            async with s.ws_connect(websockets_wss_peer.url("/headers")) as ws:
                assert values(await report_of(ws), "Cookie") == ["sec=1; pub=2"]

    async def test_session_and_call_cookies_merge(self, peer: Peer) -> None:
        async with AsyncSession(cookies={"a": "session", "b": "session"}) as s:
            async with s.ws_connect(peer.url("/headers"), cookies={"b": "call", "c": "call"}) as ws:
                cookie = values(await report_of(ws), "Cookie")
            assert len(cookie) == 1
            assert sorted(cookie[0].split("; ")) == ["a=session", "b=call", "c=call"]
            # Call cookies were for that call only.
            async with s.ws_connect(peer.url("/headers")) as ws:
                assert values(await report_of(ws), "Cookie") == ["a=session; b=session"]

    async def test_cookie_jar_domain_rule(self, peer: Peer) -> None:
        jar = CookieJar()
        jar.set_cookie(_cookie("mine", "1", "127.0.0.1"))
        jar.set_cookie(_cookie("theirs", "2", "example.com"))
        async with AsyncSession(cookies=jar) as s:
            assert s.cookies is jar
            async with s.ws_connect(peer.url("/set-cookie?new=3")) as ws:
                assert values(await report_of(ws), "Cookie") == ["mine=1"]
        # Set-Cookie landed in the jar the user gave.
        assert sorted(c.name for c in jar) == ["mine", "new", "theirs"]

    async def test_explicit_cookie_header_wins(self, peer: Peer) -> None:
        url = peer.url("/headers")
        async with (
            AsyncSession(cookies={"a": "1"}) as s,
            s.ws_connect(url, headers={"Cookie": "raw=yes"}) as ws,
        ):
            assert values(await report_of(ws), "Cookie") == ["raw=yes"]

    async def test_invalid_cookies_are_refused_before_io(self) -> None:
        async with AsyncSession() as s:
            with pytest.raises(TypeError, match="cookies must be a dict"):
                s.ws_connect("ws://127.0.0.1:9/", cookies=[("a", "1")])  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="invalid cookie"):
                s.ws_connect("ws://127.0.0.1:9/", cookies={"a": "x;y"})


def _cookie(name: str, value: str, domain: str, path: str = "/") -> Cookie:
    return Cookie(
        0, name, value, None, False, domain, False, False, path, True, False, None, True,
        None, None, {},
    )  # fmt: skip


class TestRedirects:
    async def test_chain_of_every_redirect_status(self, aiohttp_peer: Peer) -> None:
        target = aiohttp_peer.url("/headers?end=1")
        url = target
        for status in (308, 307, 303, 302, 301):
            url = redirect(aiohttp_peer, status, url)
        async with AsyncSession() as s, s.ws_connect(url, auth=BASIC_CREDENTIALS) as ws:
            report = await report_of(ws)
        assert report["path"] == "/headers?end=1"
        # Same origin all along: the credentials went to every hop.
        assert len(values(report, "Authorization")) == 1

    async def test_relative_and_http_locations(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            async with s.ws_connect(redirect(peer, 302, "/headers?rel=1")) as ws:
                assert (await report_of(ws))["path"] == "/headers?rel=1"
            http_url = peer.url("/headers?abs=1").replace("ws://", "http://")
            async with s.ws_connect(redirect(peer, 301, http_url)) as ws:
                assert (await report_of(ws))["path"] == "/headers?abs=1"

    async def test_allow_redirects_false_raises_the_redirect(self, peer: Peer) -> None:
        async with AsyncSession(allow_redirects=False) as s:
            with pytest.raises(InvalidStatus) as info:
                await s.ws_connect(redirect(peer, 302, "/headers"))
        assert info.value.status == 302
        assert ("location", "/headers") in [(n.lower(), v) for n, v in info.value.headers]

    async def test_too_many_redirects(self, aiohttp_peer: Peer) -> None:
        url = aiohttp_peer.url("/headers")
        for n in range(3):
            url = redirect(aiohttp_peer, 302, url, body=str(n))
        async with AsyncSession(max_redirects=2) as s:
            with pytest.raises(TooManyRedirects, match="more than 2 redirects") as info:
                await s.ws_connect(url)
        assert info.value.status == 302

    async def test_loop_is_detected(self) -> None:
        # /a -> /b -> /a on an aiohttp server of the test's own (a loop cannot
        # be spelled in the peers' query strings: each URL would contain itself).
        async def a(request: web.Request) -> web.Response:
            raise web.HTTPFound("/b")

        async def b(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect("/a")

        app = web.Application()
        app.router.add_get("/a", a)
        app.router.add_get("/b", b)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            async with AsyncSession() as s:
                with pytest.raises(TooManyRedirects) as info:
                    await s.ws_connect(f"ws://127.0.0.1:{port}/a")
        finally:
            await runner.cleanup()
        assert str(info.value) == (
            f"redirect loop: ws://127.0.0.1:{port}/b redirected back to ws://127.0.0.1:{port}/a"
        )
        assert info.value.status == 307

    async def test_credentials_and_cookies_stay_with_their_origin(
        self, aiohttp_peer: Peer, websockets_peer: Peer
    ) -> None:
        # 127.0.0.1 on another port is another origin (RFC 6454 §4).
        elsewhere = websockets_peer.url("/headers")
        async with AsyncSession(cookies={"sid": "secret"}) as s:
            for auth, headers in (
                (BASIC_CREDENTIALS, {"X-Keep": "yes"}),
                (None, {"X-Keep": "yes", "Authorization": "Bearer token123", "Cookie": "raw=1"}),
            ):
                url = redirect(aiohttp_peer, 307, elsewhere)
                async with s.ws_connect(url, auth=auth, headers=headers) as ws:
                    report = await report_of(ws)
                assert values(report, "Authorization") == []
                assert values(report, "Cookie") == []
                assert values(report, "X-Keep") == ["yes"]

    async def test_set_cookie_on_a_redirect_is_kept_and_sent(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            url = redirect(peer, 302, "/headers", cookie="hop=1; Path=/")
            async with s.ws_connect(url) as ws:
                assert values(await report_of(ws), "Cookie") == ["hop=1"]
            assert [(c.name, c.value) for c in s.cookies] == [("hop", "1")]

    async def test_no_downgrade_from_wss_to_ws(
        self, websockets_wss_peer: Peer, websockets_peer: Peer, ca_path: str
    ) -> None:
        url = redirect(websockets_wss_peer, 302, websockets_peer.url("/headers"))
        async with AsyncSession(verify=ca_path) as s:
            with pytest.raises(HandshakeError, match="would drop TLS") as info:
                await s.ws_connect(url)
            assert info.value.status == 302
            async with s.ws_connect(url, allow_insecure_redirects=True) as ws:
                assert (await report_of(ws))["path"] == "/headers"


class TestTimeouts:
    async def test_upgrade_phase_timeout(self) -> None:
        # Accepts TCP, reads, never answers: the upgrade is what times out.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncSession(timeout=0.3) as s:
                with pytest.raises(WebSocketTimeout) as info:
                    await s.ws_connect(f"ws://127.0.0.1:{port}/")
                with pytest.raises(WebSocketTimeout) as tls_info:
                    await s.ws_connect(f"wss://127.0.0.1:{port}/", timeout=(0.3, 5))
        finally:
            server.close()
        assert str(info.value) == (
            f"connecting to ws://127.0.0.1:{port}/ timed out after 0.3 s "
            "during the WebSocket upgrade"
        )
        assert str(tls_info.value).endswith("during the TLS handshake")


class TestOtherOptions:
    async def test_referer(self, peer: Peer) -> None:
        async with AsyncSession(referer="https://example.com/page") as s:
            async with s.ws_connect(peer.url("/headers")) as ws:
                assert values(await report_of(ws), "Referer") == ["https://example.com/page"]
            async with s.ws_connect(peer.url("/headers"), referer="https://other.example/") as ws:
                assert values(await report_of(ws), "Referer") == ["https://other.example/"]

    async def test_interface_binds_the_local_address(self, websockets_peer: Peer) -> None:
        # All of 127.0.0.0/8 is loopback on Linux: binding 127.0.0.2 shows the option works.
        async with (
            AsyncSession(interface="127.0.0.2") as s,
            s.ws_connect(websockets_peer.url("/echo")) as ws,
        ):
            transport = ws.transport
            assert transport is not None
            assert transport.get_extra_info("sockname")[0] == "127.0.0.2"
            await ws.send_str("bound")
            assert await ws.recv_str(timeout=10) == "bound"

    async def test_interface_that_is_not_local(self, websockets_peer: Peer) -> None:
        async with AsyncSession(interface="192.0.2.1") as s:  # TEST-NET-1, never local
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "tcp"

    async def test_ipv6_literal(self, peer_pool: PeerPool) -> None:
        if not has_ipv6_loopback():
            pytest.skip("no IPv6 loopback on this machine")
        try:
            peer = peer_pool.get("websockets", bind="::1")
        except PeerError as exc:  # pragma: no cover
            pytest.skip(f"cannot serve on ::1: {exc}")
        assert peer.url("/headers").startswith("ws://[::1]:")
        async with AsyncSession() as s, s.ws_connect(peer.url("/headers")) as ws:
            report = await report_of(ws)
        assert values(report, "Host") == [f"[::1]:{peer.port}"]

    async def test_base_url(self, peer: Peer) -> None:
        async with AsyncSession(base_url=peer.url("/")) as s:
            async with s.ws_connect("headers?from=base") as ws:
                assert (await report_of(ws))["path"] == "/headers?from=base"
            # An absolute URL ignores base_url.
            async with s.ws_connect(peer.url("/headers?abs=1")) as ws:
                assert (await report_of(ws))["path"] == "/headers?abs=1"

    async def test_unix_socket(self, tmp_path: Path) -> None:
        path = str(tmp_path / "ws.sock")

        async def handler(connection: ServerConnection) -> None:
            assert connection.request is not None
            await connection.send(json.dumps({"host": connection.request.headers["Host"]}))
            async for message in connection:
                await connection.send(message)

        async with unix_serve(handler, path):
            async with AsyncSession() as s, s.ws_connect("ws://localhost/", unix_socket=path) as ws:
                assert json.loads(await ws.recv_str(timeout=10)) == {"host": "localhost"}
                await ws.send_str("over a Unix socket")
                assert await ws.recv_str(timeout=10) == "over a Unix socket"
            async with AsyncSession(unix_socket=tmp_path / "missing.sock") as s:
                with pytest.raises(ConnectError) as info:
                    await s.ws_connect("ws://localhost/")
        assert info.value.hop == "unix"


class TestValidation:
    """Every option is checked by ws_connect, before any I/O."""

    @pytest.mark.parametrize(
        ("options", "error", "message"),
        [
            ({"proxy": "ftp://proxy:21"}, ValueError, "unsupported proxy scheme 'ftp'"),
            ({"proxy": "http://[::1"}, ValueError, "invalid proxy URL"),
            ({"proxy": "http://proxy:99999"}, ValueError, "invalid proxy URL"),
            ({"proxy": "socks5://proxy/path"}, ValueError, "without a path"),
            ({"proxy": "http://"}, ValueError, "proxy URL has no host"),
            ({"proxy": 8080}, TypeError, "proxy must be a str"),
            ({"proxies": "http://p:1"}, TypeError, "proxies must be a dict"),
            ({"proxies": {"https": "gopher://p"}}, ValueError, "unsupported proxy scheme"),
            ({"proxy_auth": ("only-user",)}, TypeError, "proxy_auth must be a"),
            ({"max_redirects": -1}, ValueError, "max_redirects must be >= 0, got -1"),
            ({"interface": "eth0"}, ValueError, "interface must be a local IP address"),
            ({"unix_socket": 5}, TypeError, "unix_socket must be a path"),
            ({"referer": b"x"}, TypeError, "referer must be a str"),
            ({"timeout": (1, 2, 3)}, ValueError, "timeout must be a number or"),
        ],
    )
    async def test_bad_option(
        self, options: dict[str, object], error: type[Exception], message: str
    ) -> None:
        async with AsyncSession() as s:
            with pytest.raises(error, match=message):
                s.ws_connect("ws://127.0.0.1:9/", **options)  # type: ignore[arg-type]

    async def test_bad_session_option(self) -> None:
        with pytest.raises(ValueError, match="unsupported proxy scheme"):
            AsyncSession(proxy="smtp://mail:25")
        with pytest.raises(ValueError, match="unsupported URL scheme"):
            AsyncSession(base_url="ftp://host/")

    async def test_proxy_password_never_in_the_message(self) -> None:
        async with AsyncSession() as s:
            with pytest.raises(ValueError) as info:
                s.ws_connect("ws://127.0.0.1:9/", proxy="ftp://user:hunter2@proxy:21")
        assert "hunter2" not in str(info.value)
        assert "user:***@proxy:21" in str(info.value)
