"""A linphonerc written by a real linphonec loads, and its keys mean what they mean in linphone."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from softphone.config import load
from softphone.phone import Phone
from tests.conftest import _stop_popen, free_port
from tests.interop.conftest import require_linphonec

# what we give linphonec before it starts: the device names it writes for ALSA,
# PulseAudio and V4L2 devices (this machine has none of them, so linphonec could not
# pick them itself), the TCP port and IPv6
SEED = """[sip]
ipv6_migration_done=1
sip_port={sip_port}
sip_tcp_port={tcp_port}
use_ipv6=0
[rtp]
bind_address=127.0.0.1
[sound]
playback_dev_id=ALSA: default device
ringer_dev_id=PulseAudio Unknown: default
capture_dev_id=ALSA Unknown: default
[video]
device=V4L2: /dev/video0
"""


@pytest.fixture
def linphonec_rc(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Factory: linphonec_rc(tcp_port) runs linphonec on a seed rc until it has started,
    quits it, and returns the rc it rewrote on exit."""
    require_linphonec()
    started: list[subprocess.Popen[bytes]] = []

    def run(tcp_port: int) -> Path:
        work = tmp_path / f"linphonec{len(started)}"
        home = work / "home"
        (home / ".local" / "share" / "linphone").mkdir(parents=True)
        rc = work / "linphonerc"
        rc.write_text(SEED.format(sip_port=free_port("udp"), tcp_port=tcp_port))
        fifo = work / "stdin.fifo"
        os.mkfifo(fifo)
        out = work / "linphonec.out"
        fd = os.open(fifo, os.O_RDWR)  # held open: linphonec exits when its stdin closes
        with open(out, "wb") as out_file:
            proc = subprocess.Popen(["linphonec", "-c", str(rc)], stdin=fd, stdout=out_file,
                                    stderr=subprocess.STDOUT, cwd=work, env=dict(os.environ, HOME=str(home)))
        started.append(proc)
        try:
            deadline = time.monotonic() + 20
            while "linphonec>" not in out.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, out.read_text(errors="replace")
                time.sleep(0.1)
            os.write(fd, b"quit\n")
            assert proc.wait(20) == 0, out.read_text(errors="replace")
        finally:
            os.close(fd)
        text = rc.read_text()
        assert "user_agent=Linphonec/" in text, text  # linphonec rewrote it
        return rc

    yield run
    for proc in started:
        _stop_popen(proc, 5.0)


@pytest.mark.timeout(90)
def test_a_linphonec_written_rc_loads_with_linphones_meanings(linphonec_rc, caplog) -> None:
    rc = linphonec_rc(0)
    with caplog.at_level(logging.WARNING, logger="softphone.config"):
        config = load(rc)
    text = rc.read_text()
    # sound cards and camera onto our drivers
    assert config.sound.playback_dev_id == "pyaudio: default"
    assert config.sound.ringer_dev_id == "pyaudio: default"
    assert config.sound.capture_dev_id == "pyaudio: default"
    assert config.video.device == "opencv: 0"
    # use_ipv6, ports, timers and codecs as linphonec wrote them
    assert config.sip.ipv6 is False and "use_ipv6=0" in text
    assert config.sip.sip_tcp_port == 0
    assert config.sip.user_agent.startswith("Linphonec/")
    assert config.rtp.audio_rtp_port == (7078, 7078)
    assert [c.mime for c in config.audio_codecs][:2] == ["opus", "speex"]
    assert any(c.mime == "VP8" for c in config.video_codecs)
    # the keys this phone has no use for: one line listing them all
    (warning,) = config.warnings
    assert warning.startswith(f"{rc}: ignored unknown keys: ") and "[misc] prefer_basic_chat_room" in warning
    assert "[app] (whole section)" in warning and "\n" not in warning and "verify_server_certs" not in warning
    assert [r.getMessage() for r in caplog.records] == [warning]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("tcp_port", "transports"), [(0, {"udp"}), (-1, {"udp", "tcp"})])
def test_sip_tcp_port_zero_is_no_tcp_and_minus_one_any_port(linphonec_rc, tcp_port, transports) -> None:
    import asyncio

    config = load(linphonec_rc(tcp_port))
    assert config.sip.sip_tcp_port == tcp_port

    async def listen() -> dict[str, int]:
        phone = Phone(config, bind="127.0.0.1", media=False)
        await phone.start()
        try:
            return phone.ports()
        finally:
            await phone.close()

    ports = asyncio.run(listen())
    assert set(ports) == transports
    if "tcp" in ports:
        assert ports["tcp"] not in (0, config.sip.sip_port)  # any free port, not sip_port
