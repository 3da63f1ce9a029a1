"""A call as the phone's user sees it: its SIP state machine, timeline and media streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from softphone.agent import CallRecord
from softphone.call import Call
from softphone.call.states import CallState, Progress
from softphone.codecs import registry
from softphone.errors import StateError
from softphone.events import CallSummary
from softphone.media.audio import AudioOptions, AudioParams, AudioStream
from softphone.media.quality import QualityListener, QualityMonitor
from softphone.media.transport import RtpTransport
from softphone.media.video import VideoOptions, VideoParams, VideoStream
from softphone.net.ice import IceTransport, MediaPorts
from softphone.net.srtp import SrtpTransport
from softphone.rtp.quality import QualitySample
from softphone.sdp.negotiate import NegotiatedStream
from softphone.sip.endpoint import Peer


class CallControl(Protocol):
    """The phone, as a call session sees it: it carries out what the user asks of a call."""

    def hangup(self, call_id: str) -> None: ...

    def hold(self, call_id: str) -> None: ...

    def resume(self, call_id: str) -> None: ...

    def answer(self, call_id: str) -> None: ...

    def reject(self, call_id: str, status: int = 486) -> None: ...

    def transfer(self, call_id: str, target: str) -> None: ...


log = logging.getLogger(__name__)


@dataclass
class MediaChoice:
    """Codecs, streams and devices a call offers or accepts."""

    audio_codec: str | None = None
    video_codec: str | None = None
    video: bool = True
    audio_source: str | None = None  # None: the config's [sound] capture_dev_id
    audio_sink: str | None = None  # None: the config's [sound] playback_dev_id
    video_source: str | None = None  # None: the config's [video] device
    video_sink: str | None = None  # None: the config's [video] display_dev
    level: int = 0  # video quality level 0..3


@dataclass
class CallSession:
    """A call with its RTP ports and media streams; its SIP side is the user agent's record."""

    phone: CallControl
    record: CallRecord
    ports: list[MediaPorts] = field(default_factory=list)  # RTP sockets, or ICE (firewall_policy=ice)
    audio_options: AudioOptions = field(default_factory=AudioOptions)
    video_options: VideoOptions = field(default_factory=VideoOptions)
    video_bitrate: int = 1_000_000
    done: asyncio.Future[CallSummary] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    states: list[Progress] = field(default_factory=list)
    audio: AudioStream | None = None
    video: VideoStream | None = None
    pending_dtmf: str = ""
    media_choice: MediaChoice | None = None  # what the call was placed or answered with (a transfer reuses it)
    muted: bool = False  # send silence instead of the source
    ringing: asyncio.Task[None] | None = None  # ringback or ring being played
    monitor: QualityMonitor = field(default_factory=QualityMonitor)  # live quality, once a second
    srtp: dict[str, SrtpTransport] = field(default_factory=dict)  # per stream kind, when SRTP runs
    ice: dict[str, IceTransport] = field(default_factory=dict)  # per stream kind, when it runs over ICE
    _waiters: list[tuple[Progress, asyncio.Future[None]]] = field(default_factory=list)
    _media_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _media_stopped: bool = False

    @property
    def call(self) -> Call:
        return self.record.call

    @property
    def call_id(self) -> str:
        return self.record.call.call_id

    @property
    def state(self) -> CallState:
        return self.record.call.state

    @property
    def transport(self) -> str:
        return self.record.transport

    @property
    def timeline(self) -> dict[str, float]:
        return self.record.timeline

    def mark(self, name: str) -> None:
        self.record.mark(name, time.monotonic())  # the phone's clock (net/sip.py), not uvloop's coarse loop time

    def on_state(self, state: Progress) -> None:
        self.states.append(state)
        for wanted, future in self._waiters:
            if wanted == state and not future.done():
                future.set_result(None)

    def finish(self, summary: CallSummary) -> None:
        if not self.done.done():
            self.done.set_result(summary)
        for _, future in self._waiters:
            future.cancel()

    async def wait(self, timeout: float | None = None) -> CallSummary:
        return await asyncio.wait_for(asyncio.shield(self.done), timeout)

    async def wait_state(self, state: str, timeout: float = 30.0) -> None:
        """Until the call reports ``state`` (a Progress name); StateError if it ends first."""
        wanted = Progress(state)
        if wanted in self.states:
            return
        if self.done.done():
            raise StateError("Call", self.call.state, f"wait for {state}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((wanted, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.CancelledError:
            if self.done.done() and future.cancelled():
                raise StateError("Call", self.call.state, f"wait for {state}") from None
            raise
        finally:
            self._waiters.remove((wanted, future))

    def hangup(self) -> None:
        self.phone.hangup(self.call_id)

    def hold(self) -> None:
        self.phone.hold(self.call_id)

    def resume(self) -> None:
        self.phone.resume(self.call_id)

    def answer(self) -> None:
        self.phone.answer(self.call_id)

    def reject(self, status: int = 486) -> None:
        self.phone.reject(self.call_id, status)

    def transfer(self, target: str) -> None:
        """Blind transfer (REFER): ask the peer to call ``target``; ``transfer`` events report how
        it goes, and the call ends once the peer reports that the target answered."""
        self.phone.transfer(self.call_id, target)

    def set_muted(self, muted: bool) -> None:
        """Send silence instead of the audio source (the stream and its clock keep running)."""
        self.muted = muted
        if self.audio is not None:
            self.audio.muted = muted

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits (RFC 4733) now, or as soon as the audio stream runs."""
        if self.audio is not None:
            self.audio.send_dtmf(digits)
        else:
            self.pending_dtmf += digits

    # ------------------------------------------------------------ media

    async def apply_media(
        self, streams: tuple[NegotiatedStream, ...], on_event: Callable[[str, dict[str, Any]], None]
    ) -> None:
        """Start or follow the negotiated audio stream."""
        async with self._media_lock:
            if self.done.done() or self._media_stopped:
                return
            audio = next((s for s in streams if s.kind == "audio"), None)
            params = audio_params(audio, self.audio_options) if audio is not None else None
            if params is None:
                if self.audio is not None:
                    await self.audio.stop()
            elif self.audio is None:
                pair = self.ports[0]
                await pair.start()
                self.audio = AudioStream(self._secured(pair, audio), params, self.audio_options, on_event)
                self.audio.muted = self.muted
                await self.audio.start()
                if self.pending_dtmf:
                    self.audio.send_dtmf(self.pending_dtmf)
                    self.pending_dtmf = ""
            else:
                self._rekey(audio)
                self.audio.update(params)
            await self._apply_video(streams, on_event)
            if self.audio is not None or self.video is not None:
                self.monitor.start(lambda: (self.audio, self.video), self._ice_pair_type)

    async def _apply_video(
        self, streams: tuple[NegotiatedStream, ...], on_event: Callable[[str, dict[str, Any]], None]
    ) -> None:
        stream = next((s for s in streams if s.kind == "video"), None)
        params = video_params(stream, self.video_bitrate) if stream is not None else None
        if params is None or len(self.ports) < 2:
            if self.video is not None:
                await self.video.stop()
                self.video = None
            return
        if self.video is None:
            pair = self.ports[1]
            await pair.start()
            self.video = VideoStream(self._secured(pair, stream), params, self.video_options, on_event)
            await self.video.start()
        else:
            self._rekey(stream)
            self.video.update(params)

    def _secured(self, pair: RtpTransport, stream: NegotiatedStream | None) -> RtpTransport:
        """The stream's transport: SRTP over ``pair`` when the offer/answer gave keys."""
        if stream is None or stream.srtp is None:
            return pair
        if not self.srtp and self.transport != "tls":
            # RFC 4568 §8.3: the keys travel in the SDP, so "the signaling protocol MUST provide
            # confidentiality and integrity"; over UDP or TCP anyone on the path can read them.
            log.warning("call %s: SRTP keys (SDES) went over %s in the clear; use TLS to keep them secret",
                        self.call_id, self.transport.upper())
        secured = SrtpTransport(pair, stream.srtp)
        self.srtp[stream.kind] = secured
        return secured

    def _rekey(self, stream: NegotiatedStream | None) -> None:
        secured = self.srtp.get(stream.kind) if stream is not None else None
        if secured is not None and stream is not None and stream.srtp is not None:
            secured.update(stream.srtp)

    async def stop_media(self) -> None:
        """Stop sending and receiving for good (the call is ending); counters stay readable."""
        for ports in self.ports:
            if isinstance(ports, IceTransport):
                ports.cancel_checks()  # a stream still waiting for its ICE pair holds the media lock
        async with self._media_lock:
            self._media_stopped = True
            for stream in (self.audio, self.video):
                if stream is not None:
                    await stream.stop()
            await self.monitor.stop()

    def quality(self) -> QualitySample | None:
        """The call's figures over the last second (None before the first second of media)."""
        return self.monitor.latest()

    @property
    def quality_history(self) -> list[QualitySample]:
        """Every second's figures since the media started, the last hour (``--report`` draws them)."""
        return list(self.monitor.history)

    def on_quality(self, listener: QualityListener) -> None:
        """Call ``listener`` with each second's figures while the media runs."""
        self.monitor.listeners.append(listener)

    def _ice_pair_type(self) -> str | None:
        """The type of the pair ICE selected (audio's, else video's); None without ICE."""
        for kind in ("audio", "video"):
            transport = self.ice.get(kind)
            if transport is not None and transport.selected is not None:
                return transport.selected.type
        return None

    def ice_summary(self, kind: str) -> dict[str, Any]:
        """``ice``: the selected candidate pair of a stream over ICE (type host, srflx or relay)."""
        transport = self.ice.get(kind)
        return {"ice": transport.summary()} if transport is not None else {}

    def summary(self, reason: str | None = None) -> CallSummary:
        streams: dict[str, Any] = {"audio": None, "video": None}
        for stream in self.call.streams:
            info = stream_summary(stream)
            info["media"] = "none"  # unless a stream ran
            if stream.kind == "audio" and self.audio is not None:
                info.update(self.audio.summary(), media="rtp")
            if stream.kind == "video" and self.video is not None:
                info.update(self.video.summary(), media="rtp")
            if info["media"] == "rtp":
                info.update(self.monitor.overall(stream.kind))
                info.update(self.ice_summary(stream.kind))
                if stream.kind in self.srtp:
                    info.update(self.srtp[stream.kind].stats())
            streams[stream.kind] = info
        call = self.call
        return CallSummary(
            call.result, call.final_code, call.cause, self.call_id, call.direction, call.remote_party,
            self.transport, {name: round(at, 6) for name, at in self.timeline.items()}, streams["audio"],
            streams["video"], reason,
            advertised=call.setup.local.advertised, target=_target_of(self.record.first_hop),
        )


def _target_of(hop: Peer | None) -> str | None:
    if hop is None:
        return None
    host = f"[{hop.host}]" if ":" in hop.host else hop.host
    return f"{hop.transport}:{host}:{hop.port}"


def audio_params(stream: NegotiatedStream, options: AudioOptions, ptime: int = 20) -> AudioParams | None:
    """What the audio loops need from a negotiated stream; None when there is nothing to run."""
    if stream.declined or stream.codec is None or stream.send_payload_type is None:
        return None
    info = registry.find(stream.codec.name, stream.codec.clock_rate, stream.codec.channels)
    if info is None or info.kind != "audio" or info.name == "telephone-event":
        return None
    remote_rtp = None
    if stream.remote_address and stream.remote_address not in ("0.0.0.0", "::") and stream.remote_port:
        remote_rtp = (stream.remote_address, stream.remote_port)
    events = {pt for pt in (stream.telephone_event_pt, stream.recv_telephone_event_pt) if pt is not None}
    return AudioParams(
        codec=info.name,
        send_payload_type=stream.send_payload_type,
        recv_payload_type=stream.send_payload_type if stream.recv_payload_type is None else stream.recv_payload_type,
        remote_rtp=remote_rtp,
        remote_rtcp=stream.remote_rtcp if remote_rtp is not None else None,
        direction=stream.direction if remote_rtp is not None else "inactive",
        ptime=ptime,
        remote_ptime=stream.ptime or ptime,
        send_event_payload_type=stream.telephone_event_pt,
        recv_event_payload_types=frozenset(events),
        rtcp_mux=stream.rtcp_mux,
        fmtp=stream.remote_fmtp,
    )


def video_params(stream: NegotiatedStream, bitrate: int) -> VideoParams | None:
    """What the video loops need from a negotiated stream; None when there is nothing to run."""
    if stream.declined or stream.codec is None or stream.send_payload_type is None:
        return None
    info = registry.find(stream.codec.name, stream.codec.clock_rate, stream.codec.channels)
    if info is None or info.kind != "video":
        return None
    remote_rtp = None
    if stream.remote_address and stream.remote_address not in ("0.0.0.0", "::") and stream.remote_port:
        remote_rtp = (stream.remote_address, stream.remote_port)
    if info.name == "JPEG":
        bitrate *= 4  # every JPEG picture is a keyframe: it takes several times an inter-frame codec's rate
    if stream.remote_bandwidth_kbps:
        # the peer's b=AS (or TIAS) is what it is prepared to receive
        bitrate = min(bitrate, stream.remote_bandwidth_kbps * 1000)
    return VideoParams(
        codec=info.name,
        send_payload_type=stream.send_payload_type,
        recv_payload_type=stream.send_payload_type if stream.recv_payload_type is None else stream.recv_payload_type,
        remote_rtp=remote_rtp,
        remote_rtcp=stream.remote_rtcp if remote_rtp is not None else None,
        direction=stream.direction if remote_rtp is not None else "inactive",
        rtcp_mux=stream.rtcp_mux,
        fmtp=stream.remote_fmtp,
        feedback=stream.rtcp_fb,
        bitrate=bitrate,
    )


def stream_summary(stream: NegotiatedStream) -> dict[str, Any]:
    remote = None
    if stream.remote_address is not None:
        host = stream.remote_address
        remote = f"[{host}]:{stream.remote_port}" if ":" in host else f"{host}:{stream.remote_port}"
    return {
        "codec": stream.codec.name if stream.codec else None,
        "payload_type": stream.send_payload_type,
        "local_port": stream.local_port,
        "remote": remote,
        "direction": stream.direction,
        "declined": stream.declined,
        "media": "none" if stream.declined or stream.codec is None else "rtp",
    }
