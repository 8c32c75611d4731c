"""Outpainting an area larger than the model's native size: native-size tiles that overlap what is
already known (the picture, then the tiles rendered before), rendered one after another, nearest to
the picture first.

A model sees at most its native size well; one inpaint of a canvas three times wider draws nonsense
in the far part. Each tile here is an ordinary inpaint of a native-size crop of the grown canvas:
what is not yet rendered is repainted, and a feathered band of what is known (``seam`` pixels) is
re-rendered with it, so every tile continues the picture next to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from sfumato.core.events import CancelToken, ProgressCallback, StepProgress
from sfumato.core.images import load_image, to_data_uri
from sfumato.core.request import GenerationRequest, MaskedContent, OutpaintFill
from sfumato.core.result import GeneratedImage, GenerationResult
from sfumato.engine.outpaint import canvas_size, margins, prefill
from sfumato.engine.tiled_upscale import tile_starts

if TYPE_CHECKING:
    import numpy as np

    from sfumato.models.components import Components
    from sfumato.prompts.networks import Resolver

AUTOMATIC_ABOVE = 2  # canvases more than this many native sizes on a side are grown in tiles


def wants_tiles(components: Components, request: GenerationRequest) -> bool:
    assert request.outpaint is not None
    if request.outpaint.tiled is not None:
        return request.outpaint.tiled
    return max(canvas_size(request)) > AUTOMATIC_ABOVE * components.native_size


def tile_order(
    size: tuple[int, int], known: tuple[int, int, int, int], tile: tuple[int, int]
) -> list[tuple[int, int]]:
    """Top-left corners of the tiles that hold new pixels, nearest to the ``known`` box first. Tiles
    overlap by a quarter: each one continues what is beside it, and has room for a whole object of
    its own (at half overlap a tile's subject would be cut by the known half)."""
    width, height = size
    tile_w, tile_h = tile
    left, top, right, bottom = known
    corners = [
        (x, y)
        for y in tile_starts(height, tile_h, tile_h // 4)
        for x in tile_starts(width, tile_w, tile_w // 4)
        if not (left <= x and x + tile_w <= right and top <= y and y + tile_h <= bottom)
    ]

    def distance(corner: tuple[int, int]) -> tuple[float, int, int]:
        cx, cy = corner[0] + tile_w / 2, corner[1] + tile_h / 2
        dx = max(left - cx, 0.0, cx - right)
        dy = max(top - cy, 0.0, cy - bottom)
        return (dx**2 + dy**2, corner[1], corner[0])

    return sorted(corners, key=distance)


def repaint_mask(done: np.ndarray, seam: int) -> Image.Image:
    """White over what is not rendered yet, fading linearly across ``seam`` pixels of what is."""
    import numpy as np
    from scipy.ndimage import distance_transform_edt

    if done.all():
        return Image.new("L", (done.shape[1], done.shape[0]), 0)
    distance = np.asarray(distance_transform_edt(done))
    ramp = np.clip(1.0 - (distance - 0.5) / seam, 0.0, 1.0) if seam > 0 else (~done).astype(np.float64)
    ramp[~done] = 1.0
    return Image.fromarray((ramp * 255).round().astype(np.uint8), "L")


def outpaint_in_tiles(
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

    outpaint = request.outpaint
    assert outpaint is not None and request.init_image is not None
    width, height = canvas_size(request)
    picture = load_image(request.init_image, "init image").convert("RGB")
    top, _, left, _ = grow = margins(outpaint, picture.size)
    known = (left, top, left + picture.width, top + picture.height)
    native = components.native_size
    tile = (min(native, width), min(native, height))
    corners = tile_order((width, height), known, tile)
    content = (
        MaskedContent.latent_noise if outpaint.fill is OutpaintFill.latent_noise else request.masked_content
    )
    seed, variation_seed = resolve_seed(request.seed), resolve_seed(request.variation_seed)
    steps = min(request.steps, max(1, int(request.steps * request.denoising_strength)))
    total = request.images_total
    images: list[GeneratedImage] = []
    notes: list[str] = []
    for index in range(total):
        canvas = prefill(picture, grow, outpaint.fill)
        done = np.zeros((height, width), dtype=bool)
        done[known[1] : known[3], known[0] : known[2]] = True
        extra: dict[str, str] = {}
        for number, (x, y) in enumerate(corners):
            box = (x, y, x + tile[0], y + tile[1])
            window = done[y : y + tile[1], x : x + tile[0]]
            if window.all():
                continue

            def progress(event: StepProgress, first: int = number * steps, batch: int = index) -> None:
                if on_progress is not None:
                    on_progress(
                        StepProgress(first + event.step, steps * len(corners), batch, total, event.preview)
                    )

            part = request.model_copy(
                update={
                    "outpaint": None,
                    "tiled_diffusion": None,
                    "init_image": to_data_uri(canvas.crop(box)),
                    "mask": to_data_uri(repaint_mask(window, outpaint.seam)),
                    "mask_blur": 0,
                    "masked_content": content,
                    "inpaint_only_masked": False,
                    "width": tile[0],
                    "height": tile[1],
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
            canvas.paste(result.images[0].image, box[:2])
            window[:] = True
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
            GeneratedImage(image=canvas, recipe=recipe, model=components.info, index=index, extra=extra)
        )
    return GenerationResult(images=images, notes=notes)
