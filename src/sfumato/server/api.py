"""Sfumato's own API under /api: jobs, events, archive, models, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from sfumato import __version__
from sfumato.core.request import GenerationRequest, MaskedContent
from sfumato.core.untrusted import refuse_broken_text
from sfumato.jobs.events import JobEvent, JobProgress
from sfumato.jobs.model import Job, JobState
from sfumato.server.catalog import Kind
from sfumato.server.context import ServerContext
from sfumato.server.errors import NotFound, error_responses
from sfumato.server.paths import PathRefused, safe_child
from sfumato.server.submit import as_data_uri, checked_request, open_client_image

EVENT_BACKLOG = 256
_events = TypeAdapter(JobEvent)


class ClientRequest(GenerationRequest):
    """The request as a client sends it: each field of the type its schema says ("5" is not 5)."""

    model_config = ConfigDict(strict=True)
    masked_content: MaskedContent = Field(MaskedContent.original, strict=False)  # a JSON string

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        return refuse_broken_text(data)


class SubmitJob(BaseModel):
    request: ClientRequest
    priority: int = Field(
        0, ge=-100, le=100, strict=True, description="Higher runs first; equal priorities run in order."
    )


class FixCropJob(BaseModel):
    model_config = ConfigDict(strict=True)

    image: str = Field(description="The picture: a data: URI or raw base64 PNG/JPEG/WebP bytes.")
    side: Literal["top", "bottom", "left", "right"] | None = Field(
        None, description="The side to grow; default: where the main subject touches the frame."
    )
    prompt: str | None = Field(None, description="Default: the prompt stored in the picture.")
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = Field(None, ge=1, le=150)
    priority: int = Field(0, ge=-100, le=100)


class Health(BaseModel):
    status: str = "ok"
    version: str = __version__
    queued: int
    running: int
    workers: int


class ModelItem(BaseModel):
    name: str
    title: str
    filename: str
    kind: str
    hash: str | None = None
    architecture: str | None = None
    selected: bool = False


class SelectModel(BaseModel):
    name: str = Field(max_length=1024)


# A job's id is 32 hex digits; longer text is refused before it reaches the store.
JobId = Annotated[str, PathParam(min_length=1, max_length=64, description="The job's id.")]


def _context(request: Request | WebSocket) -> ServerContext:
    return request.app.state.context


class _Subscription:
    """Job events for one client, from the worker threads into this event loop; progress may be dropped
    when the client reads too slowly, state changes never are."""

    def __init__(self, ctx: ServerContext, job_id: str | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue(EVENT_BACKLOG)
        self.job_id = job_id
        self.unsubscribe = ctx.queue.bus.subscribe(self._put)

    def _put(self, event: JobEvent) -> None:
        if self.job_id is None or event.job_id == self.job_id:
            self.loop.call_soon_threadsafe(self._offer, event)

    def _offer(self, event: JobEvent) -> None:
        if self.queue.full():
            if isinstance(event, JobProgress):
                return
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.get("/health", response_model=Health, responses=error_responses())
    def health(request: Request) -> Health:
        ctx = _context(request)
        return Health(
            queued=ctx.queue.store.count([JobState.queued]),
            running=ctx.queue.store.count([JobState.running]),
            workers=len(ctx.queue.workers),
        )

    @router.post("/jobs", response_model=Job, status_code=202, responses=error_responses(404, 409, 413, 422))
    def submit(request: Request, body: SubmitJob) -> Job:
        ctx = _context(request)
        return ctx.queue.submit(checked_request(ctx, body.request), body.priority)

    @router.post(
        "/fix-crop", response_model=Job, status_code=202, responses=error_responses(404, 409, 413, 422)
    )
    def fix_crop(request: Request, body: FixCropJob) -> Job:
        from sfumato.jobs.fix_crop import fix_crop_request

        ctx = _context(request)
        picture = as_data_uri(body.image)
        open_client_image(picture, "picture")  # size limits before anything decodes it
        overrides = body.model_dump(include={"prompt", "negative_prompt", "seed", "steps"})
        job = fix_crop_request(picture, body.side, overrides)
        return ctx.queue.submit(checked_request(ctx, job), body.priority)

    @router.get("/jobs", response_model=list[Job], responses=error_responses(422))
    def list_jobs(
        request: Request,
        state: Annotated[list[JobState] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[Job]:
        return _context(request).queue.list(state or (), limit, offset)

    @router.get("/jobs/{job_id}", response_model=Job, responses=error_responses(404, 422))
    def get_job(request: Request, job_id: JobId) -> Job:
        return _context(request).queue.get(job_id)

    @router.post("/jobs/{job_id}/cancel", response_model=Job, responses=error_responses(404, 422))
    def cancel_job(request: Request, job_id: JobId) -> Job:
        return _context(request).queue.cancel(job_id)

    @router.post("/jobs/{job_id}/skip", response_model=Job, responses=error_responses(404, 422))
    def skip_job(request: Request, job_id: JobId) -> Job:
        ctx = _context(request)
        for running in ctx.queue.running():
            if running.job.id == job_id:
                running.token.skip()
        return ctx.queue.get(job_id)

    @router.get(
        "/jobs/{job_id}/images/{index}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **error_responses(400, 404, 422)},
    )
    def job_image(request: Request, job_id: JobId, index: int) -> FileResponse:
        ctx = _context(request)
        job = ctx.queue.get(job_id)
        if not 0 <= index < len(job.images):
            raise NotFound(f"Job {job_id} has no picture {index} (it has {len(job.images)}).")
        return serve_file(ctx, job.images[index].path)

    @router.get(
        "/files/{path:path}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, **error_responses(400, 404, 422)},
    )
    def output_file(request: Request, path: Annotated[str, PathParam(max_length=4096)]) -> FileResponse:
        """A picture in the outputs folder, by its path relative to that folder."""
        ctx = _context(request)
        return serve_file(ctx, str(safe_child(ctx.settings.outputs, path)))

    @router.get("/events", response_class=EventSourceResponse, responses=error_responses(422))
    async def events(request: Request, job_id: str | None = None) -> AsyncIterable[JobEvent]:
        """Server-Sent Events: every job event as JSON, `event:` set to its type."""
        subscription = _Subscription(_context(request), job_id)
        try:
            while True:
                yield await subscription.queue.get()
        finally:
            subscription.unsubscribe()

    @router.websocket("/events/ws")
    async def events_ws(websocket: WebSocket, job_id: str | None = None) -> None:
        subscription = _Subscription(_context(websocket), job_id)
        await websocket.accept()
        try:
            while True:
                event = await subscription.queue.get()
                await websocket.send_text(_events.dump_json(event).decode())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            subscription.unsubscribe()

    @router.get("/models", response_model=list[ModelItem], responses=error_responses(422))
    def models(request: Request, kind: Kind = "checkpoint") -> list[ModelItem]:
        ctx = _context(request)
        selected = ctx.selected_model
        return [
            ModelItem(
                name=e.name,
                title=e.title,
                filename=e.filename,
                kind=e.kind,
                hash=e.hash,
                architecture=e.architecture,
                selected=selected is not None and e == selected,
            )
            for e in ctx.catalog.list(kind)
        ]

    @router.post("/models/refresh", response_model=list[ModelItem], responses=error_responses())
    def refresh_models(request: Request) -> list[ModelItem]:
        _context(request).catalog.refresh()
        return models(request)

    @router.post("/models/select", response_model=ModelItem, responses=error_responses(404, 413, 422))
    def select_model(request: Request, body: SelectModel) -> ModelItem:
        entry = _context(request).select_model(body.name)
        return ModelItem(
            name=entry.name,
            title=entry.title,
            filename=entry.filename,
            kind=entry.kind,
            hash=entry.hash,
            architecture=entry.architecture,
            selected=True,
        )

    return router


def serve_file(ctx: ServerContext, path: str) -> FileResponse:
    outputs = ctx.settings.outputs.resolve()
    # The runner records pictures relative to the outputs folder (the archive moves with it).
    file = (outputs / path).resolve()
    if not file.is_relative_to(outputs):
        raise PathRefused(
            "That file is outside the outputs folder.", "Ask for pictures by job or archive id."
        )
    if not file.is_file():
        raise NotFound(
            "That picture is no longer in the outputs folder.", "It may have been moved or deleted."
        )
    media = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
    # Anything else is served as bytes, never as a page a browser would run (ComfyUI CVE-2024-10099).
    return FileResponse(file, media_type=media.get(file.suffix.lower(), "application/octet-stream"))
