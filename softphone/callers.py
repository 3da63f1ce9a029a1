"""Who may call: the allow and deny lists, and digest authentication of incoming calls.

Pure. The lists hold fnmatch patterns (``sip:alice@*``, ``*@example.com``, ``alice``).
They are matched on the authenticated identity when the call was authenticated (the user
the digest names, as ``sip:user@realm``, ``user@realm`` and ``user``), otherwise on the
From URI, which any caller can write. A caller on the deny list is refused even when
the allow list names it too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from softphone.config import Config
from softphone.config.private import split_patterns, verifier_for
from softphone.frozen import dataclass
from softphone.sip.challenge import DigestVerifier, Verdict
from softphone.sip.endpoint import Peer
from softphone.sip.message import Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingPolicy:
    """What to do with incoming calls."""

    auto_answer: bool = False
    delay: float = 0.0  # seconds of ringing before an automatic answer
    allow: tuple[str, ...] = ()  # fnmatch patterns on the caller's identity; empty = everyone
    max_calls: int = 10
    reject: int | None = None  # answer every INVITE with this final code
    ring_timeout: float = 30.0  # seconds an unanswered call rings before 480 (0 = forever)
    deny: tuple[str, ...] = ()  # fnmatch patterns of callers always refused (wins over allow)
    verifier: DigestVerifier | None = None  # digest authentication of incoming calls ([sip] require_auth)


class Decision(StrEnum):
    ADMIT = "admit"
    CHALLENGE = "challenge"  # 401: ask for (fresh) credentials
    REFUSE = "refuse"  # 403


@dataclass(frozen=True)
class Admission:
    """What to do with an incoming INVITE, the identity it was matched on and, for a 401,
    the WWW-Authenticate headers."""

    decision: Decision
    identity: str
    authenticated: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    reason: str = ""


def _matches(candidates: Sequence[str], patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(c.lower(), p.lower()) for c in candidates for p in patterns)


def _candidates(request: Request, user: str | None, realm: str) -> tuple[str, ...]:
    if user is not None:
        return f"sip:{user}@{realm}", f"{user}@{realm}", user
    uri = str(request.from_addr.uri)
    return uri, uri.split(":", 1)[-1]


def admit(request: Request, source: Peer, now: float, policy: IncomingPolicy) -> Admission:
    """Whether an INVITE that starts a dialog may ring: authenticated first (when a
    verifier is given), then matched on the deny list, then on the allow list (empty:
    everyone). Every refusal is logged with the source address and the identity."""
    allow, deny, verifier = policy.allow, policy.deny, policy.verifier
    where = f"{source.host}:{source.port}"
    user: str | None = None
    realm = verifier.realm if verifier is not None else ""
    if verifier is not None:
        check = verifier.check(request, now)
        claimed = check.username or str(request.from_addr.uri)
        if check.verdict in (Verdict.CHALLENGE, Verdict.STALE):
            log.debug("call from %s (%s): challenged (%s)", claimed, where, check.reason)
            return Admission(Decision.CHALLENGE, claimed, headers=check.challenge, reason=check.reason)
        if check.verdict == Verdict.REFUSED:
            log.warning("call from %s (%s) refused: authentication failed (%s)", claimed, where, check.reason)
            return Admission(Decision.REFUSE, claimed, reason=f"authentication failed: {check.reason}")
        user = check.username
    candidates = _candidates(request, user, realm)
    identity = candidates[0]
    how = "authenticated" if user is not None else "unauthenticated From"
    if deny and _matches(candidates, deny):
        log.warning("call from %s (%s, %s) refused: in the deny list", identity, how, where)
        return Admission(Decision.REFUSE, identity, user is not None, reason="in the deny list")
    if allow and not _matches(candidates, allow):
        log.warning("call from %s (%s, %s) refused: not in the allow list", identity, how, where)
        return Admission(Decision.REFUSE, identity, user is not None, reason="not in the allow list")
    log.info("call from %s (%s, %s) admitted", identity, how, where)
    return Admission(Decision.ADMIT, identity, user is not None)


def open_door(policy: IncomingPolicy, bind: str) -> str | None:
    """A warning when every caller that reaches ``bind`` is answered automatically: auto-answer
    on an address other than loopback, with no allow list and no authentication."""
    if not policy.auto_answer or policy.allow or policy.verifier is not None or policy.reject is not None:
        return None
    try:
        if bind == "localhost" or ipaddress.ip_address(bind.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass
    return (f"answering every call automatically on {bind or 'all addresses'} with no allow list (--allow, "
            "[sip] auto_answer_allow) and no authentication ([sip] require_auth): anyone who reaches it can call")


def incoming_policy(config: Config, **overrides: Any) -> IncomingPolicy:
    """The incoming-call policy of [sip] auto_answer, auto_answer_delay, inc_timeout, auto_answer_allow,
    auto_answer_deny, require_auth and [misc] max_calls, with the caller's (command-line) overrides."""
    policy = IncomingPolicy(
        auto_answer=config.sip.auto_answer,
        delay=config.sip.auto_answer_delay_ms / 1000,
        max_calls=config.misc.max_calls,
        ring_timeout=float(config.sip.inc_timeout),
        allow=split_patterns(config.sip.auto_answer_allow),
        deny=split_patterns(config.sip.auto_answer_deny),
        verifier=verifier_for(config),
    )
    return dataclasses.replace(policy, **overrides)
