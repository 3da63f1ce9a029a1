"""RFC 3261 timers: Table 4 values, named deadlines, and the timed table machine.

Pure: nothing here reads a clock. Every deadline is ``now + interval`` for a ``now``
the caller passes in, in seconds. ``StateMachine`` is the table-driven base of the
transactions in ``softphone.sip.transaction`` and of ``AnswerRetransmission``, the 2xx
retransmission a UAS core runs until the ACK arrives (RFC 3261 §13.3.1.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, ClassVar

from softphone.errors import StateError
from softphone.frozen import dataclass
from softphone.sip.message import Request, Response


@dataclass(frozen=True)
class Timers:
    """The RFC 3261 Table 4 defaults; T1, T2 and T4 are configurable.

    ``d_unreliable`` is Timer D over UDP: Table 4 says "> 32s for UDP", a fixed value
    rather than a multiple of T1.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d_unreliable: float = 32.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 < 0 or self.d_unreliable < 0:
            raise ValueError("timers T4 and D must not be negative")

    @property
    def timer_a(self) -> float:
        """First INVITE retransmission interval (doubles, uncapped)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_e(self) -> float:
        """First non-INVITE retransmission interval (doubles, capped at T2)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """First INVITE final-response retransmission interval (doubles, capped at T2)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for the ACK to a non-2xx final response."""
        return 64 * self.t1

    @property
    def timer_l(self) -> float:
        """RFC 6026: wait time in the server INVITE Accepted state."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026: wait time in the client INVITE Accepted state."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait time for response retransmissions in client INVITE Completed."""
        return 0.0 if reliable else self.d_unreliable

    def timer_i(self, reliable: bool) -> float:
        """Wait time for ACK retransmissions in server INVITE Confirmed."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait time for request retransmissions in server non-INVITE Completed."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Wait time for response retransmissions in client non-INVITE Completed."""
        return 0.0 if reliable else self.t4

    def backoff(self, interval: float) -> float:
        """The next interval of a T2-capped doubling timer (E, G, 2xx retransmission)."""
        return min(2 * interval, self.t2)


@dataclass
class _Deadline:
    at: float
    interval: float
    order: int


@dataclass
class TimerSet:
    """Named one-shot deadlines. Arming a name again replaces its deadline.

    ``interval(name)`` remembers the interval a timer was last armed with, even after
    it fired, so that doubling timers can compute their next interval.
    """

    _armed: dict[str, _Deadline] = field(default_factory=dict)
    _intervals: dict[str, float] = field(default_factory=dict)
    _count: int = 0

    def arm(self, name: str, now: float, interval: float) -> None:
        self._count += 1
        self._armed[name] = _Deadline(now + interval, interval, self._count)
        self._intervals[name] = interval

    def interval(self, name: str) -> float:
        return self._intervals[name]

    def armed(self) -> frozenset[str]:
        return frozenset(self._armed)

    def deadline(self, name: str) -> float | None:
        armed = self._armed.get(name)
        return None if armed is None else armed.at

    def keep_only(self, names: frozenset[str]) -> None:
        for name in list(self._armed):
            if name not in names:
                del self._armed[name]

    def next_deadline(self) -> float | None:
        armed = self._armed
        if len(armed) < 2:  # a transaction mostly has none or one (a loop: a generator left early raises inside)
            for deadline in armed.values():
                return deadline.at
            return None
        return min(d.at for d in armed.values())

    def pop_due(self, now: float, *, immediate_only: bool = False) -> str | None:
        """Remove and return the earliest timer due at ``now`` (ties: armed first).

        With ``immediate_only`` only timers armed with a zero interval count: those are
        the "set to zero for reliable transports" timers, which fire at once.
        """
        if not self._armed:
            return None
        due = [
            (d.at, d.order, name)
            for name, d in self._armed.items()
            if d.at <= now and (d.interval == 0 or not immediate_only)
        ]
        if not due:
            return None
        name = min(due)[2]
        del self._armed[name]
        return name


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Send:
    """Pass ``data`` to the transport, towards the transaction's peer."""

    data: bytes


@dataclass(frozen=True)
class Deliver:
    """Pass ``message`` up to the TU (responses for a client, requests for a server)."""

    message: Request | Response


@dataclass(frozen=True)
class TimedOut:
    """Timer ``timer`` ("B", "F", "H", "2xx-ACK") fired: the TU sees a 408-equivalent."""

    timer: str


@dataclass(frozen=True)
class TransportFailure:
    """The transport reported an error; the TU is informed (RFC 3261 §17 figures)."""


@dataclass(frozen=True)
class Terminated:
    """The transaction reached Terminated: its owner removes it."""


Output = Send | Deliver | TimedOut | TransportFailure | Terminated


# ---------------------------------------------------------------- machinery

Action = Callable[[Any, Any, float], list[Output]]
Transition = tuple[str, tuple[Action, ...]]
Table = Mapping[tuple[str, str], Transition]

ABSORB: tuple[Action, ...] = ()
"""The action list of an input that is absorbed: no output, no change."""


class StateMachine:
    """A table-driven state machine with named deadlines.

    On a change of state the timers not listed for the new state in STATE_TIMERS are
    cancelled; then the actions run (they arm the new state's timers). Entering
    "terminated" clears every timer and adds ``Terminated()`` to the outputs.
    """

    MACHINE: ClassVar[str]
    TABLE: ClassVar[Table]
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]]

    def __init__(self, timers: Timers, initial: str) -> None:
        self.timers = timers
        self.state = initial
        self._deadlines = TimerSet()

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called, or None with no timer running."""
        return self._deadlines.next_deadline()

    def takes(self, event: str) -> bool:
        """Whether ``event`` has a transition in the current state."""
        return (self.state, event) in self.TABLE

    def handle_timer(self, now: float) -> list[Output]:
        """Fire every timer due at ``now``, earliest first."""
        out: list[Output] = []
        while (name := self._deadlines.pop_due(now)) is not None:
            out += self._step(f"Timer {name}", None, now)
        return out

    def _input(self, event: str, message: object, now: float) -> list[Output]:
        out = self._step(event, message, now)
        while (name := self._deadlines.pop_due(now, immediate_only=True)) is not None:
            out += self._step(f"Timer {name}", None, now)
        return out

    def _step(self, event: str, message: object, now: float) -> list[Output]:
        try:
            target, actions = self.TABLE[(self.state, event)]
        except KeyError:
            raise StateError(self.MACHINE, self.state, event) from None
        entering = target != self.state
        self.state = target
        if entering:
            self._deadlines.keep_only(self.STATE_TIMERS.get(target, frozenset()))
        out: list[Output] = []
        for action in actions:
            out += action(self, message, now)
        if entering and target == "terminated":
            self._deadlines.keep_only(frozenset())
            out.append(Terminated())
        return out

    def _arm(self, name: str, now: float, interval: float) -> None:
        self._deadlines.arm(name, now, interval)

    def _interval(self, name: str) -> float:
        return self._deadlines.interval(name)


def timed_out(timer: str) -> Action:
    def action(machine: StateMachine, message: object, now: float) -> list[Output]:
        return [TimedOut(timer)]

    return action


def inform_tu(machine: StateMachine, message: object, now: float) -> list[Output]:
    return [TransportFailure()]


def pass_up(machine: StateMachine, message: Request | Response, now: float) -> list[Output]:
    return [Deliver(message)]


# ---------------------------------------------------------------- 2xx retransmission


class AnswerRetransmission(StateMachine):
    """RFC 3261 §13.3.1.4: the UAS core retransmits its 2xx to an INVITE until the ACK.

    "the 2xx response is passed to the transport with an interval that starts at T1
    seconds and doubles for each retransmission until it reaches T2 seconds. Response
    retransmissions cease when an ACK request for the response is received. This is
    independent of whether the transport protocol is reliable or not."
    "If the server retransmits the 2xx response for 64*T1 seconds without receiving an
    ACK, the dialog is confirmed, but the session SHOULD be terminated." That is the
    ``TimedOut("2xx-ACK")`` output: the UA then sends a BYE.

    The first transmission is the caller's (through the server transaction);
    ``reliable`` is kept for the record only.
    """

    MACHINE = "AnswerRetransmission"
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]] = {"waiting": frozenset({"retransmit", "2xx-ACK"})}

    def __init__(self, data: bytes, *, reliable: bool = False, timers: Timers, now: float) -> None:
        super().__init__(timers, "waiting")
        self.data = data
        self.reliable = reliable
        self._arm("retransmit", now, timers.t1)
        self._arm("2xx-ACK", now, 64 * timers.t1)

    def ack_received(self) -> list[Output]:
        """The ACK for this 2xx arrived: retransmissions stop."""
        return self._step("ACK", None, 0.0)  # arms no timer, so the time is unused

    def _retransmit(self, message: None, now: float) -> list[Output]:
        self._arm("retransmit", now, self.timers.backoff(self._interval("retransmit")))
        return [Send(self.data)]

    TABLE: ClassVar[Table] = {
        ("waiting", "Timer retransmit"): ("waiting", (_retransmit,)),
        ("waiting", "Timer 2xx-ACK"): ("terminated", (timed_out("2xx-ACK"),)),
        ("waiting", "ACK"): ("terminated", ABSORB),
        ("terminated", "ACK"): ("terminated", ABSORB),
    }
