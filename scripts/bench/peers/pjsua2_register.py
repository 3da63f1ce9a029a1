#!/usr/bin/env python3
"""pjsua2_register.py - a PJSIP (pjsua2) user agent that registers many accounts at once.

One process, one UDP transport on --ip, --count accounts USER_FORMAT.format(i) with
password PASSWORD_FORMAT.format(i) for i = --first .. --first + --count - 1, each
registered to --registrar with digest auth (the 401 is answered inside PJSIP). The
accounts are created back to back with registerOnAdd, so every REGISTER leaves at
once; then, when all are registered (or after --timeout), every account unregisters
(setRegistration(False)) and the process exits.

Stdout carries JSON lines only (PJSIP's own log goes to stderr):

  {"event": "registration", "account": URI, "state": "registering", "t": T}
      from onRegStarted (renew), just before the first REGISTER is sent
  {"event": "registration", "account": URI, "state": "registered"|"failed",
   "sip_code": 200, "expires": 60, "t": T}        from onRegState
  {"event": "registration", "account": URI, "state": "unregistered", ...}
  {"event": "summary", "accounts": [{"account", "create_t", "started_t",
   "registered_t", "sip_code", "create_to_200_ms", "started_to_200_ms"}, ...], ...}

T is time.monotonic() (CLOCK_MONOTONIC, comparable across processes on Linux).

--probe-max N creates up to N accounts without registering and prints
{"created": k} after each one: this build of pjsua aborts on an assertion once
PJSUA_MAX_ACC accounts exist, so the last line printed is the limit.

SIGTERM or SIGINT ends the run early (unregistering first).
"""
import argparse
import json
import os
import signal
import sys
import time

_json_fd = os.dup(1)
os.dup2(2, 1)
_json_out = os.fdopen(_json_fd, "w")
sys.stdout = sys.stderr

import pjsua2 as pj  # noqa: E402

STOP = False


def emit(obj):
    _json_out.write(json.dumps(obj) + "\n")
    _json_out.flush()


class RegAccount(pj.Account):
    def __init__(self, runner, uri):
        pj.Account.__init__(self)
        self.runner = runner
        self.uri = uri
        self.create_t = None
        self.started_t = None
        self.registered_t = None
        self.unregistered_t = None
        self.code = None
        self.final = None  # "registered" / "failed"

    def onRegStarted(self, prm):
        t = time.monotonic()
        if prm.renew and self.started_t is None:
            self.started_t = t
            emit({"event": "registration", "account": self.uri, "state": "registering", "t": t})

    def onRegState(self, prm):
        t = time.monotonic()
        code = int(prm.code)
        expires = int(prm.expiration)
        if self.final is None:
            self.code = code
            if 200 <= code < 300 and expires > 0:
                self.final, self.registered_t = "registered", t
            else:
                self.final = "failed"
            self.runner.settled += 1
            emit({"event": "registration", "account": self.uri, "state": self.final, "sip_code": code,
                  "reason": prm.reason, "expires": expires, "t": t})
        elif self.runner.unregistering and self.unregistered_t is None:
            self.unregistered_t = t
            self.runner.unregistered += 1
            emit({"event": "registration", "account": self.uri, "state": "unregistered", "sip_code": code,
                  "t": t})

    def summary(self):
        d = {"account": self.uri, "create_t": self.create_t, "started_t": self.started_t,
             "registered_t": self.registered_t, "sip_code": self.code, "state": self.final}
        if self.registered_t is not None:
            d["create_to_200_ms"] = round((self.registered_t - self.create_t) * 1000, 3)
            if self.started_t is not None:
                d["started_to_200_ms"] = round((self.registered_t - self.started_t) * 1000, 3)
        return d


class Runner:
    def __init__(self, args):
        self.args = args
        self.ep = None
        self.accounts = []
        self.settled = 0
        self.unregistering = False
        self.unregistered = 0

    def init(self):
        a = self.args
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0        # callbacks run here, inside libHandleEvents()
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.userAgent = f"pjsua2_register (PJSIP {ep.libVersion().full})"
        cfg.logConfig.level = a.log_level
        cfg.logConfig.consoleLevel = a.log_level
        cfg.logConfig.msgLogging = 1 if a.log_level >= 4 else 0
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = a.port
        tcfg.boundAddress = a.ip
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        ep.audDevManager().setNullDev()   # no sound device in this build
        self.ep = ep

    def account_config(self, i, register):
        a = self.args
        user = a.user_format.format(i)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{a.domain}"
        acfg.regConfig.registrarUri = a.registrar
        acfg.regConfig.registerOnAdd = register
        acfg.regConfig.timeoutSec = a.expires
        acfg.regConfig.retryIntervalSec = 0     # no automatic retry: a failure is final
        acfg.regConfig.unregWaitMsec = 2000
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", user, 0, a.password_format.format(i)))
        acfg.mediaConfig.transportConfig.boundAddress = a.ip
        return acfg

    def probe(self, limit):
        for i in range(limit):
            acc = RegAccount(self, f"probe{i}")
            acc.create(self.account_config(self.args.first + i, False))
            self.accounts.append(acc)
            emit({"created": i + 1})

    def pump(self, until, done):
        while not STOP and time.monotonic() < until and not done():
            self.ep.libHandleEvents(2)

    def run(self):
        a = self.args
        t0 = time.monotonic()
        for i in range(a.first, a.first + a.count):
            cfg = self.account_config(i, True)
            acc = RegAccount(self, cfg.idUri)
            self.accounts.append(acc)       # Python must keep a reference
            acc.create_t = time.monotonic()
            acc.create(cfg)                 # sends the first REGISTER
        self.pump(t0 + a.timeout, lambda: self.settled >= len(self.accounts))
        t_done = time.monotonic()
        self.unregistering = True
        bound = [acc for acc in self.accounts if acc.final == "registered"]
        for acc in bound:
            try:
                acc.setRegistration(False)
            except pj.Error as e:
                print("unregister failed:", e.info(), file=sys.stderr)
        self.pump(time.monotonic() + a.unregister_timeout, lambda: self.unregistered >= len(bound))
        ok = [acc for acc in self.accounts if acc.final == "registered"]
        emit({"event": "summary", "peer": "pjsua2", "pjsip": self.ep.libVersion().full,
              "count": len(self.accounts), "registered": len(ok),
              "failed": sum(1 for acc in self.accounts if acc.final == "failed"),
              "unsettled": sum(1 for acc in self.accounts if acc.final is None),
              "unregistered": self.unregistered,
              "register_phase_s": round(t_done - t0, 6),
              "accounts": [acc.summary() for acc in self.accounts]})

    def destroy(self):
        for acc in self.accounts:
            try:
                acc.shutdown()
            except pj.Error:
                pass
        self.accounts = []
        if self.ep is not None:
            self.ep.libDestroy()
            self.ep = None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registrar", default="sip:127.0.0.1:5060", help="registrar URI")
    p.add_argument("--domain", default="127.0.0.1", help="domain of the accounts' AoRs")
    p.add_argument("--ip", default="127.0.0.1", help="local address to bind")
    p.add_argument("--port", type=int, default=0, help="local SIP port (0 = any)")
    p.add_argument("--count", type=int, default=8, help="number of accounts")
    p.add_argument("--first", type=int, default=1, help="index of the first account")
    p.add_argument("--user-format", default="user{:04d}")
    p.add_argument("--password-format", default="pw{:04d}")
    p.add_argument("--expires", type=int, default=60)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for every registration")
    p.add_argument("--unregister-timeout", type=float, default=5.0)
    p.add_argument("--probe-max", type=int, default=0, metavar="N",
                   help="only create up to N accounts (no REGISTER), printing the count after each")
    p.add_argument("--log-level", type=int, default=1)
    args = p.parse_args()

    def on_signal(signum, frame):
        global STOP
        STOP = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    runner = Runner(args)
    runner.init()
    try:
        if args.probe_max:
            runner.probe(args.probe_max)
        else:
            runner.run()
    finally:
        runner.destroy()


if __name__ == "__main__":
    main()
