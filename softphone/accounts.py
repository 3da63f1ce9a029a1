"""Accounts from the configuration ([proxy_N], [auth_info_N]): who we are, where we
register, and the credentials that go with it (the user agent runs the registrations)."""

from __future__ import annotations

import dataclasses

from softphone.config import Config
from softphone.errors import ConfigError, ParseError, UsageError
from softphone.frozen import dataclass
from softphone.sip.auth import Credentials
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request
from softphone.sip.uri import SipUri


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


# ---------------------------------------------------------------- who we are on the wire


def call_target(uri: str | SipUri, account: Account | None) -> SipUri:
    """A SIP URI, or with an account also ``bob`` / ``bob@domain``."""
    if isinstance(uri, SipUri):
        return uri
    if account is not None:
        return account.target(uri)
    try:
        return SipUri.parse(uri)
    except ParseError as exc:
        raise UsageError(f"not a SIP URI: {uri!r} ({exc}); without an account, call a sip: URI") from None


def parse_identity(config: Config) -> NameAddress:
    try:
        identity = NameAddress.parse(config.sip.contact)
        identity.uri.as_sip()
    except ParseError as exc:
        raise ConfigError(config.path, "sip", "contact", f"not a SIP address: {exc}") from exc
    return identity


def identity_at(identity: NameAddress, host: str, port: int) -> NameAddress:
    """Who a call without an account is from: ``[sip] contact`` as written, unless it names no
    real host (the default ``sip:softphone@localhost``): then its user at the address and port
    the call actually uses, so that the peer can call back."""
    uri = identity.uri.as_sip()
    if uri.host.lower() not in ("localhost", "unknown-host"):
        return identity
    return NameAddress(dataclasses.replace(uri, host=host, port=None if port == 5060 else port),
                       identity.display_name)


def callee_identity(request: Request, identity: NameAddress) -> NameAddress:
    """We answer as whoever the caller asked for (the To of the INVITE)."""
    to = request.to_addr
    return NameAddress(to.uri, to.display_name or identity.display_name)


def party(address: NameAddress) -> str:
    """Who a call is from or to, for people: the display name and URI, without tags."""
    return f'"{address.display_name}" <{address.uri}>' if address.display_name else str(address.uri)
