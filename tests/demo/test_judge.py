from collections import Counter

import numpy as np
from PIL import Image

from sfumato.demo import judge, world


def test_judge_reads_ground_truth_renders() -> None:
    rng = np.random.default_rng(0)
    hits: dict[str, float] = {}
    asked: Counter[str] = Counter()
    for _ in range(300):
        scene = world.sample_scene(rng, novel=True)
        for attribute, value in judge.score(scene, judge.judge(world.render(scene))).items():
            hits[attribute] = hits.get(attribute, 0.0) + value
            asked[attribute] += 1
    accuracy = {a: hits[a] / asked[a] for a in asked}
    assert set(accuracy) == {"count", "background", "colour", "shape", "position", "size"}
    assert min(accuracy.values()) >= 0.98, accuracy


def test_judge_reads_each_shape_at_other_sizes() -> None:
    for shape in world.ALL_SHAPES:
        scene = world.Scene((world.SceneObject(shape, "orange", "left", "large"),), "white")
        for size in (64, 96, 256):
            result = judge.judge(world.render(scene, size))
            assert [(o.shape, o.colour, o.position, o.size) for o in result.objects] == [
                (shape, "orange", "left", "large")
            ], (shape, size)


def test_boxes_are_in_the_images_own_pixels() -> None:
    obj = world.SceneObject("square", "green", "top right", "large")
    result = judge.judge(world.render(world.Scene((obj,), "white"), 192))
    expected = world.object_box(obj, 192)
    assert all(abs(a - b) <= 4 for a, b in zip(result.objects[0].box, expected, strict=True))


def test_an_empty_picture_has_no_objects() -> None:
    result = judge.judge(Image.new("RGB", (96, 96), world.BACKGROUNDS["gray"]))
    assert result == judge.Judgement("gray", ())


def test_score_counts_wrong_colour() -> None:
    scene = world.Scene((world.SceneObject("circle", "red", "center", "small"),), "white")
    wrong = world.Scene((world.SceneObject("circle", "blue", "center", "small"),), "white")
    result = judge.score(scene, judge.judge(world.render(wrong)))
    assert result["colour"] == 0 and result["shape"] == 1 and result["position"] == 1
