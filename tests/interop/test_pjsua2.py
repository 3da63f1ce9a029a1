"""The softphone against PJSIP (pjsua2): each side calls, each side hangs up, codecs agree."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop

CASES = [("PCMU/8000", "udp"), ("PCMA/8000", "udp"), ("PCMU/8000", "tcp")]
IDS = ["pcmu-udp", "pcma-udp", "pcmu-tcp"]


def codec_name(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("codec")
    return str(value).split("/")[0].upper() if value else None


def only_call(result: dict, where: str) -> dict:
    calls = result.get("calls") or []
    assert len(calls) == 1, f"pjsua2 saw {len(calls)} calls\n{result}\n{where}"
    return calls[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec, transport", CASES, ids=IDS)
def test_pjsua2_calls_softphone(softphone, pjsua2_peer, codec, transport):
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                   "answer", "--auto", "--once")
    port = sp.port(transport)
    uri = f"sip:softphone@127.0.0.1:{port}" + (";transport=tcp" if transport == "tcp" else "")
    # pjsua2 offers only `codec` and hangs up 2 s after CONFIRMED
    peer = pjsua2_peer("call", call_uri=uri, codec=codec, duration=2, max_time=20)
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2 stderr:\n{peer.stderr[-3000:]}\n{sp.describe()}"

    call = only_call(res, where)
    assert "CONFIRMED" in call["state_names"], f"{call}\n{where}"
    assert call["hangup_by"] == "local", f"{call}\n{where}"
    assert call["last_code"] == 200, f"{call}\n{where}"
    assert 1.5 <= call.get("confirmed_s", 0) <= 5, f"{call}\n{where}"
    assert call["codec"] == codec, f"{call}\n{where}"
    assert res["ok"] and res["exit_code"] == 0, f"{res}\n{where}"

    assert rc == 0, f"softphone exit {rc}\n{where}"
    sp.wait_event("incoming", timeout=1)
    sp.wait_event("state", timeout=1, state="confirmed")
    summary = sp.summary
    assert summary is not None and summary.get("answered") == 1, where
    (end,) = summary["calls"]
    assert end.get("call_id") == call["call_id"], f"{end}\n{where}"
    assert codec_name(end.get("audio")) == codec_name(codec), f"{end}\n{where}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec, transport", CASES, ids=IDS)
def test_softphone_calls_pjsua2(softphone, pjsua2_peer, codec, transport):
    # pjsua2 answers (180 then 200) with only `codec` enabled and never hangs up itself
    peer = pjsua2_peer("answer", codec=codec, calls=1, duration=0, max_time=25)
    uri = f"sip:peer@127.0.0.1:{peer.port}" + (";transport=tcp" if transport == "tcp" else "")
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                   "call", uri, "--duration", "2", "--timeout", "15")
    rc = sp.wait(30)
    res = peer.wait(20)
    where = f"pjsua2 stderr:\n{peer.stderr[-3000:]}\n{sp.describe()}"

    assert rc == 0, f"softphone exit {rc}\n{where}"
    sp.wait_event("state", timeout=1, state="confirmed")
    s = sp.summary
    assert s is not None and s.get("result") == "completed", where
    assert s.get("sip_code") == 200, where
    assert codec_name(s.get("audio")) == codec_name(codec), f"{s.get('audio')}\n{where}"

    call = only_call(res, where)
    assert "CONFIRMED" in call["state_names"], f"{call}\n{where}"
    assert call["hangup_by"] == "remote", f"{call}\n{where}"
    assert 1.5 <= call.get("confirmed_s", 0) <= 5, f"{call}\n{where}"
    assert call["codec"] == codec, f"{call}\n{where}"
    assert call["call_id"] == s.get("call_id"), f"{call}\n{where}"
    assert res["ok"] and res["exit_code"] == 0, f"{res}\n{where}"
