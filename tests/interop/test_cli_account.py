"""An account given on the command line (``--account URI``), registered at Kamailio with the
password from the environment, never from the command line."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.conftest import SOFTPHONE_CMD

pytestmark = pytest.mark.interop


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run([*SOFTPHONE_CMD, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


@pytest.mark.timeout(60)
def test_an_account_on_the_command_line_registers_with_the_password_from_the_environment(kamailio: Any) -> None:
    registrar = kamailio()
    account = f"sip:alice@127.0.0.1:{registrar.udp_port}"
    env = {**os.environ, "SOFTPHONE_PASSWORD": "alicepw"}
    done = _run("--bind", "127.0.0.1", "--sip-port", "0", "register", "--once", "--account", account, "--json",
                env=env)
    states = [json.loads(line).get("state") for line in done.stdout.splitlines()]
    assert done.returncode == 0 and "registered" in states, done.stdout + done.stderr
    assert "alicepw" not in done.stdout + done.stderr
    env["SOFTPHONE_PASSWORD"] = "wrong"
    refused = _run("--bind", "127.0.0.1", "--sip-port", "0", "register", "--once", "--account", account, env=env)
    assert refused.returncode == 5, refused.stderr  # authentication failed
    bad = _run("register", "--once", "--account", "alice")
    assert bad.returncode == 2 and bad.stderr.startswith("softphone: --account: not a SIP URI"), bad.stderr
