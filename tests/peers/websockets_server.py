"""The ``websockets`` peer: the behaviours of :mod:`tests.peers.launcher` on its asyncio server.

Run as ``python -m tests.peers.websockets_server [--tls-cert PEM --tls-key PEM]`` from
the repository root; it prints ``LISTENING <port>`` once ready.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.peers.launcher import (
    BASIC_CREDENTIALS,
    BEARER_TOKEN,
    MAX_MESSAGE_SIZE,
    SUBPROTOCOLS,
    ServerOptions,
    announce,
    deflate_params,
    parse_server_options,
    send_payload,
    split_target,
    wait_until_stopped,
    wants_deflate,
)

Query = dict[str, str]
Behaviour = Callable[[ServerConnection, Query], Awaitable[None]]


# Behaviours


async def echo(connection: ServerConnection, query: Query) -> None:
    async for message in connection:
        await connection.send(message)


async def close(connection: ServerConnection, query: Query) -> None:
    await connection.close(int(query.get("code", "1000")), query.get("reason", ""))


async def close_after(connection: ServerConnection, query: Query) -> None:
    for _ in range(int(query.get("n", "1"))):
        await connection.send(await connection.recv())
    await connection.close(int(query.get("code", "1000")), query.get("reason", ""))


async def ping(connection: ServerConnection, query: Query) -> None:
    payload = query.get("payload", "")
    pong_received = await connection.ping(payload)
    await pong_received
    await connection.send(f"pong:{payload}")
    await echo(connection, query)


async def fragment(connection: ServerConnection, query: Query) -> None:
    n = int(query.get("n", "3"))
    async for message in connection:
        text = isinstance(message, str)
        payload = message.encode() if isinstance(message, str) else message
        # n pieces, some empty if the message is shorter than n; text may be cut
        # inside a UTF-8 sequence, which fragments allow.
        step = -(-len(payload) // n)
        pieces = [payload[i * step : (i + 1) * step] for i in range(n)]
        # send(iterable) ends with an extra empty frame: n + 1 frames. Write n.
        protocol = connection.protocol
        async with connection.send_context():
            if text:
                protocol.send_text(pieces[0], fin=n == 1)
            else:
                protocol.send_binary(pieces[0], fin=n == 1)
            for number, piece in enumerate(pieces[1:], start=2):
                protocol.send_continuation(piece, fin=number == n)


async def count(connection: ServerConnection, query: Query) -> None:
    messages = total = 0
    async for message in connection:
        if message == "count?":
            await connection.send(f"count:{messages}")
        elif message == "bytes?":
            await connection.send(f"bytes:{total}")
        else:
            messages += 1
            total += len(message.encode() if isinstance(message, str) else message)


async def stall(connection: ServerConnection, query: Query) -> None:
    # Below the library: with the transport paused, the kernel's receive buffer
    # fills up and TCP flow control stops the client.
    connection.transport.pause_reading()
    await asyncio.sleep(float(query.get("seconds", "30")))
    connection.transport.resume_reading()
    discard = asyncio.create_task(_discard(connection))
    await connection.close(1000, "stall over")
    await discard


async def _discard(connection: ServerConnection) -> None:
    # The library pauses reading when unread messages pile up; keep reading so
    # that the close frame behind them gets through.
    with contextlib.suppress(ConnectionClosed):
        async for _ in connection:
            pass


async def send(connection: ServerConnection, query: Query) -> None:
    size = int(query.get("size", "64"))
    kind = query.get("type", "binary")
    for index in range(int(query.get("n", "100"))):
        await connection.send(send_payload(index, size, kind))
    if "close" in query:
        await connection.close(int(query["close"]), query.get("reason", ""))
    else:
        await echo(connection, query)


async def headers(connection: ServerConnection, query: Query) -> None:
    request = connection.request
    assert request is not None
    report = {
        "headers": [[name, value] for name, value in request.headers.raw_items()],
        "path": request.path,
        "subprotocol": connection.subprotocol,
    }
    await connection.send(json.dumps(report))
    await echo(connection, query)


async def abort_after(connection: ServerConnection, query: Query) -> None:
    for _ in range(int(query.get("n", "1"))):
        await connection.send(await connection.recv())
    connection.transport.abort()
    await connection.wait_closed()


async def server_close_fast(connection: ServerConnection, query: Query) -> None:
    connection.protocol.send_close(int(query.get("code", "1000")), query.get("reason", ""))
    connection.send_data()
    # Flush the close frame and close the socket; don't wait for the client's.
    connection.transport.close()
    await connection.wait_closed()


BEHAVIOURS: dict[str, Behaviour] = {
    "/echo": echo,
    "/deflate": echo,
    "/close": close,
    "/close-after": close_after,
    "/ping": ping,
    "/fragment": fragment,
    "/count": count,
    "/stall": stall,
    "/send": send,
    "/headers": headers,
    "/set-cookie": headers,
    "/auth": headers,
    "/abort-after": abort_after,
    "/server-close-fast": server_close_fast,
}


# Handshake


def authorized(request_headers: Headers) -> bool:
    value = request_headers.get("Authorization", "")
    user, password = BASIC_CREDENTIALS
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return value in (f"Basic {basic}", f"Bearer {BEARER_TOKEN}")


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    path, query = split_target(request.path)
    if path == "/reject":
        response = connection.respond(int(query.get("status", "403")), query.get("body", ""))
        if query.get("location"):
            response.headers["Location"] = query["location"]
        if query.get("cookie"):
            response.headers["Set-Cookie"] = query["cookie"]
        return response
    if path == "/auth" and not authorized(request.headers):
        response = connection.respond(401, "authentication required\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="peers"'
        return response
    if path not in BEHAVIOURS:
        return connection.respond(404, f"no behaviour at {path}\n")
    if not wants_deflate(path, query):
        # serve() offers permessage-deflate everywhere; withdraw it before accept().
        connection.protocol.available_extensions = None
    else:
        params = deflate_params(query)
        if params is not None:
            connection.protocol.available_extensions = [
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=params.server_no_context_takeover,
                    client_no_context_takeover=params.client_no_context_takeover,
                    server_max_window_bits=params.server_max_window_bits,
                    client_max_window_bits=params.client_max_window_bits,
                )
            ]
    return None


def process_response(
    connection: ServerConnection, request: Request, response: Response
) -> Response | None:
    path, _ = split_target(request.path)
    if path == "/set-cookie" and response.status_code == 101:
        for name, value in parse_qsl(urlsplit(request.path).query, keep_blank_values=True):
            response.headers["Set-Cookie"] = f"{name}={value}"
    return None


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # The first one the client offers that we know; unknown ones are not an error.
    return next((protocol for protocol in offered if protocol in SUBPROTOCOLS), None)


async def handler(connection: ServerConnection) -> None:
    assert connection.request is not None
    path, query = split_target(connection.request.path)
    with contextlib.suppress(ConnectionClosed):
        await BEHAVIOURS[path](connection, query)


async def run(options: ServerOptions) -> None:
    async with serve(
        handler,
        options.host,
        options.port,
        ssl=options.ssl_context(),
        compression="deflate",
        process_request=process_request,
        process_response=process_response,
        select_subprotocol=select_subprotocol,
        max_size=MAX_MESSAGE_SIZE,
        # Tests send their own pings; keepalive pings would interleave with them.
        ping_interval=None,
    ) as server:
        announce(server.sockets[0].getsockname()[1])
        await wait_until_stopped(options)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="websockets peer: %(message)s")
    options = parse_server_options(__doc__ or "")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(options))


if __name__ == "__main__":
    main()
