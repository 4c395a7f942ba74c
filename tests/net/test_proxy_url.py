"""Pure parsing and selection: proxy URLs, NO_PROXY, the proxies dict, WebSocket URLs."""

from __future__ import annotations

import sys

import pytest

from rapidws.net.proxy import ProxyURL, bypass_proxy, parse_proxy, select_proxy
from rapidws.net.tunnel import connect_request
from rapidws.net.url import parse_url


class TestParseProxy:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("http://proxy:3128", ProxyURL("http", "proxy", 3128)),
            ("proxy.example:8080", ProxyURL("http", "proxy.example", 8080)),
            ("http://proxy", ProxyURL("http", "proxy", 1080)),
            ("https://proxy", ProxyURL("https", "proxy", 443)),
            ("SOCKS5H://Proxy.Example/", ProxyURL("socks5h", "proxy.example", 1080)),
            ("socks4a://10.0.0.1:9050", ProxyURL("socks4a", "10.0.0.1", 9050)),
            ("socks5://[::1]:1080", ProxyURL("socks5", "::1", 1080)),
            ("http://u%40x:p%3Aw%20d@proxy:1", ProxyURL("http", "proxy", 1, "u@x", "p:w d")),
            ("http://bücher.example:1", ProxyURL("http", "xn--bcher-kva.example", 1)),
        ],
    )
    def test_valid(self, url: str, expected: ProxyURL) -> None:
        parsed = parse_proxy(url)
        assert parsed == expected
        assert parsed.password == expected.password

    def test_proxy_auth_replaces_url_credentials(self) -> None:
        parsed = parse_proxy("http://a:b@proxy:1", ("c", "d"))
        assert (parsed.user, parsed.password) == ("c", "d")

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("ftp://proxy:21", "unsupported proxy scheme 'ftp'"),
            ("http://", "proxy URL has no host"),
            ("http://proxy:0", "invalid port 0"),
            ("http://proxy:70000", "invalid proxy URL"),
            ("http://proxy:1/path", "without a path"),
            ("http://proxy:1?x=1", "without a path"),
            ("http://[::1:1", "invalid proxy URL"),
        ],
    )
    def test_invalid(self, url: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_proxy(url)

    def test_socks5_credentials_fit_one_octet(self) -> None:
        # RFC 1929 §2: ULEN and PLEN are single octets.
        with pytest.raises(ValueError, match="255 bytes"):
            parse_proxy("socks5://proxy", ("u", "p" * 256))

    def test_password_is_never_shown(self) -> None:
        proxy = parse_proxy("http://alice:s3cret@proxy:3128")
        for text in (str(proxy), repr(proxy), f"{proxy}", str([proxy])):
            assert "s3cret" not in text
        assert str(proxy) == "http://alice:***@proxy:3128"
        with pytest.raises(ValueError) as info:
            parse_proxy("gopher://alice:s3cret@proxy:70")
        assert "s3cret" not in str(info.value)

    def test_not_a_string(self) -> None:
        with pytest.raises(TypeError, match="must be a str"):
            parse_proxy(b"http://proxy")  # type: ignore[arg-type]


class TestNoProxy:
    @pytest.mark.parametrize(
        ("url", "no_proxy", "bypass"),
        [
            ("ws://example.com/", "example.com", True),
            ("ws://api.example.com/", "example.com", True),
            ("ws://api.example.com/", ".example.com", True),
            ("ws://badexample.com/", "example.com", False),
            ("ws://example.com/", "*", True),
            ("ws://10.1.2.3/", "10.0.0.0/8", True),
            ("ws://11.1.2.3/", "10.0.0.0/8", False),
            ("ws://127.0.0.1:8080/", "127.0.0.1:8080", True),
            ("ws://127.0.0.1:8081/", "127.0.0.1:8080", False),
            ("ws://[::1]:9/", "::1", True),
            ("ws://[::1]:9/", "[::1]:9", True),
            ("ws://[::1]:9/", "[::1]:8", False),
            ("wss://host/", " other , host ", True),
            ("wss://host/", "", False),
        ],
    )
    def test_rules(self, url: str, no_proxy: str, bypass: bool) -> None:
        assert bypass_proxy(parse_url(url), no_proxy) is bypass


class TestSelectProxy:
    def test_explicit_proxy_wins(self) -> None:
        env = {"https_proxy": "http://env:1"}
        assert select_proxy(parse_url("wss://h/"), proxy="http://p:1", env=env) == "http://p:1"
        assert select_proxy(parse_url("wss://h/"), proxy="", env=env) is None

    @pytest.mark.parametrize(
        ("url", "proxies", "expected"),
        [
            ("wss://h/", {"https": "A", "http": "B"}, "A"),
            ("ws://h/", {"https": "A", "http": "B"}, "B"),
            ("wss://h/", {"wss": "W", "https": "A"}, "W"),
            ("ws://h/", {"ws": "W", "http": "A"}, "W"),
            ("ws://h/", {"all": "X"}, "X"),
            ("wss://h/", {"https://h": "H", "https": "A"}, "H"),
            ("wss://h/", {"all://h": "H", "https": "A"}, "H"),
            ("wss://h/", {"http": "B"}, None),
            ("wss://h/", {"https": None, "all": "X"}, None),
            ("wss://h/", {"https": "A", "no_proxy": "h"}, None),
        ],
    )
    def test_proxies_dict(
        self, url: str, proxies: dict[str, str | None], expected: str | None
    ) -> None:
        assert select_proxy(parse_url(url), proxies=proxies, env={}) == expected

    @pytest.mark.parametrize(
        ("url", "env", "expected"),
        [
            ("wss://h/", {"https_proxy": "S", "http_proxy": "P"}, "S"),
            ("ws://h/", {"https_proxy": "S", "http_proxy": "P"}, "P"),
            ("ws://h/", {"HTTP_PROXY": "U"}, "U"),
            ("ws://h/", {"http_proxy": "l", "HTTP_PROXY": "U"}, "l"),
            ("ws://h/", {"ALL_PROXY": "A"}, "A"),
            ("ws://h/", {"http_proxy": "P", "ALL_PROXY": "A"}, "P"),
            ("ws://h/", {"http_proxy": "P", "NO_PROXY": "h"}, None),
            ("ws://h/", {"http_proxy": "P", "no_proxy": "*"}, None),
            ("ws://h/", {}, None),
        ],
    )
    def test_environment(self, url: str, env: dict[str, str], expected: str | None) -> None:
        assert select_proxy(parse_url(url), env=env) == expected

    def test_trust_env_false(self) -> None:
        env = {"http_proxy": "P"}
        assert select_proxy(parse_url("ws://h/"), trust_env=False, env=env) is None

    def test_dict_before_environment(self) -> None:
        env = {"https_proxy": "E"}
        url = parse_url("wss://h/")
        assert select_proxy(url, proxies={"https": "D"}, env=env) == "D"
        assert select_proxy(url, proxies={"http": "D"}, env=env) == "E"


class TestConnectRequest:
    """RFC 9110 §9.3.6: authority-form target, Host, Basic proxy credentials."""

    def test_request_head(self) -> None:
        proxy = parse_proxy("http://alice:pw@proxy:3128")
        head = connect_request("example.com", 443, proxy, user_agent="ua/1")
        assert head == (
            b"CONNECT example.com:443 HTTP/1.1\r\n"
            b"Host: example.com:443\r\n"
            b"Proxy-Authorization: Basic YWxpY2U6cHc=\r\n"
            b"User-Agent: ua/1\r\n\r\n"
        )

    def test_ipv6_target_in_brackets(self) -> None:
        head = connect_request("::1", 9000, parse_proxy("http://proxy:1"))
        assert head.startswith(b"CONNECT [::1]:9000 HTTP/1.1\r\nHost: [::1]:9000\r\n")


class TestWsURL:
    def test_idna_host(self) -> None:
        url = parse_url("wss://bücher.example/chat")
        assert url.host == "xn--bcher-kva.example"
        assert url.host_header == "xn--bcher-kva.example"
        assert str(url) == "wss://xn--bcher-kva.example/chat"

    def test_idna_host_is_case_folded(self) -> None:
        assert parse_url("ws://BÜCHER.example/").host == "xn--bcher-kva.example"

    def test_invalid_idna_host(self) -> None:
        with pytest.raises(ValueError, match="invalid host name"):
            parse_url("ws://" + "ü" * 70 + ".example/")

    def test_ipv6_literal(self) -> None:
        url = parse_url("ws://[::1]:9000/x?y=1")
        assert (url.host, url.port, url.resource) == ("::1", 9000, "/x?y=1")
        assert url.host_header == "[::1]:9000"
        assert parse_url("wss://[2001:db8::1]/").host_header == "[2001:db8::1]"

    def test_credentials_stay_out_of_str(self) -> None:
        url = parse_url("wss://user:pa%24s@host/")
        assert (url.user, url.password) == ("user", "pa$s")
        assert str(url) == "wss://host/"


def test_socks_proxy_without_python_socks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from rapidws import AsyncSession

    monkeypatch.setitem(sys.modules, "python_socks.async_.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install 'rapidws\[socks\]'"):
        AsyncSession(proxy="socks5://proxy:1080")
    AsyncSession(proxy="http://proxy:3128")  # HTTP proxies need nothing more
