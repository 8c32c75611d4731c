"""benchmarks/cpu_speed.py keeps running: its --smoke mode on tiny models prints every side's ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_speed.py"


def test_the_cpu_speed_benchmark_runs_on_tiny_models() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--no-demo", "--steps", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "diffusers fp32 / this" in line]
    assert [line.split("  ")[0].strip() for line in lines] == [
        "diffusers fp32",
        "sfumato fp32",
        "sfumato bf16",
    ]
    # Sfumato's fp32 path draws diffusers' pixels
    assert "mean |diff| 0.00 max 0" in lines[0]
