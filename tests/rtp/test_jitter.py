"""The adaptive audio jitter buffer, driven with simulated arrival and playout times."""
from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest

from softphone.rtp.jitter import JitterBuffer, Missing, Played
from softphone.rtp.packet import RtpPacket

PTIME = 0.02
FRAME = 160  # 20 ms at 8000 Hz
TS0 = 1_000_000
SEQ0 = 5000


def frame(i: int, ts0: int = TS0, seq0: int = SEQ0, marker: bool = False) -> RtpPacket:
    return RtpPacket(0, (seq0 + i) % 65536, (ts0 + FRAME * i) % 2**32, 0x55, i.to_bytes(4, "big"), marker=marker)


def index(result: Played) -> int:
    return int.from_bytes(result.payload, "big")


@dataclass
class Run:
    """What the playout loop saw."""

    results: list[tuple[float, Played | Missing | None]] = field(default_factory=list)
    accepted: dict[int, bool] = field(default_factory=dict)
    arrival: dict[int, float] = field(default_factory=dict)
    depths: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)

    @property
    def played(self) -> list[int]:
        return [index(r) for _, r in self.results if isinstance(r, Played)]

    @property
    def missing(self) -> list[int]:
        return [r.timestamp for _, r in self.results if isinstance(r, Missing)]

    def active(self) -> list[Played | Missing | None]:
        """Results from the first to the last Played."""
        kinds = [r for _, r in self.results]
        first = next(i for i, r in enumerate(kinds) if isinstance(r, Played))
        last = max(i for i, r in enumerate(kinds) if isinstance(r, Played))
        return kinds[first:last + 1]

    def delays(self) -> list[float]:
        return [t - self.arrival[index(r)] for t, r in self.results if isinstance(r, Played)]


def simulate(
    jb: JitterBuffer, arrivals: Iterable[tuple[float, RtpPacket]], duration: float, pop_phase: float = 0.005
) -> Run:
    """Put each packet at its arrival time and pop every PTIME, in time order."""
    run = Run()
    puts = sorted(arrivals, key=lambda a: a[0])
    pops = [pop_phase + PTIME * j for j in range(int(duration / PTIME))]
    events = sorted([(t, 0, k) for k, (t, _) in enumerate(puts)] + [(t, 1, 0) for t in pops])
    for t, kind, k in events:
        if kind == 0:
            packet = puts[k][1]
            i = int.from_bytes(packet.payload, "big")
            run.accepted.setdefault(i, jb.put(packet, t))
            run.arrival.setdefault(i, t)
        else:
            run.results.append((t, jb.pop(t)))
            run.depths.append(jb.depth_ms)
            run.targets.append(jb.target_delay_ms)
    return run


def steady(
    n: int, latency: float = 0.031, period: float = PTIME, ts0: int = TS0, seq0: int = SEQ0
) -> list[tuple[float, RtpPacket]]:
    return [(latency + period * i, frame(i, ts0, seq0)) for i in range(n)]


def buffer(**kwargs: int) -> JitterBuffer:
    return JitterBuffer(clock_rate=8000, frame_samples=FRAME, **kwargs)


def test_in_order_stream_plays_every_frame_once_at_constant_delay() -> None:
    jb = buffer()
    run = simulate(jb, steady(500), duration=10.2)
    assert run.played == list(range(500))
    assert not any(isinstance(r, Missing) for r in run.active())
    delays = run.delays()
    assert max(delays) - min(delays) < 1e-9
    assert delays[0] <= 0.040 + 1e-9  # min delay 20 ms + at most one playout period
    assert run.results[0][1] is None  # buffering before the first playout
    assert (jb.played, jb.late, jb.duplicates, jb.dropped_for_drift) == (500, 0, 0, 0)
    assert jb.target_delay_ms == 20.0


def test_timestamps_of_played_frames() -> None:
    run = simulate(buffer(), steady(20), duration=0.6)
    played = [r for _, r in run.results if isinstance(r, Played)]
    assert [(p.timestamp, p.sequence) for p in played] == [(TS0 + FRAME * i, SEQ0 + i) for i in range(20)]


def test_depth_is_constant_for_a_steady_stream() -> None:
    run = simulate(buffer(), steady(300), duration=5.0)
    depths = run.depths[10:240]
    assert max(depths) == min(depths)
    assert 0 < depths[0] <= 40


def test_swapped_pairs_play_in_order_without_missing() -> None:
    arrivals = []
    for i in range(400):
        slot = i + 1 if i % 2 == 0 else i - 1  # 1, 0, 3, 2, ...
        arrivals.append((0.031 + PTIME * slot, frame(i)))
    jb = buffer()
    run = simulate(jb, arrivals, duration=8.5)
    assert run.played == list(range(400))
    assert not any(isinstance(r, Missing) for r in run.active())
    assert jb.late == 0


def test_duplicates_are_dropped() -> None:
    arrivals = steady(200)
    doubled = arrivals + [(t + 0.001, p) for t, p in arrivals] + [(t + 0.1, p) for t, p in arrivals[:50]]
    jb = buffer()
    run = Run()
    puts = sorted(doubled, key=lambda a: a[0])
    results = []
    pops = iter([0.005 + PTIME * j for j in range(300)])
    next_pop = next(pops)
    for t, packet in puts:
        while next_pop < t:
            run.results.append((next_pop, jb.pop(next_pop)))
            next_pop = next(pops)
        results.append(jb.put(packet, t))
    assert results.count(True) == 200
    assert jb.duplicates == 250
    assert run.played == list(range(len(run.played)))
    assert len(run.played) > 150


def test_random_loss_gives_missing_for_exactly_the_lost_frames() -> None:
    rng = random.Random(11)
    lost = {i for i in range(2, 498) if rng.random() < 0.05}
    assert 15 < len(lost) < 40
    jb = buffer()
    run = simulate(jb, [a for a in steady(500) if index_of(a[1]) not in lost], duration=10.2)
    assert run.played == [i for i in range(500) if i not in lost]
    assert sorted(run.missing[: len(lost)]) == sorted(TS0 + FRAME * i for i in lost)
    assert [r for r in run.active() if isinstance(r, Missing)] == [Missing(TS0 + FRAME * i) for i in sorted(lost)]
    assert jb.late == 0


def index_of(packet: RtpPacket) -> int:
    return int.from_bytes(packet.payload, "big")


def test_late_packet_is_discarded_after_its_frame_was_concealed() -> None:
    arrivals = [(t + (0.3 if index_of(p) == 100 else 0.0), p) for t, p in steady(300)]
    jb = buffer()
    run = simulate(jb, arrivals, duration=6.2)
    assert run.accepted[100] is False
    assert jb.late == 1
    assert [r for r in run.active() if isinstance(r, Missing)] == [Missing(TS0 + FRAME * 100)]
    assert run.played == [i for i in range(300) if i != 100]


@pytest.mark.parametrize("early", [0, 2])
def test_backlog_that_comes_in_one_burst_is_discarded_at_once(early: int) -> None:
    # the first half second waits (for the stream to be set up) and comes in one burst;
    # or its first `early` packets come just before a playout tick, the rest just after
    arrivals = [(0.521 if i < early else 0.531, p) if t < 0.531 else (t, p) for i, (t, p) in enumerate(steady(400))]
    jb = buffer()
    run = simulate(jb, arrivals, duration=8.2)
    assert jb.late >= 20  # the frames whose time has passed are discarded at once, as late
    assert len(run.played) + jb.late + jb.dropped_for_drift == 400
    # every other frame plays, but the few dropped while the target delay, raised by
    # the burst, comes back down
    assert jb.dropped_for_drift <= 3
    assert run.played == sorted(run.played)
    assert not any(isinstance(r, Missing) for r in run.active())
    assert max(run.delays()) < 0.1


def test_jitter_raises_the_target_delay_and_a_clean_stream_lets_it_fall() -> None:
    arrivals = []
    for i in range(1500):  # 10 s of +-20 ms, then 20 s clean
        offset = (0.02 if i % 2 else -0.02) if i < 500 else 0.0
        arrivals.append((0.05 + PTIME * i + offset, frame(i)))
    jb = buffer()
    run = simulate(jb, arrivals, duration=30.0)
    jittery, clean = run.targets[:500], run.targets[-300:]
    assert max(jittery) > 80
    assert all(20 <= t <= 200 for t in run.targets)
    assert max(clean) < 25
    # once adapted, the jittery stream plays without concealment, in order
    assert not any(isinstance(r, Missing) for _, r in run.results[150:1400])
    assert run.played == sorted(run.played)


def test_delay_grows_for_late_packets_and_shrinks_when_they_stop() -> None:
    arrivals = []
    for i in range(1500):  # every fourth packet 80 ms late for 10 s, then 20 s clean
        offset = 0.08 if i < 500 and i % 4 == 3 else 0.0
        arrivals.append((0.03 + PTIME * i + offset, frame(i)))
    jb = buffer()
    run = simulate(jb, arrivals, duration=30.0)
    # playout time minus the time each frame would arrive without the extra delay
    delays = [t - (0.03 + PTIME * index(r)) for t, r in run.results if isinstance(r, Played)]
    assert min(delays[400:480]) >= 0.08  # the buffer absorbs the late packets
    assert max(delays[-300:]) < 0.045  # and gives the delay back by dropping frames
    assert jb.dropped_for_drift >= 3
    assert not any(isinstance(r, Missing) for _, r in run.results[100:1400])
    assert jb.late < 10
    assert run.played == sorted(run.played)


def test_target_delay_is_bounded() -> None:
    arrivals = [(0.2 + PTIME * i + (0.15 if i % 2 else -0.15), frame(i)) for i in range(300)]
    jb = buffer(min_delay_ms=40, max_delay_ms=120)
    run = simulate(jb, arrivals, duration=6.0)
    assert all(40 <= t <= 120 for t in run.targets)
    assert run.targets[-1] == pytest.approx(120)
    assert max(run.depths) < 500


def test_faster_sender_clock_keeps_the_depth_bounded() -> None:
    n = int(600 / (PTIME * 0.99))  # ten minutes of a sender clock 1 % fast
    jb = buffer()
    run = simulate(jb, steady(n, period=PTIME * 0.99), duration=600.0)
    assert jb.dropped_for_drift > 200
    assert max(run.depths[100:]) <= 80
    assert max(run.delays()) < 0.08
    assert jb.concealed == 0 and jb.late == 0
    assert run.played == sorted(run.played)
    assert jb.played + jb.dropped_for_drift >= n - 5


def test_slower_sender_clock_conceals_now_and_then_without_drift() -> None:
    n = int(600 / (PTIME * 1.01))
    jb = buffer()
    run = simulate(jb, steady(n, period=PTIME * 1.01), duration=600.0)
    assert 200 < jb.concealed < 400
    assert jb.late == 0 and jb.dropped_for_drift == 0
    assert run.played == list(range(len(run.played)))
    assert len(run.played) >= n - 5
    delays = run.delays()
    assert max(delays) < 0.08
    assert max(delays[-1000:]) <= max(delays[:1000]) + PTIME


def renumbered(first: int, packets: list[tuple[float, RtpPacket]]) -> list[tuple[float, RtpPacket]]:
    return [(t, replace(p, payload=(first + i).to_bytes(4, "big"))) for i, (t, p) in enumerate(packets)]


def test_timestamp_jump_resynchronises() -> None:
    # the sender restarts: new timestamps (far ahead) and sequence numbers, same cadence
    restarted = [(0.031 + PTIME * (200 + i), frame(i, ts0=TS0 + 5_000_000, seq0=30000)) for i in range(200)]
    after = renumbered(200, restarted)
    jb = buffer()
    run = simulate(jb, steady(200) + after, duration=8.2)
    # at most the frames still buffered at the restart are lost
    assert run.played[:198] == list(range(198))
    assert run.played[-200:] == list(range(200, 400))
    assert sum(isinstance(r, Missing) for r in run.active()) <= 2
    assert jb.resyncs == 1


def test_timestamp_jump_backwards_resynchronises() -> None:
    after = renumbered(200, [(0.031 + PTIME * (200 + i), frame(i, ts0=TS0 - 5_000_000)) for i in range(200)])
    jb = buffer()
    run = simulate(jb, steady(200) + after, duration=8.2)
    assert run.played[-200:] == list(range(200, 400))
    assert jb.resyncs == 1 and jb.late == 0


def test_small_step_back_resynchronises_after_a_few_late_packets() -> None:
    # timestamps step back by 0.5 s (less than the jump threshold): the packets look late
    after = renumbered(200, [(0.031 + PTIME * (200 + i), frame(175 + i, seq0=40000)) for i in range(200)])
    jb = buffer()
    run = simulate(jb, steady(200) + after, duration=9.0)
    assert jb.resyncs == 1
    assert 1 <= jb.late <= 8
    # after the resync every frame plays, except a few dropped while the delay, grown
    # by the late packets, comes back down
    unplayed = set(range(210, 400)) - set(run.played)
    assert len(unplayed) == jb.dropped_for_drift <= 3
    assert run.played == sorted(run.played)


def test_new_talkspurt_after_silence() -> None:
    first = steady(100)
    # one second of silence, then a talkspurt: timestamps followed the clock, marker set
    second = [(0.031 + PTIME * (150 + i), frame(150 + i, marker=i == 0)) for i in range(100)]
    jb = buffer()
    run = simulate(jb, first + second, duration=5.2)
    assert run.played == list(range(100)) + list(range(150, 250))
    gap = [r for t, r in run.results if isinstance(r, Missing) and t < 3.0]
    assert 1 <= len(gap) <= 12  # a few concealed frames, then waiting
    assert any(r is None for t, r in run.results if 2.1 < t < 3.0)


def test_sequence_and_timestamp_wrap() -> None:
    arrivals = steady(300, ts0=2**32 - FRAME * 100, seq0=65536 - 150)
    jb = buffer()
    run = simulate(jb, arrivals, duration=6.2)
    assert run.played == list(range(300))
    assert not any(isinstance(r, Missing) for r in run.active())
    played = [r for _, r in run.results if isinstance(r, Played)]
    assert played[100].timestamp == 0 and played[150].sequence == 0


def test_overflow() -> None:
    jb = buffer(capacity=4)
    assert [jb.put(frame(i), 0.0) for i in range(6)] == [True] * 4 + [False] * 2
    assert jb.overflow == 2
    assert jb.depth_ms == 80


def test_no_playout_before_any_packet() -> None:
    jb = buffer()
    assert [jb.pop(t * PTIME) for t in range(5)] == [None] * 5


@pytest.mark.parametrize(
    "kwargs",
    [{"clock_rate": 0, "frame_samples": 160}, {"clock_rate": 8000, "frame_samples": 0},
     {"clock_rate": 8000, "frame_samples": 160, "min_delay_ms": 300}],
)
def test_bad_parameters(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        JitterBuffer(**kwargs)
