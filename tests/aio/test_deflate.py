"""permessage-deflate (RFC 7692) through the public API, against real servers.

The websockets, aiohttp and Node ws servers negotiate it on ``/deflate`` (and on
any path with ``deflate=1``); the query sets their own parameters (see
tests/peers/launcher.py). A byte-counting TCP relay shows what goes over the
wire, and a scripted raw-socket server plays a hostile peer: a decompression
bomb, a response the client did not allow, RSV1 where it may not be.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rapidws import (
    AsyncSession,
    AsyncWebSocket,
    DeflateOptions,
    HandshakeError,
    PerMessageDeflate,
    WebSocketClosed,
    WsFlag,
)
from rapidws.protocol.deflate import CompressionOption
from rapidws.protocol.frames import Opcode, build_frame, parse_close_payload
from rapidws.protocol.handshake import accept_key
from rapidws.protocol.parser import FrameParser
from tests.peers.launcher import Peer, PeerName

MiB = 1024 * 1024
TIMEOUT = 30.0
WORDS = b"the quick brown fox jumps over a lazy dog while seven wizards box".split()

# What each server answers to the browser's offer on /deflate.
DEFAULT_AGREEMENT: dict[PeerName, PerMessageDeflate] = {
    "websockets": PerMessageDeflate(False, False, 12, 12),  # its serve() defaults
    "aiohttp": PerMessageDeflate(False, False, 15, 15),
    "ws": PerMessageDeflate(False, False, 15, 15),
}


def sample(size: int, seed: int, *, text: bool = False) -> bytes:
    """``size`` bytes of words; binary samples end in incompressible noise."""
    rnd = random.Random(seed)
    words = b" ".join(rnd.choices(WORDS, k=size // 4 + 1))[:size]
    if text:
        return words
    noise = rnd.randbytes(size // 4)
    return words[: size - len(noise)] + noise


@contextlib.asynccontextmanager
async def connect(url: str, **options: Any) -> AsyncIterator[AsyncWebSocket]:
    async with AsyncSession() as s, s.ws_connect(url, **options) as ws:
        yield ws


async def echo(ws: AsyncWebSocket, payload: bytes, flags: WsFlag) -> None:
    await ws.send(payload, flags)
    data, received = await ws.recv(timeout=TIMEOUT)
    assert received == flags
    assert len(data) == len(payload)
    assert data == payload


async def header_sent(url: str, name: str, **options: Any) -> list[str]:
    """Values of the request header ``name`` as the /headers peer received it."""
    async with connect(url, **options) as ws:
        report = await ws.recv_json(timeout=TIMEOUT)
    return [value for key, value in report["headers"] if key.lower() == name.lower()]


# ---------------------------------------------------------------------------
# A TCP relay that counts bytes, and a scripted server
# ---------------------------------------------------------------------------


@dataclass
class Relay:
    """Forwards one port to a peer and counts the bytes going each way."""

    host: str
    port: int
    to_server: int = 0
    to_client: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}{path}"

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        for task in (
            asyncio.create_task(self._pipe(reader, upstream_writer, up=True)),
            asyncio.create_task(self._pipe(upstream_reader, writer, up=False)),
        ):
            self._tasks.add(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.to_server += len(data)
                else:
                    self.to_client += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@dataclass
class ScriptedServer:
    """Accepts one client, answers 101 with ``extensions``, then sends ``frames``.

    ``close_code`` is the code of the CLOSE frame the client sent back.
    """

    extensions: str | None
    frames: bytes = b""
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            response = (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n"
            )
            if self.extensions is not None:
                response += f"Sec-WebSocket-Extensions: {self.extensions}\r\n"
            writer.write(response.encode() + b"\r\n" + self.frames)
            parser = FrameParser(expect_masked=True, rsv1_allowed=True)
            while self.close_code is None and (data := await reader.read(65536)):
                for frame in parser.feed(data):
                    if frame.opcode == Opcode.CLOSE:
                        self.close_code = parse_close_payload(frame.payload)[0]
                        writer.write(build_frame(Opcode.CLOSE, frame.payload[:2]))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()


def compressed(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A server frame carrying ``payload`` deflated (RSV1 set), tail removed."""
    encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = encoder.compress(payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
    return build_frame(opcode, data[:-4], fin=fin, rsv1=True)


# ---------------------------------------------------------------------------
# Negotiation (RFC 7692 §5, §7.1)
# ---------------------------------------------------------------------------


class TestNegotiation:
    async def test_default_offer_is_the_browsers(self, peer: Peer) -> None:
        assert await header_sent(peer.url("/headers"), "Sec-WebSocket-Extensions") == [
            "permessage-deflate; client_max_window_bits"
        ]

    async def test_compression_none_offers_nothing(self, peer: Peer) -> None:
        url = peer.url("/headers?deflate=1")
        assert await header_sent(url, "Sec-WebSocket-Extensions", compression=None) == []
        async with connect(peer.url("/deflate"), compression=None) as ws:
            assert ws.extensions == []
            await echo(ws, b"plain " * 100, WsFlag.BINARY)

    async def test_several_offers_go_in_preference_order(self, peer: Peer) -> None:
        offers = [DeflateOptions(client_no_context_takeover=True), DeflateOptions()]
        assert await header_sent(
            peer.url("/headers"), "Sec-WebSocket-Extensions", compression=offers
        ) == [
            "permessage-deflate; client_no_context_takeover; client_max_window_bits, "
            "permessage-deflate; client_max_window_bits"
        ]

    async def test_servers_that_decline_leave_it_off(self, peer: Peer) -> None:
        async with connect(peer.url("/echo")) as ws:
            assert ws.extensions == []
            assert "Sec-WebSocket-Extensions" not in (ws.response.headers if ws.response else {})

    async def test_default_agreement(self, any_peer: Peer, ca_path: str) -> None:
        async with connect(any_peer.url("/deflate"), verify=ca_path) as ws:
            assert ws.extensions == [DEFAULT_AGREEMENT[any_peer.name]]
            assert ws.extensions[0].offer == DeflateOptions()
            await echo(ws, sample(10_000, 1), WsFlag.BINARY)

    async def test_server_side_parameters(self, peer: Peer) -> None:
        if not peer.supports("deflate-params"):
            pytest.skip(f"{peer.name} has no server-side permessage-deflate parameters")
        url = peer.url(
            "/deflate?server_no_context_takeover=1&client_no_context_takeover=1"
            "&server_max_window_bits=10&client_max_window_bits=9"
        )
        async with connect(url) as ws:
            assert ws.extensions == [PerMessageDeflate(True, True, 10, 9)]
            assert str(ws.extensions[0]) == (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=10; client_max_window_bits=9"
            )

    async def test_client_requested_parameters(self, peer: Peer) -> None:
        offer = DeflateOptions(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=11,
        )
        async with connect(peer.url("/deflate"), compression=offer) as ws:
            assert ws.extensions == [PerMessageDeflate(True, True, 10, 11)]
            assert ws.extensions[0].offer is offer

    async def test_the_server_picks_among_several_offers(self, peer: Peer) -> None:
        # websockets and aiohttp decline an 8-bit server window (zlib cannot
        # compress with it) and take the second offer; ws takes the first.
        small = DeflateOptions(server_max_window_bits=8)
        plain = DeflateOptions()
        async with connect(peer.url("/deflate"), compression=[small, plain]) as ws:
            [extension] = ws.extensions
            if peer.name == "ws":
                assert extension.offer is small
                assert extension.server_max_window_bits == 8
            else:
                assert extension.offer is plain
                assert extension == DEFAULT_AGREEMENT[peer.name]
            await echo(ws, sample(100_000, 2), WsFlag.BINARY)

    @pytest.mark.parametrize(
        ("response", "offer", "reason"),
        [
            (
                "permessage-deflate; client_max_window_bits=10",
                DeflateOptions(client_max_window_bits=False),
                "client_max_window_bits=10 was not offered",
            ),
            (
                "permessage-deflate; server_max_window_bits=12",
                DeflateOptions(server_max_window_bits=10),
                "server_max_window_bits=12 is larger than the requested 10",
            ),
            (
                "permessage-deflate",
                DeflateOptions(server_no_context_takeover=True),
                "server_no_context_takeover was requested but not granted",
            ),
            ("permessage-deflate; server_max_window_bits=16", DeflateOptions(), "not a window"),
            ("permessage-deflate; mystery", DeflateOptions(), "unknown parameter mystery"),
        ],
    )
    async def test_response_the_client_did_not_allow(
        self, response: str, offer: DeflateOptions, reason: str
    ) -> None:
        async with ScriptedServer(response) as server:
            with pytest.raises(HandshakeError, match=reason) as info:
                async with connect(server.url, compression=offer):
                    pass
            await asyncio.wait_for(server.closed.wait(), TIMEOUT)
        assert info.value.status == 101
        assert ("Sec-WebSocket-Extensions", response) in info.value.headers

    async def test_accepted_though_not_offered(self) -> None:
        async with ScriptedServer("permessage-deflate") as server:
            with pytest.raises(HandshakeError, match="'permessage-deflate', which was not offered"):
                async with connect(server.url, compression=None):
                    pass

    @pytest.mark.parametrize(
        ("compression", "error", "message"),
        [
            ("gzip", ValueError, "compression must be 'deflate' or None, got 'gzip'"),
            ([], ValueError, "use None to offer no compression"),
            ({"level": 1}, TypeError, "compression must be 'deflate', None, a DeflateOptions"),
        ],
    )
    async def test_invalid_option_fails_before_any_io(
        self, compression: Any, error: type[Exception], message: str
    ) -> None:
        async with AsyncSession() as s:
            with pytest.raises(error, match=message):
                s.ws_connect("ws://127.0.0.1:9/", compression=compression)


# ---------------------------------------------------------------------------
# Messages both ways: sizes x window bits x context takeover
# ---------------------------------------------------------------------------

# (id, query of /deflate, client offer, whether the server side needs deflate-params)
VARIANTS: list[tuple[str, str, CompressionOption, bool]] = [
    ("defaults", "threshold=0", "deflate", False),
    (
        "server-resets-both",
        "server_no_context_takeover=1&client_no_context_takeover=1&threshold=0",
        "deflate",
        True,
    ),
    ("server-small-windows", "server_max_window_bits=9&client_max_window_bits=8", "deflate", True),
    (
        "client-asks-everything",
        "threshold=0",
        DeflateOptions(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=10,
        ),
        False,
    ),
    ("client-fast-small-raw", "", DeflateOptions(level=1, mem_level=9, min_size=200), False),
    ("client-full-window", "threshold=0", DeflateOptions(client_max_window_bits=False), False),
]
SIZES = [0, 1, 125, 4096, 65537, MiB]


class TestMatrix:
    @pytest.mark.parametrize(
        ("query", "compression", "server_side"),
        [pytest.param(q, c, s, id=i) for i, q, c, s in VARIANTS],
    )
    async def test_echo_every_size_twice(
        self, peer: Peer, query: str, compression: CompressionOption, server_side: bool
    ) -> None:
        if server_side and not peer.supports("deflate-params"):
            pytest.skip(f"{peer.name} has no server-side permessage-deflate parameters")
        url = peer.url(f"/deflate?{query}")
        async with connect(url, compression=compression, max_message_size=2 * MiB) as ws:
            assert len(ws.extensions) == 1
            # Twice each: the second time, context takeover can refer to the first.
            for size in SIZES:
                for seed in (size, size):
                    await echo(ws, sample(size, seed, text=True), WsFlag.TEXT)
                    await echo(ws, sample(size, seed), WsFlag.BINARY)

    async def test_16_mib_both_ways(self, peer: Peer) -> None:
        text = sample(16 * MiB, 16, text=True)
        binary = sample(16 * MiB, 17)
        async with connect(peer.url("/deflate"), max_message_size=32 * MiB) as ws:
            assert ws.extensions
            await echo(ws, text, WsFlag.TEXT)
            await echo(ws, binary, WsFlag.BINARY)


class TestOnTheWire:
    """The byte-counting relay shows compression, and context takeover, at work."""

    async def test_compressed_both_ways(self, peer: Peer) -> None:
        payload = sample(MiB, 3, text=True)
        async with Relay(peer.host, peer.port) as relay:
            async with connect(relay.url("/deflate"), max_message_size=2 * MiB) as ws:
                await echo(ws, payload, WsFlag.TEXT)
            # Words from a 12-word list: about 3 bits a byte, so < 1/2 of the size.
            assert relay.to_server < MiB // 2
            assert relay.to_client < MiB // 2
        async with Relay(peer.host, peer.port) as relay:
            async with connect(relay.url("/deflate"), compression=None) as ws:
                await echo(ws, payload, WsFlag.TEXT)
            assert relay.to_server > MiB
            assert relay.to_client > MiB

    @pytest.mark.parametrize("reset", [False, True], ids=["takeover", "no-takeover"])
    async def test_context_takeover_as_negotiated(self, peer: Peer, reset: bool) -> None:
        # The same incompressible 2 KiB forty times: with context takeover each
        # repeat is a reference to the previous one (2 KiB fits every window
        # here: websockets asks for 4 KiB ones).
        if reset and not peer.supports("deflate-params"):
            pytest.skip(f"{peer.name} has no server-side permessage-deflate parameters")
        payload = random.Random(8).randbytes(2048)
        query = "threshold=0" + ("&server_no_context_takeover=1" if reset else "")
        offer = DeflateOptions(client_no_context_takeover=reset)
        async with (
            Relay(peer.host, peer.port) as relay,
            connect(relay.url(f"/deflate?{query}"), compression=offer) as ws,
        ):
            [extension] = ws.extensions
            assert extension.client_no_context_takeover is reset
            assert extension.server_no_context_takeover is reset
            for _ in range(40):
                await echo(ws, payload, WsFlag.BINARY)
        if reset:
            assert relay.to_server > 40 * 2048
            assert relay.to_client > 40 * 2048
        else:
            assert relay.to_server < 4 * 2048
            assert relay.to_client < 4 * 2048

    async def test_fragmented_compressed_messages_from_the_server(self, peer: Peer) -> None:
        if not peer.supports("fragment"):
            pytest.skip(f"{peer.name} cannot send fragmented messages")
        payload = sample(256 * 1024, 5, text=True)
        async with Relay(peer.host, peer.port) as relay:
            url = relay.url("/fragment?n=4&deflate=1&threshold=0")
            async with connect(url) as ws:
                assert ws.extensions
                await echo(ws, payload, WsFlag.TEXT)
                await echo(ws, payload[:3], WsFlag.BINARY)
            assert relay.to_client < len(payload) // 2

    async def test_fragmented_compressed_messages_to_the_server(self, peer: Peer) -> None:
        payload = sample(256 * 1024, 6, text=True)
        async with Relay(peer.host, peer.port) as relay:
            async with connect(relay.url("/deflate?threshold=0")) as ws:
                step = len(payload) // 4
                for start in range(0, len(payload) - step, step):
                    await ws.send(payload[start : start + step], WsFlag.TEXT | WsFlag.CONT)
                await ws.send(payload[len(payload) - step :], WsFlag.TEXT)
                assert await ws.recv(timeout=TIMEOUT) == (payload, WsFlag.TEXT)
            assert relay.to_server < len(payload) // 2

    async def test_streamed_fragments_are_inflated_piece_by_piece(self, peer: Peer) -> None:
        if not peer.supports("fragment"):
            pytest.skip(f"{peer.name} cannot send fragmented messages")
        payload = sample(100_000, 7)
        url = peer.url("/fragment?n=3&deflate=1&threshold=0")
        async with connect(url, stream_fragments=True) as ws:
            await ws.send_bytes(payload)
            pieces = []
            while True:
                data, flags = await ws.recv_fragment(timeout=TIMEOUT)
                pieces.append(data)
                if not flags & WsFlag.CONT:
                    break
            assert len(pieces) == 3
            assert b"".join(pieces) == payload


# ---------------------------------------------------------------------------
# Safety: the limit is on the decompressed size; RSV1 only where it may be
# ---------------------------------------------------------------------------


def bomb(inflated: int) -> bytes:
    """A compressed message that inflates to ``inflated`` zero bytes, in ~1/1000 of it.

    One MiB of zeros is deflated after one MiB of zeros; that block refers only
    to the previous 32 KiB, so it can be repeated without compressing it again.
    """
    encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = encoder.compress(bytes(MiB)) + encoder.flush(zlib.Z_SYNC_FLUSH)
    repeat = encoder.compress(bytes(MiB)) + encoder.flush(zlib.Z_SYNC_FLUSH)
    return first + repeat * (inflated // MiB - 1)


class TestSafety:
    def test_bomb_inflates_as_announced(self) -> None:
        data = bomb(64 * MiB)
        assert len(data) < 128 * 1024
        assert zlib.decompressobj(-15).decompress(data) == bytes(64 * MiB)

    async def test_bomb_fails_with_1009_in_bounded_memory(self) -> None:
        # About 1 MiB on the wire, 1 GiB inflated, against the default 4 MiB limit.
        payload = bomb(1024 * MiB)
        frame = build_frame(Opcode.BINARY, payload[:-4], rsv1=True)
        async with ScriptedServer("permessage-deflate", frame) as server:
            tracemalloc.start()
            try:
                async with connect(server.url) as ws:
                    with pytest.raises(WebSocketClosed) as info:
                        await ws.recv(timeout=TIMEOUT)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            await asyncio.wait_for(server.closed.wait(), TIMEOUT)
        assert info.value.code == 1009
        assert info.value.message == "message exceeds the limit of 4194304 bytes once decompressed"
        assert server.close_code == 1009
        # The frame, at most 4 MiB + 1 of output, and change: not the gigabyte.
        assert peak < 16 * MiB

    async def test_limit_applies_to_the_decompressed_size(self, peer: Peer) -> None:
        # 2 MiB of the /send pattern deflate to a few KiB: the frame is small,
        # the message is not.
        url = peer.url("/send?n=1&size=2097152&deflate=1")
        async with connect(url, max_message_size=MiB) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.recv(timeout=TIMEOUT)
        assert info.value.code == 1009
        assert ws.close_code == 1009

    async def test_limit_allows_a_message_of_exactly_its_size(self, peer: Peer) -> None:
        url = peer.url("/send?n=2&size=1048576&deflate=1")
        async with connect(url, max_message_size=MiB) as ws:
            for _ in range(2):
                data, _ = await ws.recv(timeout=TIMEOUT)
                assert len(data) == MiB

    @pytest.mark.parametrize(
        ("extensions", "frames", "code"),
        [
            pytest.param(
                None, compressed(Opcode.TEXT, b"Hello"), 1002, id="rsv1-without-extension"
            ),
            pytest.param(
                "permessage-deflate",
                build_frame(Opcode.TEXT, b"He", fin=False) + compressed(Opcode.CONT, b"llo"),
                1002,
                id="rsv1-on-continuation",
            ),
            pytest.param(
                "permessage-deflate",
                build_frame(Opcode.PING, b"", rsv1=True),
                1002,
                id="rsv1-on-ping",
            ),
            pytest.param(
                "permessage-deflate",
                build_frame(Opcode.BINARY, b"\xff\xff\xff", rsv1=True),
                1007,
                id="invalid-deflate-data",
            ),
        ],
    )
    async def test_broken_compression_fails_the_connection(
        self, extensions: str | None, frames: bytes, code: int
    ) -> None:
        async with ScriptedServer(extensions, frames) as server:
            async with connect(server.url) as ws:
                with pytest.raises(WebSocketClosed) as info:
                    await ws.recv(timeout=TIMEOUT)
            await asyncio.wait_for(server.closed.wait(), TIMEOUT)
        assert info.value.code == code
        assert server.close_code == code

    async def test_compressed_and_plain_messages_from_a_scripted_server(self) -> None:
        frames = (
            compressed(Opcode.TEXT, b"Hello")
            + build_frame(Opcode.BINARY, b"plain")
            + compressed(Opcode.BINARY, b"again")
        )
        async with (
            ScriptedServer("permessage-deflate", frames) as server,
            connect(server.url) as ws,
        ):
            assert await ws.recv(timeout=TIMEOUT) == (b"Hello", WsFlag.TEXT)
            assert await ws.recv(timeout=TIMEOUT) == (b"plain", WsFlag.BINARY)
            assert await ws.recv(timeout=TIMEOUT) == (b"again", WsFlag.BINARY)
