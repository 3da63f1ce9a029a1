"""Flood protection, without I/O: a token bucket per source address for requests outside
any call, and caps on server transactions and dialogs.

The guard sits in front of the endpoint's transaction layer (``Endpoint.admit``), so a
refused request costs no transaction: the phone's memory stays bounded whatever a
source sends. A request that is over a limit is answered 503 with Retry-After once;
while that Retry-After runs, further over-limit requests from the same source are
dropped without an answer, so a flood is not amplified into a flood of responses.

Requests inside a call of ours (same Call-ID), CANCELs of our INVITE transactions and
every ACK are never limited: a flood from elsewhere does not stop established calls.

When the phone itself is saturated (the edge tells: its SIP socket is backed up or its media
clock runs late), each new INVITE from a source that calls a lot (or from any source when
the per-source limit is off) is answered 503 with Retry-After at once, a few microseconds
of work, instead of becoming a call whose answer would come too late anyway: callers fail
fast and the calls in progress keep their media.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from enum import StrEnum

from softphone.frozen import dataclass
from softphone.sip.endpoint import Endpoint, Peer, Refusal
from softphone.sip.message import Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one source and the phone as a whole may use. ``rate`` 0 turns the per-source
    limit off; a cap of 0 turns that cap off."""

    rate: float = 20.0  # out-of-dialog requests per second a source may send, on average
    burst: int = 50  # how many it may send at once
    max_transactions: int = 10000  # server transactions at once (completed ones wait 32 s), all sources
    max_dialogs: int = 1000  # calls in progress (ended ones, lingering for retransmissions, are not counted)
    retry_after: int = 5  # seconds, in the 503's Retry-After
    max_sources: int = 4096  # sources remembered at once

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 1 or self.max_transactions < 0 or self.max_dialogs < 0:
            raise ValueError(f"bad limits: {self}")
        if self.retry_after < 1 or self.max_sources < 1:
            raise ValueError(f"bad limits: {self}")


class Verdict(StrEnum):
    ADMIT = "admit"
    REFUSE = "refuse"  # answer 503 with Retry-After
    DROP = "drop"  # over the limit again while a 503 is running: no answer


class Reason(StrEnum):
    RATE = "rate"
    TRANSACTIONS = "transactions"
    DIALOGS = "dialogs"


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a request takes one."""

    rate: float
    burst: int
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> TokenBucket:
        return cls(rate, burst, float(burst), now)

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst


@dataclass
class _Source:
    bucket: TokenBucket
    quiet_until: float = float("-inf")  # a 503 was sent: drop over-limit requests until then


class Guard:
    """Decides, for each new request outside any call, whether it gets a transaction."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._sources: dict[str, _Source] = {}
        self.refused = 0  # 503s sent
        self.dropped = 0  # requests dropped without an answer
        self.shed = 0  # INVITEs answered 503 because the phone was saturated

    def check(self, source: str, now: float, *, transactions: int = 0, dialogs: int = 0,
              invite: bool = False) -> Verdict:
        """The verdict on a new out-of-dialog request from ``source`` (an address) while the
        phone holds ``transactions`` server transactions and ``dialogs`` calls."""
        limits = self.limits
        reason: Reason | None = None
        entry = self._source(source, now)
        if limits.max_transactions and transactions >= limits.max_transactions:
            reason = Reason.TRANSACTIONS
        elif invite and limits.max_dialogs and dialogs >= limits.max_dialogs:
            reason = Reason.DIALOGS
        elif entry is not None and not entry.bucket.take(now):
            reason = Reason.RATE
        if reason is None:
            return Verdict.ADMIT
        if entry is not None and now < entry.quiet_until:
            self.dropped += 1
            return Verdict.DROP
        if entry is not None:
            entry.quiet_until = now + limits.retry_after
        self.refused += 1
        log.warning("503 to %s: over the %s limit; more from it is dropped for %d s", source, reason.value,
                    limits.retry_after)
        return Verdict.REFUSE

    def _heavy(self, source: str, now: float) -> bool:
        """Whether a saturated phone sheds this source's new calls: one that has used half its
        burst (a source calling at a trickle still gets through while a flood from elsewhere
        fills the socket); every source when the per-source limit is off."""
        if self.limits.rate <= 0:
            return True
        entry = self._sources.get(source)
        if entry is None:
            return False
        entry.bucket.refill(now)
        return entry.bucket.tokens < self.limits.burst / 2

    def sources(self) -> int:
        return len(self._sources)

    def _source(self, source: str, now: float) -> _Source | None:
        limits = self.limits
        if limits.rate <= 0:
            return None
        entry = self._sources.get(source)
        if entry is None:
            if len(self._sources) >= limits.max_sources:
                self._forget(now)
            entry = _Source(TokenBucket.full(limits.rate, limits.burst, now))
            self._sources[source] = entry
        return entry

    def _forget(self, now: float) -> None:
        """Make room: forget sources whose bucket is full again and whose 503 is over,
        else the oldest half (a forgotten source starts again with a full bucket)."""
        idle = [s for s, e in self._sources.items() if e.bucket.is_full(now) and now >= e.quiet_until]
        if not idle:
            idle = list(self._sources)[: max(1, len(self._sources) // 2)]
        for source in idle:
            del self._sources[source]

    # ------------------------------------------------------------ in front of an endpoint

    def protect(self, endpoint: Endpoint, calls: Collection[str], server: str | None = None,
                live: Callable[[], int] | None = None, busy: Callable[[], bool] | None = None) -> None:
        """Check every new request ``endpoint`` receives before it gets a transaction;
        ``calls`` holds the Call-IDs of the calls that are ours (never limited), ``live``
        counts those in progress (default: all of them), ``busy`` tells when the phone is
        saturated (new INVITEs are then answered 503)."""
        endpoint.admit = self.admission(endpoint, calls, server, live, busy)

    def admission(self, endpoint: Endpoint, calls: Collection[str], server: str | None = None,
                  live: Callable[[], int] | None = None,
                  busy: Callable[[], bool] | None = None) -> Callable[[Request, Peer, float], Refusal | None]:
        in_progress = live or calls.__len__
        retry = ("Retry-After", str(self.limits.retry_after))
        headers = (retry, ("Server", server)) if server else (retry,)
        shed = (("Retry-After", "1"), ("Server", server)) if server else (("Retry-After", "1"),)

        def admit(request: Request, source: Peer, now: float) -> Refusal | None:
            if request.call_id in calls:
                return None  # inside a call of ours (or a CANCEL of its INVITE)
            if busy is not None and request.method == "INVITE" and self._heavy(source.host, now) and busy():
                self.shed += 1
                return Refusal(503, shed)
            verdict = self.check(source.host, now, transactions=endpoint.server_transactions(),
                                 dialogs=in_progress(),
                                 invite=request.method == "INVITE")
            if verdict == Verdict.ADMIT:
                return None
            # RFC 3261 §21.5.4: a 503 "MAY indicate when the client should retry the
            # request in a Retry-After header field"
            return Refusal(503 if verdict == Verdict.REFUSE else None, headers)

        return admit
