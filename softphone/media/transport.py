"""What the media loops need from the network, injected by the phone (media never imports net)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Address = tuple[str, int]
Receiver = Callable[[bytes, Address], None]


class RtpTransport(Protocol):
    """An RTP socket and its RTCP socket."""

    def send_rtp(self, data: bytes, addr: Address) -> None: ...

    def send_rtcp(self, data: bytes, addr: Address) -> None: ...

    def set_receivers(self, on_rtp: Receiver | None, on_rtcp: Receiver | None) -> None: ...
