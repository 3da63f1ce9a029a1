"""SIGTERM and SIGINT (Ctrl-C) end every subcommand cleanly within 2 s.

A call in progress gets its BYE or CANCEL, registrations are removed (Expires 0), the
process exits with its normal code and prints its summary as its last JSON line, and
nothing is dumped on stderr. "Within 2 s" runs from the signal to the process's exit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

EXIT_WITHIN = 2.0
# what an unclean exit leaves on stderr
UNCLEAN = ("Traceback", "Task was destroyed", "exception was never retrieved", "Exception ignored")
SIGNALS = [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGINT, id="sigint")]
LOOPBACK = ["--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0"]


def interrupt(process: Any, sig: signal.Signals, *peers: Any) -> int:
    """Send `sig` to `process`; its exit code once it has exited cleanly within EXIT_WITHIN."""
    started = time.monotonic()
    os.kill(process.pid, sig)
    try:
        code = process.proc.wait(EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        code = None
    elapsed = time.monotonic() - started
    where = "\n".join([process.describe(), *(peer.describe() for peer in peers)])
    assert code is not None, f"still running {EXIT_WITHIN} s after {sig.name}\n{where}"
    process.wait(5)  # collects the rest of its output
    command = next(a for a in process.args if a in ("call", "answer", "register", "demo"))
    print(f"{command}: exit {code} {elapsed:.3f} s after {sig.name}")
    for marker in UNCLEAN:
        assert marker not in process.stderr, f"{marker!r} on stderr after {sig.name}\n{where}"
    return int(code)


def summary_last(process: Any) -> dict[str, Any]:
    """The final JSON summary, which must be the last event printed."""
    assert process.events and process.events[-1]["event"] == "summary", process.describe()
    return dict(process.events[-1])


def answerer(softphone: Any, *extra: str) -> tuple[Any, str]:
    process = softphone(*LOOPBACK, "answer", "--auto", *extra)
    return process, f"sip:alice@127.0.0.1:{process.port('udp')}"


def caller(softphone: Any, uri: str, *extra: str) -> Any:
    return softphone(*LOOPBACK, "call", uri, *extra)


def received(uas: Any, method: str) -> list[str]:
    """The `method` requests in a sipp -trace_msg log, each as its text."""
    blocks = re.split(r"^-{20,}.*$", uas.messages, flags=re.MULTILINE)
    requests = [b.split("\n\n", 1)[-1].strip() for b in blocks if "message received" in b]
    return [r for r in requests if r.startswith(f"{method} ")]


def wait_received(uas: Any, method: str, timeout: float = 2.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while not (found := received(uas, method)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", SIGNALS)
def test_ringing_call_is_cancelled(softphone: Any, sipp: Any, sig: signal.Signals) -> None:
    uas = sipp("uas_ring_until_cancel.xml", None, "-t", "u1", "-m", 1, timeout=20)
    call = caller(softphone, f"sip:service@127.0.0.1:{uas.local_port}", "--no-video")
    call.wait_event("state", timeout=10, state="ringing")

    assert interrupt(call, sig, uas) == 0
    summary = summary_last(call)
    assert summary["result"] == "cancelled" and summary["sip_code"] == 487, summary
    assert uas.wait(10) == 0, uas.describe()  # CANCEL, 200, 487 and the ACK: the call completed
    assert len(received(uas, "CANCEL")) == 1, uas.describe()


@pytest.mark.timeout(30)
def test_call_whose_bye_is_never_answered(softphone: Any, sipp: Any) -> None:
    """The peer ignores the BYE: the caller gives up waiting and still exits in time."""
    uas = sipp("uas_bye_unanswered.xml", None, "-t", "u1", "-m", 1, timeout=20)
    call = caller(softphone, f"sip:service@127.0.0.1:{uas.local_port}", "--no-video")
    call.wait_event("state", timeout=10, state="confirmed")

    assert interrupt(call, signal.SIGTERM, uas) == 0
    summary = summary_last(call)
    assert summary["result"] == "completed" and "bye" in summary["timeline"], summary
    assert wait_received(uas, "BYE"), uas.describe()


@pytest.mark.timeout(30)
def test_caller_interrupted_hangs_up(softphone: Any) -> None:
    callee, uri = answerer(softphone, "--once")
    call = caller(softphone, uri)
    call.wait_event("state", timeout=10, state="confirmed")
    callee.wait_event("state", timeout=5, state="confirmed")

    assert interrupt(call, signal.SIGINT, callee) == 0
    summary = summary_last(call)
    assert summary["result"] == "completed" and summary["cause"] == "local_hangup", summary
    end = callee.wait_event("call_end", timeout=5)
    assert end["result"] == "completed" and end["cause"] == "remote_hangup", end
    assert end["call_id"] == summary["call_id"]
    assert callee.wait(5) == 0, callee.describe()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", SIGNALS)
def test_answerer_interrupted_hangs_up(softphone: Any, sig: signal.Signals) -> None:
    callee, uri = answerer(softphone)
    call = caller(softphone, uri)
    call.wait_event("state", timeout=10, state="confirmed")
    callee.wait_event("state", timeout=5, state="confirmed")

    assert interrupt(callee, sig, call) == 0
    (end,) = summary_last(callee)["calls"]
    assert end["result"] == "completed" and end["cause"] == "local_hangup", end
    assert call.wait(5) == 0, call.describe()
    summary = summary_last(call)
    assert summary["result"] == "completed" and summary["cause"] == "remote_hangup", summary


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", SIGNALS)
def test_registration_is_removed(softphone: Any, sipp: Any, tmp_path: Path, sig: signal.Signals) -> None:
    registrar = sipp("uas_registrar.xml", None, "-t", "u1", "-m", 1, "-key", "expires", 60, timeout=20)
    config = tmp_path / "softphone.ini"
    config.write_text(
        "[sip]\ncontact=sip:alice@127.0.0.1\n"
        f"[proxy_0]\nreg_proxy=<sip:127.0.0.1:{registrar.local_port};transport=udp>\n"
        "reg_identity=sip:alice@127.0.0.1\nreg_expires=60\nreg_sendregister=1\n"
    )
    process = softphone("-c", config, *LOOPBACK, "register")
    event = process.wait_event("registration", timeout=10, state="registered")
    assert event["expires"] == 60, event

    assert interrupt(process, sig, registrar) == 0
    (registration,) = summary_last(process)["registrations"]
    assert registration["state"] == "unregistered", registration
    assert registrar.wait(5) == 0, registrar.describe()  # both REGISTERs answered
    first, last = received(registrar, "REGISTER")
    assert not re.search(r"^Expires: *0\s*$|;expires=0\b", first, re.MULTILINE | re.IGNORECASE), first
    assert re.search(r"^Expires: *0\s*$|;expires=0\b", last, re.MULTILINE | re.IGNORECASE), last


@pytest.mark.timeout(30)
@pytest.mark.parametrize("moment", ["listening", "confirmed"])
@pytest.mark.parametrize("sig", SIGNALS)
def test_demo_interrupted(softphone: Any, sig: signal.Signals, moment: str) -> None:
    """Just started, and during its call (which ends completed: BYE answered)."""
    demo = softphone("demo")
    if moment == "listening":
        demo.wait_event("listening", timeout=10)
    else:
        demo.wait_event("state", timeout=10, state=moment)

    assert interrupt(demo, sig) in (0, 130)
    summary = summary_last(demo)
    if moment == "confirmed":
        assert summary["result"] == "completed" and "bye" in summary["timeline"], summary
