"""/sdapi/v1: A1111's routes over Sfumato's queue."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import LATENT_UPSCALERS, SAMPLERS, GenerationRequest
from sfumato.jobs.model import Job, JobState
from sfumato.server.a1111.convert import (
    SCHEDULERS,
    echo_parameters,
    img2img_request,
    info_json,
    txt2img_request,
)
from sfumato.server.a1111.schemas import (
    EmbeddingItem,
    EmbeddingsResponse,
    GenerationResponse,
    Img2ImgRequest,
    LoraItem,
    PngInfoRequest,
    PngInfoResponse,
    ProgressResponse,
    ProgressState,
    SamplerItem,
    SchedulerItem,
    ScriptsList,
    SDModelItem,
    SDVaeItem,
    Txt2ImgRequest,
)
from sfumato.server.a1111.scripts import IMG2IMG_SCRIPTS, TXT2IMG_SCRIPTS, is_xyz, xyz_axes
from sfumato.server.context import MAX_OPTIONS, ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.paths import safe_child
from sfumato.server.submit import as_data_uri, checked_request, open_client_image

ROUTE_PREFIX = "/sdapi/v1"


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def _image_b64(ctx: ServerContext, path: str) -> str | None:
    outputs = ctx.settings.outputs.resolve()
    file = Path(path).resolve()
    if not file.is_relative_to(outputs):
        file = safe_child(outputs, path)
    try:
        return base64.b64encode(file.read_bytes()).decode()
    except OSError:
        return None


async def _generate(
    ctx: ServerContext, request: GenerationRequest, payload: Txt2ImgRequest
) -> GenerationResponse:
    checked = await asyncio.to_thread(checked_request, ctx, request)
    submitted = await asyncio.to_thread(ctx.queue.submit, checked)
    job: Job = await ctx.queue.wait_async(submitted.id)
    if job.state is JobState.failed:
        reason = job.error or "The generation failed."
        raise InvalidRequest(reason) if job.error_kind == "request" else GenerationFailed(reason)
    images: list[str] = []
    if payload.send_images:
        images = [
            b for b in await asyncio.to_thread(lambda: [_image_b64(ctx, i.path) for i in job.images]) if b
        ]
    return GenerationResponse(
        images=images, parameters=echo_parameters(payload), info=info_json(job, payload)
    )


async def _plot(ctx: ServerContext, payload: Any, convert: Any) -> GenerationResponse:
    """A1111's X/Y/Z plot script: the grid first, then (with "include lone images") every cell."""
    from pydantic import ValidationError

    from sfumato.core.request import describe_validation_error
    from sfumato.core.xyz import XYZPlot
    from sfumato.server.xyz_routes import run_plot_jobs

    axes, lone = xyz_axes(payload.script_args)
    base: GenerationRequest = convert(payload.model_copy(update={"script_name": None, "script_args": []}))
    try:
        plot = XYZPlot.model_validate({"request": base.model_dump(mode="json"), **axes})
    except ValidationError as error:
        raise InvalidRequest(f"Invalid X/Y/Z plot: {describe_validation_error(error)}.") from None
    jobs, grid = await run_plot_jobs(ctx, plot)
    images = [base64.b64encode(grid.read_bytes()).decode()]
    if lone:
        images += [
            b for b in await asyncio.to_thread(lambda: [_image_b64(ctx, j.images[0].path) for j in jobs]) if b
        ]
    info = json.loads(info_json(jobs[0], payload))
    info["infotexts"] = [jobs[0].images[0].infotext, *(job.images[0].infotext for job in jobs)]
    info["all_seeds"] = [job.request.seed for job in jobs]
    return GenerationResponse(
        images=images if payload.send_images else [],
        parameters=echo_parameters(payload),
        info=json.dumps(info),
    )


class GenerationFailed(Exception):
    """A job failed inside the engine; reported as A1111 does, with a 500 and the reason."""


def build_router() -> APIRouter:
    # Errors here keep A1111's shape (A1111Error), as A1111's clients expect.
    router = APIRouter(prefix=ROUTE_PREFIX, tags=["A1111-compatible"], responses=error_responses(a1111=True))
    generation = error_responses(404, 409, 413, 422, a1111=True)

    @router.post("/txt2img", response_model=GenerationResponse, responses=generation)
    async def txt2img(request: Request, payload: Txt2ImgRequest) -> GenerationResponse:
        if is_xyz(payload.script_name):
            return await _plot(_context(request), payload, txt2img_request)
        return await _generate(_context(request), txt2img_request(payload), payload)

    @router.post("/img2img", response_model=GenerationResponse, responses=generation)
    async def img2img(request: Request, payload: Img2ImgRequest) -> GenerationResponse:
        if is_xyz(payload.script_name):
            return await _plot(_context(request), payload, img2img_request)
        return await _generate(_context(request), img2img_request(payload), payload)

    @router.get("/progress", response_model=ProgressResponse, responses=error_responses(422, a1111=True))
    def progress(request: Request, skip_current_image: bool = False) -> ProgressResponse:
        ctx = _context(request)
        waiting = ctx.queue.store.count([JobState.queued, JobState.running])
        running = ctx.queue.running()
        if not running:
            return ProgressResponse(
                progress=0.0, eta_relative=0.0, state=ProgressState(job_count=waiting), current_image=None
            )
        current = running[0]
        last = current.last
        started = current.job.started_at or time.time()
        state = ProgressState(
            skipped=False,
            interrupted=current.token.cancelled,
            job=f"Batch {last.batch + 1} out of {last.batches}" if last else "",
            job_count=waiting,
            job_timestamp=time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
            job_no=last.batch if last else 0,
            sampling_step=last.step if last else 0,
            sampling_steps=last.steps if last else current.job.request.steps,
        )
        preview = None
        if not skip_current_image and current.last_preview:
            preview = current.last_preview.split(",", 1)[1]
        return ProgressResponse(
            progress=last.fraction if last else 0.0,
            eta_relative=(last.eta_seconds or 0.0) if last else 0.0,
            state=state,
            current_image=preview,
            current_task=current.job.id,
        )

    @router.post("/interrupt")
    def interrupt(request: Request) -> dict[str, Any]:
        _context(request).queue.interrupt()
        return {}

    @router.post("/skip")
    def skip(request: Request) -> dict[str, Any]:
        _context(request).queue.skip()
        return {}

    @router.get("/options")
    def get_options(request: Request) -> dict[str, Any]:
        ctx = _context(request)
        selected = ctx.selected_model
        options: dict[str, Any] = {
            "samples_format": "png",
            "CLIP_stop_at_last_layers": 1,
            "sd_vae": "Automatic",
            "show_progress_every_n_steps": ctx.settings.preview_every,
            "live_previews_enable": ctx.settings.preview_every > 0,
            "live_previews_image_format": "jpeg",
            "enable_pnginfo": True,
        }
        options |= {k: v for k, v in ctx.options.items() if k != "sd_model_checkpoint"}
        options["sd_model_checkpoint"] = selected.title if selected else None
        options["sd_checkpoint_hash"] = selected.sha256 if selected else None
        return options

    @router.post("/options", responses=error_responses(404, 413, 422, a1111=True))
    def set_options(
        request: Request,
        options: dict[str, Any] = Body(..., max_length=MAX_OPTIONS),  # noqa: B008
    ) -> dict[str, Any]:
        ctx = _context(request)
        checkpoint = options.get("sd_model_checkpoint")
        if checkpoint is not None:
            if not isinstance(checkpoint, str):
                raise InvalidRequest("sd_model_checkpoint must be a model title (a string).")
            ctx.select_model(checkpoint)
        rest = {k: v for k, v in options.items() if k != "sd_model_checkpoint"}
        if len(ctx.options) + len(rest) > MAX_OPTIONS:
            raise InvalidRequest(f"Too many options (the limit is {MAX_OPTIONS}).")
        ctx.options.update(rest)
        return {}

    @router.get("/sd-models", response_model=list[SDModelItem])
    def sd_models(request: Request) -> list[SDModelItem]:
        return [
            SDModelItem(title=e.title, model_name=e.name, hash=e.hash, sha256=e.sha256, filename=e.filename)
            for e in _context(request).catalog.list("checkpoint")
        ]

    @router.get("/sd-vae", response_model=list[SDVaeItem])
    def sd_vae(request: Request) -> list[SDVaeItem]:
        return [
            SDVaeItem(model_name=e.name, filename=e.filename) for e in _context(request).catalog.list("vae")
        ]

    @router.get("/samplers", response_model=list[SamplerItem])
    def samplers() -> list[SamplerItem]:
        return [SamplerItem(name=name, aliases=[], options={}) for name in SAMPLERS]

    @router.get("/schedulers", response_model=list[SchedulerItem])
    def schedulers() -> list[SchedulerItem]:
        return [SchedulerItem(name=name, label=label) for name, label in SCHEDULERS.items()]

    @router.get("/loras", response_model=list[LoraItem])
    def loras(request: Request) -> list[LoraItem]:
        return [
            LoraItem(name=e.name, alias=e.name, path=e.filename)
            for e in _context(request).catalog.list("lora")
        ]

    @router.get("/embeddings", response_model=EmbeddingsResponse)
    def embeddings(request: Request) -> EmbeddingsResponse:
        loaded = {e.name: EmbeddingItem() for e in _context(request).catalog.list("embedding")}
        return EmbeddingsResponse(loaded=loaded, skipped={})

    @router.post("/refresh-checkpoints")
    def refresh_checkpoints(request: Request) -> None:
        _context(request).catalog.refresh()

    @router.post("/refresh-vae")
    def refresh_vae(request: Request) -> None:
        _context(request).catalog.refresh()

    @router.post("/refresh-loras")
    def refresh_loras(request: Request) -> None:
        _context(request).catalog.refresh()

    @router.get("/scripts", response_model=ScriptsList)
    def scripts() -> ScriptsList:
        return ScriptsList(
            txt2img=[name.lower() for name in TXT2IMG_SCRIPTS],
            img2img=[name.lower() for name in IMG2IMG_SCRIPTS],
        )

    @router.get("/latent-upscale-modes")
    def latent_upscale_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in LATENT_UPSCALERS]

    @router.post("/png-info", response_model=PngInfoResponse, responses=error_responses(413, 422, a1111=True))
    def png_info(payload: PngInfoRequest) -> PngInfoResponse:
        return read_png_info(payload.image)

    return router


def read_png_info(image_b64: str) -> PngInfoResponse:
    from sfumato.archive.infotext import parse_infotext

    if not image_b64.strip():
        return PngInfoResponse(info="", items={}, parameters={})
    ref = as_data_uri(image_b64)
    image = open_client_image(ref, "image")
    items = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str | int | float)}
    text = str(items.pop("parameters", "") or _exif_comment(image) or "")
    return PngInfoResponse(info=text, items=items, parameters=dict(parse_infotext(text)) if text else {})


def _exif_comment(image: Image.Image) -> str | None:
    comment = image.getexif().get_ifd(0x8769).get(0x9286)  # Exif IFD, UserComment
    if isinstance(comment, bytes):
        body = comment[8:] if comment[:8] in (b"UNICODE\x00", b"ASCII\x00\x00\x00") else comment
        encoding = "utf-16-be" if comment[:8] == b"UNICODE\x00" else "utf-8"
        return body.decode(encoding, errors="replace").strip("\x00")
    return comment if isinstance(comment, str) else None
