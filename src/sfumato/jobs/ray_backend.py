"""Jobs on Ray: one actor per device (a GPU, or a CPU slot), each with its own model cache.

The server's queue is unchanged: one worker thread per actor claims jobs from the store and runs each
as a call on its actor; the actor returns the pictures and the server saves them in its archive, so
actors on other machines need no shared outputs folder. An actor that dies mid-job loses its job to
the store's recovery: the job is queued again and another actor's thread takes it. Ray does the
scheduling, placement and restarts; Sfumato adds no cluster code of its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import Job, JobState, SavedImage
from sfumato.jobs.results import save_results
from sfumato.jobs.worker import WorkerLost

POLL_SECONDS = 0.25
RESTART_WAIT_SECONDS = 120.0


def import_ray() -> Any:
    try:
        import ray  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise SfumatoError(
            "Ray is not installed, so jobs cannot run on Ray.",
            "Install it with `pip install 'sfumato[ray]'`, or serve with --workers 1.",
        ) from None
    return ray


class DeviceActor:
    """The body of each Ray actor: runs one job at a time; progress, cancel and skip arrive meanwhile
    on the actor's other threads."""

    def __init__(self, settings: Settings) -> None:
        from sfumato.jobs.execute import JobExecutor

        self.executor = JobExecutor(settings)
        self._lock = threading.Lock()
        self._steps: list[tuple[int, int, int, int]] = []
        self._token: CancelToken | None = None

    def run(self, job: Job) -> tuple[str, Any]:
        """("ok", JobResults) | ("cancelled", message) | ("request", message) | ("internal", message):
        errors travel as words, never as pickled exceptions."""
        token = CancelToken()
        with self._lock:
            self._token, self._steps = token, []
        try:
            return "ok", self.executor.run(job, on_progress=self._record, cancel=token)
        except Cancelled as stop:
            return "cancelled", stop.message
        except SfumatoError as error:
            return "request", str(error)
        except Exception as error:  # the actor must outlive a broken job
            return "internal", f"The generation failed on a Ray worker: {type(error).__name__}: {error}"
        finally:
            with self._lock:
                self._token = None

    def _record(self, progress: StepProgress) -> None:
        with self._lock:
            self._steps.append((progress.step, progress.steps, progress.batch, progress.batches))

    def progress(self) -> list[tuple[int, int, int, int]]:
        with self._lock:
            steps, self._steps = self._steps, []
        return steps

    def cancel(self) -> None:
        with self._lock:
            if self._token is not None:
                self._token.cancel()

    def skip(self) -> None:
        with self._lock:
            if self._token is not None:
                self._token.skip()

    def where(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


class RayRun:
    """A worker thread's run function: each job a call on its actor, followed until it returns."""

    def __init__(self, pool: RayPool, index: int) -> None:
        self.pool = pool
        self.index = index

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        ray = self.pool.ray
        actor = self.pool.actors[self.index]
        job = Job.model_validate(
            {
                "id": f"ray-{self.index}",
                "state": JobState.running,
                "request": request,
                "created_at": time.time(),
            }
        )
        call = actor.run.remote(job)
        asked_to_cancel = False
        while True:
            ready, _ = ray.wait([call], timeout=POLL_SECONDS)
            try:
                for step in ray.get(actor.progress.remote(), timeout=30):
                    on_progress(StepProgress(*step))
            except ray.exceptions.RayError:
                pass  # the job's own answer says what happened
            if cancel.cancelled and not asked_to_cancel:
                asked_to_cancel = True
                actor.cancel.remote()
            if cancel.take_skip():
                actor.skip.remote()
            if ready:
                break
        try:
            outcome, value = ray.get(call)
        except ray.exceptions.RayActorError as error:
            raise WorkerLost(
                f"Ray worker {self.index} stopped while it ran the job ({type(error).__name__}).",
                retire=not self.pool.alive(self.index),
            ) from None
        if outcome == "cancelled":
            raise Cancelled(value)
        if outcome == "request":
            raise SfumatoError(value)
        if outcome != "ok":
            raise RuntimeError(value)
        return save_results(self.pool.settings, value)


class RayPool:
    def __init__(self, settings: Settings, address: str | None = None, count: int = 0) -> None:
        """``address``: a Ray cluster (ray://HOST:PORT) or None for a local Ray (or the one already
        started in this process)."""
        ray = import_ray()
        self.ray = ray
        self.settings = settings
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count = count or max(1, gpus)
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        # Ray brings a crashed actor back (max_restarts); one killed for good stays dead.
        actor_class = ray.remote(max_concurrency=4, max_restarts=-1)(DeviceActor)
        self.actors = [actor_class.options(**resources).remote(settings) for _ in range(count)]

    def run_functions(self) -> list[RayRun]:
        return [RayRun(self, index) for index in range(len(self.actors))]

    def alive(self, index: int) -> bool:
        """False when the actor is gone for good; waits while Ray restarts it."""
        try:
            self.ray.get(self.actors[index].where.remote(), timeout=RESTART_WAIT_SECONDS)
        except self.ray.exceptions.RayError:
            return False
        return True

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):  # already gone
                self.ray.kill(actor)
