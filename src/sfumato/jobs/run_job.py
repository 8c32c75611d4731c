"""Run a job by its kind: a generation through the runner, a training through the trainer.

The one place that knows the job kinds. The server's own worker thread runs a job with ``dispatch``;
a remote worker and a Ray actor run one with ``jobs/execute.py::JobExecutor``, which ships the
results back instead of saving them; both refuse any kind not in ``KNOWN_KINDS``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.settings import Settings
from sfumato.core.training_request import TrainingOutcome, TrainingRequest
from sfumato.jobs.model import Job, JobKind, SavedImage

if TYPE_CHECKING:
    from sfumato.jobs.worker import RunFunction
    from sfumato.models.components import Components


class TrainFunction(Protocol):
    """Runs one training request to the end (raises Cancelled when asked; a checkpoint is kept)."""

    def __call__(
        self, request: TrainingRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> TrainingOutcome: ...


@dataclass(frozen=True)
class JobOutcome:
    images: list[SavedImage] = field(default_factory=list)  # pictures a generation saved
    output: str | None = None  # the file a training wrote
    notes: list[str] = field(default_factory=list)


KNOWN_KINDS: tuple[JobKind, ...] = ("generate", "train")


class UnknownJobKind(InvalidRequest):
    """A job this worker cannot run."""

    @classmethod
    def of_kind(cls, kind: str) -> UnknownJobKind:
        return cls(
            f"This worker cannot run jobs of kind {kind[:64]!r}; it runs {', '.join(KNOWN_KINDS)}.",
            "Update Sfumato on the worker, or run the job on the server itself.",
        )


def dispatch(
    job: Job,
    *,
    generate: RunFunction | None,
    train: TrainFunction | None,
    on_progress: ProgressCallback,
    cancel: CancelToken,
) -> JobOutcome:
    """Run ``job`` with the function for its kind; refuses a kind the worker was not given."""
    if job.kind == "generate":
        if generate is None:
            raise UnknownJobKind("This worker does not run generation jobs.", "Run it on another worker.")
        return JobOutcome(images=list(generate(job.request, on_progress=on_progress, cancel=cancel)))
    if job.kind == "train":
        if job.training is None:
            raise InvalidRequest("This training job carries no training request.", "Submit it again.")
        if train is None:
            raise UnknownJobKind("This worker does not run training jobs.", "Run it on another worker.")
        outcome = train(job.training, on_progress=on_progress, cancel=cancel)
        return JobOutcome(output=str(outcome.path), notes=list(outcome.notes))
    raise UnknownJobKind.of_kind(job.kind)


ComponentsForTraining = Callable[[TrainingRequest], "Components | None"]


class TrainingRun:
    """``run_training`` as a worker's train function; one training at a time per worker."""

    def __init__(self, settings: Settings, components_for: ComponentsForTraining | None = None) -> None:
        self.settings = settings
        self.components_for = components_for
        self._running = threading.Lock()

    def __call__(
        self, request: TrainingRequest, *, on_progress: ProgressCallback, cancel: CancelToken
    ) -> TrainingOutcome:
        from sfumato.jobs.training import run_training

        with self._running:
            components = self.components_for(request) if self.components_for is not None else None
            return run_training(
                self.settings, request, on_progress=on_progress, cancel=cancel, components=components
            )


def training_run_function(
    settings: Settings, components_for: ComponentsForTraining | None = None
) -> TrainingRun:
    """``components_for`` lets tests and the server hand in already-loaded components."""
    return TrainingRun(settings, components_for)


__all__: Sequence[str] = (
    "KNOWN_KINDS",
    "JobOutcome",
    "TrainFunction",
    "UnknownJobKind",
    "dispatch",
    "training_run_function",
)
