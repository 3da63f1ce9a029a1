"""The call-setup benchmark: its wire clock (INVITE->200 from the kernel's timestamps on lo) and its CPU pinning."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))

from wire import WireClock


def message(first_line: str, call_id: str, cseq: str) -> bytes:
    return (f"{first_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{call_id}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()


def test_first_invite_and_first_200_to_it_per_call() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("a packet socket needs root, and CI is set", pytrace=False)
        pytest.skip("a packet socket needs root")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as answerer:
        caller.bind(("127.0.0.1", 0))
        answerer.bind(("127.0.0.1", 0))
        to_answerer, to_caller = answerer.getsockname(), caller.getsockname()
        with WireClock(to_answerer[1]) as clock:
            invite = message("INVITE sip:a@127.0.0.1 SIP/2.0", "c1", "1 INVITE")
            caller.sendto(invite, to_answerer)
            time.sleep(0.05)
            caller.sendto(invite, to_answerer)  # a copy: the first counts
            answerer.sendto(message("SIP/2.0 180 Ringing", "c1", "1 INVITE"), to_caller)
            answerer.sendto(message("SIP/2.0 200 OK", "c1", "1 INVITE"), to_caller)
            answerer.sendto(message("SIP/2.0 200 OK", "c1", "1 INVITE"), to_caller)  # a copy
            caller.sendto(message("BYE sip:a@127.0.0.1 SIP/2.0", "c1", "2 BYE"), to_answerer)
            answerer.sendto(message("SIP/2.0 200 OK", "c1", "2 BYE"), to_caller)  # not to the INVITE
            caller.sendto(message("INVITE sip:a@127.0.0.1 SIP/2.0", "c2", "1 INVITE"), to_answerer)  # unanswered
            caller.sendto(message("INVITE sip:a@127.0.0.1 SIP/2.0", "c3", "1 INVITE"), to_caller)  # elsewhere
    assert set(clock.invites) == {b"c1", b"c2"} and set(clock.answers) == {b"c1"}
    (setup_ms,) = clock.setup_ms()
    assert setup_ms >= 50  # from the first INVITE, sent 50 ms before its copy


def test_call_setup_pin_keeps_a_process_and_its_threads_on_one_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import call_setup

    cpu = max(os.sched_getaffinity(0))
    monkeypatch.setitem(call_setup.PIN, "answerer", cpu)
    script = ("import os, threading; t = threading.Thread(target=lambda: print(sorted(os.sched_getaffinity(0))));"
              "t.start(); t.join(); print(sorted(os.sched_getaffinity(0)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          preexec_fn=call_setup.pinned("answerer"), check=True)
    assert done.stdout.split("\n")[:2] == [f"[{cpu}]", f"[{cpu}]"], done.stdout
    assert call_setup.pinned("sipp") is None  # not pinned: the scheduler's choice


def test_call_setup_splits_the_timing_run_into_blocks() -> None:
    import call_setup

    assert call_setup.blocks(200, 4) == [50, 50, 50, 50]
    assert call_setup.blocks(10, 4) == [3, 3, 2, 2]
    assert call_setup.blocks(3, 4) == [1, 1, 1]
    assert call_setup.blocks(5, 0) == [5]


def test_call_setup_stops_the_peer_that_waits_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    import call_setup

    def state(pid: int) -> str:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    def settles(pid: int, wanted: str) -> bool:
        deadline = time.monotonic() + 5
        while state(pid) != wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        return state(pid) == wanted

    monkeypatch.setattr(call_setup, "RESUME_SETTLE_S", 0.0)
    peer = call_setup.Answerer()
    peer.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        call_setup.pause(peer, True)
        assert settles(peer.proc.pid, "T")
        with call_setup.measured(peer):
            assert settles(peer.proc.pid, "R")
        assert settles(peer.proc.pid, "T")
        call_setup.pause(peer, False)
        assert call_setup.stop_pid(peer.proc) is not None
    finally:
        peer.proc.kill()
        peer.proc.wait(5)
