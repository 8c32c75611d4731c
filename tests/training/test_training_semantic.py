"""Teaching the demo model a word for pink through the CLI as a user would: 8 captioned pictures in a
folder, `sfumato train embedding|lora`, then `sfumato generate` over 6 seeds, read by the judge.
The textual inversion's test takes about 40 s, the LoRA's about 10 s.

The demo model draws pink but has no word for it (see its MODEL_CARD: the word "pink" is in no caption,
and a later stage showed the UNet pink objects under the word "rosa"). Neither test's word is one the
model knows: "sfpink" and "pinkish" draw orange, red or another palette colour without what was taught.
On the model before that stage, which had never drawn pink, no textual inversion could reach it (20
recipes read pink in at most 2 of 6 seeds): an embedding steers a frozen model only to what it draws.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli.main import app
from sfumato.demo import judge, world
from sfumato.training.world_examples import concept_examples

pytestmark = pytest.mark.skipif(
    not (Path(world.__file__).parent / "model" / "unet" / "config.json").is_file(),
    reason="the demo model is not exported into the package",
)
runner = CliRunner()
SEEDS = 6
TRAIN = ["train"]
TI = ["--steps", "300", "--lr", "0.1", "--json"]
LORA = ["--rank", "4", "--steps", "60", "--lr", "0.01", "--json"]
PINK = np.array(world.ALL_COLOURS["pink"], dtype=np.float32)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semantic-home")


def _pictures(folder: Path, word: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, example in enumerate(concept_examples(8, colour="pink", name=word)):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    return folder


def _env(home: Path) -> dict[str, str]:
    return {"SFUMATO_DATA_DIR": str(home / "data"), "SFUMATO_CONFIG": str(home / "config.toml")}


def _generate(home: Path, prompt: str) -> list[Image.Image]:
    result = runner.invoke(
        app,
        [
            "generate",
            prompt,
            "--seed",
            "0",
            "-c",
            str(SEEDS),
            "--steps",
            "20",
            "-o",
            str(home / "out"),
            "--json",
        ],
        env=_env(home),
    )
    assert result.exit_code == 0, result.stderr
    return [Image.open(item["file"]).convert("RGB") for item in json.loads(result.stdout)["images"]]


def _distance_to_pink(picture: Image.Image) -> float:
    objects = judge.judge(picture).objects
    if not objects:
        return float("inf")
    pixels = np.asarray(picture, dtype=np.float32)
    box = objects[0].box
    region = pixels[box[1] : box[3], box[0] : box[2]].reshape(-1, 3)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    inside = region[np.abs(region - background).sum(-1) > 60]
    colour = inside.mean(0) if len(inside) else region.mean(0)
    return float(np.linalg.norm(colour - PINK))


def _colours(pictures: list[Image.Image]) -> list[list[str]]:
    return [[o.colour for o in judge.judge(p).objects] for p in pictures]


def test_a_textual_inversion_trained_by_the_cli_draws_pink_and_only_with_it(home: Path) -> None:
    folder = _pictures(home / "pink-ti", "sfpink")
    trained = runner.invoke(
        app,
        [*TRAIN, "embedding", "--images", str(folder), "--name", "sfpink", "--init-text", "purple", *TI],
        env=_env(home),
    )
    assert trained.exit_code == 0, trained.stderr
    prompt = "a large sfpink circle in the center on a gray background"
    taught = _generate(home, prompt)
    home_without = home / "without"
    home_without.mkdir(exist_ok=True)
    without = _generate(home_without, prompt)
    near, far = [_distance_to_pink(p) for p in taught], [_distance_to_pink(p) for p in without]
    print("embedding", _colours(taught), near, "without", _colours(without), far)
    # Measured: the judge read pink in 6 of 6 seeds with the embedding, none without (orange in 6).
    # 150 steps at lr 0.05 read pink in 2 of 6.
    assert sum("pink" in c for c in _colours(taught)) >= 4, _colours(taught)
    assert not any("pink" in c for c in _colours(without))
    assert sum(n < f - 20 for n, f in zip(near, far, strict=True)) >= 4, (near, far)


def test_a_lora_trained_by_the_cli_draws_pink_and_only_with_it(home: Path) -> None:
    folder = _pictures(home / "pink-lora", "pinkish")
    trained = runner.invoke(
        app,
        [*TRAIN, "lora", "--images", str(folder), "--name", "pinkish", "--trigger", "pinkish", *LORA],
        env=_env(home),
    )
    assert trained.exit_code == 0, trained.stderr
    prompt = "a large pinkish circle in the center on a gray background"
    with_lora = _generate(home, prompt + " <lora:pinkish:1>")
    without = _generate(home, prompt)
    near, far = [_distance_to_pink(p) for p in with_lora], [_distance_to_pink(p) for p in without]
    print("lora", _colours(with_lora), near, "without", _colours(without), far)
    # Measured: the judge read pink in 6 of 6 seeds with the LoRA (object colour 72-78 from pink),
    # none without (red/green/blue, 189-237).
    assert sum("pink" in c for c in _colours(with_lora)) >= 4, _colours(with_lora)
    assert not any("pink" in c for c in _colours(without))
    assert sum(n < f - 20 for n, f in zip(near, far, strict=True)) >= 4, (near, far)
