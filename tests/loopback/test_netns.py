"""The user's case, literally: two hosts on a link, 10.0.0.1 calls alice at 10.0.0.2.

Two network namespaces joined by a veth pair stand in for the two hosts. Namespace A
also carries a second, unrelated interface (192.0.2.1) so that a softphone which picks
"some address of this host" instead of the address of the interface used toward the
peer gets caught.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.netns

CALLER_IP = "10.0.0.1"
CALLEE_IP = "10.0.0.2"
DECOY_IP = "192.0.2.1"


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "network namespaces need root"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the netns tests must run in CI")
    pytest.skip(f"{reason} (run as root, or set CI to make this a failure)")


def _ip(*args: str) -> None:
    result = subprocess.run(
        ["ip", *args], check=False, capture_output=True, text=True, timeout=10
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def namespaces() -> Iterator[tuple[str, str]]:
    _require_root()
    tag = os.getpid()
    ns_a, ns_b = f"sp-a-{tag}", f"sp-b-{tag}"
    veth_a, veth_b = f"spva{tag}", f"spvb{tag}"
    decoy_a, decoy_b = f"spda{tag}", f"spdb{tag}"
    try:
        _ip("netns", "add", ns_a)
        _ip("netns", "add", ns_b)
        # The decoy first, so that it comes first in any list of interfaces.
        _ip("link", "add", decoy_a, "type", "veth", "peer", "name", decoy_b)
        _ip("link", "set", decoy_a, "netns", ns_a)
        _ip("link", "set", decoy_b, "netns", ns_a)
        _ip("-n", ns_a, "addr", "add", f"{DECOY_IP}/24", "dev", decoy_a)
        _ip("-n", ns_a, "addr", "add", "192.0.2.2/24", "dev", decoy_b)
        _ip("-n", ns_a, "link", "set", decoy_a, "up")
        _ip("-n", ns_a, "link", "set", decoy_b, "up")

        _ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        _ip("link", "set", veth_a, "netns", ns_a)
        _ip("link", "set", veth_b, "netns", ns_b)
        _ip("-n", ns_a, "addr", "add", f"{CALLER_IP}/24", "dev", veth_a)
        _ip("-n", ns_b, "addr", "add", f"{CALLEE_IP}/24", "dev", veth_b)
        for ns, dev in ((ns_a, veth_a), (ns_b, veth_b)):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except (RuntimeError, OSError) as exc:
        _delete(ns_a, ns_b)
        if os.environ.get("CI"):
            pytest.fail(f"cannot build the namespaces: {exc}")
        pytest.skip(f"cannot build the namespaces: {exc}")
    try:
        yield ns_a, ns_b
    finally:
        _delete(ns_a, ns_b)


def _delete(*names: str) -> None:
    """Deleting a namespace deletes its interfaces, and so both ends of each veth."""
    for name in names:
        subprocess.run(
            ["ip", "netns", "del", name], check=False, capture_output=True, timeout=10
        )


def _only_call(summary: dict[str, Any] | None) -> dict[str, Any]:
    assert summary is not None, "the answerer printed no summary"
    assert len(summary["calls"]) == 1, summary
    return summary["calls"][0]


def _alice(softphone: Any, ns_b: str) -> Any:
    callee = softphone(
        "-vv",
        "--bind",
        CALLEE_IP,
        "--sip-port",
        "5060",
        "answer",
        "--auto",
        "--once",
        netns=ns_b,
    )
    assert callee.port("udp") == 5060
    return callee


@pytest.mark.timeout(90)
def test_call_with_explicit_bind(softphone: Any, namespaces: tuple[str, str]) -> None:
    ns_a, ns_b = namespaces
    callee = _alice(softphone, ns_b)
    call = softphone(
        "--bind",
        CALLER_IP,
        "call",
        f"sip:alice@{CALLEE_IP}",
        "--duration",
        "1",
        netns=ns_a,
    )
    call.wait_event("state", timeout=20, state="confirmed")
    callee.wait_event("state", timeout=20, state="confirmed")
    assert call.wait(timeout=30) == 0, call.stderr
    assert callee.wait(timeout=30) == 0, callee.stderr
    assert call.summary is not None and call.summary["result"] == "completed", (
        call.summary
    )
    end = _only_call(callee.summary)
    assert end["result"] == "completed", end
    assert end["audio"]["remote"].startswith(CALLER_IP), end["audio"]
    assert call.summary["audio"]["remote"].startswith(CALLEE_IP), call.summary["audio"]


@pytest.mark.timeout(90)
def test_call_without_bind_advertises_the_outgoing_interface(
    softphone: Any, namespaces: tuple[str, str]
) -> None:
    ns_a, ns_b = namespaces
    callee = _alice(softphone, ns_b)
    call = softphone("call", f"sip:alice@{CALLEE_IP}", "--duration", "1", netns=ns_a)
    call.wait_event("state", timeout=20, state="confirmed")
    callee.wait_event("state", timeout=20, state="confirmed")
    assert call.wait(timeout=30) == 0, call.stderr
    assert callee.wait(timeout=30) == 0, callee.stderr

    assert call.summary is not None and call.summary["result"] == "completed", (
        call.summary
    )
    end = _only_call(callee.summary)
    assert end["result"] == "completed", end
    # The caller's SDP (c= line) as the callee saw it.
    assert end["audio"]["remote"].startswith(CALLER_IP), end["audio"]
    # Nothing the callee received names an unroutable or unrelated address.
    trace = callee.stderr
    assert "0.0.0.0" not in trace, "the caller advertised 0.0.0.0 (see -vv trace)"
    assert DECOY_IP not in trace, f"the caller advertised {DECOY_IP}, not {CALLER_IP}"
    assert CALLER_IP in trace
