"""The offer/answer model (RFC 3264) over SessionDescription values.

Codecs come in as plain CodecSpec data; the result of a negotiation is one
NegotiatedStream per m-line, which is all the media layer needs to start RTP.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from itertools import chain

from softphone.errors import SdpError
from softphone.frozen import dataclass
from softphone.sdp.crypto import CryptoAttribute, SrtpKeys, answer_crypto, answer_keys, is_secure_profile, offer_profile
from softphone.sdp.ice import IceDescription, ice_of
from softphone.sdp.model import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    parse_fmtp,
)

log = logging.getLogger(__name__)

TELEPHONE_EVENT = "telephone-event"
SUPPORTED_MEDIA = ("audio", "video")
SUPPORTED_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
FIRST_DYNAMIC_PT = 96


@dataclass(frozen=True)
class CodecSpec:
    """One codec as it appears in an rtpmap, plus what we offer for it."""

    name: str
    clock_rate: int
    channels: int = 1
    payload_type: int | None = None
    fmtp: str | None = None
    rtcp_fb: tuple[str, ...] = ()

    @property
    def is_telephone_event(self) -> bool:
        return self.name.lower() == TELEPHONE_EVENT

    def rtpmap_value(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{suffix}"


@dataclass(frozen=True)
class StreamConfig:
    """What we want for one m-line of our kind."""

    kind: str
    port: int
    codecs: tuple[CodecSpec, ...]
    direction: str = "sendrecv"
    rtcp_port: int | None = None
    ptime: int | None = None
    bandwidth_kbps: int | None = None
    rtcp_mux: bool = False
    crypto: tuple[CryptoAttribute, ...] = ()  # SDES (RFC 4568): our key for each suite, preferred first
    crypto_mandatory: bool = False  # offer RTP/SAVP; refuse a peer without SRTP
    ice: IceDescription | None = None  # our ICE credentials and candidates (RFC 8839), offered and answered


@dataclass(frozen=True)
class SessionConfig:
    """Our side of a session: media address and streams in m-line order."""

    address: str
    streams: tuple[StreamConfig, ...]
    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    session_name: str = "softphone"


@dataclass(frozen=True)
class NegotiatedStream:
    """The outcome for one m-line.

    Each side sends with the payload type numbers the other side advertised and
    receives with its own: ``send_payload_type`` and ``recv_payload_type``.
    """

    index: int
    kind: str
    declined: bool
    local_port: int
    remote_address: str | None
    remote_port: int
    remote_rtcp: tuple[str, int] | None
    codec: CodecSpec | None
    payload_type: int | None
    send_payload_type: int | None
    recv_payload_type: int | None
    telephone_event_pt: int | None
    direction: str
    ptime: int | None
    rtcp_mux: bool
    remote_bandwidth_kbps: int | None
    remote_fmtp: str | None
    rtcp_fb: tuple[str, ...]
    recv_telephone_event_pt: int | None = None  # the PT the peer sends events with (ours)
    srtp: SrtpKeys | None = None  # SDES keys (RFC 4568) when the stream is SRTP
    remote_ice: IceDescription | None = None  # the peer's ICE, when both sides do ICE on this stream


# -- helpers ---------------------------------------------------------------

_SEND_RECV = {
    "sendrecv": (True, True),
    "sendonly": (True, False),
    "recvonly": (False, True),
    "inactive": (False, False),
}


def _direction_of(send: bool, recv: bool) -> str:
    for name, flags in _SEND_RECV.items():
        if flags == (send, recv):
            return name
    raise AssertionError("unreachable")


def _check_direction(direction: str) -> tuple[bool, bool]:
    try:
        return _SEND_RECV[direction]
    except KeyError:
        raise SdpError(f"unknown direction {direction!r}") from None


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _is_unsupported_proto(proto: str) -> bool:
    return proto.upper() not in SUPPORTED_PROTOS


def _codec_matches(
    spec: CodecSpec, rtpmap: tuple[str, int, int] | None, fmtp: str | None, spec_fmtp: str | None
) -> bool:
    """Same encoding name (any case), clock rate and channels; H.264 packetization-mode too."""
    if rtpmap is None:
        return False
    name, clock, channels = rtpmap
    if name.lower() != spec.name.lower() or clock != spec.clock_rate or channels != spec.channels:
        return False
    if name.lower() == "h264":
        # RFC 6184 §8.1: packetization-mode absent means 0; the modes must agree.
        ours = parse_fmtp(spec_fmtp).get("packetization-mode", "0")
        theirs = parse_fmtp(fmtp).get("packetization-mode", "0")
        return ours == theirs
    return True


def _h264_answer_fmtp(ours: str | None, offered: str | None) -> str | None:
    """Our fmtp with the offer's profile-level-id (any profile is accepted)."""
    offered_params = parse_fmtp(offered)
    params = parse_fmtp(ours)
    for key in ("profile-level-id", "packetization-mode"):
        if key in offered_params:
            params[key] = offered_params[key]
    if not params:
        return None
    return ";".join(f"{k}={v}" if v else k for k, v in params.items())


def _common_fb(ours: tuple[str, ...], theirs: list[str]) -> tuple[str, ...]:
    lowered = {t.lower() for t in theirs}
    return tuple(fb for fb in ours if fb.lower() in lowered)


def _remote_rtcp(m: MediaDescription, address: str | None, mux: bool) -> tuple[str, int] | None:
    if address is None:
        return None
    if mux:
        return address, m.port
    rtcp = m.rtcp
    if rtcp is not None:
        return rtcp[1] or address, rtcp[0]
    return address, m.port + 1


def _media_attributes(stream: StreamConfig, address: str, direction: str) -> list[Attribute]:
    attrs: list[Attribute] = []
    if stream.ptime is not None:
        attrs.append(Attribute("ptime", str(stream.ptime)))
    if stream.rtcp_port is not None:
        attrs.append(Attribute("rtcp", f"{stream.rtcp_port} IN {_addrtype(address)} {address}"))
    attrs.append(Attribute(direction))
    return attrs


def _codec_attributes(pt: int, codec: CodecSpec, fmtp: str | None, fb: tuple[str, ...]) -> list[Attribute]:
    attrs = [Attribute("rtpmap", f"{pt} {codec.rtpmap_value()}")]
    if fmtp:
        attrs.append(Attribute("fmtp", f"{pt} {fmtp}"))
    attrs.extend(Attribute("rtcp-fb", f"{pt} {value}") for value in fb)
    return attrs


def _session(cfg: SessionConfig, media: list[MediaDescription]) -> SessionDescription:
    addrtype = _addrtype(cfg.address)
    return SessionDescription(
        origin=Origin(
            cfg.username, str(cfg.session_id), str(cfg.session_version), "IN", addrtype, cfg.address
        ),
        session_name=cfg.session_name,
        connection=Connection("IN", addrtype, cfg.address),
        media=tuple(media),
    )


def _bandwidths(stream: StreamConfig) -> tuple[tuple[str, int], ...]:
    return (("AS", stream.bandwidth_kbps),) if stream.bandwidth_kbps else ()


def _declined(index: int, m: MediaDescription, local_port: int = 0) -> NegotiatedStream:
    return NegotiatedStream(
        index=index, kind=m.media, declined=True, local_port=local_port, remote_address=None,
        remote_port=0, remote_rtcp=None, codec=None, payload_type=None, send_payload_type=None,
        recv_payload_type=None, telephone_event_pt=None, direction="inactive", ptime=None,
        rtcp_mux=False, remote_bandwidth_kbps=None, remote_fmtp=None, rtcp_fb=(),
    )


def _remote_address(sdp: SessionDescription, index: int) -> str | None:
    connection = sdp.connection_for(index)
    return connection.host if connection is not None else None


def _remote_can_receive(sdp: SessionDescription, index: int) -> bool:
    """RFC 3264 §8.4: an old-style hold sets the connection address to 0.0.0.0."""
    return _remote_address(sdp, index) != "0.0.0.0"


# -- offer -----------------------------------------------------------------


def _assign_payload_types(codecs: tuple[CodecSpec, ...]) -> list[tuple[int, CodecSpec]]:
    """Static types keep theirs; dynamic ones get 96 upward in codec order."""
    used = {c.payload_type for c in codecs if c.payload_type is not None}
    next_pt = FIRST_DYNAMIC_PT
    out: list[tuple[int, CodecSpec]] = []
    for codec in codecs:
        pt = codec.payload_type
        if pt is None:
            while next_pt in used:
                next_pt += 1
            if next_pt > 127:
                raise SdpError("too many dynamic payload types")
            pt = next_pt
            used.add(pt)
        out.append((pt, replace(codec, payload_type=pt)))
    return out


def _offer_media(stream: StreamConfig, address: str) -> MediaDescription:
    _check_direction(stream.direction)
    numbered = _assign_payload_types(stream.codecs)
    formats = tuple(str(pt) for pt, _ in numbered) or ("0",)
    if stream.port == 0:
        return MediaDescription(stream.kind, 0, "RTP/AVP", formats)
    attrs: list[Attribute] = [Attribute("crypto", str(c)) for c in stream.crypto]
    for pt, codec in numbered:
        attrs.extend(_codec_attributes(pt, codec, codec.fmtp, codec.rtcp_fb))
    if stream.rtcp_mux:
        attrs.append(Attribute("rtcp-mux"))
    if stream.ice is not None:
        attrs.extend(stream.ice.attributes())
    attrs.extend(_media_attributes(stream, address, stream.direction))
    return MediaDescription(
        stream.kind, stream.port, offer_profile("RTP/AVP", stream.crypto, stream.crypto_mandatory), formats,
        bandwidths=_bandwidths(stream), attributes=tuple(attrs),
    )


def build_offer(cfg: SessionConfig) -> SessionDescription:
    """An offer with one m-line per configured stream (port 0 for unwanted ones)."""
    return _session(cfg, [_offer_media(s, cfg.address) for s in cfg.streams])


# -- answer ----------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    pt: int
    codec: CodecSpec       # ours, with the answer's fmtp
    remote_fmtp: str | None
    rtcp_fb: tuple[str, ...]


@dataclass(frozen=True)
class _Common:
    """What an m-line's codecs and ours give an answer: the media codecs in our order, the
    telephone-event (if any), and the answer's formats and codec attributes for them."""

    media: tuple[_Match, ...]
    event: _Match | None
    formats: tuple[str, ...]
    attributes: tuple[Attribute, ...]

    @classmethod
    def of(cls, found: tuple[_Match, ...]) -> _Common:
        media, event = _pick(found)
        listed = media + ([event] if event else [])
        attrs = (_codec_attributes(match.pt, match.codec, match.codec.fmtp, match.rtcp_fb) for match in listed)
        return cls(tuple(media), event, tuple(str(match.pt) for match in listed), tuple(chain.from_iterable(attrs)))


def _find_common(m: MediaDescription, ours: tuple[CodecSpec, ...]) -> _Common:
    """Common codecs in our preference order, numbered as in the offer; worked out once for
    each set of offered codecs and of ours (a peer offers the same in each of its calls)."""
    key = (m.codec_lines, id(ours))
    known = _COMMON.get(key)
    if known is not None and known[0] is ours:  # the same tuple, not one that took its id
        return known[1]
    found = _Common.of(_match_codecs(m, ours))
    if len(_COMMON) >= _COMMON_KEPT:
        del _COMMON[next(iter(_COMMON))]  # the oldest
    _COMMON[key] = (ours, found)
    return found


_COMMON: dict[tuple[object, ...], tuple[tuple[CodecSpec, ...], _Common]] = {}
_COMMON_KEPT = 64


def _match_codecs(m: MediaDescription, ours: tuple[CodecSpec, ...]) -> tuple[_Match, ...]:
    """RFC 3264 §6.1: "if a particular codec was referenced with a specific payload type
    number in the offer, that same payload type number SHOULD be used for that codec
    in the answer."
    """
    found: list[_Match] = []
    taken: set[int] = set()
    offered = []
    for pt in m.payload_types:
        rtpmap = m.rtpmap(pt)
        if rtpmap is not None:
            offered.append((pt, rtpmap[0].lower(), rtpmap))
    for codec in ours:
        name = codec.name.lower()
        for pt, offered_name, rtpmap in offered:
            if offered_name != name or pt in taken:
                continue
            offered_fmtp = m.fmtp(pt)
            if not _codec_matches(codec, rtpmap, offered_fmtp, codec.fmtp):
                continue
            fmtp = codec.fmtp
            if name == "h264":
                fmtp = _h264_answer_fmtp(codec.fmtp, offered_fmtp)
            fb = _common_fb(codec.rtcp_fb, m.rtcp_fb(pt)) if codec.rtcp_fb else ()
            answered = CodecSpec(codec.name, codec.clock_rate, codec.channels, pt, fmtp, codec.rtcp_fb)
            found.append(_Match(pt, answered, offered_fmtp, fb))
            taken.add(pt)
            break
    return tuple(found)


def _pick(common: tuple[_Match, ...]) -> tuple[list[_Match], _Match | None]:
    """The media codecs and the first telephone-event (only when a media codec exists)."""
    media = [c for c in common if not c.codec.is_telephone_event]
    events = [c for c in common if c.codec.is_telephone_event]
    if not media:
        return [], None
    same_rate = [e for e in events if e.codec.clock_rate == media[0].codec.clock_rate]
    candidates = same_rate or events
    return media, candidates[0] if candidates else None


def _answer_direction(offer: SessionDescription, index: int, ours: str) -> str:
    offer_send, offer_recv = _check_direction(offer.media_direction(index))
    if not _remote_can_receive(offer, index):
        offer_recv = False
    our_send, our_recv = _check_direction(ours)
    # RFC 3264 §6.1: "If a stream is offered as sendonly, the corresponding stream MUST
    # be marked as recvonly or inactive in the answer. If a media stream is listed as
    # recvonly in the offer, the answer MUST be marked as sendonly or inactive in the
    # answer. ... If an offered media stream is listed as inactive, it MUST be marked
    # as inactive in the answer."
    return _direction_of(our_send and offer_recv, our_recv and offer_send)


def _why_not(m: MediaDescription, stream: StreamConfig | None) -> str | None:
    if m.port == 0:
        return "port 0 in the offer"
    if m.media not in SUPPORTED_MEDIA:
        return "unsupported media type"
    if _is_unsupported_proto(m.proto):
        return f"unsupported transport {m.proto}"
    if stream is None or stream.port == 0:
        return "not enabled here"
    return None


def _reject(m: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: "An offered stream MAY be rejected in the answer, for any reason. If a
    # stream is rejected, the offerer and answerer MUST NOT generate media (or RTCP
    # packets) for that stream. To reject an offered stream, the port number in the
    # corresponding stream in the answer MUST be set to zero. Any media formats listed
    # are ignored. At least one MUST be present, as specified by SDP."
    return MediaDescription(m.media, 0, m.proto, m.formats or ("0",))


def _accept(
    offer: SessionDescription, index: int, stream: StreamConfig, cfg: SessionConfig
) -> tuple[MediaDescription, NegotiatedStream] | str:
    m = offer.media[index]
    common = _find_common(m, stream.codecs)
    media, event = common.media, common.event
    if not media:
        offered = [m.rtpmap(pt) for pt in m.payload_types]
        names = ", ".join(f"{r[0]}/{r[1]}" for r in offered if r) or " ".join(m.formats)
        return f"no common codec (offered {names})"
    keys = answer_crypto(m.attributes_named("crypto"), m.proto, stream.crypto, stream.crypto_mandatory)
    if isinstance(keys, str):
        return keys
    direction = _answer_direction(offer, index, stream.direction)
    attrs: list[Attribute] = [Attribute("crypto", str(keys[0]))] if keys[0] is not None else []
    attrs.extend(common.attributes)
    mux = m.rtcp_mux and stream.rtcp_mux
    if mux:
        attrs.append(Attribute("rtcp-mux"))
    remote_ice = ice_of(offer, index) if stream.ice is not None else None
    if remote_ice is not None and stream.ice is not None:
        attrs.extend(stream.ice.attributes())
    attrs.extend(_media_attributes(stream, cfg.address, direction))
    answer_m = MediaDescription(
        m.media, stream.port, m.proto, common.formats,
        bandwidths=_bandwidths(stream), attributes=tuple(attrs),
    )
    best = media[0]
    address = _remote_address(offer, index)
    result = NegotiatedStream(
        index=index, kind=m.media, declined=False, local_port=stream.port,
        remote_address=address, remote_port=m.port,
        remote_rtcp=_remote_rtcp(m, address, mux), codec=best.codec,
        payload_type=best.pt, send_payload_type=best.pt, recv_payload_type=best.pt,
        telephone_event_pt=event.pt if event else None, direction=direction,
        recv_telephone_event_pt=event.pt if event else None,
        ptime=m.ptime or stream.ptime, rtcp_mux=mux,
        remote_bandwidth_kbps=offer.bandwidth_kbps(index),
        remote_fmtp=best.remote_fmtp, rtcp_fb=best.rtcp_fb, remote_ice=remote_ice, srtp=keys[1],
    )
    return answer_m, result


def answer_offer(
    offer: SessionDescription, cfg: SessionConfig
) -> tuple[SessionDescription, list[NegotiatedStream]]:
    """Our answer to ``offer`` and the negotiated streams; SdpError when nothing fits."""
    # RFC 3264 §6: "The answer MUST contain exactly the same number of "m=" lines as the
    # offer", in the same order.
    lines: list[MediaDescription] = []
    streams: list[NegotiatedStream] = []
    reasons: list[str] = []
    unused = list(cfg.streams)
    for index, m in enumerate(offer.media):
        ours = [s for s in unused if s.kind == m.media]  # not next(generator): left early, it raises inside
        stream = ours[0] if ours else None
        outcome = _why_not(m, stream)
        if stream is not None and outcome is None:
            accepted = _accept(offer, index, stream, cfg)
            if isinstance(accepted, tuple):
                unused.remove(stream)
                lines.append(accepted[0])
                streams.append(accepted[1])
                continue
            outcome = accepted
        reasons.append(f"m-line {index} ({m.media}): {outcome}")
        log.info("declining m-line %d (%s): %s", index, m.media, outcome)
        lines.append(_reject(m))
        streams.append(_declined(index, m))
    if not [s for s in streams if not s.declined]:
        detail = "; ".join(reasons) or "the offer has no m= lines"
        raise SdpError(f"no acceptable media: {detail}")
    return _session(cfg, lines), streams


# -- processing an answer -----------------------------------------------------


def _check_answer_direction(offered: str, answered: str, index: int) -> None:
    offer_send, offer_recv = _check_direction(offered)
    answer_send, answer_recv = _check_direction(answered)
    if (answer_send and not offer_recv) or (answer_recv and not offer_send):
        raise SdpError(f"m-line {index}: answer direction {answered} contradicts offered {offered}")


def _offered_codec(offer_m: MediaDescription, rtpmap: tuple[str, int, int], fmtp: str | None) -> int | None:
    """The offer's payload type for a codec the answer lists, or None if never offered."""
    name, clock, channels = rtpmap
    for pt in offer_m.payload_types:
        spec = CodecSpec(name, clock, channels)
        if _codec_matches(spec, offer_m.rtpmap(pt), offer_m.fmtp(pt), fmtp):
            return pt
    return None


def _process_stream(
    offer: SessionDescription, answer: SessionDescription, index: int
) -> NegotiatedStream:
    offer_m, answer_m = offer.media[index], answer.media[index]
    if answer_m.media != offer_m.media:
        raise SdpError(f"m-line {index}: answer has {answer_m.media}, offer had {offer_m.media}")
    if offer_m.port == 0 or answer_m.port == 0:
        return _declined(index, offer_m, offer_m.port)
    if is_secure_profile(answer_m.proto) != is_secure_profile(offer_m.proto):
        raise SdpError(f"m-line {index}: answer has transport {answer_m.proto}, offer had {offer_m.proto}")
    srtp = answer_keys(offer_m.attributes_named("crypto"), offer_m.proto, answer_m.attributes_named("crypto"))
    pairs: list[tuple[int, int, tuple[str, int, int]]] = []   # (answer pt, offer pt, rtpmap)
    for pt in answer_m.payload_types:
        rtpmap = answer_m.rtpmap(pt)
        offer_pt = _offered_codec(offer_m, rtpmap, answer_m.fmtp(pt)) if rtpmap else None
        if rtpmap is None or offer_pt is None:
            log.info("m-line %d: answer lists format %d that was not offered", index, pt)
            continue
        pairs.append((pt, offer_pt, rtpmap))
    media = [p for p in pairs if p[2][0].lower() != TELEPHONE_EVENT]
    if not media:
        raise SdpError(f"m-line {index}: the answer lists no codec that was offered")
    offered_dir = offer.media_direction(index)
    answered_dir = answer.media_direction(index)
    _check_answer_direction(offered_dir, answered_dir, index)
    answer_send, answer_recv = _SEND_RECV[answered_dir]
    our_send, our_recv = _SEND_RECV[offered_dir]
    if not _remote_can_receive(answer, index):
        answer_recv = False
    direction = _direction_of(our_send and answer_recv, our_recv and answer_send)
    send_pt, recv_pt, (name, clock, channels) = media[0]
    events = [p for p in pairs if p[2][0].lower() == TELEPHONE_EVENT]
    same_rate = [e for e in events if e[2][1] == clock]
    event_pts = [e[0] for e in same_rate or events]
    recv_event_pts = [e[1] for e in same_rate or events]
    fb = _common_fb(tuple(offer_m.rtcp_fb(recv_pt)), answer_m.rtcp_fb(send_pt))
    codec = CodecSpec(name, clock, channels, send_pt, offer_m.fmtp(recv_pt), fb)
    mux = offer_m.rtcp_mux and answer_m.rtcp_mux
    address = _remote_address(answer, index)
    return NegotiatedStream(
        index=index, kind=offer_m.media, declined=False, local_port=offer_m.port,
        remote_address=address, remote_port=answer_m.port,
        remote_rtcp=_remote_rtcp(answer_m, address, mux), codec=codec,
        payload_type=send_pt, send_payload_type=send_pt, recv_payload_type=recv_pt,
        telephone_event_pt=event_pts[0] if event_pts else None, direction=direction,
        recv_telephone_event_pt=recv_event_pts[0] if recv_event_pts else None,
        ptime=answer_m.ptime or offer_m.ptime, rtcp_mux=mux,
        remote_bandwidth_kbps=answer.bandwidth_kbps(index),
        remote_fmtp=answer_m.fmtp(send_pt), rtcp_fb=fb,
        remote_ice=ice_of(answer, index) if offer_m.has_attribute("ice-ufrag") else None, srtp=srtp,
    )


def process_answer(offer: SessionDescription, answer: SessionDescription) -> list[NegotiatedStream]:
    """Check ``answer`` against our ``offer`` and compute the negotiated streams."""
    if len(answer.media) != len(offer.media):
        raise SdpError(
            f"the answer has {len(answer.media)} m-lines, the offer had {len(offer.media)}"
        )
    return [_process_stream(offer, answer, i) for i in range(len(offer.media))]
