"""A job: one accepted request, its place in the queue and what became of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from sfumato.core.request import GenerationRequest
from sfumato.core.training_request import TrainingRequest


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def done(self) -> bool:
        return self in (JobState.finished, JobState.failed, JobState.cancelled)


ErrorKind = Literal["request", "internal", "lost"]
JobKind = Literal["generate", "train"]


class SavedImageInfo(BaseModel):
    """One picture a job made: where it was saved and the recipe that makes exactly it."""

    path: str = Field(description="The file, as saved in the outputs folder.")
    infotext: str = Field("", description="A1111 `parameters` text stored in the file.")
    recipe: GenerationRequest | None = Field(
        None, description="The request that reproduces this picture alone."
    )
    model_name: str | None = None
    model_hash: str | None = None


class Job(BaseModel):
    id: str
    state: JobState
    priority: int = 0
    request: GenerationRequest
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    attempts: int = Field(0, description="How many times a worker started this job.")
    cancel_requested: bool = False
    error: str | None = Field(None, description="Why the job failed, in words.")
    error_kind: ErrorKind | None = Field(
        None,
        description="'request': the request cannot run as given; "
        "'internal': something broke; 'lost': the server stopped mid-job.",
    )
    images: list[SavedImageInfo] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="What the user should know (resumed after a crash, captions the interrogator wrote, "
        "what a remote worker's run said…).",
    )
    kind: JobKind = Field(default="generate", description="'generate' (a picture request) or 'train'.")
    training: TrainingRequest | None = Field(
        default=None, description="A 'train' job's request (its `request` is then an empty, unused one)."
    )
    output: str | None = Field(default=None, description="A finished 'train' job's file (embedding or LoRA).")


@dataclass(frozen=True)
class SavedImage:
    """What a run function returns for each picture it saved."""

    path: str
    infotext: str = ""
    recipe: GenerationRequest | None = None
    model_name: str | None = None
    model_hash: str | None = None

    def info(self) -> SavedImageInfo:
        return SavedImageInfo(
            path=self.path,
            infotext=self.infotext,
            recipe=self.recipe,
            model_name=self.model_name,
            model_hash=self.model_hash,
        )
