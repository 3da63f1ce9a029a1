"""a=crypto (RFC 4568) parsing, writing and negotiation: pure, with fixed keys."""

from __future__ import annotations

import pytest

from softphone.errors import SdpError
from softphone.sdp import SessionDescription
from softphone.sdp.crypto import CryptoAttribute, KeyParams, SrtpKeys
from softphone.sdp.negotiate import CodecSpec, SessionConfig, StreamConfig, answer_offer, build_offer, process_answer

PCMU = CodecSpec("PCMU", 8000, payload_type=0)
KEY30 = bytes(range(30))
KEY28 = bytes(range(100, 128))
THEIRS30 = bytes(range(50, 80))
B64_30 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"

OURS = (
    CryptoAttribute.make(1, "AEAD_AES_128_GCM", KEY28),
    CryptoAttribute.make(2, "AES_CM_128_HMAC_SHA1_80", KEY30),
    CryptoAttribute.make(3, "AES_CM_128_HMAC_SHA1_32", KEY30),
)


def session(crypto=(), mandatory=False, port=4000):
    return SessionConfig("127.0.0.1", (StreamConfig("audio", port, (PCMU,), crypto=crypto,
                                                    crypto_mandatory=mandatory),))


def offer_text(proto="RTP/SAVP", *crypto_lines):
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=audio 5000 {proto} 0", *[f"a=crypto:{c}" for c in crypto_lines]]
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


# ------------------------------------------------------------------ the attribute


@pytest.mark.parametrize("text", [
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4",
    f"7 AES_CM_128_HMAC_SHA1_32 inline:{B64_30}|1:1",
    f"2 F8_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4;inline:{B64_30}|2^20|2:4 FEC_ORDER=FEC_SRTP",
])
def test_crypto_line_round_trips(text: str) -> None:
    assert str(CryptoAttribute.parse(text)) == text


def test_crypto_line_fields() -> None:
    line = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4")
    assert (line.tag, line.suite, line.key_salt) == (1, "AES_CM_128_HMAC_SHA1_80", KEY30)
    assert line.keys[0] == KeyParams(KEY30, "2^20", (1, 4))
    assert line.usable() == "MKI is not supported"
    assert CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20").usable() is None


@pytest.mark.parametrize("text, message", [
    ("1 AES_CM_128_HMAC_SHA1_80", "needs <tag>"),
    (f"x AES_CM_128_HMAC_SHA1_80 inline:{B64_30}", "tag"),
    (f"1 AES-CM! inline:{B64_30}", "suite"),
    ("1 AES_CM_128_HMAC_SHA1_80 uri:http://x", "inline"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64", "base64"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|bogus", "lifetime nor an MKI"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|1:0", "MKI length"),
])
def test_malformed_crypto_line_is_an_sdp_error(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        CryptoAttribute.parse(text)


def test_wrong_key_length_is_unusable_and_make_refuses_it() -> None:
    short = CryptoAttribute.parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMU")
    assert "must be 30 bytes" in (short.usable() or "")
    with pytest.raises(ValueError):
        CryptoAttribute.make(1, "AEAD_AES_128_GCM", KEY30)


def test_keys_never_show_in_repr() -> None:
    assert "\\x" not in repr(SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY30, THEIRS30))


# ------------------------------------------------------------------ offer / answer


def test_mandatory_offer_is_savp_with_a_crypto_line_per_suite() -> None:
    m = build_offer(session(OURS, mandatory=True)).media[0]
    assert m.proto == "RTP/SAVP"
    assert [CryptoAttribute.parse(v).suite for v in m.attributes_named("crypto")] == [c.suite for c in OURS]


def test_optional_offer_is_avp_with_crypto_and_plain_offer_has_none() -> None:
    m = build_offer(session(OURS)).media[0]
    assert m.proto == "RTP/AVP" and len(m.attributes_named("crypto")) == 3
    plain = build_offer(session()).media[0]
    assert plain.proto == "RTP/AVP" and plain.attributes_named("crypto") == []


def test_answer_picks_the_first_offered_suite_we_have_with_our_key() -> None:
    offer = offer_text("RTP/SAVP", "5 AES_CM_128_HMAC_SHA1_32 " + str(KeyParams(THEIRS30)),
                       "6 AES_CM_128_HMAC_SHA1_80 " + str(KeyParams(THEIRS30)))
    answer, streams = answer_offer(offer, session(OURS))
    (line,) = answer.media[0].attributes_named("crypto")
    assert answer.media[0].proto == "RTP/SAVP"
    assert CryptoAttribute.parse(line) == CryptoAttribute(5, "AES_CM_128_HMAC_SHA1_32", (KeyParams(KEY30),))
    assert streams[0].srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_32", KEY30, THEIRS30)


def test_answer_skips_unsupported_suites_and_mki() -> None:
    offer = offer_text("RTP/SAVP", "1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 60,
                       f"2 AES_CM_128_HMAC_SHA1_80 inline:{B64_30}|2^20|1:4",
                       "3 AES_CM_128_HMAC_SHA1_80 " + str(KeyParams(THEIRS30)))
    _, streams = answer_offer(offer, session(OURS))
    assert streams[0].srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY30, THEIRS30)


def test_savp_offer_without_usable_crypto_is_488() -> None:
    offer = offer_text("RTP/SAVP", "1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 60)
    with pytest.raises(SdpError, match="no usable crypto suite") as info:
        answer_offer(offer, session(OURS))
    assert info.value.status == 488


def test_plain_offer_when_mandatory_is_488_and_plain_rtp_otherwise() -> None:
    with pytest.raises(SdpError, match="media_encryption_mandatory"):
        answer_offer(offer_text("RTP/AVP"), session(OURS, mandatory=True))
    answer, streams = answer_offer(offer_text("RTP/AVP"), session(OURS))
    assert streams[0].srtp is None and answer.media[0].attributes_named("crypto") == []


def test_best_effort_offer_answered_plain_when_srtp_is_off() -> None:
    offer = offer_text("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 " + str(KeyParams(THEIRS30)))
    answer, streams = answer_offer(offer, session())
    assert streams[0].srtp is None and answer.media[0].attributes_named("crypto") == []


def test_malformed_crypto_in_offer_is_an_sdp_error_not_a_crash() -> None:
    with pytest.raises(SdpError, match="base64"):
        answer_offer(offer_text("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%%%"), session(OURS))


def test_offer_answer_round_trip_gives_mirrored_keys() -> None:
    theirs = (CryptoAttribute.make(1, "AES_CM_128_HMAC_SHA1_80", THEIRS30),)
    offer = SessionDescription.parse(str(build_offer(session(OURS, mandatory=True))))
    answer, answered = answer_offer(offer, session(theirs, mandatory=True, port=6000))
    offered = process_answer(offer, SessionDescription.parse(str(answer)))
    assert answered[0].srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", THEIRS30, KEY30)
    assert offered[0].srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY30, THEIRS30)


def test_answer_without_crypto_to_a_savp_offer_ends_the_call() -> None:
    offer = build_offer(session(OURS, mandatory=True))
    plain = SessionDescription.parse(str(offer).replace("RTP/SAVP", "RTP/AVP").split("a=crypto")[0]
                                     .rsplit("\r\n", 1)[0] + "\r\n")
    with pytest.raises(SdpError):
        process_answer(offer, plain)
    savp_no_crypto = "\r\n".join(ln for ln in str(offer).split("\r\n") if not ln.startswith("a=crypto"))
    with pytest.raises(SdpError, match="no a=crypto line"):
        process_answer(offer, SessionDescription.parse(savp_no_crypto))


def test_answer_with_a_tag_we_never_offered_is_an_sdp_error() -> None:
    offer = build_offer(session(OURS))
    text = str(offer).replace("a=crypto:1 AEAD_AES_128_GCM", "a=crypto:9 AEAD_AES_128_GCM")
    answer = SessionDescription.parse(
        "\r\n".join(ln for ln in text.split("\r\n") if not ln.startswith("a=crypto:2")
                    and not ln.startswith("a=crypto:3")))
    with pytest.raises(SdpError, match="answers no crypto line"):
        process_answer(offer, answer)


def test_optional_offer_answered_plain_is_plain_rtp() -> None:
    offer = build_offer(session(OURS))
    plain = "\r\n".join(ln for ln in str(offer).split("\r\n") if not ln.startswith("a=crypto"))
    assert process_answer(offer, SessionDescription.parse(plain))[0].srtp is None
