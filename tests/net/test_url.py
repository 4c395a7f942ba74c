"""WebSocket URLs (RFC 6455 §3): schemes, ports, resources, hosts."""

from __future__ import annotations

import pytest

from rapidws.net.url import parse_url


class TestSchemesAndPorts:
    @pytest.mark.parametrize(
        ("url", "secure", "port"),
        [
            ("ws://example.com", False, 80),
            ("wss://example.com", True, 443),
            ("http://example.com", False, 80),
            ("https://example.com", True, 443),
            ("WS://example.com:8080", False, 8080),
        ],
    )
    def test_default_and_explicit_ports(self, url: str, secure: bool, port: int) -> None:
        parsed = parse_url(url)
        assert (parsed.secure, parsed.port) == (secure, port)

    @pytest.mark.parametrize("url", ["ftp://example.com", "example.com/path", "mailto:a@b"])
    def test_unsupported_scheme(self, url: str) -> None:
        with pytest.raises(ValueError, match="scheme"):
            parse_url(url)

    def test_fragment_is_refused(self) -> None:
        # RFC 6455 §3: fragment identifiers are meaningless in WebSocket URIs.
        with pytest.raises(ValueError, match="fragment"):
            parse_url("ws://example.com/#frag")

    @pytest.mark.parametrize("url", ["ws://example.com:99999/", "ws://example.com:0/"])
    def test_bad_port(self, url: str) -> None:
        with pytest.raises(ValueError, match="port"):
            parse_url(url)

    def test_missing_host(self) -> None:
        with pytest.raises(ValueError, match="no host"):
            parse_url("ws:///path")


class TestResourceAndHost:
    def test_resource_keeps_path_and_query(self) -> None:
        assert parse_url("ws://h/a/b?c=1&d=2").resource == "/a/b?c=1&d=2"
        assert parse_url("ws://h").resource == "/"
        assert parse_url("ws://h?x=1").resource == "/?x=1"

    def test_params_are_appended_and_encoded(self) -> None:
        params: dict[str, str | int | float] = {"b": "two words", "c": 3}
        parsed = parse_url("ws://h/p?a=1", params)
        assert parsed.resource == "/p?a=1&b=two+words&c=3"
        assert parse_url("ws://h/p", [("k", "v"), ("k", "w")]).resource == "/p?k=v&k=w"

    def test_spaces_in_path_are_percent_encoded(self) -> None:
        assert parse_url("ws://h/a b").resource == "/a%20b"
        assert parse_url("ws://h/a%20b").resource == "/a%20b"

    def test_host_header_omits_default_port(self) -> None:
        assert parse_url("wss://h:443/").host_header == "h"
        assert parse_url("wss://h:8443/").host_header == "h:8443"
        assert parse_url("ws://h:443/").host_header == "h:443"

    def test_ipv6_literal(self) -> None:
        parsed = parse_url("ws://[::1]:9000/x")
        assert parsed.host == "::1"
        assert parsed.host_header == "[::1]:9000"
        assert str(parsed) == "ws://[::1]:9000/x"

    def test_idna_host_names(self) -> None:
        parsed = parse_url("wss://Bücher.example/")
        assert parsed.host == "xn--bcher-kva.example"
        assert parsed.origin == "https://xn--bcher-kva.example"

    def test_credentials_are_parsed_and_never_printed(self) -> None:
        parsed = parse_url("wss://us%40er:p%3Ass@h/")
        assert (parsed.user, parsed.password) == ("us@er", "p:ss")
        assert "p:ss" not in str(parsed) and "us@er" not in str(parsed)
        assert "p:ss" not in repr(parsed)
