"""What the phone reports: the events of the Python API and of ``--json``.

Each is a frozen dataclass; ``to_json()`` gives the object ``--json`` prints (its
``event`` key names the kind), ``human()`` the line printed without ``--json`` (None:
nothing to print).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from softphone.call.states import CallResult, Direction, EndCause, Progress

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

    def human(self) -> str:
        code = f" {self.sip_code}" if self.sip_code else ""
        result = self.result.value if self.result is not None else "unknown"
        return f"call ended: {result}{code}"

    def as_summary(self) -> dict[str, Any]:
        """The fields of the summary, without the event kind (``--json``'s final object)."""
        data = self.to_json()
        del data["event"]
        return data


@dataclass(frozen=True)
class RegistrationEvent(PhoneEvent):
    kind: ClassVar[str] = "registration"
    account: str
    state: str
    sip_code: int | None = None
    reason: str | None = None
    expires: int | None = None

    def human(self) -> str:
        code = f" ({self.sip_code})" if self.sip_code else ""
        expires = f", expires in {self.expires} s" if self.expires else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.account}: {self.state}{code}{expires}{reason}"


@dataclass(frozen=True)
class Devices(PhoneEvent):
    """The sound devices PortAudio offers (``softphone devices``)."""

    kind: ClassVar[str] = "devices"
    audio: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Summary(PhoneEvent):
    """The last object a command prints: its result as a whole."""

    kind: ClassVar[str] = "summary"
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, **self.data}
