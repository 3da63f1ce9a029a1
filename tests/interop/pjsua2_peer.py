#!/usr/bin/env python3
"""pjsua2_peer.py - a headless SIP user agent on the real PJSIP (PJSUA2), for tests.

Modes
  answer (default)  listen on --ip:--port (UDP and TCP), answer every INVITE
                    with 180 Ringing, then (after --ring-ms) 200 OK.
  call              --call URI places one call (add ";transport=tcp" to the
                    URI for TCP).
Options
  --codec NAME      force one audio codec (e.g. "PCMU/8000"): every other codec
                    gets priority 0, i.e. is disabled.
  --codecs LIST     comma list of codec id prefixes, in priority order.
  --hangup-after S  hang up (BYE) S seconds after the call is CONFIRMED
                    (0 = never by ourselves: the peer's BYE ends the call).
  --calls N         answer mode: exit once N calls have ended (0 = no limit).
  --max-time S      hard limit for the whole run (always bounded).
  --tone HZ         sine sent into every call through a pj.AudioMediaPort; the
                    received audio is analysed (dominant frequency, RMS).
  --no-audio-port   connect nothing to the calls' audio (many short calls).
  --record WAV      write the audio received in the first call (from CONFIRMED,
                    at --clock-rate, mono 16-bit) to WAV.
  --dtmf DIGITS     send DIGITS as RFC 4733 telephone-events --dtmf-delay s
                    after CONFIRMED.  Digits received (either method) are listed
                    per call in the JSON as "dtmf_rx".
  --transfer-to URI --transfer-after S
                    S seconds after CONFIRMED, transfer the call to URI (REFER,
                    call.xfer()); the NOTIFY progress is listed per call as
                    "xfer_status", and a final 2xx hangs the call up (as pjsua does).
  A REFER received is accepted: the new call (role "uac-xfer") carries the tone too;
  the Refer-To is listed as "xfer_request" on the transferred call.
Output
  stderr: "READY" once listening (answer mode), then pjsua's log (--log-level).
  stdout: exactly ONE JSON line at exit: per call its states with timestamps
  (epoch seconds and ms since the Call object was created), the negotiated
  codec, who hung up ("local" / "remote"), the last SIP status code.
  Exit status 0 when the run did what was asked (call confirmed in call mode,
  N calls confirmed with --calls, tone within 5 % of --expect-hz), else 1.
  SIGTERM / SIGINT hang up the calls in progress and end the run cleanly.

Two PJSUA2 crash traps are respected: the null sound device's clock is stopped
(setNoDev) before media ports are freed, and every Call object is gone before
ep.libDestroy().  This build of PJSIP accepts at most 4 simultaneous calls.
"""
import argparse
import gc
import json
import math
import os
import signal
import sys
import time
import wave

# PJSIP's console log writes to fd 1: point fd 1 at stderr and keep a dup of
# the original stdout for the single JSON result line.
_json_fd = os.dup(1)
os.dup2(2, 1)
_json_out = os.fdopen(_json_fd, "w")
sys.stdout = sys.stderr

import pjsua2 as pj  # noqa: E402  (after the stdout redirection above)

T_START = time.time()


def now():
    return time.time()


def log(*a):
    print(f"[peer {now() - T_START:.3f}]", *a, file=sys.stderr, flush=True)


class TonePort(pj.AudioMediaPort):
    """Conference-bridge port: source of a sine tone, sink for the received PCM."""

    def __init__(self, freq, clock_rate, ptime_ms=20, amplitude=8000):
        pj.AudioMediaPort.__init__(self)
        import numpy as np

        self.np = np
        self.freq = float(freq)
        self.rate = clock_rate
        self.spf = clock_rate * ptime_ms // 1000
        self.amp = amplitude
        self.n_tx = 0
        self.rx_chunks = []
        self.rx_frames = 0
        self.tx_frames = 0
        self.collect = False
        self.active = True
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate = clock_rate
        fmt.channelCount = 1
        fmt.bitsPerSample = 16
        fmt.frameTimeUsec = ptime_ms * 1000
        self.fmt = fmt

    def onFrameRequested(self, frame):
        if not self.active:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            frame.size = 0
            return
        np = self.np
        n = np.arange(self.n_tx, self.n_tx + self.spf)
        self.n_tx += self.spf
        pcm = (self.amp * np.sin(2 * np.pi * self.freq * n / self.rate)).astype("<i2")
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm.tobytes())
        frame.size = pcm.nbytes
        self.tx_frames += 1

    def onFrameReceived(self, frame):
        if not self.active or not self.collect or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        if frame.size <= 0:
            return
        self.rx_chunks.append(bytes(frame.buf))
        self.rx_frames += 1

    def write_wav(self, path):
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(b"".join(self.rx_chunks))

    def analyse(self, skip_s=0.2):
        np = self.np
        if not self.rx_chunks:
            return {"samples": 0, "clock_rate": self.rate}
        x = np.frombuffer(b"".join(self.rx_chunks), dtype="<i2").astype(np.float64)
        total = int(x.size)
        x = x[int(skip_s * self.rate):]
        res = {"samples": total, "analysed_samples": int(x.size),
               "clock_rate": self.rate, "frames": self.rx_frames}
        if x.size < 256:
            return res
        rms = float(np.sqrt(np.mean(x * x)))
        res["rms"] = round(rms, 1)
        res["dbfs"] = round(20 * math.log10(rms / 32768.0), 1) if rms > 0 else None
        spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
        k = int(np.argmax(spec[1:]) + 1)
        d = 0.0
        if 1 <= k < spec.size - 1:
            a, b, c = spec[k - 1], spec[k], spec[k + 1]
            if (a - 2 * b + c) != 0:
                d = 0.5 * (a - c) / (a - 2 * b + c)
        res["dominant_hz"] = round((k + d) * self.rate / x.size, 1)
        return res


class PeerCall(pj.Call):
    def __init__(self, peer, acc, call_id=pj.PJSUA_INVALID_ID, role="uac"):
        pj.Call.__init__(self, acc, call_id)
        self.peer = peer
        self.role = role
        self.t_created = now()
        self.states = []
        self.codec = None
        self.port = None
        self.connected = False
        self.confirmed_at = None
        self.disconnected_at = None
        self.hangup_at = None
        self.answer_at = None
        self.hangup_by = None
        self.sip_call_id = None
        self.remote_uri = None
        self.last_code = None
        self.last_reason = None
        self.media = []
        self.dtmf_at = None
        self.dtmf_rx = []
        self.dtmf_sent = ""
        self.xfer_at = None
        self.xfer_status = []
        self.xfer_request = None
        self.rtp_source = None  # --ice: where its RTP came from (the peer's end of the selected pair)

    def mark(self, name, code=None, reason=None):
        t = now()
        self.states.append({"state": name, "t": round(t, 6),
                            "rel_ms": round((t - self.t_created) * 1000, 3),
                            "code": code, "reason": reason})

    def onCallState(self, prm):
        ci = self.getInfo()
        self.sip_call_id = ci.callIdString
        self.remote_uri = ci.remoteUri
        self.last_code = ci.lastStatusCode
        self.last_reason = ci.lastReason
        self.mark(ci.stateText, ci.lastStatusCode, ci.lastReason)
        log("call", self.role, ci.callIdString, ci.stateText, ci.lastStatusCode, ci.lastReason)
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed_at = now()
            if self.port is not None:
                self.port.collect = True
            if self.peer.args.hangup_after > 0:
                self.hangup_at = self.confirmed_at + self.peer.args.hangup_after
            if self.peer.args.dtmf:
                self.dtmf_at = self.confirmed_at + self.peer.args.dtmf_delay
            if self.peer.args.transfer_to and self.role in ("uac", "uas"):
                self.xfer_at = self.confirmed_at + self.peer.args.transfer_after
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = now()
            if self.hangup_by is None:
                self.hangup_by = "remote"
            if self.port is not None:
                self.port.collect = False
                self.port.active = False
            self.peer.ended += 1

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for mi in ci.media:
            self.media.append({"index": mi.index, "type": int(mi.type),
                               "status": int(mi.status), "dir": int(mi.dir)})
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status not in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                continue
            try:
                si = self.getStreamInfo(mi.index)
                self.codec = f"{si.codecName}/{si.codecClockRate}"
            except pj.Error as e:
                log("getStreamInfo failed:", e.info())
            if self.peer.args.no_audio_port:
                continue
            # (re)connect on every media update: a re-INVITE (hold, resume) gives the call a
            # new stream, which the conference bridge must be told about again
            aud = self.getAudioMedia(mi.index)
            if self.port is None:
                self.port = TonePort(self.peer.args.tone, self.peer.args.clock_rate)
                self.port.createPort(f"tone{id(self)}", self.port.fmt)
            self.port.startTransmit(aud)
            aud.startTransmit(self.port)
            if self.confirmed_at is not None:
                self.port.collect = True
            self.connected = True

    def onCallTransferRequest(self, prm):
        # the peer transfers us: pjsua places the new call; a Call object of ours gets its
        # callbacks, so that the new call carries the tone and its audio is analysed
        log("transfer request to", prm.dstUri)
        self.xfer_request = prm.dstUri
        child = PeerCall(self.peer, self.peer.acc, role="uac-xfer")
        self.peer.calls.append(child)
        prm.newCall = child

    def onCallTransferStatus(self, prm):
        log("transfer status", prm.statusCode, prm.reason, "final" if prm.finalNotify else "")
        self.xfer_status.append({"code": prm.statusCode, "reason": prm.reason, "final": bool(prm.finalNotify)})
        if prm.finalNotify and prm.statusCode // 100 == 2:
            prm.cont = False
            self.hangup_now()

    def transfer_now(self):
        self.xfer_at = None
        if self.disconnected_at is not None:
            return
        self.mark("XFER-REQUESTED")
        try:
            self.xfer(self.peer.args.transfer_to, pj.CallOpParam(True))
        except pj.Error as e:
            log("xfer failed:", e.info())

    def onDtmfDigit(self, prm):
        log("dtmf received", prm.digit, "method", prm.method)
        self.dtmf_rx.append(prm.digit)

    def send_dtmf_now(self):
        self.dtmf_at = None
        if self.disconnected_at is not None:
            return
        prm = pj.CallSendDtmfParam()
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.digits = self.peer.args.dtmf
        try:
            self.sendDtmf(prm)
            self.dtmf_sent = self.peer.args.dtmf
            self.mark("DTMF-SENT")
        except pj.Error as e:
            log("sendDtmf failed:", e.info())

    def hangup_now(self):
        self.hangup_at = None
        if self.disconnected_at is not None:
            return
        if self.hangup_by is None:
            self.hangup_by = "local"
        self.mark("HANGUP-REQUESTED")
        try:
            self.hangup(pj.CallOpParam(True))
        except pj.Error as e:
            log("hangup failed:", e.info())

    def summary(self):
        setup_ms = None
        if self.confirmed_at is not None:
            setup_ms = round((self.confirmed_at - self.t_created) * 1000, 3)
        d = {"role": self.role, "call_id": self.sip_call_id, "remote_uri": self.remote_uri,
             "states": self.states, "state_names": [s["state"] for s in self.states],
             "confirmed": self.confirmed_at is not None, "setup_ms": setup_ms,
             "codec": self.codec, "media": self.media, "hangup_by": self.hangup_by,
             "last_code": self.last_code, "last_reason": self.last_reason,
             "dtmf_rx": "".join(self.dtmf_rx), "dtmf_sent": self.dtmf_sent,
             "xfer_status": self.xfer_status, "xfer_request": self.xfer_request}
        if self.confirmed_at and self.disconnected_at:
            d["confirmed_s"] = round(self.disconnected_at - self.confirmed_at, 3)
        if self.peer.args.ice:
            d["ice_rtp_source"] = self.rtp_source
        if self.port is not None:
            d["rx"] = self.port.analyse()
            d["tx_frames"] = self.port.tx_frames
        return d


class PeerAccount(pj.Account):
    def __init__(self, peer):
        pj.Account.__init__(self)
        self.peer = peer
        self.reg = {}           # "ok_t" once registered, "fail_code" on a failure
        self.reg_events = []

    def onRegState(self, prm):
        t = now()
        self.reg_events.append({"t": round(t - T_START, 6), "code": prm.code, "reason": prm.reason,
                                "expiration": prm.expiration})
        log("registration", prm.code, prm.reason, "expires", prm.expiration)
        if prm.code == 200 and prm.expiration > 0:
            self.reg.setdefault("ok_t", t)
        elif prm.code // 100 >= 3:
            self.reg.setdefault("fail_code", prm.code)

    def onIncomingCall(self, prm):
        call = PeerCall(self.peer, self, prm.callId, role="uas")
        self.peer.calls.append(call)  # Python must keep a reference
        call.mark("INCOMING-CB")
        op = pj.CallOpParam()
        op.statusCode = 180
        try:
            call.answer(op)
            call.mark("180-SENT")
        except pj.Error as e:
            log("answer 180 failed:", e.info())
        call.answer_at = now() + self.peer.args.ring_ms / 1000.0
        if self.peer.args.ring_ms <= 0:
            self.peer.answer_200(call)


class Peer:
    def __init__(self, args):
        self.args = args
        # every Call object stays referenced until destroy(): deleting the Python
        # object of an ended call resets (and hangs up) the pjsua call slot it
        # had, which a newer call may be using by then
        self.calls = []
        self.ended = 0
        self.stop = False
        self.ep = None
        self.acc = None

    def answer_200(self, call):
        call.answer_at = None
        if call.disconnected_at is not None:
            return
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            call.answer(op)
            call.mark("200-SENT")
        except pj.Error as e:
            log("answer 200 failed:", e.info())

    def setup(self):
        a = self.args
        ipv6 = ":" in a.ip
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0          # callbacks on this thread, in libHandleEvents()
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = 4           # the most this build accepts
        cfg.uaConfig.userAgent = f"pjsua2_peer (PJSIP {ep.libVersion().full})"
        cfg.logConfig.level = a.log_level
        cfg.logConfig.consoleLevel = a.log_level
        cfg.logConfig.msgLogging = 1 if a.log_level >= 4 else 0
        cfg.medConfig.clockRate = a.clock_rate
        cfg.medConfig.sndClockRate = a.clock_rate
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.noVad = True
        cfg.medConfig.ptime = 20
        # keep the (null) sound device, hence the conference clock, running:
        # ports of ended calls are removed from the bridge by that clock; with
        # the device auto-closed they pile up until PJ_ETOOMANY (488) ~250 calls
        cfg.medConfig.sndAutoCloseTime = -1
        if a.stun:  # server-reflexive ICE candidates (media only: SIP keeps its own address)
            cfg.uaConfig.stunServer.append(a.stun)
        ep.libInit(cfg)
        for kind in ("UDP", "TCP"):
            tcfg = pj.TransportConfig()
            tcfg.port = a.port
            tcfg.boundAddress = a.ip
            ttype = getattr(pj, "PJSIP_TRANSPORT_{}{}".format(kind, "6" if ipv6 else ""))
            ep.transportCreate(ttype, tcfg)
        ep.libStart()
        ep.audDevManager().setNullDev()     # no sound device in this build
        wanted = []
        if a.codec:
            wanted = [a.codec.strip().lower()]
        elif a.codecs:
            wanted = [c.strip().lower() for c in a.codecs.split(",") if c.strip()]
        if wanted:
            for ci in ep.codecEnum2():
                prio = 0
                for i, w in enumerate(wanted):
                    if ci.codecId.lower().startswith(w):
                        prio = 250 - i
                ep.codecSetPriority(ci.codecId, prio)
        self.codec_list = [c.codecId for c in ep.codecEnum2() if c.priority > 0]
        self.ep = ep

        acfg = pj.AccountConfig()
        host = f"[{a.ip}]" if ipv6 else a.ip
        acfg.idUri = f"sip:{a.user}@{a.domain or host}"
        if a.register:
            # REGISTER with digest auth; the proxy also routes our calls
            acfg.regConfig.registrarUri = a.register
            acfg.regConfig.timeoutSec = a.reg_expires
            acfg.regConfig.retryIntervalSec = 0
            acfg.sipConfig.proxies.append(a.register + ";lr")
        if a.password is not None:
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", a.user, 0, a.password))
        # bind RTP/RTCP to --ip too, else pjsua advertises the host's primary address
        acfg.mediaConfig.transportConfig.boundAddress = a.ip
        if a.rtp_port:
            acfg.mediaConfig.transportConfig.port = a.rtp_port
            # each call takes the next RTP/RTCP pair; without a range pjsua walks
            # up from --rtp-port forever and answers 488 once it meets a busy port
            acfg.mediaConfig.transportConfig.portRange = a.rtp_port_range
        # no re-INVITE after an answer that lists several codecs (a plain UA
        # does not send one; sipp scenarios do not expect it)
        acfg.mediaConfig.lockCodecEnabled = False
        if a.srtp:  # SDES SRTP; mandatory: RTP/SAVP offered, offers without crypto refused
            acfg.mediaConfig.srtpUse = {"optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                        "mandatory": pj.PJMEDIA_SRTP_MANDATORY}[a.srtp]
            acfg.mediaConfig.srtpSecureSignaling = 0
        if a.ice:  # ICE (RFC 8445) with host candidates on --ip, RTP and RTCP on one port
            acfg.natConfig.iceEnabled = True
            acfg.mediaConfig.rtcpMuxEnabled = True
            acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
            if a.turn:  # relayed candidates, long-term credentials
                acfg.natConfig.turnEnabled = True
                acfg.natConfig.turnServer = a.turn
                acfg.natConfig.turnConnType = pj.PJ_TURN_TP_UDP
                acfg.natConfig.turnUserName = a.turn_user or ""
                acfg.natConfig.turnPasswordType = 0
                acfg.natConfig.turnPassword = a.turn_password or ""
        self.acc = PeerAccount(self)
        self.acc.create(acfg)
        self.acc_uri = acfg.idUri

    def poll(self, ms=5):
        self.ep.libHandleEvents(ms)

    def timers(self):
        t = now()
        for c in list(self.calls):
            if c.answer_at is not None and t >= c.answer_at:
                self.answer_200(c)
            if c.dtmf_at is not None and t >= c.dtmf_at:
                c.send_dtmf_now()
            if c.xfer_at is not None and t >= c.xfer_at:
                c.transfer_now()
            if self.args.ice and c.connected and c.rtp_source is None and c.disconnected_at is None:
                try:
                    c.rtp_source = c.getMedTransportInfo(0).srcRtpName or None
                except pj.Error:
                    pass
            if c.hangup_at is not None and t >= c.hangup_at:
                c.hangup_now()

    def pump(self, seconds):
        end = now() + seconds
        while not self.stop and now() < end:
            self.poll(5)
            self.timers()

    def run(self):
        a = self.args
        deadline = T_START + a.max_time
        if a.register:
            while not self.stop and now() < deadline and not self.acc.reg:
                self.pump(0.02)
            if "ok_t" not in self.acc.reg:
                log("registration did not succeed:", self.acc.reg_events)
                self.timed_out = now() >= deadline
                return
        if a.call:
            call = PeerCall(self, self.acc, role="uac")
            self.calls.append(call)
            call.mark("INVITE-REQUESTED")
            try:
                call.makeCall(a.call, pj.CallOpParam(True))
            except pj.Error as e:
                log("makeCall failed:", e.info())
                call.disconnected_at = now()
                self.ended += 1
            while not self.stop and now() < deadline and self.ended < 1:
                self.pump(0.05)
        else:
            log(f"listening on {a.ip}:{a.port} (udp+tcp), auto-answer, codecs {self.codec_list}")
            print("READY", flush=True)   # on stderr; the tests wait for it
            while not self.stop and now() < deadline:
                if a.calls and self.ended >= a.calls:
                    break
                self.pump(0.05)
        self.timed_out = now() >= deadline

    def shutdown(self):
        try:
            self.ep.hangupAllCalls()
        except pj.Error:
            pass
        end = now() + 2.0
        while now() < end and any(c.disconnected_at is None for c in self.calls):
            self.poll(10)
        # let the last responses / retransmissions go out
        end = now() + 0.2
        while now() < end:
            self.poll(10)

    def result(self):
        a = self.args
        calls = [c.summary() for c in self.calls]
        calls.sort(key=lambda c: c["states"][0]["t"] if c["states"] else 0)
        res = {"tool": "pjsua2_peer", "pjsip": self.ep.libVersion().full,
               "mode": "call" if a.call else "answer", "local": f"{a.ip}:{a.port}",
               "account": self.acc_uri, "codecs_enabled": self.codec_list,
               "wall_s": round(now() - T_START, 3), "timed_out": self.timed_out,
               "ended": self.ended, "calls": calls}
        if a.register:
            res["registration"] = {"registrar": a.register, "ok": "ok_t" in self.acc.reg,
                                   "events": self.acc.reg_events}
        confirmed = [c for c in calls if c["confirmed"]]
        ok = True
        if a.register and not res["registration"]["ok"]:
            ok = False
        if a.call and not confirmed:
            ok = False
        if a.calls and len(confirmed) < a.calls:
            ok = False
        if a.expect_hz:
            for c in confirmed:
                hz = c.get("rx", {}).get("dominant_hz")
                if hz is None or abs(hz - a.expect_hz) > 0.05 * a.expect_hz:
                    ok = False
        res["ok"] = ok
        if a.record:
            ports = [c.port for c in self.calls if c.port is not None]
            if ports:
                ports[0].write_wav(a.record)
                res["record"] = a.record
        return res

    def destroy(self):
        # 1. stop the conference-bridge clock so no port callback runs while
        #    ports are freed; 2. drop every Call and port; 3. libDestroy.
        for call in self.calls:
            if call.port is not None:
                call.port.active = False
        call = None
        if self.ep is not None:
            try:
                self.ep.audDevManager().setNoDev()
            except pj.Error as e:
                log("setNoDev failed:", e.info())
            end = now() + 0.1
            while now() < end:
                self.poll(10)
        while self.calls:
            c = self.calls.pop()
            c.port = None
            del c
        gc.collect()
        if self.acc is not None:
            try:
                self.acc.shutdown()
            except Exception:
                pass
        self.acc = None
        gc.collect()
        if self.ep is not None:
            self.ep.libDestroy()
            self.ep = None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ip", default="127.0.0.1", help="SIP and RTP address (127.0.0.1, ::1)")
    p.add_argument("--port", type=int, default=5090, help="SIP port, UDP and TCP")
    p.add_argument("--rtp-port", type=int, default=0, help="first RTP port (RTCP = RTP+1)")
    p.add_argument("--rtp-port-range", type=int, default=40,
                   help="RTP ports used: --rtp-port .. --rtp-port + N - 1 (0 = unbounded)")
    p.add_argument("--user", default="peer", help="account user part")
    p.add_argument("--domain", help="account domain (default: --ip)")
    p.add_argument("--register", metavar="URI", help="register with digest auth at this registrar, e.g. "
                   "sip:127.0.0.1:5060; it is also the outbound proxy")
    p.add_argument("--password", help="digest password for --register and proxy challenges")
    p.add_argument("--reg-expires", type=int, default=60, help="REGISTER expiry (s)")
    p.add_argument("--call", metavar="URI", help="place one call to URI (else: answer mode)")
    p.add_argument("--codec", help='force one codec, e.g. "PCMU/8000"')
    p.add_argument("--codecs", default="PCMU/8000,PCMA/8000",
                   help="comma list of codec id prefixes, in priority order ('' = pjsua defaults)")
    p.add_argument("--hangup-after", "--duration", dest="hangup_after", type=float, default=0.0,
                   help="hang up S s after CONFIRMED (0 = wait for the peer's BYE)")
    p.add_argument("--ring-ms", type=float, default=0.0, help="delay between 180 and 200")
    p.add_argument("--calls", type=int, default=0, help="answer mode: exit after N ended calls")
    p.add_argument("--max-time", type=float, default=30.0, help="hard time limit (s)")
    p.add_argument("--tone", type=float, default=440.0, help="Hz of the sine sent into calls")
    p.add_argument("--no-audio-port", action="store_true",
                   help="connect no tone/recorder port to the calls")
    p.add_argument("--record", metavar="WAV", help="write the first call's received audio to WAV")
    p.add_argument("--dtmf", metavar="DIGITS", help="send DIGITS (RFC 4733) after CONFIRMED")
    p.add_argument("--dtmf-delay", type=float, default=0.5, help="seconds after CONFIRMED")
    p.add_argument("--transfer-to", metavar="URI", help="transfer the call to URI (REFER) after CONFIRMED")
    p.add_argument("--transfer-after", type=float, default=1.0, help="seconds after CONFIRMED")
    p.add_argument("--expect-hz", type=float, default=0.0)
    p.add_argument("--clock-rate", type=int, default=16000)
    p.add_argument("--srtp", choices=("optional", "mandatory"), help="SRTP with SDES keys (srtpUse)")
    p.add_argument("--ice", action="store_true", help="ICE (natConfig.iceEnabled) with rtcp-mux")
    p.add_argument("--stun", metavar="HOST:PORT", help="STUN server for --ice")
    p.add_argument("--turn", metavar="HOST:PORT", help="TURN server (UDP) for --ice")
    p.add_argument("--turn-user", help="TURN username")
    p.add_argument("--turn-password", help="TURN password")
    p.add_argument("--log-level", type=int, default=0, help="pjsua log level on stderr (0-6)")
    args = p.parse_args()
    if ":" in args.ip:
        # this pjsua2-python build asserts (aborts) on IPv6 media
        # (pjsua_acc_add: cfg->ipv6_media_use == PJSUA_IPV6_DISABLED)
        _json_out.write(json.dumps({"tool": "pjsua2_peer", "ok": False, "calls": [],
                                    "error": "IPv6 is not supported by this PJSIP build"}) + "\n")
        _json_out.flush()
        sys.exit(2)

    peer = Peer(args)

    def on_signal(signum, frame):
        peer.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    res = None
    try:
        peer.setup()
        peer.run()
        peer.shutdown()
        res = peer.result()
    except pj.Error as e:
        log("pjsua2 error:", e.info())
        res = {"tool": "pjsua2_peer", "ok": False, "error": e.info(), "calls": []}
    finally:
        try:
            peer.destroy()
        except Exception as e:  # pragma: no cover
            log("destroy failed:", e)
    _json_out.write(json.dumps(res) + "\n")
    _json_out.flush()
    sys.exit(0 if res and res.get("ok") else 1)


if __name__ == "__main__":
    main()
