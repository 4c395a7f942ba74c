"""``ssl.SSLContext`` objects from the ``verify`` and ``cert`` options."""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

__all__ = ["make_ssl_context", "TLSOptions", "VerifyLike", "CertLike"]

#: ``True`` (system trust store), ``False`` (no verification: explicit only),
#: a path to a CA bundle file or directory, or a ready ``SSLContext``.
VerifyLike = bool | str | os.PathLike[str] | ssl.SSLContext
#: A PEM file holding certificate and key, or ``(certfile, keyfile)``.
CertLike = str | tuple[str, str] | None

# The only application protocol a WebSocket handshake speaks (RFC 6455 §4.1).
_ALPN = ["http/1.1"]

# OpenSSL option bits the ssl module does not name (include/openssl/ssl.h.in,
# stable since OpenSSL 1.1.1). Setting one leaves an extension out of the
# ClientHello, as browsers do.
#: SSL_OP_TLSEXT_PADDING (part of OP_ALL): the padding extension, RFC 7685.
_OP_TLSEXT_PADDING = 0x10
#: SSL_OP_NO_ENCRYPT_THEN_MAC: the encrypt_then_mac extension, RFC 7366.
_OP_NO_ENCRYPT_THEN_MAC = 0x80000
# LibreSSL and others give these bits other meanings.
_OPENSSL_BITS = ssl.OPENSSL_VERSION.startswith("OpenSSL") and ssl.OPENSSL_VERSION_INFO >= (
    1,
    1,
    1,
)


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """ClientHello settings beyond verification, as plain values (browser impersonation).

    Everything the standard ``ssl`` module can set; ``net`` knows nothing of
    browsers. TLS 1.3 cipher suites, groups, signature algorithms, extension
    order and GREASE are not among them (see README, "Impersonation").
    """

    #: OpenSSL cipher string for TLS 1.2 and below, in preference order.
    ciphers: str | None = None
    #: ``ssl.TLSVersion`` member names, e.g. ``"TLSv1_2"``.
    minimum_version: str = "TLSv1_2"
    maximum_version: str | None = None
    #: Leave out the padding extension (OpenSSL adds it to 256-511 byte hellos).
    no_padding: bool = False
    #: Leave out encrypt_then_mac, which no major browser sends.
    no_encrypt_then_mac: bool = False


_DEFAULT_OPTIONS = TLSOptions()


def make_ssl_context(
    verify: VerifyLike = True, cert: CertLike = None, options: TLSOptions | None = None
) -> ssl.SSLContext:
    """The client context for ``verify``, ``cert`` and ClientHello ``options``.

    A ready ``SSLContext`` passed as ``verify`` is used as it is: ``options``
    do not change a context the caller owns. Contexts are cached: loading the
    system store costs milliseconds, which adds up over thousands of
    connections.
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("pass the client certificate inside your SSLContext, not as cert=")
        return verify
    if verify is not True and verify is not False:
        verify = os.fspath(verify)
    if cert is not None and not isinstance(cert, str):
        cert = (str(cert[0]), str(cert[1]))
    return _cached_context(verify, cert, options or _DEFAULT_OPTIONS)


@functools.lru_cache(maxsize=32)
def _cached_context(
    verify: bool | str, cert: str | tuple[str, str] | None, options: TLSOptions
) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify is True:
        ctx = ssl.create_default_context()
    elif os.path.isdir(verify):
        ctx = ssl.create_default_context(capath=verify)
    elif os.path.isfile(verify):
        ctx = ssl.create_default_context(cafile=verify)
    else:
        raise ValueError(f"verify={verify!r} is neither a CA bundle file nor a directory")
    ctx.minimum_version = ssl.TLSVersion[options.minimum_version]
    if options.maximum_version is not None:
        ctx.maximum_version = ssl.TLSVersion[options.maximum_version]
    if options.ciphers is not None:
        try:
            ctx.set_ciphers(options.ciphers)
        except ssl.SSLError:
            raise ValueError(f"no cipher of {options.ciphers!r} is available") from None
    if _OPENSSL_BITS:
        if options.no_padding:
            ctx.options &= ~ssl.Options(_OP_TLSEXT_PADDING)
        if options.no_encrypt_then_mac:
            ctx.options |= ssl.Options(_OP_NO_ENCRYPT_THEN_MAC)
    ctx.set_alpn_protocols(_ALPN)
    if cert is not None:
        if isinstance(cert, str):
            ctx.load_cert_chain(cert)
        else:
            ctx.load_cert_chain(cert[0], cert[1])
    return ctx
