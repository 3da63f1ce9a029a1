"""What a user agent server checks before it processes a request (RFC 3261 §8.2), without I/O.

``RequestInspector.inspect(request, now)`` runs the checks in the order §8.2 gives —
method (405/501), Request-URI (416/404), merged requests (482), Require (420), body
(415), Accept (406) — and returns the refusal (status and the headers the RFC asks
for), or None when the request may be processed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from softphone.frozen import dataclass
from softphone.sip.message import Request
from softphone.sip.uri import SipUri, Uri, is_ip_address

# RFC 3261 §8.2.1: methods we know of (a request with another method gets 501)
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY",
     "REFER", "MESSAGE", "PUBLISH"}
)
ACCEPT_ENCODING = "identity"
ACCEPT_LANGUAGE = "en"

Refusal = tuple[int, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class _Seen:
    branch: str | None
    expires: float


class RequestInspector:
    """The §8.2 checks of one user agent: what it supports, and which requests it has seen."""

    def __init__(
        self,
        *,
        allow: str,
        accept: str,
        extensions: Iterable[str] = (),
        local_hosts: Iterable[str] = (),
        domains: Iterable[str] = (),
        memory: float = 32.0,
        bodies: Mapping[str, str] | None = None,
    ) -> None:
        self.allow = allow  # the Allow header: the methods we support
        self.supported = frozenset(m.strip() for m in allow.split(","))
        self.accept = accept  # the body type we understand (and answer INVITEs with)
        self.bodies = dict(bodies or {})  # method -> the other body type a request of that method may carry
        self.extensions = frozenset(e.lower() for e in extensions)  # Require option tags we implement
        # the hosts a Request-URI may name to be ours; IP literals are all ours when empty
        # (a phone listening on every interface cannot cheaply tell its own addresses)
        self.local_hosts = {h.lower() for h in local_hosts}
        self.domains = {d.lower() for d in domains} | {"localhost"}
        self.memory = memory  # how long a request is remembered for merge detection (64*T1)
        self._seen: dict[tuple[str, str, int, str], _Seen] = {}
        self._order: deque[tuple[tuple[str, str, int, str], float]] = deque()

    def accept_headers(self) -> tuple[tuple[str, str], ...]:
        types = ", ".join(dict.fromkeys([self.accept, *self.bodies.values()]))
        return (("Accept", types), ("Accept-Encoding", ACCEPT_ENCODING), ("Accept-Language", ACCEPT_LANGUAGE))

    def inspect(self, request: Request, now: float) -> Refusal | None:
        method = request.method
        if method not in KNOWN_METHODS:
            # §8.2.1; §21.5.2: 501 "The server does not support the functionality required
            # to fulfill the request ... when the UAS does not recognize the request method"
            return 501, (("Allow", self.allow),)
        if method not in self.supported:
            # §8.2.1: "the UAS MUST generate a 405 (Method Not Allowed) response ...
            # The UAS MUST also add an Allow header field to the 405"
            return 405, (("Allow", self.allow),)
        in_dialog = request.to_addr.tag is not None
        uri = request.uri
        if uri.scheme not in ("sip", "sips"):
            # §8.2.2.1: "If the Request-URI uses a scheme not supported by the UAS, it
            # SHOULD reject the request with a 416 (Unsupported URI Scheme) response."
            return 416, ()
        if not in_dialog and not self.is_ours(uri):
            # §8.2.2.1: "If the Request-URI does not identify an address that the UAS is
            # willing to accept requests for, it SHOULD reject the request with a 404"
            return 404, ()
        if not in_dialog and self._merged(request, now):
            # §8.2.2.2: "If the request has no tag in the To header field, the UAS core
            # MUST check the request against ongoing transactions. If the From tag,
            # Call-ID, and CSeq exactly match those associated with an ongoing
            # transaction, but the request does not match that transaction ... the UAS
            # core SHOULD generate a 482 (Loop Detected) response"
            return 482, ()
        if method != "CANCEL":
            # §8.2.2.3: "the UAS MUST ... respond by generating a response with a status
            # code of 420 (Bad Extension). The UAS MUST add an Unsupported header field"
            tags = option_tags(request.headers.get_all("Require"))
            unsupported = [t for t in tags if t.lower() not in self.extensions]
            if unsupported:
                return 420, (("Unsupported", ", ".join(unsupported)),)
        if request.body and method != "CANCEL" and not self._understood(request):
            # §8.2.3: "If a UAS does not understand the body ... it MUST reject the request
            # with a 415 (Unsupported Media Type) response. The response MUST contain an
            # Accept header field listing the types of all bodies it understands"
            return 415, self.accept_headers()
        if method == "INVITE" and not accepts(request, self.accept):
            # §21.4.7: our answer is a body of our one type; a caller that takes no such
            # body cannot have it
            return 406, (("Accept", self.accept),)
        return None

    def is_ours(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower().strip("[]")
        if not is_ip_address(host):
            return host in self.domains or host in self.local_hosts
        return not self.local_hosts or host in self.local_hosts

    def _merged(self, request: Request, now: float) -> bool:
        seen, order = self._seen, self._order
        while order and order[0][1] <= now:
            key, expires = order.popleft()
            if key in seen and seen[key].expires == expires:
                del seen[key]
        tag = request.from_addr.tag
        if tag is None:
            return False
        key = (tag, request.call_id, request.cseq.number, request.method)
        branch = request.top_via.branch
        previous = seen.get(key)
        if previous is not None:
            return previous.branch != branch
        expires = now + self.memory
        seen[key] = _Seen(branch, expires)
        order.append((key, expires))
        return False

    def _understood(self, request: Request) -> bool:
        content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type not in (self.accept, self.bodies.get(request.method)):
            return False
        encodings = option_tags(request.headers.get_all("Content-Encoding"))
        return all(e.lower() == ACCEPT_ENCODING for e in encodings)


def option_tags(values: list[str]) -> list[str]:
    """The comma-separated items of every value of a header."""
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def accepts(request: Request, media_type: str) -> bool:
    """RFC 3261 §20.1: no Accept means application/sdp; an empty one accepts nothing."""
    if "Accept" not in request.headers:
        return True
    values = request.headers.get_all("Accept")
    kind = media_type.split("/", 1)[0]
    for item in option_tags(values):
        name, _, params = item.partition(";")
        if name.strip().lower() in (media_type, f"{kind}/*", "*/*") and not _q_zero(params):
            return True
    return False


def _q_zero(params: str) -> bool:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False
