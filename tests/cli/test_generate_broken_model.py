"""A model whose weights make NaN: `sfumato generate` says so in one line and writes no picture."""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from sfumato.cli.main import app


def test_a_unet_with_a_nan_weight_is_one_clear_error_and_no_file(
    tiny_model_folder: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-sd"
    shutil.copytree(tiny_model_folder, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    tensors["conv_out.bias"][0] = float("nan")
    save_file(tensors, str(weights))
    outputs = tmp_path / "out"

    result = CliRunner().invoke(
        app,
        [
            "generate",
            "a red circle",
            "--model",
            str(broken),
            "--steps",
            "3",
            "--seed",
            "5",
            "-o",
            str(outputs),
        ],
    )

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "The UNet of model 'broken-sd' produced NaN or infinite values at step 1" in lines[0]
    assert "Nothing was saved" in lines[0]
    assert "Traceback" not in result.output
    assert not outputs.exists() or not any(path.is_file() for path in outputs.rglob("*"))
