"""SIP requests and responses (RFC 3261 §7): parse from bytes, write to bytes.

``parse_message(bytes(m)) == m`` for every message built here, and
``bytes(parse_message(data)) == data`` for data in canonical form (canonical header
names, ``Name: value`` lines ending in CRLF, a correct Content-Length).
"""

from __future__ import annotations

import re
from dataclasses import replace

from softphone.errors import ParseError
from softphone.frozen import cached_property, dataclass
from softphone.sip.headers import (
    CSeq,
    NameAddress,
    Via,
    canonical_name,
    is_token,
    split_header_values,
)
from softphone.sip.uri import Uri, parse_uri

MAX_MESSAGE_SIZE = 65535
MAX_HEADER_LINE = 8192
MAX_HEADER_LINES = 256

_LIST_HEADERS = frozenset(
    {
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Allow-Events",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "In-Reply-To",
        "Path",
        "Service-Route",
    }
)
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_IDENTITY = frozenset(_MANDATORY)  # what names a request: the headers every request must carry
_SINGLE_VALUED = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")
_STATUS_CODE = re.compile(r"[1-6]\d\d")
_DIGITS = re.compile(r"\d{1,10}")
_SIP_VERSION = "SIP/2.0"


class MessageParseError(ParseError):
    """A ParseError that keeps what was read: the header section (also in
    ``partial``) and whether the start line was a request, so a 400 can be sent.
    ``phrase`` is the reason phrase for that 400, naming what is wrong
    ("Bad From Header", "Bad CSeq", "Missing Call-ID" ...)."""

    def __init__(
        self,
        message: str,
        *,
        headers: Headers | None = None,
        method: str | None = None,
        is_request: bool = False,
        phrase: str = "Bad Request",
    ) -> None:
        super().__init__(message, partial=headers)
        self.headers = headers
        self.method = method
        self.is_request = is_request
        self.phrase = phrase


def header_phrase(problem: str, name: str) -> str:
    """A reason phrase naming a header: "Bad CSeq", "Missing Call-ID"; From and To,
    which alone read as prepositions, say "Header": "Bad From Header"."""
    return f"{problem} {name} Header" if name in ("From", "To") else f"{problem} {name}"


@dataclass(frozen=True)
class Headers:
    """The header section: (canonical name, value) pairs, one per header line."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        return cls(tuple((canonical_name(name), value) for name, value in pairs))

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for key, value in self.items:
            index.setdefault(key, []).append(value)
        return index

    def get(self, name: str) -> str | None:
        values = self._by_name.get(canonical_name(name))
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        wanted = canonical_name(name)
        values = list(self._by_name.get(wanted, ()))
        if wanted not in _LIST_HEADERS:
            return values
        return [part for value in values for part in split_header_values(value)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str, *, first: bool = False) -> Headers:
        item = (canonical_name(name), value)
        return Headers((item, *self.items) if first else (*self.items, item))

    def set(self, name: str, value: str) -> Headers:
        wanted = canonical_name(name)
        result: list[tuple[str, str]] = []
        placed = False
        for key, existing in self.items:
            if key != wanted:
                result.append((key, existing))
            elif not placed:
                result.append((wanted, value))
                placed = True
        if not placed:
            result.append((wanted, value))
        return Headers(tuple(result))

    def remove(self, name: str) -> Headers:
        wanted = canonical_name(name)
        return Headers(tuple(item for item in self.items if item[0] != wanted))


class MessageFields:
    """Typed accessors shared by requests and responses; they raise ParseError
    when the header is missing or malformed."""

    headers: Headers

    def known(self, parsed: dict[str, object]) -> None:
        """Give the accessors below values already parsed from these very header lines (by
        the parser's checks, or from a copy of this message), so that none is parsed twice."""
        vars(self).update(parsed)

    def parsed(self, *names: str) -> dict[str, object]:
        """The accessors among ``names`` whose values are parsed already."""
        held = vars(self)
        return {name: held[name] for name in names if name in held}

    def required(self, name: str) -> str:
        """The value of a header as received; ParseError when it is missing."""
        value = self.headers.get(name)
        if value is None:
            raise ParseError(f"missing mandatory header: {name}")
        return value

    def _optional_int(self, name: str) -> int | None:
        value = self.headers.get(name)
        if value is None:
            return None
        if not _DIGITS.fullmatch(value):
            raise ParseError(f"bad {name}: {value!r}")
        return int(value)

    @cached_property
    def call_id(self) -> str:
        return self.required("Call-ID")

    @cached_property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.required("CSeq"))

    @cached_property
    def from_addr(self) -> NameAddress:
        return NameAddress.parse(self.required("From"))

    @cached_property
    def to_addr(self) -> NameAddress:
        return NameAddress.parse(self.required("To"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(value) for value in self.headers.get_all("Via")]

    @cached_property
    def top_via(self) -> Via:
        vias = self.headers.get_all("Via")
        if not vias:
            raise ParseError("missing mandatory header: Via")
        return Via.parse(vias[0])

    @cached_property
    def contacts(self) -> list[NameAddress]:
        values = self.headers.get_all("Contact")
        if values == ["*"]:
            return []
        return [NameAddress.parse(value) for value in values]

    @property
    def routes(self) -> list[NameAddress]:
        return [NameAddress.parse(value) for value in self.headers.get_all("Route")]

    @property
    def record_routes(self) -> list[NameAddress]:
        return [NameAddress.parse(v) for v in self.headers.get_all("Record-Route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    @property
    def max_forwards(self) -> int | None:
        return self._optional_int("Max-Forwards")

    @property
    def expires(self) -> int | None:
        return self._optional_int("Expires")


def _with_content_length(headers: Headers, body: bytes) -> Headers:
    wanted = str(len(body))
    if [v for k, v in headers.items if k == "Content-Length"] == [wanted]:
        return headers
    return headers.set("Content-Length", wanted)


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    for name, value in headers.items:
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in the value of header {name}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


@dataclass(frozen=True)
class Request(MessageFields):
    """A SIP request. Content-Length is kept equal to ``len(body)``."""

    method: str
    uri: Uri
    headers: Headers
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "headers", _with_content_length(self.headers, self.body)
        )

    def __bytes__(self) -> bytes:
        return _serialize(
            f"{self.method} {self.uri} {_SIP_VERSION}", self.headers, self.body
        )

    def with_headers(self, headers: Headers) -> Request:
        return replace(self, headers=headers)

    def identity(self) -> Request:
        """This request without its body and the headers that do not name it (Via, From, To,
        Call-ID, CSeq stay): what is kept of a request that is answered and only waits for
        retransmissions to absorb."""
        return Request(self.method, self.uri, Headers(tuple(i for i in self.headers.items if i[0] in _IDENTITY)))

    def with_body(self, body: bytes, content_type: str | None) -> Request:
        return replace(
            self, headers=_content_type(self.headers, content_type), body=body
        )


@dataclass(frozen=True)
class Response(MessageFields):
    """A SIP response. Content-Length is kept equal to ``len(body)``."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "headers", _with_content_length(self.headers, self.body)
        )

    def __bytes__(self) -> bytes:
        start = f"{_SIP_VERSION} {self.status} {self.reason}"
        return _serialize(start, self.headers, self.body)

    def with_headers(self, headers: Headers) -> Response:
        return replace(self, headers=headers)

    def with_body(self, body: bytes, content_type: str | None) -> Response:
        return replace(
            self, headers=_content_type(self.headers, content_type), body=body
        )


def _content_type(headers: Headers, content_type: str | None) -> Headers:
    if content_type is None:
        return headers.remove("Content-Type")
    return headers.set("Content-Type", content_type)


Message = Request | Response


@dataclass
class _Context:
    """What is known about the message so far, for error reports."""

    is_request: bool = False
    method: str | None = None
    headers: Headers | None = None

    def error(self, message: str, phrase: str = "Bad Request") -> MessageParseError:
        return MessageParseError(
            message,
            headers=self.headers,
            method=self.method,
            is_request=self.is_request,
            phrase=phrase,
        )


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one SIP message. ``stream`` says that the bytes came over TCP or TLS,
    where Content-Length is mandatory; otherwise they are one datagram."""
    ctx = _Context()
    if len(data) > MAX_MESSAGE_SIZE:
        raise ctx.error(f"message too large: {len(data)} bytes (limit {MAX_MESSAGE_SIZE})", "Message Too Large")
    # "implementations processing SIP messages over stream-oriented transports MUST
    # ignore any CRLF appearing before the start-line" (RFC 3261 §7.5)
    start = 0
    while data.startswith(b"\n", start) or data.startswith(b"\r\n", start):
        start += 1 if data[start] == 0x0A else 2
    lines, body_start = _split_lines(data, start, ctx)
    if not lines:
        raise ctx.error("empty message")
    start_line = lines[0]
    ctx.headers = _parse_header_lines(lines[1:], ctx)
    headers = ctx.headers
    body = _frame_body(headers, data[body_start:], stream, ctx)
    message: Message
    if ctx.is_request:
        method, uri = _parse_request_line(start_line, ctx)
        message = Request(method=method, uri=uri, headers=headers, body=body)
    else:
        status, reason = _parse_status_line(start_line, ctx)
        message = Response(status=status, reason=reason, headers=headers, body=body)
    message.known(_validate(headers, ctx))
    return message


def _split_lines(data: bytes, pos: int, ctx: _Context) -> tuple[list[str], int]:
    """The lines of the start line and header section (CRLF or bare LF), decoded,
    and the offset of the body."""
    end = data.find(b"\r\n\r\n", pos)
    if pos < end <= pos + MAX_HEADER_LINE:
        # the usual message, every line ended by CRLF: one decode and one split; anything
        # else (bare LF or CR, bad UTF-8, limits) takes the line-by-line way and its errors
        head = data[pos:end]
        crlf = head.count(b"\r\n")
        if head.count(b"\r") == crlf == head.count(b"\n") and crlf < MAX_HEADER_LINES:
            try:
                lines = head.decode("utf-8").split("\r\n")
            except UnicodeDecodeError:
                lines = []
            if lines:
                _note_start_line(lines[0], ctx)
                return lines, end + 4
    return _split_lines_one_by_one(data, pos, ctx)


def _split_lines_one_by_one(data: bytes, pos: int, ctx: _Context) -> tuple[list[str], int]:
    lines: list[str] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise ctx.error("no empty line after the header section")
        raw = data[pos:end]
        pos = end + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            return lines, pos
        if len(raw) > MAX_HEADER_LINE:
            raise ctx.error(f"header line longer than {MAX_HEADER_LINE} characters", "Header Too Long")
        if b"\r" in raw:
            # a CR is allowed only as part of a line's CRLF (RFC 3261 §7.3.1): one left
            # inside a value would be copied into our answers and break their framing
            raise ctx.error("bare CR inside a header line", "Bad Header Line")
        if len(lines) > MAX_HEADER_LINES:
            raise ctx.error(f"more than {MAX_HEADER_LINES} header lines", "Too Many Headers")
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ctx.error("header section is not valid UTF-8", "Header Not UTF-8") from None
        if len(lines) == 1:
            _note_start_line(lines[0], ctx)


def _note_start_line(line: str, ctx: _Context) -> None:
    """Remember whether this is a request, and its method, for error reports."""
    if line.upper().startswith("SIP/"):
        ctx.is_request = False
    else:
        ctx.is_request = True
        first_word = line.split(" ", 1)[0]
        ctx.method = first_word if is_token(first_word) else None


def _parse_header_lines(lines: list[str], ctx: _Context) -> Headers:
    unfolded: list[str] = []
    for line in lines:
        if line[0] in " \t":
            # Header folding (RFC 3261 §7.3.1): the continuation joins the previous
            # line, its leading whitespace replaced by a single space.
            if not unfolded:
                raise ctx.error("continuation line before the first header", "Bad Header Line")
            unfolded[-1] = unfolded[-1].rstrip(" \t") + " " + line.strip(" \t")
            if len(unfolded[-1]) > MAX_HEADER_LINE:
                raise ctx.error(f"header line longer than {MAX_HEADER_LINE} characters", "Header Too Long")
        else:
            unfolded.append(line)
    items: list[tuple[str, str]] = []
    for line in unfolded:
        name, colon, value = line.partition(":")
        canonical = _HEADER_NAMES.get(name) if colon else None
        if canonical is None:
            spelled = name.strip(" \t")
            if not colon or not is_token(spelled):
                raise ctx.error(f"bad header line: {line[:80]!r}", "Bad Header Line")
            canonical = canonical_name(spelled)
            if len(_HEADER_NAMES) < _HEADER_NAMES_LIMIT:  # names seen are few; a flood of new ones is not kept
                _HEADER_NAMES[name] = canonical
        items.append((canonical, value.strip(" \t")))
    return Headers(tuple(items))


# header names as they appear before the colon (valid tokens) -> canonical names
_HEADER_NAMES: dict[str, str] = {}
_HEADER_NAMES_LIMIT = 1024


def _frame_body(headers: Headers, rest: bytes, stream: bool, ctx: _Context) -> bytes:
    lengths = [v for k, v in headers.items if k == "Content-Length"]
    if not lengths:
        if stream:
            # "If a stream-based protocol (such as TCP) is used as a transport, then
            # the header field MUST be used." (RFC 3261 §20.14)
            raise ctx.error("missing Content-Length on a stream transport", header_phrase("Missing", "Content-Length"))
        return rest
    bad_length = header_phrase("Bad", "Content-Length")
    if len(set(lengths)) > 1:
        raise ctx.error(f"conflicting Content-Length values: {', '.join(lengths)}", bad_length)
    if not _DIGITS.fullmatch(lengths[0]):
        raise ctx.error(f"bad Content-Length: {lengths[0]!r}", bad_length)
    length = int(lengths[0])
    if len(rest) < length:
        raise ctx.error(f"truncated body: Content-Length {length}, got {len(rest)}", "Truncated Body")
    # Octets beyond Content-Length in a datagram are discarded (RFC 3261 §18.3).
    return rest[:length]


def _parse_request_line(line: str, ctx: _Context) -> tuple[str, Uri]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ctx.error(f"bad request line: {line[:80]!r}", "Bad Request Line")
    method, uri_text, version = parts
    if not is_token(method):
        raise ctx.error(f"bad method: {method[:40]!r}", "Bad Method")
    if version.upper() != _SIP_VERSION:
        raise ctx.error(f"unsupported SIP version: {version[:40]!r}", "Bad SIP Version")
    # Request-URI = SIP-URI / SIPS-URI / absoluteURI (RFC 3261 §25.1): a scheme we do
    # not serve is the user agent's 416 (§8.2.2.1), not a parse error.
    try:
        uri = parse_uri(uri_text)
    except ParseError as exc:
        raise ctx.error(f"bad Request-URI {uri_text!r}: {exc}", "Bad Request-URI") from None
    return method, uri


def _parse_status_line(line: str, ctx: _Context) -> tuple[int, str]:
    parts = line.split(" ", 2)
    if parts[0].upper() != _SIP_VERSION:
        raise ctx.error(f"unsupported SIP version: {parts[0][:40]!r}", "Bad SIP Version")
    if len(parts) < 2 or not _STATUS_CODE.fullmatch(parts[1]):
        raise ctx.error(f"bad status line: {line[:80]!r}", "Bad Status Line")
    return int(parts[1]), parts[2] if len(parts) == 3 else ""


def _validate(headers: Headers, ctx: _Context) -> dict[str, object]:
    # "A valid SIP request formulated by a UAC MUST, at a minimum, contain the
    # following header fields: To, From, CSeq, Call-ID, Max-Forwards, and Via"
    # (RFC 3261 §8.1.1); Max-Forwards is not enforced, many ACKs lack it.
    present = headers._by_name
    for name in _MANDATORY:
        if name not in present:
            raise ctx.error(f"missing mandatory header: {name}", header_phrase("Missing", name))
    for name in _SINGLE_VALUED:  # none is a list header: one value per line
        if len(present.get(name, ())) > 1:
            raise ctx.error(f"more than one {name} header", header_phrase("Duplicate", name))
    if not present["Call-ID"][0]:
        raise ctx.error("bad Call-ID: empty", header_phrase("Bad", "Call-ID"))
    parsed: dict[str, object] = {"call_id": present["Call-ID"][0]}
    for name, value in headers.items:
        try:
            _check_value(name, value, ctx, parsed)
        except ParseError as exc:
            reason = str(exc)
            if not reason.startswith(f"bad {name}:"):
                reason = f"bad {name}: {value[:80]!r}: {reason}"
            raise ctx.error(reason, header_phrase("Bad", name)) from None
    if any(value.strip() == "*" for value in present.get("Contact", ())):
        parsed.pop("contacts", None)  # Contact: * is the accessor's to read
    return parsed


def _check_value(name: str, value: str, ctx: _Context, parsed: dict[str, object]) -> None:
    """Check one header line; what is parsed for an accessor of the message goes in ``parsed``."""
    if name == "Via":
        vias = Via.parse_list(value)
        if not vias:
            raise ParseError("empty")
        parsed.setdefault("top_via", vias[0])
    elif name in ("From", "To"):
        parsed["from_addr" if name == "From" else "to_addr"] = NameAddress.parse(value)
    elif name == "Refer-To":
        NameAddress.parse(value)
    elif name == "Contact":
        if value.strip() != "*":
            contacts = parsed.setdefault("contacts", [])
            assert isinstance(contacts, list)
            contacts.extend(NameAddress.parse(part) for part in split_header_values(value))
    elif name in ("Route", "Record-Route"):
        for part in split_header_values(value):
            NameAddress.parse(part)
    elif name == "CSeq":
        cseq = parsed["cseq"] = CSeq.parse(value)
        if ctx.is_request and cseq.method != ctx.method:
            raise ParseError(f"method {cseq.method!r} differs from {ctx.method!r}")
    elif name == "Max-Forwards" and not _DIGITS.fullmatch(value):
        raise ParseError("not a number")
