"""What the command line prints: the phone's events as JSON lines (``--json``) or as short
human lines, and on a terminal a status line rewritten in place.

The lines of one turn of the event loop (a call's incoming, ringing, answered and media
events come from one message) are written together, in one ``write``, once the loop has run
what is ready; a process started with ``PYTHONUNBUFFERED`` would otherwise pay a system call
per line.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from typing import TextIO

from softphone.events import PhoneEvent


class Output:
    """Events as JSON lines (``--json``) or as short human lines; on a terminal, also a
    status line rewritten in place (cleared before anything else is printed)."""

    def __init__(self, as_json: bool, stream: TextIO | None = None, live: bool | None = None,
                 quiet: bool = False) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.quiet = quiet and not as_json  # -q: no event lines (JSON is output, not chatter)
        self.live = live if live is not None else (not as_json and not self.quiet and self.stream.isatty())
        self._status_shown = False
        self._pending: list[str] = []  # lines not written yet
        self._flush_pending = False

    def status(self, text: str) -> None:
        """Show ``text`` as the status line: carriage return, the text, clear to the end of the line."""
        if not self.live:
            return
        self._write_pending()
        width = shutil.get_terminal_size().columns
        self.stream.write("\r" + text[: max(1, width - 1)] + "\x1b[K")
        self.stream.flush()
        self._status_shown = True

    def clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def event(self, event: PhoneEvent) -> None:
        if self.as_json:
            self._pending.append(json.dumps(event.to_json(), sort_keys=False) + "\n")
        elif not self.quiet:
            text = event.human()
            if text:
                self._pending.append(text + "\n")
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_pending = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines not written yet, and flush the stream."""
        self._flush_pending = False
        self._write_pending()
        self.stream.flush()

    def _write_pending(self) -> None:
        if self._pending:
            self.clear_status()
            self.stream.write("".join(self._pending))
            self._pending.clear()
