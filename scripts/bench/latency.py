#!/usr/bin/env python3
"""Mouth-to-ear latency on loopback: softphone -> softphone against pjsua2 -> pjsua2.

A click train (a 2-ms 2 kHz burst every 500 ms, 8 kHz WAV) is the caller's audio
source (``--audio-source file: click.wav``; pjsua2: a pj.AudioMediaPlayer). The callee
records what it receives (``--audio-sink file: rec.wav``; pjsua2: an AudioMediaPort
that stamps every frame the bridge hands it). The call goes through the benchmark
(scripts/bench/peers/minisip.py): it answers the caller and calls the callee, and
relays RTP between the two legs, stamping each packet with the kernel's receive time.

Three instants per click:
  mouth  when the caller's clock was due to read the frame holding the click: the
         frame's RTP timestamp on the lower envelope of the caller's send times
         (t0 + samples / 8000, t0 = min over packets of arrival - samples / 8000),
         plus the click's offset in the frame;
  wire   the kernel receive stamp of the RTP packet carrying the click;
  ear    when the callee's sink got the frame with the click (softphone: the moment
         rec.wav grew past it, watched every 0.5 ms; pjsua2: the frame's stamp), plus
         the click's offset in that frame.
Reported per UA pair: medians of mouth->ear, mouth->wire (sender: frame due -> packet
sent) and wire->ear (receiver: jitter buffer, decode, playout; includes the relay's
own forwarding delay, reported too). A microphone would add one ptime (20 ms) of
packetization: a file source hands over a whole frame at once.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from answerers import ROOT
from minisip import HOST, RtpHub, SipAgent, free_port, stop_pid, wait_for

PJ_MEDIA = Path(__file__).resolve().parent / "peers" / "pj_media.py"
RATE = 8000
PERIOD_S = 0.5
ROUND = itertools.count(1)


# ------------------------------------------------------------------ signals


def write_click_train(path: Path, seconds: float = 10.0) -> None:
    n = int(seconds * RATE)
    x = np.zeros(n)
    burst = np.sin(2 * np.pi * 2000 * np.arange(16) / RATE) * 0.8
    burst[0] = 0.8  # a sharp first sample: the onset
    step = int(PERIOD_S * RATE)
    for k in range(0, n - 16, step):
        x[k + 100:k + 116] = burst  # 100 samples in, away from the file's loop point
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((x * 32767).astype("<i2").tobytes())


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8)
    sign = u & 0x80
    exp = (u >> 4) & 0x07
    mant = u & 0x0F
    mag = ((mant.astype(np.int32) << 3) + 0x84) << exp
    mag = mag - 0x84
    return np.where(sign != 0, -mag, mag).astype(np.float64) / 32768.0


def onsets(x: np.ndarray, quiet: int = 800) -> list[int]:
    """Sample indices where |x| first exceeds a threshold after ``quiet`` quiet samples."""
    if x.size == 0:
        return []
    peak = float(np.max(np.abs(x)))
    if peak < 0.05:
        return []
    above = np.flatnonzero(np.abs(x) > 0.3 * peak)
    out = []
    last = -10 ** 9
    for i in above:
        if i - last > quiet:
            out.append(int(i))
        last = i
    return out


# ------------------------------------------------------------------ the ear of a WAV sink


class FileWatcher:
    """Polls a growing WAV file's size; gives the time each sample was written."""

    def __init__(self, path: Path, interval: float = 0.0005) -> None:
        self.path = path
        self.interval = interval
        self.log: list[tuple[int, int]] = []  # (monotonic ns, size)
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = -1
        while not self.stop_flag:
            try:
                size = os.stat(self.path).st_size
            except OSError:
                size = -1
            if size != last:
                self.log.append((time.monotonic_ns(), size))
                last = size
            time.sleep(self.interval)

    def close(self) -> None:
        self.stop_flag = True
        self.thread.join(2)

    def sample_times(self, header: int = 44) -> tuple[np.ndarray, np.ndarray]:
        """(first sample index of each write, its time ns), sizes in 16-bit mono samples."""
        starts, times = [], []
        prev = header
        for t, size in self.log:
            if size < prev:  # the file was (re)created after we started watching
                starts, times, prev = [], [], header
            if size > prev:
                starts.append((prev - header) // 2)
                times.append(t)
                prev = size
        return np.array(starts, dtype=np.int64), np.array(times, dtype=np.int64)


def ear_time(sample: int, starts: np.ndarray, times: np.ndarray, rate: int = RATE) -> float | None:
    i = int(np.searchsorted(starts, sample, side="right")) - 1
    if i < 0:
        return None
    return times[i] / 1e9 + (sample - starts[i]) / rate


# ------------------------------------------------------------------ one measured call


def analyse(caller_stream, rec: np.ndarray, ear_fn, relay_ns: list[int]) -> dict:
    arr = caller_stream.arrivals
    pays = caller_stream.payloads
    if len(arr) < 10 or len(pays) != len(arr):
        return {"error": "too few RTP packets from the caller"}
    ts0 = arr[0][2]
    samples = [((a[2] - ts0) & 0xFFFFFFFF) for a in arr]
    t0 = min(a[0] / 1e9 - s / RATE for a, s in zip(arr, samples, strict=False))
    # the caller's stream as one signal, on its RTP time line
    total = samples[-1] + len(pays[-1])
    sig = np.zeros(total)
    wire_of = np.zeros(total)  # arrival time of the packet carrying each sample
    start_of = np.zeros(total, dtype=np.int64)  # first sample of that packet
    for a, s, p in zip(arr, samples, pays, strict=False):
        sig[s:s + len(p)] = ulaw_decode(p)
        wire_of[s:s + len(p)] = a[0] / 1e9
        start_of[s:s + len(p)] = s
    # (mouth of the click sample, its frame's read time, the frame's arrival)
    sent = [(t0 + s / RATE, t0 + start_of[s] / RATE, wire_of[s]) for s in onsets(sig)]
    heard = [t for t in (ear_fn(j) for j in onsets(rec)) if t is not None]
    m2e, m2w, w2e = [], [], []
    for e in heard:
        cands = [c for c in sent if c[0] <= e and e - c[0] < PERIOD_S]
        if not cands:
            continue
        m, read, w = max(cands)
        m2e.append((e - m) * 1000)
        m2w.append((w - read) * 1000)
        w2e.append((e - m - (w - read)) * 1000)
    if not m2e:
        return {"error": f"no click matched (sent {len(sent)}, heard {len(heard)})"}
    med = lambda v: round(statistics.median(v), 2)  # noqa: E731
    return {"clicks_sent": len(sent), "clicks_heard": len(heard), "matched": len(m2e),
            "mouth_to_ear_ms": med(m2e), "mouth_to_ear_min": round(min(m2e), 2),
            "mouth_to_ear_max": round(max(m2e), 2),
            "mouth_to_wire_ms": med(m2w), "wire_to_ear_ms": med(w2e),
            "relay_forward_ms": round(statistics.median(relay_ns) / 1e6, 3) if relay_ns else None,
            "mouth_to_ear_all": [round(v, 2) for v in m2e]}


class Relay:
    """The benchmark's two call legs and the RTP relay between them."""

    def __init__(self) -> None:
        self.hub = RtpHub()
        self.agent = SipAgent(self.hub, codec="PCMU", uas_mode="relay", uas_keep_payload=True)

    def call_callee(self, port: int):
        self.b = self.agent.call(f"sip:bench@{HOST}:{port}", (HOST, port), mode="relay")
        wait_for(lambda: self.b.state != "calling", 10, "the callee's answer")
        if self.b.state != "confirmed":
            raise RuntimeError(f"callee answered {self.b.code}")

    def join_caller(self, proc: subprocess.Popen, out: Path):
        def invited() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("caller exited: " + out.read_text(errors="replace")[-1500:])
            return bool(self.agent.incoming)

        wait_for(invited, 20, "the caller's INVITE")
        self.a = self.agent.incoming[0]
        self.b.stream.relay_to = (self.a.stream, self.a.remote_rtp)
        self.a.stream.relay_to = (self.b.stream, self.b.remote_rtp)

    def close(self) -> None:
        self.agent.hangup(self.b)
        time.sleep(0.3)
        self.agent.close()
        self.hub.close()


def softphone_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_softphone(args, work: Path, click: Path) -> dict:
    tag = next(ROUND)
    rec = work / f"sp_rec{tag}.wav"
    out_callee = work / f"sp_callee{tag}.jsonl"
    base = [args.python, "-m", "softphone", "--json", "--bind", HOST, "--sip-port", "0",
            "--rtp-port", "0"]
    with open(out_callee, "wb") as o:
        callee = subprocess.Popen(base + ["answer", "--auto", "--delay", "0", "--no-video",
                                          "--audio-codec", "PCMU", "--audio-source", "silence:",
                                          "--audio-sink", f"file: {rec}"],
                                  stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                                  env=softphone_env(), cwd=work)
    caller = relay = watcher = None
    try:
        port = 0

        def listening() -> bool:
            nonlocal port
            if callee.poll() is not None:
                raise RuntimeError("callee exited: " + out_callee.read_text()[-1500:])
            for line in out_callee.read_text(errors="replace").splitlines():
                if '"listening"' in line and '"udp"' in line:
                    port = int(json.loads(line)["port"])
                    return True
            return False

        wait_for(listening, 20, "the callee's listening event")
        relay = Relay()
        relay.call_callee(port)
        watcher = FileWatcher(rec)
        out_caller = work / f"sp_caller{tag}.jsonl"
        with open(out_caller, "wb") as o:
            caller = subprocess.Popen(base + ["call", f"sip:bench@{HOST}:{relay.agent.port}",
                                              "--duration", str(args.seconds), "--no-video",
                                              "--audio-codec", "PCMU", "--audio-source", f"file: {click}",
                                              "--audio-sink", "null:"],
                                      stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                                      env=softphone_env(), cwd=work)
        relay.join_caller(caller, out_caller)
        try:
            caller.wait(args.seconds + 15)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.3)
        watcher.close()
        starts, times = watcher.sample_times()
        with wave.open(str(rec), "rb") as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return analyse(relay.a.stream, x, lambda j: ear_time(j, starts, times),
                       relay.a.stream.forward_ns)
    finally:
        if watcher is not None:
            watcher.close()
        if caller is not None:
            stop_pid(caller)
        if relay is not None:
            relay.close()
        stop_pid(callee)


def run_pjsua2(args, work: Path, click: Path) -> dict:
    tag = next(ROUND)
    rec = work / f"pj_rec{tag}.wav"
    times_file = work / f"pj_times{tag}.json"
    cport = free_port()
    err_callee = work / f"pj_callee{tag}.err"
    with open(err_callee, "wb") as e:
        callee = subprocess.Popen([args.python, str(PJ_MEDIA), "--port", str(cport), "--record", str(rec),
                                   "--times", str(times_file), "--max-time", str(args.seconds + 30)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e, cwd=work)
    caller = relay = None
    try:
        def ready() -> bool:
            if callee.poll() is not None:
                raise RuntimeError("pjsua2 callee exited: " + err_callee.read_text()[-1500:])
            return "READY" in err_callee.read_text(errors="replace")

        wait_for(ready, 20, "the pjsua2 callee")
        relay = Relay()
        relay.call_callee(cport)
        err_caller = work / f"pj_caller{tag}.err"
        with open(err_caller, "wb") as e:
            caller = subprocess.Popen([args.python, str(PJ_MEDIA), "--port", str(free_port()),
                                       "--call", f"sip:bench@{HOST}:{relay.agent.port}",
                                       "--play", str(click), "--duration", str(args.seconds),
                                       "--max-time", str(args.seconds + 20)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e,
                                      cwd=work)
        relay.join_caller(caller, err_caller)
        try:
            caller.wait(args.seconds + 25)
        except subprocess.TimeoutExpired:
            pass
        relay.agent.hangup(relay.b)
        time.sleep(0.3)
        stop_pid(callee)
        if not times_file.exists():
            raise RuntimeError("pjsua2 callee wrote no frame stamps: " + err_callee.read_text()[-1500:])
        info = json.loads(times_file.read_text())
        starts = np.cumsum([0] + info["samples"][:-1]).astype(np.int64)
        times = np.array(info["times_ns"], dtype=np.int64)
        with wave.open(str(rec), "rb") as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return analyse(relay.a.stream, x, lambda j: ear_time(j, starts, times, info["rate"]),
                       relay.a.stream.forward_ns)
    finally:
        if caller is not None:
            stop_pid(caller)
        if relay is not None:
            relay.agent.close()
            relay.hub.close()
        stop_pid(callee)


def report_text(out: dict) -> str:
    lines = [f"mouth-to-ear latency on {HOST}: PCMU, click every {int(PERIOD_S * 1000)} ms, "
             f"{out['params']['seconds']} s per call, {out['params']['rounds']} round(s); medians in ms",
             f"{'pair':<22}{'clicks':>8}{'mouth->ear':>11}{'min':>8}{'max':>8}{'mouth->wire':>12}"
             f"{'wire->ear':>10}{'relay':>7}"]
    for name, r in out["results"].items():
        if "mouth_to_ear_ms" not in r:
            lines.append(f"{name:<22}{r.get('error')}")
            continue
        lines.append(f"{name:<22}{r['matched']:>8}{r['mouth_to_ear_ms']:>11.2f}{r['mouth_to_ear_min']:>8.2f}"
                     f"{r['mouth_to_ear_max']:>8.2f}{r['mouth_to_wire_ms']:>12.2f}{r['wire_to_ear_ms']:>10.2f}"
                     f"{r['relay_forward_ms'] or 0:>7.3f}")
    if out.get("ratio") is not None:
        lines.append(f"ratio softphone/pjsua2 (mouth->ear median): {out['ratio']}")
    lines.append(f"wall time {out['wall_s']} s")
    return "\n".join(lines)


def merge(runs: list[dict]) -> dict:
    good = [r for r in runs if "mouth_to_ear_all" in r]
    if not good:
        return runs[-1] if runs else {"error": "not run"}
    allv = [v for r in good for v in r["mouth_to_ear_all"]]
    return {"rounds": len(good), "matched": len(allv),
            "mouth_to_ear_ms": round(statistics.median(allv), 2),
            "mouth_to_ear_min": round(min(allv), 2), "mouth_to_ear_max": round(max(allv), 2),
            "round_medians": [r["mouth_to_ear_ms"] for r in good],
            "mouth_to_wire_ms": round(statistics.median(r["mouth_to_wire_ms"] for r in good), 2),
            "wire_to_ear_ms": round(statistics.median(r["wire_to_ear_ms"] for r in good), 2),
            "relay_forward_ms": good[0]["relay_forward_ms"], "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each call")
    ap.add_argument("--rounds", type=int, default=4, help="calls per UA pair, alternated")
    ap.add_argument("--peers", default="softphone,pjsua2")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (WAVs, logs)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-latency-"))
    click = work / "click.wav"
    write_click_train(click)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    runs: dict[str, list] = {p: [] for p in peers}

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    interrupted = False
    try:
        for _ in range(args.rounds):
            for p in peers:
                try:
                    r = run_softphone(args, work, click) if p == "softphone" else run_pjsua2(args, work, click)
                except RuntimeError as e:
                    r = {"error": str(e)}
                runs[p].append(r)
    except KeyboardInterrupt:
        interrupted = True
    out: dict = {"params": {"seconds": args.seconds, "rounds": args.rounds, "codec": "PCMU",
                            "click_period_ms": int(PERIOD_S * 1000)},
                 "results": {p: merge(v) for p, v in runs.items()}}
    sp, pj = out["results"].get("softphone", {}), out["results"].get("pjsua2", {})
    if "mouth_to_ear_ms" in sp and "mouth_to_ear_ms" in pj and pj["mouth_to_ear_ms"]:
        out["ratio"] = round(sp["mouth_to_ear_ms"] / pj["mouth_to_ear_ms"], 2)
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    failed = any("error" in r for v in runs.values() for r in v)
    if args.keep or failed:
        out["workdir"] = str(work)
    else:
        subprocess.run(["rm", "-rf", "--", str(work)], timeout=30)
    print(json.dumps(out) if args.json else report_text(out))
    return 1 if failed or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
