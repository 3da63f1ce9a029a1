"""The network edge arms one loop timer for its core's earliest deadline and moves it as that
deadline moves: a deadline added after the armed one, the armed one cancelled, one added before
it; each is met, in order, none is missed, and the core is never woken before one is due."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from softphone.net.sip import SipNetwork
from softphone.sip.endpoint import Outgoing, Peer


class Deadlines:
    """A core whose deadlines the test sets; it records each wake-up and what was due."""

    def __init__(self) -> None:
        self.pending: list[float] = []
        self.wakes: list[tuple[float, list[float]]] = []

    def receive(self, data: bytes, source: Peer, now: float) -> list[Any]:
        return []

    def transport_failed(self, peer: Peer, now: float) -> list[Any]:
        return []

    def handle_timer(self, now: float) -> list[Any]:
        due = [d for d in self.pending if d <= now]
        self.pending = [d for d in self.pending if d > now]
        self.wakes.append((now, due))
        return []

    def get_timer(self) -> float | None:
        return min(self.pending, default=None)

    def datagrams_to_send(self) -> list[Outgoing]:
        return []


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_every_deadline_is_met_whether_it_comes_before_or_after_the_armed_one(run: Any) -> None:
    run(_deadlines_met())


async def _deadlines_met() -> None:
    core = Deadlines()
    network = SipNetwork(core, lambda events: None)
    t0 = network.now()
    first, later, earlier = t0 + 0.10, t0 + 0.30, t0 + 0.05
    core.pending = [first]
    network.kick()
    core.pending.append(later)  # later than the armed timer
    network.kick()
    core.pending.remove(first)  # the first is cancelled
    network.kick()
    core.pending.append(earlier)  # earlier than any other
    network.kick()
    await asyncio.sleep(0.45)
    network.close()
    woken = [(round(now - t0, 2), [round(d - t0, 2) for d in due]) for now, due in core.wakes]
    assert [due for _, due in woken if due] == [[0.05], [0.3]], woken
    assert all(now >= due[0] for now, due in woken if due)
    # none early: uvloop's whole-millisecond timers fired up to 0.5 ms before the deadline
    assert all(due for _, due in woken), woken
    assert core.pending == []


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_the_core_is_not_woken_before_a_deadline(run: Any) -> None:
    """Deadlines at fractions of a millisecond: uvloop rounds a timer to whole milliseconds."""
    run(_many_deadlines())


async def _many_deadlines() -> None:
    core = Deadlines()
    network = SipNetwork(core, lambda events: None)
    t0 = network.now()
    core.pending = [t0 + 0.01 + k * 0.0037 for k in range(40)]
    network.kick()
    await asyncio.sleep(0.2)
    network.close()
    assert core.pending == []
    early = [round((now - t0) * 1000, 3) for now, due in core.wakes if not due]
    assert not early, f"woken with nothing due at {early} ms"
