"""Typed events a job emits, as the API documents and streams them."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from sfumato.jobs.model import SavedImageInfo


class _Event(BaseModel):
    job_id: str
    at: float = Field(default_factory=time.time, description="Unix time the event happened.")


class JobQueued(_Event):
    type: Literal["queued"] = "queued"
    priority: int = 0


class JobStarted(_Event):
    type: Literal["started"] = "started"
    worker_id: str
    attempt: int = 1


class JobProgress(_Event):
    type: Literal["progress"] = "progress"
    step: int = Field(description="1-based step within the current batch.")
    steps: int
    batch: int = Field(description="0-based batch index.")
    batches: int
    fraction: float = Field(ge=0.0, le=1.0, description="Share of the whole job done.")
    eta_seconds: float | None = Field(None, description="Estimated seconds left, None before the first step.")
    preview: str | None = Field(None, description="A small JPEG data: URI every N steps, else None.")
    loss: float | None = Field(default=None, description="A training job's loss at this step.")


class JobImageSaved(_Event):
    type: Literal["image_saved"] = "image_saved"
    index: int
    image: SavedImageInfo


class JobFinished(_Event):
    type: Literal["finished"] = "finished"
    images: list[SavedImageInfo]
    output: str | None = Field(default=None, description="The file a training job wrote.")


class JobFailed(_Event):
    type: Literal["failed"] = "failed"
    reason: str


class JobCancelled(_Event):
    type: Literal["cancelled"] = "cancelled"
    reason: str = "Cancelled."


JobEvent = Annotated[
    JobQueued | JobStarted | JobProgress | JobImageSaved | JobFinished | JobFailed | JobCancelled,
    Field(discriminator="type"),
]
TERMINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)
