"""HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 7616,
RFC 8760): parse challenges from 401/407 responses, pick the strongest one, and
compute the Authorization / Proxy-Authorization answer.

Pure: no clock, no sockets. The caller resends the request with a new CSeq and the
header that ``DigestSession.authorize`` returns, placed with ``apply``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Sequence

from softphone.frozen import dataclass
from softphone.sip.headers import TOKEN, canonical_name, quote_string
from softphone.sip.message import Headers, Request, Response

log = logging.getLogger(__name__)


class AuthError(ValueError):
    """A malformed challenge, an unsupported algorithm, or credentials that cannot
    answer a challenge."""


def _hash_function(openssl_name: str) -> Callable[[bytes], str] | None:
    """Hex digest function, or None when this build lacks the hash (SHA-512/256)."""
    try:
        hashlib.new(openssl_name, b"", usedforsecurity=False)
    except ValueError:
        return None
    return lambda data: hashlib.new(openssl_name, data, usedforsecurity=False).hexdigest()


_OPENSSL_NAMES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_HASHES = {
    name: function for name, openssl in _OPENSSL_NAMES.items() if (function := _hash_function(openssl)) is not None
}
_CANONICAL = {spelling.lower(): spelling for base in _OPENSSL_NAMES for spelling in (base, base + "-sess")}
SUPPORTED_ALGORITHMS = frozenset(alg for base in _HASHES for alg in (base, base + "-sess"))
DEFAULT_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")
SUPPORTED_QOP = ("auth", "auth-int")


def canonical_algorithm(name: str) -> str:
    """``sha-256-SESS`` -> ``SHA-256-sess``; unknown names are returned stripped."""
    name = name.strip()
    return _CANONICAL.get(name.lower(), name)


def _base_algorithm(algorithm: str) -> str:
    return algorithm.removesuffix("-sess")


# --- parsing -------------------------------------------------------------------


# one item of a challenge or credentials list: separators, then a token, and for a parameter
# "=" and its value: a quoted-string or a bare value up to the next comma or space
_ITEM = re.compile(
    r'[ \t,]*(?:(' + TOKEN.pattern + r')[ \t]*(?:(=)[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^", \t][^, \t]*)?))?)?',
    re.DOTALL,
)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _scan(text: str) -> list[tuple[str, dict[str, str]]]:
    """Split a WWW-Authenticate / Authorization value into (scheme, params) items.

    ``Digest realm="a", nonce=b, Digest realm="c", ...`` holds two challenges; a
    token followed by ``=`` is a parameter, any other token starts a new scheme.
    Parameter names are lower-cased; the first occurrence of a name wins.
    """
    items: list[tuple[str, dict[str, str]]] = []
    size = len(text)
    pos = 0
    while True:
        item = _ITEM.match(text, pos)  # it matches the empty string: never None
        assert item is not None
        name, equals, quoted, bare = item.groups()
        pos = item.end()
        if name is None:
            if pos >= size:
                return items
            raise AuthError(f"unexpected {text[pos]!r} in {text!r}")
        if equals is None:
            items.append((name, {}))
            continue
        if not items:
            raise AuthError(f"parameter {name!r} before the auth scheme in {text!r}")
        if quoted is not None:
            value = _ESCAPED.sub(r"\1", quoted) if "\\" in quoted else quoted
        elif text.startswith('"', pos):
            raise AuthError(f"unterminated quoted string in {text!r}")
        else:
            value = bare or ""
        items[-1][1].setdefault(name.lower(), value)


@dataclass(frozen=True)
class Challenge:
    """One Digest challenge from a WWW-Authenticate or Proxy-Authenticate header."""

    scheme: str
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    proxy: bool = False

    @classmethod
    def parse(cls, value: str, *, proxy: bool = False) -> Challenge:
        """The first challenge in ``value``; AuthError unless it is a well-formed
        Digest challenge."""
        items = _scan(value)
        if not items:
            raise AuthError("empty challenge")
        scheme, params = items[0]
        return cls._from_params(scheme, params, proxy)

    @classmethod
    def parse_all(cls, value: str, *, proxy: bool = False) -> list[Challenge]:
        """Every well-formed Digest challenge in ``value``; others are skipped."""
        found: list[Challenge] = []
        for scheme, params in _scan(value):
            try:
                found.append(cls._from_params(scheme, params, proxy))
            except AuthError as exc:
                log.debug("skipping challenge: %s", exc)
        return found

    @classmethod
    def _from_params(cls, scheme: str, params: dict[str, str], proxy: bool) -> Challenge:
        if scheme.lower() != "digest":
            raise AuthError(f"not a Digest challenge: {scheme!r}")
        realm = params.get("realm")
        if realm is None:
            raise AuthError("Digest challenge without realm")
        nonce = params.get("nonce")
        if not nonce:
            raise AuthError("Digest challenge without nonce")
        qop = tuple(token.strip().lower() for token in params.get("qop", "").split(",") if token.strip())
        return cls(
            scheme="Digest",
            realm=realm,
            nonce=nonce,
            algorithm=canonical_algorithm(params.get("algorithm") or "MD5"),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").strip().lower() == "true",
            domain=params.get("domain"),
            proxy=proxy,
        )

    @property
    def header_name(self) -> str:
        """The header that answers this challenge."""
        return "Proxy-Authorization" if self.proxy else "Authorization"


def challenges(response: Response) -> list[Challenge]:
    """The Digest challenges of a 401 (WWW-Authenticate) or 407
    (Proxy-Authenticate) response, in header order; unparseable ones are skipped."""
    found: list[Challenge] = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in response.headers.get_all(name):
            try:
                found.extend(Challenge.parse_all(value, proxy=proxy))
            except AuthError as exc:
                log.debug("skipping %s header: %s", name, exc)
    return found


def _rank(algorithm: str, preferred: Sequence[str]) -> int | None:
    if algorithm not in SUPPORTED_ALGORITHMS:
        return None
    for index, name in enumerate(preferred):
        name = canonical_algorithm(name)
        if algorithm == name or _base_algorithm(algorithm) == name:
            return index
    return None


def choose(
    challenges: Sequence[Challenge],
    *,
    preferred: Sequence[str] = DEFAULT_PREFERENCE,
    realm: str | None = None,
) -> Challenge | None:
    """The challenge with the strongest algorithm we support (earliest in
    ``preferred``; a ``-sess`` variant ranks with its base); among equals the
    topmost, which is the server's own preference (RFC 8760 §2.4). ``realm``
    limits the choice to one realm; None when nothing can be answered."""
    best: Challenge | None = None
    best_rank = len(preferred)
    for challenge in challenges:
        if realm is not None and challenge.realm != realm:
            continue
        rank = _rank(challenge.algorithm, preferred)
        if rank is not None and rank < best_rank:
            best, best_rank = challenge, rank
    return best


def choose_per_realm(
    challenges: Sequence[Challenge], *, preferred: Sequence[str] = DEFAULT_PREFERENCE
) -> list[Challenge]:
    """One chosen challenge per (realm, proxy) that can be answered, in order of
    first appearance: a request challenged by several realms answers each."""
    chosen: list[Challenge] = []
    for realm, proxy in dict.fromkeys((c.realm, c.proxy) for c in challenges):
        same_header = [c for c in challenges if c.proxy == proxy]
        challenge = choose(same_header, preferred=preferred, realm=realm)
        if challenge is not None:
            chosen.append(challenge)
    return chosen


def is_stale_retry(previous: Challenge | None, new: Challenge) -> bool:
    """Whether answering ``new`` is worth a retry without asking the user again.

    True for a first challenge (``previous`` is None) or one for another realm.
    A second challenge for the realm we already answered means the credentials
    were refused, unless it says ``stale=true`` with a fresh nonce: "the client may
    wish to simply retry the request with a new encrypted response, without
    reprompting the user" (RFC 2617 §3.2.1, RFC 7616 §3.3)."""
    if previous is None or (previous.realm, previous.proxy) != (new.realm, new.proxy):
        return True
    return new.stale and new.nonce != previous.nonce


# --- credentials and answers -----------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An account's secret: a password, or the precomputed MD5 ``ha1`` of
    ``username:realm:password`` as linphonerc stores it."""

    username: str
    password: str | None = None
    ha1: str | None = None
    realm: str | None = None
    userid: str | None = None

    def __post_init__(self) -> None:
        if self.ha1 is not None:
            if len(self.ha1) != 32 or any(ch not in "0123456789abcdefABCDEF" for ch in self.ha1):
                raise AuthError("ha1 must be 32 hexadecimal digits (an MD5 digest)")
            object.__setattr__(self, "ha1", self.ha1.lower())

    def __repr__(self) -> str:
        return (
            f"Credentials(username={self.username!r}, password={'***' if self.password is not None else None}, "
            f"ha1={'***' if self.ha1 is not None else None}, realm={self.realm!r}, userid={self.userid!r})"
        )

    @property
    def digest_username(self) -> str:
        """The name that goes into the digest: userid when set, else username."""
        return self.userid or self.username

    @property
    def preferred(self) -> tuple[str, ...]:
        """The algorithms these credentials can answer, strongest first (for choose)."""
        if self.password is not None:
            return DEFAULT_PREFERENCE
        return ("MD5",) if self.ha1 is not None else ()

    def matches(self, realm: str) -> bool:
        return self.realm is None or self.realm == realm


def _random_cnonce() -> str:
    return secrets.token_hex(16)


@dataclass
class _NonceState:
    nonce: str
    cnonce: str
    count: int = 0


class DigestSession:
    """Answers challenges with one set of credentials, keeping per realm the
    current nonce, its client nonce and the nonce count."""

    def __init__(self, credentials: Credentials, *, cnonce: Callable[[], str] | None = None) -> None:
        self.credentials = credentials
        self._new_cnonce = cnonce or _random_cnonce
        self._nonces: dict[tuple[str, bool], _NonceState] = {}

    def __repr__(self) -> str:
        return f"DigestSession({self.credentials!r}, realms={sorted(realm for realm, _ in self._nonces)!r})"

    def authorize(self, challenge: Challenge, method: str, uri: str, body: bytes = b"") -> tuple[str, str]:
        """The (header name, header value) answering ``challenge`` for a request
        with this method, Request-URI and body."""
        if not self.credentials.matches(challenge.realm):
            raise AuthError(f"no credentials for realm {challenge.realm!r}")
        algorithm = challenge.algorithm
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise AuthError(f"unsupported digest algorithm {algorithm!r}")
        digest = _HASHES[_base_algorithm(algorithm)]
        qop = _choose_qop(challenge.qop)
        state = self._state(challenge)
        if qop is not None:
            state.count += 1
        nc = f"{state.count:08x}"

        ha1 = self._ha1(challenge, digest)
        sess = algorithm.endswith("-sess")
        if sess:
            ha1 = digest(f"{ha1}:{challenge.nonce}:{state.cnonce}".encode())
        a2 = f"{method}:{uri}"
        if qop == "auth-int":
            a2 += ":" + digest(body)
        ha2 = digest(a2.encode())
        if qop is None:
            # RFC 2069 compatibility: request-digest = H(HA1 ":" nonce ":" HA2).
            response = digest(f"{ha1}:{challenge.nonce}:{ha2}".encode())
        else:
            response = digest(f"{ha1}:{challenge.nonce}:{nc}:{state.cnonce}:{qop}:{ha2}".encode())

        parts = [
            f"username={quote_string(self.credentials.digest_username)}",
            f"realm={quote_string(challenge.realm)}",
            f"nonce={quote_string(challenge.nonce)}",
            f"uri={quote_string(uri)}",
            f"response={quote_string(response)}",
            f"algorithm={algorithm}",
        ]
        if qop is not None or sess:
            parts.append(f"cnonce={quote_string(state.cnonce)}")
        if qop is not None:
            parts += [f"qop={qop}", f"nc={nc}"]
        if challenge.opaque is not None:
            parts.append(f"opaque={quote_string(challenge.opaque)}")
        log.debug("answering %s challenge for realm %r with %s", challenge.header_name, challenge.realm, algorithm)
        return challenge.header_name, "Digest " + ", ".join(parts)

    def _state(self, challenge: Challenge) -> _NonceState:
        key = (challenge.realm, challenge.proxy)
        state = self._nonces.get(key)
        if state is None or state.nonce != challenge.nonce:
            # A new nonce restarts the count at 1 with a fresh client nonce.
            state = _NonceState(nonce=challenge.nonce, cnonce=self._new_cnonce())
            self._nonces[key] = state
        return state

    def _ha1(self, challenge: Challenge, digest: Callable[[bytes], str]) -> str:
        creds = self.credentials
        if creds.password is not None:
            return digest(f"{creds.digest_username}:{challenge.realm}:{creds.password}".encode())
        if creds.ha1 is not None:
            if _base_algorithm(challenge.algorithm) != "MD5":
                raise AuthError(f"a precomputed MD5 ha1 cannot answer {challenge.algorithm}; a password is needed")
            return creds.ha1
        raise AuthError(f"no password or ha1 for {creds.username!r}")


def _choose_qop(offered: tuple[str, ...]) -> str | None:
    """Prefer "auth"; "auth-int" when it is the only kind we know; None
    (RFC 2069 mode) when the challenge offers no qop."""
    if not offered:
        return None
    for qop in SUPPORTED_QOP:
        if qop in offered:
            return qop
    raise AuthError(f"no supported qop among {', '.join(offered)}")


def _realm_of(value: str) -> str | None:
    try:
        items = _scan(value)
    except AuthError:
        return None
    return items[0][1].get("realm") if items else None


def apply(request: Request, header: tuple[str, str], realm: str | None = None) -> Request:
    """``request`` carrying ``header``, which replaces an older header of the same
    name for the same realm (in its place); a new one goes before Content-Length.
    ``realm`` is the header's realm when the caller knows it (it is read from the header
    otherwise)."""
    name, value = canonical_name(header[0]), header[1]
    if realm is None:
        realm = _realm_of(value)
    items: list[tuple[str, str]] = []
    position: int | None = None
    for key, existing in request.headers.items:
        if key == name and _realm_of(existing) == realm:
            if position is None:
                position = len(items)
            continue
        items.append((key, existing))
    if position is None:
        keys = [key for key, _ in items]
        position = keys.index("Content-Length") if "Content-Length" in keys else len(items)
    items.insert(position, (name, value))
    return request.with_headers(Headers(tuple(items)))
