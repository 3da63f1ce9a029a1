"""Live call quality through the command line, on loopback between two softphones: the
``--report`` PNG (every panel drawn, checked from its pixels), the figures in the ``--json``
summary, the status line and the readable summary on a terminal, and mistakes in
``--report``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pexpect
import pytest

from softphone.report import write_report
from softphone.rtp.quality import QualitySample, StreamCounters, StreamMeter

CALL_S = 12  # long enough for RTCP to have measured the round trip (reports every 2.5 .. 7.5 s)
VIDEO_ARGS = ["--video-codec", "VP8", "--video-source", "pattern:", "--video-sink", "null:"]


# --------------------------------------------------------------------------- reading a report


def panel_boxes(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of every plot frame, found as pairs of long dark lines."""
    dark = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) < 80
    width = dark.shape[1]
    rows = np.where(dark.sum(axis=1) > 0.5 * width)[0]
    runs: list[list[int]] = []
    for row in rows:
        if runs and row - runs[-1][-1] <= 1:
            runs[-1].append(int(row))
        else:
            runs.append([int(row)])
    assert len(runs) % 2 == 0, f"frame lines at rows {runs}"
    boxes = []
    for top_run, bottom_run in zip(runs[0::2], runs[1::2], strict=True):
        top, bottom = top_run[-1] + 1, bottom_run[0]
        columns = np.where(dark[top:bottom].sum(axis=0) > 0.9 * (bottom - top))[0]
        boxes.append((top, bottom, int(columns[0]) + 1, int(columns[-1])))
    return boxes


def drawn_pixels(image: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Coloured pixels inside a frame: the curves (grid, text and frame are grey)."""
    top, bottom, left, right = box
    inner = image[top + 2:bottom - 2, left + 2:right - 2].astype(int)
    return int(((inner.max(axis=2) - inner.min(axis=2)) > 60).sum())


def check_report(path: Path, panels: int) -> list[int]:
    image = cv2.imread(str(path))
    assert image is not None, f"no readable PNG at {path}"
    boxes = panel_boxes(image)
    assert len(boxes) == panels, f"{len(boxes)} panels in {path}: {boxes}"
    counts = [drawn_pixels(image, box) for box in boxes]
    assert all(count > 100 for count in counts), f"panels without a curve in {path}: {counts}"
    return counts


def test_an_empty_panel_is_seen_as_empty(tmp_path: Path) -> None:
    """The pixel check can fail: a report without any round-trip time has a blank panel."""
    meter = StreamMeter("audio", "PCMU", start=0.0)
    samples = [QualitySample(at=float(t), audio=meter.sample(
        StreamCounters(tx_octets=8000 * t, rx_octets=8000 * t, rx_packets=50 * t, expected=50 * t, buffer_ms=40),
        float(t))) for t in range(1, 6)]
    path = write_report(tmp_path / "audio.png", samples, "audio only, no RTT")
    image = cv2.imread(str(path))
    counts = [drawn_pixels(image, box) for box in panel_boxes(image)]
    assert len(counts) == 5  # no video: no frame-rate panel
    assert counts[3] == 0 and all(c > 100 for i, c in enumerate(counts) if i != 3), counts


# --------------------------------------------------------------------------- real calls


def test_report_json_figures_and_report_of_both_sides(softphone, tmp_path: Path) -> None:
    callee_png, caller_png = tmp_path / "callee.png", tmp_path / "caller.png"
    callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                       "--audio-source", "tone: 440", "--audio-sink", "null:", *VIDEO_ARGS, "--report", callee_png)
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{callee.port()}", "--duration", str(CALL_S), "--audio-codec", "PCMU",
                       "--audio-source", "tone: 330", "--audio-sink", "null:", *VIDEO_ARGS, "--report", caller_png)
    assert caller.wait(CALL_S + 30) == 0, caller.describe()
    assert callee.wait(20) == 0, callee.describe()
    summary = caller.summary
    assert summary is not None and summary["result"] == "completed", caller.describe()
    audio, video = summary["audio"], summary["video"]
    # PCMU: 64 kbit/s of payload each way, nothing lost on loopback, a near-perfect estimate
    assert audio["tx_kbps"] == pytest.approx(64.0, abs=3.0), audio
    assert audio["rx_kbps"] == pytest.approx(64.0, abs=3.0), audio
    assert audio["loss_pct"] == 0.0 and 4.2 < audio["mos"] <= 4.41, audio
    assert video["tx_kbps"] > 50 and video["rx_kbps"] > 50 and "mos" not in video, video
    for path in (caller_png, callee_png):
        counts = check_report(path, panels=6)  # bitrate, loss, jitter, RTT, MOS, fps
        print(path.name, counts)


def test_status_line_and_summary_on_a_terminal(softphone, tmp_path: Path) -> None:
    callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                       "--audio-source", "tone: 440", "--audio-sink", "null:", "--no-video")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "200"}
    child = pexpect.spawn(sys.executable, ["-m", "softphone", "--bind", "127.0.0.1", "--sip-port", "0",
                                           "--rtp-port", "0", "call", f"sip:bob@127.0.0.1:{callee.port()}",
                                           "--duration", "4", "--audio-codec", "PCMA", "--audio-source", "tone: 330",
                                           "--audio-sink", "null:", "--no-video"],
                          env=env, encoding="utf-8", timeout=30, dimensions=(24, 200))
    try:
        child.expect("call confirmed")
        # one line rewritten in place: carriage return, the figures, clear to end of line
        child.expect(r"\r00:0\d \| audio PCMA tx \d+ rx \d+ kbit/s loss 0\.0% jitter [\d.]+ ms rtt (-|\d+ ms) "
                     r"MOS 4\.\d\d\x1b\[K")
        child.expect(r"\r\x1b\[Kcall terminating")  # cleared before the next line
        # the format, not the time: a loaded machine may end the 4 s call a second late
        child.expect(r"call ended: completed 200, 00:\d\d in call, reached at 127\.0\.0\.1:\d+\r\n")
        child.expect(r"  audio PCMA    tx 6\d\.\d kbit/s  rx 6\d\.\d kbit/s  lost 0/\d+ \(0\.0 %\)  "
                     r"jitter [\d.]+ ms  RTT (-|[\d.]+ ms)  MOS 4\.\d\d\r\n")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert callee.wait(20) == 0, callee.describe()


@pytest.mark.parametrize("report, message", [
    ("{tmp}/missing/r.png", "does not exist"),
    ("{tmp}/r.jpg", "ending in .png"),
])
def test_a_bad_report_path_is_one_line_and_exit_2(tmp_path: Path, report: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "softphone", "--sip-port", "0", "call", "sip:nobody@127.0.0.1:9",
                             "--report", report.format(tmp=tmp_path)],
                            capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softphone: --report") and message in lines[0], result.stderr
