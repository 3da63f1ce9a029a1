"""ICE (RFC 8445) between two phones behind two different NATs, coturn outside as STUN and TURN
server, Kamailio outside as registrar and proxy.

    public   10.0.1.1   coturn (STUN + TURN), Kamailio          10.0.2.1   (forwards between both sides)
       | veth                                                       | veth
    router A 10.0.1.2 | 192.168.77.1  masquerade        router B 10.0.2.2 | 172.16.77.1  masquerade
       | veth                                                       | veth
    home A   192.168.77.2  the caller (ICE)                home B   172.16.77.2  alice, answer --auto (ICE)

Neither home network is routed from the public side. With the NATs alone, the connectivity checks
punch through both of them (a server-reflexive pair). When the public side drops UDP forwarded
between the two routers, only the TURN server is reachable: the call runs over a relayed pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.coturn import TurnServer, coturn
from tests.interop.netns import (
    HOME_A,
    HOME_B,
    PUBLIC_A,
    ROUTER_A,
    ROUTER_B,
    TURN_PORT,
    TwoNats,
    build_two_nats,
    network,
)
from tests.interop.test_ice import AV_MEDIA, assert_media_over_ice

pytestmark = [pytest.mark.netns, pytest.mark.interop]

@pytest.fixture
def two_nats() -> Iterator[TwoNats]:
    """The namespaces above, named with this process's PID; deleted at the end."""
    with network(build_two_nats) as layout:
        yield layout


@pytest.fixture
def public_turn(two_nats: TwoNats, tmp_path: Path) -> Iterator[TurnServer]:
    with coturn(PUBLIC_A, TURN_PORT, tmp_path, netns=two_nats.public) as server:
        yield server


def _rc(tmp_path: Path, user: str, registrar_port: int, turn: TurnServer, relay: bool) -> Path:
    path = tmp_path / f"{user}.rc"
    # coturn as STUN server only, or as STUN and TURN server
    servers = turn.rc_lines() if relay else f"stun_server={turn.host}:{turn.port}\n"
    path.write_text(
        f"[net]\nfirewall_policy=ice\n{servers}"
        f"[sip]\ncontact=sip:{user}@127.0.0.1\nkeepalive_period=5000\n"
        f"[proxy_0]\nreg_proxy=<sip:{PUBLIC_A}:{registrar_port}>\nreg_identity=sip:{user}@127.0.0.1\n"
        "reg_expires=120\n"
        f"[auth_info_0]\nusername={user}\npasswd={user}pw\n"
    )
    path.chmod(0o600)
    return path


def _call_across(softphone: Any, kamailio: Any, layout: TwoNats, turn: TurnServer,
                 tmp_path: Path, relay: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """bob (home A) calls alice (home B) through Kamailio; both summaries once the call ended."""
    registrar = kamailio(netns=layout.public, listen=(PUBLIC_A,), relay=("10.0.",))
    alice = softphone("-c", _rc(tmp_path, "alice", registrar.udp_port, turn, relay), "--sip-port", "0",
                      "--rtp-port", "0", "answer", "--auto", "--once", *AV_MEDIA, netns=layout.home_b)
    alice.wait_event("registration", timeout=20, state="registered", account="sip:alice@127.0.0.1")
    registrar.wait_registered("alice")
    caller = softphone("-c", _rc(tmp_path, "bob", registrar.udp_port, turn, relay), "--sip-port", "0",
                       "--rtp-port", "0", "call", f"sip:alice@{PUBLIC_A}:{registrar.udp_port}", "--duration", "4",
                       *AV_MEDIA, netns=layout.home_a)
    assert caller.wait(60) == 0, caller.describe() + registrar.current_log[-3000:]
    assert alice.wait(30) == 0, alice.describe()
    assert caller.summary is not None, caller.describe()
    (end,) = alice.summary["calls"]
    return caller.summary, end


@pytest.mark.timeout(120)
def test_two_phones_behind_two_nats_call_over_a_server_reflexive_pair(
    softphone: Any, kamailio: Any, two_nats: TwoNats, public_turn: TurnServer, tmp_path: Path
) -> None:
    # coturn as STUN server only: with relay candidates too, which pair wins depends on which
    # check succeeds first (a relay pair did, once, on a loaded machine)
    bob, alice = _call_across(softphone, kamailio, two_nats, public_turn, tmp_path, relay=False)
    for side in (bob, alice):
        assert_media_over_ice(side, "srflx", ("audio", "video"))
    # each side's media comes from the other's router: through both NATs, not the relay
    assert bob["audio"]["ice"]["local"].startswith(f"{HOME_A}:"), bob["audio"]
    assert bob["audio"]["ice"]["remote"].startswith(f"{ROUTER_B}:"), bob["audio"]
    assert alice["audio"]["ice"]["local"].startswith(f"{HOME_B}:"), alice["audio"]
    assert alice["audio"]["ice"]["remote"].startswith(f"{ROUTER_A}:"), alice["audio"]


@pytest.mark.timeout(120)
def test_with_udp_between_the_nats_blocked_the_call_runs_over_the_turn_relay(
    softphone: Any, kamailio: Any, two_nats: TwoNats, public_turn: TurnServer, tmp_path: Path
) -> None:
    two_nats.block_direct_udp()
    bob, alice = _call_across(softphone, kamailio, two_nats, public_turn, tmp_path)
    for side in (bob, alice):
        assert_media_over_ice(side, "relay", ("audio", "video"))
    # one side at least sends through its TURN allocation on the public server
    relayed = [s["audio"]["ice"] for s in (bob, alice) if s["audio"]["ice"]["local_type"] == "relay"]
    assert relayed, (bob["audio"], alice["audio"])
    assert all(ice["local"].startswith(f"{PUBLIC_A}:") for ice in relayed), relayed
