"""A phone behind a real NAT: namespaces joined by veth pairs, a router doing nftables masquerade.

    public  10.0.0.1   Kamailio (registrar + proxy) and the caller (a softphone)
       |  veth
    router  10.0.0.2 | 192.168.77.1   forwards, masquerades what leaves by its 10.0.0.2 side
       |  veth
    home    192.168.77.2              our softphone ``answer --auto``, registered as alice

Our phone registers through the NAT, learns the public address (the router's) from the
registrar's received/rport, registers again with it as Contact, and the caller's call through
Kamailio reaches it: audio and video flow both ways.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.interop]

PUBLIC_IP, ROUTER_OUT, ROUTER_IN, HOME_IP = "10.0.0.1", "10.0.0.2", "192.168.77.1", "192.168.77.2"


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "network namespaces need root"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the netns tests must run in CI")
    pytest.skip(f"{reason} (run as root, or set CI to make this a failure)")


def _run(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=10, input=stdin)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


def _delete(*names: str) -> None:
    """Deleting a namespace deletes its interfaces (both ends of each veth) and its nftables rules."""
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=10)


MASQUERADE = """
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "%s" masquerade
    }
}
"""


@pytest.fixture
def nat() -> Iterator[tuple[str, str, str]]:
    """(public, router, home) namespaces, named with this process's PID; deleted at the end."""
    _require_root()
    tag = os.getpid()
    public, router, home = f"sp-pub-{tag}", f"sp-rtr-{tag}", f"sp-home-{tag}"
    out_a, out_b, in_a, in_b = f"spno{tag}", f"spnr{tag}", f"spni{tag}", f"spnh{tag}"
    try:
        for ns in (public, router, home):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", out_a, "type", "veth", "peer", "name", out_b)
        _run("ip", "link", "set", out_a, "netns", public)
        _run("ip", "link", "set", out_b, "netns", router)
        _run("ip", "link", "add", in_a, "type", "veth", "peer", "name", in_b)
        _run("ip", "link", "set", in_a, "netns", router)
        _run("ip", "link", "set", in_b, "netns", home)
        for ns, dev, address in ((public, out_a, PUBLIC_IP), (router, out_b, ROUTER_OUT),
                                 (router, in_a, ROUTER_IN), (home, in_b, HOME_IP)):
            _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        _run("ip", "-n", home, "route", "add", "default", "via", ROUTER_IN)
        # the public side knows no route to 192.168.77.0/24: only the router's address is reachable
        _run("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run("ip", "netns", "exec", router, "nft", "-f", "-", stdin=MASQUERADE % out_b)
    except (RuntimeError, OSError) as exc:
        _delete(public, router, home)
        if os.environ.get("CI"):
            pytest.fail(f"cannot build the namespaces: {exc}")
        pytest.skip(f"cannot build the namespaces: {exc}")
    try:
        yield public, router, home
    finally:
        _delete(public, router, home)


def _alice_rc(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "alice.rc"
    path.write_text(
        "[sip]\ncontact=sip:alice@127.0.0.1\nkeepalive_period=5000\n"
        f"[proxy_0]\nreg_proxy=<sip:{PUBLIC_IP}:{port}>\nreg_identity=sip:alice@127.0.0.1\nreg_expires=120\n"
        "[auth_info_0]\nusername=alice\npasswd=alicepw\n"
    )
    return path


MEDIA = ("--audio-source", "tone: 440", "--audio-sink", "null:", "--video-source", "pattern:",
         "--video-sink", "null:")


@pytest.mark.timeout(120)
def test_a_phone_behind_nat_registers_and_takes_a_call_with_audio_and_video(
    softphone: Any, kamailio: Any, nat: tuple[str, str, str], tmp_path: Path
) -> None:
    public, _, home = nat
    registrar = kamailio(netns=public, listen=(PUBLIC_IP,), relay=("10.0.0.",))
    alice = softphone("-c", _alice_rc(tmp_path, registrar.udp_port), "--sip-port", "0", "--rtp-port", "0",
                      "answer", "--auto", "--once", *MEDIA, netns=home)
    # the first REGISTER shows the registrar where the NAT put us; the second registers that Contact
    learnt = alice.wait_event("registration", timeout=20, state="registered", account="sip:alice@127.0.0.1")
    assert learnt["public_address"] is not None and learnt["public_address"].startswith(f"{ROUTER_OUT}:"), learnt
    (contact,) = registrar.wait_registered("alice")
    assert contact["address"].startswith(f"sip:alice@{learnt['public_address']}"), contact

    caller = softphone("--bind", PUBLIC_IP, "--sip-port", "0", "--rtp-port", "0",
                       "call", f"sip:alice@{PUBLIC_IP}:{registrar.udp_port}", "--duration", "4", *MEDIA,
                       netns=public)
    assert caller.wait(60) == 0, caller.describe() + registrar.current_log[-3000:]
    assert alice.wait(30) == 0, alice.describe()
    summary = caller.summary
    assert summary is not None and summary["result"] == "completed", summary
    (end,) = alice.summary["calls"]
    assert end["result"] == "completed", end
    assert end["advertised"] == learnt["public_address"], end  # our Contact in the call: the public one
    for side in (summary, end):
        for kind in ("audio", "video"):
            assert side[kind]["rx_packets"] > 0 and side[kind]["tx_packets"] > 0, (kind, side)
    # the caller saw our media come from the router (the NAT), never from the home network
    assert summary["audio"]["remote"].startswith(ROUTER_OUT), summary["audio"]
    assert summary["video"]["remote"].startswith(ROUTER_OUT), summary["video"]
