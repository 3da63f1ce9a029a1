"""The answer to a request the parser refused (RFC 3261 §8.2): a 400 whose reason
phrase names what is wrong, addressed from what could still be read, copying Via,
From, To, Call-ID and CSeq as received (§8.2.6.2)."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable

from softphone.errors import ParseError
from softphone.sip.headers import CSeq, NameAddress, Via, add_tag, is_token, split_header_values
from softphone.sip.message import Headers, MessageParseError, Response


def bad_request(headers: Headers, error: ParseError) -> Response | None:
    """A 400 answer built from what could be read, or None if it cannot be addressed.

    Its reason phrase names what is wrong ("Bad From Header", "Missing Call-ID" ...),
    its Warning says why. Via, From, To, Call-ID and CSeq are copied as received; only
    a header that cannot be read at all is replaced, so that the 400 itself stays well
    formed.
    """
    vias = headers.get_all("Via")
    if not vias:
        return None
    try:
        Via.parse(vias[0])
    except ParseError:
        return None
    # "The Via header field values in the response MUST equal the Via header field
    # values in the request and MUST maintain the same ordering." (RFC 3261 §8.2.6.2)
    # Up to the first one that cannot be read, which would make the 400 unreadable too.
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items:
        if name != "Via":
            continue
        parts = split_header_values(value)
        readable = list(itertools.takewhile(_readable_via, parts))
        if len(readable) < len(parts):
            pairs += [("Via", part) for part in readable]
            break
        pairs.append(("Via", value))
    method = error.method if isinstance(error, MessageParseError) else None
    for name, check, placeholder in _COPIED:
        received = headers.get(name)
        try:
            if received is None:
                raise ParseError("missing")
            check(received)
            value = received
        except ParseError:
            value = placeholder
            if name == "CSeq" and method is not None and is_token(method):
                # the client matches a response by branch and CSeq method (§17.1.3)
                value = f"0 {method}"
        if name == "To" and NameAddress.parse(value).tag is None:
            # "the UAS MUST add a tag to the To header field in the response" (§8.2.6.2);
            # "it MUST be globally unique and cryptographically random with at least
            # 32 bits of randomness." (§19.3)
            value = add_tag(value, secrets.token_hex(5))
        pairs.append((name, value))
    phrase = error.phrase if isinstance(error, MessageParseError) else "Bad Request"
    detail = str(error).replace("\r", " ").replace("\n", " ")[:120]
    pairs.append(("Warning", f'399 softphone "{_quote(detail)}"'))
    return Response(400, phrase, Headers.of(*pairs))


_SALVAGED = {
    "via": "Via",
    "v": "Via",
    "from": "From",
    "f": "From",
    "to": "To",
    "t": "To",
    "call-id": "Call-ID",
    "i": "Call-ID",
    "cseq": "CSeq",
}


def salvage_headers(data: bytes, max_lines: int = 256, max_length: int = 1024) -> Headers:
    """The headers a 400 needs, read leniently from a message the parser refused
    (over-long or undecodable lines, a missing blank line...): RFC 3261 §8.2 expects
    the UAS to answer what it can still address. A line that is not UTF-8 is skipped
    rather than copied with other bytes."""
    data = data.lstrip(b"\r\n")
    ends = [index for index in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if index >= 0]
    lines: list[str | None] = []
    for raw in data[: min(ends, default=len(data))].splitlines()[1 : max_lines + 1]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            lines.append(None)
            continue
        if text[:1] in (" ", "\t") and lines:
            # header folding (RFC 3261 §7.3.1): the continuation joins the previous line
            previous = lines[-1]
            lines[-1] = None if previous is None else previous.rstrip(" \t") + " " + text.strip(" \t")
        else:
            lines.append(text)
    pairs: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = (line or "").partition(":")
        canonical = _SALVAGED.get(name.strip(" \t").lower())
        if not sep or canonical is None or len(value) > max_length:
            continue
        if canonical != "Via" and any(n == canonical for n, _ in pairs):
            continue
        pairs.append((canonical, value.strip(" \t")))
    return Headers.of(*pairs)


def _readable_via(value: str) -> bool:
    try:
        Via.parse(value)
    except ParseError:
        return False
    return True


def _check_call_id(value: str) -> None:
    if not value.strip() or any(c.isspace() for c in value.strip()):
        raise ParseError("bad Call-ID")


# (header, its check, what replaces it when it cannot be read)
_COPIED: tuple[tuple[str, Callable[[str], object], str], ...] = (
    ("From", NameAddress.parse, "<sip:invalid@invalid>;tag=0"),
    ("To", NameAddress.parse, "<sip:invalid@invalid>"),
    ("Call-ID", _check_call_id, "invalid"),
    ("CSeq", CSeq.parse, "0 INVALID"),
)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
