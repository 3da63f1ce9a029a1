"""The softphone against SIPp: load on the answering side, audio+video SDP both ways, UDP and TCP."""
from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.interop


def codec_name(stream: dict | None) -> str | None:
    """"PCMU/8000" or "pcmu" -> "PCMU"."""
    if not stream or not stream.get("codec"):
        return None
    return str(stream["codec"]).split("/")[0].upper()


def start_answerer(softphone, *extra):
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", *extra)
    return sp, sp.port("udp")


def offered_payload_type(messages: str, codec: str) -> str | None:
    """The payload type the first INVITE in a sipp message trace gives `codec`."""
    m = re.search(r"a=rtpmap:(\d+) " + re.escape(codec) + r"/", messages, re.IGNORECASE)
    return m.group(1) if m else None


# ---------------------------------------------------------------- (a) load


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "transport, calls, rate",
    [("u1", 100, 10), ("t1", 30, 10)],
    ids=["udp", "tcp"],
)
def test_sipp_uac_calls_softphone_answer(softphone, sipp, transport, calls, rate):
    sp, port = start_answerer(softphone)
    uac = sipp(
        "uac", f"127.0.0.1:{port}", "-t", transport, "-m", calls, "-r", rate, "-d", 100,
        "-recv_timeout", 10000, timeout=60,
    )
    rc = uac.wait(80)
    st = uac.stats()
    where = f"\n{uac.describe()}\n{sp.describe()}"
    assert st.get("FailedCall(C)") == 0, "sipp counted failed calls" + where
    assert st.get("SuccessfulCall(C)") == calls, "not every call succeeded" + where
    assert rc == 0, f"sipp exit {rc}" + where
    assert sp.running(), "softphone exited during the load" + where

    # still answering afterwards
    again = sipp("uac", f"127.0.0.1:{port}", "-t", transport, "-m", 1, "-d", 100,
                 "-recv_timeout", 5000, timeout=20)
    rc = again.wait(30)
    assert rc == 0 and again.stats().get("SuccessfulCall(C)") == 1, (
        "softphone no longer answers after the load\n" + again.describe() + sp.describe())

    assert sp.stop() == 0, sp.describe()
    summary = sp.summary
    assert summary is not None, sp.describe()
    assert summary.get("answered") == calls + 1, sp.describe()


# ---------------------------------------------------------------- (b) softphone calls sipp uas_av


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_softphone_calls_sipp_uas_av(softphone, sipp, transport):
    uas = sipp("uas_av.xml", None, "-t", transport, "-m", 1, timeout=30)
    uri = f"sip:service@127.0.0.1:{uas.local_port}"
    if transport == "t1":
        uri += ";transport=tcp"
    # H264 alone in the video offer: the scenario answers with H264 (and the
    # payload type found in the offer), PCMU, PCMA and telephone-event
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call", uri,
                   "--duration", "1", "--video-codec", "H264", "--timeout", "15")
    rc = sp.wait(30)
    where = f"\n{sp.describe()}\n{uas.describe()}"
    assert rc == 0, f"softphone exit {rc}" + where
    urc = uas.wait(20)
    assert urc == 0, f"sipp uas exit {urc}" + where

    s = sp.summary
    assert s is not None, "no summary" + where
    assert s.get("result") == "completed", where
    assert s.get("sip_code") == 200, where
    audio, video = s.get("audio") or {}, s.get("video") or {}
    assert codec_name(audio) in ("PCMU", "PCMA"), f"audio {audio}" + where
    assert str(audio.get("payload_type")) == {"PCMU": "0", "PCMA": "8"}[codec_name(audio)], where
    assert str(uas.media_port) in str(audio.get("remote")), f"audio remote {audio}" + where
    assert codec_name(video) == "H264", f"video {video}" + where
    pt = offered_payload_type(uas.messages, "H264")
    assert pt is not None and str(video.get("payload_type")) == pt, f"video {video}" + where
    assert str(uas.media_port + 2) in str(video.get("remote")), f"video remote {video}" + where
    for name in ("invite_sent", "answered", "bye"):
        assert name in (s.get("timeline") or {}), f"timeline lacks {name}" + where
    # the BYE came from the softphone, after --duration
    assert re.search(r"^BYE sip:", uas.messages, re.MULTILINE), where


# ---------------------------------------------------------------- (c) sipp uac_av calls the softphone


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_sipp_uac_av_calls_softphone(softphone, sipp, transport):
    sp, port = start_answerer(softphone)
    uac = sipp("uac_av.xml", f"127.0.0.1:{port}", "-t", transport, "-m", 3, "-r", 5,
               "-d", 500, "-recv_timeout", 10000, timeout=30)
    rc = uac.wait(45)
    where = f"\n{uac.describe()}\n{sp.describe()}"
    # the scenario's <ereg check_it="true"> fail the call unless the 200's SDP
    # has an accepted audio m-line and a video m-line
    assert rc == 0, f"sipp exit {rc}" + where
    assert uac.stats().get("SuccessfulCall(C)") == 3, where
    assert "Failed regexp match" not in uac.errors_log, where

    deadline = time.monotonic() + 10
    while len(sp.find_events("call_end")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    ends = sp.find_events("call_end")
    assert len(ends) == 3, where
    for e in ends:
        assert codec_name(e.get("audio")) in ("PCMU", "PCMA"), f"call_end {e}" + where
        assert codec_name(e.get("video")) in ("VP8", "H264"), f"call_end {e}" + where
    assert sp.stop() == 0, sp.describe()


# ---------------------------------------------------------------- (d) a BYE nobody answers


@pytest.mark.timeout(80)
def test_unanswered_bye_ends_the_call(softphone, sipp):
    """RFC 3261 §15.1.1: the session is over once the BYE is sent; a peer that never answers it
    costs a few retransmissions before the call counts as completed, not Timer F (64*T1 = 32 s).
    The BYE's transaction still runs (§17.1.2) until SIPp has exited: the ICMP port unreachable
    for the next copy ends it then (§18.4), before Timer F."""
    uas = sipp("uas_bye_unanswered.xml", None, "-t", "u1", "-m", 1, timeout=40)
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                   f"sip:service@127.0.0.1:{uas.local_port}", "--no-video", "--duration", "1", "--timeout", "15")
    rc = sp.wait(45)
    where = f"\n{sp.describe()}\n{uas.describe()}"
    assert rc == 0, f"softphone exit {rc}" + where
    s = sp.summary
    assert s is not None and s.get("result") == "completed", where
    t = s["timeline"]
    # the BYE went out after --duration, was retransmitted, and the call ended 8*T1 after it
    assert 3.5 <= sp.find_events("call_end")[0]["_t"] - sp.find_events("state", state="terminating")[0]["_t"] < 6, where
    assert "bye" in t, where
    assert uas.wait(20) == 0, where
    # past the call's end (8*T1 after the first copy, 4 copies): retransmitted on to the fifth copy
    # 7.5 s after the first, while SIPp listens (8 s); its closed port then ends the transaction
    assert len(re.findall(r"^BYE sip:", uas.messages, re.MULTILINE)) >= 5, where
