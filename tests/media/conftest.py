"""Media-quality fixtures: an impaired link between two network namespaces, speech, PESQ.

impaired_namespaces
    Two namespaces joined by a veth pair (10.0.0.1/24 and 10.0.0.2/24, lo up).
    Every packet leaving either side through the veth goes to an NFQUEUE served
    by tests/media/impairer.py in that namespace: delay +- jitter, random loss.
    Parameters come from ``@pytest.mark.impairment(delay_ms=40, jitter_ms=20,
    loss_pct=5, keep_order=False, engine="nfqueue")``; engine="nft" gives loss
    only, in the kernel (nftables ``numgen random``).  Namespaces, rules and
    impairers are removed at teardown, always.  Needs root: skipped otherwise,
    failed when CI is set.

speech_wav
    A few sentences from espeak-ng, 16 kHz mono, made once per session.

pesq_score(reference_wav, degraded_wav, rate)
    PESQ MOS-LQO of what was received against what was sent: both resampled to
    `rate` (8000 -> 'nb', 16000 -> 'wb'), the reference (looped, as the file
    source plays it) aligned with the recording by cross-correlation.

longest_dropout_ms(reference, degraded, rate)
    The longest stretch where the reference has speech but the degraded signal
    is silent.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _stop_popen, read_wav, write_wav

IMPAIRER = Path(__file__).resolve().parent / "impairer.py"

SPEECH_TEXT = (
    "The birch canoe slid on the smooth planks. "
    "Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well."
)

IMPAIRMENT_DEFAULTS = {"delay_ms": 40.0, "jitter_ms": 20.0, "loss_pct": 5.0,
                       "keep_order": False, "engine": "nfqueue", "lifetime_s": 300.0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "impairment(delay_ms, jitter_ms, loss_pct, keep_order, engine): "
        "parameters of the impaired_namespaces fixture",
    )


# =========================================================================== namespaces


def _require_root(what: str) -> None:
    if os.geteuid() == 0:
        return
    reason = f"{what} needs root"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: these tests must run in CI", pytrace=False)
    pytest.skip(f"{reason} (run as root, or set CI to make this a failure)")


def _run(*cmd: str, check: bool = True, timeout: float = 15,
         stdin_text: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False,
                       input=stdin_text, stdin=None if stdin_text is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc={r.returncode} {r.stderr.strip()}")
    return r


_counter = [0]
_counter_lock = threading.Lock()


@dataclass
class ImpairedLink:
    """Two namespaces and the impairment between them."""

    ns_a: str
    ns_b: str
    dev_a: str
    dev_b: str
    ip_a: str = "10.0.0.1"
    ip_b: str = "10.0.0.2"
    delay_ms: float = 40.0
    jitter_ms: float = 20.0
    loss_pct: float = 5.0
    keep_order: bool = False
    engine: str = "nfqueue"
    impairers: dict[str, subprocess.Popen] = field(default_factory=dict)
    impairer_stats: dict[str, dict] = field(default_factory=dict)
    rules: list[tuple[str, list[str]]] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def namespaces(self) -> tuple[str, str]:
        return self.ns_a, self.ns_b

    def run(self, ns: str, *cmd: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        """`cmd` inside namespace `ns`, output captured."""
        return _run("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def stop_impairers(self, timeout: float = 5.0) -> dict[str, dict]:
        """Stop the impairers (SIGTERM by PID) and return their counters per namespace."""
        for ns, proc in list(self.impairers.items()):
            _stop_popen(proc, timeout, signal.SIGTERM)
            out = proc.stdout.read() if proc.stdout else ""
            if proc.stdout:
                proc.stdout.close()
            for line in out.splitlines():
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("done"):
                    self.impairer_stats[ns] = msg
            del self.impairers[ns]
        return self.impairer_stats


def _marker_params(request: pytest.FixtureRequest) -> dict[str, Any]:
    params = dict(IMPAIRMENT_DEFAULTS)
    marker = request.node.get_closest_marker("impairment")
    if marker is not None:
        unknown = set(marker.kwargs) - set(params)
        if unknown:
            raise ValueError(f"unknown impairment parameters {sorted(unknown)}")
        params.update(marker.kwargs)
    if getattr(request, "param", None):
        params.update(request.param)
    return params


def _start_impairer(link: ImpairedLink, ns: str, queue: int, lifetime_s: float) -> None:
    cmd = ["ip", "netns", "exec", ns, sys.executable, str(IMPAIRER), "--queue", str(queue),
           "--delay", str(link.delay_ms), "--jitter", str(link.jitter_ms),
           "--loss", str(link.loss_pct), "--seconds", str(lifetime_s)]
    if link.keep_order:
        cmd.append("--keep-order")
    assert link.workdir is not None
    err = open(link.workdir / f"impairer-{ns}.err", "wb")
    # `ip netns exec` execs the program: this PID is the impairer itself
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                            text=True)
    err.close()
    link.impairers[ns] = proc
    assert proc.stdout is not None
    line = proc.stdout.readline()  # {"ready": true} once bound to the queue
    if '"ready"' not in line:
        raise RuntimeError(f"impairer in {ns} did not start: "
                           f"{(link.workdir / f'impairer-{ns}.err').read_text(errors='replace')}")


def _add_rule(link: ImpairedLink, ns: str, rule: list[str]) -> None:
    _run("ip", "netns", "exec", ns, "iptables", "-A", *rule)
    link.rules.append((ns, rule))


def _nft_loss(link: ImpairedLink, ns: str, dev: str) -> None:
    script = (
        "table inet spimpair {\n"
        "  chain out {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f'    oifname "{dev}" numgen random mod 100 < {int(round(link.loss_pct))} counter drop\n'
        "  }\n"
        "}\n"
    )
    _run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin_text=script)
    link.rules.append((ns, ["nft"]))


def _teardown(link: ImpairedLink) -> None:
    for ns, rule in reversed(link.rules):
        if rule == ["nft"]:
            _run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "spimpair", check=False)
        else:
            _run("ip", "netns", "exec", ns, "iptables", "-D", *rule, check=False)
    link.rules.clear()
    link.stop_impairers()
    for ns in (link.ns_a, link.ns_b):
        _run("ip", "netns", "del", ns, check=False)


@pytest.fixture
def impaired_namespaces(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImpairedLink]:
    """Two namespaces 10.0.0.1 <-> 10.0.0.2 with delay, jitter and loss both ways."""
    _require_root("network namespaces")
    for tool in ("ip", "iptables") + (("nft",) if _marker_params(request)["engine"] == "nft" else ()):
        if shutil.which(tool) is None:
            msg = f"{tool} is not installed"
            if os.environ.get("CI"):
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
    p = _marker_params(request)
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    tag = f"{os.getpid() % 100000}{n}"
    link = ImpairedLink(ns_a=f"spimp-a-{tag}", ns_b=f"spimp-b-{tag}", dev_a=f"spia{tag}"[:15],
                        dev_b=f"spib{tag}"[:15], delay_ms=float(p["delay_ms"]),
                        jitter_ms=float(p["jitter_ms"]), loss_pct=float(p["loss_pct"]),
                        keep_order=bool(p["keep_order"]), engine=str(p["engine"]), workdir=tmp_path)
    try:
        _run("ip", "netns", "add", link.ns_a)
        _run("ip", "netns", "add", link.ns_b)
        _run("ip", "link", "add", link.dev_a, "netns", link.ns_a, "type", "veth",
             "peer", "name", link.dev_b, "netns", link.ns_b)
        for ns, dev, ip in ((link.ns_a, link.dev_a, link.ip_a), (link.ns_b, link.dev_b, link.ip_b)):
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "link", "set", dev, "up")
        for ns, dev in ((link.ns_a, link.dev_a), (link.ns_b, link.dev_b)):
            if link.engine == "nft":
                _nft_loss(link, ns, dev)
                continue
            if link.engine != "nfqueue":
                raise ValueError(f"engine must be 'nfqueue' or 'nft', not {link.engine!r}")
            _start_impairer(link, ns, 0, float(p["lifetime_s"]))
            # --queue-bypass: should the impairer die, packets flow unimpaired
            _add_rule(link, ns, ["OUTPUT", "-o", dev, "-j", "NFQUEUE", "--queue-num", "0",
                                 "--queue-bypass"])
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        _teardown(link)
        if os.environ.get("CI"):
            pytest.fail(f"cannot build the impaired namespaces: {exc}", pytrace=False)
        pytest.skip(f"cannot build the impaired namespaces: {exc}")
    try:
        yield link
    finally:
        _teardown(link)


# =========================================================================== signal tools


def resample(x: Any, src_rate: int, dst_rate: int) -> Any:
    """Band-limited resampling of a whole signal (FFT: truncate or zero-pad the spectrum)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    n_out = int(round(x.size * dst_rate / src_rate))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    if keep <= spec.size:
        spec = spec[:keep]
    else:
        spec = np.concatenate([spec, np.zeros(keep - spec.size, dtype=spec.dtype)])
    return np.fft.irfft(spec, n_out) * (n_out / x.size)


def align(reference: Any, degraded: Any, looped: bool = True) -> tuple[Any, Any, int]:
    """The stretch of `reference` that `degraded` carries, found by cross-correlation.

    looped=True: the sender played the reference in a loop (the file source's
    default), so the recording may start and end anywhere in it; the reference
    is repeated to cover the recording.  looped=False: one copy, possibly with
    silence before or after it.  Returns (ref, deg, offset), both of the
    recording's length, ref[i] matching deg[i]; offset is where the recording
    starts in the (repeated, or zero-padded) reference.
    """
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    deg = np.asarray(degraded, dtype=np.float64)
    if looped:
        ext = np.tile(ref, -(-(deg.size + ref.size) // ref.size) + 1)
        offsets = ref.size
    else:
        ext = np.concatenate([np.zeros(deg.size), ref, np.zeros(deg.size)])
        offsets = deg.size + ref.size
    size = 1 << (ext.size + deg.size - 1).bit_length()
    # corr[o] = sum_i deg[i] * ext[i + o]
    corr = np.fft.irfft(np.fft.rfft(ext, size) * np.conj(np.fft.rfft(deg, size)), size)
    offset = int(np.argmax(corr[:offsets]))
    return ext[offset:offset + deg.size], deg, offset


def pesq_score(reference_wav: str | os.PathLike, degraded_wav: str | os.PathLike,
               rate: int = 8000, *, looped: bool = True, skip_s: float = 0.5) -> float:
    """PESQ MOS-LQO of a recording against the reference it carries.

    rate 8000 -> narrow-band ('nb'), 16000 -> wide-band ('wb').  Both files are
    resampled to `rate` and aligned (see align); the first `skip_s` of the
    recording (call set-up) are left out.
    """
    from pesq import pesq

    if rate not in (8000, 16000):
        raise ValueError("PESQ works at 8000 ('nb') or 16000 ('wb') Hz")
    ref, ref_rate = read_wav(reference_wav)
    deg, deg_rate = read_wav(degraded_wav)
    ref = resample(ref, ref_rate, rate)
    deg = resample(deg, deg_rate, rate)[int(skip_s * rate):]
    if deg.size < rate:
        raise AssertionError(f"{degraded_wav}: only {deg.size / rate:.2f} s of audio after {skip_s} s")
    ref, deg, _offset = align(ref, deg, looped)
    try:
        return float(pesq(rate, ref, deg, "nb" if rate == 8000 else "wb"))
    except Exception as exc:  # pesq raises its own errors (no utterances, ...)
        raise AssertionError(f"PESQ failed on {degraded_wav}: {type(exc).__name__}: {exc}") from None


def longest_dropout_ms(reference: Any, degraded: Any, rate: int, frame_ms: float = 10.0,
                       jitter_ms: float = 10.0, active_db: float = -30.0,
                       silent_db: float = -45.0) -> float:
    """The longest stretch (ms) of speech the degraded signal lost in one piece.

    Frames of `frame_ms`: a reference frame is speech when it is within `active_db`
    of the reference's loudest frame; a degraded frame is silent when every frame
    within +-`jitter_ms` is `silent_db` below the degraded signal's loudest frame
    (audio played a little early or late is not a dropout).  For each stretch of
    degraded silence, the span from its first to its last speech frame counts, so
    natural pauses the degraded signal reproduces count for nothing.  Align the
    signals first (see align).
    """
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    deg = np.asarray(degraded, dtype=np.float64)
    hop = max(1, int(rate * frame_ms / 1000))
    n = min(ref.size, deg.size) // hop
    if n == 0:
        return 0.0

    def levels(x: Any) -> Any:
        e = np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-9
        return 20 * np.log10(e / e.max())

    k = int(jitter_ms / frame_ms)
    padded = np.pad(levels(deg), k, constant_values=-200.0)
    silent = np.max(np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1), axis=1) < silent_db
    speech = levels(ref) > active_db
    longest, first, last = 0, -1, -1
    for i in range(n + 1):
        if i < n and silent[i]:
            if speech[i]:
                first = i if first < 0 else first
                last = i
            continue
        if first >= 0:
            longest = max(longest, last - first + 1)
        first = last = -1
    return float(longest * hop * 1000 / rate)


# =========================================================================== speech


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 8 s of English sentences (espeak-ng), 16 kHz mono 16-bit, made once."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        msg = "espeak-ng is not installed (Debian package espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    import numpy as np

    d = tmp_path_factory.mktemp("speech")
    raw = d / "espeak.wav"
    subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(raw), SPEECH_TEXT], check=True,
                   capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    x, rate = read_wav(raw)
    x = resample(x, rate, 16000)
    # trim leading/trailing silence, keep 0.2 s margins, normalise to -3 dBFS peak
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    x = x[max(0, loud[0] - 3200):loud[-1] + 3200]
    x = x / np.abs(x).max() * 0.7 * 32767
    return write_wav(d / "speech16k.wav", x.astype(np.int16), 16000)


def wait_for(cond: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
