"""Run an X/Y/Z plot: every cell rendered and saved with its own recipe, then the labelled grid."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.images import ImageFormat
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.core.xyz import XYZPlot

if TYPE_CHECKING:
    from PIL import Image

    from sfumato.jobs.runner import SavedPicture

Cell = tuple[tuple[int, int, int], GenerationRequest]


def plot_cells(plot: XYZPlot) -> list[Cell]:
    """The cells, one picture each, all with the same concrete seed unless the seed is an axis (as A1111)."""
    from sfumato.engine.seeds import resolve_seed

    fixed = plot.request.model_copy(
        update={
            "seed": resolve_seed(plot.request.seed),
            "variation_seed": resolve_seed(plot.request.variation_seed),
            "batch_size": 1,
            "batch_count": 1,
        }
    )
    return plot.model_copy(update={"request": fixed}).cells()


def open_rgb(path: Path) -> Image.Image:
    from PIL import Image

    with Image.open(path) as picture:
        return picture.convert("RGB")


def grid_picture(plot: XYZPlot, pictures: dict[tuple[int, int, int], Image.Image]) -> Image.Image:
    from sfumato.engine.grid import labelled_grid

    return labelled_grid(
        pictures,
        plot.x.labels(),
        plot.y.labels() if plot.y else [],
        plot.z.labels() if plot.z else [],
    )


def save_plot_grid(
    settings: Settings,
    plot: XYZPlot,
    cells: list[Cell],
    pictures: dict[tuple[int, int, int], Image.Image],
    files: list[str],
) -> Path:
    """The grid, saved under outputs/grids with the plot and every cell's file in it."""
    from sfumato.archive.files import save_grid

    described: dict[str, Any] = {
        "plot": plot.model_dump(mode="json"),
        "cells": [
            {"x": i[0], "y": i[1], "z": i[2], "file": f} for (i, _), f in zip(cells, files, strict=True)
        ],
    }
    first = cells[0][1]
    return save_grid(
        grid_picture(plot, pictures),
        settings.outputs / "grids",
        json.dumps(described),
        first.seed,
        first.prompt,
    )


@dataclass
class PlotOutput:
    grid: Path
    cells: list[SavedPicture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_plot(
    settings: Settings,
    plot: XYZPlot,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    image_format: ImageFormat = "png",
) -> PlotOutput:
    """Every cell is checked before the first is rendered, so a bad value writes nothing."""

    from sfumato.jobs.runner import check_limits, run_request
    from sfumato.models.cache import ModelCache

    cells = plot_cells(plot)
    for _, request in cells:
        check_limits(settings, request)
    cache = ModelCache(settings.model_cache_bytes)
    saved: list[SavedPicture] = []
    notes: list[str] = []
    for _, request in cells:
        output = run_request(
            settings, request, on_progress=on_progress, cancel=cancel, cache=cache, image_format=image_format
        )
        saved.append(output.pictures[0])
        notes += [note for note in output.notes if note not in notes]
    pictures = {index: open_rgb(picture.file) for (index, _), picture in zip(cells, saved, strict=True)}
    files = [str(picture.record.path) for picture in saved]
    return PlotOutput(grid=save_plot_grid(settings, plot, cells, pictures, files), cells=saved, notes=notes)
