"""DNS for locating SIP servers (RFC 3263): NAPTR, SRV and A/AAAA lookups with
dnspython's asyncio resolver. What to ask and how to order the answers is decided by
softphone.sip.locate; this module only asks.

The resolver is the system's (resolv.conf) unless a server is given (``[net]
dns_server``). Without one, A/AAAA lookups go through the system's getaddrinfo, so
that /etc/hosts names such as localhost keep working.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterable
from typing import Any

from softphone.errors import TransportError
from softphone.sip import locate
from softphone.sip.locate import Naptr, Plan, RandInt, Service, Srv, Target
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)

LIFETIME = 3.0  # seconds a lookup may take, retries included


class _NoDns(Exception):
    """The DNS server did not answer (as opposed to answering that there is no record)."""


class Locator:
    """RFC 3263 §4 over DNS: a URI to the ordered list of targets to try."""

    def __init__(
        self, server: tuple[str, int] | None = None, *, ipv6: bool = False, randint: RandInt | None = None,
        lifetime: float = LIFETIME,
    ) -> None:
        self.server = server
        self.ipv6 = ipv6
        self.randint: RandInt = randint or random.SystemRandom().randint
        self.lifetime = lifetime
        self._resolver: Any = None

    def _dns(self) -> Any:
        if self._resolver is None:
            import dns.asyncresolver  # lazily: only a call or registration by name needs it
            import dns.resolver

            if self.server is not None:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [self.server[0]]
                resolver.port = self.server[1]
            else:
                try:
                    resolver = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.lifetime = self.lifetime
            self._resolver = resolver
        return self._resolver

    async def locate(self, uri: SipUri, supported: Iterable[str], transport: str | None = None) -> list[Target]:
        """The targets for ``uri`` in the order to try them; TransportError when there is none."""
        supported = frozenset(supported)
        plan = locate.plan_for(uri, supported, transport)
        literal = locate.literal_target(plan)
        if literal is not None:
            return [literal]
        if plan.port is not None or plan.host.lower() == "localhost" or plan.host.lower().endswith(".localhost"):
            chosen = plan.transport or ("tls" if plan.secure else "udp")
            targets = locate.host_targets(chosen, plan.host, await self.addresses(plan.host), plan.port)
        else:
            targets = await self._by_srv(plan, supported)
        if not targets:
            raise TransportError(f"cannot resolve {plan.host}: no address found")
        log.info("%s: %s", uri, ", ".join(str(t) for t in targets))
        return targets

    async def _by_srv(self, plan: Plan, supported: frozenset[str]) -> list[Target]:
        services: list[Service] = []
        targets: list[Target] = []
        found = False
        try:
            naptr = await self.naptr(plan.host) if plan.transport is None else None
            services = locate.services(plan, naptr, supported)
            for service in services:
                for record in locate.order_srv(await self.srv(service.name), self.randint):
                    found = True
                    targets += locate.srv_targets(service, record, await self.addresses(record.target))
        except _NoDns as exc:
            log.info("no DNS answer (%s): looking %s up by address only", exc, plan.host)
        if not found:
            # RFC 3263 §4.2: "If no SRV records were found, the client performs an A or AAAA
            # record lookup of the domain name."
            chosen = locate.fallback_transport(plan, services)
            targets = locate.host_targets(chosen, plan.host, await self.addresses(plan.host), None)
        return locate.unique(targets)

    # ------------------------------------------------------------ queries

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        import dns.exception
        import dns.resolver

        try:
            answer = await self._dns().resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise _NoDns(f"{rdtype} {name}: {exc}") from exc
        return list(answer)

    async def naptr(self, name: str) -> list[Naptr]:
        return [
            Naptr(r.order, r.preference, _text(r.flags), _text(r.service), r.replacement.to_text(True), _text(r.regexp))
            for r in await self._query(name, "NAPTR")
        ]

    async def srv(self, name: str) -> list[Srv]:
        return [Srv(r.priority, r.weight, r.port, r.target.to_text(True)) for r in await self._query(name, "SRV")]

    async def addresses(self, name: str) -> list[str]:
        name = name.rstrip(".")
        if self.server is None:
            family = socket.AF_INET6 if self.ipv6 else socket.AF_INET
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(name, None, family=family, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.info("cannot resolve %s: %s", name, exc)
                return []
            return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
        try:
            return [r.to_text() for r in await self._query(name, "AAAA" if self.ipv6 else "A")]
        except _NoDns as exc:
            log.info("cannot resolve %s: %s", name, exc)
            return []


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


__all__ = ["Locator", "Service", "Target"]
