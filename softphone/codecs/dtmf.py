"""DTMF digits as RTP telephone events (RFC 4733). Pure: no numpy, no I/O.

RFC 4733 §2.3, the payload of one event::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import math
import struct
from collections import deque

from softphone.codecs import CodecError

DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 §3: event codes 0-15
PAYLOAD_SIZE = 4
END_REPEATS = 3  # RFC 4733 §2.5.1.4: the final packet is sent three times
MAX_DURATION = 0xFFFF
_FORMAT = struct.Struct("!BBH")


def pack_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    """One RFC 4733 event payload. ``volume`` is in -dBm0 (0-63), ``duration`` in clock units."""
    if not 0 <= event <= 255:
        raise ValueError(f"event code {event} is outside 0-255")
    if not 0 <= volume <= 63:
        raise ValueError(f"volume {volume} is outside 0-63")
    if not 0 <= duration <= MAX_DURATION:
        raise ValueError(f"duration {duration} is outside 0-65535")
    return _FORMAT.pack(event, (0x80 if end else 0) | volume, duration)


def unpack_event(payload: bytes) -> tuple[int, bool, int, int]:
    """``(event, end, volume, duration)`` of an event payload; CodecError if it is not 4 bytes.

    A payload may pack several events (redundancy); the first one is read.
    """
    if len(payload) < PAYLOAD_SIZE or len(payload) % PAYLOAD_SIZE:
        raise CodecError(f"telephone-event payload must be a multiple of 4 bytes, got {len(payload)}")
    event, flags, duration = _FORMAT.unpack_from(payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


def event_code(digit: str) -> int:
    """The RFC 4733 event code of a DTMF digit (``a``-``d`` accepted); ValueError otherwise."""
    code = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit; use one of {DTMF_EVENTS}")
    return code


class DtmfSender:
    """Turns queued digits into the RFC 4733 packet sequence, one packet per ptime.

    Each digit lasts ``digit_ms``: its first packet has the marker bit (§2.5.1) and
    every packet carries the event's start timestamp with a duration that grows by one
    ptime; the packet that reaches ``digit_ms`` has the E bit and is sent
    :data:`END_REPEATS` times. Digits are separated by at least ``gap_ms`` of audio.
    """

    def __init__(
        self, clock_rate: int = 8000, ptime_ms: int = 20, digit_ms: int = 100, gap_ms: int = 50, volume: int = 10
    ) -> None:
        if clock_rate <= 0 or ptime_ms <= 0 or digit_ms <= 0 or gap_ms < 0:
            raise ValueError("clock rate, ptime and digit length must be positive and the gap not negative")
        if not 0 <= volume <= 63:
            raise ValueError(f"volume {volume} is outside 0-63")
        self.clock_rate = clock_rate
        self.ptime_ms = ptime_ms
        self.volume = volume
        self._step = clock_rate * ptime_ms // 1000
        self._digit_duration = max(self._step, clock_rate * digit_ms // 1000)
        if self._digit_duration > MAX_DURATION:
            raise ValueError(f"a {digit_ms} ms digit does not fit the 16-bit duration at {clock_rate} Hz")
        self._gap_packets = math.ceil(gap_ms / ptime_ms)
        self._queue: deque[int] = deque()
        self._event: int | None = None
        self._event_timestamp = 0
        self._duration = 0
        self._ends_sent = 0
        self._gap_left = 0

    def queue(self, digits: str) -> None:
        """Queue digits to send; ValueError (and nothing queued) for a character that is no DTMF digit."""
        codes = [event_code(digit) for digit in digits]
        self._queue.extend(codes)

    @property
    def busy(self) -> bool:
        """True while an event is being sent or digits wait in the queue."""
        return self._event is not None or bool(self._queue)

    def next_packet(self, timestamp: int) -> tuple[bytes, bool, int] | None:
        """``(payload, marker, event_timestamp)`` for this ptime, or None to send audio instead.

        ``timestamp`` is the RTP timestamp the audio packet of this ptime would carry.
        """
        if self._event is None:
            if self._gap_left > 0:
                self._gap_left -= 1
                return None
            if not self._queue:
                return None
            self._event = self._queue.popleft()
            self._event_timestamp = timestamp & 0xFFFFFFFF
            self._duration = 0
            self._ends_sent = 0
        marker = self._duration == 0
        self._duration = min(self._duration + self._step, self._digit_duration)
        end = self._duration >= self._digit_duration
        payload = pack_event(self._event, end, self.volume, self._duration)
        event_timestamp = self._event_timestamp
        if end:
            self._ends_sent += 1
            if self._ends_sent >= END_REPEATS:
                self._event = None
                self._gap_left = self._gap_packets
        return payload, marker, event_timestamp


class DtmfReceiver:
    """Reports each received DTMF event once.

    Events are told apart by their RTP timestamp (RFC 4733 §2.5.2: all packets of
    one event carry its start timestamp), so a lost first packet, updates and the
    repeated end packets yield the digit exactly once, on whichever packet arrives
    first. A few recent timestamps are remembered, so a late, reordered packet of an
    earlier event is not taken for a new one.
    """

    RECENT = 8

    def __init__(self) -> None:
        self._recent: deque[int] = deque(maxlen=self.RECENT)

    def receive(self, payload: bytes, timestamp: int, marker: bool) -> str | None:
        """The digit when ``payload`` starts a new event, else None; CodecError for a malformed payload."""
        event, _end, _volume, _duration = unpack_event(payload)
        if timestamp in self._recent:
            return None
        self._recent.append(timestamp)
        if event >= len(DTMF_EVENTS):
            return None  # a telephone event that is not a DTMF digit (e.g. 16, flash)
        return DTMF_EVENTS[event]


class TelephoneEventCodec:
    """telephone-event (RFC 4733): the registry's implementation entry. No audio: digits only."""

    @classmethod
    def sender(cls, *, clock_rate: int = 8000, ptime_ms: int = 20) -> DtmfSender:
        return DtmfSender(clock_rate=clock_rate, ptime_ms=ptime_ms)

    @classmethod
    def receiver(cls) -> DtmfReceiver:
        return DtmfReceiver()
