"""``softphone demo``: a call to a built-in auto-answer peer on loopback, with its timeline."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from softphone.config import Config
from softphone.phone import IncomingPolicy, Phone
from softphone.session import MediaChoice

ORDER = ("invite_sent", "trying", "ringing", "answered", "ack", "first_audio_rx", "bye")


class EventOutput(Protocol):
    def event(self, event: dict[str, Any]) -> None: ...


async def run_demo(config: Config, out: EventOutput, *, as_json: bool = False, duration: float = 1.0) -> int:
    """Run an auto-answering peer and a caller in this process on 127.0.0.1."""
    loopback = config.with_values("sip", sip_port=0, sip_tcp_port=0).with_values(
        "rtp", audio_rtp_port=(0, 0), video_rtp_port=(0, 0)
    )
    callee_config = loopback.with_values("sip", contact="sip:demo@127.0.0.1")
    callee = Phone(callee_config, bind="127.0.0.1")
    callee.policy = IncomingPolicy(auto_answer=True, delay=0.2)
    # the peer plays a tone back; nothing is captured from or played to a sound card
    callee.media_choice = MediaChoice(audio_codec="PCMU", audio_source="tone: 880", audio_sink="null:")
    caller = Phone(loopback, bind="127.0.0.1", on_event=out.event if as_json else None)
    await callee.start()
    await caller.start()
    try:
        port = callee.ports()["udp"]
        target = f"sip:demo@127.0.0.1:{port}"
        if not as_json:
            out.event({"event": "listening", "transport": "udp", "host": "127.0.0.1", "port": port})
        session = await caller.call(target, media=MediaChoice(audio_source="tone: 440", audio_sink="null:"))
        await session.wait_state("confirmed", timeout=10)
        await asyncio.sleep(duration)
        session.hangup()
        summary = await session.wait(timeout=10)
    finally:
        await caller.close()
        await callee.close()
    if as_json:
        out.event({"event": "summary", **summary})
    else:
        _print_timeline(summary, target)
    return 0 if summary["result"] == "completed" else 4


def _print_timeline(summary: dict[str, Any], target: str) -> None:
    print(f"demo call to {target}: {summary['result']} (SIP {summary['sip_code']})")
    for name in ORDER:
        if name in summary["timeline"]:
            print(f"  {summary['timeline'][name] * 1000:9.1f} ms  {name}")
    for kind in ("audio", "video"):
        stream = summary.get(kind)
        if stream and not stream["declined"]:
            counters = ""
            if "tx_packets" in stream:
                counters = f", sent {stream['tx_packets']} / received {stream['rx_packets']} RTP packets"
            print(
                f"  {kind}: {stream['codec']} pt {stream['payload_type']} local port {stream['local_port']}"
                f" -> {stream['remote']} ({stream['media']}{counters})"
            )
