"""Adaptive jitter buffer for fixed-ptime audio.

Timing model: every packet has a transit time, its local arrival time minus its
RTP timestamp (both in timestamp units, as in RFC 3550 A.8).  The smallest transit
over the last second is the base: a frame with timestamp T can arrive no earlier
than T + base.  The buffer plays frame T at local time T + base + target delay,
where the target delay follows the measured interarrival jitter.

The playout loop calls pop() once per frame.  Each call plays one frame (or
conceals one) and moves the playout point by one frame, so the actual delay only
changes by whole frames:

* playing later than the target by more than 1.5 frames for 8 frames in a row
  (a sender clock faster than ours, or a target that came down): one frame is
  dropped, counted in `dropped_for_drift`;
* the next frame has not arrived and we play earlier than the target (a slower
  sender clock, or a target that went up): a Missing is returned without moving
  the playout point, so the delay grows by one frame;
* the next frame has not arrived and its time has come: it is concealed (Missing)
  and skipped; if it arrives later it is discarded as late;
* playing later than the target by more than the target itself and the margin (over
  twice the delay aimed at): the buffer holds a backlog that came in one burst (packets
  kept while the stream was being set up, or held up on the path), not jitter. Every
  frame whose time has passed is discarded at once, counted as late; dropped one frame
  at a time as above, the backlog would take seconds of speech to leave the delay.

A timestamp jump (sender restart, a talkspurt whose timestamps did not follow the
clock) resynchronises the buffer instead of concealing thousands of frames.
"""
from __future__ import annotations

import math
from collections import deque

from softphone.frozen import dataclass

from .packet import RtpPacket

TIMESTAMP_MOD = 1 << 32
JITTER_GAIN = 1 / 16  # RFC 3550 A.8
TARGET_ATTACK = 1 / 4  # per packet, when the jitter goes up
TARGET_DECAY = 1 / 64  # per packet, when it comes down
JITTER_FACTOR = 3.0
BASE_WINDOW_MS = 1000
DROP_MARGIN_FRAMES = 1.5
DROP_PERSISTENCE = 8  # pops in a row beyond the margin before a frame is dropped
STRETCH_MARGIN_FRAMES = 0.25
RESYNC_MIN_SECONDS = 1.0
LATE_RESYNC = 8  # consecutive late packets mean the timestamps went back
RECENT_PLAYED = 64


@dataclass(frozen=True)
class Played:
    payload: bytes
    timestamp: int
    sequence: int


@dataclass(frozen=True)
class Missing:
    """Conceal one frame (decoder.conceal)."""

    timestamp: int


class JitterBuffer:
    def __init__(
        self,
        *,
        clock_rate: int,
        frame_samples: int,
        min_delay_ms: int = 20,
        max_delay_ms: int = 200,
        capacity: int = 256,
    ) -> None:
        if clock_rate <= 0 or frame_samples <= 0 or capacity <= 0:
            raise ValueError("clock_rate, frame_samples and capacity must be positive")
        if not 0 <= min_delay_ms <= max_delay_ms:
            raise ValueError(f"bad delay bounds {min_delay_ms}..{max_delay_ms} ms")
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self.min_delay_ms = float(min_delay_ms)
        self.max_delay_ms = float(max_delay_ms)
        self.capacity = capacity
        self.late = 0
        self.duplicates = 0
        self.concealed = 0
        self.dropped_for_drift = 0
        self.played = 0
        self.overflow = 0
        self.resyncs = 0
        self._frame_ms = frame_samples * 1000 / clock_rate
        self._window = max(16, round(BASE_WINDOW_MS / self._frame_ms))
        self._max_underruns = max(3, math.ceil(max_delay_ms / self._frame_ms))
        self._resync_threshold = max(RESYNC_MIN_SECONDS, 2 * max_delay_ms / 1000) * clock_rate
        self._jitter = 0.0
        self._target_ms = self._clamp(self._frame_ms)
        self._reset()

    def _reset(self) -> None:
        self._frames: dict[int, RtpPacket] = {}
        self._order: list[int] = []
        self._playing = False
        self._playout: int | None = None  # next timestamp to play; older ones are late
        self._reference: int | None = None  # last extended timestamp, for unwrapping
        self._recent: deque[tuple[int, int]] = deque(maxlen=RECENT_PLAYED)  # (timestamp, sequence)
        self._transits: deque[tuple[int, float]] = deque()  # increasing transits: sliding minimum
        self._arrivals = 0
        self._last_transit: float | None = None
        self._underruns = 0
        self._late_run = 0
        self._over = 0

    # --- properties --------------------------------------------------------

    @property
    def target_delay_ms(self) -> float:
        return self._target_ms

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self.clock_rate

    @property
    def depth_ms(self) -> float:
        """How much is buffered ahead of the playout point."""
        if not self._order:
            return 0.0
        start = self._playout if self._playing and self._playout is not None else self._order[0]
        return (self._order[-1] + self.frame_samples - start) * 1000 / self.clock_rate

    # --- put ---------------------------------------------------------------

    def put(self, packet: RtpPacket, now: float) -> bool:
        """Queue one packet; False when dropped (duplicate, late or overflow)."""
        extended = self._extend(packet.timestamp)
        if extended in self._frames or (extended, packet.sequence) in self._recent:
            self.duplicates += 1
            return False
        transit = now * self.clock_rate - extended
        if self._jumped(packet, extended, transit):
            return self._resync_with(packet, now)
        self._observe(transit)
        if self._playout is not None and extended < self._playout:
            self.late += 1
            self._late_run += 1
            if self._late_run < LATE_RESYNC:
                return False
            return self._resync_with(packet, now)
        self._late_run = 0
        if len(self._frames) >= self.capacity:
            self.overflow += 1
            return False
        self._frames[extended] = packet
        self._insert(extended)
        return True

    def _extend(self, timestamp: int) -> int:
        if self._reference is None:
            extended = timestamp
        else:
            delta = (timestamp - self._reference + TIMESTAMP_MOD // 2) % TIMESTAMP_MOD - TIMESTAMP_MOD // 2
            extended = self._reference + delta
        self._reference = extended
        return extended

    def _insert(self, extended: int) -> None:
        order = self._order
        if not order or extended > order[-1]:
            order.append(extended)
            return
        index = len(order) - 1
        while index > 0 and order[index - 1] > extended:
            index -= 1
        order.insert(index, extended)

    def _jumped(self, packet: RtpPacket, extended: int, transit: float) -> bool:
        base = self._base()
        if base is not None and abs(transit - base) > self._resync_threshold:
            return True
        # a new talkspurt (marker bit) into an empty buffer, not where we expected it
        return packet.marker and not self._frames and self._playout is not None and extended != self._playout

    def _resync_with(self, packet: RtpPacket, now: float) -> bool:
        self.resyncs += 1
        self._reset()
        return self.put(packet, now)

    def _observe(self, transit: float) -> None:
        """Interarrival jitter (RFC 3550 A.8), the sliding minimum transit and the target."""
        if self._last_transit is not None:
            self._jitter += (abs(transit - self._last_transit) - self._jitter) * JITTER_GAIN
        self._last_transit = transit
        index = self._arrivals
        self._arrivals += 1
        transits = self._transits
        while transits and transits[-1][1] >= transit:
            transits.pop()
        transits.append((index, transit))
        while transits[0][0] <= index - self._window:
            transits.popleft()
        self._adapt_target()

    def _adapt_target(self) -> None:
        goal = self._clamp(JITTER_FACTOR * self.jitter_ms + self._frame_ms)
        gain = TARGET_ATTACK if goal > self._target_ms else TARGET_DECAY
        self._target_ms = self._clamp(self._target_ms + (goal - self._target_ms) * gain)

    def _clamp(self, delay_ms: float) -> float:
        return min(self.max_delay_ms, max(self.min_delay_ms, delay_ms))

    def _base(self) -> float | None:
        return self._transits[0][1] if self._transits else None

    # --- pop ---------------------------------------------------------------

    def pop(self, now: float) -> Played | Missing | None:
        """The frame to play now, a Missing to conceal, or None while buffering."""
        if not self._playing and not self._start(now):
            return None
        assert self._playout is not None
        self._skip_backlog(now)
        head = self._head()
        if head is None:
            return self._gap(now)
        if self._too_late(now) and self._droppable(head):
            self._discard(head)
            self.dropped_for_drift += 1
            head = self._order[0]
        return self._play(head)

    def _too_late(self, now: float) -> bool:
        """True once the delay has stayed above target + margin for a while."""
        if self._error(now) >= -DROP_MARGIN_FRAMES * self.frame_samples:
            self._over = 0
            return False
        self._over += 1
        if self._over < DROP_PERSISTENCE:
            return False
        self._over = 0
        return True

    def _skip_backlog(self, now: float) -> None:
        """When the playout point is later than its time by more than the target delay and
        the margin, discard (as late) every buffered frame but the newest that is later
        than the margin."""
        assert self._playout is not None
        desired = self._desired(now)
        if desired is None:
            return
        limit = desired - DROP_MARGIN_FRAMES * self.frame_samples
        if self._playout >= limit - self._target_ms * self.clock_rate / 1000:
            return
        while len(self._order) > 1 and self._order[0] < limit:
            self._discard(self._order[0])
            self.late += 1

    def _desired(self, now: float) -> float | None:
        """The timestamp that should be playing now at the target delay."""
        base = self._base()
        if base is None:
            return None
        return now * self.clock_rate - base - self._target_ms * self.clock_rate / 1000

    def _error(self, now: float) -> float:
        """Positive: playing earlier than the target delay; negative: later."""
        desired = self._desired(now)
        assert self._playout is not None
        return 0.0 if desired is None else self._playout - desired

    def _start(self, now: float) -> bool:
        desired = self._desired(now)
        if not self._order or desired is None or desired < self._order[0]:
            return False
        self._playing = True
        self._playout = self._order[0]
        self._underruns = 0
        return True

    def _head(self) -> int | None:
        """The first buffered frame if it belongs to the current playout slot."""
        assert self._playout is not None
        if self._order and self._order[0] < self._playout + self.frame_samples:
            return self._order[0]
        return None

    def _droppable(self, head: int) -> bool:
        return len(self._order) > 1 and self._order[1] < head + 2 * self.frame_samples

    def _discard(self, head: int) -> None:
        self._order.pop(0)
        packet = self._frames.pop(head)
        self._recent.append((head, packet.sequence))
        self._playout = head + self.frame_samples

    def _play(self, head: int) -> Played:
        packet = self._frames[head]
        self._discard(head)
        self._underruns = 0
        self.played += 1
        return Played(packet.payload, packet.timestamp, packet.sequence)

    def _gap(self, now: float) -> Missing | None:
        assert self._playout is not None
        if not self._frames:
            self._underruns += 1
            if self._underruns > self._max_underruns:
                self._rebuffer()
                return None
        missing = Missing(self._playout % TIMESTAMP_MOD)
        self.concealed += 1
        if self._error(now) <= STRETCH_MARGIN_FRAMES * self.frame_samples:
            self._playout += self.frame_samples  # its time has come: skip it
        return missing

    def _rebuffer(self) -> None:
        """A long underrun (the stream paused): wait for the target delay again, with a
        fresh timing reference; older timestamps stay late."""
        self._playing = False
        self._underruns = 0
        self._transits.clear()
        self._last_transit = None
