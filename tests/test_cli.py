"""The ``rapidws`` command, run as a user runs it: ``python -m rapidws`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import pytest
from websockets.asyncio.client import connect

from rapidws import __version__
from rapidws.aio.echo import EchoServer, serve_echo
from rapidws.cli import main
from tests.conformance.autobahn import fuzzing_server
from tests.peers.certs import TLSFiles

#: Seconds a command may take before the test fails instead of hanging.
TIMEOUT = 15.0
#: ``--wait`` for piped runs: the echoes come back in well under this.
WAIT = "0.3"

unix_signals = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX SIGINT delivery")


@pytest.fixture
async def server() -> AsyncIterator[EchoServer]:
    async with await serve_echo() as srv:
        yield srv


async def run_cli(
    *args: str, stdin: bytes | IO[bytes] = b"", timeout: float = TIMEOUT
) -> tuple[int, str, str]:
    """Run ``python -m rapidws ARGS``; return its exit code, stdout and stderr."""
    data = stdin if isinstance(stdin, bytes) else None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rapidws",
        *args,
        stdin=subprocess.PIPE if isinstance(stdin, bytes) else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(data), timeout)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------
# rapidws --version, usage
# ---------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rapidws {__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "connect" in capsys.readouterr().err


def test_malformed_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connect", "-H", "no colon", "ws://127.0.0.1:1/"]) == 2
    assert "expected 'Name: value'" in capsys.readouterr().err


async def test_python_dash_m_version() -> None:
    code, out, _ = await run_cli("--version")
    assert (code, out.strip()) == (0, f"rapidws {__version__}")


# ---------------------------------------------------------------------------
# rapidws demo
# ---------------------------------------------------------------------------


def test_demo_runs_the_quick_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rapidws", "demo"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "> Hello, World!" in lines
    assert "< Hello, World!" in lines
    assert any(line.startswith("< JSON {") for line in lines)
    assert "< <binary 16 bytes: 000102030405060708090a0b0c0d0e0f>" in lines
    assert "= closed with code 1000" in lines


# ---------------------------------------------------------------------------
# rapidws connect
# ---------------------------------------------------------------------------


class TestConnect:
    async def test_piped_lines_are_sent_and_echoes_printed(self, server: EchoServer) -> None:
        code, out, err = await run_cli(
            "connect", "--wait", WAIT, server.url, stdin=b"a\nb\n\xc3\xa9\n"
        )
        assert (code, out) == (0, "a\nb\né\n"), err
        assert "closed with code 1000" in err

    async def test_last_line_without_newline_and_crlf(self, server: EchoServer) -> None:
        code, out, err = await run_cli("connect", "--wait", WAIT, server.url, stdin=b"one\r\ntwo")
        assert (code, out) == (0, "one\ntwo\n"), err

    async def test_json_lines_are_sent_compact_and_invalid_ones_skipped(
        self, server: EchoServer
    ) -> None:
        lines = b'{"a": 1, "b": [1, 2]}\nnot json\n"text"\n'
        code, out, err = await run_cli("connect", "--json", "--wait", WAIT, server.url, stdin=lines)
        assert (code, out) == (0, '{"a":1,"b":[1,2]}\n"text"\n'), err
        assert "invalid JSON" in err

    async def test_binary_messages_are_shown_in_hex(self, server: EchoServer) -> None:
        code, out, err = await run_cli(
            "connect", "--binary", "--wait", WAIT, server.url, stdin=b"xyz\n" + b"z" * 40 + b"\n"
        )
        assert code == 0, err
        assert out.splitlines() == [
            "<binary 3 bytes: 78797a>",
            "<binary 40 bytes: " + "7a" * 32 + "...>",
        ]

    async def test_stdin_from_a_regular_file(self, server: EchoServer, tmp_path: Path) -> None:
        # A file cannot be watched by the event loop: the reader thread takes over.
        path = tmp_path / "lines.txt"
        path.write_bytes(b"from\na file\n")
        with path.open("rb") as stdin:
            code, out, err = await run_cli("connect", "--wait", WAIT, server.url, stdin=stdin)
        assert (code, out) == (0, "from\na file\n"), err

    async def test_wait_restarts_with_every_message(self, server: EchoServer) -> None:
        # Many lines: their echoes keep arriving after stdin ends; none is lost.
        lines = b"".join(b"line %d\n" % i for i in range(200))
        code, out, err = await run_cli("connect", "--wait", WAIT, server.url, stdin=lines)
        assert code == 0, err
        assert out.splitlines() == [f"line {i}" for i in range(200)]

    async def test_subprotocol_and_header_options(self) -> None:
        async with await serve_echo(subprotocols=["chat"]) as srv:
            code, out, err = await run_cli(
                "connect", "-s", "other", "-s", "chat", "-H", "X-Test: yes", "--wait", WAIT,
                srv.url, stdin=b"hi\n",
            )  # fmt: skip
        assert (code, out) == (0, "hi\n"), err
        assert "subprotocol chat" in err

    async def test_tls_with_cacert(self, tls_files: TLSFiles) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls_files.server_cert), str(tls_files.server_key))
        async with await serve_echo(ssl=context) as srv:
            code, out, err = await run_cli(
                "connect", "--cacert", str(tls_files.ca), "--wait", WAIT, srv.url, stdin=b"x\n"
            )
            assert (code, out) == (0, "x\n"), err
            code, out, err = await run_cli("connect", "--wait", WAIT, srv.url, stdin=b"x\n")
            assert (code, out) == (1, ""), err
            assert "TLS certificate" in err
            code, out, err = await run_cli("connect", "-k", "--wait", WAIT, srv.url, stdin=b"k\n")
            assert (code, out) == (0, "k\n"), err

    async def test_refused_connection_exits_1(self) -> None:
        url = f"ws://127.0.0.1:{closed_port()}/"
        code, out, err = await run_cli("connect", url, stdin=b"never sent\n")
        assert (code, out) == (1, "")
        assert f"cannot connect to {url}" in err
        assert "refused" in err

    async def test_rejected_upgrade_names_the_http_status(self) -> None:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
            await writer.drain()
            writer.close()

        http = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = http.sockets[0].getsockname()[1]
        async with http:
            code, out, err = await run_cli("connect", f"ws://127.0.0.1:{port}/", stdin=b"")
        assert (code, out) == (1, "")
        assert "HTTP 403" in err

    async def test_server_close_ends_the_session(self, server: EchoServer) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rapidws", "connect", server.url,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        assert b"connected" in line
        await server.close()  # 1001 Going Away: a normal close
        _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0
        assert b"closed with code 1001" in err

    @unix_signals
    async def test_ctrl_c_exits_130(self, server: EchoServer) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rapidws", "connect", server.url,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        assert b"connected" in line
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 130


# ---------------------------------------------------------------------------
# rapidws echo-server
# ---------------------------------------------------------------------------


@unix_signals
async def test_echo_server_serves_until_ctrl_c() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rapidws", "echo-server", "--port", "0", "-s", "chat",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
        assert line.startswith("listening on ws://127.0.0.1:")
        url = line.split()[-1]
        async with connect(url, compression=None, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat"
            await ws.send(json.dumps({"k": "v"}))
            assert json.loads(await ws.recv()) == {"k": "v"}
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert b"stopped" in err


async def test_echo_server_port_in_use_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = await run_cli("echo-server", "--port", str(port))
    assert (code, out) == (1, "")
    assert "cannot listen" in err


# ---------------------------------------------------------------------------
# rapidws fingerprint
# ---------------------------------------------------------------------------


class TestFingerprint:
    async def test_list_names_every_profile_and_its_browser_ja4(self) -> None:
        code, out, _ = await run_cli("fingerprint", "--list")
        assert code == 0
        lines = out.splitlines()
        assert "chrome156 (= chrome)" in lines
        assert "firefox153 (= firefox)" in lines
        assert (
            "  JA4:     t13d1516h1_8daaf6152771_5b37b36a67c0  measured: "
            + ("Chromium 156.0.8078.114, wss:// from a page, loopback capture")
            in lines
        )
        assert [line for line in lines if not line.startswith(" ")] == [
            "chrome131",
            "chrome156 (= chrome)",
            "edge131 (= edge)",
            "firefox153 (= firefox)",
            "safari18 (= safari)",
        ]

    async def test_impersonate_prints_ja4_request_and_comparison(self) -> None:
        code, out, err = await run_cli("fingerprint", "--impersonate", "firefox")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith("rapidws fingerprint: firefox153, captured on wss://localhost:")
        ja4_line = next(line for line in lines if line.startswith("  JA4      t13"))
        assert ja4_line.split()[1].startswith("t13d")
        assert "  JA4      t13d1617h2_86a278354501_3cbfd9057e0d" in lines
        assert "  match  TLS version             browser 13" in lines
        assert any(line.startswith("  DIFF   ALPN (first, JA4)") for line in lines)
        request = lines[lines.index("Upgrade request as sent") + 1 :]
        assert request[0] == "  GET / HTTP/1.1"
        assert [line.split(":")[0].strip() for line in request[1:]] == [
            "Host",
            "User-Agent",
            "Accept",
            "Accept-Language",
            "Accept-Encoding",
            "Sec-WebSocket-Version",
            "Origin",
            "Sec-WebSocket-Extensions",
            "Sec-WebSocket-Key",
            "Connection",
            "Sec-Fetch-Dest",
            "Sec-Fetch-Mode",
            "Sec-Fetch-Site",
            "Pragma",
            "Cache-Control",
            "Upgrade",
        ]

    async def test_without_a_profile_it_shows_rapidws_defaults(self) -> None:
        code, out, err = await run_cli("fingerprint")
        assert code == 0, err
        assert "no profile (rapidws defaults)" in out
        assert "  User-Agent: rapidws/" + __version__ in out.splitlines()
        assert "Field by field" not in out

    async def test_unknown_profile_is_a_usage_error(self) -> None:
        code, out, err = await run_cli("fingerprint", "--impersonate", "netscape4")
        assert code == 2
        assert out == ""
        assert "unknown impersonate target 'netscape4'; choose one of: chrome," in err


class TestAutobahn:
    """``rapidws autobahn``: the README's way to reproduce the conformance report."""

    async def test_runs_every_case_and_prints_the_verdicts(self, tmp_path: Path) -> None:
        async with fuzzing_server(["1.1.*", "7.9.*"], [], tmp_path / "reports") as kosoku:
            code, out, err = await run_cli(
                "autobahn", kosoku.url, "--report-dir", str(kosoku.report_dir), timeout=60
            )
        assert code == 0, out + err
        assert "running 17 cases" in err
        lines = out.splitlines()
        # 1.1.x end with the client's echo of the server's 1000; 7.9.x send an
        # invalid close code, which the client answers with 1002.
        assert lines[0].startswith("ran 17 cases in ")
        assert lines[0].endswith("; closed 1000 x8, closed 1002 x9")
        assert lines[1:] == ["   1.x    8/8", "   7.x    9/9", "17/17 cases passed"]
        assert (kosoku.report_dir / "index.html").is_file()

    async def test_unreachable_server_exits_1(self) -> None:
        code, out, err = await run_cli("autobahn", f"ws://127.0.0.1:{closed_port()}")
        assert (code, out) == (1, "")
        assert "cannot get the case count" in err
