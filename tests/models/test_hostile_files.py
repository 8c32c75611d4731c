"""Hostile model files through every way a user loads one from the command line: one clear error line,
exit code 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from hostile import SAFETENSORS, one_line_error, write_folders, write_safetensors
from sfumato.cli.main import app

runner = CliRunner()
FAST = ["--steps", "1", "--sampler", "Euler", "--seed", "3"]
# What identify reads of a folder: its UNet and scheduler configs (the other parts are read on load).
IDENTIFY_READS = ("unet-config", "unet-in-channels", "unet-cross-attention", "scheduler-config")
# The classes of the issue, for the slower entry points (the whole corpus goes through the fast ones).
SAMPLE = ["deep-nesting", "offset-1e999", "shape-1e999", "offset-negative", "dtype-list", "header-not-utf8"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_safetensors(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def hostile_folders(tmp_path_factory: pytest.TempPathFactory, tiny_model_folder: Path) -> dict[str, Path]:
    return write_folders(tmp_path_factory.mktemp("hostile-folders"), tiny_model_folder)


def _refused(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, (args, result.exit_code, result.output, result.exception)
    assert one_line_error(result.output), (args, result.output)
    return result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("name", sorted(SAFETENSORS))
def test_identify_and_generate_refuse_a_hostile_file_in_one_line(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    path = corpus[name]
    line = _refused(["models", "identify", str(path)])
    assert path.name in line
    assert _refused(["generate", "x", "--model", str(path), *FAST, "-o", str(tmp_path)]) == line
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.png"))


def test_the_messages_say_what_is_wrong(corpus: dict[str, Path]) -> None:
    said = {name: _refused(["models", "identify", str(corpus[name])]) for name in SAMPLE}
    assert "nested more than 4 levels deep" in said["deep-nesting"]
    assert "1e999, too large to be finite" in said["offset-1e999"]
    assert "1e999" in said["shape-1e999"]
    assert "data offsets that are not two whole numbers >= 0" in said["offset-negative"]
    assert "data type Sfumato does not know" in said["dtype-list"]
    assert "not UTF-8" in said["header-not-utf8"]


@pytest.mark.parametrize("name", SAMPLE)
def test_generate_refuses_a_hostile_vae(
    name: str, corpus: dict[str, Path], tiny_model_folder: Path, tmp_path: Path
) -> None:
    line = _refused(
        [
            "generate",
            "x",
            "--model",
            str(tiny_model_folder),
            "--vae",
            str(corpus[name]),
            *FAST,
            "-o",
            str(tmp_path),
        ]
    )
    assert corpus[name].name in line


def test_every_hostile_folder_is_refused_by_generate_and_identify(
    hostile_folders: dict[str, Path], tmp_path: Path
) -> None:
    for name, folder in hostile_folders.items():
        line = _refused(["generate", "x", "--model", str(folder), *FAST, "-o", str(tmp_path)])
        assert name in line, line  # the folder (or the file inside it) is named
        if name.startswith(IDENTIFY_READS):
            _refused(["models", "identify", str(folder)])
    said = _refused(["models", "identify", str(hostile_folders["unet-config-list"])])
    assert "unet-config-list/unet/config.json is not a valid model config: it is not a JSON object" in said


def test_a_folder_scan_lists_hostile_files_as_unreadable(corpus: dict[str, Path], tmp_path: Path) -> None:
    listed = runner.invoke(
        app,
        ["models", "list", "--json", "--hash"],
        env={"SFUMATO_MODEL_FOLDERS": json.dumps([str(next(iter(corpus.values())).parent)])},
    )
    assert listed.exit_code == 0, listed.output
    entries = {e["name"]: e for e in json.loads(listed.stdout)}
    assert set(corpus) <= set(entries)
    assert entries["offset-1e999"]["architecture"] == "unreadable"
    assert entries["pickle"]["architecture"] == "unsafe"


def _network_library(tmp_path: Path, corpus: dict[str, Path]) -> Path:
    """An A1111 models/ tree whose LoRA and embeddings folders hold hostile files."""
    models = tmp_path / "webui" / "models"
    for sub in ("Lora", "embeddings"):
        (models / sub).mkdir(parents=True)
        for name in SAMPLE:
            (models / sub / f"bad-{name}.safetensors").write_bytes(corpus[name].read_bytes())
    # well-formed tensors whose shapes do not multiply: a LoRA that lies about its rank
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file(
        {f"{key}.lora_down.weight": torch.ones(4, 7), f"{key}.lora_up.weight": torch.ones(5, 3)},
        str(models / "Lora" / "bad-rank.safetensors"),
    )
    save_file({"emb_params": torch.tensor(1.0)}, str(models / "embeddings" / "bad-scalar.safetensors"))
    return tmp_path / "webui"


def test_hostile_loras_in_a_prompt_are_refused_and_hostile_embeddings_noted(
    corpus: dict[str, Path], tiny_model_folder: Path, tmp_path: Path
) -> None:
    env = {"SFUMATO_MODEL_FOLDERS": json.dumps([str(_network_library(tmp_path, corpus))])}
    base = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out")]
    for name in [*SAMPLE, "rank"]:
        line = _refused(["generate", f"a cat <lora:bad-{name}:0.8>", *base], env)
        assert f"bad-{name}" in line, line
    # Any word of a prompt may name an embedding, so a broken one is a note and the picture is made.
    for name in [*SAMPLE, "scalar"]:
        result = runner.invoke(app, ["generate", f"a cat, bad-{name}", *base], env=env)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        said = " ".join(result.output.split())  # the note wraps at the terminal's width
        assert f"note: Embedding 'bad-{name}' could not be used: bad-{name}.safetensors" in said


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAFETENSORS))
def test_every_hostile_file_as_a_vae_and_a_lora(
    name: str, corpus: dict[str, Path], tiny_model_folder: Path, tmp_path: Path
) -> None:
    base = ["--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path / "out")]
    assert corpus[name].name in _refused(["generate", "x", "--vae", str(corpus[name]), *base])
    loras = tmp_path / "models" / "Lora"
    loras.mkdir(parents=True)
    (loras / f"bad-{name}.safetensors").write_bytes(corpus[name].read_bytes())
    env = {"SFUMATO_MODEL_FOLDERS": json.dumps([str(tmp_path)])}
    assert f"bad-{name}" in _refused(["generate", f"a cat <lora:bad-{name}:0.8>", *base], env)
