"""`sfumato upscale` with an upscaler model (the default without --tiled) and `sfumato models list`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli.main import app
from upscaler_files import compact_state, esrgan_state, write

runner = CliRunner()


@pytest.fixture
def webui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "webui"
    write(root / "models" / "RealESRGAN" / "2x-tiny.safetensors", compact_state())
    write(root / "models" / "ESRGAN" / "4x-tiny.safetensors", esrgan_state())
    monkeypatch.setenv("SFUMATO_MODEL_FOLDERS", json.dumps([str(root)]))
    return root


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_models_list_shows_upscalers(webui: Path) -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    upscalers = {e["name"]: e["architecture"] for e in json.loads(result.stdout) if e["kind"] == "upscaler"}
    assert upscalers["2x-tiny"] == "RealESRGAN Compact" and upscalers["4x-tiny"] == "ESRGAN"


def test_upscale_with_a_model(webui: Path, picture: Path, tmp_path: Path) -> None:
    out = ["-o", str(tmp_path / "out")]
    result = runner.invoke(app, ["upscale", str(picture), "--upscaler", "4x-tiny", "--scale", "3", *out])
    assert result.exit_code == 0, result.stderr
    with Image.open(result.stdout.strip()) as big:
        assert big.size == (96, 72)
        assert big.info["parameters"] == "Postprocess upscale by: 3, Postprocess upscaler: 4x-tiny"
    plain = runner.invoke(app, ["upscale", str(picture), "--width", "50", *out])  # Lanczos by default
    assert plain.exit_code == 0, plain.stderr
    assert Image.open(plain.stdout.strip()).size == (50, 38)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upscaler", "R-ESRGAN 4x+"], "No upscaler named 'R-ESRGAN 4x+'"),
        (["--upscaler", "2x-tiny", "--scale", "8"], "would be 256x192 pixels; the maximum is 128 a side"),
        (
            ["--upscaler", "2x-tiny", "--tiled"],
            "--upscaler, --width and --height are for upscaling without --tiled",
        ),
        (["--no-tiled", "--tile", "256"], "A prompt, --tile, --overlap and --strength are for --tiled"),
    ],
)
def test_upscale_refusals(
    webui: Path, picture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("SFUMATO_MAX_CANVAS_SIDE", "128")
    result = runner.invoke(app, ["upscale", str(picture), *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and message in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_generate_with_upscale_and_recall(webui: Path, tiny_model_folder: Path, tmp_path: Path) -> None:
    fast = ["--model", str(tiny_model_folder), "--steps", "2", "--seed", "4", "-W", "64", "-H", "64"]
    out = ["-o", str(tmp_path / "out")]
    first = runner.invoke(
        app, ["generate", "a castle", *fast, "--upscale", "2x-tiny", "--upscale-by", "1.5", *out]
    )
    assert first.exit_code == 0, first.stderr
    with Image.open(first.stdout.strip()) as made:
        assert made.size == (96, 96)
        assert "Postprocess upscale by: 1.5, Postprocess upscaler: 2x-tiny" in made.info["parameters"]
        pixels = np.asarray(made.convert("RGB"))
    again = runner.invoke(app, ["generate", "--from", first.stdout.strip(), *out])
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(np.asarray(Image.open(again.stdout.strip()).convert("RGB")), pixels)
    # upscaling a Sfumato picture appends the step to its recipe: the new file reproduces too
    bigger = runner.invoke(
        app, ["upscale", first.stdout.strip(), "--upscaler", "Nearest", "--scale", "2", *out]
    )
    assert bigger.exit_code == 0, bigger.stderr
    with Image.open(bigger.stdout.strip()) as enlarged:
        steps = json.loads(enlarged.info["sfumato"])["request"]["postprocess"]
        assert [s["upscaler"] for s in steps] == ["2x-tiny", "Nearest"] and enlarged.size == (192, 192)
        assert "Postprocess upscaler: Nearest" in enlarged.info["parameters"]
        enlarged_pixels = np.asarray(enlarged.convert("RGB"))
    third = runner.invoke(app, ["generate", "--from", bigger.stdout.strip(), *out])
    assert np.array_equal(np.asarray(Image.open(third.stdout.strip()).convert("RGB")), enlarged_pixels)


def test_models_identify_names_the_upscaler_architecture(webui: Path) -> None:
    result = runner.invoke(
        app, ["models", "identify", str(webui / "models" / "ESRGAN" / "4x-tiny.safetensors")]
    )
    assert result.exit_code == 0 and result.stdout.strip() == "4x-tiny.safetensors: ESRGAN (upscaler)"
