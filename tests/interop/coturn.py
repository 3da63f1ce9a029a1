"""coturn (Debian ``turnserver``) as STUN and TURN server, on loopback or inside a namespace,
with long-term credentials; started and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TURN_USER, TURN_PASSWORD, TURN_REALM = "alice", "turnpw", "softphone.test"


@dataclass(frozen=True)
class TurnServer:
    host: str
    port: int

    def rc_lines(self) -> str:
        """The [net] keys that make a phone use it as STUN and TURN server."""
        return (f"stun_server={self.host}:{self.port}\nturn_server={self.host}:{self.port}\n"
                f"turn_username={TURN_USER}\nturn_password={TURN_PASSWORD}\n")


def _listening(port: int, netns: str | None) -> bool:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run([*prefix, "ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=5, check=False).stdout
    return bool(out.strip())


@contextmanager
def coturn(ip: str, port: int, workdir: Path, *, netns: str | None = None) -> Iterator[TurnServer]:
    """turnserver listening on ip:port (relaying from ip), inside ``netns`` when given."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("coturn is not installed (apt-get install -y coturn)")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    loopback = ["--allow-loopback-peers"] if ip.startswith("127.") else []
    log = (workdir / f"turn-{port}.log").open("w")
    process = subprocess.Popen(
        [*prefix, binary, "-n", "--no-cli", "--no-tls", "--no-dtls", f"--listening-ip={ip}", f"--relay-ip={ip}",
         f"--listening-port={port}", "--user", f"{TURN_USER}:{TURN_PASSWORD}", "--realm", TURN_REALM,
         "--lt-cred-mech", *loopback, "--min-port=49152", "--max-port=65535",
         f"--pidfile={workdir / f'turn-{port}.pid'}", "--log-file=stdout", "--simple-log"],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None and not _listening(port, netns):
            time.sleep(0.1)
        if process.poll() is not None or not _listening(port, netns):
            pytest.fail(f"turnserver did not start: {(workdir / f'turn-{port}.log').read_text()[-2000:]}")
        yield TurnServer(ip, port)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # ip netns exec execs turnserver: the same PID
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
