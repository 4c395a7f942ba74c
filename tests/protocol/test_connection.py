"""Connection: the sans-I/O state machine, RFC 6455 §5-§8, driven with byte strings."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidws.errors import ProtocolError, WebSocketClosed
from rapidws.flags import WsFlag
from rapidws.protocol import _fallback
from rapidws.protocol.connection import (
    CloseReceived,
    Connection,
    Event,
    Ping,
    Pong,
    Side,
    State,
)
from rapidws.protocol.frames import Frame, Opcode, build_frame
from rapidws.protocol.parser import FrameParser
from tests.protocol.conftest import HotFunctions

Message = tuple[bytes, WsFlag]

TEXT = WsFlag.TEXT
BINARY = WsFlag.BINARY
CONT = WsFlag.CONT


class ConnectionPair:
    """A client and a server Connection wired back to back (after h11's helper).

    Nothing moves on its own: ``deliver`` hands bytes written by one end to the
    other, so a test decides what is in flight at each step.
    """

    def __init__(self, client: Connection | None = None, server: Connection | None = None) -> None:
        self.client = client if client is not None else Connection(Side.CLIENT)
        self.server = server if server is not None else Connection(Side.SERVER)

    def peer(self, conn: Connection) -> Connection:
        return self.server if conn is self.client else self.client

    def deliver(self, sender: Connection, data: bytes) -> list[Message]:
        """Feed ``data`` written by ``sender`` to its peer; return the messages."""
        return self.peer(sender).receive_data(data)

    def flush(self, sender: Connection) -> list[Message]:
        """Deliver what ``sender`` has in ``data_to_send()``."""
        return self.deliver(sender, b"".join(sender.data_to_send()))


def parse_sent(conn: Connection, data: bytes | list[bytes]) -> list[Frame]:
    """Parse what ``conn`` wrote, as its peer's parser would."""
    if isinstance(data, list):
        data = b"".join(data)
    parser = FrameParser(expect_masked=conn.side is Side.CLIENT)
    frames = parser.feed(data)
    assert parser.error is None
    assert parser.buffered == 0
    return frames


def status(conn: Connection) -> tuple[State, bool]:
    """State and ``close_expected()``, read together at one point of a handshake."""
    return conn.state, conn.close_expected()


def close_frames(code: int | None = None, reason: bytes = b"") -> list[Frame]:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return [Frame(Opcode.CLOSE, payload)]


class TestSection5_1Masking:
    def test_client_masks_with_a_fresh_key_per_frame(self) -> None:
        client = Connection(Side.CLIENT)
        sent = [client.encode(b"same payload", BINARY) for _ in range(50)]
        assert all(frame[1] & 0x80 for frame in sent)  # MASK bit
        keys = [frame[2:6] for frame in sent]
        assert len(set(keys)) == 50
        # Masked with the key it carries: a server parser reads the payload back.
        assert parse_sent(client, sent) == [Frame(Opcode.BINARY, b"same payload")] * 50

    def test_client_masks_control_frames(self) -> None:
        client = Connection(Side.CLIENT)
        ping = client.ping(b"p")
        pong = client.pong(b"q")
        assert ping[1] == 0x81 and pong[1] == 0x81
        assert ping[2:6] != pong[2:6]
        assert parse_sent(client, [ping, pong]) == [
            Frame(Opcode.PING, b"p"),
            Frame(Opcode.PONG, b"q"),
        ]

    def test_server_sends_unmasked(self) -> None:
        server = Connection(Side.SERVER)
        assert server.encode(b"Hello", TEXT) == b"\x81\x05Hello"
        assert server.ping(b"Hello") == b"\x89\x05Hello"
        assert server.pong(b"") == b"\x8a\x00"

    def test_client_receiving_a_masked_frame_fails_with_1002(self) -> None:
        client = Connection(Side.CLIENT)
        masked = build_frame(Opcode.TEXT, b"hi", mask=b"\x01\x02\x03\x04")
        assert client.receive_data(masked) == []
        assert client.failure is not None
        assert client.close_code == 1002
        assert parse_sent(client, client.data_to_send()) == close_frames(1002)

    def test_server_receiving_an_unmasked_frame_fails_with_1002(self) -> None:
        server = Connection(Side.SERVER)
        assert server.receive_data(b"\x81\x02hi") == []
        assert server.close_code == 1002
        assert server.data_to_send() == [b"\x88\x02\x03\xea"]


class TestSection5_2FramingErrors:
    """Each violation fails the connection with 1002 and a CLOSE carrying it."""

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(b"\xc1\x00", id="rsv1"),
            pytest.param(b"\xa1\x00", id="rsv2"),
            pytest.param(b"\x91\x00", id="rsv3"),
            *(pytest.param(bytes([0x80 | op, 0]), id=f"opcode-{op:#x}") for op in range(3, 8)),
            *(pytest.param(bytes([0x80 | op, 0]), id=f"opcode-{op:#x}") for op in range(11, 16)),
            pytest.param(b"\x09\x00", id="fragmented-ping"),
            pytest.param(b"\x89\x7e\x00\x7e", id="ping-of-126-bytes"),
            pytest.param(b"\x80\x01x", id="cont-without-start"),
            pytest.param(b"\x01\x01a\x81\x01b", id="text-during-fragmented-text"),
            pytest.param(b"\x01\x01a\x82\x01b", id="binary-during-fragmented-text"),
            pytest.param(b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", id="64-bit-length-msb"),
            pytest.param(b"\x88\x01\x03", id="close-of-1-byte"),
            pytest.param(b"\x88\x02\x03\xed", id="close-code-1005"),
            pytest.param(b"\x88\x02\x03\xec", id="close-code-1004"),
            pytest.param(b"\x88\x02\x00\x00", id="close-code-0"),
        ],
    )
    def test_violation_fails_with_1002(self, data: bytes) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(data) == []
        assert client.failure is not None
        assert client.failure.close_code == 1002
        assert client.state is State.CLOSED
        assert client.close_code == 1002
        assert client.close_expected() is True
        assert parse_sent(client, client.data_to_send()) == close_frames(1002)

    def test_close_reason_not_utf8_fails_with_1007(self) -> None:
        client = Connection(Side.CLIENT)
        client.receive_data(b"\x88\x03\x03\xe8\xff")
        assert client.close_code == 1007
        assert parse_sent(client, client.data_to_send()) == close_frames(1007)


class TestSection5_4Fragmentation:
    def test_fragments_are_reassembled(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(b"\x01\x03Hel") == []
        assert client.receive_data(b"\x80\x02lo") == [(b"Hello", TEXT)]
        assert client.receive_data(b"\x02\x01a\x00\x00\x80\x01b") == [(b"ab", BINARY)]

    def test_ping_between_fragments_is_answered_and_the_message_completes(self) -> None:
        pair = ConnectionPair()
        client, server = pair.client, pair.server
        data = (
            client.encode(b"Hel", TEXT | CONT)
            + client.ping(b"are you there?")
            + client.encode(b"lo", TEXT)
        )
        assert pair.deliver(client, data) == [(b"Hello", TEXT)]
        assert server.events_received() == [Ping(b"are you there?")]
        assert server.data_to_send() == [b"\x8a\x0eare you there?"]

    def test_client_answers_a_ping_with_a_masked_pong(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(b"\x01\x01a\x89\x02hi\x80\x01b") == [(b"ab", TEXT)]
        assert parse_sent(client, client.data_to_send()) == [Frame(Opcode.PONG, b"hi")]
        assert client.events_received() == [Ping(b"hi")]
        assert client.events_received() == []

    def test_pong_is_reported_and_not_answered(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(b"\x8a\x02hi") == []
        assert client.events_received() == [Pong(b"hi")]
        assert client.data_to_send() == []

    def test_streaming_hands_out_fragments(self) -> None:
        server = Connection(Side.SERVER, stream=True)
        client = Connection(Side.CLIENT)
        data = (
            client.encode(b"He", BINARY | CONT)
            + client.encode(b"", BINARY | CONT)
            + client.ping(b"")
            + client.encode(b"llo", BINARY)
            + client.encode(b"!", TEXT)
        )
        assert server.receive_data(data) == [
            (b"He", BINARY | CONT),
            (b"", BINARY | CONT),
            (b"llo", BINARY),
            (b"!", TEXT),
        ]

    def test_empty_fragments(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(b"\x01\x00\x00\x00\x80\x00") == [(b"", TEXT)]


class TestManualFragmentation:
    """``encode`` with CONT sends one message over several calls, as curl_ws_send."""

    def test_cont_flags_give_first_continuation_and_final_frames(self) -> None:
        client = Connection(Side.CLIENT)
        sent = [
            client.encode(b"ab", TEXT | CONT),
            client.encode(b"cd", TEXT | CONT),
            client.encode(b"ef", TEXT),
        ]
        assert parse_sent(client, sent) == [
            Frame(Opcode.TEXT, b"ab", fin=False),
            Frame(Opcode.CONT, b"cd", fin=False),
            Frame(Opcode.CONT, b"ef", fin=True),
        ]
        server = Connection(Side.SERVER)
        assert server.receive_data(b"".join(sent)) == [(b"abcdef", TEXT)]

    def test_next_message_starts_with_its_own_opcode(self) -> None:
        client = Connection(Side.CLIENT)
        sent = [
            client.encode(b"a", BINARY | CONT),
            client.encode(b"b", BINARY),
            client.encode(b"c", TEXT),
        ]
        assert [(f.opcode, f.fin) for f in parse_sent(client, sent)] == [
            (Opcode.BINARY, False),
            (Opcode.CONT, True),
            (Opcode.TEXT, True),
        ]


class TestSection8_1Utf8:
    def test_invalid_utf8_fails_with_1007_before_the_final_fragment(self) -> None:
        server = Connection(Side.SERVER)
        client = Connection(Side.CLIENT)
        assert server.receive_data(client.encode(b"valid ", TEXT | CONT)) == []
        assert server.failure is None
        assert server.receive_data(client.encode(b"\xf4\x90\x80\x80", TEXT | CONT)) == []
        assert server.close_code == 1007
        assert server.data_to_send() == [b"\x88\x02\x03\xef"]

    @pytest.mark.parametrize("side", [Side.CLIENT, Side.SERVER])
    def test_invalid_utf8_fails_with_1007_before_its_frame_ends(self, side: Side) -> None:
        # Autobahn 6.4.3/6.4.4: the invalid byte arrives in the middle of a frame
        # whose end the peer sends only later.
        conn = Connection(side)
        peer = Connection(Side.SERVER if side is Side.CLIENT else Side.CLIENT)
        wire = peer.encode(
            "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xf4\x90\x80\x80edited", TEXT
        )
        header = len(wire) - 21
        assert conn.receive_data(wire[: header + 12]) == []
        assert conn.failure is None  # "...\xf4" may still become valid
        assert conn.receive_data(wire[header + 12 : header + 13]) == []
        assert conn.close_code == 1007
        assert conn.receive_data(wire[header + 13 :]) == []  # discarded (§7.1.7)

    def test_text_frame_arriving_in_pieces_is_delivered_whole(self) -> None:
        client = Connection(Side.CLIENT)
        text = ("\u20ac" * 50).encode()
        wire = build_frame(Opcode.TEXT, text, fin=False) + build_frame(Opcode.CONT, text)
        received = [m for i in range(len(wire)) for m in client.receive_data(wire[i : i + 1])]
        assert received == [(text + text, TEXT)]
        assert client.failure is None

    def test_code_point_split_across_frames_is_accepted(self) -> None:
        server = Connection(Side.SERVER)
        client = Connection(Side.CLIENT)
        data = client.encode(b"\xf0\x9f", TEXT | CONT) + client.encode(b"\x98\x80", TEXT)
        assert server.receive_data(data) == [("\U0001f600".encode(), TEXT)]
        assert server.failure is None


class TestMaxMessageSize:
    def test_single_frame_over_the_limit_fails_with_1009_from_its_header(self) -> None:
        client = Connection(Side.CLIENT, max_message_size=100)
        assert client.receive_data(b"\x82\x65") == []  # 101 bytes announced, none sent
        assert client.close_code == 1009
        assert parse_sent(client, client.data_to_send()) == close_frames(1009)

    def test_fragmented_message_over_the_limit_fails_with_1009(self) -> None:
        client = Connection(Side.CLIENT, max_message_size=100)
        assert client.receive_data(build_frame(Opcode.BINARY, bytes(60), fin=False)) == []
        assert client.failure is None
        assert client.receive_data(build_frame(Opcode.CONT, bytes(41), fin=False)) == []
        assert client.close_code == 1009

    def test_exactly_at_the_limit_is_accepted(self) -> None:
        client = Connection(Side.CLIENT, max_message_size=100)
        data = (
            build_frame(Opcode.BINARY, bytes(100))
            + build_frame(Opcode.TEXT, b"a" * 60, fin=False)
            + build_frame(Opcode.CONT, b"b" * 40)
        )
        assert client.receive_data(data) == [(bytes(100), BINARY), (b"a" * 60 + b"b" * 40, TEXT)]
        assert client.failure is None


class TestSection7ClosingHandshake:
    def test_client_initiated_close(self) -> None:
        pair = ConnectionPair()
        client, server = pair.client, pair.server
        assert status(client) == status(server) == (State.OPEN, False)
        assert (client.close_code, server.close_code) == (None, None)

        client.close(1000, "bye")
        assert status(client) == (State.CLOSING, False)
        assert pair.flush(client) == []
        assert server.events_received() == [CloseReceived(1000, "bye")]
        # The server answered at once, echoing the code (autoclose).
        assert status(server) == (State.CLOSED, True)
        assert server.data_to_send() == [b"\x88\x02\x03\xe8"]

        assert client.receive_data(b"\x88\x02\x03\xe8") == []
        assert client.events_received() == [CloseReceived(1000, "")]
        assert status(client) == (State.CLOSED, True)
        assert client.data_to_send() == []  # nothing more to say
        assert (client.close_code, client.close_reason) == (1000, "")
        assert (server.close_code, server.close_reason) == (1000, "bye")

    def test_server_initiated_close_is_echoed_with_the_same_code(self) -> None:
        pair = ConnectionPair()
        client, server = pair.client, pair.server
        server.close(4321, "maintenance")
        assert server.data_to_send() == [b"\x88\x0d\x10\xe1maintenance"]
        assert status(server) == (State.CLOSING, False)
        pair.deliver(server, b"\x88\x0d\x10\xe1maintenance")
        assert client.events_received() == [CloseReceived(4321, "maintenance")]
        assert status(client) == (State.CLOSED, True)
        echo = client.data_to_send()
        assert parse_sent(client, echo) == close_frames(4321)
        pair.deliver(client, b"".join(echo))
        assert status(server) == (State.CLOSED, True)
        assert (server.close_code, client.close_code) == (4321, 4321)
        assert client.close_reason == "maintenance"

    def test_empty_close_payload_is_echoed_empty(self) -> None:
        pair = ConnectionPair()
        client, server = pair.client, pair.server
        server.close(None)
        assert server.data_to_send() == [b"\x88\x00"]
        pair.deliver(server, b"\x88\x00")
        assert client.events_received() == [CloseReceived(1005, "")]
        assert parse_sent(client, client.data_to_send()) == close_frames(None)
        assert client.close_code == 1005
        client.close()  # already answered: nothing more
        assert client.data_to_send() == []

    def test_without_autoclose_the_answer_waits_for_close(self) -> None:
        pair = ConnectionPair(client=Connection(Side.CLIENT, autoclose=False))
        client, server = pair.client, pair.server
        server.close(1001, "going")
        pair.flush(server)
        assert client.events_received() == [CloseReceived(1001, "going")]
        assert status(client) == (State.CLOSING, False)
        assert client.data_to_send() == []
        client.close(1001)
        assert status(client) == (State.CLOSED, True)
        assert parse_sent(client, client.data_to_send()) == close_frames(1001)

    def test_data_after_close_is_ignored(self) -> None:
        client = Connection(Side.CLIENT)
        data = (
            build_frame(Opcode.TEXT, b"before")
            + build_frame(Opcode.CLOSE, b"\x03\xe8")
            + build_frame(Opcode.TEXT, b"after")
            + build_frame(Opcode.PING, b"late")
        )
        assert client.receive_data(data) == [(b"before", TEXT)]
        assert client.receive_data(build_frame(Opcode.TEXT, b"later")) == []
        assert client.events_received() == [CloseReceived(1000, "")]
        assert parse_sent(client, client.data_to_send()) == close_frames(1000)

    def test_ping_after_close_sent_gets_no_pong(self) -> None:
        client = Connection(Side.CLIENT)
        client.close()
        client.data_to_send()
        # Still CLOSING: data keeps flowing in until the server's CLOSE.
        assert client.receive_data(b"\x89\x01?\x81\x02hi") == [(b"hi", TEXT)]
        assert client.events_received() == [Ping(b"?")]
        assert client.data_to_send() == []

    @pytest.mark.parametrize("side", [Side.CLIENT, Side.SERVER])
    def test_sending_after_close_raises_websocket_closed(self, side: Side) -> None:
        conn = Connection(side)
        conn.close(3001, "done")
        calls: list[Callable[[], bytes]] = [
            lambda: conn.encode(b"x", TEXT),
            lambda: conn.ping(b""),
            lambda: conn.pong(b""),
        ]
        for call in calls:
            with pytest.raises(WebSocketClosed) as caught:
                call()
            assert caught.value.code == 3001

    def test_sending_after_the_handshake_raises_with_the_peers_code(self) -> None:
        pair = ConnectionPair()
        pair.server.close(1001)
        pair.flush(pair.server)
        with pytest.raises(WebSocketClosed) as caught:
            pair.client.encode(b"x", BINARY)
        assert caught.value.code == 1001

    def test_close_twice_sends_one_frame(self) -> None:
        client = Connection(Side.CLIENT)
        client.close(1000)
        client.close(1001)
        assert parse_sent(client, client.data_to_send()) == close_frames(1000)

    def test_invalid_close_arguments_change_nothing(self) -> None:
        client = Connection(Side.CLIENT)
        with pytest.raises(ValueError):
            client.close(1005)
        with pytest.raises(ValueError):
            client.close(1000, "x" * 124)
        assert client.state is State.OPEN
        assert client.close_sent is None
        assert client.data_to_send() == []

    def test_eof_without_close_is_1006(self) -> None:
        client = Connection(Side.CLIENT)
        client.receive_eof()
        assert client.state is State.CLOSED
        assert client.close_code == 1006
        with pytest.raises(WebSocketClosed) as caught:
            client.encode(b"x", TEXT)
        assert caught.value.code == 1006

    def test_eof_after_close_sent_without_answer_is_1006(self) -> None:
        client = Connection(Side.CLIENT)
        client.close(1000)
        client.receive_eof()
        assert client.state is State.CLOSED
        assert client.close_code == 1006

    def test_eof_after_the_handshake_keeps_the_code(self) -> None:
        pair = ConnectionPair()
        pair.client.close(1000, "bye")
        pair.flush(pair.client)
        pair.flush(pair.server)
        pair.client.receive_eof()
        assert pair.client.close_code == 1000


class TestSection7_1_7Failure:
    """Failing the connection: a CLOSE with the error's code, then deafness."""

    def test_failure_sends_close_and_discards_later_input(self) -> None:
        client = Connection(Side.CLIENT)
        assert client.receive_data(b"\x81\x02ok\x83\x00\x81\x04lost") == [(b"ok", TEXT)]
        assert client.failure is not None
        assert client.state is State.CLOSED
        assert parse_sent(client, client.data_to_send()) == close_frames(1002)
        assert client.receive_data(b"\x81\x02no\x89\x00\x88\x02\x03\xe8") == []
        assert client.events_received() == []
        assert client.data_to_send() == []
        assert client.close_code == 1002

    def test_frames_before_an_assembler_violation_are_delivered(self) -> None:
        client = Connection(Side.CLIENT)
        data = b"\x82\x01a\x89\x01p\x80\x01x\x81\x01b"  # CONT without a start
        assert client.receive_data(data) == [(b"a", BINARY)]
        assert client.events_received() == [Ping(b"p")]
        assert parse_sent(client, client.data_to_send()) == [
            Frame(Opcode.PONG, b"p"),
            Frame(Opcode.CLOSE, b"\x03\xea"),
        ]

    def test_sending_after_failure_raises_with_the_cause(self) -> None:
        client = Connection(Side.CLIENT)
        client.receive_data(b"\x83\x00")
        with pytest.raises(WebSocketClosed) as caught:
            client.ping()
        assert caught.value.code == 1002
        assert isinstance(caught.value.__cause__, ProtocolError)
        assert caught.value.__cause__ is client.failure

    def test_failure_while_closing_sends_no_second_close(self) -> None:
        client = Connection(Side.CLIENT)
        client.close(1000)
        client.data_to_send()
        client.receive_data(b"\x83\x00")
        assert client.data_to_send() == []
        assert client.state is State.CLOSED
        assert client.close_code == 1002


# Hypothesis: a conversation of messages (some fragmented by the sender) with
# pings between frames, as bytes split anywhere.
messages = st.lists(
    st.tuples(
        st.sampled_from([TEXT, BINARY]),
        st.text(max_size=50).map(str.encode) | st.binary(max_size=300),
        st.integers(1, 4),  # number of frames
        st.binary(max_size=10) | st.none(),  # a ping after the first frame
    ).filter(lambda m: m[0] is BINARY or _is_utf8(m[1])),
    max_size=8,
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def read_into(conn: Connection, data: bytes) -> list[Message]:
    """Deliver ``data`` through ``read_buffer``/``read_done``, as asyncio's
    BufferedProtocol does: as many reads as it takes."""
    received: list[Message] = []
    while data:
        view = conn.read_buffer()
        n = min(len(view), len(data))
        view[:n] = data[:n]
        data = data[n:]
        received += conn.read_done(n)
    return received


class TestReadBuffer:
    def test_messages_as_with_receive_data(self) -> None:
        pair = ConnectionPair()
        wire = pair.client.encode(b"x" * 300_000, BINARY) + pair.client.encode(b"hi", TEXT)
        assert read_into(pair.server, wire) == [(b"x" * 300_000, BINARY), (b"hi", TEXT)]

    def test_input_after_the_peers_close_is_discarded(self) -> None:
        pair = ConnectionPair()
        pair.client.close(1000, "bye")
        wire = b"".join(pair.client.data_to_send())
        assert read_into(pair.server, wire) == []
        assert pair.server.close_received == CloseReceived(1000, "bye")
        # A misbehaving client goes on sending: the server reads and drops it.
        late = build_frame(Opcode.TEXT, b"late", mask=b"abcd")
        assert read_into(pair.server, late) == []

    def test_broken_rule_fails_the_connection(self) -> None:
        server = Connection(Side.SERVER)
        assert read_into(server, b"\x81\x02hi") == []  # unmasked, from a client
        assert server.failure is not None
        assert server.failure.close_code == 1002
        assert server.data_to_send() == [b"\x88\x02\x03\xea"]


class TestArbitraryChunking:
    @settings(max_examples=60, deadline=None)
    @given(sent=messages, stream_mode=st.booleans(), data=st.data())
    def test_any_chunking_gives_the_same_messages_and_pongs(
        self,
        sent: list[tuple[WsFlag, bytes, int, bytes | None]],
        stream_mode: bool,
        data: st.DataObject,
    ) -> None:
        client = Connection(Side.CLIENT)
        server = Connection(Side.SERVER, stream=stream_mode)
        wire = b""
        expected: list[Message] = []
        pings: list[bytes] = []
        for flag, payload, nframes, ping in sent:
            step = len(payload) // nframes
            parts = [payload[i * step : (i + 1) * step] for i in range(nframes - 1)]
            parts.append(payload[(nframes - 1) * step :])
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                wire += client.encode(part, flag if last else flag | CONT)
                if stream_mode:
                    expected.append((part, flag if last else flag | CONT))
                if i == 0 and ping is not None:
                    wire += client.ping(ping)
                    pings.append(ping)
            if not stream_mode:
                expected.append((payload, flag))

        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=30), label="cuts"))
        into_buffer = data.draw(st.booleans(), label="read_buffer")
        received: list[Message] = []
        events: list[Event] = []
        for a, b in itertools.pairwise([0, *cuts, len(wire)]):
            if into_buffer:
                received += read_into(server, wire[a:b])
            else:
                received += server.receive_data(wire[a:b])
            events += server.events_received()

        assert received == expected
        assert events == [Ping(p) for p in pings]
        assert server.data_to_send() == [b"\x8a" + bytes([len(p)]) + p for p in pings]
        assert server.failure is None

    def test_one_byte_at_a_time(self) -> None:
        pair = ConnectionPair()
        client, server = pair.client, pair.server
        wire = (
            client.encode("\u00e9t\u00e9 ".encode(), TEXT | CONT)
            + client.ping(b"x")
            + client.encode("\U0001f600".encode(), TEXT)
            + client.encode(bytes(200), BINARY)
        )
        client.close(1000, "done")
        wire += b"".join(client.data_to_send())
        received: list[Message] = []
        for i in range(len(wire)):
            received += server.receive_data(wire[i : i + 1])
        assert received == [("\u00e9t\u00e9 \U0001f600".encode(), TEXT), (bytes(200), BINARY)]
        assert server.events_received() == [Ping(b"x"), CloseReceived(1000, "done")]
        assert server.data_to_send() == [b"\x8a\x01x", b"\x88\x02\x03\xe8"]
        assert server.state is State.CLOSED


# Frames as a peer might send them, good and bad: whole TEXT/BINARY messages
# (the fast path of read_done), invalid UTF-8, fragments, control frames, RSV
# bits, reserved opcodes, frames over the size limit, and stray bytes.
_frame_specs = st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA]),
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"\xff", b"\xed\xa0\x80", "\u00e9t\u00e9".encode(), b"x" * 300]),
    ),
    st.booleans() | st.just(True),  # FIN
    st.sampled_from([0, 0, 0, 0x40, 0x20]),  # RSV bits
)


@st.composite
def peer_streams(draw: st.DrawFn, masked: bool) -> bytes:
    wire = b""
    for opcode, payload, fin, rsv in draw(st.lists(_frame_specs, max_size=12)):
        if opcode & 0x8:
            payload = payload[:125]
            if opcode == 0x8 and len(payload) == 1:
                payload = b""
        frame = bytearray(build_frame(opcode, payload, fin=fin, mask=b"k3y!" if masked else None))
        frame[0] |= rsv
        wire += bytes(frame)
    if draw(st.booleans()):
        wire += draw(st.binary(max_size=12))  # trailing junk or a cut frame
    return wire


class TestFastPathAgreesWithTheFullParser:
    """read_done takes whole unfragmented messages without Frame objects
    (parse_messages); receive_data always goes through the full parser. Both
    must give the same messages, events, answers and failures, for any input
    cut anywhere."""

    @settings(max_examples=200, deadline=None)
    @given(data=st.data(), side=st.sampled_from([Side.CLIENT, Side.SERVER]))
    def test_same_results_for_any_stream(self, data: st.DataObject, side: Side) -> None:
        wire = data.draw(peer_streams(masked=side is Side.SERVER), label="wire")
        max_size = data.draw(st.sampled_from([None, 30, 250]), label="max_size")
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8), label="cuts"))
        fast = Connection(side, max_message_size=max_size)
        full = Connection(side, max_message_size=max_size)
        fast_got: list[Message] = []
        for a, b in itertools.pairwise([0, *cuts, len(wire)]):
            fast_got += read_into(fast, wire[a:b])
        full_got = full.receive_data(wire)
        assert fast_got == full_got
        assert fast.events_received() == full.events_received()
        # The masking keys differ: compare the answers' headers and lengths.
        assert [(f[:1], len(f)) for f in fast.data_to_send()] == [
            (f[:1], len(f)) for f in full.data_to_send()
        ]
        assert (fast.failure is None) == (full.failure is None)
        if fast.failure is not None and full.failure is not None:
            assert fast.failure.close_code == full.failure.close_code


class TestParseMessages:
    """``parse_messages``: the C and the specification in ``_fallback`` agree,
    and what they take is what the full parser makes of the same bytes."""

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data(), masked=st.booleans())
    def test_takes_the_leading_whole_messages(
        self, impl: HotFunctions, data: st.DataObject, masked: bool
    ) -> None:
        wire = data.draw(peer_streams(masked=masked), label="wire")
        max_size = data.draw(st.sampled_from([None, 30, 250]), label="max_size")
        messages: list[Any] = []
        pos = impl.parse_messages(wire, messages, masked, max_size, TEXT, BINARY)
        reference: list[Any] = []
        assert _fallback.parse_messages(wire, reference, masked, max_size, TEXT, BINARY) == pos
        assert messages == reference
        # Those bytes, through the full parser, give the same messages and
        # nothing else.
        conn = Connection(Side.SERVER if masked else Side.CLIENT, max_message_size=max_size)
        assert conn.receive_data(wire[:pos]) == messages
        assert conn.events_received() == [] and conn.failure is None
        assert FrameParser(expect_masked=masked).feed(wire[:pos]) is not None

    def test_stops_before_what_needs_the_full_parser(self, impl: HotFunctions) -> None:
        whole = build_frame(Opcode.BINARY, b"ab")
        text = build_frame(Opcode.TEXT, "é".encode())
        incomplete = build_frame(Opcode.BINARY, b"abc")[:4]
        for stop, after in (
            (build_frame(Opcode.PING, b"p"), whole),
            (build_frame(Opcode.TEXT, b"frag", fin=False), whole),
            (build_frame(Opcode.TEXT, b"\xff"), whole),  # invalid UTF-8
            (build_frame(Opcode.BINARY, b"x", rsv1=True), whole),
            (build_frame(Opcode.BINARY, b"x", mask=b"abcd"), whole),  # masked, to a client
            (build_frame(Opcode.BINARY, b"y" * 40), whole),  # over max_size
            (incomplete, b""),  # the last bytes that came
        ):
            messages: list[Any] = []
            wire = whole + text + stop + after
            assert impl.parse_messages(wire, messages, False, 30, TEXT, BINARY) == len(whole + text)
            assert messages == [(b"ab", BINARY), ("é".encode(), TEXT)]
