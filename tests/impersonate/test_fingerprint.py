"""ClientHello parsing, JA3 and JA4 against the specifications' own vectors and real captures.

Vectors:
- JA4: technical_details/JA4.md of github.com/FoxIO-LLC/ja4 (cipher list ->
  8daaf6152771, extensions + signature algorithms -> e5627efa2ab1, without
  signature algorithms -> 6d807ffa2a79, the ALPN rules and their examples).
- JA3: the README of github.com/salesforce/ja3 (two strings and their MD5).
- captures/: ClientHellos of Chromium 156 and Firefox ESR 153 recorded on
  loopback; their JA4 were cross-checked with FoxIO's ``ja4plus`` 1.4.0
  (``generate_ja4``), which gave the same strings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidws.impersonate import profiles
from rapidws.impersonate.fingerprint import (
    ClientHello,
    handshake_bytes,
    is_grease,
    ja3,
    ja3_string,
    ja4,
    ja4_raw,
    parse_client_hello,
)

CAPTURES = Path(__file__).parent / "captures"


# ---------------------------------------------------------------------------
# A ClientHello built by hand (RFC 8446 §4.1.2)
# ---------------------------------------------------------------------------


def _vec(length_bytes: int, body: bytes) -> bytes:
    return len(body).to_bytes(length_bytes, "big") + body


def _u16s(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def build_hello(
    *,
    version: int = 0x0303,
    ciphers: list[int],
    extensions: list[int] | None,
    sni: str | None = None,
    alpn: list[bytes] | None = None,
    versions: list[int] | None = None,
    sigalgs: list[int] | None = None,
    groups: list[int] | None = None,
    point_formats: list[int] | None = None,
    record_size: int = 16384,
) -> bytes:
    """TLS records holding a ClientHello; ``extensions`` gives the order of extension types."""
    # Types listed without a value get a well-formed empty body.
    data: dict[int, bytes] = {
        0x0033: _vec(2, b""),
        0x000D: _vec(2, b""),
        0x002B: _vec(1, b""),
        0x000A: _vec(2, b""),
        0x000B: _vec(1, b""),
    }
    if sni is not None:
        data[0x0000] = _vec(2, b"\x00" + _vec(2, sni.encode()))
    if alpn is not None:
        data[0x0010] = _vec(2, b"".join(_vec(1, p) for p in alpn))
    if versions is not None:
        data[0x002B] = _vec(1, _u16s(versions))
    if sigalgs is not None:
        data[0x000D] = _vec(2, _u16s(sigalgs))
    if groups is not None:
        data[0x000A] = _vec(2, _u16s(groups))
    if point_formats is not None:
        data[0x000B] = _vec(1, bytes(point_formats))
    body = version.to_bytes(2, "big") + bytes(32) + _vec(1, bytes(32))
    body += _vec(2, _u16s(ciphers)) + _vec(1, b"\x00")
    if extensions is not None:
        body += _vec(
            2, b"".join(e.to_bytes(2, "big") + _vec(2, data.get(e, b"")) for e in extensions)
        )
    message = b"\x01" + _vec(3, body)
    records = b""
    for start in range(0, len(message), record_size):
        records += b"\x16\x03\x01" + _vec(2, message[start : start + record_size])
    return records


# The JA4 specification's example, with GREASE values added where browsers put them.
SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
SPEC_CIPHERS += [0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
SPEC_EXTENSIONS = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005]
SPEC_EXTENSIONS += [0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]
SPEC_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def spec_hello(*, sigalgs: bool = True, **overrides: object) -> bytes:
    options: dict[str, object] = {
        "ciphers": [0x0A0A, *SPEC_CIPHERS],
        "extensions": [0x3A3A, *SPEC_EXTENSIONS, 0xFAFA],
        "sni": "example.com",
        "alpn": [b"h2", b"http/1.1"],
        "versions": [0x5A5A, 0x0304, 0x0303],
        "sigalgs": SPEC_SIGALGS if sigalgs else None,
        "groups": [0x2A2A, 0x001D, 0x0017, 0x0018],
        "point_formats": [0],
    }
    options.update(overrides)
    return build_hello(**options)  # type: ignore[arg-type]


class TestParse:
    def test_fields_in_wire_order_with_grease_kept(self) -> None:
        hello = parse_client_hello(spec_hello())
        assert hello.legacy_version == 0x0303
        assert hello.cipher_suites == (0x0A0A, *SPEC_CIPHERS)
        assert hello.extensions == (0x3A3A, *SPEC_EXTENSIONS, 0xFAFA)
        assert hello.server_name == "example.com"
        assert hello.alpn == (b"h2", b"http/1.1")
        assert hello.supported_versions == (0x5A5A, 0x0304, 0x0303)
        assert hello.tls_version == 0x0304
        assert hello.signature_algorithms == tuple(SPEC_SIGALGS)
        assert hello.supported_groups == (0x2A2A, 0x001D, 0x0017, 0x0018)
        assert hello.ec_point_formats == (0,)

    def test_a_hello_split_over_records_is_joined(self) -> None:
        split = spec_hello(record_size=50)
        assert split.count(b"\x16\x03\x01") >= 4
        assert parse_client_hello(split) == parse_client_hello(spec_hello())

    def test_a_bare_handshake_message_parses_too(self) -> None:
        records = spec_hello()
        assert parse_client_hello(records[5:]) == parse_client_hello(records)

    def test_handshake_bytes_waits_for_the_whole_message(self) -> None:
        records = spec_hello(record_size=50)
        assert handshake_bytes(records[:-1]) == b""
        assert handshake_bytes(records)[:1] == b"\x01"

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x16\x03\x01\x00\x05\x01\x00", b"GET / HTTP/1.1\r\n\r\n", b"\x02\x00\x00\x00"],
        ids=["empty", "truncated", "http", "server-hello"],
    )
    def test_garbage_is_a_value_error(self, data: bytes) -> None:
        with pytest.raises(ValueError):
            parse_client_hello(data)

    def test_every_truncation_is_a_value_error(self) -> None:
        message = spec_hello()[5:]
        for end in range(len(message)):
            with pytest.raises(ValueError):
                parse_client_hello(message[:end])

    def test_grease_values_are_the_sixteen_of_rfc_8701(self) -> None:
        found = [v for v in range(0x10000) if is_grease(v)]
        assert found == [0x0A0A + 0x1010 * i for i in range(16)]


class TestJA4Spec:
    def test_the_spec_example(self) -> None:
        hello = parse_client_hello(spec_hello())
        assert ja4(hello) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
        assert ja4_raw(hello) == (
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
            "cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
            "0403,0804,0401,0503,0805,0501,0806,0601"
        )

    def test_without_signature_algorithms_no_underscore_is_hashed(self) -> None:
        hello = parse_client_hello(spec_hello(sigalgs=False))
        assert ja4(hello).split("_")[2] == "6d807ffa2a79"

    def test_no_sni_is_i_and_no_versions_extension_falls_back_to_the_legacy_field(self) -> None:
        hello = parse_client_hello(
            spec_hello(sni=None, versions=None, extensions=[e for e in SPEC_EXTENSIONS if e])
        )
        assert ja4(hello)[:4] == "t12i"

    def test_empty_lists_hash_to_zeros(self) -> None:
        hello = parse_client_hello(
            build_hello(ciphers=[0x0A0A], extensions=[0x0000, 0x0010], sni="a.b", alpn=[b"h2"])
        )
        assert ja4(hello).endswith("_000000000000_000000000000")

    @pytest.mark.parametrize(
        ("alpn", "field"),
        [
            (None, "00"),
            ([b""], "00"),
            ([b"http/1.1", b"h2"], "h1"),
            ([b"h3"], "h3"),
            ([b"x"], "xx"),
            ([b"\xab"], "ab"),
            ([b"\xab\xcd"], "ad"),
            ([b"\x30\xab"], "3b"),
            ([b"\x30\x31\xab\xcd"], "3d"),
            ([b"\x30\xab\xcd\x31"], "01"),
        ],
    )
    def test_alpn_characters(self, alpn: list[bytes] | None, field: str) -> None:
        extensions = [e for e in SPEC_EXTENSIONS if alpn is not None or e != 0x0010]
        hello = parse_client_hello(spec_hello(alpn=alpn, extensions=extensions))
        assert ja4(hello)[8:10] == field

    def test_counts_stop_at_99(self) -> None:
        ciphers = list(range(0x0100, 0x0100 + 120))
        hello = parse_client_hello(build_hello(ciphers=ciphers, extensions=[]))
        assert ja4(hello)[:8] == "t12i9900"


class TestJA3Spec:
    def test_the_readme_example(self) -> None:
        hello = parse_client_hello(
            build_hello(
                version=0x0301,
                ciphers=[0x1A1A, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
                extensions=[0, 0x2A2A, 10, 11],
                sni="example.com",
                groups=[0x3A3A, 23, 24, 25],
                point_formats=[0],
            )
        )
        assert (
            ja3_string(hello)
            == "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        )
        assert ja3(hello) == "ada70206e40642a3e4461f35503241d5"

    def test_a_hello_without_extensions(self) -> None:
        hello = parse_client_hello(
            build_hello(
                version=0x0301, ciphers=[4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], extensions=None
            )
        )
        assert ja3_string(hello) == "769,4-5-10-9-100-98-3-6-19-18-99,,,"
        assert ja3(hello) == "de350869b8c85de67a350c8d186f11e6"


class TestRealBrowsers:
    """The measured profiles agree with the captures they were written from."""

    @staticmethod
    def captured(name: str) -> ClientHello:
        return parse_client_hello(
            bytes.fromhex((CAPTURES / f"{name}-client-hello.hex").read_text())
        )

    @pytest.mark.parametrize(
        ("capture", "profile", "expected"),
        [
            ("chromium156", profiles.CHROME_156, "t13d1516h1_8daaf6152771_5b37b36a67c0"),
            ("firefox153", profiles.FIREFOX_153, "t13d1617h2_86a278354501_3cbfd9057e0d"),
        ],
    )
    def test_capture_matches_its_profile(
        self, capture: str, profile: profiles.Profile, expected: str
    ) -> None:
        hello = self.captured(capture)
        tls = profile.tls
        assert ja4(hello) == expected == tls.ja4
        assert [c for c in hello.cipher_suites if not is_grease(c)] == list(tls.cipher_suites)
        assert [e for e in hello.extensions if not is_grease(e)] == list(tls.extensions or ())
        sigalgs = [s for s in hello.signature_algorithms if not is_grease(s)]
        assert sigalgs == list(tls.signature_algorithms or ())
        groups = [g for g in hello.supported_groups if not is_grease(g)]
        assert groups == list(tls.supported_groups or ())
        assert hello.alpn == tuple(p.encode() for p in tls.alpn)
        assert hello.server_name == "localhost"

    def test_chromium_sends_grease_and_the_post_quantum_key_share(self) -> None:
        hello = self.captured("chromium156")
        assert is_grease(hello.cipher_suites[0])
        assert hello.key_share_groups[1:] == (0x11EC, 0x001D)


class TestPublishedProfiles:
    """Profiles reconstructed from a published JA4 reproduce its hashes exactly."""

    @pytest.mark.parametrize(
        "profile", list(profiles.PROFILES.values()), ids=list(profiles.PROFILES)
    )
    def test_profile_lists_hash_to_the_profile_ja4(self, profile: profiles.Profile) -> None:
        tls = profile.tls
        assert tls.extensions is not None and tls.signature_algorithms is not None
        assert 0x0010 in tls.extensions  # every browser offers ALPN
        hello = parse_client_hello(
            build_hello(
                ciphers=[0x0A0A, *tls.cipher_suites],
                extensions=[0x0A0A, *tls.extensions],
                sni="example.com",
                alpn=[b"h2", b"http/1.1"] if tls.ja4[8:10] == "h2" else [b"http/1.1"],
                versions=[0x0304, 0x0303],
                sigalgs=list(tls.signature_algorithms),
            )
        )
        assert ja4(hello) == tls.ja4
