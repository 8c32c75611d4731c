"""Does frozen noise steady video keyframes? Frozen versus per-frame noise on the demo world.

A synthetic clip of the demo world: a red circle drifting slowly right over a blue background. Its
keyframes are stylised by img2img with one prompt, as `sfumato video keyframes` does, once with
frozen noise (every keyframe: the seed's own starting and encode noise) and once with per-frame noise
(keyframe k: seed + k), for several seeds. Prints the consistency of each (mean change between
stylised keyframes / mean change between the source keyframes; lower = steadier) and the ratio
frozen / per-frame measured in the same run.

    PYTHONPATH=src .venv/bin/python benchmarks/frozen_noise_consistency.py [--seeds 8] [--strength 0.6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

FRAMES = 25
EVERY = 4


def drifting_circle(frame: int, size: int = 96) -> object:
    from PIL import Image, ImageDraw

    scale = 4  # drawn large and shrunk, so sub-pixel motion shows as anti-aliasing
    picture = Image.new("RGB", (size * scale, size * scale), (30, 60, 220))
    cx, cy, r = (28 + 1.2 * frame) * scale, 50 * scale, 15 * scale
    ImageDraw.Draw(picture).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 30, 30))
    return picture.resize((size, size), Image.Resampling.LANCZOS)


def consistency(components: object, frozen: bool, seed: int, args: argparse.Namespace) -> float:
    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate
    from sfumato.engine.keyframes import consistency_ratio
    from sfumato.jobs.video_keyframes import Keyframe, KeyframeProject, keyframe_requests

    keys = [Keyframe(n, drifting_circle(n - 1)) for n in range(1, FRAMES + 1, EVERY)]  # pyright: ignore[reportArgumentType]
    project = KeyframeProject(Path("unused"), Path("unused"), 24.0, FRAMES, keys)
    base = GenerationRequest(
        prompt="a red circle on a blue background",
        seed=seed,
        steps=args.steps,
        denoising_strength=args.strength,
        frozen_noise=frozen,
    )
    stylised = [generate(components, r).images[0].image for r in keyframe_requests(project, base)]  # pyright: ignore[reportArgumentType]
    ratio = consistency_ratio([k.source for k in keys], stylised)
    assert ratio is not None
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.6)
    args = parser.parse_args()

    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    components = load_model(Settings(), None)
    results: dict[bool, list[float]] = {True: [], False: []}
    for seed in range(args.seeds):
        for frozen in (False, True):
            results[frozen].append(consistency(components, frozen, seed, args))
        print(f"seed {seed}: per-frame {results[False][-1]:.3f}  frozen {results[True][-1]:.3f}")
    per_frame = sum(results[False]) / args.seeds
    frozen = sum(results[True]) / args.seeds
    print(
        f"{FRAMES} frames, a keyframe every {EVERY}, strength {args.strength}, {args.steps} steps, "
        f"{args.seeds} seeds"
    )
    print(f"consistency per-frame noise: {per_frame:.3f}   frozen noise: {frozen:.3f}")
    print(f"ratio frozen / per-frame: {frozen / per_frame:.3f}  (below 1: frozen noise is steadier)")


if __name__ == "__main__":
    main()
