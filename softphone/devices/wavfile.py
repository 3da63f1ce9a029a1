"""WAV files as audio devices: ``file: in.wav`` (source) and ``file: out.wav`` (sink).

The source plays a PCM WAV of any rate and channel count, resampled to the asked rate
and mixed down to mono; it loops, like ``pjsua --play-file``, unless the spec ends in
``,once`` (then ``finished`` turns True at the end). The sink records 16-bit PCM at its
own rate; the header is rewritten after every write, so the file stays readable even
if the process dies without closing it.
"""

from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from softphone.errors import ConfigError
from softphone.frames import AudioFrame

log = logging.getLogger(__name__)

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
_FILTER_TAPS_PER_RATIO = 16  # FIR length per unit of the rate ratio: a steeper filter for bigger drops


# --------------------------------------------------------------------------- decoding


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV file as float64 samples in -1..1, shape (frames, channels), and its rate.

    PCM of 8, 16, 24 or 32 bits through the stdlib ``wave`` module; WAVE_FORMAT_EXTENSIBLE
    and IEEE float files (which ``wave`` refuses before Python 3.12) by a small RIFF reader.
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            data = w.readframes(w.getnframes())
        return _decode_pcm(data, width, channels), rate
    except wave.Error:
        return _read_riff(Path(path))


def _decode_pcm(data: bytes, width: int, channels: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        raw = np.frombuffer(data[: len(data) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        x = value.astype(np.float64) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(data, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:
        raise ConfigError(None, None, None, f"unsupported WAV sample width: {width * 8} bits")
    frames = len(x) // channels
    return x[: frames * channels].reshape(frames, channels)


def _read_riff(path: Path) -> tuple[np.ndarray, int]:
    blob = path.read_bytes()
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ConfigError(None, None, None, f"{path}: not a WAV file")
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id, size = blob[pos:pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the SubFormat GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ConfigError(None, None, None, f"{path}: WAV file without fmt or data chunk")
    tag, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise ConfigError(None, None, None, f"{path}: bad WAV format ({channels} channels at {rate} Hz)")
    if tag == _FORMAT_PCM:
        return _decode_pcm(data, bits // 8, channels), rate
    if tag == _FORMAT_FLOAT and bits in (32, 64):
        x = np.frombuffer(data[: len(data) // (bits // 8) * (bits // 8)], dtype=f"<f{bits // 8}")
        frames = len(x) // channels
        return np.clip(x[: frames * channels].astype(np.float64), -1.0, 1.0).reshape(frames, channels), rate
    raise ConfigError(None, None, None, f"{path}: unsupported WAV encoding (format tag {tag:#06x}, {bits} bits)")


# --------------------------------------------------------------------------- resampling


def resample(
    x: npt.NDArray[np.float64], from_rate: int, to_rate: int, antialias: bool = True
) -> npt.NDArray[np.float64]:
    """One channel resampled by linear interpolation, low-pass filtered first when shrinking."""
    if from_rate == to_rate or len(x) == 0:
        return x
    if antialias and to_rate < from_rate:
        x = _lowpass(x, to_rate / from_rate)
    count = int(math.floor(len(x) * to_rate / from_rate))
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    return np.interp(positions, np.arange(len(x)), x)


def _lowpass(x: np.ndarray, ratio: float) -> np.ndarray:
    """A windowed-sinc FIR with its cutoff a little below the new Nyquist frequency."""
    cutoff = 0.45 * ratio  # cycles per input sample
    size = max(31, int(_FILTER_TAPS_PER_RATIO / ratio)) | 1
    n = np.arange(size) - (size - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hanning(size)
    taps /= taps.sum()
    start = (size - 1) // 2
    return np.convolve(x, taps)[start:start + len(x)]


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2")


# --------------------------------------------------------------------------- devices


def _split_options(argument: str) -> tuple[str, bool]:
    """``"in.wav"`` -> (path, loop=True); ``"in.wav,once"`` -> (path, False); ``",loop"`` is accepted too."""
    text = argument.strip()
    head, sep, option = text.rpartition(",")
    if sep and option.strip().lower() in ("once", "loop"):
        return head.strip(), option.strip().lower() == "loop"
    return text, True


class WavFileSource:
    """Plays a WAV file; loops unless opened as ``file: in.wav,once``."""

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        path, self.loop = _split_options(argument)
        if not path:
            raise ConfigError(None, None, None, "the file source needs a path, e.g. 'file: in.wav'")
        self.path = Path(path).expanduser()
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        try:
            samples, file_rate = read_wav(self.path)
        except OSError as exc:
            raise ConfigError(None, None, None, f"cannot read audio file {str(self.path)!r}: {exc.strerror}") from exc
        except (EOFError, ValueError) as exc:
            raise ConfigError(None, None, None, f"cannot read audio file {str(self.path)!r}: {exc}") from exc
        mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
        self._pcm = to_int16(resample(mono, file_rate, sample_rate))
        self._pos = 0
        self._finished = False
        log.info("file source %s: %d Hz x%d, %.2f s, %s", self.path, file_rate, samples.shape[1],
                 len(self._pcm) / sample_rate, "looping" if self.loop else "once")

    @property
    def duration(self) -> float:
        """Length of the file in seconds."""
        return len(self._pcm) / self.sample_rate

    @property
    def finished(self) -> bool:
        return self._finished

    def read(self) -> AudioFrame:
        want = self.frame_samples
        total = len(self._pcm)
        if total == 0 or self._finished:
            self._finished = not self.loop
            return AudioFrame.silence(want, self.sample_rate, self.channels)
        pieces = []
        while want > 0:
            take = self._pcm[self._pos:self._pos + want]
            pieces.append(take)
            want -= len(take)
            self._pos += len(take)
            if self._pos >= total:
                if not self.loop:
                    self._finished = True
                    pieces.append(np.zeros(want, dtype="<i2"))
                    break
                self._pos = 0
        mono = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        if self.channels > 1:
            mono = np.repeat(mono, self.channels)
        return AudioFrame(mono.tobytes(), self.sample_rate, self.channels)

    def close(self) -> None:
        pass


class WavFileSink:
    """Records what is written as a 16-bit PCM WAV at the sink's rate and channel count."""

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        path = argument.strip()
        if not path:
            raise ConfigError(None, None, None, "the file sink needs a path, e.g. 'file: out.wav'")
        self.path = Path(path).expanduser()
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self.frames_written = 0
        self._warned = False
        try:
            # Unbuffered: wave rewrites the header sizes after each write, so what is on
            # disk is a valid WAV at every moment.
            self._file = open(self.path, "wb", buffering=0)
        except OSError as exc:
            raise ConfigError(None, None, None, f"cannot write audio file {str(self.path)!r}: {exc.strerror}") from exc
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._wav.writeframes(b"")  # the header, so that even an empty recording is a WAV

    def write(self, frame: AudioFrame) -> None:
        if self._wav is None:
            return
        pcm = frame.pcm
        if frame.sample_rate != self.sample_rate or frame.channels != self.channels:
            pcm = self._convert(frame)
        self._wav.writeframes(pcm)
        self.frames_written += 1

    def _convert(self, frame: AudioFrame) -> bytes:
        if not self._warned:
            log.warning("file sink %s at %d Hz x%d got a frame at %d Hz x%d; converting", self.path,
                        self.sample_rate, self.channels, frame.sample_rate, frame.channels)
            self._warned = True
        x = np.frombuffer(frame.pcm, dtype="<i2").astype(np.float64) / 32768.0
        mono = x.reshape(-1, frame.channels).mean(axis=1)
        # Frame by frame, so no filter: its edges would click at every frame boundary.
        out = to_int16(resample(mono, frame.sample_rate, self.sample_rate, antialias=False))
        return np.repeat(out, self.channels).tobytes() if self.channels > 1 else out.tobytes()

    def close(self) -> None:
        if self._wav is None:
            return
        try:
            self._wav.close()
        finally:
            self._wav = None
            self._file.close()
