"""The queue as the studio shows it: each job's progress, last preview and pictures, and the
variants a finished frame job offers. Fed with the jobs layer's events, on the UI thread."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from sfumato.desktop.model.document import Rect
from sfumato.jobs.events import (
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobImageSaved,
    JobProgress,
    JobQueued,
    JobStarted,
)


def image_from_data_uri(uri: str) -> Image.Image:
    _, _, payload = uri.partition(",")
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return image.convert("RGB")


@dataclass
class Variant:
    path: Path
    recipe: dict[str, Any] | None = None


@dataclass
class JobView:
    id: str
    title: str  # what the job makes, in words ("inpaint: a red circle")
    frame: Rect | None = None  # where on the canvas its pictures belong
    state: str = "queued"
    fraction: float = 0.0
    eta_seconds: float | None = None
    preview: Image.Image | None = None
    message: str = ""
    variants: list[Variant] = field(default_factory=list)
    loss: float | None = None  # a training's latest loss
    output: str | None = None  # the file a training wrote


@dataclass
class Variants:
    """The pictures of one finished frame job, stepped through before one is applied."""

    frame: Rect
    pictures: list[Variant]
    index: int = 0
    job_id: str = ""

    @property
    def current(self) -> Variant:
        return self.pictures[self.index]

    def step(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.pictures)


@dataclass
class JobsModel:
    outputs: Path  # where saved pictures' relative paths start
    jobs: dict[str, JobView] = field(default_factory=dict)
    variants: Variants | None = None
    _listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener(job_id)`` after each change to that job."""
        self._listeners.append(listener)

    def _changed(self, job_id: str) -> None:
        for listener in list(self._listeners):
            listener(job_id)

    def add(self, job_id: str, title: str, frame: Rect | None) -> JobView:
        view = self.jobs.setdefault(job_id, JobView(job_id, title, frame))
        view.title, view.frame = title, frame
        self._changed(job_id)
        return view

    def apply(self, event: JobEvent) -> None:
        view = self.jobs.get(event.job_id)
        if view is None:
            view = self.jobs[event.job_id] = JobView(event.job_id, "job " + event.job_id[:8])
        if isinstance(event, JobQueued):
            view.state = "queued"
        elif isinstance(event, JobStarted):
            view.state = "running"
        elif isinstance(event, JobProgress):
            view.state, view.fraction, view.eta_seconds = "running", event.fraction, event.eta_seconds
            if event.preview:
                view.preview = image_from_data_uri(event.preview)
            if event.loss is not None:
                view.loss = event.loss
        elif isinstance(event, JobImageSaved):
            recipe = event.image.recipe.model_dump(mode="json") if event.image.recipe else None
            view.variants.append(Variant(self.outputs / event.image.path, recipe))
        elif isinstance(event, JobFinished):
            view.state, view.fraction, view.output = "finished", 1.0, event.output
            if view.frame is not None and view.variants:
                self.variants = Variants(view.frame, list(view.variants), job_id=view.id)
        elif isinstance(event, JobFailed):
            view.state, view.message = "failed", event.reason
        elif isinstance(event, JobCancelled):
            view.state, view.message = "cancelled", event.reason
        self._changed(event.job_id)
