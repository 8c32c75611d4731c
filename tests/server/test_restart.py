"""A server killed hard mid-job loses nothing: every job is accounted for, finished pictures intact."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from server_helpers import free_port

pytestmark = pytest.mark.timeout(400)


def _start(data: Path, port: int, delay: float) -> subprocess.Popen[bytes]:
    script = Path(__file__).parent / "serve_tiny.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script), str(data), str(port), str(delay)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the server did not come up")


def _job(base: str, job_id: str) -> dict:
    return httpx.get(f"{base}/api/jobs/{job_id}", timeout=10).json()


def _wait(condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_jobs_survive_a_hard_kill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(data, port, delay=0.15)
    try:
        ids = []
        for seed in (1, 2, 3):
            body = {
                "request": {
                    "prompt": f"job {seed}",
                    "seed": seed,
                    "width": 64,
                    "height": 64,
                    "steps": 8,
                    "sampler": "Euler",
                }
            }
            answer = httpx.post(f"{base}/api/jobs", json=body, timeout=10)
            assert answer.status_code == 202
            ids.append(answer.json()["id"])
        _wait(lambda: _job(base, ids[0])["state"] == "finished" and _job(base, ids[1])["state"] == "running")
        first = _job(base, ids[0])
        picture = Path(first["images"][0]["path"])
        digest = hashlib.sha256(picture.read_bytes()).hexdigest()
        server.send_signal(signal.SIGKILL)
        server.wait(30)

        server = _start(data, port, delay=0.0)
        _wait(lambda: all(_job(base, i)["state"] in ("finished", "failed", "cancelled") for i in ids))
        jobs = [_job(base, i) for i in ids]
        assert [j["state"] for j in jobs] == ["finished", "finished", "finished"]
        assert jobs[1]["attempts"] == 2 and "Resumed" in jobs[1]["notes"][0]
        assert jobs[2]["attempts"] == 1
        assert hashlib.sha256(picture.read_bytes()).hexdigest() == digest
        with Image.open(picture) as image:
            image.load()
            assert image.size == (64, 64) and "Seed: 1" in image.info["parameters"]
        for job in jobs:
            assert Path(job["images"][0]["path"]).is_file()
        listed = httpx.get(f"{base}/api/jobs", timeout=10).json()
        assert {j["id"] for j in listed} == set(ids)
    finally:
        server.kill()
        server.wait(30)
