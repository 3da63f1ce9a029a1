"""The transaction layer endpoint: bytes in, events and datagrams out, clock injected."""

from __future__ import annotations

from softphone.sip.endpoint import (
    AckReceived,
    Endpoint,
    MessageDropped,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    build_response,
)
from softphone.sip.message import Request, Response, parse_message
from softphone.sip.transaction import Timers

SOURCE = Peer("udp", "192.0.2.7", 40000)

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@10.1.1.1>;tag=a1\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1@10.1.1.1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:alice@10.1.1.1:5070>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def replies(endpoint: Endpoint) -> list[tuple[Response, Peer]]:
    out = []
    for datagram in endpoint.datagrams_to_send():
        message = parse_message(datagram.data)
        assert isinstance(message, Response)
        out.append((message, datagram.peer))
    return out


def test_new_invite_is_delivered_and_trying_sent_to_rport_source() -> None:
    endpoint = Endpoint(Timers())
    events = endpoint.receive(INVITE, SOURCE, 0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    request = events[0].request
    # RFC 3581 §4: received and rport are filled in from the real source
    assert request.top_via.received == "192.0.2.7" and request.top_via.rport == 40000
    sent = replies(endpoint)
    assert [(r.status, p.host, p.port) for r, p in sent] == [(100, "192.0.2.7", 40000)]


def test_trying_is_repeated_for_a_retransmitted_invite_until_the_tu_answers() -> None:
    endpoint = Endpoint(Timers())
    request = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    assert [r.status for r, _ in replies(endpoint)] == [100]
    assert endpoint.receive(INVITE, SOURCE, 0.5) == []
    assert [r.status for r, _ in replies(endpoint)] == [100]
    endpoint.respond(request, build_response(request, 180, to_tag="b1"), 0.6)
    assert [r.status for r, _ in replies(endpoint)] == [180]


def test_no_trying_when_the_tu_answers_before_the_datagrams_leave() -> None:
    # RFC 3261 §17.2.1: the 100 is owed only when the TU will not answer within 200 ms
    for statuses in ((180,), (180, 200), (200,), (486,)):
        endpoint = Endpoint(Timers())
        request = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
        for status in statuses:
            endpoint.respond(request, build_response(request, status, to_tag="b1"), 0.0)
        assert [r.status for r, _ in replies(endpoint)] == list(statuses)
        assert replies(endpoint) == []  # and none later: the transaction has answered


def test_trying_is_owed_to_each_invite_of_one_batch() -> None:
    endpoint = Endpoint(Timers())
    first = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    second_invite = INVITE.replace(b"branch=z9hG4bKabc", b"branch=z9hG4bKdef").replace(b"c1@", b"c2@")
    endpoint.receive(second_invite, SOURCE, 0.0)
    endpoint.respond(first, build_response(first, 180, to_tag="b1"), 0.0)
    assert sorted((r.status, r.call_id) for r, _ in replies(endpoint)) == [(100, "c2@10.1.1.1"), (180, "c1@10.1.1.1")]


def test_retransmitted_invite_is_absorbed_and_last_response_repeated() -> None:
    endpoint = Endpoint(Timers())
    request = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    endpoint.datagrams_to_send()
    endpoint.respond(request, build_response(request, 180, to_tag="b1"), 0.1)
    assert [r.status for r, _ in replies(endpoint)] == [180]
    assert endpoint.receive(INVITE, SOURCE, 0.5) == []
    assert [r.status for r, _ in replies(endpoint)] == [180]


def test_2xx_is_retransmitted_until_the_ack() -> None:
    endpoint = Endpoint(Timers())
    request = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    endpoint.datagrams_to_send()
    endpoint.respond(request, build_response(request, 200, to_tag="b1"), 0.0)
    assert [r.status for r, _ in replies(endpoint)] == [200]
    assert endpoint.get_timer() == 0.5
    endpoint.handle_timer(0.5)
    assert [r.status for r, _ in replies(endpoint)] == [200]
    ack = INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK").replace(b"z9hG4bKabc", b"z9hG4bKack")
    events = endpoint.receive(ack, SOURCE, 0.7)
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    endpoint.handle_timer(10.0)
    assert replies(endpoint) == []


def test_an_ack_that_reuses_the_invites_branch_ends_the_2xx_retransmissions_too() -> None:
    """RFC 6026 §7.1: an ACK keyed to the INVITE's transaction (its branch reused, or an RFC 2543
    peer without the magic cookie) is passed up through it; it ends the 2xx's retransmissions
    (RFC 3261 §13.3.1.4) as an ACK with a branch of its own does."""
    for invite in (INVITE, INVITE.replace(b"branch=z9hG4bKabc", b"branch=2543abc")):
        endpoint = Endpoint(Timers())
        request = endpoint.receive(invite, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
        endpoint.datagrams_to_send()
        endpoint.respond(request, build_response(request, 200, to_tag="b1"), 0.0)
        assert [r.status for r, _ in replies(endpoint)] == [200]
        ack = invite.replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK")
        ack = ack.replace(b"To: <sip:bob@127.0.0.1>", b"To: <sip:bob@127.0.0.1>;tag=b1")
        events = endpoint.receive(ack, SOURCE, 0.1)
        assert len(events) == 1 and isinstance(events[0], AckReceived)
        for now in (0.5, 1.5, 3.5, 10.0):
            endpoint.handle_timer(now)
            assert replies(endpoint) == [], (invite, now)


def test_malformed_request_with_usable_via_gets_400() -> None:
    endpoint = Endpoint(Timers())
    bad = INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE")
    events = endpoint.receive(bad, SOURCE, 0.0)
    assert len(events) == 1 and isinstance(events[0], MessageDropped)
    ((response, peer),) = replies(endpoint)
    assert response.status == 400 and peer == SOURCE
    assert response.call_id == "c1@10.1.1.1"


def test_message_without_via_is_dropped_silently() -> None:
    endpoint = Endpoint(Timers())
    bad = b"\r\n".join(line for line in INVITE.split(b"\r\n") if not line.startswith(b"Via"))
    events = endpoint.receive(bad, SOURCE, 0.0)
    assert isinstance(events[0], MessageDropped)
    assert replies(endpoint) == []


def test_garbage_and_keepalives() -> None:
    endpoint = Endpoint(Timers())
    assert endpoint.receive(b"\r\n\r\n", SOURCE, 0.0) == []
    events = endpoint.receive(b"\x00\xff garbage", SOURCE, 0.0)
    assert isinstance(events[0], MessageDropped)
    assert replies(endpoint) == []


def test_client_transaction_delivers_response_and_times_out() -> None:
    endpoint = Endpoint(Timers(t1=0.1))
    request = parse_message(INVITE.replace(b"z9hG4bKabc", b"z9hG4bKout"))
    assert isinstance(request, Request)
    peer = Peer("udp", "127.0.0.1", 5062)
    endpoint.send_request(request, peer, 0.0)
    assert len(endpoint.datagrams_to_send()) == 1
    # no response at all: Timer A retransmits, Timer B (64*T1) ends the transaction
    events = []
    now = 0.0
    while now < 7.0:
        now += 0.05
        events += endpoint.handle_timer(now)
    assert [e.timer for e in events if isinstance(e, TransactionTimedOut)] == ["B"]
    assert len(endpoint.datagrams_to_send()) == 6  # at 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s
    assert endpoint.get_timer() is None


def test_client_transaction_delivers_provisional_then_final() -> None:
    endpoint = Endpoint(Timers(t1=0.1))
    request = parse_message(INVITE.replace(b"z9hG4bKabc", b"z9hG4bKout"))
    assert isinstance(request, Request)
    peer = Peer("udp", "127.0.0.1", 5062)
    endpoint.send_request(request, peer, 0.0)
    endpoint.datagrams_to_send()
    events = endpoint.receive(bytes(build_response(request, 180, to_tag="x")), peer, 0.05)
    assert isinstance(events[0], ResponseReceived) and events[0].response.status == 180
    # RFC 3261 §17.1.1.2: in Proceeding there are no more retransmissions
    assert endpoint.handle_timer(1.0) == [] and endpoint.datagrams_to_send() == []
    events = endpoint.receive(bytes(build_response(request, 486, to_tag="x")), peer, 1.1)
    assert isinstance(events[0], ResponseReceived) and events[0].response.status == 486
    (ack,) = endpoint.datagrams_to_send()
    assert ack.data.startswith(b"ACK sip:bob@127.0.0.1:5062 SIP/2.0")


def test_response_without_transaction_is_ignored() -> None:
    endpoint = Endpoint(Timers())
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    assert endpoint.receive(bytes(build_response(request, 200, to_tag="x")), SOURCE, 0.0) == []


def test_tcp_responses_use_the_connection() -> None:
    endpoint = Endpoint(Timers())
    source = Peer("tcp", "127.0.0.1", 50000, connection=3)
    tcp_invite = INVITE.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    events = endpoint.receive(tcp_invite, source, 0.0)
    assert isinstance(events[0], RequestReceived)
    ((_, peer),) = replies(endpoint)
    assert peer.connection == 3


def test_an_answered_request_is_kept_by_its_identity_and_its_answer_repeated_byte_for_byte() -> None:
    """A server transaction that has sent its final answer waits 64*T1 (Timer J) for
    retransmissions: it keeps the answer's bytes and the request's identifying headers only."""
    endpoint = Endpoint(Timers())
    options = (INVITE.replace(b"INVITE sip", b"OPTIONS sip").replace(b"7 INVITE", b"7 OPTIONS")
               .replace(b"Content-Length: 0\r\n\r\n", b"User-Agent: probe\r\nContent-Length: 4\r\n\r\nbody"))
    request = endpoint.receive(options, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    endpoint.respond(request, build_response(request, 200, to_tag="b1", extra=[("Accept", "application/sdp")]), 0.0)
    (first,) = endpoint.datagrams_to_send()
    (entry,) = endpoint._servers.values()
    kept = entry.transaction.request
    assert kept is entry.request and kept.body == b""
    assert [name for name, _ in kept.headers.items] == ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length"]
    assert (kept.method, kept.call_id, kept.cseq.number, kept.top_via.branch) == ("OPTIONS", "c1@10.1.1.1", 7,
                                                                                "z9hG4bKabc")
    assert endpoint.receive(options, SOURCE, 1.0) == []
    (again,) = endpoint.datagrams_to_send()
    assert again.data == first.data and again.peer == first.peer


def test_an_invite_transaction_keeps_no_copy_of_its_2xx_and_absorbs_invite_copies() -> None:
    """RFC 6026 §7.1: in Accepted, INVITE retransmissions are absorbed; the 2xx is the TU's to
    repeat (RFC 3261 §13.3.1.4), so the transaction keeps none."""
    endpoint = Endpoint(Timers())
    request = endpoint.receive(INVITE, SOURCE, 0.0)[0].request  # type: ignore[union-attr]
    endpoint.datagrams_to_send()
    endpoint.respond(request, build_response(request, 200, to_tag="b1"), 0.0)
    assert [r.status for r, _ in replies(endpoint)] == [200]
    (entry,) = endpoint._servers.values()
    assert entry.transaction.state == "accepted" and entry.transaction.last_response is None
    assert endpoint.receive(INVITE, SOURCE, 0.1) == [] and endpoint.datagrams_to_send() == []
    endpoint.handle_timer(0.5)  # T1: the TU's retransmission of the 2xx
    assert [r.status for r, _ in replies(endpoint)] == [200]


def test_the_stamped_request_keeps_what_was_parsed_and_equals_a_fresh_parse() -> None:
    endpoint = Endpoint(Timers())
    (event,) = endpoint.receive(INVITE, SOURCE, 0.0)
    assert isinstance(event, RequestReceived)
    request = event.request
    accessors = ("call_id", "cseq", "from_addr", "to_addr", "top_via", "contacts")
    assert set(request.parsed(*accessors)) == set(accessors)  # none is parsed again
    fresh = parse_message(bytes(request))  # the stamped request as it would be read from the wire
    assert isinstance(fresh, Request)
    unprimed = Request(fresh.method, fresh.uri, fresh.headers, fresh.body)
    for name in accessors:
        assert getattr(request, name) == getattr(unprimed, name), name
    assert request.headers == fresh.headers
    assert [name for name, _ in request.headers.items][:1] == ["Via"]


def test_copies_of_an_answered_request_are_due_for_two_back_off_gaps_after_the_last() -> None:
    """A peer that lost our 200 sends its request again T1 later, then doubling the gap up to
    T2 (RFC 3261 §17.1.2.2); the copy after that may be lost as well. Until when more copies
    may come: the two gaps after the last copy, the first being the time since the first copy
    plus T1, and T1/2 more. Over TCP, and once Timer J has fired, none is due."""
    t1, t2 = 0.5, 4.0
    endpoint = Endpoint(Timers(t1=t1, t2=t2))
    bye = (INVITE.replace(b"INVITE sip", b"BYE sip").replace(b"7 INVITE", b"8 BYE"))
    assert endpoint.copies_due("BYE") is None
    request = endpoint.receive(bye, SOURCE, 10.0)[0].request  # type: ignore[union-attr]
    assert endpoint.copies_due("BYE") is None  # not answered yet: nothing to repeat
    endpoint.respond(request, build_response(request, 200, to_tag="b1"), 10.0)
    endpoint.datagrams_to_send()
    assert endpoint.copies_due("OPTIONS") is None
    assert endpoint.copies_due("BYE") == 10.0 + t1 + 2 * t1 + t1 / 2  # copies at +T1, then +2*T1
    endpoint.receive(bye, SOURCE, 11.5)  # its second copy lost, its third came
    assert len(endpoint.datagrams_to_send()) == 1
    assert endpoint.copies_due("BYE") == 11.5 + 2.0 + t2 + t1 / 2  # its next gaps: 4*T1, then T2
    endpoint.handle_timer(10.0 + 64 * t1)  # Timer J: the transaction has stopped answering
    assert endpoint.copies_due("BYE") is None

    tcp = Endpoint(Timers(t1=t1, t2=t2))
    request = tcp.receive(bye, Peer("tcp", "192.0.2.7", 40000), 0.0)[0].request  # type: ignore[union-attr]
    tcp.respond(request, build_response(request, 200, to_tag="b1"), 0.0)
    assert tcp.copies_due("BYE") is None  # Timer J is 0 over a reliable transport


def test_a_transport_failure_ends_the_peers_transactions_that_can_fail_and_leaves_the_rest() -> None:
    """An ICMP unreachable (or a lost connection) for a peer: its BYE, still unanswered, ends at
    once; its INVITE, answered 2xx (Accepted: RFC 6026 has no transport error there), goes on."""
    endpoint = Endpoint(Timers())
    peer = Peer("udp", "127.0.0.1", 5062)
    invite = parse_message(INVITE.replace(b"z9hG4bKabc", b"z9hG4bKinv"))
    bye = parse_message(INVITE.replace(b"INVITE sip", b"BYE sip").replace(b"7 INVITE", b"8 BYE")
                        .replace(b"z9hG4bKabc", b"z9hG4bKbye"))
    elsewhere = parse_message(INVITE.replace(b"z9hG4bKabc", b"z9hG4bKother"))
    assert isinstance(invite, Request) and isinstance(bye, Request) and isinstance(elsewhere, Request)
    endpoint.send_request(invite, peer, 0.0)
    endpoint.receive(bytes(build_response(invite, 200, to_tag="x")), peer, 0.1)
    endpoint.send_request(bye, peer, 1.0)
    endpoint.send_request(elsewhere, Peer("udp", "127.0.0.1", 5070), 1.0)
    events = endpoint.transport_failed(peer, 1.1)
    assert [(e.request.method, e.timer) for e in events if isinstance(e, TransactionTimedOut)] == [("BYE", "transport")]
    assert endpoint.unanswered("BYE") == 0 and endpoint.unanswered("INVITE") == 1  # the other peer's
    assert len(endpoint._clients) == 2  # the accepted INVITE and the other peer's
