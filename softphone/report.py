"""``--report FILE.png``: a call's quality over time, drawn with matplotlib.

One panel each, over the seconds of the call: bitrate (sent and received, per stream),
packet loss, jitter, round-trip time, the MOS estimate of the audio and, when video ran,
the decoded frame rate. matplotlib is imported only here, only when a report is written,
with its Agg back end and without pyplot (so a report can be drawn off the event loop).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from softphone.errors import UsageError
from softphone.rtp.quality import QualitySample, StreamQuality

log = logging.getLogger(__name__)

PANEL_HEIGHT_IN = 1.9
WIDTH_IN = 11.0
DPI = 100
COLORS = {("audio", "tx"): "tab:blue", ("audio", "rx"): "tab:orange",
          ("video", "tx"): "tab:green", ("video", "rx"): "tab:red"}
MOS_COLOR = "tab:purple"
FPS_COLOR = "tab:brown"

Getter = Callable[[StreamQuality], float | None]


def check_report_path(text: str) -> Path:
    """The ``--report`` argument, checked before the call: a .png in a folder that exists."""
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise UsageError(f"--report writes a PNG image: give a file name ending in .png, not {text!r}")
    if not path.parent.is_dir():
        raise UsageError(f"--report {text}: the folder {str(path.parent)!r} does not exist")
    return path


def numbered(path: Path, index: int) -> Path:
    """The report of the ``index``-th call (from 1) of ``answer``: FILE.png, FILE-2.png ..."""
    return path if index <= 1 else path.with_name(f"{path.stem}-{index}{path.suffix}")


def _series(samples: Sequence[QualitySample], kind: str, get: Getter) -> list[float]:
    values = []
    for sample in samples:
        stream = sample.audio if kind == "audio" else sample.video
        value = get(stream) if stream is not None else None
        values.append(math.nan if value is None else float(value))
    return values


def _has_data(values: Sequence[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def _panels(samples: Sequence[QualitySample]) -> list[tuple[str, list[tuple[str, str, list[float]]]]]:
    """(title, [(label, color, values)]) for each panel, in order."""
    kinds = [k for k in ("audio", "video") if any((s.audio if k == "audio" else s.video) is not None for s in samples)]
    bitrate = []
    for kind in kinds:
        bitrate.append((f"{kind} sent", COLORS[(kind, "tx")], _series(samples, kind, lambda q: q.tx_kbps)))
        bitrate.append((f"{kind} received", COLORS[(kind, "rx")], _series(samples, kind, lambda q: q.rx_kbps)))
    per_stream: list[tuple[str, Getter]] = [
        ("packet loss (%)", lambda q: q.loss_pct),
        ("jitter (ms)", lambda q: q.jitter_ms),
        ("round-trip time (ms)", lambda q: q.rtt_ms),
    ]
    panels = [("bitrate (kbit/s)", bitrate)]
    for title, get in per_stream:
        panels.append((title, [(kind, COLORS[(kind, "rx")], _series(samples, kind, get)) for kind in kinds]))
    panels.append(("MOS estimate (ITU-T G.107)", [("audio", MOS_COLOR, _series(samples, "audio", lambda q: q.mos))]))
    if "video" in kinds:
        panels.append(("video frame rate (fps)", [("decoded", FPS_COLOR, _series(samples, "video", lambda q: q.fps))]))
    return panels


def write_report(path: str | Path, samples: Sequence[QualitySample], title: str = "") -> Path:
    """Draw ``samples`` (one a second) into the PNG at ``path``; the path written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = Path(path)
    panels = _panels(samples)
    times = [s.at for s in samples]
    figure = Figure(figsize=(WIDTH_IN, PANEL_HEIGHT_IN * len(panels)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, lines) in zip(axes, panels, strict=True):
        _draw_panel(ax, name, times, lines)
    axes[-1].set_xlabel("seconds since the media started")
    if title:
        figure.suptitle(title)
    figure.savefig(target, format="png")
    log.info("call report written to %s (%d samples)", target, len(samples))
    return target


def _draw_panel(ax: Any, name: str, times: Sequence[float], lines: Sequence[tuple[str, str, list[float]]]) -> None:
    ax.set_title(name, loc="left", fontsize="medium")
    ax.grid(True, color="0.88", linewidth=0.6)
    drawn = False
    for label, color, values in lines:
        if _has_data(values):
            ax.plot(times, values, color=color, label=label, linewidth=1.6, marker=".", markersize=4)
            drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
    else:
        # beside the panel, not over the curves
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", frameon=False)
    if name.startswith("MOS"):
        ax.set_ylim(1.0, 4.6)


__all__ = ["check_report_path", "numbered", "write_report"]
