"""The public client API against real third-party servers (websockets, aiohttp, Node ws).

Every test drives rapidws only through what a user writes: AsyncSession,
ws_connect, and the AsyncWebSocket methods.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from rapidws import (
    AsyncSession,
    AsyncWebSocket,
    InvalidStatus,
    ProtocolError,
    WebSocketClosed,
    WebSocketError,
    WebSocketTimeout,
    WsFlag,
)
from tests.peers.launcher import BASIC_CREDENTIALS, BEARER_TOKEN, Peer, send_payload

MiB = 1024 * 1024


async def headers_seen(ws: AsyncWebSocket) -> dict[str, object]:
    """The /headers message: what the server received."""
    report: dict[str, object] = await ws.recv_json(timeout=5)
    return report


def header_values(report: dict[str, object], name: str) -> list[str]:
    pairs = report["headers"]
    assert isinstance(pairs, list)
    return [value for key, value in pairs if key.lower() == name.lower()]


class TestMessages:
    async def test_text_binary_and_json_round_trip(self, any_peer: Peer, ca_path: str) -> None:
        async with AsyncSession(verify=ca_path) as s, s.ws_connect(any_peer.url("/echo")) as ws:
            await ws.send_str("Hello, World!")
            assert await ws.recv_str(timeout=5) == "Hello, World!"
            await ws.send_bytes(b"\x00\x01\xff")
            assert await ws.recv(timeout=5) == (b"\x00\x01\xff", WsFlag.BINARY)
            await ws.send_json({"action": "subscribe", "channel": "btc_usd", "n": [1, 2]})
            data, flags = await ws.recv(timeout=5)
            assert flags == WsFlag.TEXT
            # Compact JSON, as DESIGN.md promises.
            assert data == b'{"action":"subscribe","channel":"btc_usd","n":[1,2]}'

    async def test_send_picks_text_for_str_and_binary_for_bytes(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            await ws.send("héllo")
            assert await ws.recv(timeout=5) == ("héllo".encode(), WsFlag.TEXT)
            await ws.send(bytearray(b"abc"))
            assert await ws.recv(timeout=5) == (b"abc", WsFlag.BINARY)
            await ws.send(memoryview(b"xyz"), WsFlag.TEXT)
            assert await ws.recv(timeout=5) == (b"xyz", WsFlag.TEXT)

    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 256 * 1024])
    async def test_sizes_across_header_forms(self, peer: Peer, size: int) -> None:
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            await ws.send_bytes(payload)
            assert await ws.recv(timeout=10) == (payload, WsFlag.BINARY)

    async def test_16_mib_message_both_ways(self, peer: Peer) -> None:
        payload = b"\xa5" * (16 * MiB)
        async with (
            AsyncSession() as s,
            s.ws_connect(peer.url("/echo"), max_message_size=32 * MiB) as ws,
        ):
            await ws.send_bytes(payload)
            data, flags = await ws.recv(timeout=30)
            assert flags == WsFlag.BINARY
            assert data == payload

    async def test_ping_while_a_large_message_is_written(
        self, any_peer: Peer, ca_path: str
    ) -> None:
        # The 16 MiB frame goes to the socket in pieces; the PING sent before
        # it is all out must follow it, not land inside it (the server would
        # fail the connection), over TCP and TLS alike.
        payload = bytes(range(256)) * (64 * 1024)
        async with (
            AsyncSession(verify=ca_path) as s,
            s.ws_connect(any_peer.url("/echo"), max_message_size=32 * MiB) as ws,
        ):
            await ws.send_bytes(payload)
            await ws.ping(b"between frames")
            await ws.send_str("after")
            assert await ws.recv(timeout=30) == (payload, WsFlag.BINARY)
            assert await ws.recv_str(timeout=10) == "after"

    async def test_recv_str_refuses_binary(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            await ws.send_bytes(b"bin")
            with pytest.raises(WebSocketError, match="TEXT"):
                await ws.recv_str(timeout=5)

    async def test_messages_arrive_in_order_and_intact(self, peer: Peer) -> None:
        url = peer.url("/send?n=500&size=100&type=binary&close=1000")
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            received = [payload async for payload in ws]
        assert received == [send_payload(i, 100, "binary") for i in range(500)]
        assert ws.close_code == 1000


class TestFragmentation:
    """RFC 6455 §5.4: fragmented messages, both directions."""

    async def test_fragmented_message_from_server_is_reassembled(self, peer: Peer) -> None:
        if not peer.supports("fragment"):
            pytest.skip(f"{peer.name} cannot send fragmented messages")
        async with AsyncSession() as s, s.ws_connect(peer.url("/fragment?n=4")) as ws:
            await ws.send_str("0123456789abcdef")
            assert await ws.recv(timeout=5) == (b"0123456789abcdef", WsFlag.TEXT)

    async def test_stream_fragments_hands_out_pieces(self, peer: Peer) -> None:
        if not peer.supports("fragment"):
            pytest.skip(f"{peer.name} cannot send fragmented messages")
        url = peer.url("/fragment?n=3")
        async with AsyncSession() as s, s.ws_connect(url, stream_fragments=True) as ws:
            await ws.send_bytes(b"a" * 30)
            pieces = []
            while True:
                data, flags = await ws.recv_fragment(timeout=5)
                pieces.append((data, flags))
                if not flags & WsFlag.CONT:
                    break
            assert len(pieces) == 3
            assert all(f & WsFlag.BINARY for _, f in pieces)
            assert [bool(f & WsFlag.CONT) for _, f in pieces] == [True, True, False]
            assert b"".join(d for d, _ in pieces) == b"a" * 30
            # recv() joins the pieces of the next message.
            await ws.send_str("joined")
            assert await ws.recv(timeout=5) == (b"joined", WsFlag.TEXT)

    async def test_manual_fragmentation_with_cont_flag(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/count")) as ws:
            await ws.send("Part 1...", flags=WsFlag.TEXT | WsFlag.CONT)
            await ws.send("Part 2...", flags=WsFlag.TEXT | WsFlag.CONT)
            await ws.send("Final part", flags=WsFlag.TEXT)
            await ws.send_str("count?")
            assert await ws.recv_str(timeout=5) == "count:1"
            await ws.send_str("bytes?")
            assert await ws.recv_str(timeout=5) == f"bytes:{len('Part 1...Part 2...Final part')}"


class TestControlFrames:
    async def test_server_ping_is_answered(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/ping?payload=hello")) as ws:
            # The server sends "pong:hello" only once our automatic PONG came back.
            assert await ws.recv_str(timeout=5) == "pong:hello"

    async def test_client_ping_and_pong_are_not_messages(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            await ws.ping(b"keepalive")
            await ws.send_str("after ping")
            # The PONG answering our PING is consumed, never returned by recv().
            assert await ws.recv_str(timeout=5) == "after ping"

    async def test_ping_payload_over_125_bytes_is_refused(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            with pytest.raises(ValueError, match="125"):
                await ws.ping(b"x" * 126)
            await ws.send_str("still open")
            assert await ws.recv_str(timeout=5) == "still open"


class TestClosing:
    """RFC 6455 §7: the closing handshake from either side."""

    async def test_client_close_with_code_and_reason(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            ws = await s.ws_connect(peer.url("/echo"))
            await ws.send_str("x")
            assert await ws.recv_str(timeout=5) == "x"
            await ws.close(code=4000, message=b"bye")
            assert ws.closed
            assert ws.close_code == 4000
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=1)
            assert info.value.code == 4000
            with pytest.raises(WebSocketClosed):
                await ws.send_str("after close")
            # A second close is harmless.
            await ws.close()

    async def test_server_close_code_and_reason_reach_recv(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/close?code=4001&reason=bye")) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=5)
            assert (info.value.code, info.value.message) == (4001, "bye")
            assert (ws.close_code, ws.close_reason) == (4001, "bye")
            assert isinstance(info.value, ConnectionError)

    async def test_iteration_ends_at_normal_close(self, peer: Peer) -> None:
        url = peer.url("/close-after?n=3&code=1000&reason=done")
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            for i in range(3):
                await ws.send_str(f"m{i}")
            received = [chunk async for chunk in ws]
        assert received == [b"m0", b"m1", b"m2"]
        assert (ws.close_code, ws.close_reason) == (1000, "done")

    async def test_iteration_raises_on_abnormal_close(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/close?code=4002")) as ws:
            with pytest.raises(WebSocketClosed) as info:
                async for _ in ws:
                    pass
            assert info.value.code == 4002

    async def test_server_that_drops_tcp_right_after_close(self, peer: Peer) -> None:
        url = peer.url("/server-close-fast?code=1001&reason=going")
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=5)
            assert info.value.code == 1001

    async def test_abrupt_disconnect_is_1006(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/abort-after?n=1")) as ws:
            await ws.send_str("one")
            with pytest.raises(WebSocketClosed) as info:
                # The echo may or may not make it before the reset; then 1006.
                while True:
                    await ws.recv(timeout=5)
            assert info.value.code == 1006

    async def test_protocol_error_is_the_cause_of_the_close(self, peer: Peer) -> None:
        """README, "Errors": a broken rule (here a message over max_message_size,
        RFC 6455 §7.4.1: 1009) closes the connection, and the WebSocketClosed that
        recv() raises has the ProtocolError as its __cause__, on every call."""
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo"), max_message_size=16) as ws:
            await ws.send_bytes(b"x" * 17)
            for _ in range(2):
                with pytest.raises(WebSocketClosed) as info:
                    await ws.recv(timeout=5)
                assert info.value.code == 1009
                cause = info.value.__cause__
                assert isinstance(cause, ProtocolError)
                assert cause.close_code == 1009
                assert "exceeds the limit of 16" in cause.reason

    async def test_invalid_close_code_is_refused_locally(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            with pytest.raises(ValueError, match="close code"):
                await ws.close(code=1005)
            await ws.send_str("still open")
            assert await ws.recv_str(timeout=5) == "still open"


class TestQueues:
    async def test_coalescing_keeps_every_message_boundary(self, peer: Peer) -> None:
        url = peer.url("/count")
        async with AsyncSession() as s, s.ws_connect(url, coalesce_frames=True) as ws:
            for i in range(1000):
                await ws.send_bytes(b"%d" % i)
            await ws.flush(timeout=10)
            await ws.send_str("count?")
            # The server saw 1000 messages, not a few merged ones.
            assert await ws.recv_str(timeout=5) == "count:1000"

    @pytest.mark.parametrize("coalesce", [False, True])
    async def test_backpressure_bounds_what_send_accepts(self, peer: Peer, coalesce: bool) -> None:
        chunk = b"z" * (64 * 1024)
        url = peer.url("/stall?seconds=5")
        async with AsyncSession() as s:
            ws = await s.ws_connect(url, send_queue_size=4, coalesce_frames=coalesce)
            accepted = 0
            with pytest.raises(WebSocketTimeout):
                for _ in range(2000):  # 125 MiB if nothing pushed back
                    await ws.send_bytes(chunk, timeout=0.5)
                    accepted += 1
            # Socket buffers (kernel, TLS, asyncio's 64 KiB) plus 4 queued
            # messages: a few MiB, far below what was attempted.
            assert accepted * len(chunk) < 48 * MiB
            with pytest.raises(WebSocketTimeout):
                await ws.flush(timeout=0.2)
            ws.terminate()

    async def test_recv_timeout_leaves_connection_usable(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            with pytest.raises(WebSocketTimeout):
                await ws.recv(timeout=0.05)
            with pytest.raises(TimeoutError):  # WebSocketTimeout is a TimeoutError
                await ws.recv_str(timeout=0.05)
            await ws.send_str("later")
            assert await ws.recv_str(timeout=5) == "later"

    async def test_cancelled_recv_loses_no_message(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            waiting = asyncio.create_task(ws.recv())
            await asyncio.sleep(0.01)
            await ws.send_str("first")
            await ws.send_str("second")
            await asyncio.sleep(0.2)  # both echoes are queued; "first" woke the task
            waiting.cancel()
            try:
                result = await waiting
            except asyncio.CancelledError:
                # Cancelled before it ran: "first" must still be there.
                assert await ws.recv_str(timeout=5) == "first"
            else:
                assert result == (b"first", WsFlag.TEXT)
            assert await ws.recv_str(timeout=5) == "second"

    async def test_concurrent_receivers_get_distinct_messages_fifo(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            receivers = [asyncio.create_task(ws.recv_str(timeout=5)) for _ in range(10)]
            await asyncio.sleep(0.01)
            for i in range(10):
                await ws.send_str(str(i))
            results = await asyncio.gather(*receivers)
            # First caller, first message.
            assert results == [str(i) for i in range(10)]

    async def test_many_senders_keep_messages_whole(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:

            async def sender(n: int) -> None:
                for i in range(20):
                    await ws.send_str(f"{n}:{i}:" + "x" * 1000)

            await asyncio.gather(*(sender(n) for n in range(10)))
            got = [await ws.recv_str(timeout=5) for _ in range(200)]
            assert sorted(got) == sorted(
                f"{n}:{i}:" + "x" * 1000 for n in range(10) for i in range(20)
            )
            for n in range(10):  # each sender's messages keep their order
                mine = [m for m in got if m.startswith(f"{n}:")]
                assert mine == [f"{n}:{i}:" + "x" * 1000 for i in range(20)]

    async def test_small_recv_queue_pauses_reading_without_dropping(self, peer: Peer) -> None:
        url = peer.url("/send?n=2000&size=64&type=binary&close=1000")
        async with AsyncSession() as s, s.ws_connect(url, recv_queue_size=2) as ws:
            await asyncio.sleep(0.3)  # let the server push while nobody reads
            received = [payload async for payload in ws]
        assert received == [send_payload(i, 64, "binary") for i in range(2000)]


class TestDrainOnError:
    """DESIGN.md: after a drop, buffered messages are returned only with drain_on_error."""

    @staticmethod
    async def _wait_closed(ws: AsyncWebSocket) -> None:
        for _ in range(500):
            if ws.closed:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("connection did not drop")

    async def test_drain_on_error_returns_buffered_messages_first(self, peer: Peer) -> None:
        url = peer.url("/abort-after?n=2")
        async with AsyncSession() as s, s.ws_connect(url, drain_on_error=True) as ws:
            await ws.send_str("a")
            await ws.send_str("b")
            await self._wait_closed(ws)
            assert await ws.recv_str(timeout=1) == "a"
            assert await ws.recv_str(timeout=1) == "b"
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=1)
            assert info.value.code == 1006

    async def test_default_raises_at_once_after_a_drop(self, peer: Peer) -> None:
        url = peer.url("/abort-after?n=2")
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            await ws.send_str("a")
            await ws.send_str("b")
            await self._wait_closed(ws)
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=1)
            assert info.value.code == 1006


class TestHandshake:
    async def test_subprotocol_negotiation(self, peer: Peer) -> None:
        url = peer.url("/headers")
        async with (
            AsyncSession() as s,
            s.ws_connect(url, subprotocols=["unknown", "superchat", "chat"]) as ws,
        ):
            assert ws.subprotocol == "superchat"
            report = await headers_seen(ws)
            assert report["subprotocol"] == "superchat"

    async def test_headers_origin_params_reach_the_server(self, peer: Peer) -> None:
        session = AsyncSession(headers={"X-Session": "s", "X-Both": "session"})
        async with session as s:
            ws = await s.ws_connect(
                peer.url("/headers?a=1"),
                headers={"X-Call": "c", "X-Both": "call"},
                params={"b": "two words"},
                origin="https://example.com",
            )
            report = await headers_seen(ws)
        assert report["path"] == "/headers?a=1&b=two+words"
        assert header_values(report, "X-Session") == ["s"]
        assert header_values(report, "X-Call") == ["c"]
        assert header_values(report, "X-Both") == ["call"]
        assert header_values(report, "Origin") == ["https://example.com"]
        assert header_values(report, "User-Agent")[0].startswith("rapidws/")

    async def test_basic_auth_bearer_and_url_credentials(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            async with s.ws_connect(peer.url("/auth"), auth=BASIC_CREDENTIALS) as ws:
                assert header_values(await headers_seen(ws), "Authorization")
            bearer = {"Authorization": f"Bearer {BEARER_TOKEN}"}
            async with s.ws_connect(peer.url("/auth"), headers=bearer) as ws:
                assert header_values(await headers_seen(ws), "Authorization") == [
                    f"Bearer {BEARER_TOKEN}"
                ]
            user, password = BASIC_CREDENTIALS
            with_creds = peer.url("/auth").replace("://", f"://{user}:{password}@")
            async with s.ws_connect(with_creds) as ws:
                assert (await headers_seen(ws))["path"] == "/auth"
            with pytest.raises(InvalidStatus) as info:
                await s.ws_connect(peer.url("/auth"), auth=("user", "wrong"))
            assert info.value.status == 401

    async def test_refused_upgrade_carries_status_headers_and_body(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            with pytest.raises(InvalidStatus) as info:
                await s.ws_connect(peer.url("/reject?status=403&body=nope"))
        assert info.value.status == 403
        assert info.value.body == b"nope"
        assert any(name.lower() == "content-length" for name, _ in info.value.headers)
        assert "403" in str(info.value)

    async def test_refusal_with_a_stalled_body_is_invalid_status_at_the_timeout(self) -> None:
        # No peer stalls on purpose: a minimal asyncio server answers 503 and
        # sends 4 of the 1000 body bytes it announces, then waits.
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nContent-Length: 1000\r\n\r\nbusy")
            await reader.read()  # until the client gives up
            writer.close()

        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, AsyncSession() as s:
            with pytest.raises(InvalidStatus) as info:
                await s.ws_connect(f"ws://127.0.0.1:{port}/", timeout=0.5)
        assert info.value.status == 503
        assert ("Retry-After", "5") in info.value.headers
        assert info.value.body == b"busy"

    async def test_not_found_path(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            with pytest.raises(InvalidStatus) as info:
                await s.ws_connect(peer.url("/no-such-path"))
        assert info.value.status == 404


class TestTLS:
    async def test_verified_with_ca_bundle(self, wss_peer: Peer, ca_path: str) -> None:
        async with AsyncSession(verify=ca_path) as s, s.ws_connect(wss_peer.url("/echo")) as ws:
            await ws.send_str("secure")
            assert await ws.recv_str(timeout=5) == "secure"
            transport = ws.transport
            assert transport is not None
            assert transport.get_extra_info("ssl_object").selected_alpn_protocol() in (
                None,
                "http/1.1",
            )

    async def test_untrusted_certificate_fails_naming_tls(self, wss_peer: Peer) -> None:
        from rapidws import ConnectError

        async with AsyncSession() as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(wss_peer.url("/echo"))
        assert info.value.hop == "tls"
        assert "certificate" in str(info.value)

    async def test_verify_false_is_explicit_opt_out(self, wss_peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(wss_peer.url("/echo"), verify=False) as ws:
            await ws.send_str("unverified")
            assert await ws.recv_str(timeout=5) == "unverified"

    async def test_client_certificate(
        self, mtls_url: str, ca_path: str, client_cert_paths: tuple[str, str]
    ) -> None:
        async with (
            AsyncSession(verify=ca_path) as s,
            s.ws_connect(mtls_url, cert=client_cert_paths) as ws,
        ):
            await ws.send_str("with cert")
            assert await ws.recv_str(timeout=5) == "with cert"

    async def test_missing_client_certificate_is_refused(self, mtls_url: str, ca_path: str) -> None:
        async with AsyncSession(verify=ca_path) as s:
            with pytest.raises(WebSocketError):
                ws = await s.ws_connect(mtls_url)
                # TLS 1.3: the refusal may only show on the first read.
                await ws.send_str("x")
                await ws.recv(timeout=5)


class TestSession:
    async def test_leaving_the_session_closes_its_connections(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            sockets = [await s.ws_connect(peer.url("/echo")) for _ in range(5)]
        assert all(ws.closed for ws in sockets)
        assert {ws.close_code for ws in sockets} == {1000}
        with pytest.raises(RuntimeError, match="closed"):
            s.ws_connect(peer.url("/echo"))

    async def test_await_form_and_context_form(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            async with await s.ws_connect(peer.url("/echo")) as ws:
                await ws.send_str("await form")
                assert await ws.recv_str(timeout=5) == "await form"
            assert ws.closed

    async def test_no_task_or_transport_left_behind(self, peer: Peer) -> None:
        before = asyncio.all_tasks()
        async with AsyncSession() as s:
            for _ in range(20):
                async with s.ws_connect(peer.url("/echo")) as ws:
                    await ws.send_str("x")
                    await ws.recv_str(timeout=5)
                transport = ws.transport
                assert transport is not None and transport.is_closing()
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == before

    async def test_json_helpers_take_custom_codecs(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            await ws.send_json({"b": 1}, dumps=lambda o: json.dumps(o, indent=1))
            assert await ws.recv_str(timeout=5) == '{\n "b": 1\n}'
            await ws.send_str('{"k": 2}')
            assert await ws.recv_json(loads=lambda b: json.loads(b)["k"], timeout=5) == 2
