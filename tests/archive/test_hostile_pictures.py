"""Hostile pictures (metadata nested, out of range or of the wrong type; bombs; not pictures at all) as a
user meets them: recalled with --from, used as an init image, indexed by a rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostile import PICTURES, one_line_error, write_pictures
from sfumato.cli.main import app

runner = CliRunner()
FAST = ["--steps", "1", "--sampler", "Euler", "--seed", "3"]
UNREADABLE = ("bomb-header", "truncated", "not-an-image", "empty")
# Recipes that cannot be recalled: refused, or not there at all once the hostile part is set aside.
NO_RECIPE = (
    "sfumato-nested",
    "sfumato-1e999",
    "sfumato-huge-int",
    "sfumato-list",
    "comfyui-nested",
    "comfyui-1e999",
    "invokeai-hostile",
)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_pictures(tmp_path_factory.mktemp("hostile-pictures"))


def test_recalling_a_hostile_picture_says_what_is_wrong_in_one_line(
    pictures: dict[str, Path], tiny_model_folder: Path, tmp_path: Path
) -> None:
    said = {}
    for name, path in pictures.items():
        result = runner.invoke(
            app,
            ["generate", "--from", str(path), "--model", str(tiny_model_folder), *FAST, "-o", str(tmp_path)],
        )
        assert "Traceback" not in result.output, result.output
        if name == "parameters-nested-quotes":  # odd but well-formed: it is a recipe
            assert result.exit_code == 0, result.output
            continue
        assert result.exit_code == 1 and one_line_error(result.output), (name, result.output)
        said[name] = result.output.strip().splitlines()[-1]
        assert path.name in said[name]
    for name in NO_RECIPE:
        assert "holds no generation settings" in said[name]
    assert "too large to be a picture" in said["bomb-header"]
    assert "The settings in parameters-hostile.png cannot be used: cfg_scale:" in said["parameters-hostile"]
    assert "prompt: Input should be a valid string" in said["sfumato-wrong-types"]


@pytest.mark.parametrize("name", UNREADABLE)
def test_an_unreadable_init_image_is_one_line_naming_it(
    name: str, pictures: dict[str, Path], tiny_model_folder: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "img2img",
            "--init",
            str(pictures[name]),
            "x",
            "--model",
            str(tiny_model_folder),
            *FAST,
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1 and one_line_error(result.output), result.output
    assert "init image" in result.output and (
        "too large" in result.output or pictures[name].name in result.output
    )


def test_a_rebuild_skips_hostile_pictures_and_keeps_the_sane_ones(
    pictures: dict[str, Path], tmp_path: Path
) -> None:
    env = {"SFUMATO_OUTPUT_DIR": str(next(iter(pictures.values())).parent)}
    rebuilt = runner.invoke(app, ["archive", "rebuild"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.output.startswith("Indexed 3 pictures from ")
    listed = runner.invoke(app, ["archive", "list", "--json"], env=env)
    records = {r["path"]: r for r in json.loads(listed.stdout)}
    assert set(records) == {
        "parameters-hostile.png",
        "parameters-nested-quotes.png",
        "sfumato-wrong-types.png",
    }
    assert records["parameters-hostile.png"]["seed"] is None  # 99999999999999999999999 is no seed
    assert len(PICTURES) == 14
