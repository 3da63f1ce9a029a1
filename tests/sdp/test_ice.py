"""ICE in SDP (RFC 8839): candidates and credentials parsed, written and negotiated."""

from __future__ import annotations

import pytest

from softphone.errors import SdpError
from softphone.sdp.ice import Candidate, IceDescription, default_candidate, ice_of
from softphone.sdp.model import SessionDescription
from softphone.sdp.negotiate import CodecSpec, SessionConfig, StreamConfig, answer_offer, build_offer, process_answer

PCMU = CodecSpec("PCMU", 8000, payload_type=0)
HOST = Candidate("1", 1, "UDP", 2130706431, "192.0.2.10", 40000, "host")
SRFLX = Candidate("2", 1, "UDP", 1694498815, "203.0.113.7", 51000, "srflx", "192.0.2.10", 40000)
RELAY = Candidate("3", 1, "UDP", 16777215, "198.51.100.1", 49152, "relay", "203.0.113.7", 51000)
OURS = IceDescription("abcd", "0123456789abcdef012345", (HOST, SRFLX, RELAY))
THEIRS = IceDescription("wxyz", "zyxwvutsrqponmlkjihgfedcba+/",
                        (Candidate("h1", 1, "udp", 100, "192.0.2.20", 30000, "host"),))

# baresip's offer with its ice module (a=candidate lines as baresip writes them)
BARESIP = (
    "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "a=ice-ufrag:5W3q\r\na=ice-pwd:oN3Y2v7kHaNmFqS0y7m0uW3G\r\n"
    "m=audio 10000 RTP/AVP 0\r\na=rtcp-mux\r\n"
    "a=candidate:1 1 UDP 2113932031 10.0.0.1 10000 typ host\r\n"
    "a=candidate:2 1 UDP 1677724415 203.0.113.9 20000 typ srflx raddr 10.0.0.1 rport 10000 generation 0\r\n"
    "a=sendrecv\r\n"
)


@pytest.mark.parametrize("text", [
    "1 1 UDP 2130706431 192.0.2.10 40000 typ host",
    "2 1 UDP 1694498815 203.0.113.7 51000 typ srflx raddr 192.0.2.10 rport 40000",
    "3 2 udp 16777215 198.51.100.1 49152 typ relay raddr 203.0.113.7 rport 51000 generation 0",
    "a+/Z 1 udp 1 2001:db8::1 9 typ host network-id 1 network-cost 10",
])
def test_candidate_round_trip(text: str) -> None:
    candidate = Candidate.parse(text)
    assert str(candidate) == text
    assert Candidate.parse(str(candidate)) == candidate


def test_candidate_fields() -> None:
    candidate = Candidate.parse("2 1 UDP 1694498815 203.0.113.7 51000 typ srflx raddr 192.0.2.10 rport 40000")
    assert candidate == SRFLX


@pytest.mark.parametrize("text, fragment", [
    ("1 1 UDP 1 192.0.2.1 9 host", "at least 8"),
    ("1 1 UDP 1 192.0.2.1 9 type host", "'typ'"),
    ("1 x UDP 1 192.0.2.1 9 typ host", "component-id"),
    ("1 1 UDP 1 192.0.2.1 70000 typ host", "port"),
    ("1 1 UDP 1 192.0.2.1 9 typ host raddr", "no value"),
    ("f*o 1 UDP 1 192.0.2.1 9 typ host", "foundation"),
])
def test_bad_candidates_are_sdp_errors(text: str, fragment: str) -> None:
    with pytest.raises(SdpError, match=fragment):
        Candidate.parse(text)


def test_credentials_are_checked() -> None:
    with pytest.raises(SdpError, match="ice-ufrag"):
        IceDescription("abc", "0123456789abcdef012345")
    with pytest.raises(SdpError, match="ice-pwd"):
        IceDescription("abcd", "short")


def test_offer_carries_ice_and_parses_back() -> None:
    cfg = SessionConfig("203.0.113.7", (StreamConfig("audio", 51000, (PCMU,), rtcp_mux=True, ice=OURS),))
    offer = build_offer(cfg)
    text = str(offer)
    assert "a=ice-ufrag:abcd\r\n" in text
    assert "a=ice-pwd:0123456789abcdef012345\r\n" in text
    assert f"a=candidate:{SRFLX}\r\n" in text
    assert "a=rtcp-mux\r\n" in text
    parsed = SessionDescription.parse(text)
    assert str(parsed) == text
    assert ice_of(parsed, 0) == OURS


def test_session_level_credentials_and_baresip_offer() -> None:
    offer = SessionDescription.parse(BARESIP)
    ice = ice_of(offer, 0)
    assert ice is not None
    assert (ice.ufrag, ice.pwd) == ("5W3q", "oN3Y2v7kHaNmFqS0y7m0uW3G")
    assert [c.type for c in ice.candidates] == ["host", "srflx"]
    assert ice.candidates[1].extensions == (("generation", "0"),)


def test_answer_with_ice_only_when_the_offer_has_it() -> None:
    ours = SessionConfig("192.0.2.20", (StreamConfig("audio", 30000, (PCMU,), rtcp_mux=True, ice=THEIRS),))
    answer, streams = answer_offer(SessionDescription.parse(BARESIP), ours)
    assert ice_of(answer, 0) == THEIRS
    assert streams[0].remote_ice is not None and streams[0].remote_ice.ufrag == "5W3q"
    assert streams[0].rtcp_mux
    plain = SessionDescription.parse(BARESIP.replace("a=ice-ufrag", "a=x-ufrag"))
    answer, streams = answer_offer(plain, ours)
    assert ice_of(answer, 0) is None
    assert "candidate" not in str(answer)
    assert streams[0].remote_ice is None


def test_process_answer_reads_the_peers_ice() -> None:
    offer = build_offer(SessionConfig("203.0.113.7", (StreamConfig("audio", 51000, (PCMU,), rtcp_mux=True,
                                                                   ice=OURS),)))
    answer, _ = answer_offer(offer, SessionConfig("192.0.2.20", (StreamConfig("audio", 30000, (PCMU,),
                                                                             rtcp_mux=True, ice=THEIRS),)))
    streams = process_answer(offer, SessionDescription.parse(str(answer)))
    assert streams[0].remote_ice == THEIRS
    plain_answer, _ = answer_offer(offer, SessionConfig("192.0.2.20", (StreamConfig("audio", 30000, (PCMU,)),)))
    assert process_answer(offer, plain_answer)[0].remote_ice is None


def test_default_candidate_prefers_relay_then_srflx() -> None:
    assert default_candidate((HOST, SRFLX, RELAY)) == RELAY
    assert default_candidate((HOST, SRFLX)) == SRFLX
    assert default_candidate((HOST,)) == HOST
    assert default_candidate((HOST,), component=2) is None
