"""Answering digest challenges for a sequence of requests (a registration, a call).

It remembers which realms challenged us so that later requests carry credentials at
once, and it tells a stale nonce (retry) from refused credentials (give up): a client
that retries refused credentials forever is a retry storm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from softphone.sip.auth import (
    AuthError,
    Challenge,
    Credentials,
    DigestSession,
    apply,
    challenges,
    choose,
    is_stale_retry,
)
from softphone.sip.message import Request, Response

#: challenges answered for one request before giving up (a realm each, or a stale nonce)
MAX_ROUNDS = 3

#: a realm and whether it challenged with 407 (Proxy-Authenticate) rather than 401
_RealmKey = tuple[str, bool]


@dataclass
class Authenticator:
    credentials: Sequence[Credentials] = ()
    _answered: dict[_RealmKey, Challenge] = field(default_factory=dict)  # the challenges our requests answer
    _sessions: dict[_RealmKey, DigestSession] = field(default_factory=dict)
    _rounds: int = 0

    def challenged(self, response: Response) -> None:
        """Take a 401/407; raises AuthError when we cannot (or must not) answer it.

        RFC 3261 §22.2: a UAC "SHOULD NOT re-attempt requests with the credentials that
        have just been rejected (though the request may be retried if the nonce was
        stale)". So within one exchange a new challenge for a realm our request answered
        fails, unless it says stale=true with a new nonce: then the same credentials
        answer the new nonce without asking anyone, and that is not a failed
        authentication.
        """
        chosen = choose(challenges(response))
        if chosen is None:
            raise AuthError("no supported authentication scheme offered")
        key = (chosen.realm, chosen.proxy)
        # the first challenge of an exchange may refuse credentials computed for an earlier
        # one (a registration refresh after the registrar restarted, a BYE answering the
        # INVITE's challenge): those are answered again once, with the new nonce
        if self._rounds > 0 and not is_stale_retry(self._answered.get(key), chosen):
            raise AuthError(f"authentication failed for realm {chosen.realm!r}")
        self._rounds += 1
        if self._rounds > MAX_ROUNDS:
            raise AuthError(f"still challenged for realm {chosen.realm!r} after {MAX_ROUNDS} answers")
        if key not in self._sessions:
            credentials = next((c for c in self.credentials if c.matches(chosen.realm)), None)
            if credentials is None:
                raise AuthError(f"no credentials for realm {chosen.realm!r}")
            self._sessions[key] = DigestSession(credentials)
        self._answered[key] = chosen

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
        for key, challenge in self._answered.items():
            header = self._sessions[key].authorize(challenge, request.method, str(request.uri), request.body)
            request = apply(request, header, challenge.realm)
        return request
