"""How much clearer the detailer makes blurred smiley faces on the demo model, read back by the judge.

Draws demo-world scenes whose smileys are blurred until the judge reads circles, details them with
the demo model (padding 16, denoise 0.6), and prints, per scene and seed, each smiley's
``smiley_confidence`` (how clearly its eyes and mouth stand out, 0..1) before and after, the judge's
shapes after, and the largest change of any pixel outside the padded boxes (must be 0).

    .venv/bin/python benchmarks/detailer_confidence.py [--seeds 5]
"""

from __future__ import annotations

import argparse

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

PROMPT = "a yellow smiley face in the center, blue background"


def main() -> None:
    import numpy as np
    import torch
    from PIL import ImageFilter

    from sfumato.core.postprocess import DetailStep
    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.demo import judge, world
    from sfumato.models.loading import load_model
    from sfumato.postprocess.detailer import context_box, detail
    from sfumato.postprocess.detect import smiley_confidence

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    seeds = parser.parse_args().seeds
    torch.set_num_threads(1)
    components = load_model(Settings(), None)
    scenes = {
        "one in the centre": (world.SceneObject("smiley", "yellow", "center", "small"),),
        "two at the edges": (
            world.SceneObject("smiley", "yellow", "left", "small"),
            world.SceneObject("smiley", "yellow", "right", "small"),
        ),
    }
    for name, smileys in scenes.items():
        picture = world.render(world.Scene(smileys, "blue"))
        for obj in smileys:
            x0, y0, x1, y1 = world.object_box(obj)
            area = (x0 - 4, y0 - 4, x1 + 4, y1 + 4)
            picture.paste(picture.crop(area).filter(ImageFilter.GaussianBlur(2)), area[:2])
        before = [smiley_confidence(picture, world.object_box(o), "yellow") for o in smileys]
        shapes = [o.shape for o in judge.judge(picture).objects]
        print(f"{name}: before {[f'{c:.2f}' for c in before]}, judge reads {shapes}")
        for seed in range(seeds):
            step = DetailStep(prompt=PROMPT, denoising_strength=0.6, padding=16)
            result = detail(picture, step, components, GenerationRequest(seed=seed, steps=15))
            after = [smiley_confidence(result.picture, world.object_box(o), "yellow") for o in smileys]
            outside = np.ones((96, 96), dtype=bool)
            for region in result.regions:
                left, top, right, bottom = (max(0, v) for v in context_box(region.box, 16))
                outside[top:bottom, left:right] = False
            moved = np.abs(np.asarray(result.picture, dtype=int) - np.asarray(picture, dtype=int))[outside]
            shapes = [o.shape for o in judge.judge(result.picture).objects]
            print(
                f"  seed {seed}: after {[f'{c:.2f}' for c in after]}, judge reads {shapes}, outside max change {moved.max()}"
            )


if __name__ == "__main__":
    main()
