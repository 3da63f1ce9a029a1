"""A phone with several accounts starts their registrations one per turn of its loop, so
that the answers to the first ones can be handled before the last ones start: no account's
registration waits for every other account's first REGISTER."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from softphone.config import loads
from softphone.events import PhoneEvent, RegistrationEvent
from softphone.net.loops import run
from softphone.phone import Phone

HOST = "127.0.0.1"
ACCOUNTS = 8
COPIED = re.compile(rb"^(?:Via|From|To|Call-ID|CSeq|Contact):.*?\r\n", re.MULTILINE | re.IGNORECASE)


class Registrar(asyncio.DatagramProtocol):
    """Answers every REGISTER 200 at once, and keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.transport: Any = None  # uvloop's UDPTransport is not an asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not data.startswith(b"REGISTER "):
            return
        self.requests.append(data)
        headers = b"".join(m.group(0) for m in COPIED.finditer(data))
        answer = b"SIP/2.0 200 OK\r\n" + headers + b"Expires: 60\r\nContent-Length: 0\r\n\r\n"
        assert self.transport is not None
        self.transport.sendto(answer, addr)

    def users(self) -> list[str]:
        return [re.search(rb"^From:[^\r]*sip:([^@]+)@", r, re.MULTILINE).group(1).decode()  # type: ignore[union-attr]
                for r in self.requests]


def config(port: int) -> str:
    text = "[sip]\nsip_port=0\nsip_tcp_port=0\n"
    for n in range(ACCOUNTS):
        text += (f"[proxy_{n}]\nreg_proxy=<sip:{HOST}:{port}>\nreg_identity=<sip:user{n}@{HOST}>\n"
                 f"reg_sendregister=1\nreg_expires=60\n")
    return text


async def with_registrar(body) -> tuple[Registrar, list[PhoneEvent]]:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    transport, registrar = await loop.create_datagram_endpoint(Registrar, local_addr=(HOST, 0))
    port = transport.get_extra_info("sockname")[1]
    events: list[PhoneEvent] = []
    phone = Phone(loads(config(port), "test.rc"), bind=HOST, media=False, on_event=events.append)
    await phone.start()
    try:
        await asyncio.wait_for(body(phone), 10)
    finally:
        await phone.close(timeout=2)
        transport.close()
    return registrar, events


def states(events: list[PhoneEvent]) -> list[tuple[str, str]]:
    return [(e.account, e.state) for e in events if isinstance(e, RegistrationEvent)]


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_each_account_starts_on_its_own_turn_of_the_loop(event_loop: str) -> None:
    """Whatever the loop has ready when the next account is due (a datagram read, another
    callback) runs before that account starts; how soon the registrar's answers are in the
    socket is the kernel's business, so that the test asks only for the turns."""
    turns: list[list[str]] = []

    async def register_all(phone: Phone) -> None:
        loop = asyncio.get_running_loop()
        registrations = phone.register()

        def note() -> None:
            turns.append([r.state for r in registrations])
            if len(turns) < 3:
                loop.call_soon(note)

        turns.append([r.state for r in registrations])
        loop.call_soon(note)  # after the start that register() has scheduled for the next turn
        while not all(r.registered for r in registrations):
            await asyncio.sleep(0.01)

    registrar, events = run(with_registrar(register_all), event_loop)
    started = [ACCOUNTS - t.count("idle") for t in turns]
    assert started == [1, 2, 3], turns
    assert sum(state == "registered" for _, state in states(events)) == ACCOUNTS, states(events)
    assert sorted(set(registrar.users())) == sorted(f"user{n}" for n in range(ACCOUNTS))


def test_accounts_not_yet_started_are_not_registered_after_unregister() -> None:
    async def register_and_unregister(phone: Phone) -> None:
        phone.register()
        phone.unregister()  # before the loop turns: only user0's REGISTER has gone
        await asyncio.sleep(0.2)

    registrar, events = asyncio.run(with_registrar(register_and_unregister))
    assert set(registrar.users()) == {"user0"}, registrar.users()
    assert {account for account, _ in states(events)} == {"sip:user0@" + HOST}
