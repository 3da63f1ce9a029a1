"""firewall_policy=stun behind a real NAT: the phone asks coturn outside for the public mapping of
its RTP and RTCP sockets and puts it in its SDP, without ICE.

    public  10.0.0.1   coturn (STUN), and the callee (a softphone answering, [rtp] symmetric=0)
       |  veth
    router  10.0.0.2 | 192.168.77.1   forwards, masquerades what leaves by its 10.0.0.2 side
       |  veth
    home    192.168.77.2              our softphone, firewall_policy=stun, calling

The callee does not follow where RTP comes from (symmetric=0): it sends to the SDP address only,
so audio reaches the home phone only if that SDP carries the router's mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.coturn import TurnServer, coturn
from tests.interop.netns import PUBLIC_IP, ROUTER_OUT, build_one_nat, network

pytestmark = [pytest.mark.netns, pytest.mark.interop]

STUN_PORT = 3478
AUDIO = ("--audio-source", "tone: 440", "--audio-sink", "null:")


@pytest.fixture
def nat() -> Iterator[tuple[str, str, str]]:
    """(public, router, home) namespaces, named with this process's PID; deleted at the end."""
    with network(build_one_nat) as names:
        yield names


@pytest.fixture
def public_stun(nat: tuple[str, str, str], tmp_path: Path) -> Iterator[TurnServer]:
    with coturn(PUBLIC_IP, STUN_PORT, tmp_path, netns=nat[0]) as server:
        yield server


@pytest.mark.timeout(120)
def test_a_phone_behind_nat_with_firewall_policy_stun_calls_out_with_its_public_address(
    softphone: Any, nat: tuple[str, str, str], public_stun: TurnServer, tmp_path: Path
) -> None:
    public, _, home = nat
    callee_rc = tmp_path / "callee.rc"
    callee_rc.write_text("[rtp]\nsymmetric=0\n")
    callee = softphone("-c", callee_rc, "--bind", PUBLIC_IP, "--sip-port", "0", "--rtp-port", "0",
                       "answer", "--auto", "--once", *AUDIO, netns=public)
    port = callee.port("udp")
    caller_rc = tmp_path / "caller.rc"
    caller_rc.write_text(f"[net]\nfirewall_policy=stun\nstun_server={public_stun.host}:{public_stun.port}\n")
    caller = softphone("-c", caller_rc, "--sip-port", "0", "--rtp-port", "0",
                       "call", f"sip:callee@{PUBLIC_IP}:{port}", "--duration", "4", *AUDIO, netns=home)
    assert caller.wait(60) == 0, caller.describe()
    assert callee.wait(30) == 0, callee.describe()
    summary = caller.summary
    assert summary is not None and summary["result"] == "completed", summary
    (end,) = callee.summary["calls"]
    assert end["result"] == "completed", end
    # the caller's SDP (c= and m= port) named the router's mapping, not the home address
    assert end["audio"]["remote"].startswith(f"{ROUTER_OUT}:"), end["audio"]
    for side in (summary, end):
        assert side["audio"]["rx_packets"] > 0 and side["audio"]["tx_packets"] > 0, side
