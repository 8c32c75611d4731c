"""Tiled upscaling (GOBIG, A1111's "SD upscale"): enlarge, re-render overlapping native-size tiles by
img2img at a low denoise, blend the overlaps along linear feathers.

Each tile is an ordinary img2img request, so every sampler, LoRA and prompt feature works in it;
only one tile is ever in memory on the model's side, whatever the picture's size.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.images import load_image, to_data_uri
from sfumato.core.request import GenerationRequest
from sfumato.core.result import GeneratedImage, GenerationResult

if TYPE_CHECKING:
    import numpy as np

    from sfumato.models.components import Components
    from sfumato.prompts.networks import Resolver


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of ``tile`` pixels start so that they cover ``length``, neighbours sharing at least
    ``overlap`` pixels (spread evenly, multiples of 8)."""
    if tile >= length:
        return [0]
    count = 1 + -(-(length - tile) // (tile - overlap))
    step = (length - tile) / (count - 1)
    return sorted({min(length - tile, round(i * step / 8) * 8) for i in range(count)})


def feather(size: tuple[int, int], overlap: int, neighbours: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """A tile's blending weight: 1 inside, rising linearly across ``overlap`` pixels on each side
    (top, bottom, left, right) that has a neighbour."""
    import numpy as np

    width, height = size
    ramp_y, ramp_x = np.ones(height), np.ones(width)
    if overlap > 0:
        rise = (np.arange(overlap) + 0.5) / overlap
        top, bottom, left, right = neighbours
        n = min(overlap, height)
        if top:
            ramp_y[:n] = np.minimum(ramp_y[:n], rise[:n])
        if bottom:
            ramp_y[-n:] = np.minimum(ramp_y[-n:], rise[:n][::-1])
        n = min(overlap, width)
        if left:
            ramp_x[:n] = np.minimum(ramp_x[:n], rise[:n])
        if right:
            ramp_x[-n:] = np.minimum(ramp_x[-n:], rise[:n][::-1])
    return ramp_y[:, None] * ramp_x[None, :]


Band = tuple[tuple[int, int, int, int], Image.Image]  # crop box (left, top, right, bottom), band mask


def seam_bands(
    size: tuple[int, int], tile: tuple[int, int], xs: list[int], ys: list[int], band: int = 32
) -> list[Band]:
    """Native-size crops centred on every border between neighbouring tiles, each with a mask of
    ``band`` pixels across the border (the middle of the tiles' overlap), along the whole crop."""
    width, height = size
    tile_w, tile_h = tile
    found: list[Band] = []
    for left, right in itertools.pairwise(xs):
        border = (right + left + tile_w) // 2
        x = min(max(0, border - tile_w // 2) // 8 * 8, width - tile_w)
        for y in ys:
            mask = Image.new("L", (tile_w, tile_h), 0)
            mask.paste(255, (border - band // 2 - x, 0, border + band // 2 - x, tile_h))
            found.append(((x, y, x + tile_w, y + tile_h), mask))
    for top, bottom in itertools.pairwise(ys):
        border = (bottom + top + tile_h) // 2
        y = min(max(0, border - tile_h // 2) // 8 * 8, height - tile_h)
        for x in xs:
            mask = Image.new("L", (tile_w, tile_h), 0)
            mask.paste(255, (0, border - band // 2 - y, tile_w, border + band // 2 - y))
            found.append(((x, y, x + tile_w, y + tile_h), mask))
    return found


def _tile_size(request: GenerationRequest, native: int, size: tuple[int, int]) -> tuple[int, int]:
    assert request.upscale is not None
    asked = request.upscale.tile
    if asked is not None and (asked > size[0] or asked > size[1]):
        raise InvalidRequest(
            f"The tiles ({asked} pixels) are larger than the upscaled picture ({size[0]}x{size[1]}).",
            "Use smaller tiles, or leave the tile size out (the model's native size).",
        )
    tile = asked or native
    if request.upscale.overlap >= tile:
        raise InvalidRequest(
            f"An overlap of {request.upscale.overlap} pixels leaves nothing of {tile}-pixel tiles.",
            "Use an overlap of less than half the tile size.",
        )
    return min(tile, size[0]), min(tile, size[1])


def upscale_tiled(
    components: Components,
    request: GenerationRequest,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    preview_every: int = 5,
    resolve: Resolver | None = None,
) -> GenerationResult:
    import numpy as np

    from sfumato.engine.generate import generate
    from sfumato.engine.seeds import image_seed, resolve_seed

    assert request.upscale is not None and request.init_image is not None
    original = load_image(request.init_image, "init image").convert("RGB")
    width, height = request.upscale.size(original.size)
    if (request.width, request.height) not in ((None, None), (width, height)):
        raise InvalidRequest(
            f"Upscaling this picture by {request.upscale.scale:g} makes {width}x{height}, not "
            f"{request.width}x{request.height}.",
            "Leave width and height out of an upscale request.",
        )
    tile_w, tile_h = _tile_size(request, components.native_size, (width, height))
    overlap = request.upscale.overlap
    big = original.resize((width, height), Image.Resampling.LANCZOS)
    xs, ys = tile_starts(width, tile_w, overlap), tile_starts(height, tile_h, overlap)
    tiles = [(x, y) for y in ys for x in xs]
    seed, variation_seed = resolve_seed(request.seed), resolve_seed(request.variation_seed)
    steps_per_tile = min(request.steps, max(1, int(request.steps * request.denoising_strength)))
    seam_fix = request.upscale.seam_fix
    if seam_fix is not None and seam_fix.width >= min(tile_w, tile_h):
        raise InvalidRequest(
            f"A seam-fix band of {seam_fix.width} pixels is as wide as the {min(tile_w, tile_h)}-pixel tiles.",
            "Use a narrower band (32 is usual).",
        )
    bands = (
        seam_bands((width, height), (tile_w, tile_h), xs, ys, seam_fix.width) if seam_fix is not None else []
    )
    steps_per_band = 0
    if seam_fix is not None:
        steps_per_band = min(request.steps, max(1, int(request.steps * seam_fix.denoising_strength)))
    all_steps = steps_per_tile * len(tiles) + steps_per_band * len(bands)
    images: list[GeneratedImage] = []
    notes: list[str] = []
    total = request.images_total
    for index in range(total):
        canvas = np.zeros((height, width, 3))
        weight = np.zeros((height, width, 1))
        extra: dict[str, str] = {}
        for number, (x, y) in enumerate(tiles):

            def progress(
                event: StepProgress, done: int = number * steps_per_tile, batch: int = index
            ) -> None:
                if on_progress is not None:
                    on_progress(StepProgress(done + event.step, all_steps, batch, total, event.preview))

            tile = big.crop((x, y, x + tile_w, y + tile_h))
            part = request.model_copy(
                update={
                    "upscale": None,
                    "init_image": to_data_uri(tile),
                    "width": tile_w,
                    "height": tile_h,
                    "seed": image_seed(seed, index),
                    "variation_seed": image_seed(variation_seed, index),
                    "batch_size": 1,
                    "batch_count": 1,
                }
            )
            result = generate(
                components,
                part,
                on_progress=progress,
                cancel=cancel,
                preview_every=preview_every,
                resolve=resolve,
            )
            notes += [note for note in result.notes if note not in notes]
            extra = result.images[0].extra
            neighbours = (y > 0, y + tile_h < height, x > 0, x + tile_w < width)
            w = feather((tile_w, tile_h), overlap, neighbours)[..., None]
            canvas[y : y + tile_h, x : x + tile_w] += np.asarray(result.images[0].image, dtype=np.float64) * w
            weight[y : y + tile_h, x : x + tile_w] += w
        picture = Image.fromarray((canvas / weight).round().clip(0, 255).astype(np.uint8), "RGB")
        for number, (box, band) in enumerate(bands):
            assert seam_fix is not None

            def band_progress(
                event: StepProgress,
                done: int = len(tiles) * steps_per_tile + number * steps_per_band,
                batch: int = index,
            ) -> None:
                if on_progress is not None:
                    on_progress(StepProgress(done + event.step, all_steps, batch, total, event.preview))

            part = request.model_copy(
                update={
                    "upscale": None,
                    "init_image": to_data_uri(picture.crop(box)),
                    "mask": to_data_uri(band),
                    "mask_blur": seam_fix.mask_blur,
                    "denoising_strength": seam_fix.denoising_strength,
                    "width": box[2] - box[0],
                    "height": box[3] - box[1],
                    "seed": image_seed(seed, index),
                    "variation_seed": image_seed(variation_seed, index),
                    "batch_size": 1,
                    "batch_count": 1,
                }
            )
            result = generate(
                components,
                part,
                on_progress=band_progress,
                cancel=cancel,
                preview_every=preview_every,
                resolve=resolve,
            )
            notes += [note for note in result.notes if note not in notes]
            picture.paste(result.images[0].image, box[:2])
        recipe = request.model_copy(
            update={
                "seed": image_seed(seed, index),
                "variation_seed": image_seed(variation_seed, index),
                "batch_size": 1,
                "batch_count": 1,
                "fix_crop": False,
            }
        )
        images.append(
            GeneratedImage(image=picture, recipe=recipe, model=components.info, index=index, extra=extra)
        )
    return GenerationResult(images=images, notes=notes)
