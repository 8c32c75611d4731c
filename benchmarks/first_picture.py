"""From command to saved picture on the built-in model: where a fresh `sfumato generate` spends its time.

Runs the README's first command (`sfumato generate PROMPT`, JSON output, a temporary output folder)
``--runs`` times in fresh processes and, in the same run, `python -c "import torch"` as the
baseline every Python program that uses torch pays. Prints, per run and as medians:

- wall time from command to saved picture, and its ratio to `import torch`;
- the job's own phases as the command reports them (model load, prompt encode, denoise, decode,
  save and index) and what is left: the interpreter, imports, argument parsing and settings;
- which packages the imports spend it in (one extra run under `python -X importtime`);
- the time of each further picture in one process (the server's and a batch's case), after a
  first picture in that process.

    .venv/bin/python benchmarks/first_picture.py [--runs 5] [--further 5]

Goals (issue 12): <= 3 s wall for the first picture on an idle machine, <= 0.5 s each further one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle at the top left on a blue background"
PHASES = ("model load", "prompt encode", "denoise", "decode", "save and index")
CLI = "from sfumato.cli.main import main; main()"


def environment(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env |= {"SFUMATO_DATA_DIR": str(folder / "data"), "SFUMATO_CONFIG": str(folder / "config.toml")}
    return env


def fresh_picture(folder: Path, seed: int) -> tuple[float, dict[str, float]]:
    """Wall seconds of one `sfumato generate` in a new process, and the phases it reports."""
    command = [sys.executable, "-c", CLI, "generate", PROMPT, "--seed", str(seed), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, env=environment(folder), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sfumato generate failed ({done.returncode}):\n{done.stderr}")
    report = json.loads(done.stdout)
    if not Path(report["images"][0]["file"]).is_file():
        raise SystemExit("sfumato generate reported a picture that is not there")
    return wall, report["timings"]


def import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def imports_by_package(folder: Path) -> dict[str, float]:
    """Seconds of import per top-level package, from one run under -X importtime."""
    command = [sys.executable, "-X", "importtime", "-c", CLI, "generate", PROMPT, "--seed", "1", "--json"]
    done = subprocess.run(command, env=environment(folder), capture_output=True, text=True, check=True)
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith("  ") or not cumulative.strip().isdigit():
            continue  # nested: already counted in the top-level import that pulled it in
        package = name.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(cumulative) / 1e6
    return totals


def further_pictures(folder: Path, count: int) -> list[float]:
    """Seconds per picture after the first, in one process with the model loaded (as the server runs)."""
    os.environ |= environment(folder)
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.jobs.runner import run_request
    from sfumato.models.loading import load_model

    settings = Settings()
    components = load_model(settings, None)
    run_request(settings, GenerationRequest(prompt=PROMPT, seed=0), components=components)
    seconds = []
    for seed in range(1, count + 1):
        start = time.perf_counter()
        run_request(settings, GenerationRequest(prompt=PROMPT, seed=seed), components=components)
        seconds.append(time.perf_counter() - start)
    return seconds


def settings_seconds() -> float:
    from sfumato.core.settings import Settings

    start = time.perf_counter()
    Settings()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Where a fresh `sfumato generate` spends its time.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--further", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sfumato-first-picture-") as tmp:
        folder = Path(tmp)
        fresh_picture(folder, 0)  # warms the OS file cache, as a second command after install would be
        walls: list[float] = []
        torches: list[float] = []
        phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
        for run in range(args.runs):
            torches.append(import_torch())
            wall, timings = fresh_picture(folder, run + 1)
            walls.append(wall)
            for phase in PHASES:
                phases[phase].append(timings.get(phase, 0.0))
            print(f"run {run + 1}: {wall:.2f} s wall, import torch {torches[-1]:.2f} s", flush=True)
        packages = imports_by_package(folder)
        further = further_pictures(folder, args.further)
        settings = settings_seconds()

    wall = statistics.median(walls)
    torch_s = statistics.median(torches)
    job = {phase: statistics.median(values) for phase, values in phases.items()}
    rest = wall - sum(job.values())
    print(f"\nfirst picture, fresh process (median of {args.runs}):   {wall:6.2f} s   (goal <= 3 s)")
    print(f"  python -c 'import torch' in the same run:     {torch_s:6.2f} s   ratio {wall / torch_s:.2f}x")
    print(
        f"  interpreter, imports, arguments, settings:   {rest:6.2f} s   (Settings() itself {settings:.3f} s)"
    )
    for phase, seconds in job.items():
        print(f"  {phase + ':':<44}{seconds:6.2f} s")
    print("imports by package (one run under -X importtime, which adds its own overhead):")
    for package, seconds in sorted(packages.items(), key=lambda item: -item[1])[:8]:
        print(f"  {package:<44}{seconds:6.2f} s")
    print(
        f"further pictures in one process (median of {len(further)}): "
        f"{statistics.median(further):.3f} s each   (goal <= 0.5 s)"
    )


if __name__ == "__main__":
    main()
