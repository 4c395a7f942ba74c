"""The echo server (rapidws.aio.echo), driven by independent clients.

The main peer is the ``websockets`` client, a third-party implementation;
rules it will not break for us (unmasked frames, bad requests, not reading)
are exercised with hand-written bytes over a plain TCP stream. Grouped by the
section of RFC 6455 each test guards.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

from rapidws import AsyncSession, WsFlag
from rapidws.aio.echo import EchoServer, serve_echo
from tests.peers.certs import TLSFiles

SUBPROTOCOLS = ["chat", "superchat"]
#: Seconds any single step may take before a test fails instead of hanging.
STEP = 5.0

# RFC 6455 §1.3: the sample key and the accept value a server must derive from it.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.fixture
async def server() -> AsyncIterator[EchoServer]:
    async with await serve_echo(subprotocols=SUBPROTOCOLS) as srv:
        yield srv


def ws_client(url: str, **kwargs: Any) -> connect:
    """The websockets client, without compression (our server offers none) or size limit."""
    return connect(url, compression=None, max_size=None, open_timeout=STEP, **kwargs)


# ---------------------------------------------------------------------------
# Raw TCP helpers: bytes the websockets client would never send
# ---------------------------------------------------------------------------


def upgrade_request(port: int, *extra: str, version: str = "13") -> bytes:
    lines = [
        "GET /raw HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {SAMPLE_KEY}",
        f"Sec-WebSocket-Version: {version}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """A frame as a client sends it (RFC 6455 §5.2), masked unless told otherwise."""
    head = bytes([opcode | (0x80 if fin else 0)])
    bit = 0x80 if mask else 0
    length = len(payload)
    if length < 126:
        head += bytes([bit | length])
    elif length < 2**16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    word = int.from_bytes((key * (length // 4 + 1))[:length], "big")
    masked = (int.from_bytes(payload, "big") ^ word).to_bytes(length, "big") if length else b""
    return head + key + masked


async def open_raw(
    server: EchoServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP stream past a successful upgrade."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(upgrade_request(server.port))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP)
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (first byte, payload)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), STEP)
    assert not b1 & 0x80, "RFC 6455 §5.1: a server MUST NOT mask frames"
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0, await asyncio.wait_for(reader.readexactly(length), STEP)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), STEP)


# ---------------------------------------------------------------------------
# RFC 6455 §4.2: opening handshake, server side
# ---------------------------------------------------------------------------


class TestOpeningHandshake:
    async def test_accept_key_is_derived_from_the_client_key(self, server: EchoServer) -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(upgrade_request(server.port))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP)
        writer.close()
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"Sec-WebSocket-Accept: " + SAMPLE_ACCEPT + b"\r\n" in head

    @pytest.mark.parametrize(
        ("offered", "selected"),
        [
            (["superchat", "chat"], "superchat"),
            (["other", "chat"], "chat"),
            (["other"], None),
            (None, None),
        ],
    )
    async def test_subprotocol_is_the_first_offered_that_is_supported(
        self, server: EchoServer, offered: list[str] | None, selected: str | None
    ) -> None:
        async with ws_client(server.url, subprotocols=offered) as ws:
            assert ws.subprotocol == selected
            await ws.send("still echoes")
            assert await ws.recv() == "still echoes"

    @pytest.mark.parametrize(
        ("request_bytes", "status"),
        [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # plain HTTP, no upgrade
            (b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 400),
            (b"NOT HTTP AT ALL\r\n\r\n", 400),
            (upgrade_request(0, version="8"), 426),
            (upgrade_request(0).replace(SAMPLE_KEY.encode(), b"short"), 400),
        ],
        ids=["no-upgrade", "post", "garbage", "version-8", "bad-key"],
    )
    async def test_bad_request_is_rejected_with_its_status(
        self, server: EchoServer, request_bytes: bytes, status: int
    ) -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(request_bytes)
        response = await read_to_eof(reader)  # the server closes after answering
        writer.close()
        assert response.startswith(b"HTTP/1.1 %d " % status)
        if status == 426:
            # §4.4: the rejection names the versions the server understands.
            assert b"\r\nSec-WebSocket-Version: 13\r\n" in response

    async def test_frames_in_the_same_segment_as_the_request_are_echoed(
        self, server: EchoServer
    ) -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(upgrade_request(server.port) + client_frame(0x1, b"early"))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP)
        assert await read_frame(reader) == (0x81, b"early")
        writer.close()


# ---------------------------------------------------------------------------
# RFC 6455 §5.4-§5.6: data frames and fragmentation
# ---------------------------------------------------------------------------


class TestEcho:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1_000_000])
    async def test_text_comes_back_as_text(self, server: EchoServer, size: int) -> None:
        text = ("é" * size)[:size]
        async with ws_client(server.url) as ws:
            await ws.send(text)
            assert await ws.recv() == text

    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1_000_000])
    async def test_binary_comes_back_as_binary(self, server: EchoServer, size: int) -> None:
        data = os.urandom(size)
        async with ws_client(server.url) as ws:
            await ws.send(data)
            assert await ws.recv() == data

    async def test_16_mib_message(self, server: EchoServer) -> None:
        data = os.urandom(16 * 2**20)
        async with ws_client(server.url) as ws:
            await ws.send(data)
            assert await asyncio.wait_for(ws.recv(), STEP) == data

    async def test_messages_keep_their_order(self, server: EchoServer) -> None:
        async with ws_client(server.url) as ws:
            for i in range(100):
                await ws.send(f"message {i}" if i % 2 else str(i).encode())
            for i in range(100):
                assert await ws.recv() == (f"message {i}" if i % 2 else str(i).encode())

    async def test_fragmented_text_comes_back_whole(self, server: EchoServer) -> None:
        async with ws_client(server.url) as ws:
            await ws.send(["frag", "mented ", "tëxt"])  # one message in three frames
            assert await ws.recv() == "fragmented tëxt"

    async def test_fragmented_binary_comes_back_whole(self, server: EchoServer) -> None:
        parts = [os.urandom(1000) for _ in range(5)]
        async with ws_client(server.url) as ws:
            await ws.send(parts)
            assert await ws.recv() == b"".join(parts)

    async def test_control_frames_between_fragments(self, server: EchoServer) -> None:
        # §5.4: "Control frames MAY be injected in the middle of a fragmented message."
        reader, writer = await open_raw(server)
        writer.write(
            client_frame(0x1, b"Hel", fin=False)
            + client_frame(0x9, b"mid")
            + client_frame(0x0, b"lo")
        )
        assert await read_frame(reader) == (0x8A, b"mid")
        assert await read_frame(reader) == (0x81, b"Hello")
        writer.close()

    async def test_message_over_the_limit_fails_with_1009(self) -> None:
        async with await serve_echo(max_message_size=1024) as small, ws_client(small.url) as ws:
            await ws.send(b"x" * 1024)
            assert await ws.recv() == b"x" * 1024
            await ws.send(b"x" * 1025)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009


# ---------------------------------------------------------------------------
# RFC 6455 §5.5.2-§5.5.3: ping and pong
# ---------------------------------------------------------------------------


class TestPing:
    async def test_ping_is_answered(self, server: EchoServer) -> None:
        async with ws_client(server.url) as ws:
            pong = await ws.ping(b"are you there?")
            await asyncio.wait_for(pong, STEP)

    async def test_pong_carries_the_ping_payload(self, server: EchoServer) -> None:
        reader, writer = await open_raw(server)
        writer.write(client_frame(0x9, b"payload"))
        assert await read_frame(reader) == (0x8A, b"payload")
        writer.close()

    async def test_unsolicited_pong_is_ignored(self, server: EchoServer) -> None:
        reader, writer = await open_raw(server)
        writer.write(client_frame(0xA, b"heartbeat") + client_frame(0x2, b"after"))
        assert await read_frame(reader) == (0x82, b"after")
        writer.close()


# ---------------------------------------------------------------------------
# RFC 6455 §7: closing the connection
# ---------------------------------------------------------------------------


class TestClose:
    @pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "bye"), (4321, "custom")])
    async def test_client_close_code_is_echoed(
        self, server: EchoServer, code: int, reason: str
    ) -> None:
        async with ws_client(server.url) as ws:
            await ws.close(code, reason)
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == code

    async def test_close_without_code_is_answered_without_code(self, server: EchoServer) -> None:
        reader, writer = await open_raw(server)
        writer.write(client_frame(0x8, b""))
        assert await read_frame(reader) == (0x88, b"")
        writer.close()

    async def test_server_closes_tcp_first(self, server: EchoServer) -> None:
        # §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD
        # be closed first by the server".
        reader, writer = await open_raw(server)
        writer.write(client_frame(0x8, struct.pack("!H", 1000)))
        assert await read_to_eof(reader) == b"\x88\x02\x03\xe8"
        writer.close()

    async def test_messages_before_the_close_are_echoed_first(self, server: EchoServer) -> None:
        reader, writer = await open_raw(server)
        writer.write(client_frame(0x1, b"last words") + client_frame(0x8, b"\x03\xe8"))
        assert await read_to_eof(reader) == b"\x81\x0alast words\x88\x02\x03\xe8"
        writer.close()

    async def test_server_shutdown_sends_going_away(self) -> None:
        srv = await serve_echo()
        async with ws_client(srv.url) as ws:
            await asyncio.wait_for(srv.close(), STEP)
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 1001

    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            (client_frame(0x1, b"unmasked", mask=False), 1002),  # §5.1: clients MUST mask
            (client_frame(0x3, b"reserved opcode"), 1002),  # §5.2
            (client_frame(0x9, b"fragmented ping", fin=False), 1002),  # §5.5
            (client_frame(0x0, b"nothing to continue"), 1002),  # §5.4
            (client_frame(0x1, b"\xff\xfe not utf-8"), 1007),  # §8.1
        ],
        ids=["unmasked", "reserved-opcode", "fragmented-control", "orphan-cont", "bad-utf8"],
    )
    async def test_protocol_error_fails_the_connection(
        self, server: EchoServer, frame: bytes, code: int
    ) -> None:
        # §7.1.7: send a close frame with the code, then close TCP.
        reader, writer = await open_raw(server)
        writer.write(frame)
        assert await read_to_eof(reader) == b"\x88\x02" + struct.pack("!H", code)
        writer.close()


# ---------------------------------------------------------------------------
# Flow control
# ---------------------------------------------------------------------------


async def test_server_stops_reading_when_the_client_does_not(server: EchoServer) -> None:
    """A client that sends but does not read meets TCP backpressure, and loses nothing."""
    reader, writer = await open_raw(server)
    frame = client_frame(0x2, b"\x00" * 2**20)
    sent = 0
    # Without backpressure the server would buffer every echo and accept
    # everything; with it, the client's writes block within a few buffers.
    while sent < 128:
        writer.write(frame)
        sent += 1
        try:
            await asyncio.wait_for(writer.drain(), 0.5)
        except asyncio.TimeoutError:
            break
    assert sent < 128, "the server kept reading while its echoes could not be sent"

    writer.write(client_frame(0x8, b"\x03\xe8"))
    received = 0
    while True:
        b0, payload = await read_frame(reader)
        if b0 == 0x88:
            break
        assert b0 == 0x82
        received += 1
    assert received == sent
    writer.close()


# ---------------------------------------------------------------------------
# TLS and the rapidws client
# ---------------------------------------------------------------------------


async def test_tls_with_a_trustme_certificate(tls_files: TLSFiles) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls_files.server_cert), str(tls_files.server_key))
    async with await serve_echo(ssl=context) as srv:
        assert srv.url.startswith("wss://127.0.0.1:")
        async with ws_client(srv.url, ssl=tls_files.client_ssl_context()) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
            await ws.send(os.urandom(2**20))
            assert len(await ws.recv()) == 2**20
        async with AsyncSession(verify=str(tls_files.ca)) as s, s.ws_connect(srv.url) as rws:
            await rws.send_str("rapidws over TLS")
            assert await rws.recv_str() == "rapidws over TLS"


async def test_rapidws_client(server: EchoServer) -> None:
    async with AsyncSession() as s:
        async with s.ws_connect(server.url, subprotocols=["superchat"]) as ws:
            assert ws.subprotocol == "superchat"
            await ws.send_str("Hello, World!")
            assert await ws.recv_str() == "Hello, World!"
            await ws.send_bytes(b"\x00\x01\x02")
            assert await ws.recv() == (b"\x00\x01\x02", WsFlag.BINARY)
            await ws.send_json({"a": [1, 2]})
            assert await ws.recv_json() == {"a": [1, 2]}
            await ws.ping(b"ping")
            await ws.close(4000, "done")
        assert ws.close_code == 4000
