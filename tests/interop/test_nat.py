"""A phone behind a real NAT: namespaces joined by veth pairs, a router doing nftables masquerade.

    public  10.0.0.1   Kamailio (registrar + proxy) and the caller (a softphone)
       |  veth
    router  10.0.0.2 | 192.168.77.1   forwards, masquerades what leaves by its 10.0.0.2 side
       |  veth
    home    192.168.77.2              our softphone ``answer --auto``, registered as alice

Our phone registers through the NAT, learns the public address (the router's) from the
registrar's received/rport, registers again with it as Contact, and the caller's call through
Kamailio reaches it: audio and video flow both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.netns import PUBLIC_IP, ROUTER_OUT, build_one_nat, network

pytestmark = [pytest.mark.netns, pytest.mark.interop]



@pytest.fixture
def nat() -> Iterator[tuple[str, str, str]]:
    """(public, router, home) namespaces, named with this process's PID; deleted at the end."""
    with network(build_one_nat) as names:
        yield names


def _alice_rc(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "alice.rc"
    path.write_text(
        "[sip]\ncontact=sip:alice@127.0.0.1\nkeepalive_period=5000\n"
        f"[proxy_0]\nreg_proxy=<sip:{PUBLIC_IP}:{port}>\nreg_identity=sip:alice@127.0.0.1\nreg_expires=120\n"
        "[auth_info_0]\nusername=alice\npasswd=alicepw\n"
    )
    return path


MEDIA = ("--audio-source", "tone: 440", "--audio-sink", "null:", "--video-source", "pattern:",
         "--video-sink", "null:")


@pytest.mark.timeout(120)
def test_a_phone_behind_nat_registers_and_takes_a_call_with_audio_and_video(
    softphone: Any, kamailio: Any, nat: tuple[str, str, str], tmp_path: Path
) -> None:
    public, _, home = nat
    registrar = kamailio(netns=public, listen=(PUBLIC_IP,), relay=("10.0.0.",))
    alice = softphone("-c", _alice_rc(tmp_path, registrar.udp_port), "--sip-port", "0", "--rtp-port", "0",
                      "answer", "--auto", "--once", *MEDIA, netns=home)
    # the first REGISTER shows the registrar where the NAT put us; the second registers that Contact
    learnt = alice.wait_event("registration", timeout=20, state="registered", account="sip:alice@127.0.0.1")
    assert learnt["public_address"] is not None and learnt["public_address"].startswith(f"{ROUTER_OUT}:"), learnt
    (contact,) = registrar.wait_registered("alice")
    assert contact["address"].startswith(f"sip:alice@{learnt['public_address']}"), contact

    caller = softphone("--bind", PUBLIC_IP, "--sip-port", "0", "--rtp-port", "0",
                       "call", f"sip:alice@{PUBLIC_IP}:{registrar.udp_port}", "--duration", "4", *MEDIA,
                       netns=public)
    assert caller.wait(60) == 0, caller.describe() + registrar.current_log[-3000:]
    assert alice.wait(30) == 0, alice.describe()
    summary = caller.summary
    assert summary is not None and summary["result"] == "completed", summary
    (end,) = alice.summary["calls"]
    assert end["result"] == "completed", end
    assert end["advertised"] == learnt["public_address"], end  # our Contact in the call: the public one
    for side in (summary, end):
        for kind in ("audio", "video"):
            assert side[kind]["rx_packets"] > 0 and side[kind]["tx_packets"] > 0, (kind, side)
    # the caller saw our media come from the router (the NAT), never from the home network
    assert summary["audio"]["remote"].startswith(ROUTER_OUT), summary["audio"]
    assert summary["video"]["remote"].startswith(ROUTER_OUT), summary["video"]
