"""Where accepted jobs live. Workers in this process or on other machines share it.

A worker's whole contract with the store is claim -> heartbeat* -> complete | fail | cancelled,
so a remote worker (or a Ray actor) needs nothing but a store client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sfumato.core.request import GenerationRequest
from sfumato.core.training_request import TrainingRequest
from sfumato.jobs.model import ErrorKind, Job, JobKind, JobState, SavedImageInfo


class JobStore(Protocol):
    def add(self, request: GenerationRequest, priority: int = 0) -> Job: ...

    def add_training(self, training: TrainingRequest, priority: int = 0) -> Job: ...

    def set_output(self, job_id: str, output: str) -> Job:
        """Record the file a training job wrote (before ``complete``)."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def list(self, states: Sequence[JobState] = (), limit: int = 100, offset: int = 0) -> list[Job]: ...

    def count(self, states: Sequence[JobState] = ()) -> int: ...

    def position(self, job_id: str) -> int | None:
        """0-based place among queued jobs in the order they will run; None when not queued."""
        ...

    def claim(self, worker_id: str, kinds: Sequence[JobKind] | None = None) -> Job | None:
        """Atomically take the next queued job (highest priority, then oldest) for this worker, of one
        of ``kinds`` when given."""
        ...

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Record that the worker still runs the job; True when a cancel was asked for."""
        ...

    def complete(
        self, job_id: str, worker_id: str, images: Sequence[SavedImageInfo], notes: Sequence[str] = ()
    ) -> Job:
        """Finish a running job with its pictures; ``notes`` (what its run said) join the job's notes."""
        ...

    def fail(self, job_id: str, reason: str, kind: ErrorKind = "internal") -> Job: ...

    def mark_cancelled(
        self, job_id: str, reason: str = "Cancelled.", images: Sequence[SavedImageInfo] | None = None
    ) -> Job: ...

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now, or flag a running one for its worker; None if unknown."""
        ...

    def recover(self, worker_ids: Sequence[str], stale_after: float, max_attempts: int) -> list[Job]:
        """Jobs left running by these workers (or silent longer than ``stale_after`` seconds):
        requeue them, or fail them with the reason once they have been tried ``max_attempts`` times."""
        ...

    def close(self) -> None: ...
