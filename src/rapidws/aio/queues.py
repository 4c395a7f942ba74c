"""The receive queue: parsed messages waiting for ``recv()``, with flow control.

A hard cap on the queue is impossible: one ``data_received`` call can complete
hundreds of messages, and dropping any is not an option. Instead reading pauses
once the queue holds ``maxsize`` messages (``pause``: the transport's
``pause_reading``, so TCP pushes back on the server) and resumes when
``recv()`` has taken it down to the low watermark (``resume``). The queue knows
nothing of transports: the callables are injected.

Waiters are woken in FIFO order and a woken waiter takes its message only when
it runs, so a ``recv()`` cancelled after being woken loses nothing: the
message stays queued and the next waiter is woken instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["RecvQueue"]

T = TypeVar("T")


class RecvQueue(Generic[T]):
    __slots__ = (
        "_items",
        "_waiters",
        "_high",
        "_low",
        "_pause",
        "_resume",
        "paused",
        "_error",
        "_loop",
    )

    def __init__(
        self,
        maxsize: int,
        *,
        pause: Callable[[], None],
        resume: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"recv_queue_size must be >= 1, got {maxsize}")
        self._items: deque[T] = deque()
        # A list: there is rarely more than one waiter, and an empty deque
        # costs 760 bytes on each of thousands of connections.
        self._waiters: list[asyncio.Future[None]] = []
        self._high = maxsize
        # Resume at a quarter full: far enough below the mark that reading does
        # not flip between paused and resumed on every message.
        self._low = maxsize // 4
        self._pause = pause
        self._resume = resume
        self.paused = False
        #: Raised by ``get`` once the queue is empty; set by ``close``.
        self._error: BaseException | None = None
        self._loop = loop

    def __len__(self) -> int:
        return len(self._items)

    # Producer side

    def put_many(self, items: Iterable[T]) -> None:
        """Queue messages; pause reading once ``maxsize`` are waiting."""
        queue = self._items
        queue.extend(items)
        if self._waiters:
            self._wake()
        if len(queue) >= self._high and not self.paused:
            self.paused = True
            self._pause()

    def close(self, error: BaseException, *, discard: bool) -> None:
        """No more messages will come: ``get`` raises ``error`` when empty.

        With ``discard``, the messages still queued are dropped first (a failed
        connection without ``drain_on_error``).
        """
        if self._error is None:
            self._error = error
        if discard:
            self._items.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._error is not None

    # Consumer side

    def get_nowait(self) -> T | None:
        """The next message when one is ready and nobody waits before us."""
        if self._items and not self._waiters:
            item = self._items.popleft()
            if self.paused and len(self._items) <= self._low:
                self.paused = False
                self._resume()
            return item
        return None

    async def get(self, timeout: float | None = None) -> T:
        """The next message; raises the close error, or ``TimeoutError``."""
        item = self.get_nowait()
        if item is not None:
            return item
        if self._error is not None and not self._items:
            raise self._error
        loop = self._loop or asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        # No timer (nor object for it) in the common case: this runs on
        # every round trip.
        expiry = None if timeout is None else _Expiry(loop, timeout, waiter)
        waiters = self._waiters
        waiters.append(waiter)
        try:
            while True:
                await waiter
                items = self._items
                if items and waiters[0] is waiter:
                    item = items.popleft()
                    if self.paused and len(items) <= self._low:
                        self.paused = False
                        self._resume()
                    return item
                if self._error is not None and not items:
                    raise self._error
                if expiry is not None and expiry.fired:
                    raise TimeoutError
                # Woken while an older waiter is still ahead: wait for our turn.
                index = waiters.index(waiter)
                waiter = waiters[index] = loop.create_future()
                if expiry is not None:
                    expiry.waiter = waiter
        finally:
            if expiry is not None:
                expiry.timer.cancel()
            waiters.remove(waiter)
            if self._items and waiters:
                self._wake()

    def _wake(self) -> None:
        """Wake as many waiters, oldest first, as there are messages."""
        n = len(self._items)
        for waiter in self._waiters:
            if n <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
            n -= 1


class _Expiry:
    """The timer of ``get(timeout)``: wakes whichever future waits when it fires."""

    __slots__ = ("waiter", "fired", "timer")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float, waiter: asyncio.Future[None]
    ) -> None:
        self.waiter = waiter
        self.fired = False
        self.timer = loop.call_later(timeout, self._fire)

    def _fire(self) -> None:
        self.fired = True
        if not self.waiter.done():
            self.waiter.set_result(None)
