"""Tests of rapidws.protocol.headers, grouped by the rule they guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidws.protocol.headers import (
    Headers,
    build_extension_list,
    build_subprotocol_list,
    parse_extension_list,
    parse_subprotocol_list,
    parse_token_list,
    parse_upgrade_list,
    validate_header,
)

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)


class TestHeadersAreAnOrderedCaseInsensitiveMultimap:
    """RFC 7230 §3.2: field names are case-insensitive; order and casing are kept."""

    def test_construct_from_none_is_empty(self) -> None:
        headers = Headers()
        assert len(headers) == 0
        assert headers.items() == []

    def test_construct_from_mapping_keeps_insertion_order(self) -> None:
        headers = Headers({"X-B": "2", "x-a": "1"})
        assert headers.items() == [("X-B", "2"), ("x-a", "1")]

    def test_construct_from_pairs_keeps_repeats(self) -> None:
        headers = Headers([("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")])
        assert headers.items() == [("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")]
        assert len(headers) == 3

    def test_construct_from_headers_copies(self) -> None:
        original = Headers([("A", "1")])
        copied = Headers(original)
        copied.add("B", "2")
        assert original.items() == [("A", "1")]
        assert copied.items() == [("A", "1"), ("B", "2")]

    def test_get_is_case_insensitive_and_returns_first(self) -> None:
        headers = Headers([("Sec-WebSocket-Protocol", "a"), ("SEC-WEBSOCKET-PROTOCOL", "b")])
        assert headers.get("sec-websocket-protocol") == "a"
        assert headers.get_all("Sec-Websocket-Protocol") == ["a", "b"]

    def test_get_missing_returns_default(self) -> None:
        headers = Headers()
        assert headers.get("Host") is None
        assert headers.get("Host", "fallback") == "fallback"
        assert headers.get_all("Host") == []

    def test_add_appends(self) -> None:
        headers = Headers([("A", "1")])
        headers.add("a", "2")
        assert headers.items() == [("A", "1"), ("a", "2")]

    def test_set_replaces_first_in_place_and_drops_later_duplicates(self) -> None:
        headers = Headers([("A", "1"), ("X", "x1"), ("B", "2"), ("x", "x2"), ("C", "3")])
        headers.set("X", "new")
        assert headers.items() == [("A", "1"), ("X", "new"), ("B", "2"), ("C", "3")]

    def test_set_takes_the_given_casing(self) -> None:
        headers = Headers([("User-Agent", "a"), ("Accept", "*/*")])
        headers.set("user-agent", "b")
        assert headers.items() == [("user-agent", "b"), ("Accept", "*/*")]

    def test_set_appends_when_absent(self) -> None:
        headers = Headers([("A", "1")])
        headers.set("B", "2")
        assert headers.items() == [("A", "1"), ("B", "2")]

    def test_remove_removes_every_occurrence(self) -> None:
        headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
        headers.remove("A")
        assert headers.items() == [("B", "2")]

    def test_remove_absent_is_a_no_op(self) -> None:
        headers = Headers([("A", "1")])
        headers.remove("B")
        assert headers.items() == [("A", "1")]

    def test_contains_is_case_insensitive(self) -> None:
        headers = Headers([("Content-Length", "0")])
        assert "content-length" in headers
        assert "CONTENT-LENGTH" in headers
        assert "Content-Type" not in headers
        assert 42 not in headers

    def test_iteration_gives_pairs_in_order(self) -> None:
        pairs = [("B", "1"), ("a", "2"), ("B", "3")]
        assert list(Headers(pairs)) == pairs

    def test_copy_is_independent(self) -> None:
        headers = Headers([("A", "1")])
        copied = headers.copy()
        copied.set("A", "2")
        assert headers.get("A") == "1"
        assert copied.get("A") == "2"

    def test_equality_ignores_name_casing(self) -> None:
        assert Headers([("Host", "a"), ("X", "1")]) == Headers([("host", "a"), ("x", "1")])

    def test_equality_respects_order_and_values(self) -> None:
        assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])
        assert Headers([("A", "1")]) != Headers([("A", "2")])
        assert Headers([("A", "1")]) != [("A", "1")]

    def test_headers_are_unhashable(self) -> None:
        with pytest.raises(TypeError):
            hash(Headers())


class TestHeadersReprRedactsCredentials:
    """Credentials must never reach logs or tracebacks through a repr."""

    @pytest.mark.parametrize(
        "name", ["Authorization", "proxy-authorization", "COOKIE", "Set-Cookie"]
    )
    def test_secret_values_are_redacted(self, name: str) -> None:
        headers = Headers([("Host", "example.com"), (name, "s3cr3t-value")])
        text = repr(headers)
        assert "s3cr3t-value" not in text
        assert text == f"Headers([('Host', 'example.com'), ({name!r}, '<redacted>')])"

    def test_other_values_are_shown(self) -> None:
        assert repr(Headers([("X-Token-Hint", "visible")])) == (
            "Headers([('X-Token-Hint', 'visible')])"
        )


class TestValidateHeader:
    """RFC 7230 §3.2: field-name = token; field-value without CR, LF, NUL."""

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("X-Custom", "value"),
            ("x!#$%&'*+-.^_`|~9", ""),
            ("Cookie", "a=1; b=2"),
            ("X-Tab", "a\tb"),
            ("X-Latin", "café ünïcode ☃"),
        ],
    )
    def test_valid_fields_pass(self, name: str, value: str) -> None:
        validate_header(name, value)

    @pytest.mark.parametrize("name", ["", "X Header", "X:Header", "X-Hé", "X\r\nY", "(x)"])
    def test_invalid_names_are_refused(self, name: str) -> None:
        with pytest.raises(ValueError, match="invalid header name"):
            validate_header(name, "v")

    @pytest.mark.parametrize(
        "value",
        ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\rb", "a\x00b", "\r\n\r\nGET / HTTP/1.1"],
    )
    def test_injection_characters_are_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="header injection"):
            validate_header("X-Custom", value)

    @pytest.mark.parametrize("value", ["a\x01b", "a\x1bb", "a\x7fb"])
    def test_other_control_characters_are_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="control character"):
            validate_header("X-Custom", value)

    def test_error_never_shows_the_value(self) -> None:
        with pytest.raises(ValueError) as info:
            validate_header("Authorization", "Bearer hunter2\r\n")
        assert "hunter2" not in str(info.value)
        assert "'Authorization'" in str(info.value)


class TestTokenLists:
    """RFC 7230 §7: #token lists with OWS and empty elements."""

    def test_tokens_are_lower_cased(self) -> None:
        assert parse_token_list(["keep-alive, Upgrade"]) == ["keep-alive", "upgrade"]

    def test_empty_elements_and_whitespace_are_tolerated(self) -> None:
        assert parse_token_list([" , ,a ,\t,b,", ""]) == ["a", "b"]

    def test_several_values_form_one_list(self) -> None:
        assert parse_token_list(["a", "B, c"]) == ["a", "b", "c"]

    def test_no_values_give_an_empty_list(self) -> None:
        assert parse_token_list([]) == []

    @pytest.mark.parametrize(
        ("value", "position"), [("a b", 2), ("a, b c", 5), ("a;b", 1), ("a, @", 3)]
    )
    def test_malformed_lists_report_the_position(self, value: str, position: int) -> None:
        with pytest.raises(ValueError, match=f"at position {position} in"):
            parse_token_list([value])

    def test_upgrade_list_accepts_versions(self) -> None:
        assert parse_upgrade_list(["WebSocket", "h2c, foo/2"]) == ["websocket", "h2c", "foo/2"]

    def test_upgrade_list_refuses_empty_version(self) -> None:
        with pytest.raises(ValueError, match="position 9"):
            parse_upgrade_list(["websocket/"])


class TestExtensionLists:
    """RFC 6455 §9.1: Sec-WebSocket-Extensions grammar."""

    def test_single_extension_without_parameters(self) -> None:
        assert parse_extension_list(["permessage-deflate"]) == [("permessage-deflate", [])]

    def test_parameters_with_and_without_values(self) -> None:
        value = "permessage-deflate; client_max_window_bits; server_max_window_bits=10"
        assert parse_extension_list([value]) == [
            (
                "permessage-deflate",
                [("client_max_window_bits", None), ("server_max_window_bits", "10")],
            )
        ]

    def test_quoted_values_are_unquoted(self) -> None:
        value = r'x; a="10"; b="1\0"'
        assert parse_extension_list([value]) == [("x", [("a", "10"), ("b", "10")])]

    def test_whitespace_around_separators_is_accepted(self) -> None:
        value = "x ;a = 1 ;\tb , y"
        assert parse_extension_list([value]) == [("x", [("a", "1"), ("b", None)]), ("y", [])]

    def test_several_values_and_empty_elements(self) -> None:
        assert parse_extension_list(["a, ,b; p", "c"]) == [
            ("a", []),
            ("b", [("p", None)]),
            ("c", []),
        ]

    def test_case_is_preserved(self) -> None:
        assert parse_extension_list(["X-Ext; Param=Val"]) == [("X-Ext", [("Param", "Val")])]

    @pytest.mark.parametrize(
        ("value", "position"),
        [
            ("permessage-deflate;", 19),
            ("a; =b", 3),
            ('a; b="unterminated', 5),
            ('a; b="not a token"', 5),
            ("a b", 2),
            ("a; b=", 5),
            (";a", 0),
        ],
    )
    def test_malformed_values_report_the_position(self, value: str, position: int) -> None:
        with pytest.raises(ValueError, match=f"at position {position} in"):
            parse_extension_list([value])

    def test_build_exact(self) -> None:
        built = build_extension_list(
            [
                ("permessage-deflate", [("client_max_window_bits", None), ("x", "15")]),
                ("other", []),
            ]
        )
        assert built == "permessage-deflate; client_max_window_bits; x=15, other"

    @pytest.mark.parametrize(
        "extensions",
        [
            [("bad name", [])],
            [("x", [("bad param", None)])],
            [("x", [("p", "not a token")])],
            [("x", [("p", "a\r\nInjected: 1")])],
            [],
        ],
    )
    def test_build_refuses_invalid_input(
        self, extensions: list[tuple[str, list[tuple[str, str | None]]]]
    ) -> None:
        with pytest.raises(ValueError):
            build_extension_list(extensions)

    @given(
        st.lists(
            st.tuples(tokens, st.lists(st.tuples(tokens, st.none() | tokens), max_size=4)),
            min_size=1,
            max_size=4,
        )
    )
    def test_build_then_parse_round_trips(
        self, extensions: list[tuple[str, list[tuple[str, str | None]]]]
    ) -> None:
        assert parse_extension_list([build_extension_list(extensions)]) == extensions


class TestSubprotocolLists:
    """RFC 6455 §11.3.4: Sec-WebSocket-Protocol = 1#token, case-sensitive."""

    def test_parse_keeps_case_and_order(self) -> None:
        assert parse_subprotocol_list(["Chat, superchat", "v2.json"]) == [
            "Chat",
            "superchat",
            "v2.json",
        ]

    def test_parse_refuses_non_tokens(self) -> None:
        with pytest.raises(ValueError, match="expected ',' at position 4"):
            parse_subprotocol_list(["chat/1"])

    def test_build_exact(self) -> None:
        assert build_subprotocol_list(["chat", "Superchat"]) == "chat, Superchat"

    @pytest.mark.parametrize("names", [[], ["a b"], ["ok", ""], ["x\r\ny"]])
    def test_build_refuses_invalid_input(self, names: list[str]) -> None:
        with pytest.raises(ValueError):
            build_subprotocol_list(names)

    @given(st.lists(tokens, min_size=1, max_size=6))
    def test_build_then_parse_round_trips(self, names: list[str]) -> None:
        assert parse_subprotocol_list([build_subprotocol_list(names)]) == names
