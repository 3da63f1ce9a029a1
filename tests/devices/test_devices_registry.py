"""Device names: ``driver: device`` parsing, the driver tables, and opening by name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from softphone.devices import AudioSink, AudioSource, open_audio_sink, open_audio_source, registry
from softphone.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pyaudio: default", ("pyaudio", "default")),
        ("pyaudio:default", ("pyaudio", "default")),
        ("  tone:   440  ", ("tone", "440")),
        ("tone:440", ("tone", "440")),
        ("tone: 350+440,0.3", ("tone", "350+440,0.3")),
        ("null:", ("null", "")),
        ("null", ("null", "")),
        ("PyAudio: pulse", ("pyaudio", "pulse")),
        ("file: C:/sounds/in.wav", ("file", "C:/sounds/in.wav")),
        ("file: rec/a b.wav,once", ("file", "rec/a b.wav,once")),
    ],
)
def test_parse_device(spec: str, expected: tuple[str, str]) -> None:
    assert registry.parse_device(spec) == expected


@pytest.mark.parametrize("spec", ["", "   ", ":440", " : x", "to ne: 440", "9tone: 1", "tone 440", "a/b: c"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        registry.parse_device(spec)


def test_resolve_gives_driver_device_and_implementation() -> None:
    assert registry.resolve("audio_source", "tone: 440") == ("tone", "440", "softphone.devices.synthetic:ToneSource")
    assert registry.resolve("audio_sink", "pyaudio: default") == (
        "pyaudio", "default", "softphone.devices.audio_pyaudio:PyAudioSink")
    assert registry.resolve("audio_source", "null:")[2] == "softphone.devices.synthetic:SilenceSource"
    assert registry.resolve("audio_sink", "null:")[2] == "softphone.devices.synthetic:NullSink"


def test_unknown_source_driver_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        registry.resolve("audio_source", "x: 1")
    assert str(err.value) == "unknown audio source driver 'x'; available: file, null, pyaudio, silence, tone"


def test_unknown_sink_driver_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        open_audio_sink("tone: 440", sample_rate=8000, frame_samples=160)
    assert "unknown audio sink driver 'tone'; available: file, null, pyaudio" in str(err.value)
    assert err.value.exit_code == 2


def test_unknown_slot_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="slot"):
        registry.resolve("smell_source", "tone: 440")


def test_every_implementation_path_names_a_class() -> None:
    for _, table in registry.SLOTS.values():
        for target in table.values():
            module, sep, cls = target.partition(":")
            assert sep and module.startswith("softphone.devices.") and cls[:1].isupper(), target
    assert registry.drivers("audio_sink") == ["file", "null", "pyaudio"]


def test_opened_devices_follow_the_protocols() -> None:
    source = open_audio_source("tone: 440", sample_rate=8000, frame_samples=160)
    sink = open_audio_sink("null:", sample_rate=8000, frame_samples=160)
    assert isinstance(source, AudioSource) and isinstance(sink, AudioSink)
    assert (source.sample_rate, source.channels, source.frame_samples) == (8000, 1, 160)
    sink.write(source.read())
    source.close()
    sink.close()


def test_bad_format_is_refused() -> None:
    with pytest.raises(ValueError):
        open_audio_source("tone: 440", sample_rate=8000, frame_samples=0)


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, softphone.devices, softphone.devices.registry; "
        "print(sorted(m for m in ('numpy', 'pyaudio', 'av', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_module_is_pure() -> None:
    tree = ast.parse(Path(registry.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"numpy", "pyaudio", "threading", "time", "asyncio", "socket", "av", "cv2"}
