"""The impaired link really delays, jitters and drops: measured with ping."""
from __future__ import annotations

import os
import re
import shutil

import pytest

pytestmark = pytest.mark.netns


def ping(link, count: int, interval: float = 0.02) -> dict:
    if shutil.which("ping") is None:
        msg = "ping is not installed (Debian package iputils-ping)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    r = link.run(link.ns_a, "ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1",
                 link.ip_b, timeout=count * interval + 30)
    out = r.stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, f"ping output not understood:\n{out}\n{r.stderr}"
    sent, received = int(m.group(1)), int(m.group(2))
    res = {"sent": sent, "received": received, "loss_pct": 100.0 * (sent - received) / sent, "out": out}
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", out)
    if m:
        res.update(zip(("min", "avg", "max", "mdev"), map(float, m.groups()), strict=True))
    return res


@pytest.mark.timeout(90)
def test_clean_link_first(impaired_namespaces):
    """The namespaces reach each other through the impairers."""
    link = impaired_namespaces
    res = ping(link, 5, interval=0.2)
    assert res["received"] >= 3, res["out"]


@pytest.mark.timeout(120)
@pytest.mark.impairment(delay_ms=40, jitter_ms=20, loss_pct=5)
def test_delay_jitter_loss_with_ping(impaired_namespaces, record_property):
    link = impaired_namespaces
    res = ping(link, 400)
    stats = link.stop_impairers()
    print(f"ping: {res['out'].strip().splitlines()[-2:]}\nimpairers: {stats}")
    for key in ("loss_pct", "avg", "mdev", "min", "max"):
        record_property(f"ping_{key}", res.get(key))
    # each direction: 40 +- 20 ms, so an echo takes 80 ms on average (40..120 ms)
    assert "avg" in res, res["out"]
    assert 70 <= res["avg"] <= 90, res["out"]
    assert res["min"] >= 39, res["out"]
    assert res["max"] <= 125, res["out"]
    # the sum of two uniform +-20 ms: standard deviation 20 * sqrt(2/3) = 16.3 ms
    assert 10 <= res["mdev"] <= 22, res["out"]
    # 5 % each way: an echo survives both with 0.95^2, so ~9.75 % lost
    assert 4 <= res["loss_pct"] <= 17, res["out"]
    for ns in link.namespaces:
        s = stats[ns]
        assert s["seen"] >= 0.8 * 400, stats
        assert 1.5 <= 100 * s["dropped"] / s["seen"] <= 10, stats


@pytest.mark.timeout(90)
@pytest.mark.impairment(delay_ms=30, jitter_ms=0, loss_pct=0, keep_order=True)
def test_fixed_delay_keeps_order(impaired_namespaces):
    link = impaired_namespaces
    res = ping(link, 100)
    assert res["loss_pct"] == 0, res["out"]
    assert 59 <= res["avg"] <= 66, res["out"]
    assert res["mdev"] <= 3, res["out"]


@pytest.mark.timeout(90)
@pytest.mark.impairment(engine="nft", loss_pct=20)
def test_kernel_loss_only(impaired_namespaces):
    link = impaired_namespaces
    res = ping(link, 400, interval=0.01)
    # 20 % each way: 1 - 0.8^2 = 36 % of the echoes lost
    assert 25 <= res["loss_pct"] <= 47, res["out"]
    assert res["avg"] < 5, res["out"]
