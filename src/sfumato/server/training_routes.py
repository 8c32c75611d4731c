"""POST /api/train: a textual inversion or LoRA trained as a job in the queue.

The pictures travel in the body (data: URIs, with optional captions), never as paths on the server;
they are written into ``<data_dir>/training-sets/<id>/`` and the job trains from there. Progress
(step, loss, ETA, sample pictures) comes over the job events; the finished job's ``output`` is the
file written into the library.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.errors import InvalidRequest
from sfumato.core.training_request import TrainingRequest, parse_training_request
from sfumato.jobs.model import Job
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import open_client_image

MAX_PICTURES = 200


class TrainingPicture(BaseModel):
    model_config = ConfigDict(strict=True)

    image: str = Field(description="A data: URI (or raw base64) of a PNG, JPEG or WebP picture.")
    caption: str | None = Field(None, max_length=1000, description="Its caption (default: as for a folder).")


class TrainJob(BaseModel):
    """A training request whose pictures are sent along; every field of `TrainingRequest` but `images`."""

    model_config = ConfigDict(extra="forbid")

    training: dict[str, object] = Field(
        description="TrainingRequest fields without 'images': kind, name, steps, learning_rate…"
    )
    pictures: list[TrainingPicture] = Field(min_length=1, max_length=MAX_PICTURES)
    priority: int = Field(0, ge=-100, le=100, strict=True)


def _write_set(folder: Path, pictures: list[TrainingPicture]) -> None:
    folder.mkdir(parents=True)
    for index, item in enumerate(pictures):
        picture = open_client_image(item.image, f"picture {index + 1}")
        picture.convert("RGB").save(folder / f"{index:04d}.png")
        if item.caption:
            (folder / f"{index:04d}.txt").write_text(item.caption, "utf-8")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/train", response_model=Job, status_code=202, responses=error_responses(413, 422))
    async def train(request: Request, body: TrainJob) -> Job:
        ctx: ServerContext = request.app.state.context
        if "images" in body.training:
            raise InvalidRequest(
                "A training request over the API cannot name a folder on the server.",
                "Send the pictures in 'pictures' as data: URIs.",
            )
        folder = ctx.settings.data_dir / "training-sets" / uuid.uuid4().hex
        checked: TrainingRequest = parse_training_request({**body.training, "images": str(folder)})
        await asyncio.to_thread(_write_set, folder, body.pictures)
        return ctx.queue.submit_training(checked, body.priority)

    return router
