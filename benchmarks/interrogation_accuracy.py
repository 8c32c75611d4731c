"""Interrogation on the demo CLIP: how often held-out demo pictures get their own words back.

Held-out scenes are combinations of colour, shape, position and background the demo CLIP never saw
(``world.is_held_out_combination``), drawn by the world's renderer. Single-object scenes: in a
two-object scene "the colour" has two right answers, so those are reported apart, as whether the
top colour/shape/position belongs to one of the two objects.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/interrogation_accuracy.py [--scenes 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from sfumato.analysis.clip_model import load_clip
from sfumato.analysis.interrogate import interrogate, lists_for
from sfumato.demo import world

ATTRIBUTES = {"colours": "colour", "shapes": "shape", "positions": "position"}


def held_out_scenes(count: int, objects: int, seed: int = 1234) -> list[world.Scene]:
    rng = np.random.default_rng(seed)
    scenes: list[world.Scene] = []
    while len(scenes) < count:
        scene = world.sample_scene(rng, held_out=True)
        if len(scene.objects) == objects:
            scenes.append(scene)
    return scenes


def accuracy(scenes: list[world.Scene]) -> dict[str, float]:
    clip = load_clip()
    lists = lists_for(None, None)
    right = {name: 0 for name in [*ATTRIBUTES, "backgrounds"]}
    for scene in scenes:
        result = interrogate(world.render(scene), clip, lists)
        for name, attribute in ATTRIBUTES.items():
            best = result.ranked[name][0].phrase
            right[name] += any(best == _word(getattr(o, attribute)) for o in scene.objects)
        right["backgrounds"] += result.ranked["backgrounds"][0].phrase == f"{scene.background} background"
    return {name: count / len(scenes) for name, count in right.items()}


def _word(value: str | None) -> str:
    return "smiley face" if value == "smiley" else str(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=200)
    count = parser.parse_args().scenes
    for objects in (1, 2):
        figures = accuracy(held_out_scenes(count, objects))
        print(
            f"{objects}-object held-out scenes ({count}): "
            + ", ".join(f"{k} {v:.1%}" for k, v in figures.items())
        )


if __name__ == "__main__":
    main()
