"""Header names and the structured header values of RFC 3261 §20 and §25.1:
name-addr (From, To, Contact, Route ...), Via and CSeq."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import replace

from softphone.errors import ParseError
from softphone.frozen import cached_property, dataclass
from softphone.sip.uri import (
    Params,
    Uri,
    drop_params,
    format_host,
    get_param,
    parse_host,
    parse_port,
    parse_uri,
    set_params,
)

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_SPECIAL_SPELLINGS = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "RAck",
        "RSeq",
        "MIME-Version",
        "SIP-ETag",
        "SIP-If-Match",
        "Content-ID",
        "Session-ID",
        "Min-SE",
        "User-to-User",
    )
}

TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # one or more TOKEN_CHARS
_VIA_START = re.compile(
    r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)", re.IGNORECASE | re.DOTALL
)
_CSEQ = re.compile(r"(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)")

# "The sequence number value MUST be expressible as a 32-bit unsigned integer and
# MUST be less than 2**31." (RFC 3261 §8.1.1.5)
CSEQ_LIMIT = 2**31


def canonical_name(name: str) -> str:
    """Expand a compact form and spell the name the way RFC 3261 does."""
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    spelled = _spell(name)
    if len(_CANONICAL) < _CANONICAL_LIMIT:  # names seen are few; a flood of new ones is not kept
        _CANONICAL[name] = spelled
    return spelled


_CANONICAL: dict[str, str] = {}
_CANONICAL_LIMIT = 1024


def _spell(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    if lowered in _SPECIAL_SPELLINGS:
        return _SPECIAL_SPELLINGS[lowered]
    return "-".join(part.capitalize() for part in lowered.split("-"))


def is_token(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None


def scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string opening at ``text[start]``; return its unescaped
    content and the index just past the closing quote."""
    out: list[str] = []
    index = start + 1
    while index < len(text):
        ch = text[index]
        if ch == "\\":
            if index + 1 >= len(text):
                break
            out.append(text[index + 1])
            index += 2
            continue
        if ch == '"':
            return "".join(out), index + 1
        out.append(ch)
        index += 1
    raise ParseError(f"unterminated quoted string in {text!r}")


def quote_string(text: str) -> str:
    """Wrap ``text`` in a quoted-string, escaping backslash and double quote."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def unquote_string(text: str) -> str:
    """The content of a quoted-string; other text is returned unchanged."""
    if text.startswith('"'):
        value, end = scan_quoted(text, 0)
        if end == len(text):
            return value
    return text


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quoted strings and <...>."""
    if separator not in text:
        return [text]
    if '"' not in text and "<" not in text:  # nothing to keep together: the common case
        return text.split(separator)
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    depth = 0
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == separator and not depth:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value (RFC 3261 §7.3.1), keeping commas
    inside quoted strings and angle brackets; empty elements are dropped."""
    return [part.strip() for part in _split_top_level(value, ",") if part.strip()]


def parse_params(text: str) -> Params:
    """Parse ``;name=value;flag`` header parameters. Names are lower-cased; quoted
    values keep their quotes."""
    text = text.strip()
    if not text:
        return ()
    text = text.removeprefix(";")
    params: list[tuple[str, str | None]] = []
    for segment in _split_top_level(text, ";"):
        segment = segment.strip()
        if not segment:
            continue
        name, eq, value = segment.partition("=")
        name, value = name.strip(), value.strip()
        if not is_token(name):
            raise ParseError(f"bad parameter {segment!r}")
        if value.startswith('"'):
            _, end = scan_quoted(value, 0)
            if end != len(value):
                raise ParseError(f"text after quoted parameter value in {segment!r}")
        elif eq and not value:
            raise ParseError(f"empty value for parameter {name!r}")
        params.append((name.lower(), value if eq else None))
    return tuple(params)


def format_params(params: Iterable[tuple[str, str | None]]) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def add_tag(value: str, tag: str) -> str:
    """A From or To header value with ``;tag=`` appended and every other byte kept;
    right for an addr-spec too, whose ";params" are header parameters (RFC 3261 §20)."""
    return f"{value.rstrip(' ;')};tag={tag}"


def _display_name_needs_quotes(name: str) -> bool:
    words = name.split(" ")
    return not name or any(not word or not set(word) <= TOKEN_CHARS for word in words)


@dataclass(frozen=True)
class NameAddress:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route,
    Refer-To ...). The URI may be of any scheme (RFC 3261 §25.1: addr-spec = SIP-URI /
    SIPS-URI / absoluteURI); ``uri.as_sip()`` where a SIP URI is required."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        """Parsed once per distinct text: a peer's To and Contact repeat from call to call, and
        a message's From, To and Contact are read again after they were checked."""
        return _parse_name_address(text)

    @classmethod
    def _parse(cls, text: str) -> NameAddress:
        s = text.strip()
        if not s:
            raise ParseError("empty address")
        if s.startswith('"'):
            display, end = scan_quoted(s, 0)
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise ParseError(f"expected '<' after display name in {text!r}")
            return cls._parse_bracketed(display, rest, text)
        lt = s.find("<")
        if lt >= 0 and not any(ch in s[:lt] for ch in ':;"'):
            display_text = s[:lt].strip()
            return cls._parse_bracketed(display_text or None, s[lt:], text)
        return cls._parse_addr_spec(s)

    @classmethod
    def _parse_addr_spec(cls, text: str) -> NameAddress:
        # "If the URI is not enclosed in angle brackets, any semicolon-delimited
        # parameters are header-parameters, not URI parameters." (RFC 3261 §20)
        uri_text, semi, params = text.partition(";")
        # "Even if the "display-name" is empty, the "name-addr" form MUST be used if
        # the "addr-spec" contains a comma, semicolon, or question mark." (RFC 3261
        # §20.10). A semicolon ends the URI above; a comma would be read as the list
        # separator, so it is refused; a question mark is unambiguous and let through.
        if "," in uri_text:
            raise ParseError(f"a URI with a comma must be in angle brackets: {text!r}")
        return cls(uri=parse_uri(uri_text), params=parse_params(params) if semi else ())

    @classmethod
    def _parse_bracketed(cls, display: str | None, rest: str, text: str) -> NameAddress:
        gt = rest.find(">")
        if gt < 0:
            raise ParseError(f"missing '>' in {text!r}")
        uri = parse_uri(rest[1:gt])
        after = rest[gt + 1 :].strip()
        if after and not after.startswith(";"):
            raise ParseError(f"unexpected text after '>' in {text!r}")
        return cls(uri=uri, display_name=display, params=parse_params(after))

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        prefix = ""
        if self.display_name is not None:
            name = self.display_name
            if _display_name_needs_quotes(name):
                name = quote_string(name)
            prefix = name + " "
        return f"{prefix}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    def with_tag(self, tag: str) -> NameAddress:
        return self.with_params(tag=tag)

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_params(self, **params: str | None) -> NameAddress:
        return replace(self, params=set_params(self.params, params.items()))

    def with_param(self, name: str, value: str | None) -> NameAddress:
        """Like ``with_params`` for names such as ``+sip.instance``."""
        return replace(self, params=set_params(self.params, [(name, value)]))

    def without_params(self, *names: str) -> NameAddress:
        return replace(self, params=drop_params(self.params, names))


@functools.lru_cache(maxsize=2048)
def _parse_name_address(text: str) -> NameAddress:
    return NameAddress._parse(text)


@dataclass(frozen=True)
class Via:
    """One via-parm (RFC 3261 §20.42) with the rport extension (RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        """One via-parm; parsed once per distinct text (a message's Via is read when it is
        checked, routed and answered), the result is immutable."""
        return _parse_via(text)

    @classmethod
    def _parse(cls, text: str) -> Via:
        match = _VIA_START.fullmatch(text.strip())
        if match is None:
            raise ParseError(
                f"bad Via {text!r}: expected 'SIP/2.0/<transport> <sent-by>'"
            )
        transport, rest = match.groups()
        sent_by, semi, param_text = rest.partition(";")
        sent_by = sent_by.strip()
        if not sent_by:
            raise ParseError(f"bad Via {text!r}: empty sent-by")
        host, port = _parse_sent_by(sent_by)
        params = parse_params(param_text) if semi else ()
        return cls(transport=transport.upper(), host=host, port=port, params=params)

    @classmethod
    def parse_list(cls, value: str) -> list[Via]:
        return [cls.parse(part) for part in split_header_values(value)]

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        host = format_host(self.host)
        return f"SIP/2.0/{self.transport} {host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return get_param(self.params, "received")

    @property
    def rport(self) -> int | None:
        value = get_param(self.params, "rport")
        if value and value.isascii() and value.isdigit():
            return int(value)
        return None

    @property
    def has_rport(self) -> bool:
        return get_param(self.params, "rport") is not None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_params(self, **params: str | None) -> Via:
        return replace(self, params=set_params(self.params, params.items()))

    def without_params(self, *names: str) -> Via:
        return replace(self, params=drop_params(self.params, names))


@functools.lru_cache(maxsize=2048)
def _parse_via(text: str) -> Via:
    return Via._parse(text)


def _parse_sent_by(text: str) -> tuple[str, int | None]:
    """sent-by = host [ COLON port ], where COLON may carry whitespace."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        host, after = text[: end + 1], text[end + 1 :].strip()
    else:
        host, colon, port_text = text.partition(":")
        host, after = host.strip(), (":" + port_text if colon else "")
    if not after:
        return parse_host(host), None
    if not after.startswith(":"):
        raise ParseError(f"bad sent-by {text!r}")
    return parse_host(host), parse_port(after[1:].strip())


@dataclass(frozen=True)
class CSeq:
    """The CSeq header (RFC 3261 §20.16)."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        return _parse_cseq(text)

    @classmethod
    def _parse(cls, text: str) -> CSeq:
        match = _CSEQ.fullmatch(text.strip())
        if match is None:
            raise ParseError(f"bad CSeq: {text!r}")
        number = int(match.group(1))
        if number >= CSEQ_LIMIT:
            raise ParseError(f"bad CSeq: {text!r}: sequence number must be below 2**31")
        return cls(number=number, method=match.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@functools.lru_cache(maxsize=256)
def _parse_cseq(text: str) -> CSeq:
    return CSeq._parse(text)
