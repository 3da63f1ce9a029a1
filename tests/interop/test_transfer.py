"""Blind transfer (REFER, RFC 3515) against real pjsua2 peers, both directions.

(a) we call pjsua2 B and transfer it to pjsua2 C: C gets a call from B carrying B's tone,
    and our call to B ends with our BYE once B's NOTIFY reports 200;
(b) pjsua2 A calls us and transfers us to pjsua2 C (call.xfer()): we call C, the new call
    has media both ways, and A saw our NOTIFYs with 100 and then 200.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from softphone.call.states import CallResult, Direction, EndCause, TransferState
from softphone.config import default_config
from softphone.events import CallSummary, PhoneEvent, TransferEvent
from softphone.phone import IncomingPolicy, Phone
from softphone.session import MediaChoice

pytestmark = pytest.mark.interop

B_TONE, C_TONE, OUR_TONE = 660.0, 880.0, 523.0


def _phone(events: list[PhoneEvent]) -> Phone:
    config = default_config().with_values("sip", sip_port=0, sip_tcp_port=-1)
    config = config.with_values("rtp", audio_rtp_port=(0, 0), video_rtp_port=(0, 0))
    phone = Phone(config, bind="127.0.0.1", on_event=events.append)
    phone.media_choice = MediaChoice(audio_codec="PCMU", video=False, audio_source=f"tone: {OUR_TONE:g}",
                                     audio_sink="null:")
    return phone


def _transfers(events: list[PhoneEvent]) -> list[tuple[Direction, TransferState, int | None]]:
    return [(e.direction, e.state, e.sip_code) for e in events if isinstance(e, TransferEvent)]


def _near(hz: Any, expected: float) -> bool:
    return isinstance(hz, (int, float)) and abs(hz - expected) <= 0.05 * expected


async def _transfer_b_to_c(b_uri: str, c_uri: str, events: list[PhoneEvent]) -> CallSummary:
    phone = _phone(events)
    await phone.start()
    try:
        session = await phone.call(b_uri)
        await session.wait_state("confirmed", timeout=10)
        await asyncio.sleep(0.5)
        session.transfer(c_uri)
        return await session.wait(timeout=20)
    finally:
        await phone.close()


@pytest.mark.timeout(90)
def test_we_transfer_pjsua2_to_a_third_pjsua2(pjsua2_peer):
    carol = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=3, max_time=40,
                        extra=["--user", "carol", "--tone", f"{C_TONE:g}"])
    bob = pjsua2_peer("answer", codec="PCMU/8000", calls=2, max_time=40,
                      extra=["--user", "bob", "--tone", f"{B_TONE:g}"])
    c_uri = f"sip:carol@127.0.0.1:{carol.port}"
    events: list[PhoneEvent] = []
    summary = asyncio.run(_transfer_b_to_c(f"sip:bob@127.0.0.1:{bob.port}", c_uri, events))
    c_result, b_result = carol.wait(30), bob.wait(30)
    where = f"\nevents: {_transfers(events)}\nB stderr:\n{bob.stderr[-2500:]}\nC stderr:\n{carol.stderr[-2500:]}"

    # our side: REFER accepted, NOTIFYs up to 200, then our BYE ended the call
    transfers = _transfers(events)
    assert transfers[0] == (Direction.OUTGOING, TransferState.REQUESTED, None), where
    assert (Direction.OUTGOING, TransferState.ACCEPTED, 202) in transfers, where
    assert transfers[-1] == (Direction.OUTGOING, TransferState.SUCCEEDED, 200), where
    assert summary.result == CallResult.COMPLETED and summary.cause == EndCause.TRANSFERRED, f"{summary}{where}"
    assert "bye" in summary.timeline, where
    original = next(c for c in b_result["calls"] if c["role"] == "uas")
    assert original["xfer_request"] and c_uri in original["xfer_request"], f"{original}{where}"
    assert original["hangup_by"] == "remote" and original["call_id"] == summary.call_id, f"{original}{where}"

    # C got a call from B, with B's tone in it
    (c_call,) = c_result["calls"]
    assert c_call["confirmed"] and "sip:bob@" in c_call["remote_uri"], f"{c_call}{where}"
    assert _near(c_call["rx"].get("dominant_hz"), B_TONE), f"{c_call['rx']}{where}"
    (b_new,) = [c for c in b_result["calls"] if c["role"] == "uac-xfer"]
    assert b_new["confirmed"] and b_new["call_id"] == c_call["call_id"], f"{b_new}{where}"
    assert _near(b_new["rx"].get("dominant_hz"), C_TONE), f"{b_new['rx']}{where}"


async def _answer_and_follow_transfer(events: list[PhoneEvent], ready: asyncio.Future[int]) -> CallSummary:
    """Answer one call; when its peer transfers us, wait for the call we place to end."""
    phone = _phone(events)
    phone.policy = IncomingPolicy(auto_answer=True)
    await phone.start()
    try:
        ready.set_result(phone.ports()["udp"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 25
        while loop.time() < deadline:
            placed = [e.new_call_id for e in events if isinstance(e, TransferEvent) and e.new_call_id]
            ended = [e for e in events if isinstance(e, CallSummary) and placed and e.call_id == placed[0]]
            if ended:  # the phone lets go of a call once it has ended: its summary tells
                return ended[0]
            await asyncio.sleep(0.05)
        raise AssertionError("no call placed for a transfer")
    finally:
        await phone.close()


@pytest.mark.timeout(90)
def test_pjsua2_transfers_us_to_a_third_pjsua2(pjsua2_peer):
    carol = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=3, max_time=40,
                        extra=["--user", "carol", "--tone", f"{C_TONE:g}"])
    c_uri = f"sip:carol@127.0.0.1:{carol.port}"
    events: list[PhoneEvent] = []
    peers: list[Any] = []

    async def run() -> CallSummary:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(_answer_and_follow_transfer(events, ready))
        port = await asyncio.wait_for(asyncio.shield(ready), 10)
        peers.append(pjsua2_peer("call", call_uri=f"sip:us@127.0.0.1:{port}", codec="PCMU/8000", max_time=40,
                                 extra=["--user", "alice", "--transfer-to", c_uri, "--transfer-after", "1"]))
        return await task

    new_call = asyncio.run(run())
    (alice,) = peers
    a_result, c_result = alice.wait(30), carol.wait(30)
    where = f"\nevents: {_transfers(events)}\nA stderr:\n{alice.stderr[-2500:]}\nC stderr:\n{carol.stderr[-2500:]}"

    # we were asked, placed the call, and told A how it went
    transfers = _transfers(events)
    assert transfers[0] == (Direction.INCOMING, TransferState.REQUESTED, None), where
    assert (Direction.INCOMING, TransferState.CALLING, None) in transfers, where
    assert (Direction.INCOMING, TransferState.SUCCEEDED, 200) in transfers, where
    (a_call,) = a_result["calls"]
    codes = [s["code"] for s in a_call["xfer_status"]]
    assert 100 in codes and codes[-1] == 200 and a_call["xfer_status"][-1]["final"], f"{a_call}{where}"
    assert codes.index(100) < codes.index(200), f"{a_call}{where}"
    assert a_call["hangup_by"] == "local", f"{a_call}{where}"  # A hung up after the final NOTIFY
    ended = [e for e in events if isinstance(e, CallSummary) and e.call_id == a_call["call_id"]]
    assert ended and ended[0].cause == EndCause.REMOTE_HANGUP, where

    # the new call went to C and carried media both ways
    (c_call,) = c_result["calls"]
    assert c_call["confirmed"] and c_call["call_id"] == new_call.call_id, f"{c_call}{where}"
    assert new_call.direction == Direction.OUTGOING and "carol@" in new_call.remote_party, where
    assert new_call.audio is not None and new_call.audio["rx_packets"] > 0, f"{new_call.audio}{where}"
    assert _near(c_call["rx"].get("dominant_hz"), OUR_TONE), f"{c_call['rx']}{where}"


@pytest.mark.timeout(90)
def test_answer_once_follows_a_transfer_to_its_end(softphone, pjsua2_peer):
    """``softphone answer --auto --once`` transferred by its caller stays for the call it places."""
    carol = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=2, max_time=40,
                        extra=["--user", "carol", "--tone", f"{C_TONE:g}"])
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                   "--no-video", "--audio-codec", "PCMU", "--audio-source", f"tone: {OUR_TONE:g}",
                   "--audio-sink", "null:")
    alice = pjsua2_peer("call", call_uri=f"sip:us@127.0.0.1:{sp.port('udp')}", codec="PCMU/8000", max_time=40,
                        extra=["--user", "alice", "--transfer-to", f"sip:carol@127.0.0.1:{carol.port}",
                               "--transfer-after", "1"])
    assert sp.wait(30) == 0, sp.describe()
    alice.wait(30)
    (c_call,) = carol.wait(30)["calls"]
    calls = sp.summary["calls"]
    assert [c["direction"] for c in calls] == ["incoming", "outgoing"], sp.describe()
    assert calls[1]["call_id"] == c_call["call_id"] and calls[1]["result"] == "completed", calls
    assert calls[1]["audio"]["rx_packets"] > 0 and _near(c_call["rx"].get("dominant_hz"), OUR_TONE), c_call
    assert c_call["hangup_by"] == "local", c_call  # carol ended it after 2 s: we did not leave early
