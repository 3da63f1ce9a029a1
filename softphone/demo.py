"""``softphone demo``: a call to a built-in auto-answer peer on loopback, with its timeline."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Protocol

from softphone.call.states import CallResult
from softphone.config import Config
from softphone.errors import StateError
from softphone.events import CallSummary, Listening, PhoneEvent, Summary
from softphone.phone import IncomingPolicy, Phone
from softphone.session import MediaChoice

ORDER = ("invite_sent", "trying", "ringing", "answered", "ack", "first_audio_rx", "first_video_frame", "bye")


class EventOutput(Protocol):
    live: bool  # a terminal: a status line may be shown

    def event(self, event: PhoneEvent) -> None: ...

    def status(self, text: str) -> None: ...

    def clear_status(self) -> None: ...


async def run_demo(
    config: Config, out: EventOutput, *, as_json: bool = False, duration: float = 3.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Run an auto-answering peer and a caller in this process on 127.0.0.1. ``stop``
    set (a signal) hangs up at once; the summary is printed all the same (exit 130)."""
    stop = stop or asyncio.Event()
    loopback = config.with_values("sip", sip_port=0, sip_tcp_port=-1).with_values(
        "rtp", audio_rtp_port=(0, 0), video_rtp_port=(0, 0)
    )
    callee_config = loopback.with_values("sip", contact="sip:demo@127.0.0.1")
    callee = Phone(callee_config, bind="127.0.0.1")
    callee.policy = IncomingPolicy(auto_answer=True, delay=0.2)
    # the peer plays a tone back; nothing is captured from or played to a sound card
    callee.media_choice = MediaChoice(audio_codec="PCMU", audio_source="tone: 880", audio_sink="null:",
                                      video_source="pattern:", video_sink="null:")
    caller = Phone(loopback, bind="127.0.0.1", on_event=out.event if as_json else None)
    await callee.start()
    await caller.start()
    try:
        port = callee.ports()["udp"]
        target = f"sip:demo@127.0.0.1:{port}"
        if not as_json:
            out.event(Listening("udp", "127.0.0.1", port))
        # test-pattern video both ways; the peer's picture in a window when there is a display
        window = "opencv:" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else "null:"
        session = await caller.call(target, media=MediaChoice(audio_source="tone: 440", audio_sink="null:",
                                                              video_source="pattern:", video_sink=window))
        if out.live:  # on a terminal: the call's figures, refreshed each second
            session.on_quality(lambda sample: out.status(sample.status_line()))
        try:
            if await _unless(stop, session.wait_state("confirmed", timeout=10)):
                await _unless(stop, asyncio.sleep(duration))
        except StateError:
            pass  # the call ended before it was answered: its summary says how
        session.hangup()
        summary = await session.wait(timeout=10)
    finally:
        await caller.close()
        await callee.close()
        out.clear_status()
    if as_json:
        out.event(Summary(summary.as_summary()))
    else:
        _print_timeline(summary, target)
    if stop.is_set():
        return 130
    return 0 if summary.result == CallResult.COMPLETED else 4


async def _unless(stop: asyncio.Event, awaitable: Awaitable[object]) -> bool:
    """Await ``awaitable`` unless ``stop`` is set first (then cancel it): whether it finished."""
    work = asyncio.ensure_future(awaitable)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not work.done():
        work.cancel()
        # its end is collected here: a wait for a state ends in StateError, not CancelledError,
        # when the call ends in the same turn, and an uncollected error is logged with a traceback
        await asyncio.gather(work, return_exceptions=True)
        return False
    work.result()
    return True


def _print_timeline(summary: CallSummary, target: str) -> None:
    print(f"demo call to {target}")
    print(summary.human())
    for stream, kind in ((summary.audio, "audio"), (summary.video, "video")):
        if stream and not stream["declined"]:
            counters = ""
            if "tx_packets" in stream:
                counters = f", sent {stream['tx_packets']} / received {stream['rx_packets']} RTP packets"
            print(
                f"  {kind}: {stream['codec']} pt {stream['payload_type']} local port {stream['local_port']}"
                f" -> {stream['remote']} ({stream['media']}{counters})"
            )
    print("  timeline:")
    for name in ORDER:
        if name in summary.timeline:
            print(f"  {summary.timeline[name] * 1000:9.1f} ms  {name}")
