"""POST /api/postprocess: post-processing steps (upscale, …) on a picture the client sends."""

from __future__ import annotations

import asyncio
import base64
import io

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sfumato.core.postprocess import BUILTIN_UPSCALERS, PostprocessStep, UpscaleStep
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import as_data_uri, listed_upscaler, open_client_image


class PostprocessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="The picture: a data: URI or base64 PNG/JPEG/WebP bytes.")
    steps: list[PostprocessStep] = Field(min_length=1, max_length=16, description="Run in order.")


class PostprocessResult(BaseModel):
    image: str = Field(description="Base64 PNG of the result (not saved).")
    width: int
    height: int
    notes: list[str] = Field(default_factory=list)


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["post-processing"])

    @router.post("/postprocess", response_model=PostprocessResult, responses=error_responses(404, 413, 422))
    async def postprocess(request: Request, body: PostprocessRequest) -> PostprocessResult:
        from sfumato.jobs.extras import postprocess_picture
        from sfumato.postprocess.steps import check_steps

        ctx = _context(request)
        check_steps(body.steps)
        for step in body.steps:
            if isinstance(step, UpscaleStep) and step.upscaler not in BUILTIN_UPSCALERS:
                listed_upscaler(ctx, step.upscaler, "upscaler", BUILTIN_UPSCALERS)

        def work() -> PostprocessResult:
            notes: list[str] = []
            picture = open_client_image(as_data_uri(body.image), "image")
            result = postprocess_picture(ctx.settings, picture, body.steps, notes)
            buffer = io.BytesIO()
            result.save(buffer, format="PNG")
            encoded = base64.b64encode(buffer.getvalue()).decode()
            return PostprocessResult(image=encoded, width=result.width, height=result.height, notes=notes)

        return await asyncio.to_thread(work)

    return router
