"""SSL contexts from verify= and cert=."""

from __future__ import annotations

import ssl

import pytest

from rapidws.net.tls import make_ssl_context


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
