"""Real WebSocket peers for the integration tests, each in its own subprocess.

Three third-party servers speak the same contract, so one parametrized test can
run against all of them:

========== ====================================== ==========================
name       server                                 source
========== ====================================== ==========================
websockets ``websockets.asyncio.server.serve``    ``websockets_server.py``
aiohttp    ``aiohttp.web`` + ``WebSocketResponse`` ``aiohttp_server.py``
ws         Node.js ``ws`` (npm, locked)           ``ws_server.js``
========== ====================================== ==========================

Contract
--------

A peer binds 127.0.0.1 (or ``--host``, e.g. ``::1``) on a port the kernel picks,
prints exactly one line ``LISTENING <port>`` on stdout, and logs only to stderr.
Command-line options:
``--tls-cert PEM --tls-key PEM`` serve wss; ``--require-client-cert CA_PEM``
also demands a client certificate signed by that CA; ``--parent-watch`` exits
when stdin reaches EOF, so a peer never outlives a killed test run.

The request path picks the behaviour and the query string tunes it. Each path
is also the name of the capability that says a peer implements it:

``/echo``
    Echo every message with its type. Every path accepts messages up to
    :data:`MAX_MESSAGE_SIZE` and closes with 1009 above it. No path but
    ``/deflate`` negotiates permessage-deflate, unless its query has ``deflate=1``.
``/deflate?server_no_context_takeover=1&client_no_context_takeover=1&server_max_window_bits=10&client_max_window_bits=9&threshold=0``
    ``/echo`` with permessage-deflate (RFC 7692) accepted when the client offers
    it. Every parameter is optional; without any, each server uses its library's
    defaults. On any path, ``deflate=1`` enables permessage-deflate the same way
    (``/fragment?n=3&deflate=1`` sends fragmented compressed messages). With the
    capability ``deflate-params`` the server also honours the parameters: it
    resets its own context after every message, demands that the client resets
    its context, and compresses with a window of 2**N bytes and demands one of
    at most 2**N from the client. ``threshold`` (Node ws only) is the smallest
    message the server compresses; ws's default is 1024.
``/close?code=4001&reason=bye``
    Close with that code and reason right after the handshake.
``/close-after?n=3&code=1000&reason=done``
    Echo n messages, then close.
``/ping?payload=hello``
    Ping with that payload; once the matching pong arrives, send the text
    ``pong:<payload>``, then echo (messages received meanwhile are echoed after it).
``/fragment?n=3``
    Echo every message as one fragmented message of n frames, same type.
``/count``
    Count data messages. The text ``count?`` is answered with ``count:<n>`` and
    ``bytes?`` with ``bytes:<total payload bytes>``; the queries themselves are
    not counted. Text counts as its UTF-8 length.
``/stall?seconds=30``
    Stop reading the socket after the handshake, so the client's writes back up
    (TCP backpressure). After ``seconds`` (a float) resume reading, discard
    whatever arrives, and close with 1000 ``stall over``.
``/send?n=100&size=64&type=binary&close=1000&reason=``
    Send n messages built by :func:`send_payload`, then close with ``close`` and
    ``reason``; without ``close``, stay open and echo.
``/headers``
    Send one text message, a JSON object: ``headers`` (``[name, value]`` pairs in
    received order, with the casing the server exposes), ``path`` (path and query
    as received) and ``subprotocol`` (or null); then echo.
``/abort-after?n=2``
    Echo n messages, then drop the TCP connection without a close frame.
``/reject?status=403&body=nope&location=&cookie=``
    Refuse the upgrade with a plain HTTP response of that status and body, with a
    ``Location`` header when ``location`` is given (to test redirects) and a
    ``Set-Cookie`` header holding ``cookie`` when given.
``/set-cookie?name=value; Path=/&other=2``
    Accept with one ``Set-Cookie: <name>=<value>`` on the 101 per query parameter
    (the value may carry attributes); then behave as ``/headers``.
``/auth``
    Require ``Authorization: Basic`` ``user:pass`` or ``Bearer token123``, else
    401 with ``WWW-Authenticate``; then behave as ``/headers``.
``/server-close-fast?code=1000&reason=``
    Send a close frame and close the TCP connection at once, without waiting for
    the client's close frame.

Subprotocols: every path accepts ``chat`` and ``superchat`` and picks the first
one the client offers; others are ignored (no subprotocol, no error).

Any other path is refused with 404. The capability ``client-cert`` means that the
peer supports ``--require-client-cert``.

Quirks
------

* aiohttp cannot send a fragmented message: ``/fragment`` answers 404 there.
* ``/stall`` over TLS: the Python peers pause the application side of asyncio's
  TLS transport, which keeps reading the socket until 256 KiB of records wait in
  its buffer. Writes still block, a little later than over plain TCP.
* aiohttp logs a warning to stderr when the client offers only unknown
  subprotocols; the connection proceeds without one, as on the other peers.
* aiohttp's permessage-deflate has no server-side parameters: it answers what
  the client asks for (``server_no_context_takeover``, ``server_max_window_bits``)
  and ignores the ``deflate`` parameters of the query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    # Type-only: the servers import this module and need not load trustme.
    from tests.peers.certs import TLSFiles

PEERS_DIR = Path(__file__).resolve().parent
REPO_ROOT = PEERS_DIR.parent.parent

# The largest message the integration tests exchange; each peer accepts this much
# and no more.
MAX_MESSAGE_SIZE = 64 * 1024 * 1024

SUBPROTOCOLS = ("chat", "superchat")
BASIC_CREDENTIALS = ("user", "pass")
BEARER_TOKEN = "token123"

# A peer imports its server library and binds a socket; 20 s leaves room for a
# loaded CI machine and a cold start of Node.
STARTUP_TIMEOUT = 20.0
# Time between SIGTERM and SIGKILL when stopping a peer.
STOP_GRACE = 5.0

PeerName = Literal["websockets", "aiohttp", "ws"]
PEER_NAMES: tuple[PeerName, ...] = ("websockets", "aiohttp", "ws")

ALL_CAPABILITIES = frozenset(
    {
        "echo",
        "deflate",
        "close",
        "close-after",
        "ping",
        "fragment",
        "count",
        "stall",
        "send",
        "headers",
        "set-cookie",
        "abort-after",
        "reject",
        "auth",
        "subprotocols",
        "server-close-fast",
        "client-cert",
        "deflate-params",
    }
)
CAPABILITIES: Mapping[PeerName, frozenset[str]] = {
    "websockets": ALL_CAPABILITIES,
    "aiohttp": ALL_CAPABILITIES - {"fragment", "deflate-params"},
    "ws": ALL_CAPABILITIES,
}

#: The query parameters of ``/deflate`` that set permessage-deflate parameters.
DEFLATE_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
DEFLATE_WINDOWS = ("server_max_window_bits", "client_max_window_bits")


def send_payload(index: int, size: int, kind: str = "binary") -> bytes | str:
    """Message number ``index`` of ``/send``: receivers check order and integrity with it.

    Binary: the index as 8 bytes big-endian, then byte ``j`` is ``(index + j) % 256``.
    Text: ``"<index>:"`` padded with ``x``. Both are cut to ``size``, so sizes below
    8 (binary) or the prefix length (text) carry only part of the index.
    """
    if kind == "text":
        return (f"{index}:" + "x" * size)[:size]
    # cycle[j % 256] == (index + j) % 256, so repeating it yields the filler at any offset.
    cycle = bytes((index + j) & 0xFF for j in range(256))
    filler = cycle * (size // 256 + 1)
    return (index.to_bytes(8, "big") + filler[8:size])[:size]


# ---------------------------------------------------------------------------
# Server side: helpers shared by websockets_server.py and aiohttp_server.py
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    """The command line of a Python peer (``ws_server.js`` mirrors it)."""

    host: str
    port: int
    tls_cert: str | None
    tls_key: str | None
    client_ca: str | None
    parent_watch: bool

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.client_ca)
        return context


def parse_server_options(description: str, argv: Sequence[str] | None = None) -> ServerOptions:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", metavar="PEM", help="serve wss with this certificate chain")
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    parser.add_argument(
        "--require-client-cert", metavar="CA_PEM", help="demand a client cert signed by this CA"
    )
    parser.add_argument(
        "--parent-watch", action="store_true", help="exit when stdin reaches end of file"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.require_client_cert is not None and args.tls_cert is None:
        parser.error("--require-client-cert needs --tls-cert")
    return ServerOptions(
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.require_client_cert,
        parent_watch=args.parent_watch,
    )


def announce(port: int) -> None:
    """Print the one line the launcher waits for. Nothing else goes to stdout."""
    print(f"LISTENING {port}", flush=True)


async def wait_until_stopped(options: ServerOptions) -> None:
    """Return when the launcher goes away (stdin EOF with --parent-watch), else never."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    if options.parent_watch:

        def watch_stdin() -> None:
            # os.read returns b"" at EOF: the launcher closed the pipe, or died.
            with contextlib.suppress(OSError):
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            # The loop may already be closed when the server stopped another way.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopped.set_result, None)

        threading.Thread(target=watch_stdin, name="parent-watch", daemon=True).start()
    await stopped


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """Split a request target into its path and its query (the first value of a name wins,
    as in aiohttp and Node's URLSearchParams)."""
    parts = urlsplit(target)
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(name, value)
    return parts.path, query


def wants_deflate(path: str, query: Mapping[str, str]) -> bool:
    """Whether a request negotiates permessage-deflate: ``/deflate`` or ``deflate=1``."""
    return path == "/deflate" or query.get("deflate") == "1"


@dataclass(frozen=True)
class DeflateParams:
    """The permessage-deflate parameters of a ``/deflate`` query (see the contract)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None


def deflate_params(query: Mapping[str, str]) -> DeflateParams | None:
    """The permessage-deflate parameters a query sets, or None when it sets none."""
    if not any(name in query for name in DEFLATE_FLAGS + DEFLATE_WINDOWS):
        return None

    def bits(name: str) -> int | None:
        return int(query[name]) if name in query else None

    return DeflateParams(
        server_no_context_takeover=query.get("server_no_context_takeover") == "1",
        client_no_context_takeover=query.get("client_no_context_takeover") == "1",
        server_max_window_bits=bits("server_max_window_bits"),
        client_max_window_bits=bits("client_max_window_bits"),
    )


def close_frame(code: int, reason: str) -> bytes:
    """An unmasked close frame, for peers that write one below their library."""
    payload = code.to_bytes(2, "big") + reason.encode()
    if len(payload) > 125:
        raise ValueError("close reason too long")
    return bytes([0x88, len(payload)]) + payload


# ---------------------------------------------------------------------------
# Test side: start, describe and stop peers
# ---------------------------------------------------------------------------


class PeerError(RuntimeError):
    """A peer could not be started."""


@dataclass(frozen=True)
class Peer:
    """Where a running peer listens and what it can do."""

    name: PeerName
    port: int
    tls: bool = False
    capabilities: frozenset[str] = field(default=ALL_CAPABILITIES)
    #: The address the peer listens on.
    bind: str = "127.0.0.1"

    @property
    def host(self) -> str:
        # The server certificate names both; wss tests go through the host name.
        return "localhost" if self.tls else self.bind

    def url(self, path: str = "/echo") -> str:
        """``ws://127.0.0.1:PORT/path`` or ``wss://localhost:PORT/path`` (``[::1]`` for IPv6)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        scheme = "wss" if self.tls else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def supports(self, capability: str) -> bool:
        if capability not in ALL_CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return capability in self.capabilities


class PeerProcess:
    """A running peer subprocess: :attr:`peer` says where, :meth:`stop` ends it."""

    def __init__(self, peer: Peer, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
        self.peer = peer
        self.process = process
        self.stderr_path = stderr_path

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Terminate, kill after ``grace`` seconds, and reap the process."""
        self.terminate()
        self.wait(grace)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def wait(self, grace: float = STOP_GRACE) -> None:
        _reap(self.process, grace)

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _reap(process: subprocess.Popen[bytes], grace: float) -> None:
    """Wait up to ``grace`` seconds, then kill; always reap. The stdout pump closes stdout."""
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


def _command(name: PeerName) -> list[str]:
    if name == "ws":
        node = shutil.which("node")
        if node is None:
            raise PeerError("the ws peer needs Node.js: `node` is not on PATH")
        if not (PEERS_DIR / "node_modules" / "ws" / "package.json").is_file():
            raise PeerError(
                "the ws peer needs its npm dependencies: run `npm ci --prefix tests/peers`"
            )
        return [node, str(PEERS_DIR / "ws_server.js")]
    # -m with the repository as working directory, so the servers import tests.peers.
    return [sys.executable, "-m", f"tests.peers.{name}_server"]


def start_peer(
    name: PeerName,
    *,
    tls: TLSFiles | None = None,
    require_client_cert: bool = False,
    log_dir: Path | None = None,
    timeout: float = STARTUP_TIMEOUT,
    bind: str = "127.0.0.1",
) -> PeerProcess:
    """Start peer ``name`` and wait for its ``LISTENING`` line.

    With ``tls`` it serves wss with the server certificate; with
    ``require_client_cert`` it also demands a client certificate from ``tls.ca``.
    Its stderr goes to a file in ``log_dir`` (or a temporary directory), quoted in
    the :class:`PeerError` raised if it exits or stays silent for ``timeout`` seconds.
    """
    if name not in CAPABILITIES:
        raise ValueError(f"unknown peer {name!r}; expected one of {PEER_NAMES}")
    command = [*_command(name), "--parent-watch", "--host", bind]
    if tls is not None:
        command += ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
        if require_client_cert:
            command += ["--require-client-cert", str(tls.ca)]
    elif require_client_cert:
        raise ValueError("require_client_cert needs tls")

    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="rapidws-peers-"))
    suffix = ("-tls" if tls else "") + ("-client-cert" if require_client_cert else "")
    suffix += "" if bind == "127.0.0.1" else "-" + bind.replace(":", "_")
    stderr_path = log_dir / f"{name}{suffix}.log"
    try:
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
    except OSError as exc:
        raise PeerError(f"cannot run {command[0]}: {exc}") from exc

    port = _read_port(process, timeout)
    if isinstance(port, str):
        problem = port
        _reap(process, grace=0.0)
        log = stderr_path.read_text(errors="replace").strip() or "(nothing)"
        raise PeerError(
            f"peer {name}{suffix} {problem}\ncommand: {' '.join(command)}\nstderr:\n{log}"
        )

    peer = Peer(name, port, tls=tls is not None, capabilities=CAPABILITIES[name], bind=bind)
    return PeerProcess(peer, process, stderr_path)


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int | str:
    """The port from the ``LISTENING`` line, or a description of what went wrong.

    A daemon thread reads stdout until EOF, so the pipe never fills up, and this
    works where select() cannot wait on pipes.
    """
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        with contextlib.suppress(OSError, ValueError), stdout:
            for line in stdout:
                lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, name=f"peer-stdout-{process.pid}", daemon=True).start()

    deadline = time.monotonic() + timeout
    unexpected: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            return f"printed no LISTENING line within {timeout:g} s{_quote(unexpected)}"
        if not line:
            code = process.wait()
            return f"exited with status {code} before listening{_quote(unexpected)}"
        text = line.decode(errors="replace").strip()
        match text.split():
            case ["LISTENING", port] if port.isdigit():
                return int(port)
            case _:
                unexpected.append(text)


def _quote(stdout_lines: list[str]) -> str:
    return f"; it printed instead: {stdout_lines}" if stdout_lines else ""


class PeerPool:
    """Peers started on first use and stopped together: one per (name, TLS mode)."""

    def __init__(self, tls: TLSFiles, log_dir: Path) -> None:
        self.tls = tls
        self.log_dir = log_dir
        self._running: dict[tuple[PeerName, bool, bool, str], PeerProcess] = {}
        # A peer that failed to start fails every later request at once, rather
        # than making each test wait for its own startup timeout.
        self._failed: dict[tuple[PeerName, bool, bool, str], PeerError] = {}

    def get(
        self,
        name: PeerName,
        *,
        tls: bool = False,
        require_client_cert: bool = False,
        bind: str = "127.0.0.1",
    ) -> Peer:
        key = (name, tls, require_client_cert, bind)
        if key in self._failed:
            raise PeerError(str(self._failed[key]))
        if key not in self._running:
            try:
                self._running[key] = start_peer(
                    name,
                    tls=self.tls if tls else None,
                    require_client_cert=require_client_cert,
                    log_dir=self.log_dir,
                    bind=bind,
                )
            except PeerError as exc:
                self._failed[key] = exc
                raise
        return self._running[key].peer

    def processes(self) -> Iterator[PeerProcess]:
        return iter(self._running.values())

    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop every peer: SIGTERM to all, then reap each (SIGKILL after ``grace``)."""
        running = list(self._running.values())
        self._running.clear()
        for process in running:
            process.terminate()
        for process in running:
            process.wait(grace)
