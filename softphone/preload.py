"""What the phone loads ahead of its first call, in an executor thread while it starts.

Importing a codec's or a device's libraries takes long enough (PyAV or numpy about 100 ms)
to delay the first call's audio: both ends heard nothing for 150 ms after the answer when
the phone recorded to a WAV file. Only what the first call will open is loaded: the first
audio codec's module and the audio devices' drivers, so a PCMU phone that plays a tone to
``null:`` never loads PyAV or numpy. Once loaded, the heap that lives as long as the
process is frozen out of the cycle collector's sight.
"""

from __future__ import annotations

import gc
import importlib
import logging

from softphone.codecs import registry
from softphone.config import Config
from softphone.devices import registry as devices
from softphone.errors import ConfigError
from softphone.offer import audio_options_for, codec_specs
from softphone.session import MediaChoice

log = logging.getLogger(__name__)


def media_modules(config: Config, choice: MediaChoice) -> tuple[str, ...]:
    """What the first call will most likely need: the module of the audio codec we put first
    (PyAV only when that is Opus or G.722: a PCMU phone does without its memory), the
    drivers of the audio source and sink it will open, and the synthetic devices (ring and
    ringback tones)."""
    specs = codec_specs("audio", config, choice.audio_codec)
    first = next((spec for spec in specs if not spec.is_telephone_event), None)
    info = registry.find(first.name, first.clock_rate, first.channels) if first is not None else None
    modules = [info.implementation.partition(":")[0]] if info is not None else []
    options = audio_options_for(config, choice)
    for slot, spec in (("audio_source", options.source), ("audio_sink", options.sink)):
        try:
            modules.append(devices.resolve(slot, spec)[2].partition(":")[0])
        except ConfigError:  # reported when the call opens the device
            continue
    modules.append("softphone.devices.synthetic")
    return tuple(dict.fromkeys(modules))


def load(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # reported again, clearly, when a call needs it
            log.debug("cannot preload %s: %s", name, exc)


def settle_heap(_: object) -> None:
    """What exists once the phone is up (modules, codec tables, the config) lives as long as
    the process: ``gc.freeze`` takes it out of the cycle collector's sight, so that a full
    collection under load walks the calls' objects only, not every module's (a pause of
    hundreds of milliseconds with hundreds of calls otherwise).

    A call's objects are freed by reference counting (they form no cycles), so full
    collections are asked for ten times less often: after 100 collections of the middle
    generation instead of 10. The youngest generation keeps its 700 allocations: under load
    many of a pass's objects are still alive (calls, transactions), and a pass over 50,000 of
    them took 20-60 ms."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


GC_THRESHOLDS = (700, 10, 100)
