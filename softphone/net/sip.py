"""The SIP sockets: UDP and TCP over IPv4 and IPv6, driving a sans-I/O Endpoint.

Everything protocol-related happens in :mod:`softphone.sip`; this module only moves
bytes, keeps the endpoint's timer scheduled, and hands events to a callback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from softphone.errors import ParseError, TransportError
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Outgoing, Peer, literal_peer
from softphone.sip.framing import Keepalive, StreamFramer
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)
wire = logging.getLogger("softphone.wire")

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


@dataclass
class _Connection:
    id: int
    peer: tuple[str, int]
    writer: asyncio.StreamWriter
    framer: StreamFramer


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, network: SipNetwork) -> None:
        self.network = network

    def datagram_received(self, data: bytes, addr: tuple[str, int] | tuple[str, int, int, int]) -> None:
        self.network.received(data, Peer("udp", _plain_host(addr[0]), addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class SipNetwork:
    """UDP and TCP listeners for one sans-I/O core, and its one timer handle."""

    def __init__(
        self, core: SipCore, handler: EventHandler, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.core = core
        self.handler = handler
        self.loop = loop or asyncio.get_running_loop()
        self.bind_host = "0.0.0.0"
        self.ports: dict[str, int] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.AbstractServer | None = None
        self._connections: dict[int, _Connection] = {}
        self._by_peer: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return self.loop.time()

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
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port), family=family
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on UDP {_hostport(host, port)}: {exc.strerror or exc}") from exc
        self._udp = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # bursts (many registrations or calls at once) must not overflow the default buffer
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            except OSError:
                pass
        self.ports["udp"] = transport.get_extra_info("sockname")[1]
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

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None
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

    async def resolve(self, uri: SipUri, transport: str | None = None) -> Peer:
        """The next hop for ``uri``: RFC 3263 without DNS SRV (A/AAAA lookup of the host)."""
        transport = (transport or uri.param("transport") or ("tls" if uri.scheme == "sips" else "udp")).lower()
        if transport not in self.ports:
            raise TransportError(f"transport {transport} is not enabled")
        literal = literal_peer(uri, transport)
        if literal is not None:
            return literal
        host = uri.param("maddr") or uri.host
        port = uri.port or (5061 if transport == "tls" else 5060)
        family = socket.AF_INET6 if is_ipv6(self.bind_host) or self.bind_host == "::" else socket.AF_INET
        try:
            infos = await self.loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise TransportError(f"cannot resolve {host}: {exc}") from exc
        return Peer(transport, _plain_host(str(infos[0][4][0])), port)

    # ------------------------------------------------------------ data path

    def received(self, data: bytes, source: Peer) -> None:
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug("<<< %s:%s/%s\n%s", source.host, source.port, source.transport, data.decode(errors="replace"))
        try:
            events = self.core.receive(data, source, self.now())
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
        deadline = self.core.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

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
        if connection is None:
            cid = self._by_peer.get((peer.host, peer.port))
            connection = self._connections.get(cid) if cid else None
        if connection is not None and not connection.writer.is_closing():
            connection.writer.write(outgoing.data)
            return
        key = (peer.host, peer.port)
        if key in self._pending:
            self._pending[key].append(outgoing.data)
            return
        self._pending[key] = [outgoing.data]
        task = self.loop.create_task(self._connect(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, key: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(key[0], key[1]), timeout=5)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("TCP connection to %s failed: %s", _hostport(*key), exc)
            self._pending.pop(key, None)
            events = self.core.transport_failed(Peer("tcp", key[0], key[1]), self.now())
            if events:
                self.handler(events)
            self.kick()
            return
        connection = self._register(reader, writer)
        for data in self._pending.pop(key, []):
            writer.write(data)
        await self._read_loop(connection, reader)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # the read loop runs in a task of ours, so that close() can cancel it quietly
        connection = self._register(reader, writer)
        task = self.loop.create_task(self._read_loop(connection, reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _register(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Connection:
        peername = writer.get_extra_info("peername")
        connection = _Connection(next(self._ids), (_plain_host(peername[0]), peername[1]), writer, StreamFramer())
        self._connections[connection.id] = connection
        self._by_peer[connection.peer] = connection.id
        return connection

    async def _read_loop(self, connection: _Connection, reader: asyncio.StreamReader) -> None:
        peer = Peer("tcp", connection.peer[0], connection.peer[1], connection.id)
        try:
            while data := await reader.read(65536):
                try:
                    items = connection.framer.feed(data)
                except ParseError as exc:
                    log.info("closing TCP connection from %s: %s", _hostport(*connection.peer), exc)
                    break
                for item in items:
                    if isinstance(item, Keepalive):
                        if item.kind == "ping":  # RFC 5626 §4.4.1: answer a ping with a pong
                            connection.writer.write(b"\r\n")
                        continue
                    self.received(item, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.pop(connection.id, None)
            if self._by_peer.get(connection.peer) == connection.id:
                del self._by_peer[connection.peer]
            connection.writer.close()


def _plain_host(host: str) -> str:
    return host.split("%", 1)[0]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
