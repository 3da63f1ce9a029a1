"""re-INVITE in both directions against real peers: hold (sendonly/inactive) and resume."""

from __future__ import annotations

import asyncio

import pytest

from softphone.call.states import CallResult
from softphone.config import default_config
from softphone.events import CallSummary
from softphone.phone import Phone

pytestmark = pytest.mark.interop


@pytest.mark.timeout(60)
def test_sipp_holds_and_resumes_the_softphone(softphone, sipp):
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once")
    port = sp.port("udp")
    # the scenario checks every answer: a=recvonly to sendonly, a=inactive to inactive,
    # a=sendrecv on resume (sipp exits 1 if one does not match)
    uac = sipp("uac_hold.xml", f"127.0.0.1:{port}", "-m", 1, timeout=30)
    rc = uac.wait(40)
    where = f"\n{uac.describe()}\n{sp.describe()}"
    assert rc == 0, f"sipp exit {rc}" + where
    assert sp.wait(15) == 0, where
    states = [e["state"] for e in sp.find_events("state")]
    assert states.count("held_by_peer") == 2, f"{states}" + where
    assert states.index("resumed") > states.index("held_by_peer"), f"{states}" + where
    (end,) = sp.summary["calls"]
    assert end["result"] == "completed" and end["audio"]["direction"] == "sendrecv", where


async def _hold_and_resume(uri: str) -> tuple[list[str], list[str], CallSummary]:
    config = default_config().with_values("sip", sip_port=0, sip_tcp_port=-1)
    config = config.with_values("rtp", audio_rtp_port=(0, 0), video_rtp_port=(0, 0))
    phone = Phone(config, bind="127.0.0.1")
    await phone.start()
    directions: list[str] = []
    try:
        session = await phone.call(uri)
        await session.wait_state("confirmed", timeout=10)
        session.hold()
        await session.wait_state("held", timeout=10)
        directions.append(next(s.direction for s in session.call.streams if s.kind == "audio"))
        session.resume()
        await session.wait_state("resumed", timeout=10)
        directions.append(next(s.direction for s in session.call.streams if s.kind == "audio"))
        session.hangup()
        summary = await session.wait(timeout=10)
    finally:
        await phone.close()
    return list(session.states), directions, summary


@pytest.mark.timeout(60)
def test_softphone_holds_and_resumes_pjsua2(pjsua2_peer):
    peer = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=0, max_time=25)
    states, directions, summary = asyncio.run(_hold_and_resume(f"sip:peer@127.0.0.1:{peer.port}"))
    result = peer.wait(20)
    where = f"pjsua2 stderr:\n{peer.stderr[-3000:]}"
    # pjsua2 answered our a=sendonly with a=recvonly, then our a=sendrecv with a=sendrecv
    assert directions == ["sendonly", "sendrecv"], f"{states}\n{where}"
    assert summary.result == CallResult.COMPLETED, f"{summary}\n{where}"
    (call,) = result["calls"]
    assert "CONFIRMED" in call["state_names"] and call["hangup_by"] == "remote", f"{call}\n{where}"
    assert call["call_id"] == summary.call_id, where
