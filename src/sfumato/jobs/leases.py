"""Jobs lent to workers on other machines: a claim is a lease that the worker's heartbeats extend.

A lease that runs out (the worker died, or lost the network) puts its job back in the queue through
the store's own recovery, so another worker claims it again; results from a lease that ran out are
refused, so a job's pictures are saved once. The server holds the leases in memory: after a restart,
jobs that remote workers were running are queued again at once.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sfumato.core.errors import InvalidRequest, SfumatoError
from sfumato.core.settings import Settings
from sfumato.jobs.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobImageSaved,
    JobProgress,
    JobQueued,
    JobStarted,
)
from sfumato.jobs.model import ErrorKind, Job, JobKind, JobState
from sfumato.jobs.queue import MAX_ATTEMPTS, JobQueue
from sfumato.jobs.results import JobResults, save_results, trained_bytes

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
REMOTE_PREFIX = "remote:"
WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LeaseLost(SfumatoError):
    """The worker no longer holds this job: its lease ran out, or the job ended or was given to another."""


@dataclass
class Lease:
    id: str
    job_id: str
    worker_id: str  # as the store records it: remote:<name>:<first digits of the lease>
    expires_at: float
    started: float


class RemoteLeases:
    def __init__(
        self,
        queue: JobQueue,
        settings: Settings,
        lease_seconds: float = LEASE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._leases: dict[str, Lease] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.sweep()
        self._thread = threading.Thread(target=self._sweeper, name="sfumato-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _sweeper(self) -> None:
        while not self._stop.wait(min(1.0, self.lease_seconds / 4)):
            try:
                self.sweep()
            except Exception:
                log.exception("Could not check the remote workers' leases")

    def claim(self, name: str, kinds: Sequence[JobKind] | None = None) -> tuple[Lease, Job] | None:
        if not WORKER_NAME.match(name):
            raise SfumatoError(
                f"{name[:80]!r} is not a usable worker name.",
                "Use letters, digits, '.', '_' or '-' (64 at most), starting with a letter or digit.",
            )
        lease_id = secrets.token_urlsafe(24)
        worker_id = f"{REMOTE_PREFIX}{name}:{lease_id[:8]}"
        with self._lock:
            job = self.queue.store.claim(worker_id, kinds)
            if job is None:
                return None
            now = time.time()
            lease = Lease(lease_id, job.id, worker_id, now + self.lease_seconds, time.monotonic())
            self._leases[lease_id] = lease
        self.queue.bus.emit(JobStarted(job_id=job.id, worker_id=worker_id, attempt=job.attempts))
        if self.settings.nsfw_filter != "off" and job.request.nsfw_filter is None:
            # the worker filters with the server's setting, as a local worker would
            job = job.model_copy(
                update={"request": job.request.model_copy(update={"nsfw_filter": self.settings.nsfw_filter})}
            )
        return lease, job

    def _held(self, lease_id: str) -> tuple[Lease, Job]:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseLost(
                "This worker's lease is unknown to the server: it ran out, or the server restarted.",
                "The job was queued again; the worker goes on with the next one.",
            )
        job = self.queue.store.get(lease.job_id)
        if job is None or job.state is not JobState.running or job.worker_id != lease.worker_id:
            del self._leases[lease_id]
            raise LeaseLost(
                "This worker no longer holds the job: it ended, or was given to another worker.",
                "The worker goes on with the next job.",
            )
        return lease, job

    def heartbeat(self, lease_id: str) -> tuple[Lease, bool]:
        """Extends the lease; True when the job's cancel was asked for."""
        with self._lock:
            lease, _ = self._held(lease_id)
            lease.expires_at = time.time() + self.lease_seconds
            return lease, self.queue.store.heartbeat(lease.job_id, lease.worker_id)

    def progress(
        self,
        lease_id: str,
        step: int,
        steps: int,
        batch: int,
        batches: int,
        preview: str | None,
        loss: float | None = None,
    ) -> None:
        with self._lock:
            lease, _ = self._held(lease_id)
        fraction = min(1.0, max(0.0, (batch * steps + step) / max(1, batches * steps)))
        elapsed = time.monotonic() - lease.started
        self.queue.bus.emit(
            JobProgress(
                job_id=lease.job_id,
                step=step,
                steps=steps,
                batch=batch,
                batches=batches,
                fraction=fraction,
                eta_seconds=elapsed * (1 - fraction) / fraction if fraction > 0 else None,
                preview=preview,
                loss=loss,
            )
        )

    def complete(self, lease_id: str, results: JobResults) -> Job:
        """Saves the pictures into the archive, or a training's file into the library, then ends the job.
        A trained file the library refuses (its name was taken meanwhile, say) fails the job instead."""
        with self._lock:
            lease, job = self._held(lease_id)
            output = None
            if job.kind == "train":
                try:
                    output = self._install(job, results)
                except InvalidRequest as refused:
                    del self._leases[lease_id]
                    failed = self.queue.store.fail(job.id, str(refused), "request")
                    self.queue.bus.emit(JobFailed(job_id=job.id, reason=str(refused)))
                    return failed
                self.queue.store.set_output(job.id, str(output))
            infos = [image.info() for image in save_results(self.settings, results)]
            job = self.queue.store.complete(lease.job_id, lease.worker_id, infos, results.notes)
            del self._leases[lease_id]
        for index, info in enumerate(infos):
            self.queue.bus.emit(JobImageSaved(job_id=job.id, index=index, image=info))
        self.queue.bus.emit(JobFinished(job_id=job.id, images=infos, output=job.output))
        return job

    def training_files(self, lease_id: str) -> dict[str, Path]:
        """The pictures and caption files of a leased training job's set, by file name."""
        from sfumato.jobs.training import training_set_files

        with self._lock:
            _, job = self._held(lease_id)
        if job.training is None:
            raise InvalidRequest("This job is not a training: it has no training pictures.")
        return training_set_files(Path(job.training.images).expanduser())

    def _install(self, job: Job, results: JobResults) -> Path:
        from sfumato.jobs.training import install_trained_file

        if results.trained is None or job.training is None:
            raise InvalidRequest("The worker sent no trained file for this training job.")
        return install_trained_file(self.settings, job.training, trained_bytes(results.trained))

    def fail(self, lease_id: str, reason: str, kind: ErrorKind) -> Job:
        with self._lock:
            lease, _ = self._held(lease_id)
            job = self.queue.store.fail(lease.job_id, reason, kind)
            del self._leases[lease_id]
        self.queue.bus.emit(JobFailed(job_id=job.id, reason=reason))
        return job

    def cancelled(self, lease_id: str, reason: str) -> Job:
        with self._lock:
            lease, _ = self._held(lease_id)
            job = self.queue.store.mark_cancelled(lease.job_id, reason)
            del self._leases[lease_id]
        self.queue.bus.emit(JobCancelled(job_id=job.id, reason=reason))
        return job

    def sweep(self) -> list[Job]:
        """Leases that ran out, and remote jobs no lease covers (the server restarted): back to the queue."""
        with self._lock:
            now = time.time()
            held = {lease.worker_id for lease in self._leases.values() if lease.expires_at > now}
            self._leases = {key: lease for key, lease in self._leases.items() if lease.worker_id in held}
            running = self.queue.store.list([JobState.running], limit=10_000)
            lost = [
                job.worker_id
                for job in running
                if job.worker_id and job.worker_id.startswith(REMOTE_PREFIX) and job.worker_id not in held
            ]
            if not lost:
                return []
            recovered = self.queue.store.recover(lost, float("inf"), self.max_attempts)
        for job in recovered:
            log.warning("A remote worker lost job %s; it is now %s", job.id, job.state.value)
            if job.state is JobState.queued:
                self.queue.bus.emit(JobQueued(job_id=job.id, priority=job.priority))
            elif job.state is JobState.failed:
                self.queue.bus.emit(JobFailed(job_id=job.id, reason=job.error or "Failed."))
            elif job.state is JobState.cancelled:
                self.queue.bus.emit(JobCancelled(job_id=job.id, reason=job.error or "Cancelled."))
        for worker in self.queue.workers:
            worker.wake()
        return recovered
