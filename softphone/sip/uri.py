"""The URIs of SIP messages: SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966)
as ``SipUri``, and every other absoluteURI (http:, mailto:, urn:, im: ...) as
``AbsoluteUri``. ``Uri`` is either; ``parse_uri`` reads any of them.

``SipUri.parse`` and ``str`` are inverses for URIs written in their canonical form
(lower-case scheme, host and parameter names; only the user part %-escaped where the
grammar requires it). Parameter and header values are kept exactly as written.
``AbsoluteUri`` keeps its text as written, so ``str(parse_uri(text)) == text``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
import urllib.parse
from collections.abc import Iterable
from dataclasses import field, replace
from typing import TypeAlias

from softphone.errors import ParseError
from softphone.frozen import cached_property, dataclass

Params = tuple[tuple[str, str | None], ...]

SCHEMES = ("sip", "sips", "tel")

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
_USER_SAFE = _UNRESERVED | frozenset("&=+$,;?/")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_SAFE = _UNRESERVED | frozenset("&=+$,")

_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_.])?")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#.()\-]*[0-9A-Fa-f*#][0-9A-Fa-f*#.()\-]*")
_TEL_VISUAL = re.compile(r"[.()\-]")
_PARAM_NAME = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )  (RFC 3261 §25.1, RFC 3986 §3.1)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# uric = reserved / unreserved / escaped (RFC 3261 §25.1), plus the "[" and "]" of an
# IP literal host (RFC 3986 §3.2.2). No fragment: an absoluteURI has none.
_URIC = frozenset(string.ascii_letters + string.digits + "-_.!~*'()" + ";/?:@&=+$," + "%[]")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

# "A user, ttl, or method uri-parameter appearing in only one URI never matches,
# even if it contains the default value. A URI that includes an maddr parameter
# will not match a URI that contains no maddr parameter." (RFC 3261 §19.1.4);
# transport has a default too, so it is treated the same way.
_MUST_APPEAR_IN_BOTH = frozenset({"user", "ttl", "method", "maddr", "transport"})


def format_host(host: str) -> str:
    """Add the brackets an IPv6 literal needs inside a URI or a Via."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def escape(text: str, safe: frozenset[str]) -> str:
    """%-escape every character of ``text`` not in ``safe`` (UTF-8 octets)."""
    out: list[str] = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{octet:02X}" for octet in ch.encode("utf-8"))
    return "".join(out)


def unescape(text: str) -> str:
    """Decode %HH escapes; ParseError on a malformed escape or invalid UTF-8."""
    if _BAD_ESCAPE.search(text):
        raise ParseError(f"bad %-escape in {text!r}")
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ParseError(f"%-escapes in {text!r} are not UTF-8") from None


def get_param(params: Params, name: str) -> str | None:
    """The value of ``name`` ("" for a flag parameter); None when absent."""
    wanted = name.lower()
    for key, value in params:
        if key == wanted:
            return "" if value is None else value
    return None


def set_params(params: Params, updates: Iterable[tuple[str, str | None]]) -> Params:
    """Replace parameters in place (order kept) or append new ones."""
    result = list(params)
    for name, value in updates:
        key = name.lower()
        for index, (existing, _) in enumerate(result):
            if existing == key:
                result[index] = (key, value)
                break
        else:
            result.append((key, value))
    return tuple(result)


def drop_params(params: Params, names: Iterable[str]) -> Params:
    """Remove every parameter named in ``names``."""
    unwanted = {name.lower() for name in names}
    return tuple((key, value) for key, value in params if key not in unwanted)


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4 or bracketed IPv6); return it lower-cased."""
    if not text:
        raise ParseError("empty host")
    if text.startswith("["):
        if not text.endswith("]"):
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        inner = text[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ParseError(f"bad IPv6 reference {text!r}") from None
        return inner.lower()
    if not _HOSTNAME.fullmatch(text):
        raise ParseError(f"bad host {text!r}")
    return text.lower()


def parse_port(text: str) -> int:
    """A decimal port number 0..65535."""
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ParseError(f"bad port {text!r}")
    return int(text)


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` where host may be a bracketed IPv6 reference."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        host, after = text[: end + 1], text[end + 1 :]
        if not after:
            return parse_host(host), None
        if not after.startswith(":"):
            raise ParseError(f"unexpected text after IPv6 reference in {text!r}")
        return parse_host(host), parse_port(after[1:])
    if ":" in text:
        host, port = text.rsplit(":", 1)
        return parse_host(host), parse_port(port)
    return parse_host(text), None


def _parse_uri_params(text: str) -> Params:
    params: list[tuple[str, str | None]] = []
    if not text:
        return ()
    for segment in text.split(";"):
        name, eq, value = segment.partition("=")
        if not _PARAM_NAME.fullmatch(name):
            raise ParseError(f"bad URI parameter {segment!r}")
        params.append((name.lower(), value if eq else None))
    return tuple(params)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for segment in text.split("&"):
        name, eq, value = segment.partition("=")
        if not name or not eq:
            raise ParseError(f"bad URI header {segment!r}")
        headers.append((name, value))
    return tuple(headers)


@functools.lru_cache(maxsize=1024)
def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IP address (an IPv6 one with or without its brackets), not a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _norm_host(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


def _loose_unescape(text: str | None) -> str:
    return urllib.parse.unquote(text or "", errors="replace")


@dataclass(frozen=True)
class SipUri:
    """A sip:, sips: or tel: URI; tel: keeps its number in ``user``."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        if not colon:
            raise ParseError(f"no scheme in URI {text!r}")
        scheme = scheme.lower()
        if scheme not in SCHEMES:
            raise ParseError(f"unsupported URI scheme {scheme!r}")
        if scheme == "tel":
            return cls._parse_tel(rest)
        return cls._parse_sip(scheme, rest)

    @classmethod
    def _parse_tel(cls, rest: str) -> SipUri:
        number, _, params = rest.partition(";")
        if not number:
            raise ParseError("empty telephone number")
        if not _TEL_NUMBER.fullmatch(number):
            raise ParseError(f"bad telephone number {number!r}")
        return cls(scheme="tel", user=number, params=_parse_uri_params(params))

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipUri:
        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            raw_user, colon, raw_password = userinfo.partition(":")
            if not raw_user:
                raise ParseError("empty user part")
            user = unescape(raw_user)
            password = unescape(raw_password) if colon else None
        hostparams, question, header_text = rest.partition("?")
        hostport, semi, param_text = hostparams.partition(";")
        if not hostport:
            raise ParseError("empty host")
        host, port = parse_host_port(hostport)
        if semi and not param_text:
            raise ParseError("empty URI parameter")
        return cls(
            scheme=scheme,
            user=user,
            password=password,
            host=host,
            port=port,
            params=_parse_uri_params(param_text),
            headers=_parse_uri_headers(header_text) if question else (),
        )

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        """The URI as written (once: a URI is written into every request that carries it)."""
        params = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{params}"
        userinfo = ""
        if self.user is not None:
            userinfo = escape(self.user, _USER_SAFE)
            if self.password is not None:
                userinfo += ":" + escape(self.password, _PASSWORD_SAFE)
            userinfo += "@"
        headers = ""
        if self.headers:
            headers = "?" + "&".join(f"{n}={v}" for n, v in self.headers)
        return f"{self.scheme}:{userinfo}{self.host_port}{params}{headers}"

    def as_sip(self) -> SipUri:
        """This URI where a SIP URI is required (see ``AbsoluteUri.as_sip``)."""
        return self

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return get_param(self.params, name) is not None

    def with_params(self, **params: str | None) -> SipUri:
        return replace(self, params=set_params(self.params, params.items()))

    def with_param(self, name: str, value: str | None) -> SipUri:
        """Like ``with_params`` for names that are not Python identifiers."""
        return replace(self, params=set_params(self.params, [(name, value)]))

    def without_params(self, *names: str) -> SipUri:
        return replace(self, params=drop_params(self.params, names))

    @property
    def transport(self) -> str:
        value = self.param("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    @property
    def host_port(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def matches(self, other: Uri) -> bool:
        """URI equivalence of RFC 3261 §19.1.4 (tel: numbers compared without
        visual separators, RFC 3966 §4)."""
        if not isinstance(other, SipUri) or self.scheme != other.scheme:
            return False
        if self.scheme == "tel":
            number = _TEL_VISUAL.sub("", self.user or "").lower()
            other_number = _TEL_VISUAL.sub("", other.user or "").lower()
            return number == other_number and self._param_map() == other._param_map()
        # "Comparison of the userinfo of SIP and SIPS URIs is case-sensitive."
        if (self.user, self.password) != (other.user, other.password):
            return False
        if _norm_host(self.host) != _norm_host(other.host) or self.port != other.port:
            return False
        mine, theirs = self._param_map(), other._param_map()
        for name in mine.keys() | theirs.keys():
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in _MUST_APPEAR_IN_BOTH:
                return False
        # "URI header components are never ignored. Any present header component
        # MUST be present in both URIs and match for the URIs to match."
        return self._header_map() == other._header_map()

    def _param_map(self) -> dict[str, str]:
        return {n: _loose_unescape(v).lower() for n, v in self.params}

    def _header_map(self) -> dict[str, str]:
        return {n.lower(): _loose_unescape(v) for n, v in self.headers}


@dataclass(frozen=True)
class AbsoluteUri:
    """An absoluteURI whose scheme is not sip, sips or tel (RFC 3261 §25.1, RFC 3986
    §4.3): ``scheme`` lower-cased, ``opaque`` the text after the first colon as written.

    SIP does not route on such URIs, so there is no host here: code that needs one
    calls ``as_sip()``, which raises ParseError.
    """

    scheme: str
    opaque: str
    #: the scheme as written, when not in lower case; str() gives it back
    spelling: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        if not colon:
            raise ParseError(f"no scheme in URI {text!r}")
        if not _SCHEME.fullmatch(scheme):
            raise ParseError(f"bad URI scheme {scheme!r}")
        lowered = scheme.lower()
        if lowered in SCHEMES:
            raise ParseError(f"{lowered}: URIs are read by SipUri.parse, not AbsoluteUri")
        # absoluteURI = scheme ":" ( hier-part / opaque-part ); both take at least one character
        if not rest:
            raise ParseError(f"empty {lowered}: URI")
        bad = next((ch for ch in rest if ch not in _URIC), None)
        if bad is not None:
            raise ParseError(f"character {bad!r} not allowed in URI {text!r}")
        if _BAD_ESCAPE.search(rest):
            raise ParseError(f"bad %-escape in {text!r}")
        return cls(lowered, rest, None if scheme == lowered else scheme)

    def __str__(self) -> str:
        return f"{self.spelling or self.scheme}:{self.opaque}"

    def as_sip(self) -> SipUri:
        """Raise ParseError: this URI is used where a SIP URI is required (a Contact
        that becomes a remote target, a Route, a next hop ...)."""
        raise ParseError(f"{self.scheme}: URI {str(self)!r} where a sip:, sips: or tel: URI is required")

    def matches(self, other: Uri) -> bool:
        """Equivalence after RFC 3986 §6.2.2.1 case normalisation (scheme and the hex
        digits of %-escapes); everything else compares exactly."""
        return (
            isinstance(other, AbsoluteUri)
            and self.scheme == other.scheme
            and _upper_escapes(self.opaque) == _upper_escapes(other.opaque)
        )


def _upper_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda match: match.group().upper(), text)


#: any URI a SIP message can carry: Request-URI, From, To, Contact, Route ...
Uri: TypeAlias = SipUri | AbsoluteUri


@functools.lru_cache(maxsize=2048)
def parse_uri(text: str) -> Uri:
    """A SIP-URI, SIPS-URI or absoluteURI (RFC 3261 §25.1): sip:, sips: and tel: give a
    ``SipUri`` (validated by their own grammar), every other scheme an ``AbsoluteUri``.
    Parsed once per distinct text (URIs are immutable; the same ones come in every call)."""
    scheme = text.strip().partition(":")[0].lower()
    if scheme in SCHEMES:
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)
