"""The queue a face talks to: submit, watch, cancel. Jobs are kept by a store and run by workers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from sfumato.core.request import GenerationRequest
from sfumato.core.training_request import TrainingRequest
from sfumato.jobs.bus import EventBus
from sfumato.jobs.events import TERMINAL_EVENTS, JobCancelled, JobEvent, JobFailed, JobQueued
from sfumato.jobs.model import Job, JobState
from sfumato.jobs.run_job import TrainFunction
from sfumato.jobs.store import JobStore
from sfumato.jobs.store_sqlite import JobNotFound
from sfumato.jobs.worker import RunFunction, RunningJob, Worker

# A remote worker silent this long is presumed gone; its job is then resumed by someone else.
STALE_AFTER_SECONDS = 600.0
MAX_ATTEMPTS = 2


class JobQueue:
    def __init__(self, store: JobStore, bus: EventBus | None = None) -> None:
        self.store = store
        self.bus = bus or EventBus()
        self.workers: list[Worker] = []

    def add_worker(
        self,
        run: RunFunction,
        worker_id: str = "local-0",
        poll_seconds: float = 1.0,
        train: TrainFunction | None = None,
    ) -> Worker:
        worker = Worker(
            self.store, self.bus, run, worker_id=worker_id, poll_seconds=poll_seconds, train=train
        )
        self.workers.append(worker)
        return worker

    def start(self) -> list[Job]:
        """Recover what the last run of these workers left unfinished, then start them."""
        recovered = self.store.recover([w.worker_id for w in self.workers], STALE_AFTER_SECONDS, MAX_ATTEMPTS)
        for job in recovered:
            if job.state is JobState.failed:
                self.bus.emit(JobFailed(job_id=job.id, reason=job.error or "Failed."))
            elif job.state is JobState.cancelled:
                self.bus.emit(JobCancelled(job_id=job.id, reason=job.error or "Cancelled."))
        for worker in self.workers:
            worker.start()
        return recovered

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def submit(self, request: GenerationRequest, priority: int = 0) -> Job:
        job = self.store.add(request, priority)
        self.bus.emit(JobQueued(job_id=job.id, priority=priority))
        for worker in self.workers:
            worker.wake()
        return job

    def submit_training(self, training: TrainingRequest, priority: int = 0) -> Job:
        job = self.store.add_training(training, priority)
        self.bus.emit(JobQueued(job_id=job.id, priority=priority))
        for worker in self.workers:
            worker.wake()
        return job

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"There is no job {job_id!r}.", "List jobs to see their ids.")
        return job

    def list(self, states: Sequence[JobState] = (), limit: int = 100, offset: int = 0) -> list[Job]:
        return self.store.list(states, limit, offset)

    def running(self) -> list[RunningJob]:
        return [w.current for w in self.workers if w.current is not None]

    def cancel(self, job_id: str) -> Job:
        before = self.get(job_id)
        job = self.store.request_cancel(job_id)
        if job is None:
            raise JobNotFound(f"There is no job {job_id!r}.", "List jobs to see their ids.")
        if before.state is JobState.queued and job.state is JobState.cancelled:
            self.bus.emit(JobCancelled(job_id=job_id, reason=job.error or "Cancelled."))
        for running in self.running():
            if running.job.id == job_id:
                running.token.cancel()
        return job

    def interrupt(self) -> list[str]:
        """Stop every job running now (A1111's Interrupt); returns their ids."""
        ids = [running.job.id for running in self.running()]
        for job_id in ids:
            self.cancel(job_id)
        return ids

    def skip(self) -> list[str]:
        """End the current batch of every running job early and go on (A1111's Skip)."""
        running = self.running()
        for item in running:
            item.token.skip()
        return [item.job.id for item in running]

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        done = threading.Event()
        unsubscribe = self.bus.subscribe(
            lambda e: done.set() if e.job_id == job_id and isinstance(e, TERMINAL_EVENTS) else None
        )
        try:
            job = self.get(job_id)
            if not job.state.done:
                done.wait(timeout)
            return self.get(job_id)
        finally:
            unsubscribe()

    async def wait_async(self, job_id: str) -> Job:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def listen(event: JobEvent) -> None:
            if event.job_id == job_id and isinstance(event, TERMINAL_EVENTS):
                loop.call_soon_threadsafe(done.set)

        unsubscribe = self.bus.subscribe(listen)
        try:
            job = await asyncio.to_thread(self.get, job_id)
            if not job.state.done:
                await done.wait()
            return await asyncio.to_thread(self.get, job_id)
        finally:
            unsubscribe()
