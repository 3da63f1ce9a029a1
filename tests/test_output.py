"""The command line's output: one write per turn of the event loop, status line kept apart."""

from __future__ import annotations

import asyncio
import io
import json

from softphone.call.states import Progress
from softphone.events import Listening, StateEvent, Summary
from softphone.output import Output


class Counted(io.StringIO):
    """A stream that keeps each write apart, as an unbuffered stdout makes each a system call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def states(call_id: str) -> list[StateEvent]:
    return [StateEvent(call_id, state, code) for state, code in
            ((Progress.RINGING, 180), (Progress.ANSWERED, 200), (Progress.CONFIRMED, 200))]


def test_the_events_of_one_turn_leave_in_one_write_in_order() -> None:
    stream = Counted()
    out = Output(True, stream=stream)

    async def main() -> None:
        for event in states("c1"):
            out.event(event)
        assert stream.writes == []  # not before the loop has run what is ready
        await asyncio.sleep(0)
        assert len(stream.writes) == 1
        out.event(Summary({"calls": 1}))
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(stream.writes) == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("state") for line in lines] == ["ringing", "answered", "confirmed", None]
    assert lines[-1] == {"event": "summary", "calls": 1}


def test_without_a_running_loop_an_event_is_written_at_once() -> None:
    stream = Counted()
    Output(False, stream=stream).event(Listening("udp", "127.0.0.1", 5060))
    assert stream.getvalue() == "listening on udp 127.0.0.1:5060\n"


def test_flush_writes_what_the_loop_did_not_get_to() -> None:
    stream = Counted()
    out = Output(True, stream=stream)

    async def main() -> None:
        out.event(Summary({"calls": 0}))  # the loop stops before its next turn

    asyncio.run(main())
    out.flush()
    assert json.loads(stream.getvalue()) == {"event": "summary", "calls": 0}


def test_pending_lines_come_before_the_status_line_which_they_clear() -> None:
    stream = Counted()
    out = Output(False, stream=stream, live=True)

    async def main() -> None:
        out.status("MOS 4.3")
        out.event(Listening("udp", "127.0.0.1", 5060))
        out.status("MOS 4.2")  # the event is written first, over the old status line

    asyncio.run(main())
    assert stream.getvalue() == (
        "\rMOS 4.3\x1b[K" "\r\x1b[K" "listening on udp 127.0.0.1:5060\n" "\rMOS 4.2\x1b[K"
    )


def test_quiet_human_output_prints_no_event_lines() -> None:
    stream = Counted()
    out = Output(False, stream=stream, quiet=True)
    out.event(Listening("udp", "127.0.0.1", 5060))
    assert stream.getvalue() == ""
