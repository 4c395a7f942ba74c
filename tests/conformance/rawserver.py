"""A scripted WebSocket server on raw sockets, for fault injection.

The fault tests need a server that misbehaves on purpose: a wrong accept key, a
frame cut in the middle, a lying length, a peer that stops reading. This one
is written from RFC 6455 alone, with ``socket``, ``hashlib``, ``base64`` and
``struct`` and nothing of rapidws, so a bug in the client's protocol core
cannot hide itself by being shared with the server.

Each accepted connection runs a *script*, a plain function given a
:class:`RawConnection`, in its own thread with blocking sockets: what it
writes goes out exactly as written (one ``sendall`` each), and what it does
not read stays in the kernel. Every socket has a timeout, so a script that
waits for something that never comes fails instead of hanging; an exception in
a script is re-raised by :meth:`RawServer.__exit__` so the test fails with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

#: RFC 6455 §1.3: appended to the client's key to compute Sec-WebSocket-Accept.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Seconds a script waits on its socket before giving up (and failing the test).
SCRIPT_TIMEOUT = 15.0

#: Largest request head a script reads: the client's is well under 1 KiB.
MAX_REQUEST_HEAD = 16 * 1024

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _unmask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key repeated (RFC 6455 §5.3), as one big integer."""
    n = len(payload)
    pad = -n % 4
    keys = int.from_bytes(key * ((n + pad) // 4), "big")
    return (int.from_bytes(payload + bytes(pad), "big") ^ keys).to_bytes(n + pad, "big")[:n]


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for ``key`` (RFC 6455 §4.2.2, step 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One frame as a server would write it (RFC 6455 §5.2).

    ``rsv`` is the 3 RSV bits (0-7), ``mask`` a 4-byte key to mask the payload
    with (servers must not), ``length`` a payload length to announce instead of
    the real one (to lie).
    """
    announced = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if announced < 126:
        head += bytes([mask_bit | announced])
    elif announced < 1 << 16:
        head += struct.pack("!BH", mask_bit | 126, announced)
    else:
        head += struct.pack("!BQ", mask_bit | 127, announced)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass
class Request:
    """The client's upgrade request: request line and headers (names lowercased)."""

    line: str
    headers: dict[str, str]
    raw: bytes

    @property
    def key(self) -> str:
        return self.headers["sec-websocket-key"]


@dataclass
class ClientFrame:
    """A frame received from the client, unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a CLOSE frame (None when it has none)."""
        assert self.opcode == CLOSE, f"not a close frame: opcode {self.opcode}"
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


class RawConnection:
    """One accepted TCP connection, driven by a script."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        #: Every frame read with :meth:`read_frame`, in order.
        self.frames: list[ClientFrame] = []

    # Reading

    def _recv(self) -> bytes:
        return self.sock.recv(65536)

    def read_request(self) -> Request:
        """Read the upgrade request head."""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self._recv()
            if not chunk:
                raise ConnectionError("client closed before sending a whole request")
            self._buffer += chunk
            if len(self._buffer) > MAX_REQUEST_HEAD:
                raise ValueError("request head too large")
        raw, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        line, *fields = raw.decode("latin-1").split("\r\n")
        headers = {}
        for item in fields:
            name, _, value = item.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Request(line, headers, raw + b"\r\n\r\n")

    def _read_exact(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            chunk = self._recv()
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read_frame(self) -> ClientFrame | None:
        """The next frame from the client, or None at EOF."""
        head = self._read_exact(2)
        if head is None:
            return None
        b0, b1 = head
        length = b1 & 0x7F
        if length == 126:
            data = self._read_exact(2)
            if data is None:
                return None
            (length,) = struct.unpack("!H", data)
        elif length == 127:
            data = self._read_exact(8)
            if data is None:
                return None
            (length,) = struct.unpack("!Q", data)
        masked = bool(b1 & 0x80)
        key = self._read_exact(4) if masked else b""
        payload = self._read_exact(length)
        if key is None or payload is None:
            return None
        if masked:
            payload = _unmask(payload, key)
        received = ClientFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload)
        self.frames.append(received)
        return received

    def read_message(self) -> tuple[int, bytes] | None:
        """The next data message ``(opcode, payload)``, skipping control frames but
        answering PINGs; None at EOF or on a CLOSE."""
        opcode: int | None = None
        parts: list[bytes] = []
        while True:
            got = self.read_frame()
            if got is None or got.opcode == CLOSE:
                return None
            if got.opcode == PING:
                self.send(frame(PONG, got.payload))
                continue
            if got.opcode == PONG:
                continue
            if opcode is None:
                opcode = got.opcode
            parts.append(got.payload)
            if got.fin:
                return opcode, b"".join(parts)

    def read_messages(self, into: list[tuple[int, bytes]]) -> None:
        """Append every data message to ``into`` as ``read_message`` returns it,
        until the client's CLOSE (or EOF); then answer with CLOSE 1000."""
        while (message := self.read_message()) is not None:
            into.append(message)
        self.send(frame(CLOSE, close_payload(1000)))

    def read_close(self) -> ClientFrame:
        """Read frames until the client's CLOSE; fail on EOF before it."""
        while True:
            got = self.read_frame()
            if got is None:
                raise AssertionError("client closed TCP without sending a close frame")
            if got.opcode == CLOSE:
                return got

    def expect_eof(self) -> bytes:
        """Read until the client closes TCP; what came before EOF."""
        data = self._buffer
        self._buffer = b""
        while True:
            try:
                chunk = self._recv()
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    # Writing

    def send(self, data: bytes | bytearray) -> None:
        self.sock.sendall(data)

    def handshake_response(
        self,
        request: Request,
        *,
        accept: str | None = None,
        omit: Iterable[str] = (),
        extra: Iterable[tuple[str, str]] = (),
    ) -> bytes:
        """The bytes of a 101 answer to ``request``; ``accept`` replaces the right
        accept value, ``omit`` drops headers by lowercase name, ``extra`` adds some."""
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept if accept is not None else accept_key(request.key)),
        ]
        skip = set(omit)
        lines = ["HTTP/1.1 101 Switching Protocols"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() not in skip]
        lines += [f"{name}: {value}" for name, value in extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def accept(self, **options: object) -> Request:
        """Read the request and answer with a valid 101 (or as ``options`` say)."""
        request = self.read_request()
        self.send(self.handshake_response(request, **options))  # type: ignore[arg-type]
        return request

    def shutdown_write(self) -> None:
        """Send FIN: the client reads EOF; this side can still read."""
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Script = Callable[[RawConnection], None]


class RawServer:
    """Listens on 127.0.0.1, a free port; runs ``script`` for each connection.

    ``rcvbuf`` sets SO_RCVBUF on the listening socket (inherited by accepted
    ones), to make a server that stops reading push back sooner. Use it as an
    async context manager: leaving it waits (without blocking the event loop)
    for every script to end, closes every socket and re-raises the first
    exception a script raised. When the block itself raised, the scripts are
    cut off at once instead.
    """

    def __init__(self, script: Script, *, rcvbuf: int | None = None) -> None:
        self.script = script
        self.rcvbuf = rcvbuf
        self.connections: list[RawConnection] = []
        self.errors: list[BaseException] = []
        self._finished = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        assert self._listener is not None
        port: int = self._listener.getsockname()[1]
        return port

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> RawServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        # accept() in a thread does not wake up when another thread closes the
        # socket: poll a stop flag instead.
        listener.settimeout(0.05)
        self._listener = listener
        accepter = threading.Thread(target=self._accept_loop, name="rawserver-accept", daemon=True)
        accepter.start()
        self._threads.append(accepter)
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(SCRIPT_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = RawConnection(sock)
            worker = threading.Thread(
                target=self._run, args=(conn,), name="rawserver-script", daemon=True
            )
            with self._lock:
                self.connections.append(conn)
                self._threads.append(worker)
            worker.start()

    def _run(self, conn: RawConnection) -> None:
        try:
            self.script(conn)
        except BaseException as exc:  # re-raised by __aexit__
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()
            with self._lock:
                self._finished += 1

    async def wait_finished(self, count: int = 1, timeout: float = SCRIPT_TIMEOUT) -> None:
        """Wait, without blocking the event loop, until ``count`` scripts have ended."""
        deadline = time.monotonic() + timeout
        while self._finished < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server script did not end within {timeout} s")
            await asyncio.sleep(0.01)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                with self._lock:
                    started = len(self.connections)
                await self.wait_finished(started, SCRIPT_TIMEOUT + 1)
        finally:
            self._stop.set()
            # Scripts still blocked on a socket wake up with an error.
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
            for thread in self._threads:
                await asyncio.to_thread(thread.join, SCRIPT_TIMEOUT)
            if self._listener is not None:
                self._listener.close()
        if exc is None and self.errors:
            raise self.errors[0]
