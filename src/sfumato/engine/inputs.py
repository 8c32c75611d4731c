"""The pictures a request starts from, brought to the size the model renders, and the way back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.images import load_image
from sfumato.core.request import GenerationRequest, MaskedContent, OutpaintFill
from sfumato.engine.masks import (
    Box,
    Composite,
    context_padding,
    fill_masked,
    keep_outside,
    mask_box,
    paste_back,
    soften_mask,
)


def _unchanged(image: Image.Image) -> Image.Image:
    return image


@dataclass
class StartingPictures:
    """``init`` and ``mask`` at the render size; ``finish`` turns a render into the final picture."""

    init: Image.Image | None = None
    mask: Image.Image | None = None  # soft (blurred) grey mask, white = repaint
    finish: Callable[[Image.Image], Image.Image] = _unchanged
    notes: list[str] = field(default_factory=list)
    masked_content: MaskedContent = MaskedContent.original  # what the repainted latents start from


def starting_pictures(request: GenerationRequest, width: int, height: int) -> StartingPictures:
    if request.init_image is None:
        return StartingPictures()
    original = _rgb(load_image(request.init_image, "init image"))
    size = (width, height)
    if request.outpaint is not None:
        return _outpaint_pictures(request, original)
    if request.mask is None and request.mask_from is None:
        return StartingPictures(init=original.resize(size, Image.Resampling.LANCZOS))

    raw_mask, notes = _raw_mask(request, original)
    if raw_mask.size != original.size:
        raise InvalidRequest(
            f"The mask is {raw_mask.size[0]}x{raw_mask.size[1]} pixels but the init image is "
            f"{original.size[0]}x{original.size[1]}.",
            "Use a mask of the same size as the init image.",
        )
    mask = soften_mask(_grey(raw_mask), invert=request.mask_invert, blur=request.mask_blur)
    composite = _composite(request)
    box: Box | None = None
    if request.inpaint_only_masked:
        padding = request.inpaint_only_masked_padding
        box = mask_box(mask, context_padding(mask) if padding is None else padding, size)
        if box is None:
            notes.append("The mask is empty, so nothing was repainted.")
    if box is not None:
        init = original.crop(box).resize(size, Image.Resampling.LANCZOS)
        work_mask = mask.crop(box).resize(size, Image.Resampling.LANCZOS)
        crop = box

        def finish(render: Image.Image) -> Image.Image:
            return paste_back(original, render, crop, mask, composite)
    else:
        resized = original.resize(size, Image.Resampling.LANCZOS)
        init = resized
        work_mask = mask.resize(size, Image.Resampling.LANCZOS)

        def finish(render: Image.Image) -> Image.Image:
            return composite(render, resized, work_mask)

    if request.masked_content == MaskedContent.fill:
        init = fill_masked(init, work_mask)
    return StartingPictures(
        init=init, mask=work_mask, finish=finish, notes=notes, masked_content=request.masked_content
    )


def _outpaint_pictures(request: GenerationRequest, original: Image.Image) -> StartingPictures:
    from sfumato.engine.outpaint import grown_canvas

    assert request.outpaint is not None
    canvas, mask = grown_canvas(original, request.outpaint)
    content = request.masked_content
    if request.outpaint.fill is OutpaintFill.latent_noise:
        content = MaskedContent.latent_noise
    elif content == MaskedContent.fill:
        canvas = fill_masked(canvas, mask)

    composite = _composite(request)

    def finish(render: Image.Image) -> Image.Image:
        return composite(render, canvas, mask)

    return StartingPictures(init=canvas, mask=mask, finish=finish, masked_content=content)


def _raw_mask(request: GenerationRequest, original: Image.Image) -> tuple[Image.Image, list[str]]:
    if request.mask_from is not None:
        from sfumato.engine.mask_sources import make_mask

        return make_mask(original, request.mask_from)
    assert request.mask is not None
    return load_image(request.mask, "mask"), []


def _composite(request: GenerationRequest) -> Composite:
    soft = request.soft_inpainting
    if soft is None:
        return keep_outside
    from sfumato.engine.soft_inpaint import soft_composite

    def composite(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
        return soft_composite(generated, original, mask, soft)

    return composite


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become black, as an editor's flattened export would show them.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (0, 0, 0))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _grey(mask: Image.Image) -> Image.Image:
    # A mask painted on a transparent layer marks the area by its alpha, not its colour.
    if mask.mode in ("RGBA", "LA") and _has_transparency(mask):
        return mask.getchannel("A")
    return mask.convert("L")


def _has_transparency(image: Image.Image) -> bool:
    low, _ = image.getchannel("A").getextrema()
    return float(low) < 255  # pyright: ignore[reportArgumentType]
