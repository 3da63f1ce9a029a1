"""ICE in SDP (RFC 8839): a=ice-ufrag, a=ice-pwd, a=ice-lite and a=candidate as frozen values.

Pure: the candidates come from the network edge as data; this module only reads and writes them.
"""

from __future__ import annotations

from softphone.errors import SdpError
from softphone.frozen import dataclass
from softphone.sdp.model import Attribute, MediaDescription, SessionDescription

CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
_ICE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _ice_chars(value: str, what: str, low: int, high: int) -> str:
    # RFC 8839 §5.4: ice-ufrag = 4*256ice-char; ice-pwd = 22*256ice-char
    if not low <= len(value) <= high or not set(value) <= _ICE_CHARS:
        raise SdpError(f"{what} must be {low} to {high} characters of ALPHA / DIGIT / '+' / '/', got {value!r}")
    return value


def _number(text: str, what: str, high: int) -> int:
    if not text.isdigit() or int(text) > high:
        raise SdpError(f"a=candidate {what} {text!r} is not a number up to {high}")
    return int(text)


@dataclass(frozen=True)
class Candidate:
    """candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP priority SP
    connection-address SP port SP "typ" SP cand-type [SP rel-addr] [SP rel-port] *(SP extension)"""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: str) -> Candidate:
        parts = value.split()
        if len(parts) < 8:
            raise SdpError(f"a=candidate needs at least 8 fields, got {len(parts)}")
        foundation, component, transport, priority, address, port, typ, kind, *rest = parts
        if not 1 <= len(foundation) <= 32 or not set(foundation) <= _ICE_CHARS:
            raise SdpError(f"a=candidate foundation {foundation!r} is not 1 to 32 ice-chars")
        if typ != "typ":
            raise SdpError(f"a=candidate: expected 'typ' before the candidate type, got {typ!r}")
        if len(rest) % 2:
            raise SdpError("a=candidate: an extension attribute has no value")
        related_address: str | None = None
        related_port: int | None = None
        extensions: list[tuple[str, str]] = []
        for name, ext in zip(rest[::2], rest[1::2], strict=True):
            if name == "raddr":
                related_address = ext
            elif name == "rport":
                related_port = _number(ext, "rport", 65535)
            else:
                extensions.append((name, ext))
        return cls(
            foundation, _number(component, "component-id", 256), transport, _number(priority, "priority", 2**32 - 1),
            address, _number(port, "port", 65535), kind, related_address, related_port, tuple(extensions),
        )

    def __str__(self) -> str:
        text = (f"{self.foundation} {self.component} {self.transport} {self.priority} "
                f"{self.address} {self.port} typ {self.type}")
        if self.related_address is not None:
            text += f" raddr {self.related_address}"
        if self.related_port is not None:
            text += f" rport {self.related_port}"
        return text + "".join(f" {name} {value}" for name, value in self.extensions)

    @property
    def is_udp(self) -> bool:
        return self.transport.lower() == "udp"


@dataclass(frozen=True)
class IceDescription:
    """One media stream's ICE: credentials, candidates and whether the agent is ICE lite."""

    ufrag: str
    pwd: str
    candidates: tuple[Candidate, ...] = ()
    lite: bool = False

    def __post_init__(self) -> None:
        _ice_chars(self.ufrag, "a=ice-ufrag", 4, 256)
        _ice_chars(self.pwd, "a=ice-pwd", 22, 256)

    def attributes(self) -> list[Attribute]:
        """The media-level attributes (a=ice-lite is session-level: see ``session_attributes``)."""
        return [
            Attribute("ice-ufrag", self.ufrag),
            Attribute("ice-pwd", self.pwd),
            *(Attribute("candidate", str(c)) for c in self.candidates),
        ]

    def components(self) -> set[int]:
        return {c.component for c in self.candidates}


def has_ice(sdp: SessionDescription, index: int) -> bool:
    """Whether m-line ``index`` carries ICE credentials (at media or session level)."""
    m = sdp.media[index]
    return (m.attribute("ice-ufrag") or sdp.attribute("ice-ufrag")) is not None and bool(
        m.attributes_named("candidate")
    )


def ice_of(sdp: SessionDescription, index: int) -> IceDescription | None:
    """The ICE description of m-line ``index``, or None when the peer does not do ICE there.

    RFC 8839 §5.4: "If the "ice-pwd" and "ice-ufrag" attributes are specified at the session level,
    they apply to all "m=" sections unless overridden at media level." SdpError when present but
    malformed.
    """
    if index >= len(sdp.media) or not has_ice(sdp, index):
        return None
    m: MediaDescription = sdp.media[index]
    ufrag = m.attribute("ice-ufrag") or sdp.attribute("ice-ufrag") or ""
    pwd = m.attribute("ice-pwd") or sdp.attribute("ice-pwd")
    if pwd is None:
        raise SdpError(f"m-line {index}: a=ice-ufrag without a=ice-pwd")
    candidates = tuple(Candidate.parse(value) for value in m.attributes_named("candidate"))
    return IceDescription(ufrag, pwd, candidates, lite=sdp.attribute("ice-lite") is not None)


def default_candidate(candidates: tuple[Candidate, ...], component: int = 1) -> Candidate | None:
    """The candidate to put in c= and m= (RFC 8445 §5.1.4: relayed first, then server
    reflexive, then host, as the most likely to work with a peer that does not do ICE)."""
    order = {"relay": 0, "srflx": 1, "prflx": 2, "host": 3}
    found = [c for c in candidates if c.component == component and c.is_udp]
    return min(found, key=lambda c: (order.get(c.type, 4), -c.priority), default=None)
