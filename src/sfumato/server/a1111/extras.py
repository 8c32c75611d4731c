"""A1111's Extras over /sdapi/v1: extra-single-image, extra-batch-images, and the upscaler listings.

Field names and defaults are A1111's. Pictures are post-processed in a thread and returned, not
saved (as A1111's API does). Only upscalers the server lists can be named: a client string is never
a path.
"""

from __future__ import annotations

import asyncio
import base64
import io

from fastapi import APIRouter, Request
from PIL import Image
from pydantic import BaseModel, Field

from sfumato.core.errors import InvalidRequest
from sfumato.core.postprocess import BUILTIN_UPSCALERS, PostprocessStep, RestoreFacesStep, UpscaleStep
from sfumato.server.a1111.schemas import _Loose
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.submit import as_data_uri, listed_upscaler, open_client_image

NO_UPSCALER = "None"
MAX_BATCH = 64


class ExtrasRequest(_Loose):
    resize_mode: int = Field(0, description="0: upscale by upscaling_resize; 1: to upscaling_resize_w x _h.")
    show_extras_results: bool = True
    gfpgan_visibility: float = 0.0
    codeformer_visibility: float = 0.0
    codeformer_weight: float = 0.0
    upscaling_resize: float = 2.0
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = NO_UPSCALER
    upscaler_2: str = NO_UPSCALER
    extras_upscaler_2_visibility: float = 0.0
    upscale_first: bool = False


class ExtrasSingleImageRequest(ExtrasRequest):
    image: str = Field("", description="The picture, base64 (a data: URI works too).")


class FileData(_Loose):
    data: str
    name: str = ""


class ExtrasBatchImagesRequest(ExtrasRequest):
    imageList: list[FileData] = Field(default_factory=list, max_length=MAX_BATCH)  # noqa: N815 (A1111's name)


class ExtrasSingleImageResponse(BaseModel):
    html_info: str = ""
    image: str = ""


class ExtrasBatchImagesResponse(BaseModel):
    html_info: str = ""
    images: list[str] = Field(default_factory=list)


class UpscalerItem(BaseModel):
    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float | None = None


class RealesrganItem(BaseModel):
    name: str
    path: str | None = None
    scale: int | None = None


def _context(request: Request) -> ServerContext:
    return request.app.state.context


def upscaler_items(ctx: ServerContext) -> list[UpscalerItem]:
    """A1111's list: None, Lanczos, Nearest, then each upscaler model (name, architecture, file, scale)."""
    from sfumato.models.upscalers import scale_from_name

    items = [UpscalerItem(name=name, scale=4) for name in (NO_UPSCALER, *BUILTIN_UPSCALERS)]
    for entry in ctx.catalog.list("upscaler"):
        items.append(
            UpscalerItem(
                name=entry.name,
                model_name=entry.architecture,
                model_path=entry.filename,
                scale=scale_from_name(entry.name),
            )
        )
    return items


def _upscaler_name(ctx: ServerContext, name: str) -> str | None:
    """A listed upscaler's name (None for A1111's "None"); anything unlisted is a 422."""
    wanted = name.strip()
    if wanted.lower() in ("", NO_UPSCALER.lower()):
        return None
    for builtin in BUILTIN_UPSCALERS:
        if wanted.lower() == builtin.lower():
            return builtin
    return listed_upscaler(ctx, wanted, "upscaler", (NO_UPSCALER, *BUILTIN_UPSCALERS))


def _face_steps(payload: ExtrasRequest) -> list[PostprocessStep]:
    wanted = [
        (model, v)
        for model, v in (("GFPGAN", payload.gfpgan_visibility), ("CodeFormer", payload.codeformer_visibility))
        if v
    ]
    if not wanted:
        return []
    return [
        RestoreFacesStep(
            model=model,
            visibility=min(1.0, max(0.0, visibility)),
            codeformer_weight=payload.codeformer_weight,
        )
        for model, visibility in wanted
    ]


def _upscale_steps(
    ctx: ServerContext, payload: ExtrasRequest, size: tuple[int, int]
) -> tuple[list[UpscaleStep], str | None]:
    """The first upscaler's step at A1111's scale, and the second upscaler's name (blended after)."""
    first = _upscaler_name(ctx, payload.upscaler_1)
    second = _upscaler_name(ctx, payload.upscaler_2) if payload.extras_upscaler_2_visibility > 0 else None
    if first is None and second is None:
        return [], None
    scale = payload.upscaling_resize
    if payload.resize_mode == 1:
        if payload.upscaling_resize_w <= 0 or payload.upscaling_resize_h <= 0:
            raise InvalidRequest(
                "upscaling_resize_w and upscaling_resize_h must be above 0 with resize_mode 1."
            )
        scale = max(payload.upscaling_resize_w / size[0], payload.upscaling_resize_h / size[1])
    elif payload.resize_mode != 0:
        raise InvalidRequest(
            f"resize_mode {payload.resize_mode} is not known.", "Use 0 (scale by) or 1 (to a size)."
        )
    if not 0 < scale <= 8:
        raise InvalidRequest(f"upscaling_resize {scale:g} is out of range.", "Use a factor above 0, up to 8.")
    return [UpscaleStep(upscaler=first or "Lanczos", scale=scale)], second


def extras_picture(ctx: ServerContext, payload: ExtrasRequest, picture: Image.Image) -> Image.Image:
    """One picture through A1111's extras: face restoration before the upscale (after, with
    upscale_first), the second upscaler blended over the first by its visibility, then the crop to
    the asked size."""
    from sfumato.jobs.extras import postprocess_picture

    if not 0 <= payload.extras_upscaler_2_visibility <= 1:
        raise InvalidRequest("extras_upscaler_2_visibility must be from 0 to 1.")
    faces = _face_steps(payload)
    upscale, second = _upscale_steps(ctx, payload, picture.size)
    before, after = ([], faces) if payload.upscale_first else (faces, [])
    picture = postprocess_picture(ctx.settings, picture, before)
    result = postprocess_picture(ctx.settings, picture, upscale)
    if second is not None and upscale:
        other = postprocess_picture(
            ctx.settings, picture, [upscale[0].model_copy(update={"upscaler": second})]
        )
        result = Image.blend(
            result.convert("RGB"), other.convert("RGB"), payload.extras_upscaler_2_visibility
        )
    result = postprocess_picture(ctx.settings, result, after)
    if upscale and payload.resize_mode == 1 and payload.upscaling_crop:
        width, height = payload.upscaling_resize_w, payload.upscaling_resize_h
        left, top = (result.width - width) // 2, (result.height - height) // 2
        result = result.crop((left, top, left + width, top + height))
    return result


def _b64_png(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def build_router() -> APIRouter:
    router = APIRouter(prefix="/sdapi/v1", tags=["A1111 extras"])

    @router.post(
        "/extra-single-image",
        response_model=ExtrasSingleImageResponse,
        responses=error_responses(404, 413, 422, a1111=True),
    )
    async def extra_single_image(
        request: Request, payload: ExtrasSingleImageRequest
    ) -> ExtrasSingleImageResponse:
        ctx = _context(request)
        if not payload.image.strip():
            raise InvalidRequest("image is empty.", "Send the picture as base64.")

        def work() -> str:
            picture = open_client_image(as_data_uri(payload.image), "image")
            return _b64_png(extras_picture(ctx, payload, picture))

        return ExtrasSingleImageResponse(image=await asyncio.to_thread(work))

    @router.post(
        "/extra-batch-images",
        response_model=ExtrasBatchImagesResponse,
        responses=error_responses(404, 413, 422, a1111=True),
    )
    async def extra_batch_images(
        request: Request, payload: ExtrasBatchImagesRequest
    ) -> ExtrasBatchImagesResponse:
        ctx = _context(request)

        def work() -> list[str]:
            pictures = [
                open_client_image(as_data_uri(item.data), f"imageList[{i}]")
                for i, item in enumerate(payload.imageList)
            ]
            return [_b64_png(extras_picture(ctx, payload, picture)) for picture in pictures]

        return ExtrasBatchImagesResponse(images=await asyncio.to_thread(work))

    @router.get("/upscalers", response_model=list[UpscalerItem])
    def upscalers(request: Request) -> list[UpscalerItem]:
        return upscaler_items(_context(request))

    @router.get("/realesrgan-models", response_model=list[RealesrganItem])
    def realesrgan_models(request: Request) -> list[RealesrganItem]:
        from sfumato.models.upscalers import scale_from_name

        return [
            RealesrganItem(name=entry.name, path=entry.filename, scale=scale_from_name(entry.name))
            for entry in _context(request).catalog.list("upscaler")
            if "realesrgan"
            in f"{entry.architecture} {entry.filename}".lower().replace("-", "").replace(" ", "")
        ]

    return router
