"""SDP parsing and serialisation (RFC 4566) on bodies as real user agents send them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from softphone.errors import SdpError
from softphone.sdp.model import (
    _PARSED,
    _PARSED_KEPT,
    _PARSED_LARGEST,
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    _Parser,
    parse_fmtp,
)

SIPP_AUDIO_VIDEO = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.1.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "m=video 6002 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n"
)

LINPHONE = (
    "v=0\r\n"
    "o=alice 2184 1390 IN IP4 192.168.1.20\r\n"
    "s=Talk\r\n"
    "c=IN IP4 192.168.1.20\r\n"
    "b=AS:380\r\n"
    "t=0 0\r\n"
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
    "m=audio 7078 RTP/AVP 96 0 8 101\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=rtcp-fb:* trr-int 1000\r\n"
    "m=video 9078 RTP/AVP 97 98\r\n"
    "a=rtpmap:97 VP8/90000\r\n"
    "a=rtpmap:98 H264/90000\r\n"
    "a=fmtp:98 profile-level-id=42801F\r\n"
    "a=rtcp-fb:97 nack pli\r\n"
    "a=rtcp-fb:97 ccm fir\r\n"
    "a=rtcp-fb:98 nack pli\r\n"
)

PJSUA = (
    "v=0\r\n"
    "o=- 3912345678 3912345678 IN IP4 10.0.0.5\r\n"
    "s=pjmedia\r\n"
    "b=AS:84\r\n"
    "t=0 0\r\n"
    "a=X-nat:0\r\n"
    "m=audio 4000 RTP/AVP 98 97 99 104 3 0 8 9 96\r\n"
    "c=IN IP4 10.0.0.5\r\n"
    "b=TIAS:64000\r\n"
    "a=rtcp:4001 IN IP4 10.0.0.5\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:98 speex/16000\r\n"
    "a=rtpmap:97 speex/8000\r\n"
    "a=rtpmap:99 speex/32000\r\n"
    "a=rtpmap:104 iLBC/8000\r\n"
    "a=fmtp:104 mode=30\r\n"
    "a=rtpmap:3 GSM/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-16\r\n"
    "a=ssrc:1234567 cname:3a2b1c0d\r\n"
)

BARESIP = (
    "v=0\r\n"
    "o=- 1520351811 2914178617 IN IP4 192.168.0.3\r\n"
    "s=-\r\n"
    "c=IN IP4 192.168.0.3\r\n"
    "t=0 0\r\n"
    "a=tool:baresip 1.0.0\r\n"
    "m=audio 10452 RTP/AVP 96 9 0 8 101\r\n"
    "b=AS:96\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"
    "a=label:1\r\n"
    "a=ssrc:2139285 cname:ebfe3a4c\r\n"
    "a=rtcp-mux\r\n"
    "a=ptime:20\r\n"
)

IPV6 = (
    "v=0\n"
    "o=- 1 1 IN IP6 ::1\n"
    "s=-\n"
    "c=IN IP6 ::1\n"
    "t=0 0\n"
    "m=audio 5004 RTP/AVP 0\n"
    "a=recvonly\n"
    "\n"
)

ALL = [SIPP_AUDIO_VIDEO, LINPHONE, PJSUA, BARESIP, IPV6]


def test_sipp_offer_has_audio_and_video() -> None:
    sdp = SessionDescription.parse(SIPP_AUDIO_VIDEO)
    assert sdp.origin == Origin("user1", "53655765", "2353687637", "IN", "IP4", "127.0.1.1")
    assert sdp.connection == Connection("IN", "IP4", "127.0.1.1")
    assert [m.media for m in sdp.media] == ["audio", "video"]
    audio, video = sdp.media
    assert (audio.port, audio.proto, audio.formats) == (6000, "RTP/AVP", ("0", "8", "101"))
    assert audio.rtpmap(101) == ("telephone-event", 8000, 1)
    assert audio.fmtp(101) == "0-16"
    assert video.port == 6002
    assert video.rtpmap(96) == ("H264", 90000, 1)
    assert video.fmtp(96) == "profile-level-id=42e01f;packetization-mode=1"
    assert sdp.connection_for(1) == Connection("IN", "IP4", "127.0.1.1")


def test_linphone_static_types_without_rtpmap_come_from_rfc3551() -> None:
    audio, _video = SessionDescription.parse(LINPHONE).media
    assert audio.attributes_named("rtpmap") == ["96 opus/48000/2", "101 telephone-event/8000"]
    assert audio.rtpmap(0) == ("PCMU", 8000, 1)
    assert audio.rtpmap(8) == ("PCMA", 8000, 1)
    assert audio.rtpmap(96) == ("opus", 48000, 2)
    assert audio.fmtp(96) == "useinbandfec=1"
    assert audio.rtpmap(97) is None
    assert audio.rtcp_fb(96) == ["trr-int 1000"]


def test_static_table_covers_video_and_g722() -> None:
    m = MediaDescription("video", 1, "RTP/AVP", ("26", "31", "34"))
    assert m.rtpmap(26) == ("JPEG", 90000, 1)
    assert m.rtpmap(31) == ("H261", 90000, 1)
    assert m.rtpmap(34) == ("H263", 90000, 1)
    a = MediaDescription("audio", 1, "RTP/AVP", ("9", "18", "3", "4"))
    assert a.rtpmap(9) == ("G722", 8000, 1)
    assert a.rtpmap(18) == ("G729", 8000, 1)
    assert a.rtpmap(3) == ("GSM", 8000, 1)
    assert a.rtpmap(4) == ("G723", 8000, 1)


def test_linphone_video_feedback_and_session_bandwidth() -> None:
    sdp = SessionDescription.parse(LINPHONE)
    video = sdp.media[1]
    assert video.rtcp_fb(97) == ["nack pli", "ccm fir"]
    assert video.rtcp_fb(98) == ["nack pli"]
    assert sdp.bandwidths == (("AS", 380),)
    assert sdp.bandwidth_kbps(1) == 380
    assert sdp.attribute("rtcp-xr") is not None


def test_pjsua_rtcp_attribute_and_media_level_connection() -> None:
    sdp = SessionDescription.parse(PJSUA)
    assert sdp.connection is None
    audio = sdp.media[0]
    assert sdp.connection_for(0) == Connection("IN", "IP4", "10.0.0.5")
    assert audio.rtcp == (4001, "10.0.0.5")
    assert audio.rtpmap(98) == ("speex", 16000, 1)
    assert audio.rtpmap(104) == ("iLBC", 8000, 1)
    assert audio.fmtp(104) == "mode=30"
    assert audio.bandwidths == (("TIAS", 64000),)
    assert sdp.bandwidth_kbps(0) == 64
    assert audio.direction == "sendrecv"
    assert sdp.attribute("X-nat") == "0"
    assert audio.attribute("ssrc") == "1234567 cname:3a2b1c0d"


def test_baresip_mux_ptime_and_direction() -> None:
    sdp = SessionDescription.parse(BARESIP)
    audio = sdp.media[0]
    assert audio.rtcp_mux is True
    assert audio.ptime == 20
    assert audio.rtcp is None
    assert audio.bandwidth_kbps() == 96
    assert audio.attribute("sendrecv") == ""
    assert Attribute("sendrecv") in audio.attributes
    assert SessionDescription.parse(SIPP_AUDIO_VIDEO).media[0].rtcp_mux is False


def test_ipv6_lf_only_and_trailing_blank_line() -> None:
    sdp = SessionDescription.parse(IPV6)
    assert sdp.connection == Connection("IN", "IP6", "::1")
    assert sdp.origin.addrtype == "IP6"
    assert sdp.media[0].direction == "recvonly"
    assert sdp.media_direction(0) == "recvonly"


def test_session_level_direction_is_the_fallback() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=sendonly\r\nm=audio 1 RTP/AVP 0\r\n"
    sdp = SessionDescription.parse(text)
    assert sdp.media[0].direction == "sendrecv"
    assert sdp.media_direction(0) == "sendonly"


@pytest.mark.parametrize("text", ALL)
def test_round_trip(text: str) -> None:
    sdp = SessionDescription.parse(text)
    out = str(sdp)
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    assert SessionDescription.parse(out) == sdp
    if "\r\n" in text:
        assert out == text


def test_bytes_input_and_bytes_output() -> None:
    sdp = SessionDescription.parse(BARESIP.encode())
    assert bytes(sdp) == BARESIP.encode()


def test_str_follows_rfc4566_field_order() -> None:
    sdp = SessionDescription(
        origin=Origin("-", "1", "2", "IN", "IP4", "10.0.0.1"),
        information="info",
        uri="http://example.com/",
        emails=("a@example.com",),
        phones=("+1 555",),
        connection=Connection("IN", "IP4", "10.0.0.1"),
        bandwidths=(("AS", 64),),
        attributes=(Attribute("sendrecv"),),
        media=(
            MediaDescription(
                "audio", 5000, "RTP/AVP", ("0",), information="voice",
                connection=Connection("IN", "IP4", "10.0.0.2"), bandwidths=(("TIAS", 64000),),
                attributes=(Attribute("ptime", "20"),),
            ),
        ),
    )
    letters = [line[0] for line in str(sdp).split("\r\n") if line]
    assert letters == list("vosiuepcbtamicba")
    assert SessionDescription.parse(str(sdp)) == sdp


def test_number_of_ports_and_unknown_lines() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\ny=whatever\r\nm=audio 5000/2 RTP/AVP 0\r\n"
    sdp = SessionDescription.parse(text)
    assert sdp.media[0].port == 5000
    assert sdp.media[0].number_of_ports == 2
    assert "m=audio 5000/2 RTP/AVP 0" in str(sdp)
    assert "y=" not in str(sdp)


def test_missing_s_and_t_are_tolerated() -> None:
    sdp = SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n")
    assert sdp.session_name == "-"
    assert sdp.times == ((0, 0),)
    assert len(sdp.media) == 1


def test_session_without_media_is_accepted() -> None:
    sdp = SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n")
    assert sdp.media == ()


GOOD_HEAD = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no v= line"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", "first line must be v="),
        ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "version"),
        ("v=0\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", "no o= line"),
        ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", "o= needs 6 fields"),
        (GOOD_HEAD + "m=audio abc RTP/AVP 0\r\n", "not a number"),
        (GOOD_HEAD + "m=audio 70000 RTP/AVP 0\r\n", "out of range"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP\r\n", "m= needs"),
        (GOOD_HEAD + "c=IN IP4\r\n", "c= needs 3 fields"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 0\r\nc=IN\r\n", "c= needs 3 fields"),
        (GOOD_HEAD + "b=AS\r\n", "b= must be"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=zero\r\n", "t= needs"),
        (GOOD_HEAD + "this is not sdp\r\n", "expected <type>=<value>"),
        (GOOD_HEAD + "o=- 1 1 IN IP4 1.2.3.4\r\n", "duplicate o="),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 0\r\nv=0\r\n", "not allowed after an m= line"),
    ],
)
def test_malformed_sdp_is_an_sdp_error(text: str, fragment: str) -> None:
    with pytest.raises(SdpError, match=fragment):
        SessionDescription.parse(text)


def test_error_names_the_line() -> None:
    with pytest.raises(SdpError, match=r"line 5 'm=audio x RTP/AVP 0'"):
        SessionDescription.parse(GOOD_HEAD + "m=audio x RTP/AVP 0\r\n")


def test_non_utf8_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="UTF-8"):
        SessionDescription.parse(b"v=0\r\no=\xff 1 1 IN IP4 1.2.3.4\r\n")


def test_sdp_error_means_488() -> None:
    assert SdpError("x").status == 488


def test_parse_fmtp() -> None:
    assert parse_fmtp(None) == {}
    assert parse_fmtp("useinbandfec=1; MaxAverageBitrate=20000;;stereo = 0") == {
        "useinbandfec": "1",
        "maxaveragebitrate": "20000",
        "stereo": "0",
    }
    assert parse_fmtp("0-16") == {"0-16": ""}
    assert parse_fmtp("profile-level-id=42e01f;packetization-mode=1") == {
        "profile-level-id": "42e01f",
        "packetization-mode": "1",
    }


def _with_origin(text: str, origin: str) -> str:
    head, _, rest = text.partition("\r\n")
    return head + "\r\no=" + origin + "\r\n" + rest.partition("\r\n")[2]


def test_a_body_seen_before_is_not_parsed_again() -> None:
    first = SessionDescription.parse(LINPHONE)
    again = SessionDescription.parse(LINPHONE.encode())
    assert again is first  # kept, not parsed again
    assert again == SessionDescription.parse(LINPHONE + "\r\n")  # another body: parsed


def test_a_new_o_line_on_a_kept_body_gives_its_own_origin() -> None:
    first = SessionDescription.parse(LINPHONE)
    later = SessionDescription.parse(_with_origin(LINPHONE, "alice 9999 1391 IN IP4 192.168.1.20"))
    assert later.origin == Origin("alice", "9999", "1391", "IN", "IP4", "192.168.1.20")
    assert first.origin.session_version == "1390"  # the kept description is untouched
    assert later.media == first.media and later.attributes == first.attributes
    assert str(later) == _with_origin(str(first), "alice 9999 1391 IN IP4 192.168.1.20")


def test_a_bad_o_line_on_a_kept_body_names_the_line() -> None:
    SessionDescription.parse(PJSUA)
    with pytest.raises(SdpError, match=r"line 2 'o=- 1 IN IP4 10.0.0.5': o= needs 6 fields"):
        SessionDescription.parse(_with_origin(PJSUA, "- 1 IN IP4 10.0.0.5"))


@pytest.mark.parametrize(
    "template",
    [
        "v=0\r\ns=-\r\no={o}\r\nt=0 0\r\n",  # o= not second: parsed as it comes
        "v=0\r\no={o}",  # no line end after o=
        "v=0\no={o}\ns=-\nt=0 0\n",  # LF only
        "v=0\r\no={o}\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\no={o}\r\n",  # and another further on
        "v=0\r\no={o}\r\ns=-\r\no={o}\r\n",
    ],
)
def test_parse_and_its_kept_bodies_agree(template: str) -> None:
    def outcome(parse: Callable[[str], SessionDescription], body: str) -> SessionDescription | str:
        try:
            return parse(body)
        except SdpError as exc:
            return str(exc)

    for origin in ("- 1 1 IN IP4 1.2.3.4", "- 2 7 IN IP4 1.2.3.4", "- 2 7 IN IP4 1.2.3.4", "- 2 7"):
        body = template.format(o=origin)
        assert outcome(SessionDescription.parse, body) == outcome(lambda b: _Parser(b).run(), body)


def test_the_kept_bodies_are_bounded() -> None:
    for n in range(_PARSED_KEPT * 2):
        SessionDescription.parse(GOOD_HEAD + f"m=audio {5000 + 2 * n} RTP/AVP 0\r\n")
    assert len(_PARSED) == _PARSED_KEPT
    large = GOOD_HEAD + "m=audio 5000 RTP/AVP 0\r\n" + "a=x\r\n" * (_PARSED_LARGEST // 5)
    first = SessionDescription.parse(large)
    assert SessionDescription.parse(large) is not first and len(first.media[0].attributes) == _PARSED_LARGEST // 5
    assert (GOOD_HEAD.replace("o=- 1 1 IN IP4 1.2.3.4\r\n", "") + "m=audio 5000 RTP/AVP 0\r\n") not in _PARSED
