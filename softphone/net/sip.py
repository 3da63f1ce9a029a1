"""The SIP sockets: UDP, TCP and TLS over IPv4 and IPv6, driving a sans-I/O Endpoint.

Everything protocol-related happens in :mod:`softphone.sip`; this module only moves
bytes, keeps the endpoint's timer scheduled, and hands events to a callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import logging
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from softphone.errors import ParseError, TransportError
from softphone.net import tls
from softphone.net.dns import Locator
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Outgoing, Peer
from softphone.sip.framing import Keepalive, StreamFramer
from softphone.sip.locate import Target, literal_target, plan_for
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)
wire = logging.getLogger("softphone.wire")

SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: receive-buffer bytes in use, and its size first
# Linux: ICMP errors queued with the address they are about (read with MSG_ERRQUEUE); names
# Python 3.11 lacks. A struct sock_extended_err starts with ee_errno and ee_origin.
_ERROR_QUEUE = sys.platform.startswith("linux")
IP_RECVERR, IPV6_RECVERR = 11, 25
_RECVERR = ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR))
_ICMP_ORIGINS = (2, 3)  # SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6
# host, network, port or protocol unreachable: a transport failure (RFC 3261 §18.4)
_UNREACHABLE = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENOPROTOOPT})
EventHandler = Callable[[list[Any]], None]


class SipCore(Protocol):
    """The sans-I/O core this module drives (the user agent, or a bare endpoint): what
    it returns from each call goes to the handler."""

    def receive(self, data: bytes, source: Peer, now: float) -> list[Any]: ...

    def transport_failed(self, peer: Peer, now: float) -> list[Any]: ...

    def handle_timer(self, now: float) -> list[Any]: ...

    def get_timer(self) -> float | None: ...

    def datagrams_to_send(self) -> list[Outgoing]: ...

UDP_RECEIVE_BUFFER = 2 * 1024 * 1024  # the kernel caps it at net.core.rmem_max
PORT_ATTEMPTS = 20  # pairs of free UDP and TCP ports tried when the port is 0
# The loop timer is armed this long after the core's deadline. uvloop counts its timers in whole
# milliseconds and fires one up to half a millisecond early: half of the wake-ups at 200 calls/s
# found nothing due and armed the timer again. SIP's timers are hundreds of milliseconds long.
TIMER_SLACK = 0.001


def is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def local_host_name() -> str:
    """This machine's name, as a Request-URI may name it (no DNS lookup)."""
    return socket.gethostname()


ConnectionKey = tuple[str, str, int]  # transport, host, port
CONNECT_TIMEOUT = 5.0


@dataclass
class _Connection:
    id: int
    transport: str  # "tcp" or "tls"
    peer: tuple[str, int]
    writer: asyncio.StreamWriter
    framer: StreamFramer

    @property
    def key(self) -> ConnectionKey:
        return (self.transport, *self.peer)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, network: SipNetwork) -> None:
        self.network = network

    def datagram_received(self, data: bytes, addr: tuple[str, int] | tuple[str, int, int, int]) -> None:
        self.network.received(data, Peer("udp", _plain_host(addr[0]), addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)
        self.network.unreachable()


class SipNetwork:
    """UDP, TCP and TLS listeners for one sans-I/O core, its connections, and its one timer handle.

    ``tls_client`` (an ``ssl.SSLContext``, see :mod:`softphone.net.tls`), or ``make_tls_client``
    that makes it on the first TLS connection, enables outgoing TLS; ``listen_tls`` opens a TLS
    listener."""

    def __init__(
        self, core: SipCore, handler: EventHandler, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.core = core
        self.handler = handler
        self.loop = loop or asyncio.get_running_loop()
        self.bind_host = "0.0.0.0"
        self.locator = Locator()  # RFC 3263 over DNS; the phone sets its [net] dns_server
        self.ports: dict[str, int] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_socket: socket.socket | None = None  # for ``backlog``, asked once
        self._received_at = -1.0  # when the latest datagram or stream message came in
        self.gap = 1.0  # seconds between the latest two
        self._tcp_server: asyncio.AbstractServer | None = None
        self._tls_server: asyncio.AbstractServer | None = None
        self.tls_client: ssl.SSLContext | None = None
        # Loading the system's trusted certificates takes about 20 ms: not before TLS is used.
        self.make_tls_client: Callable[[], ssl.SSLContext] | None = None
        self._server_names: dict[tuple[str, int], str] = {}  # TLS peer -> the SIP domain it must prove
        self.tls_failures: dict[ConnectionKey, str] = {}  # the last TLS failure toward each peer
        self._connections: dict[int, _Connection] = {}
        self._by_peer: dict[ConnectionKey, int] = {}
        self._pending: dict[ConnectionKey, list[bytes]] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_kick: Callable[[], None] | None = None  # called each time the core has had its turn

    def now(self) -> float:
        """The phone's clock: ``time.monotonic()``, which is also asyncio's loop time; uvloop's
        loop time is the same clock read once per iteration in whole milliseconds, too coarse for
        a call's timeline. The loop's timers are armed with TIMER_SLACK, so none fires early."""
        return time.monotonic()

    # ------------------------------------------------------------ listening

    async def listen(self, host: str, port: int, *, tcp: bool = True, tcp_port: int | None = None) -> None:
        """UDP (and TCP) on ``port``; port 0 takes a free one, the same number for both."""
        attempts = PORT_ATTEMPTS if tcp and port == 0 and not tcp_port else 1
        for attempt in range(attempts):
            try:
                await self._listen(host, port, tcp=tcp, tcp_port=tcp_port)
                return
            except TransportError:
                # the system's free UDP port may be taken for TCP (an outgoing connection's
                # ephemeral port): try another pair
                if attempt == attempts - 1:
                    raise

    async def _listen(self, host: str, port: int, *, tcp: bool, tcp_port: int | None) -> None:
        self.bind_host = host
        family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
        try:
            sock = bind_udp(family, host, port)
        except OSError as exc:
            raise TransportError(f"cannot listen on UDP {_hostport(host, port)}: {exc.strerror or exc}") from exc
        try:
            transport, _ = await self.loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot listen on UDP {_hostport(host, port)}: {exc.strerror or exc}") from exc
        self._udp, self._udp_socket = transport, sock
        self.ports["udp"] = sock.getsockname()[1]
        if tcp:
            wanted = self.ports["udp"] if tcp_port is None or tcp_port == 0 and port == 0 else tcp_port
            try:
                self._tcp_server = await asyncio.start_server(
                    self._accepted, host, wanted, family=family, reuse_address=True
                )
            except OSError as exc:
                self.close()
                raise TransportError(f"cannot listen on TCP {_hostport(host, wanted)}: {exc.strerror or exc}") from exc
            self.ports["tcp"] = self._tcp_server.sockets[0].getsockname()[1]

    async def listen_tls(self, port: int, context: ssl.SSLContext) -> None:
        """A TLS listener on ``port`` (0 = any free port), on the address of ``listen``."""
        host = self.bind_host
        family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
        try:
            self._tls_server = await asyncio.start_server(
                self._accepted_tls, host, port, family=family, reuse_address=True, ssl=context,
                ssl_handshake_timeout=CONNECT_TIMEOUT,
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on TLS {_hostport(host, port)}: {exc.strerror or exc}") from exc
        self.ports["tls"] = self._tls_server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None
        if self._tls_server is not None:
            self._tls_server.close()
            self._tls_server = None
        for connection in list(self._connections.values()):
            connection.writer.close()
        self._connections.clear()
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------ addresses

    def local_address(self, transport: str, toward: str | None = None) -> LocalAddress:
        """Our sent-by / Contact for ``transport``: the bound address, or the address of
        the interface the system would use to reach ``toward``."""
        host = self.bind_host
        if is_unspecified(host):
            host = self._route_source(toward) if toward else None or ""
            if not host:
                host = "::1" if self.bind_host == "::" else "127.0.0.1"
        port = self.ports.get(transport) or self.ports["udp"]
        return LocalAddress(transport, host, port)

    def _route_source(self, toward: str) -> str:
        family = socket.AF_INET6 if is_ipv6(toward) else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((toward, 9))  # no packet is sent: this only asks the routing table
                return _plain_host(probe.getsockname()[0])
            except OSError:
                return ""

    async def locate(self, uri: SipUri, transport: str | None = None) -> list[Target]:
        """RFC 3263: the targets for ``uri`` (NAPTR, SRV, then A/AAAA) in the order to try them."""
        self.locator.ipv6 = is_ipv6(self.bind_host) or self.bind_host == "::"
        targets = await self.locator.locate(uri, self._supported(), transport)
        for target in targets:
            self._name_tls_peer(target.peer, uri)
        return targets

    def literal(self, uri: SipUri, transport: str | None = None) -> Target | None:
        """The target of a URI that names a numeric address and decides its transport, found
        without waiting (RFC 3263 §4.2); None when it takes a look-up (``locate``)."""
        try:
            target = literal_target(plan_for(uri, self._supported(), transport))
        except TransportError:
            return None  # ``locate`` says why
        if target is not None:
            self._name_tls_peer(target.peer, uri)
        return target

    def _supported(self) -> set[str]:
        tls_client = self.tls_client is not None or self.make_tls_client is not None
        return set(self.ports) | ({"tls"} if tls_client else set())

    async def resolve(self, uri: SipUri, transport: str | None = None) -> Peer:
        """The first target for ``uri`` (see ``locate``)."""
        return (await self.locate(uri, transport))[0].peer

    def _name_tls_peer(self, peer: Peer, uri: SipUri) -> Peer:
        """Remember the name a TLS peer's certificate must carry. RFC 5922 §7.2: "the
        client MUST use the domain of the URI as the identity", not the address it resolved to."""
        if peer.transport == "tls":
            self._server_names[(peer.host, peer.port)] = uri.host.strip("[]")
        return peer

    # ------------------------------------------------------------ data path

    def received(self, data: bytes, source: Peer) -> None:
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug("<<< %s:%s/%s\n%s", source.host, source.port, source.transport, data.decode(errors="replace"))
        now = self.now()
        self.gap, self._received_at = now - self._received_at, now
        try:
            events = self.core.receive(data, source, now)
        except Exception:  # the phone keeps serving whatever arrives
            log.exception("internal error on a message from %s:%s", source.host, source.port)
            events = []
        if events:
            self.handler(events)
        self.kick()

    def kick(self) -> None:
        """Send what the core has queued and re-arm its timer."""
        for outgoing in self.core.datagrams_to_send():
            self._send(outgoing)
        if self.on_kick is not None:
            self.on_kick()
        deadline = self.core.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline + TIMER_SLACK, self._on_timer)

    async def serve_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Keep serving until ``done()`` holds after the core's turn (a message or a timer), at
        most ``timeout`` seconds; whether it came to hold."""
        if done():
            return True
        reached = asyncio.Event()

        def check() -> None:
            if done():
                reached.set()

        self.on_kick = check
        try:
            await asyncio.wait_for(reached.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.on_kick = None

    async def linger(self, until: Callable[[], float | None]) -> None:
        """Keep serving until the time ``until()`` gives has passed, asked again after each turn
        of the core (a copy of a request we answered moves it on); None: at once."""
        while (deadline := until()) is not None and (wait := deadline - self.now()) > 0:
            await self.serve_until(lambda: until() != deadline, wait)

    def backlog(self) -> int:
        """Bytes of datagrams waiting in the UDP socket's receive buffer, not read yet (Linux's
        SO_MEMINFO, which counts each datagram's kernel buffer, about 2 KiB for a SIP request;
        0 where it is missing)."""
        sock = self._udp_socket if self._udp is not None else None
        if sock is None:
            return 0
        try:
            info = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * 9)
        except OSError:
            return 0
        return int(struct.unpack_from("=I", info)[0])

    def unreachable(self) -> None:
        """Read the ICMP errors queued on the UDP socket: a destination that is unreachable
        (its port closed, say, when the peer has exited) fails its client transactions at once,
        instead of their retransmitting on to Timer B or F (RFC 3261 §18.4)."""
        sock = self._udp_socket if self._udp is not None else None
        if sock is None or not _ERROR_QUEUE:
            return
        failed: set[tuple[str, int]] = set()
        for _ in range(64):  # bounded: a flood cannot hold the loop here
            try:
                _, ancillary, _, address = sock.recvmsg(0, 256, socket.MSG_ERRQUEUE)
            except OSError:  # nothing more queued
                break
            for level, kind, data in ancillary:
                if (level, kind) in _RECVERR and len(data) >= 5 and data[4] in _ICMP_ORIGINS \
                        and struct.unpack_from("=I", data)[0] in _UNREACHABLE:
                    failed.add((_plain_host(address[0]), address[1]))
        now = self.now()
        for host, port in sorted(failed):
            log.info("UDP %s unreachable", _hostport(host, port))
            events = self.core.transport_failed(Peer("udp", host, port), now)
            if events:
                self.handler(events)
        if failed:
            self.kick()

    def send_raw(self, data: bytes, peer: Peer) -> None:
        """Bytes outside any transaction: keep-alives."""
        self._send(Outgoing(data, peer))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        events = self.core.handle_timer(self.now())
        if events:
            self.handler(events)
        self.kick()

    def _send(self, outgoing: Outgoing) -> None:
        peer = outgoing.peer
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug(">>> %s:%s/%s\n%s", peer.host, peer.port, peer.transport, outgoing.data.decode(errors="replace"))
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(outgoing.data, (peer.host, peer.port))
            return
        connection = self._connections.get(peer.connection) if peer.connection else None
        key: ConnectionKey = (peer.transport, peer.host, peer.port)
        if connection is None:
            cid = self._by_peer.get(key)
            connection = self._connections.get(cid) if cid else None
        if connection is not None and not connection.writer.is_closing():
            connection.writer.write(outgoing.data)
            return
        if key in self._pending:
            self._pending[key].append(outgoing.data)
            return
        self._pending[key] = [outgoing.data]
        task = self.loop.create_task(self._connect(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def connect(self, peer: Peer) -> None:
        """Open a TCP or TLS connection to ``peer`` now, unless one is open (connection reuse):
        so that a TLS certificate the phone refuses is an error of the caller's, before any
        request is built. Raises TransportError (``TLS: certificate verify failed for ...``)."""
        key: ConnectionKey = (peer.transport, peer.host, peer.port)
        cid = self._by_peer.get(key)
        if peer.transport == "udp" or key in self._pending or (cid and cid in self._connections):
            return
        self._pending[key] = []
        try:
            reader, writer = await self._open(key)
            connection = self._register(reader, writer, peer.transport)
        except ConnectionError as exc:
            self._pending.pop(key, None)
            raise TransportError(tls.failure(exc, self._server_names.get(key[1:], key[1]), key[2])) from exc
        except TransportError:
            self._pending.pop(key, None)
            raise
        for data in self._pending.pop(key, []):
            writer.write(data)
        task = self.loop.create_task(self._read_loop(connection, reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, key: ConnectionKey) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        transport, host, port = key
        if transport != "tls":
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                raise TransportError(f"TCP connection to {_hostport(host, port)} failed: {exc}") from exc
        if self.tls_client is None and self.make_tls_client is not None:
            self.tls_client = self.make_tls_client()
        if self.tls_client is None:
            raise TransportError("transport tls is not enabled")
        name = self._server_names.get((host, port), host)
        try:
            opened = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self.tls_client, server_hostname=name,
                                        ssl_handshake_timeout=CONNECT_TIMEOUT),
                timeout=2 * CONNECT_TIMEOUT,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            line = tls.failure(exc, name, port)
            self.tls_failures[key] = line
            raise TransportError(line) from exc
        self.tls_failures.pop(key, None)
        return opened

    async def _connect(self, key: ConnectionKey) -> None:
        try:
            reader, writer = await self._open(key)
        except TransportError as exc:
            log.log(logging.WARNING if key[0] == "tls" else logging.INFO, "%s", exc)
            self._pending.pop(key, None)
            events = self.core.transport_failed(Peer(*key), self.now())
            if events:
                self.handler(events)
            self.kick()
            return
        try:
            connection = self._register(reader, writer, key[0])
        except ConnectionError as exc:  # closed by the peer at once (a TLS server refusing us)
            self._fail(key, exc)
            return
        for data in self._pending.pop(key, []):
            writer.write(data)
        await self._read_loop(connection, reader)

    def _fail(self, key: ConnectionKey, exc: BaseException) -> None:
        """A connection ended by an error: its client transactions fail now (a TLS server
        that refuses our certificate only says so after the handshake, with TLS 1.3)."""
        self._pending.pop(key, None)
        if key[0] == "tls":
            line = tls.failure(exc, self._server_names.get(key[1:], key[1]), key[2])
            self.tls_failures[key] = line
            log.warning("%s", line)
        events = self.core.transport_failed(Peer(*key), self.now())
        if events:
            self.handler(events)
        self.kick()

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # the read loop runs in a task of ours, so that close() can cancel it quietly
        try:
            connection = self._register(reader, writer, "tcp")
        except ConnectionError:
            return
        task = self.loop.create_task(self._read_loop(connection, reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accepted_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            connection = self._register(reader, writer, "tls")
        except ConnectionError:
            return
        task = self.loop.create_task(self._read_loop(connection, reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _register(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str) -> _Connection:
        peername = writer.get_extra_info("peername")
        if peername is None:
            writer.close()
            raise ConnectionResetError("the connection was closed at once")
        peer = (_plain_host(peername[0]), peername[1])
        connection = _Connection(next(self._ids), transport, peer, writer, StreamFramer())
        self._connections[connection.id] = connection
        self._by_peer[connection.key] = connection.id
        return connection

    async def _read_loop(self, connection: _Connection, reader: asyncio.StreamReader) -> None:
        peer = Peer(connection.transport, connection.peer[0], connection.peer[1], connection.id)
        try:
            while data := await reader.read(65536):
                try:
                    items = connection.framer.feed(data)
                except ParseError as exc:
                    log.info("closing %s connection from %s: %s", connection.transport.upper(),
                             _hostport(*connection.peer), exc)
                    break
                for item in items:
                    if isinstance(item, Keepalive):
                        if item.kind == "ping":  # RFC 5626 §4.4.1: answer a ping with a pong
                            connection.writer.write(b"\r\n")
                        continue
                    self.received(item, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except ssl.SSLError as exc:
            self._fail(connection.key, exc)
        finally:
            self._connections.pop(connection.id, None)
            if self._by_peer.get(connection.key) == connection.id:
                del self._by_peer[connection.key]
            connection.writer.close()


def bind_udp(family: int, host: str, port: int) -> socket.socket:
    """The SIP UDP socket, bound. The phone keeps it and hands it to the loop, so that
    ``SipNetwork.backlog`` and ``SipNetwork.unreachable`` ask it directly: uvloop's transport
    gives a stand-in that builds a socket object on each call. Bursts (many registrations or
    calls at once) must not overflow the default receive buffer."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    if _ERROR_QUEUE:  # elsewhere the option numbers mean other things
        with contextlib.suppress(OSError):
            level, option = _RECVERR[1] if family == socket.AF_INET6 else _RECVERR[0]
            sock.setsockopt(level, option, 1)
    return sock


def _plain_host(host: str) -> str:
    return host.split("%", 1)[0]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
