"""OpenCV video devices: ``opencv: 0`` (a camera), ``opencv: clip.mp4`` (a file as the camera),
and ``opencv:`` as a sink (a window showing the remote picture with the local preview inset).

Capture runs on a thread per source and keeps only the newest frame, so ``read()`` never
waits. A file plays at its own frame rate and loops (``opencv: clip.mp4,once`` plays it
once, then ``finished`` turns True).

All HighGUI calls (``namedWindow``, ``imshow``, ``waitKey``, ``destroyWindow``) run on one
thread per process, shared by every window: OpenCV's Qt back end binds its GUI objects to
the thread that made the first window, and a window asked for from any other thread
later waits for that first thread forever.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from softphone.devices import shared_window_libraries
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

log = logging.getLogger(__name__)

MAX_FILE_FPS = 240.0
CAMERA_RETRIES = 50  # failed camera reads in a row before the camera counts as gone
WINDOW_POLL_MS = 16  # the window thread runs at ~60 Hz
WINDOW_REFRESH_S = 0.5  # the picture is shown again this often even when unchanged
WINDOW_OPEN_TIMEOUT_S = 10.0
WINDOW_CLOSE_TIMEOUT_S = 5.0
DESTROY_PUMPS = 5
INSET_FRACTION = 4  # the preview is 1/4 of the picture's width
_KEYS_THAT_CLOSE = {ord("q"), ord("Q"), 27}  # 27 = Esc
_KEYS_THAT_TOGGLE_OVERLAY = {ord("s"), ord("S")}
OVERLAY_SHADE = 0.35  # the picture under the figures is darkened to this fraction
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts")


def _fix_qt_font_dir() -> None:
    """opencv-python points QT_QPA_FONTDIR at a folder it does not ship; use the system fonts instead.

    Without this Qt prints "QFontDatabase: Cannot find font directory" for every window.
    Qt reads the variable when the first window opens, so setting it after the import works.
    """
    current = os.environ.get("QT_QPA_FONTDIR")
    if current and os.path.isdir(current):
        return
    for folder in _FONT_DIRS:
        if os.path.isdir(folder):
            os.environ["QT_QPA_FONTDIR"] = folder
            return


_fix_qt_font_dir()


def _split_options(argument: str) -> tuple[str, bool]:
    """``"clip.mp4"`` -> (path, loop=True); ``"clip.mp4,once"`` -> (path, False); ``",loop"`` is accepted too."""
    text = argument.strip()
    head, sep, option = text.rpartition(",")
    if sep and option.strip().lower() in ("once", "loop"):
        return head.strip(), option.strip().lower() == "loop"
    return text, True


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at exactly ``width`` x ``height``: centre-cropped to that aspect ratio, then scaled."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if w * height > h * width:  # too wide: crop the sides
        keep = max(1, round(h * width / height))
        x0 = (w - keep) // 2
        image = image[:, x0:x0 + keep]
    elif w * height < h * width:  # too tall: crop top and bottom
        keep = max(1, round(w * height / width))
        y0 = (h - keep) // 2
        image = image[y0:y0 + keep]
    shrinking = image.shape[1] > width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- capture


class OpenCVSource:
    """A camera (``opencv: 0``) or a video file (``opencv: clip.mp4``) through ``cv2.VideoCapture``.

    Frames come out at the requested ``width`` x ``height`` (centre-cropped to its aspect
    ratio). For a file, ``fps`` is the file's own frame rate.
    """

    def __init__(self, argument: str, *, width: int, height: int, fps: float) -> None:
        target, self.loop = _split_options(argument)
        if not target:
            raise ConfigError(None, None, None, "opencv source needs a camera number or a video file, "
                                                "e.g. 'opencv: 0' or 'opencv: clip.mp4'")
        if width <= 0 or height <= 0 or not fps > 0:
            raise ValueError(f"bad video format: {width}x{height} at {fps} fps")
        self.width, self.height = width, height
        self.is_camera = target.isdigit()
        self.target = target
        self.frames_captured = 0
        self.frames_dropped = 0  # captured but replaced by a newer one before anyone read them
        self._latest: deque[VideoFrame] = deque(maxlen=1)
        self._stop = threading.Event()
        self._ended = False
        self._capture = self._open(target, width, height, fps)
        self.fps = self._frame_rate(fps)
        log.info("opencv source %s: %s at %.3g fps, delivered at %dx%d%s", "camera" if self.is_camera else "file",
                 target, self.fps, width, height, "" if self.is_camera or self.loop else ", once")
        self._thread = threading.Thread(target=self._run, name=f"opencv-capture {target}", daemon=True)
        self._thread.start()

    def _open(self, target: str, width: int, height: int, fps: float) -> cv2.VideoCapture:
        if self.is_camera:
            if sys.platform.startswith("linux") and not Path(f"/dev/video{int(target)}").exists():
                # OpenCV would print a screen of probing errors from three back ends to say the same
                raise ConfigError(None, None, None, f"cannot open camera {target}: there is no /dev/video{target}")
            capture = cv2.VideoCapture(int(target))
            if not capture.isOpened():
                raise ConfigError(None, None, None, f"cannot open camera {target}")
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            capture.set(cv2.CAP_PROP_FPS, fps)
            return capture
        if not Path(target).is_file():
            raise ConfigError(None, None, None, f"video file {target!r} does not exist")
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            raise ConfigError(None, None, None, f"cannot read video file {target!r}")
        return capture

    def _frame_rate(self, requested: float) -> float:
        reported = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if math.isfinite(reported) and 0 < reported <= MAX_FILE_FPS:
            return reported if not self.is_camera or reported < requested * 4 else requested
        return requested

    @property
    def finished(self) -> bool:
        return self._ended and not self._latest

    def read(self) -> VideoFrame | None:
        try:
            return self._latest.popleft()
        except IndexError:
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    # -- the capture thread

    def _run(self) -> None:
        try:
            if self.is_camera:
                self._run_camera()
            else:
                self._run_file()
        except Exception:
            log.exception("opencv capture from %s failed", self.target)
        finally:
            self._ended = True
            self._capture.release()

    def _publish(self, image: np.ndarray, pts: float) -> None:
        frame = VideoFrame(fit(image, self.width, self.height), pts=pts, index=self.frames_captured)
        self.frames_captured += 1
        if self._latest:
            self.frames_dropped += 1
        self._latest.append(frame)

    def _run_camera(self) -> None:
        start = time.monotonic()
        failures = 0
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if not ok or image is None:
                failures += 1
                if failures >= CAMERA_RETRIES:
                    log.error("camera %s stopped giving frames", self.target)
                    return
                self._stop.wait(0.02)
                continue
            failures = 0
            self._publish(image, time.monotonic() - start)

    def _run_file(self) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        in_pass = 0  # frames read since the file was (re)started
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if not ok or image is None:
                if not self.loop or in_pass == 0:
                    log.info("video file %s ended after %d frames", self.target, self.frames_captured)
                    return
                self._rewind()
                in_pass = 0
                continue
            in_pass += 1
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            self._publish(image, self.frames_captured * period)
            due += period
            if time.monotonic() - due > period:  # far behind (a slow decode): resynchronise
                due = time.monotonic()

    def _rewind(self) -> None:
        if self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
            return
        self._capture.release()
        self._capture = cv2.VideoCapture(self.target)


# --------------------------------------------------------------------------- window


def _require_display() -> None:
    """Qt aborts the whole process when it cannot reach a display: refuse early instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError(None, None, None, "the opencv window needs a display (DISPLAY is not set); "
                                            "use 'null:' or 'file: out.mp4' as the video sink")
    clashes = pyav_window_libraries_loaded()
    if clashes:
        raise ConfigError(None, None, None, "the opencv window cannot open in this process: PyAV was loaded before "
                                            f"softphone.devices and brought its own {', '.join(clashes)} "
                                            "(Qt would hang); import softphone.devices before av")


def pyav_window_libraries_loaded() -> list[str]:
    """Names of X libraries mapped in this process from PyAV's wheel where OpenCV's Qt needs its own copy."""
    shared = shared_window_libraries()
    if not shared:
        return []
    try:
        maps = Path("/proc/self/maps").read_text(errors="replace")
    except OSError:
        return []
    mapped = {line.split(maxsplit=5)[-1] for line in maps.splitlines() if line.count(" ") >= 5}
    return [name for name, (_, pyav_copy) in shared.items() if str(pyav_copy) in mapped]


class _HighGui:
    """The one thread that makes every HighGUI call; it lives as long as the process."""

    _instance: _HighGui | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._windows: list[WindowSink] = []
        self._lock = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="opencv-highgui", daemon=True)
        self._thread.start()
        # A daemon thread inside Qt when the interpreter finalizes aborts the process
        # ("terminate called without an active exception"): close the windows and end it first.
        atexit.register(self.shutdown)

    @classmethod
    def get(cls) -> _HighGui:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def add(self, window: WindowSink) -> None:
        with self._lock:
            if self._stopping:
                raise ConfigError(None, None, None, "the opencv window thread has ended (the program is exiting)")
            self._windows.append(window)
            self._lock.notify()

    def shutdown(self) -> None:
        """Destroy every window and end the thread (at exit: it cannot be started again)."""
        with self._lock:
            self._stopping = True
            windows = list(self._windows)
            self._lock.notify()
        for window in windows:
            window.request_close()
        self.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(WINDOW_CLOSE_TIMEOUT_S)

    def titles(self) -> set[str]:
        with self._lock:
            return {w.title for w in self._windows}

    def wake(self) -> None:
        with self._lock:
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._windows and not self._stopping:
                    self._lock.wait()
                if not self._windows:
                    return
                windows = list(self._windows)
            for window in windows:
                if not window.service():
                    with self._lock:
                        self._windows.remove(window)
            try:
                key = cv2.waitKey(WINDOW_POLL_MS)
            except cv2.error:
                log.exception("cv2.waitKey failed")
                key = -1
                time.sleep(WINDOW_POLL_MS / 1000)
            if key >= 0 and (key & 0xFF) in _KEYS_THAT_CLOSE:
                for window in windows:
                    window.user_closed()
            elif key >= 0 and (key & 0xFF) in _KEYS_THAT_TOGGLE_OVERLAY:
                for window in windows:
                    window.toggle_overlay()


class WindowSink:
    """An OpenCV window (``opencv:``): the remote picture, the local preview inset bottom-right,
    and the call's figures (``set_overlay``) bottom-left.

    Resizable. ``q``, Esc or closing the window sets ``closed``; ``s`` hides or shows the
    figures. ``write()``, ``preview()`` and ``set_overlay()`` only hand the newest over;
    the window thread draws them.
    """

    def __init__(self, argument: str = "", *, width: int, height: int, fps: float, title: str = "softphone") -> None:
        _require_display()
        self.width, self.height, self.fps = width, height, fps
        gui = _HighGui.get()
        self.title = _unique_title(title, gui.titles())
        self.frames_shown = 0
        self._lock = threading.Lock()
        self._remote: VideoFrame | None = None
        self._local: VideoFrame | None = None
        self._overlay: tuple[str, ...] = ()
        self.overlay_visible = True
        self._dirty = True
        self._state = "new"  # new -> open -> closing -> gone
        self._seen_visible = False
        self._shown_at = 0.0
        self._closed = threading.Event()
        self._opened = threading.Event()
        self._gone = threading.Event()
        self._error: str | None = None
        gui.add(self)
        if not self._opened.wait(WINDOW_OPEN_TIMEOUT_S):
            raise ConfigError(None, None, None, f"the opencv window {self.title!r} did not open")
        if self._error:
            raise ConfigError(None, None, None, f"cannot open the opencv window: {self._error}")

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def write(self, frame: VideoFrame) -> None:
        with self._lock:
            self._remote = frame
            self._dirty = True

    def preview(self, frame: VideoFrame) -> None:
        with self._lock:
            self._local = frame
            self._dirty = True

    def set_overlay(self, lines: tuple[str, ...]) -> None:
        """The text drawn over the remote picture (the call's duration and figures)."""
        with self._lock:
            self._overlay = tuple(lines)
            self._dirty = True

    def toggle_overlay(self) -> None:
        """Hide the figures, or show them again (the ``s`` key)."""
        with self._lock:
            self.overlay_visible = not self.overlay_visible
            self._dirty = True

    def close(self) -> None:
        if not self.request_close():
            return
        _HighGui.get().wake()
        if not self._gone.wait(WINDOW_CLOSE_TIMEOUT_S):
            log.warning("the opencv window %r did not close in time", self.title)

    def request_close(self) -> bool:
        """Ask the window thread to destroy the window; False when it is already gone."""
        with self._lock:
            if self._state == "gone":
                return False
            self._state = "closing"
            return True

    # -- on the window thread

    def user_closed(self) -> None:
        if not self._closed.is_set():
            log.info("the opencv window %r was closed by the user", self.title)
        self._closed.set()

    def service(self) -> bool:
        """One step on the window thread; False once the window is gone."""
        with self._lock:
            state = self._state
            remote, local, dirty = self._remote, self._local, self._dirty
            overlay = self._overlay if self.overlay_visible else ()
            self._dirty = False
        try:
            if state == "new":
                self._create()
            elif state == "closing":
                self._destroy()
                return False
            # Shown again now and then: Qt may drop a picture shown before the window is mapped.
            refresh = time.monotonic() - self._shown_at > WINDOW_REFRESH_S
            if (dirty or refresh) and not self._closed.is_set():  # imshow would open a closed window again
                cv2.imshow(self.title, compose(remote, local, self.width, self.height, overlay))
                self._shown_at = time.monotonic()
                self.frames_shown += dirty and remote is not None
            self._check_visible()
        except cv2.error as exc:
            self._error = str(exc).strip()
            log.error("opencv window %r: %s", self.title, self._error)
            with self._lock:
                self._state = "gone"
            self._closed.set()
            self._opened.set()
            self._gone.set()
            return False
        return True

    def _create(self) -> None:
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(self.title, flags)
        cv2.resizeWindow(self.title, self.width, self.height)
        with self._lock:
            if self._state == "new":
                self._state = "open"
        self._opened.set()

    def _destroy(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            for _ in range(DESTROY_PUMPS):  # let Qt process the deletion before the thread may go idle
                cv2.waitKey(1)
        except cv2.error:
            pass  # already gone (closed by the user)
        with self._lock:
            self._state = "gone"
        self._gone.set()

    def _check_visible(self) -> None:
        if self._closed.is_set():
            return
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error:  # Qt raises once its last window is gone
            visible = -1
        if visible >= 1:
            self._seen_visible = True
        elif self._seen_visible:
            self.user_closed()


def _unique_title(title: str, taken: set[str]) -> str:
    if title not in taken:
        return title
    n = 2
    while f"{title} ({n})" in taken:
        n += 1
    return f"{title} ({n})"


def compose(remote: VideoFrame | None, local: VideoFrame | None, width: int, height: int,
            overlay: tuple[str, ...] = ()) -> np.ndarray:
    """The window's picture: ``remote`` (or a waiting screen) with ``local`` inset bottom-right
    and the ``overlay`` lines bottom-left."""
    if remote is None:
        canvas = np.zeros((height, width, 3), np.uint8)
        scale = width / 640
        cv2.putText(canvas, "waiting for video", (round(width * 0.22), height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    1.0 * scale, (200, 200, 200), max(1, round(2 * scale)), cv2.LINE_AA)
    else:
        canvas = np.array(remote.image[:, :, :3], dtype=np.uint8, copy=True)
    if overlay:
        draw_overlay(canvas, overlay, canvas.shape[1] * (INSET_FRACTION - 1) // INSET_FRACTION)
    if local is not None:
        h, w = canvas.shape[:2]
        lh, lw = local.image.shape[:2]
        inset_w = max(16, w // INSET_FRACTION)
        inset_h = max(12, round(inset_w * lh / max(1, lw)))
        margin = max(2, w // 64)
        if inset_w + 2 * margin <= w and inset_h + 2 * margin <= h:
            small = cv2.resize(local.image[:, :, :3], (inset_w, inset_h), interpolation=cv2.INTER_AREA)
            x0, y0 = w - margin - inset_w, h - margin - inset_h
            canvas[y0:y0 + inset_h, x0:x0 + inset_w] = small
            cv2.rectangle(canvas, (x0 - 1, y0 - 1), (x0 + inset_w, y0 + inset_h), (255, 255, 255), 1)
    return canvas


def draw_overlay(canvas: np.ndarray, lines: tuple[str, ...], right: int) -> None:
    """White ``lines`` on a darkened box in the bottom-left corner of ``canvas``, left of x = ``right``."""
    h, w = canvas.shape[:2]
    margin = max(2, w // 64)
    font = cv2.FONT_HERSHEY_SIMPLEX
    widest = max(cv2.getTextSize(line, font, 1.0, 1)[0][0] for line in lines)
    room = right - 3 * margin
    if widest <= 0 or room <= 0:
        return
    scale = min(0.55 * w / 640, room / widest)
    thickness = 1
    (_, text_h), baseline = cv2.getTextSize("Ag", font, scale, thickness)
    pad = max(2, round(text_h * 0.6))
    step = text_h + baseline + max(1, round(text_h * 0.4))
    box_w = min(room + 2 * margin, round(widest * scale) + 2 * pad)
    box_h = min(h - 2 * margin, step * len(lines) + pad)
    x0, y0 = margin, h - margin - box_h
    region = canvas[y0:y0 + box_h, x0:x0 + box_w]
    region[:] = (region * OVERLAY_SHADE).astype(np.uint8)
    for i, line in enumerate(lines):
        y = y0 + pad // 2 + (i + 1) * step - baseline
        if y > h - margin:
            break
        cv2.putText(canvas, line, (x0 + pad, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
