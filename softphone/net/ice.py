"""ICE (RFC 8445) for one media stream over aioice: gathering, checks, nomination, and an RTP
transport whose datagrams go over the selected candidate pair.

aioice is imported when the first ICE stream is made, never by ``import softphone.cli``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from softphone.errors import SdpError, TransportError
from softphone.frozen import dataclass
from softphone.net.rtp import RtpPortPair
from softphone.sdp.ice import Candidate, IceDescription, default_candidate, has_ice
from softphone.sdp.model import SessionDescription
from softphone.sdp.negotiate import NegotiatedStream, SessionConfig

if TYPE_CHECKING:
    import aioice

log = logging.getLogger(__name__)

Address = tuple[str, int]
Receiver = Callable[[bytes, Address], None]

EARLY_DATAGRAMS = 256  # kept while a stream has no receiver yet
GATHER_TIMEOUT = 5.0  # STUN and TURN servers that do not answer in time give no candidate
# how indirect a path is, from the candidate types of the pair (RFC 8445 §5.1.1.1)
_INDIRECTION = {"host": 0, "srflx": 1, "prflx": 1, "relay": 2}
_PAIR_TYPE = {0: "host", 1: "srflx", 2: "relay"}


@dataclass(frozen=True)
class IceServers:
    """Where candidates beyond host ones come from ([net] stun_server, turn_server and credentials)."""

    stun: Address | None = None
    turn: Address | None = None
    turn_username: str | None = None
    turn_password: str | None = None


@dataclass(frozen=True)
class SelectedPair:
    """The candidate pair media flows on: its type is the most indirect of its two candidates."""

    local_type: str
    local: Address
    remote_type: str
    remote: Address

    @property
    def type(self) -> str:
        level = max(_INDIRECTION.get(self.local_type, 0), _INDIRECTION.get(self.remote_type, 0))
        return _PAIR_TYPE[level]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "local_type": self.local_type, "local": _text(self.local),
                "remote_type": self.remote_type, "remote": _text(self.remote)}


def _text(addr: Address) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def _to_sdp(candidate: aioice.Candidate) -> Candidate:
    return Candidate.parse(candidate.to_sdp())


class IceTransport:
    """The RtpTransport of one media stream when it runs over ICE.

    ``gather()`` binds the candidates' sockets and returns what our SDP carries;
    ``set_remote()`` starts the connectivity checks (or, for a peer without ICE, sends to its
    c=/m= address from our default candidate); ``start()`` waits until a pair is selected.
    """

    def __init__(self, *, controlling: bool, components: int, servers: IceServers, host: str | None) -> None:
        import aioice  # lazily: only calls with ICE load it

        self._aioice = aioice
        self.connection = aioice.Connection(
            ice_controlling=controlling, components=components,
            stun_server=servers.stun, turn_server=servers.turn,
            turn_username=servers.turn_username, turn_password=servers.turn_password,
            use_ipv4=host is None or ":" not in host, use_ipv6=host is None or ":" in host,
        )
        self.components = components
        self.host = host
        self.port = 0  # of the default candidate, for m=
        self.address = ""  # of the default candidate, for c=
        self.on_rtp: Receiver | None = None
        self.on_rtcp: Receiver | None = None
        self.selected: SelectedPair | None = None
        self.failure: str | None = None
        self._early: list[tuple[int, bytes]] = []
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._remote_ufrag: str | None = None
        self._rtcp_apart: Address | None = None  # a peer without ICE nor rtcp-mux: RTCP's own address
        self._rtcp_off = False  # an ICE peer without rtcp-mux, to our single component: no RTCP
        self._closed = False

    # ------------------------------------------------------------ gathering

    async def gather(self) -> IceDescription:
        """Our host, server-reflexive and relayed candidates; TransportError when there is none."""
        connection = self.connection
        if self.host is None:
            await connection.gather_candidates()
        else:
            # host candidates on the address the phone is bound to only, like its other sockets
            # (aioice's own gathering takes every interface but loopback)
            connection._local_candidates_start = True
            for component in sorted(connection._components):
                connection._local_candidates += await connection.get_component_candidates(
                    component, [self.host], timeout=int(GATHER_TIMEOUT))
            connection._local_candidates_end = True
        candidates = tuple(_to_sdp(c) for c in connection.local_candidates)
        default = default_candidate(candidates)
        if default is None:
            raise TransportError(f"ICE gathered no candidate (bound to {self.host or 'every interface'})")
        self.address, self.port = default.address, default.port
        log.info("ICE candidates: %s", ", ".join(f"{c.type} {c.address}:{c.port}/{c.component}" for c in candidates))
        return IceDescription(connection.local_username, connection.local_password, candidates)

    # ------------------------------------------------------------ checks and nomination

    def set_remote(self, remote: IceDescription | None, rtp: Address | None, rtcp: Address | None,
                   mux: bool = True) -> None:
        """The peer's ICE from its SDP: start the checks (once per remote ufrag). A peer without
        ICE: media goes from our default candidate to its c=/m= address."""
        if self._closed or self._connecting is not None and (remote is None or remote.ufrag == self._remote_ufrag):
            return
        if self._connecting is not None:
            log.info("the peer restarted ICE (new ufrag): keeping the selected pair")
            return
        if not mux and self.components == 1:
            # RFC 5761 §5.1.3: without rtcp-mux in the answer, RTCP must not go to the RTP port
            self._rtcp_apart = rtcp if remote is None else None
            self._rtcp_off = remote is not None
        if remote is None:
            if rtp is not None:
                self._plain(rtp, rtcp)
            self._connecting = asyncio.get_running_loop().create_task(asyncio.sleep(0))
            return
        self._remote_ufrag = remote.ufrag
        self._connecting = asyncio.get_running_loop().create_task(self._connect(remote))

    async def _connect(self, remote: IceDescription) -> None:
        connection = self.connection
        connection.remote_username = remote.ufrag
        connection.remote_password = remote.pwd
        connection.remote_is_lite = remote.lite
        if remote.lite and not connection.ice_controlling:
            # RFC 8445 §6.1.1: "If one agent is lite and the other full, the full agent MUST take
            # the controlling role"
            connection.switch_role(ice_controlling=True)
        try:
            for candidate in remote.candidates:
                if candidate.is_udp and candidate.component <= self.components:
                    await connection.add_remote_candidate(self._aioice.Candidate.from_sdp(str(candidate)))
            await connection.add_remote_candidate(None)
            await connection.connect()
        except (ConnectionError, ValueError, OSError) as exc:
            self.failure = str(exc)
            log.warning("ICE failed: %s", exc)
            return
        self.selected = self._selected()
        if self.selected is not None:
            log.info("ICE selected a %s pair: %s -> %s", self.selected.type, _text(self.selected.local),
                     _text(self.selected.remote))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def _plain(self, rtp: Address, rtcp: Address | None) -> None:
        """Plain RTP from the default candidate's socket (its base, for a server-reflexive one)."""
        aioice = self._aioice
        for component, addr in ((1, rtp), (2, rtcp or (rtp[0], rtp[1] + 1))):
            protocol = self._default_protocol(component)
            if component > self.components or protocol is None:
                continue
            remote = aioice.Candidate(foundation="plain", component=component, transport="udp", priority=1,
                                      host=addr[0], port=addr[1], type="host")
            self.connection._nominated[component] = aioice.ice.CandidatePair(protocol, remote)
        self.selected = self._selected()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def _default_protocol(self, component: int) -> Any:
        candidates = tuple(_to_sdp(c) for c in self.connection.local_candidates)
        default = default_candidate(candidates, component)
        if default is None:
            return None
        base = (default.address, default.port)
        if default.type == "srflx" and default.related_address and default.related_port:
            base = (default.related_address, default.related_port)
        for protocol in self.connection._protocols:
            local = protocol.local_candidate
            if local is not None and (local.host, local.port) == base:
                return protocol
        return None

    def _selected(self) -> SelectedPair | None:
        pair = self.connection._nominated.get(1)
        if pair is None:
            return None
        local, remote = pair.local_candidate, pair.remote_candidate
        remote_type = remote.type if remote.foundation != "plain" else "host"
        return SelectedPair(local.type, (local.host, local.port), remote_type, pair.remote_addr)

    def cancel_checks(self) -> None:
        """The call ends: checks still running stop, and ``start()`` waiting for them returns."""
        if self._connecting is not None and not self._connecting.done():
            self.failure = self.failure or "the call ended before ICE selected a pair"
            self._connecting.cancel()

    async def start(self) -> None:
        """Wait for the checks to select a pair (at once for a peer without ICE)."""
        if self._connecting is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._connecting)

    # ------------------------------------------------------------ the RtpTransport

    def send_rtp(self, data: bytes, addr: Address) -> None:
        self._send(1, data)

    def send_rtcp(self, data: bytes, addr: Address) -> None:
        # RFC 5761 §5.1.3: with rtcp-mux, RTCP goes on the RTP component
        if self._rtcp_apart is not None:
            pair = self.connection._nominated.get(1)
            if pair is not None and not self._closed:
                pair.protocol.transport.sendto(data, self._rtcp_apart)
        elif not self._rtcp_off:
            self._send(2 if self.components > 1 and 2 in self.connection._nominated else 1, data)

    def _send(self, component: int, data: bytes) -> None:
        pair = self.connection._nominated.get(component)
        if pair is None or self._closed:
            return
        # the TURN transport binds a channel for a new peer by itself; a UDP transport sends at once
        pair.protocol.transport.sendto(data, pair.remote_addr)

    def set_receivers(self, on_rtp: Receiver | None, on_rtcp: Receiver | None) -> None:
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        early, self._early = self._early, []
        for component, data in early:
            self._deliver(component, data)

    async def _read(self) -> None:
        while not self._closed:
            try:
                data, component = await self.connection.recvfrom()
            except ConnectionError:
                return
            self._deliver(component, data)

    def _deliver(self, component: int, data: bytes) -> None:
        receiver = self.on_rtcp if component == 2 else self.on_rtp
        remote = self.selected.remote if self.selected is not None else ("", 0)
        if receiver is not None:
            receiver(data, remote)
        elif len(self._early) < EARLY_DATAGRAMS and not self._closed:
            self._early.append((component, data))

    def summary(self) -> dict[str, Any] | None:
        """The selected pair for the call summary and ``--json``; None until one is selected."""
        return self.selected.to_json() if self.selected is not None else None

    def close(self) -> None:
        """Stop the checks and close every candidate's socket (in the background)."""
        if self._closed:
            return
        self._closed = True
        self.on_rtp = self.on_rtcp = None
        self._early.clear()
        for task in (self._connecting, self._reader):
            if task is not None and not task.done():
                task.cancel()
        with contextlib.suppress(RuntimeError):  # no running loop: the sockets go with the process
            asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close()


MediaPorts = RtpPortPair | IceTransport  # what carries one stream: plain sockets or ICE
Prepared = tuple[list[MediaPorts], SessionConfig]
ICE_POLICY = 3  # [net] firewall_policy=ice, linphone's number


class IceSettings(Protocol):
    """The [net] keys ICE reads (the phone passes its config's [net] section)."""

    @property
    def firewall_policy(self) -> int: ...

    @property
    def stun_server(self) -> str: ...

    @property
    def turn_server(self) -> str: ...

    @property
    def turn_username(self) -> str: ...

    @property
    def turn_password(self) -> str: ...


def _server(text: str) -> Address | None:
    """HOST:PORT as the config wrote it ([v6]:port for IPv6)."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def servers_for(settings: IceSettings) -> IceServers | None:
    """The STUN and TURN servers with firewall_policy=ice; None when calls do not use ICE."""
    if settings.firewall_policy != ICE_POLICY:
        return None
    return IceServers(_server(settings.stun_server), _server(settings.turn_server),
                      settings.turn_username or None, settings.turn_password or None)


def _offered(offer: bytes | None) -> SessionDescription | None:
    if not offer:
        return None
    try:
        return SessionDescription.parse(offer)
    except SdpError:
        return None  # the call answers it with 488 as before


async def prepare(
    ports: list[MediaPorts], cfg: SessionConfig, settings: IceSettings, bind: str | None, offer: bytes | None = None,
) -> Prepared:
    """With firewall_policy=ice, an ICE transport per stream in place of its port pair, and the
    candidates in the SDP we offer (``offer`` None) or answer. An offer without ICE, or gathering
    that fails, leaves the plain ports (RTP as without ICE)."""
    servers = servers_for(settings)
    remote = _offered(offer)
    bind = None if bind in (None, "", "0.0.0.0", "::") else bind
    if servers is None or offer is not None and (remote is None or not any(
            has_ice(remote, i) for i in range(len(remote.media)))):
        return ports, cfg
    transports: list[IceTransport] = []
    streams = []
    try:
        for stream in cfg.streams:
            m = next((m for m in remote.media if m.media == stream.kind), None) if remote is not None else None
            # RFC 5761 §5.1.3: our offer carries a=rtcp-mux and a single component; answering an offer
            # without it, RTCP gets a component of its own
            components = 2 if m is not None and not m.rtcp_mux else 1
            transport = IceTransport(controlling=remote is None, components=components, servers=servers, host=bind)
            transports.append(transport)
            ice = await transport.gather()
            streams.append(replace(stream, port=transport.port, ice=ice, rtcp_mux=True, rtcp_port=None))
    except (TransportError, OSError) as exc:
        log.warning("ICE gathering failed, plain RTP instead: %s", exc)
        for transport in transports:
            transport.close()
        return ports, cfg
    for pair in ports:
        pair.close()
    ready: list[MediaPorts] = list(transports)
    return ready, replace(cfg, address=transports[0].address, streams=tuple(streams))


def follow_remote(ports: Sequence[MediaPorts], streams: Sequence[NegotiatedStream]) -> dict[str, IceTransport]:
    """A negotiation's outcome: each ICE transport learns the peer's candidates (or its plain
    address). Returns the ICE transports by stream kind."""
    found: dict[str, IceTransport] = {}
    for stream in streams:
        index = 0 if stream.kind == "audio" else 1
        transport = ports[index] if index < len(ports) else None
        if not isinstance(transport, IceTransport) or stream.declined:
            continue
        rtp = (stream.remote_address, stream.remote_port) if stream.remote_address else None
        transport.set_remote(stream.remote_ice, rtp, stream.remote_rtcp, stream.rtcp_mux)
        found[stream.kind] = transport
    return found
