"""A call's per-second figures are kept only when a report will draw them."""
from __future__ import annotations

import asyncio

from softphone.media.quality import QualityMonitor


def _run(keep: bool) -> QualityMonitor:
    async def run() -> QualityMonitor:
        monitor = QualityMonitor(interval=0.02)
        monitor.keep_history = keep
        monitor.start(lambda: (None, None))
        await asyncio.sleep(0.2)
        await monitor.stop()
        return monitor

    return asyncio.run(run())


def test_without_a_report_only_the_latest_sample_is_kept() -> None:
    monitor = _run(keep=False)
    assert monitor.latest() is not None and len(monitor.history) == 0


def test_with_a_report_every_sample_is_kept() -> None:
    monitor = _run(keep=True)
    assert len(monitor.history) >= 3 and monitor.latest() is monitor.history[-1]
