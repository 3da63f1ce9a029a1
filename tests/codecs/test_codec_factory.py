"""create_encoder / create_decoder: names, errors, the contract's attributes, lazy imports."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from softphone.codecs import audio_codec_names, create_decoder, create_encoder, parse_fmtp, registry
from softphone.errors import ConfigError
from softphone.frames import AudioFrame
from softphone.sdp.model import parse_fmtp as sdp_parse_fmtp

EXPECTED = {  # name: (sample_rate, rtp_clock_rate)
    "PCMU": (8000, 8000),
    "PCMA": (8000, 8000),
    "G722": (16000, 8000),
    "opus": (48000, 48000),
}


@pytest.mark.parametrize("name", ["pcmu", "PCMU", "Pcma", "g722", "G722", "OPUS", "opus", "PCMU/8000", "opus/48000/2"])
def test_names_are_case_insensitive(name: str) -> None:
    encoder, decoder = create_encoder(name), create_decoder(name)
    assert encoder.name == decoder.name == registry.lookup(name).name


@pytest.mark.parametrize(("name", "rates"), EXPECTED.items())
def test_contract_attributes(name: str, rates: tuple[int, int]) -> None:
    encoder, decoder = create_encoder(name), create_decoder(name)
    assert (encoder.sample_rate, encoder.rtp_clock_rate, encoder.channels) == (*rates, 1)
    assert (decoder.sample_rate, decoder.channels) == (rates[0], 1)
    silence = AudioFrame.silence(encoder.sample_rate // 50, encoder.sample_rate)
    frame = decoder.decode(encoder.encode(silence))
    assert (frame.sample_rate, frame.channels) == (rates[0], 1)
    assert decoder.conceal(frame.samples).samples == frame.samples


def test_unknown_name_lists_the_audio_codecs() -> None:
    for factory in (create_encoder, create_decoder):
        with pytest.raises(ConfigError) as info:
            factory("speex")
        assert info.value.message == "unknown audio codec 'speex'; available: opus, G722, PCMU, PCMA"
        assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="unknown audio codec 'VP8'"):
        create_encoder("VP8")
    assert audio_codec_names() == ["opus", "G722", "PCMU", "PCMA"]


@pytest.mark.parametrize("name", ["telephone-event", "TELEPHONE-EVENT/8000"])
def test_telephone_event_is_not_an_audio_codec(name: str) -> None:
    with pytest.raises(ConfigError, match="'telephone-event' is not an audio codec"):
        create_encoder(name)
    with pytest.raises(ConfigError, match="not an audio codec"):
        create_decoder(name)


def test_every_audio_implementation_path_resolves() -> None:
    import importlib

    for info in registry.AUDIO_CODECS:
        module, _, attr = info.implementation.partition(":")
        assert hasattr(importlib.import_module(module), attr), info.implementation


def test_bad_ptime_is_a_config_error() -> None:
    for ptime in (0, -20):
        with pytest.raises(ConfigError, match="ptime"):
            create_encoder("PCMU", ptime_ms=ptime)
    with pytest.raises(ConfigError, match="ptime"):
        create_encoder("opus", ptime_ms=30)


def test_codecs_read_fmtp_with_the_sdp_parser() -> None:
    assert parse_fmtp is sdp_parse_fmtp


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, softphone.codecs, softphone.codecs.registry, softphone.codecs.dtmf\n"
        "print(','.join(m for m in ('numpy', 'av') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(("name", "budget_ms"), [("PCMU", 0.5), ("PCMA", 0.5), ("G722", 2.0), ("opus", 5.0)])
def test_one_frame_encodes_and_decodes_quickly(name: str, budget_ms: float) -> None:
    encoder, decoder = create_encoder(name), create_decoder(name)
    rate = encoder.sample_rate
    frame = AudioFrame(bytes(range(256)) * (rate // 50 * 2 // 256) + bytes(rate // 50 * 2 % 256), rate)
    payload = encoder.encode(frame)
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        payload = encoder.encode(frame)
        decoder.decode(payload)
    per_frame_ms = (time.perf_counter() - start) / rounds * 1000
    assert per_frame_ms < budget_ms
