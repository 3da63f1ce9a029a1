"""Live call quality: once a second, a sample of every running stream of a call.

The monitor reads the streams' counters on the asyncio clock, keeps the history when asked
(``--report`` draws it; about 400 bytes a second of call), tells its listeners (the
terminal's status line) and hands the figures to a video window that can draw them over
the picture.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from softphone.media.audio import AudioStream
from softphone.media.video import VideoStream
from softphone.rtp.quality import QualitySample, StreamCounters, StreamMeter, StreamQuality, format_duration

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
MAX_HISTORY = 3600  # an hour of samples, one a second (about 1.4 MiB a call)

Streams = Callable[[], tuple[AudioStream | None, VideoStream | None]]
PairType = Callable[[], str | None]  # the selected ICE pair's type (host, srflx, relay); None without ICE
QualityListener = Callable[[QualitySample], None]


@runtime_checkable
class OverlaySink(Protocol):
    """A video sink that draws text over the remote picture (the OpenCV window)."""

    def set_overlay(self, lines: tuple[str, ...]) -> None: ...


def _counters(stream: AudioStream | VideoStream, **extra: Any) -> StreamCounters:
    """What the stream's RTP session counted, plus what only its kind knows."""
    session = stream.session
    receiver = session.receiver
    return StreamCounters(
        tx_packets=session.sender_stats.packets,
        tx_octets=session.sender_stats.octets,
        rx_packets=receiver.received if receiver else 0,
        rx_octets=receiver.octets if receiver else 0,
        expected=receiver.expected if receiver else 0,
        jitter_ms=receiver.jitter_ms if receiver else 0.0,
        rtt_ms=session.rtt_ms,
        **extra,
    )


def audio_counters(stream: AudioStream) -> StreamCounters:
    return _counters(stream, concealed=stream.jitter.concealed, buffer_ms=stream.jitter.target_delay_ms)


def video_counters(stream: VideoStream) -> StreamCounters:
    size = stream.last_size
    return _counters(stream, frames=stream.frames_decoded, width=size[0] if size else None,
                     height=size[1] if size else None)


class _Tracked:
    """A stream and the meter that follows it (a new stream object gets a new meter)."""

    def __init__(self, stream: AudioStream | VideoStream, meter: StreamMeter) -> None:
        self.stream = stream
        self.meter = meter


class QualityMonitor:
    """Samples a call's streams every ``interval`` seconds while the call's media runs."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self.history: deque[QualitySample] = deque(maxlen=MAX_HISTORY)
        self.keep_history = False  # else only the latest sample is kept
        self._latest: QualitySample | None = None
        self.listeners: list[QualityListener] = []
        self.started: float | None = None
        self.stopped: float | None = None
        self._sampled = 0.0  # when the previous sample was taken: where a new stream's meter starts
        self._streams: Streams | None = None
        self._pair_type: PairType | None = None
        self._tracked: dict[str, _Tracked] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, streams: Streams, pair_type: PairType | None = None) -> None:
        """Begin sampling (once; later calls only change where the streams come from)."""
        self._streams = streams
        self._pair_type = pair_type
        if self._task is not None or self.stopped is not None:
            return
        self._loop = asyncio.get_running_loop()
        self.started = self._sampled = time.monotonic()
        self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling; the whole-call figures are fixed at this moment."""
        if self._task is None or self.stopped is not None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None  # its error holds its frame, which holds this monitor
        self.stopped = self._now()
        self.listeners.clear()

    def detach(self) -> None:
        """Let go of the call's streams once its summary is made: the figures stay, and the call
        (which holds this monitor) is freed by reference counting, not by the cycle collector."""
        self._streams = None
        self._pair_type = None
        self._tracked.clear()

    def _now(self) -> float:
        return time.monotonic() if self._loop is not None else 0.0

    async def _run(self) -> None:
        assert self._loop is not None and self.started is not None
        deadline = self.started
        while True:
            deadline += self.interval
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            sample = self._latest = self.sample()
            if self.keep_history:
                self.history.append(sample)
            self._publish(sample)

    def _publish(self, sample: QualitySample) -> None:
        for listener in list(self.listeners):
            try:
                listener(sample)
            except Exception:
                log.exception("quality listener failed")
        streams = self._streams() if self._streams is not None else (None, None)
        video = streams[1]
        if video is not None and isinstance(video.sink, OverlaySink):
            video.sink.set_overlay(overlay_lines(sample))

    def sample(self) -> QualitySample:
        """The figures since the previous sample (the first: since the media started)."""
        now = self._now()
        audio, video = self._streams() if self._streams is not None else (None, None)
        sample = QualitySample(
            at=now - (self.started if self.started is not None else now),
            audio=self._measure("audio", audio, now, whole=False),
            video=self._measure("video", video, now, whole=False),
            ice=self._pair_type() if self._pair_type is not None else None,
        )
        self._sampled = now
        return sample

    def latest(self) -> QualitySample | None:
        return self._latest

    def overall(self, kind: str) -> dict[str, Any]:
        """The whole call's figures for one stream, for its summary."""
        audio, video = self._streams() if self._streams is not None else (None, None)
        stream: AudioStream | VideoStream | None = audio if kind == "audio" else video
        tracked = self._tracked.get(kind)
        if stream is None and tracked is not None:
            stream = tracked.stream
        now = self.stopped if self.stopped is not None else self._now()
        quality = self._measure(kind, stream, now, whole=True)
        if quality is None:
            return {}
        figures: dict[str, Any] = {"tx_kbps": quality.tx_kbps, "rx_kbps": quality.rx_kbps,
                                   "loss_pct": quality.loss_pct}
        if kind == "audio":
            figures["mos"] = quality.mos
        return figures

    def _measure(self, kind: str, stream: AudioStream | VideoStream | None, now: float, *,
                 whole: bool) -> StreamQuality | None:
        if stream is None:
            return None
        tracked = self._tracked.get(kind)
        codec = stream.params.codec
        if tracked is None or tracked.stream is not stream:
            ptime = stream.params.remote_ptime if isinstance(stream, AudioStream) else 0
            tracked = self._tracked[kind] = _Tracked(
                stream, StreamMeter(kind, codec, ptime_ms=ptime, start=self._sampled))
        tracked.meter.codec = codec
        if isinstance(stream, AudioStream):
            tracked.meter.ptime_ms = stream.params.remote_ptime
            counters = audio_counters(stream)
        else:
            counters = video_counters(stream)
        return tracked.meter.overall(counters, now) if whole else tracked.meter.sample(counters, now)


def overlay_lines(sample: QualitySample) -> tuple[str, ...]:
    """What the video window draws over the picture: the duration, then two lines a stream."""
    lines = [format_duration(sample.at)]
    for label, stream in (("audio", sample.audio), ("video", sample.video)):
        if stream is not None:
            first, second = stream.figure_lines()
            lines += [f"{label} {first}", f"      {second}"]
    return tuple(lines)
