"""The SIP core's random values come from the system's random bytes, read a block at a time,
each byte handed out once, and never shared with a forked child."""

from __future__ import annotations

import os
from typing import Any

import pytest

from softphone.sip import randomness
from softphone.sip.dialog import random_token
from softphone.sip.randomness import BLOCK, BlockRandom


def test_many_tags_take_one_read_of_the_system_source(monkeypatch: Any) -> None:
    reads: list[int] = []
    real = os.urandom

    def counted(n: int) -> bytes:
        reads.append(n)
        return real(n)

    monkeypatch.setattr(randomness.os, "urandom", counted)
    source = BlockRandom()
    blocks = [source.randbytes(10) for _ in range(BLOCK // 10)]
    assert reads == [BLOCK]
    assert len(set(blocks)) == len(blocks)  # no byte handed out twice
    source.randbytes(11)  # past the block's end: the next block
    assert reads == [BLOCK, BLOCK]
    assert len(source.randbytes(3 * BLOCK)) == 3 * BLOCK and reads[-1] == 3 * BLOCK


def test_numbers_keep_their_ranges_and_use_every_bit() -> None:
    source = BlockRandom()
    assert source.getrandbits(0) == 0
    with pytest.raises(ValueError):
        source.getrandbits(-1)
    for bits in (1, 7, 8, 21, 31, 48):
        values = [source.getrandbits(bits) for _ in range(400)]
        assert all(0 <= v < 2**bits for v in values)
        assert max(values).bit_length() == bits  # the top bit is used (400 draws: p of a miss < 2**-399)
    seqs = [source.randint(1, 2**20) for _ in range(1000)]
    assert all(1 <= v <= 2**20 for v in seqs) and len(set(seqs)) > 990
    for bits in (1, 20, 31):  # one_to: 1 .. 2**bits, both halves drawn (400 draws: p of a miss 2**-399)
        drawn = [source.one_to(bits) for _ in range(400)]
        assert all(1 <= v <= 2**bits for v in drawn)
        assert min(drawn) <= 2 ** (bits - 1) < max(drawn)
    taken = source._at
    source.one_to(20)  # one draw of three bytes, none thrown away
    assert source._at == taken + 3
    floats = [source.random() for _ in range(1000)]
    assert all(0.0 <= f < 1.0 for f in floats) and 0.4 < sum(floats) / len(floats) < 0.6


def test_tags_are_letters_and_digits_and_differ() -> None:
    tags = [random_token(10) for _ in range(2000)]
    assert all(len(t) == 10 and t.isalnum() and t.isascii() for t in tags)
    assert len(set(tags)) == len(tags)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    randomness.RANDOM.randbytes(1)  # a block is read and mostly unused
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        try:
            os.write(write_end, randomness.RANDOM.randbytes(32))
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 32)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != randomness.RANDOM.randbytes(32)
