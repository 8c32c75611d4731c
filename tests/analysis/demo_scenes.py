"""Held-out demo-world scenes and their pictures for the analysis tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sfumato.demo import world


def held_out_single_objects(count: int, seed: int = 99) -> list[world.Scene]:
    """Single-object scenes of combinations the demo CLIP never saw."""
    rng = np.random.default_rng(seed)
    scenes: list[world.Scene] = []
    while len(scenes) < count:
        scene = world.sample_scene(rng, held_out=True)
        if len(scene.objects) == 1:
            scenes.append(scene)
    return scenes


def scene_of(shape: str, colour: str, position: str, background: str) -> world.Scene:
    return world.Scene(
        objects=(world.SceneObject(shape=shape, colour=colour, position=position, size="large"),),
        background=background,
    )


def picture(scene: world.Scene) -> Image.Image:
    return world.render(scene)


def shape_word(shape: str | None) -> str:
    return "smiley face" if shape == "smiley" else str(shape)
