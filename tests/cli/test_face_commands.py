"""`sfumato restore-faces`, `sfumato detail` and generate's face flags, end to end (demo model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from sfumato.archive.metadata import read_metadata
from sfumato.cli.main import app
from sfumato.demo import judge, world
from sfumato.postprocess.detect import smiley_confidence

runner = CliRunner()
SMILEY = world.SceneObject("smiley", "yellow", "center", "small")


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png")) if folder.exists() else []


@pytest.fixture
def blurred(tmp_path: Path) -> Path:
    picture = world.render(world.Scene((SMILEY,), "blue"))
    x0, y0, x1, y1 = world.object_box(SMILEY)
    area = (x0 - 4, y0 - 4, x1 + 4, y1 + 4)
    picture.paste(picture.crop(area).filter(ImageFilter.GaussianBlur(2)), area[:2])
    path = tmp_path / "blurred.png"
    picture.save(path)
    return path


def test_detail_saves_the_detailed_picture_and_its_crop(blurred: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    args = ["detail", str(blurred), "a yellow smiley face in the center, blue background", "--denoise", "0.6"]
    result = runner.invoke(
        app,
        [
            *args,
            "--padding",
            "16",
            "--seed",
            "0",
            "--steps",
            "15",
            "--save-crops",
            "-o",
            str(outputs),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = Path(json.loads(result.output)["file"])
    assert smiley_confidence(Image.open(saved), world.object_box(SMILEY), "yellow") > 0.7
    assert [o.shape for o in judge.judge(Image.open(saved)).objects] == ["smiley"]
    assert len(_pngs(outputs)) == 2  # the picture and its crop


def test_restore_faces_on_a_picture_without_faces_is_a_note(tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), (30, 60, 90)).save(flat)
    result = runner.invoke(app, ["restore-faces", str(flat), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "No face was found, so no face was restored." in result.output


def test_restore_faces_with_a_pickled_model_says_how_to_convert(tmp_path: Path) -> None:
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    folder = tmp_path / "models" / "GFPGAN"
    folder.mkdir(parents=True)
    torch.save({"params_ema": {}}, folder / "GFPGANv1.4.pth")
    config = tmp_path / "config.toml"
    config.write_text(f'model_folders = ["{(tmp_path / "models").as_posix()}"]\n')
    result = runner.invoke(
        app, ["restore-faces", str(photo), "-o", str(tmp_path / "out")], env={"SFUMATO_CONFIG": str(config)}
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "sfumato models convert" in result.output
    assert _pngs(tmp_path / "out") == []


def test_generate_with_the_anatomy_gate_and_detail_records_both(tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    args = ["generate", "a red circle", "--seed", "4", "--steps", "15", "--detail", "face"]
    gate = ["--gate-budget", "3", "--keep-rejected", "rejected"]
    result = runner.invoke(app, [*args, *gate, "-o", str(outputs), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{") :])
    [image] = answer["images"]
    assert any(note.startswith("Anatomy gate: set aside seed 4 ") for note in answer["notes"])
    recipe = read_metadata(image["file"]).request
    assert recipe is not None and recipe.anatomy_gate is not None and recipe.seed != 4
    assert [step.kind for step in recipe.postprocess] == ["detail"]
    assert len(judge.judge(Image.open(image["file"])).objects) == 1
    assert len(list((outputs / "rejected").glob("*.png"))) >= 1
    assert np.asarray(Image.open(image["file"])).shape == (96, 96, 3)


def test_a_bad_face_flag_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "a red circle", "--keep-rejected", "../elsewhere", "-o", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "inside the outputs folder" in result.output and "Traceback" not in result.output


def test_a_detailed_pictures_recipe_reproduces_it(tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    made = runner.invoke(
        app,
        [
            "generate",
            "a small yellow smiley face at the top left",
            "--seed",
            "2",
            "--steps",
            "10",
            "-o",
            str(outputs),
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    original = json.loads(made.output[made.output.index("{") :])["images"][0]["file"]
    detailed = runner.invoke(
        app, ["detail", original, "--padding", "16", "--seed", "7", "-o", str(outputs), "--json"]
    )
    assert detailed.exit_code == 0, detailed.output
    result = Path(json.loads(detailed.output[detailed.output.index("{") :])["file"])
    recipe = read_metadata(result).request
    assert recipe is not None and recipe.seed == 2 and [s.kind for s in recipe.postprocess] == ["detail"]
    assert recipe.postprocess[0].seed == 7  # pyright: ignore[reportAttributeAccessIssue]
    again = runner.invoke(app, ["generate", "--from", str(result), "-o", str(tmp_path / "again"), "--json"])
    assert again.exit_code == 0, again.output
    remade = json.loads(again.output[again.output.index("{") :])["images"][0]["file"]
    assert np.array_equal(np.asarray(Image.open(remade)), np.asarray(Image.open(result)))
    assert not np.array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(result)))
