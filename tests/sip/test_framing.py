from __future__ import annotations

import pytest

from softphone.errors import ParseError
from softphone.sip.framing import (
    KEEPALIVE_PING,
    KEEPALIVE_PONG,
    Keepalive,
    StreamFramer,
)
from softphone.sip.message import Request, parse_message


def message(
    body: bytes = b"", *, cseq: int = 1, length_line: str | None = None
) -> bytes:
    lines = [
        "OPTIONS sip:bob@10.0.0.2;transport=tcp SIP/2.0",
        "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK" + str(cseq),
        "From: <sip:alice@10.0.0.1>;tag=1",
        "To: <sip:bob@10.0.0.2>",
        "Call-ID: frame@10.0.0.1",
        f"CSeq: {cseq} OPTIONS",
        length_line if length_line is not None else f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


ONE = message(b"hello body", cseq=1)
TWO = message(b"", cseq=2)
THREE = message(b"v=0\r\n\r\n\r\n", cseq=3)  # a body with blank lines of its own
PING = Keepalive("ping")
PONG = Keepalive("pong")


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> list[bytes | Keepalive]:
    out: list[bytes | Keepalive] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


def test_keepalive_constants() -> None:
    assert KEEPALIVE_PING == b"\r\n\r\n"
    assert KEEPALIVE_PONG == b"\r\n"


def test_one_message_in_one_feed() -> None:
    framer = StreamFramer()
    assert framer.feed(ONE) == [ONE]
    assert framer.pending == 0


def test_messages_are_parseable_with_stream_true() -> None:
    [raw] = StreamFramer().feed(THREE)
    assert isinstance(raw, bytes)
    request = parse_message(raw, stream=True)
    assert isinstance(request, Request)
    assert request.body == b"v=0\r\n\r\n\r\n"


def test_several_messages_in_one_feed() -> None:
    assert StreamFramer().feed(ONE + TWO + THREE) == [ONE, TWO, THREE]


def test_byte_by_byte() -> None:
    framer = StreamFramer()
    data = ONE + TWO + THREE
    out = feed_all(framer, [data[i : i + 1] for i in range(len(data))])
    assert out == [ONE, TWO, THREE]
    assert framer.pending == 0


def test_every_split_point() -> None:
    data = ONE + TWO
    for cut in range(1, len(data)):
        framer = StreamFramer()
        first = framer.feed(data[:cut])
        second = framer.feed(data[cut:])
        assert first + second == [ONE, TWO], cut
        assert len(first) == (1 if cut >= len(ONE) else 0), cut


def test_message_emitted_only_when_body_complete() -> None:
    framer = StreamFramer()
    assert framer.feed(ONE[:-1]) == []
    assert framer.pending == len(ONE) - 1
    assert framer.feed(ONE[-1:]) == [ONE]


def test_ping_and_pong() -> None:
    framer = StreamFramer()
    assert framer.feed(KEEPALIVE_PING) == [PING]
    assert framer.feed(KEEPALIVE_PONG) == [PONG]
    assert framer.feed(KEEPALIVE_PING + KEEPALIVE_PING) == [PING, PING]


def test_keepalives_between_messages() -> None:
    framer = StreamFramer()
    data = KEEPALIVE_PING + ONE + KEEPALIVE_PING + TWO + KEEPALIVE_PONG + THREE
    assert framer.feed(data) == [PING, ONE, PING, TWO, PONG, THREE]


def test_keepalives_byte_by_byte_still_answer_the_ping() -> None:
    framer = StreamFramer()
    data = KEEPALIVE_PING + ONE
    out = feed_all(framer, [data[i : i + 1] for i in range(len(data))])
    assert PING in out
    assert out[-1] == ONE
    assert all(item in (PING, PONG) for item in out[:-1])


def test_ping_split_in_the_middle_of_its_crs() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n") == [PING]


def test_pong_then_message_in_one_feed() -> None:
    assert StreamFramer().feed(KEEPALIVE_PONG + ONE) == [PONG, ONE]


def test_bare_lf_before_message_is_ignored() -> None:
    assert StreamFramer().feed(b"\n" + ONE) == [ONE]


def test_compact_content_length() -> None:
    data = message(b"abc", length_line="l : 3")
    assert StreamFramer().feed(data + TWO) == [data, TWO]


def test_lf_only_header_section() -> None:
    head, _, body = ONE.partition(b"\r\n\r\n")
    data = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    assert StreamFramer().feed(data + TWO) == [data, TWO]


def test_content_length_with_surrounding_whitespace() -> None:
    data = message(b"abc", length_line="content-LENGTH:   3  ")
    assert StreamFramer().feed(data) == [data]


def test_missing_content_length_is_an_error() -> None:
    data = message(b"", length_line="Subject: none")
    with pytest.raises(ParseError, match="missing Content-Length"):
        StreamFramer().feed(data)


@pytest.mark.parametrize("value", ["-1", "abc", "", "1 2", "12345678901"])
def test_bad_content_length_is_an_error(value: str) -> None:
    data = message(b"", length_line=f"Content-Length: {value}")
    with pytest.raises(ParseError, match="Content-Length"):
        StreamFramer().feed(data)


def test_conflicting_content_length_is_an_error() -> None:
    data = message(b"", length_line="Content-Length: 0\r\nl: 5")
    with pytest.raises(ParseError, match="conflicting"):
        StreamFramer().feed(data)


def test_oversized_header_section_is_an_error() -> None:
    framer = StreamFramer(max_message_size=1000)
    framer.feed(b"OPTIONS sip:a@h SIP/2.0\r\n")
    with pytest.raises(ParseError, match="longer than 1000"):
        for _ in range(100):
            framer.feed(b"X-Filler: " + b"y" * 20 + b"\r\n")


def test_oversized_body_is_refused_before_it_arrives() -> None:
    framer = StreamFramer(max_message_size=1000)
    data = message(b"", length_line="Content-Length: 5000")
    with pytest.raises(ParseError, match="exceeds 1000"):
        framer.feed(data)


def test_stray_cr_is_an_error() -> None:
    with pytest.raises(ParseError, match="stray CR"):
        StreamFramer().feed(b"\rX")


def test_body_containing_content_length_text_is_not_rescanned() -> None:
    body = b"Content-Length: 999\r\n"
    data = message(body)
    assert StreamFramer().feed(data + TWO) == [data, TWO]
