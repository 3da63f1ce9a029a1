"""The audio stream of a call: source -> encoder -> RTP, and RTP -> jitter buffer -> decoder -> sink.

Two callbacks run on the loop's shared media clock (``media/clock.py``), at every grid point
of their ptime: the send tick reads one ptime of audio from the source, encodes it (on the
loop while that is cheap, else in an executor) and sends it; the playout tick takes one
frame from the jitter buffer, decodes or conceals it and writes it to the sink. RTP
arrives through the injected transport's callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import field, replace
from typing import Any, Generic, TypeVar

from softphone.codecs import AudioDecoder, AudioEncoder, CodecError, create_decoder, create_encoder
from softphone.codecs.dtmf import DtmfReceiver, DtmfSender
from softphone.devices import AudioSink, AudioSource, open_audio_sink, open_audio_source
from softphone.frames import AudioFrame
from softphone.frozen import dataclass
from softphone.media.clock import MediaClock, Ticker
from softphone.media.fallback import EventCallback, ignore_event, open_or_fallback
from softphone.media.gain import apply_gain
from softphone.media.reports import send_reports
from softphone.media.transport import Address, RtpTransport
from softphone.rtp.jitter import JitterBuffer, Missing, Played
from softphone.rtp.packet import RtpPacket, is_rtcp
from softphone.rtp.session import RtpSession

log = logging.getLogger(__name__)

_In = TypeVar("_In")
_Out = TypeVar("_Out")

SENDING = frozenset({"sendrecv", "sendonly"})
RECEIVING = frozenset({"sendrecv", "recvonly"})
DTMF_AFTER_AUDIO_MS = 300  # audio sent before the first DTMF event


@dataclass(frozen=True)
class AudioParams:
    """What negotiation decided for one audio stream."""

    codec: str
    send_payload_type: int
    recv_payload_type: int
    remote_rtp: Address | None
    remote_rtcp: Address | None
    direction: str = "sendrecv"
    ptime: int = 20  # ours: how much audio each packet we send carries
    remote_ptime: int = 20  # theirs: the size of the frames we play out
    send_event_payload_type: int | None = None
    recv_event_payload_types: frozenset[int] = frozenset()
    rtcp_mux: bool = False
    fmtp: str | None = None


@dataclass(frozen=True)
class AudioOptions:
    source: str = "silence:"
    sink: str = "null:"
    jitter_min_ms: int = 20
    jitter_max_ms: int = 200
    nortp_timeout: float = 30.0
    symmetric: bool = True
    cname: str = "softphone"
    mic_gain_db: float = 0.0  # applied to the source before encoding
    playback_gain_db: float = 0.0  # applied to decoded audio before the sink


@dataclass
class _Counters:
    encode_errors: int = 0
    decode_errors: int = 0
    foreign_payload: int = 0
    dtmf_sent: int = 0
    dtmf_received: list[str] = field(default_factory=list)


class AudioStream:
    """One call's audio, from start to stop; follows re-negotiations with ``update``."""

    def __init__(self, transport: RtpTransport, params: AudioParams, options: AudioOptions,
                 on_event: EventCallback | None = None) -> None:
        self.transport = transport
        self.params = params
        self.options = options
        self.on_event = on_event or (lambda name, data: None)
        self.encoder: AudioEncoder = create_encoder(params.codec, ptime_ms=params.ptime, fmtp=params.fmtp)
        self.decoder: AudioDecoder = create_decoder(params.codec, fmtp=params.fmtp)
        clock = self.encoder.rtp_clock_rate
        self.session = RtpSession(payload_type=params.send_payload_type, clock_rate=clock, cname=options.cname)
        self.jitter = self._new_jitter_buffer()
        self.dtmf = DtmfSender(clock_rate=clock, ptime_ms=params.ptime)
        self.dtmf_receiver = DtmfReceiver()
        self.counters = _Counters()
        self.source: AudioSource | None = None
        self.sink: AudioSink | None = None
        self.first_rx: float | None = None
        self.last_rx: float | None = None
        self._remote_latched = False
        self.muted = False  # send silence instead of the source
        self._audio_sent = 0  # audio (not DTMF) packets sent
        self._tasks: list[asyncio.Task[None]] = []
        self._encode_work: _Offload[AudioFrame | _Event, bytes | _Event | None] | None = None
        self._decode_work: _Offload[Played | Missing, AudioFrame | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: MediaClock | None = None
        self._send_ticker: Ticker | None = None
        self._playout_ticker: Ticker | None = None
        self._started = 0.0
        self._stopped = False

    def _new_jitter_buffer(self) -> JitterBuffer:
        frame = self.decoder_frame_rtp_units
        return JitterBuffer(clock_rate=self.encoder.rtp_clock_rate, frame_samples=frame,
                            min_delay_ms=self.options.jitter_min_ms, max_delay_ms=self.options.jitter_max_ms)

    @property
    def decoder_frame_rtp_units(self) -> int:
        return self.encoder.rtp_clock_rate * self.params.remote_ptime // 1000

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        self._open_devices()
        self._encode_work = _Offload(self._loop, self._encode, self._send_encoded)
        self._decode_work = _Offload(self._loop, self._decode, self._play_decoded)
        self.transport.set_receivers(self._on_rtp, self._on_rtcp)
        self._clock = MediaClock.of(self._loop)
        self._start_tickers()
        self._tasks = [
            self._loop.create_task(send_reports(self.session, self.transport, self._rtcp_address)),
        ]

    def _start_tickers(self) -> None:
        assert self._clock is not None
        self._stop_tickers()
        self._send_ticker = self._clock.every(self.params.ptime / 1000, self._send_tick)
        self._playout_ticker = self._clock.every(self.params.remote_ptime / 1000, self._playout_tick)

    def _stop_tickers(self) -> None:
        assert self._clock is not None
        for ticker in (self._send_ticker, self._playout_ticker):
            if ticker is not None:
                self._clock.cancel(ticker)
        self._send_ticker = self._playout_ticker = None

    def _open_devices(self) -> None:
        send_samples = self.encoder.sample_rate * self.params.ptime // 1000
        play_samples = self.decoder.sample_rate * self.params.remote_ptime // 1000
        self.source = open_or_fallback("audio", open_audio_source, self.options.source, "silence:", self.on_event,
                                       sample_rate=self.encoder.sample_rate, channels=1, frame_samples=send_samples)
        self.sink = open_or_fallback("audio", open_audio_sink, self.options.sink, "null:", self.on_event,
                                     sample_rate=self.decoder.sample_rate, channels=1, frame_samples=play_samples)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # nothing more is received from here on (RFC 3261 §15.1.1: once our BYE is sent): what
        # the peer sends on its way out (its RTCP BYE) must not reach the call's figures
        self.transport.set_receivers(None, None)
        if self._clock is not None:
            self._stop_tickers()
        for work in (self._encode_work, self._decode_work):
            if work is not None:
                work.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []  # a cancelled task's error holds its frame, which holds this stream
        remote = self._rtcp_address()
        if remote is not None:
            self.transport.send_rtcp(self.session.rtcp_bye(self._now(), time.time()), remote)
        for device in (self.source, self.sink):
            if device is not None:
                device.close()
        self.on_event = ignore_event  # the call's callback refers back to the call

    def update(self, params: AudioParams) -> None:
        """A new negotiation: address, port, codec or direction may have changed."""
        old = self.params
        self.params = params
        if params.remote_rtp != old.remote_rtp:
            self._remote_latched = False
        if params.codec != old.codec or params.ptime != old.ptime or params.remote_ptime != old.remote_ptime:
            self.encoder = create_encoder(params.codec, ptime_ms=params.ptime, fmtp=params.fmtp)
            self.decoder = create_decoder(params.codec, fmtp=params.fmtp)
            self.jitter = self._new_jitter_buffer()
            for device in (self.source, self.sink):
                if device is not None:
                    device.close()
            self._open_devices()
        if params.direction not in RECEIVING:
            self.jitter = self._new_jitter_buffer()
        if self._clock is not None and not self._stopped and (
                params.ptime != old.ptime or params.remote_ptime != old.remote_ptime):
            self._start_tickers()

    def send_dtmf(self, digits: str) -> None:
        self.dtmf.queue(digits)

    def _now(self) -> float:
        return time.monotonic()

    # ------------------------------------------------------------ sending

    def _send_tick(self, now: float) -> None:
        """One ptime: read the source, and queue the frame (or a DTMF event) to be sent."""
        source, work = self.source, self._encode_work
        if source is None or work is None:
            return
        frame = source.read()  # read even when not sending: keeps the source's clock running
        if self.params.direction not in SENDING or self.params.remote_rtp is None:
            return
        # some phones drop a stream whose first packets are telephone events: DTMF waits until
        # audio has flowed for a while
        audio_flowed = self._audio_sent * self.params.ptime >= DTMF_AFTER_AUDIO_MS
        if self.params.send_event_payload_type is not None and self.dtmf.busy and audio_flowed:
            # the timestamp this ptime's audio would carry, after the frames still being encoded
            timestamp = self.session.sender.next_timestamp + self._clock_units * work.backlog
            event = self.dtmf.next_packet(timestamp)
            if event is not None:
                work.push(_Event(*event))
                return
        if self.muted:
            frame = AudioFrame.silence(frame.samples, frame.sample_rate, frame.channels)
        work.push(apply_gain(frame, self.options.mic_gain_db))

    @property
    def _clock_units(self) -> int:
        return self.encoder.rtp_clock_rate * self.params.ptime // 1000

    def _encode(self, item: AudioFrame | _Event) -> bytes | _Event | None:
        if isinstance(item, _Event):
            return item
        try:
            return self.encoder.encode(item)
        except CodecError as exc:
            self.counters.encode_errors += 1
            log.debug("encode error: %s", exc)
            return None

    def _send_encoded(self, payload: bytes | _Event | None) -> None:
        remote = self.params.remote_rtp
        if payload is None or remote is None or self._stopped:
            return
        if isinstance(payload, _Event):
            data = self.session.prepare(payload.payload, samples=self._clock_units, now=self._now(),
                                        marker=payload.marker, payload_type=self.params.send_event_payload_type,
                                        timestamp=payload.timestamp)
            self.counters.dtmf_sent += 1
        else:
            data = self.session.prepare(payload, samples=self._clock_units, now=self._now())
            self._audio_sent += 1
        self.transport.send_rtp(data, remote)

    # ------------------------------------------------------------ receiving

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if self.params.rtcp_mux and is_rtcp(data):
            self._on_rtcp(data, addr)
            return
        now = self._now()
        for packet in self.session.receive_rtp_packets(data, now):
            self._on_packet(packet, addr, now)

    def _on_packet(self, packet: RtpPacket, addr: Address, now: float) -> None:
        self._latch(addr)
        self.last_rx = now
        if self.first_rx is None:
            self.first_rx = now
            self.on_event("first_audio_rx", {"after": round(now - self._started, 6)})
        if packet.payload_type in self.params.recv_event_payload_types:
            digit = self.dtmf_receiver.receive(packet.payload, packet.timestamp, packet.marker)
            if digit is not None:
                self.counters.dtmf_received.append(digit)
                self.on_event("dtmf", {"digit": digit})
            return
        if packet.payload_type not in (self.params.recv_payload_type, self.params.send_payload_type):
            self.counters.foreign_payload += 1
            return
        if self.params.direction in RECEIVING:
            self.jitter.put(packet, now)

    def _latch(self, addr: Address) -> None:
        """Symmetric RTP (RFC 4961): send to where the peer's packets come from."""
        if not self.options.symmetric or self._remote_latched or addr == self.params.remote_rtp:
            self._remote_latched = True
            return
        log.info("RTP from %s:%s instead of %s: sending there", addr[0], addr[1], self.params.remote_rtp)
        remote_rtcp = (addr[0], addr[1] + 1) if not self.params.rtcp_mux else addr
        self.params = replace(self.params, remote_rtp=addr, remote_rtcp=remote_rtcp)
        self._remote_latched = True

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        self.session.receive_rtcp(data, self._now())

    def _playout_tick(self, now: float) -> None:
        """One remote ptime: take a frame from the jitter buffer (or conceal) and play it."""
        item = self.jitter.pop(now)
        if item is not None and self.sink is not None and self._decode_work is not None:
            self._decode_work.push(item)
        if self._nortp_expired(now):
            self.on_event("nortp", {"seconds": self.options.nortp_timeout})
            if self._clock is not None and self._playout_ticker is not None:
                self._clock.cancel(self._playout_ticker)
                self._playout_ticker = None

    def _play_decoded(self, frame: AudioFrame | None) -> None:
        if frame is not None and self.sink is not None and not self._stopped:
            self.sink.write(frame)

    def _decode(self, item: Played | Missing) -> AudioFrame | None:
        samples = self.decoder.sample_rate * self.params.remote_ptime // 1000
        if isinstance(item, Played):
            try:
                return apply_gain(self.decoder.decode(item.payload), self.options.playback_gain_db)
            except CodecError:
                self.counters.decode_errors += 1
        return apply_gain(self.decoder.conceal(samples), self.options.playback_gain_db)

    def _nortp_expired(self, now: float) -> bool:
        timeout = self.options.nortp_timeout
        if timeout <= 0 or self.params.direction not in RECEIVING:
            return False
        last = self.last_rx if self.last_rx is not None else self._started
        return now - last > timeout

    # ------------------------------------------------------------ RTCP

    def _rtcp_address(self) -> Address | None:
        if self.params.rtcp_mux:
            return self.params.remote_rtp
        return self.params.remote_rtcp

    # ------------------------------------------------------------ reporting

    def summary(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.session.summary())
        stats.update({
            "concealed": self.jitter.concealed,
            "late": self.jitter.late,
            "jitter_buffer_ms": round(self.jitter.target_delay_ms, 1),
            "dtmf_sent": self.counters.dtmf_sent,
            "dtmf_received": "".join(self.counters.dtmf_received),
            "decode_errors": self.counters.decode_errors,
            "source": self.options.source,
            "sink": self.options.sink,
        })
        return stats


@dataclass(frozen=True)
class _Event:
    """A telephone-event packet (RFC 4733) waiting its turn behind the audio being encoded."""

    payload: bytes
    marker: bool
    timestamp: int


class _Offload(Generic[_In, _Out]):
    """Codec work of one direction of a stream, in order: on the loop while cheap, else in the executor.

    A thread hop (two wake-ups, the GIL changing hands) costs more than a frame of any audio
    codec here: G.711 takes microseconds, Opus 0.1-0.25 ms, G.722 less. So work runs on
    the loop, and only work that proves costly (OFFLOAD_ABOVE a frame, 5 % of a 20-ms
    ptime: a codec gone wrong, a slow machine) goes to the executor, not to block the loop;
    under INLINE_BELOW it comes back. The cost is a moving average of the work's time (in
    the executor its thread's CPU time, as waiting for the GIL does not count; on the loop
    the wall clock), starting from zero, so that a first frame that pays for the codec's
    start-up does not send the stream out. Items pushed while one is in the executor wait in
    a short queue, so ``done`` sees the results in order; a queue longer than MAX_BACKLOG
    loses its oldest item.
    """

    INLINE_BELOW = 0.0005
    OFFLOAD_ABOVE = 0.001
    WEIGHT = 0.1  # of the newest frame in the moving average
    MAX_BACKLOG = 5

    def __init__(self, loop: asyncio.AbstractEventLoop, work: Callable[[_In], _Out],
                 done: Callable[[_Out], None]) -> None:
        self.loop = loop
        self.work = work
        self.done = done
        self.inline = True
        self.cost: float | None = None
        self.dropped = 0
        self._waiting: deque[_In] = deque()
        self._busy = False
        self._closed = False

    @property
    def backlog(self) -> int:
        """Items pushed and not yet done."""
        return len(self._waiting) + self._busy

    def push(self, item: _In) -> None:
        if self._closed:
            return
        if self._busy:
            self._waiting.append(item)
            if len(self._waiting) > self.MAX_BACKLOG:
                self._waiting.popleft()
                self.dropped += 1
            return
        self._start(item)

    def close(self) -> None:
        """No more work; the callbacks (bound to the stream) are let go, so the stream is freed
        by reference counting, without waiting for the cycle collector."""
        self._closed = True
        self._waiting.clear()
        self.work = self.done = _unreachable

    def _start(self, item: _In) -> None:
        if self.inline:  # on the loop's thread: its wall clock is its CPU time, and cheaper to read
            started = time.perf_counter()
            value = self.work(item)
            self._note(time.perf_counter() - started)
            self.done(value)
            return
        self._busy = True
        future = self.loop.run_in_executor(None, _timed, self.work, item)
        future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future[tuple[_Out, float]]) -> None:
        self._busy = False
        if self._closed or future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("codec work failed: %r", error)
        else:
            value, spent = future.result()
            self._note(spent)
            self.done(value)
        while self._waiting and not self._busy and not self._closed:
            self._start(self._waiting.popleft())

    def _note(self, spent: float) -> None:
        self.cost = (1 - self.WEIGHT) * (self.cost or 0.0) + self.WEIGHT * spent
        if self.inline and self.cost > self.OFFLOAD_ABOVE:
            self.inline = False
        elif not self.inline and self.cost < self.INLINE_BELOW:
            self.inline = True


def _unreachable(item: Any) -> Any:
    raise RuntimeError("work pushed after close")


def _timed(work: Callable[[_In], _Out], item: _In) -> tuple[_Out, float]:
    started = time.thread_time()
    return work(item), time.thread_time() - started


def random_cname() -> str:
    return f"softphone-{random.SystemRandom().getrandbits(48):012x}"
