"""G.711: bit-exact with the ITU-T reference, framing, and loss concealment."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from softphone.codecs import CodecError, create_decoder, create_encoder
from softphone.codecs.g711 import (
    ALAW_DECODE,
    ALAW_ENCODE,
    ULAW_DECODE,
    ULAW_ENCODE,
    RepeatFadeConcealer,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

ALL_SAMPLES = range(-32768, 32768)


# --- the ITU-T G.191 STL g711.c reference, one sample at a time ------------------------


def _not16(value: int) -> int:
    """C's ``~`` on a short: one's complement."""
    return -value - 1


def ref_ulaw_compress(sample: int) -> int:
    if sample < 0:
        absno = (_not16(sample) >> 2) + 33  # one's complement for negative samples
    else:
        absno = (sample >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x0080
    return code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = _not16(code)
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(sample: int) -> int:
    ix = _not16(sample) >> 4 if sample < 0 else sample >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x0055) & 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


# --- Sun Microsystems' g711.c (13/14-bit version), for comparison ------------------------

SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _search(value: int, table: tuple[int, ...]) -> int:
    for i, end in enumerate(table):
        if value <= end:
            return i
    return len(table)


def sun_linear2alaw(pcm_val: int) -> int:
    pcm_val >>= 3
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = _search(pcm_val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm_val >> 1) & 0xF if seg < 2 else (pcm_val >> seg) & 0xF
    return aval ^ mask


def sun_alaw2linear(a_val: int) -> int:
    a_val ^= 0x55
    t = (a_val & 0xF) << 4
    seg = (a_val & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if a_val & 0x80 else -t


def sun_linear2ulaw(pcm_val: int) -> int:
    pcm_val >>= 2
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    pcm_val = min(pcm_val, 8159) + (0x84 >> 2)
    seg = _search(pcm_val, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask


def sun_ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & 0xF) << 3) + 0x84
    t <<= (u_val & 0x70) >> 4
    return 0x84 - t if u_val & 0x80 else t - 0x84


def _pcm(samples: range | list[int]) -> bytes:
    return np.array(list(samples), dtype="<i2").tobytes()


EVERY_SAMPLE_PCM = _pcm(ALL_SAMPLES)
EVERY_CODE = bytes(range(256))


# --- bit exactness ------------------------------------------------------------------------


def test_ulaw_encoder_matches_the_itu_reference_for_all_65536_inputs() -> None:
    expected = bytes(ref_ulaw_compress(s) for s in ALL_SAMPLES)
    assert ulaw_encode(EVERY_SAMPLE_PCM) == expected


def test_alaw_encoder_matches_the_itu_reference_for_all_65536_inputs() -> None:
    expected = bytes(ref_alaw_compress(s) for s in ALL_SAMPLES)
    assert alaw_encode(EVERY_SAMPLE_PCM) == expected


def test_ulaw_decoder_matches_the_itu_reference_for_all_256_codes() -> None:
    expected = [ref_ulaw_expand(c) for c in range(256)]
    assert np.frombuffer(ulaw_decode(EVERY_CODE), dtype="<i2").tolist() == expected
    assert [sun_ulaw2linear(c) for c in range(256)] == expected


def test_alaw_decoder_matches_the_itu_reference_for_all_256_codes() -> None:
    expected = [ref_alaw_expand(c) for c in range(256)]
    assert np.frombuffer(alaw_decode(EVERY_CODE), dtype="<i2").tolist() == expected
    assert [sun_alaw2linear(c) for c in range(256)] == expected


def test_alaw_encoder_also_matches_sun_g711c() -> None:
    assert alaw_encode(EVERY_SAMPLE_PCM) == bytes(sun_linear2alaw(s) for s in ALL_SAMPLES)


def test_sun_ulaw_encoder_differs_only_by_rounding_some_negative_inputs() -> None:
    """Sun's linear2ulaw truncates negative samples in two's complement, the ITU in one's."""
    ours = np.frombuffer(ulaw_encode(EVERY_SAMPLE_PCM), dtype=np.uint8)
    sun = np.array([sun_linear2ulaw(s) for s in ALL_SAMPLES], dtype=np.uint8)
    differ = np.nonzero(ours != sun)[0] - 32768
    assert 0 < len(differ) < 1024
    assert differ.max() < 0
    assert np.all(np.abs(ours[differ + 32768].astype(int) - sun[differ + 32768]) == 1)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_published_encodings(sample: int, ulaw: int, alaw: int) -> None:
    assert ulaw_encode(_pcm([sample])) == bytes([ulaw])
    assert alaw_encode(_pcm([sample])) == bytes([alaw])


@pytest.mark.parametrize(
    ("code", "table", "value"),
    [(0xFF, "u", 0), (0x7F, "u", 0), (0x80, "u", 32124), (0x00, "u", -32124),
     (0xD5, "a", 8), (0x55, "a", -8), (0xAA, "a", 32256), (0x2A, "a", -32256)],
)
def test_published_decodings(code: int, table: str, value: int) -> None:
    decoded = ulaw_decode(bytes([code])) if table == "u" else alaw_decode(bytes([code]))
    assert np.frombuffer(decoded, dtype="<i2")[0] == value


def test_tables_have_the_expected_shapes() -> None:
    assert len(ULAW_ENCODE) == len(ALAW_ENCODE) == 65536
    assert len(ULAW_DECODE) == len(ALAW_DECODE) == 256
    # Decoding then re-encoding every code is the identity (each code's value is inside its interval),
    # except μ-law's negative zero 0x7F which decodes to 0 and comes back as the positive zero 0xFF.
    assert ulaw_encode(ulaw_decode(EVERY_CODE)) == EVERY_CODE.replace(b"\x7f", b"\xff")
    assert alaw_encode(alaw_decode(EVERY_CODE)) == EVERY_CODE


# --- the encoder and decoder objects ----------------------------------------------------


def _sine(freq: float, samples: int, rate: int = 8000, amplitude: float = 0.5, start: int = 0) -> np.ndarray:
    t = (start + np.arange(samples)) / rate
    return np.rint(np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2")


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
@pytest.mark.parametrize(("ptime", "size"), [(20, 160), (10, 80), (30, 240)])
def test_one_byte_per_sample(name: str, ptime: int, size: int) -> None:
    encoder = create_encoder(name, ptime_ms=ptime)
    assert (encoder.sample_rate, encoder.channels, encoder.rtp_clock_rate) == (8000, 1, 8000)
    payload = encoder.encode(AudioFrame(_sine(440, size).tobytes(), 8000))
    assert len(payload) == size
    frame = create_decoder(name).decode(payload)
    assert (frame.samples, frame.sample_rate, frame.channels) == (size, 8000, 1)


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_round_trip_snr(name: str) -> None:
    encoder, decoder = create_encoder(name), create_decoder(name)
    x = _sine(1000, 8000, amplitude=0.3)
    y = np.concatenate([
        np.frombuffer(decoder.decode(encoder.encode(AudioFrame(x[i : i + 160].tobytes(), 8000))).pcm, dtype="<i2")
        for i in range(0, 8000, 160)
    ]).astype(float)
    noise = np.sum((x - y) ** 2)
    assert 10 * np.log10(np.sum(x.astype(float) ** 2) / noise) > 33


@pytest.mark.parametrize(
    "frame",
    [
        AudioFrame(bytes(318), 8000),
        AudioFrame(bytes(320), 16000),
        AudioFrame(bytes(640), 8000, 2),
        AudioFrame(bytes(321), 8000),
    ],
)
def test_encoder_rejects_a_frame_of_the_wrong_shape(frame: AudioFrame) -> None:
    with pytest.raises(CodecError):
        create_encoder("PCMU").encode(frame)


def test_ptime_that_is_no_whole_number_of_samples() -> None:
    with pytest.raises(ConfigError):
        create_encoder("PCMA", ptime_ms=0)
    assert create_encoder("PCMA", ptime_ms=5).encode(AudioFrame(bytes(80), 8000)) == b"\xd5" * 40


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_empty_payload_is_a_codec_error(name: str) -> None:
    with pytest.raises(CodecError):
        create_decoder(name).decode(b"")
    assert issubclass(CodecError, ValueError)


# --- concealment ------------------------------------------------------------------------


def _rms(frame: AudioFrame) -> float:
    samples = np.frombuffer(frame.pcm, dtype="<i2").astype(float)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_concealment_fades_out_then_is_silent(name: str) -> None:
    encoder, decoder = create_encoder(name), create_decoder(name)
    for i in range(5):
        last = decoder.decode(encoder.encode(AudioFrame(_sine(440, 160, start=160 * i).tobytes(), 8000)))
    concealed = [decoder.conceal(160) for _ in range(5)]
    assert all(f.samples == 160 and f.sample_rate == 8000 for f in concealed)
    levels = [_rms(f) for f in concealed]
    assert levels[0] > 0.5 * _rms(last)
    assert levels[0] > levels[1] > levels[2] > 0
    assert levels[3] == levels[4] == 0
    assert decoder.conceal(240).samples == 240


def test_concealment_continues_a_tone_without_a_click() -> None:
    encoder, decoder = create_encoder("PCMU"), create_decoder("PCMU")
    decoded = [decoder.decode(encoder.encode(AudioFrame(_sine(440, 160, start=160 * i).tobytes(), 8000)))
               for i in range(3)]
    concealed = decoder.conceal(160)
    joined = np.frombuffer(decoded[-1].pcm + concealed.pcm, dtype="<i2").astype(float)
    smooth = 0.5 * 32767 * 2 * np.pi * 440 / 8000
    assert np.abs(np.diff(joined)).max() < 1.2 * smooth


def test_concealment_before_any_audio_is_silence_and_decoding_resets_the_fade() -> None:
    decoder = create_decoder("PCMA")
    assert decoder.conceal(160).pcm == bytes(320)
    encoder = create_encoder("PCMA")
    for _ in range(5):
        decoder.conceal(160)
    decoder.decode(encoder.encode(AudioFrame(_sine(440, 160).tobytes(), 8000)))
    assert _rms(decoder.conceal(160)) > 1000


def test_concealer_at_16_khz_keeps_the_length() -> None:
    concealer = RepeatFadeConcealer(16000)
    concealer.remember(_sine(300, 320, rate=16000).tobytes())
    out = concealer.conceal(500)
    assert len(out) == 1000 and np.abs(np.frombuffer(out, dtype="<i2")).max() > 1000


def test_a_g711_call_without_losses_does_not_load_numpy() -> None:
    """G.711 is plain Python: numpy (about 15 MiB) is loaded only to conceal a lost frame."""
    code = (
        "import sys\n"
        "from softphone.codecs import create_decoder, create_encoder\n"
        "from softphone.frames import AudioFrame\n"
        "for name in ('PCMU', 'PCMA'):\n"
        "    frame = AudioFrame(bytes(range(256)) * 1 + bytes(64), 8000)\n"
        "    payload = create_encoder(name).encode(frame)\n"
        "    create_decoder(name).decode(payload)\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded'\n"
        "decoder = create_decoder('PCMU')\n"
        "decoder.decode(payload)\n"
        "decoder.conceal(160)\n"
        "assert 'numpy' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_many_encoders_at_once_move_to_numpy_with_the_same_codes() -> None:
    """From VECTOR_AT live encoders on, numpy's vectorised lookup encodes, bit for bit the same."""
    code = (
        "import sys, time\n"
        "from softphone.codecs import create_encoder, g711\n"
        "every = b''.join(s.to_bytes(2, 'little', signed=True) for s in range(-32768, 32768))\n"
        "plain = (g711.ulaw_encode(every), g711.alaw_encode(every))\n"
        "assert 'numpy' not in sys.modules and not g711._VECTOR\n"
        "encoders = [create_encoder('PCMU') for _ in range(g711.VECTOR_AT)]\n"
        "deadline = time.monotonic() + 30\n"
        "while len(g711._VECTOR) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "assert len(g711._VECTOR) == 2, 'numpy not loaded'\n"
        "assert (g711.ulaw_encode(every), g711.alaw_encode(every)) == plain\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
