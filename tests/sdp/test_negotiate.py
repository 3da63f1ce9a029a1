"""Offer/answer (RFC 3264): building offers, answering real offers, checking answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from softphone.errors import SdpError
from softphone.sdp.model import Connection, SessionDescription
from softphone.sdp.negotiate import (
    CodecSpec,
    NegotiatedStream,
    SessionConfig,
    StreamConfig,
    answer_offer,
    build_offer,
    process_answer,
)

OPUS = CodecSpec("opus", 48000, 2, fmtp="useinbandfec=1")
G722 = CodecSpec("G722", 8000, payload_type=9)
PCMU = CodecSpec("PCMU", 8000, payload_type=0)
PCMA = CodecSpec("PCMA", 8000, payload_type=8)
DTMF = CodecSpec("telephone-event", 8000, fmtp="0-16")
FB = ("nack", "nack pli", "ccm fir")
VP8 = CodecSpec("VP8", 90000, rtcp_fb=FB)
H264 = CodecSpec("H264", 90000, fmtp="profile-level-id=42e01f;packetization-mode=1", rtcp_fb=FB)

AUDIO = StreamConfig("audio", 40000, (OPUS, G722, PCMU, PCMA, DTMF), ptime=20)
VIDEO = StreamConfig("video", 40002, (VP8, H264), bandwidth_kbps=512)
CFG = SessionConfig("192.0.2.10", (AUDIO, VIDEO), session_id=42, session_version=1)

HEAD = "v=0\r\no=peer 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"

SIPP = HEAD + (
    "m=audio 6000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "m=video 6002 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=4d001f;packetization-mode=1\r\n"
)

LINPHONE = HEAD + (
    "m=audio 7078 RTP/AVP 96 0 8 101\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "m=video 9078 RTP/AVP 97 98\r\n"
    "a=rtpmap:97 VP8/90000\r\n"
    "a=rtpmap:98 H264/90000\r\n"
    "a=fmtp:98 profile-level-id=42801F\r\n"
    "a=rtcp-fb:97 nack pli\r\n"
    "a=rtcp-fb:97 ccm fir\r\n"
    "a=rtcp-fb:98 nack pli\r\n"
)

PJSUA = (
    "v=0\r\no=- 3912345678 3912345678 IN IP4 10.0.0.5\r\ns=pjmedia\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 98 97 104 3 0 8 9 96\r\n"
    "c=IN IP4 10.0.0.5\r\n"
    "b=TIAS:64000\r\n"
    "a=rtcp:4005 IN IP4 10.0.0.6\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:98 speex/16000\r\n"
    "a=rtpmap:97 speex/8000\r\n"
    "a=rtpmap:104 iLBC/8000\r\n"
    "a=rtpmap:3 GSM/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:96 telephone-event/16000\r\n"
)

BARESIP = HEAD + (
    "m=audio 10452 RTP/AVP 111 9 0 8 126\r\n"
    "b=AS:96\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 stereo=1;sprop-stereo=1\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=ptime:40\r\n"
)


def audio_offer(direction: str = "sendrecv", address: str = "198.51.100.7") -> SessionDescription:
    return SessionDescription.parse(
        f"v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio 5000 RTP/AVP 0\r\na={direction}\r\n"
    )


def answer(text: str, cfg: SessionConfig = CFG) -> tuple[SessionDescription, list[NegotiatedStream]]:
    return answer_offer(SessionDescription.parse(text), cfg)


# -- build_offer -------------------------------------------------------------


def test_offer_numbers_dynamic_types_from_96_and_keeps_static_ones() -> None:
    offer = build_offer(CFG)
    audio, video = offer.media
    assert audio.formats == ("96", "9", "0", "8", "97")
    assert audio.rtpmap(96) == ("opus", 48000, 2)
    assert audio.rtpmap(97) == ("telephone-event", 8000, 1)
    assert video.formats == ("96", "97")
    assert video.rtpmap(97) == ("H264", 90000, 1)


def test_offer_writes_rtpmap_for_every_codec_including_static() -> None:
    audio = build_offer(CFG).media[0]
    assert audio.attributes_named("rtpmap") == [
        "96 opus/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000", "97 telephone-event/8000",
    ]
    assert audio.fmtp(96) == "useinbandfec=1"
    assert audio.fmtp(97) == "0-16"
    assert audio.ptime == 20
    assert audio.direction == "sendrecv"
    assert audio.declared_direction == "sendrecv"


def test_offer_video_has_feedback_bandwidth_and_avp() -> None:
    video = build_offer(CFG).media[1]
    assert video.proto == "RTP/AVP"
    assert video.rtcp_fb(96) == list(FB)
    assert video.rtcp_fb(97) == list(FB)
    assert video.fmtp(97) == "profile-level-id=42e01f;packetization-mode=1"
    assert video.bandwidths == (("AS", 512),)


def test_offer_session_fields_and_round_trip() -> None:
    offer = build_offer(CFG)
    assert offer.origin.session_id == "42"
    assert offer.origin.session_version == "1"
    assert offer.connection == Connection("IN", "IP4", "192.0.2.10")
    assert offer.session_name == "softphone"
    assert SessionDescription.parse(str(offer)) == offer


def test_offer_ipv6_address() -> None:
    offer = build_offer(replace(CFG, address="2001:db8::10"))
    assert offer.connection == Connection("IN", "IP6", "2001:db8::10")
    assert offer.origin.addrtype == "IP6"


def test_offer_port_zero_stream_and_rtcp_port_and_direction() -> None:
    cfg = replace(CFG, streams=(
        replace(AUDIO, rtcp_port=40009, direction="sendonly"), replace(VIDEO, port=0),
    ))
    audio, video = build_offer(cfg).media
    assert audio.rtcp == (40009, "192.0.2.10")
    assert audio.direction == "sendonly"
    assert video.port == 0
    assert video.formats == ("96", "97")


def test_offer_dynamic_numbers_skip_preassigned_ones() -> None:
    cfg = replace(CFG, streams=(
        StreamConfig("audio", 1, (OPUS, CodecSpec("telephone-event", 8000, payload_type=96))),
    ))
    assert build_offer(cfg).media[0].formats == ("97", "96")


def test_offer_rejects_unknown_direction() -> None:
    with pytest.raises(SdpError, match="direction"):
        build_offer(replace(CFG, streams=(replace(AUDIO, direction="both"),)))


# -- answer_offer --------------------------------------------------------------


def test_answer_sipp_offer_audio_and_video() -> None:
    sdp, streams = answer(SIPP)
    audio, video = sdp.media
    assert audio.port == 40000 and video.port == 40002
    assert audio.formats == ("0", "8", "101")
    assert audio.rtpmap(101) == ("telephone-event", 8000, 1)
    assert video.formats == ("96",)
    # any profile is accepted; the answer carries the offer's profile-level-id
    assert video.fmtp(96) == "profile-level-id=4d001f;packetization-mode=1"
    a, v = streams
    assert a.codec is not None and a.codec.name == "PCMU"
    assert (a.send_payload_type, a.recv_payload_type, a.payload_type) == (0, 0, 0)
    assert a.telephone_event_pt == 101
    assert a.remote_address == "198.51.100.7" and a.remote_port == 6000
    assert a.remote_rtcp == ("198.51.100.7", 6001)
    assert a.local_port == 40000 and a.direction == "sendrecv" and not a.declined
    assert v.codec is not None and v.codec.name == "H264" and v.payload_type == 96
    assert v.remote_fmtp == "profile-level-id=4d001f;packetization-mode=1"


def test_answer_lists_common_codecs_in_our_order_with_offer_numbers() -> None:
    sdp, streams = answer(LINPHONE)
    audio, _video = sdp.media
    assert audio.formats == ("96", "0", "8", "101")
    assert audio.fmtp(96) == "useinbandfec=1"
    assert streams[0].codec == replace(OPUS, payload_type=96)
    assert streams[0].telephone_event_pt == 101


def test_answer_linphone_video_h264_without_mode_is_not_common() -> None:
    sdp, streams = answer(LINPHONE)
    video = sdp.media[1]
    assert video.formats == ("97",)
    assert streams[1].codec is not None and streams[1].codec.name == "VP8"
    assert streams[1].rtcp_fb == ("nack pli", "ccm fir")
    assert video.rtcp_fb(97) == ["nack pli", "ccm fir"]


def test_answer_reuses_dynamic_payload_types_of_the_offer() -> None:
    sdp, streams = answer(BARESIP)
    audio = sdp.media[0]
    assert audio.formats == ("111", "9", "0", "8", "126")
    assert audio.rtpmap(111) == ("opus", 48000, 2)
    s = streams[0]
    assert (s.send_payload_type, s.recv_payload_type, s.telephone_event_pt) == (111, 111, 126)
    assert s.remote_fmtp == "stereo=1;sprop-stereo=1"
    assert s.ptime == 40
    assert s.remote_bandwidth_kbps == 96


def test_answer_pjsua_rtcp_address_bandwidth_and_dtmf_rate() -> None:
    sdp, streams = answer(PJSUA, replace(CFG, streams=(AUDIO,)))
    s = streams[0]
    assert s.codec is not None and s.codec.name == "G722" and s.payload_type == 9
    assert s.remote_rtcp == ("10.0.0.6", 4005)
    assert s.remote_bandwidth_kbps == 64
    assert s.telephone_event_pt is None  # telephone-event/16000 does not match ours at 8000
    assert sdp.media[0].formats == ("9", "0", "8")


def test_answer_echoes_rtcp_mux_only_when_offered_and_configured() -> None:
    sdp, streams = answer(BARESIP)
    assert not sdp.media[0].rtcp_mux and not streams[0].rtcp_mux
    assert streams[0].remote_rtcp == ("198.51.100.7", 10453)
    muxed = replace(CFG, streams=(replace(AUDIO, rtcp_mux=True),))
    sdp, streams = answer(BARESIP, muxed)
    assert sdp.media[0].rtcp_mux and streams[0].rtcp_mux
    assert streams[0].remote_rtcp == ("198.51.100.7", 10452)
    sdp, streams = answer(SIPP, muxed)
    assert not sdp.media[0].rtcp_mux and not streams[0].rtcp_mux


def test_answer_ipv6() -> None:
    offer = (
        "v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 ::1\nt=0 0\nm=audio 5004 RTP/AVP 0\na=recvonly\n\n"
    )
    sdp, streams = answer(offer, replace(CFG, address="::1"))
    assert sdp.connection == Connection("IN", "IP6", "::1")
    assert streams[0].remote_address == "::1"
    assert streams[0].direction == "sendonly"
    assert sdp.media[0].direction == "sendonly"


def test_answer_has_as_many_m_lines_as_the_offer() -> None:
    sdp, streams = answer(SIPP, replace(CFG, streams=(AUDIO,)))
    assert len(sdp.media) == 2 and len(streams) == 2
    assert sdp.media[1].port == 0
    assert sdp.media[1].formats == ("96",)
    assert streams[1].declined and streams[1].codec is None and streams[1].kind == "video"


@pytest.mark.parametrize(
    ("offered", "ours", "expected"),
    [
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendrecv", "recvonly", "recvonly"),
        ("recvonly", "recvonly", "inactive"),
        ("sendonly", "sendonly", "inactive"),
    ],
)
def test_answer_direction(offered: str, ours: str, expected: str) -> None:
    cfg = replace(CFG, streams=(replace(AUDIO, direction=ours),))
    sdp, streams = answer_offer(audio_offer(offered), cfg)
    assert streams[0].direction == expected
    assert sdp.media[0].direction == expected


@pytest.mark.parametrize(("offered", "expected"), [("sendrecv", "recvonly"), ("recvonly", "inactive")])
def test_old_style_hold_with_zero_address(offered: str, expected: str) -> None:
    _sdp, streams = answer_offer(audio_offer(offered, "0.0.0.0"), CFG)
    assert streams[0].direction == expected
    assert streams[0].remote_address == "0.0.0.0"
    assert not streams[0].declined


def test_session_level_hold_attribute_applies() -> None:
    text = "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\na=sendonly\r\n"
    _sdp, streams = answer(text + "m=audio 5000 RTP/AVP 0\r\n")
    assert streams[0].direction == "recvonly"


@pytest.mark.parametrize(
    "m_line",
    [
        "m=audio 5000 RTP/SAVP 0\r\n",
        "m=audio 5000 UDP/TLS/RTP/SAVPF 0\r\n",
        "m=audio 5000 RTP/SAVPF 0\r\n",
        "m=audio 0 RTP/AVP 0\r\n",
        "m=application 5000 UDP/BFCP *\r\n",
        "m=audio 5000 RTP/AVP 18\r\n",
        "m=audio 5000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/1\r\n",
    ],
)
def test_unacceptable_stream_is_declined_with_port_zero(m_line: str) -> None:
    sdp, streams = answer(SIPP + m_line)
    declined = sdp.media[2]
    offered = SessionDescription.parse(SIPP + m_line).media[2]
    assert declined.port == 0
    assert declined.media == offered.media and declined.proto == offered.proto
    assert declined.formats == offered.formats
    assert streams[2].declined and streams[2].remote_address is None
    assert not streams[0].declined


def test_second_stream_of_a_kind_is_declined_without_config() -> None:
    sdp, streams = answer(SIPP + "m=audio 7000 RTP/AVP 0\r\n")
    assert sdp.media[2].port == 0 and streams[2].declined
    two = replace(CFG, streams=(AUDIO, VIDEO, replace(AUDIO, port=41000)))
    sdp, streams = answer(SIPP + "m=audio 7000 RTP/AVP 0\r\n", two)
    assert sdp.media[2].port == 41000 and not streams[2].declined


def test_stream_configured_with_port_zero_is_declined() -> None:
    sdp, streams = answer(SIPP, replace(CFG, streams=(AUDIO, replace(VIDEO, port=0))))
    assert sdp.media[1].port == 0 and streams[1].declined


def test_case_insensitive_codec_names() -> None:
    text = HEAD + "m=audio 5000 RTP/AVP 97\r\na=rtpmap:97 pcma/8000\r\n"
    _sdp, streams = answer(text)
    assert streams[0].codec is not None and streams[0].codec.name == "PCMA"
    assert streams[0].payload_type == 97


def test_h264_packetization_mode_mismatch_is_declined() -> None:
    text = SIPP.replace("packetization-mode=1", "packetization-mode=0")
    sdp, streams = answer(text)
    assert sdp.media[1].port == 0 and streams[1].declined
    assert not streams[0].declined


def test_h264_mode_zero_both_sides_matches() -> None:
    h264_mode0 = CodecSpec("H264", 90000, fmtp="profile-level-id=42e01f")
    cfg = replace(CFG, streams=(AUDIO, replace(VIDEO, codecs=(h264_mode0,))))
    sdp, _streams = answer(LINPHONE.replace("97 98", "98").replace("a=rtpmap:97 VP8/90000\r\n", ""), cfg)
    assert sdp.media[1].formats == ("98",)
    assert sdp.media[1].fmtp(98) == "profile-level-id=42801F"


def test_no_common_codec_anywhere_is_an_sdp_error() -> None:
    text = HEAD + "m=audio 5000 RTP/AVP 18 3\r\nm=video 5002 RTP/AVP 31\r\n"
    with pytest.raises(SdpError, match="no acceptable media") as info:
        answer(text)
    assert "G729/8000" in str(info.value)
    assert info.value.status == 488


def test_offer_without_media_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="no acceptable media"):
        answer(HEAD)


def test_only_secure_media_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="RTP/SAVP needs SRTP"):
        answer(HEAD + "m=audio 5000 RTP/SAVP 0\r\n")


# -- process_answer --------------------------------------------------------------


def test_offer_answer_round_between_two_of_us() -> None:
    offer = build_offer(CFG)
    bob = SessionConfig("192.0.2.20", (replace(AUDIO, port=50000, codecs=(PCMU, DTMF)), VIDEO))
    answer_sdp, bob_streams = answer_offer(SessionDescription.parse(str(offer)), bob)
    ours = process_answer(offer, SessionDescription.parse(str(answer_sdp)))
    audio, video = ours
    assert audio.codec is not None and audio.codec.name == "PCMU"
    assert audio.remote_address == "192.0.2.20" and audio.remote_port == 50000
    assert audio.local_port == 40000
    assert audio.telephone_event_pt == bob_streams[0].telephone_event_pt == 97
    assert audio.send_payload_type == bob_streams[0].recv_payload_type
    assert video.codec is not None and video.codec.name == "VP8"
    assert video.rtcp_fb == FB
    assert video.remote_bandwidth_kbps == 512


def test_answer_with_its_own_payload_numbers_sets_send_and_recv_types() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    text = HEAD + (
        "m=audio 6000 RTP/AVP 111 101\r\n"
        "a=rtpmap:111 OPUS/48000/2\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=ptime:30\r\n"
    )
    s = process_answer(offer, SessionDescription.parse(text))[0]
    assert (s.send_payload_type, s.recv_payload_type) == (111, 96)
    assert s.payload_type == 111
    assert s.codec is not None and s.codec.payload_type == 111 and s.codec.name == "OPUS"
    assert s.codec.fmtp == "useinbandfec=1"
    assert s.telephone_event_pt == 101
    assert s.ptime == 30
    assert s.remote_rtcp == ("198.51.100.7", 6001)


def test_answer_static_type_without_rtpmap_is_understood() -> None:
    offer = build_offer(CFG)
    s = process_answer(offer, SessionDescription.parse(HEAD + "m=audio 6000 RTP/AVP 8\r\nm=video 0 RTP/AVP 96\r\n"))
    assert s[0].codec is not None and s[0].codec.name == "PCMA" and s[0].payload_type == 8
    assert s[1].declined and s[1].local_port == 40002


def test_answer_extra_unoffered_format_is_ignored_beside_an_offered_one() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    s = process_answer(offer, SessionDescription.parse(HEAD + "m=audio 6000 RTP/AVP 18 0\r\n"))[0]
    assert s.codec is not None and s.codec.name == "PCMU"


def test_answer_codec_never_offered_is_an_sdp_error() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    with pytest.raises(SdpError, match="no codec that was offered"):
        process_answer(offer, SessionDescription.parse(HEAD + "m=audio 6000 RTP/AVP 18\r\n"))


def test_answer_h264_with_other_packetization_mode_was_not_offered() -> None:
    offer = build_offer(replace(CFG, streams=(replace(VIDEO, codecs=(H264,)),)))
    text = HEAD + "m=video 6000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    with pytest.raises(SdpError, match="no codec that was offered"):
        process_answer(offer, SessionDescription.parse(text))


def test_answer_m_line_count_must_match() -> None:
    with pytest.raises(SdpError, match="m-lines"):
        process_answer(build_offer(CFG), SessionDescription.parse(HEAD + "m=audio 6000 RTP/AVP 0\r\n"))


def test_answer_media_type_must_match() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    with pytest.raises(SdpError, match="answer has video"):
        process_answer(offer, SessionDescription.parse(HEAD + "m=video 6000 RTP/AVP 0\r\n"))


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("sendonly", "recvonly", "sendonly"),
        ("sendonly", "inactive", "inactive"),
        ("recvonly", "sendonly", "recvonly"),
        ("sendrecv", "recvonly", "sendonly"),
        ("sendrecv", "sendonly", "recvonly"),
        ("inactive", "inactive", "inactive"),
    ],
)
def test_answer_direction_is_applied(ours: str, theirs: str, expected: str) -> None:
    offer = build_offer(replace(CFG, streams=(replace(AUDIO, direction=ours),)))
    text = HEAD + f"m=audio 6000 RTP/AVP 0\r\na={theirs}\r\n"
    assert process_answer(offer, SessionDescription.parse(text))[0].direction == expected


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("sendonly", "sendonly"), ("recvonly", "recvonly"), ("inactive", "sendrecv"), ("sendonly", "sendrecv")],
)
def test_answer_direction_contradicting_the_offer_is_an_sdp_error(ours: str, theirs: str) -> None:
    offer = build_offer(replace(CFG, streams=(replace(AUDIO, direction=ours),)))
    text = HEAD + f"m=audio 6000 RTP/AVP 0\r\na={theirs}\r\n"
    with pytest.raises(SdpError, match="contradicts"):
        process_answer(offer, SessionDescription.parse(text))


def test_answer_with_zero_address_means_we_do_not_send() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
    assert process_answer(offer, SessionDescription.parse(text))[0].direction == "recvonly"


def test_answer_rtcp_mux_needs_both_sides() -> None:
    muxed = build_offer(replace(CFG, streams=(replace(AUDIO, rtcp_mux=True),)))
    plain = build_offer(replace(CFG, streams=(AUDIO,)))
    text = HEAD + "m=audio 6000 RTP/AVP 0\r\na=rtcp-mux\r\n"
    s = process_answer(muxed, SessionDescription.parse(text))[0]
    assert s.rtcp_mux and s.remote_rtcp == ("198.51.100.7", 6000)
    assert not process_answer(plain, SessionDescription.parse(text))[0].rtcp_mux


def test_answer_rtcp_attribute_with_address() -> None:
    offer = build_offer(replace(CFG, streams=(AUDIO,)))
    text = HEAD + "m=audio 6000 RTP/AVP 0\r\na=rtcp:6009 IN IP4 203.0.113.9\r\n"
    assert process_answer(offer, SessionDescription.parse(text))[0].remote_rtcp == ("203.0.113.9", 6009)


def _fresh_codecs(stream: StreamConfig) -> StreamConfig:
    """The same codecs in a new tuple: the codec matching of the offer is worked out anew."""
    return replace(stream, codecs=tuple(replace(c) for c in stream.codecs))


@pytest.mark.parametrize("text", [SIPP, LINPHONE, PJSUA, BARESIP])
def test_an_offer_answered_again_gets_what_a_fresh_matching_gives(text: str) -> None:
    first = answer_offer(SessionDescription.parse(text), CFG)
    again = answer_offer(SessionDescription.parse(text), CFG)  # the codecs matched once are reused
    fresh_cfg = replace(CFG, streams=tuple(_fresh_codecs(s) for s in CFG.streams))
    fresh = answer_offer(SessionDescription.parse(text), fresh_cfg)
    assert str(first[0]) == str(again[0]) == str(fresh[0])
    assert first[1] == again[1] == fresh[1]


def test_offers_that_differ_only_in_an_fmtp_or_rtcp_fb_are_matched_each_for_itself() -> None:
    mode_1 = answer_offer(SessionDescription.parse(SIPP), CFG)[1][1]
    assert mode_1.codec is not None and mode_1.codec.name == "H264"
    mode_0 = SIPP.replace("packetization-mode=1", "packetization-mode=0")
    # ours is packetization-mode=1: the same rtpmap with mode 0 has no common video codec
    assert answer_offer(SessionDescription.parse(mode_0), CFG)[1][1].declined
    with_fb = LINPHONE.replace("a=rtcp-fb:97 ccm fir\r\n", "")
    plain, fewer = (answer_offer(SessionDescription.parse(t), CFG)[1][1] for t in (LINPHONE, with_fb))
    assert plain.rtcp_fb == ("nack pli", "ccm fir") and fewer.rtcp_fb == ("nack pli",)
