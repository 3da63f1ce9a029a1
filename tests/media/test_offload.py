"""Where codec work runs: on the event loop while cheap, in the executor when not, in order."""
from __future__ import annotations

import asyncio
import time

from softphone.media.audio import _Offload


def burn(seconds: float) -> float:
    """Spend `seconds` of CPU in this thread."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass
    return seconds


async def _push_all(costs: list[float]) -> tuple[list[bool], list[float]]:
    """Push each cost, one per loop pass; where each ran (True: inline) and what came out, in order."""
    loop = asyncio.get_running_loop()
    done: list[float] = []
    offload = _Offload(loop, burn, done.append)
    seen = []
    for cost in costs:
        seen.append(offload.inline)
        offload.push(cost)
        while offload.backlog:
            await asyncio.sleep(0.0005)
    return seen, done


def test_cheap_work_stays_inline_and_costly_work_moves_out_and_back() -> None:
    costs = [0.00005] * 15 + [0.002] * 15 + [0.00005] * 40
    seen, done = asyncio.run(_push_all(costs))
    assert done == costs  # every result, in order
    assert all(seen[:16])  # cheap from the start: on the loop
    assert not seen[29]  # became costly: in the executor
    assert seen[-1]  # cheap again


def test_work_that_stays_costly_stays_in_the_executor() -> None:
    seen, _ = asyncio.run(_push_all([0.0015] * 20))
    assert seen[0] and not seen[-1]


def test_items_pushed_while_one_runs_in_the_executor_come_out_in_order() -> None:
    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        offload = _Offload(loop, lambda n: (burn(0.002), n)[1], done.append)
        offload.inline = False
        for n in range(4):
            offload.push(n)
        assert offload.backlog == 4
        while offload.backlog:
            await asyncio.sleep(0.001)
        return done

    assert asyncio.run(run()) == [0, 1, 2, 3]


def test_a_backlog_beyond_its_bound_loses_its_oldest_items() -> None:
    async def run() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        offload = _Offload(loop, lambda n: (burn(0.003), n)[1], done.append)
        offload.inline = False
        for n in range(10):
            offload.push(n)
        while offload.backlog:
            await asyncio.sleep(0.001)
        return done, offload.dropped

    done, dropped = asyncio.run(run())
    assert done == [0, 5, 6, 7, 8, 9] and dropped == 4
