#!/usr/bin/env python3
"""registration.py - REGISTER throughput and round-trip time through Kamailio.

N accounts in ONE process register at once with digest auth (REGISTER, 401,
REGISTER with credentials, 200) to a fresh Kamailio on 127.0.0.1, for the softphone
(`softphone --json register --once`) and for PJSIP 2.15 (peers/pjsua2_register.py).
Kamailio is restarted (empty location table) before every run.

Figures per peer:
  * registrations per second: N / (first REGISTER -> last 200);
  * REGISTER round trip: first REGISTER of an account -> its final 200 (the 401
    leg included): median, p90, max over all accounts of all rounds.

Times are the arrival times, in this process, of each peer's JSON event lines
(`registering` and `registered`), so both peers are timed the same way.

After each start, Kamailio is warmed up with a few authenticated REGISTERs of
user0000 (db_text reads the subscriber table on its first query: ~4 ms for 200 rows,
~30 ms for 2000, a cost that belongs to no peer); they are left out of the counts.
From Kamailio's log (its prefix carries CSeq and Call-ID) each run also counts the
REGISTERs it saw twice, i.e. the UA's retransmissions after a lost answer, and the
host's UDP receive-buffer drops (RcvbufErrors in /proc/net/snmp) during the run.

This pjsua2 wheel is built with a small PJSUA_MAX_ACC (it aborts on an assertion
beyond it): the limit is probed first, and the comparison runs both peers with
min(--accounts, limit) accounts; the softphone is then also run alone with
--accounts. A last softphone run (--refresh-seconds) keeps --accounts registrations
with a short expiry alive long enough to see every account refresh, then stops it
with SIGTERM and counts the unregistrations.

  .venv/bin/python scripts/bench/registration.py            # text report, ~1 min
  .venv/bin/python scripts/bench/registration.py --json     # one JSON object
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KAMAILIO_CFG = REPO / "tests" / "interop" / "kamailio" / "kamailio.cfg"
KAMAILIO_DB = REPO / "tests" / "interop" / "kamailio" / "db"
PJSUA2_REGISTER = HERE / "peers" / "pjsua2_register.py"
DOMAIN = "127.0.0.1"
REQ_REGISTER = re.compile(r"\{1 (\d+) REGISTER (\S+)\} .*?REQ REGISTER ")


def user(i: int) -> str:
    return f"user{i:04d}"


def password(i: int) -> str:
    return f"pw{i:04d}"


# =========================================================================== processes


def _stop(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGTERM by PID, SIGKILL after `timeout`."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        return None


def _listening(proto: str, port: int) -> bool:
    """Whether 127.0.0.1:port is bound (UDP) or listening (TCP), from /proc/net."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        f = line.split()
        if len(f) > 3 and f[1] == want and (proto == "udp" or f[3] == "0A"):
            return True
    return False


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def udp_rcvbuf_errors() -> int | None:
    """The kernel's count of UDP datagrams dropped because a socket's receive
    buffer was full (all sockets of the host: RcvbufErrors in /proc/net/snmp)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


class Kamailio:
    """The interop tests' kamailio.cfg with a db_text folder of `users` accounts
    user0001/pw0001 ...; start() runs a fresh process on a new port."""

    def __init__(self, workdir: Path, users: int) -> None:
        self.workdir = workdir
        self.db_dir = workdir / "db"
        self.db_dir.mkdir(parents=True, exist_ok=True)
        for name in ("version", "location"):
            shutil.copyfile(KAMAILIO_DB / name, self.db_dir / name)
        header = (KAMAILIO_DB / "subscriber").read_text().splitlines()[0]
        rows = [header]
        for i in range(0, users + 1):  # user0000 is the warm-up account
            u, pw = user(i), password(i)
            ha1 = hashlib.md5(f"{u}:{DOMAIN}:{pw}".encode()).hexdigest()
            ha1b = hashlib.md5(f"{u}@{DOMAIN}:{DOMAIN}:{pw}".encode()).hexdigest()
            rows.append(f"{i + 1}:{u}:{DOMAIN}:{pw}:{ha1}:{ha1b}")
        (self.db_dir / "subscriber").write_text("\n".join(rows) + "\n")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0
        self.warmed = 0
        self.log_file = workdir / "kamailio.log"

    def start(self, timeout: float = 10.0) -> None:
        self.port = _free_port()
        self.starts += 1
        self.log_file = self.workdir / f"kamailio{self.starts}.log"
        cmd = ["kamailio", "-DD", "-E", "-f", str(KAMAILIO_CFG),
               "-A", f'DBURL="text://{self.db_dir}"', "-A", f"SIP_PORT={self.port}",
               "-m", "64", "-M", "8", "-w", str(self.workdir), "-Y", str(self.workdir)]
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _listening("udp", self.port) and _listening("tcp", self.port):
                self.warmed = self.warm_up()
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"kamailio did not start on {self.port}:\n{self.log()[-2000:]}")

    def warm_up(self, rounds: int = 4, timeout: float = 2.0) -> int:
        """Register and unregister user0000 a few times with digest auth: db_text reads
        the subscriber table on its first query (tens of ms for a thousand rows), a cost
        that belongs to no peer. Returns how many rounds got their 200."""
        ok = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(timeout)
            lport = sock.getsockname()[1]
            uri = f"sip:{DOMAIN}:{self.port}"
            u, pw = user(0), password(0)
            for r in range(rounds):
                call_id = f"warmup-{r}-{os.getpid()}"
                auth = ""
                for cseq in (1, 2):
                    msg = (f"REGISTER {uri} SIP/2.0\r\n"
                           f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bKw{r}x{cseq}{os.getpid()};rport\r\n"
                           f"Max-Forwards: 70\r\nFrom: <sip:{u}@{DOMAIN}>;tag=w{r}\r\n"
                           f"To: <sip:{u}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                           f"Contact: *\r\nExpires: 0\r\n{auth}Content-Length: 0\r\n\r\n")
                    sock.sendto(msg.encode(), ("127.0.0.1", self.port))
                    try:
                        data = sock.recv(65535).decode(errors="replace")
                    except OSError:
                        break
                    status = data.split(" ", 2)[1] if data.startswith("SIP/2.0 ") else ""
                    if status == "200":
                        ok += 1
                        break
                    m = re.search(r'WWW-Authenticate:\s*Digest\s+(.*)', data, re.I)
                    if status != "401" or not m:
                        break
                    params = dict(re.findall(r'(\w+)="?([^",\r\n]*)"?', m.group(1)))
                    realm, nonce = params.get("realm", DOMAIN), params.get("nonce", "")
                    ha1 = hashlib.md5(f"{u}:{realm}:{pw}".encode()).hexdigest()
                    ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
                    resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
                    auth = (f'Authorization: Digest username="{u}", realm="{realm}", nonce="{nonce}", '
                            f'uri="{uri}", response="{resp}", algorithm=MD5\r\n')
        return ok

    def stop(self) -> None:
        if self.proc is None:
            return
        children = _children(self.proc.pid) if self.proc.poll() is None else []
        _stop(self.proc)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.02)
        for pid in children:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def counts(self) -> dict[str, int]:
        """What the registrar saw (the unregistrations at the end are included).

        The cfg's log prefix is "{1 CSEQ-NUMBER REGISTER CALL-ID}": a REGISTER seen
        twice with the same Call-ID and CSeq is a retransmission, i.e. the UA did
        not get the answer to the first copy."""
        text = "\n".join(ln for ln in self.log().splitlines() if " warmup-" not in ln)
        seen: dict[tuple[str, str], int] = {}
        for m in REQ_REGISTER.finditer(text):
            key = (m.group(2), m.group(1))
            seen[key] = seen.get(key, 0) + 1
        return {"register_requests": sum(seen.values()), "register_distinct": len(seen),
                "register_retransmissions": sum(k - 1 for k in seen.values()),
                "challenged_401": text.count("challenged with 401"),
                "location_saved": text.count("LOCATION-SAVED"),
                "auth_failed": text.count("auth FAILED"),
                "errors": sum(1 for line in text.splitlines() if " ERROR:" in line),
                "warm_up_ok": self.warmed}

    @property
    def registrar(self) -> str:
        return f"sip:{DOMAIN}:{self.port}"


class LineReader:
    """Reads a child's stdout in a thread and stamps each JSON line with its arrival
    time (time.monotonic())."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.other: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            t = time.monotonic()
            try:
                obj = json.loads(raw)
            except ValueError:
                self.other.append(raw.decode(errors="replace").rstrip())
                continue
            with self.cond:
                self.events.append((t, obj))
                self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    return bool(predicate(self.events))
                self.cond.wait(min(remaining, 0.1))
        return True


# =========================================================================== peers


def softphone_config(path: Path, kam: Kamailio, n: int, expires: int) -> None:
    lines = ["[sip]", f"contact=sip:{user(1)}@{DOMAIN}", ""]
    for k in range(n):
        i = k + 1
        lines += [f"[proxy_{k}]", f"reg_proxy=<{kam.registrar};transport=udp>",
                  f"reg_identity=sip:{user(i)}@{DOMAIN}", f"reg_expires={expires}", "",
                  f"[auth_info_{k}]", f"username={user(i)}", f"passwd={password(i)}", ""]
    path.write_text("\n".join(lines))


def run_softphone(kam: Kamailio, n: int, workdir: Path, timeout: float, expires: int = 60,
                  hold: float = 0.0) -> dict[str, Any]:
    """`softphone register --once` (or, with `hold`, without --once for `hold` seconds
    then SIGTERM) with n accounts; returns the timed events."""
    cfg = workdir / f"softphone-{n}.ini"
    softphone_config(cfg, kam, n, expires)
    cmd = [sys.executable, "-m", "softphone", "--json", "-c", str(cfg), "--bind", "127.0.0.1",
           "--sip-port", "0", "register"]
    if not hold:
        cmd += ["--once", "--timeout", f"{timeout:g}"]
    err = open(workdir / f"softphone-{n}-{kam.starts}.err", "wb")
    t_spawn = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    reader = LineReader(proc)
    rc: int | None
    try:
        if hold:
            reader.wait_for(lambda ev: False, hold)
            t_term = time.monotonic()
            rc = _stop(proc, timeout=15.0)
        else:
            t_term = None
            try:
                rc = proc.wait(timeout + 15.0)
            except subprocess.TimeoutExpired:
                rc = _stop(proc)
    finally:
        if proc.poll() is None:
            _stop(proc)
        err.close()
    reader.thread.join(2.0)
    out = {"peer": "softphone", "rc": rc, "spawn_t": t_spawn, "term_t": t_term,
           "events": reader.events, "stderr": (workdir / f"softphone-{n}-{kam.starts}.err").read_text(
               errors="replace")[-2000:]}
    return out


def run_pjsua2(kam: Kamailio, n: int, workdir: Path, timeout: float, expires: int = 60) -> dict[str, Any]:
    cmd = [sys.executable, str(PJSUA2_REGISTER), "--registrar", kam.registrar, "--domain", DOMAIN,
           "--count", str(n), "--expires", str(expires), "--timeout", f"{timeout:g}"]
    err = open(workdir / f"pjsua2-{n}-{kam.starts}.err", "wb")
    t_spawn = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    reader = LineReader(proc)
    try:
        rc = proc.wait(timeout + 15.0)
    except subprocess.TimeoutExpired:
        rc = _stop(proc)
    finally:
        if proc.poll() is None:
            _stop(proc)
        err.close()
    reader.thread.join(2.0)
    summary = next((e for _, e in reader.events if e.get("event") == "summary"), None)
    return {"peer": "pjsua2", "rc": rc, "spawn_t": t_spawn, "events": reader.events, "summary": summary,
            "stderr": (workdir / f"pjsua2-{n}-{kam.starts}.err").read_text(errors="replace")[-2000:]}


def pjsua2_max_accounts(limit: int, workdir: Path) -> dict[str, Any]:
    """Create accounts until pjsua gives up (it aborts on PJSUA_MAX_ACC)."""
    cmd = [sys.executable, str(PJSUA2_REGISTER), "--probe-max", str(limit)]
    try:
        r = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {"max": 0, "rc": None, "message": "probe timed out"}
    created = 0
    for line in r.stdout.decode(errors="replace").splitlines():
        try:
            created = max(created, int(json.loads(line).get("created", 0)))
        except (ValueError, AttributeError):
            pass
    message = next((ln for ln in r.stderr.decode(errors="replace").splitlines() if "Assertion" in ln), "")
    return {"max": created, "rc": r.returncode, "limited": created < limit, "message": message.strip()}


# =========================================================================== analysis


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q * len(s) + 0.5)) - 1))
    return s[k]


def analyse(run: dict[str, Any], n: int) -> dict[str, Any]:
    """Per-account first `registering` -> first `registered` (arrival times)."""
    started: dict[str, float] = {}
    done: dict[str, float] = {}
    codes: dict[str, int] = {}
    states: dict[str, int] = {}
    unregistered = 0
    for t, e in run["events"]:
        if e.get("event") != "registration":
            continue
        acc, state = e.get("account"), e.get("state")
        states[state] = states.get(state, 0) + 1
        if state == "registering" and acc not in started:
            started[acc] = t
        elif state == "registered" and acc not in done:
            done[acc] = t
            codes[acc] = e.get("sip_code")
        elif state == "unregistered":
            unregistered += 1
    ok = [a for a in done if a in started and codes.get(a) == 200]
    rtt = [(done[a] - started[a]) * 1000.0 for a in ok]
    res: dict[str, Any] = {"accounts": n, "registered": len(ok), "states": states,
                           "unregistered": unregistered, "rc": run.get("rc")}
    if ok:
        first = min(started.values())
        last = max(done[a] for a in ok)
        span = last - first
        res.update({
            "startup_s": round(first - run["spawn_t"], 4),
            "span_s": round(span, 6),
            "reg_per_s": round(len(ok) / span, 1) if span > 0 and len(ok) == n else None,
            "rtt_ms": [round(x, 3) for x in rtt],
            "rtt_median_ms": round(statistics.median(rtt), 3),
            "rtt_p90_ms": round(pct(rtt, 0.9) or 0.0, 3),
            "rtt_max_ms": round(max(rtt), 3),
        })
    summary = run.get("summary")
    if summary:  # pjsua2's own clock: create() -> 200 and onRegStarted -> 200
        c2 = [a["create_to_200_ms"] for a in summary["accounts"] if "create_to_200_ms" in a]
        s2 = [a["started_to_200_ms"] for a in summary["accounts"] if "started_to_200_ms" in a]
        if c2:
            res["inproc_create_to_200_median_ms"] = round(statistics.median(c2), 3)
        if s2:
            res["inproc_started_to_200_median_ms"] = round(statistics.median(s2), 3)
    return res


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rtt = [x for r in runs for x in r.get("rtt_ms", [])]
    rates = [r["reg_per_s"] for r in runs if r.get("reg_per_s")]
    n = runs[0]["accounts"] if runs else 0
    return {
        "accounts": n, "rounds": len(runs),
        "registered": sum(r["registered"] for r in runs), "expected": n * len(runs),
        "rtt_median_ms": round(statistics.median(rtt), 3) if rtt else None,
        "rtt_p90_ms": round(pct(rtt, 0.9), 3) if rtt else None,
        "rtt_max_ms": round(max(rtt), 3) if rtt else None,
        "reg_per_s_median": round(statistics.median(rates), 1) if rates else None,
        "reg_per_s_rounds": rates,
        "span_s_rounds": [r.get("span_s") for r in runs],
        "round_rtt_medians_ms": [r.get("rtt_median_ms") for r in runs],
        # REGISTERs the registrar saw twice: the UA retransmitted (Timer E, 500 ms)
        "retransmissions": sum(r["kamailio"]["register_retransmissions"] for r in runs),
        "rtt_over_450ms": sum(1 for x in rtt if x > 450.0),
        "udp_rcvbuf_errors": sum(r.get("udp_rcvbuf_errors") or 0 for r in runs),
    }


def analyse_refresh(run: dict[str, Any], n: int) -> dict[str, Any]:
    """A softphone run kept alive past its refresh time, then SIGTERM."""
    first_ok: dict[str, float] = {}
    refreshing: dict[str, list[float]] = {}
    refreshed: dict[str, list[float]] = {}
    unregistered: dict[str, float] = {}
    other: dict[str, int] = {}
    for t, e in run["events"]:
        if e.get("event") != "registration":
            continue
        acc, state = e.get("account"), e.get("state")
        if state == "registered":
            if acc not in first_ok:
                first_ok[acc] = t
            elif acc in refreshing:
                refreshed.setdefault(acc, []).append(t)
        elif state == "refreshing":
            refreshing.setdefault(acc, []).append(t)
        elif state == "unregistered":
            unregistered[acc] = t
        elif state not in ("registering", "unregistering"):
            other[state] = other.get(state, 0) + 1
    starts = [ts[0] for ts in refreshing.values()]
    rtt = [(refreshed[a][0] - refreshing[a][0]) * 1000 for a in refreshed if a in refreshing]
    after_ok = [refreshing[a][0] - first_ok[a] for a in refreshing if a in first_ok]
    term = run.get("term_t")
    unreg = [t - term for t in unregistered.values()] if term else []
    return {
        "accounts": n, "registered": len(first_ok), "refreshed": len(refreshed),
        "refreshes": sum(len(v) for v in refreshing.values()),
        "refresh_after_s_median": round(statistics.median(after_ok), 3) if after_ok else None,
        "refresh_spread_s": round(max(starts) - min(starts), 3) if starts else None,
        "refresh_rtt_median_ms": round(statistics.median(rtt), 3) if rtt else None,
        "unregistered": len(unregistered),
        "unregister_last_s": round(max(unreg), 3) if unreg else None,
        "other_states": other, "rc": run.get("rc"),
    }


# =========================================================================== main


def main() -> int:
    p = argparse.ArgumentParser(description="REGISTER throughput and round trip, softphone vs pjsua2, "
                                            "through Kamailio on 127.0.0.1")
    p.add_argument("--accounts", type=int, default=200, help="accounts in one process (default 200)")
    p.add_argument("--rounds", type=int, default=8, help="runs of each peer (default 8)")
    p.add_argument("--peers", default="softphone,pjsua2")
    p.add_argument("--expires", type=int, default=60, help="reg_expires of the timed runs")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds a run may take to register")
    p.add_argument("--refresh-seconds", type=float, default=11.0,
                   help="the refresh run holds the registrations this long (0 = no refresh run)")
    p.add_argument("--refresh-expires", type=int, default=10, help="reg_expires of the refresh run")
    p.add_argument("--max-time", type=float, default=170.0, help="stop starting runs after this")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, configs)")
    args = p.parse_args()
    if shutil.which("kamailio") is None:
        print("registration.py: kamailio is not on PATH (Debian package kamailio)", file=sys.stderr)
        return 2
    peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    t_begin = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="bench-registration-"))
    kam = Kamailio(scratch, max(args.accounts, 1))
    report: dict[str, Any] = {"params": vars(args), "results": {}, "notes": []}

    def time_left() -> float:
        return args.max_time - (time.monotonic() - t_begin)

    def timed(peer: str, n: int) -> dict[str, Any]:
        kam.start()
        drops = udp_rcvbuf_errors()
        try:
            if peer == "softphone":
                run = run_softphone(kam, n, scratch, min(args.timeout, max(5.0, time_left())), args.expires)
            else:
                run = run_pjsua2(kam, n, scratch, min(args.timeout, max(5.0, time_left())), args.expires)
        finally:
            kam.stop()
        res = analyse(run, n)
        res["kamailio"] = kam.counts()
        after = udp_rcvbuf_errors()
        res["udp_rcvbuf_errors"] = after - drops if after is not None and drops is not None else None
        if res["registered"] != n:
            res["stderr_tail"] = run.get("stderr", "")[-600:]
        return res

    try:
        n_cmp = args.accounts
        if "pjsua2" in peers:
            probe = pjsua2_max_accounts(args.accounts, scratch)
            report["pjsua2_max_accounts"] = probe
            if probe["max"] <= 0:
                report["notes"].append(f"pjsua2 could not create an account: {probe}")
                peers.remove("pjsua2")
            elif probe["max"] < args.accounts:
                n_cmp = probe["max"]
                report["notes"].append(
                    f"this pjsua2 build holds at most {probe['max']} accounts per process "
                    f"(PJSUA_MAX_ACC; one more aborts: {probe['message'] or 'rc ' + str(probe['rc'])}): "
                    f"both peers are compared with {n_cmp} accounts")
        report["compare_accounts"] = n_cmp
        per_peer: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
        for _ in range(args.rounds):  # the peers alternate, so drifts hit both
            for peer in peers:
                if time_left() < 15:
                    break
                per_peer[peer].append(timed(peer, n_cmp))
        for peer, runs in per_peer.items():
            report["results"][f"{peer}:{n_cmp}"] = {"pooled": pool(runs), "runs": runs}
        if "softphone" in peers and n_cmp < args.accounts:
            runs = []
            for _ in range(args.rounds):
                if time_left() < 25:
                    break
                runs.append(timed("softphone", args.accounts))
            if runs:
                report["results"][f"softphone:{args.accounts}"] = {"pooled": pool(runs), "runs": runs}
        a, b = report["results"].get(f"softphone:{n_cmp}"), report["results"].get(f"pjsua2:{n_cmp}")
        if a and b:
            pa, pb = a["pooled"], b["pooled"]
            report["ratio"] = {
                "rtt_median": round(pa["rtt_median_ms"] / pb["rtt_median_ms"], 2)
                if pa["rtt_median_ms"] and pb["rtt_median_ms"] else None,
                "reg_per_s": round(pa["reg_per_s_median"] / pb["reg_per_s_median"], 2)
                if pa["reg_per_s_median"] and pb["reg_per_s_median"] else None,
            }
        if "softphone" in peers and args.refresh_seconds > 0:
            if time_left() > args.refresh_seconds + 20:
                kam.start()
                drops = udp_rcvbuf_errors()
                try:
                    run = run_softphone(kam, args.accounts, scratch, args.timeout, args.refresh_expires,
                                        hold=args.refresh_seconds)
                finally:
                    kam.stop()
                res = analyse_refresh(run, args.accounts)
                res["kamailio"] = kam.counts()
                after = udp_rcvbuf_errors()
                res["udp_rcvbuf_errors"] = after - drops if after is not None and drops is not None else None
                res["expires"] = args.refresh_expires
                res["held_s"] = args.refresh_seconds
                report["refresh"] = res
            else:
                report["notes"].append("refresh run skipped: not enough time left")
    finally:
        kam.stop()
        report["wall_s"] = round(time.monotonic() - t_begin, 1)
        if args.keep:
            report["scratch"] = str(scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    ok = all(r["pooled"]["registered"] == r["pooled"]["expected"] for r in report["results"].values())
    return 0 if ok else 1


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_report(r: dict[str, Any]) -> None:
    prm = r["params"]
    print(f"REGISTER with digest auth through Kamailio on 127.0.0.1: {prm['accounts']} accounts "
          f"in one process, {prm['rounds']} rounds, expires {prm['expires']} s")
    for note in r["notes"]:
        print("note:", note)
    print(f"{'peer:accounts':<16}{'ok':>10}{'reg/s':>9}{'RTT med':>10}{'p90':>9}{'max':>9}{'rexmit':>8}"
          f"{'>450ms':>8}{'drops':>7}")
    for name, res in r["results"].items():
        p = res["pooled"]
        meds = ", ".join(_f(x) for x in p["round_rtt_medians_ms"])
        rates = ", ".join(_f(x, "{:.0f}") for x in p["reg_per_s_rounds"])
        print(f"{name:<16}{p['registered']:>6}/{p['expected']:<3}{_f(p['reg_per_s_median'], '{:.0f}'):>9}"
              f"{_f(p['rtt_median_ms']):>10}{_f(p['rtt_p90_ms']):>9}{_f(p['rtt_max_ms']):>9}"
              f"{p['retransmissions']:>8}{p['rtt_over_450ms']:>8}{p['udp_rcvbuf_errors']:>7}")
        print(f"    rounds: RTT medians {meds} ms; reg/s {rates}")
        for run in res["runs"]:
            bad = run["registered"] != run["accounts"] or run["kamailio"]["auth_failed"] or (
                set(run["states"]) - {"registering", "registered", "unregistering", "unregistered"})
            if bad:
                print(f"    run: {run['registered']}/{run['accounts']} registered, states {run['states']}, "
                      f"rc {run['rc']}, kamailio {run['kamailio']}")
    for name, res in r["results"].items():
        tot: dict[str, int] = {}
        for run in res["runs"]:
            for key, value in run["kamailio"].items():
                tot[key] = tot.get(key, 0) + value
        if tot:
            print(f"kamailio, {name}, all rounds (unregistrations included): {tot['register_requests']} REGISTERs "
                  f"({tot['register_distinct']} distinct, {tot['register_retransmissions']} retransmissions), "
                  f"{tot['challenged_401']} challenged 401, {tot['location_saved']} saved, "
                  f"{tot['auth_failed']} refused credentials")
    for name, res in r["results"].items():
        st = [run.get("startup_s") for run in res["runs"] if run.get("startup_s") is not None]
        inproc = [run.get("inproc_started_to_200_median_ms") for run in res["runs"]
                  if run.get("inproc_started_to_200_median_ms") is not None]
        extra = f"; its own clock, onRegStarted->200 median {_f(statistics.median(inproc))} ms" if inproc else ""
        if st:
            print(f"{name}: process start -> first REGISTER median {_f(statistics.median(st), '{:.3f}')} s{extra}")
    if r.get("ratio"):
        print(f"ratio softphone/pjsua2 at {r['compare_accounts']} accounts: RTT median {_f(r['ratio']['rtt_median'])} "
              f"(>1 = softphone slower), reg/s {_f(r['ratio']['reg_per_s'])} (>1 = softphone faster)")
    ref = r.get("refresh")
    if ref:
        print(f"refresh run (softphone, {ref['accounts']} accounts, expires {ref['expires']} s, held "
              f"{ref['held_s']:g} s, then SIGTERM): {ref['registered']} registered, {ref['refreshed']} refreshed "
              f"({ref['refreshes']} refreshes) {_f(ref['refresh_after_s_median'])} s after registering, "
              f"all within {_f(ref['refresh_spread_s'], '{:.3f}')} s, refresh RTT median "
              f"{_f(ref['refresh_rtt_median_ms'])} ms; {ref['unregistered']} unregistered, the last "
              f"{_f(ref['unregister_last_s'], '{:.3f}')} s after SIGTERM; other states {ref['other_states']}, "
              f"rc {ref['rc']}; REGISTERs seen by kamailio {ref['kamailio']['register_requests']} "
              f"({ref['kamailio']['register_retransmissions']} retransmitted, "
              f"{ref['kamailio']['challenged_401']} challenged), UDP drops {ref['udp_rcvbuf_errors']}")
    print(f"wall time {r['wall_s']} s")


if __name__ == "__main__":
    sys.exit(main())
