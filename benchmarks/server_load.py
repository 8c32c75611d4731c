"""Loopback load on the server: N concurrent clients x M submissions on the tiny random model.

Prints throughput, p50/p95 API latency (submit and job lookup: generation excluded), lost jobs and
errors, and the ratio of each latency to a no-work baseline (GET /api/health) measured in the same run.

    .venv/bin/python benchmarks/server_load.py [--clients 50] [--requests 20] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "server")]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()

    import httpx
    import torch
    from server_helpers import TINY_CATALOG, TinyRun, live_server  # pyright: ignore[reportMissingImports]

    from sfumato.core.settings import Settings
    from sfumato.server import create_app

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(data_dir=Path(home) / "data")
        app = create_app(settings, run=TinyRun(settings), catalog=TINY_CATALOG, poll_seconds=0.05)
        with live_server(app) as base:
            baseline: list[float] = []
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(200):
                    start = time.perf_counter()
                    client.get("/api/health").raise_for_status()
                    baseline.append(time.perf_counter() - start)

            submit: list[float] = []
            lookup: list[float] = []
            errors: list[str] = []
            ids: list[str] = []
            lock = threading.Lock()

            def one_client(index: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as client:
                    for n in range(args.requests):
                        body = {
                            "request": {
                                "prompt": f"client {index} job {n}",
                                "seed": index * 1000 + n,
                                "width": 64,
                                "height": 64,
                                "steps": 2,
                                "sampler": "Euler",
                            }
                        }
                        try:
                            start = time.perf_counter()
                            answer = client.post("/api/jobs", json=body)
                            took = time.perf_counter() - start
                            if answer.status_code != 202:
                                raise RuntimeError(f"submit answered {answer.status_code}")
                            job_id = answer.json()["id"]
                            start = time.perf_counter()
                            client.get(f"/api/jobs/{job_id}").raise_for_status()
                            looked = time.perf_counter() - start
                            with lock:
                                submit.append(took)
                                lookup.append(looked)
                                ids.append(job_id)
                        except Exception as error:
                            with lock:
                                errors.append(f"{type(error).__name__}: {error}")

            began = time.perf_counter()
            threads = [threading.Thread(target=one_client, args=(i,)) for i in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            submitted_in = time.perf_counter() - began

            states: dict[str, str] = {}
            with httpx.Client(base_url=base, timeout=60) as client:
                deadline = began + args.max_seconds
                while time.perf_counter() < deadline:
                    jobs = client.get("/api/jobs", params={"limit": 1000}).json()
                    jobs += client.get("/api/jobs", params={"limit": 1000, "offset": 1000}).json()
                    states = {job["id"]: job["state"] for job in jobs}
                    if all(states.get(i) in ("finished", "failed", "cancelled") for i in ids):
                        break
                    time.sleep(0.5)
            elapsed = time.perf_counter() - began

    finished = sum(1 for i in ids if states.get(i) == "finished")
    failed = sum(1 for i in ids if states.get(i) in ("failed", "cancelled"))
    missing = sum(1 for i in ids if i not in states)
    unfinished = len(ids) - finished - failed - missing
    base_p50 = statistics.median(baseline)
    print(
        f"clients x requests: {args.clients} x {args.requests} = {args.clients * args.requests} submissions"
    )
    print(f"accepted: {len(ids)} in {submitted_in:.1f} s ({len(ids) / submitted_in:.0f} submissions/s)")
    print(f"generated: {finished} pictures in {elapsed:.1f} s ({finished / elapsed:.2f} jobs/s end to end)")
    print(
        f"baseline GET /api/health: p50 {base_p50 * 1000:.1f} ms, p95 {_percentile(baseline, 0.95) * 1000:.1f} ms"
    )
    for name, values in (("submit POST /api/jobs", submit), ("lookup GET /api/jobs/{id}", lookup)):
        p50, p95 = statistics.median(values), _percentile(values, 0.95)
        print(
            f"{name}: p50 {p50 * 1000:.1f} ms ({p50 / base_p50:.1f}x baseline), "
            f"p95 {p95 * 1000:.1f} ms ({p95 / base_p50:.1f}x baseline)"
        )
    print(f"lost jobs: {missing} missing, {unfinished} unfinished at the time bound; failed: {failed}")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()
