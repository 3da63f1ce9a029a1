"""The composition root: config -> endpoint, transports, calls, media; the Python API.

phone = Phone(config, bind="127.0.0.1")
await phone.start()
session = await phone.call("sip:alice@127.0.0.1:5070")
summary = await session.wait()
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from softphone import __version__
from softphone.accounts import Account, Registrar, accounts_from_config
from softphone.call import (
    Call,
    CallEnded,
    CallSetup,
    Command,
    MediaStop,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
)
from softphone.config import Config
from softphone.errors import ConfigError, ParseError, StateError, TransportError, UsageError
from softphone.media.ringing import RING, RINGBACK, play_cadence, plays_sound
from softphone.net.rtp import RtpPortPair, open_port_pair
from softphone.net.sip import SipNetwork, is_unspecified
from softphone.offer import audio_options_for, codec_specs, video_options_for
from softphone.sdp.negotiate import SessionConfig, StreamConfig
from softphone.session import CallSession, MediaChoice, stream_summary
from softphone.sip.endpoint import (
    AckReceived,
    AnswerTimedOut,
    Endpoint,
    Event,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    build_response,
)
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request
from softphone.sip.registration import Registration
from softphone.sip.transaction import Timers
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
BYE_GRACE_T1 = 8  # how long (in T1) a BYE may go unanswered before the call counts as over: 4 s by default

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class IncomingPolicy:
    """What to do with incoming calls."""

    auto_answer: bool = False
    delay: float = 0.0
    allow: tuple[str, ...] = ()  # fnmatch patterns on the caller's URI; empty = everyone
    max_calls: int = 10
    reject: int | None = None  # answer every INVITE with this final code
    ring_timeout: float = 30.0


class Phone:
    """A SIP user agent: transports, calls and (later) media, driven by asyncio."""

    def __init__(
        self, config: Config, *, bind: str | None = None, on_event: EventSink | None = None, media: bool = True
    ) -> None:
        self.config = config
        self.bind = bind if bind is not None else (config.sip.bind_address or ("::" if config.sip.ipv6 else "0.0.0.0"))
        self.on_event = on_event or (lambda event: None)
        sip = config.sip
        self.timers = Timers(t1=sip.t1_ms / 1000, t2=sip.t2_ms / 1000, t4=sip.t4_ms / 1000)
        self.endpoint = Endpoint(self.timers)
        self.user_agent = sip.user_agent or f"softphone/{__version__}"
        self.identity = _parse_identity(config)
        self.policy: IncomingPolicy | None = None
        self.media_choice = MediaChoice()
        self.sessions: dict[str, CallSession] = {}
        self.finished: list[dict[str, Any]] = []
        self._network: SipNetwork | None = None
        self._registrar: Registrar | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.accounts = accounts_from_config(config)
        self.preload_media = media  # False: signalling only (``register``), no media libraries loaded early

    # ------------------------------------------------------------ lifecycle

    @property
    def network(self) -> SipNetwork:
        if self._network is None:
            raise TransportError("the phone is not started")
        return self._network

    async def start(self) -> None:
        sip = self.config.sip
        self._network = SipNetwork(self.endpoint, self._on_sip_events)
        tcp = sip.sip_tcp_port >= 0
        tcp_port = None if sip.sip_tcp_port in (sip.sip_port, 0) else sip.sip_tcp_port
        await self._network.listen(self.bind, sip.sip_port, tcp=tcp, tcp_port=tcp_port)
        for transport, port in self._network.ports.items():
            self.on_event({"event": "listening", "transport": transport, "host": self.bind, "port": port})
        self._registrar = Registrar(self.endpoint, self._network, self.user_agent, self.on_event,
                                    keepalive_period=sip.keepalive_period_ms / 1000)
        if self.preload_media:
            # load the media libraries in the background so that the first call's audio starts at once
            self._spawn(asyncio.get_running_loop().run_in_executor(None, _preload_media))

    def register(self) -> list[Registration]:
        """Register every account that asks for it ([proxy_N] reg_sendregister=1)."""
        registrar = self._registrar
        if registrar is None:
            raise TransportError("the phone is not started")
        registrar.start(self.accounts)
        return [r for _, r in registrar.registrations]

    def target(self, uri: str | SipUri) -> SipUri:
        """Who ``call`` would call: a SIP URI, or with an account also ``bob`` / ``bob@domain``."""
        return _target(uri, self.default_account)

    def _account_for(self, request: Request) -> Account | None:
        """The account an incoming call was made to: by the To user, else the only one."""
        user = request.to_addr.uri.user
        matching = [a for a in self.accounts if a.aor.uri.user == user]
        if matching:
            return matching[0]
        return self.accounts[0] if len(self.accounts) == 1 else None

    @property
    def default_account(self) -> Account | None:
        index = self.config.sip.default_proxy
        return next((a for a in self.accounts if a.index == index), self.accounts[0] if self.accounts else None)

    async def close(self) -> None:
        """Hang up every call and unregister (briefly waiting for the answers); close the sockets."""
        live = [s for s in self.sessions.values() if not s.done.done()]
        for session in live:
            session.hangup()
        if live:
            await asyncio.wait([asyncio.shield(s.done) for s in live], timeout=2.0)
        if self._registrar is not None:
            await self._registrar.stop()
        for session in list(self.sessions.values()):
            self._release(session)
        if self._network is not None:
            self._network.close()
        for task in self._tasks:
            task.cancel()

    def ports(self) -> dict[str, int]:
        return dict(self.network.ports)

    # ------------------------------------------------------------ making calls

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
        hop = via.route[0].uri if via is not None else target
        peer = await self.network.resolve(hop, transport or (via.transport if via is not None else None))
        local = self.network.local_address(peer.transport, peer.host)
        choice = media or self.media_choice
        ports, session_config = self._media_for(local.host, choice)
        setup = CallSetup(local, via.aor if via is not None else self.identity, session_config, self.user_agent,
                          via.route if via is not None else (), via.credentials if via is not None else ())
        call, commands = Call.outgoing(target, setup)
        session = self._new_session(call, peer.transport, ports, choice)
        session.mark("invite_sent")
        self.execute(session, commands, first_hop=peer)
        return session

    def _new_session(self, call: Call, transport: str, ports: list[RtpPortPair], choice: MediaChoice) -> CallSession:
        video_options, bitrate = video_options_for(self.config, choice)
        session = CallSession(
            self, call, transport, time.monotonic(), ports, audio_options_for(self.config, choice), video_options,
            bitrate,
        )
        self.sessions[call.call_id] = session
        return session

    def _media_for(self, host: str, choice: MediaChoice) -> tuple[list[RtpPortPair], SessionConfig]:
        bind = self.bind if not is_unspecified(self.bind) else ("::" if ":" in host else "0.0.0.0")
        rtp = self.config.rtp
        ports = [open_port_pair(bind, rtp.audio_rtp_port)]
        streams = [
            StreamConfig(
                "audio",
                ports[0].port,
                codec_specs("audio", self.config, choice.audio_codec),
                ptime=self.config.sound.ptime,
            )
        ]
        if choice.video and self.config.video.enabled:
            try:
                ports.append(open_port_pair(bind, rtp.video_rtp_port))
            except TransportError:
                for pair in ports:
                    pair.close()
                raise
            streams.append(StreamConfig("video", ports[1].port, codec_specs("video", self.config, choice.video_codec)))
        return ports, SessionConfig(host, tuple(streams), username=self.identity.uri.user or "-")

    # ------------------------------------------------------------ SIP events

    def _on_sip_events(self, events: list[Event]) -> None:
        for event in events:
            try:
                self._dispatch(event)
            except (StateError, ParseError, TransportError) as exc:
                log.warning("ignored %s: %s", type(event).__name__, exc)

    def _dispatch(self, event: Event) -> None:
        registrar = self._registrar
        if registrar is not None and isinstance(event, ResponseReceived) and event.request.method == "REGISTER":
            registrar.on_response(event.response)
        elif registrar is not None and isinstance(event, TransactionTimedOut) and event.request.method == "REGISTER":
            registrar.on_timeout(event.request)
        elif isinstance(event, ResponseReceived):
            session = self.sessions.get(event.request.call_id)
            if session is not None:
                self.execute(session, session.call.on_response(event.response, event.request))
        elif isinstance(event, RequestReceived):
            self._on_request(event.request, event.source)
        elif isinstance(event, AckReceived):
            session = self.sessions.get(event.request.call_id)
            if session is not None:
                self.execute(session, session.call.on_request(event.request))
        elif isinstance(event, TransactionTimedOut):
            session = self.sessions.get(event.request.call_id)
            if session is not None:
                self.execute(session, session.call.on_timeout(event.request, event.timer))
        elif isinstance(event, AnswerTimedOut):
            session = self.sessions.get(event.response.call_id)
            if session is not None:
                self.execute(session, session.call.on_answer_timeout())

    def _on_request(self, request: Request, source: Peer) -> None:
        session = self.sessions.get(request.call_id)
        if request.method == "INVITE" and request.to_addr.tag is None:
            if session is None:
                self._on_invite(request, source)
            return  # a merged/looped request: the transaction layer absorbed retransmissions
        if session is not None and (
            request.method == "CANCEL" or session.call.dialog is None or session.call.dialog.matches(request)
        ):
            self.execute(session, session.call.on_request(request))
            return
        self._out_of_dialog(request)

    def _out_of_dialog(self, request: Request) -> None:
        method = request.method
        if method == "OPTIONS":
            extra = (
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                ("Supported", "replaces"),
                ("User-Agent", self.user_agent),
            )
            self._respond(request, build_response(request, 200, to_tag=_tag(), extra=extra))
        elif method in ("BYE", "CANCEL") or request.to_addr.tag is not None:
            # RFC 3261 §12.2.2: "If the UAS wishes to reject the request because it does
            # not wish to recreate the dialog, it MUST respond to the request with a 481"
            self._respond(request, build_response(request, 481, to_tag=_tag()))
        else:
            # RFC 3261 §8.2.1: "the UAS MUST generate a 405 (Method Not Allowed) response
            # ... The UAS MUST also add an Allow header field to the 405"
            self._respond(request, build_response(request, 405, to_tag=_tag(), extra=(("Allow", ALLOW),)))

    def _respond(self, request: Request, response: Any) -> None:
        self.endpoint.respond(request, response, self.network.now())
        self.network.kick()

    def _on_invite(self, request: Request, source: Peer) -> None:
        policy = self.policy
        if policy is None:
            self._respond(request, build_response(request, 480, to_tag=_tag()))
            return
        if policy.reject is not None:
            self._respond(request, build_response(request, policy.reject, to_tag=_tag()))
            self._emit_rejected(request, policy.reject)
            return
        caller = str(request.from_addr.uri)
        if policy.allow and not any(
            fnmatch.fnmatch(caller, p) or fnmatch.fnmatch(caller.split(":", 1)[-1], p) for p in policy.allow
        ):
            self._respond(request, build_response(request, 403, to_tag=_tag()))
            self._emit_rejected(request, 403)
            return
        active = sum(1 for s in self.sessions.values() if not s.done.done())
        if active >= policy.max_calls:
            self._respond(request, build_response(request, 486, to_tag=_tag()))
            self._emit_rejected(request, 486)
            return
        local = self.network.local_address(source.transport, source.host)
        try:
            ports, session_config = self._media_for(local.host, self.media_choice)
        except TransportError as exc:
            log.warning("incoming call refused: %s", exc)
            self._respond(request, build_response(request, 503, to_tag=_tag()))
            return
        account = self._account_for(request)
        # requests we send in this dialog (BYE, re-INVITE) may be challenged by the account's proxy
        credentials = account.credentials if account is not None else ()
        setup = CallSetup(
            local, _callee_identity(request, self.identity), session_config, self.user_agent, (), credentials
        )
        call, commands = Call.incoming(request, setup)
        session = self._new_session(call, source.transport, ports, self.media_choice)
        self.on_event(
            {"event": "incoming", "call_id": call.call_id, "from": str(request.from_addr), "to": str(request.to_addr)}
        )
        self.execute(session, commands)
        if call.ended:
            return
        self.execute(session, call.ring())
        if policy.auto_answer:
            if policy.delay <= 0:
                self.execute(session, call.answer())
            else:
                self._later(policy.delay, session, "answer")
        else:
            self._later(policy.ring_timeout, session, "timeout")

    def _later(self, delay: float, session: CallSession, action: str) -> None:
        def fire() -> None:
            if session.call.state not in ("incoming", "ringing"):
                return
            commands = session.call.answer() if action == "answer" else session.call.reject(480)
            self.execute(session, commands)

        asyncio.get_running_loop().call_later(delay, fire)

    def _emit_rejected(self, request: Request, status: int) -> None:
        summary = {
            "result": "rejected",
            "sip_code": status,
            "call_id": request.call_id,
            "direction": "incoming",
            "remote_party": str(request.from_addr.uri),
        }
        self.finished.append(summary)
        self.on_event({"event": "call_end", **summary})

    # ------------------------------------------------------------ commands

    def execute(self, session: CallSession, commands: Iterable[Command], *, first_hop: Peer | None = None) -> None:
        network = self.network
        for command in commands:
            if isinstance(command, SendRequest):
                self._send_request(session, command, first_hop)
                first_hop = None
            elif isinstance(command, SendResponse):
                self.endpoint.respond(command.request, command.response, network.now())
                if command.response.status >= 200 and command.request.method == "BYE":
                    session.mark("bye")
            elif isinstance(command, StateChanged):
                self._on_state(session, command)
            elif isinstance(command, MediaUpdate):
                self.on_event(
                    {
                        "event": "media",
                        "call_id": session.call_id,
                        "streams": [stream_summary(s) for s in command.streams],
                    }
                )
                self._spawn(session.apply_media(command.streams, self._media_events(session)))
            elif isinstance(command, MediaStop):
                pass  # the streams stop when the call is finished (below), before its ports close
            elif isinstance(command, CallEnded):
                self._finish(session, command)
        network.kick()

    def _send_request(self, session: CallSession, command: SendRequest, peer: Peer | None) -> None:
        request = command.request
        if request.method == "BYE":
            session.mark("bye")
        if request.method == "ACK":
            session.mark("ack")
        if peer is None:
            transport = command.target.param("transport") or session.transport
            peer = _literal_peer(command.target, transport)
        if peer is not None:
            self.endpoint.send_request(request, peer, self.network.now())
            return

        async def resolve_and_send() -> None:
            resolved = await self.network.resolve(command.target, session.transport)
            self.endpoint.send_request(request, resolved, self.network.now())
            self.network.kick()

        task = asyncio.get_running_loop().create_task(resolve_and_send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self, session: CallSession, change: StateChanged) -> None:
        session.states.append(change.state)
        self._ringing(session, change.state)
        if change.state in ("trying", "ringing", "answered"):
            session.mark(change.state)
        if change.state == "confirmed" and session.call.role == "uas":
            session.mark("ack")
        if change.state == "terminating":
            # RFC 3261 §15.1.1: the session ends when the BYE is handed to its transaction;
            # its answer only matters for a challenge, so an unanswered BYE ends the call
            # after a few retransmissions instead of Timer F (64*T1)
            self._spawn(session.stop_media())
            asyncio.get_running_loop().call_later(BYE_GRACE_T1 * self.timers.t1, self._bye_unanswered, session)
        self.on_event(
            {"event": "state", "call_id": session.call_id, "state": change.state, "sip_code": change.sip_code}
        )

    def _bye_unanswered(self, session: CallSession) -> None:
        if session.call.state == "terminating":
            log.info("call %s: no answer to our BYE, the call is over", session.call_id)
            self.execute(session, session.call.on_bye_unanswered())

    def _ringing(self, session: CallSession, state: str) -> None:
        """Ringback while the peer rings, a ring for an incoming call, on a real sound device."""
        if state == "ringing" and session.ringing is None:
            if session.call.role == "uac":
                device, (tone, cadence) = session.audio_options.sink, RINGBACK
            else:
                device, (tone, cadence) = self.config.sound.ringer_dev_id or session.audio_options.sink, RING
                if self.policy is not None and self.policy.auto_answer and self.policy.delay <= 0:
                    return
            if plays_sound(device):
                session.ringing = asyncio.get_running_loop().create_task(play_cadence(device, tone, cadence))
        elif state not in ("ringing", "trying", "progress", "calling", "incoming") and session.ringing is not None:
            session.ringing.cancel()
            session.ringing = None

    def _finish(self, session: CallSession, ended: CallEnded) -> None:
        self._spawn(self._teardown(session, ended))

    async def _teardown(self, session: CallSession, ended: CallEnded) -> None:
        try:
            await session.stop_media()
        finally:
            self._release(session)
            # keep the call a while for late retransmissions (64*T1, RFC 3261 Timer J/H), then forget it
            asyncio.get_running_loop().call_later(64 * self.timers.t1, self._forget, session)
            summary = session.summary()
            summary["reason"] = session.end_reason or ended.reason
            self.finished.append(summary)
            self.on_event({"event": "call_end", **summary})
            if not session.done.done():
                session.done.set_result(summary)

    def _media_events(self, session: CallSession) -> Callable[[str, dict[str, Any]], None]:
        def on_media_event(name: str, data: dict[str, Any]) -> None:
            if name in ("first_audio_rx", "first_video_frame"):
                session.mark(name)
            if name == "window_closed" and not session.done.done():
                session.hangup()  # the user closed the video window
            self.on_event({"event": name, "call_id": session.call_id, **data})
            if name == "nortp" and not session.done.done():
                log.warning("call %s: no RTP for %s s, hanging up", session.call_id, data.get("seconds"))
                session.call.result = "error"
                session.end_reason = f"no RTP received for {data.get('seconds')} s"
                session.hangup()

        return on_media_event

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media task failed", exc_info=task.exception())

    def _forget(self, session: CallSession) -> None:
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]

    def _release(self, session: CallSession) -> None:
        for pair in session.ports:
            pair.close()
        session.ports.clear()


PRELOADED = ("softphone.codecs.g711", "softphone.codecs.audio_av", "softphone.devices.synthetic")


def _preload_media() -> None:
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # reported again, clearly, when a call needs it
            log.debug("cannot preload %s: %s", name, exc)


def _target(uri: str | SipUri, account: Account | None) -> SipUri:
    """A SIP URI, or with an account also ``bob`` / ``bob@domain``."""
    if isinstance(uri, SipUri):
        return uri
    if account is not None:
        return account.target(uri)
    try:
        return SipUri.parse(uri)
    except ParseError as exc:
        raise UsageError(f"not a SIP URI: {uri!r} ({exc}); without an account, call a sip: URI") from None


def _literal_peer(uri: SipUri, transport: str) -> Peer | None:
    import ipaddress

    host = uri.param("maddr") or uri.host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return Peer(transport.lower(), host, uri.port or (5061 if transport == "tls" else 5060))


def _tag() -> str:
    from softphone.sip.dialog import random_token

    return random_token()


def _parse_identity(config: Config) -> NameAddress:
    try:
        return NameAddress.parse(config.sip.contact)
    except ParseError as exc:
        raise ConfigError(config.path, "sip", "contact", f"not a SIP address: {exc}") from exc


def _callee_identity(request: Request, identity: NameAddress) -> NameAddress:
    """We answer as whoever the caller asked for (the To of the INVITE)."""
    to = request.to_addr
    return NameAddress(to.uri, to.display_name or identity.display_name)
