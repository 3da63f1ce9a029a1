"""REFER (RFC 3515) and the NOTIFYs of its implicit subscription (RFC 6665), without I/O:
the one Refer-To a REFER must carry, the Event and Subscription-State headers, and the
message/sipfrag bodies that report how the referred call goes."""

from __future__ import annotations

import re
from dataclasses import replace

from softphone.errors import ParseError
from softphone.frozen import dataclass
from softphone.sip.headers import NameAddress, parse_params
from softphone.sip.message import Request
from softphone.sip.uri import SipUri, get_param, unescape

REFER_EVENT = "refer"
SIPFRAG = "message/sipfrag"
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"
SUBSCRIPTION_STATES = ("active", "pending", "terminated")
# the headers a URI may carry into the request made from it (RFC 3261 §19.1.5): a Refer-To
# names the call to replace (RFC 3891 attended transfer); anything else is ignored
URI_HEADERS = {"replaces": "Replaces"}

_STATUS_LINE = re.compile(r"SIP/2\.0[ \t]+([1-6]\d\d)(?:[ \t]+([^\r\n]*))?", re.IGNORECASE)


def refer_target(request: Request) -> SipUri:
    """The SIP URI a REFER asks us to call; ParseError (answered 400) when there is none.

    RFC 3515 §2.4.1: "A REFER request MUST contain exactly one Refer-To header field value."
    """
    values = request.headers.get_all("Refer-To")
    if not values:
        raise ParseError("missing Refer-To")
    if len(values) > 1:
        raise ParseError("more than one Refer-To")
    uri = NameAddress.parse(values[0]).uri
    if not isinstance(uri, SipUri) or uri.scheme not in ("sip", "sips"):
        raise ParseError(f"Refer-To is not a SIP URI: {str(uri)[:80]}")
    method = uri.param("method")
    if method is not None and method.upper() != "INVITE":
        # we only ever act on a REFER by placing a call
        raise ParseError(f"Refer-To asks for {method[:20]}, not INVITE")
    return uri


def embedded_headers(uri: SipUri) -> tuple[SipUri, tuple[tuple[str, str], ...]]:
    """A URI without its ``?headers`` and the ones a request made from it takes along.

    RFC 3261 §19.1.1, headers: "Header fields to be included in a request constructed
    from the URI." Only the headers of ``URI_HEADERS`` are taken.
    """
    if not uri.headers:
        return uri, ()
    taken = tuple((URI_HEADERS[n.lower()], unescape(v)) for n, v in uri.headers if n.lower() in URI_HEADERS)
    return replace(uri, headers=()), taken


def event_package(value: str | None) -> tuple[str, str | None]:
    """The package and ``id`` of an Event header: ``refer;id=93`` -> ("refer", "93")."""
    if not value:
        return "", None
    package, _, params = value.partition(";")
    return package.strip().lower(), get_param(parse_params(params), "id")


@dataclass(frozen=True)
class SubscriptionState:
    """A Subscription-State header (RFC 6665 §8.2.3): ``active;expires=60``,
    ``terminated;reason=noresource``."""

    state: str
    reason: str | None = None
    expires: int | None = None

    @classmethod
    def parse(cls, value: str | None) -> SubscriptionState:
        # RFC 3265 §3.2.1: "NOTIFY requests MUST contain a "Subscription-State" header with
        # a value of "active", "pending", or "terminated"."
        if not value:
            raise ParseError("missing Subscription-State")
        state, _, rest = value.partition(";")
        state = state.strip().lower()
        if state not in SUBSCRIPTION_STATES:
            raise ParseError(f"bad Subscription-State: {value[:60]!r}")
        params = parse_params(";" + rest) if rest else ()
        expires = get_param(params, "expires")
        if expires is not None and not expires.isdigit():
            raise ParseError(f"bad Subscription-State expires: {value[:60]!r}")
        return cls(state, get_param(params, "reason"), int(expires) if expires is not None else None)

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def __str__(self) -> str:
        text = self.state
        if self.reason is not None:
            text += f";reason={self.reason}"
        if self.expires is not None:
            text += f";expires={self.expires}"
        return text


@dataclass(frozen=True)
class StatusFragment:
    """The status line of a message/sipfrag body (RFC 3420) that reports a referred call."""

    status: int
    reason: str

    @classmethod
    def parse(cls, body: bytes) -> StatusFragment:
        """RFC 3515 §2.4.5: "The body of a NOTIFY MUST begin with a SIP Response Status-Line"."""
        first = body.lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        match = _STATUS_LINE.fullmatch(first)
        if match is None:
            raise ParseError(f"not a SIP status line: {first[:60]!r}")
        return cls(int(match.group(1)), (match.group(2) or "").strip())

    def __bytes__(self) -> bytes:
        return f"SIP/2.0 {self.status} {self.reason}\r\n".encode()
