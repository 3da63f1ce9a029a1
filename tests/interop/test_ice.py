"""ICE (RFC 8445) end to end: softphone to softphone on loopback (host pair) and behind two NATs
with coturn as STUN and TURN server outside (server-reflexive pair; relayed pair when direct UDP
between the NATs is blocked)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

MEDIA = ("--audio-source", "tone: 440", "--audio-sink", "null:", "--no-video")
AV_MEDIA = ("--audio-source", "tone: 440", "--audio-sink", "null:", "--video-source", "pattern:",
            "--video-sink", "null:")


def ice_rc(tmp_path: Path, name: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.rc"
    path.write_text(f"[net]\nfirewall_policy=ice\n{extra}")
    return path


def assert_media_over_ice(summary: dict[str, Any], pair_type: str, kinds: tuple[str, ...] = ("audio",)) -> None:
    assert summary["result"] == "completed", summary
    for kind in kinds:
        stream = summary[kind]
        assert stream["rx_packets"] > 0 and stream["tx_packets"] > 0, (kind, stream)
        ice = stream.get("ice")
        assert ice is not None, f"{kind} did not run over ICE: {stream}"
        assert ice["type"] == pair_type, (kind, ice)


@pytest.mark.timeout(60)
def test_softphone_to_softphone_over_ice_on_loopback(softphone: Any, tmp_path: Path) -> None:
    callee = softphone("-c", ice_rc(tmp_path, "callee"), "--bind", "127.0.0.1", "--sip-port", "0",
                       "answer", "--auto", "--once", *AV_MEDIA)
    port = callee.port("udp")
    caller = softphone("-c", ice_rc(tmp_path, "caller"), "--bind", "127.0.0.1", "--sip-port", "0",
                       "call", f"sip:bob@127.0.0.1:{port}", "--duration", "3", *AV_MEDIA)
    assert caller.wait(40) == 0, caller.describe()
    assert callee.wait(20) == 0, callee.describe()
    (end,) = callee.summary["calls"]
    for side in (caller.summary, end):
        assert_media_over_ice(side, "host", ("audio", "video"))
        assert side["audio"]["ice"]["local"].startswith("127.0.0.1:"), side["audio"]
        assert side["audio"]["ice"]["remote"].startswith("127.0.0.1:"), side["audio"]


@pytest.mark.timeout(60)
def test_ice_caller_and_a_peer_without_ice_use_plain_rtp(softphone: Any, tmp_path: Path) -> None:
    callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "answer", "--auto", "--once", *MEDIA)
    port = callee.port("udp")
    caller = softphone("-c", ice_rc(tmp_path, "caller"), "--bind", "127.0.0.1", "--sip-port", "0",
                       "call", f"sip:bob@127.0.0.1:{port}", "--duration", "2", *MEDIA)
    assert caller.wait(40) == 0, caller.describe()
    assert callee.wait(20) == 0, callee.describe()
    (end,) = callee.summary["calls"]
    assert "ice" not in end["audio"], end["audio"]  # the peer without ICE runs as it always did
    for side in (caller.summary, end):
        assert side["audio"]["rx_packets"] > 0 and side["audio"]["tx_packets"] > 0, side["audio"]
    assert caller.summary["audio"]["ice"]["type"] == "host", caller.summary["audio"]


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """coturn as STUN and TURN server on loopback (long-term credentials alice/turnpw), stopped by PID."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("coturn is not installed (apt-get install -y coturn)")
    port = free_port("udp")
    process = subprocess.Popen(
        [binary, "-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--user", "alice:turnpw", "--realm", "softphone.test", "--lt-cred-mech",
         "--allow-loopback-peers", "--min-port=49152", "--max-port=65535", f"--pidfile={tmp_path / 'turn.pid'}",
         "--log-file=stdout", "--simple-log"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    break  # coturn holds the port: it is listening
            time.sleep(0.1)
        if process.poll() is not None:
            pytest.fail(f"turnserver exited: {process.stdout.read() if process.stdout else ''}")
        yield "127.0.0.1", port
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.mark.timeout(90)
def test_stun_and_turn_candidates_from_coturn(softphone: Any, tmp_path: Path, coturn: tuple[str, int]) -> None:
    host, port = coturn
    servers = (f"stun_server={host}:{port}\nturn_server={host}:{port}\n"
               "turn_username=alice\nturn_password=turnpw\n")
    callee = softphone("-c", ice_rc(tmp_path, "callee", servers), "--bind", "127.0.0.1", "--sip-port", "0",
                       "answer", "--auto", "--once", *MEDIA)
    sip_port = callee.port("udp")
    caller = softphone("-vv", "-c", ice_rc(tmp_path, "caller", servers), "--bind", "127.0.0.1", "--sip-port", "0",
                       "call", f"sip:bob@127.0.0.1:{sip_port}", "--duration", "2", *MEDIA)
    assert caller.wait(60) == 0, caller.describe()
    assert callee.wait(20) == 0, callee.describe()
    offer = caller.stderr.split("INVITE sip:", 1)[1]
    # the offer carries a server-reflexive candidate (coturn's STUN answer) and a relayed one
    # (a TURN allocation with the long-term credentials), and c= holds the relayed default candidate
    assert " typ srflx raddr 127.0.0.1 " in offer, offer
    assert " typ relay raddr 127.0.0.1 " in offer, offer
    assert "a=rtcp-mux" in offer and "a=ice-ufrag:" in offer and "a=ice-pwd:" in offer, offer
    (end,) = callee.summary["calls"]
    for side in (caller.summary, end):
        assert side["audio"]["rx_packets"] > 0 and side["audio"]["tx_packets"] > 0, side["audio"]
        assert side["audio"]["ice"]["type"] in ("host", "srflx", "relay"), side["audio"]
