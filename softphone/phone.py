"""The phone: the asyncio edge of the user agent (sockets, media, devices, one timer
handle) and the Python API.

phone = Phone(config, bind="127.0.0.1")
await phone.start()
session = await phone.call("sip:alice@127.0.0.1:5070")
summary = await session.wait()
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from softphone import preload
from softphone.accounts import (
    Account,
    accounts_from_config,
    call_target,
    callee_identity,
    identity_at,
    parse_identity,
    party,
)
from softphone.agent import (
    AgentCommand,
    CallCommand,
    CallForgotten,
    CallRefused,
    IncomingCall,
    IncomingPolicy,
    Resolve,
    TransferCall,
    UserAgent,
)
from softphone.call import ALLOW, CallEnded, CallSetup, MediaUpdate, StateChanged, TransferUpdate
from softphone.call.states import CallResult, Direction, EndCause, Progress
from softphone.callers import incoming_policy
from softphone.config import DEFAULT_USER_AGENT, Config
from softphone.config.values import FirewallPolicy, split_dns_server
from softphone.errors import SoftphoneError, TransportError, UsageError
from softphone.events import (
    CallSummary,
    Incoming,
    Listening,
    MediaNegotiated,
    MediaNotice,
    PhoneEvent,
    RegistrationEvent,
    StateEvent,
    TransferEvent,
)
from softphone.guard import Guard, Limits
from softphone.media.clock import MediaClock
from softphone.media.ringing import RING, RINGBACK, play_cadence, plays_sound, ring_sound
from softphone.net import ice, stun
from softphone.net.dns import Locator
from softphone.net.rtp import SparePairs
from softphone.net.sip import SipNetwork, is_unspecified, local_host_name
from softphone.net.tls import TlsSettings
from softphone.net.tls import client_context as tls_client_context
from softphone.net.tls import server_context as tls_server_context
from softphone.offer import audio_options_for, prepare_media, video_options_for
from softphone.registrations import RegistrationUpdate, ResolveRegister
from softphone.session import CallSession, MediaChoice, stream_summary
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Endpoint, Peer
from softphone.sip.message import Request
from softphone.sip.registration import Registration
from softphone.sip.transaction import Timers
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)

FINISHED_KEPT = 1000  # ended calls whose summaries the phone keeps (``Phone.finished``)
SATURATED_AFTER = 0.1  # seconds the media clock may run late before new calls are refused 503
SATURATED_BACKLOG = 1024 * 1024  # bytes waiting in the SIP socket (~500 requests; past T1 = 500 ms): 503
SATURATED_GAP = 0.02  # seconds after the message before: a phone that waited this long has no queue

EventSink = Callable[[PhoneEvent], None]

__all__ = ["IncomingPolicy", "Phone", "incoming_policy"]


class Phone:
    """A SIP user agent on the network, with media and devices: the asyncio edge of
    :class:`softphone.agent.UserAgent`, and the Python API."""

    def __init__(
        self, config: Config, *, bind: str | None = None, on_event: EventSink | None = None, media: bool = True
    ) -> None:
        self.config = config
        self.bind = bind if bind is not None else (config.sip.bind_address or ("::" if config.sip.ipv6 else "0.0.0.0"))
        self.on_event = on_event or (lambda event: None)
        sip = config.sip
        self.timers = Timers(t1=sip.t1_ms / 1000, t2=sip.t2_ms / 1000, t4=sip.t4_ms / 1000)
        self.endpoint = Endpoint(self.timers)
        self.user_agent = sip.user_agent or DEFAULT_USER_AGENT
        self.identity = parse_identity(config)
        self.accounts = accounts_from_config(config)
        self.agent = UserAgent(
            self.endpoint,
            user_agent=self.user_agent,
            in_call_timeout=float(sip.in_call_timeout),
            local_hosts=() if is_unspecified(self.bind) else (self.bind,),
            domains=[a.domain for a in self.accounts] + [self.identity.uri.as_sip().host, local_host_name()],
            keepalive_period=sip.keepalive_period_ms / 1000,
        )
        self.guard = Guard(Limits(rate=sip.max_requests_per_second, burst=sip.request_burst,
                                  max_transactions=sip.max_transactions, max_dialogs=sip.max_dialogs))
        self.guard.protect(self.endpoint, self.agent.calls, self.user_agent, live=self.agent.active_calls,
                           busy=self._saturated)
        self.media_choice = MediaChoice()
        self.muted = False  # new calls start muted too (the shell's ``mute``)
        self.sessions: dict[str, CallSession] = {}
        self._pending_registrations: deque[tuple[Registration, str]] = deque()
        # the latest ended calls (a phone answering for days must not keep them all) and how many
        self.finished: deque[CallSummary] = deque(maxlen=FINISHED_KEPT)
        self.ended_calls = self.answered_calls = 0
        self.keep_quality_history = False  # each call's figures of every second, for a report
        self._network: SipNetwork | None = None
        self._spare_ports = SparePairs()
        self._unregistered: asyncio.Event | None = None  # while closing: set when no unregistration is pending
        self._tasks: set[asyncio.Task[Any]] = set()
        self.preload_media = media  # False: signalling only (``register``), no media libraries loaded early

    @property
    def policy(self) -> IncomingPolicy | None:
        """What to do with incoming calls; None (the default) refuses them with 480."""
        return self.agent.policy

    @policy.setter
    def policy(self, policy: IncomingPolicy | None) -> None:
        self.agent.policy = policy

    # ------------------------------------------------------------ lifecycle

    @property
    def network(self) -> SipNetwork:
        if self._network is None:
            raise TransportError("the phone is not started")
        return self._network

    def now(self) -> float:
        return self.network.now()

    async def start(self) -> None:
        sip = self.config.sip
        self._network = SipNetwork(self.agent, self._execute)
        settings = TlsSettings(sip.root_ca, sip.tls_cert, sip.tls_key, sip.verify_server_certs,
                               sip.verify_server_cn, self.config.path)
        if settings.root_ca or settings.cert or settings.key:  # a file that cannot be read stops the start
            self._network.tls_client = tls_client_context(settings)
        else:
            self._network.make_tls_client = lambda: tls_client_context(settings)
        if self.config.net.dns_server:
            self._network.locator = Locator(split_dns_server(self.config.net.dns_server))
        # as in linphone: sip_tcp_port 0 = no TCP, -1 = any free port; sip_port -1 (or 0) = any free port
        udp_port = max(0, sip.sip_port)
        tcp = sip.sip_tcp_port != 0
        same = sip.sip_tcp_port == sip.sip_port or (sip.sip_tcp_port == -1 and udp_port == 0)
        tcp_port = None if same else max(0, sip.sip_tcp_port)
        if sip.sip_tls_port != 0:
            tls_server = tls_server_context(settings)
        await self._network.listen(self.bind, udp_port, tcp=tcp, tcp_port=tcp_port)
        if sip.sip_tls_port != 0:
            await self._network.listen_tls(max(0, sip.sip_tls_port), tls_server)
        for transport, port in self._network.ports.items():
            self.on_event(Listening(transport, self.bind, port))
        if self.preload_media:
            # load the media libraries in the background so that the first call's audio starts at once
            modules = preload.media_modules(self.config, self.media_choice)
            loading = asyncio.get_running_loop().run_in_executor(None, preload.load, modules)
            loading.add_done_callback(preload.settle_heap)
            self._spawn(loading)
        else:
            preload.settle_heap(None)

    def register(self) -> list[Registration]:
        """Register every account that asks for it ([proxy_N] reg_sendregister=1), keep the
        registrations fresh and their flows alive; ``close`` removes them. The first account
        starts at once, each further one on a later turn of the loop (``_start_registrations``)."""
        network = self.network
        started = []
        for account in self.accounts:
            if not account.register:
                continue
            local = self._behind_nat(network.local_address(account.transport, account.proxy.host))
            if account.transport == "tls" and account.proxy.scheme == "sips":
                local = dataclasses.replace(local, secure=True)
            route = account.route if account.route[0].uri.as_sip().host_port != account.proxy.host_port else ()
            registration = Registration(
                aor=account.aor, registrar=account.proxy.without_params("lr"), local=local,
                credentials=account.credentials, expires=account.expires, route=route,
                instance_id=account.instance_id, user_agent=self.user_agent, allow=ALLOW,
            )
            started.append(registration)
            self._pending_registrations.append((registration, account.transport))
        self._start_registrations()
        return started

    def _start_registrations(self) -> None:
        """Send the first REGISTER of the next account, and of the one after it on the loop's
        next turn: the answers that came in meanwhile (a 401 to answer with credentials, a 200)
        are handled between two accounts' starts, so that one account's registration does not
        wait for every other account to have started."""
        pending = self._pending_registrations
        if not pending or self._network is None:
            return
        registration, transport = pending.popleft()
        self._execute(self.agent.register(registration, transport, self.now()))
        if pending:
            asyncio.get_running_loop().call_soon(self._start_registrations)

    def unregister(self) -> bool:
        """Remove every registration (Expires: 0); False when none was registered."""
        self._pending_registrations.clear()  # not started: nothing to remove
        commands = self.agent.unregister_all(self.now())
        self._execute(commands)
        return bool(commands) or self.agent.registrations.unregistering()

    def target(self, uri: str | SipUri) -> SipUri:
        """Who ``call`` would call: a SIP URI, or with an account also ``bob`` / ``bob@domain``."""
        return call_target(uri, self.default_account)

    def _account_for(self, request: Request) -> Account | None:
        """The account an incoming call was made to: by the To user, else the only one."""
        to = request.to_addr.uri
        user = to.user if isinstance(to, SipUri) else None
        matching = [a for a in self.accounts if a.aor.uri.as_sip().user == user]
        if matching:
            return matching[0]
        return self.accounts[0] if len(self.accounts) == 1 else None

    @property
    def default_account(self) -> Account | None:
        """The account outgoing calls go through: ``[sip] default_proxy``; -1 calls directly."""
        index = self.config.sip.default_proxy
        if index < 0:
            return None
        return next((a for a in self.accounts if a.index == index), self.accounts[0] if self.accounts else None)

    async def settle(self) -> None:
        """Serve until our BYEs are answered, at most Timer F (64*T1). The call ended for the
        user when the BYE went (RFC 3261 §15.1.1), but its transaction retransmits it until an
        answer or Timer F (§17.1.2): closing the socket sooner leaves a peer that lost the first
        copies in the call until its media times out. Likewise for a BYE we answered: if our 200
        is lost, the peer sends its BYE again; serve while its next copies are due (see
        ``Endpoint.copies_due``, at most Timer J), not leave it retransmitting until its Timer F."""
        network = self._network
        if network is None:
            return
        if not await network.serve_until(lambda: not self.endpoint.unanswered("BYE"), self.timers.timer_f):
            log.info("a BYE is still unanswered after Timer F")
        await network.linger(lambda: self.endpoint.copies_due("BYE"))

    async def close(self, timeout: float = 1.0) -> None:
        """Hang up every call (BYE or CANCEL) and unregister, waiting at most ``timeout``
        seconds for the answers; then close the sockets."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        live = [s for s in self.sessions.values() if not s.done.done()]
        for session in live:
            session.hangup()
        waits: list[Awaitable[Any]] = [asyncio.shield(s.done) for s in live]
        self._pending_registrations.clear()
        if self._network is not None:
            self._unregistered = asyncio.Event()
            self._execute(self.agent.unregister_all(self.now()))
            if self.agent.registrations.unregistering():
                waits.append(self._unregistered.wait())
        if waits:
            futures = [asyncio.ensure_future(w) for w in waits]
            await asyncio.wait(futures, timeout=timeout)
            for future in futures:
                future.cancel()  # what is still waiting is given up below
        for session in live:
            if not session.done.done():
                self._execute(self.agent.abandon(session.call_id, self.now()))
        ending = [asyncio.shield(s.done) for s in live if not s.done.done()]
        if ending:  # media stopping
            await asyncio.wait(ending, timeout=max(0.1, deadline - loop.time()))
        for session in list(self.sessions.values()):
            self._release(session)
        self._spare_ports.close()
        if self._network is not None:
            self._network.close()
        for task in self._tasks:
            task.cancel()

    def ports(self) -> dict[str, int]:
        return dict(self.network.ports)

    # ------------------------------------------------------------ making and controlling calls

    async def call(
        self, uri: str | SipUri, *, transport: str | None = None, media: MediaChoice | None = None
    ) -> CallSession:
        account = self.default_account
        target = self.target(uri)
        if target.scheme not in ("sip", "sips"):
            raise UsageError(f"cannot call {target}: only sip: URIs can be called directly")
        via = account if account is not None and target.host == account.domain else None
        if transport is not None:
            target = target.with_params(transport=transport.lower())
        hop = via.route[0].uri.as_sip() if via is not None else target
        # RFC 3263: the first hop's targets in order; the INVITE fails over along them
        targets = await self.network.locate(hop, transport or (via.transport if via is not None else None))
        peer = targets[0].peer
        if peer.transport == "tls":
            await self.network.connect(peer)  # a refused certificate is an error of this call
        local = self._local_address(peer.transport, peer.host, via)
        if peer.transport == "tls" and "sips" in (target.scheme, hop.scheme):
            local = dataclasses.replace(local, secure=True)
        choice = media or self.media_choice
        ports, session_config = self._media_for(local.sdp_host, choice)
        ports, session_config = await ice.prepare(ports, session_config, self.config.net, self.bind)
        session_config = await stun.prepare(ports, session_config, self.config.net)  # firewall_policy=stun
        identity = via.aor if via is not None else identity_at(self.identity, local.host, local.port)
        setup = CallSetup(local, identity, session_config, self.user_agent,
                          via.route if via is not None else (), via.credentials if via is not None else ())
        call_id, commands = self.agent.call(target, setup, peer, self.now(), targets[1:])
        session = self._new_session(call_id, ports, choice)
        self._execute(commands)
        return session

    def answer(self, call_id: str) -> None:
        self._execute(self.agent.answer(call_id, self.now()))

    def reject(self, call_id: str, status: int = 486) -> None:
        self._execute(self.agent.reject(call_id, self.now(), status))

    def hangup(self, call_id: str, cause: EndCause = EndCause.LOCAL_HANGUP, reason: str | None = None) -> None:
        self._execute(self.agent.hangup(call_id, self.now(), cause, reason))

    def hold(self, call_id: str) -> None:
        self._execute(self.agent.hold(call_id, self.now()))

    def resume(self, call_id: str) -> None:
        self._execute(self.agent.resume(call_id, self.now()))

    def transfer(self, call_id: str, target: str | SipUri) -> None:
        """Blind transfer (REFER, RFC 3515): ask the peer of an established call to call ``target``
        (a SIP URI, or with an account also ``bob`` / ``bob@domain``). ``TransferEvent``s report
        how it goes; once the peer reports that the target answered, the call ends (BYE)."""
        self._execute(self.agent.transfer(call_id, self.target(target), self.now()))

    def _new_session(self, call_id: str, ports: list[ice.MediaPorts], choice: MediaChoice) -> CallSession:
        video_options, bitrate = video_options_for(self.config, choice)
        record = self.agent.calls[call_id]
        session = CallSession(self, record, ports=ports, audio_options=audio_options_for(self.config, choice),
                              video_options=video_options, video_bitrate=bitrate, muted=self.muted,
                              media_choice=choice)
        session.monitor.keep_history = self.keep_quality_history
        self.sessions[call_id] = session
        return session

    def _local_address(self, transport: str, toward: str, account: Account | None = None) -> LocalAddress:
        """Our Via and Contact for a call: the address the call uses; behind a NAT the public
        address ([net] nat_address with firewall_policy=nat_address, else the one the account's
        registrar saw us at) for Contact and SDP; with [sip] guess_hostname=0 the Contact is
        the host and port of [sip] contact as written."""
        local = self._behind_nat(self.network.local_address(transport, toward))
        if local.contact_host is None and account is not None and transport == "udp":
            public = self.agent.registrations.local_for(account.aor.uri)
            if public is not None:
                local = dataclasses.replace(local, contact_host=public.contact_host,
                                            contact_port=public.contact_port, media_host=public.media_host)
        if self.config.sip.guess_hostname or local.contact_host is not None:
            return local
        configured = self.identity.uri.as_sip()
        return dataclasses.replace(local, contact_host=configured.host, contact_port=configured.port)

    def _behind_nat(self, local: LocalAddress) -> LocalAddress:
        """[net] firewall_policy=nat_address: Contact and SDP carry [net] nat_address (our
        port); sockets stay bound where they are."""
        net = self.config.net
        if net.firewall_policy != FirewallPolicy.NAT_ADDRESS or not net.nat_address:
            return local
        return dataclasses.replace(local, contact_host=net.nat_address, contact_port=local.port,
                                   media_host=net.nat_address)

    def _media_for(self, host: str, choice: MediaChoice) -> ice.Prepared:
        bind = self.bind if not is_unspecified(self.bind) else ("::" if ":" in host else "0.0.0.0")
        user = self.identity.uri.as_sip().user or "-"
        if self.config.net.firewall_policy == FirewallPolicy.STUN:  # its queries read the sockets themselves
            return prepare_media(self.config, bind, host, choice, user)
        self.network.loop.call_soon(self._spare_ports.refill)  # runs once the answer or offer has left
        return prepare_media(self.config, bind, host, choice, user, self._spare_ports.take)

    # ------------------------------------------------------------ carrying out the agent's commands

    def _execute(self, commands: list[AgentCommand]) -> None:
        for command in commands:
            if isinstance(command, CallCommand):
                session = self.sessions.get(command.call_id)
                if session is not None:
                    self._on_call_command(session, command.command)
            elif isinstance(command, (Resolve, ResolveRegister)):
                self._resolve(command)
            elif isinstance(command, IncomingCall):
                self._on_incoming(command.request, command.source)
            elif isinstance(command, CallRefused):
                self._on_refused(command)
            elif isinstance(command, CallForgotten):
                self.sessions.pop(command.call_id, None)
            elif isinstance(command, TransferCall):
                self._spawn(self._call_for_transfer(command))
            elif isinstance(command, RegistrationUpdate):
                self._on_registration(command)
        if self._network is not None:
            self._network.kick()

    def _on_call_command(
        self, session: CallSession, command: StateChanged | MediaUpdate | CallEnded | TransferUpdate
    ) -> None:
        if isinstance(command, StateChanged):
            self._on_state(session, command)
        elif isinstance(command, TransferUpdate):
            self.on_event(TransferEvent(session.call_id, command.direction, command.state, str(command.target),
                                        command.sip_code, command.reason, command.new_call_id))
        elif isinstance(command, MediaUpdate):
            self.on_event(MediaNegotiated(session.call_id, tuple(stream_summary(s) for s in command.streams)))
            session.ice.update(ice.follow_remote(session.ports, command.streams))
            self._spawn(session.apply_media(command.streams, self._media_events(session)))
        else:
            self._spawn(self._teardown(session, command))

    def _on_state(self, session: CallSession, change: StateChanged) -> None:
        session.on_state(change.state)
        self._ringing(session, change.state)
        if change.state == Progress.INCOMING:
            request = session.call.invite
            assert request is not None
            self.on_event(Incoming(session.call_id, party(request.from_addr), party(request.to_addr)))
        if change.state == Progress.TERMINATING:
            self._spawn(session.stop_media())
        self.on_event(StateEvent(session.call_id, change.state, change.sip_code))

    async def _call_for_transfer(self, command: TransferCall) -> None:
        """The peer transferred us (REFER): call the target as ``call`` does, with the media the
        transferred call had; the user agent reports the new call's progress to the transferor."""
        original = self.sessions.get(command.call_id)
        try:
            session = await self.call(command.target, media=original.media_choice if original is not None else None)
        except SoftphoneError as exc:
            log.warning("call %s: cannot call the transfer target %s: %s", command.call_id, command.target, exc)
            self._execute(self.agent.transfer_failed(command.call_id, self.now()))
            return
        self._execute(self.agent.transfer_placed(command.call_id, session.call_id, self.now()))

    def _resolve(self, command: Resolve | ResolveRegister) -> None:
        literal = self.network.literal(command.target, command.transport)  # no look-up to wait for
        if literal is None:
            self._spawn(self._resolve_and_send(command))
        else:
            self.agent.send(command.call_id, command.request, literal.peer, self.now(), [])

    async def _resolve_and_send(self, command: Resolve | ResolveRegister) -> None:
        try:
            targets = await self.network.locate(command.target, command.transport)
        except TransportError as exc:
            log.warning("call %s: %s", command.call_id, exc)
            self._execute(self.agent.unreachable(command.call_id, command.request, self.now()))
            return
        self.agent.send(command.call_id, command.request, targets[0].peer, self.now(), targets[1:])
        self.network.kick()

    def _on_incoming(self, request: Request, source: Peer, prepared: ice.Prepared | None = None) -> None:
        account = self._account_for(request)
        local = self._local_address(source.transport, source.host, account)
        if source.transport == "tls" and request.uri.scheme == "sips":
            local = dataclasses.replace(local, secure=True)
        try:
            ports, session_config = prepared or self._media_for(local.sdp_host, self.media_choice)
        except TransportError as exc:
            log.warning("incoming call refused: %s", exc)
            self._execute(self.agent.refuse(request, 503, self.now()))
            return
        if prepared is None and self.config.net.firewall_policy in (ice.ICE_POLICY, stun.STUN_POLICY):  # ICE/STUN first
            self._spawn(self._incoming_ice(request, source, (ports, session_config)))
            return
        # requests we send in this dialog (BYE, re-INVITE) may be challenged by the account's proxy
        credentials = account.credentials if account is not None else ()
        setup = CallSetup(
            local, callee_identity(request, self.identity), session_config, self.user_agent, (), credentials
        )
        commands = self.agent.accept(request, setup, source, self.now())
        if self._network is not None:  # the answer leaves now, before the call's events and media
            self._network.kick()
        self._new_session(request.call_id, ports, self.media_choice)
        self._execute(commands)

    async def _incoming_ice(self, request: Request, source: Peer, plain: ice.Prepared) -> None:
        ports, config = await ice.prepare(*plain, self.config.net, self.bind, request.body)
        self._on_incoming(request, source, (ports, await stun.prepare(ports, config, self.config.net)))

    def _on_refused(self, refused: CallRefused) -> None:
        request = refused.request
        summary = CallSummary(CallResult.REJECTED, refused.status, refused.cause, request.call_id,
                              Direction.INCOMING, str(request.from_addr.uri), reason=refused.cause.value)
        self._finished(summary)
        self.on_event(summary)

    def _on_registration(self, update: RegistrationUpdate) -> None:
        change = update.change
        self.on_event(RegistrationEvent(update.aor, change.state, change.sip_code, change.reason, change.expires,
                                        change.public_address))
        if self._unregistered is not None and not self.agent.registrations.unregistering():
            self._unregistered.set()

    def _ringing(self, session: CallSession, state: Progress) -> None:
        """Ringback while the peer rings, a ring for an incoming call: on [sound] ringer_dev_id
        when set, else on the call's sound device; [sound] remote_ring / local_ring replace the tones."""
        if state == Progress.RINGING and session.ringing is None:
            sound = self.config.sound
            cadence: tuple[float, ...]
            device = sound.ringer_dev_id or session.audio_options.sink
            if session.call.direction == Direction.OUTGOING:
                tone, cadence = ring_sound(sound.remote_ring, RINGBACK)
            else:
                tone, cadence = ring_sound(sound.local_ring, RING)
                if self.policy is not None and self.policy.auto_answer and self.policy.delay <= 0:
                    return
            if sound.ringer_dev_id or plays_sound(device):
                session.ringing = asyncio.get_running_loop().create_task(play_cadence(device, tone, cadence))
        elif state not in _STILL_RINGING and session.ringing is not None:
            session.ringing.cancel()
            session.ringing = None

    async def _teardown(self, session: CallSession, ended: CallEnded) -> None:
        try:
            await session.stop_media()
        finally:
            self._release(session)
            summary = session.summary(ended.reason)
            session.monitor.detach()
            self._finished(summary)
            self.on_event(summary)
            session.finish(summary)
            # the agent keeps the ended call a while for late retransmissions; its media, sockets
            # and figures go now (a phone under load holds thousands of ended calls)
            if self.sessions.get(session.call_id) is session:
                del self.sessions[session.call_id]

    def _saturated(self) -> bool:
        """The phone is behind: the media clock's batches run more than SATURATED_AFTER late, or
        more than SATURATED_BACKLOG bytes wait in its SIP socket, asked (a system call) only when
        this message came less than SATURATED_GAP after the one before, as a queue makes them."""
        network = self.network
        if MediaClock.of(network.loop).lateness > SATURATED_AFTER:
            return True
        return network.gap < SATURATED_GAP and network.backlog() > SATURATED_BACKLOG

    def _finished(self, summary: CallSummary) -> None:
        self.finished.append(summary)
        self.ended_calls += 1
        self.answered_calls += summary.timeline.get("answered") is not None

    def _media_events(self, session: CallSession) -> Callable[[str, dict[str, Any]], None]:
        def on_media_event(name: str, data: dict[str, Any]) -> None:
            if name in ("first_audio_rx", "first_video_frame"):
                session.mark(name)
            self.on_event(MediaNotice(session.call_id, name, data))
            if session.done.done():
                return
            if name == "window_closed":
                self.hangup(session.call_id, EndCause.WINDOW_CLOSED)  # the user closed the video window
            elif name == "nortp":
                log.warning("call %s: no RTP for %s s, hanging up", session.call_id, data.get("seconds"))
                self.hangup(session.call_id, EndCause.NO_RTP, f"no RTP received for {data.get('seconds')} s")

        return on_media_event

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media task failed", exc_info=task.exception())

    def _release(self, session: CallSession) -> None:
        for pair in session.ports:
            pair.close()
        session.ports.clear()


_STILL_RINGING = (Progress.RINGING, Progress.TRYING, Progress.PROGRESS, Progress.CALLING, Progress.INCOMING)
