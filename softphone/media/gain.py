"""Gain on 16-bit PCM: [sound] mic_gain_db on what we send, playback_gain_db on what we play."""

from __future__ import annotations

from softphone.frames import AudioFrame


def gain_factor(db: float) -> float:
    """The amplitude factor of a gain in dB: +6 dB about doubles, -20 dB is a tenth."""
    return float(10.0 ** (db / 20.0))


def apply_gain(frame: AudioFrame, db: float) -> AudioFrame:
    """``frame`` with its samples scaled by ``db`` decibels, clipped to the 16-bit range."""
    if db == 0.0 or not frame.pcm:
        return frame
    import numpy as np  # lazily: importing the media package must not load numpy

    samples = np.frombuffer(frame.pcm, dtype="<i2").astype(np.float32) * gain_factor(db)
    pcm = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
    return AudioFrame(pcm, frame.sample_rate, frame.channels)
