"""A worker takes jobs from the store one at a time and runs them on one device."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from PIL import Image

from sfumato.core.errors import Cancelled, SfumatoError
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.request import GenerationRequest
from sfumato.jobs.bus import EventBus
from sfumato.jobs.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImageSaved,
    JobProgress,
    JobQueued,
    JobStarted,
)
from sfumato.jobs.model import Job, JobState, SavedImage
from sfumato.jobs.run_job import TrainFunction, dispatch
from sfumato.jobs.store import JobStore

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


class RunFunction(Protocol):
    """Runs one request to the end and returns the pictures it saved (raises Cancelled when asked)."""

    def __call__(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> Sequence[SavedImage]: ...


class PartialResult(Cancelled):
    """Raised by a run function that was cancelled after saving some pictures, so they are kept."""

    def __init__(self, images: Sequence[SavedImage], message: str = "Cancelled.") -> None:
        super().__init__(message)
        self.images = list(images)


class WorkerLost(Exception):
    """Raised by a run function whose device went away mid-job (a Ray actor died): the job goes back to
    the queue for another worker, and with ``retire`` this worker stops taking jobs."""

    def __init__(self, message: str, retire: bool = True) -> None:
        super().__init__(message)
        self.retire = retire


def preview_data_uri(image: Image.Image, max_side: int = 256) -> str:
    import base64

    preview = image.convert("RGB")
    preview.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class RunningJob:
    """What a worker knows about the job it runs right now (for progress polling and cancel)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.token = CancelToken()
        self.started = time.monotonic()
        self.last: JobProgress | None = None
        self.last_preview: str | None = None


class Worker:
    """Runs jobs in a thread of this process. ``worker_id`` should be stable across restarts
    so that, on start, jobs it left running are recognised as its own and recovered."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        run: RunFunction,
        worker_id: str = "local-0",
        poll_seconds: float = 1.0,
        train: TrainFunction | None = None,
    ) -> None:
        self.store = store
        self.train = train
        self.bus = bus
        self.run = run
        self.worker_id = worker_id
        self.poll_seconds = poll_seconds
        self.current: RunningJob | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"sfumato-{self.worker_id}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.current is not None:
            self.current.token.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.worker_id)
            except Exception:
                log.exception("Could not take a job from the queue")
                job = None
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self.run_job(job)

    def run_job(self, job: Job) -> None:
        running = RunningJob(job)
        self.current = running
        if job.cancel_requested:
            running.token.cancel()
        self.bus.emit(JobStarted(job_id=job.id, worker_id=self.worker_id, attempt=job.attempts))
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(running, beat_stop), daemon=True)
        beat.start()
        try:
            outcome = dispatch(
                job,
                generate=self.run,
                train=self.train,
                on_progress=lambda p: self._progress(running, p),
                cancel=running.token,
            )
            images = outcome.images
            if outcome.output is not None:
                self.store.set_output(job.id, outcome.output)
        except WorkerLost as lost:
            self._requeue(job, lost)
        except Cancelled as stop:
            kept = [i.info() for i in stop.images] if isinstance(stop, PartialResult) else []
            self.store.mark_cancelled(job.id, stop.message, kept)
            self.bus.emit(JobCancelled(job_id=job.id, reason=stop.message))
        except SfumatoError as error:
            self.store.fail(job.id, str(error), "request")
            self.bus.emit(JobFailed(job_id=job.id, reason=str(error)))
        except Exception as error:  # a failing job must never take the worker down
            log.exception("Job %s failed", job.id)
            reason = (
                f"The {'training' if job.kind == 'train' else 'generation'} failed: {type(error).__name__}: "
                f"{error}. Check the server log for details."
            )
            self.store.fail(job.id, reason, "internal")
            self.bus.emit(JobFailed(job_id=job.id, reason=reason))
        else:
            infos = [image.info() for image in images]
            for index, info in enumerate(infos):
                self.bus.emit(JobImageSaved(job_id=job.id, index=index, image=info))
            self.store.complete(job.id, self.worker_id, infos, outcome.notes)
            self.bus.emit(JobFinished(job_id=job.id, images=infos, output=outcome.output))
        finally:
            beat_stop.set()
            self.current = None

    def _requeue(self, job: Job, lost: WorkerLost) -> None:
        from sfumato.jobs.queue import MAX_ATTEMPTS

        log.warning("%s: %s", self.worker_id, lost)
        for again in self.store.recover([self.worker_id], float("inf"), MAX_ATTEMPTS):
            if again.state is JobState.queued:
                self.bus.emit(JobQueued(job_id=again.id, priority=again.priority))
            elif again.state is JobState.failed:
                self.bus.emit(JobFailed(job_id=again.id, reason=again.error or "Failed."))
        if lost.retire:
            self._stop.set()

    def _heartbeat(self, running: RunningJob, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                if self.store.heartbeat(running.job.id, self.worker_id):
                    running.token.cancel()
            except Exception:
                log.exception("Heartbeat failed")

    def _progress(self, running: RunningJob, progress: StepProgress) -> None:
        fraction = min(1.0, max(0.0, progress.fraction))
        elapsed = time.monotonic() - running.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        preview = preview_data_uri(progress.preview) if progress.preview is not None else None
        if preview is not None:
            running.last_preview = preview
        event = JobProgress(
            job_id=running.job.id,
            step=progress.step,
            steps=progress.steps,
            batch=progress.batch,
            batches=progress.batches,
            fraction=fraction,
            eta_seconds=eta,
            preview=preview,
            loss=progress.loss,
        )
        running.last = event
        self.bus.emit(event)
