"""Open a connected asyncio transport: DNS, TCP, then TLS, each error naming its hop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator

from ..errors import ConnectError
from .url import WsURL

__all__ = ["open_transport", "map_errors"]


@contextlib.contextmanager
def map_errors(hop: str, host: str) -> Iterator[None]:
    """Turn OS, DNS and TLS errors into ``ConnectError`` naming the hop.

    The original error stays reachable as ``__cause__``.
    """
    try:
        yield
    except ConnectError:
        raise
    except socket.gaierror as exc:
        raise ConnectError(
            f"DNS lookup of {host} failed: {exc.strerror or exc}", hop="dns", host=host
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ConnectError(
            f"TLS certificate of {host} not trusted: {exc.verify_message or exc.reason}",
            hop="tls",
            host=host,
        ) from exc
    except ssl.SSLError as exc:
        raise ConnectError(
            f"TLS handshake with {host} failed: {exc.reason or exc}", hop="tls", host=host
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(f"connection to {host} refused", hop=hop, host=host) from exc
    except OSError as exc:
        raise ConnectError(
            f"{hop.upper()} connection to {host} failed: {exc.strerror or exc}", hop=hop, host=host
        ) from exc


async def open_transport(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    url: WsURL,
    *,
    ssl_context: ssl.SSLContext | None,
    local_addr: tuple[str, int] | None = None,
    phase: list[str] | None = None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """Connect to ``url``'s host and port; with ``ssl_context``, wrap in TLS.

    TCP and TLS are separate steps (``start_tls``), so errors and timeouts name
    the one that failed; ``phase[0]`` is kept up to date for the caller's
    timeout message.
    """
    loop = asyncio.get_running_loop()
    host = url.host
    if phase is not None:
        phase[0] = "TCP connect"
    with map_errors("tcp", host):
        transport, protocol = await loop.create_connection(
            protocol_factory, host, url.port, local_addr=local_addr
        )
    if ssl_context is None:
        return transport, protocol
    if phase is not None:
        phase[0] = "TLS handshake"
    try:
        with map_errors("tls", host):
            tls_transport = await loop.start_tls(
                transport, protocol, ssl_context, server_hostname=host
            )
    except BaseException:
        transport.abort()
        raise
    if tls_transport is None:  # the transport was closed under us
        transport.abort()
        raise ConnectError(
            f"connection to {host} closed during the TLS handshake", hop="tls", host=host
        )
    return tls_transport, protocol
