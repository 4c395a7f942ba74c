"""MessageAssembler: fragmentation (RFC 6455 §5.4), UTF-8 (§8.1), the size limit."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidws.errors import ProtocolError
from rapidws.flags import WsFlag
from rapidws.protocol.messages import MessageAssembler

TEXT = 1
BINARY = 2

Result = tuple[bytes, WsFlag] | None


def feed(assembler: MessageAssembler, opcode: int, fragments: list[bytes]) -> list[Result]:
    """Feed one message as ``fragments`` (the last with FIN); return every result."""
    results: list[Result] = []
    for i, fragment in enumerate(fragments):
        fin = i == len(fragments) - 1
        if i == 0:
            results.append(assembler.start(opcode, fragment, fin))
        else:
            results.append(assembler.continue_(fragment, fin))
    return results


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


class TestSection5_4Fragmentation:
    @pytest.mark.parametrize(("opcode", "flag"), [(TEXT, WsFlag.TEXT), (BINARY, WsFlag.BINARY)])
    def test_unfragmented_message(self, opcode: int, flag: WsFlag) -> None:
        assembler = MessageAssembler()
        assert assembler.start(opcode, b"hello", True) == (b"hello", flag)
        assert assembler.in_progress is False

    @pytest.mark.parametrize(("opcode", "flag"), [(TEXT, WsFlag.TEXT), (BINARY, WsFlag.BINARY)])
    def test_fragments_are_reassembled(self, opcode: int, flag: WsFlag) -> None:
        assembler = MessageAssembler()
        assert assembler.start(opcode, b"He", False) is None
        assert assembler.in_progress is True
        assert assembler.continue_(b"l", False) is None
        assert assembler.continue_(b"lo", True) == (b"Hello", flag)
        assert assembler.in_progress is False

    def test_messages_follow_one_another(self) -> None:
        assembler = MessageAssembler()
        assert feed(assembler, TEXT, [b"a", b"b"]) == [None, (b"ab", WsFlag.TEXT)]
        assert feed(assembler, BINARY, [b"c", b"d", b"e"]) == [None, None, (b"cde", WsFlag.BINARY)]
        assert feed(assembler, TEXT, [b"f"]) == [(b"f", WsFlag.TEXT)]

    @pytest.mark.parametrize("opcode", [TEXT, BINARY])
    def test_empty_fragments(self, opcode: int) -> None:
        assembler = MessageAssembler()
        flag = WsFlag(opcode)
        assert feed(assembler, opcode, [b"", b"", b""]) == [None, None, (b"", flag)]
        assert feed(assembler, opcode, [b"", b"x", b""]) == [None, None, (b"x", flag)]
        assert feed(assembler, opcode, [b""]) == [(b"", flag)]

    def test_continuation_without_a_message_is_1002(self) -> None:
        with pytest.raises(ProtocolError) as caught:
            MessageAssembler().continue_(b"x", True)
        assert caught.value.close_code == 1002

    def test_continuation_after_a_finished_message_is_1002(self) -> None:
        assembler = MessageAssembler()
        feed(assembler, TEXT, [b"a", b"b"])
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"c", True)
        assert caught.value.close_code == 1002

    @pytest.mark.parametrize("first", [TEXT, BINARY])
    @pytest.mark.parametrize("second", [TEXT, BINARY])
    @pytest.mark.parametrize("fin", [True, False])
    def test_new_message_during_a_fragmented_one_is_1002(
        self, first: int, second: int, fin: bool
    ) -> None:
        assembler = MessageAssembler()
        assembler.start(first, b"a", False)
        with pytest.raises(ProtocolError) as caught:
            assembler.start(second, b"b", fin)
        assert caught.value.close_code == 1002

    @settings(max_examples=50, deadline=None)
    @given(payload=st.binary(max_size=2000), data=st.data())
    def test_any_fragmentation_gives_the_message(self, payload: bytes, data: st.DataObject) -> None:
        cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=10), label="cuts")
        results = feed(MessageAssembler(), BINARY, split_at(payload, cuts))
        assert results[-1] == (payload, WsFlag.BINARY)
        assert all(r is None for r in results[:-1])


class TestSection5_4Streaming:
    """``stream=True``: every fragment goes out at once, CONT while more follow."""

    @pytest.mark.parametrize(("opcode", "flag"), [(TEXT, WsFlag.TEXT), (BINARY, WsFlag.BINARY)])
    def test_fragments_are_handed_out_with_cont_until_the_last(
        self, opcode: int, flag: WsFlag
    ) -> None:
        assembler = MessageAssembler(stream=True)
        assert feed(assembler, opcode, [b"He", b"l", b"lo"]) == [
            (b"He", flag | WsFlag.CONT),
            (b"l", flag | WsFlag.CONT),
            (b"lo", flag),
        ]
        assert assembler.in_progress is False

    def test_unfragmented_message_has_no_cont(self) -> None:
        assert MessageAssembler(stream=True).start(BINARY, b"x", True) == (b"x", WsFlag.BINARY)

    def test_empty_fragments(self) -> None:
        assembler = MessageAssembler(stream=True)
        assert feed(assembler, TEXT, [b"", b""]) == [
            (b"", WsFlag.TEXT | WsFlag.CONT),
            (b"", WsFlag.TEXT),
        ]

    def test_text_code_point_split_across_fragments_is_passed_through(self) -> None:
        assembler = MessageAssembler(stream=True)
        assert feed(assembler, TEXT, [b"\xf0\x9f", b"\x98\x80"]) == [
            (b"\xf0\x9f", WsFlag.TEXT | WsFlag.CONT),
            (b"\x98\x80", WsFlag.TEXT),
        ]

    def test_invalid_utf8_is_1007_in_streaming_mode_too(self) -> None:
        assembler = MessageAssembler(stream=True)
        assembler.start(TEXT, b"ok", False)
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"\xff", False)
        assert caught.value.close_code == 1007

    def test_truncated_code_point_at_the_end_is_1007_in_streaming_mode_too(self) -> None:
        assembler = MessageAssembler(stream=True)
        assembler.start(TEXT, b"ok", False)
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"\xe2\x82", True)
        assert caught.value.close_code == 1007


# Invalid UTF-8 sequences (Unicode Table 3-7) and the index, within each, of
# the first byte that no well-formed sequence can have in that position.
INVALID_SEQUENCES = {
    "lone continuation byte": (b"\x80", 0),
    "byte 0xFF": (b"\xff", 0),
    "overlong 2-byte '/'": (b"\xc0\xaf", 0),
    "overlong 2-byte NUL": (b"\xc1\x80", 0),
    "overlong 3-byte '/'": (b"\xe0\x80\xaf", 1),
    "overlong 4-byte '/'": (b"\xf0\x80\x80\xaf", 1),
    "surrogate U+D800": (b"\xed\xa0\x80", 1),
    "surrogate U+DFFF": (b"\xed\xbf\xbf", 1),
    "above U+10FFFF": (b"\xf4\x90\x80\x80", 1),
    "lead byte 0xF5": (b"\xf5\x80\x80\x80", 0),
    "missing continuation": (b"\xe2\x28\xa1", 1),
}


# Unicode Table 3-7, "Well-Formed UTF-8 Byte Sequences" (multi-byte rows).
_CONT = (0x80, 0xBF)
WELL_FORMED = [
    [(0xC2, 0xDF), _CONT],
    [(0xE0, 0xE0), (0xA0, 0xBF), _CONT],
    [(0xE1, 0xEC), _CONT, _CONT],
    [(0xED, 0xED), (0x80, 0x9F), _CONT],
    [(0xEE, 0xEF), _CONT, _CONT],
    [(0xF0, 0xF0), (0x90, 0xBF), _CONT, _CONT],
    [(0xF1, 0xF3), _CONT, _CONT, _CONT],
    [(0xF4, 0xF4), (0x80, 0x8F), _CONT, _CONT],
]


def starts_well_formed(prefix: bytes) -> bool:
    """Whether ``prefix`` begins (or is) one well-formed multi-byte sequence."""
    return any(
        len(prefix) <= len(row)
        and all(lo <= b <= hi for b, (lo, hi) in zip(prefix, row, strict=False))
        for row in WELL_FORMED
    )


class TestSection8_1Utf8:
    """§8.1: text that is not valid UTF-8 fails the connection with 1007."""

    CODE_POINTS = "a\u00e9\u20ac\U0001f600z"  # 1, 2, 3 and 4-byte encodings

    def test_code_points_split_at_every_pair_of_offsets(self) -> None:
        encoded = self.CODE_POINTS.encode()
        assembler = MessageAssembler()
        for i in range(len(encoded) + 1):
            for j in range(i, len(encoded) + 1):
                fragments = [encoded[:i], encoded[i:j], encoded[j:]]
                assert feed(assembler, TEXT, fragments)[-1] == (encoded, WsFlag.TEXT), (i, j)

    def test_four_byte_code_point_one_byte_per_fragment(self) -> None:
        encoded = "\U0010ffff\U0001f600".encode()
        fragments = [encoded[i : i + 1] for i in range(len(encoded))]
        assert feed(MessageAssembler(), TEXT, fragments)[-1] == (encoded, WsFlag.TEXT)

    @settings(max_examples=60, deadline=None)
    @given(text=st.text(max_size=200), data=st.data())
    def test_any_text_split_anywhere_is_accepted(self, text: str, data: st.DataObject) -> None:
        encoded = text.encode()
        cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=8), label="cuts")
        results = feed(MessageAssembler(), TEXT, split_at(encoded, cuts))
        assert results[-1] == (encoded, WsFlag.TEXT)

    @pytest.mark.parametrize(
        "sequence", [v[0] for v in INVALID_SEQUENCES.values()], ids=list(INVALID_SEQUENCES)
    )
    def test_invalid_single_frame_is_1007(self, sequence: bytes) -> None:
        with pytest.raises(ProtocolError) as caught:
            MessageAssembler().start(TEXT, b"ok" + sequence + b"ok", True)
        assert caught.value.close_code == 1007

    @pytest.mark.parametrize(
        ("sequence", "bad"), list(INVALID_SEQUENCES.values()), ids=list(INVALID_SEQUENCES)
    )
    def test_fails_on_the_fragment_holding_the_invalid_byte(
        self, sequence: bytes, bad: int
    ) -> None:
        # Split the sequence at every offset over two non-final fragments: the
        # error must come with the fragment that holds byte ``bad``, before the
        # final fragment arrives (fail fast).
        for cut in range(len(sequence) + 1):
            assembler = MessageAssembler()
            first, second = b"ok" + sequence[:cut], sequence[cut:] + b"ok"
            with pytest.raises(ProtocolError) as caught:
                if bad < cut:
                    assembler.start(TEXT, first, False)
                else:
                    assert assembler.start(TEXT, first, False) is None, cut
                    assembler.continue_(second, False)
            assert caught.value.close_code == 1007, cut

    def test_every_short_prefix_fails_exactly_when_no_completion_is_valid(self) -> None:
        # Fail fast at the byte level: a fragment ending in the first 1-3 bytes
        # of a sequence is accepted iff some well-formed sequence starts so.
        prefixes = [bytes([a]) for a in range(0x80, 0x100)]
        prefixes += [bytes([a, b]) for a in range(0xC0, 0xF8) for b in range(0x7F, 0xC1)]
        prefixes += [
            bytes([a, b, c])
            for a in range(0xE0, 0xF5)
            for b in range(0x80, 0xC0)
            for c in range(0x7F, 0xC1)
            if a >= 0xF0 or c == 0x7F or c == 0xC0
        ]
        wrong = []
        for prefix in prefixes:
            try:
                MessageAssembler().start(TEXT, b"ok" + prefix, False)
            except ProtocolError:
                accepted = False
            else:
                accepted = True
            if accepted != starts_well_formed(prefix):
                wrong.append(prefix.hex())
        assert wrong == []

    @pytest.mark.parametrize("tail", [b"\xc3", b"\xe2\x82", b"\xf0\x9f", b"\xf0\x9f\x98"])
    def test_truncated_sequence_at_the_end_of_the_final_fragment_is_1007(self, tail: bytes) -> None:
        with pytest.raises(ProtocolError) as caught:
            MessageAssembler().start(TEXT, b"ok" + tail, True)
        assert caught.value.close_code == 1007
        assembler = MessageAssembler()
        assert assembler.start(TEXT, b"ok" + tail, False) is None  # may still complete
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"", True)
        assert caught.value.close_code == 1007

    def test_binary_is_not_validated(self) -> None:
        assembler = MessageAssembler()
        assert assembler.start(BINARY, b"\xff\xc0", True) == (b"\xff\xc0", WsFlag.BINARY)
        assert feed(assembler, BINARY, [b"\xed", b"\xa0\x80"])[-1] == (
            b"\xed\xa0\x80",
            WsFlag.BINARY,
        )

    def test_decoder_state_does_not_leak_into_the_next_message(self) -> None:
        assembler = MessageAssembler()
        assert feed(assembler, TEXT, [b"\xc3\xa9", b"x"])[-1] == (b"\xc3\xa9x", WsFlag.TEXT)
        assert feed(assembler, TEXT, [b"\xe2\x82\xac", b""])[-1] == (
            b"\xe2\x82\xac",
            WsFlag.TEXT,
        )


class TestSection8_1CheckAhead:
    """``check_ahead``: UTF-8 of a frame still arriving is validated at once, and
    the frame's completion validates only the rest (§8.1, fail fast)."""

    def test_invalid_byte_fails_before_the_frame_ends(self) -> None:
        assembler = MessageAssembler()
        assembler.check_ahead(TEXT, b"caf\xc3\xa9 ")
        with pytest.raises(ProtocolError) as caught:
            assembler.check_ahead(TEXT, b"\xc3\x28")
        assert caught.value.close_code == 1007

    def test_surrogate_prefix_fails_before_the_frame_ends(self) -> None:
        with pytest.raises(ProtocolError) as caught:
            MessageAssembler().check_ahead(TEXT, b"ok\xed\xa0")
        assert caught.value.close_code == 1007

    @pytest.mark.parametrize("fin", [True, False])
    def test_completion_validates_only_the_rest(self, fin: bool) -> None:
        encoded = "h\u00e9llo \U0001f600".encode()
        for cut in range(len(encoded) + 1):
            assembler = MessageAssembler()
            assembler.check_ahead(TEXT, encoded[:cut])
            assert assembler.checked == cut
            result = assembler.start(TEXT, encoded, fin)
            assert assembler.checked == 0
            if fin:
                assert result == (encoded, WsFlag.TEXT)
            else:
                assert result is None
                assert assembler.continue_(b"!", True) == (encoded + b"!", WsFlag.TEXT)

    def test_invalid_rest_still_fails_on_completion(self) -> None:
        assembler = MessageAssembler()
        assembler.check_ahead(TEXT, b"fine")
        with pytest.raises(ProtocolError) as caught:
            assembler.start(TEXT, b"fine\xff", True)
        assert caught.value.close_code == 1007

    def test_continuation_of_a_text_message(self) -> None:
        assembler = MessageAssembler()
        assert assembler.start(TEXT, b"\xe2\x82", False) is None
        assert assembler.text_in_progress
        assembler.check_ahead(0, b"\xac and")  # completes the euro sign
        assert assembler.continue_(b"\xac and more", True) == (
            "\u20ac and more".encode(),
            WsFlag.TEXT,
        )

    def test_binary_continuations_are_not_checked(self) -> None:
        assembler = MessageAssembler()
        assert assembler.start(BINARY, b"\xff", False) is None
        assert not assembler.text_in_progress
        assembler.check_ahead(0, b"\xff\xfe")
        assert assembler.checked == 0
        assert assembler.continue_(b"\xff\xfe", True) == (b"\xff\xff\xfe", WsFlag.BINARY)

    def test_text_frame_inside_a_fragmented_message_is_left_to_start(self) -> None:
        assembler = MessageAssembler()
        assert assembler.start(BINARY, b"x", False) is None
        assembler.check_ahead(TEXT, b"\xff")  # no 1007: the 1002 comes from start()
        with pytest.raises(ProtocolError) as caught:
            assembler.start(TEXT, b"\xff", True)
        assert caught.value.close_code == 1002


class TestMaxSize:
    """``max_size`` bounds a whole message: over it, 1009."""

    def test_fragmented_message_over_the_limit_is_1009_on_the_crossing_fragment(self) -> None:
        assembler = MessageAssembler(max_size=10)
        assert assembler.start(BINARY, b"12345", False) is None
        assert assembler.continue_(b"12345", False) is None
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"1", False)
        assert caught.value.close_code == 1009

    @pytest.mark.parametrize("stream", [False, True])
    def test_exactly_at_the_limit_is_accepted(self, stream: bool) -> None:
        assembler = MessageAssembler(max_size=10, stream=stream)
        results = feed(assembler, TEXT, [b"12345", b"", b"67890"])
        assert results[-1] == (b"67890" if stream else b"1234567890", WsFlag.TEXT)
        # The count starts again with each message.
        assert feed(assembler, BINARY, [b"1234567890", b""])[-1] == (
            b"" if stream else b"1234567890",
            WsFlag.BINARY,
        )
        assert assembler.start(BINARY, b"1234567890", True) == (b"1234567890", WsFlag.BINARY)

    def test_streamed_message_over_the_limit_is_1009(self) -> None:
        assembler = MessageAssembler(max_size=4, stream=True)
        assert assembler.start(BINARY, b"123", False) == (b"123", WsFlag.BINARY | WsFlag.CONT)
        with pytest.raises(ProtocolError) as caught:
            assembler.continue_(b"45", True)
        assert caught.value.close_code == 1009

    @pytest.mark.parametrize("opcode", [TEXT, BINARY])
    def test_unfragmented_message_over_the_limit_is_1009(self, opcode: int) -> None:
        with pytest.raises(ProtocolError) as caught:
            MessageAssembler(max_size=4).start(opcode, b"12345", True)
        assert caught.value.close_code == 1009

    def test_no_limit(self) -> None:
        assembler = MessageAssembler(max_size=None)
        big = bytes(1 << 20)
        assert feed(assembler, BINARY, [big, big])[-1] == (big + big, WsFlag.BINARY)
