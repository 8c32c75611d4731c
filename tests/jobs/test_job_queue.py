import threading
import time
from pathlib import Path

import pytest
from jobs_fakes import FakeRun

from sfumato.core.request import GenerationRequest
from sfumato.jobs import JobQueue, JobState, SqliteJobStore
from sfumato.jobs.events import JobCancelled, JobEvent, JobFailed, JobFinished, JobProgress, JobStarted


def _request(prompt: str, steps: int = 2) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, steps=steps, width=64, height=64, seed=3)


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path: Path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite")
    yield store
    store.close()


def test_claims_follow_priority_then_submission_order(store: SqliteJobStore) -> None:
    ids = {}
    for prompt, priority in [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -1)]:
        ids[store.add(_request(prompt), priority).id] = prompt
    assert store.position(next(i for i, p in ids.items() if p == "c")) == 3
    order = []
    while (job := store.claim("w")) is not None:
        order.append(job.request.prompt)
        assert job.state is JobState.running and job.attempts == 1
    assert order == ["b", "d", "a", "c", "e"]


def test_worker_runs_jobs_in_queue_order_and_reports_events(store: SqliteJobStore, tmp_path: Path) -> None:
    gate = threading.Event()
    run = FakeRun(tmp_path / "out", gate=gate)
    queue = JobQueue(store)
    queue.add_worker(run, poll_seconds=0.05)
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    queue.start()
    try:
        first = queue.submit(_request("first"))
        _wait_until(lambda: run.started == ["first"])
        low = queue.submit(_request("low"), priority=-1)
        normal = queue.submit(_request("normal"))
        urgent = queue.submit(_request("urgent"), priority=10)
        gate.set()
        for job in (first, low, normal, urgent):
            assert queue.wait(job.id, timeout=20).state is JobState.finished
    finally:
        queue.stop()
    assert run.started == ["first", "urgent", "normal", "low"]
    finished = queue.get(first.id)
    assert len(finished.images) == 1 and Path(finished.images[0].path).is_file()
    mine = [e for e in events if e.job_id == first.id]
    assert [type(e) for e in mine][:2] == [type(mine[0]), JobStarted]
    progress = [e for e in mine if isinstance(e, JobProgress)]
    assert [(p.step, p.steps) for p in progress] == [(1, 2), (2, 2)]
    assert progress[-1].fraction == 1.0 and progress[-1].eta_seconds == 0.0
    assert progress[0].preview is not None and progress[0].preview.startswith("data:image/jpeg;base64,")
    assert isinstance(mine[-1], JobFinished)


def test_cancel_a_queued_job_and_a_running_one(store: SqliteJobStore, tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "out", gate=threading.Event())  # never opened: jobs run until cancelled
    queue = JobQueue(store)
    queue.add_worker(run, poll_seconds=0.05)
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    queue.start()
    try:
        running = queue.submit(_request("running"))
        waiting = queue.submit(_request("waiting"))
        _wait_until(lambda: run.started == ["running"])
        assert queue.cancel(waiting.id).state is JobState.cancelled
        queue.cancel(running.id)
        assert queue.wait(running.id, timeout=20).state is JobState.cancelled
        time.sleep(0.2)
    finally:
        queue.stop()
    assert run.started == ["running"]  # the cancelled queued job never ran
    assert {e.job_id for e in events if isinstance(e, JobCancelled)} == {running.id, waiting.id}


def test_a_failing_job_is_reported_and_the_worker_goes_on(store: SqliteJobStore, tmp_path: Path) -> None:
    queue = JobQueue(store)
    queue.add_worker(FakeRun(tmp_path / "out", fail_on="boom"), poll_seconds=0.05)
    events: list[JobEvent] = []
    queue.bus.subscribe(events.append)
    queue.start()
    try:
        bad = queue.submit(_request("boom"))
        good = queue.submit(_request("fine"))
        failed = queue.wait(bad.id, timeout=20)
        assert queue.wait(good.id, timeout=20).state is JobState.finished
    finally:
        queue.stop()
    assert failed.state is JobState.failed and failed.error_kind == "internal"
    assert failed.error is not None and "the fake engine broke" in failed.error
    assert any(isinstance(e, JobFailed) and e.job_id == bad.id for e in events)


def test_skip_reaches_the_running_job(store: SqliteJobStore, tmp_path: Path) -> None:
    queue = JobQueue(store)
    queue.add_worker(FakeRun(tmp_path / "out", gate=threading.Event()), poll_seconds=0.05)
    queue.start()
    try:
        job = queue.submit(_request("long"))
        _wait_until(lambda: bool(queue.running()))
        assert queue.skip() == [job.id]
        assert queue.running()[0].token.take_skip()
        assert queue.interrupt() == [job.id]
        assert queue.wait(job.id, timeout=20).state is JobState.cancelled
    finally:
        queue.stop()


def test_unfinished_jobs_are_resumed_once_then_failed_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    crashed = SqliteJobStore(path)
    once = crashed.add(_request("crashed once"))
    twice = crashed.add(_request("crashed twice"))
    waiting = crashed.add(_request("never started"))
    assert crashed.claim("local-cpu-0") is not None  # "crashed once" runs, then the process dies
    crashed.close()

    store = SqliteJobStore(path)
    queue = JobQueue(store)
    queue.add_worker(FakeRun(tmp_path / "out"), worker_id="local-cpu-0", poll_seconds=0.05)
    # simulate the second crash of "crashed twice": claimed twice by the same worker id
    store._db.execute(
        "UPDATE jobs SET state='running', worker_id='local-cpu-0', attempts=2 WHERE id=?", (twice.id,)
    )
    recovered = {job.id: job for job in queue.start()}
    try:
        assert recovered[once.id].state is JobState.queued
        assert "Resumed" in recovered[once.id].notes[0]
        assert recovered[twice.id].state is JobState.failed and recovered[twice.id].error_kind == "lost"
        reason = recovered[twice.id].error
        assert reason is not None and "2 times" in reason
        assert queue.wait(once.id, timeout=20).state is JobState.finished
        assert queue.wait(waiting.id, timeout=20).state is JobState.finished
    finally:
        queue.stop()
        store.close()
