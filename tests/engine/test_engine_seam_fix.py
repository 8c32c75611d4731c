"""The tiled upscale's seam-fix pass on tiny random models: bands across the tile borders only."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from engine_pictures import pixels, write_picture
from PIL import Image

from sfumato.core.errors import InvalidRequest
from sfumato.core.events import StepProgress
from sfumato.core.request import GenerationRequest, parse_request
from sfumato.engine.generate import generate
from sfumato.engine.tiled_upscale import seam_bands, tile_starts
from sfumato.models.components import Components


def test_bands_cross_every_border_between_tiles() -> None:
    xs, ys = tile_starts(160, 64, 16), tile_starts(64, 64, 16)
    bands = seam_bands((160, 64), (64, 64), xs, ys, 16)
    assert xs == [0, 48, 96] and len(bands) == 2  # two vertical borders, one row of tiles
    for (box, mask), border in zip(bands, (56, 104), strict=True):
        assert box[2] - box[0] == 64 and box[0] <= border - 8 and border + 8 <= box[2]
        covered = np.nonzero(np.asarray(mask)[0])[0] + box[0]
        assert covered.min() == border - 8 and covered.max() == border + 7


def _request(init: str, **seam_fix: object) -> GenerationRequest:
    upscale: dict[str, object] = {"scale": 2.5, "overlap": 16}
    if seam_fix:
        upscale["seam_fix"] = seam_fix
    return GenerationRequest.model_validate(
        {"prompt": "a red circle", "steps": 4, "seed": 3, "sampler": "Euler", "init_image": init}
        | {"denoising_strength": 0.5, "upscale": upscale}
    )


def test_the_seam_fix_changes_only_the_bands(sd1: Components, tmp_path: Path) -> None:
    init = write_picture(tmp_path / "in.png", (64, 48))
    plain = pixels(generate(sd1, _request(init)).images[0].image)
    events: list[StepProgress] = []
    fixed = generate(
        sd1, _request(init, width=16, mask_blur=0, denoising_strength=0.5), on_progress=events.append
    )
    out = pixels(fixed.images[0].image)
    assert out.shape == plain.shape == (120, 160, 3)
    changed = np.abs(out - plain).max(-1) > 0
    inside = np.zeros_like(changed)
    xs, ys = tile_starts(160, 64, 16), tile_starts(120, 64, 16)
    for a, b in itertools.pairwise(xs):  # the middle of each overlap, 8 pixels each side
        inside[:, (a + b + 64) // 2 - 8 : (a + b + 64) // 2 + 8] = True
    for a, b in itertools.pairwise(ys):
        inside[(a + b + 64) // 2 - 8 : (a + b + 64) // 2 + 8, :] = True
    assert changed.any() and not changed[~inside].any()
    # 9 tiles and 12 bands (2 borders x 3 rows, 2 borders x 3 columns), 2 steps each: one job.
    assert events[-1].step == events[-1].steps == 2 * (9 + 12)
    assert fixed.images[0].recipe.upscale is not None and fixed.images[0].recipe.upscale.seam_fix is not None


def test_a_band_as_wide_as_the_tiles_is_refused(sd1: Components, tmp_path: Path) -> None:
    init = write_picture(tmp_path / "in.png", (64, 48))
    with pytest.raises(InvalidRequest, match="as wide as the 64-pixel tiles"):
        generate(sd1, _request(init, width=64))
    with pytest.raises(InvalidRequest, match=r"seam_fix\.width"):
        parse_request({"init_image": init, "upscale": {"seam_fix": {"width": 4}}})


def test_cli_upscale_seam_fix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sfumato.cli.main import app

    picture = tmp_path / "in.png"
    Image.new("RGB", (96, 96), (200, 30, 30)).save(picture)
    args = ["upscale", str(picture), "a red square", "--scale", "2", "--seam-fix", "--seam-fix-width", "600"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "seam_fix.width" in result.output
