"""The softphone calls itself over real loopback sockets: IPv4 and IPv6, UDP and TCP."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

import pytest

TRANSPORTS = [
    pytest.param(("127.0.0.1", "udp"), id="ipv4-udp"),
    pytest.param(("127.0.0.1", "tcp"), id="ipv4-tcp"),
    pytest.param(("::1", "udp"), id="ipv6-udp"),
    pytest.param(("::1", "tcp"), id="ipv6-tcp"),
]


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def uri_for(host: str, port: int, transport: str = "udp", user: str = "alice") -> str:
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"sip:{user}@{hostport}" + (";transport=tcp" if transport == "tcp" else "")


def answerer(softphone: Any, host: str, *extra: str) -> Any:
    process = softphone("-vv", "--bind", host, "--sip-port", "0", "answer", *extra)
    process.port("udp")
    return process


def caller(softphone: Any, host: str, uri: str, *extra: str) -> Any:
    return softphone("--bind", host, "--sip-port", "0", "call", uri, *extra)


def only_call(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The one call_end an answer-side summary must hold."""
    assert summary is not None, "the answerer printed no summary"
    calls = summary["calls"]
    assert len(calls) == 1, f"expected one call in the answerer's summary: {summary}"
    return calls[0]


def assert_sent_over(process: Any, transport: str) -> None:
    """-vv prints SIP messages: the INVITE must have arrived over the expected transport."""
    marker = f"SIP/2.0/{transport.upper()}"
    assert marker in process.stderr, (
        f"no {marker} Via in the -vv trace:\n{process.stderr[-3000:]}"
    )


def remote_host(remote: str) -> str:
    """The address part of a stream's ``remote`` ("127.0.0.1:4000", "[::1]:4000")."""
    if remote.startswith("["):
        return remote[1:].split("]", 1)[0]
    host, _, port = remote.rpartition(":")
    return host if port.isdigit() and host.count(":") != 1 else remote


def sigterm(process: Any) -> None:
    os.kill(process.pid, signal.SIGTERM)


@pytest.fixture(params=TRANSPORTS)
def route(request: pytest.FixtureRequest) -> tuple[str, str]:
    host, transport = request.param
    if ":" in host and not _ipv6_loopback_works():
        if os.environ.get("CI"):
            pytest.fail("IPv6 loopback (::1) is not available")
        pytest.skip("IPv6 loopback (::1) is not available on this host")
    return host, transport


@pytest.mark.timeout(60)
def test_caller_hangs_up(softphone: Any, route: tuple[str, str]) -> None:
    host, transport = route
    callee = answerer(softphone, host, "--auto", "--once")
    port = callee.port(transport)
    call = caller(softphone, host, uri_for(host, port, transport), "--duration", "1")

    call.wait_event("state", timeout=15, state="confirmed")
    callee.wait_event("state", timeout=15, state="confirmed")

    assert call.wait(timeout=20) == 0, call.stderr
    assert callee.wait(timeout=20) == 0, callee.stderr

    summary = call.summary
    assert summary is not None, "the caller printed no summary"
    assert summary["result"] == "completed", summary
    assert summary["sip_code"] == 200, summary
    for event in ("invite_sent", "answered", "ack", "bye"):
        assert event in summary["timeline"], (
            f"timeline lacks {event}: {summary['timeline']}"
        )
    timeline = summary["timeline"]
    assert timeline["invite_sent"] <= timeline["answered"] <= timeline["bye"]
    assert all(at == round(at, 6) for at in timeline.values()), timeline  # seconds to the microsecond
    assert timeline["bye"] - timeline["answered"] >= 0.9, (
        f"--duration 1 not honoured: {timeline}"
    )

    end = only_call(callee.summary)
    assert end["result"] == "completed", end
    assert end["call_id"] == summary["call_id"]
    assert callee.summary["answered"] == 1

    assert remote_host(summary["audio"]["remote"]) == host, summary["audio"]
    assert remote_host(end["audio"]["remote"]) == host, end["audio"]
    assert_sent_over(callee, transport)


@pytest.mark.timeout(60)
def test_caller_stopped_by_sigterm_hangs_up(
    softphone: Any, route: tuple[str, str]
) -> None:
    host, transport = route
    callee = answerer(softphone, host, "--auto", "--once")
    call = caller(softphone, host, uri_for(host, callee.port(transport), transport))

    call.wait_event("state", timeout=15, state="confirmed")
    callee.wait_event("state", timeout=15, state="confirmed")
    sigterm(call)

    assert call.wait(timeout=15) == 0, call.stderr
    assert call.summary is not None and call.summary["result"] == "completed", (
        call.summary
    )
    assert "bye" in call.summary["timeline"], call.summary
    # The answerer saw the BYE: its call ended normally and, with --once, it exits 0.
    callee.wait_event("call_end", timeout=10)
    assert callee.wait(timeout=15) == 0, callee.stderr
    end = only_call(callee.summary)
    assert end["result"] == "completed", end


@pytest.mark.timeout(60)
def test_callee_hangs_up(softphone: Any, route: tuple[str, str]) -> None:
    """The answerer stopped by SIGTERM hangs up its call; the caller ends on that BYE."""
    host, transport = route
    callee = answerer(softphone, host, "--auto")
    call = caller(softphone, host, uri_for(host, callee.port(transport), transport))

    call.wait_event("state", timeout=15, state="confirmed")
    callee.wait_event("state", timeout=15, state="confirmed")
    sigterm(callee)

    assert call.wait(timeout=15) == 0, call.stderr
    summary = call.summary
    assert summary is not None and summary["result"] == "completed", summary
    assert callee.wait(timeout=15) == 0, callee.stderr
    assert only_call(callee.summary)["result"] == "completed"


@pytest.mark.timeout(60)
def test_cancel_before_answer(softphone: Any, route: tuple[str, str]) -> None:
    host, transport = route
    callee = answerer(softphone, host, "--auto", "--delay", "5", "--once")
    call = caller(softphone, host, uri_for(host, callee.port(transport), transport))

    call.wait_event("state", timeout=15, state="ringing")
    callee.wait_event("incoming", timeout=5)
    started = time.monotonic()
    sigterm(call)

    assert call.wait(timeout=15) == 0, call.stderr
    summary = call.summary
    assert summary is not None and summary["result"] == "cancelled", summary
    assert summary["sip_code"] == 487, summary

    end = callee.wait_event("call_end", timeout=10)
    assert time.monotonic() - started < 4, (
        "the answerer did not see the CANCEL before --delay"
    )
    assert end["result"] == "cancelled", end
    assert end["sip_code"] == 487, end
    assert callee.wait(timeout=15) == 0, callee.stderr
    assert callee.summary is not None and callee.summary["answered"] == 0, (
        callee.summary
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("code", [486, 404, 603])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_rejected(softphone: Any, code: int, transport: str) -> None:
    host = "127.0.0.1"
    callee = answerer(softphone, host, "--reject", str(code), "--once")
    call = caller(softphone, host, uri_for(host, callee.port(transport), transport))

    assert call.wait(timeout=15) == 4, call.stderr
    summary = call.summary
    assert summary is not None, "the caller printed no summary"
    assert summary["result"] == "rejected", summary
    assert summary["sip_code"] == code, summary
    assert summary["timeline"].get("answered") is None, summary
    end = callee.wait_event("call_end", timeout=10)
    assert end["sip_code"] == code, end


@pytest.mark.timeout(30)
def test_no_answer_times_out(softphone: Any) -> None:
    """Timer B: a peer that never replies ends the call after 64*T1 with exit 6."""
    t1 = 0.050
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        call = softphone(
            "--t1-ms",
            "50",
            "--bind",
            "127.0.0.1",
            "--sip-port",
            "0",
            "call",
            f"sip:x@127.0.0.1:{port}",
        )
        code = call.wait(timeout=20)
        elapsed = time.monotonic() - started

        datagrams = []
        silent.setblocking(False)
        while True:
            try:
                datagrams.append(silent.recv(70_000))
            except BlockingIOError:
                break

    assert code == 6, f"exit {code}; stderr:\n{call.stderr}"
    assert elapsed < 10, f"took {elapsed:.1f} s to give up"
    assert elapsed >= 64 * t1 * 0.9, (
        f"gave up after {elapsed:.2f} s, before Timer B (64*T1)"
    )
    summary = call.summary
    assert summary is not None and summary["result"] == "timeout", summary

    invites = [d for d in datagrams if d.startswith(b"INVITE ")]
    assert len(invites) >= 3, (
        f"expected INVITE retransmissions (Timer A), got {len(invites)}"
    )
    branches = {_via_branch(d) for d in invites}
    assert len(branches) == 1, f"retransmissions must reuse the branch: {branches}"


def _via_branch(datagram: bytes) -> str:
    for line in datagram.split(b"\r\n"):
        if line.lower().startswith((b"via:", b"v:")):
            for param in line.split(b";"):
                if param.strip().startswith(b"branch="):
                    return param.strip()[7:].decode()
    return ""


@pytest.mark.timeout(30)
def test_tcp_connection_refused_is_a_transport_error(softphone: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        call = caller(softphone, "127.0.0.1", uri_for("127.0.0.1", port, "tcp"))
        code = call.wait(timeout=20)
    assert code == 3, f"exit {code}; stderr:\n{call.stderr}"
    assert call.summary is not None and call.summary["result"] == "error", call.summary


@pytest.mark.timeout(60)
def test_in_call_timeout_hangs_up(softphone: Any, tmp_path: Any) -> None:
    """[sip] in_call_timeout: the answerer hangs up a call that has lasted that long."""
    config = tmp_path / "short.rc"
    config.write_text("[sip]\nin_call_timeout=2\n")
    callee = softphone("-c", str(config), "--bind", "127.0.0.1", "--sip-port", "0", "answer", "--auto", "--once",
                       "--no-video")
    call = caller(softphone, "127.0.0.1", uri_for("127.0.0.1", callee.port("udp")), "--no-video")

    assert call.wait(timeout=20) == 0, call.stderr
    summary = call.summary
    assert summary is not None and summary["result"] == "completed", summary
    assert summary["cause"] == "remote_hangup", summary
    assert callee.wait(timeout=15) == 0, callee.stderr
    end = only_call(callee.summary)
    assert end["cause"] == "in_call_timeout" and end["result"] == "completed", end
    timeline = end["timeline"]
    assert timeline["bye"] - timeline["ack"] >= 2.0, timeline
