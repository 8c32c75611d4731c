"""Pure picture operations for inpainting: mask blur, fill, the "only masked" crop, pasting back."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageFilter, ImageOps

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), as PIL


def soften_mask(mask: Image.Image, *, invert: bool, blur: int) -> Image.Image:
    """The mask as the user means it: grey (white = repaint), inverted if asked, Gaussian-blurred."""
    grey = mask.convert("L")
    if invert:
        grey = ImageOps.invert(grey)
    if blur > 0:
        grey = grey.filter(ImageFilter.GaussianBlur(blur))
    return grey


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": the masked area painted with the colours around it, smoothly.

    Each masked pixel takes a Gaussian-weighted mean of the unmasked pixels (normalised
    convolution); coarse radii first, then finer ones where enough unmasked pixels are near.
    """
    import numpy as np
    from scipy.ndimage import gaussian_filter

    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    weight = np.asarray(mask.convert("L"), dtype=np.float64) / 255.0
    keep = (weight < 0.5).astype(np.float64)
    if keep.sum() == 0:  # nothing to take colours from: a neutral grey
        filled = np.full_like(pixels, 127.5)
    else:
        filled = np.broadcast_to(pixels[keep > 0].mean(axis=0), pixels.shape).copy()
        side = max(pixels.shape[:2])
        radius = side / 2
        while radius >= 1:
            support = gaussian_filter(keep, radius)
            colour = np.stack([gaussian_filter(pixels[..., c] * keep, radius) for c in range(3)], axis=-1)
            reliable = support > 1e-3
            filled[reliable] = colour[reliable] / support[reliable, None]
            radius /= 2
    alpha = weight[..., None]
    out = pixels * (1 - alpha) + filled * alpha
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), "RGB")


def mask_box(mask: Image.Image, padding: int, aspect: tuple[int, int]) -> Box | None:
    """The masked area's bounding box grown by ``padding``, then to the ``aspect`` (width, height) ratio.

    Stays inside the picture (shifted away from the edges when it can be). None for an empty mask.
    """
    bbox = mask.getbbox()
    if bbox is None:
        return None
    width, height = mask.size
    left, top, right, bottom = bbox
    left, top = max(0, left - padding), max(0, top - padding)
    right, bottom = min(width, right + padding), min(height, bottom + padding)
    target = aspect[0] / aspect[1]
    box_w, box_h = right - left, bottom - top
    if box_w / box_h < target:
        left, right = _grow(left, right, min(width, round(box_h * target)), width)
    else:
        top, bottom = _grow(top, bottom, min(height, round(box_w / target)), height)
    return left, top, right, bottom


def _grow(start: int, end: int, size: int, limit: int) -> tuple[int, int]:
    """Grow [start, end) to ``size`` around its centre, shifted to stay inside [0, limit)."""
    if size <= end - start:
        return start, end
    centre = (start + end) / 2
    new_start = round(centre - size / 2)
    new_start = min(max(0, new_start), limit - size)
    return new_start, new_start + size


Composite = Callable[[Image.Image, Image.Image, Image.Image], Image.Image]
"""(generated, original, soft mask) -> the final picture."""


def paste_back(
    original: Image.Image,
    rendered: Image.Image,
    box: Box,
    mask: Image.Image,
    composite: Composite | None = None,
) -> Image.Image:
    """Put a render of ``box`` back into ``original``, blended through the (soft) full-size mask."""
    size = (box[2] - box[0], box[3] - box[1])
    canvas = original.convert("RGB").copy()
    canvas.paste(rendered.convert("RGB").resize(size, Image.Resampling.LANCZOS), box[:2])
    return (composite or keep_outside)(canvas, original, mask)


def keep_outside(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """The generated pixels inside the mask, the original's outside, blended along the soft edge."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask.convert("L"))


# Context around an only-masked area when the user gives none: the crop holds the area and about
# three quarters of its size on each side (so a pair of eyes comes with the face around them).
CONTEXT_PER_SIDE = 0.75
MIN_CONTEXT = 32


def context_padding(mask: Image.Image) -> int:
    """The padding for an only-masked crop, from the size of the masked area."""
    bbox = mask.getbbox()
    if bbox is None:
        return 0
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    return max(MIN_CONTEXT, -(-side * 3 // 4))
