"""The ``aiohttp`` peer: the behaviours of :mod:`tests.peers.launcher` on ``aiohttp.web``.

Run as ``python -m tests.peers.aiohttp_server [--tls-cert PEM --tls-key PEM]`` from
the repository root; it prints ``LISTENING <port>`` once ready.

aiohttp always sets FIN on the frames it sends, so ``/fragment`` answers 404 here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import WSMsgType, web

from tests.peers.launcher import (
    BASIC_CREDENTIALS,
    BEARER_TOKEN,
    MAX_MESSAGE_SIZE,
    SUBPROTOCOLS,
    ServerOptions,
    announce,
    close_frame,
    parse_server_options,
    send_payload,
    wait_until_stopped,
    wants_deflate,
)

Query = dict[str, str]
Behaviour = Callable[[web.WebSocketResponse, web.Request, Query], Awaitable[None]]
Data = str | bytes


# Helpers


async def data_messages(ws: web.WebSocketResponse) -> AsyncIterator[Data]:
    """Yield text and binary messages until the close; answer pings if autoping is off."""
    async for message in ws:
        if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
            yield message.data
        elif message.type is WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is WSMsgType.ERROR:
            return


async def send_data(ws: web.WebSocketResponse, data: Data) -> None:
    if isinstance(data, str):
        await ws.send_str(data)
    else:
        await ws.send_bytes(data)


async def echo_n(ws: web.WebSocketResponse, n: int) -> bool:
    """Echo ``n`` messages; False if the connection closed first."""
    if n <= 0:
        return True
    echoed = 0
    async for data in data_messages(ws):
        await send_data(ws, data)
        echoed += 1
        if echoed == n:
            return True
    return False


# Behaviours


async def echo(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    async for data in data_messages(ws):
        await send_data(ws, data)


async def close(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    reason = query.get("reason", "").encode()
    await ws.close(code=int(query.get("code", "1000")), message=reason)


async def close_after(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    if await echo_n(ws, int(query.get("n", "1"))):
        await close(ws, request, query)


async def ping(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    # This connection has autoping off, so that the pong reaches us.
    payload = query.get("payload", "").encode()
    await ws.ping(payload)
    early: list[Data] = []
    async for message in ws:
        if message.type is WSMsgType.PONG and message.data == payload:
            break
        if message.type is WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
            early.append(message.data)
    else:
        return
    await ws.send_str(f"pong:{payload.decode()}")
    for data in early:
        await send_data(ws, data)
    await echo(ws, request, query)


async def count(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    messages = total = 0
    async for data in data_messages(ws):
        if data == "count?":
            await ws.send_str(f"count:{messages}")
        elif data == "bytes?":
            await ws.send_str(f"bytes:{total}")
        else:
            messages += 1
            total += len(data.encode() if isinstance(data, str) else data)


async def stall(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    transport = request.transport
    assert transport is not None
    # Below aiohttp's flow control, which only resumes reading when we read.
    transport.pause_reading()
    await asyncio.sleep(float(query.get("seconds", "30")))
    transport.resume_reading()
    # close() reads and drops data frames until the client's close frame.
    await ws.close(code=1000, message=b"stall over")


async def send(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    size = int(query.get("size", "64"))
    kind = query.get("type", "binary")
    for index in range(int(query.get("n", "100"))):
        await send_data(ws, send_payload(index, size, kind))
    if "close" in query:
        await ws.close(code=int(query["close"]), message=query.get("reason", "").encode())
    else:
        await echo(ws, request, query)


async def headers(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    report = {
        "headers": [
            [name.decode("latin-1"), value.decode("latin-1")] for name, value in request.raw_headers
        ],
        "path": request.raw_path,
        "subprotocol": ws.ws_protocol,
    }
    await ws.send_str(json.dumps(report))
    await echo(ws, request, query)


async def abort_after(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    if await echo_n(ws, int(query.get("n", "1"))):
        assert request.transport is not None
        request.transport.abort()


async def server_close_fast(ws: web.WebSocketResponse, request: web.Request, query: Query) -> None:
    transport = request.transport
    assert transport is not None
    # Below aiohttp, whose close() waits for the client's close frame.
    transport.write(close_frame(int(query.get("code", "1000")), query.get("reason", "")))
    transport.close()


BEHAVIOURS: dict[str, Behaviour] = {
    "/echo": echo,
    "/deflate": echo,
    "/close": close,
    "/close-after": close_after,
    "/ping": ping,
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


def authorized(request: web.Request) -> bool:
    value = request.headers.get("Authorization", "")
    user, password = BASIC_CREDENTIALS
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return value in (f"Basic {basic}", f"Bearer {BEARER_TOKEN}")


async def dispatch(request: web.Request) -> web.StreamResponse:
    path, query = request.path, dict(request.query)
    if path == "/reject":
        response = web.Response(status=int(query.get("status", "403")), text=query.get("body", ""))
        if query.get("location"):
            response.headers["Location"] = query["location"]
        if query.get("cookie"):
            response.headers["Set-Cookie"] = query["cookie"]
        return response
    if path == "/auth" and not authorized(request):
        return web.Response(
            status=401,
            text="authentication required\n",
            headers={"WWW-Authenticate": 'Basic realm="peers"'},
        )
    behaviour = BEHAVIOURS.get(path)
    if behaviour is None:
        return web.Response(status=404, text=f"no behaviour at {path}\n")

    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        compress=wants_deflate(path, query),
        autoping=path != "/ping",
        # aiohttp refuses a frame whose payload is >= max_msg_size: one more byte.
        max_msg_size=MAX_MESSAGE_SIZE + 1,
    )
    if path == "/set-cookie":
        for name, value in request.query.items():
            ws.headers.add("Set-Cookie", f"{name}={value}")
    await ws.prepare(request)
    with contextlib.suppress(ConnectionError):
        await behaviour(ws, request, query)
    return ws


async def run(options: ServerOptions) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.create_server((options.host, options.port), family=family)
    try:
        site = web.SockSite(runner, sock, ssl_context=options.ssl_context())
        await site.start()
        announce(sock.getsockname()[1])
        await wait_until_stopped(options)
    finally:
        await runner.cleanup()
        sock.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="aiohttp peer: %(message)s")
    options = parse_server_options(__doc__ or "")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(options))


if __name__ == "__main__":
    main()
