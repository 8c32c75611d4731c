"""POST /api/video/keyframes: a clip's keyframes stylised (one job each) into an EbSynth project folder."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import GenerationRequest
from sfumato.engine.keyframes import DEFAULT_SCENE_THRESHOLD, KeyframeChoice
from sfumato.jobs.model import Job, JobState
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import checked_request
from sfumato.server.xyz_routes import output_path


class KeyframesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str = Field(
        description="The video file's bytes as a data: URI (base64), e.g. data:video/mp4;base64,…"
    )
    every: int | None = Field(default=None, ge=1, le=100_000, description="A keyframe every N frames.")
    keyframes: list[int] = Field(
        default_factory=list, max_length=10_000, description="Frame numbers, from 1."
    )
    scene_changes: bool = Field(
        default=False, description="A keyframe at the first frame and each scene change."
    )
    scene_threshold: float = Field(default=DEFAULT_SCENE_THRESHOLD, gt=0.0, lt=1.0)
    fps: float | None = Field(
        default=None, gt=0, le=1000, description="Preview frame rate; None = the video's."
    )
    request: GenerationRequest = Field(description="The img2img request for every keyframe (no init image).")
    priority: int = Field(0, ge=-100, le=100, strict=True)


class KeyframesResult(BaseModel):
    folder: str = Field(description="The EbSynth project folder, relative to the outputs folder.")
    keyframes: list[int] = Field(description="The keyframes' frame numbers.")
    consistency: float | None = Field(
        description="Mean change between stylised keyframes / between source keyframes (lower = steadier)."
    )
    jobs: list[Job] = Field(description="One finished job per keyframe, each picture with its recipe.")


def _video_file(folder: Path, ref: str) -> Path:
    from sfumato.core.images import decode_data_uri

    if not ref.startswith("data:"):
        raise InvalidRequest(
            "The video must be a data: URI with the file's base64 bytes.",
            "File paths are not accepted over the network.",
        )
    file = folder / "clip"
    file.write_bytes(decode_data_uri(ref, "video"))
    return file


async def run_keyframe_jobs(ctx: ServerContext, body: KeyframesBody) -> KeyframesResult:
    from PIL import Image

    from sfumato.archive.video import open_clip
    from sfumato.jobs.video_keyframes import (
        default_folder,
        discard,
        finish_project,
        keyframe_requests,
        start_project,
    )

    if body.request.init_image is not None or body.request.mask is not None:
        raise InvalidRequest("The keyframes are the init pictures.", "Leave out the init image and mask.")
    choice = KeyframeChoice(
        every=body.every,
        frames=tuple(sorted(set(body.keyframes))),
        scene_changes=body.scene_changes,
        scene_threshold=body.scene_threshold,
    )
    outputs = ctx.settings.outputs
    with tempfile.TemporaryDirectory(prefix="sfumato-video-") as temp:
        clip = open_clip(await asyncio.to_thread(_video_file, Path(temp), body.video), body.fps)
        folder = default_folder(ctx.settings, Path("clip"))
        await asyncio.to_thread(folder.parent.mkdir, parents=True, exist_ok=True)
        project = await asyncio.to_thread(start_project, clip, choice, folder)
    try:
        requests = [checked_request(ctx, r) for r in keyframe_requests(project, body.request)]
        submitted = [await asyncio.to_thread(ctx.queue.submit, r, body.priority) for r in requests]
        jobs = [await ctx.queue.wait_async(job.id) for job in submitted]
        failed = next((job for job in jobs if job.state is not JobState.finished or not job.images), None)
        if failed is not None:
            raise InvalidRequest(f"A keyframe did not render: {failed.error or failed.state.value}.")
        stylised = []
        for job in jobs:
            with Image.open(output_path(ctx, job.images[0].path)) as picture:
                stylised.append(picture.convert("RGB"))
    except BaseException:
        discard(project)
        raise
    result = await asyncio.to_thread(finish_project, project, stylised)
    return KeyframesResult(
        folder=str(result.folder.resolve().relative_to(outputs.resolve())),
        keyframes=result.keyframes,
        consistency=result.consistency,
        jobs=jobs,
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post(
        "/video/keyframes", response_model=KeyframesResult, responses=error_responses(404, 409, 413, 422)
    )
    async def video_keyframes(request: Request, body: KeyframesBody) -> KeyframesResult:
        ctx: ServerContext = request.app.state.context
        return await run_keyframe_jobs(ctx, body)

    return router
