"""A panorama three times the demo model's width, by latent-tiled diffusion: the judge finds one circle
per tile, all alike and in line, and no seam line shows at the tiles' borders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sfumato.core.tiling import TiledDiffusion
from sfumato.demo import judge, world
from sfumato.engine.tiled_upscale import tile_starts

MODEL = Path(world.__file__).parent / "model"

pytestmark = pytest.mark.skipif(
    not (MODEL / "unet" / "config.json").is_file(), reason="the demo model is not exported into the package"
)

PROMPT = "a large red circle in the center on a white background"
TILE, OVERLAP = 112, 24  # three tiles over 288 pixels: at 0, 88 and 176
STARTS = tile_starts(288, TILE, OVERLAP)


@pytest.fixture(scope="module")
def components() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def seam_ratio(image: Image.Image, borders: list[int]) -> float:
    """Gradient energy across the worst border column, over the median column's: a seam line stands out."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    columns = np.abs(np.diff(rgb, axis=1)).sum(-1).mean(0)  # columns[i]: between pixel i and i + 1
    at = [b - 1 for b in borders]
    return float(columns[at].max() / max(float(np.median(np.delete(columns, at))), 1e-6))


def _blobs(image: Image.Image) -> int:
    rgb = np.asarray(image, dtype=np.float64)
    foreground = np.linalg.norm(rgb - world.BACKGROUNDS["white"], axis=-1) > 70
    labels, count = ndimage.label(foreground)  # pyright: ignore[reportGeneralTypeIssues]
    return int((np.bincount(np.asarray(labels).ravel())[1:] > 20).sum()) if count else 0


def test_a_288x96_panorama_holds_three_whole_circles_without_seams(components: Any) -> None:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    borders = sorted({edge for start in STARTS for edge in (start, start + TILE)} - {0, 288})
    for seed in (1, 2, 3):
        request = GenerationRequest(
            prompt=PROMPT,
            seed=seed,
            steps=20,
            width=288,
            height=96,
            tiled_diffusion=TiledDiffusion(tile=TILE, overlap=OVERLAP),
        )
        image = generate(components, request).images[0].image
        assert image.size == (288, 96)
        centres = [start + TILE // 2 for start in STARTS]
        reads = [judge.judge(image.crop((c - 48, 0, c + 48, 96))) for c in centres]
        facts = [[(o.colour, o.shape, o.position, o.size) for o in read.objects] for read in reads]
        assert facts == [[("red", "circle", "center", "large")]] * 3, (seed, facts)
        assert all(read.background == "white" for read in reads) and _blobs(image) == 3
        # Measured (seeds 1-3 of three prompts): 0.76-1.07; three native renders side by side: 3.6-8.0.
        assert seam_ratio(image, borders) < 1.5, (seed, seam_ratio(image, borders))


def test_the_seam_measure_sees_the_border_of_pictures_put_side_by_side(components: Any) -> None:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    side_by_side = Image.new("RGB", (288, 96))
    for index in range(3):
        tile = (
            generate(components, GenerationRequest(prompt=PROMPT, seed=1 + index, steps=20)).images[0].image
        )
        side_by_side.paste(tile, (96 * index, 0))
    assert seam_ratio(side_by_side, [96, 192]) > 2


def test_cli_generate_tiled_diffusion(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sfumato.cli.main import app

    args = ["generate", PROMPT, "-W", "288", "-H", "96", "--tiled-diffusion", "--tile", str(TILE)]
    args += ["--tile-overlap", str(OVERLAP), "--seed", "2", "-o", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with Image.open(json.loads(result.stdout)["images"][0]["file"]) as saved:
        assert saved.size == (288, 96) and _blobs(saved.convert("RGB")) == 3
        recipe = json.loads(saved.info["sfumato"])["request"]
    assert recipe["tiled_diffusion"] == {"tile": TILE, "overlap": OVERLAP, "method": "Mixture of Diffusers"}
    refused = CliRunner().invoke(app, [*args[:6], "--tiled-diffusion", "--tile", "512", "-o", str(tmp_path)])
    assert refused.exit_code == 1 and "larger than the 288x96 canvas" in refused.output


@pytest.mark.slow
def test_tiled_upscale_with_the_seam_fix_keeps_the_picture(components: Any) -> None:
    # Measured (96 -> 384, 36 tiles, 60 bands, ~36 s): scaled back down 1.48 from the input, border
    # ratio 2.12 (without the fix 1.99; Lanczos 2.03). At a band denoise of 0.2 the star's bands grow
    # holes (read as a smiley): the built-in model draws objects into crops above about 0.15.
    from sfumato.core.images import to_data_uri
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    scene = world.Scene(
        (
            world.SceneObject("star", "yellow", "center", "large"),
            world.SceneObject("circle", "red", "top left", "small"),
        ),
        "blue",
    )
    source = world.render(scene)
    request = GenerationRequest.model_validate(
        {
            "prompt": "a large yellow star in the center and a small red circle at the top left on a blue background",
            "seed": 1,
            "steps": 20,
            "init_image": to_data_uri(source),
            "denoising_strength": 0.2,
            "upscale": {"scale": 4, "seam_fix": {"denoising_strength": 0.15}},
        }
    )
    image = generate(components, request).images[0].image
    down = np.asarray(image.resize(source.size, Image.Resampling.BOX), dtype=np.float64)
    assert np.abs(down - np.asarray(source, dtype=np.float64)).mean() < 3
    assert judge.judge(image).as_scene() == judge.judge(source).as_scene()
    borders = sorted({e for s in tile_starts(384, 96, 32) for e in (s, s + 96)} - {0, 384})
    lanczos = source.resize(image.size, Image.Resampling.LANCZOS)
    assert seam_ratio(image, borders) < 1.5 * seam_ratio(lanczos, borders)
