"""Video with real peers: the softphone against baresip (VP8, H.264, H.265) and linphonec
(VP8, H.264 through the openh264 plugin), both directions of call setup.

Each side sends synthetic video (our ``pattern:``, baresip's ``fakevideo`` at 352x288,
linphone's static picture at CIF) and each side's own statistics must show the other's
video arriving; the softphone must decode baresip's and linphone's pictures at their size.
"""

from __future__ import annotations

import pytest

from tests.interop.conftest import _wait_for

BARESIP_SIZE = (352, 288)  # baresip's video_size in tests/interop/peers/baresip/config.template
LINPHONE_SIZE = (352, 288)  # linphone's static picture at size=cif
CALL_S = 3.0
MEDIA = ["--audio-source", "silence:", "--audio-sink", "null:", "--video-source", "pattern:",
         "--video-sink", "null:"]
ANSWER = ["--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once"]


def baresip_video_codecs(codec: str) -> list[str]:
    """What to force on baresip's account.

    baresip's ``video_codecs=H264`` keeps only its first H.264 variant,
    packetization-mode=0, which the softphone declines (it sends FU-A fragments, mode 1);
    so for H.264 baresip keeps all its codecs and the softphone's offer or answer
    (H.264 mode 1 alone) decides.
    """
    return [] if codec == "H264" else [codec]


def softphone_call(softphone, uri: str, codec: str, seconds: float = CALL_S):
    return softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call", uri,
                     "--duration", str(seconds), "--video-codec", codec, *MEDIA)


def check_softphone_received(video: dict | None, codec: str, size: tuple[int, int], where: str) -> None:
    assert video is not None and not video.get("declined"), f"video {video}\n{where}"
    assert video["codec"] == codec, f"video {video}\n{where}"
    assert video["tx_packets"] > 0 and video["frames_sent"] > 10, f"nothing sent: {video}\n{where}"
    assert video["rx_packets"] > 0, f"no video RTP received: {video}\n{where}"
    assert video["frames_decoded"] > 10, f"too few pictures decoded: {video}\n{where}"
    assert (video["width"], video["height"]) == size, f"decoded size {video}\n{where}"


def baresip_video_rx(peer) -> dict[str, int]:
    """baresip's video packet counts (its rtp_stats table, printed once the call closed)."""
    peer.wait_event("CALL_CLOSED", timeout=15)
    found: list[dict[str, int]] = []
    _wait_for(lambda: bool(found.append(peer.rtp_packets("video")) or found[-1]), 5)
    return found[-1]


# =========================================================================== baresip


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["VP8", "H264", "H265"])
def test_softphone_calls_baresip_with_video(softphone, baresip_peer, codec):
    peer = baresip_peer("answer", video=True, video_codecs=baresip_video_codecs(codec), max_time=60)
    caller = softphone_call(softphone, peer.uri, codec)
    assert caller.wait(60) == 0, caller.describe() + peer.log()
    where = caller.describe() + "\n--- baresip:\n" + peer.log()
    check_softphone_received(caller.summary["video"], codec, BARESIP_SIZE, where)
    assert caller.summary["timeline"]["first_video_frame"] > caller.summary["timeline"]["answered"]
    packets = baresip_video_rx(peer)
    assert packets.get("rx", 0) > 0 and packets.get("tx", 0) > 0, f"baresip video {packets}\n{where}"
    assert peer.video_codec() == codec and peer.video_encoder() == codec, where


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["VP8", "H264", "H265"])
def test_baresip_calls_softphone_with_video(softphone, baresip_peer, codec):
    answerer = softphone(*ANSWER, "--video-codec", codec, *MEDIA)
    peer = baresip_peer("call", dial=f"sip:alice@127.0.0.1:{answerer.port()}", hangup_after=CALL_S,
                        video=True, video_codecs=baresip_video_codecs(codec), max_time=60)
    assert answerer.wait(60) == 0, answerer.describe() + peer.log()
    where = answerer.describe() + "\n--- baresip:\n" + peer.log()
    (call,) = answerer.summary["calls"]
    check_softphone_received(call["video"], codec, BARESIP_SIZE, where)
    packets = baresip_video_rx(peer)
    assert packets.get("rx", 0) > 0 and packets.get("tx", 0) > 0, f"baresip video {packets}\n{where}"
    assert peer.video_codec() == codec and peer.video_encoder() == codec, where
    peer.wait(20)


@pytest.mark.timeout(60)
def test_baresip_offering_h264_packetization_mode_0_alone_gets_video_declined_and_audio_kept(
        softphone, baresip_peer):
    answerer = softphone(*ANSWER, "--video-codec", "H264", "--audio-source", "tone: 440", "--audio-sink", "null:",
                         "--video-source", "pattern:", "--video-sink", "null:")
    peer = baresip_peer("call", dial=f"sip:alice@127.0.0.1:{answerer.port()}", hangup_after=2,
                        video_codecs=["H264"], max_time=40)
    assert answerer.wait(40) == 0, answerer.describe() + peer.log()
    (call,) = answerer.summary["calls"]
    assert call["video"] is not None and call["video"]["declined"], answerer.describe()
    assert call["audio"]["rx_packets"] > 40 and call["audio"]["tx_packets"] > 40, answerer.describe()
    peer.wait(20)


@pytest.mark.timeout(60)
def test_the_first_h265_keyframe_from_baresip_is_decoded(softphone, baresip_peer):
    peer = baresip_peer("answer", video_codecs=["H265"], max_time=40)
    caller = softphone_call(softphone, peer.uri, "H265", seconds=2.5)
    assert caller.wait(40) == 0, caller.describe()
    video, timeline = caller.summary["video"], caller.summary["timeline"]
    # baresip sends VPS, SPS, PPS and the IDR slices at once: nothing is lost on loopback,
    # so the first picture must decode without a keyframe request (a stream that starts
    # without its keyframe, or that fails to decode, asks for one with a PLI at once)
    assert video["decode_errors"] == 0 and video["pli_sent"] == 0, video
    assert video["frames_decoded"] > 0 and "first_video_frame" in timeline, (video, timeline)


# =========================================================================== linphonec


def linphone_video_rx(peer) -> dict[str, int]:
    """linphone's video packet counts (logged by oRTP when the video stream ends)."""
    found: list[dict[str, int]] = []
    _wait_for(lambda: bool(found.append(peer.rtp_packets("video")) or found[-1]), 10)
    return found[-1]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_softphone_calls_linphonec_with_video(softphone, linphonec_peer, codec):
    peer = linphonec_peer(video_codecs=[codec], max_time=60)
    caller = softphone_call(softphone, peer.uri, codec, seconds=5)
    peer.wait_connected(15)
    peer.set_static_picture_fps(20)  # the static picture runs at 1 fps unless told, per call
    assert caller.wait(60) == 0, caller.describe() + peer.log()
    where = caller.describe() + "\n--- linphonec:\n" + peer.output() + peer.log(3000)
    check_softphone_received(caller.summary["video"], codec, LINPHONE_SIZE, where)
    assert peer.video_codec() == codec, where
    packets = linphone_video_rx(peer)
    assert packets.get("rx", 0) > 0 and packets.get("tx", 0) > 0, f"linphone video {packets}\n{where}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_linphonec_calls_softphone_with_video(softphone, linphonec_peer, codec):
    answerer = softphone(*ANSWER, "--duration", "5", "--video-codec", codec, *MEDIA)
    peer = linphonec_peer(video_codecs=[codec], auto_answer=False, max_time=60)
    peer.call(f"sip:alice@127.0.0.1:{answerer.port()}")
    peer.wait_connected(15)
    peer.set_static_picture_fps(20)
    assert answerer.wait(60) == 0, answerer.describe() + peer.log()
    where = answerer.describe() + "\n--- linphonec:\n" + peer.output() + peer.log(3000)
    (call,) = answerer.summary["calls"]
    check_softphone_received(call["video"], codec, LINPHONE_SIZE, where)
    peer.wait_ended(15)
    packets = linphone_video_rx(peer)
    assert packets.get("rx", 0) > 0 and packets.get("tx", 0) > 0, f"linphone video {packets}\n{where}"
