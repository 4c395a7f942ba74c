"""ConnectProtocol: the proxy's answer to CONNECT, however it is cut (RFC 9110 §9.3.6)."""

from __future__ import annotations

import asyncio

import pytest

from rapidws.errors import HandshakeError
from rapidws.net.tunnel import ConnectProtocol

HEAD = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n"


class _Transport(asyncio.Transport):
    pass


def feed(protocol: ConnectProtocol, *chunks: bytes) -> None:
    protocol.connection_made(_Transport())
    for chunk in chunks:
        protocol.data_received(chunk)


class TestConnectAnswer:
    @pytest.mark.parametrize("cut", [1, 5, 17, len(HEAD) - 2, len(HEAD) - 1])
    async def test_head_split_anywhere(self, cut: int) -> None:
        protocol = ConnectProtocol()
        feed(protocol, HEAD[:cut])
        assert not protocol.answer.done()
        protocol.data_received(HEAD[cut:])
        response = protocol.answer.result()
        assert (response.status, response.reason) == (200, "Connection established")

    async def test_one_byte_at_a_time(self) -> None:
        protocol = ConnectProtocol()
        feed(protocol, *(HEAD[i : i + 1] for i in range(len(HEAD))))
        assert protocol.answer.result().status == 200

    async def test_bytes_after_a_2xx_head_are_refused(self) -> None:
        # The tunnel's first bytes belong to the server, which never speaks first.
        protocol = ConnectProtocol()
        feed(protocol, HEAD + b"\x16\x03")
        with pytest.raises(HandshakeError, match="2 unexpected bytes"):
            protocol.answer.result()

    async def test_refusal_keeps_status_and_body(self) -> None:
        protocol = ConnectProtocol()
        feed(
            protocol,
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno",
            b"pe",
        )
        response = protocol.answer.result()
        assert (response.status, response.body) == (403, b"nope")

    async def test_refusal_body_until_close(self) -> None:
        protocol = ConnectProtocol()
        feed(protocol, b"HTTP/1.0 502 Bad Gateway\r\n\r\nupstream down")
        assert not protocol.answer.done()
        protocol.connection_lost(None)
        assert protocol.answer.result().body == b"upstream down"

    async def test_close_before_any_answer(self) -> None:
        protocol = ConnectProtocol()
        feed(protocol, b"HTTP/1.1 20")
        protocol.connection_lost(ConnectionResetError())
        with pytest.raises(HandshakeError, match="closed the connection before answering"):
            protocol.answer.result()

    async def test_not_http(self) -> None:
        protocol = ConnectProtocol()
        feed(protocol, b"\x05\x00")  # a SOCKS5 server answering an HTTP client
        with pytest.raises(HandshakeError, match="not an HTTP status line"):
            protocol.answer.result()
