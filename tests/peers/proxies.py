"""Real proxy servers for the proxy tests, each in its own subprocess.

========== ============================================= ===========================
kind       server                                        schemes
========== ============================================= ===========================
pproxy     ``pproxy`` (PyPI), its library API            http, https (TLS), socks4, socks5
tinyproxy  ``tinyproxy`` (Debian package), C             http; answers 403/407/500
========== ============================================= ===========================

pproxy is started by :func:`serve_pproxy` (``python -m tests.peers.proxies``),
which builds the server from a pproxy URI with ``pproxy.Server`` and only
adds what its command line lacks: port 0 (pproxy's URI parser turns port 0
into its default 8080, so the port is set after parsing), the ``LISTENING``
line of the peers' contract, and ``authtime=0``: by default pproxy trusts a
client *address* for 30 days after one good login, which would let a wrong
password through after a right one. Every connection it accepts is logged to
stderr as ``ACCEPT <protocol> -> <host>:<port>``, the target as the client
named it (a name with socks5h, an address with socks5).

tinyproxy cannot listen on port 0: the launcher has the kernel pick a free
port, hands it over in the config file and waits until it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.peers.launcher import (
    REPO_ROOT,
    STARTUP_TIMEOUT,
    PeerError,
    _read_port,
    _reap,
    announce,
)

PROXY_CREDENTIALS = ("proxyuser", "proxy pass:word")
SOCKS4_USER = "socksuser"

ProxyKind = Literal["pproxy", "tinyproxy"]


# ---------------------------------------------------------------------------
# Server side: the pproxy wrapper
# ---------------------------------------------------------------------------


async def serve_pproxy(uri: str, cert: str | None, key: str | None, block: str | None) -> None:
    import pproxy

    server: Any = pproxy.Server(uri)
    server.port = 0  # see the module docstring
    if server.sslserver is not None:
        if cert is None or key is None:
            raise SystemExit("an +ssl listener needs --tls-cert and --tls-key")
        server.sslserver.load_cert_chain(cert, key)

    def verbose(text: str) -> None:
        print(f"ACCEPT {text}", file=sys.stderr, flush=True)

    args: dict[str, Any] = {
        "rserver": [],
        "authtime": 0,
        "verbose": verbose,
        "block": pproxy.Rule("{" + block + "}") if block else None,
    }
    listener = await server.start_server(args)
    announce(listener.sockets[0].getsockname()[1])
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()
    # The launcher holds our stdin open; EOF means it is gone.
    loop.add_reader(sys.stdin.fileno(), _eof_check, stopped)
    await stopped
    listener.close()


def _eof_check(stopped: asyncio.Future[None]) -> None:
    import os

    try:
        data = os.read(sys.stdin.fileno(), 4096)
    except OSError:
        data = b""
    if not data and not stopped.done():
        stopped.set_result(None)


def main() -> None:
    parser = argparse.ArgumentParser(description="pproxy on port 0, for the tests")
    parser.add_argument("--listen", required=True, help="pproxy URI, e.g. socks5://127.0.0.1#u:p")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--block", help="regex of target hosts to refuse")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_pproxy(args.listen, args.tls_cert, args.tls_key, args.block))


# ---------------------------------------------------------------------------
# Test side
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyServer:
    """Where a running proxy listens, and the URL a client gives for it."""

    kind: ProxyKind
    scheme: str
    port: int
    user: str | None = None
    password: str | None = None
    host: str = "127.0.0.1"

    def url(self, scheme: str | None = None, *, credentials: bool = True) -> str:
        from urllib.parse import quote

        userinfo = ""
        if credentials and self.user is not None:
            userinfo = quote(self.user, safe="")
            if self.password is not None:
                userinfo += ":" + quote(self.password, safe="")
            userinfo += "@"
        return f"{scheme or self.scheme}://{userinfo}{self.host}:{self.port}"


class ProxyProcess:
    def __init__(self, server: ProxyServer, process: subprocess.Popen[bytes], log: Path) -> None:
        self.server = server
        self.process = process
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        _reap(self.process, 5.0)


def _fail(what: str, process: subprocess.Popen[bytes], log: Path, problem: str) -> PeerError:
    _reap(process, grace=0.0)
    text = log.read_text(errors="replace").strip() or "(nothing)"
    return PeerError(f"{what} {problem}\nlog:\n{text}")


def start_pproxy(
    scheme: str,
    *,
    log_dir: Path,
    auth: str | None = None,
    tls: tuple[str, str] | None = None,
    block: str | None = None,
) -> ProxyProcess:
    """pproxy listening for ``scheme`` (``http``, ``http+ssl``, ``socks4``, ``socks5``).

    ``auth`` is pproxy's user entry: ``user:password`` (HTTP, SOCKS5) or a
    SOCKS4 user id.
    """
    uri = f"{scheme}://127.0.0.1" + (f"#{auth}" if auth else "")
    command = [sys.executable, "-m", "tests.peers.proxies", "--listen", uri]
    if tls is not None:
        command += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    if block is not None:
        command += ["--block", block]
    log = log_dir / f"pproxy-{scheme}{'-auth' if auth else ''}{'-block' if block else ''}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
    port = _read_port(process, STARTUP_TIMEOUT)
    if isinstance(port, str):
        raise _fail(f"pproxy {scheme}", process, log, port)
    user = password = None
    if auth:
        user, _, rest = auth.partition(":")
        password = rest if ":" in auth else None
    client_scheme = "https" if scheme == "http+ssl" else scheme
    server = ProxyServer("pproxy", client_scheme, port, user, password)
    return ProxyProcess(server, process, log)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode} before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return None
        except OSError:
            time.sleep(0.05)
    return f"did not listen on port {port} within {timeout:g} s"


def start_tinyproxy(
    *,
    log_dir: Path,
    basic_auth: tuple[str, str] | None = None,
    connect_ports: tuple[int, ...] = (),
    attempts: int = 3,
) -> ProxyProcess:
    """tinyproxy on a free port; ``connect_ports`` restricts CONNECT (403 elsewhere)."""
    binary = shutil.which("tinyproxy")
    if binary is None:
        raise PeerError("the tinyproxy tests need Debian's tinyproxy: apt-get install tinyproxy")
    name = "tinyproxy" + ("-auth" if basic_auth else "") + ("-ports" if connect_ports else "")
    failure = ""
    for _ in range(attempts):
        port = _free_port()
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 60",
            "LogLevel Info",
            "MaxClients 64",
            "DisableViaHeader Yes",
        ]
        if basic_auth is not None:
            # Tinyproxy splits the line on spaces: no space in these credentials.
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        lines += [f"ConnectPort {p}" for p in connect_ports]
        config = Path(tempfile.mkdtemp(prefix="rapidws-tinyproxy-")) / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        log = log_dir / f"{name}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [binary, "-d", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
            )
        problem = _wait_listening(port, process, STARTUP_TIMEOUT)
        if problem is None:
            user, password = basic_auth if basic_auth else (None, None)
            server = ProxyServer("tinyproxy", "http", port, user, password)
            return ProxyProcess(server, process, log)
        failure = str(_fail(name, process, log, problem))  # the port was taken: try another
    raise PeerError(failure)


if __name__ == "__main__":
    main()
