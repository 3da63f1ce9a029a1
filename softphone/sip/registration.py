"""Registration of one address-of-record with its registrar (RFC 3261 §10), without I/O.

The state machine sends REGISTER, answers digest challenges, honours the expiry the
registrar grants, refreshes before it lapses, retries with a bounded backoff when the
registrar cannot be reached, and unregisters (Expires: 0) on request.

Behind a NAT it learns its public address from the ``received`` and ``rport`` the
registrar writes into the top Via of its answer (RFC 3581) and registers again with a
Contact rewritten to that address, as linphone and baresip do; a later change (the NAT
rebound the flow) registers again the same way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Hashable
from dataclasses import field, replace

from softphone.errors import ParseError, StateError
from softphone.frozen import dataclass
from softphone.sip.auth import AuthError, Credentials
from softphone.sip.authenticator import Authenticator
from softphone.sip.dialog import LocalAddress, random_token
from softphone.sip.headers import NameAddress
from softphone.sip.message import Headers, Request, Response
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)
_random = random.Random()

#: retry delays after a failure that is not the credentials' fault (seconds); the last repeats
BACKOFF = (1.0, 2.0, 4.0, 8.0)
#: after rejected credentials we do not hammer the registrar: one try a minute
AUTH_RETRY = 60.0
#: Contact rewrites in a row without an answer that agrees with the last one; then the
#: registration settles for what it has (a registrar whose answers keep moving is not followed)
MAX_REBINDS = 3

# (state, input) -> next state
TRANSITIONS: dict[tuple[str, str], str] = {
    ("idle", "register"): "registering",
    ("registering", "challenge"): "registering",
    ("registering", "rebind"): "registering",
    ("registering", "ok"): "registered",
    ("registering", "rejected"): "failed",
    ("registering", "unreachable"): "retrying",
    ("registering", "unregister"): "unregistering",
    ("registered", "refresh"): "refreshing",
    ("registered", "unregister"): "unregistering",
    ("refreshing", "challenge"): "refreshing",
    ("refreshing", "rebind"): "refreshing",
    ("refreshing", "ok"): "registered",
    ("refreshing", "rejected"): "failed",
    ("refreshing", "unreachable"): "retrying",
    ("refreshing", "unregister"): "unregistering",
    ("retrying", "register"): "registering",
    ("retrying", "unregister"): "unregistered",
    ("failed", "register"): "registering",
    ("failed", "unregister"): "unregistered",
    ("unregistering", "challenge"): "unregistering",
    ("unregistering", "ok"): "unregistered",
    ("unregistering", "rejected"): "unregistered",
    ("unregistering", "unreachable"): "unregistered",
    ("unregistered", "register"): "registering",
}


@dataclass(frozen=True)
class SendRegister:
    request: Request
    target: SipUri


@dataclass(frozen=True)
class RegistrationChanged:
    state: str
    sip_code: int | None = None
    reason: str = ""
    expires: int | None = None  # granted expiry, when registered
    public_address: str | None = None  # "host:port" the registrar saw us at, when not our own (behind a NAT)


RegistrationCommand = SendRegister | RegistrationChanged


@dataclass
class Registration:
    aor: NameAddress  # our address-of-record (To and From)
    registrar: SipUri  # Request-URI of the REGISTER
    local: LocalAddress
    credentials: tuple[Credentials, ...] = ()
    expires: int = 3600
    route: tuple[NameAddress, ...] = ()  # outbound proxy as a loose route
    instance_id: str | None = None  # RFC 5626 +sip.instance (a urn:uuid:...)
    user_agent: str | None = None
    allow: str | None = None  # the methods we take, for the registrar and callers (RFC 3261 §10.2)
    state: str = "idle"
    granted: int | None = None
    deadline: float | None = None  # next refresh or retry
    failures: int = 0
    last_reason: str = ""
    auth_failed: bool = False  # the last failure was refused credentials
    public: tuple[str, int] | None = None  # learnt from received/rport while it differs from our own address
    call_id: str = field(default_factory=lambda: random_token(20))
    _cseq: int = 0
    _pending: Request | None = None
    _auth: Authenticator = field(default_factory=Authenticator)
    _expires_asked: int = 0
    _tag: str = field(default_factory=random_token)
    _stale_contact: SipUri | None = None  # the Contact a rewrite replaced: removed by the next REGISTER
    _rebinds: int = 0
    _resent_after_400: bool = False  # the pending REGISTER answers a 400 (sent once more, not twice)
    _written: tuple[Hashable, tuple[str, str, str]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._auth = Authenticator(self.credentials)

    def _go(self, event: str) -> str:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise StateError("Registration", self.state, event) from None
        return self.state

    @property
    def registered(self) -> bool:
        return self.state in ("registered", "refreshing")

    @property
    def contact(self) -> SipUri:
        return self.local_for_calls.contact_uri(self.aor.uri.as_sip().user)

    @property
    def local_for_calls(self) -> LocalAddress:
        """Our address as the registrar should reach us, for this registration's Contact and
        for the Contact and SDP of calls on its account: the public address learnt, if any."""
        if self.public is None:
            return self.local
        host, port = self.public
        return replace(self.local, contact_host=host, contact_port=port, media_host=host)

    @property
    def public_address(self) -> str | None:
        if self.public is None:
            return None
        host, port = self.public
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def next_hop(self) -> SipUri:
        return self.route[0].uri.as_sip() if self.route else self.registrar

    # ------------------------------------------------------------ requests

    def _register_request(self, expires: int) -> Request:
        self._cseq += 1
        self._expires_asked = expires
        from_, to, contact = self._addresses()
        pairs: list[tuple[str, str]] = [
            ("Via", str(self.local.via())),
            ("Max-Forwards", "70"),
            ("From", from_),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
        ]
        if self._stale_contact is not None and expires:
            # RFC 3261 §10.2.2: a Contact with expires=0 removes that binding (the address we
            # registered before the NAT's was known or before it changed)
            pairs.append(("Contact", str(NameAddress(self._stale_contact).with_param("expires", "0"))))
        pairs += [("Route", str(r)) for r in self.route]
        if self.allow:
            pairs.append(("Allow", self.allow))
        if self.instance_id:
            pairs.append(("Supported", "outbound, path"))
        if self.user_agent:
            pairs.append(("User-Agent", self.user_agent))
        request = self._auth.authorize(Request("REGISTER", self.registrar, Headers.of(*pairs)))
        self._pending = request
        return request

    def _addresses(self) -> tuple[str, str, str]:
        """From, To and Contact as written: worked out again only when what they are made of
        changes (the Contact after a rebind to the address the registrar sees)."""
        key = (self.aor, self._tag, self.local_for_calls, self.instance_id)
        if self._written is None or self._written[0] != key:
            contact = NameAddress(self.contact)
            if self.instance_id:
                contact = contact.with_param("+sip.instance", f'"<{self.instance_id}>"').with_param("reg-id", "1")
            self._written = (key, (str(self.aor.with_tag(self._tag)), str(self.aor), str(contact)))
        return self._written[1]

    def _send(self, expires: int) -> list[RegistrationCommand]:
        return [SendRegister(self._register_request(expires), self.next_hop())]

    # ------------------------------------------------------------ user actions

    def start(self, now: float) -> list[RegistrationCommand]:
        self._go("register")
        self.deadline = None
        return [*self._send(self.expires), RegistrationChanged(self.state)]

    def unregister(self, now: float) -> list[RegistrationCommand]:
        """RFC 3261 §10.2.2: a Contact with Expires 0 removes the binding."""
        was_bound = self.state in ("registered", "refreshing", "registering")
        self._go("unregister")
        self.deadline = None
        if not was_bound:
            return [RegistrationChanged(self.state)]
        return [*self._send(0), RegistrationChanged(self.state)]

    # ------------------------------------------------------------ events

    def on_response(self, response: Response, now: float) -> list[RegistrationCommand]:
        if self._pending is None or response.cseq.number != self._pending.cseq.number:
            return []  # a late answer to a request we already replaced
        status = response.status
        if status < 200:
            return []
        if status in (401, 407):
            return self._on_challenge(response, now)
        if status == 423:
            return self._on_interval_too_brief(response, now)
        if status == 400 and not self._resent_after_400:
            # a registrar that saved an earlier copy of this REGISTER may refuse a late copy
            # of it (Kamailio's usrloc takes the same Call-ID and CSeq as a retransmission for
            # 20 s only, then answers 400): once, the REGISTER goes again with the next CSeq
            self._resent_after_400 = True
            log.info("registration of %s: the registrar answered 400 %s; sending the REGISTER again",
                     self.aor.uri, response.reason)
            return self._send(self._expires_asked)
        self._resent_after_400 = False
        self._pending = None
        self._auth.answered()
        if 200 <= status < 300:
            return self._on_ok(response, now)
        if status == 403 and self._auth.sent_credentials:
            # registrars answer refused credentials with 403 as often as with a new 401
            return self._fail(status, f"authentication failed: {response.reason}", now, auth=True)
        if status in (403, 404) or (400 <= status < 500 and status not in (408, 480)):
            return self._fail(status, response.reason, now)
        return self._unreachable(now, status, response.reason)

    def _on_challenge(self, response: Response, now: float) -> list[RegistrationCommand]:
        try:
            self._auth.challenged(response)
        except AuthError as exc:
            return self._fail(response.status, str(exc), now, auth=True)
        if self.state in ("registering", "refreshing", "unregistering"):
            self._go("challenge")
        try:
            return self._send(self._expires_asked)
        except AuthError as exc:
            return self._fail(response.status, str(exc), now, auth=True)

    def _on_interval_too_brief(self, response: Response, now: float) -> list[RegistrationCommand]:
        """RFC 3261 §10.2.8: retry with the registrar's Min-Expires."""
        value = response.headers.get("Min-Expires") or ""
        if not value.strip().isdigit() or int(value) <= self._expires_asked:
            return self._fail(423, "interval too brief", now)
        self.expires = int(value)
        return self._send(self.expires)

    def _on_ok(self, response: Response, now: float) -> list[RegistrationCommand]:
        if self.state == "unregistering":
            self._go("ok")
            self.granted = None
            return [RegistrationChanged(self.state, response.status)]
        if self._learn_public(response):
            self._go("rebind")
            log.info("registration of %s: the registrar sees us at %s; registering that Contact",
                     self.aor.uri, self.public_address or f"{self.local.host}:{self.local.port}")
            return [*self._send(self._expires_asked), RegistrationChanged(self.state,
                                                                          public_address=self.public_address)]
        self._stale_contact = None
        self.granted = self._granted_expiry(response)
        self.failures = 0
        self._go("ok")
        # refresh before the binding lapses, at 85-90 % of the granted time (at least 1 s
        # early): spread out, so that many accounts registered together do not refresh in a burst
        lead = max(1.0, self.granted * _random.uniform(0.10, 0.15))
        self.deadline = now + max(1.0, self.granted - lead)
        return [RegistrationChanged(self.state, response.status, expires=self.granted,
                                    public_address=self.public_address)]

    def _learn_public(self, response: Response) -> bool:
        """RFC 3581 §4: the server "MUST add a 'received' parameter" and sets rport to the
        source port it saw: where our REGISTER came from after any NAT on the way. True when
        that differs from the Contact we registered (then ``public`` holds the new address).
        Only over UDP (a TCP or TLS source port is the connection's, not a listening one) and
        only when the Contact is not configured ([sip] contact with guess_hostname=0, [net]
        nat_address)."""
        if self.local.transport != "udp" or self.local.contact_host is not None:
            return False
        try:
            via = response.top_via
        except ParseError:
            return False
        if via.received is None and via.rport is None:
            return False
        seen = (via.received or via.host, via.rport or via.port or self.local.port)
        public = None if seen == (self.local.host, self.local.port) else seen
        if public == self.public:
            self._rebinds = 0
            return False
        if self._rebinds >= MAX_REBINDS:
            log.warning("registration of %s: the registrar's view of our address keeps changing (%s:%s); "
                        "keeping %s", self.aor.uri, seen[0], seen[1], self.contact)
            return False
        self._rebinds += 1
        self._stale_contact = self.contact
        self.public = public
        return True

    def _granted_expiry(self, response: Response) -> int:
        """RFC 3261 §10.2.4: the expiry of our Contact in the 200, else Expires, else ours."""
        for contact in response.contacts:
            uri = contact.uri
            if uri.matches(self.contact) or (
                isinstance(uri, SipUri) and uri.host == self.contact.host and uri.port == self.contact.port
            ):
                value = contact.param("expires")
                if value is not None and value.isdigit():
                    return int(value)
        if response.expires is not None:
            return response.expires
        return self._expires_asked

    def _fail(self, status: int, reason: str, now: float, *, auth: bool = False) -> list[RegistrationCommand]:
        self._pending = None
        self.last_reason, self.auth_failed = f"{reason} ({status})", auth
        self._auth.answered()
        if self.state == "unregistering":
            self._go("rejected")
            return [RegistrationChanged(self.state, status, reason)]
        self._go("rejected")
        self._auth.forget()
        self.failures += 1
        self.deadline = now + (AUTH_RETRY if auth else BACKOFF[-1] * 4)
        return [RegistrationChanged(self.state, status, reason)]

    def _unreachable(self, now: float, status: int | None, reason: str) -> list[RegistrationCommand]:
        self._pending = None
        self.last_reason, self.auth_failed = reason, False
        self._auth.answered()
        self._go("unreachable")
        if self.state == "unregistered":
            return [RegistrationChanged(self.state, status, reason)]
        delay = BACKOFF[min(self.failures, len(BACKOFF) - 1)]
        self.failures += 1
        self.deadline = now + delay
        return [RegistrationChanged(self.state, status, reason)]

    def on_timeout(self, request: Request, now: float) -> list[RegistrationCommand]:
        """Our REGISTER got no answer (Timer F) or could not be sent."""
        if self._pending is None or request.cseq.number != self._pending.cseq.number:
            return []
        return self._unreachable(now, None, "no response from the registrar")

    def next_deadline(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> list[RegistrationCommand]:
        if self.deadline is None or now < self.deadline:
            return []
        self.deadline = None
        if self.state == "registered":
            self._go("refresh")
            return [*self._send(self.expires), RegistrationChanged(self.state)]
        if self.state in ("retrying", "failed"):
            return self.start(now)
        return []
