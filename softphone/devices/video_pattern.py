"""Synthetic video devices: ``pattern:`` (a moving test pattern), ``null:`` (source and sink).

The pattern carries its frame index twice: as text, and as a machine-readable bar code
along the top that survives lossy compression and scaling, so that a receiver can tell
which sent frame it is looking at (:func:`read_pattern_index`).

Bar code layout, in cells of ``width / 40`` pixels on a mid-grey strip::

    | quiet 2 | start: black, white | 32 data cells, MSB first, black = 1 | stop: white, black | quiet 2 |

The reader finds the black outer edges of the guards between the grey quiet zones, so it
needs neither the position nor the scale of the code: any crop or resize of a frame at
least 160 pixels wide works.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter

import cv2
import numpy as np

from softphone.errors import ConfigError
from softphone.frames import VideoFrame

log = logging.getLogger(__name__)

INDEX_BITS = 32
GUARD_CELLS = 2  # each side: start = black, white; stop = white, black
QUIET_CELLS = 2  # grey cells either side of the guards
CODE_CELLS = INDEX_BITS + 2 * GUARD_CELLS  # 36 cells from the first black edge to the last
TOTAL_CELLS = CODE_CELLS + 2 * QUIET_CELLS  # 40 cells across the frame
GREY = 128
MIN_WIDTH, MIN_HEIGHT = 160, 120

# Reader thresholds on 0..255 luma: grey quiet zone vs. black/white cells.
_QUIET_LOW, _QUIET_HIGH = 80, 176
_DECISION_MARGIN = 24  # a cell must be this far from mid-grey to count as black or white
_MIN_CELL_PX = 2.0
_MAX_INNER_RUNS = 4  # grey runs a code may contain (blurred edges) and still be found

_CELL_NUMBERS = np.arange(CODE_CELLS, dtype=np.float64)
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*(?:@\s*(\d+(?:\.\d+)?))?\s*$", re.IGNORECASE)
_BAR_COLOURS = [(255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
                (255, 0, 255), (0, 0, 255), (255, 0, 0), (40, 40, 40)]  # BGR colour bars


# --------------------------------------------------------------------------- bar code


def code_geometry(width: int, height: int) -> tuple[list[int], int, int]:
    """(x edges of the 40 cells, top, bottom of the bar code row) for a frame of this size."""
    edges = [round(i * width / TOTAL_CELLS) for i in range(TOTAL_CELLS + 1)]
    strip = strip_height(height)
    top = strip // 6
    return edges, top, strip - top


def strip_height(height: int) -> int:
    """Height of the grey strip at the top that holds the bar code."""
    return max(12, round(height * 3 / 40))


def draw_index(image: np.ndarray, index: int) -> None:
    """Draw ``index`` (modulo 2**32) as the bar code along the top of ``image``, in place."""
    height, width = image.shape[:2]
    edges, top, bottom = code_geometry(width, height)
    image[:strip_height(height)] = GREY
    value = index % (1 << INDEX_BITS)
    bits = [1, 0] + [(value >> (INDEX_BITS - 1 - i)) & 1 for i in range(INDEX_BITS)] + [0, 1]
    for cell, bit in enumerate(bits):
        x0, x1 = edges[QUIET_CELLS + cell], edges[QUIET_CELLS + cell + 1]
        image[top:bottom, x0:x1] = 0 if bit else 255


def read_pattern_index(image: np.ndarray) -> int | None:
    """The frame index of a pattern frame, or None when no valid bar code is found.

    Works on decoded (lossy) frames, scaled copies down to 160x120 and screenshots that
    contain a pattern frame: every row is scanned, the first run of rows that decode
    alike (at least two) gives the answer.
    """
    gray = _luma(image)
    if gray.shape[1] < MIN_WIDTH // 2 or gray.shape[0] < 4:
        return None
    found: list[int] = []
    misses = 0
    for row in gray:
        value = _read_row(row)
        if value is not None:
            found.append(value)
            misses = 0
        elif found:
            misses += 1
            if misses > 2:
                break
    if not found:
        return None
    value, count = Counter(found).most_common(1)[0]
    return value if count >= 2 else None


def _luma(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array[:, :, :3], cv2.COLOR_BGR2GRAY)
    return array.astype(np.float32)


def _read_row(row: np.ndarray) -> int | None:
    sums = np.concatenate(([0.0], np.cumsum(row, dtype=np.float64)))
    for start, stop in _code_spans(row):
        value = _decode_span(sums, start, stop)
        if value is not None:
            return value
    return None


def _code_spans(row: np.ndarray) -> list[tuple[int, int]]:
    """Stretches between two grey quiet zones long enough to hold a code, shortest first.

    A short grey run inside a code (a blurred edge) does not end it: the stretch may span
    a few quiet runs, and the guards decide which stretch is the code.
    """
    quiet = (row > _QUIET_LOW) & (row < _QUIET_HIGH)
    min_quiet = max(3, row.size // 160)
    padded = np.concatenate(([False], quiet, [False]))
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    runs = [(int(a), int(b)) for a, b in zip(changes[::2], changes[1::2], strict=True) if b - a >= min_quiet]
    spans = []
    for i, (_, left) in enumerate(runs):
        for right, _ in runs[i + 1:i + 1 + _MAX_INNER_RUNS]:
            if right - left >= CODE_CELLS * _MIN_CELL_PX:
                spans.append((left, right))
    return spans


def _decode_span(sums: np.ndarray, start: int, stop: int) -> int | None:
    """Read the 36 cells between ``start`` and ``stop`` from the row's running sums (the middle half of each cell)."""
    cell = (stop - start) / CODE_CELLS
    half = max(0.5, cell / 4)
    centres = start + (_CELL_NUMBERS + 0.5) * cell
    lo = np.rint(centres - half).astype(np.int64)
    hi = np.maximum(np.rint(centres + half).astype(np.int64), lo + 1)
    levels = (sums[hi] - sums[lo]) / (hi - lo)
    if np.any(np.abs(levels - GREY) < _DECISION_MARGIN):
        return None
    bits = levels < GREY  # black = 1
    if not (bits[0] and not bits[1] and not bits[-2] and bits[-1]):
        return None
    value = 0
    for bit in bits[GUARD_CELLS:GUARD_CELLS + INDEX_BITS]:
        value = (value << 1) | int(bit)
    return value


# --------------------------------------------------------------------------- picture


def render_pattern(index: int, width: int, height: int, *, clock: float | None = None) -> np.ndarray:
    """One pattern frame: colour bars, boxes that move with ``index``, bar code, index and clock text."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"pattern size {width}x{height} is below {MIN_WIDTH}x{MIN_HEIGHT}")
    image = np.empty((height, width, 3), np.uint8)
    strip = strip_height(height)
    for i, colour in enumerate(_BAR_COLOURS):
        image[strip:, i * width // 8:(i + 1) * width // 8] = colour
    band_top, band_bottom = strip + (height - strip) // 3, strip + 2 * (height - strip) // 3
    image[band_top:band_bottom] = 48
    box = max(8, height // 6)
    x = (index * max(2, width // 64)) % (width + box) - box
    cv2.rectangle(image, (x, band_top + 4), (x + box, band_bottom - 4), (0, 128, 255), -1)
    y = strip + (index * max(1, height // 96)) % max(1, height - strip - box)
    cv2.rectangle(image, (width - box - 8, y), (width - 8, y + box), (255, 64, 0), -1)
    angle = index * 0.2
    centre = (width // 6, band_top + (band_bottom - band_top) // 2)
    radius = max(4, (band_bottom - band_top) // 2 - 4)
    tip = (int(centre[0] + radius * np.cos(angle)), int(centre[1] + radius * np.sin(angle)))
    cv2.line(image, centre, tip, (255, 255, 255), max(1, width // 160))
    draw_index(image, index)
    _draw_text(image, index, time.time() if clock is None else clock, band_top, band_bottom)
    return image


def _draw_text(image: np.ndarray, index: int, clock: float, band_top: int, band_bottom: int) -> None:
    width = image.shape[1]
    scale = width / 640
    thickness = max(1, round(2 * scale))
    stamp = time.strftime("%H:%M:%S", time.localtime(clock)) + f".{int(clock * 1000) % 1000:03d}"
    text_y = band_top + (band_bottom - band_top) // 2 - round(6 * scale)
    cv2.putText(image, f"#{index}", (width // 3, text_y), cv2.FONT_HERSHEY_SIMPLEX, 1.1 * scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    cv2.putText(image, stamp, (width // 3, text_y + round(34 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                (255, 255, 255), thickness, cv2.LINE_AA)


# --------------------------------------------------------------------------- devices


def parse_pattern(argument: str, width: int, height: int, fps: float) -> tuple[int, int, float]:
    """``""`` keeps the requested format; ``"320x240"`` or ``"320x240@15"`` overrides it."""
    text = argument.strip()
    if text:
        match = _SIZE.match(text)
        if not match:
            raise ConfigError(None, None, None, f"bad pattern {argument!r}; expected e.g. 'pattern:' or "
                                                "'pattern: 640x480@30'")
        width, height = int(match.group(1)), int(match.group(2))
        fps = float(match.group(3)) if match.group(3) else fps
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ConfigError(None, None, None, f"pattern size {width}x{height} is below {MIN_WIDTH}x{MIN_HEIGHT}")
    if not (0 < fps <= 240):
        raise ConfigError(None, None, None, f"pattern frame rate {fps:g} must be above 0 and at most 240")
    return width, height, fps


class PatternSource:
    """A moving test pattern generated on the caller's clock: no thread.

    ``read()`` returns a new frame once a frame period has passed since the previous
    one, else None. A caller that falls behind gets one frame, not a burst.
    """

    def __init__(self, argument: str = "", *, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = parse_pattern(argument, width, height, fps)
        self._period = 1.0 / self.fps
        self._start: float | None = None
        self._due = 0.0
        self._index = 0
        self._closed = False

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> VideoFrame | None:
        if self._closed:
            return None
        now = time.monotonic()
        if self._start is None:
            self._start = self._due = now
        start = self._start
        if now < self._due:
            return None
        index = self._index
        self._index += 1
        pts = self._due - start
        self._due += self._period
        if self._due <= now:  # more than a period behind: resynchronise instead of bursting
            pts = now - start
            self._due = now + self._period
        image = render_pattern(index, self.width, self.height)
        return VideoFrame(image, pts=pts, index=index)

    def close(self) -> None:
        self._closed = True


class NullVideoSource:
    """No video at all (``null:``): ``read()`` is always None."""

    def __init__(self, argument: str = "", *, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> VideoFrame | None:
        return None

    def close(self) -> None:
        pass


class NullVideoSink:
    """Discards video (``null:``), counting the frames it was given."""

    def __init__(self, argument: str = "", *, width: int, height: int, fps: float, title: str = "softphone") -> None:
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self.frames_previewed = 0

    @property
    def closed(self) -> bool:
        return False

    def write(self, frame: VideoFrame) -> None:
        self.frames_written += 1

    def preview(self, frame: VideoFrame) -> None:
        self.frames_previewed += 1

    def close(self) -> None:
        pass
