"""HTTP header fields: an ordered multimap, and the grammar of the values we parse.

``Headers`` keeps every field as it was given or received: original name
casing, original order, repeats. Lookups are case-insensitive (RFC 7230 §3.2:
"Each header field consists of a case-insensitive field name"). Keeping order
and casing matters because a browser-like handshake is sent byte for byte as
configured.

The parsing helpers follow the list rule of RFC 7230 §7: elements separated by
commas with optional whitespace, empty elements tolerated. Each regex has the
ABNF it implements quoted above it. Malformed input raises ``ValueError`` with
the position of the first offending character.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeAlias, TypeVar

from rapidws._types import HeadersLike

__all__ = [
    "Headers",
    "ExtensionParams",
    "ExtensionHeader",
    "validate_header",
    "parse_token_list",
    "parse_upgrade_list",
    "parse_extension_list",
    "build_extension_list",
    "parse_subprotocol_list",
    "build_subprotocol_list",
]

#: Parameters of one extension offer or response: ``[(name, value or None)]``.
ExtensionParams: TypeAlias = list[tuple[str, str | None]]

#: One element of ``Sec-WebSocket-Extensions``: ``(extension name, parameters)``.
ExtensionHeader: TypeAlias = tuple[str, ExtensionParams]

# Credentials and session identifiers: their values never appear in a repr,
# so they cannot leak into logs or tracebacks.
_REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_REDACTED = "<redacted>"


# ---------------------------------------------------------------------------
# The header multimap
# ---------------------------------------------------------------------------


class Headers:
    """An ordered, case-insensitive multimap of header fields.

    Names keep the casing they were given and fields keep their order, so
    ``items()`` is exactly what goes on the wire. Iterating gives the same
    ``(name, value)`` pairs, which makes a ``Headers`` usable wherever
    ``HeadersLike`` is accepted.

    Values are not validated here: everything user-supplied goes through
    :func:`validate_header` when it is serialized.
    """

    __slots__ = ("_fields",)

    def __init__(self, headers: HeadersLike | None = None) -> None:
        # (lower-cased name, name as given, value): the lower-cased copy is
        # computed once, so lookups do not lower every name every time.
        self._fields: list[tuple[str, str, str]] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._fields = list(headers._fields)
            return
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            self.add(name, value)

    # Mutation

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any existing field of the same name."""
        self._fields.append((name.lower(), name, value))

    def set(self, name: str, value: str) -> None:
        """Set the single value of ``name``.

        The first field with this name is replaced where it stands (its
        position is kept, its name takes the casing given here) and any later
        fields with this name are removed. If there is none, the field is
        appended.
        """
        key = name.lower()
        fields = self._fields
        for index, field in enumerate(fields):
            if field[0] == key:
                fields[index] = (key, name, value)
                fields[index + 1 :] = [f for f in fields[index + 1 :] if f[0] != key]
                return
        fields.append((key, name, value))

    def remove(self, name: str) -> None:
        """Remove every field named ``name``; do nothing if there is none."""
        key = name.lower()
        self._fields = [field for field in self._fields if field[0] != key]

    # Lookup

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of the first field named ``name``, else ``default``."""
        key = name.lower()
        for field in self._fields:
            if field[0] == key:
                return field[2]
        return default

    def get_all(self, name: str) -> list[str]:
        """Return the values of every field named ``name``, in order."""
        key = name.lower()
        return [field[2] for field in self._fields if field[0] == key]

    def grouped(self) -> dict[str, list[str]]:
        """Every value by lower-cased name, each list in order: one pass for many lookups."""
        grouped: dict[str, list[str]] = {}
        for key, _, value in self._fields:
            values = grouped.get(key)
            if values is None:
                grouped[key] = [value]
            else:
                values.append(value)
        return grouped

    def items(self) -> list[tuple[str, str]]:
        """Return every field as ``(name, value)``, in order, names as given."""
        return [(field[1], field[2]) for field in self._fields]

    def copy(self) -> Headers:
        """Return an independent copy."""
        return Headers(self)

    # Container protocol

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(field[0] == key for field in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for field in self._fields:
            yield field[1], field[2]

    def __eq__(self, other: object) -> bool:
        # Order is significant (it is sent as is); name casing is not.
        if not isinstance(other, Headers):
            return NotImplemented
        return [(f[0], f[2]) for f in self._fields] == [(f[0], f[2]) for f in other._fields]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shown = [
            (name, _REDACTED if key in _REDACTED_HEADERS else value)
            for key, name, value in self._fields
        ]
        return f"Headers({shown!r})"


# ---------------------------------------------------------------------------
# Grammar (RFC 7230 §3.2.6, §7; RFC 6455 §9.1, §11.3.4)
# ---------------------------------------------------------------------------

# token = 1*tchar
# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_token_re = re.compile(_TOKEN)

# OWS = *( SP / HTAB )
_ows_re = re.compile(r"[ \t]*")

# quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
# qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
# quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
# obs-text      = %x80-FF
_quoted_string_re = re.compile(
    r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*)"'
)
_quoted_pair_re = re.compile(r"\\(.)", re.DOTALL)

# Upgrade  = 1#protocol                                (RFC 7230 §6.7)
# protocol = protocol-name ["/" protocol-version]
# protocol-name = token ; protocol-version = token
_protocol_re = re.compile(rf"{_TOKEN}(?:/{_TOKEN})?")

# field-value characters: field-vchar = VCHAR / obs-text, plus SP and HTAB
# between them (RFC 7230 §3.2). Every other control character is refused.
_forbidden_value_char_re = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_T = TypeVar("_T")


def validate_header(name: str, value: str) -> None:
    """Check a header field before it is serialized.

    The name must be an RFC 7230 token. The value may not contain CR, LF or
    NUL, which would let it end the field and inject others, nor any other
    control character except HTAB.

    Raises:
        ValueError: if the field is invalid. The message names the field but
            never shows the value, which may be a credential.
    """
    if not _token_re.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}: must be an RFC 7230 token")
    match = _forbidden_value_char_re.search(value)
    if match is not None:
        char = match.group()
        if char in "\r\n\x00":
            raise ValueError(
                f"invalid value for header {name!r}: contains {char!r} at position "
                f"{match.start()} (CR, LF and NUL are refused to prevent header injection)"
            )
        raise ValueError(
            f"invalid value for header {name!r}: control character {char!r} "
            f"at position {match.start()}"
        )


def _error(what: str, value: str, pos: int, expected: str) -> ValueError:
    return ValueError(f"invalid {what}: expected {expected} at position {pos} in {value!r}")


def _skip_ows(value: str, pos: int) -> int:
    match = _ows_re.match(value, pos)
    assert match is not None  # *( ... ) always matches
    return match.end()


def _parse_list(
    what: str,
    values: Iterable[str],
    parse_item: Callable[[str, int], tuple[_T, int]],
) -> list[_T]:
    # RFC 7230 §7: #element => [ ( "," / element ) *( OWS "," [ OWS element ] ) ]
    # "a recipient MUST accept [...] empty list elements". Several fields with
    # the same name are one list joined by commas (RFC 7230 §3.2.2).
    items: list[_T] = []
    for value in values:
        pos, end = 0, len(value)
        while True:
            pos = _skip_ows(value, pos)
            if pos == end:
                break
            if value[pos] == ",":
                pos += 1
                continue
            item, pos = parse_item(value, pos)
            items.append(item)
            pos = _skip_ows(value, pos)
            if pos == end:
                break
            if value[pos] != ",":
                raise _error(what, value, pos, "','")
            pos += 1
    return items


def _parse_token(what: str, value: str, pos: int) -> tuple[str, int]:
    match = _token_re.match(value, pos)
    if match is None:
        raise _error(what, value, pos, "a token")
    return match.group(), match.end()


def parse_token_list(values: Iterable[str]) -> list[str]:
    """Parse a comma-separated list of tokens, such as ``Connection``.

    Tokens are lower-cased, since they compare case-insensitively.

    >>> parse_token_list(["keep-alive, Upgrade", ""])
    ['keep-alive', 'upgrade']
    """

    def item(value: str, pos: int) -> tuple[str, int]:
        token, pos = _parse_token("token list", value, pos)
        return token.lower(), pos

    return _parse_list("token list", values, item)


def parse_upgrade_list(values: Iterable[str]) -> list[str]:
    """Parse ``Upgrade`` values: tokens with an optional ``/version``, lower-cased.

    >>> parse_upgrade_list(["WebSocket", "h2c, foo/2"])
    ['websocket', 'h2c', 'foo/2']
    """

    def item(value: str, pos: int) -> tuple[str, int]:
        match = _protocol_re.match(value, pos)
        if match is None:
            raise _error("Upgrade header", value, pos, "a protocol")
        return match.group().lower(), match.end()

    return _parse_list("Upgrade header", values, item)


def _parse_extension(value: str, pos: int) -> tuple[ExtensionHeader, int]:
    # RFC 6455 §9.1:
    #   extension       = extension-token *( ";" extension-param )
    #   extension-token = registered-token
    #   registered-token = token
    #   extension-param = token [ "=" (token | quoted-string) ]
    #       ;When using the quoted-string syntax variant, the value
    #       ;after quoted-string unescaping MUST conform to the
    #       ;'token' ABNF.
    # The grammar is written in RFC 2616 style (implied *LWS), so whitespace
    # is accepted around ";" and "=".
    what = "Sec-WebSocket-Extensions header"
    name, pos = _parse_token(what, value, pos)
    params: ExtensionParams = []
    while True:
        after = _skip_ows(value, pos)
        if after == len(value) or value[after] != ";":
            return (name, params), pos
        pos = _skip_ows(value, after + 1)
        param, pos = _parse_token(what, value, pos)
        after = _skip_ows(value, pos)
        if after == len(value) or value[after] != "=":
            params.append((param, None))
            continue
        pos = _skip_ows(value, after + 1)
        if pos < len(value) and value[pos] == '"':
            match = _quoted_string_re.match(value, pos)
            if match is None:
                raise _error(what, value, pos, "a quoted string")
            unquoted = _quoted_pair_re.sub(r"\1", match.group(1))
            if not _token_re.fullmatch(unquoted):
                raise _error(what, value, pos, "a token inside the quoted string")
            params.append((param, unquoted))
            pos = match.end()
        else:
            token, pos = _parse_token(what, value, pos)
            params.append((param, token))


def parse_extension_list(values: Iterable[str]) -> list[ExtensionHeader]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 §9.1).

    Names and parameters keep their case; quoted parameter values are
    unquoted.

    >>> parse_extension_list(['permessage-deflate; client_max_window_bits="10", x'])
    [('permessage-deflate', [('client_max_window_bits', '10')]), ('x', [])]
    """
    return _parse_list("Sec-WebSocket-Extensions header", values, _parse_extension)


def build_extension_list(
    extensions: Iterable[tuple[str, Sequence[tuple[str, str | None]]]],
) -> str:
    """Serialize extensions for ``Sec-WebSocket-Extensions``.

    Parameter values must be tokens (RFC 6455 §9.1), so they are never quoted.

    >>> build_extension_list([("permessage-deflate", [("client_max_window_bits", None)])])
    'permessage-deflate; client_max_window_bits'
    """
    parts: list[str] = []
    for name, params in extensions:
        if not _token_re.fullmatch(name):
            raise ValueError(f"invalid extension name {name!r}: must be a token")
        element = [name]
        for param, param_value in params:
            if not _token_re.fullmatch(param):
                raise ValueError(f"invalid parameter name {param!r} of extension {name!r}")
            if param_value is None:
                element.append(param)
            elif _token_re.fullmatch(param_value):
                element.append(f"{param}={param_value}")
            else:
                raise ValueError(
                    f"invalid value {param_value!r} for parameter {param!r} of extension "
                    f"{name!r}: must be a token"
                )
        parts.append("; ".join(element))
    if not parts:
        raise ValueError("an extension list must name at least one extension")
    return ", ".join(parts)


def parse_subprotocol_list(values: Iterable[str]) -> list[str]:
    """Parse ``Sec-WebSocket-Protocol`` values (RFC 6455 §11.3.4): ``1#token``.

    Subprotocol names are case-sensitive and returned as sent.
    """

    def item(value: str, pos: int) -> tuple[str, int]:
        return _parse_token("Sec-WebSocket-Protocol header", value, pos)

    return _parse_list("Sec-WebSocket-Protocol header", values, item)


def build_subprotocol_list(subprotocols: Iterable[str]) -> str:
    """Serialize subprotocol names for ``Sec-WebSocket-Protocol``."""
    names = list(subprotocols)
    if not names:
        raise ValueError("a subprotocol list must name at least one subprotocol")
    for name in names:
        if not _token_re.fullmatch(name):
            raise ValueError(f"invalid subprotocol {name!r}: must be an RFC 7230 token")
    return ", ".join(names)
