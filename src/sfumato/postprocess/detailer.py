"""The detailer (what ADetailer does, built in): find regions, re-render each at the model's native
resolution, paste it back with a feathered blend.

Each region gets a square crop centred on it: its longer side plus the step's padding on each side
(the context the model sees; past the picture's edge the edge pixels are repeated), enlarged to the
native size and re-rendered as an inpaint of the
region (the whole crop as context) with its own prompt and denoising strength. The render is
shrunk back and blended in through a feathered mask that stays inside the padded box, so pixels
outside the padded boxes never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFilter

from sfumato.core.images import to_data_uri
from sfumato.core.postprocess import DetailStep
from sfumato.core.request import GenerationRequest
from sfumato.postprocess.detect import Box, Region, arrange, detect

if TYPE_CHECKING:
    from sfumato.core.events import CancelToken
    from sfumato.models.components import Components
    from sfumato.prompts.networks import Resolver


@dataclass
class Detailed:
    picture: Image.Image
    regions: list[Region] = field(default_factory=list)  # the regions re-rendered, in order
    crops: list[Image.Image] = field(default_factory=list)  # each re-rendered crop, at native size
    notes: list[str] = field(default_factory=list)


def context_box(box: Box, padding: int) -> Box:
    """A square (the model's native shape) centred on ``box``, ``padding`` wider on each side of its
    longer side. It may reach past the picture's edges: the region stays centred, as the model
    draws subjects, and :func:`crop_with_edges` fills the outside from the picture's edge."""
    side = max(box[2] - box[0], box[3] - box[1]) + 2 * padding
    left = (box[0] + box[2] - side) // 2
    top = (box[1] + box[3] - side) // 2
    return left, top, left + side, top + side


def crop_with_edges(picture: Image.Image, box: Box) -> Image.Image:
    """``picture`` cropped to ``box``; where the box leaves the picture its edge pixels are repeated."""
    import numpy as np

    width, height = picture.size
    margin = max(0, -box[0], -box[1], box[2] - width, box[3] - height)
    if margin == 0:
        return picture.crop(box)
    pixels = np.asarray(picture.convert("RGB"))
    padded = np.pad(pixels, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    left, top = box[0] + margin, box[1] + margin
    return Image.fromarray(padded[top : top + box[3] - box[1], left : left + box[2] - box[0]])


def feathered_mask(size: tuple[int, int], box: Box, feather: int) -> Image.Image:
    """White over ``box`` (in the crop's coordinates), fading to black over ``feather`` pixels
    around it, and black along the crop's border, so the blend leaves no seam."""
    mask = Image.new("L", size, 0)
    half = feather // 2
    ImageDraw.Draw(mask).rectangle(
        (box[0] - half, box[1] - half, box[2] + half - 1, box[3] + half - 1), fill=255
    )
    if feather > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(feather / 3))
    border = Image.new("L", size, 0)
    ImageDraw.Draw(border).rectangle((1, 1, size[0] - 2, size[1] - 2), fill=255)
    return Image.composite(mask, border, border)


def detail(
    picture: Image.Image,
    step: DetailStep,
    components: Components,
    base: GenerationRequest,
    *,
    resolve: Resolver | None = None,
    cancel: CancelToken | None = None,
) -> Detailed:
    """Re-render each region ``step`` finds. ``base`` (the picture's recipe) gives what the step
    leaves open: prompts, steps, CFG, sampler, seed (region i renders with seed + i)."""
    from sfumato.engine.generate import generate
    from sfumato.engine.seeds import resolve_seed
    from sfumato.models.loading import BUILTIN_MODEL

    picture = picture.convert("RGB")
    found = detect(
        picture,
        step.target,
        step.detector,
        demo_world=components.info.name == BUILTIN_MODEL,
        min_confidence=step.min_confidence,
    )
    regions = arrange(found, step.order, step.max_count)
    result = Detailed(picture=picture, regions=regions)
    if not regions:
        result.notes.append(f"No {step.target} was found, so nothing was detailed.")
        return result
    if len(found) > len(regions):
        result.notes.append(f"Detailed {len(regions)} of {len(found)} {step.target} regions (max count).")
    native = components.native_size
    seed = resolve_seed(step.seed if step.seed >= 0 else base.seed)
    for index, region in enumerate(regions):
        if cancel is not None:
            cancel.raise_if_cancelled()
        crop_box = context_box(region.box, step.padding)
        crop_size = (crop_box[2] - crop_box[0], crop_box[3] - crop_box[1])
        inner = (
            region.box[0] - crop_box[0],
            region.box[1] - crop_box[1],
            region.box[2] - crop_box[0],
            region.box[3] - crop_box[1],
        )
        mask = feathered_mask(crop_size, inner, step.feather)
        render_size = _render_size(crop_size, native)
        request = base.model_copy(
            update={
                "prompt": step.prompt or base.prompt,
                "negative_prompt": step.negative_prompt or base.negative_prompt,
                "init_image": to_data_uri(
                    crop_with_edges(result.picture, crop_box).resize(render_size, Image.Resampling.LANCZOS)
                ),
                "mask": to_data_uri(mask.resize(render_size, Image.Resampling.BILINEAR)),
                "mask_blur": 0,
                "mask_invert": False,
                "inpaint_only_masked": False,
                "denoising_strength": step.denoising_strength,
                "steps": step.steps or base.steps,
                "width": render_size[0],
                "height": render_size[1],
                "seed": (seed + index) % 2**32,
                "variation_strength": 0.0,
                "batch_size": 1,
                "batch_count": 1,
                "outpaint": None,
                "hires": None,
                "upscale": None,
                "fix_crop": False,
                "postprocess": [],
            }
        )
        rendered = generate(components, request, cancel=cancel, resolve=resolve)
        result.notes += [n for n in rendered.notes if n not in result.notes]
        crop = rendered.images[0].image.convert("RGB")
        result.crops.append(crop)
        pasted = result.picture.copy()
        pasted.paste(crop.resize(crop_size, Image.Resampling.LANCZOS), crop_box[:2])
        full_mask = Image.new("L", picture.size, 0)
        full_mask.paste(mask, crop_box[:2])
        result.picture = Image.composite(pasted, result.picture, full_mask)
    return result


def _render_size(crop: tuple[int, int], native: int) -> tuple[int, int]:
    """The crop's shape at the model's native area, in multiples of 8 (the latent grid)."""
    scale = native / max(crop)
    return max(64, round(crop[0] * scale / 8) * 8), max(64, round(crop[1] * scale / 8) * 8)
