"""Jobs on a local Ray started by the test, two actors: jobs spread across both; an actor killed
mid-job loses it to the other, and the archive holds each job's picture exactly once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sfumato.archive.index import ArchiveIndex
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.backends import add_workers
from sfumato.jobs.events import JobEvent, JobProgress
from sfumato.jobs.model import JobState
from sfumato.jobs.queue import JobQueue
from sfumato.jobs.store_sqlite import SqliteJobStore

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # Ray and two actor processes start: ~1 min


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _wait(condition: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _request(seed: int, **more: Any) -> GenerationRequest:
    fields = {"prompt": "a red circle", "seed": seed, "width": 64, "height": 64, "steps": 20, "model": "tiny"}
    return GenerationRequest.model_validate({"sampler": "Euler", **fields, **more})


def test_jobs_spread_over_ray_actors_and_survive_a_killed_one(
    local_ray: Any, tmp_path: Path, tiny_model_folder: Path
) -> None:
    root = tmp_path / "webui"
    shutil.copytree(tiny_model_folder, root / "models" / "Stable-diffusion" / "tiny")
    settings = Settings(data_dir=tmp_path / "server", model_folders=[root], ray_workers=2)
    queue = JobQueue(SqliteJobStore(settings.data_dir / "jobs.sqlite"))
    pool = add_workers(queue, settings, "auto", poll_seconds=0.05)
    assert pool is not None and len(pool.actors) == 2
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    queue.start()
    try:
        ids = [queue.submit(_request(seed)).id for seed in range(4)]
        _wait(lambda: all(queue.get(i).state.done for i in ids))
        jobs = [queue.get(i) for i in ids]
        assert [j.state for j in jobs] == [JobState.finished] * 4
        assert {j.worker_id for j in jobs} == {"ray-0", "ray-1"}

        slow = queue.submit(_request(99, steps=150, width=192, height=192)).id
        _wait(lambda: any(isinstance(e, JobProgress) and e.job_id == slow for e in events))
        victim = queue.get(slow).worker_id
        assert victim in ("ray-0", "ray-1")
        ray.kill(pool.actors[int(victim[-1])])
        _wait(lambda: queue.get(slow).state.done)
        job = queue.get(slow)
        assert job.state is JobState.finished and job.attempts == 2
        assert job.worker_id == ({"ray-0", "ray-1"} - {victim}).pop()
    finally:
        queue.stop()
        pool.close()
    archive = ArchiveIndex.from_settings(settings)
    assert archive.count() == 5
    assert len(list(settings.outputs.glob("**/*.png"))) == 5
    assert sorted(r.seed or 0 for r in archive.list(limit=10)) == [0, 1, 2, 3, 99]
