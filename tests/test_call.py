"""The Call state machine, driven through two sans-I/O endpoints with an injected clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from softphone.call import (
    TRANSITIONS,
    Call,
    CallEnded,
    CallSetup,
    Command,
    MediaStop,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
)
from softphone.errors import StateError
from softphone.sdp.model import SessionDescription
from softphone.sdp.negotiate import CodecSpec, SessionConfig, StreamConfig, answer_offer
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import (
    AckReceived,
    AnswerTimedOut,
    Endpoint,
    Event,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    build_response,
)
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request
from softphone.sip.transaction import Timers
from softphone.sip.uri import SipUri

PCMU = CodecSpec("PCMU", 8000, 1, 0)
PCMA = CodecSpec("PCMA", 8000, 1, 8)
VP8 = CodecSpec("VP8", 90000, 1, None, None, ("nack pli",))


def setup_for(
    name: str, port: int, rtp: int, codecs: tuple[CodecSpec, ...] = (PCMU, PCMA), video: bool = False
) -> CallSetup:
    streams = [StreamConfig("audio", rtp, codecs)]
    if video:
        streams.append(StreamConfig("video", rtp + 2, (VP8,)))
    return CallSetup(
        local=LocalAddress("udp", "127.0.0.1", port),
        identity=NameAddress(SipUri("sip", name, None, "127.0.0.1")),
        media=SessionConfig("127.0.0.1", tuple(streams), username=name),
        user_agent="test",
    )


@dataclass
class Side:
    """One user agent: an endpoint, its calls, and what it saw."""

    name: str
    port: int
    setup: CallSetup
    endpoint: Endpoint = field(default_factory=lambda: Endpoint(Timers()))
    call: Call | None = None
    commands: list[Command] = field(default_factory=list)
    auto_answer: bool = False
    drop_acks: bool = False

    @property
    def peer(self) -> Peer:
        return Peer("udp", "127.0.0.1", self.port)

    def states(self) -> list[str]:
        return [c.state for c in self.commands if isinstance(c, StateChanged)]

    def ended(self) -> CallEnded | None:
        return next((c for c in self.commands if isinstance(c, CallEnded)), None)


class Wire:
    """Carries datagrams between two sides; the clock is ``now``."""

    def __init__(self, a: Side, b: Side) -> None:
        self.sides = {a.port: a, b.port: b}
        self.now = 0.0
        self.log: list[tuple[int, bytes]] = []
        self.drop: set[str] = set()  # first-line prefixes never delivered

    def execute(self, side: Side, commands: list[Command]) -> None:
        side.commands += commands
        for command in commands:
            if isinstance(command, SendRequest):
                port = command.target.port or 5060
                side.endpoint.send_request(command.request, Peer("udp", "127.0.0.1", port), self.now)
            elif isinstance(command, SendResponse):
                side.endpoint.respond(command.request, command.response, self.now)

    def deliver_all(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for side in list(self.sides.values()):
                for out in side.endpoint.datagrams_to_send():
                    moved = True
                    target = self.sides.get(out.peer.port)
                    self.log.append((out.peer.port, out.data))
                    first = out.data.split(b"\r\n", 1)[0].decode()
                    if target is None or any(first.startswith(p) for p in self.drop):
                        continue
                    if side.drop_acks and first.startswith("ACK"):
                        continue
                    events = target.endpoint.receive(out.data, side.peer, self.now)
                    self.handle(target, events)
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for side in self.sides.values():
                deadline = side.endpoint.get_timer()
                if deadline is not None and deadline <= self.now:
                    self.handle(side, side.endpoint.handle_timer(self.now))
            self.deliver_all()

    def handle(self, side: Side, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                request = event.request
                if request.method == "INVITE" and side.call is None:
                    call, commands = Call.incoming(request, side.setup)
                    side.call = call
                    self.execute(side, commands)
                    if not call.ended:
                        self.execute(side, call.ring())
                        if side.auto_answer:
                            self.execute(side, call.answer())
                elif side.call is not None:
                    self.execute(side, side.call.on_request(request))
            elif isinstance(event, AckReceived) and side.call is not None:
                self.execute(side, side.call.on_request(event.request))
            elif isinstance(event, ResponseReceived) and side.call is not None:
                self.execute(side, side.call.on_response(event.response, event.request))
            elif isinstance(event, TransactionTimedOut) and side.call is not None:
                self.execute(side, side.call.on_timeout(event.request))
            elif isinstance(event, AnswerTimedOut) and side.call is not None:
                self.execute(side, side.call.on_answer_timeout())


@pytest.fixture
def pair() -> tuple[Side, Side, Wire]:
    alice = Side("alice", 5061, setup_for("alice", 5061, 20000, video=True))
    bob = Side("bob", 5062, setup_for("bob", 5062, 30000, codecs=(PCMA, PCMU)), auto_answer=True)
    return alice, bob, Wire(alice, bob)


def dial(alice: Side, wire: Wire, port: int = 5062) -> Call:
    call, commands = Call.outgoing(SipUri("sip", "bob", None, "127.0.0.1", port), alice.setup)
    alice.call = call
    wire.execute(alice, commands)
    wire.deliver_all()
    return call


def test_basic_call_and_caller_hangup(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    call = dial(alice, wire)
    assert call.state == "confirmed"
    assert bob.call is not None and bob.call.state == "confirmed"
    assert alice.states()[:4] == ["calling", "trying", "ringing", "answered"]
    assert "confirmed" in bob.states()
    # the answerer's preference (PCMA) is what both use; video declined by bob (no video config)
    audio = [s for s in call.streams if s.kind == "audio"][0]
    assert audio.codec is not None and audio.codec.name == "PCMA" and audio.send_payload_type == 8
    video = [s for s in call.streams if s.kind == "video"][0]
    assert video.declined
    assert any(isinstance(c, MediaUpdate) for c in bob.commands)
    wire.execute(alice, call.hangup())
    wire.deliver_all()
    assert call.state == "terminated" and bob.call.state == "terminated"
    assert alice.ended() == CallEnded("completed", 200, "local hangup")
    assert bob.ended() is not None and bob.ended().result == "completed"
    assert any(isinstance(c, MediaStop) for c in alice.commands)


def test_callee_hangs_up(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    dial(alice, wire)
    assert bob.call is not None
    wire.execute(bob, bob.call.hangup())
    wire.deliver_all()
    assert alice.call is not None and alice.call.state == "terminated"
    assert alice.ended() is not None and alice.ended().reason == "remote hangup"


def test_reject_486(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    bob.auto_answer = False
    call = dial(alice, wire)
    assert call.state == "early"
    assert bob.call is not None
    wire.execute(bob, bob.call.reject(486))
    wire.deliver_all()
    assert call.state == "terminated"
    assert alice.ended() == CallEnded("rejected", 486, "Busy Here")
    # the INVITE transaction ACKed the 486 itself (RFC 3261 §17.1.1.3)
    assert any(data.startswith(b"ACK ") for _, data in wire.log)


def test_cancel_before_answer(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    bob.auto_answer = False
    call = dial(alice, wire)
    wire.execute(alice, call.hangup())
    wire.deliver_all()
    assert call.state == "terminated" and alice.ended() is not None
    assert alice.ended().result == "cancelled" and alice.ended().sip_code == 487
    assert bob.ended() is not None and bob.ended().result == "cancelled"


def test_cancel_waits_for_a_provisional_response(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    bob.auto_answer = False
    wire.drop = {"SIP/2.0 100", "SIP/2.0 180", "INVITE"}
    call = dial(alice, wire)
    wire.execute(alice, call.hangup())
    wire.deliver_all()
    assert not any(data.startswith(b"CANCEL") for _, data in wire.log)
    assert call.state == "cancelling"


def test_bad_sdp_offer_gets_488(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    bob.setup = setup_for("bob", 5062, 30000, codecs=(CodecSpec("G722", 8000, 1, 9),))
    call = dial(alice, wire)
    assert call.state == "terminated"
    assert alice.ended() is not None and alice.ended().sip_code == 488


def test_no_answer_times_out_after_timer_b(pair: tuple[Side, Side, Wire]) -> None:
    alice, _, wire = pair
    call = dial(alice, wire, port=5099)  # nobody there
    wire.advance(31.0)
    assert call.state == "calling"
    wire.advance(1.5)
    assert call.state == "terminated"
    assert alice.ended() == CallEnded("timeout", 408, "no response")
    invites = [d for p, d in wire.log if d.startswith(b"INVITE")]
    assert len(invites) == 7  # 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s


def test_hold_and_resume_by_reinvite(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    call = dial(alice, wire)
    wire.execute(alice, call.hold())
    wire.deliver_all()
    assert "held" in alice.states()
    assert "held_by_peer" in bob.states()
    audio = [s for s in call.streams if s.kind == "audio"][0]
    assert audio.direction == "sendonly"
    assert bob.call is not None
    assert [s for s in bob.call.streams if s.kind == "audio"][0].direction == "recvonly"
    wire.execute(alice, call.resume())
    wire.deliver_all()
    assert [s for s in call.streams if s.kind == "audio"][0].direction == "sendrecv"
    assert "resumed" in alice.states()
    # the session version went up with every offer (RFC 3264 §8)
    versions = [
        SessionDescription.parse(d.split(b"\r\n\r\n", 1)[1]).origin.session_version
        for _, d in wire.log
        if d.startswith(b"INVITE")
    ]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_callee_holds_the_caller(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    call = dial(alice, wire)
    assert bob.call is not None
    wire.execute(bob, bob.call.hold())
    wire.deliver_all()
    assert "held_by_peer" in alice.states()
    assert [s for s in call.streams if s.kind == "audio"][0].direction == "recvonly"


def test_answer_retransmitted_until_ack_then_bye(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    alice.drop_acks = True
    dial(alice, wire)
    assert bob.call is not None and bob.call.state == "answered"
    wire.advance(33.0)
    oks = [
        d for p, d in wire.log if p == 5061 and d.startswith(b"SIP/2.0 200") and b"INVITE" in d.split(b"CSeq:")[1][:30]
    ]
    assert len(oks) >= 6  # T1, 2T1, 4T1, then T2 spacing
    assert any(d.startswith(b"BYE") for p, d in wire.log if p == 5061)


def test_unknown_in_dialog_method_gets_501(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    call = dial(alice, wire)
    assert call.dialog is not None and bob.call is not None
    request = call.dialog.create_request("FOO", alice.setup.local, None)
    commands = bob.call.on_request(request)
    assert isinstance(commands[0], SendResponse) and commands[0].response.status == 501


def test_out_of_order_cseq_gets_500(pair: tuple[Side, Side, Wire]) -> None:
    alice, bob, wire = pair
    call = dial(alice, wire)
    assert call.dialog is not None and bob.call is not None
    old = call.dialog.create_request("INFO", alice.setup.local, None, cseq=1)
    commands = bob.call.on_request(old)
    assert isinstance(commands[0], SendResponse) and commands[0].response.status == 500


def test_illegal_transitions_raise() -> None:
    call = Call("uas", setup_for("x", 5000, 4000), "id")
    with pytest.raises(StateError, match="idle"):
        call.answer() if call.invite else call._go("answer")
    with pytest.raises(StateError):
        call.hold()


def test_every_table_target_is_a_state() -> None:
    states = {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert "terminated" in states
    # every state but the end can be left
    assert {s for s, _ in TRANSITIONS} == states - {"terminated"}


def test_invite_carries_offer_and_contact() -> None:
    setup = setup_for("alice", 5061, 20000, video=True)
    call, commands = Call.outgoing(SipUri.parse("sip:bob@127.0.0.1:5062"), setup)
    send = commands[0]
    assert isinstance(send, SendRequest)
    request: Request = send.request
    assert request.method == "INVITE" and request.content_type == "application/sdp"
    assert request.contacts[0].uri.port == 5061
    assert request.top_via.branch is not None and request.top_via.branch.startswith("z9hG4bK")
    offer = SessionDescription.parse(request.body)
    assert [m.media for m in offer.media] == ["audio", "video"]
    assert offer.media[0].port == 20000 and offer.media[1].port == 20002


def test_early_media_from_183_with_sdp() -> None:
    call, commands = Call.outgoing(SipUri.parse("sip:bob@127.0.0.1:5062"), setup_for("alice", 5061, 20000))
    invite = commands[0].request  # type: ignore[union-attr]
    answer, _ = answer_offer(SessionDescription.parse(invite.body), setup_for("bob", 5062, 30000).media)
    progress = build_response(invite, 183, to_tag="b", body=str(answer).encode(), content_type="application/sdp")
    out = call.on_response(progress, invite)
    assert StateChanged("early_media", 183) in out
    update = next(c for c in out if isinstance(c, MediaUpdate))
    assert update.streams[0].remote_port == 30000 and call.state == "early"
