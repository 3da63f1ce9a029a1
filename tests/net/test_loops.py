"""[misc] event_loop: the loop the phone runs on (auto: uvloop when installed, else asyncio)."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from softphone.errors import ConfigError
from softphone.net.loops import run


async def loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.parametrize(("event_loop", "module"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_named_loop_runs_the_phone(event_loop, module):
    assert run(loop_module(), event_loop).partition(".")[0] == module


def test_without_uvloop_auto_falls_back_and_uvloop_names_the_key(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed: import fails
    assert run(loop_module(), "auto").startswith("asyncio")
    main = loop_module()
    with pytest.raises(ConfigError) as error:
        run(main, "uvloop", "phone.rc")
    assert str(error.value).startswith("phone.rc [misc] event_loop: uvloop is not installed")
    assert main.cr_frame is None  # closed, not left to warn that it was never awaited


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("caller_loop", "answerer_loop"), [("uvloop", "asyncio"), ("asyncio", "uvloop")])
def test_a_call_between_the_two_loops_carries_steady_audio(softphone, tmp_path, caller_loop, answerer_loop):
    """The media timestamps come from the monotonic clock, not uvloop's loop time, which is read
    once per loop iteration in whole milliseconds: with it, packets 20 ms apart arrived exactly
    20 ms apart and loopback jitter read 0.0 ms (with video, 8 ms: stale times after an encode)."""
    rcs = {}
    for name, loop in (("caller", caller_loop), ("answerer", answerer_loop)):
        rcs[name] = tmp_path / f"{name}.rc"
        rcs[name].write_text(f"[misc]\nevent_loop={loop}\n")
    answerer = softphone("-vv", "-c", str(rcs["answerer"]), "--bind", "127.0.0.1", "--sip-port", "0",
                         "--rtp-port", "0", "answer", "--auto", "--once", "--audio-codec", "PCMU",
                         "--audio-source", "tone: 880", "--audio-sink", "null:")
    caller = softphone("-vv", "-c", str(rcs["caller"]), "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                       "call", f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "3", "--no-video",
                       "--audio-codec", "PCMU", "--audio-source", "tone: 440", "--audio-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    assert answerer.wait(15) == 0, answerer.describe()
    for phone, loop in ((caller, caller_loop), (answerer, answerer_loop)):
        assert f"event loop: {loop}" in phone.stderr, phone.describe()
    ends = [caller.summary["audio"], answerer.summary["calls"][0]["audio"]]
    for audio in ends:
        assert audio["rx_packets"] >= 140 and audio["lost"] == 0, json.dumps(ends)
        assert audio["jitter_ms"] > 0, json.dumps(ends)  # microseconds of loopback jitter, not a quantized 0
