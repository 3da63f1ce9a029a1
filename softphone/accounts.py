"""Accounts from the configuration ([proxy_N], [auth_info_N]): who we are, where we
register, and the credentials that go with it (the user agent runs the registrations)."""

from __future__ import annotations

from dataclasses import dataclass

from softphone.config import Config
from softphone.errors import ConfigError, ParseError
from softphone.sip.auth import Credentials
from softphone.sip.headers import NameAddress
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
