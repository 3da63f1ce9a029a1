"""softphone calls softphone with video: every codec, the pattern's frame counter read back, PSNR."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from softphone.devices.video_pattern import read_pattern_index, render_pattern, strip_height

CODECS = ["VP8", "H264", "H265", "JPEG"]


def received_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def psnr_against_source(image: np.ndarray, index: int) -> float:
    """PSNR of a received picture against the pattern frame it shows, leaving out the middle
    band where the sender drew its wall-clock time (which the receiver cannot know)."""
    height, width = image.shape[:2]
    source = render_pattern(index, width, height, clock=0.0)
    strip = strip_height(height)
    band_top, band_bottom = strip + (height - strip) // 3, strip + 2 * (height - strip) // 3
    keep = np.ones(height, bool)
    keep[band_top:band_bottom] = False
    error = np.mean((image[keep].astype(np.float64) - source[keep].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-9)))


def video_call(softphone, tmp_path, codec: str, *caller_extra: str, seconds: float = 3.0):
    recording = tmp_path / "received.mkv"  # lossless: the decoded pictures as they were
    answerer = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                         "--audio-source", "silence:", "--audio-sink", "null:", "--video-codec", codec,
                         "--video-source", "pattern:", "--video-sink", f"file: {recording}")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", str(seconds),
                       "--audio-source", "silence:", "--audio-sink", "null:", "--video-codec", codec,
                       "--video-source", "pattern:", "--video-sink", "null:", *caller_extra)
    assert caller.wait(60) == 0, caller.describe()
    assert answerer.wait(30) == 0, answerer.describe()
    (end,) = answerer.summary["calls"]
    return caller, end, recording


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", CODECS)
def test_video_both_ways_with_pattern_and_psnr(softphone, tmp_path, record_property, codec):
    caller, answered, recording = video_call(softphone, tmp_path, codec)
    for video in (caller.summary["video"], answered["video"]):
        assert video["codec"] == codec and video["media"] == "rtp", video
        assert video["frames_decoded"] >= 10 and (video["width"], video["height"]) == (640, 480), video
        assert video["keyframes_sent"] >= 1
    assert caller.summary["timeline"]["first_video_frame"] > caller.summary["timeline"]["answered"]
    frames = received_frames(recording)
    indexed = [(read_pattern_index(f), f) for f in frames]
    indexed = [(i, f) for i, f in indexed if i is not None]
    assert len(indexed) >= 10, f"{len(indexed)} of {len(frames)} recorded frames show a readable counter"
    indexes = [i for i, _ in indexed]
    assert indexes == sorted(indexes), "frames out of order"
    scores = [psnr_against_source(f, i) for i, f in indexed]
    median = float(np.median(scores))
    print(f"PSNR {codec}: median {median:.1f} dB over {len(scores)} frames (min {min(scores):.1f})")
    record_property(f"psnr_{codec}", round(median, 1))
    assert median > 30.0, scores


@pytest.mark.timeout(120)
def test_quality_level_scales_down_and_skips_frames(softphone, tmp_path):
    caller, answered, _ = video_call(softphone, tmp_path, "VP8", "--level", "2")
    sent = caller.summary["video"]
    assert (sent["send_width"], sent["send_height"]) == (320, 240), sent
    received = answered["video"]
    assert (received["width"], received["height"]) == (320, 240), received
    # level 2 sends every third frame of 30 fps: about 10 frames a second
    assert 5 <= received["fps"] <= 14, received


@pytest.mark.timeout(60)
def test_no_video_offers_audio_only_and_a_declined_video_keeps_audio(softphone, tmp_path):
    answerer_rc = tmp_path / "novideo.rc"
    answerer_rc.write_text("[video]\nenabled=0\n")
    answerer = softphone("-c", answerer_rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                         "answer", "--auto", "--once", "--audio-source", "tone: 880", "--audio-sink", "null:")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "1.5", "--audio-source", "tone: 440",
                       "--audio-sink", "null:", "--video-source", "pattern:", "--video-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    video = caller.summary["video"]
    assert video is not None and video["declined"], video  # offered, refused with port 0
    assert caller.summary["audio"]["rx_packets"] > 40
    assert answerer.wait(20) == 0
    audio_only = softphone("--bind", "127.0.0.1", "--sip-port", "0", "-vv", "answer", "--auto", "--once")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{audio_only.port()}", "--duration", "0.5", "--no-video",
                       "--audio-source", "silence:", "--audio-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    assert caller.summary["video"] is None
    assert audio_only.wait(20) == 0
    assert "m=video" not in audio_only.stderr and "m=audio" in audio_only.stderr


@pytest.mark.timeout(120)
def test_size_and_frame_rate_from_the_command_line(softphone, tmp_path):
    caller, answered, _ = video_call(softphone, tmp_path, "H264", "--video-size", "qvga", "--fps", "15")
    sent = caller.summary["video"]
    assert (sent["send_width"], sent["send_height"]) == (320, 240), sent
    assert (answered["video"]["width"], answered["video"]["height"]) == (320, 240)
    assert 10 <= answered["video"]["fps"] <= 17, answered["video"]
