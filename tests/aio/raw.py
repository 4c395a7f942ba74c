"""A scripted raw WebSocket server for fault tests.

The handshake and frames are written by hand (hashlib, base64), not with
rapidws's protocol core, so a bug in the core cannot hide itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
StartServer = Callable[..., Awaitable[str]]


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the client's upgrade request and answer 101 with the right accept key."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final TEXT frame of up to 125 bytes."""
    assert len(payload) < 126
    return bytes((0x81, len(payload))) + payload


def tls_server(tmp_path: Path, *names: str, **cert_options: object) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh CA's certificate for ``names``, and the CA file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert_options).configure_cert(context)  # type: ignore[arg-type]
    ca_file = tmp_path / "raw-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


@pytest.fixture
async def raw_server() -> AsyncIterator[StartServer]:
    """``await raw_server(handler, ssl_context=None)`` gives the URL of a new server."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        scheme = "wss" if ssl_context else "ws"
        return f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (some CI containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
