"""G.711 μ-law (PCMU) and A-law (PCMA), vectorised with numpy lookup tables.

The tables are computed once, at import, from the ITU-T reference algorithm (the
ITU-T G.191 Software Tool Library ``g711.c``: ``ulaw_compress``/``ulaw_expand``,
``alaw_compress``/``alaw_expand``), so encoding is bit-exact with it: a 65536-entry
table indexed by the 16-bit sample, and a 256-entry table per law for decoding.

Also here: :class:`RepeatFadeConcealer`, the loss concealment shared by the
sample-based codecs (G.711, G.722).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from softphone.codecs import CodecError
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

SAMPLE_RATE = 8000
#: encoding table: the uint16 bit pattern of a sample -> its code
EncodeTable = npt.NDArray[np.uint8]
#: decoding table: a code -> its int16 sample
DecodeTable = npt.NDArray[np.int16]
_POWERS_OF_TWO = 1 << np.arange(16)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """``int.bit_length`` for an array of non-negative integers below 2**16."""
    return np.searchsorted(_POWERS_OF_TWO, values, side="right")


def _all_int16() -> np.ndarray:
    return np.arange(-32768, 32768, dtype=np.int32)


def _by_uint16(codes: np.ndarray) -> EncodeTable:
    """Reorder a table over -32768..32767 so that the sample's uint16 bit pattern indexes it."""
    table = np.empty(65536, dtype=np.uint8)
    table[_all_int16() & 0xFFFF] = codes
    return table


def _ulaw_encode_table() -> EncodeTable:
    x = _all_int16()
    # 14-bit magnitude; one's complement for negative samples; 33 is the μ-law bias.
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = 1 + _bit_length(absno >> 6)
    high_nibble = 8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    codes = (high_nibble << 4) | low_nibble
    codes = np.where(x >= 0, codes | 0x80, codes)
    return _by_uint16(codes)


def _ulaw_decode_table() -> DecodeTable:
    code = np.arange(256, dtype=np.int32)
    sign = np.where(code < 0x80, -1, 1)
    inverted = ~code
    exponent = (inverted >> 4) & 0x7
    mantissa = inverted & 0xF
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    table: DecodeTable = (sign * magnitude).astype(np.int16)
    return table


def _alaw_encode_table() -> EncodeTable:
    x = _all_int16()
    ix = np.where(x < 0, (~x) >> 4, x >> 4)  # 0 <= ix < 2048, one's complement for negatives
    exponent = np.maximum(_bit_length(ix) - 4, 0)
    shifted = ix >> np.maximum(exponent - 1, 0)
    codes = np.where(exponent > 0, (shifted - 16) + (exponent << 4), ix)
    codes = np.where(x >= 0, codes | 0x80, codes)
    return _by_uint16(codes ^ 0x55)


def _alaw_decode_table() -> DecodeTable:
    code = np.arange(256, dtype=np.int32)
    ix = (code ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0xF
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 8
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(code > 127, mantissa, -mantissa).astype(np.int16)


ULAW_ENCODE = _ulaw_encode_table()
ULAW_DECODE = _ulaw_decode_table()
ALAW_ENCODE = _alaw_encode_table()
ALAW_DECODE = _alaw_decode_table()


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> μ-law bytes."""
    return ULAW_ENCODE.take(np.frombuffer(pcm, dtype="<u2")).tobytes()


def ulaw_decode(payload: bytes) -> bytes:
    """μ-law bytes -> 16-bit little-endian PCM."""
    return ULAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8)).astype("<i2", copy=False).tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> A-law bytes."""
    return ALAW_ENCODE.take(np.frombuffer(pcm, dtype="<u2")).tobytes()


def alaw_decode(payload: bytes) -> bytes:
    """A-law bytes -> 16-bit little-endian PCM."""
    return ALAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8)).astype("<i2", copy=False).tobytes()


class RepeatFadeConcealer:
    """Hides lost frames by repeating the last pitch period, fading out.

    Each concealed frame continues the last decoded audio cyclically with the period
    that best matches its tail (2.5-15 ms, found by normalised correlation), so a
    voiced or tonal signal goes on without a click. The gain ramps down smoothly by
    6 dB over the first and second lost frames and to zero over the third; later
    losses are silence. A decoded frame (:meth:`remember`) resets it.
    """

    FADE_FRAMES = 3

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._min_period = max(2, sample_rate // 400)  # 2.5 ms
        self._max_period = sample_rate * 15 // 1000  # 15 ms
        self._history = np.zeros(0, dtype=np.float64)
        self._period = 0
        self._phase = 0
        self._losses = 0

    def remember(self, pcm: np.ndarray) -> None:
        """Keep the tail of a decoded frame (int16 samples) as the source for concealment."""
        keep = 2 * self._max_period
        self._history = np.concatenate([self._history, pcm.astype(np.float64)])[-keep:]
        self._losses = 0
        self._period = 0

    def conceal(self, samples: int) -> np.ndarray:
        """``samples`` int16 samples to play in place of a lost frame."""
        self._losses += 1
        if self._losses > self.FADE_FRAMES or len(self._history) < self._min_period:
            return np.zeros(samples, dtype=np.int16)
        if self._period == 0:
            self._period = self._find_period()
            self._phase = 0
        period = self._history[-self._period :]
        index = (self._phase + np.arange(samples)) % self._period
        self._phase = (self._phase + samples) % self._period
        start = 0.5 ** (self._losses - 1)
        end = 0.0 if self._losses == self.FADE_FRAMES else start / 2
        gain = np.linspace(start, end, samples, endpoint=False)
        return np.clip(np.rint(period[index] * gain), -32768, 32767).astype(np.int16)

    def _find_period(self) -> int:
        history = self._history
        longest = min(self._max_period, len(history) // 2)
        if longest <= self._min_period:
            return len(history)
        window = self._min_period
        tail = history[-window:]
        best, best_score = longest, -np.inf
        for period in range(self._min_period, longest + 1):
            candidate = history[-window - period : -period]
            norm = np.sqrt(np.dot(candidate, candidate) * np.dot(tail, tail))
            score = np.dot(candidate, tail) / norm if norm > 0 else 0.0
            if score > best_score + 1e-9:
                best, best_score = period, score
        return best


def check_frame(frame: AudioFrame, sample_rate: int, samples: int) -> None:
    """CodecError unless ``frame`` is one ptime of mono PCM at ``sample_rate``."""
    if frame.sample_rate != sample_rate or frame.channels != 1:
        raise CodecError(
            f"expected mono PCM at {sample_rate} Hz, got {frame.channels} channel(s) at {frame.sample_rate} Hz"
        )
    if frame.samples != samples or len(frame.pcm) != 2 * samples:
        raise CodecError(f"expected {samples} samples per frame, got {len(frame.pcm) / 2:g}")


class G711Encoder:
    """One ptime of 8 kHz PCM -> one G.711 payload (one byte per sample)."""

    sample_rate = SAMPLE_RATE
    channels = 1
    rtp_clock_rate = SAMPLE_RATE

    def __init__(self, name: str, table: EncodeTable, ptime_ms: int = 20) -> None:
        if SAMPLE_RATE * ptime_ms % 1000:
            raise ConfigError(None, None, None, f"{name} cannot use ptime {ptime_ms} ms")
        self.name = name
        self.ptime_ms = ptime_ms
        self.frame_samples = SAMPLE_RATE * ptime_ms // 1000
        self._table = table

    def encode(self, frame: AudioFrame) -> bytes:
        check_frame(frame, SAMPLE_RATE, self.frame_samples)
        return self._table.take(np.frombuffer(frame.pcm, dtype="<u2")).tobytes()


class G711Decoder:
    """G.711 payloads -> 8 kHz PCM; losses hidden by :class:`RepeatFadeConcealer`."""

    sample_rate = SAMPLE_RATE
    channels = 1

    def __init__(self, name: str, table: DecodeTable) -> None:
        self.name = name
        self._table = table
        self._concealer = RepeatFadeConcealer(SAMPLE_RATE)

    def decode(self, payload: bytes) -> AudioFrame:
        if not payload:
            raise CodecError(f"empty {self.name} payload")
        pcm = self._table.take(np.frombuffer(payload, dtype=np.uint8))
        self._concealer.remember(pcm)
        return AudioFrame(pcm.astype("<i2", copy=False).tobytes(), SAMPLE_RATE)

    def conceal(self, samples: int) -> AudioFrame:
        pcm = self._concealer.conceal(samples)
        return AudioFrame(pcm.astype("<i2", copy=False).tobytes(), SAMPLE_RATE)


class PcmuCodec:
    """PCMU (RFC 3551 §4.5.14): the registry's implementation entry."""

    @classmethod
    def encoder(cls, *, ptime_ms: int = 20, fmtp: str | None = None, bitrate: int | None = None) -> G711Encoder:
        return G711Encoder("PCMU", ULAW_ENCODE, ptime_ms)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> G711Decoder:
        return G711Decoder("PCMU", ULAW_DECODE)


class PcmaCodec:
    """PCMA (RFC 3551 §4.5.14): the registry's implementation entry."""

    @classmethod
    def encoder(cls, *, ptime_ms: int = 20, fmtp: str | None = None, bitrate: int | None = None) -> G711Encoder:
        return G711Encoder("PCMA", ALAW_ENCODE, ptime_ms)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> G711Decoder:
        return G711Decoder("PCMA", ALAW_DECODE)
