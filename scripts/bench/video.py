#!/usr/bin/env python3
"""Video benchmark: time to the first picture, and the CPU cost of a video frame.

1. **first picture**: softphone -> softphone on 127.0.0.1, ``--calls`` calls per codec
   (default 5, VP8 and H.264): from ``answered`` to ``first_video_frame`` in each side's
   timeline (the caller's summary and the answerer's ``call_end`` event). The
   answerer rings ``--ring`` seconds (default 1) before it answers, so both processes
   are past their start-up when the media starts. Then the same from the softphone
   calling baresip (``fakevideo``, VP8) when baresip is installed.
2. **codec micro-benchmark** (in this process): pattern frames rendered beforehand,
   then per frame ``create_video_encoder(...).encode`` + ``packetizer.packetize`` +
   RTP serialisation, and RTP parsing + ``depacketizer.push`` + ``decoder.decode``,
   timed with ``time.process_time`` (CPU of every thread of the process: the encoder
   runs 2 threads) and ``time.perf_counter`` (wall). 640x480 and 1280x720 at 30 fps,
   VP8 and H.264, at the bitrate a call would use (width x height x fps x 0.1).
3. **real calls**: softphone -> softphone, same codecs and sizes (``[video] size``
   in a scratch config), ``--seconds`` (default 6) per call, null video sinks; the
   summary's frames_sent/frames_decoded/fps, and each process's CPU
   (utime + stime from /proc/PID/stat, all threads) over the call's middle.

``--json`` prints one JSON object. Every process is started here and stopped by its PID;
the run is bounded by ``--max-time`` (default 170 s).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from answerers import BARESIP_MODULES
from minisip import HOST, cpu_ticks, free_port, percentile, stop_pid

ROOT = Path(__file__).resolve().parents[2]
BARESIP_TEMPLATE = ROOT / "tests" / "interop" / "peers" / "baresip" / "config.template"
TCK = os.sysconf("SC_CLK_TCK")
CODECS = ("VP8", "H264")
SIZES = {"vga": (640, 480), "720p": (1280, 720)}
FPS = 30.0
MTU = 1300
MEDIA = ["--audio-codec", "PCMU", "--audio-source", "silence:", "--audio-sink", "null:",
         "--video-source", "pattern:", "--video-sink", "null:"]


# ------------------------------------------------------------------ processes


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class Softphone:
    """``softphone --json ARGS`` with its JSON lines collected by a thread."""

    def __init__(self, python: str, args: list[str], work: Path, tag: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.err_path = work / f"{tag}.err"
        self.events: list[dict] = []
        self.cond = threading.Condition()
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([python, "-m", "softphone", "--json", *args], cwd=work, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                ev["_mono"] = time.monotonic()
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_event(self, name: str, timeout: float, **match: Any) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if ev.get("event") == name and all(ev.get(k) == v for k, v in match.items()):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.thread.is_alive()):
                    raise RuntimeError(f"no {name} event {match}: " + self.err_path.read_text(errors="replace")[-800:])
                self.cond.wait(min(left, 0.2))

    def count(self, name: str) -> int:
        with self.cond:
            return sum(1 for ev in self.events if ev.get("event") == name)

    def finish(self, timeout: float) -> int | None:
        try:
            self.proc.wait(max(0.1, timeout))
        except subprocess.TimeoutExpired:
            stop_pid(self.proc)
        self.thread.join(5)
        return self.proc.returncode

    def stop(self) -> None:
        stop_pid(self.proc)
        self.thread.join(5)


def listen_port(phone: Softphone) -> int:
    return int(phone.wait_event("listening", 20, transport="udp")["port"])


def answer_latency(timeline: dict) -> float | None:
    if "answered" in timeline and "first_video_frame" in timeline:
        return round((timeline["first_video_frame"] - timeline["answered"]) * 1000, 1)
    return None


def stats_ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 1), "min": min(values),
            "max": max(values), "all": values}


# ------------------------------------------------------------------ 1. first picture


def first_picture(args, work: Path, codec: str, dl: Deadline) -> dict:
    answerer = Softphone(args.python, ["--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "answer", "--auto",
                                       "--delay", str(args.ring), "--video-codec", codec, *MEDIA],
                         work, f"first_{codec}_answerer")
    caller_ms: list[float] = []
    answerer_ms: list[float] = []
    try:
        uri = f"sip:bench@{HOST}:{listen_port(answerer)}"
        for i in range(args.calls):
            if dl.left() < 25:
                break
            caller = Softphone(args.python, ["--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "call", uri,
                                             "--duration", "1.5", "--timeout", "10", "--video-codec", codec, *MEDIA],
                               work, f"first_{codec}_caller{i}")
            try:
                summary = caller.wait_event("summary", 20)
            finally:
                caller.finish(5)
            v = answer_latency(summary.get("timeline", {}))
            if v is not None:
                caller_ms.append(v)
            end = answerer.wait_event("call_end", 5, call_id=summary.get("call_id"))
            v = answer_latency(end.get("timeline", {}))
            if v is not None:
                answerer_ms.append(v)
    finally:
        answerer.stop()
    return {"codec": codec, "caller_ms": stats_ms(caller_ms), "answerer_ms": stats_ms(answerer_ms)}


def baresip_ready() -> str | None:
    if shutil.which("baresip") is None:
        return None
    if not BARESIP_TEMPLATE.exists():
        return None
    return next((m for m in BARESIP_MODULES if Path(m).is_dir()), None)


def first_picture_baresip(args, work: Path, dl: Deadline) -> dict:
    modules = baresip_ready()
    if modules is None:
        return {"skipped": "baresip is not installed"}
    d = work / "baresip"
    d.mkdir()
    port, rtp, ctrl = free_port(), free_port(2), free_port()
    values = {"IP": HOST, "SIP_PORT": str(port), "RTP_PORTS": f"{rtp}-{min(rtp + 400, 65534)}",
              "CTRL_PORT": str(ctrl), "TONE_HZ": "440", "MODULE_PATH": modules, "SND_PATH": str(d),
              "VIDEO": "", "VIDEO_SIZE": "640x480", "VIDEO_FPS": f"{FPS:.2f}"}
    text = BARESIP_TEMPLATE.read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    (d / "config").write_text(text)
    (d / "accounts").write_text(f"<sip:bench@{HOST}:{port}>;regint=0;answermode=auto;"
                                "audio_codecs=PCMU/8000/1;video_codecs=VP8\n")
    (d / "contacts").write_text("")
    log = open(work / "baresip.log", "wb")
    proc = subprocess.Popen(["baresip", "-f", str(d), "-t", str(int(max(10, dl.left())))], cwd=d,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    caller_ms: list[float] = []
    try:
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end:
            out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True,
                                 timeout=5).stdout
            if f"{HOST}:{port}" in out or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            return {"skipped": "baresip exited: " + (work / "baresip.log").read_text(errors="replace")[-500:]}
        for i in range(args.calls):
            if dl.left() < 20:
                break
            caller = Softphone(args.python, ["--bind", HOST, "--sip-port", "0", "--rtp-port", "0", "call",
                                             f"sip:bench@{HOST}:{port}", "--duration", "1.5", "--timeout", "10",
                                             "--video-codec", "VP8", *MEDIA], work, f"baresip_caller{i}")
            try:
                summary = caller.wait_event("summary", 20)
            finally:
                caller.finish(5)
            v = answer_latency(summary.get("timeline", {}))
            if v is not None:
                caller_ms.append(v)
            time.sleep(0.3)
    finally:
        stop_pid(proc)
        log.close()
    return {"codec": "VP8", "caller_ms": stats_ms(caller_ms),
            "note": "baresip fakevideo 640x480@30 -> softphone; baresip's own side is not measured"}


# ------------------------------------------------------------------ 2. micro-benchmark


def micro(codec: str, width: int, height: int, frames: int) -> dict:
    from softphone.codecs import create_video_decoder, create_video_encoder
    from softphone.devices.video_pattern import read_pattern_index, render_pattern
    from softphone.frames import VideoFrame
    from softphone.rtp.packet import RtpPacket
    from softphone.rtp.payload import EncodedFrame, depacketizer, packetizer

    bitrate = int(width * height * FPS * 0.1)  # what a call uses without an upload_bw limit
    pictures = [VideoFrame(render_pattern(i, width, height, clock=0.0), pts=i / FPS, index=i)
                for i in range(frames)]
    enc = create_video_encoder(codec, width=width, height=height, fps=FPS, bitrate=bitrate)
    dec = create_video_decoder(codec)
    pack, depack = packetizer(codec), depacketizer(codec)
    enc_cpu, enc_wall, dec_cpu, dec_wall, sizes, packets_per_frame = [], [], [], [], [], []
    keyframes = decoded = readable = 0
    seq = 0
    for i, picture in enumerate(pictures):
        c0, w0 = time.process_time(), time.perf_counter()
        wire = []
        for data, key in enc.encode(picture, keyframe=(i == 0)):
            keyframes += int(key)
            sizes.append(len(data))
            payloads = pack.packetize(EncodedFrame(data, key), MTU)
            packets_per_frame.append(len(payloads))
            for payload, marker in payloads:
                wire.append(bytes(RtpPacket(96, seq & 0xFFFF, (i * 3000) & 0xFFFFFFFF, 0x1234, payload, marker)))
                seq += 1
        c1, w1 = time.process_time(), time.perf_counter()
        out = []
        for datagram in wire:
            for frame in depack.push(RtpPacket.parse(datagram)):
                out.extend(dec.decode(frame.data))
        c2, w2 = time.process_time(), time.perf_counter()
        enc_cpu.append((c1 - c0) * 1000)
        enc_wall.append((w1 - w0) * 1000)
        dec_cpu.append((c2 - c1) * 1000)
        dec_wall.append((w2 - w1) * 1000)
        decoded += len(out)
        readable += sum(1 for f in out if read_pattern_index(f.image) is not None)

    def row(cpu: list[float], wall: list[float]) -> dict:
        steady = cpu[1:]  # the first frame is the keyframe at start-up
        mean_wall = statistics.fmean(wall[1:])
        return {"cpu_ms_mean": round(statistics.fmean(steady), 2), "cpu_ms_p90": round(percentile(steady, 90), 2),
                "wall_ms_mean": round(mean_wall, 2), "first_cpu_ms": round(cpu[0], 2),
                "max_fps": round(1000 / mean_wall, 1) if mean_wall > 0 else None}

    encode, decode = row(enc_cpu, enc_wall), row(dec_cpu, dec_wall)
    both = statistics.fmean(a + b for a, b in zip(enc_cpu[1:], dec_cpu[1:], strict=True))
    return {"codec": codec, "size": f"{width}x{height}", "frames": frames, "bitrate": bitrate,
            "encode_packetize": encode, "depacketize_decode": decode,
            "cpu_ms_per_frame_both": round(both, 2),
            "cpu_pct_at_30fps_both": round(both * FPS / 10, 1),
            "keyframes": keyframes, "decoded": decoded, "readable": readable,
            "bytes_per_frame_mean": round(statistics.fmean(sizes[1:])), "keyframe_bytes": sizes[0],
            "packets_per_frame_mean": round(statistics.fmean(packets_per_frame), 2)}


# ------------------------------------------------------------------ 3. real calls


def real_call(args, work: Path, codec: str, size: str) -> dict:
    cfg = work / f"video_{size}.ini"
    cfg.write_text(f"[video]\nsize={size}\nframerate={FPS:g}\n")
    common = ["-c", str(cfg), "--bind", HOST, "--sip-port", "0", "--rtp-port", "0"]
    tag = f"call_{codec}_{size}"
    answerer = Softphone(args.python, [*common, "answer", "--auto", "--once", "--video-codec", codec, *MEDIA],
                         work, tag + "_answerer")
    caller = None
    try:
        uri = f"sip:bench@{HOST}:{listen_port(answerer)}"
        caller = Softphone(args.python, [*common, "call", uri, "--duration", str(args.seconds), "--timeout", "10",
                                         "--video-codec", codec, *MEDIA], work, tag + "_caller")
        caller.wait_event("state", 15, state="answered")
        time.sleep(1.0)  # past the first keyframe and the start-up
        window = max(1.0, args.seconds - 1.5)
        pids = {"caller": caller.proc.pid, "answerer": answerer.proc.pid}
        c0 = {k: cpu_ticks(p) for k, p in pids.items()}
        t0 = time.monotonic()
        time.sleep(window)
        c1 = {k: cpu_ticks(p) for k, p in pids.items()}
        t1 = time.monotonic()
        summary = caller.wait_event("summary", args.seconds + 15)
        end = answerer.wait_event("call_end", 10, call_id=summary.get("call_id"))
    finally:
        if caller is not None:
            caller.finish(10)
        answerer.finish(10)
    res: dict = {"codec": codec, "size": size}
    for side, s in (("caller", summary), ("answerer", end)):
        v = s.get("video") or {}
        sent_rate = v.get("frames_sent", 0) / args.seconds
        cpu_pct = 100.0 * (c1[side] - c0[side]) / TCK / (t1 - t0)
        res[side] = {k: v.get(k) for k in ("frames_sent", "frames_decoded", "keyframes_sent", "frames_incomplete",
                                           "pli_sent", "fps", "width", "height", "lost")}
        res[side]["cpu_pct"] = round(cpu_pct, 1)
        # a frame period costs one encode (ours) and one decode (the peer's picture)
        res[side]["cpu_ms_per_frame_both"] = round(cpu_pct * 10 / sent_rate, 2) if sent_rate else None
    return res


# ------------------------------------------------------------------ report


def fmt_ms(s: dict) -> str:
    if not s.get("n"):
        return "-"
    return f"{s['median']:7.1f} ({s['min']:.0f}..{s['max']:.0f}, n={s['n']})"


def report_text(out: dict) -> str:
    lines = ["answer -> first decoded picture (ms, median (min..max)); goal < 200 ms:"]
    for r in out["first_picture"]:
        lines.append(f"  softphone<->softphone {r['codec']:5}  caller {fmt_ms(r['caller_ms'])}   "
                     f"answerer {fmt_ms(r['answerer_ms'])}")
    b = out.get("first_picture_baresip", {})
    lines.append("  softphone->baresip   VP8    caller " + (fmt_ms(b["caller_ms"]) if "caller_ms" in b
                                                            else b.get("skipped", "-")))
    lines.append("codec micro-benchmark, CPU ms per frame (mean / p90), wall-clock max fps:")
    lines.append(f"  {'codec':5} {'size':9} {'enc+pkt':>13} {'max fps':>8} {'depkt+dec':>13} {'max fps':>8} "
                 f"{'both %@30':>9} {'B/frame':>8} {'key B':>7} {'pkts':>5} ok")
    for m in out["micro"]:
        e, d = m["encode_packetize"], m["depacketize_decode"]
        lines.append(f"  {m['codec']:5} {m['size']:9} {e['cpu_ms_mean']:6.2f}/{e['cpu_ms_p90']:6.2f} "
                     f"{e['max_fps']:8.1f} "
                     f"{d['cpu_ms_mean']:6.2f}/{d['cpu_ms_p90']:6.2f} {d['max_fps']:8.1f} "
                     f"{m['cpu_pct_at_30fps_both']:9.1f} {m['bytes_per_frame_mean']:8d} {m['keyframe_bytes']:7d} "
                     f"{m['packets_per_frame_mean']:5.1f} {m['readable']}/{m['frames']}")
    lines.append(f"real calls ({out['params']['seconds']} s, 30 fps pattern both ways, null sinks): "
                 "sent/decoded frames, decoded fps, CPU % of a core, CPU ms per frame period (enc+dec)")
    for r in out["calls"]:
        if "error" in r:
            lines.append(f"  {r['codec']:5} {r['size']:5} error: {r['error']}")
            continue
        for side in ("caller", "answerer"):
            s = r[side]
            lines.append(f"  {r['codec']:5} {r['size']:5} {side:8} sent {s['frames_sent']:4} decoded "
                         f"{s['frames_decoded']:4} fps {s['fps']:5} {s['width']}x{s['height']} "
                         f"CPU {s['cpu_pct']:5.1f} %  {s['cpu_ms_per_frame_both']} ms/frame")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--calls", type=int, default=5, help="calls per codec for the first-picture time")
    ap.add_argument("--ring", type=float, default=1.0, help="seconds the answerer rings before it answers")
    ap.add_argument("--frames", type=int, default=60, help="frames per micro-benchmark")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each real call")
    ap.add_argument("--no-baresip", action="store_true", help="skip the baresip calls")
    ap.add_argument("--max-time", type=float, default=170.0, help="bound on the whole run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    dl = Deadline(args.max_time)
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-video-"))
    out: dict = {"params": {k: v for k, v in vars(args).items() if k != "python"}, "first_picture": [],
                 "micro": [], "calls": []}
    try:
        for codec in CODECS:
            out["first_picture"].append(first_picture(args, work, codec, dl))
        out["first_picture_baresip"] = ({"skipped": "--no-baresip"} if args.no_baresip
                                        else first_picture_baresip(args, work, dl))
        for codec in CODECS:
            for width, height in SIZES.values():
                if dl.left() < 60:
                    break
                out["micro"].append(micro(codec, width, height, args.frames))
        for codec in CODECS:
            for size in SIZES:
                if dl.left() < args.seconds + 15:
                    out["calls"].append({"codec": codec, "size": size, "error": "skipped: --max-time"})
                    continue
                try:
                    out["calls"].append(real_call(args, work, codec, size))
                except RuntimeError as exc:
                    out["calls"].append({"codec": codec, "size": size, "error": str(exc)[-300:]})
    finally:
        if args.keep:
            out["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out) if args.json else report_text(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
