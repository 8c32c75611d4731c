"""Does Sfumato Studio's window stay responsive while the engine works?

Starts the studio offscreen over the real engine and the built-in model, and measures the Qt event
loop's stalls (the gaps between ticks of a 5 ms timer) twice in the same run: while idle (the
baseline) and while a generation job runs in the studio's worker thread, with its progress and
previews arriving, the first job loading the model. A stall over 50 ms is a hitch a user feels
when painting or scrolling. The engine's libraries are imported first, as the app does behind
its splash screen (importing them in the worker would hold the GIL for up to ~0.8 s at a time).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/app_responsiveness.py [--steps 30] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

TICK_MS = 5
LIMIT_MS = 50.0


def gaps_while(app: object, busy: object, seconds: float | None = None) -> list[tuple[float, float]]:
    """(when, milliseconds) between timer ticks until ``busy()`` is false (or ``seconds`` passed)."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication) and callable(busy)
    clock = QElapsedTimer()
    clock.start()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    timer.start()
    start = time.monotonic()
    while busy() and (seconds is None or time.monotonic() - start < seconds):
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return [(b / 1000, b - a) for a, b in itertools.pairwise(ticks)]


def summary(name: str, timed: list[tuple[float, float]]) -> str:
    gaps = [gap for _, gap in timed]
    if not gaps:
        return f"{name:<30} no ticks"
    ordered = sorted(gaps)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
    over = sum(g > LIMIT_MS for g in gaps)
    return f"{name:<30} ticks {len(gaps):5d}  median {ordered[len(ordered) // 2]:6.1f} ms  p99 {p99:6.1f} ms  max {max(gaps):6.1f} ms  over {LIMIT_MS:.0f} ms: {over}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Event-loop stalls of the studio while a job runs.")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("SFUMATO_DATA_DIR", tempfile.mkdtemp(prefix="sfumato-bench-"))
    os.environ.setdefault("SFUMATO_CONFIG", str(Path(os.environ["SFUMATO_DATA_DIR"]) / "none.toml"))

    from PySide6.QtWidgets import QApplication

    from sfumato.core.settings import Settings
    from sfumato.desktop.app import build_window
    from sfumato.jobs.warm_up import import_engine

    app = QApplication([])
    warm_up = import_engine()  # as the app does behind its splash screen
    window = build_window(Settings(preview_every=1))
    window.show()
    idle = gaps_while(app, lambda: True, seconds=2.0)
    window.studio.prompt.update(
        prompt="a red circle at the top left on a blue background", steps=args.steps, batch_size=2
    )
    ids = [window.generate() for _ in range(args.jobs)]
    jobs = window.studio.jobs.jobs
    first_step: list[float] = []
    clock_start = time.monotonic()
    window.studio.jobs.subscribe(
        lambda job_id: (
            first_step.append(time.monotonic() - clock_start) if jobs[job_id].fraction > 0 else None
        )
    )
    started = time.monotonic()
    busy = gaps_while(
        app, lambda: any(jobs[i].state not in ("finished", "failed", "cancelled") for i in ids if i)
    )
    elapsed = time.monotonic() - started
    states = [jobs[i].state for i in ids if i]
    window.bridge.stop()
    print(f"engine imported before the window: {warm_up:.1f} s")
    print(
        f"{args.jobs} job(s) of {args.steps} steps x 2 pictures, previews every step: {elapsed:.1f} s, {states}"
    )
    loaded = first_step[0] if first_step else elapsed
    loading = [(t, gap) for t, gap in busy if t <= loaded]
    drawing = [(t, gap) for t, gap in busy if t > loaded]
    print(summary("idle", idle))
    print(summary("loading the model (first job)", loading))
    print(summary("drawing", drawing))
    worst = max(gap for _, gap in drawing) if drawing else 0.0
    idle_worst = max(gap for _, gap in idle)
    print(
        f"worst stall while drawing / idle: {worst / idle_worst:.2f}x; "
        f"under {LIMIT_MS:.0f} ms while drawing: {'yes' if worst < LIMIT_MS else 'NO'}"
    )


if __name__ == "__main__":
    main()
