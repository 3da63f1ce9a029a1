"""A device that cannot be opened: every call takes the stand-in and says so in its events,
the log says it once, and the device is tried again after RETRY_AFTER."""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import Any

import pytest

from softphone.devices import open_audio_source, open_video_source
from softphone.devices.synthetic import SilenceSource
from softphone.devices.video_pattern import NullVideoSource
from softphone.devices.wavfile import WavFileSource
from softphone.media import fallback
from softphone.media.fallback import open_or_fallback


@pytest.fixture(autouse=True)
def no_failures_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fallback, "_failed", {})


class Counting:
    """The real opener, counting what it was asked to open."""

    def __init__(self, opener: Any) -> None:
        self.opener = opener
        self.asked: list[str] = []

    def __call__(self, spec: str, **kwargs: Any) -> Any:
        self.asked.append(spec)
        return self.opener(spec, **kwargs)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_missing_camera_is_logged_once_and_each_call_reports_the_stand_in(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    opener = Counting(open_video_source)
    spec = f"opencv: {tmp_path / 'missing.mp4'}"
    events: list[tuple[str, dict[str, Any]]] = []
    with caplog.at_level(logging.WARNING, logger="softphone.media.fallback"):
        devices = [open_or_fallback("video", opener, spec, "null:", lambda name, data: events.append((name, data)),
                                    width=320, height=240, fps=10) for _ in range(3)]
    assert all(isinstance(d, NullVideoSource) for d in devices), devices
    assert opener.asked == [spec, "null:", "null:", "null:"]  # tried once, then left alone
    assert len(warnings(caplog)) == 1 and spec in warnings(caplog)[0], warnings(caplog)
    assert [name for name, _ in events] == ["device_error"] * 3
    assert all(data["device"] == spec and data["using"] == "null:" and data["error"] for _, data in events)


class Clock:
    """The fallback's clock, moved by the test: no real waiting, no race with a busy machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_device_is_tried_again_after_retry_after_and_counts_as_new_once_it_worked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(fallback, "time", clock)
    path = tmp_path / "in.wav"
    spec = f"file: {path}"
    opener = Counting(open_audio_source)
    events: list[str] = []

    def open_it() -> Any:
        return open_or_fallback("audio", opener, spec, "silence:", lambda name, data: events.append(name),
                                sample_rate=8000, channels=1, frame_samples=160)

    with caplog.at_level(logging.WARNING, logger="softphone.media.fallback"):
        assert isinstance(open_it(), SilenceSource)
        assert isinstance(open_it(), SilenceSource)
        assert opener.asked.count(spec) == 1
        clock.now += fallback.RETRY_AFTER
        assert isinstance(open_it(), SilenceSource)  # tried again, still missing: not logged again
        assert opener.asked.count(spec) == 2 and len(warnings(caplog)) == 1
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\x00\x01" * 800)
        clock.now += fallback.RETRY_AFTER - 1
        assert isinstance(open_it(), SilenceSource)  # within RETRY_AFTER of the last failure
        clock.now += 1  # RETRY_AFTER after the last failure (whole seconds: exact in floating point)
        assert isinstance(open_it(), WavFileSource)
        assert events == ["device_error"] * 4
        path.unlink()
        assert isinstance(open_it(), SilenceSource)  # it worked in between: a new failure, logged
    assert len(warnings(caplog)) == 2, warnings(caplog)
