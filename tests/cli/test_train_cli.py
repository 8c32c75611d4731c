"""`sfumato train embedding|lora` on a tiny model folder: the file in the library that `generate`
then uses, the dry run, and the refusals as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli.main import app
from sfumato.training.world_examples import concept_examples

runner = CliRunner()


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index, example in enumerate(concept_examples(4, colour="pink", name="sfpink")):
        example.image.save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(example.caption)
    return folder


def _train(kind: str, pictures: Path, model: Path, *extra: str) -> tuple[int, str, str]:
    args = ["train", kind, "--images", str(pictures), "--model", str(model), "--steps", "2", "--batch", "2"]
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.stdout, result.stderr


def test_an_embedding_trained_by_the_cli_is_used_by_generate(
    tiny_model_folder: Path, pictures: Path, tmp_path: Path
) -> None:
    code, out, err = _train("embedding", pictures, tiny_model_folder, "--name", "sfpink", "--json")
    assert code == 0, err
    written = Path(json.loads(out)["path"])
    assert written.name == "sfpink.safetensors" and written.parent.name == "embeddings"
    generated = runner.invoke(
        app,
        [
            "generate",
            "a sfpink circle",
            "--model",
            str(tiny_model_folder),
            "--steps",
            "2",
            "-o",
            str(tmp_path),
        ],
    )
    assert generated.exit_code == 0, generated.stderr
    with Image.open(generated.stdout.strip()) as picture:
        assert "sfpink" in picture.info["parameters"]
        assert "TI hashes" in picture.info["parameters"] or "sfpink:" in picture.info["parameters"]

    again = _train("embedding", pictures, tiny_model_folder, "--name", "sfpink")
    assert again[0] == 1 and "already an embedding called 'sfpink'" in again[2] and "--overwrite" in again[2]


def test_a_lora_and_the_dry_run(tiny_model_folder: Path, pictures: Path) -> None:
    code, out, err = _train(
        "lora", pictures, tiny_model_folder, "--name", "pinkish", "--trigger", "sfpink", "--dry-run"
    )
    assert code == 0, err
    assert "0.png: a " in out and "Memory estimate" in out and "Prepared pictures and captions" in out
    code, out, err = _train("lora", pictures, tiny_model_folder, "--name", "pinkish", "--trigger", "sfpink")
    assert code == 0, err
    assert "<lora:pinkish:1>" in out and "Lora" in out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "holds no pictures"),
        ("small", "smaller than the model's 64x64"),
        ("broken", "cannot be read as a picture"),
    ],
)
def test_bad_folders_get_one_line_errors(
    tiny_model_folder: Path, tmp_path: Path, setup: str, message: str
) -> None:
    folder = tmp_path / setup
    folder.mkdir()
    if setup == "small":
        Image.new("RGB", (40, 40)).save(folder / "a.png")
    if setup == "broken":
        (folder / "a.png").write_bytes(b"not a png")
    code, _, err = _train("embedding", folder, tiny_model_folder, "--name", "x")
    assert code == 1 and message in err
    assert "Traceback" not in err and err.count("\n") <= 2


def test_a_bad_name_and_a_memory_refusal(tiny_model_folder: Path, pictures: Path) -> None:
    code, _, err = _train("embedding", pictures, tiny_model_folder, "--name", "../up")
    assert code == 1 and "name" in err and "Traceback" not in err
    code, _, err = _train("embedding", pictures, tiny_model_folder, "--name", "big", "--memory-limit-mb", "1")
    assert code == 1 and "GiB is available" in err and "--gradient-checkpointing" in err
