"""One media clock for every stream of an event loop.

Each stream used to sleep on the asyncio clock for every frame: a future, a timer handle and
a task step per stream and per 20 ms, and wake-ups as late as the selector's whole
milliseconds. With hundreds of calls that work holds the loop the SIP transactions need.

Here a single thread sleeps with the kernel's nanosecond timer until the next tick is due
and wakes the loop once; the loop then runs, in one batch, every stream callback that is
due. Deadlines sit on a grid (multiples of each period from the clock's epoch), so the
streams of one ptime share their ticks however their calls started. The thread exists
only while something is registered: an idle phone costs nothing.

The thread is the clock's device edge, as a sound card's callback thread is: it only
reads the monotonic clock, sleeps and posts to the loop (``call_soon_threadsafe``).

Deadlines and the ``now`` the callbacks get are ``time.monotonic()``, as every media time
is, not ``loop.time()``: the same clock under asyncio, but uvloop reads its own once per
loop iteration and in whole milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

Tick = Callable[[float], None]

# a callback due within this much of the tick being run goes with it: the thread's wake-up and
# the hop into the loop take tens of microseconds, so deadlines closer than this are one batch
BATCH = 0.0003
# after a stall longer than this many periods, a ticker skips ahead instead of bursting
MAX_BEHIND = 5
LATENESS_WEIGHT = 0.05  # of the newest batch in ``lateness`` (about the last second at 20 ms)

_CLOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = weakref.WeakKeyDictionary()


class Ticker:
    """One registration: ``callback(now)`` every ``period`` seconds, until cancelled."""

    __slots__ = ("period", "callback", "deadline", "cancelled")

    def __init__(self, period: float, callback: Tick, deadline: float) -> None:
        self.period = period
        self.callback = callback
        self.deadline = deadline
        self.cancelled = False


class MediaClock:
    """The shared clock of one loop; get it with ``MediaClock.of(loop)``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # the table of clocks is keyed by the loop: no strong reference back
        self.epoch = time.monotonic()
        self._heap: list[tuple[float, int, Ticker]] = []
        self._order = itertools.count()
        self._live = 0
        self._wake = threading.Condition()
        self._next: float | None = None  # the deadline the thread sleeps towards (guarded by _wake)
        self._thread: threading.Thread | None = None
        self.ticks = 0  # batches run (for tests and benchmarks)
        self.lateness = 0.0  # how late batches run, seconds (a moving average): the loop's saturation

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the media clock's loop is gone")
        return loop

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> MediaClock:
        clock = _CLOCKS.get(loop)
        if clock is None:
            clock = _CLOCKS[loop] = cls(loop)
        return clock

    # ------------------------------------------------------------ registration (loop thread)

    def every(self, period: float, callback: Tick) -> Ticker:
        """Call ``callback(now)`` at every grid point of ``period`` from the next one on."""
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        now = time.monotonic()
        steps = int((now - self.epoch) / period) + 1
        ticker = Ticker(period, callback, self.epoch + steps * period)
        self._push(ticker)
        self._live += 1
        self._schedule()
        return ticker

    def cancel(self, ticker: Ticker) -> None:
        if ticker.cancelled:
            return
        ticker.cancelled = True
        self._live -= 1
        if self._live == 0:
            self._heap.clear()
            self.lateness = 0.0
            self._set_next(None)

    def _push(self, ticker: Ticker) -> None:
        heapq.heappush(self._heap, (ticker.deadline, next(self._order), ticker))

    # ------------------------------------------------------------ the batch (loop thread)

    def _run_due(self) -> None:
        now = time.monotonic()
        self.ticks += 1
        if self._heap:
            self.lateness += LATENESS_WEIGHT * (max(0.0, now - self._heap[0][0]) - self.lateness)
        while self._heap and self._heap[0][0] <= now + BATCH:
            _, _, ticker = heapq.heappop(self._heap)
            if ticker.cancelled:
                continue
            try:
                ticker.callback(now)
            except Exception:
                log.exception("media clock callback failed")
            if ticker.cancelled:
                continue
            ticker.deadline += ticker.period
            if ticker.deadline < now - MAX_BEHIND * ticker.period:  # stalled: no burst to catch up
                ticker.deadline = now + ticker.period
            self._push(ticker)
        self._schedule()

    def _schedule(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        self._set_next(self._heap[0][0] if self._heap else None)

    # ------------------------------------------------------------ the thread

    def _set_next(self, deadline: float | None) -> None:
        with self._wake:
            self._next = deadline
            if deadline is not None and self._thread is None:
                self._thread = threading.Thread(target=self._sleeper, name="media-clock", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _sleeper(self) -> None:
        while True:
            with self._wake:
                while self._next is None:
                    if not self._wake.wait(timeout=1.0):
                        if self._next is None:
                            self._thread = None  # nothing to time: the thread ends
                            return
                deadline = self._next
                delay = deadline - time.monotonic()
                if delay > 0:
                    # woken early when the deadline moves (a stream registered or left)
                    self._wake.wait(timeout=delay)
                    if self._next != deadline or deadline - time.monotonic() > 0.00005:
                        continue
                self._next = None  # the loop sets the next deadline after the batch
            try:
                self.loop.call_soon_threadsafe(self._run_due)
            except RuntimeError:  # the loop is closed or gone
                with self._wake:
                    self._thread = None
                return
