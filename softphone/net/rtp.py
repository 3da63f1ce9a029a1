"""RTP/RTCP datagram sockets: a port pair per media stream, chosen from a range."""

from __future__ import annotations

import logging
import random
import socket

from softphone.errors import TransportError

log = logging.getLogger(__name__)


class RtpPortPair:
    """An RTP socket on an even port and its RTCP socket on the next one (RFC 3550 §11:
    "RTP SHOULD use an even destination port number and the corresponding RTCP stream
    SHOULD use the next higher (odd) destination port number")."""

    def __init__(self, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self.port: int = rtp.getsockname()[1]

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def _bind(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def open_port_pair(host: str, port_range: tuple[int, int], *, attempts: int = 64) -> RtpPortPair:
    """Bind RTP and RTCP on an even port and the next one inside ``port_range``.

    A single port is tried first, then any free pair; ``(0, 0)`` means any free pair.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = port_range
    if low == 0:
        candidates = [0] * attempts
    elif low == high:
        # like linphone, a single configured port is a preference: when another call
        # holds it, the stream takes any free pair
        candidates = [low] + [0] * attempts
    else:
        candidates = list(range(low + (low % 2), high, 2))
        random.shuffle(candidates)
        candidates = candidates[:attempts]
    error: OSError | None = None
    for port in candidates:
        try:
            rtp = _bind(family, host, port)
        except OSError as exc:
            error = exc
            continue
        bound = rtp.getsockname()[1]
        if bound % 2 or bound >= 65535:
            rtp.close()
            continue
        try:
            rtcp = _bind(family, host, bound + 1)
        except OSError as exc:
            rtp.close()
            error = exc
            continue
        return RtpPortPair(rtp, rtcp)
    raise TransportError(f"no free RTP port pair in {low}-{high} on {host}: {error}")
