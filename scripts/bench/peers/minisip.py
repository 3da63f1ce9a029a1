"""A minimal SIP user agent and RTP endpoint for the media benchmarks (loopback only).

Not a product: just enough SIP to place and answer audio calls with one offered codec
(INVITE with retransmissions, 200 + ACK, BYE), and RTP sockets whose arrivals are
stamped by the kernel (SO_TIMESTAMPNS), so that the benchmark process's own scheduling
does not distort the measured send times.  An RTP stream can record its arrivals,
echo them back (with another SSRC, so the sender does not see its own), or relay them
to a third party.

Clocks: kernel stamps are CLOCK_REALTIME; ``RT_OFFSET_NS`` converts them to
CLOCK_MONOTONIC, the clock of ``time.monotonic_ns`` / ``time.perf_counter_ns`` in every
process of the machine.
"""
from __future__ import annotations

import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
CODECS = {  # name -> (payload type, rtpmap, fmtp)
    "PCMU": (0, "PCMU/8000", None),
    "PCMA": (8, "PCMA/8000", None),
    # no useinbandfec=1: the benchmark decodes nothing, and a peer that honours the
    # request (the softphone does, baresip does not) would spend CPU on FEC for nobody
    "opus": (111, "opus/48000/2", None),
}


def _rt_offset() -> int:
    best = None
    for _ in range(20):
        m0 = time.monotonic_ns()
        r = time.time_ns()
        m1 = time.monotonic_ns()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, r - (m0 + m1) // 2)
    assert best is not None
    return best[1]


RT_OFFSET_NS = _rt_offset()


# ------------------------------------------------------------------ process helpers


def free_port(count: int = 1, tcp: bool = True) -> int:
    """An even port P with P..P+count-1 free for UDP (and P for TCP)."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1] & ~1
        if port < 1024 or port + count > 65535:
            continue
        socks = []
        try:
            for p in range(port, port + count):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(u)
                u.bind((HOST, p))
            if tcp:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(t)
                t.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def stop_pid(proc: subprocess.Popen, timeout: float = 8.0, sig: int = signal.SIGTERM) -> int | None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    return proc.returncode


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads, living and exited), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def percentile(values, q: float):
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-int(q * len(v)) // 100) - 1))
    return v[k]


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


# ------------------------------------------------------------------ RTP


@dataclass
class RtpStream:
    """One RTP/RTCP socket pair of ours."""

    rtp: socket.socket
    rtcp: socket.socket
    port: int
    mode: str = "record"          # record | echo | relay | drop
    relay_to: tuple | None = None  # (stream, address) for mode "relay"
    keep_payload: bool = False
    remote: tuple | None = None    # where the peer's RTP comes from (learnt)
    # per packet: (kernel arrival ns, CLOCK_MONOTONIC), seq, timestamp, ssrc, pt
    arrivals: list = field(default_factory=list)
    payloads: list = field(default_factory=list)
    forward_ns: list = field(default_factory=list)  # relay: our delay per packet
    octets: int = 0


class RtpHub:
    """All our RTP sockets, served by one thread; arrivals carry kernel timestamps."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.streams: list[RtpStream] = []
        self.lock = threading.Lock()
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def open(self, mode: str = "record", keep_payload: bool = False) -> RtpStream:
        for _ in range(200):
            port = free_port(2, tcp=False)
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                a.bind((HOST, port))
                b.bind((HOST, port + 1))
            except OSError:
                a.close()
                b.close()
                continue
            a.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            a.setblocking(False)
            b.setblocking(False)
            st = RtpStream(a, b, port, mode=mode, keep_payload=keep_payload)
            with self.lock:
                self.streams.append(st)
                self.sel.register(a, selectors.EVENT_READ, (st, True))
                self.sel.register(b, selectors.EVENT_READ, (st, False))
            return st
        raise RuntimeError("no free RTP port pair")

    def _run(self) -> None:
        anc = socket.CMSG_SPACE(16)
        while not self.stop_flag:
            with self.lock:
                events = self.sel.select(0.05) if self.streams else []
            if not events:
                if not self.streams:
                    time.sleep(0.05)
                continue
            for key, _ in events:
                st, is_rtp = key.data
                sock = key.fileobj
                while True:
                    try:
                        data, ancdata, _, addr = sock.recvmsg(4096, anc)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    if not is_rtp:
                        continue
                    self._rtp(st, data, ancdata, addr)

    def _rtp(self, st: RtpStream, data: bytes, ancdata, addr) -> None:
        t = None
        for level, kind, blob in ancdata:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", blob[:16])
                t = sec * 1_000_000_000 + nsec - RT_OFFSET_NS
        if t is None:
            t = time.monotonic_ns()
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if 72 <= pt <= 76:  # RTCP on the RTP port (mux)
            return
        seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
        st.remote = addr
        st.arrivals.append((t, seq, ts, ssrc, pt))
        st.octets += len(data)
        if st.keep_payload:
            cc = data[0] & 0x0F
            st.payloads.append(data[12 + 4 * cc:])
        try:
            if st.mode == "echo":
                out = data[:8] + struct.pack("!I", ssrc ^ 0x5A5A5A5A) + data[12:]
                st.rtp.sendto(out, addr)
            elif st.mode == "relay" and st.relay_to is not None:
                other, dest = st.relay_to
                if dest is not None:
                    other.rtp.sendto(data, dest)
                    st.forward_ns.append(time.monotonic_ns() - t)
        except OSError:
            pass

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(2)
        for st in self.streams:
            st.rtp.close()
            st.rtcp.close()


# ------------------------------------------------------------------ SDP and SIP


def make_sdp(port: int, codec: str, sess_id: int) -> str:
    pt, rtpmap, fmtp = CODECS[codec]
    lines = ["v=0", f"o=bench {sess_id} {sess_id} IN IP4 {HOST}", "s=bench", f"c=IN IP4 {HOST}",
             "t=0 0", f"m=audio {port} RTP/AVP {pt}", f"a=rtpmap:{pt} {rtpmap}"]
    if fmtp:
        lines.append(f"a=fmtp:{pt} {fmtp}")
    lines += ["a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def sdp_audio_dest(sdp: str) -> tuple[str, int] | None:
    host = HOST
    m_host = None
    port = None
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            if port is None:
                host = line.split()[2]
            else:
                m_host = line.split()[2]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    if port is None or port == 0:
        return None
    return (m_host or host, port)


@dataclass
class Message:
    first: str
    headers: list
    body: str

    def get(self, name: str) -> str | None:
        short = {"call-id": "i", "via": "v", "from": "f", "to": "t", "contact": "m", "cseq": None}
        for k, v in self.headers:
            kl = k.lower()
            if kl == name.lower() or kl == short.get(name.lower()):
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() in (name.lower(), "v" if name.lower() == "via" else "")]

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0")

    @property
    def status(self) -> int:
        return int(self.first.split()[1])

    @property
    def method(self) -> str:
        if self.is_request:
            return self.first.split()[0]
        return (self.get("cseq") or "0 ?").split()[1]


def parse(data: bytes) -> Message | None:
    try:
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
        return Message(lines[0], headers, body)
    except Exception:
        return None


def build(first: str, headers: list, body: str = "") -> bytes:
    out = [first] + [f"{k}: {v}" for k, v in headers]
    if body:
        out.append("Content-Type: application/sdp")
    out.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(out) + "\r\n\r\n" + body).encode()


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str = ""
    remote_uri: str = ""   # request-URI for in-dialog requests (remote Contact)
    target: tuple = ("127.0.0.1", 5060)
    from_hdr: str = ""     # our side
    to_hdr: str = ""       # their side
    cseq: int = 1
    stream: RtpStream | None = None
    remote_rtp: tuple | None = None
    state: str = "calling"  # calling | confirmed | ended | failed
    code: int = 0
    t_invite: float = 0.0
    t_answered: float = 0.0
    invite_bytes: bytes = b""
    answer_bytes: bytes = b""
    ack_bytes: bytes = b""
    bye_bytes: bytes = b""
    on_answer: object = None


class SipAgent:
    """A UDP SIP user agent on its own thread: UAC (``call``) and UAS (``accept``)."""

    def __init__(self, hub: RtpHub, codec: str = "PCMU", uas_mode: str = "record",
                 uas_keep_payload: bool = False) -> None:
        self.hub = hub
        self.codec = codec
        self.uas_mode = uas_mode
        self.uas_keep_payload = uas_keep_payload
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.dialogs: dict[str, Dialog] = {}
        self.incoming: list[Dialog] = []
        self.lock = threading.Lock()
        self.stop_flag = False
        self.retx: dict[str, tuple] = {}  # key -> (next time, interval, bytes, dest, until)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # -------------------------------------------------------------- transport

    def _send(self, data: bytes, dest: tuple) -> None:
        try:
            self.sock.sendto(data, dest)
        except OSError:
            pass

    def _arm(self, key: str, data: bytes, dest: tuple, until: float = 32.0) -> None:
        now = time.monotonic()
        self.retx[key] = (now + 0.5, 0.5, data, dest, now + until)

    def _run(self) -> None:
        while not self.stop_flag:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                data = None
            except OSError:
                if self.stop_flag:
                    return
                data = None
            with self.lock:
                if data:
                    msg = parse(data)
                    if msg is not None:
                        try:
                            self._on_message(msg, addr)
                        except Exception:
                            pass
                now = time.monotonic()
                for key, (t, iv, b, dest, until) in list(self.retx.items()):
                    if now >= until:
                        del self.retx[key]
                    elif now >= t:
                        self._send(b, dest)
                        iv = min(iv * 2, 4.0)
                        self.retx[key] = (now + iv, iv, b, dest, until)

    def _via(self, branch: str | None = None) -> str:
        branch = branch or "z9hG4bK" + f"{random.getrandbits(64):016x}"
        return f"SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport"

    # -------------------------------------------------------------- UAC

    def call(self, uri: str, target: tuple, mode: str = "record", keep_payload: bool = False,
             stream: RtpStream | None = None, on_answer=None) -> Dialog:
        st = stream or self.hub.open(mode, keep_payload)
        call_id = f"{random.getrandbits(64):016x}@bench"
        d = Dialog(call_id=call_id, local_tag=f"{random.getrandbits(32):08x}", target=target,
                   remote_uri=uri, stream=st, on_answer=on_answer)
        d.from_hdr = f"<sip:bench@{HOST}:{self.port}>;tag={d.local_tag}"
        d.to_hdr = f"<{uri}>"
        body = make_sdp(st.port, self.codec, random.randint(1, 1 << 30))
        d.invite_bytes = build(f"INVITE {uri} SIP/2.0", [
            ("Via", self._via()), ("Max-Forwards", "70"), ("From", d.from_hdr), ("To", d.to_hdr),
            ("Call-ID", call_id), ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:bench@{HOST}:{self.port}>"), ("User-Agent", "bench")], body)
        with self.lock:
            self.dialogs[call_id] = d
            d.t_invite = time.monotonic()
            self._send(d.invite_bytes, target)
            self._arm("inv" + call_id, d.invite_bytes, target)
        return d

    def hangup(self, d: Dialog) -> None:
        with self.lock:
            if d.state != "confirmed":
                if d.state == "calling":
                    d.state = "failed"
                self.retx.pop("inv" + d.call_id, None)
                return
            d.cseq += 1
            d.bye_bytes = build(f"BYE {d.remote_uri} SIP/2.0", [
                ("Via", self._via()), ("Max-Forwards", "70"), ("From", d.from_hdr),
                ("To", d.to_hdr), ("Call-ID", d.call_id), ("CSeq", f"{d.cseq} BYE")])
            d.state = "ending"
            self._send(d.bye_bytes, d.target)
            self._arm("bye" + d.call_id, d.bye_bytes, d.target, until=4.0)

    # -------------------------------------------------------------- both

    def _on_message(self, msg: Message, addr: tuple) -> None:
        call_id = msg.get("call-id") or ""
        d = self.dialogs.get(call_id)
        if not msg.is_request:
            if d is None:
                return
            if msg.method == "INVITE":
                self.retx.pop("inv" + call_id, None)
                code = msg.status
                if code < 200:
                    return
                to = msg.get("to") or ""
                m = re.search(r";\s*tag=([^;>\s]+)", to)
                if code >= 300:
                    ack_to = to
                    ack = build(f"ACK {d.remote_uri} SIP/2.0", [
                        ("Via", (msg.all("via") or [self._via()])[0]), ("Max-Forwards", "70"),
                        ("From", d.from_hdr), ("To", ack_to), ("Call-ID", call_id), ("CSeq", "1 ACK")])
                    self._send(ack, d.target)
                    d.state, d.code = "failed", code
                    return
                if d.state == "calling":
                    d.remote_tag = m.group(1) if m else ""
                    d.to_hdr = to
                    contact = msg.get("contact") or ""
                    cm = re.search(r"<([^>]+)>", contact)
                    if cm:
                        d.remote_uri = cm.group(1)
                    d.remote_rtp = sdp_audio_dest(msg.body)
                    d.ack_bytes = build(f"ACK {d.remote_uri} SIP/2.0", [
                        ("Via", self._via()), ("Max-Forwards", "70"), ("From", d.from_hdr),
                        ("To", d.to_hdr), ("Call-ID", call_id), ("CSeq", "1 ACK")])
                    d.state, d.code = "confirmed", code
                    d.t_answered = time.monotonic()
                    if d.on_answer is not None:
                        d.on_answer(d)
                self._send(d.ack_bytes, d.target)
            elif msg.method == "BYE":
                self.retx.pop("bye" + call_id, None)
                d.state = "ended"
            return
        # requests
        method = msg.method
        if method == "ACK":
            if d is not None:
                self.retx.pop("ans" + call_id, None)
                if d.state == "answered":
                    d.state = "confirmed"
            return
        resp_hdrs = [("Via", v) for v in msg.all("via")]
        to = msg.get("to") or ""
        if method == "INVITE":
            if d is not None:  # retransmission
                if d.answer_bytes:
                    self._send(d.answer_bytes, addr)
                return
            st = self.hub.open(self.uas_mode, self.uas_keep_payload)
            d = Dialog(call_id=call_id, local_tag=f"{random.getrandbits(32):08x}", target=addr,
                       stream=st)
            d.remote_rtp = sdp_audio_dest(msg.body)
            contact = msg.get("contact") or ""
            cm = re.search(r"<([^>]+)>", contact)
            d.remote_uri = cm.group(1) if cm else f"sip:{addr[0]}:{addr[1]}"
            d.from_hdr = f"{to};tag={d.local_tag}"
            d.to_hdr = msg.get("from") or ""
            body = make_sdp(st.port, self.codec, random.randint(1, 1 << 30))
            d.answer_bytes = build("SIP/2.0 200 OK", resp_hdrs + [
                ("From", msg.get("from") or ""), ("To", d.from_hdr), ("Call-ID", call_id),
                ("CSeq", msg.get("cseq") or "1 INVITE"),
                ("Contact", f"<sip:bench@{HOST}:{self.port}>")], body)
            d.state = "answered"
            d.t_answered = time.monotonic()
            self.dialogs[call_id] = d
            self.incoming.append(d)
            self._send(d.answer_bytes, addr)
            self._arm("ans" + call_id, d.answer_bytes, addr)
            return
        if method in ("BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO"):
            if d is not None and method == "BYE":
                d.state = "ended"
            self._send(build("SIP/2.0 200 OK", resp_hdrs + [
                ("From", msg.get("from") or ""), ("To", to), ("Call-ID", call_id),
                ("CSeq", msg.get("cseq") or "")]), addr)
            return
        self._send(build("SIP/2.0 501 Not Implemented", resp_hdrs + [
            ("From", msg.get("from") or ""), ("To", to), ("Call-ID", call_id),
            ("CSeq", msg.get("cseq") or "")]), addr)

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(2)
        self.sock.close()


# ------------------------------------------------------------------ analysis


def send_intervals(stream: RtpStream, skip_s: float = 0.5) -> list[float]:
    """Inter-arrival intervals (ms) of one stream's packets, in arrival order, after
    ``skip_s`` of start-up; only consecutive sequence numbers (a gap is not an interval)."""
    arr = stream.arrivals
    if len(arr) < 3:
        return []
    t0 = arr[0][0] + int(skip_s * 1e9)
    out = []
    prev = None
    for t, seq, _ts, _ssrc, _pt in arr:
        if prev is not None and t >= t0 and seq == (prev[1] + 1) & 0xFFFF:
            out.append((t - prev[0]) / 1e6)
        prev = (t, seq)
    return out


def interval_stats(intervals: list[float], ptime_ms: float = 20.0) -> dict:
    if not intervals:
        return {"n": 0}
    dev = [abs(x - ptime_ms) for x in intervals]
    r = lambda v: None if v is None else round(v, 3)  # noqa: E731
    return {
        "n": len(intervals),
        "interval_p1": r(percentile(intervals, 1)),
        "interval_p50": r(percentile(intervals, 50)),
        "interval_p99": r(percentile(intervals, 99)),
        "interval_max": r(max(intervals)),
        "dev_p50": r(percentile(dev, 50)),
        "dev_p99": r(percentile(dev, 99)),
        "dev_max": r(max(dev)),
        "share_dev_gt_1ms": round(sum(1 for x in dev if x > 1) / len(dev), 4),
        "share_dev_gt_5ms": round(sum(1 for x in dev if x > 5) / len(dev), 4),
    }


def seq_gaps(stream: RtpStream) -> int:
    gaps = 0
    prev = None
    for _t, seq, *_ in stream.arrivals:
        if prev is not None and seq != (prev + 1) & 0xFFFF:
            gaps += 1
        prev = seq
    return gaps
