"""RFC 3261 §8.2 over real sockets: how a running auto-answering phone answers requests.

One `softphone answer --auto` (bound to 127.0.0.1) takes every request below, sent as
exact bytes over UDP. Each gets the status §8.2 gives, in its order (method 501/405,
Request-URI scheme 416, Request-URI not ours 404, merged request 482, Require 420, body
415, Accept 406, then 481 for a dialog or transaction we do not have), with the headers
the RFC asks for (Allow, Unsupported, Accept*, and a Server header), and with Via, From,
To (plus our tag), Call-ID and CSeq copied byte for byte (§8.2.6.2). The top Via may
gain received and rport (RFC 3261 §18.2.1, RFC 3581 §4); nothing else may change.
After all of them the phone still answers OPTIONS and takes a real call.
"""

from __future__ import annotations

import functools
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import SoftphoneProcess
from tests.loopback.test_robustness import (
    COMPACT,
    HOST,
    REPLY_TIMEOUT,
    SDP_OFFER,
    Reply,
    udp_client,
    udp_next,
    unique,
    unlimited_answerer,
)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"
CAPABILITIES = {
    "Accept": "application/sdp, message/sipfrag",
    "Accept-Encoding": "identity",
    "Accept-Language": "en",
}
NOT_SUPPORTED = ("REGISTER", "INFO", "UPDATE", "PRACK", "SUBSCRIBE", "MESSAGE", "PUBLISH")
TAG = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
RECEIVED_OR_RPORT = re.compile(r"\s*;\s*(?:received|rport)(?:\s*=\s*[^;,\s]*)?", re.IGNORECASE)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Ports:
    server: int  # the phone
    client: int  # our socket


@dataclass
class Req:
    """A request as exact header lines: what is sent is what the checks compare with."""

    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def data(self) -> bytes:
        lines = [f"{self.method} {self.uri} SIP/2.0"] + [f"{n}: {v}" for n, v in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def values(self, name: str) -> list[str]:
        """The values sent under ``name`` or its compact form, as the receiver reads them
        (§7.3.1: the whitespace around a value is not part of it)."""
        name = name.lower()
        return [v.strip() for n, v in self.headers if COMPACT.get(n.lower(), n.lower()) == name]

    def value(self, name: str) -> str:
        (value,) = self.values(name)
        return value

    @property
    def call_id(self) -> str:
        return self.value("call-id")

    @property
    def branch(self) -> str:
        match = re.search(r"branch\s*=\s*([^;,\s]+)", self.values("via")[0])
        assert match is not None
        return match.group(1)


def make(
    method: str,
    ports: Ports,
    *,
    uri: str | None = None,
    to_tag: str | None = None,
    cseq: int = 1,
    extra: tuple[tuple[str, str], ...] = (),
    body: str = "",
    content_type: str | None = "application/sdp",
    via: tuple[tuple[str, str], ...] | None = None,
    from_: str | None = None,
    to: str | None = None,
    call_id: str | None = None,
) -> Req:
    """A plain, valid request; ``via``/``from_``/``to`` replace those header lines."""
    branch = unique("z9hG4bK-uas-")
    vias = via or (("Via", f"SIP/2.0/UDP {HOST}:{ports.client};branch={branch};rport"),)
    headers = [
        *vias,
        ("Max-Forwards", "70"),
        ("From", from_ or f"<sip:tester@{HOST}:{ports.client}>;tag={unique('ft')}"),
        ("To", (to or f"<sip:alice@{HOST}:{ports.server}>") + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id or unique("uas-rules-") + "@127.0.0.1"),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", f"<sip:tester@{HOST}:{ports.client}>"),
        *extra,
    ]
    if body and content_type:
        headers.append(("Content-Type", content_type))
    return Req(method, uri or f"sip:alice@{HOST}:{ports.server}", headers, body.encode())


def invite(ports: Ports, **kw: object) -> Req:
    kw.setdefault("body", SDP_OFFER)
    return make("INVITE", ports, **kw)  # type: ignore[arg-type]


def odd_options(ports: Ports) -> Req:
    """Compact forms, extra spaces inside values, a second Via, a To with a parameter."""
    branch = unique("z9hG4bK-odd-")
    return Req("OPTIONS", f"sip:alice@{HOST}:{ports.server}", [
        ("v", f"SIP/2.0/UDP {HOST}:{ports.client};branch={branch};rport"),
        ("Via", "SIP/2.0/UDP   127.0.0.9:5099 ;branch=z9hG4bK-upstream-1 ; received=127.0.0.8"),
        ("Max-Forwards", "70"),
        ("f", f'"Odd   Caller"   <sip:tester@{HOST}:{ports.client};transport=udp> ;tag={unique("ft")}'),
        ("t", f"Alice   <sip:alice@{HOST}:{ports.server}> ;x-note=kept"),
        ("i", f"{unique('odd-')}@[::1]"),
        ("CSeq", "4711   OPTIONS"),
        ("m", f"<sip:tester@{HOST}:{ports.client}>"),
        ("Accept", "application/sdp"),
    ])


def one_line_vias(ports: Ports) -> Req:
    """Three Vias, the first two in one header line (§7.3.1), in an order to keep."""
    req = make("OPTIONS", ports)
    top = req.values("via")[0]
    req.headers[0] = ("Via", f"{top},SIP/2.0/UDP 127.0.0.7:5070;branch=z9hG4bK-second ,  "
                             "SIP/2.0/TCP 127.0.0.6;branch=z9hG4bK-third")
    req.headers.insert(1, ("Via", "SIP/2.0/UDP 127.0.0.5:5080;branch=z9hG4bK-fourth;ttl=1"))
    return req


def no_rport(ports: Ports) -> Req:
    """A top Via without rport whose sent-by is where we send from: nothing to add to it,
    so it comes back byte for byte, odd spacing and case included."""
    branch = unique("z9hG4bK-plain-")
    via = ("Via", f"SIP/2.0/UDP {HOST}:{ports.client} ;branch={branch} ;x-Odd=Keep")
    return make("OPTIONS", ports, via=(via,))


# --------------------------------------------------------------------------- the wire


def split_vias(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",")]


def final_reply(sock: socket.socket, req: Req) -> Reply:
    """The first final response to ``req`` (same Call-ID and top Via branch)."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    seen: list[str] = []
    while True:
        reply = udp_next(sock, deadline)
        assert reply is not None, (
            f"no final response to {req.method} {req.uri} (seen: {seen}); sent:\n"
            f"{req.data().decode('latin-1')}"
        )
        vias = split_vias(reply.get("via"))
        ours = reply.first("call-id") == req.call_id and bool(vias) and req.branch in vias[0]
        if reply.status >= 200 and ours:
            return reply
        seen.append(str(reply))


def ack_failure(sock: socket.socket, port: int, req: Req, reply: Reply) -> None:
    """RFC 3261 §17.1.1.3: the ACK to a non-2xx final response (same branch)."""
    cseq = req.value("cseq").split()[0]
    ack = Req("ACK", req.uri, [
        ("Via", req.values("via")[0]),
        ("Max-Forwards", "70"),
        ("From", req.value("from")),
        ("To", reply.first("to") or ""),
        ("Call-ID", req.call_id),
        ("CSeq", f"{cseq} ACK"),
    ])
    sock.sendto(ack.data(), (HOST, port))


def exchange(port: int, req: Req, sock: socket.socket | None = None) -> Reply:
    """Send ``req`` and return its final response (an INVITE's failure is ACKed)."""
    own = sock is None
    sock = sock or udp_client()
    try:
        sock.sendto(req.data(), (HOST, port))
        reply = final_reply(sock, req)
        if req.method == "INVITE" and reply.status >= 300:
            ack_failure(sock, port, req, reply)
        return reply
    finally:
        if own:
            sock.close()


def finish_call(sock: socket.socket, port: int, req: Req, reply: Reply) -> Reply:
    """ACK a 2xx to our INVITE, then BYE: the call must end with 200 (returned)."""
    assert reply.status == 200, f"INVITE answered {reply}"
    contact = re.search(r"<([^>]+)>", reply.first("contact") or "")
    target = contact.group(1) if contact else req.uri
    to = reply.first("to") or ""
    cseq = int(req.value("cseq").split()[0])
    common = [("Max-Forwards", "70"), ("From", req.value("from")), ("To", to), ("Call-ID", req.call_id)]
    for method, number in (("ACK", cseq), ("BYE", cseq + 1)):
        via = ("Via", f"SIP/2.0/UDP {HOST}:{sock.getsockname()[1]};branch={unique('z9hG4bK-end-')};rport")
        message = Req(method, target, [via, *common, ("CSeq", f"{number} {method}")])
        sock.sendto(message.data(), (HOST, port))
    deadline = time.monotonic() + REPLY_TIMEOUT
    reply_to_bye = udp_next(sock, deadline)
    while reply_to_bye is not None and "BYE" not in (reply_to_bye.first("cseq") or ""):
        reply_to_bye = udp_next(sock, deadline)  # a retransmitted 2xx before our ACK arrived
    assert reply_to_bye is not None and reply_to_bye.status == 200, f"BYE answered {reply_to_bye}"
    return reply_to_bye


# --------------------------------------------------------------------------- checks


def assert_copied(reply: Reply, req: Req, client_port: int) -> None:
    """§8.2.6.2: Via (all, in order), From, To (+ tag), Call-ID and CSeq as received."""
    sent_vias, got_vias = split_vias(req.values("via")), split_vias(reply.get("via"))
    assert len(got_vias) == len(sent_vias), f"Vias sent {sent_vias}, returned {got_vias}"
    assert got_vias[1:] == sent_vias[1:], f"Vias below the top changed: {sent_vias} -> {got_vias}"
    top_sent, top_got = sent_vias[0], got_vias[0]
    if re.search(r";\s*rport\b", top_sent, re.IGNORECASE):
        # RFC 3581 §4: "the server MUST insert a "received" parameter ... [and] MUST set
        # the value of the "rport" parameter to the source port of the request"
        assert re.search(rf";\s*rport={client_port}\b", top_got), f"rport not filled in: {top_got}"
        assert re.search(rf";\s*received={re.escape(HOST)}\b", top_got), f"no received: {top_got}"
        assert RECEIVED_OR_RPORT.sub("", top_got) == RECEIVED_OR_RPORT.sub("", top_sent), (
            f"top Via changed beyond received/rport: {top_sent!r} -> {top_got!r}"
        )
    else:
        assert top_got == top_sent, f"top Via changed: {top_sent!r} -> {top_got!r}"
    for name in ("from", "call-id", "cseq"):
        assert reply.get(name) == [req.value(name)], f"{name}: sent {req.value(name)!r}, got {reply.get(name)}"
    (to,) = reply.get("to")
    sent_to = req.value("to")
    if re.search(r";\s*tag=", sent_to):
        assert to == sent_to, f"To: sent {sent_to!r}, got {to!r}"
    else:
        prefix = sent_to + ";tag="
        assert to.startswith(prefix) and TAG.fullmatch(to[len(prefix):]), (
            f"To: sent {sent_to!r}, got {to!r} (the sent value plus ;tag=... expected)"
        )


def assert_reply(
    reply: Reply,
    req: Req,
    client_port: int,
    status: int,
    headers: dict[str, str] | None = None,
    absent: tuple[str, ...] = (),
    *,
    server: bool = True,
) -> None:
    """The status, ``headers`` exactly, none of ``absent``, the copied headers, and
    (unless ``server`` is False) a Server header."""
    sent = req.data().decode("latin-1")
    assert reply.status == status, f"expected {status}, got {reply}; sent:\n{sent}\nreply:\n{reply.raw!r}"
    for name, value in (headers or {}).items():
        assert reply.get(name) == [value], f"{reply}: {name} {reply.get(name)}, expected [{value!r}]"
    for name in absent:
        assert not reply.get(name), f"{reply}: unexpected {name} {reply.get(name)}"
    assert_copied(reply, req, client_port)
    if server:
        assert reply.first("server"), f"{reply} has no Server header:\n{reply.raw!r}"


# --------------------------------------------------------------------------- the phone


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftphoneProcess]:
    """One auto-answering phone on 127.0.0.1 for the whole module, stopped by PID."""
    process = unlimited_answerer(tmp_path_factory)
    try:
        process.port("udp")
        yield process
    finally:
        if process.running():
            process.stop(5)


@pytest.fixture
def port(phone: SoftphoneProcess) -> int:
    assert phone.running(), f"the phone is gone:\n{phone.describe()}"
    return phone.port("udp")


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = udp_client()
    yield sock
    sock.close()


def ports_of(port: int, sock: socket.socket) -> Ports:
    return Ports(port, sock.getsockname()[1])


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Rule:
    name: str
    build: Callable[[Ports], Req]
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()


def _require(value: str, *more: str) -> tuple[tuple[str, str], ...]:
    return tuple(("Require", v) for v in (value, *more))


UNSUPPORTED_BODY = {"Accept": "application/sdp, message/sipfrag", "Accept-Encoding": "identity",
                    "Accept-Language": "en"}

RULES: list[Rule] = [
    # §8.2.1: a method we do not know; one we know and do not support
    Rule("unknown-method", lambda p: make("FOO", p), 501, {"Allow": ALLOW}),
    Rule("unknown-method-in-dialog", lambda p: make("SIPTEST", p, to_tag="t1"), 501, {"Allow": ALLOW}),
    *[Rule(f"not-supported-{m.lower()}", functools.partial(make, m), 405, {"Allow": ALLOW}) for m in NOT_SUPPORTED],
    Rule("not-supported-info-in-dialog", lambda p: make("INFO", p, to_tag="t2"), 405, {"Allow": ALLOW}),
    # §8.2.2.1: the Request-URI's scheme, then whether it is ours
    Rule("scheme-tel", lambda p: make("OPTIONS", p, uri="tel:+4912345"), 416),
    Rule("scheme-http", lambda p: make("OPTIONS", p, uri="http://example.org/x"), 416),
    Rule("scheme-urn", lambda p: make("OPTIONS", p, uri="urn:service:sos"), 416),
    Rule("scheme-tel-invite", lambda p: invite(p, uri="tel:+4912345;phone-context=example.org"), 416),
    Rule("scheme-tel-in-dialog", lambda p: make("BYE", p, uri="tel:+4912345", to_tag="t3"), 416),
    Rule("not-ours-127.0.0.2", lambda p: make("OPTIONS", p, uri=f"sip:alice@127.0.0.2:{p.server}"), 404),
    Rule("not-ours-domain", lambda p: make("OPTIONS", p, uri="sip:alice@example.org"), 404),
    Rule("not-ours-invite", lambda p: invite(p, uri=f"sip:alice@127.0.0.2:{p.server}"), 404),
    Rule("not-ours-cancel", lambda p: make("CANCEL", p, uri="sip:alice@example.org"), 404),
    # §8.2.2.3: Require
    Rule("require-options", lambda p: make("OPTIONS", p, extra=_require("100rel, foo")), 420,
         {"Unsupported": "100rel, foo"}),
    Rule("require-two-lines", lambda p: invite(p, extra=_require("100rel", "foo")), 420,
         {"Unsupported": "100rel, foo"}),
    Rule("require-timer", lambda p: invite(p, extra=_require("timer")), 420, {"Unsupported": "timer"}),
    # §8.2.3: a body we do not understand
    Rule("body-text-plain", lambda p: invite(p, body="hello\r\n", content_type="text/plain"), 415, UNSUPPORTED_BODY),
    Rule("body-compact-type", lambda p: invite(p, content_type=None, extra=(("c", "text/html"),)),
         415, UNSUPPORTED_BODY),
    Rule("body-gzip", lambda p: invite(p, extra=(("Content-Encoding", "gzip"),)), 415, UNSUPPORTED_BODY),
    Rule("body-compact-encoding", lambda p: invite(p, extra=(("e", "identity, deflate"),)), 415, UNSUPPORTED_BODY),
    Rule("body-in-options", lambda p: make("OPTIONS", p, body="hi", content_type="text/plain"), 415,
         UNSUPPORTED_BODY),
    # §21.4.7: our answer is SDP, so an INVITE whose Accept excludes it gets 406
    Rule("accept-text-plain", lambda p: invite(p, extra=(("Accept", "text/plain"),)), 406,
         {"Accept": "application/sdp"}),
    Rule("accept-empty", lambda p: invite(p, extra=(("Accept", ""),)), 406, {"Accept": "application/sdp"}),
    Rule("accept-sdp-q0", lambda p: invite(p, extra=(("Accept", "text/plain, application/sdp;q=0"),)), 406,
         {"Accept": "application/sdp"}),
    # no dialog, no transaction: 481
    Rule("bye-no-dialog", lambda p: make("BYE", p, to_tag="nosuchdialog", cseq=2), 481),
    Rule("reinvite-no-dialog", lambda p: invite(p, to_tag="nosuchdialog", cseq=2), 481),
    Rule("options-in-no-dialog", lambda p: make("OPTIONS", p, to_tag="nosuchdialog"), 481),
    Rule("bye-no-dialog-foreign-uri", lambda p: make("BYE", p, uri="sip:alice@example.org", to_tag="t4"), 481),
    Rule("cancel-no-invite", lambda p: make("CANCEL", p), 481),
    # the order of §8.2: the first rule a request breaks decides
    Rule("501-before-416", lambda p: make("FOO", p, uri="tel:+4912345", extra=_require("foo")), 501,
         {"Allow": ALLOW}),
    Rule("405-before-416", lambda p: make("MESSAGE", p, uri="http://example.org/x", body="x",
                                          content_type="text/plain"), 405, {"Allow": ALLOW}),
    Rule("416-before-420", lambda p: make("OPTIONS", p, uri="urn:service:sos", extra=_require("foo")), 416),
    Rule("404-before-420", lambda p: make("OPTIONS", p, uri="sip:alice@example.org", extra=_require("foo"),
                                          body="x", content_type="text/plain"), 404),
    Rule("420-before-415", lambda p: invite(p, body="x", content_type="text/plain",
                                            extra=(*_require("foo"), ("Accept", "text/plain"))), 420,
         {"Unsupported": "foo"}),
    Rule("415-before-406", lambda p: invite(p, body="x", content_type="text/plain",
                                            extra=(("Accept", "text/plain"),)), 415, UNSUPPORTED_BODY),
    # headers whose name-addr has another scheme than sip: parsed, copied, answered normally
    Rule("from-tel", lambda p: make("OPTIONS", p, from_=f"<tel:+4912345>;tag={unique('ft')}"), 200),
    Rule("to-mailto", lambda p: make("OPTIONS", p, to="<mailto:bob@example.org>"), 200),
    Rule("from-urn-display-name", lambda p: make("OPTIONS", p, from_=f'"x" <urn:uuid:f81d4fae-7dec-11d0-a765'
                                                                    f'-00a0c91e6bf6>;tag={unique("fy")}'), 200),
    Rule("to-http", lambda p: make("OPTIONS", p, to="<http://example.org/x>"), 200),
    Rule("tel-from-invite-refused", lambda p: invite(p, from_=f"<tel:+4912345>;tag={unique('ft')}",
                                                     to="<mailto:bob@example.org>", extra=_require("foo")),
         420, {"Unsupported": "foo"}),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("build", [odd_options, one_line_vias, no_rport, functools.partial(make, "OPTIONS")],
                         ids=["compact-and-odd-spacing", "vias-in-one-line", "top-via-without-rport", "plain"])
def test_options_out_of_dialog(port: int, client: socket.socket, build: Callable[[Ports], Req]) -> None:
    """§11.2: the capabilities: Allow and Accept*; we implement no extension, so no option
    tag is claimed (no Supported header, or an empty one: its grammar allows no tag)."""
    req = build(ports_of(port, client))
    reply = exchange(port, req, client)
    assert_reply(reply, req, ports_of(port, client).client, 200, {"Allow": ALLOW, **CAPABILITIES}, server=False)
    assert reply.get("supported") in ([], [""]), f"Supported claims {reply.get('supported')}:\n{reply.raw!r}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("uri", ["sip:alice@127.0.0.1:{port}", "sip:alice@localhost:{port}", "sip:127.0.0.1",
                                 "sip:Alice@LocalHost;transport=udp", "sip:alice@127.0.0.1:{port};user=phone"])
def test_request_uri_ours(port: int, client: socket.socket, uri: str) -> None:
    """127.0.0.1 (the --bind address) and localhost are ours, whatever the case and parameters."""
    req = make("OPTIONS", ports_of(port, client), uri=uri.format(port=port))
    assert_reply(exchange(port, req, client), req, ports_of(port, client).client, 200, {"Allow": ALLOW},
                 server=False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule(port: int, client: socket.socket, rule: Rule) -> None:
    req = rule.build(ports_of(port, client))
    reply = exchange(port, req, client)
    if req.method == "INVITE" and reply.status == 200:
        finish_call(client, port, req, reply)  # wrongly let in: end the call before failing
    # the Server of a 200 is test_every_response_names_its_server's to check
    assert_reply(reply, req, ports_of(port, client).client, rule.status, rule.headers, rule.absent,
                 server=rule.status != 200)


@pytest.mark.timeout(30)
def test_merged_options(port: int, client: socket.socket) -> None:
    """§8.2.2.2: the same From tag, Call-ID and CSeq on another branch is a merged request
    (482), even when it would break a later rule; a retransmission (same branch) is not."""
    p = ports_of(port, client)
    first = make("OPTIONS", p)
    assert_reply(exchange(port, first, client), first, p.client, 200, {"Allow": ALLOW}, server=False)
    again = exchange(port, first, client)
    assert_reply(again, first, p.client, 200, {"Allow": ALLOW}, server=False)
    for extra in ((), _require("foo")):
        merged = Req(first.method, first.uri, [
            ("Via", f"SIP/2.0/UDP {HOST}:{p.client};branch={unique('z9hG4bK-merged-')};rport"),
            *first.headers[1:], *extra,
        ])
        assert_reply(exchange(port, merged, client), merged, p.client, 482)


@pytest.mark.timeout(30)
def test_merged_invite_and_stray_cancel(port: int, client: socket.socket) -> None:
    """An INVITE reaching us twice by two paths: the copy gets 482, the call goes on; a
    CANCEL naming another branch matches no INVITE (481); the call then ends with BYE."""
    p = ports_of(port, client)
    first = invite(p)
    answered = exchange(port, first, client)
    assert answered.status == 200, f"INVITE answered {answered}"
    try:
        _merged_and_cancel(port, client, p, first)
    finally:
        finish_call(client, port, first, answered)
    assert_reply(answered, first, p.client, 200, server=False)


def _merged_and_cancel(port: int, client: socket.socket, p: Ports, first: Req) -> None:
    upstream = ("Via", "SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bK-proxy-b")
    merged = Req("INVITE", first.uri, [
        ("Via", f"SIP/2.0/UDP {HOST}:{p.client};branch={unique('z9hG4bK-merged-')};rport"), upstream,
        *first.headers[1:],
    ], first.body)
    assert_reply(exchange(port, merged, client), merged, p.client, 482)
    cancel = make("CANCEL", p, call_id=first.call_id, from_=first.value("from"))
    assert_reply(exchange(port, cancel, client), cancel, p.client, 481)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("extra", [
    (("Accept", "application/*"),),
    (("Accept", "text/plain;q=1, application/sdp;q=0.5"),),
    (("Accept", "*/*"),),
    (("Content-Encoding", "identity"),),
    (("k", "timer, 100rel"),),
], ids=["accept-application-any", "accept-list", "accept-any", "identity-encoding", "supported-extensions"])
def test_invite_accepted(port: int, client: socket.socket, extra: tuple[tuple[str, str], ...]) -> None:
    """Control for the refusals: what the rules allow is a call like any other."""
    p = ports_of(port, client)
    req = invite(p, extra=extra)
    reply = exchange(port, req, client)
    finish_call(client, port, req, reply)
    assert b"m=audio" in reply.body, reply.raw
    assert_reply(reply, req, p.client, 200, server=False)


@pytest.mark.timeout(30)
def test_every_response_names_its_server(port: int, client: socket.socket) -> None:
    """Responses carry a Server header (RFC 3261 §20.35), whoever in the phone makes them:
    the 200 to OPTIONS, and the 200s to an INVITE and its BYE."""
    p = ports_of(port, client)
    options = make("OPTIONS", p)
    replies = {"OPTIONS": exchange(port, options, client)}
    call = invite(p)
    replies["INVITE"] = exchange(port, call, client)
    replies["BYE"] = finish_call(client, port, call, replies["INVITE"])
    missing = {method: reply.raw.decode("latin-1") for method, reply in replies.items() if not reply.first("server")}
    assert not missing, "200s without a Server header:\n" + "\n".join(f"to {m}:\n{r}" for m, r in missing.items())
    assert_reply(replies["OPTIONS"], options, p.client, 200, {"Allow": ALLOW})
    assert_reply(replies["INVITE"], call, p.client, 200)


@pytest.mark.timeout(60)
def test_after_all_rules_a_real_call(softphone, phone: SoftphoneProcess, port: int) -> None:  # type: ignore[no-untyped-def]
    """Last: the phone that answered every request above still answers OPTIONS, takes a
    real call, and stops cleanly."""
    sock = udp_client()
    try:
        req = make("OPTIONS", ports_of(port, sock))
        assert_reply(exchange(port, req, sock), req, ports_of(port, sock).client, 200, {"Allow": ALLOW}, server=False)
    finally:
        sock.close()
    caller = softphone("--bind", HOST, "--sip-port", "0", "call", f"sip:alice@{HOST}:{port}", "--duration", "1")
    caller.wait_event("state", timeout=15, state="confirmed")
    code = caller.wait(timeout=30)
    assert code == 0, f"caller exited {code}:\n{caller.describe()}"
    assert caller.summary is not None and caller.summary["result"] == "completed", caller.summary
    code = phone.stop(5)
    assert code == 0, f"the phone exited {code}:\n{phone.describe()}"
    assert "Traceback" not in phone.stderr, phone.stderr
