"""benchmarks/gpu.py waits for a lent GPU; its --smoke mode keeps it runnable until then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def test_the_gpu_benchmark_runs_on_tiny_models(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert [(row["engine"], row["batch"]) for row in rows] == [
        ("diffusers", 1),
        ("sfumato", 1),
        ("diffusers", 2),
        ("sfumato", 2),
        ("sfumato medvram", 1),
        ("sfumato lowvram", 1),
    ]
    assert all(row["its"] > 0 and row["seconds_per_picture"] > 0 for row in rows)
    assert "sfumato / diffusers time" in done.stdout and "failed" not in done.stdout
