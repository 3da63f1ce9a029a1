"""What the phone reports: the events of the Python API and of ``--json``.

Each is a frozen dataclass; ``to_json()`` gives the object ``--json`` prints (its
``event`` key names the kind), ``human()`` the line printed without ``--json`` (None:
nothing to print).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any, ClassVar

from softphone.call.states import CallResult, Direction, EndCause, Progress, TransferState
from softphone.frozen import dataclass

_JSON_NAMES: dict[type, tuple[tuple[str, str], ...]] = {}


def _json_names(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) of each field of an event class."""
    names = _JSON_NAMES.get(cls)
    if names is None:
        names = _JSON_NAMES[cls] = tuple((f.name, f.metadata.get("json", f.name)) for f in fields(cls))
    return names


@dataclass(frozen=True)
class PhoneEvent:
    kind: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready values (the enums are strings)."""
        data: dict[str, Any] = {"event": self.kind}
        for name, key in _json_names(type(self)):
            data[key] = getattr(self, name)
        return data

    def human(self) -> str | None:
        return None


@dataclass(frozen=True)
class Listening(PhoneEvent):
    kind: ClassVar[str] = "listening"
    transport: str
    host: str
    port: int

    def human(self) -> str:
        return f"listening on {self.transport} {self.host}:{self.port}"


@dataclass(frozen=True)
class Incoming(PhoneEvent):
    kind: ClassVar[str] = "incoming"
    call_id: str
    caller: str = field(metadata={"json": "from"})
    callee: str = field(metadata={"json": "to"})

    def human(self) -> str:
        return f"incoming call from {self.caller}"


@dataclass(frozen=True)
class StateEvent(PhoneEvent):
    """A call moved on (trying, ringing, answered, held ...)."""

    kind: ClassVar[str] = "state"
    call_id: str
    state: Progress
    sip_code: int | None = None

    def human(self) -> str | None:
        if self.state == Progress.ENDED:
            return None  # the call_end line says it
        code = f" ({self.sip_code})" if self.sip_code else ""
        return f"call {self.state.value}{code}"


@dataclass(frozen=True)
class TransferEvent(PhoneEvent):
    """How a transfer goes (REFER, RFC 3515). ``direction`` outgoing: we asked the peer to call
    ``target``; incoming: the peer asked us to, and ``new_call_id`` is the call we placed.
    ``sip_code`` is the REFER's answer or the status the NOTIFY sipfrag reports."""

    kind: ClassVar[str] = "transfer"
    call_id: str
    direction: Direction
    state: TransferState
    target: str
    sip_code: int | None = None
    reason: str = ""
    new_call_id: str | None = None

    @property
    def final(self) -> bool:
        return self.state in (TransferState.SUCCEEDED, TransferState.FAILED)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "final": self.final}

    def human(self) -> str:
        code = f" ({self.sip_code}{' ' + self.reason if self.reason else ''})" if self.sip_code else ""
        if self.direction == Direction.INCOMING:
            words = {TransferState.REQUESTED: "the peer transfers the call to", TransferState.CALLING: "calling",
                     TransferState.PROGRESS: "transfer call to", TransferState.SUCCEEDED: "transferred to",
                     TransferState.FAILED: "transfer failed: could not reach"}
        else:
            words = {TransferState.REQUESTED: "transferring the call to", TransferState.ACCEPTED:
                     "transfer accepted, the peer calls", TransferState.PROGRESS: "the peer calls",
                     TransferState.SUCCEEDED: "call transferred to", TransferState.FAILED: "transfer failed to"}
        return f"{words.get(self.state, 'transfer to')} {self.target}{code}"


@dataclass(frozen=True)
class MediaNegotiated(PhoneEvent):
    """The streams an offer/answer settled on (start or change of media)."""

    kind: ClassVar[str] = "media"
    call_id: str
    streams: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class MediaNotice(PhoneEvent):
    """Something a media stream saw: first_audio_rx, first_video_frame, dtmf, nortp,
    device_error, window_closed. ``name`` is the event's kind, ``data`` its fields."""

    call_id: str
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.name, "call_id": self.call_id, **self.data}


@dataclass(frozen=True)
class CallSummary(PhoneEvent):
    """A call at its end (the ``call_end`` event, and what ``CallSession.wait`` gives)."""

    kind: ClassVar[str] = "call_end"
    result: CallResult | None
    sip_code: int | None
    cause: EndCause | None
    call_id: str
    direction: Direction
    remote_party: str
    transport: str | None = None
    timeline: Mapping[str, float] = field(default_factory=dict)
    audio: Mapping[str, Any] | None = None
    video: Mapping[str, Any] | None = None
    reason: str | None = None
    advertised: str | None = None  # the Contact address ("host:port") the call gave its peer
    target: str | None = None  # where our INVITE went, "transport:host:port" (RFC 3263 may fail over)

    def human(self) -> str:
        """``call ended: completed 200, 00:10 in call``, then a line per stream that ran."""
        code = f" {self.sip_code}" if self.sip_code else ""
        result = self.result.value if self.result is not None else "unknown"
        lines = [f"call ended: {result}{code}"]
        answered, bye = self.timeline.get("answered"), self.timeline.get("bye")
        if answered is not None and bye is not None and bye >= answered:
            seconds = int(bye - answered)
            lines[0] += f", {seconds // 60:02d}:{seconds % 60:02d} in call"
        if self.advertised and answered is not None:
            lines[0] += f", reached at {self.advertised}"
        for kind, stream in (("audio", self.audio), ("video", self.video)):
            if stream is not None and stream.get("media") == "rtp":
                lines.append(f"  {kind:<6}{_stream_figures(stream)}")
        return "\n".join(lines)

    def as_summary(self) -> dict[str, Any]:
        """The fields of the summary, without the event kind (``--json``'s final object)."""
        data = self.to_json()
        del data["event"]
        return data


def _stream_figures(stream: Mapping[str, Any]) -> str:
    """A stream's figures in the summary: codec, bitrates, loss, jitter, round trip, MOS, fps."""
    parts = [f"{stream.get('codec') or '?':<6}"]
    if stream.get("tx_kbps") is not None:
        parts.append(f"tx {stream['tx_kbps']:.1f} kbit/s  rx {stream.get('rx_kbps') or 0.0:.1f} kbit/s")
    lost, received = stream.get("lost") or 0, stream.get("rx_packets") or 0
    loss = stream.get("loss_pct")
    share = f" ({loss:.1f} %)" if loss is not None else ""
    parts.append(f"lost {max(0, lost)}/{received + max(0, lost)}{share}")
    if stream.get("jitter_ms") is not None:
        parts.append(f"jitter {stream['jitter_ms']:.1f} ms")
    rtt = stream.get("rtt_ms")
    parts.append(f"RTT {rtt:.1f} ms" if rtt is not None else "RTT -")
    if stream.get("mos") is not None:
        parts.append(f"MOS {stream['mos']:.2f}")
    if stream.get("fps") is not None:
        parts.append(f"{stream['fps']:.1f} fps")
    if stream.get("width") and stream.get("height"):
        parts.append(f"{stream['width']}x{stream['height']}")
    if stream.get("srtp"):
        failures = stream.get("srtp_auth_failures") or 0
        parts.append(f"SRTP {stream['srtp']}" + (f" ({failures} failed authentication)" if failures else ""))
    return "  ".join(parts)


@dataclass(frozen=True)
class RegistrationEvent(PhoneEvent):
    kind: ClassVar[str] = "registration"
    account: str
    state: str
    sip_code: int | None = None
    reason: str | None = None
    expires: int | None = None
    public_address: str | None = None  # "host:port" the registrar saw us at, behind a NAT

    def human(self) -> str:
        code = f" ({self.sip_code})" if self.sip_code else ""
        expires = f", expires in {self.expires} s" if self.expires else ""
        public = f", public address {self.public_address}" if self.public_address else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.account}: {self.state}{code}{expires}{public}{reason}"


@dataclass(frozen=True)
class Devices(PhoneEvent):
    """The sound devices PortAudio offers and the cameras the system lists (``softphone devices``)."""

    kind: ClassVar[str] = "devices"
    audio: tuple[Mapping[str, Any], ...]
    video: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Summary(PhoneEvent):
    """The last object a command prints: its result as a whole."""

    kind: ClassVar[str] = "summary"
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, **self.data}
