"""A device that cannot be opened must not cost the call: the stream takes a stand-in
(``silence:``, ``null:``) and says so in the call's ``device_error`` event.

The failure is logged once, not for every call: an answering phone without a camera took
200 calls a second, each logging the same warning. A call that starts ``RETRY_AFTER``
seconds or more after the device last failed tries it again (a camera plugged in, a sound
server come back); the calls in between go straight to the stand-in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

RETRY_AFTER = 10.0  # seconds a device that failed is left alone

EventCallback = Callable[[str, dict[str, Any]], None]
_Device = TypeVar("_Device")

# (opener, spec) -> (monotonic time of the last failure, its error)
_failed: dict[tuple[Callable[..., Any], str], tuple[float, str]] = {}


def ignore_event(name: str, data: dict[str, Any]) -> None:
    """A stream's events once it has stopped: the call's own callback refers back to the call,
    and a stream that kept it would keep the call in a cycle for the collector to find."""


def open_or_fallback(kind: str, opener: Callable[..., _Device], spec: str, fallback: str,
                     on_event: EventCallback, **kwargs: Any) -> _Device:
    """``opener(spec, **kwargs)``, else ``opener(fallback, **kwargs)``; ``kind`` names the
    device in the log line ("audio", "video")."""
    key = (opener, spec)
    failed = _failed.get(key)
    if failed is None or time.monotonic() - failed[0] >= RETRY_AFTER:
        try:
            device = opener(spec, **kwargs)
        except Exception as exc:  # no sound card or camera, a device that went away, driver errors...
            if failed is None:
                log.warning("%s device %r unavailable (%s); using %r", kind, spec, exc, fallback)
            failed = _failed[key] = (time.monotonic(), str(exc))
        else:
            _failed.pop(key, None)
            return device
    on_event("device_error", {"device": spec, "error": failed[1], "using": fallback})
    return opener(fallback, **kwargs)
