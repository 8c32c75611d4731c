"""Checks on a request that came over the network, before it is queued."""

from __future__ import annotations

import io
import warnings

from PIL import Image

from sfumato.core.errors import ImageReadError, InvalidRequest, ModelNotFound
from sfumato.core.images import MAX_PIXELS, decode_data_uri, load_image, unreadable
from sfumato.core.request import GenerationRequest, check_canvas, grown_size
from sfumato.server.catalog import find
from sfumato.server.context import ServerContext
from sfumato.server.paths import check_prompt_networks

MAX_INPUT_SIDE = 8192


def as_data_uri(value: str) -> str:
    """Raw base64 (as A1111 clients send) or a data: URI; the bytes are always read as an image, never a path."""
    value = value.strip()
    return value if value.startswith("data:") else "data:image/png;base64," + value


def open_client_image(ref: str, what: str) -> Image.Image:
    """Size is checked from the header before any pixel is decoded (decompression bombs)."""
    data = decode_data_uri(ref, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            header = Image.open(io.BytesIO(data))
            width, height = header.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width = height = MAX_INPUT_SIDE + 1
    except (OSError, SyntaxError, ValueError) as error:
        raise unreadable(what, error, "Send a complete PNG, JPEG or WebP file.") from None
    if max(width, height) > MAX_INPUT_SIDE or width * height > MAX_PIXELS:
        raise ImageReadError(
            f"The {what} is too large ({width}x{height}); the limit is {MAX_INPUT_SIDE} pixels "
            f"a side and {MAX_PIXELS // 1_000_000} megapixels.",
            "Resize it and try again.",
        )
    return load_image(ref, what)


def checked_request(ctx: ServerContext, request: GenerationRequest) -> GenerationRequest:
    updates: dict[str, object] = {}
    for field, what in (("init_image", "init image"), ("mask", "mask")):
        ref = getattr(request, field)
        if ref is None:
            continue
        if not ref.startswith("data:"):
            raise InvalidRequest(
                f"The {what} must be a data: URI with base64 image bytes.",
                "File paths are not accepted over the network.",
            )
        image = open_client_image(ref, what)
        if field == "init_image" and (request.outpaint or request.upscale):
            check_canvas(*grown_size(request, image.size), ctx.settings.max_canvas_side)
    scribble = request.mask_from.scribble if request.mask_from is not None else None
    if scribble is not None:
        if not scribble.startswith("data:"):
            raise InvalidRequest(
                "The scribble must be a data: URI with base64 image bytes.",
                "File paths are not accepted over the network.",
            )
        open_client_image(scribble, "scribble")
    if ctx.settings.blocklists:
        from sfumato.analysis.blocklist import load_blocklists, request_prompts

        load_blocklists(ctx.settings.blocklists).check(request_prompts(request))
    check_prompt_networks(request.prompt)
    check_prompt_networks(request.negative_prompt)
    for step in request.postprocess:
        if step.kind == "detail" and step.detector not in ("auto", "haar", "demo"):
            raise InvalidRequest(
                f"The detector {step.detector!r} is a file path; file paths are not accepted over the network.",
                "Use the detector auto, haar or demo.",
            )
    if request.model is not None:
        updates["model"] = find(ctx.catalog, request.model).name
    else:
        selected = ctx.selected_model
        if selected is not None:
            updates["model"] = selected.name
    if request.vae is not None:
        updates["vae"] = find(ctx.catalog, request.vae, "vae").name
    check_upscalers(ctx, request)
    return request.model_copy(update=updates) if updates else request


def check_upscalers(ctx: ServerContext, request: GenerationRequest) -> None:
    """Post-processing steps Sfumato can run, with upscalers the server lists (422 otherwise)."""
    from sfumato.core.postprocess import BUILTIN_UPSCALERS, UpscaleStep
    from sfumato.core.request import HIRES_UPSCALERS
    from sfumato.postprocess.steps import check_steps

    check_steps(request.postprocess)
    if request.hires is not None and request.hires.upscaler not in HIRES_UPSCALERS:
        listed_upscaler(ctx, request.hires.upscaler, "hires upscaler", HIRES_UPSCALERS)
    for step in request.postprocess:
        if isinstance(step, UpscaleStep) and step.upscaler not in BUILTIN_UPSCALERS:
            listed_upscaler(ctx, step.upscaler, "upscaler", BUILTIN_UPSCALERS)


def listed_upscaler(ctx: ServerContext, name: str, what: str, builtin: tuple[str, ...]) -> str:
    """The catalog's name of an upscaler model, or a 422 that lists the choices."""
    try:
        return find(ctx.catalog, name, "upscaler").name
    except ModelNotFound:
        known = [*builtin, *(e.name for e in ctx.catalog.list("upscaler"))]
        raise InvalidRequest(f"Unknown {what} {name!r}.", f"Choose one of: {', '.join(known)}.") from None
