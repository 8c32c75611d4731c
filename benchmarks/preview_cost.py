"""What a live preview costs, as a share of one denoising step, measured in the same run.

- the demo model (96², the real thing): one CFG step of its UNet, its own preview decoder
  (demo/preview/), and the linear latent→RGB preview;
- full-size SD1.5 at 512² with random weights: one CFG step of the UNet (batch 2, 64² latents),
  a TAESD decoder of the published architecture (diffusers' AutoencoderTiny), and the linear preview.

    python benchmarks/preview_cost.py                # both
    python benchmarks/preview_cost.py --demo-only    # seconds, not a minute
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sfumato  # noqa: F401  (sets the offline flags before Hugging Face imports)

sys.path.insert(0, str(Path(__file__).resolve().parent))


def fastest(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls after a warm-up (the cores are shared: others only slow it)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, components: Any, latent_size: int, repeats: int) -> None:
    import torch

    from sfumato.engine import latents as lat

    unet = components.unet
    latents = torch.randn(2, 4, latent_size, latent_size, generator=torch.Generator().manual_seed(0))
    hidden = torch.randn(2, 77, int(unet.config.cross_attention_dim))
    pixels = latent_size * components.vae_scale_factor

    def step() -> None:
        with torch.no_grad():
            unet(latents.to(unet.dtype), torch.tensor(500), encoder_hidden_states=hidden.to(unet.dtype))

    decoder = components.preview_decoder
    step_s = fastest(step, repeats)
    taesd_s = fastest(lambda: lat.preview(components, latents, (pixels, pixels)), repeats)
    components.preview_decoder = None
    linear_s = fastest(lambda: lat.preview(components, latents, (pixels, pixels)), repeats)
    components.preview_decoder = decoder
    print(
        f"{name}: step {step_s:.3f} s; decoder preview {taesd_s:.3f} s = {taesd_s / step_s:.3f} of a step; "
        f"linear preview {linear_s:.4f} s = {linear_s / step_s:.4f} of a step",
        flush=True,
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--demo-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sfumato.core.settings import Settings
    from sfumato.models.loading import load_model

    demo = load_model(Settings(), None)
    if demo.preview_decoder is None:
        print("the demo model has no preview decoder (demo/preview/ missing)")
    else:
        report("demo model 96²", demo, 24, repeats=10)
    if args.demo_only:
        return
    from diffusers import AutoencoderTiny

    from gpu import full_size  # pyright: ignore[reportMissingImports]

    components = full_size("sd15", "cpu", torch.float32)
    components.preview_decoder = AutoencoderTiny().eval()  # TAESD's published architecture, random weights
    report("SD1.5 512² (random weights)", components, 64, repeats=1)


if __name__ == "__main__":
    main()
