"""Interrogation on the demo CLIP: held-out pictures get their colour, shape, position and background back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_scenes import held_out_single_objects, picture, scene_of, shape_word
from typer.testing import CliRunner

from sfumato.analysis.clip_model import load_clip
from sfumato.analysis.interrogate import interrogate, lists_for
from sfumato.analysis.phrases import load_lists, read_list
from sfumato.cli.main import app
from sfumato.core.errors import InvalidRequest

runner = CliRunner()


def _accuracy(count: int = 60) -> dict[str, float]:
    clip, lists = load_clip(), lists_for(None, None)
    scenes = held_out_single_objects(count)
    right = {"colours": 0, "shapes": 0, "positions": 0, "backgrounds": 0}
    for scene in scenes:
        obj = scene.objects[0]
        ranked = interrogate(picture(scene), clip, lists).ranked
        right["colours"] += ranked["colours"][0].phrase == obj.colour
        right["shapes"] += ranked["shapes"][0].phrase == shape_word(obj.shape)
        right["positions"] += ranked["positions"][0].phrase == obj.position
        right["backgrounds"] += ranked["backgrounds"][0].phrase == f"{scene.background} background"
    return {name: n / len(scenes) for name, n in right.items()}


def test_held_out_demo_pictures_give_back_their_colour_shape_and_background() -> None:
    accuracy = _accuracy()
    assert min(accuracy["colours"], accuracy["shapes"], accuracy["backgrounds"]) >= 0.9, accuracy


def test_held_out_demo_pictures_give_back_their_position() -> None:
    accuracy = _accuracy()
    assert accuracy["positions"] >= 0.9, accuracy


def test_the_prompt_joins_the_best_phrase_of_each_list_after_a_caption() -> None:
    scene = scene_of("star", "yellow", "top left", "blue")
    result = interrogate(picture(scene), load_clip(), lists_for(None, None), caption="a drawing")
    assert result.prompt.startswith("a drawing, ")
    assert {"yellow", "star", "blue background"} <= set(result.prompt.split(", "))
    assert result.to_json()["lists"]["shapes"][0]["phrase"] == "star"


def test_user_lists_extend_and_add(tmp_path: Path) -> None:
    (tmp_path / "shapes.txt").write_text("heart\n", encoding="utf-8")
    (tmp_path / "moods.txt").write_text(
        "# pick: 2\n# template: a {} picture\ncalm\nbusy\nodd\n", encoding="utf-8"
    )
    lists = {pl.name: pl for pl in load_lists("demo", tmp_path)}
    assert lists["shapes"].phrases[-1] == "heart" and lists["shapes"].template == "a {}"
    assert lists["moods"].pick == 2 and lists["moods"].prompts()[0] == "a calm picture"
    result = interrogate(
        picture(scene_of("circle", "red", "center", "white")), load_clip(), list(lists.values())
    )
    assert len([p for p in result.prompt.split(", ") if p in {"calm", "busy", "odd"}]) == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("# template: a shape\nred\n", "line 1: a template holds exactly one {}"),
        ("red\n# pick: 0\n", "line 2: pick must be a whole number"),
        ("# only comments\n", "it holds no phrases"),
    ],
)
def test_a_list_that_does_not_parse_names_its_line(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRequest, match=why):
        read_list(path)


def test_unknown_list_names_the_lists_there() -> None:
    with pytest.raises(InvalidRequest, match="Lists here: backgrounds, colours, positions, shapes"):
        load_lists("demo", None, ["artists"])


def test_real_clips_get_the_general_lists(tmp_path: Path) -> None:
    names = {pl.name for pl in lists_for(tmp_path / "some-clip", None)}
    assert names == {"artists", "flavours", "mediums", "movements"}


def test_cli_prints_the_prompt_and_json(tmp_path: Path) -> None:
    file = tmp_path / "scene.png"
    picture(scene_of("square", "green", "bottom right", "yellow")).save(file)
    done = runner.invoke(app, ["interrogate", str(file), "--json"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert {"green", "square", "yellow background"} <= set(found["prompt"].split(", "))
    plain = runner.invoke(app, ["interrogate", str(file), "--lists", "shapes"])
    assert plain.exit_code == 0 and plain.stdout.splitlines()[0] == "square"


def test_cli_tags_without_a_tagger_say_what_is_needed(tmp_path: Path) -> None:
    file = tmp_path / "scene.png"
    picture(scene_of("square", "green", "bottom right", "yellow")).save(file)
    done = runner.invoke(app, ["interrogate", str(file), "--tags"])
    assert done.exit_code == 1
    assert "No tagger is configured" in done.output and "model.onnx" in done.output
