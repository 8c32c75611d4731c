"""Training as jobs in the queue: progress with loss, the file in the finished job, cancel and
resume, a store written before training jobs existed, and the dispatch by kind."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from jobs_fakes import FakeRun

from sfumato.core.events import CancelToken
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingRequest
from sfumato.jobs import JobQueue, JobState, SqliteJobStore
from sfumato.jobs.events import JobEvent, JobFinished, JobProgress
from sfumato.jobs.model import Job
from sfumato.jobs.run_job import UnknownJobKind, dispatch, training_run_function
from sfumato.training.world_examples import concept_examples


@pytest.fixture(scope="module")
def tiny():  # one tiny model for the module: training leaves it as it was
    from tiny import tiny_components

    return tiny_components()


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index, example in enumerate(concept_examples(4, colour="pink", name="sfpink")):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    return folder


def _training(pictures: Path, steps: int = 4) -> TrainingRequest:
    return TrainingRequest(
        kind="embedding",
        images=str(pictures),
        name="sfpink",
        init_text="red",
        steps=steps,
        learning_rate=0.05,
        batch=2,
        checkpoint_every=1,
    )


def _queue(tmp_path: Path, tiny, gate: threading.Event | None = None) -> tuple[JobQueue, list[JobEvent]]:
    settings = Settings()
    train = training_run_function(settings, components_for=lambda _: tiny)
    if gate is not None:
        plain = train

        def gated(request, *, on_progress, cancel):  # holds from step 2 until the test opens the gate
            def held(progress):
                on_progress(progress)
                while progress.step >= 2 and not gate.wait(0.02):
                    if cancel.cancelled:
                        break

            return plain(request, on_progress=held, cancel=cancel)

        train = gated  # pyright: ignore[reportAssignmentType]
    queue = JobQueue(SqliteJobStore(tmp_path / "jobs.sqlite"))
    queue.add_worker(FakeRun(tmp_path / "outputs"), poll_seconds=0.05, train=train)
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    return queue, events


def test_a_training_job_reports_loss_and_finishes_with_its_file(tmp_path: Path, tiny, pictures: Path) -> None:
    queue, events = _queue(tmp_path, tiny)
    queue.start()
    try:
        job = queue.submit_training(_training(pictures))
        assert job.kind == "train" and job.training is not None
        done = queue.wait(job.id, timeout=120)
    finally:
        queue.stop()
    assert done.state is JobState.finished, done.error
    assert done.output is not None and Path(done.output).is_file()
    assert Path(done.output).parent.name == "embeddings"
    progress = [e for e in events if isinstance(e, JobProgress) and e.job_id == job.id]
    assert [p.step for p in progress] == [1, 2, 3, 4]
    assert all(p.loss is not None for p in progress) and progress[-1].fraction == 1.0
    finished = [e for e in events if isinstance(e, JobFinished)]
    assert finished[-1].output == done.output


def test_a_cancelled_training_job_leaves_no_file_and_a_new_job_resumes(
    tmp_path: Path, tiny, pictures: Path
) -> None:
    gate = threading.Event()
    queue, events = _queue(tmp_path, tiny, gate)
    queue.start()
    try:
        job = queue.submit_training(_training(pictures))
        deadline = time.monotonic() + 60
        while not any(isinstance(e, JobProgress) and e.step == 2 for e in events):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        queue.cancel(job.id)
        cancelled = queue.wait(job.id, timeout=60)
        assert cancelled.state is JobState.cancelled and cancelled.output is None
        assert not (Settings().data_dir / "models" / "embeddings" / "sfpink.safetensors").exists()
        gate.set()
        again = queue.wait(queue.submit_training(_training(pictures)).id, timeout=120)
    finally:
        queue.stop()
    assert again.state is JobState.finished and again.output is not None
    steps = [e.step for e in events if isinstance(e, JobProgress) and e.job_id == again.id]
    assert steps == [3, 4]  # resumed after the checkpoint the cancel left at step 2


def test_a_store_from_before_training_jobs_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL,
        created_at REAL NOT NULL, started_at REAL, finished_at REAL, worker_id TEXT, heartbeat_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, error TEXT,
        error_kind TEXT, images TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '[]');"""
    )
    request = GenerationRequest(prompt="a red circle", seed=4)
    old.execute(
        "INSERT INTO jobs (id, state, request, created_at) VALUES ('old', 'queued', ?, 1.0)",
        (request.model_dump_json(),),
    )
    old.commit()
    old.close()
    store = SqliteJobStore(path)
    try:
        job = store.get("old")
        assert job is not None and job.kind == "generate" and job.request == request and job.training is None
        claimed = store.claim("w")
        assert claimed is not None and claimed.id == "old"
    finally:
        store.close()


def test_dispatch_refuses_what_a_worker_cannot_run(tmp_path: Path, pictures: Path) -> None:
    job = Job.model_validate(
        {
            "id": "x",
            "state": "running",
            "request": GenerationRequest(),
            "created_at": 0.0,
            "kind": "train",
            "training": _training(pictures),
        }
    )
    with pytest.raises(UnknownJobKind, match="does not run training jobs"):
        dispatch(
            job, generate=FakeRun(tmp_path), train=None, on_progress=lambda _: None, cancel=CancelToken()
        )
    job.kind = "generate"
    with pytest.raises(UnknownJobKind, match="does not run generation jobs"):
        dispatch(job, generate=None, train=None, on_progress=lambda _: None, cancel=CancelToken())


def test_a_training_lost_with_its_worker_is_queued_again_saying_where_it_resumes(
    tmp_path: Path, pictures: Path
) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite")
    picture = store.add(GenerationRequest(prompt="a red circle"))
    training = store.add_training(_training(pictures))
    claimed = store.claim("remote:box:1", ["train"])
    assert claimed is not None and claimed.id == training.id
    assert store.claim("remote:box:2", ["train"]) is None  # the picture job is not a training
    again = {job.id: job for job in store.recover(["remote:box:1"], float("inf"), 3)}
    assert again[training.id].state is JobState.queued
    assert "resumes from the last checkpoint" in again[training.id].notes[0]
    assert {job.id for job in store.list([JobState.queued])} == {picture.id, training.id}
