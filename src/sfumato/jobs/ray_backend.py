"""Jobs on Ray: one actor per device (a GPU, or a CPU slot), each with its own model cache.

The server's queue is unchanged: one worker thread per actor claims jobs from the store and runs each
as a call on its actor; the actor returns the pictures and the server saves them in its archive, so
actors on other machines need no shared outputs folder. An actor that dies mid-job loses its job to
the store's recovery: the job is queued again and another actor's thread takes it. A training job
runs on an actor too: the thread sends the set's pictures and captions with the call, and puts the
file the actor sends back into the server's library. Ray does the scheduling, placement and
restarts; Sfumato adds no cluster code of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingOutcome, TrainingRequest
from sfumato.jobs.model import Job, JobState, SavedImage
from sfumato.jobs.results import JobResults, save_results
from sfumato.jobs.worker import WorkerLost

POLL_SECONDS = 0.25
RESTART_WAIT_SECONDS = 120.0

# step, steps, batch, batches, loss, preview PNG: what the actor reports, in plain values
Step = tuple[int, int, int, int, float | None, bytes | None]


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
        self._steps: list[Step] = []
        self._token: CancelToken | None = None

    def run(self, job: Job, training_set: dict[str, bytes] | None = None) -> tuple[str, Any]:
        """("ok", JobResults) | ("cancelled", message) | ("request", message) | ("internal", message):
        errors travel as words, never as pickled exceptions. A training job brings its pictures and
        captions (``training_set``, by file name): the actor may be on a machine without the server's
        folders."""
        token = CancelToken()
        with self._lock:
            self._token, self._steps = token, []
        folder: Path | None = None
        try:
            if job.training is not None:
                folder = self._unpack(job.training, training_set or {})
                job = job.model_copy(
                    update={"training": job.training.model_copy(update={"images": str(folder)})}
                )
            return "ok", self.executor.run(job, on_progress=self._record, cancel=token)
        except Cancelled as stop:
            return "cancelled", stop.message
        except SfumatoError as error:
            return "request", str(error)
        except Exception as error:  # the actor must outlive a broken job
            return "internal", f"The job failed on a Ray worker: {type(error).__name__}: {error}"
        finally:
            with self._lock:
                self._token = None
            if folder is not None:  # its checkpoints stay (by kind and name) for a rerun to resume
                shutil.rmtree(folder, ignore_errors=True)

    def _unpack(self, training: TrainingRequest, files: dict[str, bytes]) -> Path:
        """The set in this machine's data folder, one folder a training name (a rerun resumes)."""
        folder = self.executor.settings.data_dir / "training-sets" / f"ray-{training.kind}-{training.name}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in files.items():
            if Path(name).name != name or name.startswith("."):
                raise SfumatoError(f"A training file was sent with a path in its name: {name[:80]!r}.")
            (folder / name).write_bytes(data)
        return folder

    def _record(self, progress: StepProgress) -> None:
        preview = None
        if progress.preview is not None:  # a live preview or a training sample, as PNG bytes
            buffer = io.BytesIO()
            progress.preview.save(buffer, format="PNG")
            preview = buffer.getvalue()
        step = (progress.step, progress.steps, progress.batch, progress.batches, progress.loss, preview)
        with self._lock:
            self._steps.append(step)

    def progress(self) -> list[Step]:
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


class _ActorCalls:
    """A worker thread's jobs as calls on its actor, followed until they return."""

    def __init__(self, pool: RayPool, index: int) -> None:
        self.pool = pool
        self.index = index

    def _job(self, **fields: Any) -> Job:
        return Job.model_validate(
            {"id": f"ray-{self.index}", "state": JobState.running, "created_at": time.time(), **fields}
        )

    def _follow(
        self,
        job: Job,
        on_progress: ProgressCallback,
        cancel: CancelToken,
        training_set: dict[str, bytes] | None = None,
    ) -> JobResults:
        ray = self.pool.ray
        actor = self.pool.actors[self.index]
        call = actor.run.remote(job, training_set)
        asked_to_cancel = False
        while True:
            ready, _ = ray.wait([call], timeout=POLL_SECONDS)
            try:
                for step in ray.get(actor.progress.remote(), timeout=30):
                    on_progress(_progress(step))
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
        return value


class RayRun(_ActorCalls):
    """A worker thread's run function: each picture job a call on its actor."""

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]:
        results = self._follow(self._job(request=request), on_progress, cancel)
        return save_results(self.pool.settings, results)


class RayTrain(_ActorCalls):
    """A worker thread's train function: the training runs on its actor, which is sent the pictures
    and sends back the file; the file goes into this server's library, as a remote worker's does."""

    def __call__(
        self, request: TrainingRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> TrainingOutcome:
        from sfumato.jobs.results import trained_bytes
        from sfumato.jobs.training import install_trained_file, target_path, training_set_files

        target_path(self.pool.settings, request)  # a name already taken is refused before the training
        folder = Path(request.images).expanduser()
        files = {name: path.read_bytes() for name, path in training_set_files(folder).items()}
        losses: list[float] = []

        def relay(progress: StepProgress) -> None:
            if progress.loss is not None:
                losses.append(progress.loss)
            on_progress(progress)

        job = self._job(request=GenerationRequest(), kind="train", training=request)
        results = self._follow(job, relay, cancel, training_set=files)
        if results.trained is None:
            raise SfumatoError("The Ray worker sent no trained file.", "Update Sfumato on the Ray workers.")
        path = install_trained_file(self.pool.settings, request, trained_bytes(results.trained))
        last_loss = losses[-1] if losses else float("nan")
        return TrainingOutcome(path, request.steps, last_loss, resumed_from=0, notes=tuple(results.notes))


def _progress(step: Step) -> StepProgress:
    *numbers, loss, preview = step
    picture = Image.open(io.BytesIO(preview)) if preview is not None else None
    return StepProgress(*numbers, preview=picture, loss=loss)


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

    def train_functions(self) -> list[RayTrain]:
        return [RayTrain(self, index) for index in range(len(self.actors))]

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
