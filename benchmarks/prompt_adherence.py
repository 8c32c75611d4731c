"""How well the built-in demo model follows prompts it never saw in training, read by the judge.

Draws seeded captions from the held-out combinations of the demo world (never trained on),
generates each with default settings through Sfumato's engine, judges the picture and prints the
share of asked-for colours, shapes, positions, backgrounds, sizes and object counts that the
pictures show. Writes a contact sheet of the first pictures for a person to look at, and times
one native-size 20-step picture. ``--through-vae`` also judges the same scenes drawn exactly and
passed through the model's VAE alone: what the model could reach at best with that VAE.

    .venv/bin/python benchmarks/prompt_adherence.py [--count 200] [--model FOLDER] [--sheet PATH] [--through-vae] [--misses]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)
from sfumato.demo import judge, world

ATTRIBUTES = ("colour", "background", "shape", "position", "size", "count")


def held_out(count: int, seed: int) -> tuple[list[world.Scene], list[str]]:
    rng = np.random.default_rng(seed)
    scenes, captions = [], []
    for _ in range(count):
        scenes.append(world.sample_scene(rng, held_out=True))
        captions.append(world.caption(scenes[-1], rng, complete=True))
    return scenes, captions


def accuracy(captions: list[str], images: list[Image.Image]) -> dict[str, float]:
    hits: dict[str, float] = dict.fromkeys(ATTRIBUTES, 0.0)
    asked: Counter[str] = Counter()
    for text, image in zip(captions, images, strict=True):
        for attribute, value in judge.score(world.parse_caption(text), judge.judge(image)).items():
            hits[attribute] += value
            asked[attribute] += 1
    return {a: hits[a] / asked[a] for a in ATTRIBUTES if asked[a]}


def colour_misses(captions: list[str], images: list[Image.Image]) -> Counter[tuple[int, str, str]]:
    """Each asked colour the picture got wrong, as (objects in the scene, asked, drawn or "missing")."""
    misses: Counter[tuple[int, str, str]] = Counter()
    for text, image in zip(captions, images, strict=True):
        scene = world.parse_caption(text)
        for asked, drawn in judge.match_objects(scene, judge.judge(image)):
            got = drawn.colour if drawn is not None else "missing"
            if asked.colour is not None and got != asked.colour:
                misses[(len(scene.objects), asked.colour, got)] += 1
    return misses


def through_vae(components: Any, scenes: list[world.Scene]) -> list[Image.Image]:
    """Each scene drawn exactly, encoded and decoded by the model's VAE."""
    import torch

    vae = components.vae
    pictures = []
    for scene in scenes:
        truth = np.asarray(world.render(scene), dtype=np.float32) / 127.5 - 1
        pixels = torch.from_numpy(truth).permute(2, 0, 1)[None].to(vae.device, vae.dtype)
        with torch.no_grad():
            decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample
        array = ((decoded[0].float().permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255)
        pictures.append(Image.fromarray(array.round().astype(np.uint8)))
    return pictures


def load(model: str | None) -> Any:
    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    return load_model(Settings(), model)


def contact_sheet(images: list[Image.Image], captions: list[str], columns: int = 8) -> Image.Image:
    tile, label = 192, 40
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * (tile + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (image, text) in enumerate(zip(images, captions, strict=True)):
        x, y = (index % columns) * tile, (index // columns) * (tile + label)
        sheet.paste(image.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        words, line = text.split(), ""
        lines = []
        for word in words:
            if len(line) + len(word) > 30:
                lines.append(line)
                line = ""
            line += word + " "
        lines.append(line)
        draw.multiline_text((x + 2, y + tile + 1), "\n".join(lines[:3]), fill="black", spacing=1)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model", default=None, help="Model folder or name; default: the built-in demo model."
    )
    parser.add_argument("--cfg", type=float, default=None, help="CFG scale; default: the request's default.")
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sheet", type=Path, default=Path("runs/prompt_adherence.png"))
    parser.add_argument(
        "--misses", action="store_true", help="also list the colour misses by objects in the scene"
    )
    parser.add_argument(
        "--through-vae", action="store_true", help="also judge the exact scenes passed through the VAE alone"
    )
    args = parser.parse_args()

    from sfumato.core.request import GenerationRequest
    from sfumato.engine.generate import generate

    components = load(args.model)
    overrides: dict[str, Any] = {}
    if args.cfg is not None:
        overrides["cfg_scale"] = args.cfg
    if args.sampler is not None:
        overrides["sampler"] = args.sampler
    if args.steps is not None:
        overrides["steps"] = args.steps

    scenes, captions = held_out(args.count, args.seed)
    images: list[Image.Image] = []
    started = time.perf_counter()
    for index, text in enumerate(captions):
        request = GenerationRequest(prompt=text, seed=args.seed * 100_000 + index, **overrides)
        images.append(generate(components, request).images[0].image)
    elapsed = time.perf_counter() - started
    scores = accuracy(captions, images)
    ceiling = accuracy(captions, through_vae(components, scenes)) if args.through_vae else {}

    timing_request = GenerationRequest(prompt="a red circle on a white background", seed=1, steps=20)
    generate(components, timing_request)
    timed = time.perf_counter()
    generate(components, timing_request)
    one_image = time.perf_counter() - timed

    size = images[0].size
    settings = GenerationRequest(prompt="", **overrides)
    print(
        f"{args.count} held-out captions, {size[0]}x{size[1]}, {settings.steps} steps, "
        f"{settings.sampler}, CFG {settings.cfg_scale}: {elapsed / args.count:.2f} s per picture"
    )
    for attribute, value in scores.items():
        vae_only = f"   exact scene through the VAE: {ceiling[attribute]:6.1%}" if ceiling else ""
        print(f"  {attribute:<10} {value:6.1%}{vae_only}")
    if args.misses:
        misses = colour_misses(captions, images)
        for objects in (1, 2):
            count = sum(n for (o, _, _), n in misses.items() if o == objects)
            print(f"  colour misses in {objects}-object scenes: {count}")
        for (objects, asked, got), n in misses.most_common(8):
            print(f"    {n} x {asked} drawn {got} ({objects}-object scene)")
    print(f"one native-size 20-step picture (DPM++ 2M, CFG): {one_image:.2f} s")
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(images[:48], captions[:48]).save(args.sheet)
    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
