"""``ssl.SSLContext`` objects from the ``verify`` and ``cert`` options."""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["make_ssl_context", "VerifyLike", "CertLike"]

#: ``True`` (system trust store), ``False`` (no verification: explicit only),
#: a path to a CA bundle file or directory, or a ready ``SSLContext``.
VerifyLike = bool | str | os.PathLike[str] | ssl.SSLContext
#: A PEM file holding certificate and key, or ``(certfile, keyfile)``.
CertLike = str | tuple[str, str] | None

# The only application protocol a WebSocket handshake speaks (RFC 6455 §4.1).
_ALPN = ["http/1.1"]


def make_ssl_context(verify: VerifyLike = True, cert: CertLike = None) -> ssl.SSLContext:
    """The client context for ``verify`` and ``cert``.

    Contexts are cached: loading the system store costs milliseconds, which
    adds up over thousands of connections.
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("pass the client certificate inside your SSLContext, not as cert=")
        return verify
    if verify is not True and verify is not False:
        verify = os.fspath(verify)
    if cert is not None and not isinstance(cert, str):
        cert = (str(cert[0]), str(cert[1]))
    return _cached_context(verify, cert)


@functools.lru_cache(maxsize=32)
def _cached_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
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
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(_ALPN)
    if cert is not None:
        if isinstance(cert, str):
            ctx.load_cert_chain(cert)
        else:
            ctx.load_cert_chain(cert[0], cert[1])
    return ctx
