"""Two user agents (softphone.agent) against each other in memory, with an injected clock.

The test plays the edge only: it carries datagrams between the agents, gives an
incoming call its setup, and records what the agents report. Routing, policy and
timers are the agents' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from softphone.agent import (
    AgentCommand,
    CallCommand,
    CallForgotten,
    CallRefused,
    IncomingCall,
    IncomingPolicy,
    Resolve,
    UserAgent,
)
from softphone.call import (
    TRANSITIONS,
    Call,
    CallEnded,
    CallResult,
    CallSetup,
    CallState,
    EndCause,
    MediaUpdate,
    Progress,
    SendRequest,
    StateChanged,
)
from softphone.errors import StateError
from softphone.sdp.model import SessionDescription
from softphone.sdp.negotiate import CodecSpec, SessionConfig, StreamConfig, answer_offer
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Endpoint, Peer, build_response
from softphone.sip.headers import NameAddress
from softphone.sip.locate import Target
from softphone.sip.message import Request
from softphone.sip.transaction import Timers
from softphone.sip.uri import SipUri

PCMU = CodecSpec("PCMU", 8000, 1, 0)
PCMA = CodecSpec("PCMA", 8000, 1, 8)
VP8 = CodecSpec("VP8", 90000, 1, None, None, ("nack pli",))
HOST = "127.0.0.1"


def setup_for(
    name: str, port: int, rtp: int, codecs: tuple[CodecSpec, ...] = (PCMU, PCMA), video: bool = False
) -> CallSetup:
    streams = [StreamConfig("audio", rtp, codecs)]
    if video:
        streams.append(StreamConfig("video", rtp + 2, (VP8,)))
    return CallSetup(
        local=LocalAddress("udp", HOST, port),
        identity=NameAddress(SipUri("sip", name, None, HOST)),
        media=SessionConfig(HOST, tuple(streams), username=name),
        user_agent="test",
    )


@dataclass
class Side:
    """One user agent and what it reported."""

    name: str
    port: int
    setup: CallSetup
    agent: UserAgent = field(init=False)
    reported: list[AgentCommand] = field(default_factory=list)
    drop_acks: bool = False

    def __post_init__(self) -> None:
        self.agent = UserAgent(Endpoint(Timers()), user_agent="test", local_hosts=(HOST,))

    @property
    def peer(self) -> Peer:
        return Peer("udp", HOST, self.port)

    @property
    def call(self) -> Call | None:
        """The call this side has (the last one made or taken)."""
        records = list(self.agent.calls.values())
        return records[-1].call if records else None

    def states(self) -> list[str]:
        return [c.command.state for c in self.reported
                if isinstance(c, CallCommand) and isinstance(c.command, StateChanged)]

    def ended(self) -> CallEnded | None:
        return next((c.command for c in self.reported
                     if isinstance(c, CallCommand) and isinstance(c.command, CallEnded)), None)

    def refused(self) -> list[CallRefused]:
        return [c for c in self.reported if isinstance(c, CallRefused)]


class Net:
    """Carries datagrams between agents by port; the clock is ``now``."""

    def __init__(self, *sides: Side) -> None:
        self.sides = {s.port: s for s in sides}
        self.now = 0.0
        self.log: list[tuple[int, bytes]] = []
        self.drop: set[str] = set()  # first-line prefixes never delivered

    def edge(self, side: Side, commands: list[AgentCommand]) -> None:
        """What an edge does with the agent's commands, as little as a test needs."""
        for command in commands:
            side.reported.append(command)
            if isinstance(command, IncomingCall):
                self.edge(side, side.agent.accept(command.request, side.setup, command.source, self.now))
        self.deliver_all()

    def deliver_all(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for side in list(self.sides.values()):
                for out in side.agent.datagrams_to_send():
                    moved = True
                    self.log.append((out.peer.port, out.data))
                    target = self.sides.get(out.peer.port)
                    first = out.data.split(b"\r\n", 1)[0].decode()
                    if target is None or any(first.startswith(p) for p in self.drop):
                        continue
                    if side.drop_acks and first.startswith("ACK"):
                        continue
                    self.edge(target, target.agent.receive(out.data, side.peer, self.now))
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for side in self.sides.values():
                deadline = side.agent.get_timer()
                if deadline is not None and deadline <= self.now:
                    self.edge(side, side.agent.handle_timer(self.now))
            self.deliver_all()

    def sent(self, prefix: bytes, port: int | None = None) -> list[bytes]:
        return [d for p, d in self.log if d.startswith(prefix) and (port is None or p == port)]


@pytest.fixture
def pair() -> tuple[Side, Side, Net]:
    alice = Side("alice", 5061, setup_for("alice", 5061, 20000, video=True))
    bob = Side("bob", 5062, setup_for("bob", 5062, 30000, codecs=(PCMA, PCMU)))
    bob.agent.policy = IncomingPolicy(auto_answer=True)
    return alice, bob, Net(alice, bob)


def dial(alice: Side, net: Net, port: int = 5062) -> Call:
    target = SipUri("sip", "bob", None, HOST, port)
    call_id, commands = alice.agent.call(target, alice.setup, Peer("udp", HOST, port), net.now)
    net.edge(alice, commands)
    return alice.agent.calls[call_id].call


def test_basic_call_and_caller_hangup(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    assert call.state == CallState.CONFIRMED
    assert bob.call is not None and bob.call.state == CallState.CONFIRMED
    # bob rings at once, so his transaction sends no 100 (Trying) before the 180 (RFC 3261 §17.2.1)
    assert alice.states()[:3] == [Progress.CALLING, Progress.RINGING, Progress.ANSWERED]
    assert Progress.CONFIRMED in bob.states()
    # the answerer's preference (PCMA) is what both use; video declined by bob (no video config)
    audio = [s for s in call.streams if s.kind == "audio"][0]
    assert audio.codec is not None and audio.codec.name == "PCMA" and audio.send_payload_type == 8
    video = [s for s in call.streams if s.kind == "video"][0]
    assert video.declined
    assert any(isinstance(c, CallCommand) and isinstance(c.command, MediaUpdate) for c in bob.reported)
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    assert call.state == CallState.TERMINATED and bob.call.state == CallState.TERMINATED
    assert alice.ended() == CallEnded(CallResult.COMPLETED, 200, "local hangup", EndCause.LOCAL_HANGUP)
    ended = bob.ended()
    assert ended is not None and ended.result == CallResult.COMPLETED and ended.cause == EndCause.REMOTE_HANGUP
    timeline = alice.agent.calls[call.call_id].timeline
    assert list(timeline) == ["invite_sent", "ringing", "answered", "ack", "bye"]


def test_callee_hangs_up(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    assert bob.call is not None
    net.edge(bob, bob.agent.hangup(bob.call.call_id, net.now))
    assert call.state == CallState.TERMINATED
    ended = alice.ended()
    assert ended is not None and ended.reason == "remote hangup" and ended.cause == EndCause.REMOTE_HANGUP


def test_reject_486(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy()
    call = dial(alice, net)
    assert call.state == CallState.EARLY
    assert bob.call is not None
    net.edge(bob, bob.agent.reject(bob.call.call_id, net.now, 486))
    assert call.state == CallState.TERMINATED
    assert alice.ended() == CallEnded(CallResult.REJECTED, 486, "Busy Here", EndCause.REJECTED)
    # the INVITE transaction ACKed the 486 itself (RFC 3261 §17.1.1.3)
    assert net.sent(b"ACK ")


def test_cancel_before_answer(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy()
    call = dial(alice, net)
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    ended = alice.ended()
    assert call.state == CallState.TERMINATED and ended is not None
    assert ended.result == CallResult.CANCELLED and ended.sip_code == 487
    ended = bob.ended()
    assert ended is not None and ended.result == CallResult.CANCELLED
    assert ended.cause == EndCause.CANCELLED_BY_CALLER


def test_cancel_waits_for_a_provisional_response(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy()
    net.drop = {"SIP/2.0 100", "SIP/2.0 180", "INVITE"}
    call = dial(alice, net)
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    assert not net.sent(b"CANCEL")
    assert call.state == CallState.CANCELLING


def test_cancel_goes_where_the_invite_went(pair: tuple[Side, Side, Net]) -> None:
    """RFC 3261 §9.1: through an outbound proxy, not to the Request-URI's host."""
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy()
    bob.agent.inspector.domains.add("example.test")  # bob's domain: otherwise 404
    target = SipUri("sip", "bob", None, "example.test")
    call_id, commands = alice.agent.call(target, alice.setup, bob.peer, net.now)
    net.edge(alice, commands)
    assert alice.agent.calls[call_id].call.state == CallState.EARLY
    net.edge(alice, alice.agent.hangup(call_id, net.now))
    assert net.sent(b"CANCEL sip:bob@example.test", port=bob.port)
    ended = alice.ended()
    assert ended is not None and ended.result == CallResult.CANCELLED


def test_bad_sdp_offer_gets_488(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.setup = setup_for("bob", 5062, 30000, codecs=(CodecSpec("G722", 8000, 1, 9),))
    call = dial(alice, net)
    assert call.state == CallState.TERMINATED
    ended = alice.ended()
    assert ended is not None and ended.sip_code == 488
    ended = bob.ended()
    assert ended is not None and ended.cause == EndCause.BAD_SDP


def test_no_answer_times_out_after_timer_b(pair: tuple[Side, Side, Net]) -> None:
    alice, _, net = pair
    call = dial(alice, net, port=5099)  # nobody there
    net.advance(31.0)
    assert call.state == CallState.CALLING
    net.advance(1.5)
    assert call.state == CallState.TERMINATED
    assert alice.ended() == CallEnded(CallResult.TIMEOUT, 408, "no response", EndCause.NO_RESPONSE)
    assert len(net.sent(b"INVITE")) == 7  # 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s


def test_hold_and_resume_by_reinvite(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    net.edge(alice, alice.agent.hold(call.call_id, net.now))
    assert Progress.HELD in alice.states()
    assert Progress.HELD_BY_PEER in bob.states()
    audio = [s for s in call.streams if s.kind == "audio"][0]
    assert audio.direction == "sendonly"
    assert bob.call is not None
    assert [s for s in bob.call.streams if s.kind == "audio"][0].direction == "recvonly"
    net.edge(alice, alice.agent.resume(call.call_id, net.now))
    assert [s for s in call.streams if s.kind == "audio"][0].direction == "sendrecv"
    assert Progress.RESUMED in alice.states()
    # the session version went up with every offer (RFC 3264 §8)
    versions = [SessionDescription.parse(d.split(b"\r\n\r\n", 1)[1]).origin.session_version
                for d in net.sent(b"INVITE")]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_callee_holds_the_caller(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    assert bob.call is not None
    net.edge(bob, bob.agent.hold(bob.call.call_id, net.now))
    assert Progress.HELD_BY_PEER in alice.states()
    assert [s for s in call.streams if s.kind == "audio"][0].direction == "recvonly"


def test_answer_retransmitted_until_ack_then_bye(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    alice.drop_acks = True
    dial(alice, net)
    assert bob.call is not None and bob.call.state == CallState.ANSWERED
    net.advance(33.0)
    oks = [d for d in net.sent(b"SIP/2.0 200", port=alice.port) if b"INVITE" in d.split(b"CSeq:")[1][:30]]
    assert len(oks) >= 6  # T1, 2T1, 4T1, then T2 spacing
    assert net.sent(b"BYE", port=alice.port)
    ended = bob.ended()
    assert ended is not None and ended.result == CallResult.ERROR and ended.cause == EndCause.NO_ACK


def test_out_of_order_cseq_gets_500(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    assert call.dialog is not None
    old = call.dialog.create_request("OPTIONS", alice.setup.local, None, cseq=1)
    net.edge(bob, bob.agent.receive(bytes(old), alice.peer, net.now))
    assert net.sent(b"SIP/2.0 500", port=alice.port)


def test_in_dialog_options_and_unsupported_methods(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    assert call.dialog is not None
    for method, status in (("OPTIONS", b"200"), ("INFO", b"405"), ("UPDATE", b"405"), ("FOO", b"501")):
        request = call.dialog.create_request(method, alice.setup.local, None)
        net.edge(bob, bob.agent.receive(bytes(request), alice.peer, net.now))
        reply = net.log[-1][1]
        assert reply.startswith(b"SIP/2.0 " + status), (method, reply)
        assert method.encode() in reply.split(b"CSeq:")[1].split(b"\r\n")[0]
        if status != b"200":
            assert b"\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY\r\n" in reply
    assert call.state == CallState.CONFIRMED


def test_bye_unanswered_ends_the_call_after_the_grace(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    net.drop = {"BYE"}
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    assert call.state == CallState.TERMINATING
    net.advance(3.9)
    assert call.state == CallState.TERMINATING
    net.advance(0.2)  # 8*T1 = 4 s, well before Timer F (32 s)
    assert alice.ended() == CallEnded(CallResult.COMPLETED, 200, "local hangup", EndCause.LOCAL_HANGUP)


def test_an_ended_call_lingers_for_64_t1_after_its_2xx_as_caller_and_8_t1_as_callee(
        pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    call = dial(alice, net)
    answered = net.now
    net.advance(10.0)
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    net.advance(3.9)
    assert call.call_id in bob.agent.calls  # the callee keeps it a few T1, for a late answer to a BYE
    net.advance(0.2)
    assert call.call_id not in bob.agent.calls and CallForgotten(call.call_id) in bob.reported
    net.advance(answered + 31.9 - net.now)  # the caller: until the 2xx can no longer come again
    assert call.call_id in alice.agent.calls
    net.advance(0.2)
    assert call.call_id not in alice.agent.calls
    assert CallForgotten(call.call_id) in alice.reported


def test_the_caller_acks_a_2xx_retransmitted_after_the_call_ended(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    alice.drop_acks = True  # bob hears neither our ACK (he retransmits his 200, RFC 3261 §13.3.1.4) ...
    net.drop = {"BYE"}  # ... nor our BYE
    call = dial(alice, net)
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    net.advance(4.5)  # the unanswered BYE ended the call for us
    assert alice.ended() is not None
    acks = len(net.sent(b"ACK", 5062))
    net.advance(8.0)
    assert call.call_id in alice.agent.calls
    assert len(net.sent(b"ACK", 5062)) > acks  # each 200 that still comes is ACKed


def test_an_ended_call_is_kept_without_its_offer_and_answer_and_still_absorbs_a_late_invite(
        pair: tuple[Side, Side, Net]) -> None:
    """The table keeps a slim copy of an ended call (a phone under load keeps thousands): no
    offer, answer, streams or INVITE body; whoever held the call before it ended keeps it whole."""
    alice, bob, net = pair
    call = dial(alice, net)
    taken = bob.call
    assert taken is not None and taken.invite is not None and taken.local_sdp is not None
    invite = taken.invite
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    assert bob.ended() is not None and alice.ended() is not None
    for side, whole in ((bob, taken), (alice, call)):
        kept = side.agent.calls[call.call_id].call
        assert kept is not whole and kept.state == whole.state == CallState.TERMINATED
        assert (kept.local_sdp, kept.remote_sdp, kept.streams) == (None, None, ())
        assert kept.invite is not None and kept.invite.body == b""
        assert (kept.invite.call_id, kept.invite.cseq, kept.invite.top_via) == (
            call.call_id, whole.invite.cseq, whole.invite.top_via)  # type: ignore[union-attr]
        assert whole.local_sdp is not None and whole.remote_sdp is not None and whole.streams
        assert whole.invite is not None and whole.invite.body
    answered = len(net.log)
    net.edge(bob, bob.agent.receive(bytes(invite), alice.peer, net.now))  # a copy of the INVITE, late
    assert not any(data.startswith(b"SIP/2.0 4") for _, data in net.log[answered:])


# ---------------------------------------------------------------- the incoming-call policy


def test_auto_answer_after_a_delay(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy(auto_answer=True, delay=2.0)
    call = dial(alice, net)
    net.advance(1.9)
    assert call.state == CallState.EARLY
    net.advance(0.2)
    assert call.state == CallState.CONFIRMED


def test_ring_timeout_gives_480(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy(ring_timeout=5.0)
    call = dial(alice, net)
    net.advance(4.9)
    assert call.state == CallState.EARLY
    net.advance(0.2)
    assert alice.ended() == CallEnded(CallResult.REJECTED, 480, "Temporarily Unavailable", EndCause.REJECTED)
    ended = bob.ended()
    assert ended is not None and ended.cause == EndCause.RING_TIMEOUT


def test_in_call_timeout_hangs_up(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.in_call_timeout = 10.0
    call = dial(alice, net)
    net.advance(9.9)
    assert call.state == CallState.CONFIRMED
    net.advance(0.2)
    assert call.state == CallState.TERMINATED
    ended = bob.ended()
    assert ended is not None and ended.cause == EndCause.IN_CALL_TIMEOUT and ended.result == CallResult.COMPLETED
    ended = alice.ended()
    assert ended is not None and ended.cause == EndCause.REMOTE_HANGUP


@pytest.mark.parametrize(
    ("policy", "status", "cause"),
    [
        (None, 480, EndCause.UNAVAILABLE),
        (IncomingPolicy(auto_answer=True, reject=603), 603, EndCause.POLICY),
        (IncomingPolicy(auto_answer=True, allow=("carol@*",)), 403, EndCause.NOT_ALLOWED),
        (IncomingPolicy(auto_answer=True, max_calls=0), 486, EndCause.BUSY),
    ],
)
def test_policy_refusals(pair: tuple[Side, Side, Net], policy: IncomingPolicy | None, status: int,
                         cause: EndCause) -> None:
    alice, bob, net = pair
    bob.agent.policy = policy
    call = dial(alice, net)
    assert call.state == CallState.TERMINATED and call.final_code == status
    assert [(r.status, r.cause) for r in bob.refused()] == [(status, cause)]
    assert not bob.agent.calls


def test_allow_list_lets_a_matching_caller_in(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy(auto_answer=True, allow=("alice@*",))
    assert dial(alice, net).state == CallState.CONFIRMED


def test_max_calls_counts_live_calls(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy(auto_answer=True, max_calls=1)
    first = dial(alice, net)
    second = dial(alice, net)
    assert first.state == CallState.CONFIRMED and second.final_code == 486
    net.edge(alice, alice.agent.hangup(first.call_id, net.now))
    assert dial(alice, net).state == CallState.CONFIRMED


# ---------------------------------------------------------------- the machine itself


def test_illegal_transitions_raise() -> None:
    call = Call("uas", setup_for("x", 5000, 4000), "id")
    with pytest.raises(StateError, match="idle"):
        call._go("answer")
    with pytest.raises(StateError):
        call.hold()


def test_every_table_target_is_a_state() -> None:
    states = {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert states == set(CallState)
    # every state but the end can be left
    assert {s for s, _ in TRANSITIONS} == states - {CallState.TERMINATED}


def test_invite_carries_offer_and_contact() -> None:
    setup = setup_for("alice", 5061, 20000, video=True)
    call, commands = Call.outgoing(SipUri.parse("sip:bob@127.0.0.1:5062"), setup)
    send = commands[0]
    assert isinstance(send, SendRequest)
    request: Request = send.request
    assert request.method == "INVITE" and request.content_type == "application/sdp"
    assert request.contacts[0].uri.port == 5061
    assert request.top_via.branch is not None and request.top_via.branch.startswith("z9hG4bK")
    assert request.headers.get("Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"
    assert request.headers.get("Supported") is None  # we claim no extension we lack
    offer = SessionDescription.parse(request.body)
    assert [m.media for m in offer.media] == ["audio", "video"]
    assert offer.media[0].port == 20000 and offer.media[1].port == 20002


def test_early_media_from_183_with_sdp() -> None:
    call, commands = Call.outgoing(SipUri.parse("sip:bob@127.0.0.1:5062"), setup_for("alice", 5061, 20000))
    send = commands[0]
    assert isinstance(send, SendRequest)
    invite = send.request
    answer, _ = answer_offer(SessionDescription.parse(invite.body), setup_for("bob", 5062, 30000).media)
    progress = build_response(invite, 183, to_tag="b", body=str(answer).encode(), content_type="application/sdp")
    out = call.on_response(progress, invite)
    assert StateChanged(Progress.EARLY_MEDIA, 183) in out
    update = next(c for c in out if isinstance(c, MediaUpdate))
    assert update.streams[0].remote_port == 30000 and call.state == CallState.EARLY


# ---------------------------------------------------------------- RFC 3263 §4.3 failover


def _target(port: int) -> Target:
    return Target("udp", HOST, port, "bob.example.test")


def test_invite_fails_over_to_the_next_target_after_timer_b(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    target = SipUri("sip", "bob", None, HOST, bob.port)
    call_id, commands = alice.agent.call(target, alice.setup, Peer("udp", HOST, 5099), net.now, [_target(bob.port)])
    net.edge(alice, commands)
    net.advance(31.0)
    assert not net.sent(b"INVITE", port=bob.port)
    net.advance(1.5)  # Timer B (64*T1) fires: the INVITE goes to the second target
    record = alice.agent.calls[call_id]
    assert record.call.state == CallState.CONFIRMED
    assert record.first_hop == Peer("udp", HOST, bob.port)
    first = {m.split(b"\r\n")[1] for m in net.sent(b"INVITE", port=5099)}
    second = {m.split(b"\r\n")[1] for m in net.sent(b"INVITE", port=bob.port)}
    assert len(first) == 1 and len(second) == 1 and first != second  # a new branch: a new transaction
    assert alice.ended() is None and len(alice.agent.targets.failover) == 0


def test_invite_fails_over_on_503(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    busy = Side("busy", 5063, setup_for("busy", 5063, 31000))
    busy.agent.policy = IncomingPolicy(reject=503)
    net.sides[busy.port] = busy
    target = SipUri("sip", "bob", None, HOST, bob.port)
    call_id, commands = alice.agent.call(target, alice.setup, busy.peer, net.now, [_target(bob.port)])
    net.edge(alice, commands)
    assert net.sent(b"SIP/2.0 503", port=alice.port)
    assert alice.agent.calls[call_id].call.state == CallState.CONFIRMED
    assert bob.call is not None and bob.call.state == CallState.CONFIRMED


def test_the_last_target_failing_ends_the_call(pair: tuple[Side, Side, Net]) -> None:
    alice, _, net = pair
    busy = Side("busy", 5063, setup_for("busy", 5063, 31000))
    busy.agent.policy = IncomingPolicy(reject=503)
    net.sides[busy.port] = busy
    target = SipUri("sip", "bob", None, HOST, 5099)
    call_id, commands = alice.agent.call(target, alice.setup, Peer("udp", HOST, 5099), net.now, [_target(busy.port)])
    net.edge(alice, commands)
    net.advance(33.0)
    ended = alice.ended()
    assert ended is not None and ended.sip_code == 503
    assert alice.agent.calls[call_id].first_hop == busy.peer


def test_a_rejection_other_than_503_does_not_fail_over(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy(reject=486)
    third = Side("third", 5063, setup_for("third", 5063, 31000))
    third.agent.policy = IncomingPolicy(auto_answer=True)
    net.sides[third.port] = third
    target = SipUri("sip", "bob", None, HOST, bob.port)
    _, commands = alice.agent.call(target, alice.setup, bob.peer, net.now, [_target(third.port)])
    net.edge(alice, commands)
    ended = alice.ended()
    assert ended is not None and ended.sip_code == 486
    assert not net.sent(b"INVITE", port=third.port)


def test_cancel_after_failover_goes_to_the_new_target_with_its_branch(pair: tuple[Side, Side, Net]) -> None:
    alice, bob, net = pair
    bob.agent.policy = IncomingPolicy()  # rings, never answers
    target = SipUri("sip", "bob", None, HOST, bob.port)
    call_id, commands = alice.agent.call(target, alice.setup, Peer("udp", HOST, 5099), net.now, [_target(bob.port)])
    net.edge(alice, commands)
    net.advance(32.5)
    assert alice.agent.calls[call_id].call.state == CallState.EARLY
    net.edge(alice, alice.agent.hangup(call_id, net.now))
    cancels = net.sent(b"CANCEL", port=bob.port)
    invites = net.sent(b"INVITE", port=bob.port)
    assert cancels and invites
    via = [line for line in cancels[0].split(b"\r\n") if line.startswith(b"Via")]
    assert via and via[0] in invites[0]
    ended = alice.ended()
    assert ended is not None and ended.result == CallResult.CANCELLED


def test_in_dialog_request_fails_over_through_the_edge_targets(pair: tuple[Side, Side, Net]) -> None:
    """Bob's Contact is a name: the agent asks the edge to resolve it; the edge finds two
    targets, the first silent: the BYE goes on to the second after Timer F."""
    alice, bob, net = pair
    bob.setup = replace(bob.setup, local=LocalAddress("udp", "bob.example.test", bob.port))
    handled: set[int] = set()

    def resolve_pending() -> None:
        for index, command in enumerate(list(alice.reported)):
            if isinstance(command, Resolve) and index not in handled:
                handled.add(index)
                first = bob.peer if command.request.method == "ACK" else Peer("udp", HOST, 5099)
                alice.agent.send(command.call_id, command.request, first, net.now, [_target(bob.port)])
        net.deliver_all()

    call = dial(alice, net)
    resolve_pending()
    assert call.state == CallState.CONFIRMED
    net.edge(alice, alice.agent.hangup(call.call_id, net.now))
    resolve_pending()
    assert net.sent(b"BYE", port=5099) and not net.sent(b"BYE", port=bob.port)
    net.advance(33.0)
    assert net.sent(b"BYE", port=bob.port)
    assert bob.call is not None and bob.call.state == CallState.TERMINATED
