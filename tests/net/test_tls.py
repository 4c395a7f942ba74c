"""SSL contexts from verify= and cert=."""

from __future__ import annotations

import ssl

import pytest

from rapidws.net.tls import TLSOptions, make_ssl_context


def test_default_verifies_with_the_system_store() -> None:
    ctx = make_ssl_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2


def test_contexts_are_cached() -> None:
    assert make_ssl_context(True) is make_ssl_context(True)
    assert make_ssl_context(False) is not make_ssl_context(True)


def test_verify_false_turns_verification_off() -> None:
    ctx = make_ssl_context(False)
    assert ctx.verify_mode is ssl.CERT_NONE
    assert ctx.check_hostname is False


def test_ca_bundle_path(ca_path: str) -> None:
    ctx = make_ssl_context(ca_path)
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1


def test_missing_ca_bundle_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="neither a CA bundle file nor a directory"):
        make_ssl_context("/nonexistent/ca.pem")


def test_ready_context_is_used_as_is(ca_path: str) -> None:
    mine = ssl.create_default_context(cafile=ca_path)
    assert make_ssl_context(mine) is mine
    with pytest.raises(ValueError, match="cert"):
        make_ssl_context(mine, cert="client.pem")


def test_client_certificate_is_loaded(ca_path: str, client_cert_paths: tuple[str, str]) -> None:
    # load_cert_chain raises if the pair does not match; reaching here means it loaded.
    ctx = make_ssl_context(ca_path, client_cert_paths)
    assert ctx is make_ssl_context(ca_path, client_cert_paths)


class TestTLSOptions:
    """ClientHello settings for impersonation: what the stdlib ssl module can set."""

    def test_cipher_order_and_versions_are_applied(self) -> None:
        options = TLSOptions(
            ciphers="ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256",
            minimum_version="TLSv1_2",
            maximum_version="TLSv1_3",
        )
        ctx = make_ssl_context(True, None, options)
        tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
        assert tls12 == ["ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-GCM-SHA256"]
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode is ssl.CERT_REQUIRED
        assert make_ssl_context(True, None, options) is ctx

    def test_options_make_a_separate_cached_context(self) -> None:
        assert make_ssl_context(True, None, TLSOptions(no_padding=True)) is not make_ssl_context()

    @pytest.mark.skipif(not ssl.OPENSSL_VERSION.startswith("OpenSSL"), reason="OpenSSL bits")
    def test_extension_bits(self) -> None:
        ctx = make_ssl_context(False, None, TLSOptions(no_padding=True, no_encrypt_then_mac=True))
        assert not ctx.options & 0x10  # SSL_OP_TLSEXT_PADDING cleared
        assert ctx.options & 0x80000  # SSL_OP_NO_ENCRYPT_THEN_MAC set
        assert make_ssl_context(False).options & 0x10

    def test_no_usable_cipher_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match="no cipher of 'NOPE-CIPHER' is available"):
            make_ssl_context(True, None, TLSOptions(ciphers="NOPE-CIPHER"))

    def test_a_ready_context_is_never_changed(self, ca_path: str) -> None:
        mine = ssl.create_default_context(cafile=ca_path)
        before = (mine.options, [c["name"] for c in mine.get_ciphers()])
        assert make_ssl_context(mine, None, TLSOptions(ciphers="AES128-SHA")) is mine
        assert (mine.options, [c["name"] for c in mine.get_ciphers()]) == before
