"""INVITE->200 as the loopback interface saw it: the kernel's timestamps of the two datagrams.

SIPp stamps an INVITE with ``<gettimeofday>`` once its ``sendto`` has returned. When the
answerer wakes on the other processor and the scheduler lets it run before SIPp, that stamp
comes late, up to the whole answer: a peer that wakes fast can then seem to answer in
microseconds. The kernel stamps each datagram as it passes the interface, in the sender's
own ``sendto``, so the difference of the two stamps is the answerer's time alone, whoever
runs first.

``WireClock`` opens a packet socket on ``lo`` (needs CAP_NET_RAW, as root) with kernel
timestamps (SO_TIMESTAMPNS), and a thread that reads it every 200 ms, so that it does not
wake with each datagram and take a processor from the peers. Per Call-ID it keeps the first
INVITE toward the answerer's port and the first 200 to an INVITE from it, IPv4 UDP only.
"""
from __future__ import annotations

import re
import socket
import struct
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # on lo each datagram is seen twice, going out and coming in: count it once
ETH_HEADER = 14
CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)
CSEQ_INVITE = re.compile(rb"\r\nCSeq[ \t]*:[ \t]*\d+[ \t]+INVITE\r\n", re.IGNORECASE)
TIMESPEC = struct.Struct("@ll")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python 3.11 lacks the name


class WireClock:
    """INVITE and 200 timestamps on ``lo`` for datagrams to and from ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.invites: dict[bytes, float] = {}
        self.answers: dict[bytes, float] = {}
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("lo", 0))
        self.sock.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wire-clock", daemon=True)

    def __enter__(self) -> WireClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        self.sock.close()

    def setup_ms(self) -> list[float]:
        """INVITE->200 of each call both of whose datagrams were seen, in ms."""
        return [(self.answers[c] - t) * 1000.0 for c, t in self.invites.items() if c in self.answers]

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data, ancillary, _, address = self.sock.recvmsg(65536, 64)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                stamp = next((TIMESPEC.unpack_from(d) for level, kind, d in ancillary
                              if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None)
                self._note(data, stamp[0] + stamp[1] / 1e9 if stamp else time.time())

    def _note(self, frame: bytes, stamp: float) -> None:
        ip = frame[ETH_HEADER:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
            return
        udp = ip[(ip[0] & 0x0F) * 4:]
        source, destination = struct.unpack_from("!HH", udp)
        payload = udp[8:]
        if destination == self.port and payload.startswith(b"INVITE "):
            table = self.invites
        elif source == self.port and payload.startswith(b"SIP/2.0 200") and CSEQ_INVITE.search(payload):
            table = self.answers
        else:
            return
        found = CALL_ID.search(payload)
        if found is not None:
            table.setdefault(found.group(1).strip(), stamp)
