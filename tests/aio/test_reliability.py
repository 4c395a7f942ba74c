"""Faults, cancellation, concurrency, resource hygiene and credential hygiene.

Each test drives the public API against a real peer (the third-party servers
of tests/peers, or a hand-written raw server where a fault must be scripted)
and names the rule it guards.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import gc
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from rapidws import (
    AsyncSession,
    AsyncWebSocket,
    ConnectError,
    WebSocketClosed,
    WebSocketTimeout,
    WsFlag,
)
from tests.aio.raw import (
    GUID,
    StartServer,
    accept_upgrade,
    has_ipv6_loopback,
    text_frame,
    tls_server,
)
from tests.peers.certs import TLSFiles
from tests.peers.launcher import Peer, start_peer


def is_open(ws: AsyncWebSocket) -> bool:
    # A call, so the type checker does not carry an earlier narrowing over.
    transport = ws.transport
    return not ws.closed and transport is not None and not transport.is_closing()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` where nothing listens (the kernel just handed it out)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class TestFaults:
    @pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
    async def test_refused_connection_names_the_tcp_hop(self, host: str) -> None:
        if ":" in host and not has_ipv6_loopback():
            pytest.skip("no IPv6 loopback on this machine")
        port = closed_port(host)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        async with AsyncSession() as s:
            with pytest.raises(ConnectError):  # warm-up: a loop opens some fds lazily
                await s.ws_connect(f"ws://{netloc}/")
            fds = open_fds()
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(f"ws://{netloc}/")
        assert (info.value.hop, info.value.host) == ("tcp", host)
        assert str(info.value) == f"connection to {host} refused"
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
        assert open_fds() <= fds

    async def test_upgrade_request_larger_than_the_socket_buffer_arrives_whole(
        self, raw_server: StartServer
    ) -> None:
        """The request goes out as soon as TCP is up; what the socket does not
        take then follows through the transport, in order."""
        big = "v" * (8 * 1024 * 1024)

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    return
                head += chunk
            fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
            intact = fields.get(b"X-Big") == big.encode() and head.endswith(b"\r\n\r\n")
            key = fields[b"Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            writer.write(text_frame(b"intact" if intact else b"damaged"))
            await writer.drain()
            await reader.read(1)  # the client's CLOSE: drop TCP, as a server does
            writer.close()

        url = await raw_server(handler)
        async with AsyncSession() as s, s.ws_connect(url, headers={"X-Big": big}) as ws:
            assert await ws.recv(timeout=10) == (b"intact", WsFlag.TEXT)

    async def test_reset_in_the_middle_of_a_message(self, raw_server: StartServer) -> None:
        """A TCP reset mid-frame ends recv() with 1006, never a hang or a partial message."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_upgrade(reader, writer)
            writer.write(text_frame(b"whole"))
            writer.write(b"\x82\x7e\x10\x00" + b"x" * 100)  # 4096-byte frame, 100 sent
            await writer.drain()
            writer.transport.abort()

        url = await raw_server(handler)
        async with AsyncSession() as s, s.ws_connect(url, drain_on_error=True) as ws:
            assert await ws.recv(timeout=5) == (b"whole", WsFlag.TEXT)
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=5)
            assert info.value.code == 1006

    async def test_half_close_without_close_frame(self, raw_server: StartServer) -> None:
        """The server sends FIN (no CLOSE frame): buffered messages, then 1006."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_upgrade(reader, writer)
            writer.write(text_frame(b"one") + text_frame(b"two"))
            writer.write_eof()
            await asyncio.sleep(5)

        url = await raw_server(handler)
        async with AsyncSession() as s, s.ws_connect(url, drain_on_error=True) as ws:
            assert [await ws.recv_str(timeout=5) for _ in range(2)] == ["one", "two"]
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=5)
            assert info.value.code == 1006
            assert "without a close frame" in info.value.message

    async def test_server_killed_mid_stream(self, tls_files: TLSFiles, tmp_path: Path) -> None:
        """SIGKILL of the server process: the client notices and says 1006."""
        with start_peer("websockets", log_dir=tmp_path) as process:
            url = process.peer.url("/send?n=100000000&size=1024&type=binary")
            async with AsyncSession() as s, s.ws_connect(url) as ws:
                for _ in range(100):
                    await ws.recv(timeout=10)
                os.kill(process.process.pid, signal.SIGKILL)
                with pytest.raises(WebSocketClosed) as info:
                    while True:
                        await ws.recv(timeout=10)
                assert info.value.code == 1006

    async def test_tls_hostname_mismatch_names_the_reason(
        self, raw_server: StartServer, tmp_path: Path
    ) -> None:
        server_context, ca_file = tls_server(tmp_path, "other.example")
        url = await raw_server(drain_then_close, ssl_context=server_context)
        async with AsyncSession(verify=ca_file) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(url)
        assert info.value.hop == "tls"
        assert "127.0.0.1" in str(info.value)
        assert "mismatch" in str(info.value).lower()

    async def test_expired_certificate_names_the_reason(
        self, raw_server: StartServer, tmp_path: Path
    ) -> None:
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        server_context, ca_file = tls_server(
            tmp_path, "127.0.0.1", not_before=past, not_after=past.replace(month=2)
        )
        url = await raw_server(drain_then_close, ssl_context=server_context)
        async with AsyncSession(verify=ca_file) as s:
            with pytest.raises(ConnectError) as info:
                await s.ws_connect(url)
        assert info.value.hop == "tls"
        assert "expired" in str(info.value)


async def drain_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that reads until EOF, answers nothing, then closes its socket."""
    await reader.read()
    writer.close()


class TestConnectTimeouts:
    async def test_silent_server_times_out_in_the_upgrade_phase(
        self, raw_server: StartServer
    ) -> None:
        url = await raw_server(drain_then_close)
        fds = open_fds()
        async with AsyncSession(timeout=0.3) as s:
            with pytest.raises(WebSocketTimeout, match="during the WebSocket upgrade"):
                await s.ws_connect(url)
            task = asyncio.current_task()
            assert task is not None
            if hasattr(task, "cancelling"):  # the timeout left no cancellation behind
                assert task.cancelling() == 0
        await asyncio.sleep(0.05)
        assert open_fds() <= fds

    async def test_slowloris_response_is_cut_off(self, raw_server: StartServer) -> None:
        async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
            for _ in range(1000):
                writer.write(b"X")
                await asyncio.sleep(0.01)

        url = await raw_server(dribble)
        async with AsyncSession(timeout=0.3) as s:
            with pytest.raises(WebSocketTimeout, match="WebSocket upgrade"):
                await s.ws_connect(url)

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 cannot count cancellations")
    async def test_cancellation_arriving_with_the_deadline_still_cancels(
        self, raw_server: StartServer
    ) -> None:
        url = await raw_server(drain_then_close)
        loop = asyncio.get_running_loop()
        async with AsyncSession(timeout=0.05) as s:
            connecting = asyncio.create_task(s.ws_connect(url).__aenter__())
            await asyncio.sleep(0.01)  # now waiting for the upgrade response
            loop.call_later(0.1, connecting.cancel)  # after the deadline, before we look
            time.sleep(0.3)  # the loop sees both at once: deadline first, then the cancel
            with pytest.raises(asyncio.CancelledError):
                await connecting
            task = asyncio.current_task()
            assert task is not None
            if sys.version_info >= (3, 11):  # for the type checker: skipped on 3.10
                assert task.cancelling() == 0

    async def test_outside_cancellation_is_not_a_timeout(self, raw_server: StartServer) -> None:
        url = await raw_server(drain_then_close)
        async with AsyncSession(timeout=10) as s:
            connecting = asyncio.create_task(s.ws_connect(url).__aenter__())
            await asyncio.sleep(0.1)
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting


class TestCancellation:
    async def test_cancelled_send_while_queue_full_leaves_connection_usable(
        self, peer: Peer
    ) -> None:
        chunk = b"s" * (256 * 1024)
        async with AsyncSession() as s:
            ws = await s.ws_connect(peer.url("/stall?seconds=1.5"), send_queue_size=1)
            blocked = None
            for _ in range(400):
                task = asyncio.create_task(ws.send_bytes(chunk))
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                if not task.done():
                    blocked = task
                    break
                await task
            assert blocked is not None, "the stalled server never pushed back"
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            assert not ws.closed
            ws.terminate()

    async def test_cancelled_flush_and_close(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            ws = await s.ws_connect(peer.url("/stall?seconds=30"), send_queue_size=2)
            with pytest.raises(WebSocketTimeout):
                while True:
                    await ws.send_bytes(b"f" * 65536, timeout=0.3)
            flushing = asyncio.create_task(ws.flush())
            await asyncio.sleep(0.05)
            flushing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await flushing
            assert is_open(ws)  # a cancelled flush changes nothing
            closing = asyncio.create_task(ws.close())
            await asyncio.sleep(0.05)
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
            # A cancelled close() drops the connection rather than leaving it half-closed.
            for _ in range(200):
                if not is_open(ws):
                    break
                await asyncio.sleep(0.01)
            assert not is_open(ws)
            with pytest.raises(WebSocketClosed):
                await ws.send_str("after")

    async def test_close_twice_and_concurrently(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            ws = await s.ws_connect(peer.url("/echo"))
            await asyncio.gather(ws.close(), ws.close(), ws.close(code=4000))
            assert ws.close_code == 1000
            await ws.close()
            assert ws.close_code == 1000

    async def test_terminate_from_another_thread(self, peer: Peer) -> None:
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            waiting = asyncio.create_task(ws.recv(timeout=10))
            await asyncio.sleep(0.01)
            thread = threading.Thread(target=ws.terminate)
            thread.start()
            thread.join()
            with pytest.raises(WebSocketClosed) as info:
                await waiting
            assert info.value.code == 1006


class TestResourceHygiene:
    async def test_1000_connections_leave_no_fd_task_or_timer(self, peer: Peer) -> None:
        url = peer.url("/echo")
        loop = asyncio.get_running_loop()
        # Warm-up: the loop creates some resources lazily.
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            await ws.send_str("warm")
            await ws.recv(timeout=5)
        fds = open_fds()
        tasks = asyncio.all_tasks()

        async def one(s: AsyncSession) -> None:
            async with s.ws_connect(url, ping_interval=30) as ws:
                await ws.send_str("x")
                assert await ws.recv_str(timeout=10) == "x"

        async with AsyncSession() as s:
            for _ in range(20):
                await asyncio.gather(*(one(s) for _ in range(50)))
        await asyncio.sleep(0.05)
        gc.collect()
        assert asyncio.all_tasks() == tasks
        assert open_fds() <= fds
        scheduled = getattr(loop, "_scheduled", None)  # asyncio's timer heap; uvloop has none
        if scheduled is not None:
            assert all(handle.cancelled() for handle in scheduled)

    async def test_recv_queue_bounds_memory_when_nobody_reads(self, peer: Peer) -> None:
        """recv_queue_size stops reading: a flooding server is pushed back by TCP."""
        url = peer.url("/send?n=30000&size=1024&type=binary")  # 30 MiB
        async with AsyncSession() as s:
            tracemalloc.start()
            try:
                ws = await s.ws_connect(url, recv_queue_size=64)
                await asyncio.sleep(1.0)  # the server floods, nobody reads
                held, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert held < 8 * 1024 * 1024
            # Everything still arrives, in order, once the application reads.
            for i in range(300):
                data, _ = await ws.recv(timeout=10)
                assert data[:8] == i.to_bytes(8, "big")
            ws.terminate()

    async def test_short_soak_keeps_memory_flat(self, peer: Peer) -> None:
        """20k pipelined round trips; what stays allocated afterwards is small.

        The long version (1 million messages) is `python scripts/soak.py`.
        """
        async with AsyncSession() as s, s.ws_connect(peer.url("/echo")) as ws:
            payload = b"m" * 64

            async def round_trips(n: int) -> None:
                for _ in range(n // 100):
                    for _ in range(100):
                        await ws.send_bytes(payload)
                    for _ in range(100):
                        await ws.recv(timeout=10)

            await round_trips(2000)  # warm-up
            gc.collect()
            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                await round_trips(20000)
                gc.collect()
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert after - before < 512 * 1024


class TestCredentialHygiene:
    async def test_credentials_never_reach_logs_or_errors(
        self, peer: Peer, caplog: pytest.LogCaptureFixture
    ) -> None:
        secret = "s3cr3t-pa55"
        caplog.set_level(logging.DEBUG, logger="rapidws")
        async with AsyncSession(headers={"Cookie": f"session={secret}"}) as s:
            with pytest.raises(Exception) as info:
                await s.ws_connect(peer.url("/reject?status=401"), auth=("user", secret))
            async with s.ws_connect(peer.url("/echo"), auth=("user", secret)) as ws:
                await ws.send_str("hello")
                await ws.recv(timeout=5)
                assert secret not in repr(ws)
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
        assert secret not in caplog.text

    async def test_header_injection_is_refused_before_any_io(self, peer: Peer) -> None:
        async with AsyncSession() as s:
            for headers in ({"X-Evil": "a\r\nInjected: 1"}, {"Bad Name": "v"}):
                with pytest.raises(ValueError):
                    await s.ws_connect(peer.url("/echo"), headers=headers)

    async def test_verification_is_on_unless_turned_off(self, wss_peer: Peer) -> None:
        # Default (no verify=): the test CA is not trusted, so this must fail.
        async with AsyncSession() as s:
            with pytest.raises(ConnectError):
                await s.ws_connect(wss_peer.url("/echo"))
            async with s.ws_connect(wss_peer.url("/echo"), verify=False) as ws:
                await ws.send_str("explicit opt-out")
                assert await ws.recv_str(timeout=5) == "explicit opt-out"
