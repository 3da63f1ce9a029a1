#!/usr/bin/env python3
"""pj_media.py - a PJSIP (pjsua2) user agent for the latency benchmark.

  answer mode (default): listen on --ip:--port, answer every INVITE at once; the audio
      received by the first call goes into an "ear" port (a pj.AudioMediaPort) that
      stamps every frame the conference bridge hands it with time.monotonic_ns() and
      keeps the PCM. At exit: --record WAV (the PCM) and --times JSON (frame stamps).
  call mode (--call URI): one call; --play WAV is played into it through a
      pj.AudioMediaPlayer (looping); hangs up after --duration seconds.

Both use the null sound device (the bridge's clock), PCMU only, clock rate 8000, and
print one JSON line on stdout at exit. SIGTERM ends the run cleanly. The pjsua2 crash
traps are respected: the bridge clock is stopped (setNoDev) before ports are freed and
every Call is gone before libDestroy().
"""
import argparse
import gc
import json
import os
import signal
import sys
import time
import wave

_json_fd = os.dup(1)
os.dup2(2, 1)
_json_out = os.fdopen(_json_fd, "w")
sys.stdout = sys.stderr

import pjsua2 as pj  # noqa: E402


class EarPort(pj.AudioMediaPort):
    def __init__(self, rate):
        pj.AudioMediaPort.__init__(self)
        self.rate = rate
        self.chunks = []
        self.times = []
        self.active = True
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = rate
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = 20000
        self.fmt = fmt

    def onFrameRequested(self, frame):
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
        frame.size = 0

    def onFrameReceived(self, frame):
        t = time.monotonic_ns()
        if not self.active or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size <= 0:
            return
        self.times.append(t)
        self.chunks.append(bytes(frame.buf))


class MediaCall(pj.Call):
    def __init__(self, ua, acc, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, acc, call_id)
        self.ua = ua
        self.confirmed_at = None
        self.ended = False
        self.connected = False

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True

    def onCallMediaState(self, prm):
        if self.connected:
            return
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = self.getAudioMedia(mi.index)
            if self.ua.player is not None:
                self.ua.player.startTransmit(aud)
            if self.ua.ear is not None and not self.ua.ear_used:
                aud.startTransmit(self.ua.ear)
                self.ua.ear_used = True
            self.connected = True


class Account(pj.Account):
    def __init__(self, ua):
        pj.Account.__init__(self)
        self.ua = ua

    def onIncomingCall(self, prm):
        call = MediaCall(self.ua, self, prm.callId)
        self.ua.calls.append(call)
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            call.answer(op)
        except pj.Error as e:
            print("answer failed:", e.info(), file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5090)
    p.add_argument("--rtp-port", type=int, default=0)
    p.add_argument("--call", metavar="URI")
    p.add_argument("--play", metavar="WAV")
    p.add_argument("--record", metavar="WAV")
    p.add_argument("--times", metavar="JSON")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-time", type=float, default=60.0)
    p.add_argument("--clock-rate", type=int, default=8000)
    a = p.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = 4
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.clockRate = a.clock_rate
    cfg.medConfig.sndClockRate = a.clock_rate
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    cfg.medConfig.ptime = 20
    cfg.medConfig.sndAutoCloseTime = -1
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = a.port
    tcfg.boundAddress = a.ip
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    for ci in ep.codecEnum2():
        ep.codecSetPriority(ci.codecId, 250 if ci.codecId.lower().startswith("pcmu/8000") else 0)

    class UA:
        pass

    ua = UA()
    ua.calls = []
    ua.player = None
    ua.ear = None
    ua.ear_used = False
    if a.play:
        ua.player = pj.AudioMediaPlayer()
        ua.player.createPlayer(a.play, 0)
    if not a.call:
        ua.ear = EarPort(a.clock_rate)
        ua.ear.createPort("ear", ua.ear.fmt)
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:pj@{a.ip}:{a.port}"
    acfg.mediaConfig.transportConfig.boundAddress = a.ip
    if a.rtp_port:
        acfg.mediaConfig.transportConfig.port = a.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 20
    acc = Account(ua)
    acc.create(acfg)

    t_end = time.monotonic() + a.max_time
    res = {"tool": "pj_media", "mode": "call" if a.call else "answer"}
    if a.call:
        call = MediaCall(ua, acc)
        ua.calls.append(call)
        call.makeCall(a.call, pj.CallOpParam(True))
        while not stop and time.monotonic() < t_end and not call.ended:
            ep.libHandleEvents(5)
            if call.confirmed_at and time.monotonic() - call.confirmed_at > a.duration:
                break
        res["confirmed"] = call.confirmed_at is not None
    else:
        print("READY", file=sys.stderr, flush=True)
        while not stop and time.monotonic() < t_end:
            ep.libHandleEvents(5)
    try:
        ep.hangupAllCalls()
    except pj.Error:
        pass
    end = time.monotonic() + 2
    while time.monotonic() < end and any(not c.ended for c in ua.calls):
        ep.libHandleEvents(10)
    if ua.ear is not None:
        ua.ear.active = False
        res["frames"] = len(ua.ear.times)
        if a.record:
            with wave.open(a.record, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(a.clock_rate)
                w.writeframes(b"".join(ua.ear.chunks))
        if a.times:
            with open(a.times, "w") as f:
                json.dump({"rate": a.clock_rate, "times_ns": ua.ear.times,
                           "samples": [len(c) // 2 for c in ua.ear.chunks]}, f)
    ep.audDevManager().setNoDev()
    end = time.monotonic() + 0.1
    while time.monotonic() < end:
        ep.libHandleEvents(10)
    while ua.calls:
        c = ua.calls.pop()
        del c
    ua.player = None
    ua.ear = None
    gc.collect()
    try:
        acc.shutdown()
    except Exception:
        pass
    acc = None
    gc.collect()
    ep.libDestroy()
    _json_out.write(json.dumps(res) + "\n")
    _json_out.flush()


if __name__ == "__main__":
    main()
