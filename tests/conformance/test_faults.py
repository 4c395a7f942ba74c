"""Fault injection: what a client meets that the Autobahn cases do not cover.

Every server here is a script on raw sockets (tests/conformance/rawserver.py,
written without rapidws's protocol core) and the client is driven through its
public API only. Each test names the rule it checks in its docstring: a section
of RFC 6455, or a documented rule of the API (README.md, "Options" and
"Errors"). Each ends with a clear error or result, never a hang: every test
runs under ``within()`` and every script under a socket timeout, and no task
may outlive a test.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from rapidws import (
    AsyncSession,
    AsyncWebSocket,
    HandshakeError,
    InvalidStatus,
    WebSocketClosed,
    WebSocketTimeout,
    WsFlag,
)
from tests.conformance.rawserver import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    SCRIPT_TIMEOUT,
    TEXT,
    RawConnection,
    RawServer,
    close_payload,
    frame,
)

T = TypeVar("T")

#: Seconds any one test may take before it counts as a hang.
TEST_TIMEOUT = 30.0


async def within(awaitable: Awaitable[T], seconds: float = TEST_TIMEOUT) -> T:
    """``awaitable``'s result, or a test failure after ``seconds``: never a hang."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError as exc:
        if isinstance(exc, WebSocketTimeout):  # the client's own timeout: a result
            raise
        raise AssertionError(f"hung: no result within {seconds} s") from None


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every task the client started has ended when the test is over."""
    yield
    await asyncio.sleep(0)  # let callbacks scheduled by the last close run
    current = asyncio.current_task()
    leaked = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    assert not leaked, f"tasks left running: {leaked}"


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------
# Opening handshake (RFC 6455 §4.1: the client's checks of the server's answer)
# ---------------------------------------------------------------------------


def refuse_handshake(response: Callable[[RawConnection], bytes]) -> Callable[[RawConnection], None]:
    """A script: answer the request with ``response(conn)``, then expect the client
    to close TCP (§4.1: on a bad answer the client MUST _Fail the WebSocket
    Connection_, which closes it)."""

    def script(conn: RawConnection) -> None:
        conn.send(response(conn))
        conn.expect_eof()

    return script


async def connect_error(server: RawServer, **options: object) -> HandshakeError:
    """The HandshakeError that ws_connect to ``server`` raises."""
    async with AsyncSession() as s:
        with pytest.raises(HandshakeError) as info:
            await within(s.ws_connect(server.url("/chat"), **options))  # type: ignore[arg-type]
    return info.value


class TestOpeningHandshake:
    async def test_wrong_accept_key(self) -> None:
        """§4.1: if Sec-WebSocket-Accept is not base64(SHA-1(key + GUID)), the client
        MUST _Fail the WebSocket Connection_."""

        def response(conn: RawConnection) -> bytes:
            return conn.handshake_response(conn.read_request(), accept="dGhlIHNhbXBsZSBub25jZQ==")

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server)
        assert type(exc) is HandshakeError
        assert "Sec-WebSocket-Accept is 'dGhlIHNhbXBsZSBub25jZQ=='" in str(exc)
        assert exc.status == 101

    @pytest.mark.parametrize(
        "framing, body_bytes",
        [
            ("content-length", b"Content-Length: 7\r\n\r\ngo away"),
            ("chunked", b"Transfer-Encoding: chunked\r\n\r\n3\r\ngo \r\n4\r\naway\r\n0\r\n\r\n"),
            ("until-close", b"\r\ngo away"),
        ],
    )
    async def test_refusal_carries_status_headers_and_body(
        self, framing: str, body_bytes: bytes
    ) -> None:
        """§4.1: "If the status code received from the server is not 101, the client
        handles the response per HTTP procedures"; the API rule (README, "Errors"):
        InvalidStatus carries the status, the headers and the body, whatever the
        body's framing (RFC 7230 §3.3.3)."""

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.send(b"HTTP/1.1 403 Forbidden\r\nX-Reason: banned\r\n" + body_bytes)
            if framing == "until-close":
                conn.shutdown_write()
            conn.expect_eof()

        async with RawServer(script) as server:
            exc = await connect_error(server)
        assert type(exc) is InvalidStatus
        assert exc.status == 403
        assert ("X-Reason", "banned") in exc.headers
        assert exc.body == b"go away"

    async def test_refusal_whose_body_never_ends(self) -> None:
        """API rule (README, "Errors"): a refusal carries its status even when the
        server stalls in the middle of the body: at the connect timeout the client
        raises InvalidStatus with the part of the body it has, not a bare timeout."""

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.send(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n"
                b"Content-Length: 1000\r\n\r\nbusy, come"
            )
            conn.expect_eof()

        async with RawServer(script) as server:
            exc = await connect_error(server, timeout=0.5)
        assert type(exc) is InvalidStatus
        assert exc.status == 503
        assert ("Retry-After", "5") in exc.headers
        assert exc.body == b"busy, come"
        assert "cut off after 0.5 s" in str(exc)

    @pytest.mark.parametrize(
        "omit, message",
        [("upgrade", "missing Upgrade header"), ("connection", "missing Connection header")],
    )
    async def test_missing_upgrade_or_connection_header(self, omit: str, message: str) -> None:
        """§4.1: if the response lacks an Upgrade header with the value "websocket",
        or a Connection header with the token "Upgrade", the client MUST _Fail the
        WebSocket Connection_."""

        def response(conn: RawConnection) -> bytes:
            return conn.handshake_response(conn.read_request(), omit=[omit])

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server)
        assert message in str(exc)

    async def test_upgrade_to_another_protocol(self) -> None:
        """§4.1: an Upgrade value that is not a case-insensitive "websocket" fails."""

        def response(conn: RawConnection) -> bytes:
            return conn.handshake_response(
                conn.read_request(), omit=["upgrade"], extra=[("Upgrade", "h2c")]
            )

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server)
        assert "Upgrade header is 'h2c', not 'websocket'" in str(exc)

    async def test_unrequested_extension(self) -> None:
        """§4.1: "If the response includes a Sec-WebSocket-Extensions header field and
        this header field indicates the use of an extension that was not present in
        the client's handshake ..., the client MUST _Fail the WebSocket Connection_"."""

        def response(conn: RawConnection) -> bytes:
            request = conn.read_request()
            assert "sec-websocket-extensions" not in request.headers
            return conn.handshake_response(
                request, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]
            )

        async with RawServer(refuse_handshake(response)) as server:
            # compression=None: nothing offered (the default offers permessage-deflate).
            exc = await connect_error(server, compression=None)
        assert "server accepted extension 'permessage-deflate', which was not offered" in str(exc)

    async def test_unrequested_subprotocol(self) -> None:
        """§4.1: a Sec-WebSocket-Protocol value "that was not present in the client's
        handshake" MUST fail the connection."""

        def response(conn: RawConnection) -> bytes:
            request = conn.read_request()
            assert request.headers["sec-websocket-protocol"] == "chat, superchat"
            return conn.handshake_response(request, extra=[("Sec-WebSocket-Protocol", "mqtt")])

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server, subprotocols=["chat", "superchat"])
        assert "server selected subprotocol 'mqtt', which was not offered" in str(exc)

    async def test_subprotocol_when_none_was_offered(self) -> None:
        """§4.1: with no subprotocol offered, any Sec-WebSocket-Protocol in the answer
        is one "not present in the client's handshake": fail."""

        def response(conn: RawConnection) -> bytes:
            request = conn.read_request()
            assert "sec-websocket-protocol" not in request.headers
            return conn.handshake_response(request, extra=[("Sec-WebSocket-Protocol", "chat")])

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server)
        assert "server selected subprotocol 'chat', none was offered" in str(exc)

    async def test_frames_in_the_same_segment_as_the_101(self) -> None:
        """§4.1 / §5: the server may send frames right after its 101; bytes read with
        the response head belong to the WebSocket stream and must not be lost."""

        def script(conn: RawConnection) -> None:
            request = conn.read_request()
            conn.send(
                conn.handshake_response(request)
                + frame(TEXT, "première".encode())
                + frame(BINARY, b"\x00\xff")
                + frame(TEXT, b"frag", fin=False)
                + frame(CONT, b"ment")
            )
            assert conn.read_message() == (TEXT, b"done")
            conn.send(frame(CLOSE, close_payload(1000)))
            assert conn.read_close().close_code == 1000
            conn.sock.close()

        async with (
            RawServer(script) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            assert await within(ws.recv()) == ("première".encode(), WsFlag.TEXT)
            assert await within(ws.recv()) == (b"\x00\xff", WsFlag.BINARY)
            assert await within(ws.recv()) == (b"fragment", WsFlag.TEXT)
            await ws.send_str("done")
            with pytest.raises(WebSocketClosed) as info:
                await within(ws.recv())
            assert info.value.code == 1000

    async def test_server_closes_before_answering(self) -> None:
        """§4.1: the connection closing before a whole response arrived is a failed
        handshake, reported as HandshakeError (not a hang, not a bare OSError)."""

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgr")
            conn.sock.close()

        async with RawServer(script) as server:
            exc = await connect_error(server)
        assert "connection closed before the handshake completed" in str(exc)

    async def test_server_never_answers_the_upgrade(self) -> None:
        """API rule (README, "Options", ``timeout``): the connect timeout covers the
        HTTP upgrade; WebSocketTimeout names that phase, and the socket is closed."""

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.expect_eof()  # the client gives up and closes

        async with RawServer(script) as server, AsyncSession() as s:
            with pytest.raises(WebSocketTimeout) as info:
                await within(s.ws_connect(server.url(), timeout=0.5))
            assert "during the WebSocket upgrade" in str(info.value)

    async def test_slowloris_response_head_is_cut_off(self) -> None:
        """API rule (README, "Options", ``timeout``): a server that dribbles its
        response head one byte at a time forever is cut off by the connect timeout."""
        sent = []

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ")
            deadline = time.monotonic() + SCRIPT_TIMEOUT
            try:
                while time.monotonic() < deadline:
                    conn.send(b"a")
                    sent.append(1)
                    time.sleep(0.02)
            except OSError:
                return  # the client hung up: expected
            raise AssertionError("the client kept reading the slow head")

        async with RawServer(script) as server, AsyncSession() as s:
            with pytest.raises(WebSocketTimeout) as info:
                await within(s.ws_connect(server.url(), timeout=1.0))
            assert "during the WebSocket upgrade" in str(info.value)
        assert sent  # the head really was dribbling when the timeout struck

    @pytest.mark.parametrize(
        "garbage",
        [b"SSH-2.0-OpenSSH_9.6\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"],
        ids=["ssh-banner", "tls-record"],
    )
    async def test_garbage_instead_of_http(self, garbage: bytes) -> None:
        """RFC 7230 §3.1.2 / RFC 6455 §4.1: an answer that is not an HTTP status line
        fails the handshake with HandshakeError, without a status."""

        def response(conn: RawConnection) -> bytes:
            conn.read_request()
            return garbage

        async with RawServer(refuse_handshake(response)) as server:
            exc = await connect_error(server)
        assert type(exc) is HandshakeError
        assert "not an HTTP status line" in str(exc)
        assert exc.status is None

    @pytest.mark.parametrize(
        "filler, message",
        [
            (lambda i: f"X-Filler-{i}: v\r\n".encode(), "more than 128 header fields"),
            (lambda i: f"X-Big-{i}: {'v' * 2000}\r\n".encode(), "head larger than 65536 bytes"),
            (lambda i: b"X-Long: " if i == 0 else b"v" * 1000, "line longer than 8192 bytes"),
        ],
        ids=["many-fields", "big-head", "long-line"],
    )
    async def test_huge_response_head_is_bounded(
        self, filler: Callable[[int], bytes], message: str
    ) -> None:
        """API rule (protocol/http11.py limits, README "Errors"): a response head past
        the limits (128 fields, 8 KiB lines, 64 KiB in all) fails with HandshakeError
        as soon as the limit is crossed, however much more the server would send."""

        def script(conn: RawConnection) -> None:
            conn.read_request()
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\n")
            sent = i = 0
            try:
                # 64 MiB: more than the socket buffers on both sides can hold,
                # so sending ends with an error only once the client hangs up.
                while sent < 64 * 1024 * 1024:
                    batch = bytearray()
                    while len(batch) < 16384:
                        batch += filler(i)
                        i += 1
                    conn.send(batch)
                    sent += len(batch)
            except OSError:
                return  # the client gave up: expected
            raise AssertionError(f"the client read {sent} bytes of response head")

        async with RawServer(script) as server:
            exc = await connect_error(server)
        assert message in str(exc)


# ---------------------------------------------------------------------------
# Framing and failing the connection (RFC 6455 §5, §7.1.7, §7.4)
# ---------------------------------------------------------------------------


def fail_then_expect_close(send: bytes, code: int) -> Callable[[RawConnection], None]:
    """A script: send ``send`` after the handshake, then expect the client's CLOSE
    with ``code`` and the client closing TCP (§7.1.7: fail = close frame if
    possible, then close the connection)."""

    def script(conn: RawConnection) -> None:
        conn.accept()
        conn.send(send)
        close = conn.read_close()
        assert close.close_code == code, f"close code {close.close_code}, expected {code}"
        assert conn.expect_eof() == b""

    return script


async def recv_failure(server: RawServer, **options: object) -> WebSocketClosed:
    """The WebSocketClosed that ``recv()`` raises on a connection to ``server``."""
    async with AsyncSession() as s, s.ws_connect(server.url(), **options) as ws:  # type: ignore[arg-type]
        with pytest.raises(WebSocketClosed) as info:
            await within(ws.recv())
        assert ws.close_code == info.value.code
    return info.value


class TestFraming:
    async def test_masked_frame_from_server(self) -> None:
        """§5.1: "A client MUST close a connection if it detects a masked frame",
        with 1002 (§7.4.1: protocol error)."""
        masked = frame(TEXT, b"hello", mask=b"\x01\x02\x03\x04")
        async with RawServer(fail_then_expect_close(masked, 1002)) as server:
            exc = await recv_failure(server)
        assert exc.code == 1002
        assert "masked frame from server" in str(exc.__cause__)

    @pytest.mark.parametrize("how", ["fin", "rst"])
    async def test_disconnect_in_the_middle_of_a_frame(self, how: str) -> None:
        """§7.1.5 / §7.4.1: TCP closing without a close frame is reported as 1006
        (abnormal closure), at once; the partial frame is not delivered."""
        ended = threading.Event()

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.send(frame(BINARY, b"whole"))
            assert conn.read_message() == (TEXT, b"got it")
            conn.send(frame(BINARY, b"x" * 100)[:50])  # header and 48 of 100 bytes
            if how == "rst":
                conn.reset()
            else:
                conn.sock.close()
            ended.set()

        async with (
            RawServer(script) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            assert await within(ws.recv()) == (b"whole", WsFlag.BINARY)
            await ws.send_str("got it")
            with pytest.raises(WebSocketClosed) as info:
                await within(ws.recv())
        assert ended.is_set()
        assert info.value.code == 1006

    async def test_length_of_2_63_minus_1(self) -> None:
        """§5.2 / §10.4: a frame header announcing 2**63-1 bytes is over
        max_message_size, so the client fails with 1009 as soon as the header is
        in, without waiting for (or allocating) the payload."""
        header = frame(BINARY, b"", length=2**63 - 1)
        assert len(header) == 10
        async with RawServer(fail_then_expect_close(header, 1009)) as server:
            exc = await recv_failure(server)
        assert exc.code == 1009

    async def test_length_with_the_most_significant_bit_set(self) -> None:
        """§5.2: in a 64-bit length "the most significant bit MUST be 0": 1002, even
        with no size limit at all."""
        header = frame(BINARY, b"", length=2**63 - 1)
        header = header[:2] + bytes([header[2] | 0x80]) + header[3:]
        async with RawServer(fail_then_expect_close(header, 1002)) as server:
            exc = await recv_failure(server, max_message_size=None)
        assert exc.code == 1002

    async def test_invalid_utf8_in_a_middle_fragment(self) -> None:
        """§8.1 and §5.6: invalid UTF-8 in a text message fails the connection with
        1007; the client does so as soon as the bad fragment is in, before the
        final fragment is sent (the script sends it only after the client's CLOSE)."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.send(frame(TEXT, "héllo ".encode(), fin=False))
            conn.send(frame(CONT, b"\xc3\x28 bad", fin=False))
            close = conn.read_close()
            assert close.close_code == 1007
            conn.send(frame(CONT, b" end"))  # too late: must be ignored
            conn.expect_eof()

        async with RawServer(script) as server:
            exc = await recv_failure(server)
        assert exc.code == 1007

    async def test_invalid_utf8_in_the_middle_of_one_frame(self) -> None:
        """§8.1 (Autobahn 6.4.3 "fail fast"): an invalid byte fails the connection
        with 1007 as soon as it arrives, even in the middle of a frame whose end
        has not been sent (the script sends it only after the client's CLOSE)."""
        wire = frame(TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80 end")
        cut = len(wire) - 6  # the header, the valid text, then the invalid sequence

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.send(wire[:cut])
            close = conn.read_close()
            assert close.close_code == 1007
            conn.send(wire[cut:])  # too late: must be ignored
            conn.expect_eof()

        async with RawServer(script) as server:
            exc = await recv_failure(server)
        assert exc.code == 1007

    async def test_pings_are_answered_while_the_application_only_reads(self) -> None:
        """§5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
        response" with the same payload: without the application sending anything."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            for payload in (b"one", b"", b"x" * 125):
                conn.send(frame(PING, payload))
                pong = conn.read_frame()
                assert pong is not None and pong.masked
                assert (pong.opcode, pong.payload) == (PONG, payload)
            conn.send(frame(TEXT, b"after pings"))
            conn.send(frame(CLOSE, close_payload(1000)))
            assert conn.read_close().close_code == 1000

        async with (
            RawServer(script) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            assert await within(ws.recv()) == (b"after pings", WsFlag.TEXT)


# ---------------------------------------------------------------------------
# Closing handshake (RFC 6455 §5.5.1, §7.1)
# ---------------------------------------------------------------------------


class TestClosingHandshake:
    async def test_server_initiated_close_is_echoed(self) -> None:
        """§5.5.1: on a CLOSE the endpoint "MUST send a Close frame in response",
        typically echoing the code; §7.1.1: then the server closes TCP first."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.send(frame(CLOSE, close_payload(4001, b"bye")))
            close = conn.read_close()
            assert close.close_code == 4001
            conn.sock.close()

        async with RawServer(script) as server:
            exc = await recv_failure(server)
        assert (exc.code, exc.message) == (4001, "bye")

    async def test_client_close_waits_for_the_server(self) -> None:
        """§7.1.2 / §7.1.1: close() sends CLOSE, waits for the server's CLOSE and for
        the server to close TCP; close_code is the server's answer."""
        order = []

        def script(conn: RawConnection) -> None:
            conn.accept()
            close = conn.read_close()
            order.append(("client close", close.close_code, close.payload[2:]))
            conn.send(frame(CLOSE, close_payload(1000)))
            conn.sock.close()

        async with RawServer(script) as server, AsyncSession() as s:
            ws = await within(s.ws_connect(server.url()))
            await within(ws.close(1000, b"done"))
            assert ws.close_code == 1000
            await server.wait_finished()
        assert order == [("client close", 1000, b"done")]

    async def test_close_gives_up_on_a_silent_server(self) -> None:
        """API rule (README, ``close_timeout``): a server that never answers the
        CLOSE makes close() drop TCP after the timeout instead of hanging."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            assert conn.read_close().close_code == 1000
            conn.expect_eof()  # never answer: the client must hang up

        async with RawServer(script) as server, AsyncSession() as s:
            ws = await within(s.ws_connect(server.url()))
            await within(ws.close(timeout=0.5))
            assert ws.closed

    @pytest.mark.parametrize(
        "payload, code",
        [
            (b"\x03", 1002),  # §5.5.1: a body must start with a 2-byte code
            (close_payload(1005), 1002),  # §7.4.1: 1005 MUST NOT be sent
            (close_payload(1016), 1002),  # §7.4.2: 1016-2999 are reserved
            (close_payload(1000, b"\xff"), 1007),  # §5.5.1: the reason is UTF-8
        ],
        ids=["one-byte", "1005", "1016", "bad-utf8-reason"],
    )
    async def test_invalid_close_frame_fails_the_connection(
        self, payload: bytes, code: int
    ) -> None:
        """§7.4 / §5.5.1: a CLOSE with an invalid code or reason is a protocol error,
        answered with 1002 (1007 for a reason that is not UTF-8)."""
        async with RawServer(fail_then_expect_close(frame(CLOSE, payload), code)) as server:
            exc = await recv_failure(server)
        assert exc.code == code


# ---------------------------------------------------------------------------
# Flow control and delivery (API rules: README "Options" and "Sending")
# ---------------------------------------------------------------------------


class TestBackpressure:
    async def test_server_that_stops_reading(self) -> None:
        """API rule (README, "Sending"): when the server stops reading, send*()
        waits once send_queue_size messages are queued, and raises WebSocketTimeout
        with ``timeout``: memory stays bounded. Once the server reads again, every
        message accepted by send() arrives, in order."""
        resume = threading.Event()
        received: list[tuple[int, bytes]] = []
        size = 64 * 1024

        def script(conn: RawConnection) -> None:
            conn.accept()
            assert resume.wait(SCRIPT_TIMEOUT), "the client never hit backpressure"
            conn.read_messages(received)

        async with (
            RawServer(script, rcvbuf=4096) as server,
            AsyncSession() as s,
            s.ws_connect(server.url(), send_queue_size=4) as ws,
        ):
            sent = 0
            with pytest.raises(WebSocketTimeout):
                for sent in range(2000):  # 125 MiB if nothing pushed back
                    await within(ws.send_bytes(sent.to_bytes(4, "big") * (size // 4), timeout=0.5))
            # What the kernel's socket buffers take (a few MiB on loopback), the
            # transport's high-water mark and send_queue_size frames: far below 2000.
            assert 0 < sent < 256
            transport = ws.transport
            assert transport is not None
            # The transport buffers up to its high-water mark plus one frame.
            assert transport.get_write_buffer_size() <= 1024 * 1024
            resume.set()
            await within(ws.flush())
        assert len(received) == sent
        assert {opcode for opcode, _ in received} <= {BINARY}
        assert [int.from_bytes(m[:4], "big") for _, m in received] == list(range(sent))


class TestDrainOnError:
    @pytest.mark.parametrize("ending", ["rst", "fin"])
    @pytest.mark.parametrize("drain", [True, False], ids=["drain", "no-drain"])
    async def test_messages_buffered_before_a_drop(self, drain: bool, ending: str) -> None:
        """API rule (README, ``drain_on_error``): after the connection drops, recv()
        returns the messages already buffered, then raises 1006, with
        drain_on_error=True; with False it raises at once."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            for i in range(5):
                conn.send(frame(TEXT, f"message {i}".encode()))
            # The client's PONG proves it parsed everything before the PING.
            conn.send(frame(PING, b"sync"))
            pong = conn.read_frame()
            assert pong is not None and (pong.opcode, pong.payload) == (PONG, b"sync")
            if ending == "rst":
                conn.reset()
            else:
                conn.sock.close()

        async with RawServer(script) as server, AsyncSession() as s:
            ws = await within(s.ws_connect(server.url(), drain_on_error=drain))
            await wait_until(lambda: ws.closed, "the client saw the drop")
            got = []
            with pytest.raises(WebSocketClosed) as info:
                while True:
                    got.append(await within(ws.recv()))
            assert info.value.code == 1006
            await ws.close()
        expected = [(f"message {i}".encode(), WsFlag.TEXT) for i in range(5)] if drain else []
        assert got == expected


class TestCutFrames:
    async def test_control_frames_wait_for_the_frame_being_written(self) -> None:
        """A large frame goes to the socket in pieces; the rest waits while the
        server does not read. A PING sent, and a PONG owed, in the meantime go
        after that frame, never inside it (§5.4: control frames may come
        between frames, and a frame's bytes are contiguous)."""
        big = os.urandom(8 * 1024 * 1024)

        def script(conn: RawConnection) -> None:
            conn.accept()
            time.sleep(0.5)  # not reading: the client's frame is cut
            conn.send(frame(PING, b"server ping"))
            time.sleep(0.2)
            while (got := conn.read_frame()) is not None:
                if got.opcode == CLOSE:
                    conn.send(frame(CLOSE, close_payload(1000)))
                    break

        async with (
            RawServer(script, rcvbuf=64 * 1024) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            await within(ws.send_bytes(big))
            # The path under test: the rest of the frame waits in the queue
            # (on asyncio's own transport; uvloop takes frames whole).
            assert ws._cut or not ws._pieces
            await within(ws.ping(b"client ping"))
            await within(ws.flush())
            conn = server.connections[0]

        frames = [(f.opcode, f.fin, f.payload) for f in conn.frames]
        assert frames[0] == (BINARY, True, big)
        assert sorted(frames[1:3]) == [(PING, True, b"client ping"), (PONG, True, b"server ping")]
        assert [f.opcode for f in conn.frames[3:]] == [CLOSE]

    async def test_flush_returns_once_the_socket_took_everything(self) -> None:
        """Messages the socket took only in part leave the transport paused
        with nothing queued; flush() returns when the server reads the rest,
        woken by resume_writing, not by polling."""
        message = os.urandom(255 * 1024)  # one write each: below the piece size
        sent: list[int] = []
        received: list[tuple[int, bytes]] = []

        def script(conn: RawConnection) -> None:
            conn.accept()
            time.sleep(0.5)  # not reading yet
            conn.read_messages(received)

        async with (
            RawServer(script, rcvbuf=4096) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            while not ws._write_paused and len(sent) < 256:
                await within(ws.send_bytes(message))
                sent.append(1)
            # The path under test: part of a frame waits in the transport,
            # nothing in the send queue.
            assert ws._write_paused and not ws._send_queue
            await within(ws.flush())
        assert received == [(BINARY, message)] * len(sent)


class TestDirectWrites:
    """On asyncio's own TCP transport, small frames go straight to the socket
    while the transport holds nothing, and the transport gets only what the
    socket leaves (see "Sending" in aio/websocket.py)."""

    async def test_small_frames_skip_the_transport(self) -> None:
        """Every message arrives whole and in order, with transport.write
        called for none of them while the socket takes them all."""
        received: list[tuple[int, bytes]] = []

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.read_messages(received)

        writes: list[int] = []
        async with RawServer(script) as server, AsyncSession() as s:
            ws = await within(s.ws_connect(server.url()))
            if ws._sock is None:
                pytest.skip("uvloop's transport takes every write itself")
            transport = ws.transport
            assert transport is not None
            real_write = transport.write

            def counting_write(data: bytes | bytearray | memoryview) -> None:
                writes.append(len(data))
                real_write(data)

            transport.write = counting_write  # type: ignore[method-assign]
            for i in range(100):
                await within(ws.send_bytes(i.to_bytes(4, "big") * 100))
            assert writes == []
            await within(ws.close())
        assert received == [(BINARY, i.to_bytes(4, "big") * 100) for i in range(100)]
        assert len(writes) == 1  # the CLOSE, written as control frames are

    async def test_raised_write_limits_keep_frames_whole(self) -> None:
        """With the transport's limits raised (by the application, through
        ``ws.transport``), it holds bytes without pausing us; a frame must then
        queue behind them instead of going to the socket first (§5.2: a frame's
        bytes are contiguous)."""
        message = os.urandom(32 * 1024)
        received: list[tuple[int, bytes]] = []

        def script(conn: RawConnection) -> None:
            conn.accept()
            # Reading all along, slower than the client writes: the socket
            # keeps freeing room while the transport holds bytes.
            conn.read_messages(received)

        async with (
            RawServer(script, rcvbuf=16 * 1024) as server,
            AsyncSession() as s,
            s.ws_connect(server.url()) as ws,
        ):
            transport = ws.transport
            assert transport is not None
            transport.set_write_buffer_limits(high=64 * 1024 * 1024)
            for _ in range(500):
                await ws.send_bytes(message)  # never waits: nothing pauses us
            await within(ws.flush())
        assert received == [(BINARY, message)] * 500

    async def test_a_refused_write_fails_the_connection(self) -> None:
        """A send the socket refuses (the peer reset the connection) goes to the
        transport, which fails the connection with that error (RFC 6455
        §7.1.7): send_bytes returns, then sending and recv() raise 1006."""

        def script(conn: RawConnection) -> None:
            conn.accept()
            time.sleep(0.1)
            conn.reset()

        async with RawServer(script) as server, AsyncSession() as s:
            ws = await within(s.ws_connect(server.url()))
            # Block the loop through the reset so that it cannot see it first:
            # the send meets it on the socket.
            time.sleep(0.4)
            await ws.send_bytes(b"into a reset connection")
            with pytest.raises(WebSocketClosed) as info:
                await within(ws.recv())
            assert info.value.code == 1006
            assert "reset" in str(info.value) or "pipe" in str(info.value).lower()
            with pytest.raises(WebSocketClosed):
                await ws.send_bytes(b"after the failure")
            assert ws.closed
            assert ws.transport is not None and ws.transport.is_closing()


class TestCoalescing:
    async def test_each_message_keeps_its_frames(self) -> None:
        """API rule (README, ``coalesce_frames``): frames written together keep their
        boundaries; the server sees exactly the messages sent, each its own frame,
        and a fragmented message keeps its fragments (§5.4)."""
        messages: list[tuple[int, bytes]] = []

        def script(conn: RawConnection) -> None:
            conn.accept()
            conn.read_messages(messages)

        async def send_all(ws: AsyncWebSocket) -> None:
            for i in range(200):
                if i % 2:
                    await ws.send_bytes(i.to_bytes(2, "big"))
                else:
                    await ws.send_str(f"text {i}")
            await ws.send(b"frag", WsFlag.TEXT | WsFlag.CONT)
            await ws.send(b"ment", WsFlag.TEXT | WsFlag.CONT)
            await ws.send(b"ed", WsFlag.TEXT)

        async with (
            RawServer(script) as server,
            AsyncSession() as s,
            s.ws_connect(server.url(), coalesce_frames=True, send_queue_size=64) as ws,
        ):
            await within(send_all(ws))
            await within(ws.flush())
            conn = server.connections[0]

        expected = [
            (BINARY, i.to_bytes(2, "big")) if i % 2 else (TEXT, f"text {i}".encode())
            for i in range(200)
        ]
        assert messages == [*expected, (TEXT, b"fragmented")]
        data_frames = [f for f in conn.frames if f.opcode in (TEXT, BINARY, CONT)]
        assert len(data_frames) == 203
        assert [f.fin for f in data_frames[-3:]] == [False, False, True]
        assert all(f.masked for f in conn.frames)  # §5.3: every client frame is masked
