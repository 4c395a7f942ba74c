"""Every peer honours the contract in launcher.py, plain and over TLS.

The client here is the ``websockets`` library, not rapidws: these tests vouch for
the servers that the rapidws integration tests rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Data, Subprotocol
from websockets.uri import parse_uri

from tests.peers.certs import TLSFiles
from tests.peers.launcher import (
    MAX_MESSAGE_SIZE,
    PEER_NAMES,
    Peer,
    PeerName,
    PeerPool,
    send_payload,
)

# Cap on any single wait, so that a peer that misbehaves fails a test instead of hanging it.
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def client_ssl(tls_files: TLSFiles) -> ssl.SSLContext:
    return tls_files.client_ssl_context()


def dial(peer: Peer, target: str, client_ssl: ssl.SSLContext, **kwargs: Any) -> connect:
    """Connect to ``target`` on ``peer``; keepalive off, no size limit."""
    options: dict[str, Any] = {
        "ssl": client_ssl if peer.tls else None,
        "max_size": None,
        "ping_interval": None,
        "open_timeout": TIMEOUT,
        "close_timeout": TIMEOUT,
    }
    return connect(peer.url(target), **(options | kwargs))


async def recv(ws: ClientConnection) -> Data:
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def closed_by_peer(ws: ClientConnection) -> ConnectionClosed:
    """Wait for the connection to end and return how it ended."""
    with pytest.raises(ConnectionClosed) as info:
        await recv(ws)
    await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    return info.value


async def roundtrip(ws: ClientConnection, message: Data) -> None:
    await ws.send(message)
    assert await recv(ws) == message


# /echo, /deflate


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1 << 20])
async def test_echo_keeps_type_and_payload(
    any_peer: Peer, client_ssl: ssl.SSLContext, size: int
) -> None:
    async with dial(any_peer, "/echo", client_ssl) as ws:
        # The client offers permessage-deflate; only /deflate accepts it.
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await roundtrip(ws, bytes(range(256)) * (size // 256) + bytes(size % 256))
        await roundtrip(ws, "é" * (size // 2) + "x" * (size % 2))


async def test_echo_accepts_max_message_size(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/echo", client_ssl, compression=None) as ws:
        message = bytes(MAX_MESSAGE_SIZE)
        await ws.send(message)
        echoed = await recv(ws)
        assert len(echoed) == MAX_MESSAGE_SIZE and echoed == message


async def test_echo_refuses_more_than_max_message_size(peer: Peer) -> None:
    # A frame header announcing one byte too many is enough: each peer checks the
    # length before reading the payload. The sans-I/O client sends just that; the
    # asyncio client would trip over the close arriving during a 64 MiB write.
    client = ClientProtocol(parse_uri(peer.url("/echo")))
    client.send_request(client.connect())
    reader, writer = await asyncio.open_connection(peer.host, peer.port)
    try:
        writer.write(b"".join(client.data_to_send()))
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, MAX_MESSAGE_SIZE + 1) + b"mask"
        close_frame = None
        while close_frame is None:
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            assert data, "connection closed without a close frame"
            client.receive_data(data)
            for event in client.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101
                    writer.write(header)
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    close_frame = Close.parse(event.data)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert close_frame.code == 1009


async def test_deflate_is_negotiated_on_deflate_only(
    any_peer: Peer, client_ssl: ssl.SSLContext
) -> None:
    async with dial(any_peer, "/deflate", client_ssl) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        await roundtrip(ws, "compressible " * 1000)
        await roundtrip(ws, b"\x00" * 100_000)


# /close, /close-after, /server-close-fast, /abort-after


async def test_close_sends_code_and_reason(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/close?code=4001&reason=bye", client_ssl) as ws:
        closed = await closed_by_peer(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4001, "bye")


async def test_close_after_echoes_n_then_closes(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/close-after?n=3&code=1000&reason=done", client_ssl) as ws:
        for message in ("one", b"two", "three"):
            await roundtrip(ws, message)
        closed = await closed_by_peer(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1000, "done")


async def test_server_close_fast_sends_close_frame_then_drops(
    any_peer: Peer, client_ssl: ssl.SSLContext
) -> None:
    async with dial(any_peer, "/server-close-fast?code=1001&reason=gone", client_ssl) as ws:
        closed = await closed_by_peer(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "gone")


async def test_abort_after_drops_without_close_frame(
    any_peer: Peer, client_ssl: ssl.SSLContext
) -> None:
    async with dial(any_peer, "/abort-after?n=2", client_ssl) as ws:
        await roundtrip(ws, "one")
        await roundtrip(ws, b"two")
        closed = await closed_by_peer(ws)
    assert closed.rcvd is None


# /ping, /fragment, /count, /stall, /send


async def test_ping_waits_for_matching_pong(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/ping?payload=hello", client_ssl) as ws:
        # Sent before the pong; echoed after pong:hello.
        await ws.send("early")
        assert await recv(ws) == "pong:hello"
        assert await recv(ws) == "early"
        await roundtrip(ws, b"later")


@pytest.mark.parametrize("message", ["abcdefghij", b"\x00\x01\x02\x03\x04\x05\x06"])
async def test_fragment_sends_n_frames(
    any_peer: Peer, client_ssl: ssl.SSLContext, message: Data
) -> None:
    if not any_peer.supports("fragment"):
        with pytest.raises(InvalidStatus) as info:
            async with dial(any_peer, "/fragment?n=3", client_ssl):
                pass
        assert info.value.response.status_code == 404
        return
    async with dial(any_peer, "/fragment?n=3", client_ssl) as ws:
        await ws.send(message)
        fragments = [fragment async for fragment in ws.recv_streaming(decode=False)]
        assert len(fragments) == 3
        expected = message.encode() if isinstance(message, str) else message
        assert b"".join(fragments) == expected
        await ws.send(b"")
        assert [fragment async for fragment in ws.recv_streaming()] == [b"", b"", b""]


async def test_count_reports_messages_and_bytes(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/count", client_ssl) as ws:
        for message in ("a", b"\x00\x01", "héllo", b""):
            await ws.send(message)
        await ws.send("count?")
        assert await recv(ws) == "count:4"
        await ws.send("bytes?")
        assert await recv(ws) == "bytes:9"
        # The queries are not counted.
        await ws.send("count?")
        assert await recv(ws) == "count:4"


async def test_stall_backs_up_writes_then_closes(
    any_peer: Peer, client_ssl: ssl.SSLContext
) -> None:
    chunk = bytes(1 << 20)
    sent = 0

    async def flood(ws: ClientConnection) -> None:
        nonlocal sent
        while sent < MAX_MESSAGE_SIZE:
            await ws.send(chunk)
            sent += len(chunk)

    async with dial(any_peer, "/stall?seconds=1.2", client_ssl, compression=None) as ws:
        task = asyncio.create_task(flood(ws))
        await asyncio.sleep(0.3)
        # Kernel buffers on both sides hold a few MiB at most: the peer isn't reading.
        assert not task.done()
        assert sent < MAX_MESSAGE_SIZE // 2
        # Then it reads again, drops what it reads and closes.
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(task, TIMEOUT)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    assert (ws.close_code, ws.close_reason) == (1000, "stall over")


@pytest.mark.parametrize("kind", ["binary", "text"])
async def test_send_streams_numbered_payloads_then_closes(
    any_peer: Peer, client_ssl: ssl.SSLContext, kind: str
) -> None:
    async with dial(any_peer, f"/send?n=100&size=64&type={kind}&close=1000", client_ssl) as ws:
        for index in range(100):
            assert await recv(ws) == send_payload(index, 64, kind)
        closed = await closed_by_peer(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1000


async def test_send_without_close_keeps_echoing(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(any_peer, "/send?n=3&size=5&type=binary", client_ssl) as ws:
        for index in range(3):
            assert await recv(ws) == send_payload(index, 5, "binary")
        await roundtrip(ws, "still open")


def test_send_payload_encodes_index() -> None:
    payload = send_payload(300, 600, "binary")
    assert isinstance(payload, bytes) and len(payload) == 600
    assert int.from_bytes(payload[:8], "big") == 300
    assert all(payload[j] == (300 + j) % 256 for j in range(8, 600))
    assert send_payload(12, 6, "text") == "12:xxx"
    assert send_payload(12, 0, "binary") == b""


# /headers, subprotocols, /auth, /reject


async def test_headers_reports_request(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    async with dial(
        any_peer,
        "/headers?a=1&b=two",
        client_ssl,
        additional_headers=[("X-Custom-Header", "Value1"), ("x-lower", "v2")],
        subprotocols=[Subprotocol("superchat"), Subprotocol("chat")],
    ) as ws:
        report = json.loads(await recv(ws))
        await roundtrip(ws, "after")
    assert report["path"] == "/headers?a=1&b=two"
    assert report["subprotocol"] == "superchat"
    headers = [tuple(pair) for pair in report["headers"]]
    assert ("X-Custom-Header", "Value1") in headers
    assert ("x-lower", "v2") in headers
    # Received order: the client sends Host first.
    assert headers[0][0] == "Host"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], None),
        (["chat"], "chat"),
        (["superchat", "chat"], "superchat"),
        (["unknown", "chat"], "chat"),
        (["unknown"], None),
    ],
)
async def test_subprotocol_is_first_known_offer(
    any_peer: Peer, client_ssl: ssl.SSLContext, offered: list[str], chosen: str | None
) -> None:
    subprotocols = [Subprotocol(name) for name in offered] or None
    async with dial(any_peer, "/echo", client_ssl, subprotocols=subprotocols) as ws:
        assert ws.subprotocol == chosen


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjp3cm9uZw==", "Bearer nope"],
    ids=["none", "basic", "bearer"],
)
async def test_auth_refuses_bad_credentials(
    any_peer: Peer, client_ssl: ssl.SSLContext, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else None
    with pytest.raises(InvalidStatus) as info:
        async with dial(any_peer, "/auth", client_ssl, additional_headers=headers):
            pass
    assert info.value.response.status_code == 401
    assert "Basic" in info.value.response.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer token123"], ids=["basic", "bearer"]
)
async def test_auth_accepts_credentials(
    any_peer: Peer, client_ssl: ssl.SSLContext, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    async with dial(any_peer, "/auth", client_ssl, additional_headers=headers) as ws:
        report = json.loads(await recv(ws))
        await roundtrip(ws, "in")
    assert ["Authorization", authorization] in report["headers"]


async def test_reject_answers_status_and_body(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with dial(any_peer, "/reject?status=403&body=nope", client_ssl):
            pass
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"nope"


async def test_reject_with_location_redirects(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    # websockets follows redirects: landing on /echo proves the Location header.
    async with dial(any_peer, "/reject?status=302&location=/echo", client_ssl) as ws:
        await roundtrip(ws, "redirected")


async def test_unknown_path_is_404(any_peer: Peer, client_ssl: ssl.SSLContext) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with dial(any_peer, "/no-such-behaviour", client_ssl):
            pass
    assert info.value.response.status_code == 404


# Client certificates


@pytest.mark.parametrize("name", PEER_NAMES)
async def test_client_cert_required(
    peer_pool: PeerPool, tls_files: TLSFiles, client_ssl: ssl.SSLContext, name: PeerName
) -> None:
    peer = peer_pool.get(name, tls=True, require_client_cert=True)
    with_cert = tls_files.client_ssl_context(with_client_cert=True)
    async with dial(peer, "/echo", with_cert) as ws:
        await roundtrip(ws, "trusted")
    # TLS 1.3 reports the refusal after the client's handshake: on the first read.
    with pytest.raises((OSError, InvalidHandshake, ConnectionClosed)):
        async with dial(peer, "/echo", client_ssl) as ws:
            await roundtrip(ws, "anonymous")


async def test_mtls_url_fixture(
    mtls_url: str, client_cert_paths: tuple[str, str], ca_path: str
) -> None:
    context = ssl.create_default_context(cafile=ca_path)
    context.load_cert_chain(*client_cert_paths)
    async with connect(mtls_url, ssl=context, open_timeout=TIMEOUT) as ws:
        await roundtrip(ws, "ok")
