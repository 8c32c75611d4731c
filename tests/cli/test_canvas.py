"""`sfumato outpaint` and `sfumato fix-crop`, end to end on a tiny model saved as a diffusers folder."""

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


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".tmp")) if folder.exists() else []


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_outpaint_saves_the_grown_picture_and_its_recipe_reproduces_it(
    tiny_model_folder: Path, picture: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "out"
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(outputs)]
    result = runner.invoke(
        app,
        [
            "outpaint",
            str(picture),
            "--top",
            "16",
            "--left",
            "0",
            "--right",
            "5",
            "a castle",
            *model,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    first = Path(json.loads(result.stdout)["images"][0]["file"])
    with Image.open(first) as saved:
        assert saved.size == (72, 80)  # 5 pixels on the right round up to 8
        grown = np.asarray(saved.convert("RGB"))
        assert "Denoising strength: 0.75" in saved.info["parameters"]
    assert np.array_equal(grown[16 + 8 :, : 64 - 8], np.asarray(Image.open(picture))[8:, :56])

    again = runner.invoke(app, ["generate", "--from", str(first), "-o", str(outputs)])
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(np.asarray(Image.open(again.stdout.strip()).convert("RGB")), grown)

    # Without a prompt, the picture's own recipe gives it.
    more = runner.invoke(app, ["outpaint", str(first), "--bottom", "8", *model])
    assert more.exit_code == 0, more.stderr
    with Image.open(more.stdout.strip()) as bigger:
        assert bigger.size == (72, 88) and bigger.info["parameters"].startswith("a castle\n")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--top", "0"], {}, "outpainting by 0 on every side changes nothing"),
        (["--top", "64"], {"SFUMATO_MAX_CANVAS_SIDE": "96"}, "the maximum is 96 a side"),
        (["--top", "8", "--fill", "clouds"], {}, "outpaint.fill"),
    ],
)
def test_bad_outpaints_are_one_line_and_write_nothing(
    tiny_model_folder: Path,
    picture: Path,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    outputs = tmp_path / "out"
    result = runner.invoke(
        app,
        ["outpaint", str(picture), *args, "x", "--model", str(tiny_model_folder), "-o", str(outputs)],
        env=env,
    )
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith("error:") and expected in message and len(message.splitlines()) <= 3, message
    assert not _pngs(outputs)


def test_a_picture_without_a_recipe_needs_a_prompt(
    tiny_model_folder: Path, picture: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["outpaint", str(picture), "--top", "8", "--model", str(tiny_model_folder), "-o", str(tmp_path)]
    )
    assert result.exit_code == 1 and "holds no prompt" in result.stderr


def test_fix_crop_with_nothing_cut_off_is_one_line_and_writes_nothing(
    tiny_model_folder: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.png"
    picture = Image.new("RGB", (64, 64), "white")
    picture.paste((200, 0, 0), (20, 20, 40, 40))
    picture.save(whole)
    outputs = tmp_path / "out"
    result = runner.invoke(
        app, ["fix-crop", str(whole), "a red square", "--model", str(tiny_model_folder), "-o", str(outputs)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: The main subject does not touch the frame")
    assert not _pngs(outputs)
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(outputs)]
    grown = runner.invoke(app, ["fix-crop", str(whole), "a red square", "--side", "left", *model])
    assert grown.exit_code == 0, grown.stderr
    assert Image.open(grown.stdout.strip()).size == (80, 64)


def test_generate_with_hires_fix_and_its_recall(tiny_model_folder: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(outputs)]
    hires = ["--hr-scale", "1.5", "--hr-upscaler", "Lanczos", "--hr-steps", "4", "--hr-denoise", "0.5"]
    result = runner.invoke(app, ["generate", "a castle", *hires, *model])
    assert result.exit_code == 0, result.stderr
    first = Path(result.stdout.strip())
    with Image.open(first) as saved:
        assert saved.size == (96, 96)
        assert "Hires upscale: 1.5, Hires steps: 4, Hires upscaler: Lanczos" in saved.info["parameters"]
        grown = np.asarray(saved.convert("RGB"))
    again = runner.invoke(app, ["generate", "--from", str(first), "-o", str(outputs)])
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(np.asarray(Image.open(again.stdout.strip()).convert("RGB")), grown)
    plain = runner.invoke(app, ["generate", "a castle", "--hires", *model])
    assert plain.exit_code == 0 and Image.open(plain.stdout.strip()).size == (128, 128)
    bad = runner.invoke(app, ["generate", "a castle", "--hr-upscaler", "ESRGAN", *model])
    assert bad.exit_code == 1 and "No hires upscaler named 'ESRGAN'" in bad.stderr


def test_outpaint_to_an_aspect_ratio(tiny_model_folder: Path, picture: Path, tmp_path: Path) -> None:
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out")]
    result = runner.invoke(app, ["outpaint", str(picture), "--aspect", "16:9", "a castle", *model])
    assert result.exit_code == 0, result.stderr
    with Image.open(result.stdout.strip()) as wide:
        assert wide.size == (112, 64)  # 16:9 of a 64-pixel height is 113.8: 24 pixels on each side
        recipe = json.loads(wide.info["sfumato"])["request"]
    assert recipe["outpaint"]["left"] == recipe["outpaint"]["right"] == 24
    assert recipe["init_image"] == str(picture.resolve())
    bad = runner.invoke(app, ["outpaint", str(picture), "--aspect", "wide", "a castle", *model])
    assert bad.exit_code == 1 and "is not W:H" in bad.stderr


def test_upscale_tiled(tiny_model_folder: Path, picture: Path, tmp_path: Path) -> None:
    model = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out")]
    result = runner.invoke(app, ["upscale", str(picture), "a castle", "--scale", "2", "--tiled", *model])
    assert result.exit_code == 0, result.stderr
    with Image.open(result.stdout.strip()) as big:
        assert big.size == (128, 128)
        assert json.loads(big.info["sfumato"])["request"]["upscale"]["scale"] == 2
    bad = runner.invoke(app, ["upscale", str(picture), "a castle", "--scale", "2", "--tile", "256", *model])
    assert bad.exit_code == 1 and "larger than the upscaled picture" in bad.stderr
