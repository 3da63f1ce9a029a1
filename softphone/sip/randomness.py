"""Random tags, branches and numbers: the system's random bytes, read a block at a time.

``os.urandom`` is a system call, and answering a call takes half a dozen random values (a To
tag, the dialog's CSeq, the SDP session id ...). On a processor that has just woken up each
system call costs tens of microseconds on the way to the answer, so the bytes are read 4 KiB
at a time and each byte is handed out once. They are the system's bytes all the same, as
``random.SystemRandom`` gives them; a forked child starts with an empty block. Like the rest
of the SIP core, it is used from one thread (the event loop's).
"""

from __future__ import annotations

import os
import random

BLOCK = 4096


class BlockRandom(random.SystemRandom):
    """``random.SystemRandom`` drawing on a block of ``os.urandom`` bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._block = b""
        self._at = 0

    def forget(self) -> None:
        """Drop the unused bytes (a forked child must not share them with its parent)."""
        self._block, self._at = b"", 0

    def randbytes(self, n: int) -> bytes:
        if self._at + n > len(self._block):
            self._block, self._at = os.urandom(max(BLOCK, n)), 0
        start = self._at
        self._at += n
        return self._block[start:start + n]

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        size = (k + 7) // 8
        return int.from_bytes(self.randbytes(size), "big") >> (size * 8 - k)

    def one_to(self, bits: int) -> int:
        """A number from 1 to 2**bits, each as likely: ``randint(1, 2**bits)`` without its
        rejected draws (it asks for one bit more than the range needs, and throws half away)."""
        return 1 + self.getrandbits(bits)

    def random(self) -> float:
        return (int.from_bytes(self.randbytes(7), "big") >> 3) * 2.0**-53


#: the one source of the SIP core's random values
RANDOM = BlockRandom()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=RANDOM.forget)
