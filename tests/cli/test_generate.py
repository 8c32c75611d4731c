"""The generate / img2img / inpaint commands, end to end on a tiny model saved as a diffusers folder."""

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


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _generate(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["generate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_generate_saves_a_png_with_its_recipe(tiny_model_folder: Path, outputs: Path) -> None:
    code, out, err = _generate(
        "a red circle", "-n", "blue", "--model", str(tiny_model_folder), *FAST, "-o", str(outputs)
    )
    assert code == 0, err
    path = Path(out.strip())
    assert path.is_file() and path.parent.parent == outputs
    with Image.open(path) as image:
        assert image.size == (64, 64)
        parameters = image.info["parameters"]
    assert parameters.startswith(
        "a red circle\nNegative prompt: blue\nSteps: 3, Sampler: Euler, CFG scale: 7"
    )
    assert "Seed: 5, Size: 64x64" in parameters

    listed = runner.invoke(app, ["archive", "list", "--json"], env={"SFUMATO_OUTPUT_DIR": str(outputs)})
    assert listed.exit_code == 0, listed.stderr
    assert [item["prompt"] for item in json.loads(listed.stdout)] == ["a red circle"]


def test_json_output_and_recall_reproduce_the_picture(tiny_model_folder: Path, outputs: Path) -> None:
    code, out, err = _generate(
        "a green star", "--model", str(tiny_model_folder), *FAST, "-o", str(outputs), "--json"
    )
    assert code == 0, err
    first = json.loads(out)["images"][0]
    assert first["seed"] == 5 and first["prompt"] == "a green star"

    code, out, err = _generate("--from", first["file"], "-o", str(outputs), "--json")
    assert code == 0, err
    again = json.loads(out)["images"][0]
    assert again["file"] != first["file"]
    assert np.array_equal(np.asarray(Image.open(first["file"])), np.asarray(Image.open(again["file"])))

    code, out, err = _generate("--from", first["file"], "--seed", "6", "-o", str(outputs), "--json")
    assert code == 0, err
    changed = json.loads(out)["images"][0]
    assert changed["seed"] == 6 and changed["prompt"] == "a green star"
    assert not np.array_equal(np.asarray(Image.open(first["file"])), np.asarray(Image.open(changed["file"])))


def test_batch_gets_consecutive_seeds(tiny_model_folder: Path, outputs: Path) -> None:
    code, out, err = _generate(
        "a cat", "--model", str(tiny_model_folder), *FAST, "-b", "2", "-c", "2", "-o", str(outputs), "--json"
    )
    assert code == 0, err
    assert [image["seed"] for image in json.loads(out)["images"]] == [5, 6, 7, 8]


def test_img2img_and_inpaint(tiny_model_folder: Path, outputs: Path, tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(init)
    mask = tmp_path / "mask.png"
    mask_image = Image.new("L", (64, 64), 0)
    mask_image.paste(255, (16, 16, 48, 48))
    mask_image.save(mask)
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(outputs)]

    result = runner.invoke(
        app, ["img2img", "--init", str(init), "a blue square", "--strength", "0.5", *model]
    )
    assert result.exit_code == 0, result.stderr
    assert "Denoising strength: 0.5" in Image.open(result.stdout.strip()).info["parameters"]

    result = runner.invoke(
        app,
        ["inpaint", "--init", str(init), "--mask", str(mask), "a blue square", "--mask-blur", "0", *model],
    )
    assert result.exit_code == 0, result.stderr
    painted = np.asarray(Image.open(result.stdout.strip()).convert("RGB")).astype(int)
    outside = np.ones((64, 64), bool)
    outside[12:52, 12:52] = False
    assert np.abs(painted[outside] - np.array([200, 30, 30])).max() <= 2


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    truncated = tmp_path / "truncated.png"
    buffer = tmp_path / "full.png"
    Image.new("RGB", (64, 64), "white").save(buffer)
    truncated.write_bytes(buffer.read_bytes()[:60])
    small_mask = tmp_path / "small_mask.png"
    Image.new("L", (32, 32), 255).save(small_mask)
    not_a_folder = tmp_path / "file-not-folder"
    not_a_folder.write_text("x")
    return {
        "width not a multiple of 8": (["generate", "x", "-W", "100"], "not a multiple of 8; try 96"),
        "width out of range": (["generate", "x", "-W", "8192"], "out of range"),
        "unknown sampler": (["generate", "x", "--sampler", "Euler b"], "unknown sampler 'Euler b'"),
        "steps 0": (["generate", "x", "--steps", "0"], "steps"),
        "strength above 1": (
            ["img2img", "--init", str(buffer), "x", "--strength", "1.5"],
            "denoising_strength",
        ),
        "NUL in the prompt": (["generate", "a\x00b"], "NUL"),
        "truncated init image": (["img2img", "--init", str(truncated), "x"], "could not be read"),
        "missing init image": (["img2img", "--init", str(tmp_path / "nope.png"), "x"], "could not be opened"),
        "mask size differs": (["inpaint", "--init", str(buffer), "--mask", str(small_mask), "x"], "mask"),
        "output folder is a file": (["generate", "x", "-o", str(not_a_folder)], "folder"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "width not a multiple of 8",
        "width out of range",
        "unknown sampler",
        "steps 0",
        "strength above 1",
        "NUL in the prompt",
        "truncated init image",
        "missing init image",
        "mask size differs",
        "output folder is a file",
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_is_written(
    case: str, tiny_model_folder: Path, outputs: Path, tmp_path: Path
) -> None:
    args, expected = _bad_inputs(tmp_path)[case]
    output_args = [] if "-o" in args else ["-o", str(outputs)]
    result = runner.invoke(app, [*args, "--model", str(tiny_model_folder), *output_args])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith("error:") and expected in message, message
    assert "Traceback" not in result.output and len(message.splitlines()) <= 3
    assert not [p for p in _files(outputs) if p.suffix in (".png", ".tmp")]


def test_missing_model_says_how_to_point_at_one(outputs: Path, tmp_path: Path) -> None:
    code, _, err = _generate("x", "--model", str(tmp_path / "no-such-model.safetensors"), "-o", str(outputs))
    assert code == 1
    assert "no-such-model" in err and "Traceback" not in err
