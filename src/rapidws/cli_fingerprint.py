"""``rapidws fingerprint``: what rapidws really sends, next to the browser it imitates.

A :class:`CaptureServer` listens on 127.0.0.1. For each connection it reads
the raw ClientHello records off the TCP socket *before* any TLS code sees
them, then completes TLS through an ``ssl.SSLObject`` over memory BIOs,
records the upgrade request exactly as received, accepts it and closes with
1000. :func:`run` connects to it through the public API, then prints JA3,
JA4, the request and a field-by-field comparison with the profile's browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from . import impersonate
from .aio.session import AsyncSession
from .errors import HandshakeError, WebSocketError
from .impersonate.fingerprint import (
    ClientHello,
    handshake_bytes,
    is_grease,
    ja3,
    ja3_string,
    ja4,
    ja4_raw,
    parse_client_hello,
)
from .impersonate.profiles import Profile
from .protocol.handshake import build_reject, build_response, check_request
from .protocol.http11 import RequestParser

__all__ = ["Capture", "CaptureServer", "Comparison", "compare", "run"]

#: Seconds a capture connection may stay silent: a stuck client must not pin a thread.
_IO_TIMEOUT = 10.0
#: An unmasked CLOSE frame with code 1000 (RFC 6455 §5.5.1): the server ends each capture.
_CLOSE_1000 = b"\x88\x02\x03\xe8"
#: Bytes read at a time.
_CHUNK = 65536
#: Largest ClientHello accepted: a record is at most 2^14 bytes (RFC 8446 §5.1), a few suffice.
_MAX_HELLO = 64 * 1024


@dataclass(slots=True)
class Capture:
    """What one client sent."""

    #: The TLS records of the ClientHello as read off the socket (None over plain TCP).
    client_hello: bytes | None
    #: The upgrade request head, exactly as received (empty if it never came).
    request: bytes
    #: Why the connection failed, if it did.
    error: str | None = None


class _TLSPipe:
    """Server-side TLS over a blocking socket, through memory BIOs."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, first: bytes) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.incoming.write(first)

    def _run(self, op: Callable[[], bytes | None]) -> bytes | None:
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(_CHUNK)
                if not data:
                    return None
                self.incoming.write(data)
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        if self.outgoing.pending:
            self.sock.sendall(self.outgoing.read())

    def handshake(self) -> None:
        def step() -> bytes:
            self.tls.do_handshake()
            return b""

        if self._run(step) is None:
            raise ConnectionError("the client closed the connection during the TLS handshake")

    def recv(self) -> bytes:
        try:
            return self._run(lambda: self.tls.read(_CHUNK)) or b""
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()


class CaptureServer:
    """A local server that records the raw ClientHello and upgrade request of each client.

    ``context`` is a server ``SSLContext`` for ``wss://``; without it the
    server speaks plain ``ws://``. Use as a context manager; :meth:`next`
    returns the next :class:`Capture`.
    """

    def __init__(self, context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.context = context
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._captures: queue.Queue[Capture] = queue.Queue()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="rapidws-capture", daemon=True)

    def url(self, path: str = "/") -> str:
        """``wss://localhost:PORT/path`` (``ws://`` without TLS): a host name, so SNI is sent."""
        scheme = "wss" if self.context is not None else "ws"
        return f"{scheme}://localhost:{self.port}{path}"

    def next(self, timeout: float = _IO_TIMEOUT) -> Capture:
        """The next capture; ``queue.Empty`` after ``timeout`` seconds without one."""
        return self._captures.get(timeout=timeout)

    def __enter__(self) -> CaptureServer:
        self._accepter.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        if self._accepter.is_alive():
            self._accepter.join()
        self._sock.close()
        for thread in self._threads:
            thread.join(_IO_TIMEOUT)

    # Private methods

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        hello: bytes | None = None
        head = bytearray()
        with conn:
            conn.settimeout(_IO_TIMEOUT)
            try:
                recv: Callable[[], bytes]
                send: Callable[[bytes], None]
                if self.context is None:

                    def recv() -> bytes:
                        return conn.recv(_CHUNK)

                    send = conn.sendall
                else:
                    hello = self._read_client_hello(conn)
                    pipe = _TLSPipe(conn, self.context, hello)
                    pipe.handshake()
                    recv, send = pipe.recv, pipe.sendall
                parser = RequestParser()
                request = None
                while request is None:
                    data = recv()
                    if not data:
                        raise ConnectionError("the client closed before sending its request")
                    head += data
                    request = parser.feed(data)
                head = head[: head.find(b"\r\n\r\n") + 4]
                self._captures.put(Capture(hello, bytes(head)))
                try:
                    key = check_request(request)
                except HandshakeError as exc:
                    send(build_reject(exc.status or 400, str(exc).encode()))
                    return
                send(build_response(key) + _CLOSE_1000)
                # Wait for the client's CLOSE (or EOF) so it sees a clean closing handshake.
                with contextlib.suppress(OSError, ssl.SSLError):
                    recv()
            except (OSError, ssl.SSLError, ValueError, HandshakeError) as exc:
                self._captures.put(Capture(hello, bytes(head), error=str(exc) or repr(exc)))

    @staticmethod
    def _read_client_hello(conn: socket.socket) -> bytes:
        # Read records until one whole ClientHello is in: before the
        # ServerHello the client sends nothing else, so these bytes are
        # exactly its ClientHello records.
        raw = bytearray()
        while not handshake_bytes(bytes(raw)):
            if len(raw) > _MAX_HELLO:
                raise ValueError("ClientHello larger than 64 KiB")
            data = conn.recv(_CHUNK)
            if not data:
                raise ConnectionError("the client closed before its ClientHello was complete")
            raw += data
        return bytes(raw)


# ---------------------------------------------------------------------------
# Comparison with a browser profile
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """One row of the field-by-field comparison."""

    field: str
    browser: str
    rapidws: str

    @property
    def match(self) -> bool:
        return self.browser == self.rapidws


def _ja4_fields(value: str) -> dict[str, str]:
    head, cipher_hash, ext_hash = value.split("_")
    return {
        "TLS version": head[1:3],
        "SNI": head[3],
        "cipher count": head[4:6],
        "extension count": head[6:8],
        "ALPN (first, JA4)": head[8:10],
        "cipher hash (JA4_b)": cipher_hash,
        "extension hash (JA4_c)": ext_hash,
    }


def _codes(values: tuple[int, ...] | list[int]) -> str:
    return ",".join(f"{v:04x}" for v in values)


def compare(hello: ClientHello, profile: Profile) -> list[Comparison]:
    """Compare a captured ClientHello with ``profile``'s browser, field by field."""
    tls = profile.tls
    rows = [
        Comparison(name, expected, got)
        for (name, expected), got in zip(
            _ja4_fields(tls.ja4).items(), _ja4_fields(ja4(hello)).values(), strict=True
        )
    ]
    ciphers = [c for c in hello.cipher_suites if not is_grease(c)]
    rows.append(
        Comparison(
            "cipher suites (set)", _codes(sorted(tls.cipher_suites)), _codes(sorted(ciphers))
        )
    )
    rows.append(Comparison("cipher suites (order)", _codes(tls.cipher_suites), _codes(ciphers)))
    alpn = ",".join(p.decode("latin-1") for p in hello.alpn)
    rows.append(Comparison("ALPN (all)", ",".join(tls.alpn), alpn))
    if tls.extensions is not None:
        got = [e for e in hello.extensions if not is_grease(e)]
        rows.append(
            Comparison("extensions (set)", _codes(sorted(tls.extensions)), _codes(sorted(got)))
        )
    if tls.signature_algorithms is not None:
        sigalgs = [s for s in hello.signature_algorithms if not is_grease(s)]
        rows.append(
            Comparison("signature algorithms", _codes(tls.signature_algorithms), _codes(sigalgs))
        )
    if tls.supported_groups is not None:
        groups = [g for g in hello.supported_groups if not is_grease(g)]
        rows.append(Comparison("supported groups", _codes(tls.supported_groups), _codes(groups)))
    return rows


def _difference(expected: str, got: str) -> str:
    """``missing a,b; extra c`` for comma lists; empty when not a set difference."""
    want, have = set(expected.split(",")), set(got.split(","))
    parts = []
    if want - have:
        parts.append("missing " + ",".join(sorted(want - have)))
    if have - want:
        parts.append("extra " + ",".join(sorted(have - want)))
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# rapidws fingerprint
# ---------------------------------------------------------------------------


def list_profiles(stream: TextIO) -> None:
    """Print every profile name with its browser JA4 and sources."""
    aliases = {target: bare for bare, target in impersonate.profiles.NEWEST.items()}
    for name in sorted(impersonate.profiles.PROFILES):
        profile = impersonate.get(name)
        alias = f" (= {aliases[name]})" if name in aliases else ""
        print(f"{name}{alias}", file=stream)
        print(f"  headers: {profile.source}", file=stream)
        print(f"  JA4:     {profile.tls.ja4}  {profile.tls.source}", file=stream)


def run(name: str | None) -> int:
    """Run ``rapidws fingerprint [--impersonate name]``; return the exit code."""
    profile = impersonate.get(name) if name is not None else None
    try:
        import trustme
    except ImportError:
        print(
            "rapidws: fingerprint makes a throwaway certificate with the 'trustme' package, "
            "which is not installed: pip install trustme",
            file=sys.stderr,
        )
        return 1
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.set_alpn_protocols(["http/1.1"])
    ca = trustme.CA()
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    with tempfile.TemporaryDirectory(prefix="rapidws-") as tmp:
        ca_path = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
        with CaptureServer(server_context) as server:
            url = server.url("/")
            error = asyncio.run(_connect(url, ca_path, profile))
            try:
                capture = server.next(timeout=_IO_TIMEOUT)
            except queue.Empty:
                print(f"rapidws: nothing reached the capture server ({error})", file=sys.stderr)
                return 1
    if capture.client_hello is None:
        print(f"rapidws: no ClientHello captured ({capture.error})", file=sys.stderr)
        return 1
    _report(url, parse_client_hello(capture.client_hello), capture, profile)
    if error is not None or capture.error is not None:
        print(f"rapidws: the connection failed: {error or capture.error}", file=sys.stderr)
        return 1
    return 0


async def _connect(url: str, ca_path: str, profile: Profile | None) -> str | None:
    try:
        async with (
            AsyncSession(verify=ca_path, timeout=_IO_TIMEOUT) as session,
            session.ws_connect(url, impersonate=profile.name if profile else None),
        ):
            pass
    except (WebSocketError, OSError) as exc:
        return str(exc)
    return None


def _report(url: str, hello: ClientHello, capture: Capture, profile: Profile | None) -> None:
    target = profile.name if profile is not None else "no profile (rapidws defaults)"
    print(f"rapidws fingerprint: {target}, captured on {url}")
    print()
    print("ClientHello")
    print(f"  JA4      {ja4(hello)}")
    print(f"  JA4_r    {ja4_raw(hello)}")
    print(f"  JA3      {ja3(hello)}")
    print(f"  JA3 raw  {ja3_string(hello)}")
    if profile is not None:
        print()
        print(f"Browser: {profile.browser} {profile.version}")
        print(f"  JA4      {profile.tls.ja4}")
        print(f"  source   {profile.tls.source}")
        rows = compare(hello, profile)
        matched = sum(row.match for row in rows)
        print()
        print(f"Field by field ({matched} of {len(rows)} match)")
        width = max(len(row.field) for row in rows)
        for row in rows:
            mark = "match" if row.match else "DIFF "
            print(f"  {mark}  {row.field:<{width}}  browser {row.browser}")
            if not row.match:
                print(f"         {'':<{width}}  rapidws {row.rapidws}")
                detail = _difference(row.browser, row.rapidws)
                if "," in row.browser and detail:
                    print(f"         {'':<{width}}  ({detail})")
    print()
    print("Upgrade request as sent")
    for line in capture.request.decode("latin-1").split("\r\n")[:-2]:
        print(f"  {line}")
