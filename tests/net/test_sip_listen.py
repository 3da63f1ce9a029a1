"""The SIP listeners: port 0 gives UDP and TCP the same free port, even when the first
free UDP port is taken for TCP."""
from __future__ import annotations

import asyncio
import socket

import pytest

from softphone.errors import TransportError
from softphone.net import sip
from softphone.net.sip import SipNetwork
from softphone.sip.endpoint import Endpoint
from softphone.sip.timers import Timers


def taken_tcp_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def listen_with_first_udp_port(first: int, port: int, tcp_port: int | None = None) -> SipNetwork:
    """listen(); the system's first UDP port is replaced by ``first`` (whose TCP side is taken)."""
    network = SipNetwork(Endpoint(Timers()), lambda events: None)
    original = sip.bind_udp
    tried: list[tuple[str, int]] = []

    def bind(family: int, host: str, port: int) -> socket.socket:
        tried.append((host, port))
        if len(tried) == 1 and port == 0:
            port = first
        return original(family, host, port)

    sip.bind_udp = bind  # type: ignore[assignment]
    try:
        await network.listen("127.0.0.1", port, tcp_port=tcp_port)
    finally:
        sip.bind_udp = original  # type: ignore[assignment]
    return network


def test_port_zero_skips_a_port_whose_tcp_side_is_taken() -> None:
    async def run() -> None:
        busy = taken_tcp_port()
        try:
            network = await listen_with_first_udp_port(busy.getsockname()[1], 0)
            try:
                assert network.ports["udp"] == network.ports["tcp"] != busy.getsockname()[1]
            finally:
                network.close()
        finally:
            busy.close()

    asyncio.run(run())


def test_a_port_asked_for_is_not_changed() -> None:
    async def run() -> None:
        busy = taken_tcp_port()
        port = busy.getsockname()[1]
        try:
            with pytest.raises(TransportError, match=f"TCP 127.0.0.1:{port}"):
                await listen_with_first_udp_port(port, port)
        finally:
            busy.close()

    asyncio.run(run())
