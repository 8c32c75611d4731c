"""`sfumato models …` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from sfumato.cli.models import models_app


@pytest.mark.builtin_model
def test_add_folder_then_list_as_json_with_hashes(tmp_path: Path) -> None:
    folder = tmp_path / "ComfyUI" / "models" / "checkpoints"
    folder.mkdir(parents=True)
    save_file(
        {
            "cond_stage_model.transformer.text_model.x": torch.zeros(2),
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
        },
        str(folder / "mine.safetensors"),
    )
    runner = CliRunner()

    added = runner.invoke(models_app, ["add-folder", str(tmp_path / "ComfyUI")])
    listed = runner.invoke(models_app, ["list", "--json", "--hash"])

    assert added.exit_code == 0, added.output
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    builtin = [e for e in entries if e["name"] in ("sfumato-demo", "2x-sfumato-demo")]
    assert [(e["kind"], e["architecture"]) for e in builtin] == [
        ("checkpoint", "sd1"),
        ("upscaler", "RealESRGAN Compact"),
    ]
    assert [
        (e["name"], e["kind"], e["architecture"], len(e["hash"])) for e in entries if e not in builtin
    ] == [("mine", "checkpoint", "sd1", 10)]


def test_identify_refuses_a_disguised_pickle_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x80\x02}q\x00.")

    result = CliRunner().invoke(models_app, ["identify", str(path)])

    assert result.exit_code == 1
    assert "sfumato models convert" in result.output
    assert "Traceback" not in result.output


def test_convert_writes_a_safetensors_file(tmp_path: Path) -> None:
    source = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"w": torch.ones(3)}}, source)

    result = CliRunner().invoke(models_app, ["convert", str(source)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "old.safetensors").is_file()
