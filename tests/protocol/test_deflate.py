"""permessage-deflate, grouped by the section of RFC 7692 each test guards.

The ``websockets`` library's own permessage-deflate extension, on its sans-I/O
server protocol, is the independent implementation: it must read what our
client compresses, and our client must read what it compresses.
"""

from __future__ import annotations

import random
import tracemalloc
import zlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate as WsPerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side as WsSide

from rapidws.errors import HandshakeError
from rapidws.flags import WsFlag
from rapidws.protocol.connection import Connection, Side
from rapidws.protocol.deflate import (
    DeflateOptions,
    Deflater,
    Inflater,
    PerMessageDeflate,
    build_offer,
    compressed_size_limit,
    negotiate,
    offers_from_option,
)
from rapidws.protocol.frames import Frame, Opcode, build_frame
from rapidws.protocol.handshake import accept_key, check_response
from rapidws.protocol.headers import Headers, parse_extension_list
from rapidws.protocol.http11 import Response
from rapidws.protocol.parser import FrameParser

TEXT = WsFlag.TEXT
BINARY = WsFlag.BINARY
CONT = WsFlag.CONT
TAIL = b"\x00\x00\xff\xff"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="

# Text that compresses well and differently from message to message.
WORDS = b"the quick brown fox jumps over a lazy dog again and again".split()


def agree(response: str, *offers: DeflateOptions) -> PerMessageDeflate | None:
    """Negotiate against a response header value (default: the browser's offer)."""
    return negotiate(parse_extension_list([response]), offers or (DeflateOptions(),))


def raw_deflate(data: bytes, wbits: int = 15) -> bytes:
    """``data`` compressed as one message, tail removed (§7.2.1), by zlib itself."""
    encoder = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def final_block(data: bytes) -> bytes:
    """``data`` compressed into a stream that ends with a BFINAL block (§7.2.3.4)."""
    encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
    return encoder.compress(data) + encoder.flush(zlib.Z_FINISH)


def client(
    extension: PerMessageDeflate | None = None,
    *,
    max_message_size: int | None = None,
    stream: bool = False,
) -> Connection:
    conn = Connection(Side.CLIENT, max_message_size=max_message_size, stream=stream)
    conn.enable_deflate(extension if extension is not None else PerMessageDeflate())
    return conn


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """An unmasked frame, as a server sends it."""
    return build_frame(opcode, payload, fin=fin, rsv1=rsv1)


def sent_frames(data: bytes | list[bytes]) -> list[Frame]:
    """Parse what a client wrote, as the server's parser would."""
    parser = FrameParser(expect_masked=True, rsv1_allowed=True)
    frames = parser.feed(b"".join(data) if isinstance(data, list) else data)
    assert parser.error is None and parser.buffered == 0
    return frames


def oracle_server(extension: PerMessageDeflate) -> WsProtocol:
    """websockets' sans-I/O server protocol using the agreed parameters."""
    protocol = WsProtocol(WsSide.SERVER, max_size=None)
    protocol.extensions = [
        WsPerMessageDeflate(
            remote_no_context_takeover=extension.client_no_context_takeover,
            local_no_context_takeover=extension.server_no_context_takeover,
            remote_max_window_bits=extension.client_max_window_bits,
            local_max_window_bits=extension.server_max_window_bits,
        )
    ]
    return protocol


def oracle_messages(protocol: WsProtocol, data: bytes) -> list[tuple[bytes, bool]]:
    """Whole messages the websockets server reads from ``data``: (payload, is_text)."""
    protocol.receive_data(data)
    messages: list[tuple[bytes, bool]] = []
    parts: list[bytes] = []
    text = False
    for event in protocol.events_received():
        assert isinstance(event, WsFrame)
        if event.opcode in (WsOpcode.TEXT, WsOpcode.BINARY):
            text = event.opcode is WsOpcode.TEXT
        elif event.opcode is not WsOpcode.CONT:
            continue
        parts.append(bytes(event.data))
        if event.fin:
            messages.append((b"".join(parts), text))
            parts = []
    return messages


# ---------------------------------------------------------------------------
# §5 and §7.1: the offer
# ---------------------------------------------------------------------------


class TestSection5Offer:
    def test_default_offer_is_the_browsers(self) -> None:
        assert build_offer([DeflateOptions()]) == "permessage-deflate; client_max_window_bits"

    def test_every_parameter(self) -> None:
        offer = DeflateOptions(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=9,
        )
        assert build_offer([offer]) == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=9"
        )

    def test_client_max_window_bits_false_is_left_out(self) -> None:
        assert build_offer([DeflateOptions(client_max_window_bits=False)]) == "permessage-deflate"

    def test_several_offers_in_preference_order(self) -> None:
        offers = [DeflateOptions(client_no_context_takeover=True), DeflateOptions()]
        assert build_offer(offers) == (
            "permessage-deflate; client_no_context_takeover; client_max_window_bits, "
            "permessage-deflate; client_max_window_bits"
        )

    def test_level_and_mem_level_are_not_offered(self) -> None:
        assert build_offer([DeflateOptions(level=1, mem_level=9)]) == build_offer(
            [DeflateOptions()]
        )

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"server_max_window_bits": 7}, ValueError, "server_max_window_bits must be from 8"),
            ({"server_max_window_bits": 16}, ValueError, "must be from 8 to 15, got 16"),
            ({"server_max_window_bits": True}, TypeError, "server_max_window_bits must be an int"),
            ({"server_max_window_bits": "10"}, TypeError, "must be an int from 8 to 15"),
            ({"client_max_window_bits": 0}, ValueError, "client_max_window_bits must be from 8"),
            ({"client_max_window_bits": 9.0}, TypeError, "client_max_window_bits must be an int"),
            ({"server_no_context_takeover": 1}, TypeError, "must be a bool, got 1"),
            ({"client_no_context_takeover": None}, TypeError, "must be a bool, got None"),
            ({"level": 10}, ValueError, "level must be an int from 0 to 9, got 10"),
            ({"level": -1}, ValueError, "level must be an int from 0 to 9"),
            ({"mem_level": 0}, ValueError, "mem_level must be an int from 1 to 9, got 0"),
            ({"min_size": -1}, ValueError, "min_size must be an int >= 0, got -1"),
        ],
    )
    def test_invalid_options_are_refused(
        self, kwargs: dict[str, object], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            DeflateOptions(**kwargs)  # type: ignore[arg-type]


class TestCompressionOption:
    """What ``ws_connect(compression=...)`` accepts."""

    def test_deflate_is_the_browser_offer(self) -> None:
        assert offers_from_option("deflate") == (DeflateOptions(),)

    def test_none_offers_nothing(self) -> None:
        assert offers_from_option(None) == ()

    def test_one_offer_or_a_list(self) -> None:
        first = DeflateOptions(client_no_context_takeover=True)
        assert offers_from_option(first) == (first,)
        assert offers_from_option([first, DeflateOptions()]) == (first, DeflateOptions())
        assert offers_from_option((first,)) == (first,)

    @pytest.mark.parametrize(
        ("value", "error", "message"),
        [
            ("gzip", ValueError, "compression must be 'deflate' or None, got 'gzip'"),
            ([], ValueError, "empty list: use None"),
            (True, TypeError, "compression must be 'deflate', None, a DeflateOptions"),
            (["deflate"], TypeError, "offers must be DeflateOptions, got 'deflate'"),
        ],
    )
    def test_invalid_values(self, value: object, error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=message):
            offers_from_option(value)


# ---------------------------------------------------------------------------
# §7.1: the response
# ---------------------------------------------------------------------------


class TestSection7_1Response:
    """A client MUST fail on a malformed response or one it did not allow."""

    def test_declined(self) -> None:
        assert negotiate([], [DeflateOptions()]) is None
        assert negotiate([("x-other", [])], [DeflateOptions()]) is None

    def test_accepted_without_parameters(self) -> None:
        assert agree("permessage-deflate") == PerMessageDeflate(
            server_no_context_takeover=False,
            client_no_context_takeover=False,
            server_max_window_bits=15,
            client_max_window_bits=15,
        )

    def test_every_parameter(self) -> None:
        extension = agree(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=10"
        )
        assert extension == PerMessageDeflate(True, True, 9, 10)
        assert str(extension) == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=10"
        )

    def test_quoted_values_are_values(self) -> None:
        extension = agree('permessage-deflate; server_max_window_bits="10"')
        assert extension is not None and extension.server_max_window_bits == 10

    def test_unknown_parameter(self) -> None:
        with pytest.raises(ValueError, match="invalid permessage-deflate response .*: unknown"):
            agree("permessage-deflate; client_window=10")

    def test_repeated_parameter(self) -> None:
        with pytest.raises(ValueError, match="server_no_context_takeover appears more than once"):
            agree("permessage-deflate; server_no_context_takeover; server_no_context_takeover")

    @pytest.mark.parametrize("name", ["server_no_context_takeover", "client_no_context_takeover"])
    def test_no_context_takeover_takes_no_value(self, name: str) -> None:
        with pytest.raises(ValueError, match=f"{name} takes no value, got {name}=1"):
            agree(f"permessage-deflate; {name}=1")

    @pytest.mark.parametrize("name", ["server_max_window_bits", "client_max_window_bits"])
    def test_window_bits_need_a_value_in_a_response(self, name: str) -> None:
        with pytest.raises(ValueError, match=f"{name} needs a value from 8 to 15"):
            agree(f"permessage-deflate; {name}")

    @pytest.mark.parametrize("value", ["7", "16", "0", "08", "015", "1a", "-9"])
    @pytest.mark.parametrize("name", ["server_max_window_bits", "client_max_window_bits"])
    def test_window_bits_out_of_range_or_with_leading_zeroes(self, name: str, value: str) -> None:
        with pytest.raises(ValueError, match=f"{name}={value} is not a window size from 8 to 15"):
            agree(f"permessage-deflate; {name}={value}")

    def test_accepted_more_than_once(self) -> None:
        with pytest.raises(ValueError, match="accepted permessage-deflate more than once"):
            agree("permessage-deflate, permessage-deflate; server_no_context_takeover")

    def test_accepted_without_an_offer(self) -> None:
        with pytest.raises(ValueError, match="permessage-deflate, which was not offered"):
            negotiate(parse_extension_list(["permessage-deflate"]), [])


class TestSection7_1_1ContextTakeover:
    def test_server_no_context_takeover_granted(self) -> None:
        offer = DeflateOptions(server_no_context_takeover=True)
        extension = agree("permessage-deflate; server_no_context_takeover", offer)
        assert extension is not None and extension.server_no_context_takeover

    def test_server_no_context_takeover_requested_but_not_granted(self) -> None:
        offer = DeflateOptions(server_no_context_takeover=True)
        with pytest.raises(
            ValueError, match="does not fit the offer: server_no_context_takeover was requested"
        ):
            agree("permessage-deflate", offer)

    def test_server_may_reset_its_context_unasked(self) -> None:
        # §7.1.1.1: the server MAY include it "even if the extension
        # negotiation offer being accepted ... didn't include" it.
        extension = agree("permessage-deflate; server_no_context_takeover")
        assert extension is not None and extension.server_no_context_takeover

    def test_server_may_forbid_our_context_takeover(self) -> None:
        extension = agree("permessage-deflate; client_no_context_takeover")
        assert extension is not None and extension.client_no_context_takeover

    def test_our_hint_holds_when_the_server_does_not_repeat_it(self) -> None:
        offer = DeflateOptions(client_no_context_takeover=True)
        extension = agree("permessage-deflate", offer)
        assert extension is not None and extension.client_no_context_takeover


class TestSection7_1_2WindowBits:
    def test_server_window_granted_smaller(self) -> None:
        offer = DeflateOptions(server_max_window_bits=10)
        extension = agree("permessage-deflate; server_max_window_bits=9", offer)
        assert extension is not None and extension.server_max_window_bits == 9

    def test_server_window_larger_than_requested(self) -> None:
        offer = DeflateOptions(server_max_window_bits=10)
        with pytest.raises(
            ValueError, match="server_max_window_bits=11 is larger than the requested 10"
        ):
            agree("permessage-deflate; server_max_window_bits=11", offer)

    def test_server_window_requested_but_not_granted(self) -> None:
        offer = DeflateOptions(server_max_window_bits=10)
        with pytest.raises(ValueError, match="server_max_window_bits=10 was requested but not"):
            agree("permessage-deflate", offer)

    def test_server_window_unasked(self) -> None:
        extension = agree("permessage-deflate; server_max_window_bits=8")
        assert extension is not None and extension.server_max_window_bits == 8

    @pytest.mark.parametrize("bits", range(8, 16))
    def test_client_window_picked_by_the_server(self, bits: int) -> None:
        extension = agree(f"permessage-deflate; client_max_window_bits={bits}")
        assert extension is not None and extension.client_max_window_bits == bits

    def test_client_window_not_offered(self) -> None:
        # §7.1.2.2: without the parameter in the offer, the response "MUST NOT
        # include" it.
        offer = DeflateOptions(client_max_window_bits=False)
        with pytest.raises(ValueError, match="client_max_window_bits=10 was not offered"):
            agree("permessage-deflate; client_max_window_bits=10", offer)

    def test_client_window_larger_than_offered(self) -> None:
        offer = DeflateOptions(client_max_window_bits=10)
        with pytest.raises(
            ValueError, match="client_max_window_bits=12 is larger than the offered"
        ):
            agree("permessage-deflate; client_max_window_bits=12", offer)

    def test_offered_client_window_holds_without_an_answer(self) -> None:
        extension = agree("permessage-deflate", DeflateOptions(client_max_window_bits=11))
        assert extension is not None and extension.client_max_window_bits == 11

    def test_client_window_smaller_than_offered(self) -> None:
        offer = DeflateOptions(client_max_window_bits=11)
        extension = agree("permessage-deflate; client_max_window_bits=9", offer)
        assert extension is not None and extension.client_max_window_bits == 9


class TestSection5SeveralOffers:
    def test_the_first_offer_that_fits_wins(self) -> None:
        strict = DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True)
        plain = DeflateOptions(client_max_window_bits=False)
        extension = agree("permessage-deflate", strict, plain)
        assert extension is not None
        assert extension.offer is plain
        assert extension == PerMessageDeflate(False, False, 15, 15)

    def test_a_response_that_fits_both_goes_to_the_preferred(self) -> None:
        # Both fit; the first one's hint (no context takeover) is honoured.
        hinted = DeflateOptions(client_no_context_takeover=True)
        extension = agree("permessage-deflate", hinted, DeflateOptions())
        assert extension is not None
        assert extension.offer is hinted
        assert extension.client_no_context_takeover

    def test_every_mismatch_is_reported(self) -> None:
        offers = (
            DeflateOptions(server_max_window_bits=9),
            DeflateOptions(client_max_window_bits=False),
        )
        with pytest.raises(ValueError) as info:
            agree("permessage-deflate; client_max_window_bits=10", *offers)
        assert str(info.value) == (
            "permessage-deflate response 'permessage-deflate; client_max_window_bits=10' "
            "fits none of the offers (offer 1: server_max_window_bits=9 was requested but "
            "not granted; offer 2: client_max_window_bits=10 was not offered)"
        )


class TestHandshake:
    """check_response fails the handshake with the response attached."""

    @staticmethod
    def response(extensions: str) -> Response:
        headers = Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(KEY)),
                ("Sec-WebSocket-Extensions", extensions),
            ]
        )
        return Response(101, "Switching Protocols", headers)

    def test_agreement_is_returned(self) -> None:
        response = self.response("permessage-deflate; client_max_window_bits=12")
        result = check_response(response, key=KEY, deflate_offers=[DeflateOptions()])
        assert result.deflate == PerMessageDeflate(client_max_window_bits=12)

    def test_disallowed_parameters_fail_the_handshake(self) -> None:
        response = self.response("permessage-deflate; client_max_window_bits=12")
        offer = DeflateOptions(client_max_window_bits=False)
        with pytest.raises(HandshakeError) as info:
            check_response(response, key=KEY, deflate_offers=[offer])
        assert str(info.value) == (
            "invalid WebSocket handshake response: permessage-deflate response "
            "'permessage-deflate; client_max_window_bits=12' does not fit the offer: "
            "client_max_window_bits=12 was not offered"
        )
        assert info.value.status == 101
        assert ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=12") in (
            info.value.headers
        )

    def test_deflate_accepted_when_nothing_was_offered(self) -> None:
        with pytest.raises(HandshakeError, match="'permessage-deflate', which was not offered"):
            check_response(self.response("permessage-deflate"), key=KEY)


# ---------------------------------------------------------------------------
# §6 and §7.2: compressed messages
# ---------------------------------------------------------------------------


class TestSection6Receiving:
    def test_rsv1_on_the_first_frame_marks_a_compressed_message(self) -> None:
        conn = client()
        data = server_frame(Opcode.TEXT, raw_deflate(b"Hello"), rsv1=True)
        assert conn.receive_data(data) == [(b"Hello", TEXT)]

    def test_rfc_example_hello(self) -> None:
        # §7.2.3.1: "Hello" compressed, a single frame.
        conn = client()
        data = bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        assert conn.receive_data(data) == [(b"Hello", TEXT)]

    def test_rfc_example_fragmented_hello(self) -> None:
        # §7.2.3.1: the same compressed data in two fragments.
        conn = client()
        data = bytes([0x41, 0x03, 0xF2, 0x48, 0xCD, 0x80, 0x04, 0xC9, 0xC9, 0x07, 0x00])
        assert conn.receive_data(data) == [(b"Hello", TEXT)]

    def test_rfc_example_shared_window(self) -> None:
        # §7.2.3.2: the second "Hello" refers back to the first.
        conn = client()
        first = bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        second = bytes([0xC1, 0x05, 0xF2, 0x00, 0x11, 0x00, 0x00])
        assert conn.receive_data(first + second) == [(b"Hello", TEXT), (b"Hello", TEXT)]

    def test_rfc_example_stored_block(self) -> None:
        # §7.2.3.3: "Hello" in a DEFLATE block with no compression.
        conn = client()
        data = bytes([0xC1, 0x0B, 0x00, 0x05, 0x00, 0xFA, 0xFF]) + b"Hello" + b"\x00"
        assert conn.receive_data(data) == [(b"Hello", TEXT)]

    def test_rfc_example_bfinal(self) -> None:
        # §7.2.3.4: "Hello" in a block with BFINAL set, then padding.
        conn = client()
        data = bytes([0xC1, 0x08, 0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])
        assert conn.receive_data(data) == [(b"Hello", TEXT)]
        # The stream ended; the next message starts a new one.
        assert conn.receive_data(data) == [(b"Hello", TEXT)]

    def test_uncompressed_message_on_a_compressing_connection(self) -> None:
        conn = client()
        assert conn.receive_data(server_frame(Opcode.BINARY, b"plain")) == [(b"plain", BINARY)]

    def test_fragmented_compressed_message(self) -> None:
        conn = client()
        message = b" ".join(WORDS * 50)
        compressed = raw_deflate(message)
        third = len(compressed) // 3
        data = (
            server_frame(Opcode.BINARY, compressed[:third], fin=False, rsv1=True)
            + server_frame(Opcode.PING, b"in between")
            + server_frame(Opcode.CONT, compressed[third : 2 * third], fin=False)
            + server_frame(Opcode.CONT, compressed[2 * third :])
        )
        assert conn.receive_data(data) == [(message, BINARY)]

    def test_fragments_are_inflated_as_they_come_when_streaming(self) -> None:
        conn = client(stream=True)
        message = b"".join(bytes([i]) * 1000 for i in range(40))
        encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
        first = encoder.compress(message[:20000]) + encoder.flush(zlib.Z_SYNC_FLUSH)
        second = encoder.compress(message[20000:]) + encoder.flush(zlib.Z_SYNC_FLUSH)
        received = conn.receive_data(server_frame(Opcode.BINARY, first, fin=False, rsv1=True))
        assert received == [(message[:20000], BINARY | CONT)]
        received = conn.receive_data(server_frame(Opcode.CONT, second[:-4]))
        assert received == [(message[20000:], BINARY)]

    def test_invalid_utf8_in_compressed_text(self) -> None:
        conn = client()
        conn.receive_data(server_frame(Opcode.TEXT, raw_deflate(b"\xff\xfe"), rsv1=True))
        assert conn.failure is not None and conn.failure.close_code == 1007

    def test_rsv1_on_a_continuation_frame(self) -> None:
        conn = client()
        data = server_frame(Opcode.TEXT, b"He", fin=False) + server_frame(
            Opcode.CONT, raw_deflate(b"llo"), rsv1=True
        )
        assert conn.receive_data(data) == []
        assert conn.failure is not None
        assert (conn.failure.close_code, conn.failure.reason) == (
            1002,
            "compressed bit set on a continuation frame",
        )
        # The connection answers with a CLOSE 1002, never compressed.
        [close] = sent_frames(conn.data_to_send())
        assert (close.opcode, close.payload[:2], close.rsv1) == (Opcode.CLOSE, b"\x03\xea", False)

    @pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
    def test_rsv1_on_a_control_frame(self, opcode: Opcode) -> None:
        conn = client()
        conn.receive_data(server_frame(opcode, b"", rsv1=True))
        assert conn.failure is not None
        assert (conn.failure.close_code, conn.failure.reason) == (1002, "compressed control frame")

    def test_rsv1_without_the_extension(self) -> None:
        conn = Connection(Side.CLIENT)
        conn.receive_data(server_frame(Opcode.TEXT, raw_deflate(b"Hello"), rsv1=True))
        assert conn.failure is not None and conn.failure.close_code == 1002

    def test_rsv2_and_rsv3_stay_reserved(self) -> None:
        conn = client()
        conn.receive_data(bytes([0xA1, 0x00]))  # FIN + RSV2, TEXT
        assert conn.failure is not None and conn.failure.close_code == 1002

    def test_invalid_deflate_data(self) -> None:
        conn = client()
        # BTYPE=11 is reserved (RFC 1951 §3.2.3).
        conn.receive_data(server_frame(Opcode.BINARY, b"\xff\xff\xff", rsv1=True))
        assert conn.failure is not None
        assert conn.failure.close_code == 1007
        assert conn.failure.reason.startswith("invalid compressed data")

    def test_blocks_after_a_final_block(self) -> None:
        # §7.2.1: "The next DEFLATE block follows the padded data if any".
        conn = client()
        encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
        world = encoder.compress(b" world") + encoder.flush(zlib.Z_SYNC_FLUSH)
        payload = final_block(b"Hello") + world[:-4]
        assert conn.receive_data(server_frame(Opcode.TEXT, payload, rsv1=True)) == [
            (b"Hello world", TEXT)
        ]

    def test_reference_past_what_a_final_block_left(self) -> None:
        # After a final block, only this frame's output seeds the window: a
        # reference to an older message fails instead of giving wrong data.
        conn = client()
        history = b"0123456789abcdef" * 4
        conn.receive_data(server_frame(Opcode.TEXT, raw_deflate(history), rsv1=True))
        conn.receive_data(server_frame(Opcode.TEXT, final_block(b"x"), rsv1=True))
        encoder = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=b"x" + history)
        payload = encoder.compress(history) + encoder.flush(zlib.Z_SYNC_FLUSH)
        assert conn.receive_data(server_frame(Opcode.TEXT, payload[:-4], rsv1=True)) == []
        assert conn.failure is not None and conn.failure.close_code == 1007

    def test_a_new_message_inside_a_compressed_one(self) -> None:
        conn = client()
        conn.receive_data(
            server_frame(Opcode.TEXT, raw_deflate(b"He"), fin=False, rsv1=True)
            + server_frame(Opcode.TEXT, raw_deflate(b"llo"), rsv1=True)
        )
        assert conn.failure is not None and conn.failure.close_code == 1002


class TestContextTakeover:
    """§7.1.1: the LZ77 window carries over between messages unless reset."""

    def test_kept_window_makes_repeats_cheap(self) -> None:
        deflater = Deflater(15, no_context_takeover=False)
        message = b" ".join(WORDS) * 3
        first = deflater.compress_message(message)
        second = deflater.compress_message(message)
        assert first is not None and second is not None
        assert len(second) < len(first) // 4

    def test_reset_window_makes_every_message_stand_alone(self) -> None:
        deflater = Deflater(15, no_context_takeover=True)
        message = b" ".join(WORDS) * 3
        payloads = [deflater.compress_message(message) for _ in range(3)]
        assert payloads[0] == payloads[1] == payloads[2]
        for payload in payloads:
            assert payload is not None
            # A fresh decoder reads each one: nothing refers to an earlier message.
            assert zlib.decompressobj(-15).decompress(payload + TAIL) == message

    @pytest.mark.parametrize("reset", [False, True])
    def test_every_message_is_compressed_by_default(self, reset: bool) -> None:
        # Even when it grows: tiny messages, random bytes.
        conn = client(PerMessageDeflate(client_no_context_takeover=reset))
        frames = sent_frames([conn.encode(b"ab", BINARY), conn.encode(bytes(range(256)), BINARY)])
        assert [f.rsv1 for f in frames] == [True, True]
        assert len(frames[1].payload) > 256

    def test_messages_below_min_size_go_as_they_are(self) -> None:
        conn = client(PerMessageDeflate(offer=DeflateOptions(min_size=100)))
        history = b"abcdefgh" * 20
        frames = sent_frames(
            [
                conn.encode(history, TEXT),
                conn.encode(b"x" * 99, TEXT),
                conn.encode(history, TEXT),
            ]
        )
        assert [f.rsv1 for f in frames] == [True, False, True]
        assert frames[1].payload == b"x" * 99
        # The skipped message is not in the history the peer shares.
        decoder = zlib.decompressobj(-15)
        assert decoder.decompress(frames[0].payload + TAIL) == history
        assert decoder.decompress(frames[2].payload + TAIL) == history
        assert len(frames[2].payload) < 10

    def test_peer_reset_window_needs_no_new_decoder(self) -> None:
        inflater = Inflater(15, no_context_takeover=True)
        for _ in range(3):
            assert inflater.decompress(raw_deflate(b"Hello" * 10), True) == b"Hello" * 10

    def test_bfinal_keeps_the_window_with_takeover(self) -> None:
        inflater = Inflater(15, no_context_takeover=False)
        history = b"0123456789abcdef" * 4
        assert inflater.decompress(final_block(history), True) == history
        # The next message refers back to the previous one, through a dictionary.
        encoder = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=history)
        payload = encoder.compress(history) + encoder.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 10
        assert inflater.decompress(payload[:-4], True) == history


class TestSection7_2Sending:
    def test_compressed_frame_has_rsv1_and_no_tail(self) -> None:
        conn = client()
        [frame] = sent_frames(conn.encode(b"Hello", TEXT))
        assert (frame.opcode, frame.fin, frame.rsv1) == (Opcode.TEXT, True, True)
        assert not frame.payload.endswith(TAIL)
        assert zlib.decompressobj(-15).decompress(frame.payload + TAIL) == b"Hello"

    def test_empty_messages(self) -> None:
        conn = client()
        frames = sent_frames([conn.encode(b"", TEXT), conn.encode(b"", BINARY)])
        decoder = zlib.decompressobj(-15)
        assert [decoder.decompress(f.payload + TAIL) for f in frames] == [b"", b""]
        assert all(f.rsv1 for f in frames)

    def test_fragmented_message_sets_rsv1_on_the_first_frame_only(self) -> None:
        conn = client()
        parts = [b"Hello, ", b"", b"World", b"!"]
        data = [conn.encode(part, TEXT | CONT) for part in parts[:-1]]
        data.append(conn.encode(parts[-1], TEXT))
        frames = sent_frames(data)
        assert [(f.opcode, f.fin, f.rsv1) for f in frames] == [
            (Opcode.TEXT, False, True),
            (Opcode.CONT, False, False),
            (Opcode.CONT, False, False),
            (Opcode.CONT, True, False),
        ]
        decoder = zlib.decompressobj(-15)
        # Each frame decodes as soon as it arrives: nothing is held back.
        assert [decoder.decompress(f.payload) for f in frames[:-1]] == [b"Hello, ", b"", b"World"]
        assert decoder.decompress(frames[-1].payload + TAIL) == b"!"

    def test_control_frames_are_never_compressed(self) -> None:
        conn = client()
        frames = sent_frames([conn.ping(b"ping" * 10), conn.pong(b"pong" * 10)])
        conn.close(1000, "bye" * 10)
        frames += sent_frames(conn.data_to_send())
        assert [(f.opcode, f.rsv1) for f in frames] == [
            (Opcode.PING, False),
            (Opcode.PONG, False),
            (Opcode.CLOSE, False),
        ]
        assert frames[0].payload == b"ping" * 10

    def test_pong_answer_is_not_compressed(self) -> None:
        conn = client()
        conn.receive_data(server_frame(Opcode.PING, b"x" * 100))
        [pong] = sent_frames(conn.data_to_send())
        assert (pong.opcode, pong.rsv1, pong.payload) == (Opcode.PONG, False, b"x" * 100)

    def test_8_bit_window_output_fits_an_8_bit_window(self) -> None:
        # zlib compresses with 9 bits for 8; its matches stay within 250 bytes.
        deflater = Deflater(8, no_context_takeover=False, level=9, mem_level=9)
        decoder = zlib.decompressobj(-8)
        message = b"".join(WORDS[i % len(WORDS)] * (i % 7 + 1) for i in range(3000))
        for start in range(0, len(message), 997):
            chunk = message[start : start + 997]
            payload = deflater.compress_message(chunk)
            assert payload is not None
            assert decoder.decompress(payload + TAIL) == chunk

    def test_agreed_window_is_used(self) -> None:
        conn = Connection(Side.CLIENT)
        conn.enable_deflate(PerMessageDeflate(client_max_window_bits=9))
        assert conn.deflate == PerMessageDeflate(client_max_window_bits=9)
        [frame] = sent_frames(conn.encode(b"x" * 1000, BINARY))
        assert zlib.decompressobj(-9).decompress(frame.payload + TAIL) == b"x" * 1000


class TestMessageTooBig:
    """RFC 6455 §10.4 (limits on frame and message size), on the decompressed size."""

    def test_exactly_the_limit(self) -> None:
        conn = client(max_message_size=1000)
        data = server_frame(Opcode.BINARY, raw_deflate(b"a" * 1000), rsv1=True)
        assert conn.receive_data(data) == [(b"a" * 1000, BINARY)]

    def test_one_byte_over_the_limit(self) -> None:
        conn = client(max_message_size=1000)
        conn.receive_data(server_frame(Opcode.BINARY, raw_deflate(b"a" * 1001), rsv1=True))
        assert conn.failure is not None
        assert (conn.failure.close_code, conn.failure.reason) == (
            1009,
            "message exceeds the limit of 1000 bytes once decompressed",
        )

    def test_over_the_limit_across_fragments(self) -> None:
        conn = client(max_message_size=1000)
        encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = b""
        for n in range(3):
            payload = encoder.compress(b"a" * 400) + encoder.flush(zlib.Z_SYNC_FLUSH)
            opcode = Opcode.CONT if n else Opcode.BINARY
            data += server_frame(opcode, payload, fin=n == 2, rsv1=n == 0)
        assert conn.receive_data(data) == []
        assert conn.failure is not None and conn.failure.close_code == 1009

    def test_incompressible_message_at_the_limit_fits_its_frame(self) -> None:
        # Deflate makes random data a little larger; the frame may exceed the
        # message limit while the message does not.
        message = random.Random(1000).randbytes(1000)
        payload = raw_deflate(message)
        assert len(payload) > 1000
        conn = client(max_message_size=1000)
        frame = server_frame(Opcode.BINARY, payload, rsv1=True)
        assert conn.receive_data(frame) == [(message, BINARY)]
        limit = compressed_size_limit(1000)
        assert limit is not None and len(payload) < limit

    def test_bomb_is_refused_in_bounded_memory(self) -> None:
        # 256 MiB of zeros in about 250 KiB.
        encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = encoder.compress(bytes(1 << 20)) + encoder.flush(zlib.Z_SYNC_FLUSH)
        repeat = encoder.compress(bytes(1 << 20)) + encoder.flush(zlib.Z_SYNC_FLUSH)
        bomb = chunk + repeat * 255
        frame = server_frame(Opcode.BINARY, bomb[:-4], rsv1=True)
        conn = client(max_message_size=1 << 20)
        tracemalloc.start()
        try:
            conn.receive_data(frame)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert conn.failure is not None and conn.failure.close_code == 1009
        # The frame (copied once by the parser) and at most 1 MiB of output.
        assert peak < len(frame) + 4 * (1 << 20)


# ---------------------------------------------------------------------------
# Round trips against websockets' implementation, every parameter combination
# ---------------------------------------------------------------------------


def is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


messages = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), max_size=300).map(b" ".join) | st.binary(max_size=2000),
        st.booleans(),  # text, when the payload is UTF-8
        st.integers(min_value=1, max_value=3),  # fragments
    ).map(lambda m: (m[0], m[1] and is_utf8(m[0]), m[2])),
    min_size=1,
    max_size=8,
)
agreements = st.builds(
    PerMessageDeflate,
    server_no_context_takeover=st.booleans(),
    client_no_context_takeover=st.booleans(),
    # websockets cannot compress with an 8-bit window.
    server_max_window_bits=st.integers(min_value=9, max_value=15),
    client_max_window_bits=st.integers(min_value=8, max_value=15),
)


def split(payload: bytes, pieces: int) -> list[bytes]:
    step = -(-len(payload) // pieces) if payload else 0
    return [payload[i * step : (i + 1) * step] for i in range(pieces)]


def encode_message(conn: Connection, payload: bytes, text: bool, pieces: int) -> bytes:
    flag = TEXT if text else BINARY
    parts = split(payload, pieces)
    frames = [conn.encode(part, flag | CONT) for part in parts[:-1]]
    frames.append(conn.encode(parts[-1], flag))
    return b"".join(frames)


class TestRoundTrips:
    @settings(max_examples=80, deadline=None)
    @given(extension=agreements, sent=messages)
    def test_websockets_reads_what_we_compress(
        self, extension: PerMessageDeflate, sent: Sequence[tuple[bytes, bool, int]]
    ) -> None:
        conn = client(extension)
        server = oracle_server(extension)
        data = b"".join(encode_message(conn, p, t, n) for p, t, n in sent)
        assert oracle_messages(server, data) == [(p, t) for p, t, _ in sent]

    @settings(max_examples=80, deadline=None)
    @given(extension=agreements, sent=messages, chunk=st.integers(min_value=1, max_value=5000))
    def test_we_read_what_websockets_compresses(
        self,
        extension: PerMessageDeflate,
        sent: Sequence[tuple[bytes, bool, int]],
        chunk: int,
    ) -> None:
        server = oracle_server(extension)
        for payload, text, pieces in sent:
            parts = split(payload, pieces)
            for n, part in enumerate(parts):
                fin = n == pieces - 1
                if n:
                    server.send_continuation(part, fin)
                elif text:
                    server.send_text(part, fin)
                else:
                    server.send_binary(part, fin)
        data = b"".join(server.data_to_send())
        conn = client(extension)
        received: list[tuple[bytes, WsFlag]] = []
        for start in range(0, len(data), chunk):
            received += conn.receive_data(data[start : start + chunk])
        assert conn.failure is None
        assert received == [(p, TEXT if t else BINARY) for p, t, _ in sent]

    @settings(max_examples=60, deadline=None)
    @given(
        extension=st.builds(
            PerMessageDeflate,
            server_no_context_takeover=st.booleans(),
            client_no_context_takeover=st.booleans(),
            server_max_window_bits=st.integers(min_value=8, max_value=15),
            client_max_window_bits=st.integers(min_value=8, max_value=15),
        ),
        sent=messages,
    )
    def test_client_and_server_connections_agree(
        self, extension: PerMessageDeflate, sent: Sequence[tuple[bytes, bool, int]]
    ) -> None:
        # Our server role too, with 8-bit windows that websockets cannot use.
        ours = client(extension)
        server = Connection(Side.SERVER)
        server.enable_deflate(extension)
        expected = [(p, TEXT if t else BINARY) for p, t, _ in sent]
        data = b"".join(encode_message(ours, p, t, n) for p, t, n in sent)
        assert server.receive_data(data) == expected
        data = b"".join(encode_message(server, p, t, n) for p, t, n in sent)
        assert ours.receive_data(data) == expected
