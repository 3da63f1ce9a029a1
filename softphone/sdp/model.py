"""SDP session descriptions (RFC 4566): frozen values whose parse() and str() are inverses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field, replace
from typing import Any

from softphone.errors import SdpError
from softphone.frozen import cached_property, dataclass

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 3551 §6, tables 4 and 5: the statically assigned payload types.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
    25: ("CelB", 90000, 1),
    26: ("JPEG", 90000, 1),
    28: ("nv", 90000, 1),
    31: ("H261", 90000, 1),
    32: ("MPV", 90000, 1),
    33: ("MP2T", 90000, 1),
    34: ("H263", 90000, 1),
}


@dataclass(frozen=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>"""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpError(f"o= needs 6 fields, got {len(parts)}")
        return cls(*parts)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address> (a /ttl or /number suffix stays in address)."""

    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise SdpError(f"c= needs 3 fields, got {len(parts)}")
        return cls(*parts)

    @property
    def host(self) -> str:
        """The address without a multicast /ttl or /number suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Attribute:
    """a=<name>[:<value>]; a property attribute such as a=sendrecv has value None."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, sep, value = text.partition(":")
        if not name:
            raise SdpError("attribute without a name")
        return cls(name, value if sep else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


def parse_fmtp(fmtp: str | None) -> dict[str, str]:
    """The format parameters of an a=fmtp value, in the ``key=value;...`` form the codec
    RFCs use (RFC 6184, RFC 7587, RFC 7798): ``"useinbandfec=1; maxaveragebitrate=20000"``
    -> ``{"useinbandfec": "1", "maxaveragebitrate": "20000"}``.

    Keys are lower-cased; a bare word (RFC 4733's ``"0-16"``) maps to ``""``.
    """
    params: dict[str, str] = {}
    for item in (fmtp or "").split(";"):
        key, _, value = item.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip()
    return params


def _parse_bandwidth(value: str) -> tuple[str, int]:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype or not amount.strip().isdigit():
        raise SdpError("b= must be <bwtype>:<bandwidth>")
    return bwtype, int(amount)


def _values(attributes: Iterable[Attribute], name: str) -> list[str]:
    wanted = name.lower()
    return [a.value or "" for a in attributes if a.name.lower() == wanted]


def _first(attributes: Iterable[Attribute], name: str) -> str | None:
    wanted = name.lower()
    for a in attributes:
        if a.name.lower() == wanted:
            return a.value if a.value is not None else ""
    return None


def _direction(attributes: Iterable[Attribute]) -> str | None:
    for a in attributes:
        if a.name in DIRECTIONS:
            return a.name
    return None


def _index(attributes: Iterable[Attribute]) -> dict[str, tuple[str, ...]]:
    """The values of each attribute name (lower-cased), in order."""
    index: dict[str, list[str]] = {}
    for a in attributes:
        index.setdefault(a.name.lower(), []).append(a.value or "")
    return {name: tuple(values) for name, values in index.items()}


def _pt_index(named: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """``a=<name>:<pt> <rest>`` by (name, pt) as ``rest``, for the per-format attributes."""
    index: dict[tuple[str, str], list[str]] = {}
    for name in _PER_FORMAT:
        for value in named.get(name, ()):
            head, _, rest = value.strip().partition(" ")
            index.setdefault((name, head), []).append(rest.strip())
    return {key: tuple(values) for key, values in index.items()}


_PER_FORMAT = ("rtpmap", "fmtp", "rtcp-fb")


def _m_line_fields(value: str) -> dict[str, Any]:
    """The fields an m= line gives a MediaDescription."""
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("m= needs <media> <port> <proto> <fmt> ...")
    media, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    if not port_part.isdigit() or (slash and not count_part.isdigit()):
        raise SdpError(f"m= port {port_text!r} is not a number")
    port = int(port_part)
    if port > 65535:
        raise SdpError(f"m= port {port} is out of range")
    count = int(count_part) if slash else None
    return {"media": media, "port": port, "proto": proto, "formats": tuple(formats), "number_of_ports": count}


@dataclass(frozen=True)
class MediaDescription:
    """One m= section with its media-level fields."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    number_of_ports: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()

    @classmethod
    def parse_m_line(cls, value: str) -> MediaDescription:
        return cls(**_m_line_fields(value))

    @cached_property
    def _named(self) -> dict[str, tuple[str, ...]]:
        return _index(self.attributes)

    @cached_property
    def _per_format(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return _pt_index(self._named)

    @cached_property
    def codec_lines(self) -> tuple[tuple[str, ...], ...]:
        """What this m-line says of its codecs: the formats and the rtpmap, fmtp and rtcp-fb
        values (two m-lines that agree here offer the same codecs)."""
        named = self._named
        return (self.formats, *(named.get(name, ()) for name in _PER_FORMAT))

    def _pt_value(self, name: str, pt: int | str) -> tuple[str, ...]:
        """Values of ``a=<name>:<pt> <rest>`` for one payload type, as ``rest``."""
        return self._per_format.get((name, str(pt)), ())

    def attribute(self, name: str) -> str | None:
        """The first a=<name> value ("" for a property attribute), or None when absent."""
        values = self._named.get(name.lower())
        return values[0] if values else None

    def attributes_named(self, name: str) -> list[str]:
        return list(self._named.get(name.lower(), ()))

    def has_attribute(self, name: str) -> bool:
        return name.lower() in self._named

    def rtpmap(self, pt: int) -> tuple[str, int, int] | None:
        """(encoding name, clock rate, channels) from a=rtpmap, else RFC 3551's static table."""
        for rest in self._pt_value("rtpmap", pt):
            parts = rest.split("/")
            if len(parts) >= 2 and parts[1].isdigit():
                channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
                return parts[0], int(parts[1]), channels
        return STATIC_PAYLOAD_TYPES.get(pt)

    def fmtp(self, pt: int) -> str | None:
        values = self._pt_value("fmtp", pt)
        return values[0] if values else None

    def rtcp_fb(self, pt: int) -> list[str]:
        """a=rtcp-fb values for this payload type, including the wildcard ``*`` ones."""
        values = list(self._pt_value("rtcp-fb", pt))
        return values + [v for v in self._pt_value("rtcp-fb", "*") if v not in values]

    @property
    def payload_types(self) -> list[int]:
        """The formats that are RTP payload type numbers."""
        return [int(f) for f in self.formats if f.isdigit() and int(f) < 128]

    @property
    def declared_direction(self) -> str | None:
        return _direction(self.attributes)

    @property
    def direction(self) -> str:
        return _direction(self.attributes) or "sendrecv"

    @property
    def rtcp(self) -> tuple[int, str | None] | None:
        """a=rtcp:<port> [IN IP4 <address>] (RFC 3605)."""
        value = self.attribute("rtcp")
        if value is None:
            return None
        parts = value.split()
        if not parts or not parts[0].isdigit() or int(parts[0]) > 65535:
            return None
        return int(parts[0]), parts[3] if len(parts) >= 4 else None

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        try:
            return int(float(value)) if value else None
        except ValueError:
            return None

    @property
    def rtcp_mux(self) -> bool:
        return self.has_attribute("rtcp-mux")

    def bandwidth_kbps(self) -> int | None:
        return _bandwidth_kbps(self.bandwidths)

    def lines(self) -> list[str]:
        port = str(self.port) if self.number_of_ports is None else f"{self.port}/{self.number_of_ports}"
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        for t, v in self.bandwidths:
            out.append(f"b={t}:{v}")
        if self.key is not None:
            out.append(f"k={self.key}")
        return _with_attributes(out, self.attributes)


def _with_attributes(out: list[str], attributes: tuple[Attribute, ...]) -> list[str]:
    """``out`` and an a= line for each attribute, as ``Attribute.__str__`` would write it, but
    without a call per attribute: an answer has a dozen, on the way to the 200. (Plain loops
    here and in the callers: in Python 3.11 a comprehension is a call of its own.)"""
    for a in attributes:
        out.append(f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}")
    return out


def _bandwidth_kbps(bandwidths: Iterable[tuple[str, int]]) -> int | None:
    table = {t.upper(): v for t, v in bandwidths}
    if "AS" in table:
        return table["AS"]
    if "TIAS" in table:
        return table["TIAS"] // 1000
    return None


@dataclass(frozen=True, kw_only=True)
class SessionDescription:
    """A whole SDP body."""

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    times: tuple[tuple[int, int], ...] = ((0, 0),)
    repeats: tuple[str, ...] = ()
    timezones: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = field(default=())

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError(f"SDP is not UTF-8: {exc}") from None
        # A peer offers the same body call after call but for the o= line, whose session id
        # and version change (RFC 4566 §5.2): the rest of a body seen before is not parsed
        # again. Only an o= on the second line, right after v=, is set apart; a body larger
        # than any offer seen in practice is not kept (a stranger's INVITE could hold a
        # megabyte of parsed attributes in the table otherwise).
        start = text.find("\n") + 1
        end = text.find("\n", start) if text.startswith("o=", start) else -1
        if end < 0 or len(text) > _PARSED_LARGEST:
            return _Parser(text).run()
        key = text[:start] + text[end:]
        known = _PARSED.get(key)
        if known is None:
            parsed = _Parser(text).run()
            if len(_PARSED) >= _PARSED_KEPT:
                _PARSED.pop(next(iter(_PARSED)), None)  # the oldest
            _PARSED[key] = (text[start:end], parsed)
            return parsed
        origin_line, parsed = known
        if text[start:end] == origin_line:
            return parsed
        try:
            origin = Origin.parse(text[start + 2:end].rstrip("\r"))
        except SdpError:
            return _Parser(text).run()  # which names the line
        return replace(parsed, origin=origin)

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        for letter, value in (("i", self.information), ("u", self.uri)):
            if value is not None:
                out.append(f"{letter}={value}")
        for e in self.emails:
            out.append(f"e={e}")
        for p in self.phones:
            out.append(f"p={p}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        for t, v in self.bandwidths:
            out.append(f"b={t}:{v}")
        for start, stop in self.times:
            out.append(f"t={start} {stop}")
        for r in self.repeats:
            out.append(f"r={r}")
        if self.timezones is not None:
            out.append(f"z={self.timezones}")
        if self.key is not None:
            out.append(f"k={self.key}")
        _with_attributes(out, self.attributes)
        for m in self.media:
            out += m.lines()
        return "\r\n".join(out) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")

    def attribute(self, name: str) -> str | None:
        return _first(self.attributes, name)

    def attributes_named(self, name: str) -> list[str]:
        return _values(self.attributes, name)

    def connection_for(self, index: int) -> Connection | None:
        """The media-level c= of m-line ``index``, else the session-level one."""
        return self.media[index].connection or self.connection

    def media_direction(self, index: int) -> str:
        """The media-level direction attribute, else the session-level one, else sendrecv."""
        return self.media[index].declared_direction or _direction(self.attributes) or "sendrecv"

    def bandwidth_kbps(self, index: int) -> int | None:
        """b=AS (or b=TIAS / 1000) of m-line ``index``, else the session-level one."""
        found = self.media[index].bandwidth_kbps()
        return found if found is not None else _bandwidth_kbps(self.bandwidths)


# bodies parsed, but for their o= line: the o= line and the description. A phone talks to a
# few peers, each with an offer or two; the bodies kept are at most 16 of 4 KiB (an audio and
# video offer with a dozen codecs is 1-2 KiB).
_PARSED: dict[str, tuple[str, SessionDescription]] = {}
_PARSED_KEPT = 16
_PARSED_LARGEST = 4096


class _Parser:
    """Reads an SDP body line by line, naming the line of any error. Each m= section is built
    once, when the next one (or the end) closes it."""

    def __init__(self, text: str) -> None:
        self.lines = text.replace("\r\n", "\n").split("\n")
        self.session: dict[str, object] = {}
        self.emails: list[str] = []
        self.phones: list[str] = []
        self.bandwidths: list[tuple[str, int]] = []
        self.times: list[tuple[int, int]] = []
        self.repeats: list[str] = []
        self.attributes: list[Attribute] = []
        self.media: list[MediaDescription] = []
        self.m_fields: dict[str, Any] | None = None  # the open m= section's fields
        self.m_attributes: list[Attribute] = []
        self.m_bandwidths: list[tuple[str, int]] = []

    def run(self) -> SessionDescription:
        seen_version = False
        for number, raw in enumerate(self.lines, start=1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            letter, sep, value = line.partition("=")
            try:
                if not sep or len(letter) != 1 or not letter.isalpha():
                    raise SdpError("expected <type>=<value>")
                if not seen_version:
                    if letter != "v":
                        raise SdpError("the first line must be v=")
                    if value.strip() != "0":
                        raise SdpError(f"unsupported SDP version {value.strip()!r}")
                    seen_version = True
                elif letter == "a":
                    (self.attributes if self.m_fields is None else self.m_attributes).append(
                        Attribute.parse(value.rstrip()))
                elif letter == "m":
                    self._close_media()
                    self.m_fields = _m_line_fields(value)
                elif self.m_fields is not None:
                    self._media_line(letter, value)
                else:
                    self._session_line(letter, value)
            except SdpError as exc:
                raise SdpError(f"SDP line {number} {line!r}: {exc}") from None
        if not seen_version:
            raise SdpError("empty SDP: no v= line")
        self._close_media()
        origin = self.session.get("o")
        if not isinstance(origin, Origin):
            raise SdpError("SDP has no o= line")
        return self._build(origin)

    def _session_line(self, letter: str, value: str) -> None:
        if letter == "v":
            raise SdpError("duplicate v= line")
        elif letter in "os" and letter in self.session:
            raise SdpError(f"duplicate {letter}= line")
        elif letter == "o":
            self.session["o"] = Origin.parse(value)
        elif letter == "c":
            self.session["c"] = Connection.parse(value)
        elif letter == "t":
            self.times.append(_parse_time(value))
        elif letter == "b":
            self.bandwidths.append(_parse_bandwidth(value.strip()))
        elif letter == "e":
            self.emails.append(value)
        elif letter == "p":
            self.phones.append(value)
        elif letter == "r":
            self.repeats.append(value)
        elif letter in "siuzk":
            self.session[letter] = value
        # Other type letters are skipped: RFC 4566 §5 would have the whole description
        # ignored, but deployed stacks skip the line, and so do we.

    def _media_line(self, letter: str, value: str) -> None:
        fields = self.m_fields
        assert fields is not None
        if letter == "b":
            self.m_bandwidths.append(_parse_bandwidth(value.strip()))
        elif letter == "c":
            if "connection" not in fields:  # the first c= of the section counts
                fields["connection"] = Connection.parse(value)
        elif letter == "i":
            fields["information"] = value
        elif letter == "k":
            fields["key"] = value
        elif letter in "vos":
            raise SdpError(f"{letter}= is not allowed after an m= line")

    def _close_media(self) -> None:
        if self.m_fields is not None:
            self.media.append(MediaDescription(
                **self.m_fields, attributes=tuple(self.m_attributes), bandwidths=tuple(self.m_bandwidths)
            ))
        self.m_fields = None
        self.m_attributes = []
        self.m_bandwidths = []

    def _build(self, origin: Origin) -> SessionDescription:
        def text(letter: str) -> str | None:
            value = self.session.get(letter)
            return value if isinstance(value, str) else None

        connection = self.session.get("c")
        return SessionDescription(
            origin=origin,
            session_name=str(self.session.get("s", "-")),
            information=text("i"),
            uri=text("u"),
            emails=tuple(self.emails),
            phones=tuple(self.phones),
            connection=connection if isinstance(connection, Connection) else None,
            bandwidths=tuple(self.bandwidths),
            times=tuple(self.times) or ((0, 0),),
            repeats=tuple(self.repeats),
            timezones=text("z"),
            key=text("k"),
            attributes=tuple(self.attributes),
            media=tuple(self.media),
        )


def _parse_time(value: str) -> tuple[int, int]:
    parts = value.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise SdpError("t= needs <start-time> <stop-time>")
    return int(parts[0]), int(parts[1])


