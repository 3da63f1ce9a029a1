"""Keys of config/softphone.ini set to non-default values, each seen to take effect in a
real phone on loopback: what goes on the wire, what is listened on, what is played."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softphone.agent import IncomingPolicy
from softphone.config import Config, loads
from softphone.frames import VideoFrame
from softphone.media.video import VideoOptions, VideoParams, VideoStream
from softphone.net.rtp import RtpPortPair
from softphone.offer import video_options_for
from softphone.phone import Phone
from softphone.rtp.packet import RtpPacket
from softphone.sdp.model import SessionDescription
from softphone.session import CallSession, MediaChoice
from tests.conftest import free_rtp_port, read_wav, write_wav

HOST = "127.0.0.1"
LOOPBACK = "[sip]\nsip_port=0\nsip_tcp_port=-1\n[rtp]\naudio_rtp_port=0\nvideo_rtp_port=0\n"


def config_of(text: str) -> Config:
    config = loads(text, "test.rc")
    assert config.warnings == (), config.warnings
    return config


def tone_wav(path: Path, hz: float, seconds: float = 3.0, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    return write_wav(path, 0.5 * np.sin(2 * math.pi * hz * t), rate)


def dominant_hz(samples: Any, rate: int) -> float:
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    return float(np.argmax(spectrum[1:]) + 1) * rate / x.size


async def _ringing_call(caller_config: Config, callee_config: Config, ring_s: float,
                        answer_after: float = 30.0) -> tuple[CallSession, CallSession]:
    """caller calls callee, which rings for ``answer_after`` seconds; after ``ring_s`` the caller
    hangs up if the call is still ringing. Returns (caller's session, callee's session)."""
    callee = Phone(callee_config, bind=HOST)
    callee.policy = IncomingPolicy(auto_answer=True, delay=answer_after)
    caller = Phone(caller_config, bind=HOST)
    await callee.start()
    await caller.start()
    try:
        session = await caller.call(f"sip:bob@{HOST}:{callee.ports()['udp']}", media=MediaChoice(video=True))
        await session.wait_state("ringing", 10)
        await asyncio.sleep(ring_s)
        (incoming,) = callee.sessions.values()
        session.hangup()
        await session.wait(10)
        return session, incoming
    finally:
        await caller.close()
        await callee.close()


@pytest.mark.timeout(60)
def test_invite_follows_sip_sdp_and_codec_keys(tmp_path: Path) -> None:
    rtp = free_rtp_port(HOST, count=4)
    caller = config_of(
        "[sip]\nsip_port=0\nsip_tcp_port=-1\n"
        'contact="Alice" <sip:alice@public.example.test:5099>\nguess_hostname=0\nuser_agent=KeyTest/1.0\n'
        f"[rtp]\naudio_rtp_port={rtp}\nvideo_rtp_port={rtp + 2}\nrtcp_mux=1\n"
        "[sound]\nptime=40\ncapture_dev_id=silence:\nplayback_dev_id=null:\n"
        "[video]\ndevice=pattern:\ndisplay_dev=null:\n"
        "[net]\ndownload_bw=300\n"
        "[audio_codec_0]\nmime=PCMA\nrate=8000\n"
        "[audio_codec_1]\nmime=PCMU\nrate=8000\nenabled=0\n"
        "[video_codec_0]\nmime=H264\nrecv_fmtp=profile-level-id=42e01f;packetization-mode=1\n"
    )
    callee = config_of(LOOPBACK + "[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\n[video]\nenabled=0\n")
    _, incoming = asyncio.run(_ringing_call(caller, callee, 0.2))
    invite = incoming.call.invite
    assert invite is not None
    # guess_hostname=0: the Contact is [sip] contact's host and port as written
    contact = invite.contacts[0].uri.as_sip()
    assert (contact.host, contact.port) == ("public.example.test", 5099)
    assert invite.headers.get("User-Agent") == "KeyTest/1.0"
    sdp = SessionDescription.parse(invite.body.decode())
    audio, video = sdp.media
    assert audio.port == rtp and video.port == rtp + 2  # audio_rtp_port, video_rtp_port
    text = invite.body.decode()
    assert "a=ptime:40" in text  # ptime
    assert "a=rtcp-mux" in text  # rtcp_mux
    assert video.bandwidth_kbps() == 300  # download_bw
    assert "a=fmtp:" in text and "profile-level-id=42e01f;packetization-mode=1" in text  # recv_fmtp
    # [audio_codec_N] mime, rate and enabled: PCMA offered, PCMU (enabled=0) not
    encodings = text.split("m=video")[0]
    assert "PCMA/8000" in encodings and "PCMU/8000" not in encodings
    assert "H264/90000" in text and "VP8" not in text


@pytest.mark.timeout(60)
def test_guess_hostname_default_puts_the_call_address_in_the_contact() -> None:
    caller = config_of(LOOPBACK + '[sip]\ncontact=sip:alice@public.example.test:5099\n[video]\nenabled=0\n'
                       "[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\n")
    callee = config_of(LOOPBACK + "[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\n")
    _, incoming = asyncio.run(_ringing_call(caller, callee, 0.1))
    assert incoming.call.invite is not None
    assert incoming.call.invite.contacts[0].uri.as_sip().host == HOST


@pytest.mark.timeout(60)
def test_local_ring_and_remote_ring_play_on_the_ringer_device(tmp_path: Path) -> None:
    ring_in, ringback = tmp_path / "ring_in.wav", tmp_path / "ringback.wav"
    caller = config_of(
        LOOPBACK + f"[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\nringer_dev_id=file: {ringback}\n"
        f"remote_ring={tone_wav(tmp_path / 'remote.wav', 1100)}\n[video]\nenabled=0\n"
    )
    callee = config_of(
        LOOPBACK + f"[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\nringer_dev_id=file: {ring_in}\n"
        f"local_ring={tone_wav(tmp_path / 'local.wav', 700)}\n[video]\nenabled=0\n"
    )
    asyncio.run(_ringing_call(caller, callee, 1.5))
    for path, hz in ((ring_in, 700.0), (ringback, 1100.0)):
        samples, rate = read_wav(path)
        assert samples.size >= rate, f"{path.name}: {samples.size} samples"
        assert abs(dominant_hz(samples, rate) - hz) < 10, path.name


@pytest.mark.timeout(60)
def test_without_ring_files_the_built_in_tones_ring(tmp_path: Path) -> None:
    ringback = tmp_path / "ringback.wav"
    caller = config_of(LOOPBACK + f"[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\n"
                       f"ringer_dev_id=file: {ringback}\n[video]\nenabled=0\n")
    callee = config_of(LOOPBACK + "[sound]\ncapture_dev_id=null:\nplayback_dev_id=null:\n[video]\nenabled=0\n")
    asyncio.run(_ringing_call(caller, callee, 1.0))
    samples, rate = read_wav(ringback)
    assert abs(dominant_hz(samples, rate) - 440) < 50 or abs(dominant_hz(samples, rate) - 480) < 50


@pytest.mark.timeout(60)
def test_mic_and_playback_gain_change_a_tones_level(softphone, tmp_path: Path) -> None:
    received = tmp_path / "received.wav"
    answerer_rc = tmp_path / "answerer.rc"
    answerer_rc.write_text("[sound]\nplayback_gain_db=6\n")
    caller_rc = tmp_path / "caller.rc"
    caller_rc.write_text("[sound]\nmic_gain_db=-20\n")
    answerer = softphone("-c", answerer_rc, "--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "answer", "--auto",
                         "--once", "--audio-codec", "PCMU", "--audio-source", "null:", "--audio-sink",
                         f"file: {received}")
    caller = softphone("-c", caller_rc, "--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@{HOST}:{answerer.port()}", "--duration", "2", "--no-video", "--audio-codec", "PCMU",
                       "--audio-source", "tone: 440,0.5", "--audio-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    assert answerer.wait(15) == 0, answerer.describe()
    samples, rate = read_wav(received)
    body = np.asarray(samples[int(0.4 * rate): samples.size - int(0.3 * rate)], dtype=np.float64)
    peak = math.sqrt(2) * float(np.sqrt(np.mean(body ** 2))) / 32768  # of a sine, from its RMS
    expected = 0.5 * 10 ** ((-20 + 6) / 20)  # the tone's 0.5 of full scale, -20 dB then +6 dB
    assert abs(20 * math.log10(peak / expected)) < 1.0, (peak, expected)


def test_sip_tcp_port_zero_disables_tcp_and_minus_one_picks_a_free_port() -> None:
    async def ports(text: str) -> dict[str, int]:
        phone = Phone(config_of(text), bind=HOST, media=False)
        await phone.start()
        try:
            return phone.ports()
        finally:
            await phone.close()

    assert set(asyncio.run(ports("[sip]\nsip_port=0\nsip_tcp_port=0\n"))) == {"udp"}
    found = asyncio.run(ports("[sip]\nsip_port=-1\nsip_tcp_port=-1\n"))
    assert set(found) == {"udp", "tcp"} and found["udp"] > 0 and found["tcp"] > 0


def test_use_ipv6_listens_on_ipv6_when_bind_address_is_empty() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")

    async def listen() -> tuple[str, dict[str, int]]:
        phone = Phone(config_of("[sip]\nuse_ipv6=1\nbind_address=\nsip_port=0\nsip_tcp_port=0\n"), media=False)
        await phone.start()
        try:
            return phone.bind, phone.ports()
        finally:
            await phone.close()

    bind, ports = asyncio.run(listen())
    assert bind == "::"
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        probe.sendto(b"\r\n\r\n", ("::1", ports["udp"]))  # reaches the phone over IPv6


def test_bind_address_is_where_the_phone_listens() -> None:
    async def listen() -> str:
        phone = Phone(config_of("[sip]\nbind_address=127.0.0.1\nsip_port=0\nsip_tcp_port=0\n"), media=False)
        await phone.start()
        try:
            return phone.network.bind_host
        finally:
            await phone.close()

    assert asyncio.run(listen()) == "127.0.0.1"


def _run_cli(rc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "softphone", "-c", str(rc), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_log_level_sets_the_logging_level_without_v(tmp_path: Path) -> None:
    rc = tmp_path / "debug.rc"
    rc.write_text("[misc]\nlog_level=debug\n")
    assert " DEBUG " in _run_cli(rc, "devices").stderr  # the phone names its event loop at DEBUG
    rc.write_text("[misc]\nlog_level=warning\n")
    assert " DEBUG " not in _run_cli(rc, "devices").stderr


def test_misc_json_prints_json_lines(tmp_path: Path) -> None:
    rc = tmp_path / "json.rc"
    rc.write_text("[misc]\njson=1\n")
    result = _run_cli(rc, "devices")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)


def test_media_encryption_zrtp_mandatory_refuses_to_start(tmp_path: Path) -> None:
    rc = tmp_path / "zrtp.rc"
    rc.write_text("[sip]\nmedia_encryption=zrtp\nmedia_encryption_mandatory=1\n")
    result = _run_cli(rc, "devices")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"softphone: {rc} [sip] media_encryption: ") and "in the clear" in line


def test_media_encryption_dtls_without_mandatory_warns_that_calls_go_in_the_clear(tmp_path: Path) -> None:
    rc = tmp_path / "dtls.rc"
    rc.write_text("[sip]\nmedia_encryption=dtls\n")
    result = _run_cli(rc, "devices")
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "media_encryption" in line]
    assert len(warnings) == 1 and "calls go in the clear" in warnings[0]


@pytest.mark.parametrize("mandatory", ["0", "1"])
def test_media_encryption_srtp_starts_without_warning(tmp_path: Path, mandatory: str) -> None:
    rc = tmp_path / "srtp.rc"
    rc.write_text(f"[sip]\nmedia_encryption=srtp\nmedia_encryption_mandatory={mandatory}\n")
    result = _run_cli(rc, "devices")
    assert result.returncode == 0, result.stderr
    assert "media_encryption" not in result.stderr


# ---------------------------------------------------------------- video keys on a running stream


class _RecordingSink:
    """A video sink that keeps what it is given (the window's two inputs)."""

    def __init__(self) -> None:
        self.previews = 0
        self.frames = 0

    def write(self, frame: VideoFrame) -> None:
        self.frames += 1

    def preview(self, frame: VideoFrame) -> None:
        self.previews += 1

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


async def _stream(options: VideoOptions) -> tuple[VideoStream, RtpPortPair]:
    rtp, rtcp = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    rtp.bind((HOST, 0))
    rtcp.bind((HOST, 0))
    pair = RtpPortPair(rtp, rtcp)
    await pair.start()
    params = VideoParams("VP8", 96, 96, None, None, direction="recvonly")
    return VideoStream(pair, params, options), pair


@pytest.mark.timeout(30)
@pytest.mark.parametrize("self_view", [True, False])
def test_self_view_shows_our_camera_in_the_window_or_not(self_view: bool) -> None:
    config = config_of(f"[video]\ndevice=pattern:\ndisplay_dev=null:\nself_view={int(self_view)}\nframerate=20\n")
    options, _ = video_options_for(config, MediaChoice())

    async def run() -> int:
        stream, pair = await _stream(options)
        await stream.start()
        sink = _RecordingSink()
        stream.sink = sink  # type: ignore[assignment]
        await asyncio.sleep(0.6)
        await stream.stop()
        pair.close()
        return sink.previews

    previews = asyncio.run(run())
    assert (previews > 0) == self_view, previews


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("jitt_comp_ms", "held"), [(200, True), (20, False)])
def test_video_jitt_comp_is_how_long_a_missing_packet_is_waited_for(jitt_comp_ms: int, held: bool) -> None:
    config = config_of(f"[rtp]\nvideo_jitt_comp={jitt_comp_ms}\n[video]\ndevice=null:\ndisplay_dev=null:\n")
    options, _ = video_options_for(config, MediaChoice())

    async def run() -> int:
        stream, pair = await _stream(options)
        await stream.start()
        now = stream._now()
        for seq in (1, 3):  # 2 is missing; the peer cannot resend it (no NACK negotiated)
            stream._on_packet(RtpPacket(96, seq, 1000, 0x1234, b"\x10\x00", marker=False), now)
        stream._service(now + 0.1)
        skipped = stream.reorder.skipped
        await stream.stop()
        pair.close()
        return skipped

    assert (asyncio.run(run()) == 0) == held
