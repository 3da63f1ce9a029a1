"""What a phone loads ahead of its first call: the first audio codec's module and the drivers
of the audio devices that call opens, so that opening them does not hold the first call's audio."""

from __future__ import annotations

import subprocess
import sys

import pytest

from softphone.config import loads
from softphone.preload import media_modules
from softphone.session import MediaChoice


def test_the_first_codec_and_the_audio_device_drivers_are_loaded_ahead():
    config = loads("[sound]\ncapture_dev_id=file: in.wav\nplayback_dev_id=pyaudio: default\n")
    modules = media_modules(config, MediaChoice(audio_codec="opus"))
    assert modules == ("softphone.codecs.audio_av", "softphone.devices.wavfile",
                       "softphone.devices.audio_pyaudio", "softphone.devices.synthetic")


def test_the_call_s_own_devices_come_before_the_config_s():
    config = loads("[sound]\ncapture_dev_id=file: in.wav\nplayback_dev_id=file: out.wav\n")
    choice = MediaChoice(audio_codec="PCMU", audio_source="tone: 440", audio_sink="null:")
    assert media_modules(config, choice) == ("softphone.codecs.g711", "softphone.devices.synthetic")


def test_an_unknown_driver_is_left_for_the_call_to_report():
    config = loads("[sound]\ncapture_dev_id=tone: 440\n")
    choice = MediaChoice(audio_codec="PCMU", audio_sink="nosuchdriver: x")
    assert media_modules(config, choice) == ("softphone.codecs.g711", "softphone.devices.synthetic")


@pytest.mark.parametrize(("sink", "loaded"), [
    ("null:", "[False, False, False, False]"),  # a PCMU phone playing a tone to nothing needs neither
    ("file: out.wav", "[True, False, False, True]"),  # a WAV sink: numpy, before the call
])
def test_only_what_the_first_call_opens_is_loaded(sink, loaded):
    code = (
        "import sys\n"
        "from softphone.config import loads\n"
        "from softphone.preload import load, media_modules\n"
        "from softphone.session import MediaChoice\n"
        f"config = loads('[sound]\\ncapture_dev_id=tone: 440\\nplayback_dev_id={sink}\\n')\n"
        "load(media_modules(config, MediaChoice(audio_codec='PCMU')))\n"
        "assert 'softphone.devices.synthetic' in sys.modules and 'softphone.codecs.g711' in sys.modules\n"
        "print([m in sys.modules for m in ('numpy', 'av', 'pyaudio', 'softphone.devices.wavfile')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == loaded, out.stderr
