"""RFC 3263 against a real DNS server: dnsmasq serves NAPTR, SRV and A records for
example.test on 127.0.0.1; the softphone finds its peers through them (``[net]
dns_server``). Every address is on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SOFTPHONE_CMD, SoftphoneProcess, _stop_popen, free_port

pytestmark = pytest.mark.interop

MEDIA = ("--no-video", "--audio-source", "tone: 440", "--audio-sink", "null:")
PEER_HOST = "127.0.0.2"  # host.example.test: where the called softphone listens


class Dnsmasq:
    """dnsmasq in the foreground on 127.0.0.1:``port``, authoritative for example.test only."""

    def __init__(self, records: list[str]) -> None:
        self.port = free_port("udp", "127.0.0.1")
        self.cmd = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}", "--pid-file=",
                    "--user=root", "--local=/example.test/", "--log-facility=-", *records]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._wait_ready()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 10.0) -> None:
        import dns.exception
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], self.port, 0.5
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise AssertionError(f"dnsmasq exited {self.proc.returncode}: {out}")
            try:
                resolver.resolve("example.test", "SOA", search=False)
                return
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return  # it answers
            except dns.exception.DNSException:
                time.sleep(0.1)
        raise AssertionError("dnsmasq did not answer")

    def stop(self) -> None:
        _stop_popen(self.proc, 5)


@pytest.fixture
def dnsmasq() -> Iterator[Callable[..., Dnsmasq]]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (Debian: dnsmasq-base)")
    started: list[Dnsmasq] = []

    def start(*records: str) -> Dnsmasq:
        server = Dnsmasq(list(records))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "softphone.ini"
    path.write_text(text)
    return str(path)


def _answerer(softphone: Callable[..., SoftphoneProcess], tmp_path: Path) -> tuple[SoftphoneProcess, int]:
    """bob@example.test: a softphone on host.example.test that takes calls for the domain."""
    config = tmp_path / "bob.ini"
    config.write_text("[sip]\ncontact=<sip:bob@example.test>\n")
    peer = softphone("-c", str(config), "--bind", PEER_HOST, "--sip-port", "0", "--rtp-port", "0",
                     "answer", "--auto", "--once", *MEDIA)
    return peer, peer.port("udp")


def _call(softphone: Callable[..., SoftphoneProcess], config: str, *extra: str) -> SoftphoneProcess:
    return softphone("-c", config, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", *extra,
                     "call", "sip:bob@example.test", "--duration", "1", *MEDIA)


def _summary(caller: SoftphoneProcess) -> dict[str, Any]:
    summary = caller.summary
    assert summary is not None, caller.describe()
    calls = summary.get("calls")
    return calls[0] if calls else summary  # type: ignore[no-any-return]


@pytest.mark.timeout(60)
def test_a_call_by_domain_goes_where_naptr_and_srv_point(dnsmasq: Any, softphone: Any, tmp_path: Path) -> None:
    """NAPTR prefers TCP (order 10) over UDP (order 20): the INVITE goes over TCP to the port
    the _sip._tcp SRV record names."""
    peer, port = _answerer(softphone, tmp_path)
    tcp_port = peer.port("tcp")
    dns = dnsmasq(f"--host-record=host.example.test,{PEER_HOST}",
                  f"--srv-host=_sip._tcp.example.test,host.example.test,{tcp_port},10,10",
                  f"--srv-host=_sip._udp.example.test,host.example.test,{port},10,10",
                  "--naptr-record=example.test,20,10,S,SIP+D2U,,_sip._udp.example.test",
                  "--naptr-record=example.test,10,10,S,SIP+D2T,,_sip._tcp.example.test")
    caller = _call(softphone, _config(tmp_path, f"[net]\ndns_server={dns.server}\n"))
    rc = caller.wait(30)
    where = f"\n{caller.describe()}\n{peer.describe()}"
    assert rc == 0, where
    summary = _summary(caller)
    assert summary["result"] == "completed", where
    assert summary["transport"] == "tcp" and summary["target"] == f"tcp:{PEER_HOST}:{tcp_port}", where
    assert peer.wait(15) == 0, where
    (answered,) = peer.summary["calls"] if peer.summary else [None]
    assert answered is not None and answered["transport"] == "tcp", where


@pytest.mark.timeout(60)
def test_the_call_fails_over_to_the_second_srv_target(dnsmasq: Any, softphone: Any, tmp_path: Path) -> None:
    """The first SRV target (priority 10) is a port where nobody answers: after Timer B
    (64*T1, T1 = 50 ms) the INVITE goes to the second (priority 20), which answers."""
    peer, port = _answerer(softphone, tmp_path)
    dead = free_port("udp", PEER_HOST)
    dns = dnsmasq(f"--host-record=host.example.test,{PEER_HOST}",
                  f"--srv-host=_sip._udp.example.test,host.example.test,{dead},10,10",
                  f"--srv-host=_sip._udp.example.test,host.example.test,{port},20,10")
    caller = _call(softphone, _config(tmp_path, f"[net]\ndns_server={dns.server}\n"), "--t1-ms", "50")
    rc = caller.wait(30)
    where = f"\n{caller.describe()}\n{peer.describe()}"
    assert rc == 0, where
    summary = _summary(caller)
    assert summary["result"] == "completed" and summary["target"] == f"udp:{PEER_HOST}:{port}", where
    assert peer.wait(15) == 0, where


@pytest.mark.timeout(60)
def test_registration_finds_the_registrar_through_srv(dnsmasq: Any, kamailio: Any, tmp_path: Path) -> None:
    """The account's outbound proxy is the domain example.test; its _sip._udp SRV record
    names Kamailio's port."""
    registrar = kamailio()
    dns = dnsmasq("--host-record=registrar.example.test,127.0.0.1",
                  f"--srv-host=_sip._udp.example.test,registrar.example.test,{registrar.udp_port},10,10")
    config = _config(tmp_path, f"[net]\ndns_server={dns.server}\n"
                               "[proxy_0]\nreg_proxy=<sip:127.0.0.1>\nreg_route=<sip:example.test>\n"
                               "reg_identity=<sip:alice@127.0.0.1>\n"
                               "[auth_info_0]\nusername=alice\npasswd=alicepw\n")
    done = SoftphoneProcess(["-c", config, "--bind", "127.0.0.1", "--sip-port", "0", "register", "--once"])
    rc = done.wait(30)
    assert rc == 0, done.describe()
    assert done.find_events("registration", state="registered"), done.describe()
    # --once unregisters on exit: the registrar's log shows the binding it saved
    assert "LOCATION-SAVED aor=sip:alice@127.0.0.1" in registrar.current_log, registrar.current_log


@pytest.mark.parametrize("value", ["dns.example.test", "127.0.0.1:0", "127.0.0.1:x"])
def test_a_bad_dns_server_is_a_config_error(tmp_path: Path, value: str) -> None:
    config = _config(tmp_path, f"[net]\ndns_server={value}\n")
    done = subprocess.run([*SOFTPHONE_CMD, "-c", config, "call", "sip:bob@example.test"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "[net] dns_server" in done.stderr and config in done.stderr and len(done.stderr.splitlines()) == 1
