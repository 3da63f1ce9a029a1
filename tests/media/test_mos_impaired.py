"""The MOS estimate (ITU-T G.107) follows the link: a call over a link that loses packets
scores lower than the same call on a clean one."""

from __future__ import annotations

import pytest

CALL_S = 6


def _call(softphone, tmp_path, *, caller_ip="127.0.0.1", callee_ip="127.0.0.1", caller_ns=None, callee_ns=None,
          name="clean"):
    media = ["--no-video", "--audio-codec", "PCMU", "--audio-source", "tone: 440", "--audio-sink", "null:"]
    callee = softphone("--bind", callee_ip, "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                       *media, netns=callee_ns)
    caller = softphone("--bind", caller_ip, "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@{callee_ip}:{callee.port()}", "--duration", str(CALL_S), "--timeout", "20", *media,
                       "--report", tmp_path / f"{name}.png", netns=caller_ns)
    assert caller.wait(CALL_S + 40) == 0, caller.describe()
    assert callee.wait(20) == 0, callee.describe()
    summary = caller.summary
    assert summary is not None and summary["result"] == "completed", caller.describe()
    return summary["audio"], callee.summary["calls"][0]["audio"]


@pytest.mark.netns
@pytest.mark.timeout(120)
@pytest.mark.impairment(delay_ms=30, jitter_ms=5, loss_pct=8, keep_order=True)
def test_mos_falls_under_imposed_loss(softphone, impaired_namespaces, tmp_path) -> None:
    clean_caller, clean_callee = _call(softphone, tmp_path)
    link = impaired_namespaces
    lossy_caller, lossy_callee = _call(softphone, tmp_path, caller_ip=link.ip_a, callee_ip=link.ip_b,
                                       caller_ns=link.ns_a, callee_ns=link.ns_b, name="impaired")
    stats = link.stop_impairers()
    print("clean", clean_caller["mos"], clean_callee["mos"], "impaired", lossy_caller["mos"], lossy_callee["mos"],
          "loss", lossy_caller["loss_pct"], lossy_callee["loss_pct"], "impairers", stats)
    for clean, lossy in ((clean_caller, lossy_caller), (clean_callee, lossy_callee)):
        assert clean["loss_pct"] == 0.0 and clean["mos"] > 4.2, clean
        # 8 % random loss each way: measured near 8 %, and Ie,eff = 95 * 8 / (8 + 25.1) = 23 takes
        # the rating from about 92 to under 70: the estimate falls by more than half a point
        assert 3.0 < lossy["loss_pct"] < 16.0, lossy
        # the loss is random: at the least 3 % asserted above, G.711's Ie,eff is 95*3/(3+25.1) = 10.1,
        # an R 10 lower, about 0.3 of MOS at these R (a run with 0.5 asked failed at a 0.44 fall)
        assert lossy["mos"] < clean["mos"] - 0.25, (clean, lossy)
        assert lossy["rtt_ms"] is None or lossy["rtt_ms"] > 40, lossy  # 30 ms added each way
