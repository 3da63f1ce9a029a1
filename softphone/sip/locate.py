"""Locating SIP servers (RFC 3263 §4), without I/O: which transport, which DNS names to
ask, in which order the answers are tried, and which target comes after a failure.

The edge (softphone.net.dns) asks the questions this module names (NAPTR, SRV, A/AAAA)
and hands the answers back as plain records; everything that orders or chooses is here,
with the random source injected so that tests can fix it.

    plan = plan_for(uri, supported={"udp", "tcp"})
    literal_target(plan)                        # a numeric host: no DNS at all
    services(plan, naptr_records, supported)    # (transport, SRV name) in order
    order_srv(srv_records, randint)             # RFC 2782 priority and weight
    srv_targets(service, srv, addresses)        # -> [Target, ...]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field, replace

from softphone.errors import TransportError
from softphone.frozen import dataclass
from softphone.sip.dialog import new_branch
from softphone.sip.endpoint import Peer
from softphone.sip.message import Request
from softphone.sip.uri import SipUri, is_ip_address

log = logging.getLogger(__name__)

#: A random source: ``randint(low, high)`` -> an integer in [low, high], both inclusive.
RandInt = Callable[[int, int], int]

DEFAULT_PORTS: Mapping[str, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}
#: The NAPTR service field of each transport (RFC 3263 §4.1).
NAPTR_SERVICES: Mapping[str, str] = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
#: The order we try transports in when a domain publishes no NAPTR records.
TRANSPORT_PREFERENCE = ("udp", "tcp", "tls")


def default_port(transport: str) -> int:
    return DEFAULT_PORTS.get(transport, 5060)


def srv_name(transport: str, host: str, secure: bool = False) -> str:
    """RFC 3263 §4.2: "the client performs an SRV query for that specific transport, using
    the service identifier "_sips" for SIPS URIs"; TLS over a sip: URI uses "_sips" too."""
    service = "_sips" if secure or transport == "tls" else "_sip"
    protocol = "_udp" if transport == "udp" else "_tcp"
    return f"{service}.{protocol}.{host.rstrip('.')}"


# ---------------------------------------------------------------- records the edge fills in


@dataclass(frozen=True)
class Naptr:
    """A NAPTR answer (RFC 3403)."""

    order: int
    preference: int
    flags: str
    service: str
    replacement: str
    regexp: str = ""


@dataclass(frozen=True)
class Srv:
    """An SRV answer (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Service:
    """A transport and the SRV name to ask for it."""

    transport: str
    name: str


@dataclass(frozen=True)
class Target:
    """One place to send a request: transport, IP address and port, and the DNS name it
    came from (for logs and the call summary)."""

    transport: str
    host: str
    port: int
    name: str = ""

    @property
    def peer(self) -> Peer:
        return Peer(self.transport, self.host, self.port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        via = f" ({self.name})" if self.name and self.name != self.host else ""
        return f"{self.transport}:{host}:{self.port}{via}"


@dataclass(frozen=True)
class Plan:
    """What RFC 3263 §4.1 and §4.2 decide from the URI alone."""

    host: str
    secure: bool  # a sips: URI
    transport: str | None  # decided without DNS (transport param, numeric host or explicit port)
    port: int | None  # the URI's explicit port
    numeric: bool  # the host is an IP address


# ---------------------------------------------------------------- §4.1 transport selection


def plan_for(uri: SipUri, supported: Iterable[str], transport: str | None = None) -> Plan:
    """Decide what the URI decides. ``transport`` is a transport the caller requires (an
    account's, a dialog's); it counts as a transport parameter. Raises TransportError when
    the required transport is not one we support."""
    supported = frozenset(t.lower() for t in supported)
    host = (uri.param("maddr") or uri.host).strip("[]")
    secure = uri.scheme == "sips"
    numeric = is_ip_address(host)
    # RFC 3263 §4.1: "If the URI specifies a transport protocol in the transport parameter,
    # that transport protocol SHOULD be used."
    chosen = (transport or uri.param("transport") or "").lower() or None
    if chosen is None and (numeric or uri.port is not None):
        # "if no transport protocol is specified, but the TARGET is a numeric IP address, the
        # client SHOULD use UDP for a SIP URI, and TCP for a SIPS URI" (the same with an
        # explicit port); TCP for a SIPS URI means TLS over TCP
        chosen = "tls" if secure else "udp"
    if secure and chosen is not None and chosen != "tls":
        # RFC 3261 §26.2.2: a SIPS URI is reached over TLS on every hop
        chosen = "tls"
    if chosen is not None and chosen not in supported:
        raise TransportError(f"transport {chosen} is not enabled")
    if secure and "tls" not in supported:
        raise TransportError(f"cannot reach {uri}: a sips: URI needs TLS, which is not enabled")
    return Plan(host, secure, chosen, uri.port, numeric)


def literal_target(plan: Plan) -> Target | None:
    """RFC 3263 §4.2: "If TARGET is a numeric IP address, the client uses that address. If
    the URI also contains a port, it uses that port. If no port is specified, it uses the
    default port for the particular transport protocol." None for a name."""
    if not plan.numeric or plan.transport is None:
        return None
    return Target(plan.transport, plan.host, plan.port or default_port(plan.transport), plan.host)


def services(plan: Plan, naptr: Sequence[Naptr] | None, supported: Iterable[str]) -> list[Service]:
    """The SRV names to ask, most preferred first: the decided transport's, or what the
    NAPTR records allow, or (without usable NAPTR records) one per supported transport."""
    supported = frozenset(t.lower() for t in supported)
    if plan.transport is not None:
        return [Service(plan.transport, srv_name(plan.transport, plan.host, plan.secure))]
    chosen = naptr_services(naptr or (), supported, plan.secure)
    if chosen:
        return chosen
    # RFC 3263 §4.1: "If no NAPTR records are found, the client constructs SRV queries for
    # those transport protocols it supports, and does a query for each. Queries are done
    # using the service identifier "_sip" for SIP URIs and "_sips" for SIPS URIs."
    wanted = ("tls",) if plan.secure else TRANSPORT_PREFERENCE
    return [Service(t, srv_name(t, plan.host, plan.secure)) for t in wanted if t in supported]


def naptr_services(records: Iterable[Naptr], supported: frozenset[str], secure: bool) -> list[Service]:
    """The NAPTR records that lead to a SIP service we can use, in RFC 3403 order (order,
    then preference), as SRV names."""
    usable: list[tuple[int, int, Service]] = []
    for record in records:
        transport = NAPTR_SERVICES.get(record.service.upper())
        # RFC 3263 §4.1: "a client MUST discard any service fields that identify a
        # resolution service whose value is not "D2X", for values of X that indicate
        # transport protocols supported by the client."
        if transport is None or transport not in supported:
            continue
        # "a client resolving a SIPS URI MUST discard any services that do not contain
        # "SIPS" as the protocol in the service field."
        if secure and not record.service.upper().startswith("SIPS+"):
            continue
        # the "S" flag: the replacement is the name of SRV records (RFC 3263 §4.1 uses only it)
        if record.flags.lower() != "s" or not record.replacement.strip("."):
            continue
        usable.append((record.order, record.preference, Service(transport, record.replacement.rstrip("."))))
    usable.sort(key=lambda item: (item[0], item[1]))
    seen: set[Service] = set()
    out: list[Service] = []
    for _, _, service in usable:
        if service not in seen:
            seen.add(service)
            out.append(service)
    return out


def fallback_transport(plan: Plan, tried: Sequence[Service]) -> str:
    """The transport for the plain A/AAAA lookup when no SRV record was found. RFC 3263
    §4.1: "If no SRV records are found, the client SHOULD use TCP for a SIPS URI, and UDP
    for a SIP URI"; a transport decided earlier (or chosen by NAPTR) stays."""
    if plan.transport is not None:
        return plan.transport
    if tried and len({s.transport for s in tried}) == 1:
        return tried[0].transport
    return "tls" if plan.secure else "udp"


# ---------------------------------------------------------------- RFC 2782 ordering


def order_srv(records: Iterable[Srv], randint: RandInt) -> list[Srv]:
    """The order to try SRV targets in: RFC 2782 "Usage rules".

    "A client MUST attempt to contact the target host with the lowest-numbered priority
    it can reach; target hosts with the same priority SHOULD be tried in an order defined
    by the weight field." Within a priority, each pick is weighted: "choose a uniform
    random number between 0 and the sum computed (inclusive), and select the RR whose
    running sum value is the first in the selected order which is greater than or equal
    to the random number selected.\""""
    records = list(records)
    # "A Target of "." means that the service is decidedly not available at this domain."
    if any(r.target.strip(".") == "" for r in records):
        return []
    out: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        # "arrange all SRV RRs (that have not been ordered yet) in any order, except that
        # all those with weight 0 are placed at the beginning of the list."
        group.sort(key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            pick = randint(0, total)
            running = 0
            chosen = len(group) - 1
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    chosen = index
                    break
            out.append(group.pop(chosen))
    return out


def srv_targets(service: Service, record: Srv, addresses: Sequence[str]) -> list[Target]:
    """The targets of one SRV record: each address of its target at its port."""
    name = record.target.rstrip(".")
    return [Target(service.transport, a, record.port, name) for a in addresses]


def host_targets(transport: str, host: str, addresses: Sequence[str], port: int | None) -> list[Target]:
    """RFC 3263 §4.2: A/AAAA results "each of which can be contacted at the specific port
    from the URI" (or "at the default port for that transport")."""
    return [Target(transport, a, port or default_port(transport), host) for a in addresses]


def unique(targets: Iterable[Target]) -> list[Target]:
    """The targets in order, each (transport, address, port) once."""
    seen: set[tuple[str, str, int]] = set()
    out: list[Target] = []
    for target in targets:
        key = (target.transport, target.host, target.port)
        if key not in seen:
            seen.add(key)
            out.append(target)
    return out


# ---------------------------------------------------------------- §4.3 failover


def is_failure(status: int | None) -> bool:
    """RFC 3263 §4.3: "failure occurs if the transaction layer reports a 503 error
    response or a transport failure of some sort [...] Failure also occurs if the
    transaction layer times out without ever having received any response, provisional
    or final (i.e., timer B or timer F in RFC 3261 fires)." ``None`` is a timeout or a
    transport failure."""
    return status is None or status == 503


def rebranched(request: Request, transport: str) -> Request:
    """RFC 3263 §4.3: "If a failure occurs, the client SHOULD create a new request, which
    is identical to the previous, but has a different value of the Via branch ID than the
    previous (and therefore constitutes a new SIP transaction).\""""
    vias = request.vias
    top = replace(vias[0].with_params(branch=new_branch()), transport=transport.upper())
    headers = request.headers.remove("Via")
    for via in reversed([top, *vias[1:]]):
        headers = headers.add("Via", str(via), first=True)
    return request.with_headers(headers)


@dataclass
class _Pending:
    call_id: str
    targets: tuple[Target, ...]  # not tried yet, in order


@dataclass
class Failover:
    """The targets not tried yet for each request sent to a located target, keyed by the
    request's transaction (its top Via branch). Pure bookkeeping for the user agent."""

    _pending: dict[str, _Pending] = field(default_factory=dict)

    def remember(self, request: Request, call_id: str, rest: Sequence[Target]) -> None:
        branch = request.top_via.branch
        if branch and rest:
            self._pending[branch] = _Pending(call_id, tuple(rest))

    def forget(self, request: Request) -> None:
        branch = request.top_via.branch
        if branch:
            self._pending.pop(branch, None)

    def forget_call(self, call_id: str) -> None:
        for branch in [b for b, p in self._pending.items() if p.call_id == call_id]:
            del self._pending[branch]

    def next(self, request: Request) -> tuple[Request, Target] | None:
        """After a failure of ``request``: the same request as a new transaction, and the
        target to send it to (the rest is remembered under the new branch); None when no
        target is left."""
        branch = request.top_via.branch
        pending = self._pending.pop(branch, None) if branch else None
        if pending is None or not pending.targets:
            return None
        target, rest = pending.targets[0], pending.targets[1:]
        retry = rebranched(request, target.transport)
        self.remember(retry, pending.call_id, rest)
        return retry, target

    def __len__(self) -> int:
        return len(self._pending)
