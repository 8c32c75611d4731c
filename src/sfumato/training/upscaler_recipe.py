"""The recipe that trains Sfumato's built-in 2x upscaler on the demo world.

A RealESRGAN "Compact" network (SRVGGNetCompact: a few 3x3 convolutions, a pixel shuffle and the
nearest-upscaled input added back), small enough to ship, in the layout spandrel detects, so it
loads like any upscaler file a user has. It learns the map from a scene rendered at 96 px to the
same scene rendered at 192 px (both anti-aliased by supersampling, so the low-resolution picture is
what the world looks like at 96 px, not a resampling artefact). Batches are drawn from the step
number, so a resumed run sees the same data and the same command makes the same file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sfumato.demo import world
from sfumato.training.trainer import TrainConfig, Trainer

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from torch import nn

SCALE = 2
LOW_SIZE = world.NATIVE_SIZE  # 96
HIGH_SIZE = LOW_SIZE * SCALE  # 192
FEATURES = 32
CONVS = 8
STEPS = 2000
BATCH = 32
CROP = 32  # low-resolution crop side: the network is fully convolutional
EDGE_CROPS = 0.8  # the share of crops centred near an edge
HELD_OUT_SEED = 20261205  # the evaluation scenes: another seed and the combinations never trained on


@dataclass(frozen=True)
class UpscalerPlan:
    out: Path
    seed: int = 0
    steps: int = STEPS
    features: int = FEATURES
    convs: int = CONVS


def build_upscaler(features: int = FEATURES, convs: int = CONVS) -> nn.Module:
    """An untrained SRVGGNetCompact (spandrel's class, so its state dict is what spandrel detects)."""
    from sfumato.models.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    return Compact(num_in_ch=3, num_out_ch=3, num_feat=features, num_conv=convs, upscale=SCALE)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    import torch

    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def scene_pair(scene: world.Scene) -> tuple[Image.Image, Image.Image]:
    """(96 px, 192 px) renders of one scene."""
    return world.render(scene, LOW_SIZE), world.render(scene, HIGH_SIZE)


def training_batch(step: int, seed: int, count: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Low- and high-resolution crops of ``count`` training scenes, drawn from the step number."""
    rng = np.random.default_rng((seed, 14, step))
    lows, highs = [], []
    for _ in range(count):
        low, high = scene_pair(world.sample_scene(rng))
        x, y = _crop_corner(low, rng)
        lows.append(low.crop((x, y, x + CROP, y + CROP)))
        highs.append(high.crop((SCALE * x, SCALE * y, SCALE * (x + CROP), SCALE * (y + CROP))))
    return to_tensor(lows), to_tensor(highs)


def _crop_corner(low: Image.Image, rng: np.random.Generator) -> tuple[int, int]:
    """A crop's corner, most often around an edge: flat areas teach nothing once the edges are right."""
    grey = np.asarray(low.convert("L"), dtype=np.int16)
    edges = np.argwhere((np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]) > 8)
    if len(edges) and rng.random() < EDGE_CROPS:
        cy, cx = edges[rng.integers(len(edges))]
        low_side = LOW_SIZE - CROP
        return (
            int(np.clip(cx - CROP // 2 + rng.integers(-CROP // 4, CROP // 4 + 1), 0, low_side)),
            int(np.clip(cy - CROP // 2 + rng.integers(-CROP // 4, CROP // 4 + 1), 0, low_side)),
        )
    x, y = (int(v) for v in rng.integers(0, LOW_SIZE - CROP + 1, size=2))
    return x, y


def held_out_pairs(count: int = 16) -> list[tuple[Image.Image, Image.Image]]:
    """Evaluation pairs: scenes of the combinations training never sees, from a seed of their own."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    return [scene_pair(world.sample_scene(rng, held_out=True)) for _ in range(count)]


def train_upscaler(plan: UpscalerPlan) -> nn.Module:
    """Train (or resume) the upscaler in ``plan.out``; returns it with its EMA weights."""
    import torch

    torch.manual_seed(plan.seed)
    model = build_upscaler(plan.features, plan.convs)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        low, high = training_batch(step, plan.seed)
        return torch.nn.functional.mse_loss(model(low), high), {}

    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "plan.json").write_text(
        json.dumps({"steps": plan.steps, "seed": plan.seed, "features": plan.features, "convs": plan.convs})
    )
    config = TrainConfig(
        steps=plan.steps, lr=1e-3, warmup_steps=50, ema_decay=0.995, seed=plan.seed, checkpoint_every=250
    )
    trainer = Trainer(model, loss_fn, config, plan.out, name="upscaler")
    trainer.resume()
    trainer.fit()
    if trainer.ema is not None:
        trainer.ema.copy_to(model)
    return model.eval()


def export_upscaler(model: nn.Module, path: Path) -> Path:
    """The weights as fp32 safetensors in spandrel's Compact layout (``body.N.*``), written atomically."""
    from safetensors.torch import save_file

    tensors = {key: value.detach().float().contiguous() for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata={"sfumato": "demo upscaler", "scale": str(SCALE)})
    partial.replace(path)
    return path


def psnr(picture: Image.Image, truth: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB of ``picture`` against ``truth`` (8-bit RGB)."""
    a = np.asarray(picture.convert("RGB"), dtype=np.float64)
    b = np.asarray(truth.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def evaluate(upscale: Callable[[Image.Image], Image.Image], count: int = 16) -> dict[str, float]:
    """Mean PSNR on the held-out pairs of ``upscale`` and of Lanczos and bicubic, against the 192 px render."""
    from PIL import Image as PILImage

    scores: dict[str, list[float]] = {"upscaler": [], "lanczos": [], "bicubic": []}
    for low, high in held_out_pairs(count):
        scores["upscaler"].append(psnr(upscale(low), high))
        scores["lanczos"].append(psnr(low.resize(high.size, PILImage.Resampling.LANCZOS), high))
        scores["bicubic"].append(psnr(low.resize(high.size, PILImage.Resampling.BICUBIC), high))
    return {name: float(np.mean(values)) for name, values in scores.items()}
