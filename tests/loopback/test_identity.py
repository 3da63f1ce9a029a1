"""Who a call without an account is from: the user of ``[sip] contact`` at the address the call
uses (so the peer can call back), unless ``contact`` names a real host."""

from __future__ import annotations

import asyncio

import pytest

from softphone.config import default_config
from softphone.events import Incoming, PhoneEvent
from softphone.phone import IncomingPolicy, Phone
from softphone.session import MediaChoice


async def _caller_as_seen(contact: str | None) -> str:
    config = default_config().with_values("sip", sip_port=0, sip_tcp_port=0)
    config = config.with_values("rtp", audio_rtp_port=(0, 0), video_rtp_port=(0, 0))
    seen: list[str] = []

    def on_event(event: PhoneEvent) -> None:
        if isinstance(event, Incoming):
            seen.append(event.caller)

    callee = Phone(config, bind="127.0.0.1", on_event=on_event)
    callee.policy = IncomingPolicy(auto_answer=False)
    caller = Phone(config.with_values("sip", contact=contact) if contact else config, bind="127.0.0.1")
    await callee.start()
    await caller.start()
    try:
        session = await caller.call(f"sip:bob@127.0.0.1:{callee.ports()['udp']}",
                                    media=MediaChoice(video=False, audio_source="silence:", audio_sink="null:"))
        await session.wait_state("ringing", timeout=5)
        session.hangup()
        await session.wait(timeout=5)
    finally:
        await caller.close()
        await callee.close()
    return seen[0]


@pytest.mark.timeout(30)
def test_without_an_account_the_call_is_from_the_address_it_uses() -> None:
    caller = asyncio.run(_caller_as_seen(None))
    assert caller.startswith("sip:softphone@127.0.0.1:"), caller
    named = asyncio.run(_caller_as_seen('"Front door" <sip:door@intercom.example.com>'))
    assert named == '"Front door" <sip:door@intercom.example.com>', named
