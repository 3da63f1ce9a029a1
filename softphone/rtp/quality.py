"""Call quality over time: from the running totals of a stream's counters, read once a
second, the figures of the last interval (bitrates, loss, jitter, round trip, MOS, frame
rate) and of the whole call.

Pure: the caller reads the counters and says what time it is.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from softphone.frozen import dataclass

from .emodel import estimate_mos

_WRAP = 1 << 32  # RTCP's sender packet and octet counts are 32-bit and wrap


@dataclass(frozen=True)
class StreamCounters:
    """A stream's running totals at one moment."""

    tx_packets: int = 0
    tx_octets: int = 0  # payload octets, modulo 2**32
    rx_packets: int = 0
    rx_octets: int = 0  # payload octets
    expected: int = 0  # packets the peer sent us, by sequence number (RFC 3550 A.3)
    concealed: int = 0  # frames played as concealment: lost, or arrived too late to be played
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    buffer_ms: float = 0.0  # how long the jitter buffer holds audio
    frames: int = 0  # video pictures decoded
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class StreamQuality:
    """One stream over an interval (one second, or the whole call)."""

    kind: str
    codec: str | None
    tx_kbps: float
    rx_kbps: float
    loss_pct: float | None  # None: nothing expected in the interval
    jitter_ms: float
    rtt_ms: float | None
    mos: float | None = None  # audio: the G.107 estimate
    fps: float | None = None  # video: pictures decoded per second
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def figures(self) -> str:
        """``PCMU tx 64 rx 64 kbit/s loss 0.0% jitter 1.2 ms rtt 0 ms MOS 4.37``."""
        return " ".join(self.figure_lines())

    def figure_lines(self) -> tuple[str, str]:
        """The figures in two halves: codec, bitrates and loss; then delay, MOS, fps and size."""
        first = [self.codec or self.kind, f"tx {_kbps(self.tx_kbps)} rx {_kbps(self.rx_kbps)} kbit/s"]
        first.append("loss -" if self.loss_pct is None else f"loss {self.loss_pct:.1f}%")
        second = [f"jitter {self.jitter_ms:.1f} ms", "rtt -" if self.rtt_ms is None else f"rtt {self.rtt_ms:.0f} ms"]
        if self.mos is not None:
            second.append(f"MOS {self.mos:.2f}")
        if self.fps is not None:
            second.append(f"{self.fps:.0f} fps")
        if self.width and self.height:
            second.append(f"{self.width}x{self.height}")
        return " ".join(first), " ".join(second)


@dataclass(frozen=True)
class QualitySample:
    """The call's streams over one interval, ``at`` seconds into the media."""

    at: float
    audio: StreamQuality | None = None
    video: StreamQuality | None = None
    ice: str | None = None  # the type of the candidate pair media runs on, when ICE ran (host, srflx, relay)

    def to_json(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "at": round(self.at, 3),
            "audio": self.audio.to_json() if self.audio else None,
            "video": self.video.to_json() if self.video else None,
        }
        if self.ice is not None:
            figures["ice"] = self.ice
        return figures

    def status_line(self) -> str:
        """One line for a terminal: ``00:12 | audio PCMU tx 64 ... | video VP8 ...``."""
        parts = [format_duration(self.at)]
        for label, stream in (("audio", self.audio), ("video", self.video)):
            if stream is not None:
                parts.append(f"{label} {stream.figures()}")
        if self.ice is not None:
            parts.append(f"ice {self.ice}")
        return " | ".join(parts)


def format_duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _kbps(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


class StreamMeter:
    """Figures of one stream between successive readings of its counters."""

    def __init__(self, kind: str, codec: str | None, *, ptime_ms: float = 20.0, start: float = 0.0) -> None:
        self.kind = kind
        self.codec = codec
        self.ptime_ms = ptime_ms
        self.start = start
        self._first = StreamCounters()
        self._previous = StreamCounters()
        self._previous_time = start

    def sample(self, counters: StreamCounters, now: float) -> StreamQuality:
        """The figures since the previous sample; the next one starts from here."""
        quality = self._between(self._previous, counters, now - self._previous_time)
        self._previous, self._previous_time = counters, now
        return quality

    def overall(self, counters: StreamCounters, now: float) -> StreamQuality:
        """The figures from the start of the stream to ``now`` (the call's summary)."""
        return self._between(self._first, counters, now - self.start)

    def _between(self, old: StreamCounters, new: StreamCounters, seconds: float) -> StreamQuality:
        span = max(seconds, 1e-3)
        tx_octets = (new.tx_octets - old.tx_octets) % _WRAP
        rx_octets = max(0, new.rx_octets - old.rx_octets)
        expected = new.expected - old.expected
        received = new.rx_packets - old.rx_packets
        loss_pct: float | None = None
        unplayable_pct = 0.0
        if expected > 0:
            lost = max(0, expected - received)
            loss_pct = 100.0 * lost / expected
            # the E-model's packet loss is what the listener misses: lost on the way, or
            # arrived too late to be played (both concealed by the decoder)
            unplayable_pct = min(100.0, 100.0 * max(lost, new.concealed - old.concealed) / expected)
        mos = None
        if self.kind == "audio" and self.codec is not None and (received > 0 or expected > 0):
            mos = estimate_mos(self.codec, loss_pct=unplayable_pct, rtt_ms=new.rtt_ms, buffer_ms=new.buffer_ms,
                               ptime_ms=self.ptime_ms)
        fps = None
        if self.kind == "video":
            fps = max(0, new.frames - old.frames) / span
        return StreamQuality(
            kind=self.kind,
            codec=self.codec,
            tx_kbps=round(tx_octets * 8 / span / 1000, 1),
            rx_kbps=round(rx_octets * 8 / span / 1000, 1),
            loss_pct=None if loss_pct is None else round(loss_pct, 2),
            jitter_ms=round(new.jitter_ms, 2),
            rtt_ms=None if new.rtt_ms is None else round(new.rtt_ms, 2),
            mos=None if mos is None else round(mos, 2),
            fps=None if fps is None else round(fps, 1),
            width=new.width,
            height=new.height,
        )
