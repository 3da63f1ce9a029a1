"""The network edge arms one loop timer for its core's earliest deadline and moves it as that
deadline moves: a deadline added after the armed one, the armed one cancelled, one added before
it; each is met, in order, and none is missed."""
from __future__ import annotations

import asyncio
from typing import Any

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


def test_every_deadline_is_met_whether_it_comes_before_or_after_the_armed_one() -> None:
    asyncio.run(_deadlines_met())


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
    assert core.pending == []
