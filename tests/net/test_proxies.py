"""Proxies through the public API, against real proxy servers and real WebSocket peers.

pproxy (PyPI) serves HTTP CONNECT, HTTPS (TLS to the proxy), SOCKS4 and SOCKS5
with credentials; Debian's tinyproxy serves HTTP CONNECT and refuses with a
status (403, 407, 500). See tests/peers/proxies.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl

import pytest

from rapidws import AsyncSession, ConnectError, ProxyError, WebSocketTimeout
from tests.net.conftest import ProxyPool
from tests.peers.launcher import Peer
from tests.peers.proxies import PROXY_CREDENTIALS, ProxyProcess


def accepted(proxy: ProxyProcess, target: str) -> int:
    """How many tunnels pproxy opened to ``target`` (``host:port`` as the client named it)."""
    return proxy.log_text().count(f" -> {target}\n")


async def round_trip(session: AsyncSession, url: str, text: str = "through") -> None:
    async with session.ws_connect(url) as ws:
        await ws.send_str(text)
        assert await ws.recv_str(timeout=10) == text


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (the kernel just handed it out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def targets(websockets_peer: Peer, websockets_wss_peer: Peer) -> dict[str, Peer]:
    return {"ws": websockets_peer, "wss": websockets_wss_peer}


class TestHTTPConnect:
    """RFC 9110 §9.3.6: CONNECT through pproxy and tinyproxy, ws and wss."""

    @pytest.mark.parametrize("name", ["http", "tinyproxy"])
    @pytest.mark.parametrize("scheme", ["ws", "wss"])
    async def test_tunnel_carries_the_websocket(
        self, proxy_pool: ProxyPool, targets: dict[str, Peer], ca_path: str, name: str, scheme: str
    ) -> None:
        proxy = proxy_pool.get(name)
        peer = targets[scheme]
        async with AsyncSession(proxy=proxy.server.url(), verify=ca_path) as s:
            await round_trip(s, peer.url("/echo"))
            # The server sees no proxy credential: they stop at the proxy.
            async with s.ws_connect(peer.url("/headers")) as ws:
                report = await ws.recv_json(timeout=10)
        names = {name.lower() for name, _ in report["headers"]}
        assert "proxy-authorization" not in names
        if proxy.server.kind == "pproxy":
            assert accepted(proxy, f"{peer.host}:{peer.port}") >= 2

    async def test_proxy_auth_option_replaces_url_credentials(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("http")
        async with AsyncSession(
            proxy=proxy.server.url(credentials=False), proxy_auth=PROXY_CREDENTIALS
        ) as s:
            await round_trip(s, websockets_peer.url("/echo"))

    @pytest.mark.parametrize(
        ("name", "status"),
        [("http", "407 Proxy Authentication Required"), ("tinyproxy", "401 Unauthorized")],
    )
    async def test_wrong_credentials_are_refused_with_the_status(
        self, proxy_pool: ProxyPool, websockets_peer: Peer, name: str, status: str
    ) -> None:
        # pproxy answers 407; tinyproxy 407 without credentials, 401 for wrong ones.
        proxy = proxy_pool.get(name)
        password = "wrong-secret-xyz"
        async with AsyncSession(proxy_auth=("someone", password)) as s:
            with pytest.raises(ProxyError) as info:
                await s.ws_connect(websockets_peer.url("/echo"), proxy=proxy.server.url())
        assert info.value.hop == "proxy-auth"
        assert info.value.status == int(status[:3])
        assert str(info.value) == (
            f"proxy 127.0.0.1:{proxy.server.port}: credentials were refused (HTTP {status})"
        )
        assert password not in repr(info.value) and password not in str(info.value)

    async def test_missing_credentials_say_so(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("tinyproxy")
        async with AsyncSession(proxy=proxy.server.url(credentials=False)) as s:
            with pytest.raises(ProxyError, match="credentials are required and none were given"):
                await s.ws_connect(websockets_peer.url("/echo"))

    async def test_refused_tunnel_carries_the_status(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        # tinyproxy with "ConnectPort 1": CONNECT to any other port is refused.
        proxy = proxy_pool.get("tinyproxy-refusing")
        async with AsyncSession(proxy=proxy.server.url()) as s:
            with pytest.raises(ProxyError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert (info.value.hop, info.value.status) == ("proxy-tunnel", 403)
        assert str(info.value) == (
            f"proxy 127.0.0.1:{proxy.server.port} refused the tunnel to "
            f"127.0.0.1:{websockets_peer.port} (HTTP 403 Access violation)"
        )

    async def test_unreachable_target_is_a_refused_tunnel(self, proxy_pool: ProxyPool) -> None:
        proxy = proxy_pool.get("tinyproxy")
        async with AsyncSession(proxy=proxy.server.url()) as s:
            with pytest.raises(ProxyError) as info:
                await s.ws_connect(f"ws://127.0.0.1:{closed_port()}/")
        assert (info.value.hop, info.value.status) == ("proxy-tunnel", 500)

    async def test_proxy_that_hangs_up_on_connect(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        # pproxy blocking every host closes the connection without an answer.
        proxy = proxy_pool.get("http-blocking")
        async with AsyncSession(proxy=proxy.server.url()) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "proxy-tunnel"
        assert "closed the connection before answering CONNECT" in str(info.value)


class TestHTTPSProxy:
    """TLS to the proxy, CONNECT inside it, then the server's TLS inside the tunnel."""

    @pytest.mark.parametrize("scheme", ["ws", "wss"])
    async def test_tls_to_the_proxy(
        self, proxy_pool: ProxyPool, targets: dict[str, Peer], ca_path: str, scheme: str
    ) -> None:
        proxy = proxy_pool.get("https")
        peer = targets[scheme]
        async with (
            AsyncSession(proxy=proxy.server.url(), verify=ca_path) as s,
            s.ws_connect(peer.url("/echo")) as ws,
        ):
            await ws.send_str("inside")
            assert await ws.recv_str(timeout=10) == "inside"
            transport = ws.transport
            assert transport is not None
            ssl_object = transport.get_extra_info("ssl_object")
            assert isinstance(ssl_object, ssl.SSLObject)
            # The outer TLS session is the proxy's; for wss the WebSocket's own
            # TLS session, named for the server, runs inside it.
            expected = "localhost" if scheme == "wss" else "127.0.0.1"
            assert ssl_object.server_hostname == expected
        assert accepted(proxy, f"{peer.host}:{peer.port}") >= 1

    async def test_untrusted_proxy_certificate(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("https")
        async with AsyncSession(proxy=proxy.server.url()) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "proxy-tls"
        assert "certificate verify failed" in str(info.value) or "not trusted" in str(info.value)

    async def test_client_certificate_reaches_the_server_through_the_proxy(
        self,
        proxy_pool: ProxyPool,
        mtls_url: str,
        ca_path: str,
        client_cert_paths: tuple[str, str],
    ) -> None:
        proxy = proxy_pool.get("https")
        async with (
            AsyncSession(proxy=proxy.server.url(), verify=ca_path) as s,
            s.ws_connect(mtls_url, cert=client_cert_paths) as ws,
        ):
            await ws.send_str("mutual")
            assert await ws.recv_str(timeout=10) == "mutual"


class TestSOCKS:
    async def test_socks5_with_credentials_resolves_locally(
        self, proxy_pool: ProxyPool, websockets_wss_peer: Peer, ca_path: str
    ) -> None:
        proxy = proxy_pool.get("socks5")
        peer = websockets_wss_peer  # wss://localhost:PORT
        async with AsyncSession(proxy=proxy.server.url("socks5"), verify=ca_path) as s:
            await round_trip(s, peer.url("/echo"))
        # socks5: the client resolved "localhost" and sent an address.
        assert accepted(proxy, f"127.0.0.1:{peer.port}") >= 1

    async def test_socks5h_lets_the_proxy_resolve(
        self, proxy_pool: ProxyPool, websockets_wss_peer: Peer, ca_path: str
    ) -> None:
        proxy = proxy_pool.get("socks5")
        peer = websockets_wss_peer
        async with AsyncSession(proxy=proxy.server.url("socks5h"), verify=ca_path) as s:
            await round_trip(s, peer.url("/echo"))
        assert accepted(proxy, f"localhost:{peer.port}") >= 1

    async def test_socks4_with_user_id(
        self, proxy_pool: ProxyPool, targets: dict[str, Peer], ca_path: str
    ) -> None:
        proxy = proxy_pool.get("socks4")
        async with AsyncSession(proxy=proxy.server.url(), verify=ca_path) as s:
            await round_trip(s, targets["ws"].url("/echo"))
            await round_trip(s, targets["wss"].url("/echo"))

    async def test_socks5_wrong_credentials(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("socks5")
        url = proxy.server.url("socks5", credentials=False)
        async with AsyncSession(proxy=url, proxy_auth=("proxyuser", "not-the-pass")) as s:
            with pytest.raises(ProxyError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "proxy-auth"
        assert "not-the-pass" not in str(info.value)

    async def test_socks4_unknown_user_is_refused(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("socks4")
        url = f"socks4://intruder@127.0.0.1:{proxy.server.port}"
        async with AsyncSession(proxy=url) as s:
            with pytest.raises(ProxyError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "proxy-tunnel"


class TestProxySelection:
    async def test_proxies_dict_by_scheme(
        self, proxy_pool: ProxyPool, targets: dict[str, Peer], ca_path: str
    ) -> None:
        http = proxy_pool.get("http")
        socks = proxy_pool.get("socks5")
        dead = f"http://127.0.0.1:{closed_port()}"
        ws_peer, wss_peer = targets["ws"], targets["wss"]
        before_http = accepted(http, f"127.0.0.1:{ws_peer.port}")
        before_socks = accepted(socks, f"localhost:{wss_peer.port}")
        proxies = {"http": http.server.url(), "https": socks.server.url("socks5h"), "all": dead}
        async with AsyncSession(proxies=proxies, verify=ca_path) as s:
            await round_trip(s, ws_peer.url("/echo"))
            await round_trip(s, wss_peer.url("/echo"))
        assert accepted(http, f"127.0.0.1:{ws_peer.port}") == before_http + 1
        assert accepted(socks, f"localhost:{wss_peer.port}") == before_socks + 1

    async def test_ws_and_wss_keys_and_all(
        self, proxy_pool: ProxyPool, targets: dict[str, Peer], ca_path: str
    ) -> None:
        http = proxy_pool.get("http")
        dead = f"http://127.0.0.1:{closed_port()}"
        async with AsyncSession(verify=ca_path) as s:
            # "ws" wins over "http", "wss" over "https" (curl_cffi's keys).
            await s.ws_connect(
                targets["ws"].url("/echo"), proxies={"ws": http.server.url(), "http": dead}
            )
            await s.ws_connect(
                targets["wss"].url("/echo"), proxies={"wss": http.server.url(), "https": dead}
            )
            await s.ws_connect(targets["wss"].url("/echo"), proxies={"all": http.server.url()})
            # A dict without a matching key, or proxy="": direct.
            await s.ws_connect(targets["ws"].url("/echo"), proxies={"https": dead})
            await s.ws_connect(targets["ws"].url("/echo"), proxy="", proxies={"all": dead})

    async def test_environment_variables(
        self,
        proxy_pool: ProxyPool,
        targets: dict[str, Peer],
        ca_path: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        http = proxy_pool.get("http")
        dead = f"http://127.0.0.1:{closed_port()}"
        wss_peer = targets["wss"]
        before = accepted(http, f"{wss_peer.host}:{wss_peer.port}")
        monkeypatch.setenv("HTTPS_PROXY", http.server.url())
        monkeypatch.setenv("http_proxy", dead)
        async with AsyncSession(verify=ca_path) as s:
            await round_trip(s, wss_peer.url("/echo"))
            assert accepted(http, f"{wss_peer.host}:{wss_peer.port}") == before + 1
            # http_proxy (dead) applies to ws://...
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(targets["ws"].url("/echo"))
            assert info.value.hop == "proxy-tcp"
            # ... unless NO_PROXY names the host.
            monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
            await round_trip(s, targets["ws"].url("/echo"))
        # trust_env=False ignores all of it.
        monkeypatch.delenv("NO_PROXY")
        async with AsyncSession(trust_env=False) as s:
            await round_trip(s, targets["ws"].url("/echo"))

    async def test_all_proxy_environment_variable(
        self, proxy_pool: ProxyPool, websockets_peer: Peer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        socks = proxy_pool.get("socks5")
        before = accepted(socks, f"127.0.0.1:{websockets_peer.port}")
        monkeypatch.setenv("ALL_PROXY", socks.server.url("socks5"))
        async with AsyncSession() as s:
            await round_trip(s, websockets_peer.url("/echo"))
        assert accepted(socks, f"127.0.0.1:{websockets_peer.port}") == before + 1

    async def test_bad_proxy_in_the_environment_fails_before_io(
        self, websockets_peer: Peer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("http_proxy", "gopher://u:topsecret@proxy:70")
        async with AsyncSession() as s:
            with pytest.raises(ValueError, match="unsupported proxy scheme 'gopher'") as info:
                s.ws_connect(websockets_peer.url("/echo"))
        assert "topsecret" not in str(info.value)


class TestHops:
    """Every failure says which hop failed."""

    @pytest.mark.parametrize("scheme", ["http", "https", "socks5", "socks4"])
    async def test_proxy_not_listening(self, websockets_peer: Peer, scheme: str) -> None:
        proxy = f"{scheme}://127.0.0.1:{closed_port()}"
        async with AsyncSession(proxy=proxy) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert info.value.hop == "proxy-tcp"
        assert "refused" in str(info.value)

    async def test_socks4_cannot_carry_ipv6(self) -> None:
        async with AsyncSession(proxy=f"socks4://127.0.0.1:{closed_port()}") as s:
            with pytest.raises(ConnectError, match="SOCKS4 carries IPv4 only") as info:
                await s.ws_connect("ws://[::1]:9/")
        assert info.value.hop == "proxy-tunnel"

    async def test_proxy_host_does_not_resolve(self, websockets_peer: Peer) -> None:
        async with AsyncSession(proxy="http://no-such-proxy.invalid:3128", timeout=20) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_peer.url("/echo"))
        assert (info.value.hop, info.value.host) == ("dns", "no-such-proxy.invalid")
        assert str(info.value).startswith("DNS lookup of proxy no-such-proxy.invalid:3128 failed")

    async def test_server_tls_failure_inside_the_tunnel(
        self, proxy_pool: ProxyPool, websockets_wss_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("http")
        async with AsyncSession(proxy=proxy.server.url()) as s:  # system CAs: not ours
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_wss_peer.url("/echo"))
        assert info.value.hop == "tls"
        assert "not trusted" in str(info.value)

    @pytest.mark.parametrize(
        ("scheme", "phase"),
        [
            ("http", "CONNECT through proxy 127.0.0.1:{port}"),
            ("socks5", "TCP connect and SOCKS5 handshake with proxy 127.0.0.1:{port}"),
        ],
    )
    async def test_stalled_proxy_times_out_naming_the_phase(self, scheme: str, phase: str) -> None:
        # Accepts TCP, never answers: the proxy handshake is what times out.
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncSession(proxy=f"{scheme}://127.0.0.1:{port}", timeout=0.5) as s:
                with pytest.raises(WebSocketTimeout) as info:
                    await s.ws_connect("ws://127.0.0.1:9/")
        finally:
            server.close()
        assert str(info.value) == (
            "connecting to ws://127.0.0.1:9/ timed out after 0.5 s during the "
            + phase.format(port=port)
        )

    async def test_interface_binds_the_connection_to_the_proxy(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        proxy = proxy_pool.get("socks5")
        async with (
            AsyncSession(proxy=proxy.server.url("socks5"), interface="127.0.0.2") as s,
            s.ws_connect(websockets_peer.url("/echo")) as ws,
        ):
            transport = ws.transport
            assert transport is not None
            assert transport.get_extra_info("sockname")[0] == "127.0.0.2"
        assert "ACCEPT socks5 127.0.0.2:" in proxy.log_text()


class TestNoLeaks:
    async def test_failures_leave_no_socket_or_task(
        self, proxy_pool: ProxyPool, websockets_peer: Peer
    ) -> None:
        http = proxy_pool.get("http")
        refusing = proxy_pool.get("tinyproxy-refusing")
        socks = proxy_pool.get("socks5")
        attempts = [
            {"proxy": http.server.url(credentials=False)},
            {"proxy": refusing.server.url()},
            {"proxy": socks.server.url("socks5", credentials=False)},
            {"proxy": f"http://127.0.0.1:{closed_port()}"},
        ]
        async with AsyncSession() as s:
            await round_trip(s, websockets_peer.url("/echo"))  # warm up lazily made objects
            await asyncio.sleep(0.1)
            tasks_before = asyncio.all_tasks()
            fds_before = open_fds()
            for _ in range(3):
                for options in attempts:
                    with pytest.raises(ConnectError):
                        await s.ws_connect(websockets_peer.url("/echo"), **options)  # type: ignore[arg-type]
            for _ in range(100):  # aborted transports close on the next loop turns
                await asyncio.sleep(0.02)
                if open_fds() <= fds_before:
                    break
            assert open_fds() <= fds_before
            assert asyncio.all_tasks() == tasks_before


class TestSecretsStayHidden:
    async def test_no_secret_in_reprs_errors_or_logs(
        self,
        proxy_pool: ProxyPool,
        websockets_peer: Peer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        http = proxy_pool.get("http")
        secrets = ["proxy-pw-1", "auth-pw-2", "cookie-val-3", "bearer-tok-4"]
        caplog.set_level(logging.DEBUG)
        proxy = f"http://proxyuser:{secrets[0]}@127.0.0.1:{http.server.port}"
        session = AsyncSession(
            proxy=proxy,
            auth=("user", secrets[1]),
            cookies={"sid": secrets[2]},
            headers={"Authorization": f"Bearer {secrets[3]}"},
        )
        texts = [repr(session), str(session)]
        async with session as s:
            connector = s.ws_connect(websockets_peer.url("/reject?status=403"))
            texts.append(repr(connector))
            with pytest.raises(Exception) as info:
                await connector
            texts += [str(info.value), repr(info.value)]
            with pytest.raises(ProxyError) as info2:
                await s.ws_connect(websockets_peer.url("/echo"))
            texts += [str(info2.value), repr(info2.value)]
            async with s.ws_connect(websockets_peer.url("/echo"), proxy="") as ws:
                texts.append(repr(ws))
        texts.append(caplog.text)
        for text in texts:
            for secret in secrets:
                assert secret not in text, text


class TestSOCKS4a:
    async def test_socks4a_sends_the_name_for_the_proxy_to_resolve(
        self, proxy_pool: ProxyPool, websockets_wss_peer: Peer
    ) -> None:
        # No packaged proxy speaks SOCKS4a (pproxy and Dante read only SOCKS4's
        # address), so this checks what the client sent: the 0.0.0.x address
        # that asks the proxy to resolve the name that follows (SOCKS4A spec).
        proxy = proxy_pool.get("socks4")
        marker = f"0.0.0.1:{websockets_wss_peer.port}"
        before = accepted(proxy, marker)
        async with AsyncSession(proxy=proxy.server.url("socks4a"), timeout=10) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(websockets_wss_peer.url("/echo"))
        # pproxy took 0.0.0.1 for the address, so the tunnel then failed.
        assert accepted(proxy, marker) == before + 1
        assert info.value.hop in ("tls", "proxy-tunnel")
