"""The video stream of a call: source -> encoder -> RTP payload -> RTP, and back to a sink.

The send loop takes a picture from the source at the frame rate (every (level+1)th one at
quality levels above 0, scaled down), encodes it in an executor (a keyframe at the start
and whenever the peer asks with PLI or FIR) and packetizes it for the MTU. Received RTP is
put back in sequence order and reassembled into frames. A missing packet is asked for
again (generic NACK, RFC 4585) when the peer accepted ``nack``, and the packets after it
wait for it a couple of round trips; a frame still left with a hole, or one the decoder
refuses, makes us ask for a keyframe (PLI) and wait for it. Sent packets are kept a
while to answer the peer's NACKs. Decoding runs on one worker thread, in order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from dataclasses import replace
from typing import Any

from softphone.codecs import CodecError, create_video_decoder, create_video_encoder
from softphone.devices import VideoSink, VideoSource, open_video_sink, open_video_source
from softphone.devices.registry import parse_device
from softphone.frames import VideoFrame
from softphone.frozen import dataclass
from softphone.media.fallback import EventCallback, ignore_event, open_or_fallback
from softphone.media.reports import send_reports
from softphone.media.transport import Address, RtpTransport
from softphone.rtp.nack import NackTracker, ReorderBuffer, SentHistory, hold_time
from softphone.rtp.packet import RtpPacket, is_rtcp
from softphone.rtp.payload import EncodedFrame, depacketizer, packetizer
from softphone.rtp.rtcp import FullIntraRequest, GenericNack, PictureLossIndication, serialize_compound
from softphone.rtp.session import RtpSession

log = logging.getLogger(__name__)

CLOCK = 90000  # RFC 3551: video payload formats use a 90 kHz clock
SENDING = frozenset({"sendrecv", "sendonly"})
RECEIVING = frozenset({"sendrecv", "recvonly"})
PLI_INTERVAL = 0.2  # at most five keyframe requests a second
REORDER_WAIT = 0.03  # how long a hole may be waited for when it cannot be asked for (no NACK)


@dataclass(frozen=True)
class VideoParams:
    codec: str
    send_payload_type: int
    recv_payload_type: int
    remote_rtp: Address | None
    remote_rtcp: Address | None
    direction: str = "sendrecv"
    rtcp_mux: bool = False
    fmtp: str | None = None
    feedback: tuple[str, ...] = ()  # negotiated a=rtcp-fb: "nack pli", "ccm fir"...
    bitrate: int = 1_000_000  # bits per second we aim at


@dataclass(frozen=True)
class VideoOptions:
    source: str = "pattern:"
    sink: str = "null:"
    width: int = 640
    height: int = 480
    fps: float = 30.0
    mtu: int = 1300
    level: int = 0  # 0 = full size every frame; higher: smaller and fewer frames
    cname: str = "softphone"
    self_view: bool = True  # our own picture shown in the sink (the window's inset)
    reorder_wait: float = REORDER_WAIT  # seconds a hole waits when it cannot be asked for ([rtp] video_jitt_comp)
    symmetric: bool = True  # [rtp] symmetric: send to where the peer's RTP comes from

    @property
    def scale(self) -> float:
        """Quality level -> picture scale: 1, 0.75, 0.5, then no less than 0.3."""
        return max(0.3, 1.0 - 0.25 * self.level)

    @property
    def frame_interval(self) -> int:
        """Quality level -> send every n-th frame (at most every third)."""
        return min(self.level + 1, 3)


class VideoStream:
    def __init__(
        self, transport: RtpTransport, params: VideoParams, options: VideoOptions, on_event: EventCallback | None = None
    ) -> None:
        self.transport = transport
        self.params = params
        self.options = options
        self.on_event = on_event or (lambda name, data: None)
        width = _even(options.width * options.scale)
        height = _even(options.height * options.scale)
        self.encoder = create_video_encoder(
            params.codec, width=width, height=height, fps=options.fps, bitrate=params.bitrate, fmtp=params.fmtp
        )
        self.decoder = create_video_decoder(params.codec, fmtp=params.fmtp)
        self.packetizer = packetizer(params.codec)
        self.depacketizer = depacketizer(params.codec)
        self.session = RtpSession(payload_type=params.send_payload_type, clock_rate=CLOCK, cname=options.cname)
        self.source: VideoSource | None = None
        self.sink: VideoSink | None = None
        self.frames_sent = 0
        self.frames_decoded = 0
        self.frames_incomplete = 0
        self.decode_errors = 0
        self.keyframes_sent = 0
        self.pli_sent = 0
        self.pli_received = 0
        self.last_size: tuple[int, int] | None = None
        self._keyframe_wanted = True  # the first frame is a keyframe, so the peer shows it at once
        self._waiting_for_keyframe = True
        self._last_pli = -1.0
        self._decoded_times: list[float] = []
        self.nack = NackTracker()
        self.reorder = ReorderBuffer()
        self.history = SentHistory()
        self.nack_received = 0  # sequence numbers the peer asked us for
        self._timer: asyncio.TimerHandle | None = None
        self._decoder_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="video-decode")
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = 0.0
        self._stopped = False
        self._remote_latched = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        opts = self.options
        size = {"width": opts.width, "height": opts.height, "fps": opts.fps}
        self.source = open_or_fallback("video", open_video_source, opts.source, "null:", self.on_event, **size)
        sink = opts.sink
        if parse_device(sink)[0] == "opencv" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # without a display Qt would abort the whole process
            error = "no display (DISPLAY is not set)"
            self.on_event("device_error", {"device": sink, "error": error, "using": "null:"})
            sink = "null:"
        self.sink = open_or_fallback("video", open_video_sink, sink, "null:", self.on_event, **size)
        self.transport.set_receivers(self._on_rtp, self._on_rtcp)
        self._tasks = [
            loop.create_task(self._send_loop()),
            loop.create_task(send_reports(self.session, self.transport, self._rtcp_address)),
        ]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # nothing more is received from here on (RFC 3261 §15.1.1: once our BYE is sent): what
        # the peer sends on its way out (its RTCP BYE) must not reach the call's figures
        self.transport.set_receivers(None, None)
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []  # a cancelled task's error holds its frame, which holds this stream
        remote = self._rtcp_address()
        if remote is not None:
            self.transport.send_rtcp(self.session.rtcp_bye(self._now(), time.time()), remote)
        self._decoder_pool.shutdown(wait=False, cancel_futures=True)
        for device in (self.source, self.sink):
            if device is not None:
                device.close()
        self.on_event = ignore_event  # the call's callback refers back to the call

    def update(self, params: VideoParams) -> None:
        """A new negotiation (re-INVITE): follow the address and direction; a new codec
        starts over with a keyframe."""
        old, self.params = self.params, params
        if params.remote_rtp != old.remote_rtp:
            self._remote_latched = False
        if params.codec != old.codec:
            self.encoder = create_video_encoder(
                params.codec,
                width=self.encoder.width,
                height=self.encoder.height,
                fps=self.options.fps,
                bitrate=params.bitrate,
                fmtp=params.fmtp,
            )
            self.decoder = create_video_decoder(params.codec, fmtp=params.fmtp)
            self.packetizer = packetizer(params.codec)
            self.depacketizer = depacketizer(params.codec)
            self._waiting_for_keyframe = True
        if params.bitrate != old.bitrate:
            self.encoder.set_bitrate(params.bitrate)
        self._keyframe_wanted = True

    def _now(self) -> float:
        return time.monotonic()

    @property
    def window_closed(self) -> bool:
        return self.sink is not None and self.sink.closed

    # ------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        """The source is the clock: a camera delivers at its own rate, a pattern or a file
        at the configured one; the loop polls it and sends each new picture."""
        loop = asyncio.get_running_loop()
        poll = min(0.005, 0.25 / self.options.fps)
        count = 0
        while True:
            frame = self.source.read() if self.source is not None else None
            if frame is not None:
                count += 1
                if self.sink is not None and self.options.self_view:
                    self.sink.preview(frame)
                sending = self.params.direction in SENDING and self.params.remote_rtp is not None
                if sending and (count - 1) % self.options.frame_interval == 0:
                    await self._send_frame(loop, frame)
            if self.window_closed:
                self.on_event("window_closed", {})
                return
            await asyncio.sleep(poll)

    async def _send_frame(self, loop: asyncio.AbstractEventLoop, frame: VideoFrame) -> None:
        keyframe, self._keyframe_wanted = self._keyframe_wanted, False
        try:
            encoded = await loop.run_in_executor(None, lambda: self.encoder.encode(frame, keyframe=keyframe))
        except CodecError as exc:
            log.debug("video encode error: %s", exc)
            return
        if self._stopped or self.params.remote_rtp is None:
            return
        now = time.monotonic()
        timestamp = (self.session.sender.next_timestamp + int((now - self._started) * CLOCK)) & 0xFFFFFFFF
        for data, is_key in encoded:
            self.frames_sent += 1
            self.keyframes_sent += int(is_key)
            packets = self.packetizer.packetize(EncodedFrame(data, is_key), self.options.mtu)
            for payload, marker in packets:
                packet = self.session.prepare(payload, samples=0, now=now, marker=marker, timestamp=timestamp)
                self.history.add(packet)
                self.transport.send_rtp(packet, self.params.remote_rtp)

    # ------------------------------------------------------------ receiving

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if self.params.rtcp_mux and is_rtcp(data):
            self._on_rtcp(data, addr)
            return
        now = self._now()
        for packet in self.session.receive_rtp_packets(data, now):
            self._on_packet(packet, now, addr)

    def _on_packet(self, packet: RtpPacket, now: float, addr: Address | None = None) -> None:
        if packet.payload_type not in (self.params.recv_payload_type, self.params.send_payload_type):
            return
        if addr is not None:
            self._latch(addr)
        if self.params.direction not in RECEIVING:
            return
        outage = self._nack_enabled and self.nack.received(packet.sequence, now)
        for in_order in self.reorder.push(packet, now):
            self._depacketize(in_order, now)
        if outage:  # too much to ask for again: go on at once, the hole will ask for a keyframe
            for in_order in self.reorder.expire(now, 0.0)[0]:
                self._depacketize(in_order, now)
        self._service(now)

    @property
    def _nack_enabled(self) -> bool:
        return "nack" in self.params.feedback

    def _rtt(self) -> float | None:
        return None if self.session.rtt_ms is None else self.session.rtt_ms / 1000

    def _service(self, now: float) -> None:
        """Give up on a hole waited for long enough, send the NACKs that are due, and set
        the timer for whichever comes next."""
        if self._stopped:
            return
        rtt = self._rtt()
        wait = hold_time(rtt) if self._nack_enabled else self.options.reorder_wait
        released, skipped = self.reorder.expire(now, wait)
        for seq in skipped:
            self.nack.give_up(seq)
        for in_order in released:
            self._depacketize(in_order, now)
        if self._nack_enabled:
            lost = self.nack.due(now, rtt)
            remote, ssrc = self._rtcp_address(), self.session.remote_ssrc
            if lost and remote is not None and ssrc is not None:
                nack = serialize_compound([GenericNack(self.session.ssrc, ssrc, tuple(lost))])
                self.transport.send_rtcp(self.session.rtcp_report(now, time.time()) + nack, remote)
        times = [t for t in (self.reorder.deadline(wait), self.nack.next_due()) if t is not None]
        when = max(min(times), now + 0.001) if times else None
        if self._timer is not None and (when is None or abs(self._timer.when() - when) > 0.001):
            self._timer.cancel()
            self._timer = None
        if when is not None and self._timer is None and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._service(self._now())

    def _depacketize(self, packet: RtpPacket, now: float) -> None:
        for frame in self.depacketizer.push(packet):
            if not frame.complete:
                # a hole: ask for a keyframe, and meanwhile let the decoder conceal what it
                # can, so that the picture goes on (with flaws) instead of freezing
                self.frames_incomplete += 1
                self._request_keyframe(now)
            elif self._waiting_for_keyframe and frame.keyframe:
                self._waiting_for_keyframe = False
            if self._waiting_for_keyframe:
                self._request_keyframe(now)
                continue
            future = self._decoder_pool.submit(self.decoder.decode, frame.data)
            future.add_done_callback(self._decoded_callback)

    def _decoded_callback(self, future: concurrent.futures.Future[list[VideoFrame]]) -> None:
        loop = self._loop
        if loop is not None and not self._stopped:
            loop.call_soon_threadsafe(self._decoded, future)

    def _decoded(self, future: concurrent.futures.Future[list[VideoFrame]]) -> None:
        if self._stopped or future.cancelled():
            return
        try:
            frames = future.result()
        except CodecError as exc:
            self.decode_errors += 1
            log.debug("video decode error: %s", exc)
            self._waiting_for_keyframe = True
            self._request_keyframe(self._now())
            return
        now = self._now()
        for frame in frames:
            if self.frames_decoded == 0:
                self.on_event("first_video_frame", {"width": frame.width, "height": frame.height})
            self.frames_decoded += 1
            self.last_size = (frame.width, frame.height)
            self._decoded_times.append(now)
            if self.sink is not None:
                self.sink.write(frame)

    def _request_keyframe(self, now: float) -> None:
        """RFC 4585 §6.3.1: a PLI tells the sender pictures were lost; it answers with a keyframe."""
        remote = self._rtcp_address()
        ssrc = self.session.remote_ssrc
        if remote is None or ssrc is None or now - self._last_pli < PLI_INTERVAL:
            return
        self._last_pli = now
        self.pli_sent += 1
        report = self.session.rtcp_report(now, time.time())
        pli = serialize_compound([PictureLossIndication(self.session.ssrc, ssrc)])
        self.transport.send_rtcp(report + pli, remote)

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        for packet in self.session.receive_rtcp(data, self._now()):
            if isinstance(packet, PictureLossIndication) and packet.media_ssrc == self.session.ssrc:
                self.pli_received += 1
                self._keyframe_wanted = True
            elif isinstance(packet, FullIntraRequest) and any(s == self.session.ssrc for s, _ in packet.entries):
                self.pli_received += 1
                self._keyframe_wanted = True
            elif isinstance(packet, GenericNack) and packet.media_ssrc == self.session.ssrc:
                self.nack_received += len(packet.lost)
                remote = self.params.remote_rtp
                if remote is not None and self.params.direction in SENDING:
                    for data in self.history.resend(packet.lost, self._now()):
                        self.transport.send_rtp(data, remote)

    # ------------------------------------------------------------ RTCP

    def _latch(self, addr: Address) -> None:
        """Symmetric RTP (RFC 4961): send to where the peer's first valid packet came from
        (the address a NAT in front of the peer gave it), once per negotiated address."""
        if not self.options.symmetric or self._remote_latched or addr == self.params.remote_rtp:
            self._remote_latched = True
            return
        log.info("video RTP from %s:%s instead of %s: sending there", addr[0], addr[1], self.params.remote_rtp)
        remote_rtcp = addr if self.params.rtcp_mux else (addr[0], addr[1] + 1)
        self.params = replace(self.params, remote_rtp=addr, remote_rtcp=remote_rtcp)
        self._remote_latched = True

    def _rtcp_address(self) -> Address | None:
        return self.params.remote_rtp if self.params.rtcp_mux else self.params.remote_rtcp

    # ------------------------------------------------------------ reporting

    def summary(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.session.summary())
        times = self._decoded_times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        stats.update(
            {
                "frames_sent": self.frames_sent,
                "keyframes_sent": self.keyframes_sent,
                "frames_decoded": self.frames_decoded,
                "frames_incomplete": self.frames_incomplete,
                "decode_errors": self.decode_errors,
                "pli_sent": self.pli_sent,
                "pli_received": self.pli_received,
                "nack_sent": self.nack.requested,
                "recovered": self.nack.recovered,
                "nack_received": self.nack_received,
                "retransmitted": self.history.retransmitted,
                "fps": round(fps, 1),
                "width": self.last_size[0] if self.last_size else None,
                "height": self.last_size[1] if self.last_size else None,
                "send_width": self.encoder.width,
                "send_height": self.encoder.height,
                "source": self.options.source,
                "sink": self.options.sink,
            }
        )
        return stats


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)
