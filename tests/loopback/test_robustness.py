"""Broken SIP input sent to a running auto-answering softphone over real sockets.

One phone takes every input in turn: each gets the exact reply RFC 3261 asks for (or
none, when the sender cannot be addressed), the phone answers OPTIONS after each, and
after all of them it still takes a real call and stops cleanly.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import SoftphoneProcess

HOST = "127.0.0.1"
ANSWER_ARGS = ("--bind", HOST, "--sip-port", "0", "answer", "--auto")


def unlimited_answerer(tmp_path_factory: pytest.TempPathFactory) -> SoftphoneProcess:
    """An auto-answering phone for a whole module of requests from one client address: far
    more than the per-source limit a phone keeps against floods, which these tests are not
    about, so it is off ([sip] max_requests_per_second=0; tests/test_guard.py tests it)."""
    rc = tmp_path_factory.mktemp("answerer") / "answerer.rc"
    rc.write_text("[sip]\nmax_requests_per_second=0\n")
    return SoftphoneProcess(["-c", str(rc), *ANSWER_ARGS])
REPLY_TIMEOUT = 3.0
SILENCE = 0.5  # how long a dropped input is watched for a reply

COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}x{time.monotonic_ns() % 10**9}"


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def get(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if COMPACT.get(k.lower(), k.lower()) == name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def parse_reply(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0].split(" ", 2)
    assert start[0] == "SIP/2.0" and len(start) >= 2, (
        f"not a SIP response: {data[:200]!r}"
    )
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Reply(int(start[1]), start[2] if len(start) > 2 else "", headers, body, data)


# --------------------------------------------------------------------------- messages


@dataclass
class Ctx:
    """Where the test sends from and to."""

    server_port: int
    client_port: int
    transport: str = "UDP"


@dataclass
class Sent:
    data: bytes
    call_id: str | None = None
    method: str | None = None
    chunks: list[bytes] | None = None  # TCP: send in these pieces, with pauses


SDP_OFFER = (
    "v=0\r\n"
    "o=tester 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)
SDP_BAD_M_LINE = SDP_OFFER.replace(
    "m=audio 40000 RTP/AVP 0 8 101", "m=audio garbage ~~ !!"
)
SDP_UNKNOWN_CODEC = (
    "v=0\r\n"
    "o=tester 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 97\r\n"
    "a=rtpmap:97 NOSUCHCODEC/8000\r\n"
)

HeaderValue = str | bytes


def request(
    method: str,
    ctx: Ctx,
    *,
    uri: str | None = None,
    request_line: HeaderValue | None = None,
    call_id: str | None = None,
    branch: str | None = None,
    cseq: HeaderValue | None = None,
    to_tag: str | None = None,
    omit: Iterable[str] = (),
    replace: dict[str, HeaderValue] | None = None,
    extra: Iterable[tuple[str, HeaderValue]] = (),
    body: str | bytes = b"",
    content_type: str | None = None,
    content_length: HeaderValue | None = None,
) -> Sent:
    """A well-formed request, unless told to break it."""
    call_id = call_id or unique("robust-") + "@127.0.0.1"
    branch = branch or unique("z9hG4bK-robust-")
    uri = uri or f"sip:alice@{HOST}:{ctx.server_port}"
    body_bytes = body.encode() if isinstance(body, str) else body
    if body_bytes and content_type is None:
        content_type = "application/sdp"
    headers: list[tuple[str, HeaderValue]] = [
        (
            "Via",
            f"SIP/2.0/{ctx.transport} {HOST}:{ctx.client_port};rport;branch={branch}",
        ),
        ("Max-Forwards", "70"),
        (
            "From",
            f'"Robustness" <sip:tester@{HOST}:{ctx.client_port}>;tag={unique("ft")}',
        ),
        (
            "To",
            f"<sip:alice@{HOST}:{ctx.server_port}>"
            + (f";tag={to_tag}" if to_tag else ""),
        ),
        ("Call-ID", call_id),
        ("CSeq", cseq if cseq is not None else f"1 {method}"),
        (
            "Contact",
            f"<sip:tester@{HOST}:{ctx.client_port};transport={ctx.transport.lower()}>",
        ),
        ("User-Agent", "robustness-test"),
    ]
    replace = replace or {}
    omitted = {name.lower() for name in omit}
    headers = [
        (name, replace.get(name, value))
        for name, value in headers
        if name.lower() not in omitted
    ]
    headers.extend(extra)
    if content_type:
        headers.append(("Content-Type", content_type))
    if "content-length" not in omitted:
        headers.append(
            (
                "Content-Length",
                content_length if content_length is not None else str(len(body_bytes)),
            )
        )
    line = request_line if request_line is not None else f"{method} {uri} SIP/2.0"
    parts = [line.encode() if isinstance(line, str) else line]
    for name, value in headers:
        value_bytes = value.encode() if isinstance(value, str) else value
        parts.append(name.encode() + b": " + value_bytes if name else value_bytes)
    data = b"\r\n".join(parts) + b"\r\n\r\n" + body_bytes
    return Sent(data, None if "call-id" in omitted else call_id, method)


def invite(ctx: Ctx, **kw: object) -> Sent:
    kw.setdefault("body", SDP_OFFER)
    return request("INVITE", ctx, **kw)  # type: ignore[arg-type]


def options(ctx: Ctx, **kw: object) -> Sent:
    kw.setdefault("extra", [("Accept", "application/sdp")])
    return request("OPTIONS", ctx, **kw)  # type: ignore[arg-type]


def stray_response(ctx: Ctx, status: str, method: str) -> Sent:
    call_id = unique("stray-") + "@127.0.0.1"
    data = (
        f"SIP/2.0 {status}\r\n"
        f"Via: SIP/2.0/{ctx.transport} {HOST}:{ctx.server_port};branch={unique('z9hG4bK-none-')}\r\n"
        f"From: <sip:alice@{HOST}:{ctx.server_port}>;tag={unique('ft')}\r\n"
        f"To: <sip:tester@{HOST}:{ctx.client_port}>;tag={unique('tt')}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    return Sent(data, call_id, None)


def truncated(sent: Sent, marker: bytes) -> Sent:
    """Cut the message in the middle of the header that starts with ``marker``."""
    index = sent.data.index(marker) + len(marker) // 2 + 2
    return Sent(sent.data[:index], sent.call_id, sent.method)


def raw(data: bytes) -> Callable[[Ctx], Sent]:
    return lambda ctx: Sent(data)


# --------------------------------------------------------------------------- cases

DROP: frozenset[int] | None = None


@dataclass
class Case:
    name: str
    build: Callable[[Ctx], Sent]
    expect: frozenset[int] | None  # None: no reply at all within SILENCE seconds
    note: str = ""
    closed_ok: bool = (
        False  # TCP: the phone may close the connection instead of replying
    )


def codes(*values: int) -> frozenset[int]:
    return frozenset(values)


def _missing(name: str, method: str) -> Case:
    build = invite if method == "INVITE" else options
    expect = DROP if name == "Via" else codes(400)
    return Case(
        f"{method.lower()}-without-{name.lower()}",
        lambda c: build(c, omit=[name]),
        expect,
    )


UDP_CASES: list[Case] = [
    Case("binary-garbage", raw(bytes(range(256)) * 4), DROP),
    Case("text-garbage", raw(b"hello world, this is not SIP\r\n\r\n"), DROP),
    Case("empty-datagram", raw(b""), DROP),
    Case("lone-crlf", raw(b"\r\n"), DROP),
    Case("double-crlf", raw(b"\r\n\r\n"), DROP),
    Case("truncated-in-via", lambda c: truncated(invite(c), b"Via: SIP/2.0/UDP"), DROP),
    Case(
        "truncated-after-via",
        lambda c: truncated(invite(c), b'From: "Robustness"'),
        codes(400),
    ),
    Case(
        "content-length-bigger-than-datagram",
        lambda c: invite(c, content_length=str(len(SDP_OFFER) + 50)),
        codes(400),
    ),
    Case(
        "content-length-not-a-number",
        lambda c: invite(c, content_length="abc"),
        codes(400),
    ),
    Case(
        "content-length-negative", lambda c: invite(c, content_length="-5"), codes(400)
    ),
    *[
        _missing(n, m)
        for m in ("INVITE", "OPTIONS")
        for n in ("Via", "From", "To", "Call-ID", "CSeq")
    ],
    Case("via-unusable", lambda c: options(c, replace={"Via": "garbage"}), DROP),
    Case(
        "request-uri-unclosed-bracket",
        lambda c: invite(c, uri="sip:alice@[::1"),
        codes(400),
    ),
    Case(
        "request-uri-empty-host",
        lambda c: options(c, request_line="OPTIONS sip:alice@ SIP/2.0"),
        codes(400),
    ),
    Case(
        "request-line-without-version",
        lambda c: options(c, request_line=f"OPTIONS sip:alice@{HOST}:{c.server_port}"),
        codes(400),
    ),
    Case(
        "request-uri-unknown-scheme",
        lambda c: options(c, uri="mailto:alice@example.com"),
        codes(416, 400),
        "RFC 3261 8.2.2.1: SHOULD reject with 416",
    ),
    Case(
        "sip-version-3",
        lambda c: options(
            c, request_line=f"OPTIONS sip:alice@{HOST}:{c.server_port} SIP/3.0"
        ),
        codes(505, 400),
        "RFC 3261 21.5.7: 505 Version Not Supported",
    ),
    Case("cseq-not-a-number", lambda c: invite(c, cseq="abc INVITE"), codes(400)),
    Case("cseq-method-mismatch", lambda c: invite(c, cseq="1 BYE"), codes(400)),
    Case("cseq-without-method", lambda c: options(c, cseq="1"), codes(400)),
    Case("cseq-too-big", lambda c: options(c, cseq="4294967296 OPTIONS"), codes(400)),
    Case(
        "header-without-colon",
        lambda c: options(c, extra=[("", "This is not a header")]),
        codes(400),
    ),
    Case(
        "huge-header-60kb",
        lambda c: options(c, extra=[("X-Filler", "a" * 60_000)]),
        codes(200, 400, 413, 513),
        "any definite answer; the phone must keep serving",
    ),
    Case(
        "thousand-headers",
        lambda c: options(c, extra=[(f"X-H{i}", str(i)) for i in range(1000)]),
        codes(200, 400, 513),
    ),
    Case(
        "non-utf8-subject",
        lambda c: options(c, extra=[("Subject", b"caf\xe9 \xff\xfe\xc3(")]),
        codes(200, 400),
    ),
    Case(
        "non-utf8-display-name",
        lambda c: options(
            c, replace={"From": b'"\xff\xfe\x80" <sip:tester@127.0.0.1>;tag=nonutf8'}
        ),
        codes(200, 400),
    ),
    Case(
        "folded-header-is-valid",
        lambda c: options(c, extra=[("Subject", "first part\r\n second part")]),
        codes(200),
        "RFC 3261 7.3.1: header folding (LWS) must be accepted",
    ),
    Case(
        "compact-header-names-are-valid",
        lambda c: Sent(
            options(c)
            .data.replace(b"\r\nVia:", b"\r\nv:")
            .replace(b"\r\nFrom:", b"\r\nf:")
            .replace(b"\r\nTo:", b"\r\nt:")
            .replace(b"\r\nCall-ID:", b"\r\ni:")
            .replace(b"\r\nContent-Length:", b"\r\nl:"),
            None,
            "OPTIONS",
        ),
        codes(200),
        "RFC 3261 7.3.3 compact forms",
    ),
    Case("invite-malformed-sdp", lambda c: invite(c, body=SDP_BAD_M_LINE), codes(488)),
    Case(
        "invite-unknown-codec-only",
        lambda c: invite(c, body=SDP_UNKNOWN_CODEC),
        codes(488),
    ),
    Case(
        "invite-body-not-sdp",
        lambda c: invite(c, body="hello", content_type="application/x-unknown"),
        codes(415, 488),
        "RFC 3261 21.4.13: 415 Unsupported Media Type",
    ),
    Case(
        "bye-unknown-dialog",
        lambda c: request("BYE", c, to_tag="nosuchdialog"),
        codes(481),
    ),
    Case("cancel-unknown-transaction", lambda c: request("CANCEL", c), codes(481)),
    Case(
        "reinvite-unknown-dialog",
        lambda c: invite(c, to_tag="nosuchdialog"),
        codes(481),
    ),
    Case("ack-unknown", lambda c: request("ACK", c, to_tag="nosuchdialog"), DROP),
    Case("unknown-method", lambda c: request("FOO", c), codes(405, 501)),
    Case(
        "stray-200-to-options", lambda c: stray_response(c, "200 OK", "OPTIONS"), DROP
    ),
    Case(
        "stray-180-to-invite",
        lambda c: stray_response(c, "180 Ringing", "INVITE"),
        DROP,
    ),
    Case("stray-response-garbage-status", raw(b"SIP/2.0 abc Huh\r\n\r\n"), DROP),
]


def _split_options(c: Ctx) -> Sent:
    sent = options(c)
    data = sent.data
    sent.chunks = [data[:7], data[7:60], data[60:-3], data[-3:]]
    return sent


def _pipelined(c: Ctx) -> Sent:
    first, second = options(c), options(c)
    return Sent(first.data + second.data, first.call_id, "OPTIONS")


def _keepalive_then_options(c: Ctx) -> Sent:
    sent = options(c)
    sent.chunks = [b"\r\n\r\n", sent.data]
    return sent


TCP_CASES: list[Case] = [
    Case("tcp-options", lambda c: options(c), codes(200)),
    Case("tcp-options-in-pieces", _split_options, codes(200)),
    Case("tcp-keepalive-then-options", _keepalive_then_options, codes(200)),
    Case(
        "tcp-two-options-in-one-segment",
        _pipelined,
        codes(200),
        "both must be answered",
    ),
    Case("tcp-invite-without-to", lambda c: invite(c, omit=["To"]), codes(400)),
    Case(
        "tcp-invite-malformed-sdp", lambda c: invite(c, body=SDP_BAD_M_LINE), codes(488)
    ),
    Case(
        "tcp-text-garbage",
        raw(b"hello world, this is not SIP\r\n\r\n"),
        DROP,
        closed_ok=True,
    ),
    Case(
        "tcp-binary-garbage",
        raw(bytes(range(256)) * 4 + b"\r\n\r\n"),
        DROP,
        closed_ok=True,
    ),
    Case(
        "tcp-content-length-not-a-number",
        lambda c: options(c, content_length="abc"),
        codes(400),
        "framing cannot continue; a 400 and/or closing the connection",
        closed_ok=True,
    ),
    Case(
        "tcp-huge-header-100kb",
        lambda c: options(c, extra=[("X-Filler", "a" * 100_000)]),
        codes(200, 400, 413, 513),
        closed_ok=True,
    ),
    Case(
        "tcp-bye-unknown-dialog",
        lambda c: request("BYE", c, to_tag="nosuchdialog"),
        codes(481),
    ),
]


# --------------------------------------------------------------------------- transports

CLOSED = "closed"


def udp_client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    return sock


def udp_next(sock: socket.socket, deadline: float) -> Reply | None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        data, _ = sock.recvfrom(70_000)
    except TimeoutError:
        return None
    return parse_reply(data)


class TcpClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=REPLY_TIMEOUT)
        self.buffer = b""
        self.closed = False

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, sent: Sent) -> None:
        for chunk in sent.chunks or [sent.data]:
            self.sock.sendall(chunk)
            if sent.chunks:
                time.sleep(0.1)

    def next(self, deadline: float) -> Reply | None | str:
        while True:
            self.buffer = self.buffer.lstrip(b"\r\n")
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buffer[:end]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() in (b"content-length", b"l"):
                        length = int(value.strip())
                total = end + 4 + length
                if len(self.buffer) >= total:
                    message, self.buffer = self.buffer[:total], self.buffer[total:]
                    return parse_reply(message)
            if self.closed:
                return CLOSED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- checks


def _ack_for(reply: Reply, sent: Sent, ctx: Ctx) -> bytes:
    """RFC 3261 17.1.1.3: the ACK for a non-2xx final response to an INVITE."""
    via = next(
        line
        for line in sent.data.split(b"\r\n")
        if line.lower().startswith((b"via:", b"v:"))
    )
    cseq_number = (reply.first("cseq") or "1 INVITE").split()[0]
    lines = [
        f"ACK sip:alice@{HOST}:{ctx.server_port} SIP/2.0".encode(),
        via,
        b"Max-Forwards: 70",
        f"From: {reply.first('from')}".encode("latin-1"),
        f"To: {reply.first('to')}".encode("latin-1"),
        f"Call-ID: {reply.first('call-id')}".encode("latin-1"),
        f"CSeq: {cseq_number} ACK".encode(),
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _ackable(reply: Reply) -> bool:
    return all(reply.first(name) for name in ("from", "to", "call-id", "cseq"))


def _matches(reply: Reply, sent: Sent) -> bool:
    """The reply answers what we sent: same Call-ID, or (when what we sent was too
    broken to carry one) the same Via branch."""
    if sent.call_id is None or reply.first("call-id") == sent.call_id:
        return True
    branch = re.search(rb"branch=([^;\r\n,]+)", sent.data)
    return branch is not None and branch.group(1).decode() in (reply.first("via") or "")


def _describe(sent: Sent) -> str:
    return repr(sent.data[:160]) + ("..." if len(sent.data) > 160 else "")


def check_udp(port: int, case: Case) -> int | None:
    """Send the case's input; check the reply. The final status, or None when dropped."""
    sock = udp_client()
    try:
        ctx = Ctx(port, sock.getsockname()[1], "UDP")
        sent = case.build(ctx)
        sock.sendto(sent.data, (HOST, port))
        if case.expect is None:
            reply = udp_next(sock, time.monotonic() + SILENCE)
            assert reply is None, (
                f"[{case.name}] expected no reply, got {reply}: {reply.raw[:300]!r}; sent {_describe(sent)}"
            )
            return None
        deadline = time.monotonic() + REPLY_TIMEOUT
        seen: list[str] = []
        while True:
            reply = udp_next(sock, deadline)
            assert reply is not None, (
                f"[{case.name}] expected {sorted(case.expect)}, got no final reply "
                f"(provisional seen: {seen}); sent {_describe(sent)}"
            )
            if reply.status < 200 or not _matches(reply, sent):
                seen.append(str(reply))
                continue
            break
        if sent.method == "INVITE" and reply.status >= 300 and _ackable(reply):
            sock.sendto(_ack_for(reply, sent, ctx), (HOST, port))
        assert reply.status in case.expect, (
            f"[{case.name}] expected {sorted(case.expect)}, got {reply}; sent {_describe(sent)}"
        )
        if reply.status == 405:
            assert reply.first("allow"), f"[{case.name}] 405 without an Allow header"
        return reply.status
    finally:
        sock.close()


def check_tcp(port: int, case: Case) -> None:
    client = TcpClient(port)
    try:
        ctx = Ctx(port, client.local_port, "TCP")
        sent = case.build(ctx)
        client.send(sent)
        if case.expect is None:
            reply = client.next(time.monotonic() + SILENCE)
            assert reply is None or reply == CLOSED and case.closed_ok, (
                f"[{case.name}] expected no reply, got {reply}; sent {_describe(sent)}"
            )
            return
        deadline = time.monotonic() + REPLY_TIMEOUT
        finals: list[Reply] = []
        wanted = 2 if case.name == "tcp-two-options-in-one-segment" else 1
        while len(finals) < wanted:
            reply = client.next(deadline)
            if reply == CLOSED and case.closed_ok and not finals:
                return
            assert isinstance(reply, Reply), (
                f"[{case.name}] expected {sorted(case.expect)}, got {reply or 'no reply'}; "
                f"sent {_describe(sent)}"
            )
            if reply.status >= 200:
                finals.append(reply)
        for reply in finals:
            assert reply.status in case.expect, (
                f"[{case.name}] expected {sorted(case.expect)}, got {reply}; sent {_describe(sent)}"
            )
        if sent.method == "INVITE" and finals[0].status >= 300 and _ackable(finals[0]):
            client.sock.sendall(_ack_for(finals[0], sent, ctx))
    finally:
        client.close()


def assert_options_ok(port: int, after: str = "") -> None:
    """The phone still answers OPTIONS with 200 and its capabilities."""
    sock = udp_client()
    try:
        ctx = Ctx(port, sock.getsockname()[1], "UDP")
        sent = options(ctx)
        sock.sendto(sent.data, (HOST, port))
        deadline = time.monotonic() + REPLY_TIMEOUT
        reply = udp_next(sock, deadline)
        while reply is not None and (reply.status < 200 or not _matches(reply, sent)):
            reply = udp_next(sock, deadline)
        where = f" after {after}" if after else ""
        assert reply is not None, f"OPTIONS not answered{where}"
        assert reply.status == 200, f"OPTIONS answered {reply}{where}"
        allow = " ".join(reply.get("allow")).upper()
        for method in ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"):
            assert method in allow, f"Allow lacks {method}: {allow!r}{where}"
        assert "application/sdp" in " ".join(reply.get("accept")).lower(), (
            f"Accept lacks application/sdp: {reply.get('accept')}{where}"
        )
        assert reply.get("supported"), (
            f"no Supported header in the 200 to OPTIONS{where}"
        )
    finally:
        sock.close()


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftphoneProcess]:
    """One answering phone for the whole module: it must survive every input below."""
    process = unlimited_answerer(tmp_path_factory)
    try:
        assert process.port("tcp") == process.port("udp"), "UDP and TCP must listen on the same port"
        yield process
    finally:
        if process.running():
            process.stop(5)


@pytest.fixture
def answerer_port(answerer: SoftphoneProcess) -> int:
    assert answerer.running(), f"the answerer is gone; stderr:\n{answerer.stderr}"
    return answerer.port("udp")


@pytest.mark.timeout(60)
def test_well_formed_requests_are_answered(answerer_port: int) -> None:
    """Control: the templates are valid, so the 400s below come from the breakage alone."""
    assert_options_ok(answerer_port)
    sock = udp_client()
    try:
        ctx = Ctx(answerer_port, sock.getsockname()[1])
        sent = invite(ctx)
        sock.sendto(sent.data, (HOST, answerer_port))
        deadline = time.monotonic() + 10
        reply = udp_next(sock, deadline)
        while reply is not None and reply.status < 200:
            reply = udp_next(sock, deadline)
        assert reply is not None and reply.status == 200, f"INVITE answered {reply}"
        assert b"m=audio" in reply.body, reply.raw
        to = reply.first("to")
        assert to and "tag=" in to
        branch = unique("z9hG4bK-ack-")
        ack = (
            f"ACK sip:alice@{HOST}:{answerer_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{ctx.client_port};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {reply.first('from')}\r\nTo: {to}\r\nCall-ID: {sent.call_id}\r\n"
            "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode("latin-1")
        sock.sendto(ack, (HOST, answerer_port))
        bye = request(
            "BYE",
            ctx,
            call_id=sent.call_id,
            cseq="2 BYE",
            replace={"From": reply.first("from") or "", "To": to},
        )
        sock.sendto(bye.data, (HOST, answerer_port))
        deadline = time.monotonic() + REPLY_TIMEOUT
        reply = udp_next(sock, deadline)
        while reply is not None and (
            reply.status < 200 or "BYE" not in (reply.first("cseq") or "")
        ):
            reply = udp_next(sock, deadline)
        assert reply is not None and reply.status == 200, f"BYE answered {reply}"
    finally:
        sock.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", UDP_CASES, ids=[c.name for c in UDP_CASES])
def test_udp_input(answerer_port: int, case: Case) -> None:
    check_udp(answerer_port, case)
    assert_options_ok(answerer_port, after=case.name)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", TCP_CASES, ids=[c.name for c in TCP_CASES])
def test_tcp_input(answerer_port: int, case: Case) -> None:
    check_tcp(answerer_port, case)
    assert_options_ok(answerer_port, after=case.name)


@pytest.mark.timeout(60)
def test_after_all_inputs_a_real_call_then_a_clean_stop(softphone, answerer: SoftphoneProcess) -> None:  # type: ignore[no-untyped-def]
    """Last in the module: the phone that took every input above still takes a real call."""
    port = answerer.port("udp")
    assert_options_ok(port, after="all inputs")
    caller = softphone(
        "--bind",
        HOST,
        "--sip-port",
        "0",
        "call",
        f"sip:alice@{HOST}:{port}",
        "--duration",
        "1",
    )
    caller.wait_event("state", timeout=15, state="confirmed")
    code = caller.wait(timeout=30)
    assert code == 0, f"caller exited {code}; stderr:\n{caller.stderr}"
    assert caller.summary is not None and caller.summary["result"] == "completed", (
        caller.summary
    )
    assert_options_ok(port, after="the call")
    code = answerer.stop(5)
    assert code == 0, f"answerer exited {code}; stderr:\n{answerer.stderr}"
    assert "Traceback" not in answerer.stderr, answerer.stderr
