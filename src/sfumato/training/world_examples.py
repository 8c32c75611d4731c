"""Training pictures of a concept from the demo model's synthetic world (for TI and LoRA on it).

The world can draw the shape the demo model never saw (heart) and the colour it has no word for
(pink; it drew it only as "rosa"): these examples are how an embedding or a LoRA teaches them.
"""

from __future__ import annotations

import re

import numpy as np

from sfumato.demo import world
from sfumato.training.diffusion import Example


def concept_examples(
    count: int,
    *,
    shape: str | None = None,
    colour: str | None = None,
    name: str | None = None,
    seed: int = 0,
) -> list[Example]:
    """``count`` one-object pictures with the given ``shape`` and/or ``colour`` (others drawn from
    what the model knows).

    With ``name``, the concept's word in each caption ("pink", "heart") is replaced by ``name``,
    the word a textual inversion learns.
    """
    if shape is None and colour is None:
        raise ValueError("Name a shape or a colour to make examples of.")
    if shape is not None and shape not in world.ALL_SHAPES:
        raise ValueError(f"The demo world has no shape {shape!r}; it has {', '.join(world.ALL_SHAPES)}.")
    if colour is not None and colour not in world.ALL_COLOURS:
        raise ValueError(f"The demo world has no colour {colour!r}; it has {', '.join(world.ALL_COLOURS)}.")
    rng = np.random.default_rng((seed, 55))
    word = colour if shape is None else shape
    examples = []
    for _ in range(count):
        picked_colour = colour or str(rng.choice(list(world.COLOURS)))
        backgrounds = [b for b in world.BACKGROUNDS if b != picked_colour]
        obj = world.SceneObject(
            shape=shape or str(rng.choice(list(world.SHAPES))),
            colour=picked_colour,
            position=str(rng.choice(list(world.POSITIONS))),
            size=str(rng.choice(list(world.SIZES))),
        )
        scene = world.Scene((obj,), str(rng.choice(backgrounds)))
        text = world.caption(scene, rng)
        if name is not None and word is not None:
            text = re.sub(rf"\b{word}\b", name, text, count=1)
        examples.append(Example(world.render(scene), text))
    return examples
