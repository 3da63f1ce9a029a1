"""Record video to a file (``file: out.mp4``): the sink for "record what the peer sent".

``.mkv`` holds lossless FFV1 (exactly the decoded pictures); ``.mp4`` holds H.264 (PyAV's
libx264, yuv420p; MPEG-4 part 2 when libx264 is
missing), ``.webm`` holds VP8 (libvpx), ``.avi`` holds Motion JPEG (``cv2.VideoWriter``).
PyAV files keep the real arrival time of every frame (millisecond timestamps); the AVI is
written at a constant ``fps``.

Encoding runs on the sink's own thread behind a queue of two frames (the oldest is
dropped when the encoder falls behind); ``close()`` drains the queue and finalizes the file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.stream import VideoStream

from softphone.errors import ConfigError
from softphone.frames import VideoFrame

log = logging.getLogger(__name__)

QUEUE_FRAMES = 2
TIME_BASE = Fraction(1, 1000)  # PyAV timestamps in milliseconds
BIT_RATE = 2_000_000
CLOSE_TIMEOUT_S = 30.0
# extension -> (PyAV codecs to try in order, or the cv2.VideoWriter fourcc after "cv2:")
FORMATS: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "mpeg4"),
    ".mkv": ("ffv1",),  # lossless: exactly what was decoded, for analysis
    ".webm": ("libvpx",),
    ".avi": ("cv2:MJPG",),
}


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _scaled(image: np.ndarray, width: int, height: int) -> np.ndarray:
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class _PyAvWriter:
    """One video stream in a container written by PyAV; variable frame rate in milliseconds."""

    def __init__(self, path: str, codecs: tuple[str, ...], width: int, height: int, fps: float) -> None:
        self.width, self.height = _even(width), _even(height)
        self._container = av.open(path, mode="w")
        self._last_pts = -1
        self._pix_fmt = "yuv420p"
        try:
            self._stream = self._add_stream(codecs, fps)
        except Exception:
            self._container.close()
            raise

    def _add_stream(self, codecs: tuple[str, ...], fps: float) -> VideoStream:
        for name in codecs:
            try:
                av.codec.Codec(name, "w")
            except Exception:
                log.info("video encoder %s is not available", name)
                continue
            stream = self._container.add_stream(name, rate=Fraction(fps).limit_denominator(1001))
            if not isinstance(stream, VideoStream):
                raise ConfigError(None, None, None, f"{name} is not a video encoder")
            self._pix_fmt = "bgr0" if name == "ffv1" else "yuv420p"
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, self._pix_fmt
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.bit_rate = BIT_RATE
            if name == "libx264":
                stream.options = {"preset": "veryfast", "crf": "23"}
            elif name == "libvpx":
                stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            log.debug("recording with %s at %dx%d", name, self.width, self.height)
            return stream
        raise ConfigError(None, None, None, f"no video encoder available among {', '.join(codecs)}")

    def write(self, image: np.ndarray, seconds: float) -> None:
        pts = max(self._last_pts + 1, round(seconds * 1000))
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(_scaled(image, self.width, self.height), format="bgr24")
        frame = frame.reformat(format=self._pix_fmt)
        frame.pts = pts
        frame.time_base = TIME_BASE
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


class _OpenCvWriter:
    """A ``cv2.VideoWriter`` at a constant frame rate."""

    def __init__(self, path: str, fourcc: str, width: int, height: int, fps: float) -> None:
        self.width, self.height = width, height
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
        if not self._writer.isOpened():
            raise ConfigError(None, None, None, f"cv2.VideoWriter cannot write {fourcc} to {path!r}")

    def write(self, image: np.ndarray, seconds: float) -> None:
        self._writer.write(_scaled(image, self.width, self.height))

    def close(self) -> None:
        self._writer.release()


class VideoFileSink:
    """Writes every frame it is given (up to what the encoder keeps up with) to a video file."""

    def __init__(self, argument: str, *, width: int, height: int, fps: float, title: str = "softphone") -> None:
        path = argument.strip()
        if not path:
            raise ConfigError(None, None, None, "file video sink needs a file name, e.g. 'file: out.mp4'")
        suffix = Path(path).suffix.lower()
        if suffix not in FORMATS:
            raise ConfigError(None, None, None, f"cannot record video to {path!r}; "
                                                f"file types: {', '.join(sorted(FORMATS))}")
        folder = Path(path).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ConfigError(None, None, None, f"cannot write {path!r}: {str(folder)!r} is not a writable folder")
        if not fps > 0:
            raise ValueError(f"bad video frame rate {fps}")
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0  # frames in the file
        self.frames_dropped = 0  # frames dropped because the encoder fell behind
        self.error: str | None = None
        self._formats = FORMATS[suffix]
        self._queue: deque[tuple[float, VideoFrame]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._start: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"video-file {path}", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return False

    def write(self, frame: VideoFrame) -> None:
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            if self._start is None:
                self._start = now
            if len(self._queue) >= QUEUE_FRAMES:
                self._queue.popleft()
                self.frames_dropped += 1
            self._queue.append((now - self._start, frame))
            self._cond.notify()

    def preview(self, frame: VideoFrame) -> None:
        pass

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(CLOSE_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("recording to %s did not finish in %.0f s", self.path, CLOSE_TIMEOUT_S)

    # -- the writer thread

    def _next(self) -> tuple[float, VideoFrame] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            return self._queue.popleft() if self._queue else None

    def _run(self) -> None:
        writer: _PyAvWriter | _OpenCvWriter | None = None
        try:
            while (item := self._next()) is not None:
                seconds, frame = item
                if writer is None:
                    writer = self._open_writer(frame.width, frame.height)
                writer.write(frame.image, seconds)
                self.frames_written += 1
        except Exception as exc:
            self.error = str(exc)
            log.exception("recording video to %s failed", self.path)
            with self._cond:
                self._stopping = True
                self._queue.clear()
        finally:
            if writer is not None:
                try:
                    writer.close()
                except Exception as exc:
                    self.error = self.error or str(exc)
                    log.exception("finishing %s failed", self.path)
            log.info("recorded %d video frames to %s (%d dropped)", self.frames_written, self.path,
                     self.frames_dropped)

    def _open_writer(self, width: int, height: int) -> _PyAvWriter | _OpenCvWriter:
        first = self._formats[0]
        if first.startswith("cv2:"):
            return _OpenCvWriter(self.path, first[4:], width, height, self.fps)
        return _PyAvWriter(self.path, self._formats, width, height, self.fps)
