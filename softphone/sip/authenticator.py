"""Answering digest challenges for a sequence of requests (a registration, a call).

It remembers which realms challenged us so that later requests carry credentials at
once, and it tells a stale nonce (retry) from refused credentials (give up): a client
that retries refused credentials forever is a retry storm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from softphone.sip.auth import AuthError, Challenge, Credentials, DigestSession, apply, challenges, choose
from softphone.sip.message import Request, Response

#: challenges answered for one request before giving up
MAX_ROUNDS = 3


@dataclass
class Authenticator:
    credentials: Sequence[Credentials] = ()
    _answered: dict[str, Challenge] = field(default_factory=dict)  # realm -> the challenge we answer
    _sessions: dict[str, DigestSession] = field(default_factory=dict)
    _rounds: int = 0

    def challenged(self, response: Response) -> None:
        """Take a 401/407; raises AuthError when we cannot (or must not) answer it."""
        chosen = choose(challenges(response))
        if chosen is None:
            raise AuthError("no supported authentication scheme offered")
        previous = self._answered.get(chosen.realm)
        self._rounds += 1
        # RFC 2617 §3.2.1: only a stale nonce is a reason to retry with the same
        # credentials; a new challenge for the nonce we answered means they were refused.
        if (previous is not None and previous.nonce == chosen.nonce and not chosen.stale) or self._rounds > MAX_ROUNDS:
            raise AuthError(f"authentication failed for realm {chosen.realm!r}")
        credentials = next((c for c in self.credentials if c.matches(chosen.realm)), None)
        if credentials is None:
            raise AuthError(f"no credentials for realm {chosen.realm!r}")
        if chosen.realm not in self._sessions or previous is None or previous.nonce != chosen.nonce:
            self._sessions[chosen.realm] = DigestSession(credentials)
        self._answered[chosen.realm] = chosen

    @property
    def sent_credentials(self) -> bool:
        """Whether our requests carry credentials (a 403 then means they were refused)."""
        return bool(self._answered)

    def answered(self) -> None:
        """A final response other than a challenge: the next request starts a new count."""
        self._rounds = 0

    def forget(self) -> None:
        self._answered.clear()
        self._sessions.clear()
        self._rounds = 0

    def authorize(self, request: Request) -> Request:
        """``request`` with an Authorization/Proxy-Authorization for each realm we know."""
        for realm, challenge in self._answered.items():
            header = self._sessions[realm].authorize(challenge, request.method, str(request.uri), request.body)
            request = apply(request, header)
        return request
