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


def test_a_training_runs_on_a_ray_actor_and_its_file_lands_in_the_server_library(tmp_path: Path) -> None:
    """The actor is sent the pictures and sends back the file: the same file as a training here with
    the same seed, in the server's library, with loss and samples on the way."""
    import torch
    from safetensors import safe_open

    from sfumato.core.training_request import TrainingRequest
    from sfumato.jobs.training import run_training
    from sfumato.prompts.networks import LibraryResolver
    from sfumato.training.world_examples import concept_examples

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for index, example in enumerate(concept_examples(5, colour="pink", name="sfpink")):
        example.image.convert("RGB").save(pictures / f"{index:04d}.png")
        (pictures / f"{index:04d}.txt").write_text(example.caption, "utf-8")
    fields = {"kind": "embedding", "name": "sfpink", "init_text": "red", "steps": 6, "batch": 2, "seed": 5}
    training = TrainingRequest.model_validate({**fields, "images": str(pictures), "sample_every": 3})
    settings = Settings(data_dir=tmp_path / "server", ray_workers=1)
    # one thread on both sides: with more, CPU sums may come out in another order from run to run
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
    )
    queue = JobQueue(SqliteJobStore(settings.data_dir / "jobs.sqlite"))
    pool = add_workers(queue, settings, "auto", poll_seconds=0.05)
    assert pool is not None
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    queue.start()
    try:
        job_id = queue.submit_training(training).id
        _wait(lambda: queue.get(job_id).state.done)
    finally:
        queue.stop()
        pool.close()
        ray.shutdown()
    job = queue.get(job_id)
    assert job.state is JobState.finished and job.worker_id == "ray-0", job.error
    there = LibraryResolver(settings)("embedding", "sfpink")
    assert there is not None and job.output == str(there)
    progress = [e for e in events if isinstance(e, JobProgress) and e.job_id == job_id]
    assert progress and all(e.loss is not None and e.loss > 0 for e in progress)
    assert any(e.preview is not None for e in progress)  # the samples, as previews
    assert not (settings.data_dir / "training-sets" / "ray-embedding-sfpink").exists()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = run_training(Settings(data_dir=tmp_path / "here"), training).path
    finally:
        torch.set_num_threads(threads)
    with safe_open(str(there), "pt") as a, safe_open(str(here), "pt") as b:
        assert a.metadata() == b.metadata()
        assert torch.equal(a.get_tensor("string_to_param.*"), b.get_tensor("string_to_param.*"))
