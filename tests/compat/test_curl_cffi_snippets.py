"""The snippets of curl_cffi's "Async WebSockets" guide and of DESIGN.md, run on rapidws.

Each test body is the documented snippet with only the import line changed
(``from curl_cffi import ...`` -> ``from rapidws import ...``) and the public
echo server's URL replaced by a local peer's. Snippets of the guide that need
options rapidws does not offer yet (``impersonate=``, session cookies,
``ws_retry``) are left out, not rewritten.
"""

from __future__ import annotations

import pytest

from tests.peers.launcher import Peer


@pytest.fixture
def echo_url(websockets_peer: Peer) -> str:
    return websockets_peer.url("/echo")


async def test_design_quick_start(echo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from rapidws import AsyncSession

    async with AsyncSession() as s:
        async with await s.ws_connect(echo_url) as ws:
            await ws.send_str("Hello, World!")
            print(await ws.recv_str())

    assert capsys.readouterr().out == "Hello, World!\n"


async def test_guide_quick_start(websockets_peer: Peer, capsys: pytest.CaptureFixture[str]) -> None:
    from rapidws import AsyncSession

    # The server closes after two echoes, so the iteration below ends.
    url = websockets_peer.url("/close-after?n=2&code=1000")
    async with AsyncSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.send_str("Hello, World!")
            msg = await ws.recv_str()
            print(f"Received: {msg}")
            await ws.send_str("second")
            async for message in ws:
                print(f"Stream: {message}")  # type: ignore[str-bytes-safe]  # verbatim

    assert capsys.readouterr().out == "Received: Hello, World!\nStream: b'second'\n"


async def test_guide_sending_data(websockets_peer: Peer) -> None:
    from rapidws import AsyncSession

    async with AsyncSession() as session:
        async with session.ws_connect(websockets_peer.url("/count")) as ws:
            await ws.send_str("Hello")
            await ws.send_bytes(b"\x00\x01\x02")
            await ws.send_json({"action": "subscribe", "channel": "btc_usd"})
            await ws.send("Auto-detected payload")

            await ws.send_str("count?")
            assert await ws.recv_str() == "count:4"


async def test_guide_receive_methods(echo_url: str) -> None:
    from rapidws import AsyncSession, CurlWsFlag, WebSocketTimeout

    async with AsyncSession() as session:
        async with session.ws_connect(echo_url) as ws:
            await ws.send_str("text")
            msg = await ws.recv_str()
            assert msg == "text"

            timed_out = False
            try:
                await ws.recv_json(timeout=0.2)
            except WebSocketTimeout:
                timed_out = True
            assert timed_out

            await ws.send_str("flags")
            content, flags = await ws.recv()
            if flags & CurlWsFlag.TEXT:
                text = content.decode("utf-8")
            assert text == "flags"


async def test_guide_iteration_ping_flush_close(
    websockets_peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapidws import AsyncSession

    async with AsyncSession() as session:
        async with session.ws_connect(websockets_peer.url("/close-after?n=1")) as ws:
            await ws.ping(b"keepalive")
            await ws.send_str("Critical Data")
            await ws.flush()  # Blocks until all queued messages are transmitted
            async for message in ws:
                print(message.decode("utf-8"))
            await ws.close(code=1000, message=b"bye")
            ws.terminate()

    assert capsys.readouterr().out == "Critical Data\n"


async def test_guide_error_handling(
    websockets_peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapidws import AsyncSession, WebSocketClosed, WebSocketError, WebSocketTimeout

    async with AsyncSession() as session:
        async with session.ws_connect(websockets_peer.url("/close?code=4001&reason=bye")) as ws:
            try:
                msg = await ws.recv_str()
            except WebSocketClosed as e:
                print(f"Closed: {e.code} - {e.message}")
            except WebSocketTimeout:
                print("Did not receive a message in time.")
            except WebSocketError as e:
                print(f"Transport/Network error: {e}")
            else:
                print(msg)

    assert capsys.readouterr().out == "Closed: 4001 - bye\n"


async def test_guide_queue_sizes_and_limits(echo_url: str) -> None:
    from rapidws import AsyncSession

    async with AsyncSession() as session:
        url = echo_url
        ws = await session.ws_connect(url, recv_queue_size=256, send_queue_size=32)
        await ws.send_bytes(b"q")
        assert await ws.recv() == (b"q", 2)
        await ws.close()

        ws = await session.ws_connect(url, max_message_size=16 * 1024 * 1024)
        await ws.send_bytes(b"m" * (8 * 1024 * 1024))
        assert len((await ws.recv())[0]) == 8 * 1024 * 1024
        await ws.close()


async def test_guide_manual_fragmentation(echo_url: str) -> None:
    from rapidws import AsyncSession, CurlWsFlag

    async with AsyncSession() as session:
        async with session.ws_connect(echo_url) as ws:
            await ws.send("Part 1...", flags=CurlWsFlag.TEXT | CurlWsFlag.CONT)
            await ws.send("Part 2...", flags=CurlWsFlag.TEXT | CurlWsFlag.CONT)
            await ws.send("Final part", flags=CurlWsFlag.TEXT)

            assert await ws.recv_str() == "Part 1...Part 2...Final part"


async def test_guide_coalescing_and_drain_on_error(websockets_peer: Peer) -> None:
    from rapidws import AsyncSession

    async with AsyncSession() as session:
        url = websockets_peer.url("/count")
        ws = await session.ws_connect(url, coalesce_frames=True)
        for i in range(100):
            await ws.send_str(str(i))
        await ws.send_str("count?")
        assert await ws.recv_str() == "count:100"
        await ws.close()

        ws = await session.ws_connect(url, drain_on_error=True)
        await ws.send_str("bytes?")
        assert await ws.recv_str() == "bytes:0"
        await ws.close()
