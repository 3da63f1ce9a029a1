"""What a call offers and runs: its codecs and its media options, from the config and the
caller's choices (command-line options override the file)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from softphone.codecs import registry
from softphone.config import Config
from softphone.errors import TransportError
from softphone.media.audio import AudioOptions, random_cname
from softphone.media.video import VideoOptions
from softphone.net import ice
from softphone.net.rtp import RtpPortPair, open_port_pair
from softphone.net.srtp import sdes_settings
from softphone.sdp.negotiate import CodecSpec, SessionConfig, StreamConfig
from softphone.session import MediaChoice

log = logging.getLogger(__name__)

OpenPair = Callable[[str, tuple[int, int]], RtpPortPair]  # (bind, port range) -> a bound pair


def codec_specs(kind: str, config: Config, only: str | None = None) -> tuple[CodecSpec, ...]:
    """The codecs to offer: ``only`` alone, else the config's enabled entries, else all.

    An entry's ``recv_fmtp`` replaces the codec's default fmtp parameters in what we offer.
    Worked out once per config (every call of a phone offers the same).
    """
    cached = _SPECS.get((kind, only))
    if cached is not None and cached[0] is config:
        return cached[1]
    specs = _codec_specs(kind, config, only)
    _SPECS[(kind, only)] = (config, specs)
    return specs


_SPECS: dict[tuple[str, str | None], tuple[Config, tuple[CodecSpec, ...]]] = {}


def _codec_specs(kind: str, config: Config, only: str | None) -> tuple[CodecSpec, ...]:
    fmtp: dict[int, str] = {}  # position in infos -> the entry's recv_fmtp
    if only is not None:
        infos = [registry.lookup(only, kind)]
        if kind == "audio" and infos[0].name != "telephone-event":
            infos.append(registry.lookup("telephone-event", "audio"))
    else:
        entries = config.audio_codecs if kind == "audio" else config.video_codecs
        if entries:
            infos = []
            for entry in entries:
                info = registry.find(entry.mime, entry.rate, entry.channels) or registry.find(entry.mime, entry.rate, 2)
                if info is None:
                    log.warning("%s codec %s/%s is not available; skipped", kind, entry.mime, entry.rate)
                elif entry.enabled:
                    if entry.recv_fmtp:
                        fmtp[len(infos)] = entry.recv_fmtp
                    infos.append(info)
            # like linphone, telephone-event is offered unless a section lists it disabled
            listed = {e.mime.lower() for e in entries}
            if kind == "audio" and "telephone-event" not in listed:
                infos.append(registry.lookup("telephone-event", "audio"))
        else:
            infos = [registry.lookup(name, kind) for name in registry.names(kind)]
    return tuple(
        CodecSpec(i.encoding, i.rtp_clock_rate, i.channels, i.static_payload_type, fmtp.get(n, i.default_fmtp),
                  i.rtcp_fb)
        for n, i in enumerate(infos)
    )


def audio_options_for(config: Config, choice: MediaChoice) -> AudioOptions:
    """Devices and jitter-buffer bounds for a call's audio: the call's choice, else the config."""
    sound, rtp = config.sound, config.rtp
    return AudioOptions(
        source=choice.audio_source or sound.capture_dev_id,
        sink=choice.audio_sink or sound.playback_dev_id,
        jitter_min_ms=min(20, rtp.audio_jitt_comp),
        jitter_max_ms=max(rtp.audio_jitt_comp * 4, 200),
        nortp_timeout=float(rtp.nortp_timeout),
        symmetric=rtp.symmetric,
        cname=random_cname(),
        mic_gain_db=sound.mic_gain_db,
        playback_gain_db=sound.playback_gain_db,
    )


def video_options_for(config: Config, choice: MediaChoice) -> tuple[VideoOptions, int]:
    """Devices, size, rate and target bitrate for a call's video."""
    video, net = config.video, config.net
    width, height = video.size
    options = VideoOptions(
        source=choice.video_source or (video.device if video.capture else "null:"),
        sink=choice.video_sink or (video.display_dev if video.display else "null:"),
        width=width,
        height=height,
        fps=video.framerate,
        mtu=net.mtu,
        level=choice.level,
        cname=random_cname(),
        self_view=video.self_view,
        reorder_wait=config.rtp.video_jitt_comp / 1000,
        symmetric=config.rtp.symmetric,
    )
    # [net] upload_bw in kbit/s, 0 = no limit: then a bitrate that suits the picture size
    default = int(width * height * video.framerate * 0.1)
    bitrate = min(default, net.upload_bw * 1000) if net.upload_bw else default
    return options, max(64_000, bitrate)


def prepare_media(
    config: Config, bind: str, host: str, choice: MediaChoice, username: str, open_pair: OpenPair = open_port_pair
) -> ice.Prepared:
    """A call's RTP ports, opened on ``bind`` by ``open_pair``, and what it offers or answers
    with them: the streams of ``host``'s session (audio, and video when the call and the config
    want it)."""
    rtp, srtp = config.rtp, (config.sip.media_encryption, config.sip.media_encryption_mandatory)
    ports: list[ice.MediaPorts] = [open_pair(bind, rtp.audio_rtp_port)]
    streams = [
        StreamConfig(
            "audio",
            ports[0].port,
            codec_specs("audio", config, choice.audio_codec),
            ptime=config.sound.ptime,
            rtcp_mux=rtp.rtcp_mux,
            **sdes_settings(*srtp),
        )
    ]
    if choice.video and config.video.enabled:
        try:
            ports.append(open_pair(bind, rtp.video_rtp_port))
        except TransportError:
            for pair in ports:
                pair.close()
            raise
        # [net] download_bw: announced as b=AS, the most the peer should send us (RFC 4566 §5.8)
        download = config.net.download_bw or None
        video_codecs = codec_specs("video", config, choice.video_codec)
        # [video] capture / display (unless the call names its own devices): what we offer to
        # send and to receive, so that the peer does not wait for pictures that never come
        video = config.video
        send = choice.video_source is not None or video.capture
        receive = choice.video_sink is not None or video.display
        direction = {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly",
                     (False, False): "inactive"}[(bool(send), bool(receive))]
        streams.append(StreamConfig("video", ports[1].port, video_codecs, direction=direction,
                                    bandwidth_kbps=download, rtcp_mux=rtp.rtcp_mux, **sdes_settings(*srtp)))
    return ports, SessionConfig(host, tuple(streams), username=username)
