"""G.711 μ-law (PCMU) and A-law (PCMA) with lookup tables, in plain Python.

The tables are computed once, at import, from the ITU-T reference algorithm (the
ITU-T G.191 Software Tool Library ``g711.c``: ``ulaw_compress``/``ulaw_expand``,
``alaw_compress``/``alaw_expand``), so encoding is bit-exact with it: a 65536-byte
table indexed by the 16-bit sample's bit pattern, and a 256-entry table per law for
decoding. Encoding maps each sample through its table and decoding is two
``bytes.translate`` calls (low and high byte): no numpy, so a G.711 call does not load
it (about 15 MiB of memory). With many calls at once, encoding moves to numpy's take.

Also here: :class:`RepeatFadeConcealer`, the loss concealment shared by the
sample-based codecs (G.711, G.722); it loads numpy when a frame is first lost.
"""

from __future__ import annotations

import sys
import threading
import weakref
from array import array
from typing import TYPE_CHECKING, Any

from softphone.codecs import CodecError
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 8000
#: encoding table: the uint16 bit pattern of a sample -> its code
EncodeTable = bytes
#: decoding table: a code -> its int16 sample
DecodeTable = tuple[int, ...]
_LITTLE_ENDIAN = sys.byteorder == "little"


def _ulaw_code(absno: int) -> int:
    """ulaw_compress for a biased 14-bit magnitude, sign bit not set."""
    absno = min(absno, 0x1FFF)
    segno = 1 + (absno >> 6).bit_length()
    return ((8 - segno) << 4) | (0xF - ((absno >> segno) & 0xF))


def _alaw_code(ix: int) -> int:
    """alaw_compress for a 11-bit magnitude, sign bit not set and before the 0x55 toggle."""
    exponent = max(ix.bit_length() - 4, 0)
    return (ix >> max(exponent - 1, 0)) - 16 + (exponent << 4) if exponent > 0 else ix


def _encode_table(code: list[int], shift: int, toggle: int) -> EncodeTable:
    """The 65536-byte table from the codes of the magnitudes ``m >> shift``: a positive sample
    uses its magnitude, a negative one its one's complement (``~x``), as the reference does."""
    width = 1 << shift
    by_magnitude = bytearray(len(code) * width)  # 32768 entries: each code ``width`` times
    for offset in range(width):
        by_magnitude[offset::width] = bytes(code)
    positive = bytes(by_magnitude).translate(_SIGNED[toggle])
    negative = bytes(by_magnitude).translate(_XOR[toggle])[::-1]  # uint16 32768.. is x = -32768.., ~x = 32767..
    return positive + negative


_XOR = {mask: bytes(b ^ mask for b in range(256)) for mask in (0x00, 0x55)}
_SIGNED = {mask: bytes((b | 0x80) ^ mask for b in range(256)) for mask in (0x00, 0x55)}


def _ulaw_expand(code: int) -> int:
    inverted = ~code
    exponent = (inverted >> 4) & 0x7
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * (inverted & 0xF) + step // 2 - 4 * 33
    return magnitude if code >= 0x80 else -magnitude


def _alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    exponent, mantissa = ix >> 4, ix & 0xF
    if exponent > 0:
        mantissa += 16
    mantissa = (mantissa << 4) + 8
    if exponent > 1:
        mantissa <<= exponent - 1
    return mantissa if code > 127 else -mantissa


ULAW_ENCODE: EncodeTable = _encode_table([_ulaw_code(m + 33) for m in range(8192)], 2, 0x00)
ALAW_ENCODE: EncodeTable = _encode_table([_alaw_code(m) for m in range(2048)], 4, 0x55)
ULAW_DECODE: DecodeTable = tuple(_ulaw_expand(c) for c in range(256))
ALAW_DECODE: DecodeTable = tuple(_alaw_expand(c) for c in range(256))


def _byte_tables(table: DecodeTable) -> tuple[bytes, bytes]:
    """The low and the high byte of each code's 16-bit sample, for ``bytes.translate``."""
    return bytes(v & 0xFF for v in table), bytes((v >> 8) & 0xFF for v in table)


_ULAW_BYTES = _byte_tables(ULAW_DECODE)
_ALAW_BYTES = _byte_tables(ALAW_DECODE)


def _encode(table: EncodeTable, pcm: bytes) -> bytes:
    vector = _VECTOR.get(id(table))
    if vector is not None:  # numpy's take: a quarter of the plain loop's time, once loaded
        np, indexed = vector
        return bytes(indexed.take(np.frombuffer(pcm, dtype="<u2")).tobytes())
    samples = memoryview(pcm).cast("H") if _LITTLE_ENDIAN else _swapped(pcm)
    return bytes(map(table.__getitem__, samples))


# Many calls at once: from VECTOR_AT live encoders on, numpy is loaded (in a thread of its own,
# not to stall the loop) and encoding goes through its vectorised lookup; a phone with a few
# calls never pays its memory (about 15 MiB).
VECTOR_AT = 8
_VECTOR: dict[int, tuple[Any, Any]] = {}  # id(table) -> (numpy, the table as a numpy array)
_live = 0
_loading = False


def _encoder_opened() -> None:
    global _live, _loading
    _live += 1
    if _live >= VECTOR_AT and not _VECTOR and not _loading:
        _loading = True
        threading.Thread(target=_load_numpy, name="g711-numpy", daemon=True).start()


def _encoder_closed() -> None:
    global _live
    _live -= 1


def _load_numpy() -> None:
    try:
        import numpy as np
    except ImportError:  # the plain loop stays
        return
    for table in (ULAW_ENCODE, ALAW_ENCODE):
        _VECTOR[id(table)] = (np, np.frombuffer(table, dtype=np.uint8))


def _swapped(pcm: bytes) -> array[int]:
    samples = array("H", pcm)
    samples.byteswap()
    return samples


def _decode(tables: tuple[bytes, bytes], payload: bytes) -> bytes:
    low, high = tables
    out = bytearray(2 * len(payload))
    out[0::2] = payload.translate(low)
    out[1::2] = payload.translate(high)
    return bytes(out)


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> μ-law bytes."""
    return _encode(ULAW_ENCODE, pcm)


def ulaw_decode(payload: bytes) -> bytes:
    """μ-law bytes -> 16-bit little-endian PCM."""
    return _decode(_ULAW_BYTES, payload)


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> A-law bytes."""
    return _encode(ALAW_ENCODE, pcm)


def alaw_decode(payload: bytes) -> bytes:
    """A-law bytes -> 16-bit little-endian PCM."""
    return _decode(_ALAW_BYTES, payload)


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
        self._history = b""  # 16-bit little-endian PCM, the last 2 * _max_period samples
        self._samples: np.ndarray | None = None  # the history as floats, once a frame is lost
        self._period = 0
        self._phase = 0
        self._losses = 0

    def remember(self, pcm: bytes) -> None:
        """Keep the tail of a decoded frame (16-bit little-endian PCM) as the source for concealment."""
        keep = 4 * self._max_period  # bytes
        self._history = (self._history + pcm)[-keep:] if len(pcm) < keep else pcm[-keep:]
        self._samples = None
        self._losses = 0
        self._period = 0

    def conceal(self, samples: int) -> bytes:
        """``samples`` samples (16-bit little-endian PCM) to play in place of a lost frame."""
        self._losses += 1
        if self._losses > self.FADE_FRAMES or len(self._history) < 2 * self._min_period:
            return bytes(2 * samples)
        import numpy as np  # lazily: a call without losses never loads it

        if self._samples is None:
            self._samples = np.frombuffer(self._history, dtype="<i2").astype(np.float64)
        if self._period == 0:
            self._period = self._find_period(self._samples)
            self._phase = 0
        period = self._samples[-self._period :]
        index = (self._phase + np.arange(samples)) % self._period
        self._phase = (self._phase + samples) % self._period
        start = 0.5 ** (self._losses - 1)
        end = 0.0 if self._losses == self.FADE_FRAMES else start / 2
        gain = np.linspace(start, end, samples, endpoint=False)
        return bytes(np.clip(np.rint(period[index] * gain), -32768, 32767).astype("<i2").tobytes())

    def _find_period(self, history: np.ndarray) -> int:
        import numpy as np

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
        _encoder_opened()
        weakref.finalize(self, _encoder_closed)

    def encode(self, frame: AudioFrame) -> bytes:
        check_frame(frame, SAMPLE_RATE, self.frame_samples)
        return _encode(self._table, frame.pcm)


class G711Decoder:
    """G.711 payloads -> 8 kHz PCM; losses hidden by :class:`RepeatFadeConcealer`."""

    sample_rate = SAMPLE_RATE
    channels = 1

    def __init__(self, name: str, table: DecodeTable) -> None:
        self.name = name
        known = {id(ULAW_DECODE): _ULAW_BYTES, id(ALAW_DECODE): _ALAW_BYTES}
        self._bytes = known.get(id(table)) or _byte_tables(table)
        self._concealer = RepeatFadeConcealer(SAMPLE_RATE)

    def decode(self, payload: bytes) -> AudioFrame:
        if not payload:
            raise CodecError(f"empty {self.name} payload")
        pcm = _decode(self._bytes, payload)
        self._concealer.remember(pcm)
        return AudioFrame(pcm, SAMPLE_RATE)

    def conceal(self, samples: int) -> AudioFrame:
        return AudioFrame(self._concealer.conceal(samples), SAMPLE_RATE)


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
