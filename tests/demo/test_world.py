import numpy as np
import pytest

from sfumato.demo import world


def test_render_is_deterministic_and_any_size() -> None:
    scene = world.Scene((world.SceneObject("star", "red", "top left", "large"),), "blue")
    first = np.asarray(world.render(scene))
    assert first.shape == (96, 96, 3)
    assert np.array_equal(first, np.asarray(world.render(scene)))
    assert world.render(scene, 200).size == (200, 200)


def test_object_sits_in_its_cell_with_its_colour() -> None:
    scene = world.Scene((world.SceneObject("square", "yellow", "bottom right", "large"),), "black")
    pixels = np.asarray(world.render(scene))
    assert tuple(pixels[80, 80]) == world.COLOURS["yellow"]
    assert tuple(pixels[16, 16]) == world.BACKGROUNDS["black"]
    left, top, right, bottom = world.object_box(scene.objects[0])
    assert 64 <= left < right <= 96 and 64 <= top < bottom <= 96


def test_training_scenes_never_use_the_held_out_shape_colour_or_combinations() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        scene = world.sample_scene(rng)
        assert not world.is_held_out_combination(scene)
        for obj in scene.objects:
            assert obj.shape != world.HELD_OUT_SHAPE and obj.colour != world.HELD_OUT_COLOUR
            assert obj.colour != scene.background
        assert len({o.position for o in scene.objects}) == len(scene.objects)


def test_held_out_split_is_disjoint() -> None:
    rng = np.random.default_rng(1)
    assert all(world.is_held_out_combination(world.sample_scene(rng, held_out=True)) for _ in range(100))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a red circle at the top left on a blue background",
            world.Scene((world.SceneObject("circle", "red", "top left", None),), "blue"),
        ),
        (
            "small green star, bottom right, white background",
            world.Scene((world.SceneObject("star", "green", "bottom right", "small"),), "white"),
        ),
        (
            "a yellow smiley face and a blue square",
            world.Scene((world.SceneObject("smiley", "yellow"), world.SceneObject("square", "blue")), None),
        ),
        (
            "a big pink heart in the centre",
            world.Scene((world.SceneObject("heart", "pink", "center", "large"),)),
        ),
        ("a circle in the middle", world.Scene((world.SceneObject("circle", None, "center", None),))),
    ],
)
def test_parse_caption(text: str, expected: world.Scene) -> None:
    assert world.parse_caption(text) == expected


def test_captions_say_what_the_scene_shows() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        scene = world.sample_scene(rng)
        parsed = world.parse_caption(world.caption(scene, rng, complete=True))
        assert parsed.background == scene.background
        assert [(o.shape, o.colour, o.position) for o in parsed.objects] == [
            (o.shape, o.colour, o.position) for o in scene.objects
        ]
