"""The labelled grid of an X/Y/Z plot."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sfumato.engine.grid import labelled_grid


def test_a_grid_has_a_cell_per_picture_and_a_label_per_value() -> None:
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    cells = {(x, y, 0): Image.new("RGB", (64, 64), colours[x]) for x in range(3) for y in range(2)}
    grid = labelled_grid(cells, ["steps: 4", "steps: 8", "steps: 12"], ["cfg: 3", "cfg: 7"], [])
    pixels = np.asarray(grid, dtype=np.int16)
    dark = np.asarray((pixels < 100).all(-1))  # black text on white
    first = np.argwhere((pixels == colours[0]).all(-1))
    top, left = first.min(0)
    assert dark[:top, left:].any(), "no column labels"
    assert dark[top:, :left].any(), "no row labels"
    for x, colour in enumerate(colours):  # every x value has its own column, in order
        found = np.argwhere((pixels == colour).all(-1))
        assert len(found) == 2 * 64 * 64 and found[:, 1].min() > (left if x else left - 1)
        left = found[:, 1].max()
