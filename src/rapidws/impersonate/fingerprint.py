"""TLS ClientHello parsing and the JA3 / JA4 client fingerprints.

Pure functions over bytes, standard library only. :func:`parse_client_hello`
reads the first handshake message a client sends (RFC 8446 §4.1.2, the same
layout as RFC 5246 §7.4.1.2); :func:`ja3` and :func:`ja4` compute the
fingerprints as their public specifications define them:

- JA3 (Salesforce, github.com/salesforce/ja3 README):
  ``SSLVersion,Cipher,SSLExtension,EllipticCurve,EllipticCurvePointFormat``,
  decimal values joined with ``-``, GREASE values left out, then MD5.
- JA4 (FoxIO, github.com/FoxIO-LLC/ja4 ``technical_details/JA4.md``):
  ``t13d1516h2_8daaf6152771_e5627efa2ab1``: protocol, TLS version, SNI,
  cipher and extension counts, ALPN; then truncated SHA-256 hashes of the
  sorted cipher list and of the sorted extension list plus the signature
  algorithms.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["ClientHello", "is_grease", "parse_client_hello", "ja3_string", "ja3", "ja4", "ja4_raw"]

# TLS record and handshake constants (RFC 8446 §5.1, §4).
_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
# Extension code points (IANA "TLS ExtensionType Values").
EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_KEY_SHARE = 0x0033

#: JA4's two-character names of protocol versions ("Unknown = 00").
_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
#: JA4 writes an empty hash as twelve zeros, "to make it clear [...] that a field has no values".
_EMPTY_HASH = "000000000000"


def is_grease(value: int) -> bool:
    """True for the sixteen GREASE values of RFC 8701 §2 (0x0A0A, 0x1A1A ... 0xFAFA)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The fields of a ClientHello that fingerprints read, in wire order, GREASE kept."""

    legacy_version: int
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    server_name: str | None
    alpn: tuple[bytes, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    ec_point_formats: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    key_share_groups: tuple[int, ...]

    @property
    def tls_version(self) -> int:
        """The highest version offered: ``supported_versions`` if sent, else the legacy field."""
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.legacy_version


class _Reader:
    """Bounds-checked reads over a bytes object; every overrun is a ValueError."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ValueError("truncated ClientHello")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        """A reader over the next ``<length>``-prefixed vector (RFC 8446 §3.4)."""
        n = self.uint(length_bytes)
        if self.pos + n > self.end:
            raise ValueError("truncated ClientHello")
        sub = _Reader(self.data, self.pos, self.pos + n)
        self.pos += n
        return sub

    def uint16_list(self) -> tuple[int, ...]:
        values = []
        while self.pos < self.end:
            values.append(self.uint(2))
        return tuple(values)

    @property
    def done(self) -> bool:
        return self.pos >= self.end


def handshake_bytes(records: bytes) -> bytes:
    """Join the handshake-record fragments at the start of ``records`` into one message.

    Returns ``b""`` until the whole first handshake message has arrived, so a
    server can call it after every read. Raises ``ValueError`` if the bytes
    are not TLS handshake records.
    """
    message = bytearray()
    pos = 0
    while pos + 5 <= len(records):
        content_type = records[pos]
        if content_type != _HANDSHAKE_RECORD or records[pos + 1] != 3:
            raise ValueError("not a TLS handshake record")
        length = int.from_bytes(records[pos + 3 : pos + 5], "big")
        if pos + 5 + length > len(records):
            return b""
        message += records[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(message) >= 4:
            total = 4 + int.from_bytes(message[1:4], "big")
            if len(message) >= total:
                return bytes(message[:total])
    return b""


def parse_client_hello(data: bytes) -> ClientHello:
    """Parse a ClientHello from TLS records (``16 03 ..``) or a bare handshake message.

    Raises:
        ValueError: if ``data`` is not a complete, well-formed ClientHello.
    """
    if data[:1] == bytes([_HANDSHAKE_RECORD]):
        data = handshake_bytes(data)
        if not data:
            raise ValueError("truncated ClientHello")
    r = _Reader(data)
    if r.uint(1) != _CLIENT_HELLO:
        raise ValueError("not a ClientHello handshake message")
    body = r.vector(3)
    legacy_version = body.uint(2)
    body.take(32)  # random
    body.vector(1)  # legacy_session_id
    cipher_suites = body.vector(2).uint16_list()
    body.vector(1)  # legacy_compression_methods
    extensions: list[int] = []
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    versions: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    sigalgs: tuple[int, ...] = ()
    key_shares: list[int] = []
    if not body.done:  # extensions are optional before TLS 1.3 (RFC 5246 §7.4.1.2)
        block = body.vector(2)
        while not block.done:
            kind = block.uint(2)
            ext = block.vector(2)
            extensions.append(kind)
            if kind == EXT_SERVER_NAME:
                names = ext.vector(2)
                while not names.done:
                    name_type = names.uint(1)
                    host = names.vector(2)
                    if name_type == 0 and server_name is None:  # host_name (RFC 6066 §3)
                        server_name = host.take(host.end - host.pos).decode("ascii", "replace")
            elif kind == EXT_ALPN:
                protocols = ext.vector(2)
                found = []
                while not protocols.done:
                    entry = protocols.vector(1)
                    found.append(entry.take(entry.end - entry.pos))
                alpn = tuple(found)
            elif kind == EXT_SUPPORTED_VERSIONS:
                versions = ext.vector(1).uint16_list()
            elif kind == EXT_SUPPORTED_GROUPS:
                groups = ext.vector(2).uint16_list()
            elif kind == EXT_EC_POINT_FORMATS:
                formats = ext.vector(1)
                point_formats = tuple(formats.take(formats.end - formats.pos))
            elif kind == EXT_SIGNATURE_ALGORITHMS:
                sigalgs = ext.vector(2).uint16_list()
            elif kind == EXT_KEY_SHARE:
                shares = ext.vector(2)
                while not shares.done:
                    key_shares.append(shares.uint(2))
                    shares.vector(2)
    return ClientHello(
        legacy_version=legacy_version,
        cipher_suites=cipher_suites,
        extensions=tuple(extensions),
        server_name=server_name,
        alpn=alpn,
        supported_versions=versions,
        supported_groups=groups,
        ec_point_formats=point_formats,
        signature_algorithms=sigalgs,
        key_share_groups=tuple(key_shares),
    )


# ---------------------------------------------------------------------------
# JA3
# ---------------------------------------------------------------------------


def ja3_string(hello: ClientHello) -> str:
    """The JA3 input: ``version,ciphers,extensions,groups,point_formats`` (GREASE left out)."""

    def join(values: tuple[int, ...]) -> str:
        return "-".join(str(v) for v in values if not is_grease(v))

    return ",".join(
        [
            str(hello.legacy_version),
            join(hello.cipher_suites),
            join(hello.extensions),
            join(hello.supported_groups),
            "-".join(str(v) for v in hello.ec_point_formats),
        ]
    )


def ja3(hello: ClientHello) -> str:
    """The JA3 fingerprint: MD5 of :func:`ja3_string`, lower-case hex."""
    return hashlib.md5(ja3_string(hello).encode("ascii"), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------------
# JA4
# ---------------------------------------------------------------------------


def _alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _ja4_alpn(alpn: tuple[bytes, ...]) -> str:
    # "If there is no ALPN extension, no ALPN values, or the first ALPN value
    # is empty, then we print "00"." Non-alphanumeric first or last byte: "the
    # first and last characters of the hex representation" instead.
    if not alpn or not alpn[0]:
        return "00"
    first = alpn[0]
    if _alnum(first[0]) and _alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def _ja4_parts(hello: ClientHello, transport: str) -> tuple[str, str, str]:
    ciphers = [c for c in hello.cipher_suites if not is_grease(c)]
    extensions = [e for e in hello.extensions if not is_grease(e)]
    version = _JA4_VERSIONS.get(hello.tls_version, "00")
    sni = "d" if EXT_SERVER_NAME in extensions else "i"
    head = (
        f"{transport}{version}{sni}{min(len(ciphers), 99):02d}"
        f"{min(len(extensions), 99):02d}{_ja4_alpn(hello.alpn)}"
    )
    cipher_list = ",".join(f"{c:04x}" for c in sorted(ciphers))
    # SNI and ALPN are already in the first part; leaving them out keeps the
    # third part the same for a domain, an IP or another ALPN.
    sorted_ext = sorted(e for e in extensions if e not in (EXT_SERVER_NAME, EXT_ALPN))
    ext_list = ",".join(f"{e:04x}" for e in sorted_ext)
    sigalgs = [s for s in hello.signature_algorithms if not is_grease(s)]
    if sigalgs:
        ext_list += "_" + ",".join(f"{s:04x}" for s in sigalgs)
    return head, cipher_list, ext_list if sorted_ext else ""


def ja4(hello: ClientHello, transport: str = "t") -> str:
    """The JA4 fingerprint; ``transport`` is ``t`` (TCP), ``q`` (QUIC) or ``d`` (DTLS)."""
    head, ciphers, extensions = _ja4_parts(hello, transport)
    return "_".join(
        [
            head,
            _sha12(ciphers) if ciphers else _EMPTY_HASH,
            _sha12(extensions) if extensions else _EMPTY_HASH,
        ]
    )


def ja4_raw(hello: ClientHello, transport: str = "t") -> str:
    """``JA4_r``: the same fields before hashing (sorted ciphers, sorted extensions_sigalgs)."""
    return "_".join(_ja4_parts(hello, transport))
