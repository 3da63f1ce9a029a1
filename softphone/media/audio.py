"""The audio stream of a call: source -> encoder -> RTP, and RTP -> jitter buffer -> decoder -> sink.

Two loops run on the asyncio clock with absolute deadlines (no drift from sleeping):
the send loop reads one ptime of audio from the source, encodes it in an executor and
sends it; the playout loop takes one frame from the jitter buffer, decodes or conceals
it and writes it to the sink. RTP arrives through the injected transport's callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from softphone.codecs import AudioDecoder, AudioEncoder, CodecError, create_decoder, create_encoder
from softphone.codecs.dtmf import DtmfReceiver, DtmfSender
from softphone.devices import AudioSink, AudioSource, open_audio_sink, open_audio_source
from softphone.frames import AudioFrame
from softphone.media.gain import apply_gain
from softphone.media.reports import send_reports
from softphone.media.transport import Address, RtpTransport
from softphone.rtp.jitter import JitterBuffer, Missing, Played
from softphone.rtp.packet import RtpPacket, is_rtcp
from softphone.rtp.session import RtpSession

log = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any]], None]
_In = TypeVar("_In")
_Out = TypeVar("_Out")
_Device = TypeVar("_Device")

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
        self._encode_work = _Offload()
        self._decode_work = _Offload()
        self._loop: asyncio.AbstractEventLoop | None = None
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
        self._started = self._loop.time()
        self._open_devices()
        self.transport.set_receivers(self._on_rtp, self._on_rtcp)
        self._tasks = [
            self._loop.create_task(self._send_loop()),
            self._loop.create_task(self._playout_loop()),
            self._loop.create_task(send_reports(self.session, self.transport, self._rtcp_address)),
        ]

    def _open_devices(self) -> None:
        send_samples = self.encoder.sample_rate * self.params.ptime // 1000
        play_samples = self.decoder.sample_rate * self.params.remote_ptime // 1000
        self.source = _open_or_fallback(open_audio_source, self.options.source, "silence:", self.encoder.sample_rate,
                                        send_samples, self.on_event)
        self.sink = _open_or_fallback(open_audio_sink, self.options.sink, "null:", self.decoder.sample_rate,
                                      play_samples, self.on_event)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.transport.set_receivers(None, None)
        remote = self._rtcp_address()
        if remote is not None:
            self.transport.send_rtcp(self.session.rtcp_bye(self._now(), time.time()), remote)
        for device in (self.source, self.sink):
            if device is not None:
                device.close()

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

    def send_dtmf(self, digits: str) -> None:
        self.dtmf.queue(digits)

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.params.ptime / 1000
        deadline = loop.time()
        while True:
            deadline += period
            if self.params.direction in SENDING and self.params.remote_rtp is not None and self.source is not None:
                await self._send_one(loop)
            else:
                self.source.read() if self.source is not None else None  # keep the source's clock running
            delay = deadline - loop.time()
            if delay < -5 * period:  # the loop was stalled: do not burst to catch up
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def _send_one(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.source is not None
        frame = self.source.read()
        if self.muted:
            frame = AudioFrame.silence(frame.samples, frame.sample_rate, frame.channels)
        frame = apply_gain(frame, self.options.mic_gain_db)
        clock_units = self.encoder.rtp_clock_rate * self.params.ptime // 1000
        event = None
        # some phones drop a stream whose first packets are telephone events: DTMF waits until
        # audio has flowed for a while
        audio_flowed = self._audio_sent * self.params.ptime >= DTMF_AFTER_AUDIO_MS
        if self.params.send_event_payload_type is not None and self.dtmf.busy and audio_flowed:
            event = self.dtmf.next_packet(self.session.sender.next_timestamp)
        if event is not None:
            payload, marker, timestamp = event
            data = self.session.prepare(payload, samples=clock_units, now=loop.time(), marker=marker,
                                        payload_type=self.params.send_event_payload_type, timestamp=timestamp)
            self.counters.dtmf_sent += 1
        else:
            try:
                payload = await self._encode_work.run(loop, self.encoder.encode, frame)
            except CodecError as exc:
                self.counters.encode_errors += 1
                log.debug("encode error: %s", exc)
                return
            if self._stopped:
                return
            data = self.session.prepare(payload, samples=clock_units, now=loop.time())
            self._audio_sent += 1
        assert self.params.remote_rtp is not None
        self.transport.send_rtp(data, self.params.remote_rtp)

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

    async def _playout_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.params.remote_ptime / 1000
        deadline = loop.time()
        while True:
            deadline += period
            item = self.jitter.pop(loop.time())
            if item is not None and self.sink is not None:
                frame = await self._decode_work.run(loop, self._decode, item)
                if frame is not None and not self._stopped:
                    self.sink.write(frame)
            if self._nortp_expired(loop.time()):
                self.on_event("nortp", {"seconds": self.options.nortp_timeout})
                return
            delay = deadline - loop.time()
            if delay < -5 * period:
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

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


class _Offload:
    """Runs codec work in the default executor, or inline when it proves cheap enough.

    A thread hop costs more than encoding 20 ms of G.711 (or of Opus without FEC) and
    makes packet timing jittery; costly work must not block the loop. The work's CPU
    time (thread time: waiting for the GIL does not count) is followed as a moving
    average: under INLINE_BELOW seconds it runs on the loop, above OFFLOAD_ABOVE it goes
    back to the executor. Codec cost changes during a call (an Opus encoder costs three
    times more in its first frames than once it has settled on a mode).
    """

    INLINE_BELOW = 0.0002
    OFFLOAD_ABOVE = 0.0004
    PROBES = 10  # frames timed in the executor before the first decision
    WEIGHT = 0.1  # of the newest frame in the moving average

    def __init__(self) -> None:
        self.inline = False
        self.cost: float | None = None
        self._count = 0

    async def run(self, loop: asyncio.AbstractEventLoop, work: Callable[[_In], _Out], item: _In) -> _Out:
        if self.inline:
            value, spent = _timed(work, item)
        else:
            value, spent = await loop.run_in_executor(None, _timed, work, item)
        self._note(spent)
        return value

    def _note(self, spent: float) -> None:
        self._count += 1
        self.cost = spent if self.cost is None else (1 - self.WEIGHT) * self.cost + self.WEIGHT * spent
        if self.inline and self.cost > self.OFFLOAD_ABOVE:
            self.inline = False
        elif not self.inline and self._count >= self.PROBES and self.cost < self.INLINE_BELOW:
            self.inline = True


def _timed(work: Callable[[_In], _Out], item: _In) -> tuple[_Out, float]:
    started = time.thread_time()
    return work(item), time.thread_time() - started


# devices that failed to open recently: spec -> monotonic time of the failure
_UNAVAILABLE: dict[str, float] = {}
RETRY_AFTER = 10.0


def _open_or_fallback(opener: Callable[..., _Device], spec: str, fallback: str, rate: int, samples: int,
                      on_event: EventCallback) -> _Device:
    """Open a device; a device that cannot be opened must not cost the call."""
    failed = _UNAVAILABLE.get(spec)
    if failed is None or time.monotonic() - failed > RETRY_AFTER:
        try:
            device = opener(spec, sample_rate=rate, channels=1, frame_samples=samples)
        except Exception as exc:  # no sound card, a device that went away, PortAudio errors...
            if failed is None:
                log.warning("audio device %r unavailable (%s); using %r", spec, exc, fallback)
            _UNAVAILABLE[spec] = time.monotonic()
            on_event("device_error", {"device": spec, "error": str(exc), "using": fallback})
        else:
            _UNAVAILABLE.pop(spec, None)
            return device
    return opener(fallback, sample_rate=rate, channels=1, frame_samples=samples)


def random_cname() -> str:
    return f"softphone-{random.SystemRandom().getrandbits(48):012x}"
