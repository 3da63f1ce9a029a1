#!/usr/bin/env python3
"""Fuzz the parsers of everything the network sends: SIP, SDP, RTP, RTCP and the video
payload formats (VP8, H.264, H.265, JPEG).

Two engines:

* ``mutate`` (default): a mutation fuzzer over a corpus of valid and broken messages
  (bit flips, interesting bytes and tokens, cut/duplicated/spliced chunks), seeded, so a
  run can be repeated;
* ``atheris``: coverage-guided (libFuzzer) when ``atheris`` is installed; one process per
  target, ``-runs`` inputs each.

An input is a *crash* when the parser raises anything but its documented error (SIP:
ParseError, and the endpoint never raises; SDP: SdpError; RTP: RtpError; RTCP: RtcpError;
payloads: PayloadError, and depacketizers never raise), and a *hang* when it takes longer
than ``--hang`` seconds. Crashing inputs are written to ``--out``.

``--live`` sends the mutated SIP inputs over UDP to a running ``softphone answer --auto``
on 127.0.0.1 (started by the script, or ``--port`` of one already running) and every
``--every`` inputs checks from another address that it still answers OPTIONS.

    python scripts/fuzz.py                         # every target, 100000 inputs each
    python scripts/fuzz.py -n 20000 sip sdp        # some targets
    python scripts/fuzz.py --engine atheris rtcp   # coverage-guided
    python scripts/fuzz.py --live -n 20000         # against a live phone
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from softphone.errors import ParseError, SdpError  # noqa: E402
from softphone.rtp.packet import RtpError, RtpPacket  # noqa: E402
from softphone.rtp.payload import h264, h265, vp8  # noqa: E402
from softphone.rtp.payload.base import EncodedFrame, PayloadError  # noqa: E402
from softphone.rtp.payload.h264 import H264Depacketizer, H264Packetizer  # noqa: E402
from softphone.rtp.payload.h265 import H265Depacketizer, H265Packetizer  # noqa: E402
from softphone.rtp.payload.jpeg import JpegDepacketizer  # noqa: E402
from softphone.rtp.payload.vp8 import Vp8Depacketizer, Vp8Packetizer  # noqa: E402
from softphone.rtp.rtcp import (  # noqa: E402
    Bye,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    parse_compound,
    serialize_compound,
)
from softphone.sdp.model import SessionDescription  # noqa: E402
from softphone.sip.endpoint import Endpoint, Peer  # noqa: E402
from softphone.sip.message import parse_message  # noqa: E402

# ---------------------------------------------------------------- corpus

SIP_VALID = [
    b"INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\nTo: Bob <sip:bob@127.0.0.1>\r\nFrom: Alice <sip:alice@127.0.0.2>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: 142\r\n\r\n"
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    b"OPTIONS sip:phone@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\nt: <sip:phone@127.0.0.1>\r\nf: <sip:ping@127.0.0.2>;tag=88\r\ni: abc@host\r\n"
    b"CSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nl: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;received=127.0.0.1;rport=5060\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    b"BYE sip:alice@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP [::1]:5060;branch=z9hG4bK1\r\n"
    b"Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\nRecord-Route: <sip:p3;lr>\r\n"
    b"From: \"A \\\"q\\\" B\" <sips:a@example.com;transport=tls>;tag=a\r\nTo: sip:b@example.com;tag=b\r\n"
    b"Call-ID: 1\r\nCSeq: 3 BYE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n",
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr\r\n"
    b"From: <sip:u@example.com>;tag=r\r\n"
    b"To: <sip:u@example.com>\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:u@10.0.0.1>;expires=3600, *\r\n"
    b"Authorization: Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:example.com\", response=\"0\"\r\n"
    b"Expires: 3600\r\nContent-Length: 0\r\n\r\n",
]
SIP_BROKEN = [
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nCSeq: x INVITE\r\n\r\n",
    b"INVITE  SIP/2.0\r\n\r\n",
    b"SIP/2.0 99999999999999999999 OK\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 99999\r\n\r\nabc",
    b"OPTIONS sip:x SIP/2.0\r\n folded: before\r\n\r\n",
    b"\r\n\r\n",
    b"ACK sip:[::1 SIP/2.0\r\nVia: SIP/2.0/UDP [::1;branch=\r\nFrom: <sip:@>\r\nTo: <>\r\n\r\n",
]
SDP_VALID = [
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    b"m=video 4002 RTP/AVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n"
    b"a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\na=rtcp-fb:96 nack pli\r\na=rtcp:4003\r\n",
    b"v=0\r\no=x 2 3 IN IP6 ::1\r\ns=s\r\ni=info\r\nu=http://x\r\ne=a@b\r\np=+1\r\nc=IN IP6 ::1\r\nb=AS:64\r\n"
    b"t=1 2\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\nk=clear:x\r\na=group:BUNDLE 0\r\n"
    b"m=audio 0 RTP/SAVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    b"a=candidate:1 1 UDP 2130706431 10.0.0.1 8998 typ host\r\na=ice-ufrag:F7gI\r\na=ice-pwd:x9cml\r\n",
]
SDP_BROKEN = [b"v=0\r\nm=audio x RTP/AVP 0\r\n", b"o=\r\n", b"v=1\r\n", b"v=0\nc=IN IP4\n", b"\xff\xfe"]
RTP_VALID = [
    bytes(RtpPacket(0, 1, 160, 0x1234, b"\xff" * 160)),
    bytes(RtpPacket(96, 65535, 2**32 - 1, 1, b"x" * 20, True, (1, 2, 3), (0xBEDE, b"\x10\xaa\x00\x00"), 4)),
]
RTP_BROKEN = [b"\x80", b"\x9f\x00" + b"\x00" * 10, b"\xa0\x00" + b"\x00" * 10 + b"\xff", b"\x90" + b"\x00" * 13]
RTCP_VALID = [
    serialize_compound([SenderReport(1, 2**63, 3, 4, 5, (ReportBlock(6, 7, -8, 9, 10, 11, 12),)),
                        SourceDescription(((1, ((1, "alice@example"),)),)), Bye((1,), "bye")]),
    serialize_compound([ReceiverReport(1, ()), PictureLossIndication(1, 2), GenericNack(1, 2, (5, 6, 30))]),
]
RTCP_BROKEN = [b"\x81\xc9\x00\x07" + b"\x00" * 28, b"\x80\xc8\x00\x00", b"\xa0\xcb\x00\x01\x00\x00\x00\x05"]


def _payloads(packetizer: Callable[[EncodedFrame, int], list[tuple[bytes, bool]]], frame: bytes) -> list[bytes]:
    return [p for p, _ in packetizer(EncodedFrame(frame, True), 300)]


H264_FRAME = b"\x00\x00\x00\x01\x67\x42\xe0\x1f" + b"\x00\x00\x00\x01\x68\xce\x06" + b"\x00\x00\x01\x65" + bytes(900)
H265_FRAME = b"\x00\x00\x00\x01\x40\x01\x0c" + b"\x00\x00\x00\x01\x42\x01\x01" + b"\x00\x00\x01\x26\x01" + bytes(900)
PAYLOAD_VALID = {
    "vp8": _payloads(Vp8Packetizer(picture_id=300).packetize, b"\x10\x02\x00\x9d\x01\x2a" + bytes(700)),
    "h264": _payloads(H264Packetizer().packetize, H264_FRAME),
    "h265": _payloads(H265Packetizer().packetize, H265_FRAME),
    "jpeg": [bytes([0, 0, 0, 0, 1, 255, 64, 48]) + bytes(64) + bytes(64) + b"\x12" * 100,
             bytes([0, 0, 0, 0, 1, 80, 64, 48]) + b"\x34" * 100],
}
PAYLOAD_BROKEN = [b"", b"\x80", b"\x90\x80", b"\x78\x00\x01", b"\x7c", b"\x62\x01", b"\x60\x01\x00\xff"]

# ---------------------------------------------------------------- targets


def _sip(data: bytes) -> None:
    try:
        message = parse_message(data)
        _ = (message.call_id, message.cseq, message.top_via, message.from_addr, message.to_addr, message.contacts)
    except ParseError:
        pass
    endpoint = Endpoint()
    endpoint.receive(data, Peer("udp", "127.0.0.1", 5060), 0.0)  # never raises
    endpoint.datagrams_to_send()


def _sdp(data: bytes) -> None:
    try:
        session = SessionDescription.parse(data)
    except SdpError:
        return
    _ = str(session)


def _rtp(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    assert RtpPacket.parse(bytes(packet)) == packet, "RTP parse/serialise is not an exact inverse"


def _rtcp(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpError:
        pass


def _payload(parse: Callable[[bytes], object] | None, depacketizer: type) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        if parse is not None:
            try:
                parse(data)
            except PayloadError:
                pass
        d = depacketizer()
        # the input split into a few packets of one frame, in order, the last with the marker
        chunks = [data[i:i + 97] for i in range(0, max(len(data), 1), 97)] or [b""]
        for n, chunk in enumerate(chunks):
            d.push(RtpPacket(96, n, 3000, 1, chunk, n == len(chunks) - 1))
        d.push(RtpPacket(96, len(chunks) + 5, 6000, 1, data[:50], True))  # a later frame flushes the rest

    return run


@dataclass
class Target:
    name: str
    run: Callable[[bytes], None]
    corpus: list[bytes]
    tokens: list[bytes] = field(default_factory=list)


SIP_TOKENS = [b"\r\n", b"\r\n\r\n", b": ", b";", b",", b"<", b">", b"\"", b"\\", b"@", b"sip:", b"sips:", b"tel:",
              b"[", b"]", b"::", b"=", b"%", b"%00", b"Content-Length: ", b"Via: SIP/2.0/UDP ", b";branch=z9hG4bK",
              b"CSeq: ", b"\t", b" ", b"\x00", b"\xff", b"4294967296", b"-1", b"99999999999999999999", b"\n ",
              b"\xc3\x28", b"\xe2\x80\xa8"]
SDP_TOKENS = [b"\r\n", b"m=", b"a=", b"c=IN IP4 ", b"c=IN IP6 ", b"o=", b"t=", b"b=AS:", b"rtpmap:", b"fmtp:",
              b"/", b" ", b":", b"0", b"65536", b"-1", b"RTP/AVP", b"RTP/SAVPF", b"candidate:", b"crypto:", b"\x00"]


def targets() -> dict[str, Target]:
    return {
        "sip": Target("sip", _sip, SIP_VALID + SIP_BROKEN, SIP_TOKENS),
        "sdp": Target("sdp", _sdp, SDP_VALID + SDP_BROKEN, SDP_TOKENS),
        "rtp": Target("rtp", _rtp, RTP_VALID + RTP_BROKEN),
        "rtcp": Target("rtcp", _rtcp, RTCP_VALID + RTCP_BROKEN),
        "vp8": Target("vp8", _payload(vp8.parse_descriptor, Vp8Depacketizer), PAYLOAD_VALID["vp8"] + PAYLOAD_BROKEN),
        "h264": Target("h264", _payload(h264.parse_payload, H264Depacketizer), PAYLOAD_VALID["h264"] + PAYLOAD_BROKEN),
        "h265": Target("h265", _payload(h265.parse_payload, H265Depacketizer), PAYLOAD_VALID["h265"] + PAYLOAD_BROKEN),
        "jpeg": Target("jpeg", _payload(None, JpegDepacketizer), PAYLOAD_VALID["jpeg"] + PAYLOAD_BROKEN),
    }


# ---------------------------------------------------------------- mutation


INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x0A, 0x0D, 0x20, 0x3A, 0x3B]


def mutate(data: bytes, rng: random.Random, corpus: list[bytes], tokens: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4, 8))):
        kind = rng.randrange(9)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # flip a bit
            i = min(at, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:  # an interesting byte
            out[min(at, len(out) - 1)] = rng.choice(INTERESTING)
        elif kind == 2:  # cut a chunk
            del out[at:at + rng.randrange(1, 32)]
        elif kind == 3 and out:  # duplicate a chunk
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randrange(1, 64)] * rng.choice((1, 2, 16))
        elif kind == 4 and tokens:  # a token of the format
            out[at:at] = rng.choice(tokens)
        elif kind == 5:  # splice another input
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = out[:at] + other[cut:]
        elif kind == 6:  # truncate
            del out[at:]
        elif kind == 7:  # random bytes
            out[at:at] = rng.randbytes(rng.randrange(1, 9))
        elif kind == 8 and len(out) >= 2:  # a 16-bit field set to an edge value
            i = min(at, len(out) - 2)
            out[i:i + 2] = rng.choice((b"\x00\x00", b"\xff\xff", b"\x7f\xff", b"\x80\x00"))
    return bytes(out)


class Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang()


@dataclass
class Result:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    crashes: dict[str, bytes] = field(default_factory=dict)  # signature -> first input
    hangs: int = 0
    slowest_ms: float = 0.0

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        return (f"{self.target:<5} {self.inputs:>8} inputs  {self.seconds:7.1f} s  {rate:9.0f} inputs/s  "
                f"crashes {len(self.crashes)}  hangs {self.hangs}  slowest {self.slowest_ms:.1f} ms")


def fuzz(target: Target, count: int, seed: int, hang_s: float, out: Path) -> Result:
    rng = random.Random(f"{seed}-{target.name}")
    result = Result(target.name)
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    for n in range(count):
        data = target.corpus[n] if n < len(target.corpus) else mutate(
            rng.choice(target.corpus), rng, target.corpus, target.tokens)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, hang_s)
        try:
            target.run(data)
        except Hang:
            result.hangs += 1
            _save(out, target.name, "hang", data)
        except Exception as exc:  # anything else is a crash: record it by where it was raised
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            signature = f"{type(exc).__name__} at {Path(tb.filename).name}:{tb.lineno}"
            if signature not in result.crashes:
                result.crashes[signature] = data
                path = _save(out, target.name, "crash", data)
                print(f"  CRASH {target.name}: {signature}: {exc!s:.100} -> {path}", flush=True)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        result.slowest_ms = max(result.slowest_ms, (time.perf_counter() - t0) * 1000)
        result.inputs += 1
    result.seconds = time.perf_counter() - started
    return result


def _save(out: Path, target: str, kind: str, data: bytes) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{target}-{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- atheris


def run_atheris(name: str, count: int, hang_s: float) -> int:
    """Coverage-guided fuzzing of one target in this process (libFuzzer exits at the end)."""
    import atheris  # type: ignore[import-not-found]

    target = targets()[name]
    corpus_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"softphone-fuzz-{name}-{os.getpid()}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(target.corpus):
        (corpus_dir / f"seed{i}").write_bytes(seed)
    argv = [sys.argv[0], f"-runs={count}", f"-timeout={max(1, int(hang_s))}", "-max_len=4096", str(corpus_dir)]
    atheris.instrument_all()
    atheris.Setup(argv, target.run)
    atheris.Fuzz()
    return 0


# ---------------------------------------------------------------- a live phone


def _options(port: int, n: int) -> bytes:
    return (f"OPTIONS sip:phone@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.3:{{lp}};branch=z9hG4bKprobe{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.3>;tag=p{n}\r\nTo: <sip:phone@127.0.0.1>\r\n"
            f"Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def _answers_options(port: int, n: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.3", 0))
        probe.settimeout(1.0)
        request = _options(port, n).replace(b"{lp}", str(probe.getsockname()[1]).encode())
        for _ in range(5):  # a flooded socket may lose a datagram: retransmit as a client would
            probe.sendto(request, ("127.0.0.1", port))
            try:
                while True:
                    data, _ = probe.recvfrom(65535)
                    if data.startswith(b"SIP/2.0 200") and f"probe-{n}".encode() in data:
                        return True
            except TimeoutError:
                continue
    return False


def _start_phone() -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "softphone", "--json", "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
           "answer", "--auto", "--audio-source", "null:", "--audio-sink", "null:", "--no-video"]
    phone = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert phone.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = phone.stdout.readline()
        if not line:
            break
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "listening" and event.get("transport") == "udp":
            return phone, int(event["port"])
    phone.kill()
    raise SystemExit("the softphone did not start listening")


def run_live(count: int, every: int, seed: int, port: int | None) -> int:
    phone, port = _start_phone() if port is None else (None, port)
    target = targets()["sip"]
    rng = random.Random(f"{seed}-live")
    sent = probes = failed = 0
    started = time.perf_counter()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            sock.setblocking(False)
            for n in range(count):
                data = mutate(rng.choice(target.corpus), rng, target.corpus, target.tokens)[:65000]
                try:
                    sock.sendto(data, ("127.0.0.1", port))
                except (BlockingIOError, OSError):
                    pass
                sent += 1
                if (n + 1) % every == 0 or n + 1 == count:
                    probes += 1
                    alive = phone is None or phone.poll() is None
                    if not (alive and _answers_options(port, probes)):
                        failed += 1
                        print(f"  after {n + 1} inputs the phone did not answer OPTIONS"
                              f"{'' if alive else f' (exited {phone.returncode if phone else None})'}", flush=True)
                        if not alive:
                            break
    finally:
        if phone is not None:
            phone.terminate()
            try:
                phone.wait(10)
            except subprocess.TimeoutExpired:
                phone.kill()
    seconds = time.perf_counter() - started
    print(f"live  {sent:>8} inputs  {seconds:7.1f} s  {sent / seconds:9.0f} inputs/s  "
          f"OPTIONS probes {probes}, unanswered {failed}")
    return 1 if failed else 0


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    names = list(targets())
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("targets", nargs="*", choices=[*names, []], help=f"default: all of {', '.join(names)}")
    p.add_argument("-n", "--inputs", type=int, default=100_000, help="inputs per target (default 100000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hang", type=float, default=2.0, help="seconds after which an input counts as a hang")
    p.add_argument("--engine", choices=["mutate", "atheris"], default="mutate")
    p.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where crashing inputs are written")
    p.add_argument("--live", action="store_true", help="send mutated SIP to a live softphone over UDP")
    p.add_argument("--port", type=int, help="with --live: the UDP port of a phone already running on 127.0.0.1")
    p.add_argument("--every", type=int, default=500, help="with --live: check OPTIONS every N inputs")
    p.add_argument("--atheris-target", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inputs < 1 or args.every < 1:
        p.error("--inputs and --every must be positive")
    if args.atheris_target:
        return run_atheris(args.atheris_target, args.inputs, args.hang)
    if args.live:
        return run_live(args.inputs, args.every, args.seed, args.port)
    chosen = args.targets or names
    if args.engine == "atheris":
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            p.error("atheris is not installed (pip install atheris); the default engine needs nothing")
        rc = 0
        for name in chosen:
            started = time.perf_counter()
            cmd = [sys.executable, __file__, "--atheris-target", name, "-n", str(args.inputs), "--hang", str(args.hang)]
            done = subprocess.run(cmd, cwd=args.out.parent if args.out.parent.exists() else None)
            took = time.perf_counter() - started
            print(f"{name:<5} atheris exit {done.returncode}  {args.inputs / took:9.0f} inputs/s", flush=True)
            rc |= done.returncode != 0
        return rc
    total_crashes = total_hangs = 0
    for name in chosen:
        result = fuzz(targets()[name], args.inputs, args.seed, args.hang, args.out)
        print(result.line(), flush=True)
        total_crashes += len(result.crashes)
        total_hangs += result.hangs
    print(f"total: {total_crashes} crashes, {total_hangs} hangs")
    return 1 if total_crashes or total_hangs else 0


if __name__ == "__main__":
    sys.exit(main())
