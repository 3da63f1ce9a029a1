"""Network namespaces for the NAT tests: namespaces named with the test process's PID, veth
pairs between them, routers doing nftables masquerade, and rules that drop traffic.

Deleting a namespace deletes its interfaces (both ends of each veth) and its nftables rules, so
``Network.delete()`` (called by the ``network`` context manager in ``finally``) leaves nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import pytest

T = TypeVar("T")


def require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "network namespaces need root"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the netns tests must run in CI")
    pytest.skip(f"{reason} (run as root, or set CI to make this a failure)")


def run(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=10, input=stdin)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


def delete(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=10)


# A home router: what leaves by the outside interface gets the router's address, and what comes in
# unasked for is dropped. The drop matters for hole punching: a packet that reached the router
# itself would leave a conntrack entry that makes the router pick another port for the inside
# host's own packets to that peer later (a symmetric NAT); dropped in the input hook, the entry is
# never confirmed, and the mapping stays the one the STUN server saw.
MASQUERADE = """
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "%(out)s" masquerade
    }
}
table ip firewall {
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "%(out)s" ct state new meta l4proto udp drop
    }
}
"""

# forwarded UDP between two addresses dropped both ways (what a firewall between two NATs does)
DROP_UDP = """
table ip block {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ip saddr %(a)s ip daddr %(b)s meta l4proto udp drop
        ip saddr %(b)s ip daddr %(a)s meta l4proto udp drop
    }
}
"""


class Network:
    """Namespaces made one by one; ``delete()`` removes every one made so far."""

    def __init__(self) -> None:
        self.tag = os.getpid()
        self.namespaces: list[str] = []
        self._links = 0

    def namespace(self, role: str) -> str:
        name = f"sp-{role}-{self.tag}"
        self.namespaces.append(name)
        run("ip", "netns", "add", name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str, prefix: int = 24) -> tuple[str, str]:
        """A veth pair between two namespaces, with an address (in a /prefix) on each end;
        returns the two interfaces' names."""
        self._links += 1
        dev_a, dev_b = f"sp{self._links}a{self.tag}", f"sp{self._links}b{self.tag}"
        run("ip", "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        for ns, dev, address in ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)):
            run("ip", "link", "set", dev, "netns", ns)
            run("ip", "-n", ns, "addr", "add", f"{address}/{prefix}", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        return dev_a, dev_b

    def route(self, ns: str, via: str, to: str = "default") -> None:
        run("ip", "-n", ns, "route", "add", to, "via", via)

    def nowhere(self, ns: str, prefix: str = "10.0.250") -> None:
        """A default route to a namespace that forwards nothing: what goes to an address no one
        routes (a private one seen from outside) vanishes, as on the internet, instead of failing
        at once with "Network is unreachable" (coturn closes an allocation whose relayed send
        fails so)."""
        sink = self.namespace("void")
        self.link(ns, f"{prefix}.1", sink, f"{prefix}.2")
        self.route(ns, f"{prefix}.2")

    def forward(self, ns: str) -> None:
        run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def masquerade(self, router: str, outside: str) -> None:
        """The router forwards, and what leaves by interface ``outside`` gets its address (a NAT)."""
        self.forward(router)
        run("ip", "netns", "exec", router, "nft", "-f", "-", stdin=MASQUERADE % {"out": outside})

    def drop_udp_between(self, ns: str, a: str, b: str) -> None:
        """Namespace ``ns`` stops forwarding UDP between addresses ``a`` and ``b``."""
        run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=DROP_UDP % {"a": a, "b": b})

    def delete(self) -> None:
        delete(*self.namespaces)
        self.namespaces.clear()


# One home behind one NAT (see tests/interop/test_nat.py and test_stun_nat.py)
PUBLIC_IP, ROUTER_OUT, ROUTER_IN, HOME_IP = "10.0.0.1", "10.0.0.2", "192.168.77.1", "192.168.77.2"


def build_one_nat(net: Network) -> tuple[str, str, str]:
    """(public, router, home): the public side on PUBLIC_IP, the router masquerading on
    ROUTER_OUT, the home phone on HOME_IP behind it."""
    public, router, home = net.namespace("pub"), net.namespace("rtr"), net.namespace("home")
    _, outside = net.link(public, PUBLIC_IP, router, ROUTER_OUT)
    net.link(router, ROUTER_IN, home, HOME_IP)
    net.route(home, ROUTER_IN)
    # the public side knows no route to 192.168.77.0/24: only the router's address is reachable
    net.masquerade(router, outside)
    return public, router, home


# Two homes behind two NATs, and a public side between them (see tests/interop/test_ice_nat.py)
PUBLIC_A, ROUTER_A, INSIDE_A, HOME_A = "10.0.1.1", "10.0.1.2", "192.168.77.1", "192.168.77.2"
PUBLIC_B, ROUTER_B, INSIDE_B, HOME_B = "10.0.2.1", "10.0.2.2", "172.16.77.1", "172.16.77.2"
TURN_PORT = 3478


@dataclass(frozen=True)
class TwoNats:
    net: Network
    public: str
    home_a: str
    home_b: str

    def block_direct_udp(self) -> None:
        """The public side drops UDP between the two routers: only its own servers are reachable."""
        self.net.drop_udp_between(self.public, ROUTER_A, ROUTER_B)

    def unblock_direct_udp(self) -> None:
        run("ip", "netns", "exec", self.public, "nft", "delete", "table", "ip", "block")


def build_two_nats(net: Network) -> TwoNats:
    """public (PUBLIC_A and PUBLIC_B, forwarding between them, private addresses routed nowhere);
    router A and B masquerading; home A (HOME_A) and home B (HOME_B) behind them."""
    public = net.namespace("ipub")
    homes = []
    for side, (public_ip, router_ip, inside_ip, home_ip) in (
            ("a", (PUBLIC_A, ROUTER_A, INSIDE_A, HOME_A)), ("b", (PUBLIC_B, ROUTER_B, INSIDE_B, HOME_B))):
        router, home = net.namespace(f"irt{side}"), net.namespace(f"ihm{side}")
        _, outside = net.link(public, public_ip, router, router_ip)
        net.link(router, inside_ip, home, home_ip)
        net.route(router, public_ip)
        net.route(home, inside_ip)
        net.masquerade(router, outside)
        homes.append(home)
    net.forward(public)  # the "internet": routes between the two routers' public addresses
    net.nowhere(public)
    return TwoNats(net, public, homes[0], homes[1])


@contextmanager
def network(build: Callable[[Network], T]) -> Iterator[T]:
    """``build(net)`` makes the namespaces and returns what the test needs; a failure while
    building skips the test (fails it with CI set); every namespace is deleted at the end."""
    require_root()
    net = Network()
    try:
        try:
            layout = build(net)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            net.delete()
            if os.environ.get("CI"):
                pytest.fail(f"cannot build the namespaces: {exc}")
            pytest.skip(f"cannot build the namespaces: {exc}")
        yield layout
    finally:
        net.delete()


# Random loss of UDP on one interface, both ways: what arrives by it and what leaves by it is
# dropped with the same chance, each packet on its own (nftables' numgen: no bursts). The counters
# say how many packets were dropped in each direction.
LOSS = """
table inet loss {
    chain in {
        type filter hook input priority filter; policy accept;
        iifname "%(dev)s" meta l4proto udp numgen random mod 100 < %(percent)d counter drop
    }
    chain out {
        type filter hook output priority filter; policy accept;
        oifname "%(dev)s" meta l4proto udp numgen random mod 100 < %(percent)d counter drop
    }
}
"""


def lossy(ns: str, dev: str, percent: int) -> None:
    """Namespace ``ns`` drops ``percent`` % of the UDP datagrams that cross its interface ``dev``,
    at random, in each direction."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a loss of {percent} % is not a percentage")
    run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=LOSS % {"dev": dev, "percent": percent})


def dropped(ns: str) -> dict[str, int]:
    """The UDP datagrams the ``lossy`` rules of namespace ``ns`` dropped so far: {"in": n, "out": n}."""
    import json

    result = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "loss"],
                            check=True, capture_output=True, text=True, timeout=10)
    counts = {"in": 0, "out": 0}
    for item in json.loads(result.stdout)["nftables"]:
        rule = item.get("rule")
        if rule is None:
            continue
        for expr in rule["expr"]:
            if "counter" in expr:
                counts[rule["chain"]] += int(expr["counter"]["packets"])
    return counts


# Two hosts on one link (see tests/interop/test_lossy_network.py): NEAR_IP in one namespace,
# FAR_IP in the other, FAR_DEV the far end's interface (where the loss is put)
NEAR_IP, FAR_IP = "10.0.3.1", "10.0.3.2"


@dataclass(frozen=True)
class Link:
    near: str
    far: str
    far_dev: str


def build_link(net: Network) -> Link:
    """Two namespaces joined by one veth pair: near (NEAR_IP) and far (FAR_IP)."""
    near, far = net.namespace("near"), net.namespace("far")
    _, far_dev = net.link(near, NEAR_IP, far, FAR_IP)
    return Link(near, far, far_dev)
