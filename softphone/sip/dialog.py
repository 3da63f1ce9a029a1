"""SIP dialogs (RFC 3261 §12): identifiers, route set, CSeq numbering, in-dialog requests."""

from __future__ import annotations

import string
from dataclasses import field

from softphone.frozen import dataclass
from softphone.sip.headers import NameAddress, Via
from softphone.sip.message import Headers, Request, Response
from softphone.sip.randomness import RANDOM
from softphone.sip.uri import SipUri

_TOKEN_CHARS = string.ascii_letters + string.digits

#: RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this
#: specification MUST always begin with the characters "z9hG4bK"."
MAGIC_COOKIE = "z9hG4bK"


#: each byte value -> a letter or digit (the byte modulo 62), for ``bytes.translate``
_TOKEN_BYTES = bytes(ord(_TOKEN_CHARS[b % len(_TOKEN_CHARS)]) for b in range(256))


def random_token(length: int = 10) -> str:
    """``length`` letters and digits from the OS's random source, mapped in one go."""
    return RANDOM.randbytes(length).translate(_TOKEN_BYTES).decode("ascii")


def new_branch() -> str:
    return MAGIC_COOKIE + random_token(16)


@dataclass(frozen=True)
class LocalAddress:
    """How we appear on the wire for one transport: sent-by and Contact host/port."""

    transport: str  # "udp" or "tcp"
    host: str
    port: int
    contact_host: str | None = None  # a Contact host other than ``host`` ([sip] guess_hostname=0)
    contact_port: int | None = None
    media_host: str | None = None  # the SDP c= address when not ``host`` (a public address behind a NAT)
    secure: bool = False  # over TLS for a sips: Request-URI or Route: a sips: Contact

    @property
    def sdp_host(self) -> str:
        return self.media_host or self.host

    @property
    def advertised(self) -> str:
        """The address peers are told to reach us at (Contact host and port), as "host:port"."""
        uri = self.contact_uri(None)
        host = f"[{uri.host}]" if ":" in uri.host else uri.host
        return host if uri.port is None else f"{host}:{uri.port}"

    def via(self, branch: str | None = None) -> Via:
        # RFC 3581 §3: "A client, compliant to this specification ... MUST insert the
        # 'rport' parameter, with no value".
        return Via(self.transport.upper(), self.host, self.port, (("branch", branch or new_branch()), ("rport", None)))

    def contact_uri(self, user: str | None) -> SipUri:
        params: tuple[tuple[str, str | None], ...] = ()
        host = self.contact_host or self.host
        port = self.contact_port if self.contact_host else self.port
        if self.transport == "tls" and self.secure:
            # RFC 3261 §8.1.1.8: "If the Request-URI or top Route header field value contains
            # a SIPS URI, the Contact header field MUST contain a SIPS URI as well". A sip:
            # request over TLS keeps a sip: Contact with ;transport=tls, as linphone writes it:
            # a sips: one would ask every hop back to us to be TLS (RFC 5630 §4.1).
            return SipUri("sips", user, None, host, port, params)
        if self.transport != "udp":
            params = (("transport", self.transport),)
        return SipUri("sip", user, None, host, port, params)


@dataclass
class Dialog:
    """The state RFC 3261 §12 keeps for a dialog, from either side."""

    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: NameAddress  # our From (UAC) / To (UAS) without tag
    remote_uri: NameAddress
    remote_target: SipUri
    route_set: list[NameAddress] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """RFC 3261 §12.1.2: the route set is the Record-Route list in reverse order."""
        contacts = response.contacts
        # RFC 3261 §8.1.1.8: the Contact of a dialog "MUST be a SIP or SIPS URI"
        target = contacts[0].uri.as_sip() if contacts else request.uri.as_sip()
        return cls(
            call_id=request.call_id,
            local_tag=request.from_addr.tag or "",
            remote_tag=response.to_addr.tag,
            local_uri=request.from_addr,
            remote_uri=response.to_addr,
            remote_target=target,
            route_set=list(reversed(response.record_routes)),
            local_seq=request.cseq.number,
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """RFC 3261 §12.1.1: the route set is the Record-Route list in order."""
        contacts = request.contacts
        target = contacts[0].uri.as_sip() if contacts else request.from_addr.uri.as_sip()
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_addr.tag,
            local_uri=request.to_addr.with_tag(local_tag),
            remote_uri=request.from_addr,
            remote_target=target,
            route_set=list(request.record_routes),
            local_seq=RANDOM.one_to(20),
            remote_seq=request.cseq.number,
        )

    def update_from_response(self, response: Response) -> None:
        """A 2xx (or 1xx with tag) may refresh the remote target; the remote tag is learnt."""
        if self.remote_tag is None:
            self.remote_tag = response.to_addr.tag
            self.remote_uri = response.to_addr
        if response.contacts:
            self.remote_target = response.contacts[0].uri.as_sip()

    def matches(self, message: Request | Response, *, incoming: bool = True) -> bool:
        if message.call_id != self.call_id:
            return False
        if isinstance(message, Request) and incoming:
            return message.to_addr.tag == self.local_tag and message.from_addr.tag == self.remote_tag
        return message.from_addr.tag == self.local_tag

    def accept_remote_seq(self, request: Request) -> bool:
        """RFC 3261 §12.2.2: "If the remote sequence number is not empty, but the sequence
        number of the request is lower than the remote sequence number, the request is out
        of order and MUST be rejected with a 500 (Server Internal Error) response."
        """
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def next_hop(self) -> SipUri:
        """Where an in-dialog request is sent: the first route, else the remote target."""
        if self.route_set:
            return self.route_set[0].uri.as_sip()
        return self.remote_target

    def create_request(
        self,
        method: str,
        local: LocalAddress,
        contact: SipUri | None,
        *,
        user_agent: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Request:
        """Build an in-dialog request (RFC 3261 §12.2.1.1); ``extra`` headers go after the standard ones."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        request_uri, routes = self._routing()
        remote = self.remote_uri if self.remote_tag is None else self.remote_uri.with_tag(self.remote_tag)
        pairs: list[tuple[str, str]] = [
            ("Via", str(local.via())),
            ("Max-Forwards", "70"),
            ("From", str(self.local_uri.with_tag(self.local_tag))),
            ("To", str(remote)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        pairs += [("Route", str(r)) for r in routes]
        if contact is not None and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            # a NOTIFY is a target refresh request of its dialog and names us (RFC 6665)
            pairs.append(("Contact", f"<{contact}>"))
        if user_agent:
            pairs.append(("User-Agent", user_agent))
        pairs += extra
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        return Request(method, request_uri, Headers.of(*pairs), body)

    def _routing(self) -> tuple[SipUri, list[NameAddress]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri.as_sip()
        if first.has_param("lr"):
            return self.remote_target, list(self.route_set)
        # RFC 3261 §12.2.1.1 strict routing: the first route becomes the Request-URI
        # and the remote target goes to the end of the Route header field.
        uri = first.without_params("method", "maddr", "ttl", "transport", "lr")
        return uri, [*self.route_set[1:], NameAddress(self.remote_target)]


def ack_for_2xx(
    dialog: Dialog,
    invite: Request,
    local: LocalAddress,
    user_agent: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """RFC 3261 §13.2.2.4: "The sequence number of the CSeq header field MUST be the
    same as the INVITE being acknowledged, but the CSeq method MUST be ACK." """
    ack = dialog.create_request(
        "ACK", local, None, user_agent=user_agent, cseq=invite.cseq.number, body=body, content_type=content_type
    )
    return ack


def cancel_for(invite: Request) -> Request:
    """RFC 3261 §9.1: the CANCEL copies Request-URI, Call-ID, To, the CSeq number and
    From of the request, with a single Via equal to the request's top Via."""
    pairs: list[tuple[str, str]] = [
        ("Via", str(invite.top_via)),
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", invite.headers.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
    ]
    pairs += [("Route", v) for v in invite.headers.get_all("Route")]
    return Request("CANCEL", invite.uri, Headers.of(*pairs))
