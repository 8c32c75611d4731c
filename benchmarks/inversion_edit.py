"""Inversion and editing on the demo model: reconstruction PSNR per method and step count, and edits
judged over several seeds.

Reconstruction: a picture (the demo model's own render, and one drawn by the world's renderer, which
the model never made) is inverted with its prompt and regenerated; PSNR against the picture, and
against the picture through the VAE alone (the most any latent inversion can give back).
Edits: "a red circle" -> "a blue circle" (the object's colour, judged; share of pixels outside the
object's box that moved by more than 5% of the range) and "white background" -> "green background"
(the background, judged; the object kept).

    PYTHONPATH=src .venv/bin/python benchmarks/inversion_edit.py [--seeds 6]
"""

from __future__ import annotations

import argparse
import time

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()

    import numpy as np

    from sfumato.core.request import GenerationRequest
    from sfumato.core.settings import Settings
    from sfumato.demo import judge, world
    from sfumato.engine import inversion as inv
    from sfumato.engine.edit import edit
    from sfumato.engine.generate import generate
    from sfumato.models.loading import load_model

    demo = load_model(Settings(), None)
    prompt = "a red circle on a white background"
    pictures = {
        "model's render": generate(demo, GenerationRequest(prompt=prompt, seed=2, steps=20)).images[0].image,
        "world renderer": world.render(
            world.Scene((world.SceneObject("circle", "red", "left", "large"),), "white")
        ),
    }
    print("reconstruction PSNR (dB): vs picture / vs picture through the VAE alone")
    for name, picture in pictures.items():
        through_vae = inv.latents_picture(demo, inv.picture_latents(demo, picture))
        print(f"  {name}: VAE alone {inv.psnr(picture, through_vae):.2f}")
        for method in ("ddim", "fixed-point"):
            for steps in (10, 20, 50):
                started = time.perf_counter()
                back = inv.regenerate(demo, inv.invert(demo, picture, prompt, steps, method), prompt)  # pyright: ignore[reportArgumentType]
                print(
                    f"    {method:11s} {steps:2d} steps: {inv.psnr(picture, back):6.2f} / "
                    f"{inv.psnr(through_vae, back):6.2f}  ({time.perf_counter() - started:.1f} s)"
                )

    colour_ok = background_ok = 0
    outside: list[float] = []
    kept = 0
    for seed in range(1, args.seeds + 1):
        before = generate(demo, GenerationRequest(prompt=prompt, seed=seed, steps=20)).images[0].image
        source = judge.judge(before)
        if len(source.objects) != 1:
            print(f"seed {seed}: the source has {len(source.objects)} objects; skipped")
            continue
        obj = source.objects[0]
        blue = edit(demo, before, prompt, "a blue circle on a white background").picture
        judged = judge.judge(blue)
        colour_ok += [(o.colour, o.shape) for o in judged.objects] == [("blue", "circle")]
        a, b = np.asarray(before, float), np.asarray(blue, float)
        mask = np.ones(a.shape[:2], bool)
        mask[obj.box[1] : obj.box[3], obj.box[0] : obj.box[2]] = False
        outside.append(float((np.abs(a - b).max(-1)[mask] / 255 > 0.05).mean()))
        green = judge.judge(edit(demo, before, prompt, "a red circle on a green background").picture)
        background_ok += green.background == "green"
        kept += any(
            (o.colour, o.shape, o.position) == (obj.colour, obj.shape, obj.position) for o in green.objects
        )
        print(
            f"seed {seed}: colour edit -> {[(o.colour, o.shape) for o in judged.objects]}, "
            f"outside the box changed {outside[-1]:.2%}; background edit -> {green.background}, "
            f"objects {[(o.colour, o.shape) for o in green.objects]}"
        )
    print(
        f"colour edit right {colour_ok}/{len(outside)}, outside-box pixels changed: mean {np.mean(outside):.2%}, "
        f"max {np.max(outside):.2%}; background edit right {background_ok}/{len(outside)}, object kept {kept}/{len(outside)}"
    )


if __name__ == "__main__":
    main()
