"""A labelled grid of pictures (X/Y/Z plots): columns for x values, rows for y, one block per z."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)
_GAP = 4


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own font (a scalable one where FreeType is built in): nothing to install or find.
    return ImageFont.load_default(size)


def _text_size(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> tuple[int, int]:
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def labelled_grid(
    cells: dict[tuple[int, int, int], Image.Image],
    x_labels: list[str],
    y_labels: list[str],
    z_labels: list[str],
    font_size: int = 14,
) -> Image.Image:
    """``cells`` by (x, y, z) index; pictures of other sizes are fitted into the first's."""
    first = next(iter(cells.values()))
    cell_w, cell_h = first.size
    # Column labels share one size, as large as lets the widest fit its column.
    while font_size > 8 and any(_text_size(_font(font_size), t)[0] > cell_w for t in x_labels):
        font_size -= 1
    font = _font(font_size)
    line = _text_size(font, "Ag")[1] + _GAP
    left = max((_text_size(font, label)[0] for label in y_labels), default=0) + 2 * _GAP if y_labels else 0
    top = line + _GAP if x_labels else 0
    title = line + _GAP if z_labels else 0
    columns, rows = max(1, len(x_labels)), max(1, len(y_labels))
    block_w = left + columns * (cell_w + _GAP)
    block_h = title + top + rows * (cell_h + _GAP)
    blocks = max(1, len(z_labels))
    grid = Image.new("RGB", (blocks * block_w + _GAP, block_h + _GAP), _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for z in range(blocks):
        x0 = _GAP + z * block_w
        if z_labels:
            draw.text((x0 + left, _GAP), z_labels[z], fill=_INK, font=font)
        for x, label in enumerate(x_labels):
            draw.text((x0 + left + x * (cell_w + _GAP), _GAP + title), label, fill=_INK, font=font)
        for y, label in enumerate(y_labels):
            cy = _GAP + title + top + y * (cell_h + _GAP) + cell_h // 2 - line // 2
            draw.text((x0 + _GAP, cy), label, fill=_INK, font=font)
        for (x, y, cz), picture in cells.items():
            if cz != z:
                continue
            fitted = picture.convert("RGB")
            if fitted.size != (cell_w, cell_h):
                fitted = fitted.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
            grid.paste(fitted, (x0 + left + x * (cell_w + _GAP), _GAP + title + top + y * (cell_h + _GAP)))
    return grid
