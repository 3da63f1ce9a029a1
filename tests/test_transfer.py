"""Blind transfer (REFER, RFC 3515) between three user agents in memory, with an injected clock.

Alice calls Bob, then transfers him to Carol: Alice is the transferor (REFER out, NOTIFYs in),
Bob the transferee (REFER in, a new call to Carol, NOTIFYs out). The test plays the edges only,
as tests/test_call.py does; placing the call a REFER asks for is the edge's part, done here as
``Phone`` does it: ``UserAgent.call`` then ``UserAgent.transfer_placed``.
"""

from __future__ import annotations

import pytest

from softphone.agent import AgentCommand, CallCommand, IncomingCall, IncomingPolicy, TransferCall
from softphone.call import Call, CallEnded, CallResult, CallState, Direction, EndCause, TransferState, TransferUpdate
from softphone.errors import ParseError, StateError
from softphone.sip.dialog import Dialog
from softphone.sip.endpoint import Peer
from softphone.sip.headers import NameAddress
from softphone.sip.message import Headers, Request, parse_message
from softphone.sip.refer import StatusFragment, SubscriptionState, embedded_headers, event_package, refer_target
from softphone.sip.uas import RequestInspector
from softphone.sip.uri import SipUri
from tests.test_call import HOST, Net, Side, setup_for

CAROL = SipUri("sip", "carol", None, HOST, 5063)


class TransferNet(Net):
    """Net whose edge also places the calls a REFER asks for."""

    def edge(self, side: Side, commands: list[AgentCommand]) -> None:
        for command in commands:
            side.reported.append(command)
            if isinstance(command, IncomingCall):
                self.edge(side, side.agent.accept(command.request, side.setup, command.source, self.now))
            elif isinstance(command, TransferCall):
                target = command.target
                peer = Peer("udp", target.host, target.port or 5060)
                new_call_id, placed = side.agent.call(target, side.setup, peer, self.now)
                self.edge(side, side.agent.transfer_placed(command.call_id, new_call_id, self.now) + placed)
        self.deliver_all()


@pytest.fixture
def trio() -> tuple[Side, Side, Side, TransferNet]:
    alice = Side("alice", 5061, setup_for("alice", 5061, 20000))
    bob = Side("bob", 5062, setup_for("bob", 5062, 30000))
    carol = Side("carol", 5063, setup_for("carol", 5063, 40000))
    bob.agent.policy = IncomingPolicy(auto_answer=True)
    carol.agent.policy = IncomingPolicy(delay=0.5, auto_answer=True)  # rings, then answers
    return alice, bob, carol, TransferNet(alice, bob, carol)


def connect(alice: Side, bob: Side, net: Net) -> tuple[Call, Call]:
    target = SipUri("sip", "bob", None, HOST, bob.port)
    call_id, commands = alice.agent.call(target, alice.setup, bob.peer, net.now)
    net.edge(alice, commands)
    call = alice.agent.calls[call_id].call
    assert call.state == CallState.CONFIRMED and bob.call is not None
    return call, bob.call


def updates(side: Side, call_id: str | None = None) -> list[TransferUpdate]:
    return [c.command for c in side.reported if isinstance(c, CallCommand) and isinstance(c.command, TransferUpdate)
            and (call_id is None or c.call_id == call_id)]


def ended(side: Side, call_id: str) -> CallEnded | None:
    return next((c.command for c in side.reported if isinstance(c, CallCommand) and c.call_id == call_id
                 and isinstance(c.command, CallEnded)), None)


def requests(net: Net, method: str, port: int) -> list[Request]:
    out = []
    for data in net.sent(method.encode() + b" ", port):
        message = parse_message(data)
        assert isinstance(message, Request)
        out.append(message)
    return out


def status_of(net: Net, method: str, port: int) -> list[int]:
    """The status codes of the responses to ``method`` sent to ``port``."""
    codes = []
    for data in net.sent(b"SIP/2.0 ", port):
        head = data.split(b"\r\n\r\n", 1)[0]
        if f" {method}\r\n".encode() in head.split(b"CSeq:", 1)[1].split(b"\r\n", 1)[0] + b"\r\n":
            codes.append(int(data[8:11]))
    return codes


def in_dialog(call: Call, side: Side, method: str, *extra: tuple[str, str], body: bytes = b"",
              content_type: str | None = None) -> Request:
    assert call.dialog is not None
    return call.dialog.create_request(method, side.setup.local, side.setup.local.contact_uri(side.name),
                                      body=body, content_type=content_type, extra=extra)


# ------------------------------------------------------------------ a complete blind transfer


def test_blind_transfer_hands_the_call_on(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, carol, net = trio
    call, bobs = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    # Bob took the REFER (202), said 100 Trying, and called Carol, who is ringing
    (refer,) = requests(net, "REFER", bob.port)
    assert refer.headers.get("Refer-To") == f"<{CAROL}>"
    assert refer.headers.get("Referred-By") == "<sip:alice@127.0.0.1>"
    assert refer.contacts and status_of(net, "REFER", alice.port) == [202]
    new_call = carol.call
    assert new_call is not None and new_call.state == CallState.RINGING
    assert str(new_call.invite.from_addr.uri if new_call.invite else "") == "sip:bob@127.0.0.1"
    net.advance(1.0)  # Carol answers
    assert new_call.state == CallState.CONFIRMED
    placed = [r.call for r in bob.agent.calls.values() if r.call.call_id != bobs.call_id]
    assert [c.state for c in placed] == [CallState.CONFIRMED]

    # the NOTIFYs: 100, 180, then the final 200 that ends the subscription
    notifies = requests(net, "NOTIFY", alice.port)
    assert [StatusFragment.parse(n.body).status for n in notifies] == [100, 180, 200]
    assert all(n.headers.get("Event") == "refer" and n.content_type == "message/sipfrag" for n in notifies)
    assert notifies[0].body == b"SIP/2.0 100 Trying\r\n" and notifies[-1].body == b"SIP/2.0 200 OK\r\n"
    states = [SubscriptionState.parse(n.headers.get("Subscription-State")) for n in notifies]
    assert [s.state for s in states] == ["active", "active", "terminated"] and states[-1].reason == "noresource"
    assert status_of(net, "NOTIFY", bob.port) == [200, 200, 200]

    # the transferor hung up with BYE; for both, the first call ended normally
    assert call.state == CallState.TERMINATED and bobs.state == CallState.TERMINATED
    assert ended(alice, call.call_id) == CallEnded(CallResult.COMPLETED, 200, f"transferred to {CAROL}",
                                                   EndCause.TRANSFERRED)
    bob_end = ended(bob, bobs.call_id)
    assert bob_end is not None and bob_end.cause == EndCause.REMOTE_HANGUP and bob_end.result == CallResult.COMPLETED

    # what each side reported
    assert [(u.direction, u.state, u.sip_code) for u in updates(alice)] == [
        (Direction.OUTGOING, TransferState.REQUESTED, None),
        (Direction.OUTGOING, TransferState.ACCEPTED, 202),
        (Direction.OUTGOING, TransferState.PROGRESS, 100),
        (Direction.OUTGOING, TransferState.PROGRESS, 180),
        (Direction.OUTGOING, TransferState.SUCCEEDED, 200),
    ]
    bob_updates = updates(bob, bobs.call_id)
    assert [(u.direction, u.state, u.sip_code) for u in bob_updates] == [
        (Direction.INCOMING, TransferState.REQUESTED, None),
        (Direction.INCOMING, TransferState.CALLING, None),
        (Direction.INCOMING, TransferState.PROGRESS, 180),
        (Direction.INCOMING, TransferState.SUCCEEDED, 200),
    ]
    assert bob_updates[1].new_call_id == placed[0].call_id and bob_updates[0].target == CAROL
    assert any(isinstance(c, TransferCall) and c.target == CAROL for c in bob.reported)


def test_transferee_hangs_up_when_the_transferor_does_not(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    call, bobs = connect(alice, bob, net)
    net.drop = {"BYE"}  # Alice's BYE after the transfer is lost
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    net.advance(1.0)
    assert updates(bob, bobs.call_id)[-1].state == TransferState.SUCCEEDED
    assert bobs.state == CallState.CONFIRMED
    net.advance(4.5)  # 8*T1 after the final NOTIFY
    assert bobs.state in (CallState.TERMINATING, CallState.TERMINATED)
    assert requests(net, "BYE", alice.port)  # Bob's own BYE
    net.drop = set()
    net.advance(10.0)
    end = ended(bob, bobs.call_id)
    assert end is not None and end.cause == EndCause.TRANSFERRED and end.result == CallResult.COMPLETED


# ------------------------------------------------------------------ failures


def test_target_busy_leaves_the_call_up(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, carol, net = trio
    carol.agent.policy = IncomingPolicy(reject=486)
    call, bobs = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    notifies = requests(net, "NOTIFY", alice.port)
    assert [StatusFragment.parse(n.body).status for n in notifies] == [100, 486]
    assert notifies[-1].headers.get("Subscription-State") == "terminated;reason=noresource"
    last = updates(alice)[-1]
    assert (last.state, last.sip_code, last.reason) == (TransferState.FAILED, 486, "Busy Here")
    assert (updates(bob, bobs.call_id)[-1].state, updates(bob, bobs.call_id)[-1].sip_code) == (TransferState.FAILED,
                                                                                               486)
    net.advance(6.0)
    assert call.state == CallState.CONFIRMED and bobs.state == CallState.CONFIRMED
    # the call is still ours: a second transfer may follow, and its NOTIFYs name it by id
    carol.agent.policy = IncomingPolicy(auto_answer=True)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    second = requests(net, "REFER", bob.port)[-1]
    assert requests(net, "NOTIFY", alice.port)[-1].headers.get("Event") == f"refer;id={second.cseq.number}"
    assert updates(alice)[-1].state == TransferState.SUCCEEDED and call.state == CallState.TERMINATED


def test_target_not_answering_reports_408(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    call, _ = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, SipUri("sip", "dave", None, HOST, 5099), net.now))
    net.advance(33.0)  # Timer B of Bob's INVITE to nobody
    last = updates(alice)[-1]
    assert (last.state, last.sip_code) == (TransferState.FAILED, 408)
    assert call.state == CallState.CONFIRMED


def test_refer_refused_leaves_the_call_up(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    # a peer without REFER answers 405 (RFC 3261 §8.2.1)
    bob.agent.inspector = RequestInspector(allow="INVITE, ACK, CANCEL, BYE, OPTIONS", accept="application/sdp",
                                           local_hosts=(HOST,))
    call, _ = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    last = updates(alice)[-1]
    assert (last.state, last.sip_code) == (TransferState.FAILED, 405)
    assert call.state == CallState.CONFIRMED and not ended(alice, call.call_id)


def test_transfer_needs_an_established_call(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    bob.agent.policy = IncomingPolicy()  # rings
    target = SipUri("sip", "bob", None, HOST, bob.port)
    call_id, commands = alice.agent.call(target, alice.setup, bob.peer, net.now)
    net.edge(alice, commands)
    with pytest.raises(StateError):
        alice.agent.transfer(call_id, CAROL, net.now)


def test_one_transfer_at_a_time(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    net.drop = {"REFER"}
    call, _ = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    with pytest.raises(StateError):
        alice.agent.transfer(call.call_id, CAROL, net.now)
    net.advance(33.0)  # the REFER is never answered: Timer F
    last = updates(alice)[-1]
    assert (last.state, last.sip_code) == (TransferState.FAILED, 408)


# ------------------------------------------------------------------ bad REFERs and NOTIFYs


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((), b"Missing Refer-To"),
        ((("Refer-To", "<sip:carol@127.0.0.1:5063>"), ("Refer-To", "<sip:dave@127.0.0.1>")), b"More Than One"),
        ((("Refer-To", "<tel:+15551234>"),), b"Not A SIP URI"),
        ((("Refer-To", "<sip:carol@127.0.0.1;method=BYE>"),), b"Not INVITE"),
    ],
)
def test_refer_without_one_good_refer_to_gets_400(
    trio: tuple[Side, Side, Side, TransferNet], headers: tuple[tuple[str, str], ...], reason: bytes
) -> None:
    alice, bob, _, net = trio
    call, bobs = connect(alice, bob, net)
    net.edge(bob, bob.agent.receive(bytes(in_dialog(call, alice, "REFER", *headers)), alice.peer, net.now))
    (reply,) = [d for d in net.sent(b"SIP/2.0 ", alice.port) if b" REFER\r\n" in d]
    assert reply.startswith(b"SIP/2.0 400 ") and reason.lower() in reply.split(b"\r\n", 1)[0].lower()
    assert not [c for c in bob.reported if isinstance(c, TransferCall)]
    assert bobs.state == CallState.CONFIRMED


def test_refer_outside_a_dialog_gets_400(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    headers = Headers.of(
        ("Via", str(alice.setup.local.via())), ("Max-Forwards", "70"), ("From", "<sip:alice@127.0.0.1>;tag=a1"),
        ("To", "<sip:bob@127.0.0.1:5062>"), ("Call-ID", "out-of-dialog@127.0.0.1"), ("CSeq", "1 REFER"),
        ("Contact", "<sip:alice@127.0.0.1:5061>"), ("Refer-To", f"<{CAROL}>"),
    )
    refer = Request("REFER", SipUri("sip", "bob", None, HOST, bob.port), headers)
    net.edge(bob, bob.agent.receive(bytes(refer), alice.peer, net.now))
    assert status_of(net, "REFER", alice.port) == [400]
    assert not bob.agent.calls


def test_refer_in_an_unknown_dialog_gets_481(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    call, _ = connect(alice, bob, net)
    assert call.dialog is not None
    dialog = Dialog(**{**call.dialog.__dict__, "call_id": "other@127.0.0.1"})
    refer = dialog.create_request("REFER", alice.setup.local, None, extra=(("Refer-To", f"<{CAROL}>"),))
    net.edge(bob, bob.agent.receive(bytes(refer), alice.peer, net.now))
    assert status_of(net, "REFER", alice.port) == [481]


def test_notify_checks(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, _, net = trio
    call, bobs = connect(alice, bob, net)

    def notify(*extra: tuple[str, str], body: bytes = b"SIP/2.0 200 OK\r\n", kind: str = "message/sipfrag") -> int:
        request = in_dialog(bobs, bob, "NOTIFY", *extra, body=body, content_type=kind)
        net.edge(alice, alice.agent.receive(bytes(request), bob.peer, net.now))
        return status_of(net, "NOTIFY", bob.port)[-1]

    state = ("Subscription-State", "terminated;reason=noresource")
    assert notify(("Event", "refer"), state) == 481  # no REFER of ours
    assert notify(("Event", "dialog"), state) == 489  # an event package we do not know
    assert notify(("Event", "refer"), state, body=b"hello", kind="text/plain") == 415
    net.drop = {"REFER"}
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    assert notify(("Event", "refer;id=1"), state) == 481  # another REFER's subscription
    assert notify(("Event", "refer"), state, body=b"not a status line") == 400
    assert notify(("Event", "refer")) == 400  # no Subscription-State
    assert call.state == CallState.CONFIRMED
    # a NOTIFY may come before the 202: it counts all the same
    assert notify(("Event", "refer"), ("Subscription-State", "active;expires=60"), body=b"SIP/2.0 180 Ringing") == 200
    assert notify(("Event", "refer"), state, body=b"SIP/2.0 603 Declined\r\n") == 200
    assert [(u.state, u.sip_code) for u in updates(alice)] == [
        (TransferState.REQUESTED, None), (TransferState.PROGRESS, 180), (TransferState.FAILED, 603)]
    assert call.state == CallState.CONFIRMED


def test_second_refer_while_one_runs_gets_491(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    alice, bob, carol, net = trio
    carol.agent.policy = IncomingPolicy()  # Carol rings and rings
    call, _ = connect(alice, bob, net)
    net.edge(alice, alice.agent.transfer(call.call_id, CAROL, net.now))
    refer = in_dialog(call, alice, "REFER", ("Refer-To", f"<{CAROL}>"))
    net.edge(bob, bob.agent.receive(bytes(refer), alice.peer, net.now))
    assert status_of(net, "REFER", alice.port) == [202, 491]


def test_refer_to_with_replaces_goes_into_the_new_invite(trio: tuple[Side, Side, Side, TransferNet]) -> None:
    """Attended transfer, the transferee's part (RFC 3891): the Refer-To's Replaces header
    goes into the INVITE to the target, not into its Request-URI."""
    alice, bob, _, net = trio
    call, _ = connect(alice, bob, net)
    refer_to = "<sip:carol@127.0.0.1:5063?Replaces=abc%40127.0.0.1%3Bto-tag%3Dc1%3Bfrom-tag%3Da1>"
    net.edge(bob, bob.agent.receive(bytes(in_dialog(call, alice, "REFER", ("Refer-To", refer_to))), alice.peer,
                                    net.now))
    (invite,) = requests(net, "INVITE", 5063)
    assert str(invite.uri) == "sip:carol@127.0.0.1:5063" and invite.to_addr.uri == CAROL
    assert invite.headers.get("Replaces") == "abc@127.0.0.1;to-tag=c1;from-tag=a1"


# ------------------------------------------------------------------ the SIP pieces


def _refer(*refer_to: str) -> Request:
    pairs = [("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx"), ("From", "<sip:a@h>;tag=1"),
             ("To", "<sip:b@h>;tag=2"), ("Call-ID", "c"), ("CSeq", "2 REFER")]
    return Request("REFER", SipUri.parse("sip:b@h"), Headers.of(*pairs, *[("Refer-To", r) for r in refer_to]))


def test_refer_target() -> None:
    assert refer_target(_refer("<sip:carol@example.test;transport=tcp>")) == SipUri.parse(
        "sip:carol@example.test;transport=tcp")
    assert refer_target(_refer("sip:carol@example.test")).host == "example.test"
    assert refer_target(_refer("<sip:carol@h;method=INVITE>")).user == "carol"
    for bad in ((), ("<sip:a@h>", "<sip:b@h>"), ("<mailto:carol@h>",), ("<sip:c@h;method=SUBSCRIBE>",)):
        with pytest.raises(ParseError):
            refer_target(_refer(*bad))


def test_subscription_state_and_event() -> None:
    state = SubscriptionState.parse("Terminated;reason=noresource")
    assert state.terminated and state.reason == "noresource" and str(state) == "terminated;reason=noresource"
    active = SubscriptionState.parse("active ;expires=60")
    assert not active.terminated and active.expires == 60 and str(active) == "active;expires=60"
    for bad in (None, "", "gone", "active;expires=soon"):
        with pytest.raises(ParseError):
            SubscriptionState.parse(bad)
    assert event_package("refer") == ("refer", None)
    assert event_package("Refer ; id=93") == ("refer", "93")
    assert event_package(None) == ("", None)


def test_status_fragment() -> None:
    assert StatusFragment.parse(b"SIP/2.0 200 OK\r\n") == StatusFragment(200, "OK")
    assert StatusFragment.parse(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n") == StatusFragment(100, "Trying")
    assert StatusFragment.parse(b"SIP/2.0 503") == StatusFragment(503, "")
    assert bytes(StatusFragment(486, "Busy Here")) == b"SIP/2.0 486 Busy Here\r\n"
    for bad in (b"", b"INVITE sip:a@h SIP/2.0", b"SIP/2.0 99 Odd", b"HTTP/1.1 200 OK"):
        with pytest.raises(ParseError):
            StatusFragment.parse(bad)


def test_embedded_headers() -> None:
    uri = SipUri.parse("sip:carol@h?Replaces=x%40h%3Bto-tag%3D1%3Bfrom-tag%3D2&Subject=hi")
    bare, headers = embedded_headers(uri)
    assert str(bare) == "sip:carol@h" and headers == (("Replaces", "x@h;to-tag=1;from-tag=2"),)
    assert embedded_headers(bare) == (bare, ())
    assert NameAddress(bare).uri == bare
