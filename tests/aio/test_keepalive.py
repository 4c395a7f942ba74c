"""Keepalive pings, latency, and PONG answers that cannot pile up.

The raw server here writes its frames by hand (hashlib, base64, struct), not
with rapidws's protocol core, so a bug in the core cannot hide itself.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from rapidws import AsyncSession, AsyncWebSocket, WebSocketClosed
from tests.aio.raw import StartServer, accept_upgrade
from tests.peers.launcher import Peer


def current_latency(ws: AsyncWebSocket) -> float | None:
    # A call, so the type checker does not carry an earlier narrowing over.
    return ws.latency


async def test_latency_is_measured_with_a_live_peer(peer: Peer) -> None:
    url = peer.url("/echo")
    async with AsyncSession() as s, s.ws_connect(url, ping_interval=0.05) as ws:
        assert ws.latency is None
        latency = None
        for _ in range(200):
            await asyncio.sleep(0.01)
            latency = current_latency(ws)
            if latency is not None:
                break
        assert latency is not None and latency >= 0
        # Pings and pongs never surface as messages.
        await ws.send_str("still echoing")
        assert await ws.recv_str(timeout=5) == "still echoing"


async def test_unanswered_ping_fails_the_connection(peer: Peer) -> None:
    # /stall stops reading the socket: our PINGs are never answered.
    url = peer.url("/stall?seconds=30")
    async with AsyncSession() as s:
        ws = await s.ws_connect(url, ping_interval=0.1, ping_timeout=0.2)
        with pytest.raises(WebSocketClosed) as info:
            await ws.recv(timeout=10)
        assert info.value.code == 1011
        assert "keepalive" in info.value.message
        assert ws.transport is not None and ws.transport.is_closing()


async def test_keepalive_off_by_default(peer: Peer) -> None:
    async with AsyncSession() as s, s.ws_connect(peer.url("/stall?seconds=30")) as ws:
        # No PINGs are sent, so an unresponsive peer is not noticed.
        await asyncio.sleep(0.5)
        assert not ws.closed
        assert ws.latency is None
        ws.terminate()


@pytest.mark.parametrize(("name", "value"), [("ping_interval", 0), ("ping_timeout", -1)])
async def test_bad_keepalive_options_are_refused(peer: Peer, name: str, value: float) -> None:
    async with AsyncSession() as s:
        with pytest.raises(ValueError, match=name):
            s.ws_connect(peer.url("/echo"), **{name: value})  # type: ignore[arg-type]


async def test_ping_flood_does_not_grow_the_write_buffer(
    raw_server: StartServer,
) -> None:
    """RFC 6455 §5.5.3: answering only the most recent PING is allowed.

    The server floods PINGs and never reads; the client's pending PONGs must
    not grow without bound.
    """
    flooded = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A tiny receive window: the client's PONGs back up in its own buffers.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await accept_upgrade(reader, writer)
        ping = b"\x89\x7d" + b"p" * 125  # FIN+PING, 125-byte payload, unmasked
        for _ in range(40_000):  # 5 MB of PINGs -> 5 MB of PONGs if all were kept
            writer.write(ping)
            await writer.drain()
        flooded.set()
        await asyncio.sleep(30)

    url = await raw_server(flood)
    async with AsyncSession() as s:
        ws = await s.ws_connect(url, close_timeout=0.5)
        transport = ws.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await asyncio.wait_for(flooded.wait(), 30)
        # Bounded by the transport's high-water mark (64 KiB) plus the PONGs
        # for one read's worth of PINGs (a 256 KiB read answered before the
        # transport says it is full): about 330 KiB, against 5 MB unbounded.
        assert transport.get_write_buffer_size() < 1024 * 1024
        ws.terminate()
