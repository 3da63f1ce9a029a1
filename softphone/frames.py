"""Media frames passed between devices, codecs and the media loops.

Pure data: PCM stays ``bytes`` (signed 16-bit little-endian, interleaved); code that
computes on samples converts with numpy at its own edge.
"""

from __future__ import annotations

from typing import Any

from softphone.frozen import dataclass

BYTES_PER_SAMPLE = 2


@dataclass(frozen=True)
class AudioFrame:
    """A block of 16-bit PCM audio."""

    pcm: bytes
    sample_rate: int
    channels: int = 1

    @property
    def samples(self) -> int:
        """Samples per channel."""
        return len(self.pcm) // (BYTES_PER_SAMPLE * self.channels)

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    @classmethod
    def silence(cls, samples: int, sample_rate: int, channels: int = 1) -> AudioFrame:
        return cls(bytes(samples * channels * BYTES_PER_SAMPLE), sample_rate, channels)


@dataclass(frozen=True)
class VideoFrame:
    """One picture.

    ``image`` is a numpy array of shape (height, width, 3), dtype uint8, BGR (OpenCV's
    layout); this module does not import numpy, it only carries the array.
    """

    image: Any
    pts: float = 0.0  # presentation time, seconds since the stream started
    index: int = 0  # frame number at the source

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
