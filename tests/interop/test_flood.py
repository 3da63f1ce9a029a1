"""Floods against a live `softphone answer --auto`: SIPp at its highest rate from one
address does not keep an allowed caller on another address from getting through, and a
burst of OPTIONS leaves the phone's memory bounded (softphone.guard)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

FLOOD_RATE = 5000  # INVITEs a second asked of SIPp: more than it and the phone can carry here


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def answerer(softphone, *extra: str):
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", *extra)
    return sp, sp.port("udp")


def options_answered(sipp, port: int, host: str) -> bool:
    ping = sipp("options_ping.xml", f"127.0.0.1:{port}", "-m", 1, "-recv_timeout", 5000, host=host, timeout=15)
    return ping.wait(25) == 0 and ping.stats().get("SuccessfulCall(C)") == 1


@pytest.mark.timeout(150)
def test_an_invite_flood_from_one_address_does_not_stop_an_allowed_caller(softphone, sipp):
    sp, port = answerer(softphone, "--allow", "*@127.0.0.3*", "--max-calls", "30")
    flood = sipp("flood_invite.xml", f"127.0.0.1:{port}", "-r", FLOOD_RATE, "-rp", 1000, "-l", 100000,
                 host="127.0.0.2", timeout=60, trace_msg=False)
    time.sleep(1.0)  # the flood is on before the first call
    assert flood.running(), flood.describe()
    caller = sipp("uac", f"127.0.0.1:{port}", "-m", 20, "-r", 4, "-d", 100, "-recv_timeout", 20000,
                  host="127.0.0.3", timeout=90)
    rc = caller.wait(100)
    flooding = flood.running()
    flood.stop()
    sent = flood.stats().get("OutgoingCall(C)", 0)
    where = f"\n{caller.describe()}\n--- flood:\n{flood.describe()}\n{sp.describe()}"
    assert flooding, "the flood ended before the calls did" + where
    assert isinstance(sent, int) and sent > 2000, "the flood was not a flood" + where
    assert rc == 0, f"sipp exit {rc}: not every allowed call was set up" + where
    assert caller.stats().get("SuccessfulCall(C)") == 20, "not every allowed call was set up" + where
    assert sp.running(), "softphone exited during the flood" + where
    assert "503 to 127.0.0.2" in sp.stderr, "the flooder was never told 503" + where
    assert "503 to 127.0.0.3" not in sp.stderr, "the allowed caller was limited" + where
    assert sp.stop() == 0, sp.describe()
    summary = sp.summary
    assert summary is not None and summary.get("answered") == 20, sp.describe()


@pytest.mark.timeout(90)
def test_a_burst_of_2000_options_leaves_memory_bounded(softphone, sipp):
    sp, port = answerer(softphone)
    assert options_answered(sipp, port, "127.0.0.3"), sp.describe()
    time.sleep(0.5)
    before = rss_kib(sp.pid)
    burst = sipp("flood_options.xml", f"127.0.0.1:{port}", "-m", 2000, "-r", 2000, "-rp", 1000,
                 host="127.0.0.2", timeout=30, trace_msg=False)
    assert burst.wait(40) == 0, burst.describe()
    assert options_answered(sipp, port, "127.0.0.3"), "no answer after the burst\n" + sp.describe()
    grown = rss_kib(sp.pid) - before
    # without the limits each burst of 2000 OPTIONS held about 12 MB of transactions for 32 s
    assert grown < 4 * 1024, f"RSS grew by {grown} KiB\n{sp.describe()}"
    assert "503 to 127.0.0.2" in sp.stderr, sp.describe()
    assert sp.running(), sp.describe()


@pytest.mark.timeout(90)
def test_calls_over_the_limit_are_refused_with_503_and_the_rest_set_up(softphone, sipp, tmp_path):
    """The load benchmark's scenario (uac_av.xml) tells a call refused at once with 503
    (ACKed, logged SHED) from one answered (logged SETUP): a phone allowing 3 requests and
    then one a second from one address refuses the fourth of a quick burst (30 ms after the
    first), drops the next ones while its Retry-After runs, and sets up those SIPp
    retransmits as its tokens come back."""
    rc = tmp_path / "tight.rc"
    rc.write_text("[sip]\nmax_requests_per_second=1\nrequest_burst=3\n")
    sp, port = answerer(softphone, "-c", str(rc))
    calls = 8
    uac = sipp("uac_av.xml", f"127.0.0.1:{port}", "-m", calls, "-r", 100, "-d", 100,
               "-recv_timeout", 40000, host="127.0.0.2", timeout=60)
    code = uac.wait(75)
    where = f"\n{uac.describe()}\n{sp.describe()}"
    logs = uac.logs
    shed, answered = logs.count("SHED call="), logs.count("SETUP call=")
    assert code == 0, f"sipp exit {code}" + where
    assert shed >= 1, "no call was refused with 503" + where
    assert answered >= 3, "the burst the limit allows was not set up" + where
    assert shed + answered == calls == uac.stats().get("SuccessfulCall(C)"), where
    assert "503 to 127.0.0.2" in sp.stderr, where
