"""A phone that answered the peer's BYE does not leave at once: if its 200 was lost, the peer
sends the BYE again T1 later (RFC 3261 §17.1.2.2), and that copy must be answered too.

Before, ``softphone answer --once`` (and ``call``, when the peer hung up) exited right after
its 200; a peer that lost it retransmitted the BYE into a closed port until its Timer F, 32 s
later. Here a caller on a plain UDP socket plays that peer: it takes the 200 to its BYE as
lost and sends the same BYE again.

The copy after a lost 200 may itself be lost. The phone used to leave once nothing had come for
2*T1: the copy after the lost one, 3*T1 after the first, found its port closed.
"""
from __future__ import annotations

import re
import socket
import time
from typing import Any

import pytest

HOST = "127.0.0.1"
SDP = (f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def request(method: str, cseq: int, branch: str, target: int, port: int, to_tag: str = "") -> bytes:
    body = SDP if method == "INVITE" else ""
    return (
        f"{method} sip:phone@{HOST}:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-{branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:peer@{HOST}>;tag=peer1\r\n"
        f"To: <sip:phone@{HOST}>{';tag=' + to_tag if to_tag else ''}\r\n"
        f"Call-ID: bye-lost@{HOST}\r\nCSeq: {cseq} {method}\r\nContact: <sip:peer@{HOST}:{port}>\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def final_response(sock: socket.socket, method: str, timeout: float) -> bytes | None:
    """The next final response to ``method``, or None when none comes in ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):  # refused: the phone's port is closed
            return None
        status = int(data.split(b" ", 2)[1])
        if status >= 200 and f" {method}\r\n".encode() in data.split(b"\r\n\r\n", 1)[0]:
            return data
    return None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lost_copies", [0, 1], ids=["next-copy-arrives", "next-copy-lost-too"])
def test_answer_once_answers_a_bye_sent_again_after_its_200_was_lost(softphone: Any, lost_copies: int) -> None:
    phone = softphone("--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                      "--no-video", "--audio-codec", "PCMU", "--audio-source", "silence:", "--audio-sink", "null:")
    target = phone.port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((HOST, 0))
        peer.connect((HOST, target))
        port = peer.getsockname()[1]
        peer.send(request("INVITE", 1, "invite", target, port))
        ok = final_response(peer, "INVITE", 10)
        assert ok is not None and ok.startswith(b"SIP/2.0 200"), phone.describe()
        found = re.search(rb"\r\nTo:[^\r]*;tag=([^;\r]+)", ok)
        assert found is not None, ok
        to_tag = found.group(1).decode()
        peer.send(request("ACK", 1, "ack", target, port, to_tag))
        phone.wait_event("state", timeout=10, state="confirmed")

        bye = request("BYE", 2, "bye", target, port, to_tag)
        peer.send(bye)
        first = final_response(peer, "BYE", 10)
        assert first is not None and first.startswith(b"SIP/2.0 200"), phone.describe()
        phone.wait_event("call_end", timeout=10)
        # the peer took the 200 as lost: its copies go T1, then 2*T1 later (T1 = 0.5 s)
        time.sleep(0.5 + 1.0 * lost_copies)
        peer.send(bye)
        again = final_response(peer, "BYE", 5)
    assert again is not None and again.startswith(b"SIP/2.0 200"), phone.describe()
    assert phone.wait(20) == 0, phone.describe()  # then it leaves by itself


@pytest.mark.timeout(60)
def test_a_bye_to_a_closed_port_ends_its_transaction_at_once(softphone: Any) -> None:
    """RFC 3261 §18.4: an ICMP port unreachable for a request is a transport failure. A peer
    whose process has exited leaves its port closed: the phone's BYE fails at once and
    ``call`` exits, instead of retransmitting into the closed port until Timer F (32 s)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((HOST, 0))
        port = peer.getsockname()[1]
        phone = softphone("-v", "--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "call",
                          f"sip:peer@{HOST}:{port}", "--duration", "1", "--no-video", "--audio-codec", "PCMU",
                          "--audio-source", "silence:", "--audio-sink", "null:")
        peer.settimeout(10)
        invite, source = peer.recvfrom(65535)
        assert invite.startswith(b"INVITE "), invite
        head = invite.split(b"\r\n\r\n", 1)[0].decode()
        kept = [line for line in head.split("\r\n")[1:]
                if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        ok = "\r\n".join(["SIP/2.0 200 OK", *[f"{line};tag=peer1" if line.lower().startswith("to:") else line
                                               for line in kept],
                          f"Contact: <sip:peer@{HOST}:{port}>", "Content-Type: application/sdp",
                          f"Content-Length: {len(SDP)}", "", SDP])
        peer.sendto(ok.encode(), source)
        ack, _ = peer.recvfrom(65535)
        assert ack.startswith(b"ACK "), ack
    # the peer's port is closed now: the BYE, sent a second later, meets it
    assert phone.wait(20) == 0, phone.describe()  # well before Timer F
    assert phone.summary is not None and phone.summary.get("result") == "completed", phone.describe()
    assert "unreachable" in phone.stderr, phone.describe()
