"""ICE (RFC 8445) end to end: softphone to softphone on loopback (host pair) and behind two NATs
with coturn as STUN and TURN server outside (server-reflexive pair; relayed pair when direct UDP
between the NATs is blocked)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import free_port
from tests.interop.coturn import TurnServer, coturn
from tests.interop.netns import Network, network, run

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


@pytest.mark.timeout(60)
def test_the_status_line_shows_the_ice_pair_type(softphone: Any, tmp_path: Path) -> None:
    callee = softphone("-c", ice_rc(tmp_path, "callee"), "--bind", "127.0.0.1", "--sip-port", "0",
                       "answer", "--auto", "--once", *MEDIA)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "200"}
    child = pexpect.spawn(sys.executable, ["-m", "softphone", "-c", str(ice_rc(tmp_path, "caller")), "--bind",
                                           "127.0.0.1", "--sip-port", "0", "call",
                                           f"sip:bob@127.0.0.1:{callee.port('udp')}", "--duration", "3", *MEDIA],
                          env=env, encoding="utf-8", timeout=30, dimensions=(24, 200))
    try:
        child.expect("call confirmed")
        child.expect(r"\r00:0\d \| audio \S+ tx \d+ rx \d+ kbit/s [^\r]* \| ice host\x1b\[K")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert callee.wait(20) == 0, callee.describe()


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    """coturn as STUN and TURN server on loopback (long-term credentials), stopped by PID."""
    with coturn("127.0.0.1", free_port("udp"), tmp_path) as server:
        yield server


@pytest.mark.timeout(90)
def test_stun_and_turn_candidates_from_coturn(softphone: Any, tmp_path: Path, turn: TurnServer) -> None:
    # [net] stun_server, turn_server, turn_username and turn_password point at coturn: the
    # offer's srflx candidate is its STUN answer, the relay candidate its TURN allocation
    servers = turn.rc_lines()
    assert all(f"\n{key}=" in f"\n{servers}" for key in ("stun_server", "turn_server", "turn_username",
                                                         "turn_password"))
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




# =========================================================================== softphone <-> pjsua2 (enableIce)
# pjsua2 leaves loopback addresses out of its ICE host candidates: the two run in two namespaces
# joined by a veth pair (10.0.3.1 ours, 10.0.3.2 pjsua2's).

OURS, PJSUA2_IP = "10.0.3.1", "10.0.3.2"
PJSUA2_ICE = ("--ice", "--tone", "660", "--expect-hz", "440", "--log-level", "4")


def _lan(net: Network) -> tuple[str, str]:
    ours, theirs = net.namespace("icea"), net.namespace("iceb")
    net.link(ours, OURS, theirs, PJSUA2_IP)
    return ours, theirs


@pytest.fixture
def lan() -> Iterator[tuple[str, str]]:
    with network(_lan) as names:
        yield names


def _assert_ice_with_pjsua2(softphone_side: dict[str, Any], stderr: str, res: dict[str, Any], where: str) -> None:
    """Both sides ran ICE: pjsua2's SDP carried candidates, our checks selected a host pair
    (not the plain fallback), and each side received the other's audio."""
    assert_media_over_ice(softphone_side, "host")
    assert softphone_side["audio"]["ice"]["remote"].startswith(f"{PJSUA2_IP}:"), where
    assert f" {PJSUA2_IP} " in stderr and " typ host" in stderr and stderr.count("a=ice-ufrag:") >= 2, where
    assert "ICE selected a host pair" in stderr, where
    (call,) = [c for c in res["calls"] if c["confirmed"]]
    assert call["ice_rtp_source"] is not None and call["ice_rtp_source"].startswith(f"{OURS}:"), where
    assert res["ok"], where  # pjsua2 heard our 440 Hz tone


@pytest.mark.netns
@pytest.mark.timeout(60)
def test_softphone_calls_pjsua2_over_ice(softphone: Any, pjsua2_peer: Any, tmp_path: Path,
                                         lan: tuple[str, str]) -> None:
    peer = pjsua2_peer("answer", codec="PCMU/8000", calls=1, max_time=30, ip=PJSUA2_IP, netns=lan[1],
                       extra=PJSUA2_ICE)
    sp = softphone("-vv", "-c", ice_rc(tmp_path, "caller"), "--bind", OURS, "--sip-port", "0",
                   "call", f"sip:peer@{PJSUA2_IP}:{peer.port}", "--duration", "3", "--audio-codec", "PCMU", *MEDIA,
                   netns=lan[0])
    rc = sp.wait(40)
    res = peer.wait(20)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    _assert_ice_with_pjsua2(sp.summary, sp.stderr, res, where)


@pytest.mark.netns
@pytest.mark.timeout(60)
def test_pjsua2_calls_softphone_over_ice(softphone: Any, pjsua2_peer: Any, tmp_path: Path,
                                         lan: tuple[str, str]) -> None:
    # we hang up, not pjsua2: this PJSIP build can crash (SIGSEGV) tearing down an ICE call's
    # media when it hangs up itself, before it reports
    sp = softphone("-vv", "-c", ice_rc(tmp_path, "callee"), "--bind", OURS, "--sip-port", "0",
                   "answer", "--auto", "--once", "--duration", "3", "--audio-codec", "PCMU", *MEDIA,
                   netns=lan[0])
    uri = f"sip:softphone@{OURS}:{sp.port('udp')}"
    peer = pjsua2_peer("call", call_uri=uri, codec="PCMU/8000", duration=0, max_time=30, ip=PJSUA2_IP,
                       netns=lan[1], extra=PJSUA2_ICE)
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    (end,) = sp.summary["calls"]
    _assert_ice_with_pjsua2(end, sp.stderr, res, where)


@pytest.mark.netns
@pytest.mark.timeout(90)
def test_a_call_whose_checks_never_succeed_still_ends(softphone: Any, tmp_path: Path, lan: tuple[str, str]) -> None:
    """Only SIP gets through between the two: the checks fail, the call ends at its duration, and
    both phones exit instead of waiting for the checks (a stream waiting for its pair holds the media)."""
    callee = softphone("-c", ice_rc(tmp_path, "callee"), "--bind", PJSUA2_IP, "--sip-port", "0",
                       "answer", "--auto", "--once", *MEDIA, netns=lan[1])
    sip_port = callee.port("udp")
    rule = f"meta l4proto udp udp dport != {sip_port} drop"
    run("ip", "netns", "exec", lan[1], "nft", "-f", "-",
        stdin="table ip media {\n chain input {\n  type filter hook input priority filter; policy accept;\n"
              f"  {rule}\n }}\n}}\n")
    caller = softphone("-c", ice_rc(tmp_path, "caller"), "--bind", OURS, "--sip-port", "0",
                       "call", f"sip:bob@{PJSUA2_IP}:{sip_port}", "--duration", "2", *MEDIA, netns=lan[0])
    assert caller.wait(30) == 0, caller.describe()
    assert callee.wait(30) == 0, callee.describe()
    assert caller.summary["audio"]["rx_packets"] == 0 and caller.summary["audio"].get("ice") is None, caller.summary
