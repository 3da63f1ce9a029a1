"""RTP/RTCP datagram sockets: a port pair per media stream, chosen from a range."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import select
import socket
from collections.abc import Callable

from softphone.errors import TransportError

log = logging.getLogger(__name__)

EARLY_DATAGRAMS = 256  # kept while a stream has no receiver yet
MAX_SPARES = 4  # pairs bound ahead for each (address, port range)


class RtpPortPair:
    """An RTP socket on an even port and its RTCP socket on the next one (RFC 3550 §11:
    "RTP SHOULD use an even destination port number and the corresponding RTCP stream
    SHOULD use the next higher (odd) destination port number")."""

    def __init__(self, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self.port: int = rtp.getsockname()[1]
        self.on_rtp: Receiver | None = None
        self.on_rtcp: Receiver | None = None
        self._transports: list[asyncio.DatagramTransport] = []
        self._early: list[tuple[bool, bytes, Address]] = []
        self._handed: list[socket.socket] = []  # sockets given to a transport, which closes them
        self._closed = False
        self._starting: asyncio.Future[None] | None = None
        self.taken = True  # False while it waits as a spare: what comes then is dropped
        self.sent_errors = 0

    async def start(self) -> None:
        """Hand both sockets to the event loop; datagrams go to ``on_rtp``/``on_rtcp``."""
        self.start_soon()
        assert self._starting is not None
        await asyncio.shield(self._starting)  # a caller given up does not stop it halfway

    def start_soon(self) -> None:
        """Begin handing both sockets to the running event loop; ``start`` waits for it."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())

    def started(self) -> bool:
        """Whether both sockets are the loop's: it reads whatever reaches them."""
        return self._starting is not None and self._starting.done() and len(self._transports) == 2

    def take(self) -> None:
        """A spare's call has it: what comes from now on is kept for the call."""
        self.taken = True

    async def _start(self) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        for sock, is_rtcp in ((self.rtp, False), (self.rtcp, True)):
            self._handed.append(sock)  # from here on the transport closes it
            try:
                protocol = functools.partial(_Datagrams, self, is_rtcp)
                transport, _ = await loop.create_datagram_endpoint(protocol, sock=sock)
            except OSError:
                sock.close()
                return
            if self._closed:  # the call ended while we waited: the transport owns the socket now
                transport.close()
                return
            self._transports.append(transport)

    def set_receivers(self, on_rtp: Receiver | None, on_rtcp: Receiver | None) -> None:
        """Where datagrams go; those that arrived before there was a receiver come now."""
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        early, self._early = self._early, []
        for is_rtcp, data, addr in early:
            self.deliver(is_rtcp, data, addr)

    def deliver(self, is_rtcp: bool, data: bytes, addr: Address) -> None:
        if not self.taken:
            return  # a spare's: an old stream, a scan
        receiver = self.on_rtcp if is_rtcp else self.on_rtp
        if receiver is not None:
            receiver(data, addr)
        elif len(self._early) < EARLY_DATAGRAMS and not self._closed:
            # the peer may send (a keyframe's parameter sets, say) before our stream is set up
            self._early.append((is_rtcp, data, addr))

    def send_rtp(self, data: bytes, addr: Address) -> None:
        self._send(0, self.rtp, data, addr)

    def send_rtcp(self, data: bytes, addr: Address) -> None:
        self._send(1, self.rtcp, data, addr)

    def _send(self, index: int, sock: socket.socket, data: bytes, addr: Address) -> None:
        if len(self._transports) > index:
            self._transports[index].sendto(data, addr)
            return
        try:
            sock.sendto(data, addr)
        except OSError:
            self.sent_errors += 1

    def drain(self) -> None:
        """Drop what reached the sockets before a call took them (a scan, a stray stream)."""
        waiting = [sock for sock in (self.rtp, self.rtcp) if sock.fileno() >= 0]  # one may have failed to start
        if hasattr(select, "poll"):  # one system call when nothing waits (select() ends at descriptor 1023)
            poller = select.poll()
            for sock in waiting:
                poller.register(sock, select.POLLIN)
            ready = {fd for fd, _ in poller.poll(0)}
            waiting = [sock for sock in waiting if sock.fileno() in ready]
        for sock in waiting:
            for _ in range(EARLY_DATAGRAMS):  # bounded: a flood cannot hold the loop here
                try:
                    sock.recv(2048)
                except OSError:  # nothing more waiting
                    break

    def close(self) -> None:
        self._closed = True
        self._early.clear()
        self.on_rtp = self.on_rtcp = None
        # a transport closes its own socket once the loop has finished with it; closing the
        # socket here as well would pull the descriptor from under the loop's pending calls
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        for sock in (self.rtp, self.rtcp):
            if not any(sock is handed for handed in self._handed):
                sock.close()


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


class SparePairs:
    """Port pairs bound before the calls that take them, as pjsua binds its media transports
    ahead: a new call takes its pairs without binding on its way to the answer, and ``refill``
    binds as many as the last call took once the answer has left. Only for a range or any free
    pair: a single configured port (linphone's default 7078) is bound by its call, so that it
    stays free while the phone is idle.

    Refilled in a running event loop, a spare is handed to the loop at once, which drops what
    reaches it until a call takes it: taking it makes no system call. Without a loop, taking it
    reads off what came before (``drain``)."""

    def __init__(self) -> None:
        self._spares: dict[tuple[str, tuple[int, int]], list[RtpPortPair]] = {}
        self._wanted: dict[tuple[str, tuple[int, int]], int] = {}  # taken since the last refill
        self._loop: asyncio.AbstractEventLoop | None = None  # where the spares were started

    def take(self, host: str, port_range: tuple[int, int]) -> RtpPortPair:
        low, high = port_range
        if low == high != 0:
            return open_port_pair(host, port_range)
        key = (host, port_range)
        self._wanted[key] = self._wanted.get(key, 0) + 1
        spares = self._spares.setdefault(key, [])
        if not spares:
            return open_port_pair(host, port_range)
        pair = spares.pop()
        if self._loop is not None and pair.started():
            # what reached it before now may wait in this loop turn's events, behind the one
            # that called us: the pair is taken once they have been handled (and dropped)
            self._loop.call_soon(pair.take)
        else:
            pair.drain()
            pair.take()
        return pair

    def refill(self) -> None:
        wanted, self._wanted = self._wanted, {}
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        for key, count in wanted.items():
            spares = self._spares.setdefault(key, [])
            while len(spares) < min(count, MAX_SPARES):
                try:
                    pair = open_port_pair(*key)
                except TransportError:
                    break  # none free now: the next call binds its own
                pair.taken = False
                if self._loop is not None:
                    pair.start_soon()
                spares.append(pair)

    def held(self) -> list[int]:
        """The RTP ports of the pairs bound ahead."""
        return [pair.port for spares in self._spares.values() for pair in spares]

    def close(self) -> None:
        for spares in self._spares.values():
            for pair in spares:
                pair.close()
        self._spares.clear()
        self._wanted.clear()


Address = tuple[str, int]
Receiver = Callable[[bytes, Address], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, pair: RtpPortPair, rtcp: bool) -> None:
        self.pair = pair
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: tuple[str, int] | tuple[str, int, int, int]) -> None:
        self.pair.deliver(self.rtcp, data, (addr[0].split("%", 1)[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer may not be listening yet
        log.debug("RTP socket error: %s", exc)
