"""Throughput of the Ray backend with one and with two workers (actors), on the shipped demo model.

Starts a local Ray with two CPUs, runs the same batch of jobs through the server's queue with one Ray
worker (the baseline, before and after, to see the machine's drift) and with two, each after a warm-up job per worker (model load), and prints
pictures per second and the ratio of two workers to one, measured in the same run. On a machine with
two cores the ratio cannot pass 2; other load on the machine lowers it.

    .venv/bin/python benchmarks/ray_throughput.py [--jobs 8] [--steps 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.backends import add_workers
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.store_sqlite import SqliteJobStore


def pictures_per_second(workers: int, jobs: int, steps: int, folder: Path) -> float:
    settings = Settings(data_dir=folder / f"workers-{workers}", ray_workers=workers)
    queue = JobQueue(SqliteJobStore(settings.data_dir / "jobs.sqlite"))
    pool = add_workers(queue, settings, "auto", poll_seconds=0.02)
    assert pool is not None
    queue.start()
    try:

        def run(seeds: range) -> None:
            ids = [
                queue.submit(GenerationRequest(prompt="a red circle at the top left", seed=s, steps=steps)).id
                for s in seeds
            ]
            for job_id in ids:
                job = queue.wait(job_id, timeout=900)
                assert job.state.value == "finished", job.error

        run(range(workers))  # one warm-up job per worker: Ray starts it and it loads the model
        started = time.perf_counter()
        run(range(100, 100 + jobs))
        return jobs / (time.perf_counter() - started)
    finally:
        queue.stop()
        pool.close()


def main() -> None:
    import ray  # pyright: ignore[reportMissingImports]

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            before = pictures_per_second(1, args.jobs, args.steps, Path(folder) / "before")
            two = pictures_per_second(2, args.jobs, args.steps, Path(folder))
            after = pictures_per_second(1, args.jobs, args.steps, Path(folder) / "after")
    finally:
        ray.shutdown()
    one = (before + after) / 2
    print(f"1 Ray worker : {before:.3f} then {after:.3f} pictures/s (baseline: their mean, {one:.3f})")
    print(f"2 Ray workers: {two:.3f} pictures/s")
    print(f"ratio 2/1    : {two / one:.2f}")


if __name__ == "__main__":
    main()
