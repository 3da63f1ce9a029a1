"""Local call-progress sounds: ringback while the peer rings, and the ring of an incoming call."""

from __future__ import annotations

import asyncio
import logging
import time

from softphone.devices import open_audio_sink, open_audio_source
from softphone.devices.registry import parse_device
from softphone.frames import AudioFrame

log = logging.getLogger(__name__)

RATE = 8000
PTIME_MS = 20

# (tone, cadence in seconds: on, off, on, off...)
RINGBACK = ("tone: 440+480,0.25", (2.0, 4.0))  # North American ringback (ITU-T E.180)
RING = ("tone: 440+480,0.35", (0.4, 0.2, 0.4, 2.0))  # a double ring
CONTINUOUS = (1.0,)  # a ring file plays on and on (it loops)


def ring_sound(path: str, builtin: tuple[str, tuple[float, ...]]) -> tuple[str, tuple[float, ...]]:
    """The source and cadence to ring with: the WAV file ``path`` ([sound] local_ring /
    remote_ring) played in a loop, else the built-in tone."""
    return (f"file: {path}", CONTINUOUS) if path else builtin


def plays_sound(sink_spec: str) -> bool:
    """Only a real sound device rings: a file sink records what the peer sends, nothing else."""
    try:
        return parse_device(sink_spec)[0] == "pyaudio"
    except Exception:
        return False


async def play_cadence(sink_spec: str, tone: str, cadence: tuple[float, ...]) -> None:
    """Play ``tone`` (an audio source: ``tone: 440``, ``file: ring.wav``) on ``sink_spec``
    with the on/off ``cadence`` until cancelled."""
    samples = RATE * PTIME_MS // 1000
    try:
        sink = open_audio_sink(sink_spec, sample_rate=RATE, channels=1, frame_samples=samples)
    except Exception as exc:  # no sound card: no ringing, the call goes on
        log.info("no ringing on %r: %s", sink_spec, exc)
        return
    try:
        source = open_audio_source(tone, sample_rate=RATE, channels=1, frame_samples=samples)
    except Exception as exc:  # an unreadable ring file: no ringing, the call goes on
        log.warning("cannot ring with %r: %s", tone, exc)
        sink.close()
        return
    silence = AudioFrame.silence(samples, RATE)
    period = PTIME_MS / 1000
    start = deadline = time.monotonic()
    try:
        while True:
            position = (time.monotonic() - start) % sum(cadence)
            on = True
            for length in cadence:
                if position < length:
                    break
                position -= length
                on = not on
            sink.write(source.read() if on else silence)
            deadline += period
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        source.close()
        sink.close()
