"""Accounts from the configuration ([proxy_N], [auth_info_N]) and their registrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from softphone.config import Config
from softphone.errors import ConfigError, ParseError, TransportError
from softphone.events import PhoneEvent, RegistrationEvent
from softphone.net.sip import SipNetwork
from softphone.sip.auth import Credentials
from softphone.sip.endpoint import Endpoint, Peer
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response
from softphone.sip.registration import Registration, RegistrationChanged, RegistrationCommand, SendRegister
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)

EventSink = Callable[[PhoneEvent], None]


@dataclass(frozen=True)
class Account:
    """One [proxy_N] section with the credentials that go with it."""

    index: int
    aor: NameAddress  # reg_identity
    proxy: SipUri  # reg_proxy: registrar and outbound proxy
    route: tuple[NameAddress, ...]  # where requests go first: reg_route, else the proxy (loose routing)
    expires: int
    register: bool
    credentials: tuple[Credentials, ...]
    instance_id: str | None = None

    @property
    def transport(self) -> str:
        return self.proxy.transport

    @property
    def domain(self) -> str:
        return self.aor.uri.as_sip().host

    def target(self, who: str) -> SipUri:
        """``bob`` or ``sip:bob@domain``: who to call through this account."""
        if ":" in who and who.split(":", 1)[0].lower() in ("sip", "sips", "tel"):
            return SipUri.parse(who)
        user, _, host = who.partition("@")
        return SipUri("sip", user, None, host or self.domain, None if host else self.aor.uri.as_sip().port)


def _uri(config: Config, section: str, key: str, text: str) -> SipUri:
    try:
        return NameAddress.parse(text).uri.as_sip()
    except ParseError as exc:
        raise ConfigError(config.path, section, key, f"not a SIP URI: {exc}") from None


def accounts_from_config(config: Config) -> list[Account]:
    credentials = tuple(
        Credentials(a.username, a.passwd, a.ha1, a.realm or None, a.userid or None) for a in config.auth_infos
    )
    accounts = []
    for proxy in config.proxies:
        section = f"proxy_{proxy.index}"
        try:
            aor = NameAddress.parse(proxy.reg_identity)
            aor.uri.as_sip()  # an address-of-record is a SIP URI (RFC 3261 §10.2)
        except ParseError as exc:
            raise ConfigError(config.path, section, "reg_identity", f"not a SIP address: {exc}") from None
        registrar = _uri(config, section, "reg_proxy", proxy.reg_proxy)
        if proxy.reg_route:
            hop = _uri(config, section, "reg_route", proxy.reg_route)
        else:
            hop = registrar
        route = (NameAddress(hop.with_params(lr=None)),)
        mine = tuple(c for c in credentials if _for_account(c, aor, config, proxy.index))
        accounts.append(Account(proxy.index, aor, registrar, route, proxy.reg_expires, proxy.reg_sendregister,
                                mine, proxy.reg_instance_id or None))
    return accounts


def _for_account(credentials: Credentials, aor: NameAddress, config: Config, index: int) -> bool:
    """linphone matches [auth_info_N] by username and domain; one account takes them all."""
    info = next(a for a in config.auth_infos if a.username == credentials.username)
    if len(config.proxies) == 1:
        return True
    uri = aor.uri.as_sip()
    return info.username == uri.user and (not info.domain or info.domain == uri.host)


class Registrar:
    """Runs the registrations of all accounts on the phone's endpoint and network."""

    def __init__(self, endpoint: Endpoint, network: SipNetwork, user_agent: str, on_event: EventSink,
                 keepalive_period: float = 30.0) -> None:
        self.endpoint = endpoint
        self.network = network
        self.user_agent = user_agent
        self.on_event = on_event
        self.keepalive_period = keepalive_period
        self.registrations: list[tuple[Account, Registration]] = []
        self.keepalives_sent = 0
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flows: dict[int, Peer] = {}  # registration -> where its REGISTERs go
        self._unregistered: asyncio.Event | None = None  # while stopping: set once no unregistration is pending

    def start(self, accounts: list[Account]) -> None:
        for account in accounts:
            if not account.register:
                continue
            local = self.network.local_address(account.transport, account.proxy.host)
            registration = Registration(
                aor=account.aor, registrar=account.proxy.without_params("lr"), local=local,
                credentials=account.credentials, expires=account.expires,
                route=account.route if account.route[0].uri.as_sip().host_port != account.proxy.host_port else (),
                instance_id=account.instance_id, user_agent=self.user_agent,
            )
            self.registrations.append((account, registration))
            self._run(account, registration, registration.start(self.network.now()))
            if self.keepalive_period > 0:
                self._spawn(self._keepalive(registration))

    def handles(self, call_id: str) -> tuple[Account, Registration] | None:
        return next(((a, r) for a, r in self.registrations if r.call_id == call_id), None)

    def _run(self, account: Account, registration: Registration, commands: list[RegistrationCommand]) -> None:
        for command in commands:
            if isinstance(command, SendRegister):
                self._spawn(self._send(account, registration, command))
            elif isinstance(command, RegistrationChanged):
                self.on_event(RegistrationEvent(str(account.aor.uri), command.state, command.sip_code,
                                                command.reason, command.expires))
        self._schedule(account, registration)
        if self._unregistered is not None and not self._unregistering():
            self._unregistered.set()

    def _unregistering(self) -> bool:
        return any(r.state == "unregistering" for _, r in self.registrations)

    async def _send(self, account: Account, registration: Registration, command: SendRegister) -> None:
        try:
            peer = await self.network.resolve(command.target, account.transport)
        except TransportError as exc:
            self._run(account, registration, registration.on_timeout(command.request, self.network.now()))
            log.warning("registration of %s: %s", account.aor.uri, exc)
            return
        self._flows[id(registration)] = peer
        self.endpoint.send_request(command.request, peer, self.network.now())
        self.network.kick()

    async def _keepalive(self, registration: Registration) -> None:
        """RFC 5626 §4.4.1: a double CRLF on the flow to the registrar keeps NAT bindings
        (and TCP connections) open; the registrar ignores it or answers with a single CRLF."""
        while True:
            await asyncio.sleep(self.keepalive_period)
            peer = self._flows.get(id(registration))
            if registration.registered and peer is not None:
                self.network.send_raw(b"\r\n\r\n", peer)
                self.keepalives_sent += 1
                log.info("keep-alive (CRLF CRLF) to %s:%s/%s", peer.host, peer.port, peer.transport)

    def _schedule(self, account: Account, registration: Registration) -> None:
        key = id(registration)
        if key in self._timers:
            self._timers.pop(key).cancel()
        deadline = registration.next_deadline()
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_at(
                deadline, lambda: self._run(account, registration, registration.handle_timer(self.network.now()))
            )

    def on_response(self, response: Response) -> None:
        found = self.handles(response.call_id)
        if found is not None:
            account, registration = found
            self._run(account, registration, registration.on_response(response, self.network.now()))

    def on_timeout(self, request: Request) -> None:
        found = self.handles(request.call_id)
        if found is not None:
            account, registration = found
            self._run(account, registration, registration.on_timeout(request, self.network.now()))

    async def stop(self, timeout: float = 2.0) -> None:
        """Unregister every account (Expires: 0) and wait, at most ``timeout`` seconds, until
        each unregistration is answered or has failed."""
        for account, registration in self.registrations:
            if registration.state not in ("unregistered", "idle", "unregistering"):
                self._run(account, registration, registration.unregister(self.network.now()))
        # created once every unregistration has started: one that ends at once (nothing was
        # bound) must not end the wait; answers and failures only arrive later, from the loop
        self._unregistered = asyncio.Event()
        if not self._unregistering():
            self._unregistered.set()
        try:
            await asyncio.wait_for(self._unregistered.wait(), timeout)
        except asyncio.TimeoutError:
            pending = [str(a.aor.uri) for a, r in self.registrations if r.state == "unregistering"]
            log.info("no answer to the unregistration of %s within %.1f s", ", ".join(pending), timeout)
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
