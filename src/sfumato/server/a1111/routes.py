"""/sdapi/v1: A1111's routes over Sfumato's queue."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request

from sfumato.core.errors import InvalidRequest
from sfumato.core.request import LATENT_UPSCALERS, SAMPLERS, GenerationRequest
from sfumato.jobs.model import Job, JobState
from sfumato.server.a1111.convert import (
    SAMPLER_ALIASES,
    SCHEDULER_ALIASES,
    SCHEDULER_RHO,
    SCHEDULERS,
    echo_parameters,
    img2img_request,
    info_json,
    txt2img_request,
)
from sfumato.server.a1111.listings import MODEL_WIDTH, embedding_shape, lora_metadata
from sfumato.server.a1111.prepare import check_generation_options, prepare_payload
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
from sfumato.server.catalog import ModelEntry, usable
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
    if not keeps_pictures(payload):
        await asyncio.to_thread(discard_pictures, ctx, [i.path for i in job.images])
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


def _architecture(entry: ModelEntry | None) -> str | None:
    """The checkpoint's architecture, identified from its header when the listing does not know it."""
    if entry is None or entry.architecture or entry.path is None or entry.pickled:
        return entry.architecture if entry else None
    from sfumato.core.errors import SfumatoError
    from sfumato.models.identify import identify_file

    try:
        return identify_file(entry.path).architecture
    except (SfumatoError, OSError, ValueError):
        return None


def keeps_pictures(payload: Txt2ImgRequest) -> bool:
    """A1111's clients say "don't save" with do_not_save_samples, or by sending save_images: false;
    a payload that says neither is archived, as everything Sfumato makes is."""
    if payload.do_not_save_samples:
        return False
    return payload.save_images or "save_images" not in payload.model_fields_set


def discard_pictures(ctx: ServerContext, paths: list[str]) -> None:
    from sfumato.archive.index import ArchiveIndex

    archive = ArchiveIndex.from_settings(ctx.settings)
    outputs = ctx.settings.outputs.resolve()
    for path in paths:
        file = Path(path)
        file = file if file.is_absolute() else outputs / file
        if file.resolve().is_relative_to(outputs):
            archive.remove(file)


class GenerationFailed(Exception):
    """A job failed inside the engine; reported as A1111 does, with a 500 and the reason."""


def build_router() -> APIRouter:
    # Errors here keep A1111's shape (A1111Error), as A1111's clients expect.
    router = APIRouter(prefix=ROUTE_PREFIX, tags=["A1111-compatible"], responses=error_responses(a1111=True))
    generation = error_responses(404, 409, 413, 422, a1111=True)

    @router.post("/txt2img", response_model=GenerationResponse, responses=generation)
    async def txt2img(request: Request, payload: Txt2ImgRequest) -> GenerationResponse:
        payload = await asyncio.to_thread(prepare_payload, _context(request), payload)
        if is_xyz(payload.script_name):
            return await _plot(_context(request), payload, txt2img_request)
        return await _generate(_context(request), txt2img_request(payload), payload)

    @router.post("/img2img", response_model=GenerationResponse, responses=generation)
    async def img2img(request: Request, payload: Img2ImgRequest) -> GenerationResponse:
        payload = await asyncio.to_thread(prepare_payload, _context(request), payload)
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
            "img2img_background_color": "#ffffff",
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
        check_generation_options(ctx, rest)
        if len(ctx.options) + len(rest) > MAX_OPTIONS:
            raise InvalidRequest(f"Too many options (the limit is {MAX_OPTIONS}).")
        ctx.options.update(rest)
        return {}

    @router.get("/sd-models", response_model=list[SDModelItem])
    def sd_models(request: Request) -> list[SDModelItem]:
        return [
            SDModelItem(title=e.title, model_name=e.name, hash=e.hash, sha256=e.sha256, filename=e.filename)
            for e in usable(_context(request).catalog.list("checkpoint"))
        ]

    @router.get("/sd-vae", response_model=list[SDVaeItem])
    def sd_vae(request: Request) -> list[SDVaeItem]:
        return [
            SDVaeItem(model_name=e.name, filename=e.filename)
            for e in usable(_context(request).catalog.list("vae"))
        ]

    @router.get("/samplers", response_model=list[SamplerItem])
    def samplers() -> list[SamplerItem]:
        return [
            SamplerItem(name=name, aliases=SAMPLER_ALIASES.get(name, []), options={}) for name in SAMPLERS
        ]

    @router.get("/schedulers", response_model=list[SchedulerItem])
    def schedulers() -> list[SchedulerItem]:
        return [
            SchedulerItem(
                name=name,
                label=label,
                aliases=SCHEDULER_ALIASES.get(name),
                default_rho=SCHEDULER_RHO.get(name, -1),
                need_inner_model=name in ("uniform", "sgm_uniform", "simple", "normal", "ddim", "beta"),
            )
            for name, label in SCHEDULERS.items()
        ]

    @router.get("/loras", response_model=list[LoraItem])
    def loras(request: Request) -> list[LoraItem]:
        items = []
        for entry in usable(_context(request).catalog.list("lora")):
            metadata = lora_metadata(entry)
            alias = metadata.get("ss_output_name")
            items.append(
                LoraItem(
                    name=entry.name,
                    alias=alias if isinstance(alias, str) and alias else entry.name,
                    path=entry.filename,
                    metadata=metadata,
                )
            )
        return items

    @router.get("/embeddings", response_model=EmbeddingsResponse)
    def embeddings(request: Request) -> EmbeddingsResponse:
        """A1111 loads the embeddings as wide as the model's text encoder and skips the others;
        here pickles (never opened) and files that are not embeddings are skipped too."""
        ctx = _context(request)
        selected = ctx.selected_model
        width = MODEL_WIDTH.get(_architecture(selected) or "")
        loaded: dict[str, EmbeddingItem] = {}
        skipped: dict[str, EmbeddingItem] = {}
        for entry in ctx.catalog.list("embedding"):
            found = embedding_shape(entry)
            item = EmbeddingItem(
                step=found.step,
                sd_checkpoint=found.sd_checkpoint,
                sd_checkpoint_name=found.sd_checkpoint_name,
                shape=found.shape,
                vectors=found.vectors,
            )
            fits = found.readable and (width is None or found.shape == width)
            (loaded if fits else skipped)[entry.name] = item
        return EmbeddingsResponse(loaded=loaded, skipped=skipped)

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

    @router.get("/face-restorers")
    def face_restorers(request: Request) -> list[dict[str, str | None]]:
        from sfumato.postprocess.faces import RESTORERS

        files = _context(request).catalog.list("restorer")
        return [
            {
                "name": name,
                "cmd_dir": next(
                    (
                        str(Path(e.filename).parent)
                        for e in files
                        if name.lower() in Path(e.filename).name.lower()
                    ),
                    None,
                ),
            }
            for name in RESTORERS
        ]

    @router.get("/latent-upscale-modes")
    def latent_upscale_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in LATENT_UPSCALERS]

    @router.post("/png-info", response_model=PngInfoResponse, responses=error_responses(413, 422, a1111=True))
    def png_info(payload: PngInfoRequest) -> PngInfoResponse:
        return read_png_info(payload.image)

    return router


def read_png_info(image_b64: str) -> PngInfoResponse:
    import io

    from PIL import Image

    from sfumato.archive.pnginfo import png_info
    from sfumato.core.images import decode_data_uri

    if not image_b64.strip():
        return PngInfoResponse(info="", items={}, parameters={})
    ref = as_data_uri(image_b64)
    open_client_image(ref, "image")  # refuses what is not a whole picture of a sane size
    with Image.open(io.BytesIO(decode_data_uri(ref, "image"))) as image:  # as sent: format and metadata
        found = png_info(image)
    return PngInfoResponse(info=found.info, items=found.items, parameters=found.parameters)
