"""The demo model's preview decoder: a tiny TAESD-style decoder (diffusers' AutoencoderTiny) trained
on the demo world, so live previews of the demo model look like its pictures.

Scenes of the demo world are rendered, encoded by the demo VAE (its latent mean, scaled as the UNet
sees it) and decoded by the demo VAE; the tiny decoder learns latents → that decoded picture. The
inputs are also shown with a little noise, since previews decode half-denoised latents. Fixed seeds
and step count: the same command makes the same decoder.

    python -m sfumato.training.preview_recipe --out src/sfumato/demo/preview
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SCENES = 512
STEPS = 600
BATCH = 16
SEED = 20

# Three blocks: two 2x upsamplings, as the demo VAE's factor of 4.
DECODER_CONFIG: dict[str, Any] = {
    "encoder_block_out_channels": (8, 8, 8),
    "decoder_block_out_channels": (16, 16, 16),
    "num_encoder_blocks": (1, 1, 1),
    "num_decoder_blocks": (1, 1, 1),
}


def _data(vae: Any, count: int) -> tuple[Any, Any]:
    """(scaled latents, the demo VAE's pictures of them in [-1, 1]) for ``count`` random scenes."""
    import numpy as np
    import torch

    from sfumato.demo import world

    rng = np.random.default_rng(SEED)
    pictures = [world.render(world.sample_scene(rng)) for _ in range(count)]
    pixels = torch.stack(
        [torch.from_numpy(np.asarray(p, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1) for p in pictures]
    )
    scale = float(vae.config.scaling_factor)
    latents, targets = [], []
    with torch.no_grad():
        for chunk in pixels.split(64):
            mean = vae.encode(chunk).latent_dist.mean
            latents.append(mean * scale)
            targets.append(vae.decode(mean, return_dict=False)[0].clamp(-1, 1))
    return torch.cat(latents), torch.cat(targets)


def train(model_folder: Path, out: Path) -> dict[str, float]:
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    vae: Any = AutoencoderKL.from_pretrained(str(model_folder / "vae")).eval()
    latents, targets = _data(vae, SCENES)
    model: Any = AutoencoderTiny(**DECODER_CONFIG)
    decoder = model.decoder
    optimiser = torch.optim.AdamW(decoder.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, STEPS)
    generator = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    loss = torch.tensor(0.0)
    for _ in range(STEPS):
        index = torch.randint(0, len(latents), (BATCH,), generator=generator)
        noisy = latents[index] + 0.1 * torch.randn(latents[index].shape, generator=generator)
        loss = torch.nn.functional.l1_loss(decoder(noisy), targets[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    out.mkdir(parents=True, exist_ok=True)
    weights = {f"decoder.{k}": v.contiguous() for k, v in decoder.state_dict().items()}
    save_file(weights, str(out / "diffusion_pytorch_model.safetensors"))
    config = {"_class_name": "AutoencoderTiny", **{k: list(v) for k, v in DECODER_CONFIG.items()}}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return {"final_l1": float(loss), "seconds": time.perf_counter() - start}


def main() -> None:
    from sfumato.models.loading import demo_model_folder

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(train(demo_model_folder(), args.out)))


if __name__ == "__main__":
    main()
