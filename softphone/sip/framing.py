"""Cutting a TCP or TLS byte stream into SIP messages (RFC 3261 §18.3) and
keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import re

from softphone.errors import ParseError
from softphone.frozen import dataclass
from softphone.sip.message import MAX_MESSAGE_SIZE

KEEPALIVE_PING = b"\r\n\r\n"
KEEPALIVE_PONG = b"\r\n"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Keepalive:
    """A CRLF keep-alive: ``"ping"`` (CRLFCRLF, to be answered with
    KEEPALIVE_PONG) or ``"pong"`` (a single CRLF)."""

    kind: str


PING = Keepalive("ping")
PONG = Keepalive("pong")


class StreamFramer:
    """Feed it the bytes of one connection; it returns whole messages, in order.

    A message is returned as raw bytes: its header section and exactly
    Content-Length octets of body, ready for ``parse_message(..., stream=True)``.
    A ping split across two reads is reported as a pong followed by a ping, so the
    peer still gets its answer.
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._after_pong = False

    @property
    def pending(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | Keepalive]:
        self._buffer += data
        out: list[bytes | Keepalive] = []
        while self._buffer:
            item = (
                self._next_keepalive()
                if self._buffer[:1] == b"\r"
                else self._next_message()
            )
            if item is None:
                break
            out.append(item)
        return out

    def _next_keepalive(self) -> Keepalive | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        if buffer[:2] != KEEPALIVE_PONG:
            raise ParseError("stray CR between messages")
        if buffer[:4] == KEEPALIVE_PING:
            del buffer[:4]
            self._after_pong = False
            return PING
        if len(buffer) == 3 and buffer[2:3] == b"\r":
            return None  # the rest of a ping may still come
        del buffer[:2]
        if self._after_pong:
            # The second half of a ping whose first CRLF was already reported.
            self._after_pong = False
            return PING
        self._after_pong = not buffer
        return PONG

    def _next_message(self) -> bytes | None:
        self._after_pong = False
        buffer = self._buffer
        if buffer[:1] == b"\n":
            del buffer[:1]  # a bare LF before the start line is ignored too
            return None if not buffer else self._next_message()
        match = _HEADER_END.search(buffer)
        if match is None:
            if len(buffer) > self.max_message_size:
                raise ParseError(
                    f"header section longer than {self.max_message_size} bytes"
                )
            return None
        head_end = match.end()
        length = _content_length(bytes(buffer[: match.start() + 1]))
        total = head_end + length
        if total > self.max_message_size:
            raise ParseError(
                f"message of {total} bytes exceeds {self.max_message_size}"
            )
        if len(buffer) < total:
            return None
        message = bytes(buffer[:total])
        del buffer[:total]
        return message


def _content_length(head: bytes) -> int:
    values = {m.group(1) for m in _CONTENT_LENGTH.finditer(head)}
    if not values:
        # "If a stream-based protocol (such as TCP) is used as a transport, then
        # the header field MUST be used." (RFC 3261 §20.14)
        raise ParseError("missing Content-Length on a stream transport")
    if len(values) > 1:
        raise ParseError("conflicting Content-Length values")
    value = values.pop()
    if not re.fullmatch(rb"\d{1,10}", value):
        raise ParseError(f"bad Content-Length: {value.decode('latin-1')!r}")
    return int(value)
