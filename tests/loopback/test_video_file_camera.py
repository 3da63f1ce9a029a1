"""A video file as the camera (``opencv: CLIP``): the peer receives the clip's frames in
order, at the clip's frame rate, looping back to its first frame after its last."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from softphone.devices.video_pattern import read_pattern_index, render_pattern

CLIP_FPS = 15
CLIP_FRAMES = 30  # 2 s
CLIP_SIZE = (320, 240)
CALL_S = 5.0


def write_clip(path: Path) -> Path:
    """CLIP_FRAMES pattern frames, frame i showing counter i (mp4v in .mp4, as a phone camera app would write)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, CLIP_SIZE)
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for index in range(CLIP_FRAMES):
        writer.write(render_pattern(index, *CLIP_SIZE, clock=0.0))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    ok, first = capture.read()
    capture.release()
    assert ok and count == CLIP_FRAMES and abs(fps - CLIP_FPS) < 0.01, (count, fps)
    assert read_pattern_index(first) == 0
    return path


def recorded_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def passes(indexes: list[int]) -> list[list[int]]:
    """Split the received counters where they go back: one list per play of the clip."""
    runs: list[list[int]] = [[]]
    for index in indexes:
        if runs[-1] and index < runs[-1][-1]:
            runs.append([])
        runs[-1].append(index)
    return runs


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_a_clip_as_the_camera_arrives_in_order_and_loops(softphone, tmp_path, codec):
    clip = write_clip(tmp_path / "clip.mp4")
    recording = tmp_path / "rx.mkv"
    answerer = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                         "--audio-source", "silence:", "--audio-sink", "null:", "--video-codec", codec,
                         "--video-source", "null:", "--video-sink", f"file: {recording}")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", str(CALL_S),
                       "--audio-source", "silence:", "--audio-sink", "null:", "--video-codec", codec,
                       "--video-source", f"opencv: {clip}", "--video-sink", "null:")
    assert caller.wait(60) == 0, caller.describe()
    assert answerer.wait(30) == 0, answerer.describe()
    sent = caller.summary["video"]
    (call,) = answerer.summary["calls"]
    received = call["video"]
    counts = f"sent {sent['frames_sent']}, decoded {received['frames_decoded']} at {received['fps']} fps"
    where = f"{counts}\nsent {sent}\nreceived {received}\n{answerer.describe()}"
    assert sent["source"] == f"opencv: {clip}" and received["codec"] == codec, where
    size = (sent["send_width"], sent["send_height"])
    assert (received["width"], received["height"]) == size, where
    # never faster than the clip's own frame rate (the default is 30); a busy machine may
    # skip frames (the camera keeps only the newest), so the floor is loose
    assert CLIP_FPS * 0.4 <= received["fps"] <= CLIP_FPS * 1.3, where
    assert sent["frames_sent"] <= CALL_S * CLIP_FPS * 1.2, where

    frames = recorded_frames(recording)
    counts += f", recorded {len(frames)}"
    assert len(frames) >= received["frames_decoded"] - 2 and len(frames) >= 25, \
        f"{len(frames)} frames recorded\n{where}"
    assert {(f.shape[1], f.shape[0]) for f in frames} == {size}, where
    indexes = [read_pattern_index(f) for f in frames]
    readable = [i for i in indexes if i is not None]
    assert len(readable) >= 0.95 * len(frames), f"unreadable counters: {indexes}"
    assert all(0 <= i < CLIP_FRAMES for i in readable), f"not the clip's counters: {readable}"
    plays = passes(readable)
    # the clip plays in real time: CALL_S of a 2 s clip is 2 to 3 plays (at 30 fps it would be 5)
    assert 2 <= len(plays) <= 4, f"{len(plays)} plays of the clip: {readable}; {counts}"
    for play in plays[1:]:
        assert play[0] <= 4, f"a loop did not restart at the clip's first frame: {readable}"
    for play in plays[:-1]:
        assert play[-1] >= CLIP_FRAMES - 5, f"a pass stopped before the clip's end: {readable}"
    for play in plays[1:-1]:  # a whole pass in between: the clip's frames in order, none twice
        assert len(set(play)) == len(play), f"pass {play} of {readable}; {counts}"
        assert len(play) >= 0.4 * CLIP_FRAMES, f"pass {play} of {readable}; {counts}"
