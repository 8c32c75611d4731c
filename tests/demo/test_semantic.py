"""What the shipped demo model draws, read back by the judge (fixed seeds, native size).

These tests check what features do to a picture; they replace guesswork for later features.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sfumato.core.request import SAMPLERS
from sfumato.demo import judge, world

MODEL = Path(world.__file__).parent / "model"

pytestmark = pytest.mark.skipif(
    not (MODEL / "unet" / "config.json").is_file(), reason="the demo model is not exported into the package"
)


@pytest.fixture(scope="module")
def components() -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), None)


def draw(components: Any, prompt: str, seed: int, **settings: Any) -> Image.Image:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    request = GenerationRequest(prompt=prompt, seed=seed, steps=settings.pop("steps", 15), **settings)
    return generate(components, request).images[0].image


def test_the_demo_model_is_the_default_and_draws_at_native_size(components: Any) -> None:
    image = draw(components, "a red circle on a white background", seed=0)
    assert image.size == (world.NATIVE_SIZE, world.NATIVE_SIZE)


@pytest.mark.parametrize(
    ("prompt", "colour", "shape", "background"),
    [
        ("a red circle in the center on a white background", "red", "circle", "white"),
        ("a large blue square on a yellow background", "blue", "square", "yellow"),
        ("a big yellow star in the middle, black background", "yellow", "star", "black"),
    ],
)
def test_txt2img_follows_colour_shape_and_background(
    components: Any, prompt: str, colour: str, shape: str, background: str
) -> None:
    reads = [judge.judge(draw(components, prompt, seed)) for seed in (1, 2, 3)]
    assert all(r.background == background for r in reads), reads
    assert sum(any(o.colour == colour for o in r.objects) for r in reads) >= 2, reads
    assert sum(any(o.colour == colour and o.shape == shape for o in r.objects) for r in reads) >= 2, reads


def test_negative_prompt_removes_the_colour_it_names(components: Any) -> None:
    def red_pictures(negative: str) -> int:
        reads = [
            judge.judge(draw(components, "a circle", seed, negative_prompt=negative)) for seed in range(6)
        ]
        return sum(any(o.colour == "red" for o in r.objects) for r in reads)

    with_plain_prompt = draw(components, "a red circle", 0)
    assert any(o.colour == "red" for o in judge.judge(with_plain_prompt).objects)
    assert red_pictures("red") == 0


def test_higher_cfg_raises_adherence(components: Any) -> None:
    import numpy as np

    # Measured (48 held-out captions, mean share of asked attributes shown): CFG 1 0.869, CFG 3 0.928,
    # CFG 5 0.926, CFG 7 0.906. This model follows text well even unguided, so the gain is modest and
    # needs many captions to show over the noise of single pictures: its first 24 alone gain 0.035,
    # the other 24 0.079.
    rng = np.random.default_rng(7)
    captions = [world.caption(world.sample_scene(rng, held_out=True), rng, complete=True) for _ in range(48)]

    def adherence(cfg: float) -> float:
        total = 0.0
        for seed, text in enumerate(captions):
            scores = judge.score(
                world.parse_caption(text), judge.judge(draw(components, text, seed, cfg_scale=cfg))
            )
            total += sum(scores.values()) / len(scores)
        return total / len(captions)

    assert adherence(5.0) > adherence(1.0) + 0.04


# LCM needs a consistency-distilled model; the demo model is not one (it runs, but is not judged).
SAMPLERS_TO_JUDGE = [name for name in SAMPLERS if name != "LCM"]


@pytest.mark.parametrize("sampler", SAMPLERS_TO_JUDGE)
def test_every_sampler_draws_a_judged_correct_picture(components: Any, sampler: str) -> None:
    prompt = "a large yellow circle in the center on a blue background"
    reads = [judge.judge(draw(components, prompt, seed, sampler=sampler, steps=20)) for seed in (1, 2)]
    assert any(
        r.background == "blue" and any(o.colour == "yellow" and o.position == "center" for o in r.objects)
        for r in reads
    ), (sampler, reads)


def _save(image: Image.Image, path: Path) -> str:
    image.save(path)
    return str(path)


START = world.Scene((world.SceneObject("circle", "red", "top left", "large"),), "white")


def test_img2img_low_strength_keeps_the_objects_and_high_strength_follows_the_prompt(
    components: Any, tmp_path: Path
) -> None:
    init = _save(world.render(START), tmp_path / "start.png")
    prompt = "a large blue square at the bottom right on a yellow background"
    kept = judge.judge(draw(components, prompt, 1, init_image=init, denoising_strength=0.25))
    assert kept.background == "white"
    assert any(o.colour == "red" and o.position == "top left" for o in kept.objects), kept
    changed = [
        judge.judge(draw(components, prompt, seed, init_image=init, denoising_strength=1.0))
        for seed in (1, 2)
    ]
    assert all(r.background == "yellow" for r in changed), changed
    assert any(any(o.colour == "blue" for o in r.objects) for r in changed), changed


def test_inpainting_puts_the_object_in_the_mask_and_leaves_the_rest(components: Any, tmp_path: Path) -> None:
    import numpy as np
    from PIL import ImageDraw, ImageFilter

    start = world.render(START)
    mask = Image.new("L", start.size, 0)
    ImageDraw.Draw(mask).rectangle([60, 60, 95, 95], fill=255)
    init, mask_path = _save(start, tmp_path / "start.png"), _save(mask, tmp_path / "mask.png")
    results = []
    for seed in (1, 2):
        image = draw(
            components,
            "a large blue square at the bottom right on a white background",
            seed,
            init_image=init,
            mask=mask_path,
            denoising_strength=1.0,
        )
        outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
        diff = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(start, dtype=np.int16)).max(-1)
        assert (diff[outside] > 8).mean() < 0.02
        results.append(judge.judge(image))
    assert any(
        any(o.colour == "blue" and o.position == "bottom right" for o in r.objects) for r in results
    ), results
    assert all(any(o.colour == "red" and o.position == "top left" for o in r.objects) for r in results)


def test_the_readme_command_saves_a_picture_of_what_it_asks(tmp_path: Path) -> None:
    # The README's first command with default settings (its seed is random; these stand in for it).
    import re

    from typer.testing import CliRunner

    from sfumato.cli.main import app

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    match = re.search(r'sfumato generate "([^"]+)"', readme)
    assert match, "the README's first command is not a `sfumato generate` call"
    prompt = match.group(1)
    asked = world.parse_caption(prompt)
    for seed in (0, 1, 2, 3):
        result = CliRunner().invoke(
            app, ["generate", prompt, "--seed", str(seed), "-o", str(tmp_path / "out")]
        )
        assert result.exit_code == 0, result.stderr
        with Image.open(Path(result.stdout.strip())) as saved:
            read = judge.judge(saved.convert("RGB"))
        assert all(value == 1.0 for value in judge.score(asked, read).values()), (seed, read)


CUT_PROMPT = "a large red circle on a white background"


def cut_off_circle() -> Image.Image:
    """A large red circle whose top is cut off by the frame: the scene drawn 12 pixels too low a camera."""
    scene = world.Scene((world.SceneObject("circle", "red", "top", "large"),), "white")
    picture = Image.new("RGB", (world.NATIVE_SIZE, world.NATIVE_SIZE), world.BACKGROUNDS["white"])
    picture.paste(world.render(scene).crop((0, 12, world.NATIVE_SIZE, world.NATIVE_SIZE)), (0, 0))
    return picture


def judged_on_a_square(image: Image.Image) -> judge.Judgement:
    """The judge reads square pictures; a tall one is centred on a square of its background."""
    side = max(image.size)
    square = Image.new("RGB", (side, side), world.BACKGROUNDS["white"])
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return judge.judge(square)


def complete_red_circles(image: Image.Image) -> list[judge.JudgedObject]:
    read = judged_on_a_square(image)
    side = max(image.size)
    return [
        o
        for o in read.objects
        if o.colour == "red" and o.shape == "circle" and o.box[1] > 0 and o.box[3] < side
    ]


def test_outpainting_upwards_completes_a_circle_cut_off_by_the_top_edge(
    components: Any, tmp_path: Path
) -> None:
    import numpy as np

    cut = cut_off_circle()
    assert judge.judge(cut).objects[0].box[1] == 0  # the circle touches the top edge
    init = _save(cut, tmp_path / "cut.png")
    for seed in (1, 2, 3):
        image = draw(components, CUT_PROMPT, seed, init_image=init, outpaint={"top": 48}, steps=20)
        assert image.size == (96, 144)
        read = judged_on_a_square(image)
        assert len(read.objects) == 1 and len(complete_red_circles(image)) == 1, (seed, read)
        # Below the new area and its 8-pixel seam band the picture is the one given.
        kept = np.asarray(image, dtype=np.int16)[48 + 8 :]
        changed = np.abs(kept - np.asarray(cut, dtype=np.int16)[8:]).max(-1) > 8
        assert changed.mean() < 0.02, (seed, changed.mean())


def _with_recipe(image: Image.Image, path: Path, prompt: str) -> Path:
    from sfumato.archive.files import encode
    from sfumato.core.request import GenerationRequest
    from sfumato.core.result import GeneratedImage, ModelInfo

    recipe = GenerationRequest(prompt=prompt, seed=1, steps=20, width=image.width, height=image.height)
    path.write_bytes(encode(GeneratedImage(image=image, recipe=recipe, model=ModelInfo("sfumato-demo"))))
    return path


def test_fix_crop_finds_the_cut_off_side_and_completes_the_circle(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sfumato.cli.main import app

    picture = _with_recipe(cut_off_circle(), tmp_path / "cut.png", CUT_PROMPT)
    for seed in (1, 2, 3):
        result = CliRunner().invoke(
            app, ["fix-crop", str(picture), "--seed", str(seed), "-o", str(tmp_path / "out"), "--json"]
        )
        assert result.exit_code == 0, result.stderr
        saved = json.loads(result.stdout)["images"][0]
        with Image.open(saved["file"]) as fixed:
            image = fixed.convert("RGB")
        assert image.width == 96 and image.height > 96  # grown on the top, found by itself
        outpaint = json.loads(fixed.info["sfumato"])["request"]["outpaint"]
        assert outpaint["top"] > 0 and outpaint["bottom"] == outpaint["left"] == outpaint["right"] == 0
        assert saved["prompt"] == CUT_PROMPT
        read = judged_on_a_square(image)
        assert len(read.objects) == 1 and len(complete_red_circles(image)) == 1, (seed, read)


def test_the_fix_crop_flag_saves_the_render_and_its_fix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sfumato.cli.main import app

    init = _save(cut_off_circle(), tmp_path / "cut.png")
    args = ["img2img", "--init", init, CUT_PROMPT, "--strength", "0.2", "--seed", "2", "--fix-crop"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.stderr
    render, fix = (Path(item["file"]) for item in json.loads(result.stdout)["images"])
    with Image.open(render) as first, Image.open(fix) as second:
        assert first.size == (96, 96) and second.width == 96 and second.height > 96
        assert json.loads(second.info["sfumato"])["request"]["init_image"] == str(render)
        assert len(complete_red_circles(second.convert("RGB"))) == 1


HIRES_PROMPTS = (
    "a large yellow star in the center on a blue background",
    "a red circle at the top left on a white background",
    "a large green square at the bottom right on a black background",
)


@pytest.mark.parametrize(
    "upscaler", ["Lanczos", pytest.param("Latent (bicubic antialiased)", marks=pytest.mark.slow)]
)
def test_hires_fix_96_to_192_keeps_the_judged_facts_of_the_first_pass(components: Any, upscaler: str) -> None:
    # Measured (these 3 prompts and a small purple triangle, seeds 1-3): the facts held in 12/12 at
    # denoise 0.1 for both upscalers; at 0.15 in 7/12 (Lanczos) and 10/12 (latent), at 0.2 in 7/12 and
    # 8/12. The demo model only knows 96x96, so a stronger second pass redraws a large object at the
    # object size it knows, in pieces (the model before its pink stage held 12/12 with Lanczos at 0.15).
    for index, prompt in enumerate(HIRES_PROMPTS):
        first = draw(components, prompt, index + 1, steps=20)
        second = draw(
            components, prompt, index + 1, steps=20, hires={"upscaler": upscaler, "denoising_strength": 0.1}
        )
        assert second.size == (192, 192)
        assert judge.judge(second).as_scene() == judge.judge(first).as_scene(), (prompt, upscaler)


def test_tiled_upscale_96_to_384_keeps_the_picture_without_seams(components: Any, tmp_path: Path) -> None:
    import numpy as np

    from sfumato.engine.tiled_upscale import tile_starts

    scene = world.Scene(
        (
            world.SceneObject("star", "yellow", "center", "large"),
            world.SceneObject("circle", "red", "top left", "small"),
        ),
        "blue",
    )
    source = world.render(scene)
    prompt = "a large yellow star in the center and a small red circle at the top left on a blue background"
    # Measured: mean difference after scaling back down 1.3 (denoise 0.2), 2.5 (0.3); at 0.4 the model
    # starts drawing small objects inside the tiles.
    image = draw(
        components,
        prompt,
        1,
        init_image=_save(source, tmp_path / "in.png"),
        upscale={"scale": 4},
        denoising_strength=0.2,
        steps=20,
    )
    assert image.size == (384, 384)
    down = np.asarray(image.resize(source.size, Image.Resampling.BOX), dtype=np.float64)
    assert np.abs(down - np.asarray(source, dtype=np.float64)).mean() < 3
    assert judge.judge(image).as_scene() == judge.judge(source).as_scene()
    # Seams: on the background, away from the objects, the picture should be flat; a seam is a step
    # there at a tile edge. Measured: 0.07 grey levels across tile edges against 0.09 between other
    # neighbours (ratio 0.82); lifting the 96-pixel square at (96, 96) of that picture by 1 grey level
    # gives 1.08, by 2 gives 1.39.
    edges = {e for s in tile_starts(384, 96, 32) for e in (s, s + 96)} - {0, 384}
    assert edge_ratio_on_background(image, world.render(scene, 384), edges) < 1.25


def edge_ratio_on_background(picture: Image.Image, plan: Image.Image, edges: set[int]) -> float:
    """Mean change across the pixel lines at ``edges`` over the mean change across all other lines,
    counted only on background at least 8 pixels from an object of ``plan`` (the scene at this size)."""
    import cv2
    import numpy as np

    layout = np.asarray(plan, dtype=np.int16)
    flat = (np.abs(layout - layout[0, 0]).sum(-1) < 30).astype(np.uint8)
    away = cv2.erode(flat, np.ones((17, 17), np.uint8)).astype(bool)
    grey = np.asarray(picture.convert("L"), dtype=np.float64)
    at_edges, elsewhere = [], []
    for changes, where in (
        (np.abs(np.diff(grey, axis=1)).T, (away[:, 1:] & away[:, :-1]).T),
        (np.abs(np.diff(grey, axis=0)), away[1:] & away[:-1]),
    ):
        for line, (change, keep) in enumerate(zip(changes, where, strict=True), start=1):
            if keep.any():
                (at_edges if line in edges else elsewhere).append(change[keep].mean())
    return float(np.mean(at_edges) / np.mean(elsewhere))
