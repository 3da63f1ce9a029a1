"""[rtp] nortp_timeout: a call whose media stopped ends by itself with a clear reason."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop


@pytest.mark.timeout(60)
def test_call_without_rtp_ends_after_nortp_timeout(softphone, sipp, tmp_path):
    config = tmp_path / "softphonerc"
    config.write_text("[rtp]\nnortp_timeout=2\n")
    # the SIPp UAS answers with audio and video but never sends RTP
    uas = sipp("uas_av.xml", None, "-m", 1, timeout=30)
    sp = softphone("-c", str(config), "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                   f"sip:service@127.0.0.1:{uas.local_port}", "--audio-source", "tone: 440",
                   "--audio-sink", "null:")
    rc = sp.wait(20)
    assert rc == 3, sp.describe()
    assert "no RTP received for 2" in sp.stderr, sp.describe()
    summary = sp.summary
    assert summary["result"] == "error" and summary["reason"] == "no RTP received for 2.0 s", summary
    assert 2.0 <= summary["timeline"]["bye"] - summary["timeline"]["answered"] < 4.0, summary
    assert summary["audio"]["tx_packets"] > 80 and summary["audio"]["rx_packets"] == 0, summary
    assert uas.wait(20) == 0, uas.describe()  # SIPp got its BYE
