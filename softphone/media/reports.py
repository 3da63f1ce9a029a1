"""RTCP sender and receiver reports for one stream, on the RFC 3550 §6.2 schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from softphone.media.transport import Address, RtpTransport
from softphone.rtp.session import RtcpScheduler, RtpSession


async def send_reports(session: RtpSession, transport: RtpTransport, address: Callable[[], Address | None]) -> None:
    """Send a compound SR/RR + SDES whenever the scheduler says so, until cancelled."""
    scheduler = RtcpScheduler()
    while True:
        now = time.monotonic()
        await asyncio.sleep(max(0.0, scheduler.next_time(now) - now))
        remote = address()
        now = time.monotonic()
        if remote is not None:
            transport.send_rtcp(session.rtcp_report(now, time.time()), remote)
        scheduler.sent(now)
