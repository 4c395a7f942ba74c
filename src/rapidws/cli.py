"""The ``rapidws`` command: an interactive client, a local echo server, a demo.

::

    rapidws connect ws://127.0.0.1:8765/          # lines in, messages out
    printf 'a\\nb\\n' | rapidws connect ws://...    # piped: send, print replies, close
    rapidws echo-server --port 8765 [--tls]
    rapidws demo                                  # the quick start, against a local server
    rapidws fingerprint [--impersonate chrome]    # JA3/JA4 and the upgrade request we send
    rapidws fingerprint --list                    # the impersonation profiles
    rapidws autobahn ws://127.0.0.1:9001 --report-dir reports   # Autobahn testsuite client

``connect`` prints received messages on stdout (text as is, binary as
``<binary N bytes: hex...>``) and everything else (connection, close, errors)
on stderr, so its stdout can be piped on. Exit codes: 0 after a normal close
(1000, 1001, or no code), 1 on a connection error or any other close, 2 on a
usage error, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import stat
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from . import __version__
from .aio.echo import serve_echo
from .aio.session import AsyncSession
from .aio.websocket import AsyncWebSocket
from .errors import WebSocketClosed, WebSocketError
from .flags import WsFlag

__all__ = ["main"]

#: Exit codes.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

#: Close codes that end ``connect`` with exit code 0.
_NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})
#: Bytes of a binary message shown in hex: enough to recognise it, one line.
_HEX_PREFIX = 32
#: Longest stdin line ``connect`` sends: the default max_message_size of a session.
_MAX_LINE = 4 * 1024 * 1024
#: Seconds ``connect`` waits for the close handshake before dropping TCP.
_CLOSE_TIMEOUT = 2.0
#: ``autobahn``: the largest case message is 16 MiB (9.1.6, 9.2.6); this leaves room.
_AUTOBAHN_MAX_MESSAGE = 64 * 1024 * 1024
#: ``autobahn``: seconds the fuzzing server may take to write its report after the run.
_REPORT_WAIT = 60.0
#: Autobahn verdicts that pass: NON-STRICT and INFORMATIONAL are conformant.
_PASSING = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``rapidws`` command with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("rapidws: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapidws", description="A fast asyncio WebSocket client: command-line tools."
    )
    parser.add_argument("--version", action="version", version=f"rapidws {__version__}")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    connect = commands.add_parser(
        "connect",
        help="interactive client: send stdin lines, print received messages",
        description=(
            "Send each line of stdin as a message and print every message received. "
            "At the end of stdin, keep printing until --wait seconds pass without a "
            "message, then close. Exit code: 0 after a normal close, 1 on errors, "
            "130 on Ctrl-C."
        ),
    )
    connect.add_argument("url", help="ws:// or wss:// URL")
    connect.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="extra handshake header (repeatable)",
    )
    connect.add_argument(
        "-s",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="offer this subprotocol (repeatable)",
    )
    connect.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the TLS certificate"
    )
    connect.add_argument("--cacert", metavar="PEM", help="verify the server with this CA bundle")
    kind = connect.add_mutually_exclusive_group()
    kind.add_argument(
        "--json", action="store_true", help="each line must be JSON; send it compact as TEXT"
    )
    kind.add_argument("--binary", action="store_true", help="send each line as a BINARY message")
    connect.add_argument(
        "--wait",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="after the end of stdin, close once nothing arrived for this long (default: 1.0)",
    )
    connect.set_defaults(command="connect", run=_run_connect)

    echo = commands.add_parser(
        "echo-server",
        help="run a local WebSocket echo server until Ctrl-C",
        description="Echo every message back with its type. Stop with Ctrl-C.",
    )
    echo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    echo.add_argument("--port", type=_port, default=8765, help="port (0: any free port)")
    echo.add_argument(
        "--tls",
        action="store_true",
        help="serve wss://, with --certfile/--keyfile or a throwaway certificate (needs trustme)",
    )
    echo.add_argument("--certfile", metavar="PEM", help="server certificate chain for --tls")
    echo.add_argument("--keyfile", metavar="PEM", help="private key of --certfile")
    echo.add_argument(
        "-s",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="support this subprotocol (repeatable)",
    )
    echo.set_defaults(command="echo-server", run=_run_echo_server)

    demo = commands.add_parser(
        "demo",
        help="run the quick start against an in-process echo server",
        description="Start an echo server on a free port and talk to it through the public API.",
    )
    demo.set_defaults(command="demo", run=_run_demo)

    fingerprint = commands.add_parser(
        "fingerprint",
        help="show the TLS fingerprint (JA3, JA4) and upgrade request rapidws sends",
        description=(
            "Connect through TLS to a local capture server, then print the ClientHello's "
            "JA3 and JA4, the upgrade request exactly as sent and, with --impersonate, "
            "how each field compares with that browser's. Needs the 'trustme' package."
        ),
    )
    fingerprint.add_argument(
        "--impersonate", metavar="NAME", help="browser profile, e.g. chrome, chrome131, firefox"
    )
    fingerprint.add_argument(
        "--list", action="store_true", help="list the profiles with their browsers' JA4"
    )
    fingerprint.set_defaults(command="fingerprint", run=_run_fingerprint)

    autobahn = commands.add_parser(
        "autobahn",
        help="run the Autobahn testsuite cases of a fuzzing server against this client",
        description=(
            "Drive the client through every case a running Autobahn fuzzing server offers "
            "(for example `kosoku -m fuzzingserver 127.0.0.1:9001 -i '1.*' -o reports`; the "
            "server chooses the cases), echoing each message, then ask it to write its "
            "report. With --report-dir, wait for that report and print the verdicts per "
            "category. Exit code: 0 when every case ran (and passed), 1 otherwise."
        ),
    )
    autobahn.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    autobahn.add_argument(
        "--agent", default="rapidws", help="name of the client in the report (default: rapidws)"
    )
    autobahn.add_argument(
        "--report-dir",
        metavar="DIR",
        help="the server's report directory (kosoku -o DIR): print its verdicts",
    )
    autobahn.add_argument(
        "--case-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="give up on a case that takes longer than this (default: 60)",
    )
    autobahn.add_argument("-v", "--verbose", action="store_true", help="print how each case ended")
    autobahn.set_defaults(command="autobahn", run=_run_autobahn)
    return parser


def _header(value: str) -> tuple[str, str]:
    name, sep, field = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), field.strip()


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {value!r}")
    return port


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value}")
    return seconds


def _note(message: object) -> None:
    """A line on stderr: connection news and errors, never messages."""
    print(f"rapidws: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# rapidws connect
# ---------------------------------------------------------------------------


def _run_connect(args: argparse.Namespace) -> int:
    return asyncio.run(_connect(args))


async def _connect(args: argparse.Namespace) -> int:
    verify: bool | str = True
    if args.insecure:
        verify = False
    elif args.cacert:
        verify = args.cacert
    try:
        async with AsyncSession(verify=verify) as session:
            try:
                ws = await session.ws_connect(
                    args.url, headers=args.header, subprotocols=args.subprotocol
                )
            except (WebSocketError, OSError, ValueError, TypeError) as exc:
                _note(f"cannot connect to {args.url}: {exc}")
                return EXIT_ERROR
            info = f"connected to {args.url}"
            if ws.subprotocol:
                info += f" (subprotocol {ws.subprotocol})"
            _note(info)
            return await _Client(ws, args).run()
    except WebSocketError as exc:
        _note(exc)
        return EXIT_ERROR


class _Client:
    """Pumps stdin lines to the WebSocket and received messages to stdout."""

    def __init__(self, ws: AsyncWebSocket, args: argparse.Namespace) -> None:
        self.ws = ws
        self.json: bool = args.json
        self.binary: bool = args.binary
        self.wait: float = args.wait
        #: Set on every message received: restarts the quiet period after EOF.
        self.received = asyncio.Event()

    async def run(self) -> int:
        ws = self.ws
        receiver = asyncio.create_task(self._receive())
        sender = asyncio.create_task(self._send())
        try:
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done and not receiver.done():
                sender.result()  # a failed send is reported like a failed receive
                await self._quiet_period(receiver)
                if not receiver.done():
                    await ws.close(timeout=_CLOSE_TIMEOUT)
            return await receiver
        except WebSocketClosed as exc:
            return self._report_close(exc)
        finally:
            if sender.done() and not sender.cancelled():
                sender.exception()  # retrieved: the receiver's outcome is what we report
            sender.cancel()
            if not receiver.done():
                receiver.cancel()
            with contextlib.suppress(Exception):
                await ws.close(timeout=_CLOSE_TIMEOUT)

    async def _quiet_period(self, receiver: asyncio.Task[int]) -> None:
        """Keep receiving until ``wait`` seconds pass with nothing received."""
        while not receiver.done():
            self.received.clear()
            got = asyncio.ensure_future(self.received.wait())
            try:
                await asyncio.wait(
                    {got, receiver}, timeout=self.wait, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                got.cancel()
            if not self.received.is_set():
                return

    async def _receive(self) -> int:
        """Print messages until the connection closes; return the exit code."""
        out = sys.stdout
        ws = self.ws
        while True:
            try:
                data, flags = await ws.recv()
            except WebSocketClosed as exc:
                return self._report_close(exc)
            self.received.set()
            try:
                _print_message(out, data, flags)
            except BrokenPipeError:
                # Whoever read stdout is gone (``rapidws connect ... | head``): stop quietly.
                _discard_stdout()
                return EXIT_OK

    async def _send(self) -> None:
        ws = self.ws
        async with _StdinLines() as lines:
            while True:
                line = await lines.readline()
                if not line:
                    return
                payload = line[:-1] if line.endswith(b"\n") else line
                if payload.endswith(b"\r"):
                    payload = payload[:-1]
                if self.binary:
                    await ws.send_bytes(payload)
                    continue
                try:
                    text = payload.decode()
                except UnicodeDecodeError as exc:
                    _note(f"line is not valid UTF-8, not sent: {exc}")
                    continue
                if self.json:
                    try:
                        obj = json.loads(text)
                    except ValueError as exc:
                        _note(f"invalid JSON, not sent: {exc}")
                        continue
                    await ws.send_json(obj)
                else:
                    await ws.send_str(text)

    def _report_close(self, exc: WebSocketClosed) -> int:
        ws = self.ws
        code = ws.close_code if ws.close_code is not None else exc.code
        reason = ws.close_reason if ws.close_code is not None else exc.message
        normal = code in _NORMAL_CLOSE_CODES
        message = f"connection closed with code {code}"
        if reason:
            message += f": {reason}"
        if not normal and exc.__cause__ is not None:
            message += f" ({exc.__cause__})"
        _note(message)
        return EXIT_OK if normal else EXIT_ERROR


def _print_message(out: TextIO, data: bytes, flags: WsFlag) -> None:
    if flags & WsFlag.TEXT:
        out.write(data.decode() + "\n")
    else:
        out.write(_describe_binary(data) + "\n")
    out.flush()


def _discard_stdout() -> None:
    # Point fd 1 at /dev/null so the interpreter's final flush does not fail again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _describe_binary(data: bytes) -> str:
    shown = data[:_HEX_PREFIX].hex()
    if len(data) > _HEX_PREFIX:
        shown += "..."
    return f"<binary {len(data)} bytes: {shown}>"


class _StdinLines:
    """Lines of stdin, read without blocking the event loop.

    A pipe or socket is read by the event loop itself (``connect_read_pipe``)
    on a duplicate of fd 0, so closing the transport leaves ``sys.stdin``
    alone. A terminal, a regular file or anything else is read by a daemon
    thread: a terminal shares its file description with stdout, so it must not
    be made non-blocking, and a thread blocked in ``readline`` must not keep
    the process alive after the connection is gone.
    """

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._queue: asyncio.Queue[bytes] | None = None
        self._fd = -1

    async def __aenter__(self) -> _StdinLines:
        loop = asyncio.get_running_loop()
        try:
            fd = sys.stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):  # no stdin, or not a real file
            fd, mode = -1, 0
        if sys.platform != "win32" and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            reader = asyncio.StreamReader(limit=_MAX_LINE)
            pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
            try:
                self._transport, _ = await loop.connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), pipe
                )
            except (OSError, ValueError):
                pipe.close()
            else:
                self._reader = reader
                self._fd = fd
                return self
        self._queue = asyncio.Queue()
        threading.Thread(
            target=_read_lines, args=(loop, self._queue), name="rapidws-stdin", daemon=True
        ).start()
        return self

    async def readline(self) -> bytes:
        """The next line with its newline, or ``b""`` at the end of stdin."""
        if self._reader is None:
            assert self._queue is not None
            return await self._queue.get()
        while True:
            try:
                return await self._reader.readline()
            except ValueError:  # the StreamReader dropped the line
                _note(f"line longer than {_MAX_LINE} bytes, not sent")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            # The duplicate shares the file description: undo O_NONBLOCK for whoever reads next.
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, True)


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    while True:
        try:
            line = sys.stdin.buffer.readline()
        except (AttributeError, OSError, ValueError):  # no stdin, or closed
            line = b""
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return
        if not line:
            return


# ---------------------------------------------------------------------------
# rapidws echo-server
# ---------------------------------------------------------------------------


def _run_echo_server(args: argparse.Namespace) -> int:
    if (args.certfile is None) != (args.keyfile is None):
        _note("--certfile and --keyfile go together")
        return EXIT_USAGE
    if args.certfile is not None and not args.tls:
        _note("--certfile/--keyfile need --tls")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="rapidws-") as tmp:
        context: ssl.SSLContext | None = None
        if args.tls:
            try:
                context = _server_context(args.certfile, args.keyfile, tmp)
            except (OSError, ssl.SSLError, RuntimeError) as exc:
                _note(exc)
                return EXIT_ERROR
        try:
            return asyncio.run(_echo_server(args, context))
        except KeyboardInterrupt:
            print("rapidws: echo server stopped", file=sys.stderr)
            return EXIT_OK


def _server_context(certfile: str | None, keyfile: str | None, tmp: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if certfile is not None and keyfile is not None:
        context.load_cert_chain(certfile, keyfile)
        return context
    try:
        import trustme
    except ImportError:
        raise RuntimeError(
            "--tls without --certfile/--keyfile makes a throwaway certificate with the "
            "'trustme' package, which is not installed: pip install trustme, "
            "or pass --certfile and --keyfile"
        ) from None
    ca = trustme.CA()
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(context)
    ca_path = os.path.join(tmp, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    print(
        f"throwaway certificate for localhost, 127.0.0.1 and ::1, issued by the CA in {ca_path}\n"
        f"  connect with: rapidws connect --cacert {ca_path} URL   (or --insecure)",
        file=sys.stderr,
    )
    return context


async def _echo_server(args: argparse.Namespace, context: ssl.SSLContext | None) -> int:
    try:
        server = await serve_echo(args.host, args.port, ssl=context, subprotocols=args.subprotocol)
    except OSError as exc:
        _note(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_ERROR
    async with server:
        print(f"listening on {server.url}", flush=True)
        print("press Ctrl-C to stop", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    return EXIT_OK  # not reached: the wait ends with Ctrl-C


# ---------------------------------------------------------------------------
# rapidws demo
# ---------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo())


async def _demo() -> int:
    async with await serve_echo() as server:
        url = server.url
        print(f"echo server listening on {url}")
        async with AsyncSession() as s, s.ws_connect(url) as ws:
            print(f"= connected to {url}")

            text = "Hello, World!"
            await ws.send_str(text)
            print(f"> {text}")
            print(f"< {await ws.recv_str()}")

            obj = {"lib": "rapidws", "fast": True, "n": [1, 2, 3]}
            await ws.send_json(obj)
            print(f"> JSON {json.dumps(obj)}")
            print(f"< JSON {json.dumps(await ws.recv_json())}")

            blob = bytes(range(16))
            await ws.send_bytes(blob)
            print(f"> {_describe_binary(blob)}")
            data, _ = await ws.recv()
            print(f"< {_describe_binary(data)}")

            await ws.ping(b"are you there?")
            print("> PING are you there? (rapidws handles the PONG)")
            await ws.send_str("still here")
            print("> still here")
            print(f"< {await ws.recv_str()}")

            await ws.close()
            print(f"= closed with code {ws.close_code}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# rapidws fingerprint
# ---------------------------------------------------------------------------


def _run_fingerprint(args: argparse.Namespace) -> int:
    from . import cli_fingerprint, impersonate

    if args.list:
        cli_fingerprint.list_profiles(sys.stdout)
        return EXIT_OK
    if args.impersonate is not None:
        try:
            impersonate.get(args.impersonate)
        except ValueError as exc:
            _note(exc)
            return EXIT_USAGE
    return cli_fingerprint.run(args.impersonate)


# ---------------------------------------------------------------------------
# rapidws autobahn
# ---------------------------------------------------------------------------


def _run_autobahn(args: argparse.Namespace) -> int:
    return asyncio.run(_autobahn(args))


async def _autobahn(args: argparse.Namespace) -> int:
    """The client side of the Autobahn fuzzing server protocol.

    ``/getCaseCount`` gives the number of cases; ``/runCase?case=N&agent=A``
    runs case N, the client echoing every message with its type until the
    connection closes; ``/updateReports?agent=A`` makes the server write its
    report (JSON and HTML).
    """
    base = args.url.rstrip("/")
    agent = quote(args.agent, safe="")
    started = time.time()
    endings: Counter[str] = Counter()
    async with AsyncSession() as session:
        try:
            async with session.ws_connect(f"{base}/getCaseCount") as ws:
                count = int(await ws.recv_str(timeout=args.case_timeout))
        except (WebSocketError, OSError, ValueError) as exc:
            _note(f"cannot get the case count from {base}: {exc}")
            return EXIT_ERROR
        _note(f"running {count} cases against {base} as agent {args.agent!r}")
        for index in range(1, count + 1):
            url = f"{base}/runCase?case={index}&agent={agent}"
            try:
                ending = await asyncio.wait_for(_echo_case(session, url), args.case_timeout)
            except asyncio.TimeoutError:
                _note(f"case {index} did not end within {args.case_timeout} s")
                return EXIT_ERROR
            endings[ending] += 1
            if args.verbose:
                print(f"case {index}: {ending}", file=sys.stderr, flush=True)
        # The server ends the run on this one and may drop it without a close frame.
        with contextlib.suppress(WebSocketError, OSError):
            async with session.ws_connect(f"{base}/updateReports?agent={agent}") as ws:
                await ws.recv(timeout=args.case_timeout)
    elapsed = time.time() - started
    summary = ", ".join(f"{ending} x{n}" for ending, n in sorted(endings.items()))
    print(f"ran {count} cases in {elapsed:.1f} s; {summary}")
    if args.report_dir is None:
        print("the verdicts are in the server's report (kosoku -o DIR: DIR/index.html)")
        return EXIT_OK
    index_path = Path(args.report_dir) / "index.json"
    report = await _wait_for_report(index_path, started)
    if report is None:
        _note(f"no report at {index_path} within {_REPORT_WAIT:g} s")
        return EXIT_ERROR
    cases = report.get(args.agent)
    if not cases:
        _note(f"{index_path} has no results for agent {args.agent!r}")
        return EXIT_ERROR
    return _print_verdicts(cases)


async def _echo_case(session: AsyncSession, url: str) -> str:
    """Echo every message of one case with its type; how the connection ended."""
    try:
        async with session.ws_connect(url, max_message_size=_AUTOBAHN_MAX_MESSAGE) as ws:
            while True:
                data, flags = await ws.recv()
                if flags & WsFlag.TEXT:
                    await ws.send(data, WsFlag.TEXT)
                else:
                    await ws.send_bytes(data)
    except WebSocketClosed as exc:
        return f"closed {exc.code}"
    except (WebSocketError, OSError) as exc:
        return f"failed ({type(exc).__name__})"


async def _wait_for_report(path: Path, since: float) -> dict[str, Any] | None:
    """The report's index once the server has written it after ``since``."""
    deadline = time.monotonic() + _REPORT_WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if path.stat().st_mtime >= since - 1:
                index: dict[str, Any] = json.loads(path.read_text())
                return index
        await asyncio.sleep(0.1)
    return None


def _print_verdicts(cases: dict[str, dict[str, Any]]) -> int:
    """Print passed/total per category and each failed case; the exit code."""

    def sort_key(case_id: str) -> list[int]:
        return [int(part) if part.isdigit() else 0 for part in case_id.split(".")]

    totals: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failed: list[str] = []
    for case_id in sorted(cases, key=sort_key):
        verdict = cases[case_id]
        category = case_id.split(".", 1)[0]
        totals[category] += 1
        behavior, close = verdict.get("behavior"), verdict.get("behaviorClose")
        if behavior in _PASSING and close in _PASSING:
            passed[category] += 1
        else:
            failed.append(f"  {case_id}: behavior {behavior}, close {close}")
    for category in sorted(totals, key=sort_key):
        print(f"{category + '.x':>6}  {passed[category]:>3}/{totals[category]}")
    total = sum(totals.values())
    print(f"{total - len(failed)}/{total} cases passed")
    if failed:
        print("failed:\n" + "\n".join(failed))
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
