"""A phone that falls behind sheds new calls: 503 with Retry-After at once, not silence.

A burst of INVITEs, sent far faster than any phone sets calls up, fills the SIP socket's
receive buffer. While more than half of it waits to be read, each INVITE the phone reaches is
answered 503 with Retry-After: 1 (a few microseconds of work) instead of becoming a call whose
answer would come after the caller gave up; once the backlog is read, calls are answered again.
"""
from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from softphone.config import loads
from softphone.phone import SATURATED_GAP, Phone

HOST = "127.0.0.1"
BURST = 1500


def invite(n: int, port: int, target: int) -> bytes:
    return (
        f"INVITE sip:phone@{HOST}:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-burst-{n};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:burst@{HOST}>;tag=b{n}\r\nTo: <sip:phone@{HOST}>\r\n"
        f"Call-ID: burst-{n}-{time.monotonic_ns()}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:burst@{HOST}:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.timeout(90)
def test_a_burst_of_invites_is_shed_with_503_then_calls_are_answered_again(softphone: Any, tmp_path: Path) -> None:
    rc = tmp_path / "phone.rc"
    rc.write_text("[sip]\nmax_requests_per_second=0\nmax_dialogs=0\n[misc]\nmax_calls=100000\n")
    phone = softphone("-c", rc, "--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "answer", "--auto",
                      "--no-video", "--audio-codec", "PCMU", "--audio-source", "silence:", "--audio-sink", "null:")
    target = phone.port()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    client.bind((HOST, 0))
    port = client.getsockname()[1]
    try:
        for n in range(BURST):
            client.sendto(invite(n, port, target), (HOST, target))
        finals: dict[str, tuple[int, str | None]] = {}
        client.settimeout(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = client.recv(65535)
            except TimeoutError:
                if finals:
                    break
                continue
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            if status >= 200:
                finals.setdefault(fields["call-id"], (status, fields.get("retry-after")))
    finally:
        client.close()
    statuses = [status for status, _ in finals.values()]
    shed = [retry for status, retry in finals.values() if status == 503]
    assert shed and set(shed) == {"1"}, (len(finals), sorted(set(statuses)))
    assert statuses.count(200) > 0, sorted(set(statuses))  # the backlog read, calls are answered
    assert phone.running(), phone.describe()


def test_the_socket_is_asked_for_its_backlog_only_when_requests_come_back_to_back() -> None:
    """A request that came SATURATED_GAP or more after the one before found the phone waiting:
    no queue is asked about (a system call on the way to its answer); one right after
    another is, and a full socket makes the phone saturated."""
    async def decisions() -> list[tuple[bool, int]]:
        phone = Phone(loads("[sip]\nsip_port=0\nsip_tcp_port=0\n", "test.rc"), bind=HOST, media=False)
        await phone.start()
        network = phone.network
        asked = [0]

        def full_socket() -> int:  # the kernel's count for a socket far behind
            asked[0] += 1
            return 64 << 20

        network.backlog = full_socket  # type: ignore[method-assign]
        out = []
        try:
            for gap in (1.0, SATURATED_GAP, SATURATED_GAP / 2, 0.0001):
                network.gap = gap
                before = asked[0]
                out.append((phone._saturated(), asked[0] - before))
        finally:
            await phone.close()
        return out

    assert asyncio.run(decisions()) == [(False, 0), (False, 0), (True, 1), (True, 1)]


def test_the_gap_is_the_time_between_the_last_two_messages() -> None:
    async def gaps() -> list[float]:
        phone = Phone(loads("[sip]\nsip_port=0\nsip_tcp_port=0\n", "test.rc"), bind=HOST, media=False)
        await phone.start()
        out = []
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for pause in (0.3, 0.0):
                await asyncio.sleep(pause)
                sender.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", (HOST, phone.ports()["udp"]))  # a 400, or dropped
                await asyncio.sleep(0.05)
                out.append(phone.network.gap)
        finally:
            sender.close()
            await phone.close()
        return out

    first, second = asyncio.run(gaps())
    assert first > 0.3 and 0.0 < second < 0.3
