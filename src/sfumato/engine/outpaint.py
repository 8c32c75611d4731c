"""Outpainting: the grown canvas, its pre-filled new area and the feathered mask of what is re-rendered.

The whole grown canvas is one inpaint: the model sees every known pixel as context, repaints the
new area and a seam band over the known picture, and the band is blended back along a linear
feather so no edge shows where the old frame was.
"""

from __future__ import annotations

from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.images import load_image
from sfumato.core.request import GenerationRequest, Outpaint, OutpaintFill

Margins = tuple[int, int, int, int]  # top, bottom, left, right, in pixels

# Sigma of the mirror's blur grows with the distance from the known picture, between these.
_MIN_SIGMA, _MAX_SIGMA, _SIGMA_PER_PIXEL = 2.0, 16.0, 1 / 3


def margins(outpaint: Outpaint, size: tuple[int, int]) -> Margins:
    """How many pixels each side of a picture of ``size`` grows, the rounding to 8 included."""
    width, height, x, y = outpaint.canvas(size)
    return y, height - y - size[1], x, width - x - size[0]


def canvas_size(request: GenerationRequest) -> tuple[int, int]:
    """The size an outpaint request renders at: the init picture's, grown."""
    assert request.outpaint is not None and request.init_image is not None
    picture = load_image(request.init_image, "init image")
    width, height, _, _ = request.outpaint.canvas(picture.size)
    if (request.width, request.height) not in ((None, None), (width, height)):
        raise InvalidRequest(
            f"Outpainting this picture makes a {width}x{height} canvas, not "
            f"{request.width}x{request.height}.",
            "Leave width and height out of an outpaint request.",
        )
    return width, height


def prefill(picture: Image.Image, grow: Margins, fill: OutpaintFill) -> Image.Image:
    """The picture on its grown canvas, the new area painted from the picture's own edges."""
    import numpy as np
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    top, bottom, left, right = grow
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
    pad = ((top, bottom), (left, right), (0, 0))
    if fill is not OutpaintFill.blurred_mirror:
        # Latent noise starts from fresh noise in the latents; its pixels only seed the colours.
        grown = np.pad(pixels, pad, mode="edge")
        return Image.fromarray(grown.round().astype(np.uint8), "RGB")
    grown = np.pad(pixels, pad, mode="symmetric")
    known = np.zeros(grown.shape[:2], dtype=bool)
    known[top : top + pixels.shape[0], left : left + pixels.shape[1]] = True
    distance = np.asarray(distance_transform_edt(~known))
    sigma = np.clip(distance * _SIGMA_PER_PIXEL, _MIN_SIGMA, _MAX_SIGMA)
    # Blur at a few strengths and take, per pixel, the one its distance from the picture asks for.
    levels = [_MIN_SIGMA * 2**k for k in range(int(np.log2(_MAX_SIGMA / _MIN_SIGMA)) + 1)]
    choice = np.abs(np.log2(sigma)[..., None] - np.log2(levels)).argmin(-1)
    out = grown.copy()
    for index, level in enumerate(levels):
        where = (choice == index) & ~known
        if where.any():
            blurred = np.stack([gaussian_filter(grown[..., c], level) for c in range(3)], axis=-1)
            out[where] = blurred[where]
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), "RGB")


def seam_mask(size: tuple[int, int], grow: Margins, seam: int) -> Image.Image:
    """White over the new area, fading linearly to black across ``seam`` pixels of the known picture."""
    import numpy as np

    width, height = size
    top, bottom, left, right = grow
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    # Distance into the known picture from each grown side (negative: in the new area).
    inside = [rows - top, height - bottom - 1 - rows, cols - left, width - right - 1 - cols]
    mask = np.zeros((height, width), dtype=np.float64)
    for grows, depth in zip(grow, inside, strict=True):
        if not grows:
            continue
        ramp = 1.0 - (depth + 0.5) / seam if seam > 0 else (depth < 0).astype(np.float64)
        mask = np.maximum(mask, np.clip(np.broadcast_to(ramp, mask.shape), 0.0, 1.0))
    return Image.fromarray((mask * 255).round().astype(np.uint8), "L")


def grown_canvas(picture: Image.Image, outpaint: Outpaint) -> tuple[Image.Image, Image.Image]:
    """The pre-filled canvas and its soft mask (white = repaint)."""
    grow = margins(outpaint, picture.size)
    canvas = prefill(picture, grow, outpaint.fill)
    return canvas, seam_mask(canvas.size, grow, outpaint.seam)
