"""Video over a lossy link: keyframe requests, a picture that keeps coming, recovery from a burst.

Two softphones in the impaired namespaces send each other the moving test pattern
(``pattern:``) and record what they decode losslessly (``file: rx.mkv``, FFV1, one
timestamp per decoded picture in ms).  Every recorded picture carries the sender's
frame index as a bar code, so the recording tells which pictures came, when, and
whether they decoded cleanly (a readable index).

* random loss: 5 % of the packets each way, plus delay and jitter.  The receivers
  must ask for the lost packets (generic NACK), the senders must send them again,
  most holes must be filled that way, and the recording must not stall for more than
  about a second;
* burst loss: a DROP rule in both namespaces for 0.5 s in the middle of the call
  (every packet, both ways, RTCP and SIP included), far more than retransmission can
  repair.  The receivers must ask for keyframes (PLI), the senders must answer with
  keyframes, and a cleanly decoded picture newer than the last one before the burst
  must be recorded within 1 s of its end.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.media.conftest import ImpairedLink

pytestmark = pytest.mark.netns

CODECS = ["VP8", "H264"]
CALL_S = 8.0
MAX_GAP_S = 1.0  # longest stall of the recording after its first picture
MAX_TAIL_S = 1.5  # from the last recorded picture to the end of the call
BURST_S = 0.5
BURST_AT_S = 3.5  # after the answer
MAX_RECOVERY_S = 1.0
# the DROP rule goes in front of the impairer's NFQUEUE rule; packets the impairer
# already holds still leave for up to delay + jitter after the burst starts
IN_FLIGHT_S = 0.15


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Recorded:
    """One picture of a recording: seconds since the first recorded picture, bar code index."""

    t: float
    index: int | None


def read_recording(path: Path) -> list[Recorded]:
    """Every picture of an FFV1 recording with its timestamp and its pattern index."""
    import av

    from softphone.devices.video_pattern import read_pattern_index

    assert path.exists() and path.stat().st_size > 0, f"no recording at {path}"
    out: list[Recorded] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * frame.time_base) if frame.pts is not None else float(frame.time)
            out.append(Recorded(t, read_pattern_index(frame.to_ndarray(format="bgr24"))))
    out.sort(key=lambda r: r.t)
    return out


def gaps(rec: list[Recorded]) -> list[tuple[float, float]]:
    """(start, length) of each pause between consecutive pictures, longest first."""
    pauses = [(a.t, b.t - a.t) for a, b in zip(rec, rec[1:], strict=False)]
    return sorted(pauses, key=lambda p: -p[1])


def call_summary(proc) -> dict:
    """The call's summary: the caller's top-level one, or the answerer's first call."""
    s = proc.summary
    assert s is not None, proc.describe()
    if "calls" in s:
        assert s["calls"], proc.describe()
        return s["calls"][0]
    return s


def media_args(codec: str, sink: Path) -> list[str]:
    return ["--video-codec", codec, "--video-source", "pattern:", "--video-sink", f"file: {sink}",
            "--audio-codec", "PCMU", "--audio-source", "silence:", "--audio-sink", "null:"]


def start_call(softphone, link: ImpairedLink, tmp_path: Path, codec: str):
    """The callee in ns_b answers, the caller in ns_a calls for CALL_S; recordings on both sides."""
    rec = {"callee": tmp_path / "callee_rx.mkv", "caller": tmp_path / "caller_rx.mkv"}
    callee = softphone("--bind", link.ip_b, "--sip-port", "0", "--rtp-port", "0",
                       "answer", "--auto", "--once", *media_args(codec, rec["callee"]), netns=link.ns_b)
    uri = f"sip:bob@{link.ip_b}:{callee.port('udp')}"
    caller = softphone("--bind", link.ip_a, "--sip-port", "0", "--rtp-port", "0",
                       "call", uri, "--duration", str(CALL_S), "--timeout", "20",
                       *media_args(codec, rec["caller"]), netns=link.ns_a)
    return caller, callee, rec


def finish_call(caller, callee, link: ImpairedLink) -> tuple[dict, dict, str]:
    rc_caller = caller.wait(CALL_S + 40)
    rc_callee = callee.wait(20)
    stats = link.stop_impairers()
    where = f"caller:\n{caller.describe()}\ncallee:\n{callee.describe()}\nimpairers: {stats}"
    assert rc_caller == 0 and rc_callee == 0, where
    s_caller, s_callee = call_summary(caller), call_summary(callee)
    assert s_caller.get("result") == "completed", where
    for s in (s_caller, s_callee):
        assert s.get("video", {}).get("media") == "rtp", where
    return s_caller, s_callee, where


def recording_start(proc) -> float:
    """Monotonic time (this process's clock) of the recording's first picture.

    The sink stamps its first picture right after the ``first_video_frame`` event
    is printed; the event's ``_t`` is when the line reached us (a few ms later).
    """
    event = proc.wait_event("first_video_frame", timeout=1)
    return proc.started_at + float(event["_t"])


def readable_share(rec: list[Recorded]) -> float:
    return sum(r.index is not None for r in rec) / len(rec) if rec else 0.0


def describe_recording(rec: list[Recorded]) -> str:
    longest = gaps(rec)[:3]
    return (f"{len(rec)} pictures over {rec[-1].t - rec[0].t:.2f} s, "
            f"{readable_share(rec):.0%} with a readable index, longest pauses "
            + ", ".join(f"{g:.3f} s at {t:.2f} s" for t, g in longest)) if rec else "no pictures"


# --------------------------------------------------------------------------- burst


def drop_rule(link: ImpairedLink, ns: str) -> list[str]:
    dev = link.dev_a if ns == link.ns_a else link.dev_b
    return ["OUTPUT", "-o", dev, "-j", "DROP"]


def burst(link: ImpairedLink, seconds: float) -> tuple[float, float]:
    """Drop every packet leaving either namespace for `seconds`; (start, end), monotonic.

    start is when the second rule is in place, end when the second rule is gone: the
    burst is at least as long as measured, so the recovery time is not flattered.
    """
    added: list[str] = []
    try:
        for ns in link.namespaces:
            link.run(ns, "iptables", "-I", *drop_rule(link, ns)[:1], "1", *drop_rule(link, ns)[1:],
                     timeout=10, check=True)
            added.append(ns)
        start = time.monotonic()
        time.sleep(seconds)
    finally:
        for ns in added:
            link.run(ns, "iptables", "-D", *drop_rule(link, ns), timeout=10)
    end = time.monotonic()
    return start, end


def recovery(rec: list[Recorded], start: float, end: float) -> tuple[float | None, str]:
    """Seconds from the burst's end to the first cleanly decoded picture newer than the
    last one recorded before the burst (times relative to the recording's start)."""
    before = [r for r in rec if r.t <= start and r.index is not None]
    during = [r for r in rec if start + IN_FLIGHT_S < r.t < end]
    last_index = before[-1].index if before else -1
    after = [r for r in rec if r.t >= end and r.index is not None and r.index > last_index]
    text = (f"burst {start:.3f}..{end:.3f} s of the recording; last picture before #{last_index}; "
            f"{len(during)} pictures during it; ")
    if not after:
        return None, text + "no clean picture after it"
    first = after[0]
    return first.t - end, text + f"first clean picture after it #{first.index} at {first.t:.3f} s"


# --------------------------------------------------------------------------- tests


@pytest.mark.timeout(150)
@pytest.mark.impairment(delay_ms=30, jitter_ms=10, loss_pct=5)
@pytest.mark.parametrize("codec", CODECS)
def test_video_random_loss(softphone, impaired_namespaces, tmp_path, record_property, codec):
    link = impaired_namespaces
    caller, callee, recs = start_call(softphone, link, tmp_path, codec)
    s_caller, s_callee, where = finish_call(caller, callee, link)
    v = {"caller": s_caller["video"], "callee": s_callee["video"]}
    peer = {"caller": "callee", "callee": "caller"}
    for side, video in v.items():
        print(f"{codec} {side} video: " + ", ".join(
            f"{k}={video.get(k)}" for k in ("frames_sent", "keyframes_sent", "frames_decoded", "frames_incomplete",
                                            "decode_errors", "pli_sent", "pli_received", "lost", "nack_sent",
                                            "recovered", "nack_received", "retransmitted", "fps")))
        for key in ("frames_decoded", "frames_incomplete", "nack_sent", "recovered", "retransmitted", "fps"):
            record_property(f"{codec}_{side}_{key}", video.get(key))
    for side in v:
        video, sender = v[side], v[peer[side]]
        # the receiver asked for lost packets, the sender sent them again, most holes were filled
        assert video["nack_sent"] > 0, f"{side} never asked for a lost packet\n{where}"
        assert sender["nack_received"] > 0 and sender["retransmitted"] > 0, \
            f"{peer[side]} did not send lost packets again\n{where}"
        assert video["recovered"] > 0, f"{side} got no lost packet back\n{where}"
        # without retransmission about one frame in eight has a hole at this loss rate
        assert video["frames_incomplete"] <= sender["frames_sent"] // 20, f"{side}: holes left\n{where}"
        # most of what was sent was shown: at least half, and at least 2 s at 10 fps
        assert video["frames_decoded"] >= max(20, sender["frames_sent"] // 2), \
            f"{side} decoded {video['frames_decoded']} of {sender['frames_sent']}\n{where}"
    for side, path in recs.items():
        rec = read_recording(path)
        text = describe_recording(rec)
        print(f"{codec} {side} recording: {text}")
        assert len(rec) >= 20, f"{side}: {text}\n{where}"
        longest = gaps(rec)[0][1]
        record_property(f"{codec}_{side}_longest_gap_s", round(longest, 3))
        assert longest <= MAX_GAP_S, f"{side} recording stalled: {text}\n{where}"
        t = call_summary(caller if side == "caller" else callee)["timeline"]
        shown = t["bye"] - t["first_video_frame"]  # how long the recording could run
        assert shown - rec[-1].t <= MAX_TAIL_S, \
            f"{side} recording stopped {shown - rec[-1].t:.2f} s before the call ended: {text}\n{where}"
        # pictures concealed through holes may hide the counter; most must still show it
        assert readable_share(rec) >= 0.9, f"{side}: {text}\n{where}"


@pytest.mark.timeout(150)
@pytest.mark.impairment(delay_ms=20, jitter_ms=0, loss_pct=0, keep_order=True)
@pytest.mark.parametrize("codec", CODECS)
def test_video_recovers_after_burst(softphone, impaired_namespaces, tmp_path, record_property, codec):
    link = impaired_namespaces
    caller, callee, recs = start_call(softphone, link, tmp_path, codec)
    answered = caller.wait_event("state", timeout=30, state="answered")
    for proc in (caller, callee):
        proc.wait_event("first_video_frame", timeout=10)
    delay = caller.started_at + float(answered["_t"]) + BURST_AT_S - time.monotonic()
    time.sleep(max(0.0, delay))
    start, end = burst(link, BURST_S)
    s_caller, s_callee, where = finish_call(caller, callee, link)
    times = []
    for side, proc in (("caller", caller), ("callee", callee)):
        rec = read_recording(recs[side])
        t0 = recording_start(proc)
        took, text = recovery(rec, start - t0, end - t0)
        video = (s_caller if side == "caller" else s_callee)["video"]
        print(f"{codec} {side}: recovery after a {end - start:.3f}-s burst: "
              f"{'none' if took is None else f'{took * 1000:.0f} ms'}; {text}; pli_sent={video['pli_sent']}, "
              f"frames_incomplete={video['frames_incomplete']}; recording: {describe_recording(rec)}")
        sender = (s_callee if side == "caller" else s_caller)["video"]
        # the receiver asked for a keyframe, the sender heard it and sent more than the first
        assert video["pli_sent"] > 0, f"{side} never asked for a keyframe\n{where}"
        assert sender["pli_received"] > 0 and sender["keyframes_sent"] > 1, \
            f"the peer of {side} heard no keyframe request or sent one keyframe only\n{where}"
        during = [r for r in rec if start - t0 + IN_FLIGHT_S < r.t < end - t0]
        assert not during, f"{side}: pictures arrived during the burst: the drop rule did not hold\n{where}"
        assert took is not None, f"{side}: no clean picture after the burst: {text}\n{where}"
        record_property(f"{codec}_{side}_recovery_ms", round(took * 1000))
        times.append(took)
        assert took <= MAX_RECOVERY_S, f"{side}: recovery took {took:.3f} s: {text}\n{where}"
    print(f"{codec}: median recovery {statistics.median(times) * 1000:.0f} ms")
