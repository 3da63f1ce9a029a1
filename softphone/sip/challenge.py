"""The server side of HTTP Digest as SIP uses it (RFC 3261 §22.1, §22.4; RFC 2617;
RFC 7616 for SHA-256): nonces, the 401 challenge to an incoming INVITE, and the check
of the Authorization that answers it.

Pure: ``now`` is always given. A nonce is the time it was made and an HMAC of that time
under a key of this process, so any nonce we made can be checked without keeping it, and
a nonce older than ``nonce_lifetime`` is answered with a new challenge marked
``stale=true`` (RFC 2617 §3.2.1): the client retries with the same credentials.

Only an INVITE that starts a dialog is challenged. RFC 3261 §22.1: "the CANCEL method
cannot be challenged" and an ACK for a non-2xx response takes the credentials of the
INVITE it acknowledges: neither ever gets a 401 (they never reach this module).

The users file holds one user a line: ``user:password``, or ``user:realm:ha1`` where ha1
is the MD5 of ``user:realm:password`` (as linphonerc and Kamailio store it). Blank lines
and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import struct
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum

from softphone.frozen import dataclass
from softphone.sip.auth import AuthError, _scan, canonical_algorithm
from softphone.sip.headers import quote_string
from softphone.sip.message import Request

log = logging.getLogger(__name__)

NONCE_LIFETIME = 300.0  # seconds a nonce is accepted before the client is asked again with stale=true
_DIGESTS = {"MD5": "md5", "SHA-256": "sha256"}


class UsersFileError(ValueError):
    """A line of the users file that is neither ``user:password`` nor ``user:realm:ha1``."""


@dataclass(frozen=True)
class UserSecret:
    """What the users file knows of one user: a password, or the MD5 ha1 for one realm."""

    username: str
    password: str | None = field(default=None, repr=False)
    realm: str | None = None
    ha1: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        secret = "password=***" if self.password is not None else "ha1=***"
        return f"UserSecret(username={self.username!r}, realm={self.realm!r}, {secret})"

    def ha1_for(self, realm: str, algorithm: str) -> str | None:
        """H(username:realm:password) with the algorithm's hash; None when this secret cannot give it."""
        if self.password is not None:
            return _hash(algorithm, f"{self.username}:{realm}:{self.password}")
        if self.ha1 is not None and algorithm == "MD5" and self.realm == realm:
            return self.ha1
        return None


def parse_users(text: str) -> dict[str, UserSecret]:
    """The users of a users file, by name; UsersFileError names the first bad line (never its secret)."""
    users: dict[str, UserSecret] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) == 2 and parts[0] and parts[1]:
            users[parts[0]] = UserSecret(parts[0], password=parts[1])
        elif len(parts) == 3 and parts[0] and parts[1] and _is_md5_hex(parts[2]):
            users[parts[0]] = UserSecret(parts[0], realm=parts[1], ha1=parts[2].lower())
        else:
            raise UsersFileError(f"line {number}: expected user:password or user:realm:ha1 (32 hex digits)")
    return users


def _is_md5_hex(value: str) -> bool:
    return len(value) == 32 and all(ch in "0123456789abcdefABCDEF" for ch in value)


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_DIGESTS[algorithm], text.encode(), usedforsecurity=False).hexdigest()


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    CHALLENGE = "challenge"  # no (usable) credentials: 401 with a challenge
    STALE = "stale"  # the right password with an expired nonce: 401 with stale=true
    REFUSED = "refused"  # a wrong password or an unknown user: 403


@dataclass(frozen=True)
class Check:
    """The outcome of checking a request's Authorization: the verdict, the user it names
    (authenticated only when ACCEPTED) and, for a 401, the WWW-Authenticate headers."""

    verdict: Verdict
    username: str | None = None
    challenge: tuple[tuple[str, str], ...] = ()
    reason: str = ""


class DigestVerifier:
    """Challenges requests for one realm and checks their answers against the users file."""

    def __init__(
        self, realm: str, users: Mapping[str, UserSecret], *, key: bytes | None = None,
        nonce_lifetime: float = NONCE_LIFETIME,
    ) -> None:
        self.realm = realm
        self.users = dict(users)
        self._key = key if key is not None else secrets.token_bytes(32)
        self.nonce_lifetime = nonce_lifetime
        # a precomputed MD5 ha1 cannot answer SHA-256: offer SHA-256 only when every user has a password.
        # MD5 comes first: clients that know only MD5 (baresip's libre) give up on a first challenge
        # they cannot answer, while RFC 8760 clients (ours, pjsua2) choose the strongest they know
        every_password = all(u.password is not None for u in self.users.values())
        self.algorithms: tuple[str, ...] = ("MD5", "SHA-256") if every_password else ("MD5",)

    def __repr__(self) -> str:
        return f"DigestVerifier(realm={self.realm!r}, users={sorted(self.users)!r})"

    # ------------------------------------------------------------ nonces

    def nonce(self, now: float) -> str:
        stamp = struct.pack(">d", now)
        mac = hmac.new(self._key, stamp, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since we made ``nonce``; None when we did not make it."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self._key, stamp, hashlib.sha256).digest()[:16]):
            return None
        age: float = now - struct.unpack(">d", stamp)[0]
        return age if age >= 0 else None

    def challenge_headers(self, now: float, stale: bool = False) -> tuple[tuple[str, str], ...]:
        """One WWW-Authenticate per algorithm we accept (RFC 8760 §2.4)."""
        nonce = self.nonce(now)
        headers = []
        for algorithm in self.algorithms:
            value = (f"Digest realm={quote_string(self.realm)}, nonce={quote_string(nonce)}, "
                     f"algorithm={algorithm}, qop=\"auth\"")
            if stale:
                value += ", stale=true"
            headers.append(("WWW-Authenticate", value))
        return tuple(headers)

    # ------------------------------------------------------------ checking an answer

    def check(self, request: Request, now: float) -> Check:
        """Check the Authorization of ``request`` for our realm."""
        params = self._credentials(request)
        if params is None:
            return Check(Verdict.CHALLENGE, challenge=self.challenge_headers(now), reason="no credentials")
        username = params.get("username", "")
        algorithm = canonical_algorithm(params.get("algorithm") or "MD5")
        if algorithm not in self.algorithms:
            return Check(Verdict.CHALLENGE, username, self.challenge_headers(now), f"algorithm {algorithm!r}")
        for name in ("nonce", "uri", "response"):
            if not params.get(name):
                return Check(Verdict.CHALLENGE, username, self.challenge_headers(now), f"no {name} parameter")
        age = self.nonce_age(params["nonce"], now)
        if age is None:
            return Check(Verdict.CHALLENGE, username, self.challenge_headers(now), "a nonce we did not make")
        # RFC 3261 §22.4: the request-uri of the credentials is the Request-URI of the request
        if params["uri"] != str(request.uri):
            return Check(Verdict.REFUSED, username, reason="the digest uri is not the Request-URI")
        user = self.users.get(username)
        ha1 = user.ha1_for(self.realm, algorithm) if user is not None else None
        if ha1 is None:
            return Check(Verdict.REFUSED, username, reason="unknown user")
        expected = self._response(ha1, algorithm, request.method, params)
        if expected is None:
            return Check(Verdict.CHALLENGE, username, self.challenge_headers(now), "qop without nc or cnonce")
        if not hmac.compare_digest(expected, params["response"].lower()):
            return Check(Verdict.REFUSED, username, reason="wrong password")
        if age > self.nonce_lifetime:
            return Check(Verdict.STALE, username, self.challenge_headers(now, stale=True), "expired nonce")
        return Check(Verdict.ACCEPTED, username)

    def _credentials(self, request: Request) -> dict[str, str] | None:
        """The parameters of the Digest Authorization for our realm, if the request has one."""
        for value in request.headers.get_all("Authorization"):
            try:
                items = _scan(value)
            except AuthError:
                continue
            for scheme, params in items:
                if scheme.lower() == "digest" and params.get("realm") == self.realm:
                    return params
        return None

    @staticmethod
    def _response(ha1: str, algorithm: str, method: str, params: Mapping[str, str]) -> str | None:
        ha2 = _hash(algorithm, f"{method}:{params['uri']}")
        qop = params.get("qop")
        if qop is None:
            # RFC 2069 compatibility (RFC 2617 §3.2.2.1): request-digest = H(HA1 ":" nonce ":" HA2)
            return _hash(algorithm, f"{ha1}:{params['nonce']}:{ha2}")
        if qop.lower() != "auth" or not params.get("nc") or not params.get("cnonce"):
            return None
        return _hash(algorithm, f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
