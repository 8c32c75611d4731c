"""Tiles and made masks from the command line, end to end on a tiny model saved as a diffusers folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli.main import app

runner = CliRunner()
FAST = ["--steps", "3", "--sampler", "Euler", "--seed", "5"]


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def _saved(result: object) -> tuple[Image.Image, dict[str, object]]:
    stdout: str = result.stdout  # pyright: ignore[reportAttributeAccessIssue]
    with Image.open(json.loads(stdout)["images"][0]["file"]) as saved:
        return saved.convert("RGB"), json.loads(saved.info["sfumato"])["request"]


def test_outpaint_tiles_and_upscale_seam_fix(tiny_model_folder: Path, picture: Path, tmp_path: Path) -> None:
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out"), "--json"]
    result = runner.invoke(app, ["outpaint", str(picture), "--right", "64", "--tiles", "a castle", *model])
    assert result.exit_code == 0, result.stderr
    image, recipe = _saved(result)
    assert image.size == (128, 64) and recipe["outpaint"]["tiled"] is True  # type: ignore[index]
    result = runner.invoke(app, ["upscale", str(picture), "a castle", "--scale", "2", "--seam-fix", *model])
    assert result.exit_code == 0, result.stderr
    image, recipe = _saved(result)
    assert image.size == (128, 128) and recipe["upscale"]["seam_fix"]["width"] == 32  # type: ignore[index]


def test_generate_tiled_and_inpaint_a_box_softly(
    tiny_model_folder: Path, picture: Path, tmp_path: Path
) -> None:
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out"), "--json"]
    args = ["generate", "a castle", "-W", "160", "-H", "64", "--tiled-diffusion", "--tile-overlap", "32"]
    result = runner.invoke(app, [*args, "--tiled-method", "MultiDiffusion", "--tiled-vae", *model])
    assert result.exit_code == 0, result.stderr
    image, recipe = _saved(result)
    assert image.size == (160, 64) and recipe["tiled_vae"] is True
    assert recipe["tiled_diffusion"] == {"tile": None, "overlap": 32, "method": "MultiDiffusion"}
    args = [
        "inpaint",
        "--init",
        str(picture),
        "a castle",
        "--mask-box",
        "8,8,24,24",
        "--soft",
        "--strength",
        "1",
    ]
    result = runner.invoke(app, [*args, "--mask-blur", "0", *model])
    assert result.exit_code == 0, result.stderr
    image, recipe = _saved(result)
    original = np.asarray(Image.open(picture).convert("RGB"))
    out = np.asarray(image)
    outside = np.ones((64, 64), dtype=bool)
    outside[8:32, 8:32] = False
    assert np.array_equal(out[outside], original[outside]) and recipe["soft_inpainting"] is not None
    both = runner.invoke(app, [*args, "--mask", str(picture), *model])
    assert both.exit_code == 1 and "no mask" in json.loads(both.stdout)["error"]  # --json: errors as JSON
